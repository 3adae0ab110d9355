"""train.runs: the helpers the entry points share (presets, data sets, device, optimizer keys)."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from train.datasets import build, parse_spec
from train.runs import OPTIM_KEYS, ensure_dataset, load_preset, optim_config, setup_distributed
from train.schema import OPTIM

TINY = {"name": "tiny", "kind": "stepwise", "env": "hrm/Hanoi-v0", "size_arg": "num_disks", "env_kwargs": {"max_disks": 3},
        "splits": {"train": {"sizes": [1, 2], "puzzles": 3, "seed": 0}, "test": {"sizes": [3], "puzzles": 2, "seed": 100}}}


def test_load_preset_reads_a_shipped_preset_and_names_the_available_ones():
    assert load_preset("hanoi-small")["env"] == "hrm/Hanoi-v0"
    with pytest.raises(ValueError, match=r"env.preset 'nope' is not a preset .* available: \[.*'hanoi-small'"):
        load_preset("nope")


def test_setup_distributed_gives_the_cpu_outside_torchrun_and_refuses_bad_devices():
    assert setup_distributed("cpu") == (torch.device("cpu"), 0, 1)
    with pytest.raises(ValueError, match="device must be one of"):
        setup_distributed("gpu")


def test_optim_config_keeps_the_optimizer_keys_only():
    assert set(OPTIM_KEYS) == {key.removeprefix("train.") for key in OPTIM}
    picked = optim_config({"lr": 1e-3, "betas": (0.9, 0.95), "epochs": 3, "batch_size": 8})
    assert picked == {"lr": 1e-3, "betas": [0.9, 0.95]}


def test_ensure_dataset_uses_a_built_set_and_refuses_one_of_another_env(tmp_path):
    root = tmp_path / "tiny"
    build(parse_spec(TINY), root, "test", progress=False)
    env = OmegaConf.create({"id": "hrm/Hanoi-v0", "data_dir": str(root), "preset": "tiny", "eval_split": "test"})
    assert ensure_dataset(env, 0) == root
    env.id = "hrm/Maze-v0"
    with pytest.raises(ValueError, match="holds a hrm/Hanoi-v0 data set, but env.id is 'hrm/Maze-v0'"):
        ensure_dataset(env, 0)
    env.id, env.eval_split = "hrm/Hanoi-v0", "val"
    with pytest.raises(ValueError, match=r"env.eval_split must be one of \['test', 'train'\]"):
        ensure_dataset(env, 0)
