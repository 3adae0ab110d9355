"""Checks of the suite's public contract, shared by every environment's tests.

``check_contract(env_id, kwargs)`` runs Gymnasium's ``check_env`` and then the suite's own promises:
deterministic seeded resets, masks that agree with ``action_masks()`` and with the observation
space, ``info["cost"]`` and ``info["is_success"]`` (True only on a successful termination) on every step,
illegal actions that leave the state unchanged, ``copy.deepcopy`` independence, ``ResetNeeded`` on a step
after the episode's end, ``ValueError`` on out-of-space actions, and both render modes.
``vector_oracle_successes`` plays the batched oracle on a vector env.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _random_masked_action(rng: np.random.Generator, mask: np.ndarray) -> int:
    return int(rng.choice(np.flatnonzero(mask)))


def check_contract(env_id: str, kwargs: dict[str, Any] | None = None, seeds: range = range(3), steps: int = 60) -> None:
    """Raise ``AssertionError`` where the env breaks the suite's contract."""
    kwargs = kwargs or {}
    env = gym.make(env_id, **kwargs)
    check_env(env.unwrapped, skip_render_check=True)
    rng = np.random.default_rng(0)
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        again, _ = gym.make(env_id, **kwargs).reset(seed=seed)
        assert _same(obs, again), f"reset(seed={seed}) is not deterministic"
        assert env.observation_space.contains(obs), "reset observation outside observation_space"
        for _ in range(steps):
            mask = env.unwrapped.action_masks()
            assert mask.dtype == bool and np.array_equal(mask, obs["action_mask"].astype(bool)), "action_masks() != obs['action_mask']"
            twin = copy.deepcopy(env.unwrapped)
            illegal = np.flatnonzero(~mask)
            took_illegal = len(illegal) > 0 and rng.random() < 0.3
            action = int(rng.choice(illegal)) if took_illegal else _random_masked_action(rng, mask)
            new_obs, _, terminated, truncated, info = env.step(action)
            if took_illegal and not terminated:
                state_keys = [k for k in obs if k != "action_mask"]
                assert all(np.array_equal(obs[k], new_obs[k]) for k in state_keys), "an illegal action changed the state"
            assert "cost" in info and info["cost"] >= 0, "info['cost'] missing or negative"
            assert isinstance(info.get("is_success"), bool), "info['is_success'] missing"
            assert not info["is_success"] or terminated, "info['is_success'] True on a step that did not terminate"
            assert env.observation_space.contains(new_obs), "step observation outside observation_space"
            twin_obs, _, twin_term, _, twin_info = twin.step(action)
            assert _same(new_obs, twin_obs) and twin_term == terminated and twin_info["cost"] == info["cost"], (
                "a deep copy did not continue identically"
            )
            obs = new_obs
            if terminated or truncated:
                try:
                    env.step(action)
                except gym.error.ResetNeeded:
                    break
                raise AssertionError("step() after the episode's end did not raise ResetNeeded")
    env.reset(seed=0)
    n = env.action_space.n
    for bad in (-1, n, 1.5, "0"):
        try:
            env.step(bad)
        except ValueError:
            continue
        raise AssertionError(f"step({bad!r}) did not raise ValueError")
    for mode in ("ansi", "rgb_array"):
        render_env = gym.make(env_id, render_mode=mode, **kwargs)
        render_env.reset(seed=0)
        frame = render_env.render()
        if mode == "ansi":
            assert isinstance(frame, str) and frame.strip(), "ansi render must be a non-empty string"
        else:
            assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
            assert frame.min() < frame.max(), "rgb_array render is blank"


def vector_oracle_successes(
    env_id: str, kwargs: dict[str, Any], vector_cls: type[gym.vector.VectorEnv], steps: int, num_envs: int = 3, seed: int = 7
) -> int:
    """Episodes the batched oracle (``act_batch``) finishes on a vector env in ``steps`` steps.

    Asserts on the way that ``call("action_masks")`` agrees with the observed masks, that no episode is
    truncated and that every terminating episode succeeds.
    """
    from oracles import oracle_for  # oracles depend on hrm_envs, not the other way round

    envs = vector_cls([lambda: gym.make(env_id, **kwargs)] * num_envs)
    oracle = oracle_for(env_id)
    obs, _ = envs.reset(seed=seed)
    successes = 0
    for _ in range(steps):
        masks = np.stack(envs.call("action_masks"))
        assert np.array_equal(masks, obs["action_mask"].astype(bool)), "action_masks() != obs['action_mask']"
        obs, _, terminated, truncated, info = envs.step(oracle.act_batch(obs))  # autoreset steps: any action is fine
        assert not truncated.any(), "the oracle ran into truncation"
        if terminated.any():
            assert info["is_success"][terminated].all(), "the oracle terminated without success"
            successes += int(terminated.sum())
    envs.close()
    return successes
