"""Exact Hanoi oracle for arbitrary start and goal configurations, O(N) per label.

With disks numbered from 0 (smallest), let ``m`` be the largest disk whose start peg ``i`` differs
from its goal peg ``j`` and ``k`` the third peg. A shortest path moves disk ``m`` once or twice:

    d = min( g(s, m, k) + 1 + g(t, m, k),
             g(s, m, j) + 1 + (2**m - 1) + 1 + g(t, m, i) )

where ``g(x, m, p)`` counts the moves that gather disks ``0..m-1`` of configuration ``x`` onto peg
``p`` (greedy from the largest down). The second option parks ``m`` on ``k``, moves the ``m``-tower
from ``j`` to ``i``, then moves ``m`` to ``j``. An action is optimal iff it is legal and lowers the
distance by one, so ``optimal_actions`` checks the (at most 3) legal moves; ties give several.

Token labels (``token_labels``): each disk's target peg in the plan of that formula (``once`` on a tie): disks above
``m`` their goal peg, ``m`` its next peg (``j`` once, ``k`` twice), and below ``m`` the running target of the
gathering chain (``k`` once, ``j`` twice; a disk off its target turns the target to the third peg). The smallest
disk whose label differs from its peg, moved to its label, is an optimal move (STOP when every disk is on its label).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from hrm_envs.hanoi.env import ABSENT, legal_moves, observation, parse_observation
from oracles.base import Label, LabelBatch, Obs, Oracle


def gather_moves(config: Sequence[int], m: int, peg: int) -> int:
    """Moves needed to gather disks ``0..m-1`` of ``config`` into a tower on ``peg``."""
    total, target = 0, peg
    for d in range(m - 1, -1, -1):
        if config[d] != target:
            total += 1 << d
            target = 3 - config[d] - target
    return total


def distance(start: Sequence[int], goal: Sequence[int]) -> int:
    """Length of a shortest move sequence from ``start`` to ``goal`` (pegs per disk, smallest first)."""
    m = len(start) - 1
    while m >= 0 and start[m] == goal[m]:
        m -= 1
    if m < 0:
        return 0
    i, j = start[m], goal[m]
    k = 3 - i - j
    once = gather_moves(start, m, k) + 1 + gather_moves(goal, m, k)
    twice = gather_moves(start, m, j) + 1 + (1 << m) - 1 + 1 + gather_moves(goal, m, i)
    return min(once, twice)


def _gather_batch(config: np.ndarray, m: np.ndarray, peg: np.ndarray) -> np.ndarray:
    """``gather_moves`` over a batch: rows of ``config`` (B, N), per-row ``m`` and ``peg``."""
    total = np.zeros(len(config), dtype=np.int64)
    target = peg.copy()
    for d in range(config.shape[1] - 1, -1, -1):
        x = config[:, d]
        move = (d < m) & (x != target)
        total += move.astype(np.int64) << d
        target = np.where(move, 3 - x - target, target)
    return total


def _plans_batch(start: np.ndarray, goal: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per row of (B, N) int64 peg arrays: whether any disk differs, ``m``, ``i``, ``j``, ``k`` and the lengths of
    the ``once`` and ``twice`` plans (module docstring; meaningless where nothing differs)."""
    differs = start != goal
    m = start.shape[1] - 1 - np.argmax(differs[:, ::-1], axis=1)
    rows = np.arange(len(start))
    i, j = start[rows, m], goal[rows, m]
    k = 3 - i - j
    once = _gather_batch(start, m, k) + 1 + _gather_batch(goal, m, k)
    twice = _gather_batch(start, m, j) + 1 + (np.int64(1) << m) + _gather_batch(goal, m, i)
    return differs.any(axis=1), m, i, j, k, once, twice


