"""train.ppo: the wall-time budget holds inside a PPO update, and bad ppo keys are refused."""

from __future__ import annotations

import time

import pytest
import torch
from hydra import compose, initialize_config_dir

from train.ppo import CONFIG_DIR, DeadlinePPO, train


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
