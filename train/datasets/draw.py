"""Seeded, de-duplicated puzzle draws per split, shared by every kind of data set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import gymnasium as gym
import numpy as np

import hrm_envs  # noqa: F401  (registers the ids)
from train.datasets.spec import DatasetSpec, SplitSpec
from train.datasets.storage import content_hash

Obs = dict[str, np.ndarray]


def puzzle_hash(obs: Obs) -> str:
    """Content hash of an observation's state arrays (the mask is derived, so it is left out)."""
    return content_hash(*(obs[key] for key in sorted(obs) if key != "action_mask"))


@dataclass
class Draw:
    size_index: int
    env: gym.Env  # reset to this puzzle
    obs: Obs
    hash: str


def make_env(spec: DatasetSpec, size: object) -> gym.Env:
    """The environment of one size of a preset (``max_steps`` large: oracle trajectories never truncate)."""
    return gym.make(spec.env, **{**spec.env_kwargs, **spec.size_kwargs(size)})


def draw_puzzles(spec: DatasetSpec, split: SplitSpec, exclude: set[str]) -> Iterator[Draw]:
    """``split.puzzles`` distinct puzzles, evenly spread over sizes; none whose hash is in ``exclude``.

    A size whose draws keep repeating (``max_draw_misses`` in a row: e.g. 1-disk Hanoi has 6 puzzles)
    is exhausted and its shortfall is spread over the sizes after it. Reset seeds come from
    ``(split.seed, size index)``, so a split is reproducible on its own.
    """
    seen: set[str] = set()
    for index, size in enumerate(split.sizes):
        remaining, sizes_left = split.puzzles - len(seen), len(split.sizes) - index
        env = make_env(spec, size)
        rng = np.random.default_rng([split.seed, index])
        target, accepted, misses = -(-remaining // sizes_left), 0, 0
        while accepted < target and misses < spec.max_draw_misses:
            obs, _ = env.reset(seed=int(rng.integers(2**31 - 1)))
            digest = puzzle_hash(obs)
            if digest in seen or digest in exclude:
                misses += 1
                continue
            misses = 0
            seen.add(digest)
            accepted += 1
            yield Draw(index, env, obs, digest)
        env.close()