def distance_batch(start: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """``distance`` over rows of (B, N) peg arrays; padded disks must match in start and goal."""
    misplaced, _, _, _, _, once, twice = _plans_batch(start.astype(np.int64), goal.astype(np.int64))
    return np.where(misplaced, np.minimum(once, twice), 0)


def target_pegs_batch(start: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Each disk's target peg in a shortest plan (module docstring) for rows of (B, N) peg arrays; padded disks
    (the same value in start and goal) keep it. O(N) per row."""
    start, goal = start.astype(np.int64), goal.astype(np.int64)
    misplaced, m, _, j, k, once, twice = _plans_batch(start, goal)
    moves_twice = misplaced & (twice < once)
    targets = goal.copy()
    targets[np.arange(len(start)), m] = np.where(moves_twice, k, j)
    target = np.where(moves_twice, j, k)  # the tower of disks below m gathers here first
    for d in range(start.shape[1] - 1, -1, -1):
        below = d < m
        targets[below, d] = target[below]
        turn = below & (start[:, d] != target)
        target = np.where(turn, 3 - start[:, d] - target, target)
    return np.where(misplaced[:, None], targets, goal)


class HanoiOracle(Oracle):
    """Optimal Hanoi labels; ``act`` returns the smallest optimal action id (STOP at the goal); ``token_labels``
    gives every disk token its target peg (3 classes, -100 for absent disks)."""

    token_label_classes = 3

    def cost_to_go(self, obs: Obs) -> float:
        state, goal = parse_observation(obs)
        return float(distance(state, goal))

    def optimal_actions(self, obs: Obs) -> frozenset[int]:
        return self.label(obs).optimal

    def act(self, obs: Obs) -> int:
        return min(self.label(obs).optimal)

    def label(self, obs: Obs) -> Label:
        state, goal = parse_observation(obs)
        here = distance(state, goal)
        if here == 0:
            stop = len(obs["action_mask"]) - 1
            return Label(frozenset((stop,)), stop, 0.0)
        best = set()
        for action in legal_moves(state):
            disk, peg = divmod(action, 3)
            previous, state[disk] = state[disk], peg
            if distance(state, goal) == here - 1:
                best.add(action)
            state[disk] = previous
        return Label(frozenset(best), min(best), float(here))

    def label_batch(self, obs: Obs) -> LabelBatch:
        """Vectorised ``label`` (numpy over the batch): the same recursion, one pass per disk."""
        state, goal = np.asarray(obs["state"], np.int64), np.asarray(obs["goal"], np.int64)
        size, max_disks = state.shape
        if size and (state[:, 0] == ABSENT).any():
            raise ValueError("obs is not a valid batch of Hanoi observations: a row has no disks")
        rows = np.arange(size)
        here = distance_batch(state, goal)
        top = np.stack([np.where((state == p).any(1), np.argmax(state == p, axis=1), max_disks) for p in range(3)], 1)
        optimal = np.zeros((size, 3 * max_disks + 1), dtype=bool)
        for src in range(3):
            for dst in range(3):
                disk = top[:, src]
                legal = (src != dst) & (disk < top[:, dst])
                if not legal.any():
                    continue
                moved = state.copy()
                moved[rows[legal], disk[legal]] = dst
                better = np.zeros(size, dtype=bool)
                better[legal] = distance_batch(moved[legal], goal[legal]) == here[legal] - 1
                optimal[rows[better], 3 * disk[better] + dst] = True
        at_goal = here == 0
        optimal[at_goal, -1] = True
        return LabelBatch(optimal, np.argmax(optimal, axis=1).astype(np.int64), here.astype(np.float64))

    def token_labels(self, obs: Obs) -> np.ndarray:
        state, goal = np.asarray(obs["state"], np.int64), np.asarray(obs["goal"], np.int64)
        if state.ndim != 2 or state.shape != goal.shape:
            raise ValueError(f"obs must hold a batch: state and goal of one shape (batch, max_disks), got "
                             f"{state.shape} and {goal.shape}")
        return np.where(state == ABSENT, -100, target_pegs_batch(state, goal))

    def successor(self, obs: Obs, action: int) -> tuple[Obs, bool]:
        state, goal = parse_observation(obs)
        max_disks = len(obs["state"])
        if action == 3 * max_disks:
            return obs, True
        if action in legal_moves(state):
            disk, peg = divmod(action, 3)
            state[disk] = peg
        return observation(state, goal, max_disks), False
