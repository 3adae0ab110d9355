"""train.metrics: the metrics logger (jsonl + TensorBoard, resumes) and strict JSON."""

from __future__ import annotations

import json
import math

from train.metrics import MetricsLogger, strict_json, write_json


def test_metrics_logger_writes_jsonl_and_tensorboard(tmp_path):
    logger = MetricsLogger(tmp_path, enabled=True)
    logger.log(5, 1, "train", {"loss": 0.5, "note": "x"})
    logger.close()
    assert json.loads((tmp_path / "metrics.jsonl").read_text()) == {"step": 5, "epoch": 1, "phase": "train",
                                                                     "loss": 0.5, "note": "x"}
    assert any((tmp_path / "tensorboard").iterdir())
    silent = MetricsLogger(tmp_path / "rank1", enabled=False)
    silent.log(1, 1, "train", {"loss": 1.0})
    silent.close()
    assert not (tmp_path / "rank1").exists()


def strict(text: str):
    """``json.loads`` that refuses NaN and infinities, as strict JSON parsers do."""
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_metrics_and_run_json_are_strict_and_a_fresh_log_replaces_an_old_one(tmp_path):
    logger = MetricsLogger(tmp_path)
    for step in (5, 10, 15):
        logger.log(step, 1, "eval", {"loss": float("nan"), "gap": float("-inf"), "tf": 0.5, "sizes": [1.0, math.inf]})
    logger.close()
    rows = [strict(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[0] == {"step": 5, "epoch": 1, "phase": "eval", "loss": None, "gap": None, "tf": 0.5,
                       "sizes": [1.0, None]}
    resumed = MetricsLogger(tmp_path, resume_step=10)  # resumed from a checkpoint at step 10: later rows go
    resumed.log(15, 2, "eval", {"tf": 0.75})
    resumed.close()
    steps = [strict(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15]
    fresh = MetricsLogger(tmp_path)  # a fresh run in a folder an uncheckpointed run left rows in
    fresh.log(5, 1, "train", {"loss": 1.0})
    fresh.close()
    assert [strict(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [
        {"step": 5, "epoch": 1, "phase": "train", "loss": 1.0}]
    write_json(tmp_path / "final.json", {"success": float("nan"), "rounds": 3})
    assert strict((tmp_path / "final.json").read_text()) == {"success": None, "rounds": 3}
    assert strict_json({"a": (float("inf"), 1)}) == '{"a": [null, 1]}'
