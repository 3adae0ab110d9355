"""Grid-window attention speed: ``GridWindow.attend`` against equivalent formulations, and whole-block throughput.

    python -m benchmarks.grid_attention [--sides 63 31] [--window 1] [--batch 8] [--heads 4] [--head-dim 16]
                                        [--prefix 1] [--threads 1] [--seconds 1.0] [--rounds 3] [--block-side 63]

On the same random q, k, v (batch, heads, prefix + side^2, head_dim) each formulation of the Manhattan-window
attention of :class:`agents.layers.GridWindow` is timed forward and forward + backward (training back-propagates),
the formulations measured in turns for ``--rounds`` rounds and the median taken:

- ``gathered``: the reference, GridWindow's former implementation: keys and values zero-padded, one shifted slice
  per offset, scores stacked, masked, weighted values summed, all through autograd.
- ``fused`` (GridWindow's implementation, :class:`agents.layers._GridAttention`): no padding; per offset the cells
  whose neighbour is on the grid are paired with that neighbour, scores and products accumulated in place, a
  hand-written backward that accumulates the gradients in place too.
- ``stacked_matmul``: the shifted keys and values stacked once (batch, heads, rows, width, offsets, head_dim), scores
  and output by one batched matmul each.
- ``unfold``: ``F.unfold`` of the channels-first grid (the (2w+1)^2 square around each cell), the Manhattan offsets
  kept, scores and output by broadcast products summed over the head dimension.
- ``depthwise_conv``: the same shifted stack made by a depthwise ``F.conv2d`` with one-hot kernels (one output
  channel per channel and offset), only the Manhattan offsets.

Every formulation is checked against the reference (``max_abs_diff`` of outputs and of q/k/v gradients).
``speedup`` is the reference's seconds per call over the formulation's (> 1: faster); ``cells_per_s`` counts
batch x cells of one attention (or block) application per second. ``block`` times an ``agents.layers.Block``
(hidden heads x head_dim, expansion 4, 2-D rotary) with the GridWindow mask at ``--block-side`` and with the
reference attention swapped in, and an ``agents.layers.ConvBlock`` (HRM's ``block="conv"``) at the same width
(``conv64`` by default) and at ``--conv-hidden`` (``conv32``): speedups are against the block with ``gathered``.

Measured on this machine (2 cores shared with other jobs, load ~5; one run of the defaults: ``--threads 1``,
window 1, batch 8, heads 4, head_dim 16, prefix 1), seconds per call and speedup over ``gathered``:

- side 63, forward: gathered 0.052 s; fused 0.020 s (2.6x); stacked_matmul 0.138 s (0.38x); unfold 0.375 s
  (0.14x); depthwise_conv 0.217 s (0.24x).
- side 63, forward + backward: gathered 0.187 s (0.17 M cells/s); fused 0.086 s (2.2x, 0.37 M cells/s);
  stacked_matmul 0.403 s (0.46x); unfold 0.890 s (0.21x); depthwise_conv 0.823 s (0.23x).
- side 31, forward + backward: gathered 0.032 s; fused 0.016 s (2.0x); the others 0.3x - 0.5x.
- Block at side 63 (hidden 64, SwiGLU inner 256): 107 k cells/s forward, 41 k cells/s forward + backward with
  fused, 0.98x the block with gathered in that run: the block's time (~0.78 s forward + backward) is mostly its
  linears, the attention's ~0.1 s gain is ~10% of it and within one run's noise (a separate 5-round timing: 0.74 s
  against 0.82 s, 1.1x).

The stacked / unfold / conv formulations lose because they materialise (offsets x head_dim) copies of keys and
values (unfold even the whole square, 9 offsets to keep 5 at window 1) and their backward folds the copies back;
the work per offset is a few flops per byte, so the copies cost more than the loop over 5 (or 13) offsets they
replace, and the stacked matmul is a batch of one (offsets x head_dim) @ (head_dim x 1) product per cell. The fused form
wins by writing nothing but the scores, the output and one gradient buffer per tensor.
"""

from __future__ import annotations

import argparse
import math
import statistics
from typing import Callable

import torch
import torch.nn.functional as F

from agents.layers import Block, ConvBlock, GridRotary, GridWindow
from benchmarks.harness import emit, rate

