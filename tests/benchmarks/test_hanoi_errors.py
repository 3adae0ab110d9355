"""benchmarks.hanoi_errors: the once / twice plan against exhaustive search, wrong-move kinds, a report that adds up."""

from __future__ import annotations

import itertools
from functools import lru_cache

import gymnasium as gym
import networkx as nx
import numpy as np
import pytest
import torch

import hrm_envs  # noqa: F401
from benchmarks.hanoi_errors import main, plan, wrong_kind
from hrm_envs.encoding import encoder_for
from hrm_envs.hanoi.env import legal_moves
from train.checkpoints import save_checkpoint
from train.learner import Learner


def moves_graph(n: int) -> nx.Graph:
    graph = nx.Graph()
    for state in itertools.product(range(3), repeat=n):
        for action in legal_moves(list(state)):
            disk, peg = divmod(action, 3)
            graph.add_edge(state, state[:disk] + (peg,) + state[disk + 1:])
    return graph


def test_plan_matches_how_often_shortest_paths_move_the_largest_misplaced_disk():
    n = 3
    graph = moves_graph(n)
    seen = set()
    for goal in itertools.product(range(3), repeat=n):
        dist = nx.single_source_shortest_path_length(graph, goal)

        @lru_cache(maxsize=None)
        def counts(state: tuple[int, ...], disk: int) -> tuple[int, int]:
            """Fewest and most moves of ``disk`` over the shortest paths from ``state`` to ``goal``."""
            if state == goal:
                return 0, 0
            options = []
            for nxt in graph[state]:
                if dist[nxt] == dist[state] - 1:
                    low, high = counts(nxt, disk)
                    moved = int(next(d for d in range(n) if nxt[d] != state[d]) == disk)
                    options.append((low + moved, high + moved))
            return min(o[0] for o in options), max(o[1] for o in options)

        for start in itertools.product(range(3), repeat=n):
            kind, m = plan(list(start), list(goal))
            if start == goal:
                assert kind == "stop"
                continue
            assert m == max(d for d in range(n) if start[d] != goal[d])
            low, high = counts(start, m)
            assert {"once": (1, 1), "twice": (2, 2), "tie": (1, 2)}[kind] == (low, high), (start, goal)
            seen.add(kind)
    assert seen == {"once", "twice", "tie"}


def test_wrong_kind_names_what_a_move_did():
    stop = 9  # max_disks 3
    optimal = np.zeros(10, bool)
    optimal[2] = True  # disk 0 to peg 2
    assert wrong_kind(1, optimal, stop) == "wrong_peg"
    assert wrong_kind(4, optimal, stop) == "wrong_disk"
    assert wrong_kind(stop, optimal, stop) == "stop"
    at_goal = np.zeros(10, bool)
    at_goal[stop] = True
    assert wrong_kind(1, at_goal, stop) == "move_at_goal"


@pytest.mark.parametrize("token_labels", [0, 3])
def test_report_of_an_untrained_checkpoint_adds_up(tmp_path, token_labels):
    encoder = encoder_for(gym.make("hrm/Hanoi-v0", max_disks=5))
    torch.manual_seed(0)
    learner = Learner({"name": "trm", "hidden_size": 16, "num_heads": 2, "L_layers": 1, "halt_max_steps": 2,
                       "attention_window": 1}, {"lr": 1e-3}, encoder, token_labels=token_labels)
    path = tmp_path / "last.pt"
    save_checkpoint(path, learner, {"test": True}, 0)
    report = main(["--checkpoint", str(path), "--sizes", "3", "4", "--max-disks", "5", "--puzzles", "3"])[str(path)]
    for size in ("3", "4"):
        row = report[size]
        assert ("plan_labels" in row) == bool(token_labels)
        if token_labels:
            labels = row["plan_labels"]
            assert len(labels["by_disk"]) == int(size)
            assert 0 <= labels["all_right"] <= labels["accuracy"] <= 1 and 0 <= labels["readout_tf"] <= 1
            assert abs(np.mean(labels["by_disk"]) - labels["accuracy"]) < 1e-3
        for key in ("by_kind", "by_plan", "by_chain"):
            assert sum(b["states"] for b in row[key].values()) == row["states"] > 0
            right = sum(round(b["tf"] * b["states"]) for b in row[key].values())
            assert right + sum(row["wrong_moves"].values()) == row["states"]
        assert set(row["by_kind"]) <= {"smallest", "other", "both", "stop"} and "stop" in row["by_kind"]
        assert row["failed"] == round(3 * (1 - row["success"]))
        assert row["failed_stopped"] <= row["failed"] and row["failed_revisiting"] <= row["failed"]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="--sizes"):
        main(["--checkpoint", "x.pt", "--sizes", "11"])
    with pytest.raises(ValueError, match="--puzzles"):
        main(["--checkpoint", "x.pt", "--puzzles", "0"])
