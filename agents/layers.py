"""Building blocks shared by HRM, TRM and the transformer baseline.

Post-norm transformer blocks ``x = rms_norm(x + attn(x)); x = rms_norm(x + mlp(x))`` with weight-free
RMSNorm, non-causal ``scaled_dot_product_attention``, SwiGLU, rotary or learned positions, bias-free
linears and truncated LeCun-normal initialisation (the facts of the HRM reference, written afresh), and
optional local attention: a window along the sequence (:func:`local_attention_mask`), on a row-major grid of
tokens (:class:`GridWindow`) or a Sudoku's peer relation (:func:`peer_attention_mask`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

#: Standard deviation of a standard normal truncated to [-2, 2]; dividing by it restores the asked-for std.
_TRUNC2_STD = 0.8796256610342398


def trunc_normal_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    """Fill in place from a normal truncated at +-2 std, rescaled so the result really has ``std``."""
    with torch.no_grad():
        nn.init.trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0)
        return tensor.mul_(std / _TRUNC2_STD)


def linear(in_features: int, out_features: int, bias: bool = False) -> nn.Linear:
    """A linear layer with truncated LeCun-normal weights (std 1/sqrt(fan_in)) and zero bias."""
    layer = nn.Linear(in_features, out_features, bias=bias)
    trunc_normal_(layer.weight, 1.0 / math.sqrt(in_features))
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


def rms_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """RMSNorm without learned weights, computed in float32."""
    dtype = x.dtype
    x = x.float()
    return (x * torch.rsqrt(x.square().mean(-1, keepdim=True) + eps)).to(dtype)


def swiglu_hidden(hidden_size: int, expansion: float) -> int:
    """SwiGLU inner width: 2/3 of ``expansion * hidden`` rounded up to a multiple of 256 (as the reference)."""
    width = round(expansion * hidden_size * 2 / 3)
    return -(-width // 256) * 256


class SwiGLU(nn.Module):
    """Gated MLP ``down(silu(gate(x)) * up(x))`` with one fused gate/up projection."""

    def __init__(self, hidden_size: int, expansion: float):
        super().__init__()
        inner = swiglu_hidden(hidden_size, expansion)
        self.gate_up = linear(hidden_size, 2 * inner)
        self.down = linear(inner, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Rotary(nn.Module):
    """Rotary position tables computed for any length on demand (no size-dependent parameters)."""

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._cache: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def forward(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cos, sin)`` of shape ``(length, head_dim)``."""
        if self._cache is None or self._cache[0] != length or self._cache[1].device != self.inv_freq.device:
            freqs = torch.outer(torch.arange(length, dtype=torch.float32, device=self.inv_freq.device), self.inv_freq)
            emb = torch.cat([freqs, freqs], dim=-1)
            self._cache = (length, emb.cos(), emb.sin())
        return self._cache[1], self._cache[2]


