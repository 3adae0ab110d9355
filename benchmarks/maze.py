"""Maze speed: env steps/s against CartPole-v1 at sizes 10, 20, 40, oracle labels/s, generation + solve time.

    python -m benchmarks.maze [--seconds 1.0]

Targets: steps/s at least 0.5x CartPole's in the same run; at least 50,000 oracle labels/s
after the per-instance solve; generating and solving a size-40 maze in under 10 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np

import hrm_envs  # noqa: F401  (registers the ids)
from benchmarks.harness import (
    cartpole_rate, emit, env_step_rate, interleaved, label_rates, random_walk_observations, vector_step_rate,
)
from oracles import oracle_for

SIZES = (10, 20, 40)


def generation_ms(size: int, kind: str, count: int) -> dict[str, float]:
    """Median and 95th-percentile milliseconds of ``reset()`` (a new maze) plus the oracle's first label."""
    env = gym.make("hrm/Maze-v0", size=size, kind=kind)
    oracle = oracle_for(env)
    env.reset(seed=0)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        obs, _ = env.reset()
        oracle.cost_to_go(obs)
        times.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": round(statistics.median(times), 3), "p95_ms": round(float(np.percentile(times, 95)), 3)}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="duration of each timed run")
    parser.add_argument("--num-envs", type=int, default=8, help="sub-envs of the vector run")
    args = parser.parse_args()
    t = args.seconds

    figures: dict = {}
    reference = cartpole_rate(t)
    for size in SIZES:
        env = gym.make("hrm/Maze-v0", size=size)
        figures[f"env_steps_per_s_size{size}"] = interleaved(lambda: env_step_rate(env, t), reference)

    sub = gym.vector.SyncVectorEnv([lambda: gym.make("hrm/Maze-v0", size=40)] * args.num_envs)
    ref = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * args.num_envs)
    figures["sync_vector_steps_per_s_size40"] = interleaved(lambda: vector_step_rate(sub, t), lambda: vector_step_rate(ref, t))
    sub.close()
    ref.close()

    oracle = oracle_for("hrm/Maze-v0")
    observations = random_walk_observations(gym.make("hrm/Maze-v0", size=40, kind="loops"), 2000, seed=0)
    labels = label_rates(oracle, observations, t)
    figures["oracle_optimal_actions_per_s_size40"] = labels["single"]
    figures["oracle_act_batch_labels_per_s_size40"] = labels["batch"]
    for kind in ("perfect", "loops"):
        figures[f"generate_and_solve_size40_{kind}"] = generation_ms(40, kind, 200)
    hard = gym.make("hrm/Maze-v0", size=30, max_size=30, min_path_len=111)
    start = time.perf_counter()
    for seed in range(50):
        hard.reset(seed=seed)
    figures["generate_hrm_hard_30x30_path111_ms"] = round((time.perf_counter() - start) / 50 * 1e3, 3)

    targets = {
        "steps_ratio_to_cartpole>=0.5": all(figures[f"env_steps_per_s_size{s}"]["ratio"] >= 0.5 for s in SIZES),
        "oracle_labels_per_s>=50000": min(labels.values()) >= 50_000,
        "generate_and_solve_size40_ms<10": all(
            figures[f"generate_and_solve_size40_{k}"]["median_ms"] < 10 for k in ("perfect", "loops")
        ),
    }
    return emit("maze", figures, targets)


if __name__ == "__main__":
    main()
