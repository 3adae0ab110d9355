"""HRM seq2seq sets: reference layout, determinism, atomic builds, augmentation groups, validation, loading."""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.hrm import IGNORE_LABEL
from configs import CONFIG_DIR
from hrm_envs.city.encoding import ON_ROUTE
from hrm_envs.maze.encoding import PATH
from oracles import oracle_for
from train.datasets import GroupSampler, Seq2SeqDataset, Seq2SeqSplit, build, parse_spec, validate
from train.datasets import loading as loading_module
from train.datasets import seq2seq as seq2seq_module
from train.datasets.augment import augmentation_for

ROOT = Path(__file__).resolve().parents[2]
CITY = {
    "name": "city-tiny",
    "kind": "seq2seq",
    "env": "hrm/CityRouting-v0",
    "size_arg": "size",
    "env_kwargs": {"max_size": 12},
    "variants": True,
    "num_aug": 2,
    "splits": {"train": {"sizes": [8, 12], "puzzles": 4, "seed": 0}, "test": {"sizes": [12], "puzzles": 2, "seed": 10_000}},
}
MAZE = {
    "name": "maze-tiny",
    "kind": "seq2seq",
    "env": "hrm/Maze-v0",
    "size_arg": "size",
    "env_kwargs": {"max_size": 11},
    "num_aug": 7,
    "splits": {"train": {"sizes": [7, 9], "puzzles": 6, "seed": 0}, "test": {"sizes": [11], "puzzles": 4, "seed": 10_000}},
}
SUDOKU = {
    "name": "sudoku-tiny",
    "kind": "seq2seq",
    "env": "hrm/Sudoku-v0",
    "size_arg": "difficulty",
    "env_kwargs": {"box": 2},
    "num_aug": 5,
    "splits": {"train": {"sizes": ["easy"], "puzzles": 6, "seed": 0}, "test": {"sizes": ["medium"], "puzzles": 6, "seed": 10_000}},
}
FILES = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("s2s") / "city"
    build(parse_spec(CITY), out, "test", progress=False)
    return out


