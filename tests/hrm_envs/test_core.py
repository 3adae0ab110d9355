"""hrm_envs.core: the one move order of the grid envs, shared by the envs, oracles and augmentations."""

from __future__ import annotations

import hrm_envs.city.generator as city
import hrm_envs.maze.generator as maze
import oracles.maze
import train.datasets.augment as augment
from hrm_envs.core import MOVES


def test_the_grid_move_order_is_defined_once():
    assert MOVES == ((-1, 0), (0, 1), (1, 0), (0, -1))  # up, right, down, left: the action ids of Maze and City
    for module in (maze, oracles.maze, augment):
        assert module.MOVES is MOVES, module.__name__
    assert list(zip(city.DR, city.DC)) == list(MOVES)
