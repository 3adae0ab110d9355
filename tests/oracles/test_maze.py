"""Maze oracle: exact against exhaustive search over the env's own transitions and networkx on 41x41 grids."""

from __future__ import annotations

import gymnasium as gym
import networkx as nx
import numpy as np
import pytest

import hrm_envs  # noqa: F401
from hrm_envs.maze import MazeEnv
from oracles import oracle_for
from oracles.check import verify_oracle
from oracles.maze import MazeOracle

MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))


def _at(obs: dict, cell: tuple[int, int]) -> dict:
    """``obs`` with the agent moved to ``cell`` (the oracle reads walls, position and goal only)."""
    out = {key: value.copy() for key, value in obs.items()}
    out["position"] = np.array(cell, dtype=np.int16)
    return out


def test_oracle_for_maze():
    assert isinstance(oracle_for("hrm/Maze-v0"), MazeOracle)
    assert isinstance(oracle_for(gym.make("hrm/Maze-v0")), MazeOracle)
    with pytest.raises(ValueError, match="cache_size"):
        MazeOracle(cache_size=0)


@pytest.mark.parametrize("size", [5, 6, 7, 8, 9, 11])
@pytest.mark.parametrize("kind", ["perfect", "loops"])
def test_exhaustive_search_over_env_transitions(size, kind):
    env = MazeEnv(size=size, max_size=11, kind=kind, loop_fraction=0.4, max_steps=10**9)
    oracle = MazeOracle()
    for seed in range(4):
        obs, _ = env.reset(seed=seed)
        assert verify_oracle(env, oracle, obs) >= 2


def test_exhaustive_search_after_mistaken_moves():
    """From states reached by random (masked and unmasked) moves, away from the optimal path."""
    env = MazeEnv(size=(7, 11), max_size=11, kind="loops", max_steps=10**9)
    oracle = MazeOracle()
    rng = np.random.default_rng(0)
    checked = 0
    for seed in range(8):
        obs, _ = env.reset(seed=seed)
        terminated = False
        for _ in range(15):
            wrong = [a for a in range(4) if a not in oracle.optimal_actions(obs)]
            obs, _, terminated, _, _ = env.step(int(rng.choice(wrong)))
            if terminated:
                break
        if not terminated:
            checked += 1
            assert oracle.cost_to_go(obs) > 0
            verify_oracle(env, oracle, obs)
    assert checked >= 6


@pytest.mark.parametrize("kind", ["perfect", "loops"])
def test_every_cell_matches_networkx_on_41x41(kind):
    env = MazeEnv(size=41, kind=kind, loop_fraction=0.2)
    oracle = MazeOracle()
    for seed in range(2):
        obs, _ = env.reset(seed=seed)
        walls = obs["walls"] == 1
        graph = nx.grid_2d_graph(41, 41)
        graph.remove_nodes_from([tuple(cell) for cell in np.argwhere(walls)])
        goal = tuple(int(v) for v in obs["goal"])
        lengths = nx.single_source_shortest_path_length(graph, goal)
        assert len(lengths) == graph.number_of_nodes()  # connected
        for cell, expected in lengths.items():
            here = _at(obs, cell)
            assert oracle.cost_to_go(here) == expected
            best = {a for a, (dr, dc) in enumerate(MOVES) if lengths.get((cell[0] + dr, cell[1] + dc)) == expected - 1}
            assert oracle.optimal_actions(here) == best
            assert oracle.act(here) == (min(best) if best else 0)


def test_loops_give_ties_and_perfect_mazes_none():
    oracle = MazeOracle()
    for kind, expect_ties in (("loops", True), ("perfect", False)):
        env = MazeEnv(size=21, kind=kind)
        ties = 0
        for seed in range(3):
            obs, _ = env.reset(seed=seed)
            for cell in np.argwhere(obs["walls"] == 0):
                ties += len(oracle.optimal_actions(_at(obs, tuple(cell)))) > 1
        assert (ties > 0) == expect_ties


