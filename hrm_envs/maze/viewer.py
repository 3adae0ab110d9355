"""Text and image drawings of a maze state (no display needed)."""

from __future__ import annotations

import numpy as np

from hrm_envs.maze.generator import MazePuzzle

CELL_PX = 8
COLOURS = {
    "outside": (200, 200, 200),
    "wall": (30, 30, 30),
    "floor": (250, 250, 250),
    "goal": (40, 170, 60),
    "agent": (40, 90, 220),
}


def render_ansi(puzzle: MazePuzzle, steps: int) -> str:
    """The maze in HRM's characters (``'S'`` = the agent now), under a header line."""
    h, w = puzzle.shape
    return f"maze {h}x{w}, step {steps}, agent S at {puzzle.start}, goal G at {puzzle.goal}\n" + "\n".join(puzzle.rows())


def render_rgb(walls: np.ndarray, position: tuple[int, int], goal: tuple[int, int], max_size: int) -> np.ndarray:
    """An RGB frame of ``max_size * CELL_PX`` pixels a side (fixed across maze sizes); the agent is a disc."""
    grid = np.empty((max_size, max_size, 3), dtype=np.uint8)
    grid[:] = COLOURS["outside"]
    h, w = walls.shape
    grid[:h, :w] = np.where(walls[..., None], COLOURS["wall"], COLOURS["floor"])
    grid[goal] = COLOURS["goal"]
    image = np.repeat(np.repeat(grid, CELL_PX, axis=0), CELL_PX, axis=1)
    yy, xx = np.mgrid[:CELL_PX, :CELL_PX] - (CELL_PX - 1) / 2
    disc = yy**2 + xx**2 <= (CELL_PX / 2 - 1) ** 2
    r, c = position
    image[r * CELL_PX : (r + 1) * CELL_PX, c * CELL_PX : (c + 1) * CELL_PX][disc] = COLOURS["agent"]
    return image