Attend = Callable[[GridWindow, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _grid(window: GridWindow, t: torch.Tensor) -> torch.Tensor:
    """The tokens of (batch, heads, prefix + T, dim) as (batch, heads, rows, width, dim)."""
    batch, heads, length, dim = t.shape
    return t[:, :, window.prefix:].reshape(batch, heads, -1, window.width, dim)


def _with_prefix(window: GridWindow, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 grid_out: torch.Tensor) -> torch.Tensor:
    """Grid output (batch, heads, rows, width, dim) flattened, after the prefix slots' dense attention."""
    out = grid_out.reshape(q.shape[0], q.shape[1], -1, q.shape[-1])
    if window.prefix:
        out = torch.cat([F.scaled_dot_product_attention(q[:, :, : window.prefix], k, v), out], dim=2)
    return out


def gathered(window: GridWindow, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The reference: GridWindow's former implementation (padded shifted slices, autograd throughout)."""
    rows, width, w, dim = _grid(window, q).shape[2], window.width, window.window, q.shape[-1]
    keys, values = (F.pad(_grid(window, t), (0, 0, w, w, w, w)) for t in (k, v))
    inside = F.pad(torch.ones(rows, width, dtype=torch.bool, device=q.device), (w, w, w, w))
    queries = _grid(window, q) / math.sqrt(dim)
    windows = [(slice(w + dr, w + dr + rows), slice(w + dc, w + dc + width)) for dr, dc in window.offsets()]
    scores = torch.stack([(queries * keys[:, :, r, c]).sum(-1).masked_fill(~inside[r, c], float("-inf"))
                          for r, c in windows], dim=-1)
    weights = scores.softmax(-1)
    out = sum(weights[..., i, None] * values[:, :, r, c] for i, (r, c) in enumerate(windows))
    return _with_prefix(window, q, k, v, out)


def _offset_bias(window: GridWindow, rows: int, device: torch.device) -> torch.Tensor:
    """(rows, width, offsets) additive mask: 0 where the offset's cell is on the grid, -inf where it is not."""
    cells = torch.arange(rows * window.width, device=device)
    r, c = cells // window.width, cells % window.width
    offsets = torch.tensor(window.offsets(), device=device)
    row, col = r[:, None] + offsets[:, 0], c[:, None] + offsets[:, 1]
    on = (row >= 0) & (row < rows) & (col >= 0) & (col < window.width)
    return torch.zeros(on.shape, device=device).masked_fill(~on, float("-inf")).view(rows, window.width, -1)


def stacked_matmul(window: GridWindow, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Shifted keys / values stacked once, scores and output by one batched matmul each."""
    rows, width, w, dim = _grid(window, q).shape[2], window.width, window.window, q.shape[-1]
    keys, values = (F.pad(_grid(window, t), (0, 0, w, w, w, w)) for t in (k, v))
    shifted = [(slice(w + dr, w + dr + rows), slice(w + dc, w + dc + width)) for dr, dc in window.offsets()]
    keys, values = (torch.stack([t[:, :, r, c] for r, c in shifted], dim=-2) for t in (keys, values))
    scores = (keys @ _grid(window, q).unsqueeze(-1)).squeeze(-1) / math.sqrt(dim)
    weights = (scores + _offset_bias(window, rows, q.device)).softmax(-1)
    return _with_prefix(window, q, k, v, (weights.unsqueeze(-2) @ values).squeeze(-2))


def _channels_first(window: GridWindow, t: torch.Tensor) -> torch.Tensor:
    """(batch, heads, prefix + T, dim) -> (batch * heads, dim, rows, width), the image layout of unfold / conv2d."""
    grid = _grid(window, t)
    return grid.permute(0, 1, 4, 2, 3).reshape(-1, t.shape[-1], grid.shape[2], window.width)


def _attend_stacked_channels(window: GridWindow, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                             keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Attention from stacks (batch * heads, dim, offsets, T) of the keys / values at each offset of each cell."""
    batch, heads, _, dim = q.shape
    rows = _grid(window, q).shape[2]
    queries = _channels_first(window, q).reshape(batch * heads, dim, 1, -1) / math.sqrt(dim)
    bias = _offset_bias(window, rows, q.device).reshape(rows * window.width, -1).T
    weights = ((queries * keys).sum(1) + bias).softmax(1)
    out = (weights.unsqueeze(1) * values).sum(2).view(batch, heads, dim, rows, window.width).permute(0, 1, 3, 4, 2)
    return _with_prefix(window, q, k, v, out)


def unfold(window: GridWindow, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``F.unfold`` of the (2w+1)^2 square around each cell, the Manhattan offsets kept."""
    w, dim, side = window.window, q.shape[-1], 2 * window.window + 1
    keep = torch.tensor([(dr + w) * side + dc + w for dr, dc in window.offsets()], device=q.device)

    def stack(t: torch.Tensor) -> torch.Tensor:
        image = _channels_first(window, t)
        return F.unfold(image, side, padding=w).view(image.shape[0], dim, side * side, -1)[:, :, keep]

    return _attend_stacked_channels(window, q, k, v, stack(k), stack(v))


def depthwise_conv(window: GridWindow, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The shifted stack by a depthwise ``F.conv2d`` with one-hot kernels, one output channel per channel x offset."""
    w, dim, side, offsets = window.window, q.shape[-1], 2 * window.window + 1, window.offsets()
    kernel = torch.zeros(len(offsets), 1, side, side, device=q.device)
    for i, (dr, dc) in enumerate(offsets):
        kernel[i, 0, dr + w, dc + w] = 1.0
    kernel = kernel.repeat(dim, 1, 1, 1)

    def stack(t: torch.Tensor) -> torch.Tensor:
        image = _channels_first(window, t)
        return F.conv2d(image, kernel.to(t.dtype), padding=w, groups=dim).view(image.shape[0], dim, len(offsets), -1)

    return _attend_stacked_channels(window, q, k, v, stack(k), stack(v))


FORMULATIONS: dict[str, Attend] = {
    "gathered": gathered,
    "fused": lambda window, q, k, v: window.attend(q, k, v),
    "stacked_matmul": stacked_matmul,
    "unfold": unfold,
    "depthwise_conv": depthwise_conv,
}


class GatheredWindow(GridWindow):
    """A GridWindow whose attention is the reference (to time a whole Block with it)."""

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return gathered(self, q, k, v)


def _median_seconds(calls: dict[str, Callable[[], None]], seconds: float, rounds: int) -> dict[str, float]:
    """Median seconds per call of each callable, all measured in turn in every round (one warm-up call each)."""
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}

    def once(call: Callable[[], None]) -> Callable[[], int]:
        return lambda: call() or 1

    for _ in range(rounds):
        for name, call in calls.items():
            times[name].append(1.0 / rate(once(call), seconds))
    return {name: statistics.median(t) for name, t in times.items()}


def _max_diff(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def attention_figures(side: int, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Per formulation: seconds per call, speedup over ``gathered``, cells/s, forward and forward + backward."""
    torch.manual_seed(0)
    window = GridWindow(args.prefix, side, args.window)
    shape = (args.batch, args.heads, args.prefix + side * side, args.head_dim)
    q, k, v = (torch.randn(shape, requires_grad=True) for _ in range(3))
    probe = torch.randn(shape)

    def outputs(attend: Attend) -> tuple[torch.Tensor, ...]:
        out = attend(window, q, k, v)
        return (out.detach(), *torch.autograd.grad((out * probe).sum(), (q, k, v)))

    reference = outputs(gathered)
    calls: dict[str, Callable[[], None]] = {}
    for name, attend in FORMULATIONS.items():
        def forward(attend: Attend = attend) -> None:
            with torch.no_grad():
                attend(window, q, k, v)

        def backward(attend: Attend = attend) -> None:
            torch.autograd.grad((attend(window, q, k, v) * probe).sum(), (q, k, v))

        calls[f"{name}/forward"], calls[f"{name}/forward_backward"] = forward, backward
    seconds = _median_seconds(calls, args.seconds, args.rounds)
    cells = args.batch * side * side
    figures = {}
    for name, attend in FORMULATIONS.items():
        row: dict[str, float] = {"max_abs_diff": _max_diff(outputs(attend), reference)}
        for mode in ("forward", "forward_backward"):
            s = seconds[f"{name}/{mode}"]
            row[f"{mode}_s"] = round(s, 5)
            row[f"{mode}_speedup"] = round(seconds[f"gathered/{mode}"] / s, 3)
            row[f"{mode}_cells_per_s"] = round(cells / s, 1)
        figures[name] = row
    return figures


def block_figures(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """A Block with the GridWindow mask (fused) and with the reference attention: cells/s, forward (+ backward)."""
    torch.manual_seed(0)
    side, hidden = args.block_side, args.heads * args.head_dim
    block = Block(hidden, args.heads, 4.0)
    x = torch.randn(args.batch, args.prefix + side * side, hidden, requires_grad=True)
    rotary = GridRotary(args.head_dim)(args.prefix, side * side, side)
    masks = {"fused": GridWindow(args.prefix, side, args.window),
             "gathered": GatheredWindow(args.prefix, side, args.window)}
    calls: dict[str, Callable[[], None]] = {}
    for name, mask in masks.items():
        def forward(mask: GridWindow = mask) -> None:
            with torch.no_grad():
                block(x, rotary, mask)

        def backward(mask: GridWindow = mask) -> None:
            block(x, rotary, mask).sum().backward()

        calls[f"{name}/forward"], calls[f"{name}/forward_backward"] = forward, backward
    convs = {f"conv{width}": (ConvBlock(width, args.prefix, side),
                              torch.randn(args.batch, args.prefix + side * side, width, requires_grad=True))
             for width in sorted({hidden, args.conv_hidden})}
    for name, (conv, inputs) in convs.items():
        def conv_forward(conv: ConvBlock = conv, inputs: torch.Tensor = inputs) -> None:
            with torch.no_grad():
                conv(inputs)

        def conv_backward(conv: ConvBlock = conv, inputs: torch.Tensor = inputs) -> None:
            conv(inputs).sum().backward()

        calls[f"{name}/forward"], calls[f"{name}/forward_backward"] = conv_forward, conv_backward
    seconds = _median_seconds(calls, args.seconds, args.rounds)
    cells = args.batch * side * side
    return {name: {f"{mode}_cells_per_s": round(cells / seconds[f"{name}/{mode}"], 1) for mode in
                   ("forward", "forward_backward")} | {"forward_backward_speedup": round(
                       seconds["gathered/forward_backward"] / seconds[f"{name}/forward_backward"], 3)}
            for name in [*masks, *convs]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[63, 31], help="grid sides (rows = width)")
    parser.add_argument("--window", type=int, default=1, help="Manhattan radius")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=16, help="per head; divisible by 4 (2-D rotary of the block)")
    parser.add_argument("--prefix", type=int, default=1, help="dense prefix slots before the grid")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--seconds", type=float, default=1.0, help="duration of each timed run")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per formulation (median)")
    parser.add_argument("--block-side", type=int, default=63, help="grid side of the whole-block timing")
    parser.add_argument("--conv-hidden", type=int, default=32, help="a second width of the conv-block timing")
    args = parser.parse_args(argv)
    for name in ("window", "batch", "heads", "threads", "rounds", "block_side", "conv_hidden"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if any(side < 1 for side in args.sides):
        raise ValueError(f"--sides must all be >= 1, got {args.sides}")
    if args.head_dim < 4 or args.head_dim % 4:
        raise ValueError(f"--head-dim must be a positive multiple of 4, got {args.head_dim}")
    if args.prefix < 0:
        raise ValueError(f"--prefix must be >= 0, got {args.prefix}")
    if args.seconds <= 0:
        raise ValueError(f"--seconds must be > 0, got {args.seconds}")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    attention = {f"side{side}": attention_figures(side, args) for side in args.sides}
    figures = {
        "setup": {"batch": args.batch, "heads": args.heads, "head_dim": args.head_dim, "prefix": args.prefix,
                  "window": args.window, "torch_threads": torch.get_num_threads(), "reference": "gathered"},
        "attention": attention,
        "block": {f"side{args.block_side}": block_figures(args)},
    }
    largest = attention[f"side{max(args.sides)}"]
    targets = {"fused_faster_than_gathered_forward_backward": largest["fused"]["forward_backward_speedup"] > 1.0,
               "all_formulations_match_the_reference": all(row["max_abs_diff"] < 1e-4 for side in attention.values()
                                                           for row in side.values())}
    return emit("grid_attention", figures, targets)


if __name__ == "__main__":
    main()
