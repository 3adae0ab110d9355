"""Sudoku: fill the grid so that every row, column and box holds each digit once.

| | |
|---|---|
| Action space | ``Discrete(n * n * (n + 1))`` with ``n = box ** 2``: ``a = cell * (n + 1) + k`` (``cell = row * n + col``); ``k < n`` writes digit ``k + 1`` in the cell, ``k = n`` erases it |
| Observation | ``Dict`` of int8 arrays: ``grid`` ``Box(0, n, (n, n))`` the digits now in the grid, 0 = empty; ``givens`` ``Box(0, 1, (n, n))`` 1 where the puzzle gives the digit; ``action_mask`` ``Box(0, 1, (n * n * (n + 1),))``, 1 = legal |
| Dynamics | writing is legal in an empty cell when the digit is not yet in the cell's row, column or box (a rule-consistent but wrong digit is allowed: that is the mistake a policy makes); erasing is legal in a filled cell that is not a given. Givens never change. A masked action leaves the state unchanged and sets ``info["illegal_move"]`` |
| Cost | ``info["cost"]`` = 1 per step, legal or not |
| Reward | ``success_reward`` (1.0) on completing the grid, else ``-step_penalty * cost`` (-0.01) |
| Termination | the grid is full. Every digit was rule-consistent when written, so a full grid is valid, and since the puzzle's solution is unique it is the solution: ``info["is_success"] = True`` |
| Truncation | after ``max_steps`` steps (default ``2 * n * n``: 162 for 9x9); ``info["is_success"] = False`` |
| Arguments | ``box`` 2 (4x4), 3 (9x9, default) or 4 (16x16), fixed per env (shapes depend on it); ``difficulty`` ``"easy"``, ``"medium"`` (default), ``"hard"`` or ``"extreme"`` (the last two for box 3 only), see ``hrm_envs.sudoku.generator``; ``givens`` int or inclusive ``(lo, hi)`` range overriding the level's number of givens; ``max_steps``; ``step_penalty``; ``success_reward``; ``render_mode`` ``"ansi"`` or ``"rgb_array"`` |
| Puzzle option | ``reset(options={"puzzle": p})``: the common text form (``"4.....8.5.3..."``: ``n ** 4`` characters row by row, ``'.'`` or ``'0'`` blank, ``1``-``9`` then ``A``-``G``; whitespace ignored), an ``(n, n)`` or flat int array (0 = blank), or a ``SudokuPuzzle``. It must have exactly one solution. ``env.puzzle`` is the current ``SudokuPuzzle`` (givens and solution) |

No state is a dead end: any wrong digit can be erased. The oracle (``oracles.sudoku.SudokuOracle``)
labels every state; the optimal cost from a state with ``W`` wrong digits and ``E`` empty cells is
``2 * W + E`` (erase and rewrite each wrong digit, fill each empty cell).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from hrm_envs.core import PuzzleEnv
from hrm_envs.sudoku.generator import SudokuGenerator, SudokuPuzzle
from hrm_envs.sudoku.solver import BOXES, geometry, solve
from hrm_envs.sudoku.viewer import render_ansi, render_rgb


def unit_digits(grid: np.ndarray, box: int) -> np.ndarray:
    """Bitmasks of the digits in each row, column and box of flat grids: int32 ``batch + (3, n)``."""
    g = geometry(box)
    grid = np.asarray(grid)
    batch = grid.shape[:-1]
    bits = g.bits[grid].reshape(batch + (g.n, g.n))  # digit d -> bit d - 1, empty -> 0
    rows = np.bitwise_or.reduce(bits, axis=-1)
    cols = np.bitwise_or.reduce(bits, axis=-2)
    boxes = np.bitwise_or.reduce(bits.reshape(batch + (box, box, box, box)), axis=(-3, -1)).reshape(batch + (g.n,))
    return np.stack([rows, cols, boxes], axis=-2)


def peer_digits(grid: np.ndarray, box: int) -> np.ndarray:
    """Bitmask of the digits in each cell's row, column and box (its own included): int32 like ``grid``."""
    g = geometry(box)
    units = unit_digits(grid, box)
    return units[..., 0, g.row] | units[..., 1, g.col] | units[..., 2, g.box_of]


