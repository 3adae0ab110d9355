"""Baselines on the HRM interface: token inputs -> token logits and/or policy logits (same action layout).

Every baseline builds features ``z`` of shape (B, 1 + T, hidden) — slot 0 a whole-input summary, then one
vector per token — and reuses :class:`agents.hrm.OutputHeads`, so the per-token / global action layout of
the ``Encoder`` protocol is identical to HRM's. They run once (no recurrence, no ACT); ``predict`` reports
one segment per example so evaluation code can treat them like HRM. Train them with
:func:`baseline_loss`. They are configured by a :class:`BaselineConfig` (``depth`` blocks / layers / rounds;
:meth:`BaselineConfig.of` reads one from a mapping of HRMConfig fields, e.g. a checkpoint's ``hrm_config``).

- :class:`MLPBaseline`: flattened token embeddings through ``depth`` SwiGLU blocks (default 2; fixed ``seq_len``).
- :class:`LSTMBaseline`: a bidirectional LSTM of ``depth`` layers (default 2) over the tokens (any length).
- :class:`TransformerBaseline`: HRM's embedding and ``depth`` blocks (default 4) run once (no recurrence); with
  ``depth = H_layers + L_layers`` the same size as that HRM.
- :class:`GNNBaseline`: ``depth`` rounds (default 4) of message passing over a graph given as ``adjacency``
  (B, T, T) / (T, T) or ``edge_index`` (2, E) in the batch; plain torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from agents.hrm import InputEmbedding, OutputHeads, check_embedding_and_heads, check_ints, task_loss
from agents.layers import BLOCKS, ReasoningModule, SwiGLU, linear, peer_attention_mask, rms_norm


@dataclass(frozen=True)
class BaselineConfig:
    """What the baselines read; every field is validated with a ``ValueError`` naming it.

    Sizes: ``vocab_size``, ``seq_len``, ``hidden_size``, ``expansion`` (MLP / GNN / transformer blocks),
    ``num_heads`` (transformer), ``depth`` (blocks / layers / rounds; None: each baseline's default).
    Transformer inputs as :class:`agents.hrm.InputEmbedding` (same meaning as in HRMConfig):
    ``num_puzzle_identifiers``, ``pos_encodings``, ``rope_theta``, ``attention_grid`` (the grid ``rope2d`` reads),
    ``block`` (``"conv"`` / ``"max"``: the transformer's blocks are HRM's grid blocks, a feed-forward net of
    ``depth`` blocks, HRM's grid model without recurrence), ``attention_peers`` (``b``: a Sudoku of ``b x b`` boxes,
    a cell attends to its peers as in HRMConfig; needs attention blocks).
    ``puzzle_emb_len`` must be 1 (slot 0 summarises the input). Readout as HRM's (:class:`agents.hrm.OutputHeads`):
    ``token_vocab``, ``per_token_actions``, ``global_actions``, ``global_readout``, ``acting_tokens``; ``loss``.
    """

    vocab_size: int
    seq_len: int
    hidden_size: int = 128
    expansion: float = 4.0
    num_heads: int = 4
    depth: int | None = None
    num_puzzle_identifiers: int = 0
    puzzle_emb_len: int = 1
    pos_encodings: str = "rope"
    rope_theta: float = 10000.0
    attention_grid: int = 0
    block: str = "attention"
    attention_peers: int = 0
    token_vocab: int = 0
    per_token_actions: int = 0
    global_actions: int = 0
    global_readout: str = "prefix"
    acting_tokens: tuple[int, ...] = ()
    loss: str = "stablemax"

    def __post_init__(self) -> None:
        check_ints(self, ("vocab_size", "seq_len", "hidden_size", "num_heads"), low=1)
        check_ints(self, ("num_puzzle_identifiers", "attention_grid", "attention_peers", "token_vocab",
                          "per_token_actions", "global_actions"), low=0)
        if self.depth is not None:
            check_ints(self, ("depth",), low=1)
        if self.puzzle_emb_len != 1:
            raise ValueError(f"puzzle_emb_len must be 1 for baselines, got {self.puzzle_emb_len}")
        if self.block not in BLOCKS or self.block in ("front", "wave"):
            raise ValueError(f"block must be one of {tuple(b for b in BLOCKS if b not in ('front', 'wave'))} (a front "
                             f"or a wave needs the recurrent model's gates), got {self.block!r}")
        if self.block != "attention" and not self.attention_grid:
            raise ValueError(f"block={self.block!r} needs attention_grid >= 1 (the width of the token grid it reads)")
        if self.attention_peers and (self.attention_peers < 2 or self.seq_len != self.attention_peers**4
                                     or self.block != "attention"):
            raise ValueError(f"attention_peers must be 0 (off) or a Sudoku's box side b >= 2 with seq_len = b**4 and "
                             f"attention blocks, got attention_peers={self.attention_peers}, seq_len={self.seq_len}, "
                             f"block={self.block!r}")
        check_embedding_and_heads(self)

    @classmethod
    def of(cls, values: Mapping[str, Any], depth: int | None = None) -> BaselineConfig:
        """The BaselineConfig of ``values`` (e.g. a checkpoint's ``hrm_config``: HRMConfig fields), reading only
        the keys it has; ``depth`` as given."""
        names = {f.name for f in fields(cls)} - {"depth"}
        return cls(**{k: v for k, v in values.items() if k in names}, depth=depth)


class Baseline(nn.Module):
    """Shared plumbing: features -> heads, ``predict`` with one segment; ``default_depth`` when ``config.depth``
    is None."""

    default_depth = 2

    def __init__(self, config: BaselineConfig):
        super().__init__()
        self.config = config
        self.depth = self.default_depth if config.depth is None else config.depth
        self.heads = OutputHeads(config)

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, 1 + T, hidden) features; slot 0 summarises the input."""
        raise NotImplementedError

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.heads(self.features(batch), batch["tokens"])

    @torch.no_grad()
    def predict(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = self(batch)
        out["segments"] = torch.ones(batch["tokens"].shape[0], dtype=torch.long, device=batch["tokens"].device)
        return out


def baseline_loss(
    outputs: dict[str, torch.Tensor], data: dict[str, torch.Tensor], config: BaselineConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mean task loss and accuracy / exact_accuracy (/ action_accuracy): the HRM task loss without the Q terms."""
    loss, is_correct, accuracy, action_correct = task_loss(outputs, data, config.loss)
    metrics = {"lm_loss": loss.mean().detach(), "accuracy": accuracy.mean().detach(),
               "exact_accuracy": is_correct.float().mean()}
    if "labels" in data and action_correct is not None:
        metrics["action_accuracy"] = action_correct.float().mean()
    return loss.mean(), metrics


class MLPBaseline(Baseline):
    """An MLP over the flattened sequence (``depth`` hidden SwiGLU blocks of width ``hidden``)."""

    def __init__(self, config: BaselineConfig):
        super().__init__(config)
        hidden, length = config.hidden_size, config.seq_len
        self.embed = nn.Embedding(config.vocab_size, hidden)
        self.inp = linear(length * hidden, hidden)
        self.blocks = nn.ModuleList(SwiGLU(hidden, config.expansion) for _ in range(self.depth))
        self.out = linear(hidden, (1 + length) * hidden)

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = batch["tokens"]
        if inputs.shape[1] != self.config.seq_len:
            raise ValueError(f"MLPBaseline needs inputs of seq_len={self.config.seq_len}, got {inputs.shape[1]}")
        h = self.inp(self.embed(inputs).flatten(1))
        for block in self.blocks:
            h = rms_norm(h + block(h))
        return self.out(h).view(inputs.shape[0], 1 + inputs.shape[1], -1)


class LSTMBaseline(Baseline):
    """A bidirectional LSTM of ``depth`` layers; slot 0 is the projection of both final states."""

    def __init__(self, config: BaselineConfig):
        super().__init__(config)
        hidden = config.hidden_size
        self.embed = nn.Embedding(config.vocab_size, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=self.depth, batch_first=True, bidirectional=True)
        self.token_proj = linear(2 * hidden, hidden)
        self.summary_proj = linear(2 * hidden, hidden)

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        seq, (h_n, _) = self.lstm(self.embed(batch["tokens"]))
        summary = self.summary_proj(torch.cat([h_n[-2], h_n[-1]], dim=-1))
        return torch.cat([summary.unsqueeze(1), self.token_proj(seq)], dim=1)


class TransformerBaseline(Baseline):
    """HRM's embedding and blocks without recurrence: ``depth`` post-norm blocks (or grid blocks) run once, attending
    to all tokens or to a Sudoku cell's peers (``attention_peers``)."""

    default_depth = 4

    def __init__(self, config: BaselineConfig):
        super().__init__(config)
        self.embed = InputEmbedding(config)
        self.blocks = ReasoningModule(self.depth, config.hidden_size, config.num_heads, config.expansion,
                                      block=config.block, prefix_len=1, width=config.attention_grid)

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x, rotary = self.embed(batch)
        peers = self.config.attention_peers
        mask = peer_attention_mask(x.shape[1], 1, peers, x.device) if peers else None
        return self.blocks(x, torch.zeros_like(x), rotary, mask)


def adjacency_matrix(batch: dict[str, torch.Tensor], num_nodes: int) -> torch.Tensor:
    """A dense float adjacency (B or 1, N, N) from ``adjacency`` or ``edge_index`` in the batch."""
    if "adjacency" in batch:
        adj = batch["adjacency"].float()
        return adj if adj.ndim == 3 else adj.unsqueeze(0)
    if "edge_index" in batch:
        edges = batch["edge_index"].long()
        if edges.ndim != 2 or edges.shape[0] != 2:
            raise ValueError(f"edge_index must have shape (2, E), got {tuple(edges.shape)}")
        adj = torch.zeros(1, num_nodes, num_nodes, device=edges.device)
        adj[0, edges[1], edges[0]] = 1.0  # message from source edges[0] to target edges[1]
        return adj
    raise ValueError("GNNBaseline needs 'adjacency' or 'edge_index' in the batch")


class GNNBaseline(Baseline):
    """``depth`` rounds of message passing: ``h = norm(h + MLP([h, mean of neighbours]))``; slot 0 is the mean over
    nodes."""

    default_depth = 4

    def __init__(self, config: BaselineConfig):
        super().__init__(config)
        hidden = config.hidden_size
        self.embed = nn.Embedding(config.vocab_size, hidden)
        self.combine = nn.ModuleList(linear(2 * hidden, hidden) for _ in range(self.depth))
        self.mlps = nn.ModuleList(SwiGLU(hidden, config.expansion) for _ in range(self.depth))

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.embed(batch["tokens"])
        adj = adjacency_matrix(batch, h.shape[1])
        adj = adj / adj.sum(-1, keepdim=True).clamp_min(1.0)
        for combine, mlp in zip(self.combine, self.mlps):
            h = rms_norm(h + mlp(F.silu(combine(torch.cat([h, adj @ h], dim=-1)))))
        return torch.cat([h.mean(1, keepdim=True), h], dim=1)
