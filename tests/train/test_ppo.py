"""train.ppo: the wall-time budget holds inside a PPO update, and bad ppo keys are refused."""

from __future__ import annotations

import base64
import json
import os
import time
import zipfile

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from sb3_contrib import MaskablePPO
from stable_baselines3.common import save_util

import hrm_envs  # noqa: F401
from configs import CONFIG_DIR
from train.ppo import PLAIN_MEMBER, DeadlinePPO, PPOPolicy, save_model, train


def ppo_config(tmp_path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("ppo", overrides=[f"out={tmp_path / 'ppo'}", "ppo.policy=mlp", *overrides])


def test_budget_cuts_the_update_between_minibatches(tmp_path):
    # 1,000 epochs of 7 * 64 / 8 = 56 minibatches would take minutes; the 3 s budget must stop the update
    cfg = ppo_config(tmp_path, "ppo.minutes=0.05", "ppo.n_steps=64", "ppo.batch_size=8", "ppo.n_epochs=1000")
    started = time.monotonic()
    progress = train(cfg)
    assert time.monotonic() - started < 20
    assert progress["timesteps"] >= 7 * 64  # the first rollout was collected and trained on


def test_update_after_the_deadline_still_takes_one_minibatch(tmp_path):
    import gymnasium as gym

    import hrm_envs  # noqa: F401

    model = DeadlinePPO("MultiInputPolicy", gym.make("hrm/Hanoi-v0", num_disks=3), n_steps=32, batch_size=8,
                        n_epochs=50, device="cpu", seed=0)
    model.deadline = time.monotonic() - 1.0  # already past: the update does exactly one gradient step
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=32)
    changed = sum(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters()))
    assert changed > 0
    assert "get" not in vars(model.rollout_buffer)  # the minibatch stream is restored after the update


def test_bad_ppo_keys_are_refused(tmp_path):
    with pytest.raises(ValueError, match="ppo.n_epochs"):
        train(ppo_config(tmp_path, "ppo.n_epochs=0"))
    with pytest.raises(ValueError, match="ppo.lr must be a finite number, got inf"):
        train(ppo_config(tmp_path, "ppo.lr=inf"))
    with pytest.raises(ValueError, match="seed must be an int >= 0, got 1.5"):
        train(ppo_config(tmp_path, "seed=1.5"))
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("ppo", overrides=[f"out={tmp_path / 'x'}", "+ppo.epochs=3"])
    with pytest.raises(ValueError, match="unknown ppo keys"):
        train(cfg)


def test_hrm_policy_trains_from_the_model_configs_defaults(tmp_path):
    """model=hrm as configs/model/hrm.yaml gives it (null fields = HRMConfig defaults) builds and trains the policy."""
    cfg = ppo_config(tmp_path, "ppo.policy=hrm", "model.hidden_size=16", "model.num_heads=2", "ppo.minutes=0.05",
                     "ppo.n_steps=16", "ppo.batch_size=8", "ppo.n_epochs=1", "ppo.envs=2", "ppo.vector=dummy")
    assert cfg.model.attention_window is None
    progress = train(cfg)
    assert progress["timesteps"] >= 2 * 16 and (tmp_path / "ppo" / "model.zip").is_file()
    policy = PPOPolicy(tmp_path / "ppo" / "model.zip")  # rebuilt from plain data, no unpickling
    obs = {k: v[None] for k, v in gym.make("hrm/Hanoi-v0").reset(seed=0)[0].items()}
    actions, segments = policy.act_batch(obs)
    assert obs["action_mask"][0, actions[0]] and segments[0] >= 1


class RunsAShellCommand:
    """Unpickling this runs ``touch marker``: what a malicious model.zip entry could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def rewrite_data(path, out, change) -> None:
    """A copy of the zip at ``path`` whose ``data`` JSON went through ``change``."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            payload = source.read(name)
            if name == "data":
                data = json.loads(payload)
                change(data)
                payload = json.dumps(data).encode()
            target.writestr(name, payload)


def test_saved_models_load_without_unpickling_and_pickled_code_is_refused(tmp_path, monkeypatch):
    env = gym.make("hrm/Hanoi-v0", num_disks=3)
    model = MaskablePPO("MultiInputPolicy", env, n_steps=16, batch_size=8, n_epochs=1, device="cpu", seed=0)
    model.learn(16)  # the last observation and episode buffers are pickled entries too
    path = tmp_path / "model.zip"
    save_model(model, path, "mlp")
    obs = {k: np.stack([env.reset(seed=s)[0][k] for s in range(4)]) for k in env.observation_space.spaces}
    expected = model.predict(obs, action_masks=obs["action_mask"].astype(bool), deterministic=True)[0]

    def no_unpickling(*args, **kwargs):
        raise AssertionError("cloudpickle.loads called")

    with monkeypatch.context() as patched:
        patched.setattr(save_util.cloudpickle, "loads", no_unpickling)
        assert np.array_equal(PPOPolicy(path).act_batch(obs)[0], expected)

    marker = tmp_path / "marker"
    evil = {":type:": "x", ":serialized:": base64.b64encode(cloudpickle.dumps(RunsAShellCommand(marker))).decode()}
    rewrite_data(path, tmp_path / "replaced.zip", lambda data: data.update(observation_space=evil))
    assert np.array_equal(PPOPolicy(tmp_path / "replaced.zip").act_batch(obs)[0], expected)  # rebuilt, not read
    rewrite_data(path, tmp_path / "extra.zip", lambda data: data.update(gift=evil))
    with pytest.raises(ValueError, match=r"pickled entries \['gift'\].*trust_pickle=true"):
        PPOPolicy(tmp_path / "extra.zip")
    assert not marker.exists()
    cloudpickle.loads(base64.b64decode(evil[":serialized:"]))  # the payload is real: unpickling runs it
    assert marker.exists()

    model.save(tmp_path / "plain_sb3.zip")  # SB3's own save: no plain description, so opt-in only
    with pytest.raises(ValueError, match=f"no {PLAIN_MEMBER}.*trust_pickle=true"):
        PPOPolicy(tmp_path / "plain_sb3.zip")
    assert np.array_equal(PPOPolicy(tmp_path / "plain_sb3.zip", trust_pickle=True).act_batch(obs)[0], expected)
