"""benchmarks.grid_errors: distance buckets, an oracle that is right everywhere, and a report that adds up."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import benchmarks.grid_errors as grid_errors
import hrm_envs  # noqa: F401
from agents.layers import FrontGates
from hrm_envs.encoding import encoder_for
from hrm_envs.maze.encoding import FLOOR, GOAL, START
from oracles import oracle_for
from train.checkpoints import save_checkpoint
from train.evaluate import evaluate_policies, load_any_policy
from train.learner import Learner
from train.rollout import OraclePolicy


def test_buckets_are_inclusive_upper_bounds():
    names = grid_errors.bucket_names()
    assert names[0] == "1-2" and names[-1] == "65+" and len(names) == len(grid_errors.DISTANCE_BINS) + 1
    assert [names[b] for b in grid_errors.buckets(np.array([1, 2, 3, 4, 5, 64, 65, 400]))] == [
        "1-2", "1-2", "3-4", "3-4", "5-8", "33-64", "65+", "65+"]


def test_chunked_equals_one_call_on_the_whole_batch():
    batch = {"a": np.arange(10), "b": np.arange(10) * 2}
    calls = []

    def total(part):
        calls.append(len(part["a"]))
        return part["a"] + part["b"]

    assert grid_errors.chunked(total, batch, size=4).tolist() == (batch["a"] * 3).tolist()
    assert calls == [4, 4, 2]


def _checkpoint(tmp_path, env_id: str, max_size: int, token_labels: int, front_rate: float = 0.0) -> str:
    encoder = encoder_for(gym.make(env_id, size=max_size, max_size=max_size))
    torch.manual_seed(0)
    front = {"front_rate": front_rate} if front_rate else {}
    learner = Learner({"name": "hrm", "hidden_size": 16, "num_heads": 2, "H_layers": 1, "L_layers": 1,
                       "halt_max_steps": 2, **front}, {"lr": 1e-3}, encoder, token_labels=token_labels)
    path = tmp_path / "last.pt"
    save_checkpoint(path, learner, {"test": True}, 0)
    return str(path)


def test_the_oracle_is_right_in_every_bucket(tmp_path, monkeypatch):
    path = _checkpoint(tmp_path, "hrm/Maze-v0", 15, 0)
    monkeypatch.setattr(grid_errors, "load_any_policy", lambda *_: OraclePolicy(oracle_for("hrm/Maze-v0")))
    report = grid_errors.main(["--env", "maze", "--checkpoint", path, "--max-size", "15", "--sizes", "7", "15",
                               "--puzzles", "3"])[path]
    for row in report.values():
        assert row["tf"] == 1.0 and all(b["accuracy"] == 1.0 for b in row["tf_by_moves_to_goal"].values())
    assert len(report["15"]["tf_by_moves_to_goal"]) > len(report["7"]["tf_by_moves_to_goal"]) > 1


@pytest.mark.parametrize("env, env_id, max_size, size", [("maze", "hrm/Maze-v0", 11, 11),
                                                         ("city", "hrm/CityRouting-v0", 12, 10)])
@pytest.mark.parametrize("token_labels, front_rate", [(0, 0.0), (4, 0.0), (4, 5.0)])
def test_report_of_an_untrained_checkpoint_adds_up(tmp_path, env, env_id, max_size, size, token_labels, front_rate):
    """Also for a front_rate model, whose token head has a fifth class ("not reached yet", scored as a miss)."""
    path = _checkpoint(tmp_path, env_id, max_size, token_labels, front_rate)
    row = grid_errors.main(["--env", env, "--checkpoint", path, "--max-size", str(max_size), "--sizes", str(size),
                            "--puzzles", "3"])[path][str(size)]
    bucketed = row["tf_by_moves_to_goal"].values()
    assert sum(b["n"] for b in bucketed) == row["states"] > 0
    assert sum(b["n"] * b["accuracy"] for b in bucketed) == pytest.approx(row["tf"] * row["states"], abs=0.01)
    assert len(row["tf_by_puzzle"]) == 3 and sum(moves for moves, _ in row["tf_by_puzzle"]) == row["states"]
    assert sum(m * tf for m, tf in row["tf_by_puzzle"]) == pytest.approx(row["tf"] * row["states"], abs=0.01)
    assert ("move_labels" in row) == bool(token_labels)
    if token_labels:
        labels = row["move_labels"]
        cells = labels["by_cost_to_go"].values()
        assert sum(c["n"] * c["accuracy"] for c in cells) == pytest.approx(labels["accuracy"] * sum(c["n"] for c in cells),
                                                                           abs=0.01)
        assert 0 <= labels["label_accuracy"] <= labels["accuracy"]  # the trained label is one optimal move
        assert 0 <= labels["readout_tf"] <= 1 and 0 <= labels["not_reached"] <= 1 - labels["accuracy"]


def test_front_stats_of_exact_gates_are_a_breadth_first_search(tmp_path, monkeypatch):
    """A front checkpoint whose gates are the maze's own (the goal the source, floor and start passable, walls
    closed) reaches every labelled cell with enough segments, never a wall, as a ball, and marks exactly the optimal
    moves; with one segment it reaches a ball short of the farthest cells."""
    side = 11
    encoder = encoder_for(gym.make("hrm/Maze-v0", size=side, max_size=side))
    torch.manual_seed(0)
    learner = Learner({"name": "trm", "hidden_size": 16, "num_heads": 2, "L_layers": 1, "halt_max_steps": 2,
                       "block": "front", "attention_grid": side, "front_rate": 2.0}, {"lr": 1e-3}, encoder,
                      token_labels=4)
    path = tmp_path / "front.pt"
    save_checkpoint(path, learner, {"test": True}, 0)
    load = grid_errors.load_any_policy

    def exact_gates(*args):
        policy = load(*args)
        model, seen = policy.model, {}
        embed = model._embed
        model._embed = lambda batch: (seen.update(tokens=batch["tokens"]), embed(batch))[1]
        model._front_gates = lambda x: FrontGates(
            source=(seen["tokens"] == GOAL).float().view(-1, 1, side, side),
            passable=torch.isin(seen["tokens"], torch.tensor([FLOOR, START, GOAL])).float().view(-1, 1, side, side))
        return policy

    monkeypatch.setattr(grid_errors, "load_any_policy", exact_gates)
    args = ["--env", "maze", "--checkpoint", str(path), "--max-size", str(side), "--sizes", str(side),
            "--puzzles", "3"]
    front = grid_errors.main([*args, "--segments", "40"])[str(path)][str(side)]["front"]
    assert front == {"reached": 1.0, "dead_reached": 0.0, "ball": 1.0, "came_optimal": 1.0, "came_exact": 1.0}
    short = grid_errors.main([*args, "--segments", "1"])[str(path)][str(side)]["front"]
    assert 0 < short["reached"] < 1 and short["ball"] == 1.0 and short["came_exact"] == 1.0


def test_segments_make_the_checkpoint_think_that_many_segments(tmp_path):
    path = _checkpoint(tmp_path, "hrm/Maze-v0", 11, 4)
    args = ["--env", "maze", "--checkpoint", path, "--max-size", "11", "--sizes", "7", "--puzzles", "2"]
    assert grid_errors.main([*args, "--segments", "3"])[path]["7"]["segments"] == 3.0
    assert 1.0 <= grid_errors.main(args)[path]["7"]["segments"] <= 2.0  # as trained: up to halt_max_steps 2


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="--puzzles"):
        grid_errors.main(["--env", "maze", "--checkpoint", "x.pt", "--puzzles", "0"])
    with pytest.raises(ValueError, match="--segments"):
        grid_errors.main(["--env", "maze", "--checkpoint", "x.pt", "--segments", "0"])
    with pytest.raises(ValueError, match="--sizes"):
        grid_errors.main(["--env", "maze", "--checkpoint", "x.pt", "--max-size", "11", "--sizes", "15"])
    with pytest.raises(ValueError, match="--checkpoint"):
        grid_errors.main(["--env", "city", "--checkpoint", str(tmp_path / "missing.pt")])


@pytest.mark.slow
def test_same_seed_plays_train_evaluates_puzzles_and_gives_its_tf(tmp_path):
    path = _checkpoint(tmp_path, "hrm/Maze-v0", 11, 0)
    row = grid_errors.main(["--env", "maze", "--checkpoint", path, "--max-size", "11", "--sizes", "9", "11",
                            "--puzzles", "4", "--seed", "77"])[path]
    policy = load_any_policy(path, encoder_for(gym.make("hrm/Maze-v0", size=11, max_size=11)))
    rows = evaluate_policies({"m": policy}, "hrm/Maze-v0", [9, 11], 4, "size", {"max_size": 11}, seed=77)["m"]
    other = grid_errors.main(["--env", "maze", "--checkpoint", path, "--max-size", "11", "--sizes", "9", "11",
                              "--puzzles", "4"])[path]  # the default seed: other puzzles
    for size in ("9", "11"):
        assert row[size]["tf"] == pytest.approx(rows[size]["teacher_forcing"], abs=1e-4)
        assert row[size]["tf_by_puzzle"] != other[size]["tf_by_puzzle"]
