"""Exact maze oracle: one breadth-first distance field per (maze, goal), then O(1) labels.

Every step costs 1, so ``cost_to_go`` is the BFS distance (in moves) from the position to the goal,
and a move is optimal iff it enters a floor cell one move closer; ties give several optimal actions.
The first label of a maze runs the BFS over the whole grid and stores, per cell, the distance and a
4-bit mask of optimal actions; entries are cached (LRU, ``cache_size`` mazes) under the bytes of
``walls`` and ``goal``, so each later label is one hash of the grid plus two list lookups.
``act`` is the lowest optimal action id (order up, right, down, left). At the goal (the last
observation of an episode) ``cost_to_go`` is 0 and there is no optimal action; cells cut off from the
goal (only in hand-made observations: every reachable cell connects) get ``inf`` and none either.
There ``act`` returns 0 (any action: vector envs autoreset after it), ``solve`` returns ``[]`` at the
goal and raises ``ValueError`` when cut off.
"""

from __future__ import annotations

import math

import numpy as np

from hrm_envs.maze.env import mask_bits, move_masks, parse_observation
from hrm_envs.core import MOVES
from hrm_envs.maze.generator import bfs_distances
from oracles.base import Obs
from oracles.field import LOWEST_MOVE, FieldOracle, move_labels


class _Solved:
    """One maze solved towards its goal: distance, optimal-action bits and legal-move bits per cell."""

    def __init__(self, obs: Obs):
        floor, _, self.goal = parse_observation(obs)
        self.height, self.width = floor.shape
        dist = bfs_distances(floor, self.goal)
        ring = np.full((self.height + 2, self.width + 2), -1, dtype=np.int64)  # off-grid, like walls: -1
        ring[1:-1, 1:-1] = dist
        bits = np.zeros_like(dist)
        for a, (dr, dc) in enumerate(MOVES):
            nxt = ring[1 + dr : self.height + 1 + dr, 1 + dc : self.width + 1 + dc]
            bits |= np.where((dist > 0) & (nxt == dist - 1), 1 << a, 0)
        self.move_labels = move_labels(bits)
        self.move_costs = np.where(dist >= 0, dist, np.inf).astype(np.float32)
        self.dist: list[float] = np.where(dist >= 0, dist, np.inf).ravel().tolist()
        self.bits: list[int] = bits.ravel().tolist()
        self.floor: list[bool] = floor.ravel().tolist()
        masks = move_masks(floor)
        self.masks = masks.reshape(-1, 4)
        self.legal: list[int] = mask_bits(masks).ravel().tolist()


class MazeOracle(FieldOracle):
    """Optimal maze labels from any observation; token labels over ``walls``; see the module docstring."""

    grid_key = "walls"

    def _key(self, obs: Obs) -> bytes:
        try:
            return np.ascontiguousarray(obs["walls"]).tobytes() + np.asarray(obs["goal"], np.int64).tobytes()
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"obs must be a Maze observation dict with walls, position and goal: {error!r}") from None

    def _solve_field(self, obs: Obs) -> _Solved:
        return _Solved(obs)

    def _cell(self, solved: _Solved, obs: Obs) -> int:
        try:
            r, c = (int(v) for v in obs["position"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"obs['position'] must be a (row, col) pair: {error!r}") from None
        if not (0 <= r < solved.height and 0 <= c < solved.width and solved.floor[r * solved.width + c]):
            raise ValueError(f"obs['position'] {(r, c)} must be a floor cell of the {solved.height}x{solved.width} maze")
        return r * solved.width + c

    def solve(self, obs: Obs) -> list[int]:
        """The canonical optimal move sequence (``act`` at every step), walked on the distance field."""
        solved, p = self._solved(obs)
        if math.isinf(solved.dist[p]):
            raise ValueError(f"no route from {divmod(p, solved.width)} to the goal {solved.goal}")
        steps = [-solved.width, 1, solved.width, -1]
        actions = []
        while solved.bits[p]:
            action = LOWEST_MOVE[solved.bits[p]]
            actions.append(action)
            p += steps[action]
        return actions

    def successor(self, obs: Obs, action: int) -> tuple[Obs, bool]:
        solved, p = self._solved(obs)
        out = {key: np.array(value, copy=True) for key, value in obs.items()}
        if solved.legal[p] >> action & 1:
            p += (-solved.width, 1, solved.width, -1)[action]
            out["position"] = np.array(divmod(p, solved.width), dtype=np.int16)
            out["action_mask"] = solved.masks[p].copy()
        return out, divmod(p, solved.width) == solved.goal
