"""Grid mazes (perfect or with loops, HRM Maze-Hard sizes included) with a start and a goal."""

from hrm_envs.maze.env import MazeEnv
from hrm_envs.maze.generator import MazeGenerator, MazePuzzle

__all__ = ["MazeEnv", "MazeGenerator", "MazePuzzle"]
