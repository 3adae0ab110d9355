"""Step-wise imitation sets: every state of an oracle trajectory with its canonical action, the full
optimal-action set, the cost-to-go, the puzzle id and the step index.

Layout of ``<out>/<split>/``: ``obs.<key>.npy`` (per sample) or ``puzzle_obs.<key>.npy`` (per puzzle,
for keys constant along every trajectory, e.g. a maze's walls); ``action.npy`` (int64);
``optimal.npy`` (the optimal set as bits, ``np.packbits`` along actions); ``cost_to_go.npy`` (float32);
``puzzle.npy`` and ``step.npy`` (int32 per sample); ``puzzle_offsets.npy`` (int64, puzzles + 1);
``puzzle_size.npy`` (int32 index into the split's sizes).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from oracles import Oracle, oracle_for
from train.datasets.draw import draw_puzzles
from train.datasets.spec import DatasetSpec
from train.datasets.storage import save_array


def oracle_trajectories(envs: list[gym.Env], starts: list[dict], oracle: Oracle, progress: tqdm) -> list[list[tuple]]:
    """(obs, canonical action, optimal-action row, cost-to-go) of every state of each env's oracle trajectory
    until successful termination. The envs step in lockstep, so the oracle labels one batch per step."""
    trajectories: list[list[tuple]] = [[] for _ in envs]
    current, active = list(starts), list(range(len(envs)))
    while active:
        labels = oracle.label_batch({key: np.stack([current[i][key] for i in active]) for key in current[active[0]]})
        still = []
        for row, i in enumerate(active):
            action = int(labels.action[row])
            trajectories[i].append((current[i], action, labels.optimal[row], float(labels.cost_to_go[row])))
            current[i], _, terminated, truncated, info = envs[i].step(action)
            if terminated and not info["is_success"]:
                raise RuntimeError(f"oracle trajectory of {envs[i].spec.id if envs[i].spec else envs[i]} ended without success")
            if truncated and not terminated:
                raise RuntimeError(f"oracle trajectory truncated after {len(trajectories[i])} steps; raise the env's max_steps")
            if terminated:
                progress.update(1)
            else:
                still.append(i)
        active = still
    return trajectories


def build_split(spec: DatasetSpec, split_name: str, folder: Path, exclude: set[str], progress: bool) -> dict[str, Any]:
    """Write one split into ``folder``; returns its summary (counts per size) and adds its hashes to ``exclude``."""
    split = spec.splits[split_name]
    oracle = oracle_for(spec.env)
    observations: list[dict] = []
    actions, optimal, costs, puzzles, steps, offsets, sizes, hashes, seeds = [], [], [], [], [], [0], [], [], set()
    envs, starts = [], []
    for draw in draw_puzzles(spec, split, exclude):
        envs.append(copy.deepcopy(draw.env.unwrapped))  # the draw's env moves on to the next puzzle
        starts.append(draw.obs)
        sizes.append(draw.size_index)
        hashes.append(draw.hash)
        seeds.add(draw.seed)
    if not envs:
        raise ValueError(f"split {split_name!r} drew no puzzles")
    num_actions = envs[0].action_space.n
    with tqdm(total=len(envs), desc=f"{spec.name}/{split_name}", unit="puzzle", disable=not progress) as bar:
        trajectories = oracle_trajectories(envs, starts, oracle, bar)
    for puzzle, trajectory in enumerate(trajectories):
        for step, (obs, action, row, cost) in enumerate(trajectory):
            observations.append(obs)
            actions.append(action)
            optimal.append(row)
            costs.append(cost)
            puzzles.append(puzzle)
            steps.append(step)
        offsets.append(len(actions))
    exclude.update(hashes)
    offsets_array = np.array(offsets, dtype=np.int64)
    static_keys = []
    for key in sorted(observations[0]):
        stacked = np.stack([obs[key] for obs in observations])
        firsts = stacked[offsets_array[:-1]]
        if np.array_equal(stacked, np.repeat(firsts, np.diff(offsets_array), axis=0)):
            save_array(folder, f"puzzle_obs.{key}", firsts)
            static_keys.append(key)
        else:
            save_array(folder, f"obs.{key}", stacked)
    save_array(folder, "action", np.array(actions, dtype=np.int64))
    save_array(folder, "optimal", np.packbits(np.stack(optimal), axis=1))
    save_array(folder, "cost_to_go", np.array(costs, dtype=np.float32))
    save_array(folder, "puzzle", np.array(puzzles, dtype=np.int32))
    save_array(folder, "step", np.array(steps, dtype=np.int32))
    save_array(folder, "puzzle_offsets", offsets_array)
    save_array(folder, "puzzle_size", np.array(sizes, dtype=np.int32))
    per_size = {}
    lengths = np.diff(offsets_array)
    size_array = np.array(sizes)
    for index, size in enumerate(split.sizes):
        chosen = size_array == index
        per_size[spec.size_label(size)] = {"puzzles": int(chosen.sum()), "samples": int(lengths[chosen].sum())}
    return {
        "puzzles": len(sizes),
        "requested_puzzles": split.puzzles,
        "samples": len(actions),
        "per_size": per_size,
        "bases": len(seeds),
        "seed": split.seed,
        "seed_range": [min(seeds), max(seeds)],
        "sizes": [spec.size_label(s) for s in split.sizes],
        "static_keys": static_keys,
        "num_actions": int(num_actions),
    }
