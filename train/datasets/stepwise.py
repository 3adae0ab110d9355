"""Step-wise imitation sets: every state of an oracle trajectory with its canonical action, the full
optimal-action set, the cost-to-go, the puzzle id and the step index.

Layout of ``<out>/<split>/``: ``obs.<key>.npy`` (per sample) or ``puzzle_obs.<key>.npy`` (per puzzle,
for keys constant along every trajectory, e.g. a maze's walls); ``action.npy`` (int64);
``optimal.npy`` (the optimal set as bits, ``np.packbits`` along actions); ``cost_to_go.npy`` (float32);
``puzzle.npy`` and ``step.npy`` (int32 per sample); ``puzzle_offsets.npy`` (int64, puzzles + 1);
``puzzle_size.npy`` (int32 index into the split's sizes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from oracles import oracle_for
from train.datasets.draw import draw_puzzles
from train.datasets.spec import DatasetSpec
from train.datasets.storage import save_array


def oracle_trajectory(env, obs, oracle) -> list[tuple[dict, int, frozenset[int], float]]:
    """(obs, canonical action, optimal set, cost-to-go) of every state until successful termination."""
    steps = []
    while True:
        label = oracle.label(obs)
        steps.append((obs, label.action, label.optimal, label.cost_to_go))
        obs, _, terminated, truncated, info = env.step(label.action)
        if terminated:
            if not info["is_success"]:
                raise RuntimeError(f"oracle trajectory of {env.spec.id if env.spec else env} ended without success")
            return steps
        if truncated:
            raise RuntimeError(f"oracle trajectory truncated after {len(steps)} steps; raise the env's max_steps")


def build_split(spec: DatasetSpec, split_name: str, folder: Path, exclude: set[str], progress: bool) -> dict[str, Any]:
    """Write one split into ``folder``; returns its summary (counts per size) and adds its hashes to ``exclude``."""
    split = spec.splits[split_name]
    oracle = oracle_for(spec.env)
    observations: list[dict] = []
    actions, optimal, costs, puzzles, steps, offsets, sizes, hashes, seeds = [], [], [], [], [], [0], [], [], set()
    num_actions = None
    for draw in tqdm(draw_puzzles(spec, split, exclude), total=split.puzzles, desc=f"{spec.name}/{split_name}", disable=not progress):
        num_actions = draw.env.action_space.n
        trajectory = oracle_trajectory(draw.env, draw.obs, oracle)
        for step, (obs, action, labels, cost) in enumerate(trajectory):
            observations.append(obs)
            actions.append(action)
            row = np.zeros(num_actions, dtype=bool)
            row[list(labels)] = True
            optimal.append(row)
            costs.append(cost)
            puzzles.append(len(sizes))
            steps.append(step)
        offsets.append(len(actions))
        sizes.append(draw.size_index)
        hashes.append(draw.hash)
        seeds.add(draw.seed)
    exclude.update(hashes)
    if not sizes:
        raise ValueError(f"split {split_name!r} drew no puzzles")
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
