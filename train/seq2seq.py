"""Seq2seq examples: validation held out of a train split, the oracle's move field, and scoring predictions.

One scoring loop serves ``train.supervised`` (every epoch, on the validation or held-out examples) and
``train.evaluate data=DIR`` (a released checkpoint on any built data set of the same layout):

- :func:`validation_groups`: the groups of the last ``bases`` base puzzles of a split (every variant and
  augmented copy of them), held out of training as the validation set; :func:`first_examples` their originals.
- :func:`move_fields`: the registry's ``move_field`` of every example, (E, T, K) bool, the auxiliary target of
  ``seq2seq.field=true``; :func:`cost_fields` its ``cost_field`` (E, T), the target of ``seq2seq.cost=true``.
- :func:`score_examples`: per example ``exact``, ``token``, ``q_halt``, ``steps``, and with the env's
  ``label_metrics`` (city routing) the route metrics. A model with a move field (per-token actions) is decoded by
  the registry's ``follow_field`` (a route connected by construction): the plain keys then describe the decoded
  route and ``mask_*`` the token head's raw mask; without one the plain keys describe the raw mask.
- :func:`split_report`: every example of a split scored, the means with 95% Wilson intervals on the 0/1 shares,
  the optimal routes' own ``path_ratio``, the same per variant (city: per vehicle) and, for decoded routes that did
  not arrive, where they first left the optimal moves (``breaks``): ``train.evaluate data=DIR`` and ``train.release``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from hrm_envs.registry import ENVS, load
from train.datasets import Seq2SeqSplit
from train.stats import wilson_interval

#: The 0/1 shares of a record, reported with their 95% Wilson interval (``KEY_ci95``).
SHARES = ("exact", "arrived", "valid", "optimal", "mask_exact", "mask_arrived", "mask_valid", "mask_optimal")
#: A record's break of a decoded route that did not arrive (:func:`score_examples` with ``breaks=True``).
BREAK_KEYS = ("break_time", "break_share")
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def validation_groups(split: Seq2SeqSplit, name: str, bases: int) -> np.ndarray:
    """Bool (groups,): the groups of split ``name`` whose base puzzle is one of its last ``bases`` (``sources=True``)."""
    total = int(split.summary["splits"][name]["bases"])
    if isinstance(bases, bool) or not isinstance(bases, int) or not 0 <= bases < total:
        raise ValueError(f"seq2seq.validation_bases must be an int in [0, {total}) (the split has {total} base "
                         f"puzzles), got {bases!r}")
    first_puzzle = split.group_indices[:-1]
    return split.puzzle_base[first_puzzle] >= total - bases


def first_examples(split: Seq2SeqSplit, groups: np.ndarray) -> np.ndarray:
    """The example rows of the original (first) puzzle of each selected group: no augmented copies."""
    puzzles = split.group_indices[:-1][np.asarray(groups, bool)]
    return split.puzzle_indices[puzzles].astype(np.int64)


def move_fields(split: Seq2SeqSplit, env_id: str, rows: Sequence[int] | None = None) -> np.ndarray:
    """(E, T, K) bool: the registry's ``move_field`` of the selected examples (all by default; ``sources=True``)."""
    reference = ENVS[env_id].move_field
    if reference is None:
        raise ValueError(f"seq2seq.field=true needs an env with a move field (registry move_field); {env_id} has none")
    field = load(reference)
    rows = range(split.num_examples) if rows is None else rows
    return np.stack([field(split.obs(int(i))) for i in rows])


def cost_fields(split: Seq2SeqSplit, env_id: str) -> np.ndarray:
    """(E, T) float32: the registry's ``cost_field`` of every example (``sources=True``), the target of ``seq2seq.cost``."""
    reference = ENVS[env_id].cost_field
    if reference is None:
        raise ValueError(f"seq2seq.cost=true needs an env with a cost field (registry cost_field); {env_id} has none")
    field = load(reference)
    return np.stack([field(split.obs(int(i))) for i in range(split.num_examples)])


@torch.no_grad()
def score_examples(model: nn.Module, split: Seq2SeqSplit, rows: np.ndarray, env_id: str, device: torch.device | str,
                   batch_size: int = 64, route_metrics: bool = True, breaks: bool = False) -> list[dict[str, float]]:
    """One record per example of ``rows``: see the module docstring. ``route_metrics=False`` skips the env's
    label metrics (fast: sequence metrics only). ``split`` must be loaded with ``sources=True`` for them.
    ``breaks=True`` (a move-field model of an env with a registry ``field_break`` and route metrics): records
    also hold :data:`BREAK_KEYS`, where a decoded route that did not arrive first left the optimal moves (oracle
    time to the goal, and its share of the start's); NaN for routes that arrived."""
    spec = ENVS[env_id]
    metrics: Callable[..., dict[str, float]] | None = None
    if route_metrics and spec.label_metrics is not None:
        metrics = load(spec.label_metrics)
    follow = load(spec.follow_field) if spec.follow_field is not None else None
    broken = load(spec.field_break) if breaks and metrics is not None and spec.field_break is not None else None
    ignore = int(split.metadata["ignore_label_id"])
    was_training = model.training
    model.eval()
    records: list[dict[str, float]] = []
    for start in range(0, len(rows), batch_size):
        batch = np.asarray(rows[start : start + batch_size])
        tokens = torch.from_numpy(split.inputs[batch].astype(np.int64)).to(device)
        labels = split.labels[batch].astype(np.int64)
        out = model.predict({"tokens": tokens})
        raw = out["logits"].argmax(-1).cpu().numpy()
        field = out.get("policy_logits")
        field = None if field is None or follow is None else field.view(len(batch), tokens.shape[1], -1).float().cpu().numpy()
        for j, row in enumerate(batch.tolist()):
            valid = labels[j] != ignore
            obs = split.obs(row) if (metrics is not None or field is not None) else None
            decoded = follow(obs, field[j]) if field is not None else raw[j]
            record = {
                "exact": float(((decoded == labels[j]) | ~valid).all()),
                "token": float((decoded == labels[j])[valid].mean()) if valid.any() else 1.0,
                # the Q-head's call "this answer is right" against the token head's raw answer
                "q_halt": float(bool(out["q_halt"][j] >= 0) == bool(((raw[j] == labels[j]) | ~valid).all()))
                if "q_halt" in out else float("nan"),
                "steps": float(out["segments"][j]),
            }
            if metrics is not None:
                record.update(metrics(obs, decoded))
            if field is not None:
                record["mask_exact"] = float(((raw[j] == labels[j]) | ~valid).all())
                if metrics is not None:
                    record.update({f"mask_{k}": v for k, v in metrics(obs, raw[j]).items()})
                if broken is not None:
                    where = broken(obs, field[j]) if record["arrived"] == 0 else None
                    record["break_time"] = float("nan") if where is None else where["time_to_goal"]
                    record["break_share"] = float("nan") if where is None else where["share"]
            records.append(record)
    model.train(was_training)
    return records


