"""Loading built data sets: numpy views of a split, and PyTorch ``Dataset``s for ``train.supervised``.

Every file is checked against ``summary.json`` as it loads: a missing, truncated or mismatched file
raises ``ValueError`` naming it, never a silently wrong shape.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch.utils.data import Dataset

from hrm_envs import encoder_for
from train.datasets.storage import load_array, load_json


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
        env = gym.make(self.summary["env"], **self.summary["env_kwargs"])
        self.observation_space: gym.spaces.Dict = env.observation_space
        env.close()
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
