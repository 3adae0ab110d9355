"""Loading built data sets: numpy views of a split, and PyTorch ``Dataset``s for ``train.supervised``.

Every file is checked against ``summary.json`` as it loads: a missing, truncated or mismatched file
raises ``ValueError`` naming it, never a silently wrong shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import gymnasium as gym
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from hrm_envs import encoder_for
from train.datasets.storage import load_array, load_json


def observation_space(summary: dict) -> gym.spaces.Dict:
    """The observation space of a built set (its env made with ``summary["obs_env_kwargs"]``)."""
    try:
        env = gym.make(summary["env"], **summary["obs_env_kwargs"])
    except (TypeError, ValueError, gym.error.Error) as error:  # e.g. the env of another set's kwargs
        raise ValueError(f"summary.json: env {summary['env']!r} cannot be made with its obs_env_kwargs: {error}") from None
    space = env.observation_space
    env.close()
    return space


def _check_size_indices(puzzle_size: np.ndarray, sizes: list[str], path: Path) -> None:
    """Refuse size indices outside the split's ``sizes`` (they would be miscounted or index out of range)."""
    outside = puzzle_size[(puzzle_size < 0) | (puzzle_size >= len(sizes))]
    if outside.size:
        raise ValueError(f"{path} holds size index {int(outside[0])}, outside the {len(sizes)} sizes {sizes} of summary.json")


