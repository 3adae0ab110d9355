"""HRM/TRM: config validation, shapes, one-step gradient, carry, ACT, losses, learning toy tasks."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.autograd.graph import saved_tensors_hooks

import hrm_envs  # noqa: F401  (registers the ids)
from agents.hrm import HRM, HRMConfig, IGNORE_LABEL, act_loss, log_probs, set_loss, task_loss, token_loss
from agents.layers import FrontBlock, FrontGates, WaveBlock, WaveGates, local_attention_mask, peer_attention_mask
from hrm_envs.encoding import encoder_for
from oracles import oracle_for

SMALL = HRMConfig(vocab_size=10, seq_len=8, hidden_size=32, num_heads=2, H_layers=1, L_layers=1,
                  halt_max_steps=4, token_vocab=10, per_token_actions=3, global_actions=1)


def reverse_batch(n: int, length: int = 8) -> dict[str, torch.Tensor]:
    x = torch.randint(1, 10, (n, length))
    return {"tokens": x, "labels": x.flip(1)}


def max_batch(n: int, length: int) -> dict[str, torch.Tensor]:
    """Policy toy task: pick a position holding the largest token (ties: a set of optimal actions)."""
    x = torch.randint(1, 10, (n, length))
    optimal = torch.cat([x == x.max(1, keepdim=True).values, torch.zeros(n, 1, dtype=torch.bool)], dim=1)
    legal = torch.ones_like(optimal)
    return {"tokens": x, "optimal": optimal, "action_mask": legal}


def train(model: HRM, make_batch, steps: int, lr: float = 3e-3) -> dict[str, torch.Tensor]:
    """Deep-supervision training loop: one segment per optimizer step, carry kept across steps."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    batch = make_batch()
    carry = model.initial_carry(batch)
    for _ in range(steps):
        carry, out = model(carry, batch)
        loss, metrics = act_loss(out, carry.data, model.config)
        opt.zero_grad()
        loss.backward()
        opt.step()
        batch = make_batch()
    return metrics


@pytest.mark.parametrize(
    "field, value",
    [("hidden_size", 0), ("num_heads", 3), ("pos_encodings", "alibi"), ("variant", "x"), ("loss", "mse"),
     ("halt_exploration_prob", 1.5), ("token_vocab", -1), ("global_actions", 2), ("H_cycles", 1.5),
     ("inference_halting", "never"), ("attention_window", -1), ("attention_direction", "up"),
     ("attention_grid", -1)],
)
def test_config_validation_names_field(field: str, value) -> None:
    changes = {field: value}
    if field == "global_actions":
        changes["puzzle_emb_len"] = 0
    name = "puzzle_emb_len" if field == "global_actions" else ("num_heads" if field == "num_heads" else field)
    with pytest.raises(ValueError, match=name):
        SMALL.with_(**changes)
    with pytest.raises(ValueError, match="head"):
        HRMConfig(vocab_size=4, seq_len=4)


def test_param_count_reference_sudoku() -> None:
    config = HRMConfig(vocab_size=11, seq_len=81, hidden_size=512, num_heads=8, expansion=4, H_layers=4, L_layers=4,
                       H_cycles=2, L_cycles=2, halt_max_steps=16, num_puzzle_identifiers=1, puzzle_emb_len=1,
                       token_vocab=11)
    with torch.device("meta"):
        model = HRM(config)
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - 27_275_266) / 27_275_266 < 0.01, count


def test_shapes_and_predict() -> None:
    torch.manual_seed(0)
    model = HRM(SMALL)
    batch = reverse_batch(5)
    carry, out = model(model.initial_carry(batch), batch)
    assert out["logits"].shape == (5, 8, 10)
    assert out["policy_logits"].shape == (5, SMALL.num_actions())
    assert out["q_halt"].shape == out["q_continue"].shape == out["halted"].shape == out["steps"].shape == (5,)
    assert carry.z_H.shape == carry.z_L.shape == (5, 1 + 8, 32)
    pred = model.eval().predict(batch)
    assert pred["logits"].shape == (5, 8, 10) and pred["segments"].shape == (5,)
    with_grad = model.predict(batch, grad=True)  # re-runs each halting segment with gradient
    assert with_grad["policy_logits"].grad_fn is not None and pred["policy_logits"].grad_fn is None
    assert torch.allclose(with_grad["policy_logits"], pred["policy_logits"], atol=1e-5)
    assert torch.equal(with_grad["segments"], pred["segments"])


