"""Exact city-routing oracle: Dijkstra from the destination on the reversed move graph, per (map, vehicle).

The travel time of a move is the (integer) time of the cell entered, so ``cost_to_go(p)`` is the
minimal sum of step costs to the destination and a legal move ``p -> q`` is optimal iff
``cost(q) + cost_to_go(q) == cost_to_go(p)``; integer costs make ties exact. One Dijkstra per
(map, vehicle, destination) fills a distance field and a bitmask of optimal actions per cell, both
cached (LRU, ``cache_size`` entries), so each later label is a hash of the map plus a lookup.
``act`` is the lowest optimal action id (order up, right, down, left). At the destination (the last
observation of an episode) ``cost_to_go`` is 0 and there is no optimal action; cells cut off from the
destination get ``inf`` and no optimal action. There ``act`` returns 0 (any action: vector envs
autoreset after it), ``solve`` returns ``[]`` at the destination and raises ``ValueError`` when cut off.
"""

from __future__ import annotations

import math

import numpy as np

from hrm_envs.city.env import parse_observation
from hrm_envs.city.generator import CityPuzzle
from oracles.base import Obs
from oracles.field import LOWEST_MOVE, FieldOracle, move_labels


class _Solved:
    """A solved (map, vehicle, destination): distance field and optimal-action bits per padded cell."""

    def __init__(self, puzzle: CityPuzzle):
        self.net = net = puzzle.network()
        self.dest = net.flat(puzzle.destination)
        dist = net.distances_to(self.dest)
        bits = np.zeros(len(dist), dtype=np.int64)
        cost = net.cost.astype(np.float64)
        for a, step in enumerate(net.step):
            nxt = np.roll(np.arange(len(dist)), -step)  # index of the neighbour in direction a
            legal = net.moves[:, a].astype(bool) & np.isfinite(dist)
            bits |= np.where(legal & (cost[nxt] + dist[nxt] == dist), 1 << a, 0)
        bits[self.dest] = 0
        self.move_labels = move_labels(bits.reshape(net.width, net.width)[1:-1, 1:-1])
        self.move_costs = dist.reshape(net.width, net.width)[1:-1, 1:-1].astype(np.float32)
        self.dist: list[float] = dist.tolist()
        self.bits: list[int] = bits.tolist()


class CityRoutingOracle(FieldOracle):
    """Optimal city-routing labels from any observation; token labels over ``street``; see the module docstring."""

    grid_key = "street"

    def _key(self, obs: Obs) -> bytes:
        try:
            return b"".join(
                np.ascontiguousarray(obs[k]).tobytes() for k in ("street", "traffic", "oneway", "vehicle", "destination")
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"obs must be a CityRouting observation dict: {error!r}") from None

    def _solve_field(self, obs: Obs) -> _Solved:
        return _Solved(parse_observation(obs))

    def _cell(self, solved: _Solved, obs: Obs) -> int:
        try:
            r, c = int(obs["position"][0]), int(obs["position"][1])
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise ValueError(f"obs['position'] must be a (row, col) pair: {error!r}") from None
        n = solved.net.n
        if not (0 <= r < n and 0 <= c < n):
            raise ValueError(f"obs['position'] {(r, c)} lies outside the {n}x{n} city")
        return (r + 1) * solved.net.width + c + 1

    def solve(self, obs: Obs) -> list[int]:
        solved, p = self._solved(obs)
        if p == solved.dest:
            return []
        if math.isinf(solved.dist[p]):
            raise ValueError(f"no route from {solved.net.cell(p)} to the destination")
        return super().solve(obs)

    def successor(self, obs: Obs, action: int) -> tuple[Obs, bool]:
        solved, p = self._solved(obs)
        net = solved.net
        out = {key: np.array(value, copy=True) for key, value in obs.items()}
        if net.move_bits[p] >> action & 1:
            p += net.step[action]
            out["position"] = np.array(net.cell(p), dtype=np.int16)
            out["action_mask"] = net.moves[p].copy()
        return out, p == solved.dest

    def route(self, obs: Obs) -> list[tuple[int, int]]:
        """The canonical optimal route (``act`` at every step) as cells, position and destination included."""
        solved, p = self._solved(obs)
        if math.isinf(solved.dist[p]):
            raise ValueError(f"no route from {solved.net.cell(p)} to the destination")
        cells = [solved.net.cell(p)]
        while p != solved.dest:
            p += solved.net.step[LOWEST_MOVE[solved.bits[p]]]
            cells.append(solved.net.cell(p))
        return cells
