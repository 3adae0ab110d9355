"""Hanoi environment: contract, dynamics, bad input, invariants, vector envs, encodings, RL usability."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hrm_envs  # noqa: F401
from hrm_envs import encoder_for
from hrm_envs.checks import check_contract, vector_oracle_successes
from hrm_envs.hanoi import HanoiEnv, HanoiPuzzle
from hrm_envs.hanoi.env import ABSENT, legal_moves


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"num_disks": (1, 6)}, {"num_disks": 4, "max_disks": 4, "start": "standard", "goal": "standard"}, {"num_disks": 10}],
)
def test_contract(kwargs):
    check_contract("hrm/Hanoi-v0", kwargs)


def test_make_without_prior_import():
    code = "import gymnasium as gym; env = gym.make('hrm_envs:hrm/Hanoi-v0'); print(env.reset(seed=0)[0]['state'].shape)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(10,)"


def test_all_suite_ids_registered():
    import gymnasium.envs.registration as registration

    for env_id in ("hrm/Hanoi-v0", "hrm/Maze-v0", "hrm/CityRouting-v0", "hrm/Sudoku-v0"):
        assert env_id in registration.registry


def test_spaces_and_padding():
    env = HanoiEnv(num_disks=3, max_disks=5)
    obs, _ = env.reset(seed=0)
    assert env.action_space.n == 16
    assert obs["state"].shape == obs["goal"].shape == (5,)
    assert (obs["state"][3:] == ABSENT).all() and (obs["goal"][3:] == ABSENT).all()
    assert obs["action_mask"][-1] == 1  # STOP is always legal


def test_standard_modes_and_solved_instances_excluded():
    env = HanoiEnv(num_disks=4, start="standard", goal="standard")
    obs, _ = env.reset(seed=1)
    assert obs["state"][:4].tolist() == [0, 0, 0, 0] and obs["goal"][:4].tolist() == [2, 2, 2, 2]
    env = HanoiEnv(num_disks=1)
    for seed in range(30):
        obs, _ = env.reset(seed=seed)
        assert obs["state"][0] != obs["goal"][0]


def test_num_disks_range_is_sampled():
    env = HanoiEnv(num_disks=(2, 5))
    sizes = {int((env.reset(seed=s)[0]["state"] != ABSENT).sum()) for s in range(60)}
    assert sizes == {2, 3, 4, 5}


def test_moves_illegal_moves_stop_and_costs():
    env = HanoiEnv(max_disks=3)
    env.reset(options={"puzzle": {"start": "000", "goal": "222"}})
    obs, reward, terminated, truncated, info = env.step(3 * 1 + 2)  # disk 1 is covered by disk 0
    assert info == {"illegal_move": True, "cost": 1.0, "is_success": False} and obs["state"].tolist() == [0, 0, 0]
    assert not terminated and reward == pytest.approx(-0.01)
    obs, _, _, _, info = env.step(0 * 3 + 0)  # onto its own peg
    assert info["illegal_move"] and obs["state"].tolist() == [0, 0, 0]
    obs, _, _, _, info = env.step(0 * 3 + 2)
    assert not info["illegal_move"] and obs["state"].tolist() == [2, 0, 0]
    obs, _, _, _, info = env.step(1 * 3 + 2)  # onto a smaller disk
    assert info["illegal_move"] and obs["state"].tolist() == [2, 0, 0]
    obs, reward, terminated, _, info = env.step(9)  # STOP away from the goal
    assert terminated and info["is_success"] is False and info["cost"] == 0.0 and reward == 0.0


def test_success_on_stop_at_goal():
    env = HanoiEnv(num_disks=2, max_disks=2)
    env.reset(options={"puzzle": ([0, 0], [0, 1])})
    env.step(0 * 3 + 2)
    env.step(1 * 3 + 1)
    obs, reward, terminated, _, info = env.step(0 * 3 + 0)
    assert not terminated and obs["state"].tolist() == [0, 1]
    _, reward, terminated, _, info = env.step(6)
    assert terminated and info["is_success"] is True and reward == 1.0


def test_truncation_at_step_limit():
    env = HanoiEnv(num_disks=2)
    env.reset(seed=0)
    assert env.max_steps == 2 ** 3
    truncated = False
    for step in range(env.max_steps):
        _, _, terminated, truncated, info = env.step(0 * 3 + 0)  # always illegal: never terminates
        assert not terminated
    assert truncated and info["is_success"] is False and step + 1 == 8
    env = HanoiEnv(num_disks=2, max_steps=3)
    env.reset(seed=0)
    assert [env.step(0)[3] for _ in range(3)] == [False, False, True]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_disks": 0}, "num_disks"),
        ({"num_disks": 11}, "num_disks"),
        ({"num_disks": (3, 2)}, "num_disks"),
        ({"num_disks": "3"}, "num_disks"),
        ({"max_disks": 0}, "max_disks"),
        ({"start": "upside-down"}, "start"),
        ({"goal": None}, "goal"),
        ({"max_steps": 0}, "max_steps"),
        ({"render_mode": "human"}, "render_mode"),
        ({"step_penalty": -1}, "step_penalty"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HanoiEnv(**kwargs)


@pytest.mark.parametrize(
    "puzzle, match",
    [
        ({"start": "003", "goal": "222"}, "start"),
        ({"start": "0a0", "goal": "222"}, "start"),
        ({"start": "00", "goal": "222"}, "same number"),
        ({"start": "0" * 11, "goal": "2" * 11}, "max_disks"),
        ({"start": "", "goal": ""}, "between 1"),
        ({"begin": "000", "goal": "222"}, "puzzle"),
        ("000", "puzzle"),
        ({"start": [0, True, 0], "goal": "222"}, "start"),
    ],
)
def test_bad_puzzles(puzzle, match):
    env = HanoiEnv()
    with pytest.raises(ValueError, match=match):
        env.reset(options={"puzzle": puzzle})


def test_bad_options_and_actions():
    env = HanoiEnv()
    with pytest.raises(ValueError, match="options"):
        env.reset(options="puzzle")
    env.reset(seed=0)
    for action in (-1, 31, 2.0, None, np.array([1, 2])):
        with pytest.raises(ValueError, match="action"):
            env.step(action)
    env.step(np.int64(30))  # numpy integers are fine


def test_puzzle_roundtrip_and_deterministic_reset():
    env = HanoiEnv(num_disks=(3, 8))
    obs, _ = env.reset(seed=123)
    puzzle = env.puzzle
    other = HanoiEnv(num_disks=(3, 8))
    obs2, _ = other.reset(options={"puzzle": puzzle})
    assert all(np.array_equal(obs[k], obs2[k]) for k in obs)
    assert isinstance(HanoiPuzzle.parse({"start": np.array([0, 1]), "goal": (2, 2)}, 10), HanoiPuzzle)


def _mask_by_rules(state: list[int], max_disks: int) -> np.ndarray:
    """Legality straight from the rules, independent of the env's implementation."""
    mask = np.zeros(3 * max_disks + 1, dtype=np.int8)
    mask[-1] = 1
    for disk in range(len(state)):
        covered = any(state[d] == state[disk] for d in range(disk))
        for peg in range(3):
            blocked = any(state[d] == peg for d in range(disk))
            if peg != state[disk] and not covered and not blocked:
                mask[3 * disk + peg] = 1
    return mask


