"""Exact oracles: optimal labels from ANY reachable observation of the suite's environments.

    from oracles import oracle_for
    oracle = oracle_for("hrm/Hanoi-v0")       # or an env instance, wrapper or class
    oracle.optimal_actions(obs)                # frozenset of every optimal action
"""

from __future__ import annotations

import gymnasium as gym

from hrm_envs.registry import env_spec, load
from oracles.base import Oracle


def oracle_for(env_or_id: gym.Env | str | type) -> Oracle:
    """A new oracle for an environment given as an instance (wrapped or not), a class or an id."""
    return load(env_spec(env_or_id).oracle)()


__all__ = ["Oracle", "oracle_for"]