def saved_bytes(model: HRM, batch: dict[str, torch.Tensor]) -> int:
    """Bytes of tensors the autograd graph saves for one training segment."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    carry = model.initial_carry(batch)
    with saved_tensors_hooks(pack, lambda t: t):
        carry, out = model(carry, batch)
        act_loss(out, carry.data, model.config)[0].backward()
    return total


def test_one_step_gradient_graph_is_independent_of_cycles() -> None:
    torch.manual_seed(0)
    batch = reverse_batch(4)
    sizes = {}
    for cycles in (1, 4):
        config = SMALL.with_(H_cycles=cycles, L_cycles=cycles, halt_exploration_prob=0.0)
        model = HRM(config).train()
        sizes[cycles] = saved_bytes(model, batch)
        assert all(p.grad is not None for p in model.L_level.parameters())
        assert all(p.grad is not None for p in model.H_level.parameters())
        full = saved_bytes(HRM(config.with_(full_backprop=True)).train(), batch)
        assert full > sizes[cycles] * (1.5 if cycles == 4 else 0.99)
    assert sizes[4] == sizes[1]


def test_trm_backprops_the_whole_last_recursion() -> None:
    torch.manual_seed(0)
    batch = reverse_batch(4)
    base = SMALL.with_(variant="trm", H_cycles=3, halt_exploration_prob=0.0)
    small, large = (saved_bytes(HRM(base.with_(L_cycles=c)).train(), batch) for c in (1, 3))
    assert large > 1.5 * small  # the last recursion's L updates all carry gradient
    assert saved_bytes(HRM(base.with_(L_cycles=3, H_cycles=1)).train(), batch) == large  # earlier recursions do not


def reference_segment(model: HRM, z_H: torch.Tensor, z_L: torch.Tensor, x: torch.Tensor,
                      rotary) -> tuple[torch.Tensor, torch.Tensor]:
    """One segment written out per variant as the papers describe it (full attention, no mask)."""
    config, L, H = model.config, model.L_level, model.H_level
    if config.full_backprop:  # every update with gradient
        for _ in range(config.H_cycles):
            for _ in range(config.L_cycles):
                z_L = L(z_L, z_H + x, rotary, None)
            z_H = H(z_H, z_L, rotary, None)
        return z_H, z_L
    if config.variant == "trm":  # H_cycles - 1 recursions without gradient, the last one with
        with torch.no_grad():
            for _ in range(config.H_cycles - 1):
                for _ in range(config.L_cycles):
                    z_L = L(z_L, z_H + x, rotary, None)
                z_H = H(z_H, z_L, rotary, None)
        for _ in range(config.L_cycles):
            z_L = L(z_L, z_H + x, rotary, None)
        return H(z_H, z_L, rotary, None), z_L
    with torch.no_grad():  # HRM: all but the last L and the last H update without gradient
        for h in range(config.H_cycles):
            for l in range(config.L_cycles):
                if (h, l) != (config.H_cycles - 1, config.L_cycles - 1):
                    z_L = L(z_L, z_H + x, rotary, None)
            if h != config.H_cycles - 1:
                z_H = H(z_H, z_L, rotary, None)
    z_L = L(z_L, z_H + x, rotary, None)
    return H(z_H, z_L, rotary, None), z_L


@pytest.mark.parametrize("kind", ["hrm", "trm", "full_backprop"])
def test_segment_matches_the_reference_bit_for_bit(kind: str) -> None:
    """``_segment`` (a no-grad phase, then the trailing updates with gradient) gives the same states and the same
    parameter gradients, bit for bit, as the variant written out (also with a carry that has a graph)."""
    config = SMALL.with_(H_cycles=3, L_cycles=2, variant="trm" if kind == "trm" else "hrm",
                         full_backprop=kind == "full_backprop")
    batch = reverse_batch(3)
    results = []
    for segment in ("model", "reference"):
        torch.manual_seed(0)
        model = HRM(config).train()
        carry = model.initial_carry(batch)
        x, rotary = model.embed(batch)
        z_H, z_L = carry.z_H + 0.1 * x, carry.z_L  # an entry state that depends on the parameters
        run = model._segment if segment == "model" else lambda *a: reference_segment(model, *a)
        z_H, z_L = run(z_H, z_L, x, rotary)
        (z_H.square().mean() + z_L.sin().mean()).backward()
        grads = {n: p.grad for n, p in model.named_parameters()}
        results.append((z_H.detach(), z_L.detach(), grads))
    (model_H, model_L, model_grads), (ref_H, ref_L, ref_grads) = results
    assert torch.equal(model_H, ref_H) and torch.equal(model_L, ref_L)
    assert model_grads.keys() == ref_grads.keys()
    for name, grad in model_grads.items():
        assert (grad is None) == (ref_grads[name] is None), name
        assert grad is None or torch.equal(grad, ref_grads[name]), name


def test_carry_is_detached_and_halted_rows_are_replaced() -> None:
    torch.manual_seed(0)
    model = HRM(SMALL.with_(halt_exploration_prob=0.0)).train()
    first, second = reverse_batch(6), reverse_batch(6)
    carry, _ = model(model.initial_carry(first), first)
    assert carry.z_H.grad_fn is None and carry.z_L.grad_fn is None
    assert not carry.halted.any()  # q_halt == q_continue at init: no halting before halt_max_steps
    carry.halted = torch.tensor([True, False, True, False, False, False])
    carry2, out = model(carry, second)
    rows = carry.halted
    assert torch.equal(carry2.data["tokens"][rows], second["tokens"][rows])
    assert torch.equal(carry2.data["tokens"][~rows], first["tokens"][~rows])
    assert torch.equal(out["steps"], torch.where(rows, 1, 2))


def test_q_head_init_and_halting() -> None:
    torch.manual_seed(0)
    model = HRM(SMALL.with_(halt_exploration_prob=0.0))
    assert torch.all(model.q_head.weight == 0) and torch.all(model.q_head.bias == -5)
    batch = reverse_batch(8)
    assert torch.all(model.eval().predict(batch)["segments"] == SMALL.halt_max_steps)
    with torch.no_grad():
        model.q_head.bias.copy_(torch.tensor([5.0, -5.0]))  # Q-head says halt
    assert torch.all(model.predict(batch)["segments"] == 1)
    model.train()
    _, out = model(model.initial_carry(batch), batch)
    assert out["halted"].all() and "target_q_continue" in out
    assert torch.all((out["target_q_continue"] >= 0) & (out["target_q_continue"] <= 1))
    explore = HRM(SMALL.with_(halt_exploration_prob=1.0)).train()
    with torch.no_grad():
        explore.q_head.bias.copy_(torch.tensor([5.0, -5.0]))
    carry, out = explore(explore.initial_carry(batch), batch)
    assert not out["halted"].any()  # exploration forces at least 2 segments
    halted_once = torch.zeros(8, dtype=torch.bool)
    for _ in range(SMALL.halt_max_steps - 1):
        carry, out = explore(carry, batch)
        assert torch.all(out["steps"] <= SMALL.halt_max_steps)
        halted_once |= out["halted"]
    assert halted_once.all()  # every sequence halts by halt_max_steps
    trm = HRM(SMALL.with_(variant="trm")).train()
    with torch.no_grad():
        trm.q_head.bias.copy_(torch.tensor([0.5, 9.0]))  # TRM halts on q_halt > 0 alone
    _, out = trm(trm.initial_carry(batch), batch)
    assert out["halted"].all() and "target_q_continue" not in out


def test_inference_halting_max_steps_runs_every_segment() -> None:
    """``inference_halting="max_steps"`` (the reference's evaluation) ignores the Q-head in ``predict``: every
    sequence uses the last segment's outputs, which equal a plain run of ``halt_max_steps`` segments."""
    torch.manual_seed(0)
    model = HRM(SMALL.with_(inference_halting="max_steps")).eval()
    with torch.no_grad():
        model.q_head.bias.copy_(torch.tensor([5.0, -5.0]))  # the Q-head says halt at once
    batch = reverse_batch(8)
    out = model.predict(batch)
    assert torch.all(out["segments"] == SMALL.halt_max_steps)
    with torch.no_grad():
        carry = model.initial_carry(batch)
        x, rotary = model.embed(batch)
        z_H, z_L = carry.z_H, carry.z_L
        for _ in range(SMALL.halt_max_steps):
            z_H, z_L = model._segment(z_H, z_L, x, rotary)
        expected = model._read(z_H, batch["tokens"])["policy_logits"]
    assert torch.allclose(out["policy_logits"], expected, atol=1e-5)
    grad = model.predict(batch, grad=True)
    assert torch.allclose(grad["policy_logits"], expected, atol=1e-5) and grad["policy_logits"].requires_grad
    q_model = HRM(SMALL).eval()
    q_model.load_state_dict(model.state_dict())
    assert torch.all(q_model.predict(batch)["segments"] == 1)  # the default still halts on the Q-head


@pytest.mark.parametrize("variant", ["hrm", "trm"])
def test_attention_window_reach_grows_by_window_per_block_application(variant: str) -> None:
    """With ``attention_window=w`` a change of the last token reaches exactly the tokens within ``w`` per block
    application (HRM 1 x 1 cycles: 2 per segment; TRM here: 2 L updates + 1 H update of 1 block = 3), so the
    segments are the depth; the prefix slot (STOP, Q-head) sees the change at once."""
    torch.manual_seed(0)
    length, window = 12, 1
    config = SMALL.with_(seq_len=length, variant=variant, H_cycles=1, L_cycles=1 if variant == "hrm" else 2,
                         attention_window=window, inference_halting="max_steps")
    per_segment = 2 if variant == "hrm" else 3
    tokens = torch.randint(1, 9, (1, length))
    changed = tokens.clone()
    changed[0, -1] += 1
    for segments in (1, 2, 3):
        model = HRM(config.with_(halt_max_steps=segments)).eval()
        with torch.no_grad():
            a, b = model.predict({"tokens": tokens}), model.predict({"tokens": changed})
        moved = (a["policy_logits"] - b["policy_logits"])[0, :-1].view(length, 3).abs().sum(1) > 0
        reach = segments * per_segment * window
        assert moved.tolist() == [i >= length - 1 - reach for i in range(length)]
        assert not torch.allclose(a["policy_logits"][0, -1], b["policy_logits"][0, -1])  # STOP reads slot 0


def test_grid_attention_reach_is_a_manhattan_ball() -> None:
    """With ``attention_grid`` the tokens form a row-major grid: a change of the corner cell reaches exactly the
    cells within Manhattan distance (block applications x window), never the next row's first cell early."""
    torch.manual_seed(0)
    side = 5
    config = SMALL.with_(seq_len=side * side, H_cycles=1, L_cycles=1, attention_window=1, attention_grid=side,
                         inference_halting="max_steps")
    tokens = torch.randint(1, 9, (1, side * side))
    changed = tokens.clone()
    changed[0, 0] += 1
    rows, cols = torch.arange(side * side) // side, torch.arange(side * side) % side
    for segments in (1, 2):
        model = HRM(config.with_(halt_max_steps=segments)).eval()
        with torch.no_grad():
            a, b = model.predict({"tokens": tokens}), model.predict({"tokens": changed})
        moved = (a["policy_logits"] - b["policy_logits"])[0, :-1].view(side * side, 3).abs().sum(1) > 0
        assert torch.equal(moved, rows + cols <= 2 * segments)


def test_acting_token_readout_reads_the_marked_cell() -> None:
    """``global_readout="acting_token"``: the global action logits are the global head on the first marked token's
    state (with grid attention they then depend on that cell's neighbourhood only); slot 0 where nothing is marked."""
    torch.manual_seed(0)
    side, mark = 5, 9
    config = SMALL.with_(seq_len=side * side, H_cycles=1, L_cycles=1, attention_window=1, attention_grid=side,
                         halt_max_steps=1, global_readout="acting_token", acting_tokens=(mark,))
    model = HRM(config).eval()
    tokens = torch.randint(1, 9, (2, side * side))
    tokens[0, 6] = mark  # cell (1, 1); row 1 has no mark
    with torch.no_grad():
        out = model.predict({"tokens": tokens})
        carry = model.initial_carry({"tokens": tokens})
        z_H, _ = model._segment(carry.z_H, carry.z_L, *model.embed({"tokens": tokens}))
    head = model.heads.global_head
    assert torch.allclose(out["policy_logits"][0, -1:], head(z_H[0, 1 + 6]), atol=1e-5)
    assert torch.allclose(out["policy_logits"][1, -1:], head(z_H[1, 0]), atol=1e-5)
    far, near = tokens.clone(), tokens.clone()
    far[0, 24] = far[0, 24] % 8 + 1  # cell (4, 4): 6 moves from the mark, beyond 2 block applications
    near[0, 7] = near[0, 7] % 8 + 1  # cell (1, 2), next to it
    with torch.no_grad():
        assert torch.equal(model.predict({"tokens": far})["policy_logits"][0, -1], out["policy_logits"][0, -1])
        assert not torch.equal(model.predict({"tokens": near})["policy_logits"][0, -1], out["policy_logits"][0, -1])


@pytest.mark.parametrize("pos_encodings", ["rope2d", "rope"])
def test_rope2d_grid_model_reads_the_same_neighbourhood_on_a_wider_grid(pos_encodings: str) -> None:
    """With 2-D rotary positions a cell's logits depend on its neighbourhood, not on the grid's width: a 5-wide
    grid and the same cells in the corner of an 8-wide one give the marked cell the same global logit (2 block
    applications of reach, the extra cells 4 moves away); with 1-D positions the cell below is 5 or 8 tokens on."""
    torch.manual_seed(0)
    narrow, wide, mark = 5, 8, 9
    config = SMALL.with_(seq_len=narrow * narrow, H_cycles=1, L_cycles=1, attention_window=1, attention_grid=narrow,
                         halt_max_steps=1, global_readout="acting_token", acting_tokens=(mark,),
                         pos_encodings=pos_encodings)
    model = HRM(config).eval()
    cells = torch.randint(1, 9, (narrow, narrow))
    cells[1, 1] = mark
    padded = torch.full((wide, wide), 1)
    padded[:narrow, :narrow] = cells
    widened = HRM(config.with_(seq_len=wide * wide, attention_grid=wide)).eval()
    widened.load_state_dict(model.state_dict())
    with torch.no_grad():
        a = model.predict({"tokens": cells.view(1, -1)})["policy_logits"][0, -1]
        b = widened.predict({"tokens": padded.view(1, -1)})["policy_logits"][0, -1]
    assert torch.allclose(a, b, atol=1e-5) == (pos_encodings == "rope2d")


def test_attention_grid_validation() -> None:
    with pytest.raises(ValueError, match="attention_window"):
        SMALL.with_(attention_grid=4)
    with pytest.raises(ValueError, match="divide seq_len"):
        SMALL.with_(attention_window=1, attention_grid=3)
    with pytest.raises(ValueError, match="attention_direction"):
        SMALL.with_(attention_window=1, attention_grid=4, attention_direction="later")
    with pytest.raises(ValueError, match="global_readout"):
        SMALL.with_(global_readout="agent")
    with pytest.raises(ValueError, match="acting_tokens"):
        SMALL.with_(global_readout="acting_token")
    with pytest.raises(ValueError, match="acting_tokens"):
        SMALL.with_(acting_tokens=(10,))
    with pytest.raises(ValueError, match="rope2d"):
        SMALL.with_(pos_encodings="rope2d")
    with pytest.raises(ValueError, match="rope2d"):
        SMALL.with_(hidden_size=12, num_heads=2, attention_window=1, attention_grid=4, pos_encodings="rope2d")


def test_attention_peers_one_block_reads_a_cells_peers_only() -> None:
    """``attention_peers=3`` (9x9): the model's blocks get the peer mask, and after ONE block application a cell's
    state changes with a peer's token (same row) but not with a non-peer's, which full attention would read."""
    torch.manual_seed(0)
    config = SMALL.with_(seq_len=81, attention_peers=3, H_cycles=1, L_cycles=1, halt_max_steps=1)
    model = HRM(config).eval()
    masks = []
    hook = model.L_level.register_forward_pre_hook(lambda module, args: masks.append(args[3]))
    tokens = torch.randint(1, 9, (1, 81))
    with torch.no_grad():
        model.predict({"tokens": tokens})
    hook.remove()
    assert len(masks) == 1 and torch.equal(masks[0], peer_attention_mask(82, 1, 3, torch.device("cpu")))
    cell, peer, other = 40, 36, 0  # (4, 4); (4, 0) shares its row; (0, 0) shares no row, column or box

    def one_block(changed: int | None, mask: torch.Tensor | None) -> torch.Tensor:
        t = tokens.clone()
        if changed is not None:
            t[0, changed] = t[0, changed] % 8 + 1
        with torch.no_grad():
            x, rotary = model.embed({"tokens": t})
            return model.L_level(model.L_init.expand_as(x), x, rotary, mask)[0, 1 + cell]

    base = one_block(None, masks[0])
    assert torch.equal(one_block(other, masks[0]), base)
    assert not torch.allclose(one_block(peer, masks[0]), base)
    assert not torch.allclose(one_block(other, None), one_block(None, None))


@pytest.mark.parametrize("changes, message", [
    ({"attention_peers": -1}, "attention_peers must be a non-negative int"),
    ({"attention_peers": 1, "seq_len": 1}, "attention_peers must be 0 .off. or a Sudoku's box side >= 2"),
    ({"attention_peers": 3}, r"attention_peers=3 needs seq_len = \(3\*3\)\*\*2 = 81"),
    ({"attention_peers": 2, "seq_len": 16, "attention_window": 1}, "attention_peers excludes attention_window"),
    ({"attention_peers": 2, "seq_len": 16, "attention_window": 1, "attention_grid": 4}, "attention_peers excludes"),
    ({"attention_peers": 2, "seq_len": 16, "attention_window": 1, "attention_grid": 4, "block": "conv"},
     "attention_peers needs block='attention'"),
])
def test_attention_peers_validation(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SMALL.with_(**changes)


def test_trm_with_attention_peers_learns_4x4_sudoku() -> None:
    """A tiny TRM with ``attention_peers=2`` on the 4x4 Sudoku encoder's puzzle -> solution pairs: the token loss
    falls within a few steps."""
    torch.manual_seed(0)
    env = gym.make("hrm/Sudoku-v0", box=2)
    encoder, oracle = encoder_for(env), oracle_for("hrm/Sudoku-v0")
    pairs = [encoder.seq2seq(env.reset(seed=seed)[0], oracle) for seed in range(32)]
    batch = {key: torch.as_tensor(np.stack([p[i] for p in pairs])) for i, key in enumerate(("tokens", "labels"))}
    config = HRMConfig(vocab_size=encoder.vocab_size, seq_len=encoder.seq_len, token_vocab=encoder.seq2seq_vocab_size,
                       hidden_size=32, num_heads=2, L_layers=1, H_cycles=1, L_cycles=2, variant="trm",
                       attention_peers=2, halt_max_steps=2, loss="softmax")
    model = HRM(config)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    carry, losses = model.initial_carry(batch), []
    for _ in range(30):
        carry, out = model(carry, batch)
        loss, metrics = act_loss(out, carry.data, config)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(metrics["lm_loss"].item())
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5, losses


def test_local_attention_mask() -> None:
    mask = local_attention_mask(5, 1, 2, torch.device("cpu"))
    assert mask[0].all() and not mask[1:, 0].any()  # the prefix sees all, tokens do not see it
    assert mask[1].tolist() == [False, True, True, True, False] and mask[4].tolist() == [False, False, True, True, True]
    with pytest.raises(ValueError, match="window"):
        local_attention_mask(5, 1, 0, torch.device("cpu"))
    later = local_attention_mask(5, 1, 1, torch.device("cpu"), "later")
    assert later[0].all() and later[2].tolist() == [False, False, True, True, False] and later[4, 1:].tolist() == [
        False, False, False, True]
    earlier = local_attention_mask(5, 1, 1, torch.device("cpu"), "earlier")
    assert earlier[2].tolist() == [False, True, True, False, False] and torch.equal(earlier[1:, 1:], later[1:, 1:].T)
    with pytest.raises(ValueError, match="direction"):
        local_attention_mask(5, 1, 1, torch.device("cpu"), "up")


def test_one_way_attention_reaches_only_earlier_tokens() -> None:
    """With ``attention_direction="later"`` a token reads only later tokens: changing the last token moves every
    token within reach, changing the first moves no other token's logits."""
    torch.manual_seed(0)
    length = 8
    config = SMALL.with_(seq_len=length, H_cycles=1, L_cycles=1, attention_window=1, attention_direction="later",
                         halt_max_steps=4, inference_halting="max_steps")
    model = HRM(config).eval()
    tokens = torch.randint(1, 9, (1, length))

    def moved(position: int) -> list[bool]:
        changed = tokens.clone()
        changed[0, position] = changed[0, position] % 9 + 1
        with torch.no_grad():
            a, b = model.predict({"tokens": tokens}), model.predict({"tokens": changed})
        return ((a["policy_logits"] - b["policy_logits"])[0, :-1].view(length, 3).abs().sum(1) > 0).tolist()

    assert moved(length - 1) == [True] * length
    assert moved(0) == [True] + [False] * (length - 1)
    with pytest.raises(ValueError, match="attention_window"):
        SMALL.with_(attention_direction="later")


def test_stablemax_matches_reference_formula() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.0, -3.5]])
    s = torch.tensor([3.0, 1 / 2, 1.0, 1 / 4.5], dtype=torch.float64)
    assert torch.allclose(log_probs(logits, "stablemax")[0], (s / s.sum()).log())
    labels = torch.tensor([[0, IGNORE_LABEL]])
    loss, _, valid = token_loss(torch.stack([logits[0], logits[0]])[None], labels, "stablemax")
    assert torch.allclose(loss, -(s[0] / s.sum()).log()) and valid.tolist() == [[True, False]]


