"""train.seq2seq: validation bases held out of a train split, their original examples, move fields, and the one
scoring loop (decoded route and raw mask of a move-field model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hrm_envs.city.metrics import label_metrics, optimal_moves
from hrm_envs.encoding import encoder_for
from train.datasets import Seq2SeqSplit, build, parse_spec
from train.datasets.loading import observation_space
from train.learner import Learner
from train.seq2seq import first_examples, mean_records, move_fields, score_examples, validation_groups

CITY = "hrm/CityRouting-v0"
#: 3 train bases x 4 vehicles, each with 2 dihedral copies (36 examples in 12 groups); 2 test bases.
TINY = {"name": "city-tiny", "kind": "seq2seq", "env": CITY, "size_arg": "size", "env_kwargs": {"max_size": 8},
        "variants": True, "num_aug": 2,
        "splits": {"train": {"sizes": [6, 8], "puzzles": 3, "seed": 0}, "test": {"sizes": [8], "puzzles": 2, "seed": 10_000}}}


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("s2s") / "city"
    build(parse_spec(TINY), out, "test", progress=False)
    return out


@pytest.fixture(scope="module")
def train_split(city) -> Seq2SeqSplit:
    return Seq2SeqSplit(city, "train", sources=True)


def puzzles_of(split: Seq2SeqSplit, groups: np.ndarray) -> np.ndarray:
    """The puzzle indices of the selected groups."""
    return np.concatenate([np.arange(split.group_indices[g], split.group_indices[g + 1]) for g in np.flatnonzero(groups)])


@pytest.mark.parametrize("bases", [0, 1, 2])
def test_validation_groups_hold_out_every_copy_of_the_last_bases_and_nothing_else(train_split, bases):
    held = validation_groups(train_split, "train", bases)
    assert held.shape == (train_split.num_groups,) and held.dtype == bool
    last = set(range(3 - bases, 3))
    in_held = puzzles_of(train_split, held) if held.any() else np.array([], dtype=np.int64)
    others = puzzles_of(train_split, ~held)
    assert set(train_split.puzzle_base[in_held].tolist()) == last  # every variant and augmented copy of them ...
    assert not set(train_split.puzzle_base[others].tolist()) & last  # ... and no other puzzle
    assert len(in_held) == 12 * bases  # 4 vehicles x (original + 2 copies) per base


@pytest.mark.parametrize("bases", [3, -1, True, 1.5])
def test_bad_validation_bases_are_refused_by_key(train_split, bases):
    with pytest.raises(ValueError, match=r"seq2seq.validation_bases must be an int in \[0, 3\)"):
        validation_groups(train_split, "train", bases)


def test_first_examples_are_the_untransformed_originals(train_split):
    held = validation_groups(train_split, "train", 2)
    rows = first_examples(train_split, held)
    assert len(rows) == 8  # one per group: 2 bases x 4 vehicles
    puzzles = np.searchsorted(train_split.puzzle_indices, rows, side="right") - 1
    assert (train_split.puzzle_transform[puzzles] == 0).all()  # the dihedral identity
    assert sorted(zip(train_split.puzzle_base[puzzles].tolist(), train_split.puzzle_variant[puzzles].tolist())) == [
        (b, v) for b in (1, 2) for v in range(4)]


def test_move_fields_are_the_oracle_moves_of_each_example(train_split):
    fields = move_fields(train_split, CITY, [0, 5])
    assert fields.shape == (2, 64, 4) and fields.dtype == bool
    assert np.array_equal(fields[1], optimal_moves(train_split.obs(5)))
    with pytest.raises(ValueError, match="seq2seq.field=true needs an env with a move field"):
        move_fields(train_split, "hrm/Maze-v0", [0])


class FieldStub(nn.Module):
    """A model that answers every batch with the given per-row token logits and move field scores."""

    def __init__(self, logits: torch.Tensor, field: torch.Tensor | None):
        super().__init__()
        self.logits, self.field = logits, field

    def predict(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        rows = len(batch["tokens"])
        out = {"logits": self.logits[:rows], "segments": torch.ones(rows)}
        if self.field is not None:
            out["policy_logits"] = self.field[:rows].flatten(1)
        return out


def test_score_examples_of_a_field_model_decodes_the_route_and_keeps_the_mask_apart(city):
    """An empty mask (the first trap) beside the oracle's move field: the decoded route arrives optimally, the raw
    mask is scored under mask_* (no path)."""
    split = Seq2SeqSplit(city, "test", sources=True)
    rows = np.arange(split.num_examples)
    empty = torch.zeros(len(rows), 64, 3)
    empty[..., 1] = 1.0  # "off route" everywhere
    field = torch.from_numpy(move_fields(split, CITY)).float()
    records = score_examples(FieldStub(empty, field), split, rows, CITY, "cpu")
    assert len(records) == len(rows)
    for record in records:
        assert record["arrived"] == record["valid"] == record["efficiency"] == 1.0 and record["no_path"] == 0.0
        assert record["mask_no_path"] == 1.0 and record["mask_arrived"] == 0.0 and record["mask_exact"] == 0.0
        assert np.isnan(record["q_halt"]) and record["steps"] == 1.0
    means = mean_records(records)
    assert means["arrived"] == 1.0 and means["mask_no_path"] == 1.0
    # without a field head the plain keys describe the raw mask, and there are no mask_* keys
    plain = score_examples(FieldStub(empty, None), split, rows, CITY, "cpu")
    assert not [k for k in plain[0] if k.startswith("mask_")] and plain[0]["no_path"] == 1.0
    assert plain[0] == {"exact": 0.0, "token": plain[0]["token"], "q_halt": plain[0]["q_halt"], "steps": 1.0,
                        **label_metrics(split.obs(0), np.ones(64, dtype=np.int64))}


def test_score_examples_of_a_learner_with_a_move_field(city):
    """A real (untrained) TRM with field_moves=4: every decoded route is valid by construction; mask_* are the
    label metrics of the token head's argmax."""
    split = Seq2SeqSplit(city, "test", sources=True)
    encoder = encoder_for(split.summary["env"], observation_space(split.summary))
    torch.manual_seed(0)
    learner = Learner({"name": "trm", "hidden_size": 16, "num_heads": 2, "L_layers": 1}, {"lr": 1e-3}, encoder,
                      task="tokens", field_moves=4)
    rows = np.array([0, 3, 5])
    records = score_examples(learner.module, split, rows, CITY, "cpu", batch_size=2)
    out = learner.module.eval().predict({"tokens": torch.from_numpy(split.inputs[rows].astype(np.int64))})
    raw = out["logits"].argmax(-1).numpy()
    for j, (row, record) in enumerate(zip(rows, records)):
        assert record["valid"] == 1.0
        assert {k: record[f"mask_{k}"] for k in label_metrics(split.obs(row), raw[j])} == label_metrics(split.obs(row), raw[j])
    fast = score_examples(learner.module, split, rows, CITY, "cpu", route_metrics=False)
    assert set(fast[0]) == {"exact", "token", "q_halt", "steps", "mask_exact"}


