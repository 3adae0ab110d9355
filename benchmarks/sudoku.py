"""Sudoku speed: env steps/s against CartPole-v1, oracle labels/s, generation rate per level, solve time on top95.

    python -m benchmarks.sudoku [--seconds 1.0]

Targets: mean solve time at most 20 ms and max at most 500 ms per hard 9x9 puzzle (the
stored "top95" list, many with 17 givens; each solve also proves uniqueness) on one core; at least
20 unique 9x9 puzzles generated per second at medium difficulty. Step rates include resets, which
generate a new puzzle each episode; ``env_steps_per_s_box3_no_reset`` shows the step cost alone.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np

import hrm_envs  # noqa: F401  (registers the ids)
from benchmarks.harness import (
    cartpole_rate, emit, env_step_rate, interleaved, random_walk_observations, rate, vector_step_rate,
)
from hrm_envs.sudoku import LEVELS, SudokuGenerator, hard_puzzles
from hrm_envs.sudoku.solver import solve
from oracles import oracle_for

SIZES = {2: "medium", 3: "medium", 4: "easy"}  # box -> level used for step rates


def solve_times(puzzles: list[str]) -> list[float]:
    """Milliseconds to solve each puzzle and prove its solution unique (search for a second one)."""
    times = []
    for puzzle in puzzles:
        grid = [0 if ch in ".0" else int(ch) for ch in puzzle]
        start = time.perf_counter()
        result = solve(grid, 3, limit=2)
        times.append((time.perf_counter() - start) * 1e3)
        if len(result.solutions) != 1:
            raise RuntimeError(f"stored puzzle {puzzle} does not have exactly one solution")
    return times


def summary(times: list[float]) -> dict[str, float]:
    return {
        "count": len(times),
        "mean_ms": round(statistics.mean(times), 3),
        "median_ms": round(statistics.median(times), 3),
        "max_ms": round(max(times), 3),
    }


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="duration of each timed run")
    parser.add_argument("--num-envs", type=int, default=8, help="sub-envs of the vector run")
    args = parser.parse_args()
    t = args.seconds

    figures: dict = {}
    reference = cartpole_rate(t)
    for box, level in SIZES.items():
        env = gym.make("hrm/Sudoku-v0", box=box, difficulty=level)
        figures[f"env_steps_per_s_box{box}_{level}"] = interleaved(lambda: env_step_rate(env, t), reference)
    long_episode = gym.make("hrm/Sudoku-v0", max_steps=10**9)
    figures["env_steps_per_s_box3_no_reset"] = interleaved(lambda: env_step_rate(long_episode, t), reference)

    sub = gym.vector.SyncVectorEnv([lambda: gym.make("hrm/Sudoku-v0")] * args.num_envs)
    ref = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * args.num_envs)
    figures["sync_vector_steps_per_s_box3"] = interleaved(lambda: vector_step_rate(sub, t), lambda: vector_step_rate(ref, t))
    sub.close()
    ref.close()

    oracle = oracle_for("hrm/Sudoku-v0")
    observations = random_walk_observations(gym.make("hrm/Sudoku-v0"), 2000, seed=0)
    for obs in observations:
        oracle.cost_to_go(obs)  # the per-puzzle solve happens here, outside the timing
    batch = {key: np.stack([o[key] for o in observations[:256]]) for key in observations[0]}
    position = {"i": 0}

    def label_one() -> int:
        oracle.label(observations[position["i"] % len(observations)])
        position["i"] += 1
        return 1

    labels = rate(label_one, t)
    batch_labels = rate(lambda: len(oracle.label_batch(batch).action), t)
    figures["oracle_label_per_s_box3"] = round(labels, 1)
    figures["oracle_label_batch256_labels_per_s_box3"] = round(batch_labels, 1)

    generation = {}
    for box, levels in ((2, ("medium",)), (3, LEVELS), (4, ("medium",))):
        for level in levels:
            generator = SudokuGenerator(box, level)
            rng = np.random.default_rng(0)

            def generate_one() -> int:
                generator(rng)
                return 1

            budget = t * (5 if level == "extreme" or box == 4 else 1)
            generation[f"box{box}_{level}"] = round(rate(generate_one, budget), 2)
    figures["generated_unique_puzzles_per_s"] = generation

    puzzles = hard_puzzles("top95")
    times = solve_times(puzzles)
    figures["solve_top95"] = summary(times)
    figures["solve_top95_17_givens"] = summary([ms for ms, p in zip(times, puzzles) if sum(ch != "." for ch in p) == 17])

    targets = {
        "solve_top95_mean_ms<=20": figures["solve_top95"]["mean_ms"] <= 20,
        "solve_top95_max_ms<=500": figures["solve_top95"]["max_ms"] <= 500,
        "medium_9x9_puzzles_per_s>=20": generation["box3_medium"] >= 20,
    }
    return emit("sudoku", figures, targets)


if __name__ == "__main__":
    main()
