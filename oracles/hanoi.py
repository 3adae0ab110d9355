"""Exact Hanoi oracle for arbitrary start and goal configurations, O(N) per label.

With disks numbered from 0 (smallest), let ``m`` be the largest disk whose start peg ``i`` differs
from its goal peg ``j`` and ``k`` the third peg. A shortest path moves disk ``m`` once or twice:

    d = min( g(s, m, k) + 1 + g(t, m, k),
             g(s, m, j) + 1 + (2**m - 1) + 1 + g(t, m, i) )

where ``g(x, m, p)`` counts the moves that gather disks ``0..m-1`` of configuration ``x`` onto peg
``p`` (greedy from the largest down). The second option parks ``m`` on ``k``, moves the ``m``-tower
from ``j`` to ``i``, then moves ``m`` to ``j``. An action is optimal iff it is legal and lowers the
distance by one, so ``optimal_actions`` checks the (at most 3) legal moves; ties give several.
"""

from __future__ import annotations

from typing import Sequence

from hrm_envs.hanoi.env import legal_moves, observation, parse_observation
from oracles.base import Obs, Oracle


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


class HanoiOracle(Oracle):
    """Optimal Hanoi labels; ``act`` returns the smallest optimal action id (STOP at the goal)."""

    def cost_to_go(self, obs: Obs) -> float:
        state, goal = parse_observation(obs)
        return float(distance(state, goal))

    def optimal_actions(self, obs: Obs) -> frozenset[int]:
        state, goal = parse_observation(obs)
        stop = len(obs["action_mask"]) - 1
        here = distance(state, goal)
        if here == 0:
            return frozenset((stop,))
        best = set()
        for action in legal_moves(state):
            disk, peg = divmod(action, 3)
            previous, state[disk] = state[disk], peg
            if distance(state, goal) == here - 1:
                best.add(action)
            state[disk] = previous
        return frozenset(best)

    def act(self, obs: Obs) -> int:
        return min(self.optimal_actions(obs))

    def successor(self, obs: Obs, action: int) -> tuple[Obs, bool]:
        state, goal = parse_observation(obs)
        max_disks = len(obs["state"])
        if action == 3 * max_disks:
            return obs, True
        if action in legal_moves(state):
            disk, peg = divmod(action, 3)
            state[disk] = peg
        return observation(state, goal, max_disks), False
