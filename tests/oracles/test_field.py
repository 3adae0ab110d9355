"""Grid oracles' shared token labels (oracles/field.py): every cell's own optimal move, on the encoders' layout."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import hrm_envs  # noqa: F401
from hrm_envs.encoding import encoder_for
from oracles import oracle_for

GRID_ENVS = [("hrm/Maze-v0", {"size": (5, 13), "max_size": 15, "kind": "loops"}, "walls"),
             ("hrm/CityRouting-v0", {"size": (6, 12), "max_size": 14}, "street")]


def _batch(env_id: str, kwargs: dict, episodes: int) -> dict[str, np.ndarray]:
    """Every observation of ``episodes`` random-walk episodes (cut at 30 moves), stacked into one batch."""
    env = gym.make(env_id, **kwargs)
    rng = np.random.default_rng(0)
    observations = []
    for seed in range(episodes):
        obs, _ = env.reset(seed=seed)
        for _ in range(30):
            observations.append(obs)
            obs, _, terminated, _, _ = env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
            if terminated:
                break
    env.close()
    return {key: np.stack([o[key] for o in observations]) for key in observations[0]}


def _at(obs: dict[str, np.ndarray], cell: tuple[int, int]) -> dict[str, np.ndarray]:
    out = dict(obs)
    out["position"] = np.array(cell, dtype=np.int16)
    return out


@pytest.mark.parametrize("env_id, kwargs, grid_key", GRID_ENVS)
def test_token_labels_give_every_cell_its_own_optimal_move(env_id, kwargs, grid_key):
    oracle = oracle_for(env_id)
    batch = _batch(env_id, kwargs, episodes=6)
    labels = oracle.token_labels(batch)
    side = kwargs["max_size"]
    encoder = encoder_for(gym.make(env_id, **kwargs))
    assert oracle.token_label_classes == 4
    assert labels.shape == encoder.tokens(batch).shape == (len(batch["action_mask"]), side * side)
    assert labels.dtype == np.int64 and set(np.unique(labels)) <= {-100, 0, 1, 2, 3}
    for i in range(0, len(labels), 7):  # a spread of states across the episodes and sizes
        obs = {key: value[i] for key, value in batch.items()}
        expected = np.full(side * side, -100)
        for token in range(side * side):
            cell = divmod(token, side)
            inside = obs[grid_key][cell] not in ((2, 1) if grid_key == "walls" else (0, 1))  # not wall / building / pad
            if inside and oracle.optimal_actions(_at(obs, cell)):
                expected[token] = oracle.act(_at(obs, cell))
        np.testing.assert_array_equal(labels[i], expected)
        # the agent's own cell spells out the action the oracle takes (the plan does not depend on the position)
        here = int(obs["position"][0]) * side + int(obs["position"][1])
        assert labels[i, here] == (oracle.act(obs) if oracle.optimal_actions(obs) else -100)


@pytest.mark.parametrize("env_id, kwargs, grid_key", GRID_ENVS)
def test_token_labels_need_a_batch(env_id, kwargs, grid_key):
    obs, _ = gym.make(env_id, **kwargs).reset(seed=0)
    with pytest.raises(ValueError, match=f"obs\\['{grid_key}'\\] of shape \\(batch, max_size, max_size\\)"):
        oracle_for(env_id).token_labels(obs)


@pytest.mark.parametrize("env_id, kwargs, grid_key", GRID_ENVS)
def test_token_costs_give_every_labelled_cell_its_cost_to_the_goal(env_id, kwargs, grid_key):
    """Beside each token label, the cost-to-go the oracle gives with the agent on that cell; inf on the cells that
    cannot reach the goal (walls, buildings; there are some), NaN where else no label (the goal, padding)."""
    oracle = oracle_for(env_id)
    batch = _batch(env_id, kwargs, episodes=4)
    labels, costs = oracle.token_labels(batch), oracle.token_costs(batch)
    side = kwargs["max_size"]
    assert costs.shape == labels.shape and costs.dtype == np.float32
    unreachable = np.isinf(costs)
    assert unreachable.any() and (labels[unreachable] == -100).all()
    np.testing.assert_array_equal(np.isnan(costs) | unreachable, labels == -100)
    assert (np.isnan(costs).sum(1) >= 1).all()  # the goal at least
    for i in range(0, len(labels), 9):
        obs = {key: value[i] for key, value in batch.items()}
        for token in np.flatnonzero(labels[i] != -100):
            assert costs[i, token] == oracle.cost_to_go(_at(obs, divmod(int(token), side)))
