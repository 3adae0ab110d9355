"""HRM training memory (one-step gradient vs full back-propagation) and training throughput.

    python -m benchmarks.hrm_memory [--seconds 3.0] [--skip-paper]

Memory is measured as the bytes of tensors the autograd graph saves for backward (counted with
``torch.autograd.graph.saved_tensors_hooks``), peaked over one ACT episode of training: the one-step model
runs one segment per optimizer step (backward after each segment, carry detached), the full-backprop
variant (``HRMConfig(full_backprop=True)``) keeps every update of every segment in one graph and back-propagates
once. Saved activations are what grows with depth; parameters, optimizer state and transient buffers are
the same for both and are left out. Targets: one-step peak with halt_max_steps 16 within 1.25x of 2,
and with 8x8 cycles within 1.25x of 2x2. Throughput: training samples/s (one segment per optimizer step,
AdamW) of the paper's Sudoku configuration and of a small default configuration, on this CPU.
"""

from __future__ import annotations

import argparse

import torch

from agents.hrm import HRM, HRMConfig, act_loss
from benchmarks.harness import emit, rate

MEMORY_CONFIG = HRMConfig(vocab_size=11, seq_len=81, hidden_size=128, num_heads=4, H_layers=2, L_layers=2,
                          token_vocab=11, halt_exploration_prob=0.0)
PAPER_CONFIG = HRMConfig(vocab_size=11, seq_len=81, hidden_size=512, num_heads=8, expansion=4, H_layers=4, L_layers=4,
                         H_cycles=2, L_cycles=2, halt_max_steps=16, num_puzzle_identifiers=1, token_vocab=11)
SMALL_CONFIG = HRMConfig(vocab_size=11, seq_len=81, token_vocab=11)  # the dataclass defaults


def sudoku_like_batch(config: HRMConfig, size: int) -> dict[str, torch.Tensor]:
    inputs = torch.randint(1, config.vocab_size, (size, config.seq_len))
    return {"tokens": inputs, "labels": torch.randint(1, config.token_vocab, (size, config.seq_len))}


def episode_peak_saved_bytes(config: HRMConfig, batch_size: int = 8) -> int:
    """Peak saved-for-backward bytes over ``halt_max_steps`` training segments (Q-head never halts early)."""
    torch.manual_seed(0)
    model = HRM(config).train()
    batch = sudoku_like_batch(config, batch_size)
    live = peak = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal live, peak
        live += t.numel() * t.element_size()
        peak = max(peak, live)
        return t

    carry = model.initial_carry(batch)
    total = 0.0
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        for _ in range(config.halt_max_steps):
            carry, out = model(carry, batch)
            loss = act_loss(out, carry.data, config)[0]
            if config.full_backprop:
                total = total + loss
            else:
                loss.backward()
                live = 0  # the graph of this segment is freed by backward
        if config.full_backprop:
            total.backward()
    return peak


def training_rate(config: HRMConfig, batch_size: int, seconds: float) -> float:
    """Training samples/s: one segment + loss + backward + AdamW step per call."""
    torch.manual_seed(0)
    model = HRM(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = sudoku_like_batch(config, batch_size)
    carry = model.initial_carry(batch)

    def step() -> int:
        nonlocal carry
        carry, out = model(carry, batch)
        loss = act_loss(out, carry.data, config)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        return batch_size

    step()  # warm-up
    return rate(step, seconds)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each throughput run")
    parser.add_argument("--skip-paper", action="store_true", help="skip the slow paper-size throughput run")
    args = parser.parse_args()
    mib = 2.0**20
    memory = {}
    for name, changes in {
        "halt2_cycles2x2": dict(halt_max_steps=2),
        "halt16_cycles2x2": dict(halt_max_steps=16),
        "halt2_cycles8x8": dict(halt_max_steps=2, H_cycles=8, L_cycles=8),
    }.items():
        config = MEMORY_CONFIG.with_(**changes)
        memory[name] = {
            "one_step_MiB": episode_peak_saved_bytes(config) / mib,
            "full_backprop_MiB": episode_peak_saved_bytes(config.with_(full_backprop=True)) / mib,
        }
    base = memory["halt2_cycles2x2"]
    ratios = {
        "one_step_halt16_over_halt2": memory["halt16_cycles2x2"]["one_step_MiB"] / base["one_step_MiB"],
        "one_step_cycles8x8_over_2x2": memory["halt2_cycles8x8"]["one_step_MiB"] / base["one_step_MiB"],
        "full_halt16_over_halt2": memory["halt16_cycles2x2"]["full_backprop_MiB"] / base["full_backprop_MiB"],
        "full_cycles8x8_over_2x2": memory["halt2_cycles8x8"]["full_backprop_MiB"] / base["full_backprop_MiB"],
    }
    figures = {
        "memory_measure": "peak bytes saved for backward (saved_tensors_hooks), batch 8, seq 81, hidden 128, 2+2 layers",
        "memory": memory,
        "ratios": ratios,
        "train_samples_per_s_small": training_rate(SMALL_CONFIG, 32, args.seconds),
        "small_config": "hidden 128, 4 heads, 2+2 layers, 2x2 cycles, seq 81, batch 32",
        "torch_threads": torch.get_num_threads(),
    }
    if not args.skip_paper:
        figures["train_samples_per_s_paper"] = training_rate(PAPER_CONFIG, 4, args.seconds)
        figures["paper_config"] = "hidden 512, 8 heads, 4+4 layers, 2x2 cycles, seq 81 + 1, batch 4"
    targets = {
        "one_step_halt16_within_1.25x_of_halt2": ratios["one_step_halt16_over_halt2"] <= 1.25,
        "one_step_cycles8x8_within_1.25x_of_2x2": ratios["one_step_cycles8x8_over_2x2"] <= 1.25,
    }
    return emit("hrm_memory", figures, targets)


if __name__ == "__main__":
    main()
