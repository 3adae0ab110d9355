"""Seq2seq examples: validation held out of a train split, the oracle's move field, and scoring predictions.

One scoring loop serves ``train.supervised`` (every epoch, on the validation or held-out examples) and
``train.evaluate data=DIR`` (a released checkpoint on any built data set of the same layout):

- :func:`validation_groups`: the groups of the last ``bases`` base puzzles of a split (every variant and
  augmented copy of them), held out of training as the validation set; :func:`first_examples` their originals.
- :func:`move_fields`: the registry's ``move_field`` of every example, (E, T, K) bool, the auxiliary target of
  ``seq2seq.field=true``.
- :func:`score_examples`: per example ``exact``, ``token``, ``q_halt``, ``steps``, and with the env's
  ``label_metrics`` (city routing) the route metrics. A model with a move field (per-token actions) is decoded by
  the registry's ``follow_field`` (a route connected by construction): the plain keys then describe the decoded
  route and ``mask_*`` the token head's raw mask; without one the plain keys describe the raw mask.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import numpy as np
import torch
from torch import nn

from hrm_envs.registry import ENVS, load
from train.datasets import Seq2SeqSplit


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


@torch.no_grad()
def score_examples(model: nn.Module, split: Seq2SeqSplit, rows: np.ndarray, env_id: str, device: torch.device | str,
                   batch_size: int = 64, route_metrics: bool = True) -> list[dict[str, float]]:
    """One record per example of ``rows``: see the module docstring. ``route_metrics=False`` skips the env's
    label metrics (fast: sequence metrics only). ``split`` must be loaded with ``sources=True`` for them."""
    spec = ENVS[env_id]
    metrics: Callable[..., dict[str, float]] | None = None
    if route_metrics and spec.label_metrics is not None:
        metrics = load(spec.label_metrics)
    follow = load(spec.follow_field) if spec.follow_field is not None else None
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
            records.append(record)
    model.train(was_training)
    return records


def mean_records(records: Sequence[dict[str, float]]) -> dict[str, float]:
    """The mean of every key over the records (``q_halt`` of a model without a Q-head stays NaN)."""
    if not records:
        raise ValueError("records must hold at least one scored example")
    return {key: float(np.mean([r[key] for r in records])) for key in records[0]}
