"""City routing speed: env steps/s at sizes 10, 20, 40 against CartPole-v1, oracle labels/s, generation + solve time.

    python -m benchmarks.city [--seconds 1.0]

Targets: steps/s at least 0.5x CartPole's in the same run; at least 50,000 oracle labels/s
after the per-instance solve; instance generation + solve under 30 ms at size 40.
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
from hrm_envs.city import CityGenerator
from oracles.city import CityRoutingOracle


def generation_and_solve_ms(size: int, count: int, seed: int = 0) -> dict[str, float]:
    """Median and 95th-percentile milliseconds to draw one puzzle and solve it (a fresh oracle each time)."""
    generator, rng = CityGenerator((size, size)), np.random.default_rng(seed)
    times = []
    for i in range(count):
        start = time.perf_counter()
        puzzle = generator(rng, i % 4)
        obs = {
            "street": puzzle.street, "traffic": puzzle.traffic, "oneway": puzzle.oneway,
            "vehicle": np.array([puzzle.vehicle], np.int8), "position": np.array(puzzle.start, np.int16),
            "destination": np.array(puzzle.destination, np.int16),
        }  # fmt: skip
        CityRoutingOracle().cost_to_go(obs)
        times.append(1000 * (time.perf_counter() - start))
    times.sort()
    return {"median_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(0.95 * len(times))], 2)}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="duration of each timed run")
    parser.add_argument("--num-envs", type=int, default=8, help="sub-envs of the vector runs")
    args = parser.parse_args()
    t = args.seconds

    figures, targets = {}, {}
    reference = cartpole_rate(t)
    for size in (10, 20, 40):
        env = gym.make("hrm/CityRouting-v0", size=size, max_size=size)
        figures[f"env_steps_per_s_size{size}"] = result = interleaved(lambda: env_step_rate(env, t), reference)
        targets[f"steps_ratio_to_cartpole>=0.5_size{size}"] = result["ratio"] >= 0.5

    sync = gym.vector.SyncVectorEnv([lambda: gym.make("hrm/CityRouting-v0")] * args.num_envs)
    sync_ref = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * args.num_envs)
    figures["sync_vector_steps_per_s_size40"] = interleaved(lambda: vector_step_rate(sync, t), lambda: vector_step_rate(sync_ref, t))
    sync.close()
    sync_ref.close()

    oracle = CityRoutingOracle()
    city = gym.make("hrm/CityRouting-v0", size=40, max_size=40)
    observations = random_walk_observations(city, 3000, seed=0, episode_steps=500)
    labels = label_rates(oracle, observations, t)
    figures["oracle_optimal_actions_per_s_size40"] = labels["single"]
    figures["oracle_act_batch_labels_per_s_size40"] = labels["batch"]
    figures["generation_plus_solve_size40"] = gen = generation_and_solve_ms(40, 100)
    targets["oracle_labels_per_s>=50000"] = min(labels.values()) >= 50_000
    targets["generation_plus_solve_median_ms<30"] = gen["median_ms"] < 30
    return emit("city", figures, targets)


if __name__ == "__main__":
    main()
