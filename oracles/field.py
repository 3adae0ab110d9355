"""Shared machinery of the grid oracles: one distance field per instance, LRU-cached, O(1) labels.

A grid oracle (maze, city routing) solves an instance once into a :class:`Field`: per flat cell,
the cost-to-go (``inf`` when cut off from the goal) and a 4-bit mask of optimal moves (bit ``a`` set
iff move ``a`` starts a minimal-cost route; none at the goal). Later labels of the same instance are a
hash of its static arrays plus list lookups. ``act`` is the lowest optimal action id, and 0 where no
action is optimal (at the goal: vector envs autoreset after it).

Token labels (``token_labels``): the field spelled out per token, every cell's lowest optimal move (the move
``act`` would make there; 4 classes), -100 where there is none (walls, buildings, padding, the goal, cells cut
off from it). Tokens are row-major over the observation's padded square grid (the Maze and City encoders'
layout), and the labels do not depend on the position: they are the whole route plan from every cell.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import OrderedDict
from typing import Protocol

import numpy as np

from hrm_envs.core import int_arg
from oracles.base import Label, LabelBatch, Obs, Oracle

NUM_MOVES = 4
#: Optimal-move bits -> the set of moves and the lowest move (0 for the empty set).
MOVE_SETS = tuple(frozenset(a for a in range(NUM_MOVES) if bits >> a & 1) for bits in range(1 << NUM_MOVES))
LOWEST_MOVE = tuple((bits & -bits).bit_length() - 1 if bits else 0 for bits in range(1 << NUM_MOVES))
_LOWEST_ARRAY = np.array(LOWEST_MOVE, dtype=np.int64)


class Field(Protocol):
    """A solved instance: per flat cell, cost-to-go and optimal-move bits."""

    dist: list[float]
    bits: list[int]
    #: Lowest optimal move per cell of the instance's own (rows, cols) grid, -100 where there is none.
    move_labels: np.ndarray
    #: Cost-to-go per cell of that grid (float32, inf where cut off).
    move_costs: np.ndarray


def move_labels(bits: np.ndarray) -> np.ndarray:
    """Per-cell token labels of an optimal-move bit grid: the lowest optimal move, -100 where no move is optimal."""
    return np.where(bits > 0, _LOWEST_ARRAY[bits], -100)


class FieldOracle(Oracle):
    """Labels from a cached per-instance :class:`Field`; subclasses say how to key, solve and locate, and
    ``grid_key`` names the observation's padded square grid that the token layout follows."""

    token_label_classes = NUM_MOVES
    grid_key: str

    def __init__(self, cache_size: int = 256):
        self.cache_size = int_arg(cache_size, "cache_size", 1)
        self._cache: OrderedDict[bytes, Field] = OrderedDict()

    @abstractmethod
    def _key(self, obs: Obs) -> bytes:
        """The bytes of everything in ``obs`` that fixes the field (map, goal, vehicle...)."""

    @abstractmethod
    def _solve_field(self, obs: Obs) -> Field:
        """Solve the instance of ``obs`` into a field."""

    @abstractmethod
    def _cell(self, field: Field, obs: Obs) -> int:
        """The flat index of ``obs``'s position in ``field``; ``ValueError`` if it is not a valid cell."""

    def _solved(self, obs: Obs) -> tuple[Field, int]:
        """The field of ``obs`` (cached, least recently used evicted first) and its position's cell."""
        key = self._key(obs)
        field = self._cache.get(key)
        if field is None:
            field = self._solve_field(obs)
            self._cache[key] = field
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return field, self._cell(field, obs)

    def cost_to_go(self, obs: Obs) -> float:
        field, p = self._solved(obs)
        return field.dist[p]

    def optimal_actions(self, obs: Obs) -> frozenset[int]:
        field, p = self._solved(obs)
        return MOVE_SETS[field.bits[p]]

    def act(self, obs: Obs) -> int:
        field, p = self._solved(obs)
        return LOWEST_MOVE[field.bits[p]]

    def label(self, obs: Obs) -> Label:
        field, p = self._solved(obs)
        bits = field.bits[p]
        return Label(MOVE_SETS[bits], LOWEST_MOVE[bits], field.dist[p])

    def label_batch(self, obs: Obs) -> LabelBatch:
        size = len(obs["action_mask"])
        cost = np.zeros(size, dtype=np.float64)
        bits = np.zeros(size, dtype=np.int64)
        for i in range(size):
            field, p = self._solved({key: value[i] for key, value in obs.items()})
            bits[i], cost[i] = field.bits[p], field.dist[p]
        optimal = ((bits[:, None] >> np.arange(NUM_MOVES)) & 1).astype(bool)
        return LabelBatch(optimal, _LOWEST_ARRAY[bits], cost)

    def token_labels(self, obs: Obs) -> np.ndarray:
        grids = np.asarray(obs.get(self.grid_key) if isinstance(obs, dict) else None)
        if grids.ndim != 3 or grids.shape[1] != grids.shape[2]:
            raise ValueError(f"obs must hold a batch: obs[{self.grid_key!r}] of shape (batch, max_size, max_size), "
                             f"got {grids.shape}")
        size, side = grids.shape[0], grids.shape[1]
        labels = np.full((size, side, side), -100, dtype=np.int64)
        for i in range(size):
            field, _ = self._solved({key: value[i] for key, value in obs.items()})
            rows, cols = field.move_labels.shape
            labels[i, :rows, :cols] = field.move_labels
        return labels.reshape(size, side * side)

    def token_costs(self, obs: Obs) -> np.ndarray:
        """Each token's cost to the goal, (batch, seq_len) float32 in the layout of :meth:`token_labels`: inf where
        the goal cannot be reached (a wall, a building: no front ever reaches it), NaN where else there is no label
        (the goal, padding); what ``front_rate`` training reads to tell the cells a front has reached."""
        labels = self.token_labels(obs)
        size, side = labels.shape[0], int(round(labels.shape[1] ** 0.5))
        costs = np.full((size, side, side), np.nan, dtype=np.float32)
        for i in range(size):
            field, _ = self._solved({key: value[i] for key, value in obs.items()})
            rows, cols = field.move_costs.shape
            costs[i, :rows, :cols] = field.move_costs
        costs = costs.reshape(size, side * side)
        return np.where((labels != -100) | np.isinf(costs), costs, np.nan)
