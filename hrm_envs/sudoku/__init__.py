"""Sudoku on 4x4, 9x9 and 16x16 grids: seeded unique puzzles rated by difficulty, an exact solver, a public hard list."""

from hrm_envs.sudoku.env import SudokuEnv
from hrm_envs.sudoku.generator import LEVELS, SudokuGenerator, SudokuPuzzle, hard_puzzles, rate

__all__ = ["LEVELS", "SudokuEnv", "SudokuGenerator", "SudokuPuzzle", "hard_puzzles", "rate"]
