"""Validation of a built data set: ``summary.json`` of the suite's format, no train/test overlap, every label
re-checked against the oracle, counts as in ``summary.json``, tokens inside the vocabulary. Every problem,
a malformed file included, is a violation of the report, never an exception. ``python -m train.datasets validate DIR``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hrm_envs import ENVS, encoder_for
from hrm_envs.city.metrics import labels_to_mask, route_metrics
from hrm_envs.maze.encoding import PATH
from hrm_envs.maze.env import parse_observation
from hrm_envs.maze.generator import bfs_distances
from hrm_envs.registry import load, seq2seq_ids
from oracles import oracle_for
from train.datasets.augment import Augmentation, augmentation_for
from train.datasets.draw import puzzle_hash
from train.datasets.loading import Seq2SeqSplit, StepwiseSplit
from train.datasets.seq2seq import metadata
from train.datasets.spec import KINDS
from train.datasets.storage import content_hash, load_json


@dataclass
class Report:
    checks: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.violations.append(message)

    def text(self) -> str:
        lines = [f"{name}: {value}" for name, value in self.checks.items()]
        lines += [f"VIOLATION: {v}" for v in self.violations[:50]]
        if len(self.violations) > 50:
            lines.append(f"... and {len(self.violations) - 50} more violations")
        lines.append("OK" if not self.violations else f"FAILED with {len(self.violations)} violations")
        return "\n".join(lines)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# summary.json's format: key -> (check, what the check wants); per kind, the keys of a split and of a size.
_INT = (_is_int, "an integer")
_COUNT = (lambda v: _is_int(v) and v >= 0, "an integer >= 0")
_TEXT = (lambda v: isinstance(v, str), "a string")
_OBJECT = (lambda v: isinstance(v, dict), "an object")
_TEXTS = (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings")
_RANGE = (lambda v: isinstance(v, list) and len(v) == 2 and all(map(_is_int, v)) and v[0] <= v[1], "[first, last] integers")
SUMMARY_FORMAT = {
    "name": _TEXT,
    "kind": (lambda v: v in KINDS, f"one of {list(KINDS)}"),
    "env": (lambda v: v in ENVS, f"one of {sorted(ENVS)}"),
    "env_kwargs": _OBJECT,
    "size_arg": _TEXT,
    "obs_env_kwargs": _OBJECT,
    "num_aug": _COUNT,
    "variants": (lambda v: isinstance(v, bool), "true or false"),
    "splits": (lambda v: isinstance(v, dict) and len(v) > 0, "a non-empty object"),
    "build_command": _TEXT,
    "versions": _OBJECT,
}
_SPLIT_COMMON = {"bases": _COUNT, "puzzles": _COUNT, "per_size": _OBJECT, "seed": _INT, "seed_range": _RANGE, "sizes": _TEXTS}
SPLIT_FORMAT = {
    "stepwise": {**_SPLIT_COMMON, "requested_puzzles": _COUNT, "samples": _COUNT, "static_keys": _TEXTS, "num_actions": _COUNT},
    "seq2seq": {
        **_SPLIT_COMMON, "requested_bases": _COUNT, "groups": _COUNT, "examples": _COUNT, "num_aug": _COUNT, "augmentation": _TEXT,
        "constant_answer_token_accuracy": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    },
}  # fmt: skip
SIZE_FORMAT = {"stepwise": {"puzzles": _COUNT, "samples": _COUNT}, "seq2seq": {"bases": _COUNT, "groups": _COUNT, "examples": _COUNT}}


def _format_problems(data: Any, expected: dict[str, tuple], where: str) -> list[str]:
    """Missing, unknown and mistyped keys of ``data`` against ``expected``."""
    if not isinstance(data, dict):
        return [f"{where} must be an object, got {data!r:.60}"]
    problems = [f"{where} lacks the key {key!r}" for key in expected if key not in data]
    problems += [f"{where} has the unknown key {key!r}; allowed: {sorted(expected)}" for key in data if key not in expected]
    for key, (ok, wanted) in expected.items():
        if key in data and not ok(data[key]):
            problems.append(f"{where}.{key} must be {wanted}, got {data[key]!r:.60}")
    return problems


def summary_problems(summary: Any) -> list[str]:
    """What makes ``summary`` (a loaded summary.json) other than this suite's format (keys, types, each split's
    sizes named in its ``per_size``); empty if it is one. The counts are checked against the data files later."""
    problems = _format_problems(summary, SUMMARY_FORMAT, "summary")
    if problems:
        return problems
    kind = summary["kind"]
    for split_name, split in summary["splits"].items():
        where = f"splits.{split_name}"
        split_problems = _format_problems(split, SPLIT_FORMAT[kind], where)
        problems += split_problems
        if split_problems:
            continue
        sizes, per_size = split["sizes"], split["per_size"]
        if len(set(sizes)) != len(sizes) or set(sizes) != set(per_size):
            problems.append(f"{where}.sizes {sizes} and the keys of {where}.per_size {sorted(per_size)} must name the same sizes")
        for label, entry in per_size.items():
            problems += _format_problems(entry, SIZE_FORMAT[kind], f"{where}.per_size.{label}")
    return problems


def _broken_transitions(data: Any, oracle: Any) -> np.ndarray:
    """Samples whose action does not lead to the next sample of their trajectory (or, the last, to success)."""
    successors, done, invalid = [], np.zeros(data.num_samples, dtype=bool), np.zeros(data.num_samples, dtype=bool)
    for i in range(data.num_samples):
        try:
            obs, done[i] = oracle.successor(data.obs(i), int(data.action[i]))
        except ValueError:  # not an observation of the env at all
            obs, invalid[i] = data.obs(i), True
        successors.append(obs)
    last = np.zeros(data.num_samples, dtype=bool)
    last[data.offsets[1:] - 1] = True
    following = data.obs_batch(np.minimum(np.arange(data.num_samples) + 1, data.num_samples - 1))
    same = np.ones(data.num_samples, dtype=bool)
    for key, expected in following.items():
        same &= (np.stack([obs[key] for obs in successors]) == expected).reshape(data.num_samples, -1).all(axis=1)
    return np.flatnonzero(invalid | (done != last) | (~last & ~same))


def _validate_stepwise(folder: Path, summary: dict, report: Report) -> None:
    oracle = oracle_for(summary["env"])
    hashes: dict[str, set[str]] = {}
    for split_name, split_summary in summary["splits"].items():
        try:
            data = StepwiseSplit(folder, split_name)
        except ValueError as error:
            report.fail(str(error))
            continue
        report.checks[f"{split_name}.samples"] = data.num_samples
        report.checks[f"{split_name}.puzzles"] = data.num_puzzles
        if data.num_samples != split_summary["samples"] or data.num_puzzles != split_summary["puzzles"]:
            report.fail(f"{split_name}: counts differ from summary.json")
        per_size = np.bincount(data.puzzle_size, weights=np.diff(data.offsets), minlength=len(split_summary["sizes"]))
        for index, label in enumerate(split_summary["sizes"]):
            if int(per_size[index]) != split_summary["per_size"][label]["samples"]:
                report.fail(f"{split_name}: sample count of size {label} differs from summary.json")
        split_hashes = [puzzle_hash(data.obs(int(start))) for start in data.offsets[:-1]]
        if len(set(split_hashes)) != len(split_hashes):
            report.fail(f"{split_name}: duplicate puzzles")
        hashes[split_name] = set(split_hashes)
        encoder = encoder_for(summary["env"], data.observation_space)
        tokens = encoder.tokens(data.obs_batch(np.arange(data.num_samples)))
        if tokens.min() < 0 or tokens.max() >= encoder.vocab_size:
            report.fail(f"{split_name}: token values outside [0, {encoder.vocab_size})")
        bad_labels = 0
        for chunk in np.array_split(np.arange(data.num_samples), max(1, data.num_samples // 20_000)):
            labels = oracle.label_batch(data.obs_batch(chunk))
            optimal = np.unpackbits(data.optimal_bits[chunk], axis=1, count=data.num_actions).astype(bool)
            wrong = (
                (labels.optimal != optimal).any(axis=1)
                | (labels.action != data.action[chunk])
                | ~np.isclose(labels.cost_to_go, data.cost_to_go[chunk])
                | (data.step[chunk] != chunk - data.offsets[data.puzzle[chunk]])
            )
            for i in chunk[wrong][: max(0, 5 - bad_labels)]:
                report.fail(f"{split_name}: sample {i} (puzzle {data.puzzle[i]}, step {data.step[i]}) disagrees with the oracle")
            bad_labels += int(wrong.sum())
        broken = _broken_transitions(data, oracle)
        for i in broken[:5]:
            report.fail(f"{split_name}: the action of sample {i} does not lead to the next sample (or to success)")
        bad_transitions = len(np.unique(data.puzzle[broken]))
        report.checks[f"{split_name}.labels_rechecked"] = data.num_samples - bad_labels
        report.checks[f"{split_name}.trajectories_replayed"] = data.num_puzzles - bad_transitions
    check_overlap(hashes, report)
    check_seed_ranges(summary, report)


def check_overlap(hashes: dict[str, set[str]], report: Report, what: str = "puzzles") -> None:
    """Fail on any hash shared by two splits."""
    names = sorted(hashes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = len(hashes[a] & hashes[b])
            report.checks[f"overlap.{a}-{b}" + ("" if what == "puzzles" else f".{what}")] = shared
            if shared:
                report.fail(f"{shared} {what} appear in both {a} and {b}")


def check_seed_ranges(summary: dict, report: Report) -> None:
    """Fail unless the splits' base-scenario seed ranges are disjoint."""
    ranges = sorted((tuple(s["seed_range"]), name) for name, s in summary["splits"].items() if "seed_range" in s)
    for ((_, hi), a), ((lo, _), b) in zip(ranges, ranges[1:]):
        if lo <= hi:
            report.fail(f"the seed ranges of {a} and {b} overlap; space the splits' seeds further apart than a split's draws")
    report.checks["seed_ranges"] = {name: list(r) for r, name in ranges}


