"""Tower of Hanoi: move every disk from an arbitrary start to an arbitrary goal configuration.

| | |
|---|---|
| Action space | ``Discrete(3 * max_disks + 1)``: ``a = 3 * disk + peg`` moves ``disk`` (0 = smallest) onto ``peg``; ``a = 3 * max_disks`` is STOP |
| Observation | ``Dict``: ``state`` and ``goal`` ``Box(0, 3, (max_disks,), int8)`` give each disk's peg (3 = no such disk); ``action_mask`` ``Box(0, 1, (3 * max_disks + 1,), int8)``, 1 = legal |
| Dynamics | a legal move relocates the top disk of a peg onto an empty peg or a larger disk. An illegal move (no such disk, covered disk, onto a smaller disk, onto its own peg) leaves the state unchanged and sets ``info["illegal_move"]``; it is masked out |
| Cost | ``info["cost"]`` = 1 per move (legal or not), 0 for STOP |
| Reward | ``success_reward`` (1.0) on STOP at the goal, else ``-step_penalty * cost`` (-0.01 per move, 0 for a wrong STOP) |
| Termination | STOP; ``info["is_success"]`` is True iff the state equals the goal |
| Truncation | after ``max_steps`` steps (default ``2 ** (num_disks + 1)``, twice the diameter ``2 ** num_disks - 1`` plus room for STOP); ``info["is_success"] = False`` |
| Arguments | ``num_disks`` int or inclusive ``(lo, hi)`` range sampled per reset (default 3); ``max_disks`` (10) fixes the shapes; ``start``/``goal``: ``"random"`` (default) or ``"standard"`` (tower on peg 0 / peg 2); ``max_steps``; ``step_penalty``; ``success_reward``; ``render_mode`` ``"ansi"`` or ``"rgb_array"`` |
| Puzzle option | ``reset(options={"puzzle": {"start": [0, 0, 1], "goal": "222"}})``: pegs per disk, smallest first |

STOP is always legal: deciding that the goal is reached is part of the task (the Hanoi study's 31 classes: 30 moves + STOP).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium import spaces

from hrm_envs.core import PuzzleEnv, int_arg, size_range
from hrm_envs.hanoi.generator import NUM_PEGS, HanoiGenerator, HanoiPuzzle
from hrm_envs.hanoi.viewer import render_ansi, render_rgb

ABSENT = 3  # peg value of disks beyond num_disks


def legal_moves(state: list[int]) -> list[int]:
    """Action ids of the legal moves (at most 3) of a configuration given as a peg per disk."""
    n = len(state)
    top = [state.index(p) if p in state else n for p in range(NUM_PEGS)]  # smallest disk per peg, n if empty
    moves = []
    for src in range(NUM_PEGS):
        d = top[src]
        if d < n:
            moves.extend(3 * d + dst for dst in range(NUM_PEGS) if dst != src and d < top[dst])
    return moves


def legal_mask(state: list[int], max_disks: int) -> np.ndarray:
    """The int8 action mask of a configuration: its legal moves, and STOP (always legal)."""
    mask = np.zeros(3 * max_disks + 1, dtype=np.int8)
    for action in legal_moves(state):
        mask[action] = 1
    mask[-1] = 1
    return mask


def observation(state: Sequence[int], goal: Sequence[int], max_disks: int) -> dict[str, np.ndarray]:
    """The observation of a configuration pair, padded to ``max_disks``."""
    pad = [ABSENT] * (max_disks - len(state))
    return {
        "state": np.array(list(state) + pad, dtype=np.int8),
        "goal": np.array(list(goal) + pad, dtype=np.int8),
        "action_mask": legal_mask(state, max_disks),
    }


def parse_observation(obs: dict[str, np.ndarray]) -> tuple[list[int], list[int]]:
    """Unpadded ``(state, goal)`` lists of an observation; ``ValueError`` if it is not a Hanoi one."""
    try:
        state, goal = obs["state"].tolist(), obs["goal"].tolist()
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"obs must be a Hanoi observation dict with 'state' and 'goal' arrays: {error!r}") from None
    n = state.index(ABSENT) if ABSENT in state else len(state)
    if (
        n == 0
        or state[n:] != goal[n:]
        or any(p != ABSENT for p in state[n:])
        or not all(0 <= p < NUM_PEGS for p in state[:n] + goal[:n])
    ):
        raise ValueError(f"obs is not a valid Hanoi observation: state={state}, goal={goal}")
    return state[:n], goal[:n]


class HanoiEnv(PuzzleEnv):
    __doc__ = __doc__
    padding = {"state": ABSENT, "goal": ABSENT}

    def __init__(
        self,
        num_disks: int | tuple[int, int] = 3,
        max_disks: int = 10,
        start: str = "random",
        goal: str = "random",
        max_steps: int | None = None,
        step_penalty: float = 0.01,
        success_reward: float = 1.0,
        render_mode: str | None = None,
    ):
        super().__init__(
            render_mode=render_mode, step_penalty=step_penalty, success_reward=success_reward, max_steps=max_steps
        )
        self.max_disks = int_arg(max_disks, "max_disks", 1, 30)
        disks = size_range(num_disks, "num_disks", 1, self.max_disks, "max_disks")
        self.generator = HanoiGenerator(disks, start, goal)
        self._num_actions = 3 * self.max_disks + 1
        self.stop_action = 3 * self.max_disks
        self.action_space = spaces.Discrete(self._num_actions)
        pegs = spaces.Box(0, ABSENT, (self.max_disks,), dtype=np.int8)
        self.observation_space = spaces.Dict(
            {"state": pegs, "goal": pegs, "action_mask": spaces.Box(0, 1, (self._num_actions,), dtype=np.int8)}
        )
        self._state: list[int] = []
        self._goal: list[int] = []
        self._pad: list[int] = []
        self._goal_array = np.zeros(self.max_disks, dtype=np.int8)
        self._mask_array = np.zeros(self._num_actions, dtype=np.int8)

    @property
    def puzzle(self) -> HanoiPuzzle:
        """The current configuration and the goal, as a puzzle (e.g. to restart from here)."""
        self.require_reset()
        return HanoiPuzzle(tuple(self._state), tuple(self._goal))

    def _load(self, options: dict[str, Any]) -> int:
        if "puzzle" in options:
            puzzle = HanoiPuzzle.parse(options["puzzle"], self.max_disks)
        else:
            puzzle = self.generator(self.np_random)
        self._state, self._goal = list(puzzle.start), list(puzzle.goal)
        self._pad = [ABSENT] * (self.max_disks - puzzle.num_disks)
        self._goal_array = np.array(self._goal + self._pad, dtype=np.int8)
        self._mask_array = legal_mask(self._state, self.max_disks)
        return self.max_steps_arg or 2 ** (puzzle.num_disks + 1)

    def _observation(self) -> dict[str, np.ndarray]:
        return {
            "state": np.array(self._state + self._pad, dtype=np.int8),
            "goal": self._goal_array.copy(),
            "action_mask": self._mask_array.copy(),
        }

    def _mask(self) -> np.ndarray:
        return self._mask_array.copy()

    def _transition(self, action: int) -> tuple[float, bool, bool, dict[str, Any]]:
        if action == self.stop_action:
            return 0.0, True, self._state == self._goal, {"illegal_move": False}
        legal = bool(self._mask_array[action])
        if legal:
            disk, peg = divmod(action, 3)
            self._state[disk] = peg
            self._mask_array = legal_mask(self._state, self.max_disks)
        return 1.0, False, False, {"illegal_move": not legal}

    def _render_ansi(self) -> str:
        return render_ansi(self._state, self._goal, self._steps)

    def _render_rgb(self) -> np.ndarray:
        return render_rgb(self._state, self._goal, self.max_disks)
