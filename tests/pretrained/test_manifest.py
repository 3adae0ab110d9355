"""pretrained/: every released policy is the file its manifest names, plays its test sizes, and a fresh seed lands
inside the intervals its manifest states (slow). A seq2seq policy (an entry with ``data``) is scored on a small test
split built afresh from its preset with another seed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import gymnasium as gym
import pytest
from hydra import compose, initialize_config_dir

from configs import CONFIG_DIR
from hrm_envs.encoding import encoder_for
from hrm_envs.sudoku.generator import LEVELS
from train.checkpoints import checkpoint_config
from train.datasets import build, parse_spec
from train.evaluate import run
from train.release import FAMILIES, MAX_POLICY_BYTES, MAX_TOTAL_BYTES
from train.runs import load_preset
from train.stats import wilson_interval

ROOT = Path(__file__).resolve().parents[2]  # the repository
ENTRIES = json.loads((ROOT / "pretrained" / "manifest.json").read_text())["policies"]
COMMON = {"name", "family", "checkpoint", "env", "validation", "test", "configs_compared", "train_command",
          "train_minutes", "sha256", "bytes", "evaluate_command"}
KEYS = COMMON | {"env_overrides", "validation_sizes", "test_sizes"}
SEQ2SEQ_KEYS = COMMON | {"data", "validation_bases"}
STEPWISE = [e for e in ENTRIES if "data" not in e]
SEQ2SEQ = [e for e in ENTRIES if "data" in e]  # scored on a data set (train.evaluate data=DIR), not played
#: The seed of the fresh test split a seq2seq entry is scored on (far from every preset's seed ranges).
FRESH_SEED = 20_261_206


def play(entry: dict, tmp_path: Path, episodes: int, seed: int, teacher_forcing: bool = True) -> dict:
    sizes = ",".join(map(str, entry["test_sizes"]))
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"env={entry['env']}", *entry["env_overrides"],
                                             f"checkpoint={ROOT / entry['checkpoint']}", f"names=[{entry['name']}]",
                                             "references=[]", f"sizes=[{sizes}]", f"episodes={episodes}",
                                             f"seed={seed}", f"out={tmp_path}",
                                             f"teacher_forcing={str(teacher_forcing).lower()}"])
    return run(cfg)["results"][entry["name"]]


def state_tokens(entry: dict, size: int | str) -> int:
    """The tokens a policy reads per decision (the encoder's ``seq_len``), the env made at ``size`` under the entry's
    env overrides (which must admit it)."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        env_cfg = compose("evaluate", overrides=[f"env={entry['env']}", *entry["env_overrides"]]).env
    env = gym.make(env_cfg.id, **env_cfg.kwargs, **{env_cfg.size_arg: size})
    tokens = encoder_for(env).seq_len
    env.close()
    return tokens


def fresh_puzzles(tokens: int) -> int:
    """Puzzles the slow test plays: 30, or 10 where a decision reads over 400 tokens (a maze or city grid padded to
    31 or 40, where a puzzle costs hundreds of forward passes over ~1,000 tokens)."""
    return 30 if tokens <= 400 else 10


def size_rank(size: int | str) -> int:
    """A size's place in its order: a number, or a Sudoku level's index (harder is larger)."""
    return LEVELS.index(size) if size in LEVELS else int(size)


def test_the_manifest_names_each_released_file_and_its_figures():
    assert ENTRIES, "pretrained/manifest.json lists no policy"
    assert {e["family"] for e in ENTRIES} <= set(FAMILIES) and len({e["name"] for e in ENTRIES}) == len(ENTRIES)
    total = 0
    for entry in ENTRIES:
        keys = SEQ2SEQ_KEYS if "data" in entry else KEYS
        assert keys <= set(entry), f"{entry['name']} lacks {sorted(keys - set(entry))}"
        path = ROOT / entry["checkpoint"]
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{path} is not the released file"
        assert len(data) == entry["bytes"] <= MAX_POLICY_BYTES
        total += len(data)
        if "data" in entry:
            for figures in (entry["validation"], entry["test"], *entry["test"]["per_variant"].values()):
                for key in ("exact", "arrived", "valid"):
                    low, high = figures[f"{key}_ci95"]
                    assert low <= figures[key] <= high
            assert entry["evaluate_command"] == (f"python -m train.evaluate checkpoint={entry['checkpoint']} "
                                                 f"data={entry['data']}")
            continue
        for split in ("validation", "test"):
            figures = entry[split]
            for row in [figures, *figures["per_size"].values()]:
                low, high = row["success_ci95"]
                assert low <= row["success"] <= high and row["cost_optimal"] <= row["success"]
        assert set(entry["test"]["per_size"]) == {str(s) for s in entry["test_sizes"]}
        assert max(map(size_rank, entry["test_sizes"])) > max(map(size_rank, entry["validation_sizes"]))
    assert total <= MAX_TOTAL_BYTES
    assert not [p.name for p in (ROOT / "pretrained").glob("*.pt")
                if f"pretrained/{p.name}" not in {e["checkpoint"] for e in ENTRIES}], "unlisted files in pretrained/"


@pytest.mark.parametrize("entry", STEPWISE, ids=[e["name"] for e in STEPWISE])
def test_every_released_policy_plays_its_smallest_test_size(entry, tmp_path):
    """Loaded from its manifest entry, under its env overrides (which must admit every test size: the env is made at
    the largest test size too), a policy plays two puzzles of its smallest test size (the slow test plays more)."""
    size = entry["test_sizes"][0]
    rows = play({**entry, "test_sizes": [size]}, tmp_path, episodes=2, seed=11, teacher_forcing=False)
    assert set(rows) == {str(size), "all"} and rows["all"]["episodes"] == 2 and 0.0 <= rows["all"]["success"] <= 1.0
    state_tokens(entry, entry["test_sizes"][-1])


@pytest.mark.slow
@pytest.mark.parametrize("entry", STEPWISE, ids=[e["name"] for e in STEPWISE])
def test_a_fresh_seed_lands_inside_the_stated_interval(entry, tmp_path):
    """Fresh puzzles of the smallest test size (:func:`fresh_puzzles`): their success interval must overlap the
    manifest's for that size (a user re-evaluating on a seed of their own gets a figure consistent with the stated
    one). A policy that solves none fails it wherever the stated interval starts above 0.11 (30 puzzles) or 0.28
    (10 puzzles)."""
    size = str(entry["test_sizes"][0])
    episodes = fresh_puzzles(state_tokens(entry, entry["test_sizes"][0]))
    rows = play({**entry, "test_sizes": [entry["test_sizes"][0]]}, tmp_path, episodes=episodes, seed=20261206,
                teacher_forcing=False)  # success is all it compares
    solved = round(rows[size]["success"] * rows[size]["episodes"])
    low, high = wilson_interval(solved, rows[size]["episodes"])
    stated = entry["test"]["per_size"][size]
    stated_low, stated_high = stated["success_ci95"]
    assert low <= stated_high and stated_low <= high, (
        f"{entry['name']} at {size}: fresh puzzles give {rows[size]['success']:.3f} [{low:.3f}, {high:.3f}], the "
        f"manifest {stated['success']:.3f} [{stated_low:.3f}, {stated_high:.3f}]")


def fresh_test_split(entry: dict, folder: Path, bases: int = 8) -> Path:
    """A test split of ``bases`` base puzzles (every variant of each) built from the released policy's preset with
    :data:`FRESH_SEED`, under the env kwargs it was trained with."""
    trained = checkpoint_config(ROOT / entry["checkpoint"])["env"]
    spec = load_preset(trained["preset"])
    spec["env_kwargs"] = {**spec.get("env_kwargs", {}), **(trained.get("kwargs") or {})}
    spec["splits"] = {"test": {**spec["splits"]["test"], "puzzles": bases, "seed": FRESH_SEED}}
    build(parse_spec(spec), folder, "tests/pretrained/test_manifest.py (a fresh test split)", progress=False)
    return folder


@pytest.mark.parametrize("entry", SEQ2SEQ, ids=[e["name"] for e in SEQ2SEQ])
def test_every_released_seq2seq_policy_scores_a_fresh_test_split(entry, tmp_path):
    """8 fresh base cities (32 routes: 2 would be too few and too correlated for an interval): the decoded routes are
    valid, and the arrived interval overlaps the manifest's."""
    data = fresh_test_split(entry, tmp_path / "fresh")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        report = run(compose("evaluate", overrides=[f"checkpoint={ROOT / entry['checkpoint']}", f"data={data}",
                                                    f"out={tmp_path / 'report'}"]))
    every, stated = report["all"], entry["test"]
    assert set(report["per_variant"]) == set(stated["per_variant"])
    assert (every["valid"] == 1.0) == (stated["valid"] == 1.0)  # a move-field policy's routes stay on legal streets
    low, high = every["arrived_ci95"]
    stated_low, stated_high = stated["arrived_ci95"]
    assert low <= stated_high and stated_low <= high, (
        f"{entry['name']}: fresh puzzles arrive {every['arrived']:.3f} [{low:.3f}, {high:.3f}], the manifest states "
        f"{stated['arrived']:.3f} [{stated_low:.3f}, {stated_high:.3f}]")
