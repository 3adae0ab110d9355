"""benchmarks.sudoku_errors: candidate counts, and a report whose parts add up for an untrained checkpoint."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import hrm_envs  # noqa: F401
from benchmarks.sudoku_errors import candidate_counts, main
from hrm_envs.encoding import encoder_for
from train.checkpoints import save_checkpoint
from train.learner import Learner


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
    report = main(["--checkpoint", str(path), "--puzzles", "4", "--levels", "easy", "medium"])[str(path)]
    for level in ("easy", "medium"):
        row = report[level]
        buckets = row["tf_by_naked_singles"]
        assert sum(b["states"] for b in buckets.values()) == row["states"] > 0
        right = sum(round(b["tf"] * b["states"]) for b in buckets.values())
        assert right + sum(row["wrong_moves"].values()) == row["states"]
        assert set(row["wrong_moves"]) <= {"erase", "guess_2", "guess_3", "guess_4"}
        assert ("solution_labels" in row) == bool(token_labels)
        if token_labels:
            labels = row["solution_labels"]
            cells = labels["by_cell"]
            assert {"blank_1", "written"} <= set(cells) <= {"blank_1", "blank_2", "blank_3+", "written"}  # no dead end
            assert 0 <= labels["all_right"] <= min(c["accuracy"] for c in cells.values()) <= labels["accuracy"] <= 1
            assert 0 <= labels["readout_tf"] <= 1


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="--puzzles"):
        main(["--checkpoint", "x.pt", "--puzzles", "0"])
    with pytest.raises(ValueError, match="--checkpoint"):
        main(["--checkpoint", str(tmp_path / "missing.pt")])
