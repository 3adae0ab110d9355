"""Data sets: deterministic atomic builds, validation that catches corruption, loaders that refuse bad files."""

from __future__ import annotations

import filecmp
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from train.datasets import StepwiseDataset, StepwiseSplit, build, parse_spec, validate
from train.datasets import stepwise as stepwise_module

ROOT = Path(__file__).resolve().parents[2]
SMALL = {
    "name": "hanoi-tiny",
    "kind": "stepwise",
    "env": "hrm/Hanoi-v0",
    "size_arg": "num_disks",
    "env_kwargs": {"max_disks": 6},
    "splits": {"train": {"sizes": [1, 2, 3], "puzzles": 30, "seed": 0}, "test": {"sizes": [4, 5], "puzzles": 10, "seed": 10_000}},
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "tiny"
    build(parse_spec(SMALL), out, "test", progress=False)
    return out


def test_summary_counts_and_exhausted_sizes(built):
    summary = json.loads((built / "summary.json").read_text())
    train = summary["splits"]["train"]
    assert train["puzzles"] == 30 and train["per_size"]["1"]["puzzles"] == 6  # 1 disk has only 6 puzzles
    assert sum(s["puzzles"] for s in train["per_size"].values()) == 30
    assert train["samples"] == sum(s["samples"] for s in train["per_size"].values())
    assert summary["versions"]["numpy"] == np.__version__ and summary["build_command"] == "test"
    assert train["static_keys"] == ["goal"]


def test_build_is_deterministic(built, tmp_path):
    again = tmp_path / "again"
    build(parse_spec(SMALL), again, "test", progress=False)
    files = sorted(p.relative_to(built) for p in built.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all(filecmp.cmp(built / f, again / f, shallow=False) for f in files)


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stepwise_module, "oracle_trajectories", explode)
    with pytest.raises(KeyboardInterrupt):
        build(parse_spec(SMALL), tmp_path / "broken", "test", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(built):
    with pytest.raises(ValueError, match="overwrite"):
        build(parse_spec(SMALL), built, "test", progress=False)


def test_validation_passes_and_rechecks_every_label(built):
    report = validate(built)
    assert report.violations == []
    assert report.checks["train.labels_rechecked"] == StepwiseSplit(built, "train").num_samples
    assert report.checks["overlap.test-train"] == 0


def _copy(built: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(built, target)
    return target


@pytest.mark.parametrize("holding", ["user-files", "other-summary", "corrupt-summary", "file"])
def test_overwrite_replaces_only_a_data_set(tmp_path, holding):
    out = tmp_path / "out"
    if holding == "file":
        out.write_text("notes")
    else:
        out.mkdir()
        (out / "important.txt").write_text("keep me")
        summary = {"other-summary": '{"kind": "stepwise", "env": "hrm/Hanoi-v0", "final_eval": 0.9}', "corrupt-summary": "{"}
        if holding in summary:
            (out / "summary.json").write_text(summary[holding])
    before = {path: path.read_bytes() for path in [out, *out.rglob("*")] if path.is_file()}
    why = "is a file or a symbolic link" if holding == "file" else "is not a data set of this suite .*summary"
    with pytest.raises(ValueError, match=re.escape(f"out={str(out)!r} ") + why):
        build(parse_spec(SMALL), out, "test", overwrite=True, progress=False)
    assert {path: path.read_bytes() for path in [out, *out.rglob("*")] if path.is_file()} == before
    assert sorted(tmp_path.iterdir()) == [out]


def test_overwrite_replaces_a_data_set(built, tmp_path):
    copy = _copy(built, tmp_path)
    (copy / "important.txt").write_text("inside a data set: replaced with it")
    np.save(copy / "train" / "action.npy", np.zeros(3))
    build(parse_spec(SMALL), copy, "test", overwrite=True, progress=False)
    assert not (copy / "important.txt").exists() and validate(copy).violations == []
    assert sorted(tmp_path.iterdir()) == [copy]


def test_build_removes_only_stale_temporary_folders(tmp_path):
    finished = subprocess.Popen([sys.executable, "-c", ""])
    finished.wait()
    dead, alive = finished.pid, os.getppid()
    stale = tmp_path / f".tiny.tmp-{dead}"
    kept = [f".tiny.tmp-{alive}", f".other.tmp-{dead}", f"tiny.tmp-{dead}", f".tiny.tmp-{dead}x", ".tiny.tmp-abc", f".tiny.old-{dead}"]
    for folder in [stale, *(tmp_path / name for name in kept)]:
        folder.mkdir()
        (folder / "x.npy").write_bytes(b"partial")
    (tmp_path / f".tiny.tmp-{dead + 1}").write_text("a file, not a build's folder")
    build(parse_spec(SMALL), tmp_path / "tiny", "test", progress=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([*kept, f".tiny.tmp-{dead + 1}", "tiny"])
    assert all((tmp_path / name / "x.npy").read_bytes() == b"partial" for name in kept)


def test_validation_catches_a_wrong_label(built, tmp_path):
    copy = _copy(built, tmp_path)
    actions = np.load(copy / "train" / "action.npy")
    actions[5] = (actions[5] + 1) % 19
    np.save(copy / "train" / "action.npy", actions)
    report = validate(copy)
    assert any("sample 5" in v for v in report.violations)


def test_validation_catches_overlap(built, tmp_path):
    copy = _copy(built, tmp_path)
    for name in ("obs.state", "obs.action_mask"):
        train = np.load(copy / "train" / f"{name}.npy")
        test = np.load(copy / "test" / f"{name}.npy")
        test[0] = train[0]
        np.save(copy / "test" / f"{name}.npy", test)
    goal_train = np.load(copy / "train" / "puzzle_obs.goal.npy")
    goal_test = np.load(copy / "test" / "puzzle_obs.goal.npy")
    goal_test[0] = goal_train[0]
    np.save(copy / "test" / "puzzle_obs.goal.npy", goal_test)
    assert any("appear in both" in v for v in validate(copy).violations)


def test_truncated_and_missing_files_are_named(built, tmp_path):
    copy = _copy(built, tmp_path)
    path = copy / "train" / "step.npy"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ValueError, match="step.npy"):
        StepwiseSplit(copy, "train")
    (copy / "test" / "optimal.npy").unlink()
    with pytest.raises(ValueError, match="missing data file .*optimal.npy"):
        StepwiseDataset(copy, "test")
    report = validate(copy)
    assert any("step.npy" in v for v in report.violations) and any("optimal.npy" in v for v in report.violations)


def _edit_summary(change):
    """A corruption of a copied set: ``change`` maps its summary.json (loaded) to what is written back."""

    def corrupt(folder: Path) -> None:
        path = folder / "summary.json"
        path.write_text(json.dumps(change(json.loads(path.read_text()))))

    return corrupt


def _without(summary: dict, *keys: str) -> dict:
    parent = summary
    for key in keys[:-1]:
        parent = parent[key]
    del parent[keys[-1]]
    return summary


def _shorten_sizes(summary: dict, per_size: bool) -> dict:
    train = summary["splits"]["train"]
    dropped = train["sizes"].pop()
    if per_size:
        del train["per_size"][dropped]
    return summary


def _puzzle_index_out_of_range(folder: Path) -> None:
    puzzle = np.load(folder / "train" / "puzzle.npy")
    puzzle[3] = 10**6
    np.save(folder / "train" / "puzzle.npy", puzzle)


CORRUPTIONS = {
    "list": (_edit_summary(lambda s: []), "summary must be an object, got []"),
    "null": (_edit_summary(lambda s: None), "summary must be an object, got None"),
    "not-json": (lambda folder: (folder / "summary.json").write_bytes(b"\xff{"), "unreadable or corrupt JSON in"),
    "no-splits": (_edit_summary(lambda s: _without(s, "splits")), "summary lacks the key 'splits'"),
    "no-per_size": (_edit_summary(lambda s: _without(s, "splits", "train", "per_size")), "splits.train lacks the key 'per_size'"),
    "no-static_keys": (_edit_summary(lambda s: _without(s, "splits", "test", "static_keys")), "splits.test lacks the key 'static_keys'"),
    "split-not-object": (_edit_summary(lambda s: {**s, "splits": {"test": 3}}), "splits.test must be an object"),
    "switched-env": (_edit_summary(lambda s: {**s, "env": "hrm/Maze-v0"}), "env 'hrm/Maze-v0' cannot be made with its obs_env_kwargs"),
    "unknown-env": (_edit_summary(lambda s: {**s, "env": "hrm/Chess-v0"}), "summary.env must be one of"),
    "extra-key": (_edit_summary(lambda s: {**s, "colour": 1}), "summary has the unknown key 'colour'"),
    "mistyped-count": (_edit_summary(lambda s: {**s, "splits": {"test": {**s["splits"]["test"], "samples": "9"}}}), "must be an integer >= 0"),
    "sizes-shortened": (_edit_summary(lambda s: _shorten_sizes(s, per_size=False)), "splits.train.sizes ['1', '2'] and the keys of"),
    "sizes-and-per_size-shortened": (_edit_summary(lambda s: _shorten_sizes(s, per_size=True)), "puzzle_size.npy holds size index 2"),
    "puzzle-index-out-of-range": (_puzzle_index_out_of_range, "puzzle.npy: sample 3 has puzzle index 1000000"),
}  # fmt: skip


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_validation_reports_a_malformed_summary_or_index(built, tmp_path, name):
    corrupt, problem = CORRUPTIONS[name]
    copy = _copy(built, tmp_path)
    corrupt(copy)
    report = validate(copy)
    assert any(problem in v for v in report.violations), report.violations
    assert report.text().endswith(f"FAILED with {len(report.violations)} violations")


@pytest.mark.parametrize("name", ["null", "puzzle-index-out-of-range"])
def test_cli_validate_reports_without_traceback(built, tmp_path, name):
    corrupt, problem = CORRUPTIONS[name]
    copy = _copy(built, tmp_path)
    corrupt(copy)
    result = subprocess.run([sys.executable, "-m", "train.datasets", "validate", str(copy)], capture_output=True, text=True, cwd=ROOT)
    assert (result.returncode, result.stderr) == (1, "") and problem in result.stdout


def test_mismatched_shape_is_refused(built, tmp_path):
    copy = _copy(built, tmp_path)
    np.save(copy / "train" / "cost_to_go.npy", np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="cost_to_go.npy has shape"):
        StepwiseSplit(copy, "train")


def test_torch_dataset_items(built):
    data = StepwiseDataset(built, "train")
    item = data[3]
    assert item["tokens"].dtype == torch.int64 and item["tokens"].shape == (6,)
    assert item["optimal"].dtype == torch.bool and item["optimal"][item["action"]]
    assert (item["optimal"] <= item["action_mask"]).all()  # optimal actions are legal
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True)
    batch = next(iter(loader))
    assert batch["tokens"].shape == (8, 6) and batch["optimal"].shape == (8, 19)
    with pytest.raises(ValueError, match="split must be one of"):
        StepwiseDataset(built, "validation")


@pytest.mark.parametrize(
    "change, match",
    [
        ({"kind": "video"}, "preset.kind"),
        ({"env": "hrm/Chess-v0"}, "preset.env"),
        ({"colour": 1}, "unknown keys"),
        ({"splits": {}}, "at least one split"),
        ({"splits": {"train": {"sizes": [], "puzzles": 1, "seed": 0}}}, "sizes must not be empty"),
        ({"splits": {"train": {"sizes": [1], "puzzles": 0, "seed": 0}}}, "puzzles must be >= 1"),
        ({"splits": {"a": {"sizes": [1], "puzzles": 1, "seed": 0}, "b": {"sizes": [2], "puzzles": 1, "seed": 0}}}, "distinct seeds"),
        ({"num_aug": -1}, "num_aug"),
    ],
)
def test_bad_presets(change, match):
    with pytest.raises(ValueError, match=match):
        parse_spec({**SMALL, **change})


@pytest.mark.slow
def test_cli_builds_and_validates(tmp_path):
    out = tmp_path / "cli"
    run = [sys.executable, "-m", "train.datasets"]
    result = subprocess.run(
        [*run, "preset=hanoi-small", f"out={out}", "progress=false"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["splits"]["train"]["puzzles"] == 60
    ok = subprocess.run([*run, "validate", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0 and ok.stdout.strip().endswith("OK")
    (out / "train" / "action.npy").unlink()
    failed = subprocess.run([*run, "validate", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert failed.returncode == 1 and "action.npy" in failed.stdout
    again = subprocess.run([*run, "preset=hanoi-small", f"out={out}"], capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 2 and "overwrite" in again.stderr
    helptext = subprocess.run([*run, "--help"], capture_output=True, text=True, cwd=ROOT)
    assert "hanoi-paper" in helptext.stdout


def test_stepwise_city_variants_give_every_vehicle(tmp_path):
    spec = {
        "name": "city-variants", "kind": "stepwise", "env": "hrm/CityRouting-v0", "size_arg": "size",
        "env_kwargs": {"max_size": 10}, "variants": True,
        "splits": {"train": {"sizes": [8], "puzzles": 2, "seed": 0}, "test": {"sizes": [10], "puzzles": 1, "seed": 100}},
    }  # fmt: skip
    summary = build(parse_spec(spec), tmp_path / "city", "test", progress=False)
    train = summary["splits"]["train"]
    assert (train["bases"], train["puzzles"], train["seed_range"]) == (2, 8, [0, 1])
    data = StepwiseSplit(tmp_path / "city", "train")
    vehicles = data.obs_batch(data.offsets[:-1])["vehicle"][:, 0]
    assert vehicles.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