@pytest.fixture(scope="module")
def maze(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("s2s") / "maze"
    build(parse_spec(MAZE), out, "test", progress=False)
    return out


def _copy(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(source, target)
    return target


def test_reference_layout_and_metadata(maze):
    assert json.loads((maze / "identifiers.json").read_text()) == ["<blank>"]
    summary = json.loads((maze / "summary.json").read_text())
    for split in ("train", "test"):
        meta = json.loads((maze / split / "dataset.json").read_text())
        info = summary["splits"][split]
        assert meta == {
            "pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0, "vocab_size": 6, "seq_len": 121,
            "num_puzzle_identifiers": 1, "total_groups": info["groups"], "mean_puzzle_examples": 1.0, "sets": ["all"],
        }  # fmt: skip
        arrays = {name: np.load(maze / split / f"all__{name}.npy") for name in FILES}
        assert arrays["inputs"].dtype == np.uint8 and arrays["inputs"].shape == (info["examples"], 121)
        assert arrays["labels"].shape == arrays["inputs"].shape
        assert all(arrays[name].dtype == np.int32 for name in FILES[2:])
        assert np.array_equal(arrays["puzzle_indices"], np.arange(info["examples"] + 1))
        assert arrays["group_indices"][0] == 0 and arrays["group_indices"][-1] == info["puzzles"]
        assert (arrays["puzzle_identifiers"] == 0).all()
    train = summary["splits"]["train"]
    assert train["bases"] == 6 and train["groups"] == 6 and train["num_aug"] == 7
    assert summary["splits"]["test"]["num_aug"] == 0 and summary["splits"]["test"]["examples"] == 4
    # 8 members per group unless a maze is symmetric (then repeated transforms are dropped)
    assert 6 < train["examples"] <= 48 and train["examples"] == sum(s["examples"] for s in train["per_size"].values())


def test_city_variants_are_groups_of_one_base(city):
    data = Seq2SeqSplit(city, "test", sources=True)
    assert data.num_groups == 2 * 4 and data.num_examples == 8  # 2 bases x 4 vehicles, no augmentation in test
    vehicles = data.observations["vehicle"][:, 0]
    assert sorted(vehicles.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
    for base in range(2):
        members = np.flatnonzero(data.puzzle_base == base)
        assert sorted(data.puzzle_variant[members].tolist()) == [0, 1, 2, 3]
        for key in ("street", "traffic", "oneway", "position", "destination"):
            assert all(np.array_equal(data.observations[key][members[0]], data.observations[key][m]) for m in members)
    train = json.loads((city / "summary.json").read_text())["splits"]["train"]
    assert train["bases"] == 4 and train["groups"] == 16 and train["examples"] == 48  # 4 bases x 4 vehicles x 3


def test_augmented_labels_are_the_oracle_labels_of_the_transformed_puzzle(maze, city):
    for root, env_id in ((maze, "hrm/Maze-v0"), (city, "hrm/CityRouting-v0")):
        data = Seq2SeqSplit(root, "train", sources=True)
        oracle, augmentation = oracle_for(env_id), augmentation_for(env_id, data.observation_space)
        transforms = set()
        for group in range(data.num_groups):
            first, stop = data.group_indices[group], data.group_indices[group + 1]
            original = data.obs(first)
            cost = oracle.cost_to_go(original)
            for member in range(first, stop):
                shown = data.obs(member)
                transforms.add(int(data.puzzle_transform[member, 0]))
                made = augmentation.apply(original, data.puzzle_transform[member])
                assert all(np.array_equal(made[k], shown[k]) for k in shown)
                assert oracle.cost_to_go(shown) == cost  # optimal cost is invariant under the symmetry
                route = (data.labels[member] == (PATH if env_id == "hrm/Maze-v0" else ON_ROUTE)).sum()
                assert route > 0
        assert len(transforms) > 2


def test_perfect_maze_labels_transform_with_the_maze(maze):
    # In a perfect maze the optimal path is unique, so re-labelling equals transforming the original labels.
    data = Seq2SeqSplit(maze, "train", sources=True)
    augmentation = augmentation_for("hrm/Maze-v0", data.observation_space)
    for group in range(data.num_groups):
        first, stop = data.group_indices[group], data.group_indices[group + 1]
        walls = data.observations["walls"][first]
        for member in range(first + 1, stop):
            as_walls = {**data.obs(first), "walls": np.where(data.labels[first].reshape(11, 11) == PATH, 3, walls)}
            moved = augmentation.apply(as_walls, data.puzzle_transform[member])["walls"]
            assert np.array_equal(moved == 3, data.labels[member].reshape(11, 11) == PATH)


def test_build_is_deterministic_and_validates(city, tmp_path):
    again = tmp_path / "again"
    build(parse_spec(CITY), again, "test", progress=False)
    files = sorted(p.relative_to(city) for p in city.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all(filecmp.cmp(city / f, again / f, shallow=False) for f in files)
    report = validate(city)
    assert report.violations == []
    assert report.checks["train.labels_rechecked"] == report.checks["train.solutions_valid_and_optimal"] == 48
    assert report.checks["overlap.test-train.examples"] == report.checks["overlap.test-train.bases"] == 0


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(seq2seq_module, "_check_round_trip", explode)
    with pytest.raises(KeyboardInterrupt):
        build(parse_spec(MAZE), tmp_path / "broken", "test", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_validation_catches_a_wrong_label(city, tmp_path):
    copy = _copy(city, tmp_path)
    labels = np.load(copy / "train" / "all__labels.npy")
    on_route = np.flatnonzero(labels[5] == ON_ROUTE)
    labels[5, on_route[len(on_route) // 2]] = 1  # cut the route
    np.save(copy / "train" / "all__labels.npy", labels)
    violations = validate(copy).violations
    assert any("disagree with the oracle (first [5])" in v for v in violations)
    assert any("not a valid optimal solution (first [5])" in v for v in violations)


def test_validation_catches_a_longer_route(maze, tmp_path):
    copy = _copy(maze, tmp_path)
    labels = np.load(copy / "test" / "all__labels.npy")
    inputs = np.load(copy / "test" / "all__inputs.npy")
    spare = np.flatnonzero((inputs[0] == 2) & (labels[0] == 2))[0]  # a floor cell off the path
    labels[0, spare] = PATH
    np.save(copy / "test" / "all__labels.npy", labels)
    assert any("not a valid optimal solution (first [0])" in v for v in validate(copy).violations)


def _put(copy: Path, split: str, index: int, obs: dict, inputs: np.ndarray, labels: np.ndarray) -> None:
    for key, value in obs.items():
        array = np.load(copy / split / f"obs.{key}.npy")
        array[index] = value
        np.save(copy / split / f"obs.{key}.npy", array)
    for name, row in (("inputs", inputs), ("labels", labels)):
        array = np.load(copy / split / f"all__{name}.npy")
        array[index] = row
        np.save(copy / split / f"all__{name}.npy", array)


def test_validation_catches_overlap_also_up_to_symmetry(maze, tmp_path):
    copy = _copy(maze, tmp_path)
    train = Seq2SeqSplit(copy, "train", sources=True)
    _put(copy, "test", 0, train.obs(0), train.inputs[0], train.labels[0])
    report = validate(copy)
    assert any("examples appear in both" in v for v in report.violations)
    copy2 = _copy(maze, tmp_path / "rotated")
    rotated = int(train.group_indices[1]) + 1  # an augmented copy of train base 1: train holds it only rotated
    _put(copy2, "test", 0, train.obs(rotated), train.inputs[rotated], train.labels[rotated])
    _put(copy2, "train", rotated, train.obs(0), train.inputs[0], train.labels[0])  # drop the exact copy from train
    report = validate(copy2)
    assert report.checks["overlap.test-train.examples"] == 0
    assert report.checks["overlap.test-train.bases"] >= 1 and any("bases appear in both" in v for v in report.violations)


def test_validation_catches_out_of_vocabulary_tokens_and_bad_groups(maze, tmp_path):
    copy = _copy(maze, tmp_path)
    inputs = np.load(copy / "train" / "all__inputs.npy")
    inputs[3, 7] = 200
    np.save(copy / "train" / "all__inputs.npy", inputs)
    transform = np.load(copy / "train" / "puzzle_transform.npy")
    transform[1, 0] = (transform[1, 0] % 7) + 1 if transform[1, 0] != 7 else 1
    transform[-1, 0] = 9  # not a dihedral transform at all
    np.save(copy / "train" / "puzzle_transform.npy", transform)
    violations = validate(copy).violations
    assert any("token 200 outside the vocabulary [0, 6)" in v for v in violations)
    assert any("differ from the encoded observations" in v for v in violations)
    assert any("2 groups are not an original and its augmentations (first [0, 5])" in v for v in violations)


def test_validation_catches_count_and_seed_range_mismatch(city, tmp_path):
    copy = _copy(city, tmp_path)
    summary = json.loads((copy / "summary.json").read_text())
    summary["splits"]["test"]["seed_range"] = [3, 20_000]
    summary["splits"]["train"]["per_size"]["8"]["examples"] += 1
    (copy / "summary.json").write_text(json.dumps(summary))
    violations = validate(copy).violations
    assert any("seed ranges of train and test overlap" in v for v in violations)
    assert any("example count of size 8 differs" in v for v in violations)


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"env": "hrm/Hanoi-v0"}, "env 'hrm/Hanoi-v0' has no seq2seq sets"),
        ({"env": "hrm/Sudoku-v0"}, "env 'hrm/Sudoku-v0' cannot be made with its obs_env_kwargs"),
        ({"splits": {"train": {"examples": 4}}}, "splits.train lacks the key 'groups'"),
        ({"kind": "stepwise"}, "splits.train lacks the key 'static_keys'"),
    ],
)
def test_validation_reports_a_malformed_summary(city, tmp_path, change, problem):
    copy = _copy(city, tmp_path)
    summary = json.loads((copy / "summary.json").read_text())
    (copy / "summary.json").write_text(json.dumps({**summary, **change}))
    assert any(problem in v for v in validate(copy).violations)


def test_validation_reports_a_size_index_out_of_range(city, tmp_path):
    copy = _copy(city, tmp_path)
    sizes = np.load(copy / "test" / "puzzle_size.npy")
    sizes[1] = 5
    np.save(copy / "test" / "puzzle_size.npy", sizes)
    assert any("puzzle_size.npy holds size index 5, outside the 1 sizes ['12']" in v for v in validate(copy).violations)


def test_truncated_missing_and_mismatched_files_are_named(city, tmp_path):
    copy = _copy(city, tmp_path)
    path = copy / "train" / "all__inputs.npy"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match="all__inputs.npy"):
        Seq2SeqDataset(copy, "train")
    (copy / "test" / "all__group_indices.npy").unlink()
    with pytest.raises(ValueError, match="missing data file .*all__group_indices.npy"):
        Seq2SeqDataset(copy, "test")
    report = validate(copy)
    assert any("all__inputs.npy" in v for v in report.violations) and any("all__group_indices.npy" in v for v in report.violations)
    copy2 = _copy(city, tmp_path / "two")
    meta = json.loads((copy2 / "train" / "dataset.json").read_text())
    meta["seq_len"] = 100
    (copy2 / "train" / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"all__inputs.npy has shape \(48, 144\), expected \(48, 100\)"):
        Seq2SeqDataset(copy2, "train")
    offsets = np.load(copy2 / "test" / "all__group_indices.npy")
    np.save(copy2 / "test" / "all__group_indices.npy", offsets[::-1].copy())
    with pytest.raises(ValueError, match="all__group_indices.npy must rise"):
        Seq2SeqDataset(copy2, "test")
    del meta["sets"]
    (copy2 / "train" / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"dataset.json lacks the keys \['sets'\]"):
        Seq2SeqSplit(copy2, "train")


def test_torch_dataset_items_and_group_sampler(city):
    data = Seq2SeqDataset(city, "train")
    assert loading_module.IGNORE_LABEL == IGNORE_LABEL
    item = data[7]
    assert set(item) == {"tokens", "labels", "puzzle_identifiers"}
    assert item["tokens"].dtype == item["labels"].dtype == torch.int64 and item["tokens"].shape == (144,)
    raw = torch.from_numpy(data.split.labels[7].astype(np.int64))
    assert torch.equal(item["labels"] == IGNORE_LABEL, raw == 0) and (item["labels"] == ON_ROUTE).any()
    assert data.metadata["vocab_size"] == 127 and data.metadata["num_puzzle_identifiers"] == 1
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=5, shuffle=True)))
    assert batch["tokens"].shape == (5, 144) and batch["puzzle_identifiers"].shape == (5,)
    sampler = data.group_sampler(seed=3)
    assert isinstance(sampler, GroupSampler) and len(sampler) == 16
    first, second = list(sampler), list(sampler)
    assert sorted(data.group_of[first].tolist()) == list(range(16)) and first != second  # one per group, new epoch
    assert first == list(data.group_sampler(seed=3))
    with pytest.raises(ValueError, match="split must be one of"):
        Seq2SeqDataset(city, "validation")



