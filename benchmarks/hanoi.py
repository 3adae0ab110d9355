"""Hanoi speed: env steps/s (single and vector) against CartPole-v1, and oracle labels/s at N = 10.

    python -m benchmarks.hanoi [--seconds 1.0]

Targets: steps/s at least 0.5x CartPole's in the same run; at least 20,000 oracle labels/s.
"""

from __future__ import annotations

import argparse

import gymnasium as gym

import hrm_envs  # noqa: F401  (registers the ids)
from benchmarks.harness import (
    cartpole_rate, emit, env_step_rate, interleaved, label_rates, random_walk_observations, vector_step_rate,
)
from oracles import oracle_for


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="duration of each timed run")
    parser.add_argument("--num-envs", type=int, default=8, help="sub-envs of the vector runs")
    args = parser.parse_args()
    t = args.seconds

    hanoi = gym.make("hrm/Hanoi-v0", num_disks=10)
    single = interleaved(lambda: env_step_rate(hanoi, t), cartpole_rate(t))

    def vector_pair(vector_cls):
        sub = vector_cls([lambda: gym.make("hrm/Hanoi-v0", num_disks=10)] * args.num_envs)
        ref = vector_cls([lambda: gym.make("CartPole-v1")] * args.num_envs)
        result = interleaved(lambda: vector_step_rate(sub, t), lambda: vector_step_rate(ref, t))
        sub.close()
        ref.close()
        return result

    sync = vector_pair(gym.vector.SyncVectorEnv)
    asynchronous = vector_pair(gym.vector.AsyncVectorEnv)

    oracle = oracle_for("hrm/Hanoi-v0")
    ten_disks = gym.make("hrm/Hanoi-v0", num_disks=10, max_disks=10)
    observations = random_walk_observations(ten_disks, 2000, seed=0, episode_steps=20)
    labels = label_rates(oracle, observations, t)
    figures = {
        "env_steps_per_s_N10": single,
        "sync_vector_steps_per_s_N10": sync,
        "async_vector_steps_per_s_N10": asynchronous,
        "oracle_optimal_actions_per_s_N10": labels["single"],
        "oracle_act_batch_labels_per_s_N10": labels["batch"],
    }
    targets = {
        "steps_ratio_to_cartpole>=0.5": single["ratio"] >= 0.5,
        "oracle_labels_per_s>=20000": min(labels.values()) >= 20_000,
    }
    return emit("hanoi", figures, targets)


if __name__ == "__main__":
    main()
