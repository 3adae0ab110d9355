"""Baselines: the HRM action layout and learning the toy tasks."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from agents.baselines import (
    BaselineConfig, GNNBaseline, LSTMBaseline, MLPBaseline, TransformerBaseline, adjacency_matrix, baseline_loss,
)
from agents.hrm import HRM, HRMConfig

HRM_CONFIG = HRMConfig(vocab_size=10, seq_len=6, hidden_size=64, num_heads=4, H_layers=1, L_layers=1, token_vocab=10,
                       per_token_actions=1, global_actions=1, loss="softmax")
CONFIG = BaselineConfig(vocab_size=10, seq_len=6, hidden_size=64, num_heads=4, token_vocab=10, per_token_actions=1,
                        global_actions=1, loss="softmax")
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
    ref = HRM(HRM_CONFIG)(HRM(HRM_CONFIG).initial_carry(batched), batched)[1]
    assert out["logits"].shape == ref["logits"].shape == (3, 6, 10)
    assert out["policy_logits"].shape == ref["policy_logits"].shape == (3, HRM_CONFIG.num_actions())
    assert torch.all(cls(CONFIG).predict(batch)["segments"] == 1)


def test_transformer_is_the_same_size_as_hrm() -> None:
    hrm, transformer = HRM(HRM_CONFIG), TransformerBaseline(replace(CONFIG, depth=2))  # H_layers + L_layers blocks
    extra = sum(p.numel() for p in hrm.q_head.parameters())
    assert sum(p.numel() for p in hrm.parameters()) - extra == sum(p.numel() for p in transformer.parameters())


def test_adjacency_forms_agree_and_validate() -> None:
    dense = torch.zeros(6, 6)
    dense[CHAIN[1], CHAIN[0]] = 1
    assert torch.equal(adjacency_matrix({"edge_index": CHAIN}, 6), dense[None])
    assert torch.equal(adjacency_matrix({"adjacency": dense}, 6), dense[None])
    with pytest.raises(ValueError, match="edge_index"):
        adjacency_matrix({}, 6)


@pytest.mark.parametrize("field, value", [("hidden_size", 0), ("depth", 0), ("depth", 1.5), ("puzzle_emb_len", 2),
                                          ("loss", "mse"), ("pos_encodings", "alibi"), ("global_actions", -1),
                                          ("acting_tokens", (10,)), ("token_vocab", 0)])
def test_config_validation_names_field(field: str, value) -> None:
    changes = {field: value, **({"per_token_actions": 0, "global_actions": 0} if field == "token_vocab" else {})}
    with pytest.raises(ValueError, match="head" if field == "token_vocab" else field):
        BaselineConfig(**{**vars(CONFIG), **changes})


def test_config_of_reads_its_fields_of_a_stored_hrm_config() -> None:
    """A checkpoint stores ``hrm_config`` as a dict of HRMConfig fields: the baseline takes the ones it has."""
    stored = vars(HRM_CONFIG.with_(H_cycles=3, halt_max_steps=5, rope_theta=500.0)).copy()
    config = BaselineConfig.of(stored, depth=3)
    assert config == BaselineConfig(**{**vars(CONFIG), "rope_theta": 500.0, "depth": 3})
    assert BaselineConfig.of(stored).depth is None and MLPBaseline(BaselineConfig.of(stored)).depth == 2
    with pytest.raises(ValueError, match="puzzle_emb_len must be 1 for baselines"):
        BaselineConfig.of({**stored, "puzzle_emb_len": 2})


@pytest.mark.parametrize("cls, blocks", [(MLPBaseline, "blocks"), (GNNBaseline, "mlps"),
                                         (TransformerBaseline, "blocks.layers")])
def test_depth_sets_the_blocks(cls, blocks: str) -> None:
    model = cls(replace(CONFIG, depth=3))
    assert len(model.get_submodule(blocks)) == 3 == model.depth
    assert LSTMBaseline(replace(CONFIG, depth=3)).lstm.num_layers == 3


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.slow
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


def test_transformer_with_conv_blocks_is_a_feed_forward_conv_net() -> None:
    """block='conv': the transformer baseline stacks HRM's grid conv blocks. One block is local (a token 6 cells
    away does not change a corner cell's logits); from the second block on every cell also reads slot 0, which
    summarises the grid, so the far token does. block='conv' needs a grid."""
    torch.manual_seed(0)
    side = 7
    tokens = torch.randint(1, 10, (1, side * side))
    moved = tokens.clone()
    moved[0, -1] = (tokens[0, -1] % 9) + 1  # the far corner: 6 rows and 6 columns away
    for depth, reaches in ((1, False), (2, True)):
        model = TransformerBaseline(BaselineConfig(vocab_size=10, seq_len=side * side, hidden_size=16, depth=depth,
                                                   attention_grid=side, block="conv", token_vocab=3))
        a, b = model.predict({"tokens": tokens})["logits"][0, 0], model.predict({"tokens": moved})["logits"][0, 0]
        assert (not torch.allclose(a, b)) == reaches
    with pytest.raises(ValueError, match="needs attention_grid"):
        BaselineConfig(vocab_size=10, seq_len=49, block="conv", token_vocab=3)
    with pytest.raises(ValueError, match="block must be one of"):
        BaselineConfig(vocab_size=10, seq_len=49, attention_grid=7, block="gru", token_vocab=3)
    for block in ("front", "wave"):
        with pytest.raises(ValueError, match="a front or a wave needs the recurrent model's gates"):
            BaselineConfig(vocab_size=10, seq_len=49, attention_grid=7, block=block, token_vocab=3)


def test_transformer_with_peer_attention_reads_a_cells_peers_only() -> None:
    """attention_peers=2 (a 4x4 Sudoku): one block lets cell (0, 0) read its row, column and box, not cell (2, 3);
    a second block reaches every cell. Bad values are refused by name."""
    torch.manual_seed(0)
    tokens = torch.randint(1, 5, (1, 16))

    def logits(model: TransformerBaseline, cell: int) -> torch.Tensor:
        changed = tokens.clone()
        changed[0, cell] = tokens[0, cell] % 4 + 1
        return model.predict({"tokens": changed})["logits"][0, 0]

    for depth, far in ((1, False), (2, True)):
        model = TransformerBaseline(BaselineConfig(vocab_size=6, seq_len=16, hidden_size=16, depth=depth,
                                                   attention_peers=2, token_vocab=5))
        base = model.predict({"tokens": tokens})["logits"][0, 0]
        assert not torch.allclose(logits(model, 3), base)  # (0, 3): same row
        assert not torch.allclose(logits(model, 5), base)  # (1, 1): same box
        assert (not torch.allclose(logits(model, 11), base)) == far  # (2, 3): no unit in common
    bad_values = ({"attention_peers": 1}, {"attention_peers": 3},
                  {"attention_peers": 2, "block": "conv", "attention_grid": 4})
    for bad in bad_values:
        with pytest.raises(ValueError, match="attention_peers must be 0"):
            BaselineConfig(vocab_size=6, seq_len=16, token_vocab=5, **bad)
