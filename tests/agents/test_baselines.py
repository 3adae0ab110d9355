"""Baselines: the HRM action layout and learning the toy tasks."""

from __future__ import annotations

import pytest
import torch

from agents.baselines import (
    GNNBaseline, LSTMBaseline, MLPBaseline, TransformerBaseline, adjacency_matrix, baseline_loss,
)
from agents.hrm import HRM, HRMConfig

CONFIG = HRMConfig(vocab_size=10, seq_len=6, hidden_size=64, num_heads=4, H_layers=1, L_layers=1, token_vocab=10,
                   per_token_actions=1, global_actions=1, loss="softmax")
CHAIN = torch.stack([torch.arange(5), torch.arange(1, 6)])  # edges i -> i + 1 of a path over 6 nodes


def toy_batch(n: int, length: int = 6) -> dict[str, torch.Tensor]:
    """Token task: copy; policy task: point at a largest token."""
    x = torch.randint(1, 10, (n, length))
    optimal = torch.cat([x == x.max(1, keepdim=True).values, torch.zeros(n, 1, dtype=torch.bool)], dim=1)
    edges = torch.cat([CHAIN, CHAIN.flip(0)], dim=1)
    return {"tokens": x, "labels": x.clone(), "optimal": optimal, "edge_index": edges}


MODELS = [MLPBaseline, LSTMBaseline, TransformerBaseline, GNNBaseline]


@pytest.mark.parametrize("cls", MODELS)
def test_layout_matches_hrm(cls) -> None:
    torch.manual_seed(0)
    batch = toy_batch(3)
    out = cls(CONFIG)(batch)
    batched = {k: v for k, v in batch.items() if k != "edge_index"}  # HRM carries per-example tensors only
    ref = HRM(CONFIG)(HRM(CONFIG).initial_carry(batched), batched)[1]
    assert out["logits"].shape == ref["logits"].shape == (3, 6, 10)
    assert out["policy_logits"].shape == ref["policy_logits"].shape == (3, CONFIG.num_actions())
    assert torch.all(cls(CONFIG).predict(batch)["segments"] == 1)


def test_transformer_is_the_same_size_as_hrm() -> None:
    hrm, transformer = HRM(CONFIG), TransformerBaseline(CONFIG)
    extra = sum(p.numel() for p in hrm.q_head.parameters())
    assert sum(p.numel() for p in hrm.parameters()) - extra == sum(p.numel() for p in transformer.parameters())


def test_adjacency_forms_agree_and_validate() -> None:
    dense = torch.zeros(6, 6)
    dense[CHAIN[1], CHAIN[0]] = 1
    assert torch.equal(adjacency_matrix({"edge_index": CHAIN}, 6), dense[None])
    assert torch.equal(adjacency_matrix({"adjacency": dense}, 6), dense[None])
    with pytest.raises(ValueError, match="edge_index"):
        adjacency_matrix({}, 6)
    with pytest.raises(ValueError, match="puzzle_emb_len"):
        MLPBaseline(CONFIG.with_(puzzle_emb_len=2))


@pytest.mark.parametrize("cls", MODELS)
def test_baseline_learns_toy_tasks(cls) -> None:
    torch.manual_seed(0)
    model = cls(CONFIG)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    for _ in range(200):
        batch = toy_batch(64)
        loss, _ = baseline_loss(model(batch), batch, CONFIG)
        opt.zero_grad()
        loss.backward()
        opt.step()
    batch = toy_batch(256)
    _, metrics = baseline_loss(model.eval().predict(batch), batch, CONFIG)
    assert metrics["exact_accuracy"] > 0.85, metrics