@pytest.mark.parametrize("kind", ["perfect", "loops"])
def test_solve_drives_the_env_to_the_goal_in_cost_to_go_steps(kind):
    env = MazeEnv(size=(5, 41), kind=kind)
    oracle = MazeOracle()
    for seed in range(10):
        obs, _ = env.reset(seed=seed)
        plan = oracle.solve(obs)
        assert len(plan) == oracle.cost_to_go(obs)
        for i, action in enumerate(plan):
            assert action == oracle.act(obs)
            expected, done = oracle.successor(obs, action)
            obs, _, terminated, _, info = env.step(action)
            assert not info["illegal_move"] and terminated == (i == len(plan) - 1) == done
            assert all(np.array_equal(obs[k], expected[k]) for k in obs)
        assert info["is_success"]


def test_the_base_solve_agrees_with_the_fast_walk():
    env = MazeEnv(size=25, kind="loops")
    oracle = MazeOracle()
    obs, _ = env.reset(seed=1)
    assert oracle.solve(obs) == super(MazeOracle, oracle).solve(obs)


def test_successor_of_an_illegal_move_keeps_the_state():
    env = MazeEnv(size=9)
    obs, _ = env.reset(seed=2)
    oracle = MazeOracle()
    for action in np.flatnonzero(obs["action_mask"] == 0):
        nxt, done = oracle.successor(obs, int(action))
        assert not done and all(np.array_equal(obs[k], nxt[k]) for k in obs)


def test_label_batch_matches_single_labels_across_mazes():
    env = MazeEnv(size=(5, 21), kind="loops")
    oracle = MazeOracle()
    rng = np.random.default_rng(0)
    observations = []
    for seed in range(6):
        obs, _ = env.reset(seed=seed)
        for cell in rng.permutation(np.argwhere(obs["walls"] == 0))[:10]:
            observations.append(_at(obs, tuple(cell)))
    batch = {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    labels = oracle.label_batch(batch)
    for i, obs in enumerate(observations):
        label = oracle.label(obs)
        assert set(np.flatnonzero(labels.optimal[i])) == label.optimal
        assert labels.action[i] == label.action and labels.cost_to_go[i] == label.cost_to_go
    assert np.array_equal(oracle.act_batch(batch), labels.action)


def test_goal_and_cut_off_cells():
    env = MazeEnv(size=5, max_size=7)
    obs, _ = env.reset(options={"puzzle": ["#####", "#S G#", "#####"]})
    oracle = MazeOracle()
    at_goal = _at(obs, (1, 3))
    assert oracle.cost_to_go(at_goal) == 0 and oracle.optimal_actions(at_goal) == frozenset()
    assert oracle.act(at_goal) == 0 and oracle.solve(at_goal) == []
    cut = {k: v.copy() for k, v in obs.items()}
    cut["walls"][1, 2] = 1  # a hand-made observation: the wall now separates S from G
    assert oracle.cost_to_go(cut) == float("inf") and oracle.optimal_actions(cut) == frozenset()
    with pytest.raises(ValueError, match="no route"):
        oracle.solve(cut)


def test_bad_observations():
    env = MazeEnv(size=7, max_size=9)
    obs, _ = env.reset(seed=0)
    oracle = MazeOracle()
    wall = tuple(np.argwhere(obs["walls"] == 1)[0])
    outside = (8, 8)
    cases = [
        ({k: v for k, v in obs.items() if k != "walls"}, "walls"),
        (_at(obs, wall), "position"),
        (_at(obs, outside), "position"),
        ({**obs, "goal": np.array(wall, dtype=np.int16)}, "goal"),
        ({**obs, "walls": obs["walls"] * 3}, "Maze observation"),
        ({**obs, "walls": obs["walls"][0]}, "Maze observation"),
        ({**obs, "position": np.array([1], dtype=np.int16)}, "Maze observation"),
        ("obs", "Maze observation"),
    ]
    for bad, match in cases:
        with pytest.raises(ValueError, match=match):
            oracle.cost_to_go(bad)


def test_cache_is_bounded_lru():
    env = MazeEnv(size=9)
    oracle = MazeOracle(cache_size=2)
    first, _ = env.reset(seed=0)
    second, _ = env.reset(seed=1)
    third, _ = env.reset(seed=2)
    oracle.act(first)
    oracle.act(second)
    oracle.act(first)  # now the most recently used
    oracle.act(third)  # evicts the second
    assert len(oracle._cache) == 2
    keys = list(oracle._cache)
    assert keys[0].startswith(first["walls"].tobytes()) and keys[1].startswith(third["walls"].tobytes())
