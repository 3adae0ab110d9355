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
from collections import OrderedDict

import numpy as np

from hrm_envs.city.env import parse_observation
from hrm_envs.city.generator import CityPuzzle, RoadNetwork
from oracles.base import Obs, Oracle

_SETS = tuple(frozenset(a for a in range(4) if bits >> a & 1) for bits in range(16))


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
        self.dist: list[float] = dist.tolist()
        self.bits: list[int] = bits.tolist()


class CityRoutingOracle(Oracle):
    """Optimal city-routing labels from any observation; see the module docstring."""

    def __init__(self, cache_size: int = 256):
        self.cache_size = cache_size
        self._cache: OrderedDict[bytes, _Solved] = OrderedDict()

    def _solved(self, obs: Obs) -> tuple[_Solved, int]:
        try:
            key = b"".join(
                np.ascontiguousarray(obs[k]).tobytes() for k in ("street", "traffic", "oneway", "vehicle", "destination")
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"obs must be a CityRouting observation dict: {error!r}") from None
        solved = self._cache.get(key)
        if solved is None:
            solved = _Solved(parse_observation(obs))
            self._cache[key] = solved
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        position = obs["position"]
        r, c = int(position[0]), int(position[1])
        n = solved.net.n
        if not (0 <= r < n and 0 <= c < n):
            raise ValueError(f"obs['position'] {(r, c)} lies outside the {n}x{n} city")
        return solved, (r + 1) * solved.net.width + c + 1

    def cost_to_go(self, obs: Obs) -> float:
        solved, p = self._solved(obs)
        return solved.dist[p]

    def optimal_actions(self, obs: Obs) -> frozenset[int]:
        solved, p = self._solved(obs)
        return _SETS[solved.bits[p]]

    def act(self, obs: Obs) -> int:
        solved, p = self._solved(obs)
        bits = solved.bits[p]
        return (bits & -bits).bit_length() - 1 if bits else 0

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
            bits = solved.bits[p]
            p += solved.net.step[(bits & -bits).bit_length() - 1]
            cells.append(solved.net.cell(p))
        return cells
