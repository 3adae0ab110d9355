"""Seeded, de-duplicated puzzle draws per split, shared by every kind of data set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

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
    hash: str  # ``key`` of the base scenario (shared by its variants)
    seed: int  # the reset (or generator) seed of the base scenario
    base: int  # index of the base scenario in the split
    variant: int  # index of this puzzle among its base scenario's variants (0 without ``spec.variants``)


def make_env(spec: DatasetSpec, size: object) -> gym.Env:
    """The environment of one size of a preset."""
    return gym.make(spec.env, **{**spec.env_kwargs, **spec.size_kwargs(size)})


def _base_puzzles(spec: DatasetSpec, env: gym.Env, seed: int) -> list[Any]:
    """The puzzles of one base scenario: ``[None]`` (the env's own seeded draw) or every variant of its generator."""
    if not spec.variants:
        return [None]
    generator = getattr(env.unwrapped, "generator", None)
    if not hasattr(generator, "variants"):
        raise ValueError(f"preset.variants needs an env whose generator has variants(rng); {spec.env} has none")
    return generator.variants(np.random.default_rng(seed))


def draw_puzzles(spec: DatasetSpec, split: SplitSpec, exclude: set[str], key: Callable[[Obs], str] = puzzle_hash) -> Iterator[Draw]:
    """``split.puzzles`` distinct base scenarios, evenly spread over sizes; none whose ``key`` is in ``exclude``.

    Base scenario seeds are consecutive from ``split.seed`` (one per attempt, across sizes), so splits
    with distant seeds draw from disjoint seed ranges. A size whose draws keep repeating
    (``max_draw_misses`` in a row: e.g. 1-disk Hanoi has 6 puzzles) is exhausted and its shortfall is
    spread over the sizes after it. With ``spec.variants`` a base yields one ``Draw`` per variant
    (the env reset to each in turn), all sharing the ``key`` of the first.
    """
    seen: set[str] = set()
    seed = split.seed - 1
    for index, size in enumerate(split.sizes):
        remaining, sizes_left = split.puzzles - len(seen), len(split.sizes) - index
        env = make_env(spec, size)
        target, accepted, misses = -(-remaining // sizes_left), 0, 0
        while accepted < target and misses < spec.max_draw_misses:
            seed += 1
            puzzles = _base_puzzles(spec, env, seed)
            for number, puzzle in enumerate(puzzles):
                obs = env.reset(seed=seed)[0] if puzzle is None else env.reset(options={"puzzle": puzzle})[0]
                if number == 0:
                    digest = key(obs)
                    if digest in seen or digest in exclude:
                        misses += 1
                        break
                    misses = 0
                    seen.add(digest)
                    accepted += 1
                yield Draw(index, env, obs, digest, seed, len(seen) - 1, number)
        env.close()
