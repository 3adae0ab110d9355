"""train.runs: the helpers the entry points share (presets, data sets, device, optimizer keys, multirun outs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

import train.dagger as dagger
from configs import CONFIG_DIR
from train.datasets import build, parse_spec
from train.runs import OPTIM_KEYS, ensure_dataset, job_out, load_preset, optim_config, setup_distributed
from train.schema import OPTIM

ROOT = Path(__file__).resolve().parents[2]

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


DAGGER_TINY = ["model.hidden_size=32", "model.num_heads=2", "model.H_layers=1", "model.L_layers=1", "model.halt_max_steps=2",
               "train.batch_size=64", "progress=false", "dagger.sizes=[2,3]", "env.eval_sizes=[4]", "dagger.envs=4",
               "dagger.steps=24", "dagger.vector=sync", "dagger.rounds=0", "dagger.train_steps=2", "dagger.eval_puzzles=0"]


@pytest.fixture
def hydra_job(monkeypatch):
    """Set Hydra's job state as ``python -m train.dagger [-m] ARGS`` would: ``(multirun, args) -> the job's cfg``."""

    def job(multirun: bool, args: list[str], job_values: list[str]) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("dagger", overrides=job_values, return_hydra_config=True)
        cfg.hydra.mode = RunMode.MULTIRUN if multirun else RunMode.RUN
        HydraConfig.instance().set_config(cfg)
        monkeypatch.setattr(sys, "argv", ["train.dagger", *(["-m"] if multirun else []), *args])
        return cfg

    yield job
    HydraConfig.instance().cfg = None


def test_job_out_names_the_swept_values_in_a_multirun_only(hydra_job):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("dagger")
    job_out(cfg, dagger.RESUMABLE)  # outside Hydra (main(cfg) called directly): unchanged
    assert cfg.out == "runs/dagger/hanoi-hrm"
    cfg = hydra_job(False, ["train.lr=1e-3"], ["train.lr=1e-3"])
    job_out(cfg, dagger.RESUMABLE)
    assert cfg.out == "runs/dagger/hanoi-hrm"  # a single run keeps its default
    args = ["train.lr=1e-3,3e-3", "seed=1", "resume=true,false"]
    cfg = hydra_job(True, args, ["train.lr=0.003", "seed=1", "resume=true"])
    job_out(cfg, dagger.RESUMABLE)
    assert cfg.out == "runs/dagger/hanoi-hrm/train.lr=0.003"  # resumable keys stay out of the name
    cfg = hydra_job(True, ["out=mine", "train.lr=1e-3,3e-3"], ["out=mine", "train.lr=0.003"])
    job_out(cfg, dagger.RESUMABLE)
    assert cfg.out == "mine"  # an out given on the command line is the user's


@pytest.mark.slow
def test_a_multirun_gives_each_job_its_own_out(tmp_path):
    """``python -m train.dagger -m train.lr=1e-3,3e-3``: two runs side by side (before, the second job found the
    first one's folder and stopped)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "train.dagger", "-m", "train.lr=1e-3,3e-3", *DAGGER_TINY], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = tmp_path / "runs" / "dagger" / "hanoi-hrm"
    assert sorted(p.name for p in runs.iterdir()) == ["train.lr=0.001", "train.lr=0.003"]
    assert all((runs / name / "last.pt").is_file() for name in ("train.lr=0.001", "train.lr=0.003"))
