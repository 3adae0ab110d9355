"""train.evaluate: reference rows, a checkpoint row, the report files, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from train.evaluate import CONFIG_DIR, evaluate_policies, run

ENV = "hrm/Hanoi-v0"


def config(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("evaluate", overrides=[f"out={tmp_path / 'report'}", "episodes=6", "sizes=[2,4]", *overrides])


def test_oracle_row_is_perfect_and_random_row_is_not():
    results = evaluate_policies({"oracle": None, "random": None}, ENV, [3, 5], 8, "num_disks", {"max_disks": 6})
    for size in ("3", "5", "all"):
        row = results["oracle"][size]
        assert (row["success"], row["optimality_ratio"], row["teacher_forcing"], row["gap"]) == (1.0, 1.0, 1.0, 0.0)
        assert row["first_error_steps"] == []
    assert results["random"]["all"]["success"] < 1.0
    assert results["random"]["all"]["teacher_forcing"] < 1.0
    assert results["oracle"]["3"]["episodes"] == 8 and results["oracle"]["all"]["episodes"] == 16


def test_cli_evaluates_a_checkpoint_and_writes_the_report(tmp_path):
    import torch

    from hrm_envs.encoding import encoder_for
    import gymnasium as gym
    from train.learner import Learner, save_checkpoint

    encoder = encoder_for(gym.make(ENV, max_disks=10))
    learner = Learner({"name": "hrm", "hidden_size": 16, "num_heads": 2, "H_layers": 1, "L_layers": 1,
                       "halt_max_steps": 3}, {"lr": 1e-3}, encoder)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "hrm" / "last.pt", learner, {"test": True}, 0)
    out = run(config(tmp_path, f"checkpoint={tmp_path / 'hrm' / 'last.pt'}"))
    report = tmp_path / "report"
    data = json.loads((report / "results.json").read_text())
    assert set(data["results"]) == {"oracle", "random", "hrm"} == set(out["results"])
    row = data["results"]["hrm"]["all"]
    assert 1.0 <= row["mean_segments"] <= 3.0 and 0.0 <= row["success"] <= 1.0
    assert data["meta"]["sizes"] == [2, 4]
    table = (report / "results.md").read_text()
    assert "| hrm | 4 | 6 |" in table and "| oracle | all | 12 | 1.000 |" in table
    for name in ("success_vs_size", "gap", "first_error", "segments_vs_size"):
        png = report / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["episodes=0"], "episodes"),
        (["sizes=[]"], "sizes"),
        (["references=[oracle,expert]"], "references"),
        (["checkpoint=[a.pt,b.pt]", "names=[x]"], "names"),
        (["checkpoint=/nonexistent/last.pt"], "does not exist"),
        (["checkpoint=/nonexistent/model.zip"], "does not exist"),
        (["env.eval_horizon=-1"], "env.eval_horizon"),
    ],
)
def test_bad_input_names_the_argument(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        run(config(tmp_path, *overrides))


def test_bad_size_argument():
    with pytest.raises(ValueError, match="size_arg"):
        evaluate_policies({"oracle": None}, ENV, [3], 2, "disks")
    with pytest.raises(ValueError, match="only"):
        evaluate_policies({"mine": None}, ENV, [3], 2, "num_disks")


def test_ppo_row_trains_within_its_wall_time_and_is_evaluated_like_the_others(tmp_path):
    import time

    from train.ppo import CONFIG_DIR as PPO_CONFIGS, train

    with initialize_config_dir(config_dir=str(PPO_CONFIGS), version_base="1.3"):
        cfg = compose("ppo", overrides=[f"out={tmp_path / 'ppo'}", "ppo.policy=mlp", "ppo.minutes=0.05",
                                        "ppo.n_steps=16", "ppo.batch_size=32"])
    started = time.monotonic()
    progress = train(cfg)
    assert time.monotonic() - started < 40 and progress["timesteps"] > 0
    assert progress["minutes"] < 0.5
    out = run(config(tmp_path, f"checkpoint={tmp_path / 'ppo' / 'model.zip'}", "references=[]"))
    assert set(out["results"]) == {"ppo"} and out["results"]["ppo"]["all"]["episodes"] == 12
    with initialize_config_dir(config_dir=str(PPO_CONFIGS), version_base="1.3"):
        bad = compose("ppo", overrides=[f"out={tmp_path / 'bad'}", "ppo.policy=transformer"])
    with pytest.raises(ValueError, match="ppo.policy"):
        train(bad)
