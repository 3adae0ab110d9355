"""Hanoi oracle: exact against exhaustive search over the env's own transitions and networkx BFS."""

from __future__ import annotations

import itertools

import gymnasium as gym
import networkx as nx
import numpy as np
import pytest

import hrm_envs  # noqa: F401
from hrm_envs.hanoi import HanoiEnv
from hrm_envs.hanoi.env import legal_moves, observation
from oracles import oracle_for
from oracles.check import verify_oracle
from oracles.hanoi import HanoiOracle, distance

ORACLE = HanoiOracle()


def _env_at(start, goal, max_disks=None) -> tuple[HanoiEnv, dict]:
    env = HanoiEnv(num_disks=len(start), max_disks=max_disks or len(start), max_steps=10**9)
    obs, _ = env.reset(options={"puzzle": {"start": list(start), "goal": list(goal)}})
    return env, obs


def _state_graph(n: int) -> nx.Graph:
    graph = nx.Graph()
    for config in itertools.product(range(3), repeat=n):
        for action in legal_moves(list(config)):
            nxt = list(config)
            nxt[action // 3] = action % 3
            graph.add_edge(config, tuple(nxt))
    return graph


def test_oracle_for_accepts_ids_envs_wrappers_and_classes():
    assert isinstance(oracle_for("hrm/Hanoi-v0"), HanoiOracle)
    assert isinstance(oracle_for("hrm_envs:hrm/Hanoi-v0"), HanoiOracle)
    assert isinstance(oracle_for(gym.make("hrm/Hanoi-v0")), HanoiOracle)
    assert isinstance(oracle_for(HanoiEnv()), HanoiOracle)
    assert isinstance(oracle_for(HanoiEnv), HanoiOracle)
    with pytest.raises(ValueError, match="env id"):
        oracle_for("hrm/Chess-v0")
    with pytest.raises(ValueError, match="env must be"):
        oracle_for(gym.make("CartPole-v1"))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_every_label_matches_networkx_bfs_for_all_pairs(n):
    """All (state, goal) pairs for N <= 5: cost_to_go and the full optimal set from BFS distances."""
    graph = _state_graph(n)
    lengths = dict(nx.all_pairs_shortest_path_length(graph))
    for goal in graph.nodes:
        for state in graph.nodes:
            obs = observation(list(state), list(goal), n)
            expected = lengths[state][goal]
            assert distance(state, goal) == expected == ORACLE.cost_to_go(obs)
            if expected == 0:
                assert ORACLE.optimal_actions(obs) == {3 * n}
                continue
            best = {
                3 * d + p
                for d in range(n)
                for p in range(3)
                if graph.has_edge(state, nxt := state[:d] + (p,) + state[d + 1 :]) and lengths[nxt][goal] == expected - 1
            }
            assert ORACLE.optimal_actions(obs) == best


@pytest.mark.parametrize("n", [1, 2, 3])
def test_exhaustive_every_goal_small(n):
    for goal in itertools.product(range(3), repeat=n):
        env, obs = _env_at((0,) * n, goal)
        assert verify_oracle(env, ORACLE, obs) == 3**n


@pytest.mark.parametrize("n, goals", [(4, 6), (5, 3), (6, 1), (7, 1)])
@pytest.mark.slow
def test_exhaustive_sampled_start_goal_pairs(n, goals):
    """Every state reachable from a random start (i.e. after any mistaken moves) gets exact labels."""
    rng = np.random.default_rng(n)
    for _ in range(goals):
        start, goal = rng.integers(0, 3, n).tolist(), rng.integers(0, 3, n).tolist()
        env, obs = _env_at(start, goal, max_disks=n + 1)  # padding exercised too
        assert verify_oracle(env, ORACLE, obs, max_states=3**n) == 3**n


def test_largest_disk_moving_twice_is_found():
    """Start 100 -> goal 200 (largest disk differs): moving it twice via the third peg can tie or win."""
    best = 0
    for start in itertools.product(range(3), repeat=4):
        for goal in itertools.product(range(3), repeat=4):
            obs = observation(list(start), list(goal), 4)
            best = max(best, len(ORACLE.optimal_actions(obs)))
    assert best >= 2  # ties exist, so optimal_actions is a real set


@pytest.mark.parametrize("seed", range(5))
def test_solve_is_optimal_and_succeeds_in_env_up_to_ten_disks(seed):
    env = HanoiEnv(num_disks=(8, 10))
    obs, _ = env.reset(seed=seed)
    plan = ORACLE.solve(obs)
    assert len(plan) - 1 == ORACLE.cost_to_go(obs)  # moves + STOP
    for action in plan:
        assert action in ORACLE.optimal_actions(obs)
        obs, _, terminated, _, info = env.step(action)
    assert terminated and info["is_success"]


def test_standard_tower_takes_two_to_the_n_minus_one():
    for n in range(1, 11):
        obs = observation([0] * n, [2] * n, 10)
        assert ORACLE.cost_to_go(obs) == 2**n - 1
        assert ORACLE.optimal_actions(obs) == frozenset({0 * 3 + (2 if n % 2 else 1)})


def test_labels_after_random_mistakes_at_ten_disks():
    """Off-path states at N = 10: each label lowers the true distance by exactly one."""
    env = HanoiEnv(num_disks=10, max_steps=10**9)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=3)
    for _ in range(300):
        here = ORACLE.cost_to_go(obs)
        for action in ORACLE.optimal_actions(obs):
            nxt, done = ORACLE.successor(obs, action)
            assert not done and ORACLE.cost_to_go(nxt) == here - 1
        legal = np.flatnonzero(obs["action_mask"][:-1])
        obs, *_ = env.step(int(rng.choice(legal)))


