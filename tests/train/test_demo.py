"""train.demo, the README's main job: data set, oracle frames, DAgger training and the evaluation report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_builds_trains_and_evaluates(tmp_path):
    done = subprocess.run([sys.executable, "-m", "train.demo", "--out", str(tmp_path), "--rounds", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "STOP -> success: True" in done.stdout
    summary = json.loads((tmp_path / "hanoi-small" / "summary.json").read_text())
    assert summary["splits"]["train"]["puzzles"] == 60
    assert (tmp_path / "hanoi_oracle.png").stat().st_size > 0
    assert (tmp_path / "dagger" / "last.pt").is_file()
    results = json.loads((tmp_path / "evaluate" / "results.json").read_text())["results"]
    assert set(results) == {"oracle", "random", "hrm_dagger"}
    assert results["oracle"]["all"]["success"] == 1.0
    # one short DAgger round already solves the 1- and 2-disk puzzles it trained on
    assert results["hrm_dagger"]["1"]["success"] >= 0.9 and results["hrm_dagger"]["2"]["success"] >= 0.9


@pytest.mark.slow
def test_demo_rejects_bad_arguments(tmp_path):
    done = subprocess.run([sys.executable, "-m", "train.demo", "--out", str(tmp_path), "--rounds", "-1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--rounds must be in 0..20" in done.stderr
