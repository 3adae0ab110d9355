"""HRMPolicy on hrm/Hanoi-v0: legal actions, reported segments, MaskablePPO training."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from sb3_contrib import MaskablePPO

import hrm_envs  # noqa: F401  (registers the ids)
from agents.policy import MODEL_CONFIG, HRMPolicy

SMALL = {"hidden_size": 32, "num_heads": 2, "H_layers": 1, "L_layers": 1, "H_cycles": 1, "L_cycles": 1,
         "halt_max_steps": 3}
KWARGS = {"env_id": "hrm/Hanoi-v0", "hrm_config": SMALL}


def make_model(env: gym.Env, **kwargs) -> MaskablePPO:
    return MaskablePPO(HRMPolicy, env, policy_kwargs=KWARGS, n_steps=64, batch_size=32, n_epochs=1, seed=0,
                       device="cpu", **kwargs)


def test_predict_returns_legal_actions_and_segments() -> None:
    env = gym.make("hrm/Hanoi-v0", num_disks=(2, 4), max_disks=5)
    policy = make_model(env).policy
    obs, _ = env.reset(seed=0)
    for _ in range(30):
        action, segments = policy.predict_with_segments(obs, deterministic=False)
        assert obs["action_mask"][int(action)] == 1
        assert segments.shape == (1,) and 1 <= segments[0] <= SMALL["halt_max_steps"]
        obs, _, terminated, truncated, _ = env.step(int(action))
        if terminated or truncated:
            obs, _ = env.reset()
    with torch.no_grad():
        policy.model.q_head.bias.copy_(torch.tensor([5.0, -5.0]))  # a Q-head that halts at once
    assert policy.predict_with_segments(obs)[1][0] == 1


def test_halting_defaults_to_the_model_config_and_segments_are_reported() -> None:
    """Without halting fields in hrm_config the policy acts as configs/model/hrm.yaml says (not HRMConfig's 8
    segments per step); ``last_segments`` and ``predict_with_segments`` report what each decision used."""
    model_config = OmegaConf.load(MODEL_CONFIG)
    env = gym.make("hrm/Hanoi-v0", num_disks=3, max_disks=4)
    small = {k: v for k, v in SMALL.items() if k != "halt_max_steps"}
    policy = MaskablePPO(HRMPolicy, env, policy_kwargs={"hrm_config": small}, n_steps=64, batch_size=32,
                         device="cpu").policy
    assert policy.config.halt_max_steps == model_config.halt_max_steps < 8
    assert policy.config.inference_halting == model_config.inference_halting
    assert policy.hrm_config["halt_max_steps"] == model_config.halt_max_steps  # saved with the model
    obs, _ = env.reset(seed=0)
    action, segments = policy.predict_with_segments(obs)
    assert obs["action_mask"][int(action)] == 1
    # the fresh Q-head never halts (q_halt == q_continue), so every decision runs the config's maximum
    np.testing.assert_array_equal(segments, [model_config.halt_max_steps])
    np.testing.assert_array_equal(policy.last_segments, segments)
    explicit = MaskablePPO(HRMPolicy, env, policy_kwargs={"hrm_config": {**small, "halt_max_steps": 5,
                                                                         "inference_halting": "max_steps"}},
                           device="cpu").policy
    assert explicit.predict_with_segments(obs)[1][0] == 5  # an explicit config wins


def test_evaluate_actions_has_gradient_and_matches_rollout_log_prob() -> None:
    env = gym.make("hrm/Hanoi-v0", num_disks=3, max_disks=4)
    policy = make_model(env).policy
    obs, _ = env.reset(seed=1)
    tensor_obs, _ = policy.obs_to_tensor(obs)
    tensor_obs = {k: v.float() for k, v in tensor_obs.items()}  # as the rollout buffer stores them
    with torch.no_grad():
        actions, values, log_prob = policy(tensor_obs)
    new_values, new_log_prob, entropy = policy.evaluate_actions(tensor_obs, actions)
    assert torch.allclose(new_log_prob, log_prob, atol=1e-5) and torch.allclose(new_values, values, atol=1e-5)
    (new_log_prob.sum() + new_values.sum()).backward()
    assert policy.model.heads.per_token.weight.grad is not None
    assert policy.model.L_level.layers[0].attn.qkv.weight.grad is not None


def test_maskable_ppo_runs() -> None:
    env = gym.make("hrm/Hanoi-v0", num_disks=2, max_disks=3, max_steps=20)
    model = make_model(env)
    before = [p.detach().clone() for p in model.policy.model.parameters()]
    model.learn(total_timesteps=256)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.model.parameters()))


def test_policy_rejects_bad_configuration() -> None:
    env = gym.make("hrm/Hanoi-v0", max_disks=3)
    with pytest.raises(ValueError, match="seq_len"):
        MaskablePPO(HRMPolicy, env, policy_kwargs={"hrm_config": {"seq_len": 5}}, device="cpu")
    with pytest.raises(ValueError, match="hidden_size"):
        MaskablePPO(HRMPolicy, env, policy_kwargs={"hrm_config": {"hidden_size": 0}}, device="cpu")
    with pytest.raises(ValueError, match="episode_carry=true is not supported by the PPO policy"):
        MaskablePPO(HRMPolicy, env, policy_kwargs={"hrm_config": {"episode_carry": True}}, device="cpu")


def test_weights_transfer_across_max_disks() -> None:
    """Rope and the per-token head have no size-dependent parameters: a 3-disk policy runs on 6 disks."""
    small_env = gym.make("hrm/Hanoi-v0", num_disks=3, max_disks=3)
    large_env = gym.make("hrm/Hanoi-v0", num_disks=6, max_disks=6)
    small, large = make_model(small_env).policy, make_model(large_env).policy
    large.load_state_dict(small.state_dict())
    obs, _ = large_env.reset(seed=3)
    action, segments = large.predict_with_segments(obs)
    assert obs["action_mask"][int(action)] == 1 and segments[0] >= 1