def test_task_loss_with_both_heads_reports_the_action_alone() -> None:
    """Token labels and an action: correct needs both, accuracy is per token, action_correct the policy's own."""
    token_logits = torch.tensor([[[3.0, 0.0], [0.0, 3.0]], [[3.0, 0.0], [3.0, 0.0]]])  # row 1 gets token 1 wrong
    policy_logits = torch.tensor([[0.0, 2.0], [2.0, 0.0]])  # argmax 1, 0
    data = {"labels": torch.tensor([[0, 1], [0, 1]]), "optimal": torch.tensor([[False, True], [False, True]])}
    outputs = {"logits": token_logits, "policy_logits": policy_logits}
    _, correct, accuracy, action_correct = task_loss(outputs, data, "softmax")
    assert correct.tolist() == [True, False] and accuracy.tolist() == [1.0, 0.5]
    assert action_correct.tolist() == [True, False]
    assert task_loss(outputs, {"labels": data["labels"]}, "softmax")[3] is None


@pytest.mark.parametrize("kind", ["stablemax", "softmax"])
def test_field_loss_rewards_mass_on_optimal_moves_and_ignores_cells_without_one(kind: str) -> None:
    """The ``field`` key (B, T, K): per-token move logits that favour an optimal move lose less; tokens without an
    optimal move (the goal, walls, padding) change neither the loss, its gradient nor correctness."""
    field = torch.tensor([[[True, False, False, True], [False, True, False, False], [False] * 4]])  # token 2: none
    data = {"labels": torch.tensor([[1, 1, 0]]), "field": field}
    token_logits = torch.tensor([[[0.0, 3.0], [0.0, 3.0], [3.0, 0.0]]])

    def loss_of(moves: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loss, correct, _, _ = task_loss({"logits": token_logits, "policy_logits": moves.flatten(1)}, data, kind)
        return loss, correct

    on = torch.tensor([[[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0] * 4]])
    off = torch.tensor([[[0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0], [0.0] * 4]])
    (good, good_right), (bad, bad_right) = loss_of(on), loss_of(off)
    assert good < loss_of(torch.zeros(1, 3, 4))[0] < bad and good_right.tolist() == [True] and bad_right.tolist() == [False]
    other = on.clone()
    other[0, 2] = torch.tensor([9.0, -4.0, 1.0, 0.5])  # whatever the token without an optimal move says
    moved, right = loss_of(other.requires_grad_())
    assert torch.allclose(moved, good) and right.tolist() == [True]
    moved.sum().backward()
    assert torch.isfinite(other.grad).all() and (other.grad[0, 2] == 0).all()
    assert torch.allclose(task_loss({"logits": token_logits, "policy_logits": on.flatten(1)},
                                    {"labels": data["labels"], "field": torch.zeros_like(field)}, kind)[0],
                          task_loss({"logits": token_logits}, {"labels": data["labels"]}, kind)[0])  # no cell: no loss


@pytest.mark.parametrize("kind", ["stablemax", "softmax"])
def test_set_loss_singleton_equals_cross_entropy(kind: str) -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 5)
    target = torch.randint(0, 5, (6,))
    loss, _ = set_loss(logits, torch.nn.functional.one_hot(target, 5), kind)
    expected = -log_probs(logits, kind).gather(1, target[:, None])[:, 0]
    assert torch.allclose(loss.double(), expected.double(), atol=1e-6)
    legal = torch.ones(6, 5, dtype=torch.bool)
    legal[torch.arange(6), (target + 1) % 5] = False  # masking an illegal action raises the optimal probability
    masked, _ = set_loss(logits, torch.nn.functional.one_hot(target, 5), kind, legal)
    assert torch.all(masked < loss)
    both = torch.nn.functional.one_hot(target, 5) | torch.nn.functional.one_hot((target + 2) % 5, 5)
    assert torch.all(set_loss(logits, both, kind)[0] < loss)


