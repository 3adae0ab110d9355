"""Sudoku puzzles, their string form, a difficulty rating and a seeded generator of unique puzzles.

Text form (as on most Sudoku sites and lists such as "top95"): the ``n * n`` cells row by row, ``'.'``
or ``'0'`` for a blank, digits ``1``-``9`` and then ``A``-``G`` for 10-16 (case-insensitive);
whitespace is ignored, so a grid pasted over several lines parses too. 81 characters for 9x9, 16 for
4x4 and 256 for 16x16.

Difficulty is rated by what the solver (``hrm_envs.sudoku.solver``) needs:

| level | solved by | search effort (``guesses``) | givens: 4x4 / 9x9 / 16x16 |
|---|---|---|---|
| ``easy`` | naked singles alone | 0 | 8-10 / 36-45 / 131-160 |
| ``medium`` | naked and hidden singles (about half of 9x9 ones need the hidden ones) | 0 | 4-7 / 27-35 / 96-130 |
| ``hard`` | search | 1 to ``EXTREME_GUESSES - 1`` | - / 17-30 / - |
| ``extreme`` | search | at least ``EXTREME_GUESSES`` (20) | - / 17-30 / - |

``rate(grid, box)`` gives a puzzle's ``Rating``: the first technique that solves it (``"naked"``,
``"hidden"`` or ``"search"``) and its ``guesses``.

``guesses`` counts the branch digits the solver tries while proving the solution unique, so it is 0
exactly when singles solve the puzzle (a branch on a two-candidate cell counts 2). For reference,
every "top95" puzzle needs at least 6 and the median needs about 85. Generated 4x4 puzzles never need
guessing and 16x16 searches take seconds in Python, so ``hard`` and ``extreme`` are for 9x9 only.

Generation: a random complete grid (box 1 a random permutation, then the solver with random digit
order), whose cells are removed in random order while the puzzle stays within the level's technique
(easy, medium: the singles still complete it, which also proves uniqueness; hard, extreme: no other
solution exists) until the drawn givens target is reached or no cell can go. A draw outside the
level (too many givens left, wrong rating) is redrawn, up to ``MAX_ATTEMPTS`` times. A ``givens`` range
whose upper end lies below the fewest givens digging reaches (``FEWEST_DUG``) is refused on construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple

import numpy as np

from hrm_envs.core import choice, size_range
from hrm_envs.sudoku.solver import find_conflict, geometry, has_other_solution, singles_decide, solve, solve_by_singles

SYMBOLS = "123456789ABCDEFG"
BLANKS = ".0"
LEVELS = ("easy", "medium", "hard", "extreme")
EXTREME_GUESSES = 20
MAX_ATTEMPTS = 1000
#: Default givens range per box and level.
GIVENS: dict[int, dict[str, tuple[int, int]]] = {
    2: {"easy": (8, 10), "medium": (4, 7)},
    3: {"easy": (36, 45), "medium": (27, 35), "hard": (17, 30), "extreme": (17, 30)},
    4: {"easy": (131, 160), "medium": (96, 130)},
}
#: Fewest givens of a unique puzzle: 4 (4x4) and 17 (9x9) are proven minima; 55 is the fewest known for 16x16.
MIN_GIVENS = {2: 4, 3: 17, 4: 55}
#: Fewest givens the digging reached per box and level (hard and extreme dig alike) in 300 (4x4), 2000 (9x9
#: easy, medium), 1000 (9x9 hard) and 40 (16x16) seeded digs; the median is 2-5 more. Digging stops where no
#: cell can go, so a givens range below this is out of reach: refused at once instead of failing after
#: ``MAX_ATTEMPTS`` digs (minutes for 16x16).
FEWEST_DUG: dict[int, dict[str, int]] = {
    2: {"easy": 4, "medium": 4},
    3: {"easy": 23, "medium": 21, "hard": 21, "extreme": 21},
    4: {"easy": 93, "medium": 89},
}


HARD_LISTS = ("top95",)


def hard_puzzles(name: str = "top95") -> list[str]:
    """A stored public list of hard 9x9 puzzles in text form (``"top95"``: magictour's 95, many with 17 givens)."""
    choice(name, "name", HARD_LISTS)
    text = resources.files("hrm_envs.sudoku").joinpath("puzzles", f"{name}.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


class Rating(NamedTuple):
    """What solving a puzzle takes: the technique (``"naked"``, ``"hidden"`` or ``"search"``) and guesses."""

    technique: str
    guesses: int


def rate(grid: Any, box: int) -> Rating:
    """Rate a unique puzzle (flat or 2-D digits, 0 = blank); see the module docstring."""
    flat = [int(v) for v in np.asarray(grid).ravel()]
    if solve_by_singles(flat, box, hidden=False) is not None:
        return Rating("naked", 0)
    if solve_by_singles(flat, box, hidden=True) is not None:
        return Rating("hidden", 0)
    return Rating("search", solve(flat, box, 2).guesses)


def _cell_symbols(n: int) -> dict[str, int]:
    table = {blank: 0 for blank in BLANKS}
    for d, symbol in enumerate(SYMBOLS[:n], start=1):
        table[symbol] = table[symbol.lower()] = d
    return table


@dataclass(frozen=True, eq=False)
class SudokuPuzzle:
    """A unique-solution puzzle: ``givens`` and ``solution`` are ``(n, n)`` int8 grids, 0 = blank."""

    box: int
    givens: np.ndarray
    solution: np.ndarray

    @property
    def n(self) -> int:
        return self.box * self.box

    @property
    def num_givens(self) -> int:
        return int(np.count_nonzero(self.givens))

    def string(self) -> str:
        """The one-line text form, ``'.'`` for blanks."""
        return "".join("." if d == 0 else SYMBOLS[d - 1] for d in self.givens.ravel().tolist())

    def rating(self) -> Rating:
        return rate(self.givens, self.box)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SudokuPuzzle) and self.box == other.box and np.array_equal(self.givens, other.givens)

    def __hash__(self) -> int:
        return hash((self.box, self.givens.tobytes()))

    @classmethod
    def parse(cls, value: Any, box: int) -> "SudokuPuzzle":
        """Accept a ``SudokuPuzzle``, a text form or an ``(n, n)`` / flat ``n * n`` int array (0 = blank).

        ``ValueError`` for a wrong size, bad characters or values, contradictory givens, and puzzles
        with no or several solutions.
        """
        g = geometry(box)
        n, cells = g.n, g.cells
        if isinstance(value, SudokuPuzzle):
            if value.box != g.box:
                raise ValueError(f"puzzle is for box={value.box}, the env has box={g.box}")
            flat = value.givens.ravel().tolist()
        elif isinstance(value, str):
            text = "".join(value.split())
            if len(text) != cells:
                raise ValueError(f"puzzle string must have {cells} cells for box={g.box} ({n}x{n}), got {len(text)}")
            table = _cell_symbols(n)
            bad = sorted(set(text) - set(table))
            if bad:
                raise ValueError(
                    f"puzzle characters must be '.' or '0' (blank) or digits {SYMBOLS[:n]!r} for box={g.box}; got {bad}"
                )
            flat = [table[ch] for ch in text]
        elif isinstance(value, (list, tuple, np.ndarray)):
            array = np.asarray(value)
            if array.dtype.kind not in "iu" or array.shape not in ((n, n), (cells,)):
                raise ValueError(
                    f"puzzle array must hold ints with shape ({n}, {n}) or ({cells},) for box={g.box}, "
                    f"got dtype {array.dtype} and shape {array.shape}"
                )
            if array.min() < 0 or array.max() > n:
                raise ValueError(f"puzzle array values must lie in [0, {n}] (0 = blank), got {array.min()}..{array.max()}")
            flat = array.ravel().tolist()
        else:
            raise ValueError(
                "options['puzzle'] must be a SudokuPuzzle, a string (e.g. 81 characters, '.' or '0' blank) "
                f"or an (n, n) int array; got {value!r}"
            )
        conflict = find_conflict(flat, g.box)
        if conflict:
            raise ValueError(f"puzzle has contradictory givens: {conflict}")
        solutions = solve(flat, g.box, 2).solutions
        if not solutions:
            raise ValueError("puzzle has no solution")
        if len(solutions) > 1:
            raise ValueError("puzzle has more than one solution; a Sudoku must have exactly one")
        return cls(g.box, _grid(flat, n), _grid(solutions[0], n))


def _grid(flat: list[int], n: int) -> np.ndarray:
    return np.array(flat, dtype=np.int8).reshape(n, n)


def random_grid(box: int, rng: np.random.Generator) -> list[int]:
    """A random complete grid, flat: box 1 is a random permutation, the rest the solver's random search."""
    g = geometry(box)
    grid = [0] * g.cells
    for cell, digit in zip(g.units[2 * g.n], rng.permutation(g.n) + 1):
        grid[cell] = int(digit)
    return solve(grid, box, 1, rng).solutions[0]


class SudokuGenerator:
    """Seeded unique puzzles of one ``box`` and difficulty level; see the module docstring.

    ``givens`` (int or inclusive range) overrides the level's default givens range.
    """

    def __init__(self, box: int = 3, difficulty: str = "medium", givens: int | tuple[int, int] | None = None):
        g = geometry(box)
        self.box = g.box
        self.difficulty = choice(difficulty, "difficulty", LEVELS)
        allowed = GIVENS[self.box]
        if self.difficulty not in allowed:
            raise ValueError(
                f"difficulty {difficulty!r} is not available for box={self.box}: choose one of {tuple(allowed)} "
                "(hard and extreme need search, which only 9x9 puzzles offer at a usable speed)"
            )
        low, high = MIN_GIVENS[self.box], g.cells - 1
        self.givens = allowed[self.difficulty] if givens is None else size_range(givens, "givens", low, high)
        fewest = FEWEST_DUG[self.box][self.difficulty]
        if self.givens[1] < fewest:
            raise ValueError(
                f"givens {givens!r} is out of reach for {self.difficulty} box={self.box} puzzles: the generator removes "
                f"givens only while the level's technique still solves the puzzle and stops at about {fewest} or more; "
                f"use givens with an upper end >= {fewest}"
            )

    def __call__(self, rng: np.random.Generator) -> SudokuPuzzle:
        lo, hi = self.givens
        searching = self.difficulty in ("hard", "extreme")
        for _ in range(MAX_ATTEMPTS):
            solution = random_grid(self.box, rng)
            target = lo if searching else int(rng.integers(lo, hi + 1))
            puzzle = self._dig(solution, rng, target)
            count = sum(1 for d in puzzle if d)
            if count > hi:
                continue
            if searching:
                guesses = solve(puzzle, self.box, 2).guesses
                if guesses == 0 or (guesses >= EXTREME_GUESSES) != (self.difficulty == "extreme"):
                    continue
            n = self.box * self.box
            return SudokuPuzzle(self.box, _grid(puzzle, n), _grid(solution, n))
        raise ValueError(
            f"no {self.difficulty} box={self.box} puzzle with givens in {self.givens} in {MAX_ATTEMPTS} attempts; "
            "widen the givens range"
        )

    def _dig(self, solution: list[int], rng: np.random.Generator, target: int) -> list[int]:
        """Remove givens in random order while the level's technique still solves the puzzle."""
        puzzle = list(solution)
        count = len(puzzle)
        for cell in rng.permutation(count).tolist():
            if count <= target:
                break
            digit = puzzle[cell]
            puzzle[cell] = 0
            if self.difficulty in ("easy", "medium"):
                keep = not singles_decide(puzzle, self.box, cell, hidden=self.difficulty == "medium")
            else:
                keep = has_other_solution(puzzle, self.box, cell, digit)
            if keep:
                puzzle[cell] = digit
            else:
                count -= 1
        return puzzle

