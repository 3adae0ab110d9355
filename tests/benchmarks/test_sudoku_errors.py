"""benchmarks.sudoku_errors: candidate counts, and a report whose parts add up for an untrained checkpoint."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import hrm_envs  # noqa: F401
from benchmarks.sudoku_errors import candidate_counts, main, recovery
from hrm_envs.encoding import encoder_for
from train.checkpoints import save_checkpoint
from train.learner import Learner
from train.rollout import Episode


def test_candidate_counts_of_a_4x4_grid():
    grid = np.array([[1, 2, 0, 0,
                      3, 0, 0, 0,
                      0, 0, 0, 0,
                      0, 0, 0, 4]])
    counts = candidate_counts(grid, 2)[0]
    # cell (1, 1): row {3}, column {2}, box {1, 2, 3} -> only 4 is left; cell (0, 2): row {1, 2} -> 3, 4
    assert counts[5] == 1 and counts[2] == 2 and counts[0] == 0  # filled cells have none
    assert counts[10] == 3  # (2, 2): box {4} only


@pytest.mark.parametrize("token_labels", [0, 16])
def test_report_of_an_untrained_checkpoint_adds_up(tmp_path, token_labels):
    encoder = encoder_for(gym.make("hrm/Sudoku-v0", box=2))
    torch.manual_seed(0)
    learner = Learner({"name": "hrm", "hidden_size": 16, "num_heads": 2, "H_layers": 1, "L_layers": 1,
                       "halt_max_steps": 2}, {"lr": 1e-3}, encoder, token_labels=token_labels)
    path = tmp_path / "last.pt"
    save_checkpoint(path, learner, {"test": True}, 0)
    args = ["--checkpoint", str(path), "--puzzles", "4", "--levels", "easy", "medium", "--closed-loop"]
    report = main(args)[str(path)]
    for level in ("easy", "medium"):
        row = report[level]
        buckets = row["tf_by_naked_singles"]
        assert sum(b["states"] for b in buckets.values()) == row["states"] > 0
        right = sum(round(b["tf"] * b["states"]) for b in buckets.values())
        assert right + sum(row["wrong_moves"].values()) == row["states"]
        assert set(row["wrong_moves"]) <= {"erase", "guess_2", "guess_3", "guess_4"}
        assert ("solution_labels" in row) == bool(token_labels)
        played = row["closed_loop"]
        assert played["puzzles"] == 4 and 0 <= played["solved"] <= 1
        assert played["first_wrong_digit"]["puzzles"] <= 4 and played["right_digits_erased_per_puzzle"] >= 0
        if token_labels:
            labels = row["solution_labels"]
            cells = labels["by_cell"]
            assert {"blank_1", "written"} <= set(cells) <= {"blank_1", "blank_2", "blank_3+", "written"}  # no dead end
            assert 0 <= labels["all_right"] <= min(c["accuracy"] for c in cells.values()) <= labels["accuracy"] <= 1
            assert 0 <= labels["readout_tf"] <= 1


def test_recovery_counts_wrong_digits_their_erasures_and_the_first_one():
    """A scripted 4x4 episode: a wrong digit in a cell of 2+ candidates, its erasure, a right digit and its erasure;
    and a second episode that only writes right digits."""
    env = gym.make("hrm/Sudoku-v0", box=2, difficulty="medium")
    obs, _ = env.reset(seed=5)
    solution = env.unwrapped._puzzle.solution.ravel()
    counts = candidate_counts(obs["grid"].reshape(1, -1).astype(np.int64), 2)[0]
    mask = obs["action_mask"].reshape(16, 5)
    cell = next(c for c in range(16) if counts[c] >= 2)
    digit = next(d for d in range(1, 5) if mask[cell, d - 1] and d != solution[cell])
    other = next(c for c in range(16) if obs["grid"].ravel()[c] == 0 and c != cell)
    actions = [cell * 5 + digit - 1, cell * 5 + 4, other * 5 + int(solution[other]) - 1, other * 5 + 4]
    scripted = Episode(size="medium")
    for action in actions:
        scripted.observations.append(obs)
        scripted.actions.append(action)
        obs, *_ = env.step(action)
    clean = Episode(size="medium", success=True, observations=[scripted.observations[0]],
                    actions=[other * 5 + int(solution[other]) - 1])
    report = recovery([scripted, clean], 2)
    assert report["puzzles"] == 2 and report["solved"] == 0.5
    assert report["solved_ci95"][0] < 0.5 < report["solved_ci95"][1]
    assert report["wrong_digits_per_puzzle"] == 0.5 and report["wrong_digits_erased"] == 1.0
    assert report["right_digits_erased_per_puzzle"] == 0.5
    first = report["first_wrong_digit"]
    assert first["puzzles"] == 1 and first["median_step"] == 0
    assert first["candidates"] == {("3+" if counts[cell] >= 3 else "2"): 1}
    assert first["with_a_naked_single_on_the_board"] == float((counts == 1).any())


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="--puzzles"):
        main(["--checkpoint", "x.pt", "--puzzles", "0"])
    with pytest.raises(ValueError, match="--checkpoint"):
        main(["--checkpoint", str(tmp_path / "missing.pt")])
