"""pretrained/: every released policy is the file its manifest names, plays its test sizes, and a fresh seed lands
inside the intervals its manifest states (slow)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from configs import CONFIG_DIR
from train.evaluate import run
from train.release import FAMILIES, MAX_POLICY_BYTES, MAX_TOTAL_BYTES
from train.stats import wilson_interval

ROOT = Path(__file__).resolve().parents[2]  # the repository
ENTRIES = json.loads((ROOT / "pretrained" / "manifest.json").read_text())["policies"]
KEYS = {"name", "family", "checkpoint", "env", "env_overrides", "validation_sizes", "test_sizes", "validation", "test",
        "configs_compared", "train_command", "train_minutes", "sha256", "bytes", "evaluate_command"}


def play(entry: dict, tmp_path: Path, episodes: int, seed: int) -> dict:
    sizes = ",".join(map(str, entry["test_sizes"]))
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"env={entry['env']}", *entry["env_overrides"],
                                             f"checkpoint={ROOT / entry['checkpoint']}", f"names=[{entry['name']}]",
                                             "references=[]", f"sizes=[{sizes}]", f"episodes={episodes}",
                                             f"seed={seed}", f"out={tmp_path}"])
    return run(cfg)["results"][entry["name"]]


def test_the_manifest_names_each_released_file_and_its_figures():
    assert ENTRIES, "pretrained/manifest.json lists no policy"
    assert {e["family"] for e in ENTRIES} <= set(FAMILIES) and len({e["name"] for e in ENTRIES}) == len(ENTRIES)
    total = 0
    for entry in ENTRIES:
        assert KEYS <= set(entry), f"{entry['name']} lacks {sorted(KEYS - set(entry))}"
        path = ROOT / entry["checkpoint"]
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{path} is not the released file"
        assert len(data) == entry["bytes"] <= MAX_POLICY_BYTES
        total += len(data)
        for split in ("validation", "test"):
            figures = entry[split]
            for row in [figures, *figures["per_size"].values()]:
                low, high = row["success_ci95"]
                assert low <= row["success"] <= high and row["cost_optimal"] <= row["success"]
        assert set(entry["test"]["per_size"]) == {str(s) for s in entry["test_sizes"]}
        assert max(map(int, entry["test_sizes"])) > max(map(int, entry["validation_sizes"]))
    assert total <= MAX_TOTAL_BYTES
    assert not [p.name for p in (ROOT / "pretrained").glob("*.pt")
                if f"pretrained/{p.name}" not in {e["checkpoint"] for e in ENTRIES}], "unlisted files in pretrained/"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_every_released_policy_plays_its_test_sizes(entry, tmp_path):
    rows = play(entry, tmp_path, episodes=2, seed=11)
    assert {str(s) for s in entry["test_sizes"]} | {"all"} == set(rows)
    assert rows["all"]["episodes"] == 2 * len(entry["test_sizes"])


@pytest.mark.slow
@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_a_fresh_seed_lands_inside_the_stated_interval(entry, tmp_path):
    """30 fresh puzzles of the smallest test size: their success interval must overlap the manifest's for that
    size (a user re-evaluating on a seed of their own gets a figure consistent with the stated one)."""
    size = str(entry["test_sizes"][0])
    rows = play({**entry, "test_sizes": [entry["test_sizes"][0]]}, tmp_path, episodes=30, seed=20261206)
    solved = round(rows[size]["success"] * rows[size]["episodes"])
    low, high = wilson_interval(solved, rows[size]["episodes"])
    stated = entry["test"]["per_size"][size]
    stated_low, stated_high = stated["success_ci95"]
    assert low <= stated_high and stated_low <= high, (
        f"{entry['name']} at {size}: fresh puzzles give {rows[size]['success']:.3f} [{low:.3f}, {high:.3f}], the "
        f"manifest {stated['success']:.3f} [{stated_low:.3f}, {stated_high:.3f}]")