@pytest.mark.parametrize("variant", ["hrm", "trm"])
@pytest.mark.slow
def test_learns_reverse(variant: str) -> None:
    torch.manual_seed(0)
    config = HRMConfig(vocab_size=10, seq_len=8, hidden_size=64, num_heads=4, H_layers=1, L_layers=1, H_cycles=1,
                       L_cycles=1, halt_max_steps=2, token_vocab=10, variant=variant, loss="softmax")
    model = HRM(config)
    train(model, lambda: reverse_batch(64), 250)
    batch = reverse_batch(256)
    pred = model.eval().predict(batch)
    exact = (pred["logits"].argmax(-1) == batch["labels"]).all(-1).float().mean()
    assert exact > 0.95, exact


@pytest.mark.slow
def test_policy_head_learns_max_and_generalises_in_length() -> None:
    torch.manual_seed(0)
    config = HRMConfig(vocab_size=10, seq_len=6, hidden_size=64, num_heads=4, H_layers=1, L_layers=1, H_cycles=1,
                       L_cycles=1, halt_max_steps=2, per_token_actions=1, global_actions=1)
    model = HRM(config)
    metrics = train(model, lambda: max_batch(64, 6), 250)
    assert metrics["exact_accuracy"] > 0.9
    for length in (6, 10):
        batch = max_batch(256, length)
        pred = model.eval().predict(batch)
        assert pred["policy_logits"].shape == (256, config.num_actions(length))
        _, correct = set_loss(pred["policy_logits"], batch["optimal"], config.loss, batch["action_mask"])
        assert correct.float().mean() > 0.9, (length, correct.float().mean())


