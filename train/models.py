"""The model registry of ``train.supervised`` / ``train.dagger``: model kinds, their configs and how to build them.

Models are sized from an env's :class:`hrm_envs.encoding.Encoder`; the policy head is size-independent, so a
model built on the env's ``max_*`` layout acts on any size with rotary positions.

- ``MODEL_KINDS``: ``hrm``, ``trm`` (HRM with ``variant="trm"``), ``mlp``, ``lstm``, ``transformer``, ``gnn``.
- ``model_config(model_cfg, encoder, task="policy") -> HRMConfig``: ``model_cfg`` is a mapping with ``name``
  (a kind), HRMConfig fields (null = the field's default) other than the ones the encoder fixes (``vocab_size``, ``seq_len``,
  ``per_token_actions``, ``global_actions``, ``token_vocab``) and, for mlp / lstm / gnn, ``depth``.
  ``task="tokens"`` builds a token head of ``encoder.seq2seq_vocab_size`` instead of the policy head.
- ``build_model(model_cfg, config) -> nn.Module``; ``is_act(model)`` tells HRM/TRM (ACT, carry) from baselines.
  The GNN reads a fixed token graph (``token_adjacency``): the 4-neighbour grid when the tokens are a square
  grid (maze, city, sudoku), else the complete graph (Hanoi's disks).
- ``check_fits(config, num_actions=..., vocab=..., seq_len=...)``: ``ValueError`` naming what does not fit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from agents.baselines import BaselineConfig, GNNBaseline, LSTMBaseline, MLPBaseline, TransformerBaseline
from agents.hrm import HRM, HRMConfig
from hrm_envs.encoding import Encoder, acting_tokens

MODEL_KINDS = ("hrm", "trm", "mlp", "lstm", "transformer", "gnn")
TASKS = ("policy", "tokens")
ENCODER_FIXED = ("vocab_size", "seq_len", "per_token_actions", "global_actions", "token_vocab", "acting_tokens")
DEPTH_KINDS = ("mlp", "lstm", "gnn")


def model_config(model_cfg: Mapping[str, Any], encoder: Encoder, task: str = "policy",
                 token_labels: int = 0, field_moves: int = 0) -> HRMConfig:
    """The HRMConfig of ``model_cfg`` on the encoder's vocabulary, length and action layout.

    ``token_labels > 0`` (policy task) adds a token head of that many classes for an oracle's per-token labels
    (:meth:`oracles.base.Oracle.token_labels`), trained beside the policy head. ``field_moves > 0`` (token task)
    adds that many per-token actions: a move field (the registry's ``move_field``) read beside the tokens."""
    kind = model_cfg.get("name")
    if kind not in MODEL_KINDS:
        raise ValueError(f"model.name must be one of {MODEL_KINDS}, got {kind!r}")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    fields = {k: v for k, v in model_cfg.items() if k not in ("name", "depth") and v is not None}  # null: default
    if "depth" in model_cfg and kind not in DEPTH_KINDS:
        raise ValueError(f"model.depth applies to {DEPTH_KINDS} only, not to model.name={kind!r}")
    fixed = sorted(set(ENCODER_FIXED) & set(fields))
    if fixed:
        raise ValueError(f"model config must not set {fixed}: the env's encoder fixes them")
    if "variant" in fields:
        raise ValueError("model.variant is set by model.name: 'hrm' or 'trm' (the recursive variant)")
    if kind == "trm":
        fields["variant"] = "trm"
    layout = {"vocab_size": int(encoder.vocab_size), "seq_len": int(encoder.seq_len)}
    if isinstance(token_labels, bool) or not isinstance(token_labels, int) or token_labels < 0:
        raise ValueError(f"token_labels must be a non-negative int, got {token_labels!r}")
    if token_labels and task != "policy":
        raise ValueError("token_labels (auxiliary per-token labels) apply to task='policy' only")
    if isinstance(field_moves, bool) or not isinstance(field_moves, int) or field_moves < 0:
        raise ValueError(f"field_moves must be a non-negative int, got {field_moves!r}")
    if field_moves and task != "tokens":
        raise ValueError("field_moves (a per-token move field) applies to task='tokens' only")
    if task == "policy":
        layout.update(per_token_actions=int(encoder.per_token_actions), global_actions=int(encoder.global_actions),
                      token_vocab=token_labels + (1 if token_labels and fields.get("front_rate") else 0),
                      acting_tokens=acting_tokens(encoder))  # front_rate: one more class, "not reached yet"
    else:
        vocab = getattr(encoder, "seq2seq_vocab_size", None)
        if vocab is None:
            raise ValueError(f"task='tokens' needs an encoder with seq2seq_vocab_size; {type(encoder).__name__} has none")
        layout.update(vocab_size=max(int(encoder.vocab_size), int(vocab)), token_vocab=int(vocab),
                      per_token_actions=field_moves)
    base = HRMConfig(**layout)  # validates the layout; the fields below are validated by with_()
    return base.with_(**fields)


def token_adjacency(length: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The GNN's token graph (1, T, T): 4-neighbour grid if ``T`` is a square > 1, else complete (no self loops)."""
    side = math.isqrt(length)
    if side > 1 and side * side == length:
        rows, cols = torch.arange(length, device=device) // side, torch.arange(length, device=device) % side
        distance = (rows[:, None] - rows[None]).abs() + (cols[:, None] - cols[None]).abs()
        return (distance == 1).float().unsqueeze(0)
    return (1.0 - torch.eye(length, device=device)).unsqueeze(0)


class TokenGNN(GNNBaseline):
    """:class:`GNNBaseline` on :func:`token_adjacency` (so batches need only ``tokens``)."""

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        length = batch["tokens"].shape[1]
        return super().features({**batch, "adjacency": token_adjacency(length, batch["tokens"].device)})


def build_model(model_cfg: Mapping[str, Any], config: HRMConfig) -> nn.Module:
    """The model of ``model_cfg["name"]`` with ``config``; a baseline reads the :class:`BaselineConfig` fields of
    it, ``model_cfg["depth"]`` (mlp / lstm / gnn) or, for the transformer, ``H_layers + L_layers`` blocks."""
    kind = model_cfg["name"]
    if kind in ("hrm", "trm"):
        return HRM(config)
    baselines = {"mlp": MLPBaseline, "lstm": LSTMBaseline, "transformer": TransformerBaseline, "gnn": TokenGNN}
    if kind not in baselines:
        raise ValueError(f"model.name must be one of {MODEL_KINDS}, got {kind!r}")
    depth = config.H_layers + config.L_layers if kind == "transformer" else model_cfg.get("depth")
    return baselines[kind](BaselineConfig.of(vars(config), None if depth is None else int(depth)))


def is_act(model: nn.Module) -> bool:
    """True for HRM / TRM (ACT segments with a carry), False for the one-shot baselines."""
    return isinstance(unwrap(model), HRM)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def check_fits(config: HRMConfig, num_actions: int | None = None, vocab: int | None = None, seq_len: int | None = None,
               where: str = "data set") -> None:
    """``ValueError`` if a data set's action count, largest token + 1 or length does not fit the model."""
    if seq_len is not None and seq_len != config.seq_len:
        raise ValueError(f"{where} has seq_len {seq_len}, the model was built for seq_len {config.seq_len}")
    if vocab is not None and vocab > config.vocab_size:
        raise ValueError(f"{where} has token ids up to {vocab - 1}, the model's vocab_size is {config.vocab_size}")
    if num_actions is not None and config.has_policy_head and num_actions != config.num_actions():
        raise ValueError(f"{where} has {num_actions} actions, the model's action layout has {config.num_actions()}")