def test_split_report_of_the_oracle_field_and_of_a_contrary_one(city):
    """The oracle's move field (an empty mask beside it) arrives everywhere and never breaks; the field that prefers
    the least optimal moves misses, and every miss has a break. Figures per vehicle, with Wilson intervals."""
    from hrm_envs.city import VEHICLES
    from train.seq2seq import split_report

    split = Seq2SeqSplit(city, "test", sources=True)
    empty = torch.zeros(split.num_examples, 64, 3)
    oracle = torch.from_numpy(move_fields(split, CITY)).float()
    report = split_report(FieldStub(empty, oracle), split, CITY, "cpu")
    every = report["all"]
    assert every["examples"] == 8 and every["arrived"] == every["efficiency"] == 1.0 and every["mask_no_path"] == 1.0
    assert every["arrived_ci95"][1] == 1.0 and every["arrived_ci95"][0] < 1.0 and every["mask_arrived_ci95"][0] == 0.0
    assert 0 < every["reference_path_ratio"] < 1 and report["breaks"] == {"routes": 0, "not_arrived": 0}
    assert set(report["per_variant"]) == set(VEHICLES) and report["per_variant"]["truck"]["examples"] == 2
    contrary = split_report(FieldStub(empty, -oracle), split, CITY, "cpu", rows=np.arange(4))
    breaks = contrary["breaks"]
    assert contrary["all"]["examples"] == 4 and breaks["not_arrived"] == breaks["routes"] == round(4 * (1 - contrary["all"]["arrived"]))
    assert breaks["routes"] and 0 < breaks["share"]["quantiles"]["0.1"] <= breaks["share"]["quantiles"]["0.9"] <= 1
    assert sum(breaks["share"]["histogram"]["counts"]) == breaks["routes"] and breaks["time_to_goal"]["mean"] > 0