def test_learned_positions_are_fixed_length_and_puzzle_embedding_is_used() -> None:
    torch.manual_seed(0)
    config = SMALL.with_(pos_encodings="learned", num_puzzle_identifiers=3)
    model = HRM(config)
    batch = {**reverse_batch(2), "puzzle_identifiers": torch.tensor([0, 2])}
    assert torch.all(model.embed.puzzle.weight == 0)  # zero-initialised like the reference
    assert model.predict(batch)["logits"].shape == (2, 8, 10)
    with pytest.raises(ValueError, match="rope"):
        model.predict(reverse_batch(2, length=9))


@pytest.mark.parametrize("variant", ["hrm", "trm"])
def test_episode_carry_resumes_from_the_previous_decision(variant: str) -> None:
    """``predict`` from the states a first call ended in is the same computation as one call with twice the
    segments (same input, max_steps halting): the carry is the whole state of the recursion."""
    torch.manual_seed(0)
    config = SMALL.with_(variant=variant, episode_carry=True, inference_halting="max_steps", halt_max_steps=2)
    model = HRM(config).eval()
    batch = reverse_batch(3)
    first = model.predict(batch)
    second = model.predict(batch, start=(first["z_H"], first["z_L"]))
    longer = HRM(config.with_(halt_max_steps=4)).eval()
    longer.load_state_dict(model.state_dict())
    both = longer.predict(batch)
    torch.testing.assert_close(second["logits"], both["logits"])
    torch.testing.assert_close(second["z_H"], both["z_H"])
    assert not torch.allclose(first["logits"], second["logits"])
    assert "z_H" not in HRM(config.with_(episode_carry=False)).eval().predict(batch)
    with pytest.raises(ValueError, match="start states must have shape"):
        model.predict(batch, start=(first["z_H"][:2], first["z_L"][:2]))
    with pytest.raises(ValueError, match="episode_carry"):
        SMALL.with_(episode_carry=1)


def test_a_continuing_halted_row_keeps_its_carry_and_takes_the_new_input() -> None:
    torch.manual_seed(0)
    config = SMALL.with_(variant="trm", episode_carry=True, halt_max_steps=1)
    model = HRM(config).train()
    first, following = reverse_batch(2), reverse_batch(2)
    carry, _ = model(model.initial_carry(first), first)
    assert carry.halted.all()  # halt_max_steps=1: every row is done after one segment
    continued, _ = model(carry, {**following, "continues": torch.tensor([True, False])})
    restarted, _ = model(model.initial_carry(following), following)
    assert torch.equal(continued.data["tokens"], following["tokens"])
    torch.testing.assert_close(continued.z_H[1], restarted.z_H[1])  # not continuing: a fresh start
    assert not torch.allclose(continued.z_H[0], restarted.z_H[0])  # continuing: went on from the carry
    model.eval()
    resumed = model.predict(following, start=(carry.z_H, carry.z_L))["z_H"]
    torch.testing.assert_close(continued.z_H[0], resumed[0])


