"""Tower of Hanoi with 3 pegs, arbitrary start and goal configurations."""

from hrm_envs.hanoi.env import HanoiEnv
from hrm_envs.hanoi.generator import HanoiGenerator, HanoiPuzzle

__all__ = ["HanoiEnv", "HanoiGenerator", "HanoiPuzzle"]