class StepwiseSplit:
    """One split of a step-wise set as numpy arrays, with observations rebuilt on demand."""

    def __init__(self, root: str | Path, split: str):
        root = Path(root)
        self.summary = load_json(root / "summary.json")
        if self.summary.get("kind") != "stepwise":
            raise ValueError(f"{root / 'summary.json'} describes a {self.summary.get('kind')!r} set, not a stepwise one")
        if split not in self.summary["splits"]:
            raise ValueError(f"split must be one of {sorted(self.summary['splits'])}, got {split!r}")
        info = self.summary["splits"][split]
        folder = root / split
        self.num_samples, self.num_puzzles, self.num_actions = info["samples"], info["puzzles"], info["num_actions"]
        n, p = (self.num_samples,), (self.num_puzzles,)
        self.action = load_array(folder / "action.npy", n, np.int64)
        self.optimal_bits = load_array(folder / "optimal.npy", (n[0], (self.num_actions + 7) // 8), np.uint8)
        self.cost_to_go = load_array(folder / "cost_to_go.npy", n, np.float32)
        self.puzzle = load_array(folder / "puzzle.npy", n, np.int32)
        self.step = load_array(folder / "step.npy", n, np.int32)
        self.offsets = load_array(folder / "puzzle_offsets.npy", (p[0] + 1,), np.int64)
        self.puzzle_size = load_array(folder / "puzzle_size.npy", p, np.int32)
        if self.offsets[0] != 0 or self.offsets[-1] != self.num_samples or (np.diff(self.offsets) < 1).any():
            raise ValueError(f"{folder / 'puzzle_offsets.npy'} is inconsistent with {self.num_samples} samples")
        numbering = np.repeat(np.arange(self.num_puzzles), np.diff(self.offsets))
        if not np.array_equal(self.puzzle, numbering):
            first = int(np.flatnonzero(self.puzzle != numbering)[0])
            raise ValueError(
                f"{folder / 'puzzle.npy'}: sample {first} has puzzle index {self.puzzle[first]}, puzzle_offsets.npy says {numbering[first]}"
            )
        _check_size_indices(self.puzzle_size, info["sizes"], folder / "puzzle_size.npy")
        self.observation_space = observation_space(self.summary)
        self.per_sample: dict[str, np.ndarray] = {}
        self.per_puzzle: dict[str, np.ndarray] = {}
        for key, space in self.observation_space.spaces.items():
            static = key in info["static_keys"]
            name = f"puzzle_obs.{key}.npy" if static else f"obs.{key}.npy"
            array = load_array(folder / name, (p[0] if static else n[0], *space.shape), space.dtype)
            (self.per_puzzle if static else self.per_sample)[key] = array

    def obs(self, index: int) -> dict[str, np.ndarray]:
        """The observation of sample ``index``."""
        puzzle = self.puzzle[index]
        out = {key: array[index] for key, array in self.per_sample.items()}
        out.update({key: array[puzzle] for key, array in self.per_puzzle.items()})
        return out

    def obs_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Observations of many samples, stacked."""
        puzzles = self.puzzle[indices]
        out = {key: array[indices] for key, array in self.per_sample.items()}
        out.update({key: array[puzzles] for key, array in self.per_puzzle.items()})
        return out

    def optimal_row(self, index: int) -> np.ndarray:
        return np.unpackbits(self.optimal_bits[index], count=self.num_actions).astype(bool)


class StepwiseDataset(Dataset):
    """(tokens, action mask, optimal-action set, canonical action) per sample, tokens from the env's encoder.

    Items are dicts of tensors: ``tokens`` (long, seq_len), ``action_mask`` and ``optimal`` (bool,
    num_actions), ``action``, ``puzzle``, ``step`` (long scalars).
    """

    def __init__(self, root: str | Path, split: str):
        self.split = StepwiseSplit(root, split)
        self.encoder = encoder_for(self.split.summary["env"], self.split.observation_space)
        everything = np.arange(self.split.num_samples)
        obs = self.split.obs_batch(everything)
        self.tokens = torch.from_numpy(self.encoder.tokens(obs))
        self.action_mask = torch.from_numpy(obs["action_mask"].astype(bool))
        self.optimal = torch.from_numpy(np.unpackbits(self.split.optimal_bits, axis=1, count=self.split.num_actions).astype(bool))
        self.action = torch.from_numpy(self.split.action)
        self.puzzle = torch.from_numpy(self.split.puzzle.astype(np.int64))
        self.step = torch.from_numpy(self.split.step.astype(np.int64))

    def __len__(self) -> int:
        return self.split.num_samples

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "tokens": self.tokens[index],
            "action_mask": self.action_mask[index],
            "optimal": self.optimal[index],
            "action": self.action[index],
            "puzzle": self.puzzle[index],
            "step": self.step[index],
        }


#: The seq2seq layout's ``dataset.json`` keys and fixed ids (HRM's ``puzzle_dataset.py``; ``train.datasets.seq2seq``).
METADATA_KEYS = (
    "pad_id", "ignore_label_id", "blank_identifier_id", "vocab_size", "seq_len",
    "num_puzzle_identifiers", "total_groups", "mean_puzzle_examples", "sets",
)  # fmt: skip
PAD_ID = IGNORE_LABEL_ID = BLANK_IDENTIFIER_ID = 0
SET_NAME = "all"


def token_dtype(vocab_size: int) -> np.dtype:
    """The dtype of stored tokens: uint8 as HRM's sets when the vocabulary fits, else int32."""
    return np.dtype(np.uint8 if vocab_size <= 256 else np.int32)


#: The loss's ignore index (``agents.hrm.IGNORE_LABEL``): labels equal to ``ignore_label_id`` become it.
IGNORE_LABEL = -100


class Seq2SeqSplit:
    """One split of an HRM seq2seq set as numpy arrays, every file checked against ``dataset.json``
    and ``summary.json``; ``sources=True`` also loads the provenance (observations, bases, transforms)."""

    def __init__(self, root: str | Path, split: str, sources: bool = False):
        root = Path(root)
        self.summary = load_json(root / "summary.json")
        if self.summary.get("kind") != "seq2seq":
            raise ValueError(f"{root / 'summary.json'} describes a {self.summary.get('kind')!r} set, not a seq2seq one")
        if split not in self.summary["splits"]:
            raise ValueError(f"split must be one of {sorted(self.summary['splits'])}, got {split!r}")
        info = self.summary["splits"][split]
        folder = root / split
        meta_path = folder / "dataset.json"
        self.metadata: dict = load_json(meta_path)
        missing = [key for key in METADATA_KEYS if key not in self.metadata]
        if missing:
            raise ValueError(f"{meta_path} lacks the keys {missing}")
        self.num_examples, self.num_puzzles, self.num_groups = info["examples"], info["puzzles"], info["groups"]
        if self.metadata["total_groups"] != self.num_groups:
            raise ValueError(f"{meta_path} says total_groups={self.metadata['total_groups']}, summary.json {self.num_groups}")
        seq_len, dtype = self.metadata["seq_len"], token_dtype(self.metadata["vocab_size"])
        e, p, g = self.num_examples, self.num_puzzles, self.num_groups
        name = lambda field: folder / f"{SET_NAME}__{field}.npy"  # noqa: E731
        self.inputs = load_array(name("inputs"), (e, seq_len), dtype)
        self.labels = load_array(name("labels"), (e, seq_len), dtype)
        self.puzzle_identifiers = load_array(name("puzzle_identifiers"), (p,), np.int32)
        self.puzzle_indices = load_array(name("puzzle_indices"), (p + 1,), np.int32)
        self.group_indices = load_array(name("group_indices"), (g + 1,), np.int32)
        for field, offsets, total in (("puzzle_indices", self.puzzle_indices, e), ("group_indices", self.group_indices, p)):
            if offsets[0] != 0 or offsets[-1] != total or (np.diff(offsets) < 1).any():
                raise ValueError(f"{name(field)} must rise strictly from 0 to {total}")
        self.observations: dict[str, np.ndarray] = {}
        if sources:
            self.observation_space = observation_space(self.summary)
            for key, space in self.observation_space.spaces.items():
                if key != "action_mask":  # derived, not stored
                    self.observations[key] = load_array(folder / f"obs.{key}.npy", (e, *space.shape), space.dtype)
            self.puzzle_base = load_array(folder / "puzzle_base.npy", (p,), np.int32)
            self.puzzle_variant = load_array(folder / "puzzle_variant.npy", (p,), np.int32)
            self.puzzle_size = load_array(folder / "puzzle_size.npy", (p,), np.int32)
            _check_size_indices(self.puzzle_size, info["sizes"], folder / "puzzle_size.npy")
            transforms = load_array(folder / "puzzle_transform.npy", dtype=np.int64)
            if transforms.ndim != 2 or transforms.shape[0] != p:
                raise ValueError(f"data file {folder / 'puzzle_transform.npy'} has shape {transforms.shape}, expected ({p}, params)")
            self.puzzle_transform = transforms
            self.base_seed = load_array(folder / "base_seed.npy", (info["bases"],), np.int64)

    def obs(self, example: int) -> dict[str, np.ndarray]:
        """The env observation of one example (``sources=True``)."""
        return {key: array[example] for key, array in self.observations.items()}


class Seq2SeqDataset(Dataset):
    """HRM seq2seq examples of one split for ``train.supervised`` (``Seq2SeqDataset(root, split)``).

    Items are dicts of tensors, the batch keys of ``agents.hrm``: ``tokens`` (long, seq_len) the
    puzzle, ``labels`` (long, seq_len) the solution with ``ignore_label_id`` positions set to
    ``IGNORE_LABEL`` (-100), ``puzzle_identifiers`` (long scalar). ``metadata`` is the split's
    ``dataset.json`` (``vocab_size``, ``seq_len``, ``num_puzzle_identifiers`` size the model);
    ``puzzle_of`` and ``group_of`` map examples to puzzles and groups. Shuffle with a ``DataLoader``
    (every example once per epoch) or sample HRM's way with ``group_sampler(seed)`` (one example per
    group per epoch, so augmented copies do not multiply the epoch). Missing, truncated or
    mismatched files raise ``ValueError`` naming the file.
    """

    def __init__(self, root: str | Path, split: str):
        self.split = Seq2SeqSplit(root, split)
        self.metadata = self.split.metadata
        labels = torch.from_numpy(self.split.labels.astype(np.int64))
        self.tokens = torch.from_numpy(self.split.inputs.astype(np.int64))
        self.labels = torch.where(labels == self.metadata["ignore_label_id"], IGNORE_LABEL, labels)
        puzzle_of = np.repeat(np.arange(self.split.num_puzzles), np.diff(self.split.puzzle_indices))
        self.puzzle_of = torch.from_numpy(puzzle_of)
        self.group_of = torch.from_numpy(np.repeat(np.arange(self.split.num_groups), np.diff(self.split.group_indices))[puzzle_of])
        self.puzzle_identifiers = torch.from_numpy(self.split.puzzle_identifiers.astype(np.int64))[self.puzzle_of]
        #: (E, T, K) bool: an auxiliary per-token move field set by the trainer (``train.seq2seq.move_fields``).
        self.field: torch.Tensor | None = None
        #: (E, T) float: an auxiliary per-token cost to the goal set by the trainer (``train.seq2seq.cost_fields``).
        self.cost: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.split.num_examples

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"tokens": self.tokens[index], "labels": self.labels[index], "puzzle_identifiers": self.puzzle_identifiers[index]}

    def group_sampler(self, seed: int = 0, groups: np.ndarray | None = None) -> "GroupSampler":
        """HRM's sampler over all groups, or over the ``groups`` given (e.g. without the validation ones)."""
        return GroupSampler(self.split.group_indices, self.split.puzzle_indices, seed, groups)


class GroupSampler(Sampler[int]):
    """HRM's sampling: per epoch the groups in a random order, from each one random puzzle and one random
    example of it. Each ``iter`` is a new epoch; the sequence of epochs is fixed by ``seed``."""

    def __init__(self, group_indices: np.ndarray, puzzle_indices: np.ndarray, seed: int = 0,
                 groups: np.ndarray | None = None):
        self.group_indices, self.puzzle_indices = np.asarray(group_indices), np.asarray(puzzle_indices)
        self.groups = np.arange(len(self.group_indices) - 1) if groups is None else np.asarray(groups, np.int64)
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.groups)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        for group in self.groups[rng.permutation(len(self))]:
            puzzle = rng.integers(self.group_indices[group], self.group_indices[group + 1])
            yield int(rng.integers(self.puzzle_indices[puzzle], self.puzzle_indices[puzzle + 1]))