@settings(max_examples=60, deadline=None)
@given(
    num_disks=st.integers(1, 7),
    seed=st.integers(0, 2**31 - 1),
    actions=st.lists(st.integers(0, 3 * 7), min_size=1, max_size=80),
)
def test_random_action_sequences_keep_invariants(num_disks, seed, actions):
    env = HanoiEnv(num_disks=num_disks, max_disks=7)
    obs, _ = env.reset(seed=seed)
    goal = obs["goal"].copy()
    for action in actions:
        before = obs["state"][:num_disks].tolist()
        legal = bool(obs["action_mask"][action])
        obs, reward, terminated, truncated, info = env.step(action)
        after = obs["state"][:num_disks].tolist()
        assert env.observation_space.contains(obs)
        assert np.array_equal(obs["goal"], goal)
        assert np.array_equal(obs["action_mask"], _mask_by_rules(after, 7))
        assert sorted(legal_moves(after)) == sorted(np.flatnonzero(obs["action_mask"][:-1]).tolist())
        if action == 21:
            assert terminated and info["is_success"] == (before == goal[:num_disks].tolist()) and info["cost"] == 0
            break
        assert info["cost"] == 1.0 and info["illegal_move"] == (not legal)
        changed = [d for d in range(num_disks) if before[d] != after[d]]
        assert changed == ([action // 3] if legal else [])
        if truncated:
            break


@pytest.mark.parametrize("vector_cls", [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv])
def test_vector_envs_solved_by_batched_oracle(vector_cls):
    assert vector_oracle_successes("hrm/Hanoi-v0", {"num_disks": (2, 6)}, vector_cls, steps=2 * 64, seed=7) >= 6


def test_encodings():
    env = HanoiEnv(num_disks=3, max_disks=5)
    obs, _ = env.reset(options={"puzzle": {"start": "001", "goal": "212"}})
    encoder = encoder_for(env)
    tokens = encoder.tokens(obs)
    assert encoder.seq_len == 5 and tokens.dtype == np.int64
    assert tokens.tolist() == [1 + 0 + 2, 1 + 0 + 1, 1 + 3 + 2, 0, 0]
    batch = {k: np.stack([v, v]) for k, v in obs.items()}
    assert encoder.tokens(batch).shape == (2, 5) and encoder.tokens(batch).max() < encoder.vocab_size
    assert encoder.per_token_actions * encoder.seq_len + encoder.global_actions == env.action_space.n
    graph = encoder.graph(obs)
    assert isinstance(graph, nx.DiGraph) and graph.number_of_nodes() == 6
    assert graph.has_edge(("disk", 0), ("disk", 1))  # disk 0 sits on disk 1 (both on peg 0)
    assert graph.has_edge(("disk", 1), ("peg", 0)) and graph.has_edge(("disk", 2), ("peg", 1))
    assert graph.nodes[("disk", 2)]["goal_peg"] == 2
    text = encoder.text(obs)
    assert "Now: A: 2 1; B: 3; C: empty" in text and "Goal: A: empty; B: 2; C: 3 1" in text
    with pytest.raises(ValueError, match="observation_space"):
        encoder_for("hrm/Hanoi-v0")


def test_renders():
    env = HanoiEnv(num_disks=3, max_disks=4, render_mode="ansi")
    env.reset(options={"puzzle": {"start": "000", "goal": "222"}})
    text = env.render()
    assert "state (step 0)" in text and text.count("1") >= 2
    env = HanoiEnv(num_disks=(1, 4), max_disks=4, render_mode="rgb_array")
    shapes = set()
    for seed in range(3):
        env.reset(seed=seed)
        frame = env.render()
        shapes.add(frame.shape)
    assert len(shapes) == 1
    before = env.render().copy()
    legal = np.flatnonzero(env.action_masks()[:-1])
    env.step(int(legal[0]))
    assert not np.array_equal(before, env.render())


@pytest.mark.slow
def test_maskable_ppo_learns_two_disks():
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.evaluation import evaluate_policy

    env = gym.make("hrm/Hanoi-v0", num_disks=2, max_disks=2)
    model = MaskablePPO("MultiInputPolicy", env, seed=0, n_steps=512, batch_size=64, device="cpu", verbose=0)
    model.learn(total_timesteps=20_000)
    eval_env = gym.make("hrm/Hanoi-v0", num_disks=2, max_disks=2)
    successes = []
    for episode in range(100):
        obs, _ = eval_env.reset(seed=10_000 + episode)
        done = False
        while not done:
            action, _ = model.predict(obs, action_masks=eval_env.unwrapped.action_masks(), deterministic=True)
            obs, _, terminated, truncated, info = eval_env.step(action)
            done = terminated or truncated
        successes.append(info["is_success"])
    assert np.mean(successes) >= 0.5, np.mean(successes)
    del evaluate_policy


@pytest.mark.parametrize(
    "start, goal, match",
    [
        ((5, 5), (0, 0), "start.* must hold pegs 0, 1 or 2"),
        ((0, 0), (0, -1), "goal.* must hold pegs 0, 1 or 2"),
        (np.zeros((2, 2), dtype=int), [1, 1, 1, 1], "start.* must be a 1-D sequence"),
        ((0, 1), (0,), "same number"),
        ((), (), "between 1"),
    ],
)
def test_puzzles_are_validated_on_construction(start, goal, match):
    with pytest.raises(ValueError, match=match):
        HanoiPuzzle(start, goal)
    for puzzle in ({"start": start, "goal": goal}, (start, goal)):
        with pytest.raises(ValueError, match=match):
            HanoiEnv().reset(options={"puzzle": puzzle})


def test_valid_puzzles_of_any_sequence_type_stay_in_the_observation_space():
    puzzle = HanoiPuzzle([0, 2], np.array([1, 1]))
    assert puzzle.start == (0, 2) and puzzle.goal == (1, 1) and all(type(p) is int for p in puzzle.start + puzzle.goal)
    env = HanoiEnv(max_disks=4)
    obs, _ = env.reset(options={"puzzle": puzzle})
    assert env.observation_space.contains(obs) and obs["state"].tolist() == [0, 2, 3, 3]
    with pytest.raises(ValueError, match="max_disks=4"):
        env.reset(options={"puzzle": HanoiPuzzle((0,) * 5, (1,) * 5)})


def test_num_disks_bound_names_max_disks():
    with pytest.raises(ValueError, match=r"num_disks must lie in \[1, 10\] \(max_disks=10; raise max_disks"):
        HanoiEnv(num_disks=11)