class GridRotary(nn.Module):
    """Rotary tables of a row-major grid ``width`` wide: half of each head's rotation pairs turn with the row,
    half with the column, so attention between two cells depends on their (row, column) offset only, whatever
    the grid's width. A model trained on one padded grid then reads the same neighbours on a wider one (with 1-D
    positions the cell below is ``width`` tokens further, a different rotation on every width). Prefix slots get
    no rotation."""

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        if head_dim % 4:
            raise ValueError(f"2-D rotary positions need a head dimension divisible by 4, got {head_dim}")
        quarter = head_dim // 4
        inv_freq = 1.0 / (base ** (torch.arange(quarter, dtype=torch.float32) / quarter))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._cache: tuple[tuple[int, int, int], torch.Tensor, torch.Tensor] | None = None

    def forward(self, prefix: int, tokens: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cos, sin)`` of shape ``(prefix + tokens, head_dim)`` for ``tokens`` grid cells after ``prefix`` slots."""
        key = (prefix, tokens, width)
        if self._cache is None or self._cache[0] != key or self._cache[1].device != self.inv_freq.device:
            cell = torch.arange(tokens, device=self.inv_freq.device)
            rows = torch.cat([torch.zeros(prefix, device=cell.device), (cell // width).float()])
            cols = torch.cat([torch.zeros(prefix, device=cell.device), (cell % width).float()])
            freqs = torch.cat([torch.outer(rows, self.inv_freq), torch.outer(cols, self.inv_freq)], dim=-1)
            emb = torch.cat([freqs, freqs], dim=-1)
            self._cache = (key, emb.cos(), emb.sin())
        return self._cache[1], self._cache[2]


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` of shape (batch, heads, seq, head_dim) by the position tables."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


ATTENTION_DIRECTIONS = ("both", "earlier", "later")


@lru_cache(maxsize=64)
def local_attention_mask(length: int, prefix: int, window: int, device: torch.device,
                         direction: str = "both") -> torch.Tensor:
    """Boolean (length, length) mask, True = may attend: token ``i`` sees tokens ``j`` with ``|i - j| <= window``.

    The first ``prefix`` positions (puzzle / summary slots) see every position; tokens do not see them, so a
    token's state depends on its neighbourhood only and information crosses the sequence one window per block
    application: a recurrent model then needs depth proportional to the puzzle, and its rule does not depend on
    the length it was trained on. ``direction`` ``"earlier"`` / ``"later"`` keeps only ``j <= i`` / ``j >= i``:
    information then flows one way along the sequence, as in a scan (Hanoi's target pegs run from the largest
    disk, the last token, down to the smallest).
    """
    if length < 1 or not 0 <= prefix <= length or window < 1:
        raise ValueError(f"need length >= 1, 0 <= prefix <= length, window >= 1; got {length}, {prefix}, {window}")
    if direction not in ATTENTION_DIRECTIONS:
        raise ValueError(f"direction must be one of {ATTENTION_DIRECTIONS}, got {direction!r}")
    index = torch.arange(length, device=device)
    offset = index[None, :] - index[:, None]  # j - i
    near = offset.abs() <= window
    if direction == "earlier":
        near &= offset <= 0
    elif direction == "later":
        near &= offset >= 0
    tokens = index >= prefix
    return torch.where(tokens[:, None], near & tokens[None, :], True)


@lru_cache(maxsize=16)
def peer_attention_mask(length: int, prefix: int, box: int, device: torch.device) -> torch.Tensor:
    """Boolean (length, length) mask, True = may attend, for the tokens of an ``n x n`` Sudoku (``n = box**2``,
    row-major, one token per cell) after ``prefix`` slots: a cell sees its peers (the other cells of its row,
    column and ``box x box`` box), itself and the prefix slots; the prefix slots see everything.

    One block application then reads exactly what a candidate elimination needs (21 cells of a 9x9 grid), and
    the recurrence propagates it; the slots carry what holds for the whole puzzle. ``length`` must be
    ``prefix + n * n`` (``ValueError``)."""
    if box < 2 or prefix < 0 or length != prefix + box**4:
        raise ValueError(f"a peer mask needs box >= 2, prefix >= 0 and length = prefix + box**4 (one token per cell); "
                         f"got length {length}, prefix {prefix}, box {box}")
    n = box * box
    cell = torch.arange(n * n, device=device)
    row, col = cell // n, cell % n
    unit_box = row // box * box + col // box
    peers = (row[:, None] == row) | (col[:, None] == col) | (unit_box[:, None] == unit_box)
    mask = torch.ones(length, length, dtype=torch.bool, device=device)
    mask[prefix:, prefix:] = peers
    return mask


Region = tuple[tuple[slice, slice], tuple[slice, slice]]


class _GridAttention(torch.autograd.Function):
    """Softmax attention of each grid cell over the cells at fixed (row, column) offsets, with a hand-written
    backward. ``regions`` pairs, per offset, the cells whose shifted cell lies on the grid with those shifted
    cells (no padding: an edge cell never sees a cell off the grid, nor wraps around). Every score, product and
    gradient is accumulated in place into one buffer per tensor, so forward and backward keep only q, k, v and
    the weights, where autograd through the per-offset slices would allocate a full gradient per offset
    (``benchmarks.grid_attention``: about 2x faster forward + backward at side 63 on one thread)."""

    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, regions: list[Region]) -> torch.Tensor:
        """``q, k, v`` of shape (batch, heads, rows, width, head_dim) -> output of the same shape."""
        batch, heads, rows, width, dim = q.shape
        scale = 1.0 / math.sqrt(dim)
        scores = q.new_full((len(regions), batch, heads, rows, width), float("-inf"))
        for i, ((qr, qc), (kr, kc)) in enumerate(regions):
            scores[i, :, :, qr, qc] = torch.linalg.vecdot(q[:, :, qr, qc], k[:, :, kr, kc])
        weights = scores.mul_(scale).softmax(0)
        out = q.new_zeros(q.shape)
        for i, ((qr, qc), (kr, kc)) in enumerate(regions):
            out[:, :, qr, qc].addcmul_(weights[i, :, :, qr, qc, None], v[:, :, kr, kc])
        ctx.save_for_backward(q, k, v, weights)
        ctx.regions, ctx.scale = regions, scale
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None]:
        q, k, v, weights = ctx.saved_tensors
        grad_weights = torch.zeros_like(weights)
        grad_q, grad_k, grad_v = (torch.zeros(t.shape, dtype=t.dtype, device=t.device) for t in (q, k, v))
        for i, ((qr, qc), (kr, kc)) in enumerate(ctx.regions):
            grad_weights[i, :, :, qr, qc] = torch.linalg.vecdot(grad_out[:, :, qr, qc], v[:, :, kr, kc])
            grad_v[:, :, kr, kc].addcmul_(weights[i, :, :, qr, qc, None], grad_out[:, :, qr, qc])
        grad_scores = weights * (grad_weights - (grad_weights * weights).sum(0, keepdim=True)) * ctx.scale
        for i, ((qr, qc), (kr, kc)) in enumerate(ctx.regions):
            grad = grad_scores[i, :, :, qr, qc, None]
            grad_q[:, :, qr, qc].addcmul_(grad, k[:, :, kr, kc])
            grad_k[:, :, kr, kc].addcmul_(grad, q[:, :, qr, qc])
        return grad_q, grad_k, grad_v, None


@dataclass(frozen=True)
class GridWindow:
    """Local attention on a row-major grid of tokens ``width`` wide: token (r, c) attends to the tokens within
    Manhattan distance ``window`` of it (no wrap-around at the edges), so on a maze or city grid information
    crosses ``window`` cells per block application, along the moves (``window=1``: the 4 neighbours and itself).

    As with :func:`local_attention_mask`, the first ``prefix`` positions attend to every position and tokens do
    not see them. Each offset's scores and weighted values are computed on shifted slices of the grid,
    O(T * window^2) per head instead of the O(T^2) of a masked dense attention (:class:`_GridAttention`; no
    double backward).
    """

    prefix: int
    width: int
    window: int

    def __post_init__(self) -> None:
        if self.prefix < 0 or self.width < 1 or self.window < 1:
            raise ValueError(f"need prefix >= 0, width >= 1, window >= 1; got {self.prefix}, {self.width}, {self.window}")

    def offsets(self) -> list[tuple[int, int]]:
        """The (row, column) offsets a token attends to, itself included."""
        w = self.window
        return [(dr, dc) for dr in range(-w, w + 1) for dc in range(-w, w + 1) if abs(dr) + abs(dc) <= w]

    def regions(self, rows: int) -> list[Region]:
        """Per offset that fits on a ``rows`` x ``width`` grid: ``((rows, cols) of the attending cells, (rows,
        cols) of the cells they see)``, the second the first shifted by the offset, both on the grid."""
        def span(shift: int, size: int) -> tuple[slice, slice]:
            return slice(max(0, -shift), size - max(0, shift)), slice(max(0, shift), size - max(0, -shift))

        out = []
        for dr, dc in self.offsets():
            if abs(dr) < rows and abs(dc) < self.width:
                (qr, kr), (qc, kc) = span(dr, rows), span(dc, self.width)
                out.append(((qr, qc), (kr, kc)))
        return out

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attention output for queries, keys and values of shape (batch, heads, prefix + T, head_dim)."""
        batch, heads, length, dim = q.shape
        tokens = length - self.prefix
        if tokens < 1 or tokens % self.width:
            raise ValueError(f"a grid of width {self.width} needs a positive multiple of {self.width} tokens after "
                             f"the {self.prefix} prefix slots, got {tokens}")
        rows = tokens // self.width

        def grid(t: torch.Tensor) -> torch.Tensor:
            return t[:, :, self.prefix:].reshape(batch, heads, rows, self.width, dim)

        out = _GridAttention.apply(grid(q), grid(k), grid(v), self.regions(rows)).reshape(batch, heads, tokens, dim)
        if self.prefix:
            out = torch.cat([F.scaled_dot_product_attention(q[:, :, : self.prefix], k, v), out], dim=2)
        return out