def test_a_stepwise_set_is_refused(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"kind": "stepwise", "splits": {}}))
    with pytest.raises(ValueError, match="not a seq2seq one"):
        Seq2SeqDataset(tmp_path, "train")


@pytest.mark.parametrize(
    "change, match",
    [
        ({"num_aug": 8}, "num_aug must be <= 7"),
        ({"env": "hrm/Hanoi-v0", "size_arg": "num_disks", "env_kwargs": {}}, "needs an env with a seq2seq encoder"),
        ({"variants": "yes"}, "preset.variants must be true or false"),
    ],
)
def test_bad_seq2seq_presets(change, match, tmp_path):
    spec = {**MAZE, **change}
    if spec["env"] == "hrm/Hanoi-v0":
        spec["splits"] = {"train": {"sizes": [3], "puzzles": 2, "seed": 0}}
    with pytest.raises(ValueError, match=match):
        build(parse_spec(spec), tmp_path / "bad", "test", progress=False)
    assert not (tmp_path / "bad").exists()


def test_variants_need_a_generator_with_variants(tmp_path):
    with pytest.raises(ValueError, match="preset.variants needs an env whose generator has variants"):
        build(parse_spec({**MAZE, "variants": True}), tmp_path / "bad", "test", progress=False)


def test_cli_help_lists_options_and_presets():
    result = subprocess.run([sys.executable, "-m", "train.datasets", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0
    for word in ("out=DIR", "overwrite=true", "progress=false", "preset.num_aug=N", "validate DIR", "city-paper", "maze-hrm"):
        assert word in result.stdout


def test_sudoku_shuffles_keep_the_unique_solution(tmp_path):
    out = tmp_path / "sudoku"
    summary = build(parse_spec(SUDOKU), out, "test", progress=False)
    assert summary["splits"]["train"]["augmentation"] == "sudoku_shuffle"
    data = Seq2SeqSplit(out, "train", sources=True)
    oracle = oracle_for("hrm/Sudoku-v0")
    augmentation = augmentation_for("hrm/Sudoku-v0", data.observation_space)
    assert data.metadata["vocab_size"] == 6 and data.metadata["seq_len"] == 16
    assert data.puzzle_transform.shape[1] == 13 and data.num_groups == 6
    for group in range(data.num_groups):
        first, stop = data.group_indices[group], data.group_indices[group + 1]
        assert stop - first > 1
        solution = oracle.solution(data.obs(first))
        for member in range(first + 1, stop):
            params = data.puzzle_transform[member]
            moved = augmentation.apply({"grid": solution, "givens": np.ones_like(solution)}, params)["grid"]
            assert np.array_equal(moved.ravel() + 1, data.labels[member])  # the solution moves with the puzzle
    report = validate(out)
    assert report.violations == [] and report.checks["train.solutions_valid_and_optimal"] == data.num_examples
    labels = np.load(out / "train" / "all__labels.npy")
    labels[2, [0, 1]] = labels[2, [1, 0]]  # swap two digits of a row: still a row permutation, not a Sudoku
    np.save(out / "train" / "all__labels.npy", labels)
    assert any("not a valid optimal solution (first [2])" in v for v in validate(out).violations)
    identity = augmentation.identity(data.obs(0))
    assert augmentation.max_variants == 24 * 2 * 2**6 - 1
    for bad in (np.zeros(13, dtype=np.int64), identity[:-1], np.r_[identity[:4], 2, identity[5:]], np.r_[identity[:5], 0, 2, 1, 3, identity[9:]]):
        with pytest.raises(ValueError, match="params must be"):  # the last breaks a band apart
            augmentation.apply(data.obs(0), bad)


@pytest.mark.slow
def test_cli_validate_exit_status(maze, tmp_path):
    copy = _copy(maze, tmp_path)
    run = [sys.executable, "-m", "train.datasets", "validate", str(copy)]
    ok = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0 and ok.stdout.strip().endswith("OK") and "train.labels_rechecked" in ok.stdout
    labels = np.load(copy / "test" / "all__labels.npy")
    labels[1, labels[1] == PATH] = 2  # erase the path
    np.save(copy / "test" / "all__labels.npy", labels)
    failed = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    assert failed.returncode == 1 and "FAILED" in failed.stdout and "first [1]" in failed.stdout


@pytest.mark.parametrize("path", sorted((CONFIG_DIR / "preset").glob("*.yaml")), ids=lambda p: p.stem)
def test_presets_parse(path):
    from omegaconf import OmegaConf

    spec = parse_spec(OmegaConf.to_container(OmegaConf.load(path), resolve=True))
    assert spec.name == path.stem
    if spec.name == "city-paper":  # seed 001: 240 + 100 bases in all 4 vehicle variants, disjoint seed ranges
        assert spec.variants and spec.num_aug == 0 and spec.env_kwargs["max_size"] == 40
        assert (spec.splits["train"].puzzles, spec.splits["test"].puzzles) == (240, 100)
        assert spec.splits["test"].seed - spec.splits["train"].seed >= 240 * 100
    if spec.name == "city-paper-aug":  # the same routes, each train one with its 7 dihedral copies
        paper = parse_spec(OmegaConf.to_container(OmegaConf.load(path.with_name("city-paper.yaml")), resolve=True))
        assert spec.num_aug == 7 and spec.splits == paper.splits and spec.variants and spec.env_kwargs == paper.env_kwargs


def test_validation_survives_an_observation_that_is_no_puzzle(maze, tmp_path):
    copy = _copy(maze, tmp_path)
    walls = np.load(copy / "test" / "obs.walls.npy")
    walls[2] = 1  # all wall: start and goal are no floor cells
    np.save(copy / "test" / "obs.walls.npy", walls)
    report = validate(copy)
    assert any("disagree with the oracle (first [2])" in v for v in report.violations)
    assert "overlap.test-train.bases" in report.checks  # the remaining checks still ran
