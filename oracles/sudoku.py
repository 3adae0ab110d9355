"""Exact Sudoku oracle: the puzzle's unique solution (solved once, cached by givens), then counting.

The givens of an observation (``grid`` where ``givens`` is 1) determine the solution. With ``W``
wrong digits (entries that differ from the solution) and ``E`` empty cells, every wrong cell needs
an erase and a write and every empty cell a write, and erasing all wrong digits first then filling
in the solution never hits a masked action, so ``cost_to_go = 2 * W + E`` (every step costs 1).
An action is optimal iff it lowers that count by one:

- erasing a wrong digit (always legal);
- writing the solution digit in an empty cell, when legal: a wrong digit in the same row, column or
  box can block it, and then that write is not optimal (until the blocking digit is erased).

So while wrong digits remain, the unblocked right writes are optimal too (exhaustive search over the
env's transitions confirms it); erasing first is the canonical choice, not the only optimal one.

``act`` (canonical): erase the wrong digit with the lowest cell index; if there is none, write the
solution digit in the most constrained empty cell (fewest legal digits, lowest index on ties). On
the solved grid (the last observation) ``cost_to_go`` is 0, there is no optimal action and ``act``
returns 0 (vector envs autoreset after the step), ``solve`` returns ``[]``.

Token labels (``token_labels``): the solution's digit (``d - 1``, 0-based) of every cell the player fills,
blank or holding the player's own digit (right or wrong); -100 for givens, which are already right. The
solution spelled out per cell is the oracle's whole plan: writing any of these digits in a blank cell where
it is legal is an optimal action. ``token_label_classes = 16`` covers every supported size (box 2..4; an
``n x n`` grid uses classes ``0..n-1``).

Solutions are cached (LRU, ``cache_size`` puzzles) under the bytes of the givens, so labelling a
whole episode, or a batch from many envs, solves each puzzle once. ``label_batch`` is vectorised
with numpy over the batch (one dictionary lookup per row). A puzzle whose givens clash or have no
or several solutions raises ``ValueError``.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from hrm_envs.core import int_arg
from hrm_envs.sudoku.env import action_masks, parse_observation, peer_digits
from hrm_envs.sudoku.solver import find_conflict, geometry, solve
from oracles.base import Label, LabelBatch, Obs, Oracle


class SudokuOracle(Oracle):
    """Optimal Sudoku labels from any observation; ``token_labels`` gives every non-given cell its solution
    digit (16 classes: the largest supported grid's digits); see the module docstring."""

    token_label_classes = 16

    def __init__(self, cache_size: int = 10_000):
        self.cache_size = int_arg(cache_size, "cache_size", 1)
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()

    def _solution(self, box: int, givens: np.ndarray) -> np.ndarray:
        """The flat int8 solution of flat ``givens`` (0 = blank), cached."""
        key = bytes([box]) + givens.tobytes()
        solution = self._cache.get(key)
        if solution is not None:
            self._cache.move_to_end(key)
            return solution
        flat = givens.tolist()
        conflict = find_conflict(flat, box)
        if conflict:
            raise ValueError(f"obs has contradictory givens: {conflict}")
        solutions = solve(flat, box, 2).solutions
        if len(solutions) != 1:
            raise ValueError(f"obs givens have {'no' if not solutions else 'more than one'} solution; a Sudoku needs exactly one")
        solution = np.array(solutions[0], dtype=np.int8)
        self._cache[key] = solution
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return solution

    def solution(self, obs: Obs) -> np.ndarray:
        """The solution grid(s) of the observation's puzzle(s), int8 ``batch + (n, n)``."""
        box, grid, _, solution = self._solved(obs)
        return solution.astype(np.int8).reshape(grid.shape[:-1] + (box * box, box * box))

    def _solved(self, obs: Obs, batch_dims: int | None = None) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """``(box, grid, given, solution)``, flat int64 / bool ``batch + (n * n,)``; checks the batch dims if given."""
        box, grid, given = parse_observation(obs)
        if batch_dims is not None and grid.ndim != batch_dims + 1:
            expected = "one observation (n, n)" if batch_dims == 0 else "a batch (batch, n, n)"
            raise ValueError(f"obs['grid'] must be {expected}, got shape {np.shape(obs['grid'])}")
        clues = np.where(given, grid, 0).astype(np.int8)
        flat = clues.reshape(-1, clues.shape[-1])
        solution = np.array([self._solution(box, row) for row in flat], dtype=np.int64).reshape(clues.shape)
        return box, grid.astype(np.int64), given, solution

    @staticmethod
    def _labels(box: int, grid: np.ndarray, given: np.ndarray, solution: np.ndarray) -> LabelBatch:
        """Vectorised labels of ``(batch, n * n)`` grids; see the module docstring."""
        g = geometry(box)
        n = g.n
        size, cells = grid.shape
        used = peer_digits(grid, box)  # a digit is legal in an empty cell iff it is not in ``used``
        empty = grid == 0
        wrong = ~empty & (grid != solution)
        first = np.arange(cells) * (n + 1)  # each cell's first action
        writes = first + solution - 1  # writing the right digit
        optimal = np.zeros((size, cells * (n + 1)), dtype=bool)
        rows, targets = np.nonzero(empty & ((used & g.bits[solution]) == 0))
        optimal[rows, writes[rows, targets]] = True
        rows, targets = np.nonzero(wrong)
        optimal[rows, first[targets] + n] = True
        cost = 2.0 * wrong.sum(axis=1) + empty.sum(axis=1)
        freedom = np.where(empty, g.free_count[used], n + 1)
        target = freedom.argmin(axis=1)  # most constrained empty cell, lowest index on ties
        write = np.take_along_axis(writes, target[:, None], axis=1)[:, 0]
        erase = first[wrong.argmax(axis=1)] + n  # the wrong digit with the lowest index
        action = np.where(wrong.any(axis=1), erase, np.where(empty.any(axis=1), write, 0))
        return LabelBatch(optimal, action.astype(np.int64), cost)

    def label(self, obs: Obs) -> Label:
        box, grid, given, solution = self._solved(obs, 0)
        batch = self._labels(box, grid[None], given[None], solution[None])
        return Label(frozenset(np.flatnonzero(batch.optimal[0]).tolist()), int(batch.action[0]), float(batch.cost_to_go[0]))

    def label_batch(self, obs: Obs) -> LabelBatch:
        return self._labels(*self._solved(obs, 1))

    def token_labels(self, obs: Obs) -> np.ndarray:
        _, _, given, solution = self._solved(obs, 1)
        return np.where(given, -100, solution - 1)

    def cost_to_go(self, obs: Obs) -> float:
        _, grid, _, solution = self._solved(obs, 0)
        empty = grid == 0
        return float(2 * np.count_nonzero(~empty & (grid != solution)) + np.count_nonzero(empty))

    def optimal_actions(self, obs: Obs) -> frozenset[int]:
        return self.label(obs).optimal

    def act(self, obs: Obs) -> int:
        return self.label(obs).action

    def solve(self, obs: Obs) -> list[int]:
        """The canonical optimal sequence (``act`` at every step); ``[]`` on a solved grid."""
        return [] if self.cost_to_go(obs) == 0 else super().solve(obs)

    def successor(self, obs: Obs, action: int) -> tuple[Obs, bool]:
        box, grid, given = parse_observation(obs)
        if grid.ndim != 1:
            raise ValueError(f"obs['grid'] must be one observation (n, n), got shape {np.shape(obs['grid'])}")
        n = box * box
        mask = action_masks(grid, given, box)
        if isinstance(action, bool) or not (isinstance(action, (int, np.integer)) and 0 <= action < mask.size):
            raise ValueError(f"action must be an int in [0, {mask.size}), got {action!r}")
        if mask[action]:
            cell, k = divmod(int(action), n + 1)
            grid[cell] = 0 if k == n else k + 1
            mask = action_masks(grid, given, box)
        out = {
            "grid": grid.reshape(n, n),
            "givens": given.astype(np.int8).reshape(n, n),
            "action_mask": mask,
        }
        return out, bool(grid.all())
