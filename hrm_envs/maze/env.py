"""Maze: walk from the start to the goal of a grid maze.

| | |
|---|---|
| Action space | ``Discrete(4)``: 0 up (row - 1), 1 right (col + 1), 2 down (row + 1), 3 left (col - 1) |
| Observation | ``Dict`` of int arrays, shapes fixed by ``max_size``: ``walls`` ``Box(0, 2, (max_size, max_size), int8)`` with 0 floor, 1 wall, 2 outside the maze (padding right of and below a smaller maze); ``position`` (the agent) and ``goal`` ``Box(0, max_size - 1, (2,), int16)`` as (row, col); ``action_mask`` ``Box(0, 1, (4,), int8)``, 1 = legal |
| Dynamics | a legal move steps onto the neighbouring floor cell. Moves into a wall or off the maze are masked; taken anyway they leave the state unchanged and set ``info["illegal_move"]`` |
| Cost | ``info["cost"]`` = 1 per step, legal or not |
| Reward | ``success_reward`` (1.0) on reaching the goal, else ``-step_penalty * cost`` (-0.01) |
| Termination | reaching the goal; ``info["is_success"] = True`` |
| Truncation | after ``max_steps`` steps (default ``2 * h * w`` for an ``h x w`` maze, ``2 * size ** 2`` when generated); ``info["is_success"] = False`` |
| Arguments | ``size`` side in cells, walls included: int or inclusive ``(lo, hi)`` range sampled per reset, in ``[5, max_size]`` (default 11; even sides double one wall row and column, see ``hrm_envs.maze.generator``); ``max_size`` (41, at most 255) fixes the shapes; ``kind`` ``"perfect"`` (one route between any two cells) or ``"loops"`` (several shortest paths); ``loop_fraction`` (0.1) share of inner walls removed by ``"loops"``; ``min_path_len`` (1) minimum moves of the shortest start-goal path, redrawn until met (HRM Maze-Hard: ``size=30, min_path_len=111``); at most ``generator.max_path_len`` of the smallest size, and ``reset`` raises ``ValueError`` if 100 mazes in a row miss it; ``max_steps``; ``step_penalty``; ``success_reward``; ``render_mode`` ``"ansi"`` or ``"rgb_array"`` |
| Puzzle option | ``reset(options={"puzzle": rows})`` with HRM's characters, ``'#'`` wall, ``' '`` floor, ``'S'`` start, ``'G'`` goal, as one newline-separated string or a list of equal-length strings (any ``h x w`` up to ``max_size``); or ``{"walls": bool array, "start": (r, c), "goal": (r, c)}``; or a ``MazePuzzle``. ``env.puzzle`` returns the current one (start = current position) |

Every floor cell reachable from the start can reach the goal (moves are reversible), so a policy can
never get stuck; the oracle (``oracles.maze.MazeOracle``) labels every position.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from hrm_envs.core import PuzzleEnv, int_arg, size_range
from hrm_envs.maze.generator import MAX_SIZE, MIN_SIZE, MOVES, MazeGenerator, MazePuzzle
from hrm_envs.maze.viewer import render_ansi, render_rgb

FLOOR_CODE, WALL_CODE, OUTSIDE_CODE = 0, 1, 2


def padded_walls(walls: np.ndarray, max_size: int) -> np.ndarray:
    """The ``walls`` observation of a bool wall grid: 0 floor, 1 wall, 2 outside, ``max_size`` a side."""
    out = np.full((max_size, max_size), OUTSIDE_CODE, dtype=np.int8)
    out[: walls.shape[0], : walls.shape[1]] = walls
    return out


def move_masks(floor: np.ndarray) -> np.ndarray:
    """Legal moves of every cell of a bool floor grid, shape ``(h, w, 4)`` int8 in action order."""
    h, w = floor.shape
    ring = np.zeros((h + 2, w + 2), dtype=bool)
    ring[1:-1, 1:-1] = floor
    return np.stack([ring[1 + dr : h + 1 + dr, 1 + dc : w + 1 + dc] for dr, dc in MOVES], axis=-1).astype(np.int8)


def mask_bits(masks: np.ndarray) -> np.ndarray:
    """Masks ``(..., 4)`` packed into ints, bit ``a`` set iff action ``a`` is legal (fast scalar checks)."""
    return (masks.astype(np.int64) << np.arange(4)).sum(axis=-1)


def parse_observation(obs: dict[str, np.ndarray]) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """``(floor, position, goal)`` of an observation, floor a bool grid of the maze's own extent.

    ``ValueError`` if it is not a Maze observation; the position may equal the goal (last observation).
    """
    try:
        walls = np.asarray(obs["walls"])
        position = tuple(int(v) for v in np.asarray(obs["position"]).reshape(-1))
        goal = tuple(int(v) for v in np.asarray(obs["goal"]).reshape(-1))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"obs must be a Maze observation dict with walls, position and goal: {error!r}") from None
    if walls.ndim != 2 or len(position) != 2 or len(goal) != 2 or not np.isin(walls, (0, 1, 2)).all():
        raise ValueError("obs is not a Maze observation: walls must be 2-D in {0, 1, 2}, position and goal (row, col)")
    inside = walls != OUTSIDE_CODE
    h, w = int(inside.any(axis=1).sum()), int(inside.any(axis=0).sum())
    if not inside[:h, :w].all() or inside.sum() != h * w:
        raise ValueError("obs is not a Maze observation: the maze must fill the top-left h x w corner of walls")
    floor = walls[:h, :w] == FLOOR_CODE
    for name, (r, c) in (("position", position), ("goal", goal)):
        if not (0 <= r < h and 0 <= c < w and floor[r, c]):
            raise ValueError(f"obs['{name}'] {(r, c)} must be a floor cell of the {h}x{w} maze")
    return floor, position, goal  # type: ignore[return-value]


class MazeEnv(PuzzleEnv):
    __doc__ = __doc__
    padding = {"walls": OUTSIDE_CODE}

    def __init__(
        self,
        size: int | tuple[int, int] = 11,
        max_size: int = 41,
        kind: str = "perfect",
        loop_fraction: float = 0.1,
        min_path_len: int = 1,
        max_steps: int | None = None,
        step_penalty: float = 0.01,
        success_reward: float = 1.0,
        render_mode: str | None = None,
    ):
        super().__init__(
            render_mode=render_mode, step_penalty=step_penalty, success_reward=success_reward, max_steps=max_steps
        )
        self.max_size = int_arg(max_size, "max_size", MIN_SIZE, MAX_SIZE)
        sizes = size_range(size, "size", MIN_SIZE, self.max_size, "max_size")
        self.generator = MazeGenerator(sizes, kind, loop_fraction, min_path_len)
        self._num_actions = 4
        self.action_space = spaces.Discrete(4)
        cell = spaces.Box(0, self.max_size - 1, (2,), dtype=np.int16)
        self.observation_space = spaces.Dict(
            {
                "walls": spaces.Box(0, OUTSIDE_CODE, (self.max_size, self.max_size), dtype=np.int8),
                "position": cell,
                "goal": cell,
                "action_mask": spaces.Box(0, 1, (4,), dtype=np.int8),
            }
        )
        self._walls = np.zeros((0, 0), dtype=bool)
        self._walls_obs = np.zeros((self.max_size, self.max_size), dtype=np.int8)
        self._masks = np.zeros((0, 0, 4), dtype=np.int8)
        self._bits: list[list[int]] = []
        self._position = (0, 0)
        self._goal = (0, 0)
        self._goal_obs = np.zeros(2, dtype=np.int16)

    @property
    def puzzle(self) -> MazePuzzle:
        """The maze with the current position as its start (e.g. to restart from here)."""
        self.require_reset()
        return MazePuzzle(self._walls, self._position, self._goal)  # copies the walls

    def _load(self, options: dict[str, Any]) -> int:
        if "puzzle" in options:
            puzzle = MazePuzzle.parse(options["puzzle"], self.max_size)
        else:
            puzzle = self.generator(self.np_random)
        self._walls = puzzle.walls
        self._walls_obs = padded_walls(puzzle.walls, self.max_size)
        self._masks = move_masks(~puzzle.walls)
        self._bits = mask_bits(self._masks).tolist()
        self._position, self._goal = puzzle.start, puzzle.goal
        self._goal_obs = np.array(puzzle.goal, dtype=np.int16)
        h, w = puzzle.shape
        return self.max_steps_arg or 2 * h * w

    def _observation(self) -> dict[str, np.ndarray]:
        return {
            "walls": self._walls_obs.copy(),
            "position": np.array(self._position, dtype=np.int16),
            "goal": self._goal_obs.copy(),
            "action_mask": self._masks[self._position].copy(),
        }

    def _mask(self) -> np.ndarray:
        return self._masks[self._position].copy()

    def _transition(self, action: int) -> tuple[float, bool, bool, dict[str, Any]]:
        r, c = self._position
        if not self._bits[r][c] >> action & 1:
            return 1.0, False, False, {"illegal_move": True}
        dr, dc = MOVES[action]
        self._position = (r + dr, c + dc)
        done = self._position == self._goal
        return 1.0, done, done, {"illegal_move": False}

    def _render_ansi(self) -> str:
        return render_ansi(self.puzzle, self._steps)

    def _render_rgb(self) -> np.ndarray:
        return render_rgb(self._walls, self._position, self._goal, self.max_size)
