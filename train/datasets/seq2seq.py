"""HRM seq2seq sets (whole puzzle in, whole solution out) in the reference on-disk layout.

Per split folder ``<out>/<split>/``, as HRM's ``puzzle_dataset.py`` reads them:

- ``all__inputs.npy``, ``all__labels.npy``: (examples, seq_len) tokens from the env encoder's
  ``seq2seq(obs, oracle)`` (uint8 when the vocabulary fits, else int32);
- ``all__puzzle_identifiers.npy`` (puzzles,) int32: all ``blank_identifier_id`` (0), as HRM's Sudoku
  and Maze sets (every puzzle here has one example; the input shows the whole task);
- ``all__puzzle_indices.npy`` (puzzles + 1,) int32: cumulative example offsets per puzzle;
- ``all__group_indices.npy`` (groups + 1,) int32: cumulative puzzle offsets per group. A group is one
  original puzzle followed by its augmented copies (``num_aug``, ``train`` split only, as in HRM's
  builders); HRM's training loop samples a group, then one puzzle in it;
- ``dataset.json``: ``pad_id`` 0, ``ignore_label_id`` 0 (label 0 = padding, e.g. outside a smaller
  maze or city; loaders turn it into the loss's ignore index), ``blank_identifier_id`` 0,
  ``vocab_size`` (the encoder's ``seq2seq_vocab_size``, inputs and labels share it), ``seq_len``,
  ``num_puzzle_identifiers`` 1, ``total_groups``, ``mean_puzzle_examples`` 1.0, ``sets`` ["all"].

Provenance, ignored by HRM's loader and used by validation: ``obs.<key>.npy`` (the env observation of
every example, without the derived ``action_mask``), ``puzzle_base.npy`` (base scenario index in the
split), ``puzzle_variant.npy`` (the variant of its base, e.g. the city vehicle),
``puzzle_transform.npy`` (the augmentation's parameter row: identity for a group's first puzzle),
``puzzle_size.npy`` (index into the split's sizes) and ``base_seed.npy``. The root also holds HRM's
``identifiers.json`` (``["<blank>"]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from hrm_envs import encoder_for
from hrm_envs.registry import ENVS, seq2seq_ids
from oracles import oracle_for
from train.datasets.augment import Augmentation, augmentation_for, puzzle_of
from train.datasets.draw import draw_puzzles, make_env, puzzle_hash
from train.datasets.loading import BLANK_IDENTIFIER_ID, IGNORE_LABEL_ID, PAD_ID, SET_NAME, token_dtype
from train.datasets.spec import DatasetSpec
from train.datasets.storage import save_array, save_json

def split_augmentation(spec: DatasetSpec, split_name: str) -> tuple[Augmentation, int]:
    """The augmentation and ``num_aug`` of one split (augmented copies only in ``train``)."""
    if not ENVS[spec.env].seq2seq:
        raise ValueError(f"preset.kind seq2seq needs an env with a seq2seq encoder, one of {seq2seq_ids()}; got {spec.env}")
    env = make_env(spec, spec.splits[split_name].sizes[0])
    augmentation = augmentation_for(spec.env, env.observation_space)
    env.close()
    num_aug = spec.num_aug if split_name == "train" else 0
    if num_aug > augmentation.max_variants:
        raise ValueError(f"preset.num_aug must be <= {augmentation.max_variants} for {spec.env} ({augmentation.name}), got {num_aug}")
    return augmentation, num_aug


def build_split(spec: DatasetSpec, split_name: str, folder: Path, exclude: set[str], progress: bool) -> dict[str, Any]:
    """Write one split into ``folder``; returns its summary and adds the keys of all its examples to ``exclude``."""
    split = spec.splits[split_name]
    oracle = oracle_for(spec.env)
    augmentation, num_aug = split_augmentation(spec, split_name)
    observations, inputs, labels = [], [], []
    bases, variants, transforms, sizes, group_offsets, base_seeds = [], [], [], [], [0], []
    key = augmentation.canonical_key
    encoder, shown = None, set()  # hashes of the split's examples so far
    draws = draw_puzzles(spec, split, exclude, key=key)
    total = None if spec.variants else split.puzzles  # puzzles per base are known only with the first base
    for draw in tqdm(draws, total=total, desc=f"{spec.name}/{split_name}", unit="puzzle", disable=not progress):
        if encoder is None:
            encoder = encoder_for(spec.env, draw.env.observation_space)
        if draw.variant == 0:
            base_seeds.append(draw.seed)
        rows = [augmentation.identity(draw.obs)]
        if num_aug:
            rows += list(augmentation.sample(np.random.default_rng([draw.seed, draw.variant]), draw.obs, num_aug))
        for number, params in enumerate(rows):
            obs = augmentation.apply(draw.obs, params) if number else draw.obs
            digest = puzzle_hash(obs)
            if digest in shown:  # a symmetric puzzle, or a copy of another example: dropped from the group
                continue
            if number:
                _check_round_trip(draw.env, spec.env, obs)
            shown.add(digest)
            exclude.add(draw.hash if number == draw.variant == 0 else key(obs))  # later draws (this split and the next) avoid it
            x, y = encoder.seq2seq(obs, oracle)
            observations.append(obs)
            inputs.append(x)
            labels.append(y)
            bases.append(draw.base)
            variants.append(draw.variant)
            transforms.append(np.asarray(params, dtype=np.int64))
            sizes.append(draw.size_index)
        group_offsets.append(len(inputs))
    if encoder is None:
        raise ValueError(f"split {split_name!r} drew no puzzles")
    vocab, dtype = encoder.seq2seq_vocab_size, token_dtype(encoder.seq2seq_vocab_size)
    examples, groups = len(inputs), len(group_offsets) - 1
    save_array(folder, f"{SET_NAME}__inputs", np.stack(inputs).astype(dtype))
    save_array(folder, f"{SET_NAME}__labels", np.stack(labels).astype(dtype))
    save_array(folder, f"{SET_NAME}__puzzle_identifiers", np.full(examples, BLANK_IDENTIFIER_ID, dtype=np.int32))
    save_array(folder, f"{SET_NAME}__puzzle_indices", np.arange(examples + 1, dtype=np.int32))
    save_array(folder, f"{SET_NAME}__group_indices", np.array(group_offsets, dtype=np.int32))
    save_json(folder / "dataset.json", metadata(vocab, encoder.seq_len, groups, examples, examples))
    for name in sorted(set(observations[0]) - {"action_mask"}):  # the mask is derived
        save_array(folder, f"obs.{name}", np.stack([obs[name] for obs in observations]))
    save_array(folder, "puzzle_base", np.array(bases, dtype=np.int32))
    save_array(folder, "puzzle_variant", np.array(variants, dtype=np.int32))
    save_array(folder, "puzzle_transform", np.stack(transforms))
    save_array(folder, "puzzle_size", np.array(sizes, dtype=np.int32))
    save_array(folder, "base_seed", np.array(base_seeds, dtype=np.int64))
    save_json(folder.parent / "identifiers.json", ["<blank>"])
    size_array, base_array = np.array(sizes), np.array(bases)
    first_of_group = np.array(group_offsets[:-1])
    per_size = {}
    for index, size in enumerate(split.sizes):
        chosen = size_array == index
        per_size[spec.size_label(size)] = {
            "bases": len(np.unique(base_array[chosen])),
            "groups": int(chosen[first_of_group].sum()),
            "examples": int(chosen.sum()),
        }
    return {
        "bases": len(base_seeds),
        "requested_bases": split.puzzles,
        "groups": groups,
        "puzzles": examples,
        "examples": examples,
        "per_size": per_size,
        "seed": split.seed,
        "seed_range": [min(base_seeds), max(base_seeds)],
        "sizes": [spec.size_label(s) for s in split.sizes],
        "num_aug": num_aug,
        "augmentation": augmentation.name if augmentation and num_aug else "none",
        "constant_answer_token_accuracy": _constant_accuracy(np.stack(labels)),
    }


def metadata(vocab_size: int, seq_len: int, groups: int, puzzles: int, examples: int) -> dict[str, Any]:
    """HRM's ``dataset.json`` of one split."""
    return {
        "pad_id": PAD_ID,
        "ignore_label_id": IGNORE_LABEL_ID,
        "blank_identifier_id": BLANK_IDENTIFIER_ID,
        "vocab_size": int(vocab_size),
        "seq_len": int(seq_len),
        "num_puzzle_identifiers": 1,
        "total_groups": int(groups),
        "mean_puzzle_examples": examples / puzzles,
        "sets": [SET_NAME],
    }


def _constant_accuracy(labels: np.ndarray) -> float:
    """Token accuracy of always answering the most frequent label (seed 004: token accuracy alone misleads)."""
    valid = labels[labels != IGNORE_LABEL_ID]
    return round(float(np.bincount(valid).max() / max(1, valid.size)), 6)


def _check_round_trip(env: Any, env_id: str, obs: dict[str, np.ndarray]) -> None:
    """An augmented observation must be exactly what the env shows for the transformed puzzle."""
    fresh, _ = env.reset(options={"puzzle": puzzle_of(env_id, obs)})
    if fresh.keys() != obs.keys() or not all(np.array_equal(fresh[k], obs[k]) for k in obs):
        raise RuntimeError(f"augmented observation of {env_id} is not a valid observation of its transformed puzzle")