def test_act_batch_matches_act_and_stop_at_goal():
    env = HanoiEnv(num_disks=(1, 10))
    observations = [env.reset(seed=s)[0] for s in range(20)]
    observations.append(observation([1, 2, 0], [1, 2, 0], 10))
    batch = {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    assert ORACLE.act_batch(batch).tolist() == [ORACLE.act(o) for o in observations]
    assert ORACLE.act(observations[-1]) == 30 and ORACLE.cost_to_go(observations[-1]) == 0


def test_malformed_observations_raise_value_error():
    good = observation([0, 1], [2, 2], 3)
    for bad in (
        {"goal": good["goal"]},
        {**good, "state": np.array([3, 3, 3], np.int8)},
        {**good, "state": np.array([0, 5, 3], np.int8)},
        {**good, "goal": np.array([2, 2, 1], np.int8)},
    ):
        with pytest.raises(ValueError, match="obs"):
            ORACLE.optimal_actions(bad)


@pytest.mark.parametrize("n, max_disks", [(3, 3), (4, 6)])
def test_token_labels_spell_out_an_optimal_move_for_every_start_goal_pair(n, max_disks):
    """Every disk's label is its target peg: the smallest disk off its label, moved there, is optimal (STOP
    when none is off), for all start / goal pairs, the largest disk moving once or twice; absent disks -100."""
    configs = list(itertools.product(range(3), repeat=n))
    pairs = [observation(list(s), list(g), max_disks) for s in configs for g in configs]
    batch = {key: np.stack([obs[key] for obs in pairs]) for key in pairs[0]}
    optimal = ORACLE.label_batch(batch).optimal
    labels = ORACLE.token_labels(batch)
    assert labels.shape == batch["state"].shape and labels.dtype == np.int64
    assert (labels[:, n:] == -100).all() and set(np.unique(labels[:, :n])) == {0, 1, 2}
    off = labels[:, :n] != batch["state"][:, :n]
    disk = np.argmax(off, axis=1)
    action = np.where(off.any(axis=1), 3 * disk + labels[np.arange(len(labels)), disk], 3 * max_disks)
    assert optimal[np.arange(len(action)), action].all()
    twice = [i for i, obs in enumerate(pairs) if labels[i, n - 1] not in (obs["state"][n - 1], obs["goal"][n - 1])]
    assert twice, "some pair parks the largest misplaced disk on the third peg"


def test_token_labels_need_a_batch():
    with pytest.raises(ValueError, match="batch"):
        ORACLE.token_labels(observation([0, 1], [2, 2], 2))