def maze_route_ok(obs: dict[str, np.ndarray], labels: np.ndarray, cost: float) -> bool:
    """The 'o' cells lie on floor and, with S and G, hold a start-goal path of exactly the optimal length."""
    floor, start, goal = parse_observation(obs)
    h, w = floor.shape
    path = labels.reshape(obs["walls"].shape)[:h, :w] == PATH
    route = path.copy()
    route[start] = route[goal] = True
    return not (path & ~floor).any() and path.sum() == cost - 1 and bfs_distances(route, goal)[start] == cost


def city_route_ok(obs: dict[str, np.ndarray], labels: np.ndarray, cost: float) -> bool:
    """The marked cells are usable by the vehicle and hold a legal route of optimal travel time (``metrics``)."""
    mask = labels_to_mask(labels, obs["street"].shape[0])
    metrics = route_metrics(obs, mask, reference=np.argwhere(mask).tolist())  # the F1 reference is not checked
    return metrics["arrived"] == metrics["valid"] == metrics["efficiency"] == 1.0


def sudoku_solution_ok(obs: dict[str, np.ndarray], labels: np.ndarray, cost: float) -> bool:
    """The labels are a complete valid grid (every row, column and box a permutation) keeping the givens."""
    grid = np.asarray(obs["grid"])
    n = grid.shape[0]
    box = int(round(n**0.5))
    digits = labels.reshape(n, n) - 1
    units = np.concatenate([digits, digits.T, digits.reshape(box, box, box, box).swapaxes(1, 2).reshape(n, n)])
    givens = np.asarray(obs["givens"]) == 1
    return bool((np.sort(units, axis=1) == np.arange(1, n + 1)).all() and (digits[givens] == grid[givens]).all())


