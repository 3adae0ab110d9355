"""City routing: drive a vehicle from its start to a destination through a city with traffic and restrictions.

| | |
|---|---|
| Action space | ``Discrete(4)``: 0 up (row - 1), 1 right (col + 1), 2 down (row + 1), 3 left (col - 1) |
| Observation | ``Dict`` of int arrays, shapes fixed by ``max_size`` (cells beyond the city are 0): ``street`` ``(max_size, max_size)`` int8 street code (0 outside, 1 building, 2 residential, 3 arterial, 4 highway, 5 bike lane, 6 low bridge); ``traffic`` same shape, level 0..3; ``oneway`` same shape, 0 two-way or ``1 + d`` = travel only in direction ``d``; ``vehicle`` ``(1,)`` int8 id in ``VEHICLES`` (car, truck, bicycle, ambulance); ``position`` and ``destination`` ``(2,)`` int16 (row, col); ``action_mask`` ``(4,)`` int8, 1 = legal |
| Dynamics | a legal move enters the neighbouring cell. Moves off the city, onto buildings, onto street classes barred for the vehicle (trucks: residential, bike lanes, low bridges; bicycles: highways; cars and ambulances: bike lanes) or against a one-way street are masked; taken anyway they leave the state unchanged and set ``info["illegal_move"]`` |
| Cost | ``info["cost"]`` = travel time of the cell entered, ``TIME[vehicle, street] * TRAFFIC_FACTOR[vehicle, traffic]`` (integer table in ``hrm_envs.city.generator``); ``ILLEGAL_COST`` = 1.0 for a masked move |
| Reward | ``success_reward`` (1.0) on arrival, else ``-step_penalty * cost`` |
| Termination | arriving at the destination; ``info["is_success"] = True`` |
| Truncation | after ``max_steps`` steps (default ``2 * size ** 2``, twice the longest possible simple route); ``info["is_success"] = False`` |
| Arguments | ``size`` int or inclusive ``(lo, hi)`` range sampled per reset (default 40, minimum 6); ``max_size`` (40, at most 128) fixes the shapes; ``vehicle`` a name in ``VEHICLES`` or None (default: drawn per reset); ``traffic`` "none", "light", "normal" (default) or "heavy"; ``max_steps``; ``step_penalty``; ``success_reward``; ``render_mode`` "ansi" or "rgb_array" |
| Puzzle option | ``reset(options={"puzzle": {"street": ..., "traffic": ..., "oneway": ..., "vehicle": "truck", "start": (r, c), "destination": (r, c)}})`` or a ``CityPuzzle``; ``env.puzzle`` returns the current one (from the current position) |

Generated instances always have a route, and no cell the vehicle can reach from the start is cut off
from the destination. ``CityGenerator.variants`` gives a base scenario in all four vehicle variants.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from hrm_envs.core import PuzzleEnv, int_arg, size_range
from hrm_envs.city.generator import (
    MAX_SIZE,
    MIN_SIZE,
    NUM_LEVELS,
    NUM_ONEWAY,
    NUM_STREETS,
    VEHICLES,
    CityGenerator,
    CityPuzzle,
    RoadNetwork,
    vehicle_id,
)
from hrm_envs.city.viewer import render_ansi, render_rgb

ILLEGAL_COST = 1.0


def pad(grid: np.ndarray, max_size: int) -> np.ndarray:
    """An ``n x n`` map array padded with 0 (outside) to ``max_size x max_size``."""
    out = np.zeros((max_size, max_size), dtype=np.int8)
    out[: grid.shape[0], : grid.shape[1]] = grid
    return out


def parse_observation(obs: dict[str, np.ndarray]) -> CityPuzzle:
    """The puzzle an observation shows (start = current position); ``ValueError`` if it is not a city one.

    The position may equal the destination (the final observation of an episode) and no route check is
    made, so any reachable observation parses.
    """
    try:
        street = np.asarray(obs["street"])
        size = int((street[:, 0] != 0).sum())
        cut = (slice(0, size), slice(0, size))
        puzzle = CityPuzzle(
            street[cut],
            np.asarray(obs["traffic"])[cut],
            np.asarray(obs["oneway"])[cut],
            vehicle_id(int(np.asarray(obs["vehicle"]).reshape(-1)[0])),
            tuple(int(v) for v in obs["position"]),
            tuple(int(v) for v in obs["destination"]),
        )
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as error:
        raise ValueError(f"obs must be a CityRouting observation dict: {error!r}") from None
    if size < MIN_SIZE or (puzzle.street == 0).any() or not all(0 <= v < size for v in puzzle.start + puzzle.destination):
        raise ValueError(f"obs is not a valid CityRouting observation (size {size}, position {puzzle.start})")
    return puzzle


class CityRoutingEnv(PuzzleEnv):
    __doc__ = __doc__
    padding = {"street": 0, "traffic": 0, "oneway": 0}  # see pad()

    def __init__(
        self,
        size: int | tuple[int, int] = 40,
        max_size: int = 40,
        vehicle: str | None = None,
        traffic: str = "normal",
        max_steps: int | None = None,
        step_penalty: float = 0.01,
        success_reward: float = 1.0,
        render_mode: str | None = None,
    ):
        super().__init__(
            render_mode=render_mode, step_penalty=step_penalty, success_reward=success_reward, max_steps=max_steps
        )
        self.max_size = int_arg(max_size, "max_size", MIN_SIZE, MAX_SIZE)
        self.vehicle = None if vehicle is None else vehicle_id(vehicle)
        self.generator = CityGenerator(size_range(size, "size", MIN_SIZE, self.max_size, "max_size"), traffic)
        self._num_actions = 4
        self.action_space = spaces.Discrete(4)
        m = self.max_size
        grid = lambda high: spaces.Box(0, high, (m, m), dtype=np.int8)  # noqa: E731
        cell = spaces.Box(0, m - 1, (2,), dtype=np.int16)
        self.observation_space = spaces.Dict(
            {
                "street": grid(NUM_STREETS - 1),
                "traffic": grid(NUM_LEVELS - 1),
                "oneway": grid(NUM_ONEWAY - 1),
                "vehicle": spaces.Box(0, len(VEHICLES) - 1, (1,), dtype=np.int8),
                "position": cell,
                "destination": cell,
                "action_mask": spaces.Box(0, 1, (4,), dtype=np.int8),
            }
        )
        self._puzzle: CityPuzzle | None = None
        self._net: RoadNetwork | None = None

    @property
    def puzzle(self) -> CityPuzzle:
        """The current task as a puzzle, starting from the current position."""
        self.require_reset()
        p = self._puzzle
        return CityPuzzle(p.street, p.traffic, p.oneway, p.vehicle, self._net.cell(self._pos), p.destination)

    def _load(self, options: dict[str, Any]) -> int:
        if "puzzle" in options:
            puzzle = CityPuzzle.parse(options["puzzle"], self.max_size)
        else:
            vehicle = self.vehicle if self.vehicle is not None else int(self.np_random.integers(len(VEHICLES)))
            puzzle = self.generator(self.np_random, vehicle)
        self._puzzle, self._net = puzzle, puzzle.network()
        self._pos, self._dest = self._net.flat(puzzle.start), self._net.flat(puzzle.destination)
        self._maps = {
            "street": pad(puzzle.street, self.max_size),
            "traffic": pad(puzzle.traffic, self.max_size),
            "oneway": pad(puzzle.oneway, self.max_size),
            "vehicle": np.array([puzzle.vehicle], dtype=np.int8),
            "destination": np.array(puzzle.destination, dtype=np.int16),
        }
        self._costs = [float(c) for c in self._net.cost_list]
        self._bits = self._net.move_bits
        self._step_of = self._net.step
        return self.max_steps_arg or 2 * puzzle.size**2

    def _observation(self) -> dict[str, np.ndarray]:
        obs = {key: value.copy() for key, value in self._maps.items()}
        obs["position"] = np.array(self._net.cell(self._pos), dtype=np.int16)
        obs["action_mask"] = self._net.moves[self._pos].copy()
        return obs

    def _mask(self) -> np.ndarray:
        return self._net.moves[self._pos].copy()

    def _transition(self, action: int) -> tuple[float, bool, bool, dict[str, Any]]:
        if not self._bits[self._pos] >> action & 1:
            return ILLEGAL_COST, False, False, {"illegal_move": True}
        self._pos += self._step_of[action]
        arrived = self._pos == self._dest
        return self._costs[self._pos], arrived, arrived, {"illegal_move": False}

    def _render_ansi(self) -> str:
        return render_ansi(self._puzzle, self._net.cell(self._pos), self._steps)

    def _render_rgb(self) -> np.ndarray:
        return render_rgb(self._puzzle, self._net.cell(self._pos), self.max_size)
