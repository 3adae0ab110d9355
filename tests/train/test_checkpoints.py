"""train.checkpoints: atomic round trips, refusing other configs and pickled code, older checkpoints, config
mismatches."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from agents.hrm import HRM
from train.acting import load_policy
from train.checkpoints import (
    checkpoint_config, config_mismatches, init_weights, load_checkpoint, load_rank_state, save_checkpoint,
)
from train.learner import Learner

torch.set_num_threads(1)  # tiny models: one thread is fastest, and the machine is shared


def test_checkpoint_round_trip_is_atomic_and_refuses_other_configs(encoder, hanoi, tmp_path, model_cfg, oracle_batch):
    torch.manual_seed(0)
    config = {"model": model_cfg("hrm"), "train": {"lr": 1e-3}}
    learner = Learner(config["model"], config["train"], encoder)
    batch = oracle_batch(8)
    for _ in range(3):
        learner.train_step(batch)
    path = tmp_path / "ck" / "last.pt"
    save_checkpoint(path, learner, config, epoch=2, batch_in_epoch=1)
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary file left behind
    expected = learner.train_step(batch)

    torch.manual_seed(123)  # the checkpoint restores the RNG (HRM's exploration draws from it)
    other = Learner(config["model"], config["train"], encoder)
    assert load_checkpoint(path, other, config) == (2, 1) and other.step == 3
    assert other.train_step(batch) == expected
    assert checkpoint_config(path) == config
    with pytest.raises(ValueError, match=r"model\.hidden_size: checkpoint 32, now 64"):
        load_checkpoint(path, other, {**config, "model": {**config["model"], "hidden_size": 64}})
    assert load_checkpoint(path, other, {**config, "train": {"lr": 2.0}}, ignore=["train"]) == (2, 1)
    policy = load_policy(path, encoder)
    obs = {k: v[None] for k, v in hanoi.reset(seed=0)[0].items()}
    assert isinstance(policy.model, HRM) and policy.act_batch(obs)[0].shape == (1,)
    longer = load_policy(path, encoder, acting={"inference_halting": "max_steps", "halt_max_steps": 5})
    assert (longer.model.config.halt_max_steps, longer.model.config.inference_halting) == (5, "max_steps")
    assert not policy.remembers and load_policy(path, encoder, acting={"episode_carry": True}).remembers
    with pytest.raises(ValueError, match="acting overrides must be among"):
        load_policy(path, encoder, acting={"hidden_size": 8})
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="unreadable or truncated"):
        load_checkpoint(path, other, config)


class RunsAShellCommand:
    """Unpickling this runs ``touch marker``: what a malicious checkpoint could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_checkpoint_holding_pickled_code_is_refused_without_running_it(encoder, tmp_path, model_cfg):
    marker, evil = tmp_path / "marker", tmp_path / "evil.pt"
    torch.save({"config": {}, "model_config": {}, "step": 0, "rng": RunsAShellCommand(marker)}, evil)
    learner = Learner(model_cfg("mlp"), {}, encoder)
    readers = [lambda: checkpoint_config(evil), lambda: load_policy(evil, encoder),
               lambda: load_checkpoint(evil, learner, {}), lambda: init_weights(evil, learner)]
    for read in readers:
        with pytest.raises(ValueError, match=r"holds pickled Python objects \(posix\.system\).*refused"):
            read()
        assert not marker.exists()
    torch.save({"step": 0, "rng": RunsAShellCommand(marker)}, tmp_path / "evil.rank1.pt")  # a DDP rank's part
    with pytest.raises(ValueError, match="pickled Python objects"):
        load_rank_state(evil, learner, 1)
    assert not marker.exists()
    torch.load(evil, weights_only=False)  # the repro is real: unpickling runs the command
    assert marker.exists()


def test_checkpoints_hold_plain_data_and_older_ones_with_numpy_rng_still_load(encoder, tmp_path, model_cfg):
    import random

    learner = Learner(model_cfg("hrm"), {}, encoder)
    random.seed(1)
    np.random.seed(2)
    path = tmp_path / "last.pt"
    save_checkpoint(path, learner, {"run": 1}, epoch=1)
    draws = (random.random(), np.random.rand())
    state = torch.load(path, weights_only=True)  # no allow-listed globals needed: tensors and plain data only
    assert isinstance(state["rng"]["numpy"][1], list)
    # a checkpoint of an earlier version: python's tuple state and numpy's (name, uint32 array, ...) tuple
    state["rng"]["python"], state["rng"]["numpy"] = random.getstate(), np.random.get_state()
    state["step"] = 7
    torch.save(state, tmp_path / "old.pt")
    later = (random.random(), np.random.rand())
    for name, expected in (("last.pt", draws), ("old.pt", later)):
        random.seed(9)
        np.random.seed(9)
        load_checkpoint(tmp_path / name, learner, {"run": 1})
        assert (random.random(), np.random.rand()) == expected


def test_config_mismatches_treat_a_missing_key_as_null():
    saved = {"dagger": {"steps": 128}, "seed": 0}  # written before dagger.horizon existed
    assert config_mismatches(saved, {"dagger": {"steps": 128, "horizon": None}, "seed": 0}) == []
    assert config_mismatches(saved, {"dagger": {"steps": 128, "horizon": 1.5}, "seed": 0}) == [
        "dagger.horizon: checkpoint '<missing>', now 1.5"]
    assert config_mismatches(saved, {"dagger": {"steps": 64}, "seed": 1}, ignore=["seed"]) == [
        "dagger.steps: checkpoint 128, now 64"]
