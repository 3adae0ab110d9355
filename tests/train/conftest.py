"""Fixtures shared by the train tests: a small Hanoi env and its encoder, tiny model configs, oracle-labelled
batches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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


#: A tiny city set: 3 train bases (the run holds the last out), 2 test bases, 4 vehicles each.
CITY_TINY = {"name": "city-tiny", "kind": "seq2seq", "env": "hrm/CityRouting-v0", "size_arg": "size",
             "env_kwargs": {"max_size": 8}, "variants": True, "num_aug": 0,
             "splits": {"train": {"sizes": [8], "puzzles": 3, "seed": 0}, "test": {"sizes": [8], "puzzles": 2, "seed": 1000000}}}


@pytest.fixture(scope="module")
def city_run(tmp_path_factory) -> tuple[Path, Path]:
    """(data set, checkpoint) of a one-epoch seq2seq.field=true TRM on :data:`CITY_TINY` that held the last train
    base out (``seq2seq.validation_bases=1``)."""
    from hydra import compose, initialize_config_dir

    from configs import CONFIG_DIR
    from train import supervised
    from train.datasets import build, parse_spec

    tmp = tmp_path_factory.mktemp("city")
    build(parse_spec(CITY_TINY), tmp / "data", "test", progress=False)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("supervised", overrides=[
            "env=city_paper", f"env.data_dir={tmp / 'data'}", "env.kwargs.max_size=8", "train=tiny", "train.epochs=1",
            "train.batch_size=4", f"out={tmp / 'run'}", "progress=false", "model=trm", "model.hidden_size=16",
            "model.num_heads=2", "model.L_layers=1", "seq2seq.field=true", "seq2seq.validation_bases=1"])
    supervised.train(cfg)
    return tmp / "data", tmp / "run" / "last.pt"