def action_masks(grid: np.ndarray, given: np.ndarray, box: int) -> np.ndarray:
    """Legal-action masks, int8 ``batch + (n * n * (n + 1),)``, of flat grids ``batch + (n * n,)``.

    ``grid`` holds digits (0 = empty), ``given`` is 1 on givens; see the env docstring for the rules.
    """
    g = geometry(box)
    n = g.n
    grid = np.asarray(grid)
    batch = grid.shape[:-1]
    used = peer_digits(grid, box)
    empty = grid == 0
    mask = np.empty(batch + (g.cells, n + 1), dtype=np.int8)
    mask[..., :n] = ((used[..., None] & g.bits[1:]) == 0) & empty[..., None]
    mask[..., n] = ~empty & ~np.asarray(given, dtype=bool)
    return mask.reshape(batch + (g.cells * (n + 1),))


def parse_observation(obs: dict[str, np.ndarray]) -> tuple[int, np.ndarray, np.ndarray]:
    """``(box, grid, given)`` of an observation or a batch (leading dimensions) of them.

    ``grid`` (int8) and ``given`` (bool) are flat copies, ``batch + (n * n,)``; ``ValueError`` if ``obs``
    is not a Sudoku observation.
    """
    try:
        grid = np.asarray(obs["grid"])
        given = np.asarray(obs["givens"])
    except (KeyError, TypeError, IndexError) as error:
        raise ValueError(f"obs must be a Sudoku observation dict with grid and givens: {error!r}") from None
    n = grid.shape[-1] if grid.ndim >= 2 else 0
    box = int(round(n**0.5))
    if grid.shape[-2:] != (n, n) or box not in BOXES or box * box != n or given.shape != grid.shape:
        raise ValueError(
            f"obs is not a Sudoku observation: grid and givens must be batch + (n, n) with n in (4, 9, 16), "
            f"got {grid.shape} and {given.shape}"
        )
    if grid.dtype.kind not in "iu" or grid.min(initial=0) < 0 or grid.max(initial=0) > n:
        raise ValueError(f"obs is not a Sudoku observation: grid values must lie in [0, {n}]")
    if given.dtype.kind not in "biu" or given.min(initial=0) < 0 or given.max(initial=0) > 1:
        raise ValueError("obs is not a Sudoku observation: givens must be 0 or 1")
    batch = grid.shape[:-2]
    grid = grid.astype(np.int8).reshape(batch + (n * n,))
    given = given.astype(bool).reshape(batch + (n * n,))
    if (given & (grid == 0)).any():
        raise ValueError("obs is not a Sudoku observation: a cell marked in givens is empty")
    return box, grid, given