def validate_seq2seq(folder: Path, summary: dict[str, Any], report: Report) -> None:
    """Check every split of a seq2seq set (:func:`validate`); violations go to ``report``."""
    env_id = summary["env"]
    spec = ENVS.get(env_id)
    if spec is None or not spec.seq2seq:
        report.fail(f"summary.json: env {env_id!r} has no seq2seq sets; seq2seq envs: {seq2seq_ids()}")
        return
    oracle = oracle_for(env_id)
    solution_ok = load(spec.solution_check)
    example_hashes: dict[str, set[str]] = {}
    base_keys: dict[str, set[str]] = {}
    for split_name, info in summary["splits"].items():
        try:
            data = Seq2SeqSplit(folder, split_name, sources=True)
        except ValueError as error:
            report.fail(str(error))
            continue
        where = f"{split_name}"
        meta = data.metadata
        report.checks[f"{where}.examples"] = data.num_examples
        report.checks[f"{where}.groups"] = data.num_groups
        encoder = encoder_for(env_id, data.observation_space)
        augmentation = augmentation_for(env_id, data.observation_space)
        key = augmentation.canonical_key
        expected = metadata(encoder.seq2seq_vocab_size, encoder.seq_len, info["groups"], info["puzzles"], info["examples"])
        for name, value in expected.items():
            if meta[name] != value:
                report.fail(f"{where}/dataset.json: {name} is {meta[name]!r}, expected {value!r}")
        if info["puzzles"] != info["examples"] or len(data.base_seed) != info["bases"]:
            report.fail(f"{where}: counts differ from summary.json")
        per_size = np.bincount(data.puzzle_size, minlength=len(info["sizes"]))
        for index, label in enumerate(info["sizes"]):
            if int(per_size[index]) != info["per_size"][label]["examples"]:
                report.fail(f"{where}: example count of size {label} differs from summary.json")
        for name, array in (("inputs", data.inputs), ("labels", data.labels)):
            outside = array[(array < 0) | (array >= meta["vocab_size"])]
            if outside.size:
                report.fail(f"{where}: {name} hold token {int(outside[0])} outside the vocabulary [0, {meta['vocab_size']})")
        if data.puzzle_identifiers.min() < 0 or data.puzzle_identifiers.max() >= meta["num_puzzle_identifiers"]:
            report.fail(f"{where}: puzzle identifiers outside [0, {meta['num_puzzle_identifiers']})")
        if not np.array_equal(encoder.tokens(data.observations), data.inputs):
            bad = np.flatnonzero((encoder.tokens(data.observations) != data.inputs).any(axis=1))
            report.fail(f"{where}: inputs of {len(bad)} examples (first {bad[:5].tolist()}) differ from the encoded observations")
        wrong, unsolved = [], []
        for i in range(data.num_examples):
            obs, given = data.obs(i), data.labels[i].astype(np.int64)
            try:
                right = np.array_equal(encoder.seq2seq(obs, oracle)[1], given)
                solved = solution_ok(obs, given, oracle.cost_to_go(obs))
            except ValueError:  # the stored observation is not a puzzle of the env
                right = solved = False
            if not right:
                wrong.append(i)
            if not solved:
                unsolved.append(i)
        for name, bad in (("labels disagree with the oracle", wrong), ("labels are not a valid optimal solution", unsolved)):
            if bad:
                report.fail(f"{where}: {len(bad)} examples' {name} (first {bad[:5]})")
        report.checks[f"{where}.labels_rechecked"] = data.num_examples - len(wrong)
        report.checks[f"{where}.solutions_valid_and_optimal"] = data.num_examples - len(unsolved)
        _check_groups(data, augmentation, where, report)
        hashes = [content_hash(row) for row in data.inputs]
        if len(set(hashes)) != len(hashes):
            report.fail(f"{where}: {len(hashes) - len(set(hashes))} duplicate examples")
        example_hashes[split_name] = set(hashes)
        keys = [key(data.obs(i)) for i in range(data.num_examples)]
        base_keys[split_name] = set(keys)
        originals = {keys[int(data.puzzle_indices[first])] for first in data.group_indices[:-1]}
        report.checks[f"{where}.bases"] = len(originals)
        if len(originals) != info["bases"]:
            report.fail(f"{where}: {len(originals)} distinct base scenarios, summary.json says {info['bases']}")
    check_overlap(example_hashes, report, "examples")
    check_overlap(base_keys, report, "bases")
    check_seed_ranges(summary, report)


