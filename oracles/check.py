"""Exhaustive oracle verification over an environment's own transitions.

``verify_oracle`` explores every state reachable from the env's current state (trying every action,
masked or not, on deep copies of the env), computes the exact cost-to-go of each by Dijkstra on the
reversed transition graph (costs from ``info["cost"]``, goal = a terminating step with
``info["is_success"]``), and checks the oracle's ``cost_to_go`` and ``optimal_actions`` at every one.
Any environment of the suite can be checked this way on small instances.
"""

from __future__ import annotations

import copy
import heapq
import math
from collections import defaultdict

import gymnasium as gym
import numpy as np

from oracles.base import Obs, Oracle

SUCCESS = "success"


def obs_key(obs: Obs) -> tuple:
    """A hashable key of an observation (the env is fully observable, so it identifies the state)."""
    return tuple((key, np.asarray(obs[key]).tobytes()) for key in sorted(obs))


def explore(env: gym.Env, obs: Obs, max_states: int = 100_000):
    """All states reachable from ``env``'s current state: ``(observations, edges)``.

    ``edges[key]`` lists ``(action, cost, next_key)`` with ``next_key = SUCCESS`` for a successful
    terminating step; failed terminations are dropped (they never start an optimal sequence).
    """
    base = env.unwrapped
    start = obs_key(obs)
    envs, observations, edges = {start: copy.deepcopy(base)}, {start: obs}, {}
    frontier = [start]
    while frontier:
        key = frontier.pop()
        edges[key] = []
        for action in range(base.action_space.n):
            child = copy.deepcopy(envs[key])
            next_obs, _, terminated, _, info = child.step(action)
            if terminated:
                if info["is_success"]:
                    edges[key].append((action, float(info["cost"]), SUCCESS))
                continue
            next_key = obs_key(next_obs)
            edges[key].append((action, float(info["cost"]), next_key))
            if next_key not in envs:
                if len(envs) >= max_states:
                    raise ValueError(f"more than max_states={max_states} reachable states; use a smaller instance")
                envs[next_key], observations[next_key] = child, next_obs
                frontier.append(next_key)
    return observations, edges


def costs_to_go(edges: dict) -> dict:
    """Exact minimal cost to success of every explored state (Dijkstra on the reversed graph)."""
    reverse = defaultdict(list)
    for key, out in edges.items():
        for _, cost, next_key in out:
            reverse[next_key].append((key, cost))
    dist = {SUCCESS: 0.0}
    heap = [(0.0, 0, SUCCESS)]
    counter = 1
    while heap:
        d, _, key = heapq.heappop(heap)
        if d > dist[key]:
            continue
        for prev, cost in reverse[key]:
            if d + cost < dist.get(prev, math.inf):
                dist[prev] = d + cost
                heapq.heappush(heap, (d + cost, counter, prev))
                counter += 1
    return dist


def verify_oracle(env: gym.Env, oracle: Oracle, obs: Obs, max_states: int = 100_000, tol: float = 1e-6) -> int:
    """Check ``oracle`` at every state reachable from ``env``'s current state ``obs``; returns the count.

    Raises ``AssertionError`` naming the first state where a label differs from exhaustive search.
    The env's step limit should exceed the search depth (construct it with a large ``max_steps``).
    """
    observations, edges = explore(env, obs, max_states)
    dist = costs_to_go(edges)
    for key, state_obs in observations.items():
        expected = dist.get(key, math.inf)
        got = oracle.cost_to_go(state_obs)
        if not math.isclose(got, expected, rel_tol=tol, abs_tol=tol):
            raise AssertionError(f"cost_to_go {got} != exhaustive {expected} at {state_obs}")
        if math.isinf(expected):
            continue
        best = {a for a, cost, nxt in edges[key] if math.isclose(cost + dist.get(nxt, math.inf), expected, rel_tol=tol, abs_tol=tol)}
        labels = oracle.optimal_actions(state_obs)
        if labels != best:
            raise AssertionError(f"optimal_actions {sorted(labels)} != exhaustive {sorted(best)} at {state_obs}")
        if oracle.act(state_obs) not in best:
            raise AssertionError(f"act {oracle.act(state_obs)} is not optimal at {state_obs}")
    return len(observations)
