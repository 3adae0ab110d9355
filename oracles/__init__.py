"""Exact oracles: optimal labels from ANY reachable observation of the suite's environments.

    from oracles import oracle_for
    oracle = oracle_for("hrm/Hanoi-v0")       # or an env instance, wrapper or class
    oracle.optimal_actions(obs)                # frozenset of every optimal action
"""

from __future__ import annotations

import importlib

import gymnasium as gym

from hrm_envs.core import env_id_of
from oracles.base import Oracle

#: Env id -> "module:Class" of its oracle.
ORACLES: dict[str, str] = {
    "hrm/Hanoi-v0": "oracles.hanoi:HanoiOracle",
    "hrm/Maze-v0": "oracles.maze:MazeOracle",
    "hrm/CityRouting-v0": "oracles.city:CityRoutingOracle",
    "hrm/Sudoku-v0": "oracles.sudoku:SudokuOracle",
}


def oracle_for(env_or_id: gym.Env | str | type) -> Oracle:
    """A new oracle for an environment given as an instance (wrapped or not), a class or an id."""
    module, name = ORACLES[env_id_of(env_or_id)].split(":")
    return getattr(importlib.import_module(module), name)()


__all__ = ["ORACLES", "Oracle", "oracle_for"]
