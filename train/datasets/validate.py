"""Validation of a built data set: no train/test overlap, every label re-checked against the oracle,
counts as in ``summary.json``, tokens inside the vocabulary. ``python -m train.datasets validate DIR``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hrm_envs import encoder_for
from oracles import oracle_for
from train.datasets.draw import puzzle_hash
from train.datasets.storage import load_json


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
    from train.datasets.loading import StepwiseSplit

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


def validate(folder: str | Path) -> Report:
    """Check a data set folder; the report lists what was checked and every violation."""
    folder = Path(folder)
    report = Report()
    try:
        summary = load_json(folder / "summary.json")
        if summary.get("kind") == "stepwise":
            _validate_stepwise(folder, summary, report)
        elif summary.get("kind") == "seq2seq":
            from train.datasets.seq2seq import validate_seq2seq

            validate_seq2seq(folder, summary, report)
        else:
            report.fail(f"{folder / 'summary.json'}: unknown kind {summary.get('kind')!r}")
    except ValueError as error:
        report.fail(str(error))
    return report