def mean_records(records: Sequence[dict[str, float]]) -> dict[str, float]:
    """The mean of every key over the records (``q_halt`` of a model without a Q-head stays NaN)."""
    if not records:
        raise ValueError("records must hold at least one scored example")
    return {key: float(np.mean([r[key] for r in records])) for key in records[0]}


def figures(records: Sequence[dict[str, float]]) -> dict[str, Any]:
    """``examples``, the mean of every key but :data:`BREAK_KEYS`, and ``KEY_ci95`` (95% Wilson) of the
    :data:`SHARES` the records hold."""
    means = mean_records([{k: v for k, v in r.items() if k not in BREAK_KEYS} for r in records])
    out: dict[str, Any] = {"examples": len(records), **means}
    for key in SHARES:
        if key in means:
            out[f"{key}_ci95"] = list(wilson_interval(int(round(sum(r[key] for r in records))), len(records)))
    return out


def break_summary(records: Sequence[dict[str, float]]) -> dict[str, Any]:
    """Where the decoded routes that did not arrive first left the optimal moves: how many, and the quantiles and
    mean of the oracle time to the goal there and of its share of the start's (with a 10-bin histogram of the
    share: 1.0 = at the first move, 0 = at the goal)."""
    broken = [r for r in records if not np.isnan(r.get("break_time", float("nan")))]
    out: dict[str, Any] = {"routes": len(broken), "not_arrived": int(sum(r.get("arrived", 1.0) == 0 for r in records))}
    if not broken:
        return out
    for name, key in (("time_to_goal", "break_time"), ("share", "break_share")):
        values = np.array([r[key] for r in broken])
        out[name] = {"mean": float(values.mean()),
                     "quantiles": {f"{q:g}": float(np.quantile(values, q)) for q in QUANTILES}}
    counts, edges = np.histogram([r["break_share"] for r in broken], bins=10, range=(0.0, 1.0))
    out["share"]["histogram"] = {"edges": edges.tolist(), "counts": counts.tolist()}
    return out


def variant_names(env_id: str, variants: np.ndarray) -> list[str]:
    """The name of each variant id (the registry's ``variant_names``, else the id as text)."""
    reference = ENVS[env_id].variant_names
    names = () if reference is None else tuple(load(reference))
    return [names[v] if 0 <= v < len(names) else str(v) for v in np.asarray(variants).tolist()]


def reference_path_ratios(split: Seq2SeqSplit, rows: np.ndarray, env_id: str) -> np.ndarray | None:
    """The ``path_ratio`` of each example's own labels (city: the share of the city the optimal route covers, what
    a predicted route's ratio is measured against); None for envs whose label metrics have none."""
    reference = ENVS[env_id].label_metrics
    if reference is None:
        return None
    metrics = load(reference)
    ratios = [metrics(split.obs(int(i)), split.labels[i].astype(np.int64)).get("path_ratio") for i in rows]
    return None if not ratios or ratios[0] is None else np.array(ratios, dtype=np.float64)


def split_report(model: nn.Module, split: Seq2SeqSplit, env_id: str, device: torch.device | str,
                 batch_size: int = 64, rows: np.ndarray | None = None) -> dict[str, Any]:
    """Every example of ``split`` (``sources=True``; or those of ``rows``) scored: ``all`` (:func:`figures` plus
    the optimal routes' own ``reference_path_ratio`` where the env has route metrics), ``per_variant`` (the same
    per variant name, for sets built with variants) and ``breaks`` (:func:`break_summary`)."""
    rows = np.arange(split.num_examples) if rows is None else np.asarray(rows, dtype=np.int64)
    records = score_examples(model, split, rows, env_id, device, batch_size, breaks=True)
    reference = reference_path_ratios(split, rows, env_id)

    def summary(chosen: np.ndarray) -> dict[str, Any]:
        out = figures([records[i] for i in chosen])
        if reference is not None:
            out["reference_path_ratio"] = float(reference[chosen].mean())
        return out

    report: dict[str, Any] = {"all": summary(np.arange(len(rows))), "per_variant": {}, "breaks": break_summary(records)}
    if split.summary.get("variants"):
        puzzle_of = np.searchsorted(split.puzzle_indices, rows, side="right") - 1
        variant = split.puzzle_variant[puzzle_of]
        for number, name in zip(np.unique(variant), variant_names(env_id, np.unique(variant))):
            report["per_variant"][name] = summary(np.flatnonzero(variant == number))
    return report
