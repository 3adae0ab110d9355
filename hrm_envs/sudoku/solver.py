"""Exact Sudoku solver: bitmask constraint propagation with MRV search, counting solutions up to a limit.

A grid is a flat row-major sequence of ``n * n`` ints (``n = box ** 2``), 0 = empty, 1..n = digits.
Each cell keeps a bitmask of candidate digits (bit ``d - 1`` for digit ``d``). Propagation repeats
two rules until neither applies:

- naked single: a cell with one candidate holds that digit, which is removed from its peers (the
  other cells of its row, column and box);
- hidden single: a digit with one possible cell in a row, column or box goes there.

A cell left without candidates, or a unit missing a digit, is a contradiction. If cells remain
open, the search branches on one with the fewest candidates (MRV, lowest index on ties), trying its
digits in increasing order (or in a random order when an ``rng`` is given, to draw random grids).
``guesses``, the number of branch digits tried while looking for ``limit`` solutions, is the
search effort the generator rates difficulty by; it is 0 exactly when singles solve the puzzle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import numpy as np

BOXES = (2, 3, 4)


@dataclass(frozen=True)
class Geometry:
    """Cell indexing of an ``n x n`` grid with ``box x box`` boxes (``n = box ** 2``)."""

    box: int
    n: int
    cells: int
    units: tuple[tuple[int, ...], ...]  # rows, then columns, then boxes
    peers: tuple[tuple[int, ...], ...]  # per cell: the other cells of its row, column and box
    cell_units: tuple[tuple[int, int, int], ...]  # per cell: its row, column and box numbers
    row: np.ndarray  # per cell
    col: np.ndarray
    box_of: np.ndarray
    full: int  # bitmask of all n digits
    bits: np.ndarray  # int32 (n + 1,): digit d -> 1 << (d - 1), 0 (empty) -> 0
    free_count: np.ndarray  # int8 (2 ** n,): digits NOT in a bitmask of used digits


@lru_cache(maxsize=None)
def geometry(box: int) -> Geometry:
    """The (cached) geometry of a ``box`` in ``BOXES``."""
    if isinstance(box, bool) or not isinstance(box, (int, np.integer)) or box not in BOXES:
        raise ValueError(f"box must be one of {BOXES} (4x4, 9x9 or 16x16 grids), got {box!r}")
    box = int(box)
    n = box * box
    index = np.arange(n * n)
    row, col = index // n, index % n
    box_of = (row // box) * box + col // box
    units = tuple(
        tuple(int(i) for i in np.flatnonzero(key == u)) for key in (row, col, box_of) for u in range(n)
    )
    peers = tuple(
        tuple(int(j) for j in np.flatnonzero(((row == row[i]) | (col == col[i]) | (box_of == box_of[i])) & (index != i)))
        for i in range(n * n)
    )
    cell_units = tuple((int(r), int(c), int(b)) for r, c, b in zip(row, col, box_of))
    bits = np.concatenate([[0], 1 << np.arange(n)]).astype(np.int32)
    masks = np.arange(1 << n)
    free_count = (n - sum((masks >> d) & 1 for d in range(n))).astype(np.int8)
    return Geometry(box, n, n * n, units, peers, cell_units, row, col, box_of, (1 << n) - 1, bits, free_count)


@dataclass
class SolveResult:
    """Solutions found (at most ``limit``, flat digit lists) and the search effort spent."""

    solutions: list[list[int]] = field(default_factory=list)
    guesses: int = 0


def _propagate(cand: list[int], queue: list[int], g: Geometry, hidden: bool, target: int = -1) -> bool:
    """Apply naked (and, if ``hidden``, hidden) singles in place; False on a contradiction.

    ``queue`` holds cells whose single candidate has not been removed from their peers yet. Stops
    early (True) once cell ``target`` is decided.
    """
    peers, units, full = g.peers, g.units, g.full
    while True:
        while queue:
            i = queue.pop()
            bit = cand[i]
            for p in peers[i]:
                c = cand[p]
                if c & bit:
                    c ^= bit
                    if not c:
                        return False
                    cand[p] = c
                    if not c & (c - 1):
                        if p == target:
                            return True
                        queue.append(p)
        if not hidden:
            return True
        for unit in units:
            once = twice = 0
            for i in unit:
                c = cand[i]
                twice |= once & c
                once |= c
            if once != full:
                return False
            single = once & ~twice
            if single:
                for i in unit:
                    c = cand[i]
                    m = c & single
                    if m and c != m:
                        if m & (m - 1):
                            return False  # two digits that must both go in this one cell
                        cand[i] = m
                        if i == target:
                            return True
                        queue.append(i)
        if not queue:
            return True


def _start(grid: Sequence[int], g: Geometry) -> tuple[list[int], list[int]] | None:
    """Candidates of every cell from the givens, and the empty cells left with one; None on a contradiction."""
    seen = [0] * (3 * g.n)  # digit bitmasks of the rows, then columns, then boxes
    offsets = (0, g.n, 2 * g.n)
    for i, d in enumerate(grid):
        if d:
            bit = 1 << (int(d) - 1)
            for unit, offset in zip(g.cell_units[i], offsets):
                if seen[unit + offset] & bit:
                    return None  # a digit given twice in one unit
                seen[unit + offset] |= bit
    full, n2 = g.full, 2 * g.n
    cand, queue = [], []
    for i, d in enumerate(grid):
        if d:
            cand.append(1 << (int(d) - 1))
            continue
        r, c, b = g.cell_units[i]
        free = full & ~(seen[r] | seen[c + g.n] | seen[b + n2])
        if not free:
            return None
        cand.append(free)
        if not free & (free - 1):
            queue.append(i)
    return cand, queue


def _digits(cand: list[int]) -> list[int]:
    return [c.bit_length() for c in cand]


def _search(cand: list[int], g: Geometry, limit: int, hidden: bool, result: SolveResult, rng: np.random.Generator | None) -> None:
    best, fewest = -1, g.n + 1
    for i, c in enumerate(cand):
        if c & (c - 1):
            k = c.bit_count()
            if k < fewest:
                best, fewest = i, k
                if k == 2:
                    break
    if best < 0:
        result.solutions.append(_digits(cand))
        return
    c = cand[best]
    bits = []
    while c:
        bit = c & -c
        bits.append(bit)
        c ^= bit
    if rng is not None:
        bits = [bits[k] for k in rng.permutation(len(bits))]
    for bit in bits:
        result.guesses += 1
        child = cand[:]
        child[best] = bit
        if _propagate(child, [best], g, hidden):
            _search(child, g, limit, hidden, result, rng)
            if len(result.solutions) >= limit:
                return


def solve(grid: Sequence[int], box: int, limit: int = 2, rng: np.random.Generator | None = None) -> SolveResult:
    """Up to ``limit`` solutions of a flat grid (0 = empty) and the number of guesses spent.

    A digit given twice in a unit yields no solution; ``find_conflict`` says where.
    """
    g = geometry(box)
    if len(grid) != g.cells:
        raise ValueError(f"grid must have {g.cells} cells for box={box}, got {len(grid)}")
    result = SolveResult()
    start = _start(grid, g)
    if start is not None and _propagate(*start, g, True):
        _search(start[0], g, limit, True, result, rng)
    return result


def count_solutions(grid: Sequence[int], box: int, limit: int = 2) -> int:
    """Number of solutions, counted up to ``limit`` (2 tells unique from ambiguous)."""
    return len(solve(grid, box, limit).solutions)


def solve_by_singles(grid: Sequence[int], box: int, hidden: bool = True) -> list[int] | None:
    """The solution if naked singles (plus hidden singles if ``hidden``) alone complete the grid, else None.

    A grid that singles complete has exactly that one solution: every placement was forced.
    """
    g = geometry(box)
    start = _start(grid, g)
    if start is None or not _propagate(*start, g, hidden) or any(c & (c - 1) for c in start[0]):
        return None
    return _digits(start[0])


def singles_decide(grid: Sequence[int], box: int, cell: int, hidden: bool = True) -> bool:
    """Whether naked (and, if ``hidden``, hidden) singles fill the empty ``cell`` of ``grid``.

    If singles complete ``grid`` plus a digit at ``cell``, they complete ``grid`` alone iff they
    decide ``cell`` (everything else then follows as before), so the generator stops there.
    """
    g = geometry(box)
    start = _start(grid, g)
    if start is None:
        return False
    cand, queue = start
    decided = not cand[cell] & (cand[cell] - 1)
    return decided or (_propagate(cand, queue, g, hidden, cell) and not cand[cell] & (cand[cell] - 1))


def has_other_solution(grid: Sequence[int], box: int, cell: int, digit: int) -> bool:
    """Whether ``grid`` has a solution with ``cell`` not holding ``digit`` (``cell`` empty in ``grid``).

    Removing the given ``digit`` at ``cell`` from a unique puzzle keeps it unique iff this is False.
    """
    g = geometry(box)
    start = _start(grid, g)
    if start is None:
        return False
    cand, queue = start
    cand[cell] &= ~(1 << (digit - 1))
    if not cand[cell] & (cand[cell] - 1):
        queue.append(cell)
    if not cand[cell] or not _propagate(cand, queue, g, True):
        return False
    result = SolveResult()
    _search(cand, g, 1, True, result, None)
    return bool(result.solutions)


def find_conflict(grid: Sequence[int], box: int) -> str | None:
    """A description of the first digit repeated in a row, column or box of ``grid``, or None."""
    g = geometry(box)
    names = ("row", "column", "box")
    for u, unit in enumerate(g.units):
        seen: set[int] = set()
        for i in unit:
            d = int(grid[i])
            if d and d in seen:
                return f"digit {d} appears twice in {names[u // g.n]} {u % g.n + 1}"
            seen.add(d)
    return None
