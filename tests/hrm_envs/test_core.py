"""What hrm_envs.core gives every env alike: argument and option checks, reset/step order, is_success on every
step, vector-env and SB3 autoreset, and the README's action_masks forms."""

from __future__ import annotations

import math
import re
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import sb3_contrib.common.maskable.utils
from gymnasium.envs.registration import load_env_creator
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers import TimeLimit
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from hrm_envs import ENVS
from hrm_envs.core import ArgumentError, ResetNeeded
from oracles import oracle_for

#: Small instances of every registered env, so each test stays fast.
SMALL = {
    "hrm/Hanoi-v0": {"num_disks": 2},
    "hrm/Maze-v0": {"size": 5, "max_size": 7},
    "hrm/CityRouting-v0": {"size": 8, "max_size": 8},
    "hrm/Sudoku-v0": {"box": 2},
}
ENV_IDS = sorted(ENVS)


def test_small_covers_every_registered_env():
    assert sorted(SMALL) == ENV_IDS


def _env_class(env_id: str) -> type:
    return load_env_creator(ENVS[env_id].entry_point)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_unknown_reset_options_are_refused(env_id):
    env = gym.make(env_id, **SMALL[env_id])
    with pytest.raises(ValueError, match=r"'puzle'.*allowed keys: \['puzzle'\]"):
        env.reset(seed=0, options={"puzle": "anything"})
    env.reset(seed=0, options={})  # no option is fine


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_unknown_constructor_arguments_are_a_value_error(env_id):
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['bogus'\].*allowed arguments: .*'render_mode'"):
        gym.make(env_id, bogus=1)
    with pytest.raises(ValueError, match=r"\['bogus'\].*allowed arguments"):
        _env_class(env_id)(bogus=1)
    with pytest.raises(ValueError, match="allowed arguments"):
        _env_class(env_id)(*range(20))  # too many positional arguments
    assert issubclass(ArgumentError, TypeError)  # what Python raises there, for callers that catch it


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("name", ["success_reward", "step_penalty"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float32("nan"), True])
def test_non_finite_rewards_are_refused(env_id, name, value):
    with pytest.raises(ValueError, match=f"{name} must be a finite number"):
        gym.make(env_id, **{name: value})


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_the_class_itself_enforces_reset_before_use(env_id):
    env = _env_class(env_id)(render_mode="ansi", **SMALL[env_id])
    for use in (lambda: env.step(0), lambda: env.step(env.action_space.n - 1), env.render, env.action_masks, lambda: env.puzzle):
        with pytest.raises(ResetNeeded, match=r"call reset\(\) first"):
            use()
    assert issubclass(ResetNeeded, gym.error.ResetNeeded) and issubclass(ResetNeeded, ValueError)
    env.reset(seed=0)
    env.step(0)
    assert env.render()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_step_after_termination_or_truncation_raises(env_id):
    env = gym.make(env_id, **SMALL[env_id])
    obs, _ = env.reset(seed=0)
    for action in oracle_for(env_id).solve(obs):
        obs, _, terminated, truncated, info = env.step(action)
    assert terminated and info["is_success"]
    with pytest.raises(ResetNeeded, match="episode has ended"):
        env.step(action)
    assert env.unwrapped.action_masks().shape == (env.action_space.n,)  # the final state still renders and masks
    env = gym.make(env_id, max_steps=1, **SMALL[env_id])
    env.reset(seed=0)
    _, _, terminated, truncated, _ = env.step(0)
    assert truncated or terminated
    with pytest.raises(ResetNeeded, match="episode has ended"):
        env.step(0)
    env.reset(seed=1)
    env.step(0)  # a reset starts a new episode


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_vector_autoreset_modes_step_past_terminations(env_id, mode):
    envs = gym.vector.SyncVectorEnv([partial(gym.make, env_id, **SMALL[env_id])] * 2, autoreset_mode=mode)
    oracle = oracle_for(env_id)
    obs, _ = envs.reset(seed=3)
    done_episodes = 0
    for _ in range(60):
        obs, _, terminated, truncated, info = envs.step(oracle.act_batch(obs))
        assert not truncated.any()
        if terminated.any():
            final = info["final_info"] if mode == AutoresetMode.SAME_STEP else info
            assert final["is_success"][terminated].all()
            done_episodes += int(terminated.sum())
    envs.close()
    assert done_episodes >= 4


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_dummy_vec_env_resets_finished_episodes(env_id):
    vec = DummyVecEnv([partial(gym.make, env_id, **SMALL[env_id])] * 2)
    vec.seed(5)
    oracle = oracle_for(env_id)
    obs = vec.reset()
    successes = 0
    for _ in range(60):
        obs, _, dones, infos = vec.step(oracle.act_batch(obs))
        successes += sum(bool(info["is_success"]) for done, info in zip(dones, infos) if done)
    assert successes >= 4


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_is_success_on_every_step_so_outer_truncation_is_monitored(env_id):
    env = Monitor(TimeLimit(gym.make(env_id, **SMALL[env_id]), 2), info_keywords=("is_success",))
    _, info = env.reset(seed=0)
    assert info["is_success"] is False
    for _ in range(2):  # masked moves (or, without any, the first legal one): none can arrive in 2 steps
        mask = env.unwrapped.action_masks()
        _, _, terminated, truncated, info = env.step(int(np.flatnonzero(~mask if not mask.all() else mask)[0]))
        assert info["is_success"] is False and not terminated
    assert truncated and info["episode"]["is_success"] is False  # Monitor found the key on TimeLimit's step


def _readme_action_mask_calls() -> list[str]:
    """The code spans of README.md that call something named ``action_masks``."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    return [span for span in re.findall(r"`([^`\n]+)`", readme) if re.search(r"action_masks\W*\(", span)]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_readme_action_mask_forms_work_on_a_gym_make_env(env_id):
    calls = _readme_action_mask_calls()
    assert len(calls) >= 3
    env = gym.make(env_id, **SMALL[env_id])
    obs, _ = env.reset(seed=0)
    for call in calls:
        mask = eval(call, {"env": env, "sb3_contrib": sb3_contrib})  # noqa: S307 - the README's own snippets
        assert mask.dtype == bool and np.array_equal(mask, obs["action_mask"].astype(bool)), call


def test_the_grid_move_order_is_defined_once():
    """One move order for the grid envs, shared by the envs, oracles and augmentations."""
    import hrm_envs.city.generator as city
    import hrm_envs.maze.generator as maze
    import oracles.maze
    import train.datasets.augment as augment
    from hrm_envs.core import MOVES

    assert MOVES == ((-1, 0), (0, 1), (1, 0), (0, -1))  # up, right, down, left: the action ids of Maze and City
    for module in (maze, oracles.maze, augment):
        assert module.MOVES is MOVES, module.__name__
    assert list(zip(city.DR, city.DC)) == list(MOVES)