def _check_groups(data: Any, augmentation: Augmentation, where: str, report: Report) -> None:
    """Each group: one base and variant; its first puzzle the original, the others its transforms."""
    bad = []
    for group in range(data.num_groups):
        first, stop = int(data.group_indices[group]), int(data.group_indices[group + 1])
        original = data.obs(int(data.puzzle_indices[first]))
        same = len(set(data.puzzle_base[first:stop].tolist())) == 1 and len(set(data.puzzle_variant[first:stop].tolist())) == 1
        same = same and np.array_equal(data.puzzle_transform[first], augmentation.identity(original))
        for puzzle in range(first + 1, stop):
            shown = data.obs(int(data.puzzle_indices[puzzle]))
            try:
                made = augmentation.apply(original, data.puzzle_transform[puzzle])
            except ValueError:  # not a transform of this augmentation
                made = {}
            same = same and all(k in made and np.array_equal(made[k], shown[k]) for k in shown)
        if not same:
            bad.append(group)
    if bad:
        report.fail(f"{where}: {len(bad)} groups are not an original and its augmentations (first {bad[:5]})")
    report.checks[f"{where}.groups_checked"] = data.num_groups - len(bad)


def validate(folder: str | Path) -> Report:
    """Check a data set folder; the report lists what was checked and every violation."""
    folder = Path(folder)
    report = Report()
    try:
        summary = load_json(folder / "summary.json")
        problems = summary_problems(summary)
        for problem in problems:
            report.fail(f"{folder / 'summary.json'}: {problem}")
        if problems:  # the checks below read the data files through the summary
            return report
        if summary["kind"] == "stepwise":
            _validate_stepwise(folder, summary, report)
        else:
            validate_seq2seq(folder, summary, report)
    except ValueError as error:
        report.fail(str(error))
    return report
