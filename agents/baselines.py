"""Baselines on the HRM interface: token inputs -> token logits and/or policy logits (same action layout).

Every baseline builds features ``z`` of shape (B, 1 + T, hidden) — slot 0 a whole-input summary, then one
vector per token — and reuses :class:`agents.hrm.OutputHeads`, so the per-token / global action layout of
the ``Encoder`` protocol is identical to HRM's. They run once (no recurrence, no ACT); ``predict`` reports
one segment per example so evaluation code can treat them like HRM. Train them with
:func:`baseline_loss`. The config's ``puzzle_emb_len`` must be 1 (one summary slot).

- :class:`MLPBaseline`: flattened token embeddings through an MLP (fixed ``seq_len``).
- :class:`LSTMBaseline`: a bidirectional LSTM over the tokens (any length).
- :class:`TransformerBaseline`: HRM's blocks, ``H_layers + L_layers`` of them run once (same size, no recurrence).
- :class:`GNNBaseline`: message passing over a graph given as ``adjacency`` (B, T, T) / (T, T) or
  ``edge_index`` (2, E) in the batch; plain torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from agents.hrm import HRMConfig, InputEmbedding, OutputHeads, task_loss
from agents.layers import ReasoningModule, SwiGLU, linear, rms_norm


class Baseline(nn.Module):
    """Shared plumbing: features -> heads, ``predict`` with one segment."""

    def __init__(self, config: HRMConfig):
        super().__init__()
        if config.puzzle_emb_len != 1:
            raise ValueError(f"puzzle_emb_len must be 1 for baselines, got {config.puzzle_emb_len}")
        self.config = config
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
    outputs: dict[str, torch.Tensor], data: dict[str, torch.Tensor], config: HRMConfig
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

    def __init__(self, config: HRMConfig, depth: int = 2):
        super().__init__(config)
        hidden, length = config.hidden_size, config.seq_len
        self.embed = nn.Embedding(config.vocab_size, hidden)
        self.inp = linear(length * hidden, hidden)
        self.blocks = nn.ModuleList(SwiGLU(hidden, config.expansion) for _ in range(depth))
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
    """A bidirectional LSTM; slot 0 is the projection of both final states."""

    def __init__(self, config: HRMConfig, num_layers: int = 2):
        super().__init__(config)
        hidden = config.hidden_size
        self.embed = nn.Embedding(config.vocab_size, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=num_layers, batch_first=True, bidirectional=True)
        self.token_proj = linear(2 * hidden, hidden)
        self.summary_proj = linear(2 * hidden, hidden)

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        seq, (h_n, _) = self.lstm(self.embed(batch["tokens"]))
        summary = self.summary_proj(torch.cat([h_n[-2], h_n[-1]], dim=-1))
        return torch.cat([summary.unsqueeze(1), self.token_proj(seq)], dim=1)


class TransformerBaseline(Baseline):
    """HRM's embedding and blocks without recurrence: ``H_layers + L_layers`` post-norm blocks run once."""

    def __init__(self, config: HRMConfig):
        super().__init__(config)
        self.embed = InputEmbedding(config)
        self.blocks = ReasoningModule(config.H_layers + config.L_layers, config.hidden_size, config.num_heads,
                                      config.expansion)

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x, rotary = self.embed(batch)
        return self.blocks(x, torch.zeros_like(x), rotary)


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
    """Message passing: ``h = norm(h + MLP([h, mean of neighbours]))``; slot 0 is the mean over nodes."""

    def __init__(self, config: HRMConfig, num_layers: int = 4):
        super().__init__(config)
        hidden = config.hidden_size
        self.embed = nn.Embedding(config.vocab_size, hidden)
        self.combine = nn.ModuleList(linear(2 * hidden, hidden) for _ in range(num_layers))
        self.mlps = nn.ModuleList(SwiGLU(hidden, config.expansion) for _ in range(num_layers))

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.embed(batch["tokens"])
        adj = adjacency_matrix(batch, h.shape[1])
        adj = adj / adj.sum(-1, keepdim=True).clamp_min(1.0)
        for combine, mlp in zip(self.combine, self.mlps):
            h = rms_norm(h + mlp(F.silu(combine(torch.cat([h, adj @ h], dim=-1)))))
        return torch.cat([h.mean(1, keepdim=True), h], dim=1)