class SudokuEnv(PuzzleEnv):
    __doc__ = __doc__

    def __init__(
        self,
        box: int = 3,
        difficulty: str = "medium",
        givens: int | tuple[int, int] | None = None,
        max_steps: int | None = None,
        step_penalty: float = 0.01,
        success_reward: float = 1.0,
        render_mode: str | None = None,
    ):
        super().__init__(
            render_mode=render_mode, step_penalty=step_penalty, success_reward=success_reward, max_steps=max_steps
        )
        self.generator = SudokuGenerator(box, difficulty, givens)
        self.box = self.generator.box
        self.n = n = self.box**2
        self._num_actions = n * n * (n + 1)
        self.action_space = spaces.Discrete(self._num_actions)
        self.observation_space = spaces.Dict(
            {
                "grid": spaces.Box(0, n, (n, n), dtype=np.int8),
                "givens": spaces.Box(0, 1, (n, n), dtype=np.int8),
                "action_mask": spaces.Box(0, 1, (self._num_actions,), dtype=np.int8),
            }
        )
        self._puzzle: SudokuPuzzle | None = None
        self._grid = np.zeros(n * n, dtype=np.int8)
        self._given = np.zeros(n * n, dtype=bool)
        self._givens_obs = np.zeros((n, n), dtype=np.int8)
        self._masks = np.zeros((n * n, n + 1), dtype=np.int8)  # (cell, write digit 1..n or erase)
        self._used = np.zeros((3, n), dtype=np.int32)  # digit bitmasks of each row, column and box
        g = geometry(self.box)
        self._units = np.stack([g.row, g.col, g.box_of], axis=1).tolist()  # per cell: its row, column, box
        self._unit_index = np.stack([g.row, g.col + n, g.box_of + 2 * n])  # into self._used.ravel()
        self._peers = np.array(g.peers, dtype=np.int64)
        self._digit_bits = g.bits[1:]

    @property
    def puzzle(self) -> SudokuPuzzle:
        """The current puzzle: givens and its unique solution."""
        self.require_reset()
        return self._puzzle

    def _load(self, options: dict[str, Any]) -> int:
        if "puzzle" in options:
            puzzle = SudokuPuzzle.parse(options["puzzle"], self.box)
        else:
            puzzle = self.generator(self.np_random)
        self._puzzle = puzzle
        self._grid = puzzle.givens.ravel().copy()
        self._given = self._grid != 0
        self._givens_obs = self._given.astype(np.int8).reshape(self.n, self.n)
        self._masks = action_masks(self._grid, self._given, self.box).reshape(self.n * self.n, self.n + 1)
        self._used = unit_digits(self._grid, self.box)
        return self.max_steps_arg or 2 * self.n * self.n

    def _observation(self) -> dict[str, np.ndarray]:
        return {
            "grid": self._grid.reshape(self.n, self.n).copy(),
            "givens": self._givens_obs.copy(),
            "action_mask": self._masks.reshape(-1).copy(),
        }

    def _mask(self) -> np.ndarray:
        return self._masks.reshape(-1).copy()

    def _transition(self, action: int) -> tuple[float, bool, bool, dict[str, Any]]:
        cell, k = divmod(action, self.n + 1)
        if not self._masks[cell, k]:
            return 1.0, False, False, {"illegal_move": True}
        if k == self.n:
            self._erase(cell)
        else:
            self._write(cell, k + 1)
        done = bool(self._grid.all())
        return 1.0, done, done, {"illegal_move": False}

    # Incremental mask updates (the same rules as ``action_masks``, touching only the cell and its peers).
    def _write(self, cell: int, digit: int) -> None:
        self._grid[cell] = digit
        bit = 1 << (digit - 1)
        r, c, b = self._units[cell]
        self._used[0, r] |= bit
        self._used[1, c] |= bit
        self._used[2, b] |= bit
        self._masks[cell] = 0
        self._masks[cell, self.n] = 1
        self._masks[self._peers[cell], digit - 1] = 0

    def _erase(self, cell: int) -> None:
        bit = 1 << (int(self._grid[cell]) - 1)
        self._grid[cell] = 0
        r, c, b = self._units[cell]
        used = self._used
        used[0, r] &= ~bit
        used[1, c] &= ~bit
        used[2, b] &= ~bit
        taken = used[0, r] | used[1, c] | used[2, b]
        self._masks[cell, : self.n] = (self._digit_bits & taken) == 0
        self._masks[cell, self.n] = 0
        peers = self._peers[cell]
        free = (np.bitwise_or.reduce(used.ravel()[self._unit_index[:, peers]], axis=0) & bit) == 0
        self._masks[peers, bit.bit_length() - 1] = free & (self._grid[peers] == 0)

    def _render_ansi(self) -> str:
        return render_ansi(self._grid, self._given, self.box, self._steps)

    def _render_rgb(self) -> np.ndarray:
        return render_rgb(self._grid, self._given, self.box)


def solution_keys(obs: dict[str, np.ndarray]) -> list[bytes | None]:
    """For a batch of observations, the solution grid of each one's puzzle (its givens), as bytes; None where the
    givens have no solution. The registry's ``answer_keys``: a held-out test keeps puzzles whose solution grid
    never occurs in training, whatever their givens. Each distinct puzzle is solved once."""
    box, grid, given = parse_observation(obs)
    boards = (np.where(given != 0, grid, 0).reshape(-1, box**4)).astype(np.int8)
    unique, inverse = np.unique(boards, axis=0, return_inverse=True)
    keys: list[bytes | None] = []
    for board in unique:
        found = solve(board.tolist(), box, limit=1).solutions
        keys.append(np.asarray(found[0], dtype=np.int8).tobytes() if found else None)
    return [keys[i] for i in np.asarray(inverse).reshape(-1)]
