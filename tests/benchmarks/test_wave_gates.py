"""benchmarks.wave_gates: a wave policy's gates scored against the city's own tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.layers import WaveGates
from benchmarks.wave_gates import STATS, main, route_stats
from hrm_envs.city.generator import OPPOSITE, CityGenerator
from hrm_envs.city.metrics import COST_SCALE, cost_to_go, optimal_moves


def city(seed: int, size: int = 12, max_size: int = 14):
    """A generated route's observation (padded to ``max_size``) and its exact gates on the padded grid."""
    puzzle = CityGenerator((size, size))(np.random.default_rng(seed), seed % 4)
    pad = (0, max_size - size)
    obs = {"street": np.pad(puzzle.street, pad), "traffic": np.pad(puzzle.traffic, pad),
           "oneway": np.pad(puzzle.oneway, pad), "vehicle": np.array([seed % 4]),
           "position": np.array(puzzle.start), "destination": np.array(puzzle.destination)}
    net = puzzle.network()
    cost = np.zeros((max_size, max_size), np.float32)
    cost[:size, :size] = net.cost.reshape(size + 2, size + 2)[1:-1, 1:-1] / COST_SCALE
    exits = np.stack([obs["oneway"] != 1 + OPPOSITE[d] for d in range(4)])
    source = np.zeros((max_size, max_size), np.float32)
    source[puzzle.destination] = 1.0

    def image(a: np.ndarray) -> torch.Tensor:
        return torch.tensor(np.asarray(a, dtype=np.float32)).view(1, -1, max_size, max_size)

    return obs, WaveGates(image(source), image(cost > 0), image(cost), image(exits))


def test_exact_gates_score_exact_and_a_wrong_cost_or_move_is_counted():
    """The city's own gates: every share 1, the oracle's cost to go at the start, the oracle's move field arrives.
    A wrong cost on a cell that can reach the goal, or a one-way street opened, is counted as such."""
    for seed in range(3):
        obs, gates = city(seed)
        to_go = np.nan_to_num(cost_to_go(obs), nan=1e4)
        scores = optimal_moves(obs).astype(np.float32)
        stats = route_stats(obs, gates, to_go, scores)
        assert set(STATS) <= set(stats)
        assert all(stats[k] == 1.0 for k in STATS if k != "start_cost_error") and stats["start_cost_error"] < 1e-6
        reach = np.flatnonzero(np.isfinite(cost_to_go(obs)) & (gates.cost.flatten().numpy() > 0))
        cell = reach[len(reach) // 2]
        cost = gates.cost.clone()
        cost.view(-1)[cell] += 2 / COST_SCALE
        wrong = route_stats(obs, WaveGates(gates.source, gates.passable, cost, gates.exits), to_go, scores)
        assert wrong["cost_errors"] == 1 and wrong["cost_exact"] < 1.0 and wrong["gates_exact"] == 0.0
        opened = route_stats(obs, WaveGates(gates.source, gates.passable, gates.cost, torch.ones_like(gates.exits)),
                             to_go, scores)
        one_way = (obs["oneway"] > 0).any()
        assert (opened["moves_exact"] < 1.0) == one_way


def test_bad_arguments_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="--checkpoint"):
        main(["--checkpoint", str(tmp_path / "missing.pt"), "--data", str(tmp_path)])
    with pytest.raises(ValueError, match="--validation-bases"):
        main(["--checkpoint", __file__, "--data", str(tmp_path), "--validation-bases", "0"])
