"""The shared benchmark harness: timed loops, interleaved reference runs, JSON output.

Machines are noisy, so speed is reported as a ratio against a reference measured in the same
process: subject and reference runs alternate for ``rounds`` rounds and the medians are compared.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from typing import Any, Callable

import gymnasium as gym
import numpy as np


def rate(fn: Callable[[], int], seconds: float) -> float:
    """Units per second of ``fn`` (which returns the units it did), run repeatedly for ``seconds``."""
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        done += fn()
    return done / elapsed


def label_rates(oracle: Any, observations: list[dict], seconds: float) -> dict[str, float]:
    """Oracle labels per second, one observation at a time (``optimal_actions``) and batched (``act_batch``).

    Every observation is labelled once first, so per-instance solves (cached by the oracles) stay
    outside the timing, as the benchmarks' "labels/s after the per-instance solve" asks.
    """
    for obs in observations:
        oracle.label(obs)
    batch = {key: np.stack([obs[key] for obs in observations]) for key in observations[0]}
    position = {"i": 0}

    def label_one() -> int:
        oracle.optimal_actions(observations[position["i"] % len(observations)])
        position["i"] += 1
        return 1

    return {
        "single": round(rate(label_one, seconds), 1),
        "batch": round(rate(lambda: len(oracle.act_batch(batch)), seconds), 1),
    }


def random_walk_observations(env: gym.Env, count: int, seed: int, episode_steps: int | None = None) -> list[dict]:
    """``count`` observations of random masked walks (mostly off the optimal path, which oracles must label
    too); a new puzzle after each episode's end or every ``episode_steps`` steps."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out = []
    for i in range(count):
        out.append(obs)
        obs, _, terminated, truncated, _ = env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
        if terminated or truncated or (episode_steps is not None and i % episode_steps == episode_steps - 1):
            obs, _ = env.reset()
    return out


def masked_random_policy(rng: np.random.Generator) -> Callable[[dict], int]:
    """A uniformly random legal action from ``obs["action_mask"]``; CartPole-like envs get 0/1."""

    def policy(obs: Any) -> int:
        if isinstance(obs, dict):
            legal = np.flatnonzero(obs["action_mask"])
            return int(legal[rng.integers(len(legal))])
        return int(rng.integers(2))

    return policy


def env_step_rate(env: gym.Env, seconds: float, seed: int = 0, chunk: int = 200) -> float:
    """Env steps per second under a masked random policy, resets included."""
    policy = masked_random_policy(np.random.default_rng(seed))
    obs, _ = env.reset(seed=seed)
    state = {"obs": obs}

    def run() -> int:
        obs = state["obs"]
        for _ in range(chunk):
            obs, _, terminated, truncated, _ = env.step(policy(obs))
            if terminated or truncated:
                obs, _ = env.reset()
        state["obs"] = obs
        return chunk

    return rate(run, seconds)


def vector_step_rate(env: gym.vector.VectorEnv, seconds: float, seed: int = 0, chunk: int = 50) -> float:
    """Env steps (summed over sub-envs) per second of a vector env under a masked random policy."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    state = {"obs": obs}

    def run() -> int:
        obs = state["obs"]
        for _ in range(chunk):
            if isinstance(obs, dict):
                mask = obs["action_mask"].astype(bool)
                scores = np.where(mask, rng.random(mask.shape), -1.0)
                actions = scores.argmax(axis=1)
            else:
                actions = rng.integers(2, size=env.num_envs)
            obs, *_ = env.step(actions)
        state["obs"] = obs
        return chunk * env.num_envs

    return rate(run, seconds)


def interleaved(subject: Callable[[], float], reference: Callable[[], float], rounds: int = 3) -> dict[str, float]:
    """Median rates of subject and reference measured alternately, and their ratio."""
    subject_rates, reference_rates = [], []
    for _ in range(rounds):
        reference_rates.append(reference())
        subject_rates.append(subject())
    s, r = statistics.median(subject_rates), statistics.median(reference_rates)
    return {"per_s": round(s, 1), "reference_per_s": round(r, 1), "ratio": round(s / r, 3)}


def cartpole_rate(seconds: float) -> Callable[[], float]:
    """Reference: ``CartPole-v1`` steps/s through ``gym.make`` (same wrappers as the subject)."""
    env = gym.make("CartPole-v1")
    return lambda: env_step_rate(env, seconds)


def emit(name: str, figures: dict[str, Any], targets: dict[str, bool] | None = None) -> dict[str, Any]:
    """Print the benchmark's JSON (figures, which targets are met, machine) and return it."""
    out = {
        "benchmark": name,
        "figures": figures,
        "targets_met": targets or {},
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "numpy": np.__version__},
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return out