@dataclass(frozen=True)
class FrontGates:
    """What a :class:`FrontBlock` lets its front do on each grid cell, (B, 1, H, W) in [0, 1] each: ``source``
    (a front starts here: the goal) and ``passable`` (a front may enter: floor, not wall). Read from the input tokens
    alone (:class:`agents.hrm.HRM`), so they are the same at every depth and no cell can be made a source by what the
    recurrence has computed."""

    source: torch.Tensor
    passable: torch.Tensor


@dataclass(frozen=True)
class WaveGates:
    """What a :class:`WaveBlock`'s relaxation may do on each grid cell, (B, ., H, W) each: ``source`` (1 channel in
    [0, 1]: the goal, at cost 0), ``passable`` (1, in [0, 1]: a route may use the cell), ``cost`` (1, >= 0: the time
    to enter the cell) and ``exits`` (4, in [0, 1], :attr:`MaxBlock.OFFSETS` order: a move in direction ``d`` may
    leave the cell and may enter it; a move from ``p`` in direction ``d`` needs ``exits[d]`` at ``p`` and at its
    target, as a one-way street bars the move against it into and out of its cells). Read from the input tokens and
    what holds for the whole puzzle (:class:`agents.hrm.HRM`), never from the recurrence."""

    source: torch.Tensor
    passable: torch.Tensor
    cost: torch.Tensor
    exits: torch.Tensor

    def allowed(self) -> torch.Tensor:
        """(4, B, 1, H, W) in [0, 1]: the move from each cell in each direction is allowed (soft: a product of the
        gates, 0 off the grid)."""
        open_ = (self.exits * self.passable).transpose(0, 1).unsqueeze(2)  # (4, B, 1, H, W)
        return open_ * torch.stack([neighbours(open_[d])[d] for d in range(4)])

    def hard(self) -> WaveGates:
        """The gates the relaxation applies: source, passable and exits rounded to 0 / 1, the cost as it is; no
        gradient (:func:`wave_gate_loss` fits them)."""
        def bit(gate: torch.Tensor) -> torch.Tensor:
            return (gate.detach() > 0.5).to(gate.dtype)

        return WaveGates(bit(self.source), bit(self.passable), self.cost.detach(), bit(self.exits))