# ----------------------------------------------------------------- depth training and scaling halts
def counting_segments(model: HRM) -> list[int]:
    """Wrap ``model._segment`` to count its calls (one list entry per call: 1)."""
    calls: list[int] = []
    segment = model._segment

    def counted(*args):
        calls.append(1)
        return segment(*args)

    model._segment = counted
    return calls


@pytest.mark.parametrize("field, value, message", [
    ("depth_training", "random", "depth_training must be one of"),
    ("depth_extra_max", -1, "depth_extra_max"),
    ("halt_scale", "area", "halt_scale must be one of"),
    ("halt_tolerance", 1.0, "halt_tolerance"),
    ("halt_tolerance", float("nan"), "halt_tolerance"),
    ("halt_tolerance", True, "halt_tolerance"),
])
def test_depth_and_halting_fields_are_validated(field, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        SMALL.with_(**{field: value})
    with pytest.raises(ValueError, match="depth_extra_max >= 1"):
        SMALL.with_(depth_training="progressive")
    with pytest.raises(ValueError, match="halt_reference >= 1"):
        SMALL.with_(halt_scale="side")


def segments_per_forward(model: HRM, batch: dict[str, torch.Tensor], steps: int) -> tuple[list[int], dict]:
    """Segments each of ``steps`` training forwards ran (from a fresh carry, kept across them) and the last outputs."""
    calls = counting_segments(model)
    carry = model.initial_carry(batch)
    runs, out = [], {}
    for _ in range(steps):
        before = len(calls)
        carry, out = model(carry, batch)
        runs.append(len(calls) - before)
    return runs, out


def test_progressive_training_runs_a_random_depth_without_gradient_before_the_graded_segment() -> None:
    torch.manual_seed(0)
    config = SMALL.with_(variant="trm", depth_training="progressive", depth_extra_max=3, halt_exploration_prob=0.0)
    model = HRM(config).train()
    batch = reverse_batch(4)
    depths, _ = segments_per_forward(model, batch, 40)
    assert set(depths) == {1, 2, 3, 4}  # 0..3 extra segments, then the graded one
    model.eval()
    assert segments_per_forward(model, batch, 1)[0] == [1]  # evaluation runs the graded segment only


def test_progressive_depth_keeps_the_memory_of_one_segment() -> None:
    """The extra segments save no activations: the graph of a step is that of the fixed-depth model."""
    batch = reverse_batch(4)
    sizes = []
    for extra in (1, 8):
        torch.manual_seed(0)
        config = SMALL.with_(depth_training="progressive", depth_extra_max=extra, halt_exploration_prob=0.0)
        sizes.append(saved_bytes(HRM(config).train(), batch))
    torch.manual_seed(0)
    fixed = saved_bytes(HRM(SMALL.with_(halt_exploration_prob=0.0)).train(), batch)
    assert sizes == [fixed, fixed]


@pytest.mark.parametrize("scale, expected", [("fixed", [2, 2, 2]), ("tokens", [8, 4, 2]), ("side", [4, 3, 2])])
def test_segment_caps_grow_with_the_real_tokens(scale, expected) -> None:
    config = SMALL.with_(halt_max_steps=2, halt_scale=scale, halt_reference=0 if scale == "fixed" else 4,
                         inference_halting="max_steps")
    model = HRM(config).eval()
    tokens = torch.randint(1, 10, (3, 16))
    tokens[1, 8:] = 0  # padding: 8 real tokens
    tokens[2, 3:] = 0  # 3 real tokens: fewer than the reference, still halt_max_steps
    assert model.segment_caps(tokens).tolist() == expected
    assert model.predict({"tokens": tokens})["segments"].tolist() == expected


def test_a_converged_latent_halts_before_the_cap() -> None:
    config = SMALL.with_(halt_max_steps=8, inference_halting="max_steps", halt_tolerance=0.01)
    model = HRM(config).eval()
    batch = reverse_batch(2)
    fixed_point = model._segment

    def still(z_H, z_L, x, rotary):  # a fixed point after the first segment: the second changes nothing
        if still.calls == 0:
            still.calls += 1
            return fixed_point(z_H, z_L, x, rotary)
        return z_H, z_L
    still.calls = 0
    model._segment = still
    assert model.predict(batch)["segments"].tolist() == [2, 2]
    model = HRM(config.with_(halt_tolerance=0.0)).eval()
    still.calls, fixed_point, model._segment = 0, model._segment, still
    assert model.predict(batch)["segments"].tolist() == [8, 8]


@pytest.mark.parametrize("block", ["conv", "max"])
def test_grid_block_model_acts_on_other_widths_and_trains(block: str) -> None:
    """block='conv' / 'max': the weights are width-free (a model built for a 6-wide grid runs on a 9-wide one with the
    same state dict) and a few optimizer steps lower the loss."""
    torch.manual_seed(0)
    narrow, wide = 6, 9
    config = SMALL.with_(seq_len=narrow * narrow, H_cycles=1, L_cycles=1, L_layers=1, H_layers=1, attention_grid=narrow,
                         block=block, halt_max_steps=1, token_vocab=3)
    model = HRM(config)
    widened = HRM(config.with_(seq_len=wide * wide, attention_grid=wide)).eval()
    widened.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert widened.predict({"tokens": torch.randint(1, 9, (2, wide * wide))})["logits"].shape == (2, wide * wide, 3)
    cells = torch.randint(1, 9, (narrow, narrow))
    batch = {"tokens": cells.view(1, -1).repeat(4, 1), "labels": (cells.view(1, -1) % 3).repeat(4, 1)}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(80):
        carry, out = model(model.initial_carry(batch), batch)
        loss, _ = act_loss(out, carry.data, config)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_conv_block_validation() -> None:
    with pytest.raises(ValueError, match="block must be one of"):
        SMALL.with_(block="lstm")
    for block in ("conv", "max"):
        with pytest.raises(ValueError, match=f"block='{block}' needs attention_grid"):
            SMALL.with_(block=block)


def test_cost_loss_regresses_the_channel_after_the_moves_and_ignores_nan() -> None:
    """``cost`` (B, T) beside ``field``: the per-token channel after the K moves is regressed (closer = lower loss),
    NaN tokens are ignored (no loss, zero gradient), and correctness stays the moves' alone."""
    field = torch.tensor([[[True, False, False, False], [False, True, False, False], [False] * 4]])
    data = {"field": field, "cost": torch.tensor([[0.5, 1.5, float("nan")]])}

    def loss_of(values: list[float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        moves = torch.tensor([[[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0.0] * 4]])
        channels = torch.cat([moves, torch.tensor(values).view(1, 3, 1)], dim=-1).requires_grad_()
        loss, correct, _, _ = task_loss({"policy_logits": channels.flatten(1)}, data, "softmax")
        loss.sum().backward()
        return loss, correct, channels.grad

    exact, right, grad = loss_of([0.5, 1.5, 7.0])
    off, right_off, _ = loss_of([2.0, -1.0, 7.0])
    assert exact < off and right.tolist() == right_off.tolist() == [True]
    assert (grad[0, 2] == 0).all()
    moves_only, _, _, _ = task_loss({"policy_logits": torch.tensor([[[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0.0] * 4]]).flatten(1)},
                                    {"field": field}, "softmax")
    assert torch.allclose(exact.detach(), moves_only)  # a perfect regression adds nothing


def test_front_rate_validation_and_the_not_reached_class() -> None:
    for value in (-1.0, float("inf"), True):
        with pytest.raises(ValueError, match="front_rate"):
            SMALL.with_(front_rate=value)
    with pytest.raises(ValueError, match="needs a token head"):
        SMALL.with_(front_rate=2.0, token_vocab=0)
    with pytest.raises(ValueError, match="inference_halting='reached' needs"):
        SMALL.with_(inference_halting="reached")
    logits = torch.zeros(1, 4, 5)
    data = {"labels": torch.tensor([[2, 1, IGNORE_LABEL, IGNORE_LABEL]]),
            "cost": torch.tensor([[3.0, 9.0, float("nan"), float("inf")]])}  # cell 3: a wall, never reached
    with pytest.raises(ValueError, match="batch key 'cost'"):
        task_loss({"logits": logits, "reach": torch.tensor([4.0])}, {"labels": data["labels"]}, "softmax")
    logits[0, 0, 2] = logits[0, 1, 4] = logits[0, 3, 4] = 10.0  # cell 0 (cost 3): its move; 1 (cost 9), 3: not reached
    _, correct, accuracy, _ = task_loss({"logits": logits, "reach": torch.tensor([4.0])}, data, "softmax")
    assert bool(correct[0]) and float(accuracy[0]) == 1.0  # 9 > 2 x 4: cell 1 is graded "not reached yet"
    loss, correct, accuracy, _ = task_loss({"logits": logits, "reach": torch.tensor([5.0])}, data, "softmax")
    assert bool(correct[0]) and float(accuracy[0]) == 1.0  # 5 < 9 <= 10: cell 1 may be reached, not graded
    assert float(loss[0]) < 1e-3
    _, correct, accuracy, _ = task_loss({"logits": logits, "reach": torch.tensor([9.0])}, data, "softmax")
    assert not bool(correct[0]) and float(accuracy[0]) == pytest.approx(2 / 3)  # reach 9: cell 1 must move (1)
    logits[0, 3, 4] = -10.0
    _, correct, _, _ = task_loss({"logits": logits, "reach": torch.tensor([5.0])}, data, "softmax")
    assert not bool(correct[0])  # the wall must be "not reached" at any reach


def test_front_gates_are_fitted_to_the_costs() -> None:
    """block="front": a labelled cell (it can reach the goal) should be passable and no source, a wall (inf)
    impassable and no source; the goal and padding (NaN, no label) are not graded; the gradient reaches the gates."""
    logits = torch.zeros(1, 4, 5)
    data = {"labels": torch.tensor([[2, 1, IGNORE_LABEL, IGNORE_LABEL]]),
            "cost": torch.tensor([[3.0, 9.0, float("nan"), float("inf")]])}
    reach = torch.tensor([4.0])
    plain, _, _, _ = task_loss({"logits": logits, "reach": reach}, data, "softmax")

    def gate_loss(source: list[float], passable: list[float]) -> tuple[float, torch.Tensor]:
        gates = torch.tensor([source, passable], requires_grad=True)
        outputs = {"logits": logits, "reach": reach, "front_source": gates[:1], "front_passable": gates[1:]}
        loss, _, _, _ = task_loss(outputs, data, "softmax")
        loss.sum().backward()
        return float(loss[0] - plain[0]), gates.grad

    exact, _ = gate_loss([0.0, 0.0, 0.7, 0.0], [1.0, 1.0, 0.3, 0.0])  # cell 2 (the goal) is free
    assert exact == pytest.approx(0.0, abs=1e-4)
    wrong, grad = gate_loss([0.9, 0.0, 0.5, 0.0], [1.0, 1.0, 0.5, 0.9])  # a floor source, a passable wall
    assert wrong > 1.0 and grad[0, 0] > 0 and grad[1, 3] > 0 and grad[0, 2] == grad[1, 2] == 0


def test_front_depth_counts_extra_segments_and_an_episodes_earlier_decisions() -> None:
    """``reach`` = front_rate x the segments since the latent was fresh: the progressive extra ones count, a row
    that continues its episode keeps counting, a fresh row starts again."""
    torch.manual_seed(0)
    config = SMALL.with_(variant="trm", front_rate=2.0, depth_training="progressive", depth_extra_max=3,
                         halt_max_steps=1)
    model = HRM(config).train()
    runs, out = segments_per_forward(model, {**reverse_batch(2), "continues": torch.tensor([True, False])}, 6)
    assert out["reach"].tolist() == [2.0 * sum(runs), 2.0 * runs[-1]]


def test_reached_halting_stops_once_the_acting_cell_leaves_the_last_class() -> None:
    """``inference_halting="reached"``: a decision halts at the first segment whose token head does not put the
    acting cell in its last class ("not reached yet"), at the cap otherwise; rows without the mark halt at once."""
    torch.manual_seed(0)
    mark = 9
    config = SMALL.with_(variant="trm", token_vocab=3, front_rate=1.0, inference_halting="reached", halt_max_steps=6,
                         acting_tokens=(mark,), global_readout="acting_token")
    model = HRM(config).eval()
    tokens = torch.randint(1, 9, (3, 8))
    tokens[0, 2] = tokens[1, 5] = mark
    reached_at = {0: 3, 1: 99}  # row 0's cell 2 is reached at segment 3, row 1's cell 5 never
    segment, read = model._segment, model._read
    count = {"n": 0}

    def counted(*args):
        count["n"] += 1
        return segment(*args)

    def fake_read(z_H: torch.Tensor, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        out = read(z_H, inputs)
        out["logits"] = torch.zeros(*inputs.shape, 3)
        out["logits"][..., 2] = 1.0  # "not reached yet" everywhere
        out["logits"][0, 2, 2] = -1.0 if count["n"] >= reached_at[0] else 1.0
        return out

    model._segment, model._read = counted, fake_read
    assert model.predict({"tokens": tokens})["segments"].tolist() == [3, 6, 1]


def test_front_block_model_starts_unreached_and_halts_on_the_acting_cells_bit() -> None:
    """``block="front"``: the input embedding and the initial states hold 0 in the bit channel (only the gates set
    it), ``reach_bit`` is z_H's channel 0 on the grid, and ``inference_halting="reached"`` halts once the acting
    cell's bit is set, whatever the token head says."""
    torch.manual_seed(0)
    side, mark = 4, 9
    config = SMALL.with_(variant="trm", seq_len=side * side, block="front", attention_grid=side, token_vocab=3,
                         front_rate=1.0,
                         inference_halting="reached", halt_max_steps=6, acting_tokens=(mark,),
                         global_readout="acting_token")
    model = HRM(config).eval()
    tokens = torch.randint(1, 9, (2, side * side))
    tokens[0, 5] = tokens[1, 10] = mark
    with torch.no_grad():
        x, _ = model._embed({"tokens": tokens})
    marks = FrontBlock.MARKS  # the bit and the directions it came from
    assert float(x[..., :marks].abs().max()) == 0.0
    assert float(model.H_init[:marks].abs().max()) == float(model.L_init[:marks].abs().max()) == 0.0
    assert model._front_gates(x).source.shape == (2, 1, side, side)
    source = torch.zeros(2, 1, side, side)
    source[:, :, 0, 0] = 1.0  # cell 0 is the only source, every cell lets the front in
    model._front_gates = lambda x: FrontGates(source=source, passable=torch.ones_like(source))
    with torch.no_grad():
        out = model.predict({"tokens": tokens})
    per_segment = (config.L_cycles + 1) * config.H_cycles * config.L_layers  # cells the front moves per segment
    distance = torch.tensor([1 + 1, 2 + 2])  # cells 5 and 10 from cell 0 of a 4-wide grid
    assert out["segments"].tolist() == torch.ceil(distance / per_segment).long().tolist()
    assert out["reach_bit"].shape == tokens.shape
    probs = out["logits"].exp()  # the head's classes: reached and each move, or not reached (1 - the bit)
    assert torch.allclose(probs.sum(-1), torch.ones(tokens.shape), atol=1e-3)
    assert torch.allclose(probs[..., -1], 1e-3 + (1 - 2e-3) * (1 - out["reach_bit"]), atol=1e-5)


def test_wave_block_model_relaxes_costs_as_it_runs_and_fits_its_gates_in_training() -> None:
    """``block="wave"``: the initial states start every cell unreached (channel 0 = UNREACHED) and the input
    embedding holds 0 in the marks; with given gates (every move allowed at cost 1 from a corner source) each
    segment relaxes ``relax_steps`` x its block applications further, and after enough segments ``cost_to_go`` is the
    Manhattan distance and ``best_moves`` the moves towards the source. In training the gates are outputs and :func:`agents.hrm.task_loss` adds their fit to ``cost`` and
    the move field. ``relax_steps`` needs block='wave'."""
    torch.manual_seed(0)
    side = 5
    config = SMALL.with_(variant="trm", seq_len=side * side, block="wave", attention_grid=side, relax_steps=2,
                         token_vocab=3, per_token_actions=5, global_actions=0, halt_max_steps=1)
    model = HRM(config).eval()
    tokens = torch.randint(1, 9, (2, side * side))
    with torch.no_grad():
        x, _ = model._embed({"tokens": tokens})
    assert float(x[..., : WaveBlock.MARKS].abs().max()) == 0.0
    assert float(model.H_init[0]) == float(model.L_init[0]) == WaveBlock.UNREACHED
    source = torch.zeros(2, 1, side, side)
    source[:, :, 0, 0] = 1.0
    ones = torch.ones_like(source)
    model._wave_gates = lambda x: WaveGates(source, ones, ones, torch.ones(2, 4, side, side))
    per_segment = config.relax_steps * (config.L_cycles + 1) * config.H_cycles  # relaxations per segment
    r, c = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    manhattan = (r + c).flatten().float()
    with torch.no_grad():
        out = model.predict({"tokens": tokens})
        assert torch.equal(out["cost_to_go"][0] < WaveBlock.UNREACHED, manhattan <= per_segment)
        model.config = config.with_(halt_max_steps=4, inference_halting="max_steps")
        out = model.predict({"tokens": tokens})
    assert torch.equal(out["cost_to_go"][1], manhattan)
    best = out["best_moves"][0].view(side, side, 4)  # OFFSETS order: up, right, down, left
    assert torch.equal(best[..., 0] > 0.5, r > 0) and torch.equal(best[..., 3] > 0.5, c > 0)
    assert float(best[..., 1].max()) == float(best[..., 2].max()) == 0.0
    model.train()
    batch = {"tokens": tokens, "labels": torch.ones_like(tokens), "field": torch.zeros(2, side * side, 4, dtype=torch.bool),
             "cost": manhattan.expand(2, -1).clone()}
    batch["field"][:, :, 0] = (r > 0).flatten()
    del model._wave_gates  # the model's own gates: outputs in training, fitted by task_loss
    _, out = model(model.initial_carry(batch), batch)
    assert out["wave_cost"].shape == (2, 1, side, side) and out["wave_exits"].shape == (2, 4, side, side)
    with_gates, *_ = task_loss(out, batch, "softmax")
    without, *_ = task_loss({k: v for k, v in out.items() if not k.startswith("wave_")}, batch, "softmax")
    assert (with_gates > without).all()
    with pytest.raises(ValueError, match="'cost' and 'field'"):  # gates with nothing to fit them to
        task_loss(out, {k: v for k, v in batch.items() if k != "cost"}, "softmax")
    with pytest.raises(ValueError, match="relax_steps"):
        SMALL.with_(relax_steps=2)


def test_blind_acting_hides_the_agents_mark_from_the_recurrence_but_not_from_the_heads() -> None:
    """``blind_acting=t``: the latent is the same wherever the mark stands (it sees token t there), and the heads
    still read the marked cell."""
    torch.manual_seed(0)
    side, mark, floor = 4, 9, 2
    config = SMALL.with_(seq_len=side * side, block="conv", attention_grid=side, halt_max_steps=1,
                         global_readout="acting_token", acting_tokens=(mark,), blind_acting=floor)
    model = HRM(config).eval()
    tokens = torch.full((2, side * side), floor)
    tokens[0, 5], tokens[1, 10] = mark, mark
    with torch.no_grad():
        out = model.predict({"tokens": tokens})
        carry = model.initial_carry({"tokens": tokens})
        z_H, _ = model._segment(carry.z_H, carry.z_L, *model._embed({"tokens": tokens}))
    assert torch.allclose(z_H[0], z_H[1])
    head = model.heads.global_head
    assert torch.allclose(out["policy_logits"][0, -1:], head(z_H[0, 1 + 5]), atol=1e-5)
    assert torch.allclose(out["policy_logits"][1, -1:], head(z_H[1, 1 + 10]), atol=1e-5)
    for value in (-1, 10):
        with pytest.raises(ValueError, match="blind_acting"):
            config.with_(blind_acting=value)
    with pytest.raises(ValueError, match="blind_acting"):
        SMALL.with_(blind_acting=floor)  # no acting tokens to replace
