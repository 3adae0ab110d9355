"""Hanoi puzzles: a start and a goal configuration, each a peg (0, 1, 2) per disk, smallest disk first.

Every assignment of disks to pegs is a legal configuration (disks on a peg are stacked by size),
so "random" draws each disk's peg uniformly; "standard" is the tower on peg 0 (start) or peg 2 (goal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from hrm_envs.core import choice

MODES = ("random", "standard")
NUM_PEGS = 3


def _pegs(value: Any, name: str) -> tuple[int, ...]:
    """Parse a configuration given as a 1-D sequence (list, tuple, array) of ints or a string of digits."""
    if isinstance(value, str):
        items: Sequence[Any] = [int(c) if c.isdigit() else c for c in value]
    elif isinstance(value, np.ndarray) and value.ndim == 1:
        items = value.tolist() if value.dtype.kind in "iu" else list(value)
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ValueError(
            f"{name} must be a 1-D sequence of pegs (0, 1, 2), one per disk, smallest first, or a digit string; got {value!r}"
        )
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v < NUM_PEGS for v in items):
        raise ValueError(f"{name} must hold pegs 0, 1 or 2 only, one per disk, smallest first; got {value!r}")
    return tuple(int(v) for v in items)


@dataclass(frozen=True)
class HanoiPuzzle:
    """A start and a goal configuration: ``start[d]`` is the peg of disk ``d`` (0 = smallest).

    Both are checked on construction (pegs 0..2, the same number of disks, at least one) and stored as
    tuples of ints, so a puzzle always yields an observation inside the env's observation space.
    """

    start: tuple[int, ...]
    goal: tuple[int, ...]

    def __post_init__(self) -> None:
        start, goal = _pegs(self.start, "puzzle start"), _pegs(self.goal, "puzzle goal")
        if len(start) != len(goal):
            raise ValueError(f"puzzle start and goal must have the same number of disks, got {len(start)} and {len(goal)}")
        if not start:
            raise ValueError("puzzle must have between 1 and max_disks disks, got 0")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "goal", goal)

    @property
    def num_disks(self) -> int:
        return len(self.start)

    @classmethod
    def parse(cls, value: Any, max_disks: int) -> "HanoiPuzzle":
        """Accept a ``HanoiPuzzle``, ``{"start": ..., "goal": ...}`` or a ``(start, goal)`` pair.

        Each configuration is a 1-D sequence of pegs or a digit string, e.g. ``{"start": "000", "goal": [2, 2, 2]}``.
        """
        if isinstance(value, HanoiPuzzle):
            puzzle = value
        elif isinstance(value, dict) and set(value) == {"start", "goal"}:
            puzzle = cls(_pegs(value["start"], "puzzle['start']"), _pegs(value["goal"], "puzzle['goal']"))
        elif isinstance(value, (tuple, list)) and len(value) == 2:
            puzzle = cls(value[0], value[1])
        else:
            raise ValueError(
                "options['puzzle'] must be a HanoiPuzzle, a dict with keys 'start' and 'goal', "
                f"or a (start, goal) pair; got {value!r}"
            )
        if puzzle.num_disks > max_disks:
            raise ValueError(f"puzzle must have between 1 and max_disks={max_disks} disks, got {puzzle.num_disks}")
        return puzzle


class HanoiGenerator:
    """Seeded Hanoi instances with ``num_disks`` drawn uniformly from an inclusive range.

    Random start and goal are redrawn until they differ, so no instance is already solved.
    """

    def __init__(self, num_disks: tuple[int, int], start: str = "random", goal: str = "random"):
        self.num_disks = num_disks
        self.start_mode = choice(start, "start", MODES)
        self.goal_mode = choice(goal, "goal", MODES)

    def __call__(self, rng: np.random.Generator) -> HanoiPuzzle:
        n = int(rng.integers(self.num_disks[0], self.num_disks[1] + 1))
        while True:
            start = (0,) * n if self.start_mode == "standard" else tuple(rng.integers(0, NUM_PEGS, n).tolist())
            goal = (2,) * n if self.goal_mode == "standard" else tuple(rng.integers(0, NUM_PEGS, n).tolist())
            if start != goal:
                return HanoiPuzzle(start, goal)