def neighbours(image: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """(B, C, H, W) -> (4, B, C, H, W): each cell's neighbour in every :attr:`MaxBlock.OFFSETS` direction (``fill``
    off the grid)."""
    rows, width = image.shape[-2:]
    padded = F.pad(image, (1, 1, 1, 1), value=fill)
    return torch.stack([padded[..., 1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + width] for dr, dc in MaxBlock.OFFSETS])


def wave_gate_loss(gates: WaveGates, cost_to_go: torch.Tensor, optimal: torch.Tensor) -> torch.Tensor:
    """(B,) the gates fitted to an oracle's cost to the goal ``cost_to_go`` (B, 1, H, W; NaN where the goal cannot
    be reached) and its optimal moves ``optimal`` (4, B, 1, H, W; :attr:`MaxBlock.OFFSETS` order): ``passable`` =
    the cell can reach the goal, ``source`` = its cost to go is 0; an optimal move is allowed and its target's cost is
    the step it saves (``cost_to_go(p) - cost_to_go(q)``); a move that is not optimal but would reach the goal as
    soon at the cost now predicted for its target is barred (had it been allowed, it would be optimal). Costs are
    regressed in units of the batch's mean optimal step."""
    eps = 1e-6
    known = ~torch.isnan(cost_to_go)
    target = torch.nan_to_num(cost_to_go)
    optimal = optimal.bool() & known

    def bce(p: torch.Tensor, label: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        loss = F.binary_cross_entropy(p.clamp(eps, 1 - eps), label.to(p.dtype), reduction="none")
        if loss.dim() == 5:  # per move: summed over the directions
            loss, where = torch.where(where, loss, 0).sum(0), where.any(0)
        return torch.where(where, loss, 0).flatten(1).sum(1) / where.flatten(1).sum(1).clamp_min(1)

    everywhere = torch.ones_like(known)
    after = neighbours(target)  # (4, B, 1, H, W): the neighbour's cost to go
    usable = (neighbours(known.float()) > 0.5) & known
    saved = target - after  # what a move saves: its target's cost if it is optimal
    scale = saved[optimal].mean().clamp_min(1e-6) if optimal.any() else target.new_tensor(1.0)
    entry = neighbours(gates.cost)  # the cost of entering each neighbour
    error = (entry - saved).abs() / scale  # L1: a cost is a table entry, to be met exactly
    price = torch.where(optimal, error, 0).sum(0).flatten(1).sum(1) / optimal.sum(0).flatten(1).sum(1).clamp_min(1)
    barred = usable & ~optimal & (entry.detach() - saved <= 0.1 * scale)
    allowed = gates.allowed()
    moves = bce(allowed, optimal, optimal | barred)
    return (bce(gates.passable, known, everywhere) + bce(gates.source, known & (target == 0), known) + price
            + moves)


Mask = torch.Tensor | GridWindow | FrontGates | WaveGates | None


class Attention(nn.Module):
    """Non-causal multi-head self-attention with a fused bias-free QKV projection (optionally masked: a boolean
    (T, T) mask, True = may attend, or a :class:`GridWindow`)."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = linear(hidden_size, 3 * hidden_size)
        self.out = linear(hidden_size, hidden_size)

    def forward(
        self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None, mask: Mask = None
    ) -> torch.Tensor:
        batch, length, hidden = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.num_heads, hidden // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        if isinstance(mask, GridWindow):
            y = mask.attend(q, k, v)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=False)
        return self.out(y.transpose(1, 2).reshape(batch, length, hidden))


class Block(nn.Module):
    """Post-norm transformer block: ``x = norm(x + attn(x)); x = norm(x + mlp(x))``."""

    def __init__(self, hidden_size: int, num_heads: int, expansion: float):
        super().__init__()
        self.attn = Attention(hidden_size, num_heads)
        self.mlp = SwiGLU(hidden_size, expansion)

    def forward(
        self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None, mask: Mask = None
    ) -> torch.Tensor:
        x = rms_norm(x + self.attn(x, rotary, mask))
        return rms_norm(x + self.mlp(x))


class GridBlock(nn.Module):
    """A post-norm residual block over the tokens after ``prefix_len`` slots read as a row-major grid ``width`` wide;
    subclasses define :meth:`update` (B, C, H, W) -> (B, C, H, W). The prefix slots are not on the grid: every cell
    first adds a linear map of slot 0 (what holds for the whole puzzle, e.g. the city's vehicle, reaches every cell
    at once) and the slots add the grid's mean (a summary for the Q-head). The weights are width-free."""

    def __init__(self, hidden_size: int, prefix_len: int, width: int):
        super().__init__()
        if width < 1:
            raise ValueError(f"a {type(self).__name__} needs the grid width (attention_grid >= 1), got {width}")
        self.prefix_len, self.width = prefix_len, width
        self.broadcast = linear(hidden_size, hidden_size)

    def update(self, image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def image(self, x: torch.Tensor) -> torch.Tensor:
        """(B, prefix + T, C) -> (B, C, H, W): the grid's tokens as an image ``width`` wide."""
        batch, length, hidden = x.shape
        return x[:, self.prefix_len:].transpose(1, 2).reshape(batch, hidden, -1, self.width)

    @staticmethod
    def check_gates(mask: Mask, kind: type, block: str) -> None:
        """``ValueError`` unless ``mask`` holds the gates ``kind`` a gated block (``block``) needs."""
        if not isinstance(mask, kind):
            raise ValueError(f"a {block.capitalize()}Block needs its {kind.__name__} as mask (HRM / TRM with "
                             f"block='{block}'), got {type(mask).__name__}")

    def forward(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: Mask = None) -> torch.Tensor:
        batch, length, hidden = x.shape
        cells = length - self.prefix_len
        image = self.image(x)
        if self.prefix_len:
            image = image + self.broadcast(x[:, 0]).view(batch, hidden, 1, 1)
        image = image + self.update(image)
        grid = image.reshape(batch, hidden, cells).transpose(1, 2)
        prefix = x[:, : self.prefix_len] + grid.mean(1, keepdim=True)
        return rms_norm(torch.cat([prefix, grid], dim=1))


class ConvBlock(GridBlock):
    """Two 3x3 convolutions over the grid (the recurrent block of Bansal et al. 2022): a cell reads the cells within
    2 steps (a 5x5 field), and one application costs ``2 * 9 * hidden**2`` multiply-adds per cell, no attention and
    no wide MLP."""

    def __init__(self, hidden_size: int, prefix_len: int, width: int):
        super().__init__(hidden_size, prefix_len, width)
        self.conv1 = nn.Conv2d(hidden_size, hidden_size, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(hidden_size, hidden_size, 3, padding=1, bias=False)

    def update(self, image: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.silu(self.conv1(image)))


class MaxBlock(GridBlock):
    """A cell update that is a max over messages from its 4 grid neighbours: message ``d`` = ``other_d(neighbour d)
    + offset_d`` (a 1x1 map per direction), the update ``out(silu(own(cell) + max_d))``. A min-plus (Bellman-Ford)
    relaxation, value iteration in the form of Tamar et al.'s VIN, is one application with the right weights: a
    distance channel ``-v`` and a move's cost give ``max_d(-v_neighbour - cost_d) = -v'``, so routing needs no
    learned approximation of a minimum. A cell reads 1 step per application (a 3x3 cross) at ``6 * hidden**2``
    multiply-adds per cell."""

    #: (row, column) offset of the neighbour each of the 4 messages comes from: up, right, down, left.
    OFFSETS = ((-1, 0), (0, 1), (1, 0), (0, -1))

    def __init__(self, hidden_size: int, prefix_len: int, width: int):
        super().__init__(hidden_size, prefix_len, width)
        self.own = nn.Conv2d(hidden_size, hidden_size, 1)
        self.other = nn.Conv2d(hidden_size, 4 * hidden_size, 1, bias=False)
        self.offset = nn.Parameter(torch.zeros(4, hidden_size, 1, 1))
        self.out = nn.Conv2d(hidden_size, hidden_size, 1, bias=False)

    def messages(self, image: torch.Tensor, heard: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W): ``max_d(other_d(neighbour d) + offset_d [+ self.heard_d * heard_d])``
        (``heard``: (4, B, 1, H, W), a per-direction mark a subclass weighs), an off-grid neighbour's message never
        winning. Each direction's messages are shifted into place one at a time: no padded copy of all four."""
        batch, _, rows, width = image.shape
        other = self.other(image).view(batch, 4, -1, rows, width)
        best = None
        for d, (dr, dc) in enumerate(self.OFFSETS):  # cell (r, c) hears (r + dr, c + dc)
            shifted = other[:, d, :, max(dr, 0) : rows + min(dr, 0), max(dc, 0) : width + min(dc, 0)]
            message = F.pad(shifted, (max(-dc, 0), max(dc, 0), max(-dr, 0), max(dr, 0)), value=-1e4) + self.offset[d]
            if heard is not None:
                message = message + self.heard[d] * heard[d]
            best = message if best is None else torch.maximum(best, message)
        return best

    def relax(self, image: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W): ``own(cell) + max_d(other_d(neighbour d) + offset_d)``."""
        return self.own(image) + self.messages(image)

    def update(self, image: torch.Tensor) -> torch.Tensor:
        return self.out(F.silu(self.relax(image)))


class FrontBlock(MaxBlock):
    """A :class:`MaxBlock` whose channel 0 is a reached bit that can only spread as a front: a cell is reached
    once it was, once it is a source, or once a neighbour was reached and the cell lets the front in: ``r' = max(r,
    source, passable * max_d r(neighbour d))`` with the :class:`FrontGates` passed as ``mask``, one cell per
    application, so no cell can be called reached before a path of reached cells from a source leads to it.
    Channels 1-4 record where the front came from: on the application that reaches a cell, the directions
    (:attr:`OFFSETS` order) of its neighbours reached before it, held from then on. From a single source they are
    a breadth-first search's parent pointers, the first steps of every shortest path to the source, which a head
    can read at any distance. The other channels ``f`` are the max block's update with each neighbour's bit in its
    message and the cell's own bit in its sum; only they are normalised. The bit is 0 or 1 (the soft OR ``1 - (1 -
    r)(1 - source)(1 - passable * max_d r_d)`` rounded, its gradient passed straight through to every gate; the
    directions carry none), so the block's input, a sum of two carried states, read clamped to [0, 1] is their OR
    (:class:`agents.hrm.HRM` keeps the input embedding and the initial states at 0 there); a soft bit would grow
    where the gates are near 0."""

    MARKS = 5  # channels with no features: the bit and the 4 directions it came from

    def __init__(self, hidden_size: int, prefix_len: int, width: int):
        if hidden_size <= self.MARKS:
            raise ValueError(f"a FrontBlock needs hidden_size >= {self.MARKS + 1} (the bit, the 4 directions it came "
                             f"from and features), got {hidden_size}")
        features = hidden_size - self.MARKS
        super().__init__(features, prefix_len, width)
        self.broadcast = linear(hidden_size, features)
        self.heard = nn.Parameter(torch.zeros(4, features, 1, 1))  # a reached neighbour's mark, per direction
        self.own_bit = nn.Parameter(torch.zeros(1, features, 1, 1))  # the cell's own bit

    def forward(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: Mask = None) -> torch.Tensor:
        self.check_gates(mask, FrontGates, "front")
        batch, length, hidden = x.shape
        cells = length - self.prefix_len
        image = self.image(x)
        marks, feats = image[:, : self.MARKS].clamp(0.0, 1.0), image[:, self.MARKS:]
        bit, came = marks[:, :1], marks[:, 1:]
        if self.prefix_len:
            feats = feats + self.broadcast(x[:, 0]).view(batch, -1, 1, 1)
        around = neighbours(bit)  # (4, B, 1, H, W)
        soft = 1.0 - (1.0 - bit) * (1.0 - mask.source) * (1.0 - mask.passable * around.amax(0))  # OR of the three
        new_bit = soft + ((soft > 0.5).to(soft.dtype) - soft).detach()  # a bit; the gradient is the soft OR's
        newly = (new_bit - bit).detach().clamp(min=0.0)  # reached on this application
        came = (came + newly * around[:, :, 0].transpose(0, 1)).detach().clamp(max=1.0)
        best = self.messages(feats, around)
        feats = rms_norm((feats + self.out(F.silu(self.own(feats) + self.own_bit * bit + best))).permute(0, 2, 3, 1))
        grid = torch.cat([new_bit.permute(0, 2, 3, 1), came.permute(0, 2, 3, 1), feats], dim=-1)
        grid = grid.reshape(batch, cells, hidden)
        prefix = x[:, : self.prefix_len] + grid.mean(1, keepdim=True)
        return torch.cat([rms_norm(prefix), grid], dim=1)


class WaveBlock(MaxBlock):
    """A :class:`MaxBlock` whose channel 0 is a cost to the goal that can only shrink by a min-plus (Bellman-Ford)
    relaxation over the moves the :class:`WaveGates` (passed as ``mask``) allow: ``v' = min(v, min_d allowed_d *
    (cost(neighbour d) + v(neighbour d)))``, 0 at a source, :attr:`UNREACHED` where no allowed path has led yet;
    ``relax_steps`` relaxations per application, so the costs propagate as far as the recurrence runs and no
    farther. Channels 1-4 are the moves (:attr:`OFFSETS` order) that attain the minimum: after enough applications
    every optimal move, which a head reads at any distance. A weighted, directed :class:`FrontBlock`: the time and
    the rules of every move (one-way streets, the vehicle's barred streets) come from the gates, which read the input
    alone. The block's input is a sum of two carried states; :meth:`combine` takes the smaller cost of the two.
    The other channels are the max block's update with each optimal move in its message and whether the cell is
    reached in its sum; only they are normalised. Nothing in channels 0-4 carries a gradient (the gates are fitted
    by :func:`wave_gate_loss`)."""

    MARKS = 5  # channels with no features: the cost to go and the 4 optimal moves
    UNREACHED = 1e4  # the cost of a cell no allowed path from a source has reached

    def __init__(self, hidden_size: int, prefix_len: int, width: int, relax_steps: int = 1):
        if hidden_size <= self.MARKS:
            raise ValueError(f"a WaveBlock needs hidden_size >= {self.MARKS + 1} (the cost, the 4 optimal moves and "
                             f"features), got {hidden_size}")
        if isinstance(relax_steps, bool) or not isinstance(relax_steps, int) or relax_steps < 1:
            raise ValueError(f"relax_steps must be a positive int, got {relax_steps!r}")
        features = hidden_size - self.MARKS
        super().__init__(features, prefix_len, width)
        self.relax_steps = relax_steps
        self.broadcast = linear(hidden_size, features)
        self.heard = nn.Parameter(torch.zeros(4, features, 1, 1))  # an optimal move to that neighbour
        self.own_bit = nn.Parameter(torch.zeros(1, features, 1, 1))  # the cell is reached

    def combine(self, state: torch.Tensor, injection: torch.Tensor) -> torch.Tensor:
        """``state + injection``, but the grid's cost channel is the smaller of the two (an OR of what each knows)."""
        cost = torch.minimum(state[:, self.prefix_len:, :1], injection[:, self.prefix_len:, :1])
        x = state + injection
        return torch.cat([x[:, : self.prefix_len], torch.cat([cost, x[:, self.prefix_len:, 1:]], -1)], 1)

    def relax_costs(self, cost: torch.Tensor, gates: WaveGates) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, H, W) costs to go after ``relax_steps`` relaxations, and (4, B, 1, H, W) the optimal moves."""
        allowed = gates.allowed() > 0.5
        step = neighbours(gates.cost)
        source = gates.source > 0.5
        for _ in range(self.relax_steps):
            via = torch.where(allowed, step + neighbours(cost, self.UNREACHED), self.UNREACHED)
            cost = torch.where(source, 0.0, torch.minimum(cost, via.amin(0)).clamp(max=self.UNREACHED))
        via = torch.where(allowed, step + neighbours(cost, self.UNREACHED), self.UNREACHED)
        reached = cost < self.UNREACHED / 2
        best = allowed & reached & ~source & (via <= cost + 1e-4 * (1.0 + cost))
        return cost, best.to(cost.dtype)

    def forward(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: Mask = None) -> torch.Tensor:
        self.check_gates(mask, WaveGates, "wave")
        batch, length, hidden = x.shape
        cells = length - self.prefix_len
        image = self.image(x)
        with torch.no_grad():
            cost, best = self.relax_costs(image[:, :1].detach(), mask.hard())
        reached = (cost < self.UNREACHED / 2).to(cost.dtype)
        feats = image[:, self.MARKS:]
        if self.prefix_len:
            feats = feats + self.broadcast(x[:, 0]).view(batch, -1, 1, 1)
        message = self.messages(feats, best)
        feats = rms_norm((feats + self.out(F.silu(self.own(feats) + self.own_bit * reached + message))).permute(0, 2, 3, 1))
        marks = torch.cat([cost, best.squeeze(2).transpose(0, 1)], dim=1).permute(0, 2, 3, 1)
        grid = torch.cat([marks, feats], dim=-1).reshape(batch, cells, hidden)
        seen = torch.cat([grid[..., :1] * reached.flatten(1).unsqueeze(-1), grid[..., 1:]], dim=-1)  # costs reached
        prefix = x[:, : self.prefix_len]
        prefix = torch.cat([torch.zeros_like(prefix[..., :1]), prefix[..., 1:]], -1) + seen.mean(1, keepdim=True)
        return torch.cat([rms_norm(prefix), grid], dim=1)


BLOCKS = ("attention", "conv", "max", "front", "wave")
GRID_BLOCKS = {"conv": ConvBlock, "max": MaxBlock, "front": FrontBlock, "wave": WaveBlock}


class ReasoningModule(nn.Module):
    """A stack of blocks applied to ``state + injection`` (additive input injection; a block with a ``combine``
    method, :class:`WaveBlock`, merges them itself): transformer blocks, or with ``block="conv"`` / ``"max"`` /
    ``"front"`` / ``"wave"`` grid blocks on the grid ``width`` wide after ``prefix_len`` slots."""

    def __init__(self, num_layers: int, hidden_size: int, num_heads: int, expansion: float, block: str = "attention",
                 prefix_len: int = 0, width: int = 0, relax_steps: int = 1):
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS}, got {block!r}")
        extra = {"relax_steps": relax_steps} if block == "wave" else {}
        self.layers = nn.ModuleList(
            Block(hidden_size, num_heads, expansion) if block == "attention"
            else GRID_BLOCKS[block](hidden_size, prefix_len, width, **extra) for _ in range(num_layers))

    def forward(
        self,
        state: torch.Tensor,
        injection: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor] | None,
        mask: Mask = None,
    ) -> torch.Tensor:
        combine = getattr(self.layers[0], "combine", None)
        x = combine(state, injection) if combine is not None else state + injection
        for layer in self.layers:
            x = layer(x, rotary, mask)
        return x
