"""Fixtures shared by the train tests: a small Hanoi env and its encoder, tiny model configs, oracle-labelled
batches."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest
import torch

import hrm_envs  # noqa: F401
from hrm_envs.encoding import Encoder, encoder_for
from oracles import oracle_for

SMALL = {"hidden_size": 32, "num_heads": 4}
#: The fixtures' Hanoi: 3 disks in the token layout of up to 5.
ENV = dict(num_disks=3, max_disks=5)


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return encoder_for(gym.make("hrm/Hanoi-v0", **ENV))


@pytest.fixture
def hanoi() -> gym.Env:
    """A fresh 3-disk Hanoi env of :data:`ENV`."""
    return gym.make("hrm/Hanoi-v0", **ENV)


def tiny_model_cfg(kind: str) -> dict:
    """The ``model`` config of a tiny model of ``kind`` (fast to build and train)."""
    extra = {"H_layers": 1, "L_layers": 1} if kind in ("hrm", "transformer") else {"L_layers": 1} if kind == "trm" else {}
    return {"name": kind, **({"hidden_size": 32} if kind in ("mlp", "lstm", "gnn") else SMALL), **extra}


def hanoi_oracle_batch(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random 3-disk Hanoi states with every optimal action (ties included)."""
    env, oracle = gym.make("hrm/Hanoi-v0", **ENV), oracle_for("hrm/Hanoi-v0")
    encoder = encoder_for(env)
    observations = [env.reset(seed=seed + i)[0] for i in range(n)]
    obs = {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    return {"tokens": torch.as_tensor(encoder.tokens(obs)), "optimal": torch.as_tensor(oracle.label_batch(obs).optimal),
            "action_mask": torch.as_tensor(obs["action_mask"]).bool()}


@pytest.fixture
def model_cfg() -> Callable[[str], dict]:
    """:func:`tiny_model_cfg`: ``model_cfg(kind)``."""
    return tiny_model_cfg


@pytest.fixture
def oracle_batch() -> Callable[..., dict[str, torch.Tensor]]:
    """:func:`hanoi_oracle_batch`: ``oracle_batch(n, seed=0)``."""
    return hanoi_oracle_batch
