"""benchmarks.overthinking: the segment counts run, the drop that decides non_decreasing, a report that adds up and
plays train.evaluate's puzzles, and clear errors for bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import hrm_envs  # noqa: F401
from benchmarks.overthinking import main, max_drop, segment_counts
from hrm_envs.encoding import encoder_for
from configs import CONFIG_DIR
from train.acting import load_policy
from train.checkpoints import save_checkpoint
from train.evaluate import evaluate_policies
from train.learner import Learner

ENV = "hrm/Hanoi-v0"
TINY = ["--sizes", "2", "3", "--multiples", "1", "2", "--puzzles", "3"]


def hanoi_env_config() -> dict:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("evaluate", overrides=["env=hanoi", "env.kwargs.max_disks=6"])
    return OmegaConf.to_container(cfg.env, resolve=True)


def tiny_checkpoint(path: Path, model: dict, run_config: dict) -> str:
    """An untrained model on Hanoi padded to 6 disks (as tests/train/test_evaluate.py builds them)."""
    torch.manual_seed(0)
    learner = Learner(model, {"lr": 1e-3}, encoder_for(gym.make(ENV, max_disks=6)))
    save_checkpoint(path, learner, run_config, 0)
    return str(path)


HRM = {"name": "hrm", "hidden_size": 16, "num_heads": 2, "H_layers": 1, "L_layers": 1, "halt_max_steps": 2}


@pytest.fixture(scope="module")
def hrm_checkpoint(tmp_path_factory) -> str:
    return tiny_checkpoint(tmp_path_factory.mktemp("hrm") / "last.pt", HRM, {"env": hanoi_env_config()})


def test_segment_counts_are_multiples_explicit_counts_and_the_trained_count():
    assert segment_counts(2, [1, 2], []) == [2, 4]
    assert segment_counts(3, [2, 4], [1, 6]) == [1, 3, 6, 12]  # the trained 3 is the reference, 6 once
    assert segment_counts(4, [], [16]) == [4, 16]


def test_max_drop_is_the_fall_below_the_best_accuracy_at_fewer_segments():
    assert max_drop([0.2, 0.5, 0.9]) == 0.0
    assert max_drop([0.6, 0.9, 0.7, 0.85]) == pytest.approx(0.2)  # from the best so far, not the previous count
    assert max_drop([0.9, 0.85, 0.8, 0.75]) == pytest.approx(0.15)  # a slow decline adds up
    assert max_drop([0.5]) == 0.0


def test_report_runs_the_requested_segments_at_every_size(hrm_checkpoint, tmp_path, capsys):
    result = main(["--checkpoint", hrm_checkpoint, *TINY, "--closed-loop", "--out", str(tmp_path)])
    assert json.loads(capsys.readouterr().out) == result  # the one JSON object printed
    assert json.loads((tmp_path / "overthinking.json").read_text()) == result
    assert (tmp_path / "overthinking.png").stat().st_size > 0
    figures = result["figures"]
    assert (figures["env"], figures["env_kwargs"]) == (ENV, {"max_disks": 6})  # the checkpoint's env
    assert figures["trained_segments"] == 2 and figures["segments"] == [2, 4]
    assert list(figures["sizes"]) == ["2", "3"]
    for row in figures["sizes"].values():
        assert list(row["by_segments"]) == ["2", "4"] and row["states"] > 0
        for k, cell in row["by_segments"].items():
            assert cell["mean_segments"] == cell["closed_loop_mean_segments"] == int(k)  # exactly k, every decision
            assert cell["multiple"] == int(k) / 2 and 0 <= cell["accuracy"] <= 1 and cell["episodes"] == 3
            low, high = cell["success_ci95"]
            assert low <= cell["success"] <= high
        accuracies = [cell["accuracy"] for cell in row["by_segments"].values()]
        assert row["max_drop"] == pytest.approx(max(0.0, accuracies[0] - accuracies[1]), abs=1e-4)
        assert row["non_decreasing"] == (row["max_drop"] <= 0.01)
    verdict = all(row["non_decreasing"] for row in figures["sizes"].values())
    assert figures["non_decreasing"] == result["targets_met"]["non_decreasing"] == verdict
    assert figures["verdict"].startswith("no overthinking" if verdict else "overthinking at sizes")


def test_without_closed_loop_only_accuracy_is_measured(hrm_checkpoint, tmp_path):
    figures = main(["--checkpoint", hrm_checkpoint, "--sizes", "3", "--segments", "1", "--multiples", "--puzzles", "2",
                    "--out", str(tmp_path)])["figures"]
    assert figures["segments"] == [1, 2]  # the explicit count and the trained reference
    cell = figures["sizes"]["3"]["by_segments"]["1"]
    assert cell["mean_segments"] == 1 and "success" not in cell


def test_the_puzzles_and_figures_are_train_evaluates(hrm_checkpoint, tmp_path):
    figures = main(["--checkpoint", hrm_checkpoint, *TINY, "--seed", "7", "--closed-loop", "--out", str(tmp_path)])
    encoder = encoder_for(gym.make(ENV, max_disks=6))
    policy = load_policy(hrm_checkpoint, encoder, acting={"inference_halting": "max_steps", "halt_max_steps": 4})
    rows = evaluate_policies({"k4": policy}, ENV, [2, 3], 3, "num_disks", {"max_disks": 6}, seed=7)["k4"]
    for size in ("2", "3"):
        cell = figures["figures"]["sizes"][size]["by_segments"]["4"]
        assert cell["accuracy"] == pytest.approx(rows[size]["teacher_forcing"], abs=1e-4)
        assert (cell["success"], cell["success_ci95"]) == (rows[size]["success"], rows[size]["success_ci95"])


def test_bad_arguments_are_refused_naming_them(hrm_checkpoint, tmp_path):
    out = ["--out", str(tmp_path)]
    with pytest.raises(ValueError, match=r"--multiples must be integers >= 1, got \[0, 2\]"):
        main(["--checkpoint", hrm_checkpoint, "--multiples", "0", "2", *out])
    with pytest.raises(ValueError, match=r"--multiples must name at least one multiple \(or pass --segments\)"):
        main(["--checkpoint", hrm_checkpoint, "--multiples", *out])
    with pytest.raises(ValueError, match=r"--tolerance must lie in \[0, 1\)"):
        main(["--checkpoint", hrm_checkpoint, "--tolerance", "-0.1", *out])
    with pytest.raises(ValueError, match="--sizes must name at least one puzzle size"):
        main(["--checkpoint", hrm_checkpoint, "--sizes", *out])
    with pytest.raises(ValueError, match="--segments must be integers >= 1"):
        main(["--checkpoint", hrm_checkpoint, "--segments", "0", *out])
    with pytest.raises(ValueError, match="--puzzles must be >= 1"):
        main(["--checkpoint", hrm_checkpoint, "--puzzles", "0", *out])
    with pytest.raises(ValueError, match="--checkpoint .*missing.pt does not exist"):
        main(["--checkpoint", str(tmp_path / "missing.pt"), *out])
    with pytest.raises(ValueError, match="--env must be one of .*'hanoi'.*got 'towers'"):
        main(["--checkpoint", hrm_checkpoint, "--env", "towers", *out])
    with pytest.raises(ValueError, match=r"trained on hrm/Hanoi-v0 \(env=hanoi\).*hrm/Maze-v0"):
        main(["--checkpoint", hrm_checkpoint, "--env", "maze", *out])
    with pytest.raises(ValueError, match="--env-override entries look like env.KEY=VALUE"):
        main(["--checkpoint", hrm_checkpoint, "--env-override", "kwargs.max_disks=6", *out])
    assert not (tmp_path / "overthinking.json").exists()


def test_a_checkpoint_without_act_segments_is_refused(tmp_path):
    lstm = tiny_checkpoint(tmp_path / "lstm.pt", {"name": "lstm", "hidden_size": 16, "depth": 1},
                           {"env": hanoi_env_config()})
    with pytest.raises(ValueError, match="--checkpoint .*lstm.pt holds a .* model, which runs no ACT segments"):
        main(["--checkpoint", lstm, *TINY, "--out", str(tmp_path)])
    bare = tiny_checkpoint(tmp_path / "bare.pt", HRM, {})  # no env in its run config
    with pytest.raises(ValueError, match="--env is not set and checkpoint .*bare.pt names no env"):
        main(["--checkpoint", bare, *TINY, "--out", str(tmp_path)])
    explicit = main(["--checkpoint", bare, "--env", "hanoi", "--env-override", "env.kwargs.max_disks=6", "--sizes", "2",
                     "--multiples", "1", "--puzzles", "1", "--out", str(tmp_path)])["figures"]
    assert (explicit["env_name"], explicit["env_kwargs"]) == ("hanoi", {"max_disks": 6})
