"""Shared layers: grid-window attention against a dense Manhattan mask and the benchmark's formulations, edges,
prefix, bad input; the Sudoku peer mask against the peer relation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from agents.layers import (Block, ConvBlock, FrontBlock, FrontGates, WaveBlock, WaveGates, wave_gate_loss, GridRotary, GridWindow, MaxBlock, ReasoningModule,
                           peer_attention_mask)
from benchmarks.grid_attention import FORMULATIONS, GatheredWindow


def manhattan_mask(prefix: int, rows: int, width: int, window: int) -> torch.Tensor:
    """The dense (L, L) mask GridWindow stands for: the prefix sees all, tokens see grid cells within ``window``."""
    cells = torch.arange(rows * width)
    r, c = cells // width, cells % width
    near = (r[:, None] - r[None]).abs() + (c[:, None] - c[None]).abs() <= window
    length = prefix + rows * width
    mask = torch.zeros(length, length, dtype=torch.bool)
    mask[:prefix] = True
    mask[prefix:, prefix:] = near
    return mask


# Edges everywhere: non-square grids (rows != width), one row / one column, grids narrower than the window,
# with and without prefix slots, windows 1 and 2.
GRIDS = [(1, 4, 5, 1), (2, 3, 3, 2), (0, 5, 4, 1), (1, 1, 6, 1), (1, 6, 1, 2), (0, 2, 7, 2), (3, 7, 5, 2),
         (1, 3, 3, 3), (1, 2, 8, 3)]


def _outputs_and_grads(attend, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
    out = attend(q, k, v)
    probe = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view(out.shape)  # every output's gradient differs
    return (out, *torch.autograd.grad((out * probe).sum(), (q, k, v)))


@pytest.mark.parametrize("prefix, rows, width, window", GRIDS)
def test_grid_window_equals_dense_masked_attention(prefix: int, rows: int, width: int, window: int) -> None:
    """Outputs and q/k/v gradients equal a dense attention under the Manhattan mask (float64, tight)."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, prefix + rows * width, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    mask = manhattan_mask(prefix, rows, width, window)
    ours = _outputs_and_grads(GridWindow(prefix, width, window).attend, q, k, v)
    dense = _outputs_and_grads(lambda *qkv: F.scaled_dot_product_attention(*qkv, attn_mask=mask), q, k, v)
    for a, b in zip(ours, dense):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("prefix, rows, width, window", GRIDS)
@pytest.mark.parametrize("name", sorted(FORMULATIONS))
def test_benchmark_formulations_equal_grid_window(name: str, prefix: int, rows: int, width: int, window: int) -> None:
    """Every formulation benchmarks.grid_attention times computes GridWindow's outputs and gradients."""
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 3, prefix + rows * width, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    grid = GridWindow(prefix, width, window)
    theirs = _outputs_and_grads(lambda *qkv: FORMULATIONS[name](grid, *qkv), q, k, v)
    for a, b in zip(_outputs_and_grads(grid.attend, q, k, v), theirs):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_grid_window_gradcheck_on_strided_inputs() -> None:
    """Numerical gradients agree, on q/k/v that are strided views as in Attention (a permuted fused projection)."""
    torch.manual_seed(0)
    qkv = torch.randn(1, 1 + 2 * 3, 3, 2, 4, dtype=torch.float64, requires_grad=True)  # batch, L, (q, k, v), heads, dim
    window = GridWindow(1, 3, 2)

    def attend(qkv: torch.Tensor) -> torch.Tensor:
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        return window.attend(q, k, v)

    assert torch.autograd.gradcheck(attend, (qkv,))


def test_block_with_grid_window_matches_the_reference_attention() -> None:
    """A whole Block (rotary, fused projection, MLP) gives the same output and parameter gradients either way."""
    torch.manual_seed(0)
    block = Block(16, 2, 2.0).double()
    x = torch.randn(2, 1 + 5 * 3, 16, dtype=torch.float64)
    rotary = tuple(t.double() for t in GridRotary(8)(1, 15, 3))
    results = []
    for mask in (GridWindow(1, 3, 1), GatheredWindow(1, 3, 1)):
        out = block(x, rotary, mask)
        results.append((out, *torch.autograd.grad(out.square().sum(), list(block.parameters()))))
    assert all(torch.allclose(a, b, rtol=1e-10, atol=1e-12) for a, b in zip(*results))


def test_grid_window_does_not_wrap_around_rows() -> None:
    """The last cell of a row and the first of the next are neighbours in the sequence, not on the grid."""
    window = GridWindow(0, 4, 1)
    q, k, v = torch.zeros(1, 1, 8, 2), torch.zeros(1, 1, 8, 2), torch.zeros(1, 1, 8, 2)
    v[0, 0, 4] = 1.0  # cell (1, 0)
    out = window.attend(q, k, v)[0, 0, :, 0]
    assert out[3] == 0 and out[0] > 0 and out[5] > 0  # (0, 3) does not see it; (0, 0) above and (1, 1) do
    assert window.offsets() == [(-1, 0), (0, -1), (0, 0), (0, 1), (1, 0)]


def test_grid_window_bad_input() -> None:
    with pytest.raises(ValueError, match="width"):
        GridWindow(1, 0, 1)
    with pytest.raises(ValueError, match="multiple of 4"):
        GridWindow(1, 4, 1).attend(*(torch.zeros(1, 1, 8, 2) for _ in range(3)))


def reads(kind: type, hidden: int, cells: list[tuple[int, int]]) -> list[tuple[bool, bool]]:
    """For a block of ``kind`` over a 6x7 grid after one prefix slot: per (row, col), whether changing that cell's
    input changes the output of cell (2, 2), and of the prefix slot; last, whether a change of slot 0 changes
    cell (2, 2) (the puzzle-wide broadcast)."""
    torch.manual_seed(0)
    prefix, rows, width = 1, 6, 7
    block = kind(hidden, prefix, width)
    x = torch.randn(1, prefix + rows * width, hidden)
    base = block(x)
    cell = prefix + 2 * width + 2

    def changed(token: int) -> tuple[bool, bool]:
        y = x.clone()
        y[0, token] += 3.0
        out = block(y)
        return (not torch.allclose(out[0, cell], base[0, cell]), not torch.allclose(out[0, 0], base[0, 0]))

    return [changed(prefix + row * width + col) for row, col in cells] + [changed(0)[:1]]


def test_conv_block_reads_the_5x5_neighbourhood_only() -> None:
    """One ConvBlock application (two 3x3 convolutions): cell (2, 2) reads a cell two steps away diagonally, not
    one three rows or columns away; the prefix slot reads every cell; slot 0 reaches every cell."""
    assert reads(ConvBlock, 8, [(4, 4), (2, 5), (5, 2)]) == [(True, True), (False, True), (False, True), (True,)]


def test_max_block_reads_the_4_neighbours_only() -> None:
    """One MaxBlock application: cell (2, 2) reads itself and its neighbours one step up, down, left and right,
    not a diagonal neighbour nor a cell two steps away; the prefix slot reads every cell; slot 0 reaches every cell."""
    near = [(1, 2), (3, 2), (2, 1), (2, 3), (2, 2)]
    far = [(3, 3), (1, 1), (2, 4), (4, 2)]
    assert reads(MaxBlock, 16, near + far) == [(True, True)] * 5 + [(False, True)] * 4 + [(True,)]


def test_max_block_update_is_a_max_over_the_neighbour_messages() -> None:
    """``relax``, the update before the output map, is ``own(cell) + max_d(other_d(neighbour d) + offset_d)``: with
    identity maps and a very negative offset for every direction but "right", a cell takes its right neighbour's
    value plus its own; the last column, with no right neighbour, its own plus the best other offset."""
    prefix, rows, width, hidden = 0, 2, 3, 1
    block = MaxBlock(hidden, prefix, width)
    with torch.no_grad():
        block.own.weight.fill_(1.0)
        block.own.bias.zero_()
        block.other.weight.fill_(1.0)
        block.offset.copy_(torch.tensor([-50.0, 0.0, -50.0, -60.0]).view(4, 1, 1, 1))  # right: 0
    best = block.relax(torch.arange(6.0).view(1, 1, rows, width))
    assert best.flatten().tolist() == [0 + 1, 1 + 2, 2 + 5 - 50, 3 + 4, 4 + 5, 5 + 2 - 50]  # up from row 1: 2 - 50


def front_gates(rows: int, width: int, source: float, passable: float) -> FrontGates:
    """Gates the same on every cell of a rows x width grid."""
    return FrontGates(torch.full((1, 1, rows, width), source), torch.full((1, 1, rows, width), passable))


def test_front_block_bit_spreads_one_cell_per_application_as_a_front() -> None:
    """With no source and every cell passable, the bit after k applications is exactly the cells within k steps
    (Manhattan) of the one reached cell, whatever the features; set bits stay set; the features are normalised, the
    bit is not. A cell that is not passable stops the front (a wall column)."""
    torch.manual_seed(0)
    rows, width, hidden = 5, 7, 9
    block = FrontBlock(hidden, 0, width)
    x = torch.randn(1, rows * width, hidden)
    x[..., : FrontBlock.MARKS] = 0.0
    x[0, 2 * width + 3, 0] = 1.0  # cell (2, 3) reached
    start = x.clone()
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(width), indexing="ij")
    gates = front_gates(rows, width, 0.0, 1.0)
    for k in range(1, 6):
        x = block(x, mask=gates)
        bit = x[0, :, 0].view(rows, width)
        assert torch.equal(bit > 0.5, ((r - 2).abs() + (c - 3).abs()) <= k)
        assert ((bit == 0.0) | (bit == 1.0)).all()
        assert torch.allclose(x[0, :, FrontBlock.MARKS:].square().mean(-1), torch.ones(rows * width), atol=1e-3)
    gates.passable[..., 1] = 0.0  # column 1 is a wall
    x = start
    for _ in range(8):
        x = block(x, mask=gates)
    assert torch.equal(x[0, :, 0].view(rows, width) > 0.5, c >= 2)


def test_front_block_bit_needs_a_source_and_its_gates() -> None:
    """No cell is reached without a source: a grid with no bit keeps none, passable or not; a source is reached at
    once; a FrontBlock refuses to run without its gates."""
    torch.manual_seed(0)
    rows, width, hidden = 4, 4, 7
    block = FrontBlock(hidden, 0, width)
    x = torch.randn(1, rows * width, hidden)
    x[..., : FrontBlock.MARKS] = 0.0
    for passable in (0.0, 1.0):
        assert block(x, mask=front_gates(rows, width, 0.0, passable))[..., 0].max() == 0.0
    gates = front_gates(rows, width, 0.0, 0.0)
    gates.source[0, 0, 3, 3] = 1.0
    out = block(x, mask=gates)[0, :, 0]
    assert out[15] == 1.0 and out[:15].max() == 0.0
    with pytest.raises(ValueError, match="FrontGates"):
        block(x)


def test_front_block_records_the_directions_a_cell_was_reached_from() -> None:
    """Channels 1-4 are breadth-first parent pointers: on a random walled grid with one source, once the front has
    covered it, each reached cell marks exactly the neighbours one step nearer the source (every shortest path's
    first step), the source and unreached cells mark none, and further applications change nothing."""
    generator = torch.Generator().manual_seed(3)
    rows, width, hidden = 9, 11, 8
    block = FrontBlock(hidden, 0, width)
    floor = torch.rand(rows, width, generator=generator) > 0.3
    floor[4, 5] = True
    gates = front_gates(rows, width, 0.0, 0.0)
    gates.passable[0, 0] = floor.float()
    gates.source[0, 0, 4, 5] = 1.0
    distance = torch.full((rows, width), -1)  # breadth-first search from the source over floor cells
    distance[4, 5], frontier, step = 0, [(4, 5)], 0
    while frontier:
        step, nxt = step + 1, []
        for r, c in frontier:
            for dr, dc in FrontBlock.OFFSETS:
                rr, cc = r + dr, c + dc
                if 0 <= rr < rows and 0 <= cc < width and floor[rr, cc] and distance[rr, cc] < 0:
                    distance[rr, cc] = step
                    nxt.append((rr, cc))
        frontier = nxt
    x = torch.zeros(1, rows * width, hidden)
    for _ in range(rows * width):
        x = block(x, mask=gates)
    came = x[0, :, 1 : FrontBlock.MARKS].view(rows, width, 4)
    assert torch.equal(x[0, :, 0].view(rows, width) > 0.5, distance >= 0)
    for r in range(rows):
        for c in range(width):
            expected = [0 <= r + dr < rows and 0 <= c + dc < width and distance[r, c] > 0
                        and int(distance[r + dr, c + dc]) == int(distance[r, c]) - 1 for dr, dc in FrontBlock.OFFSETS]
            assert came[r, c].tolist() == [float(e) for e in expected], (r, c)
    assert int(distance.max()) > 8  # the walls make some paths long
    assert torch.equal(block(x, mask=gates)[0, :, : FrontBlock.MARKS], x[0, :, : FrontBlock.MARKS])


@pytest.mark.parametrize("kind", [ConvBlock, MaxBlock, FrontBlock])
def test_grid_blocks_do_not_wrap_around_rows(kind: type) -> None:
    """The last cell of a row is not a neighbour of the first cell of the next row (padding, no wrap)."""
    torch.manual_seed(0)
    prefix, rows, width, hidden = 0, 3, 4, 8
    block = kind(hidden, prefix, width)
    x = torch.randn(1, rows * width, hidden)
    y = x.clone()
    y[0, 1 * width + 0] += 1.0  # row 1, column 0
    gates = {"mask": front_gates(rows, width, 0.5, 0.5)} if kind is FrontBlock else {}
    assert torch.allclose(block(y, **gates)[0, width - 1], block(x, **gates)[0, width - 1])  # row 0, last column


def test_reasoning_module_bad_block() -> None:
    with pytest.raises(ValueError, match="block must be one of"):
        ReasoningModule(1, 8, 2, 2.0, block="lstm")
    for kind in (ConvBlock, MaxBlock, FrontBlock):
        with pytest.raises(ValueError, match="grid width"):
            kind(8, 1, 0)
    with pytest.raises(ValueError, match="hidden_size >= 6"):
        FrontBlock(5, 1, 4)


@pytest.mark.parametrize("box, prefix", [(2, 1), (3, 1), (3, 2), (2, 0)])
def test_peer_attention_mask_is_the_sudoku_peer_relation(box: int, prefix: int) -> None:
    """A cell sees exactly the cells sharing its row, column or box (itself included: 21 on 9x9, 8 on 4x4) and
    the prefix slots; the slots see everything. Built once per (length, prefix, box, device)."""
    n = box * box
    length = prefix + n * n
    mask = peer_attention_mask(length, prefix, box, torch.device("cpu"))
    expected = torch.ones(length, length, dtype=torch.bool)
    for i in range(n * n):
        for j in range(n * n):
            (ri, ci), (rj, cj) = divmod(i, n), divmod(j, n)
            expected[prefix + i, prefix + j] = ri == rj or ci == cj or (ri // box, ci // box) == (rj // box, cj // box)
    assert mask.dtype == torch.bool and torch.equal(mask, expected)
    assert mask[prefix:, prefix:].sum(1).tolist() == [2 * n - 1 + (box - 1) ** 2] * (n * n)  # 21 (9x9), 8 (4x4)
    assert mask[prefix:, :prefix].all() and mask[:prefix].all()
    assert peer_attention_mask(length, prefix, box, torch.device("cpu")) is mask


@pytest.mark.parametrize("length, prefix, box", [(82, 2, 3), (16, 0, 3), (17, 1, 1), (5, -1, 2)])
def test_peer_attention_mask_rejects_other_layouts(length: int, prefix: int, box: int) -> None:
    with pytest.raises(ValueError, match="length = prefix"):
        peer_attention_mask(length, prefix, box, torch.device("cpu"))


def city_gates(seed: int, size: int = 14):
    """A generated city's exact :class:`WaveGates` (costs over 100, as the data sets' costs to go), the oracle's
    costs to go (B=1, over 100, NaN where unreachable) and optimal moves (4, 1, 1, H, W)."""
    import numpy as np

    from hrm_envs.city.generator import OPPOSITE, CityGenerator
    from hrm_envs.city.metrics import optimal_moves

    puzzle = CityGenerator((size, size))(np.random.default_rng(seed), seed % 4)
    net = puzzle.network()
    inner = (slice(1, -1), slice(1, -1))
    dist = net.distances_to(net.flat(puzzle.destination)).reshape(size + 2, size + 2)[inner]
    cost = net.cost.reshape(size + 2, size + 2)[inner].astype(np.float32) / 100
    exits = np.stack([np.asarray(puzzle.oneway) != 1 + OPPOSITE[d] for d in range(4)])
    source = np.zeros((size, size), np.float32)
    source[puzzle.destination] = 1.0

    def image(a: np.ndarray) -> torch.Tensor:
        return torch.tensor(np.asarray(a, dtype=np.float32)).view(1, -1, size, size)

    gates = WaveGates(image(source), image(cost > 0), image(cost), image(exits))
    obs = {"street": puzzle.street, "traffic": puzzle.traffic, "oneway": puzzle.oneway, "vehicle": np.array([seed % 4]),
           "position": np.array(puzzle.start), "destination": np.array(puzzle.destination)}
    moves = torch.tensor(optimal_moves(obs)).view(size, size, 4).permute(2, 0, 1).reshape(4, 1, 1, size, size)
    to_go = image(np.where(np.isfinite(dist), dist / 100, np.nan))
    return gates, to_go, moves, net


def test_wave_block_with_exact_gates_is_the_oracle() -> None:
    """With a generated city's exact gates (the vehicle's costs, barred streets, one-way rules), the allowed moves
    are the road network's, channel 0 converges to the oracle's (Dijkstra) cost to go, unreached cells stay
    UNREACHED, channels 1-4 are exactly its optimal moves, and the costs only fall from one application to the next
    (relax_steps each) until they are exact."""
    for seed in range(4):
        gates, to_go, moves, net = city_gates(seed)
        size = to_go.shape[-1]
        legal = torch.tensor(net.moves.reshape(size + 2, size + 2, 4)[1:-1, 1:-1]).permute(2, 0, 1).bool()
        assert torch.equal(gates.allowed()[:, 0, 0] > 0.5, legal)
        block = WaveBlock(8, 0, size, relax_steps=3)
        x = torch.randn(1, size * size, 8)
        x[..., 0] = WaveBlock.UNREACHED
        before = x[0, :, 0].clone()
        for _ in range(size * size):
            x = block(x, mask=gates).detach()
            assert (x[0, :, 0] <= before + 1e-6).all()
            before = x[0, :, 0].clone()
        cost, known = x[0, :, 0].view(size, size), ~torch.isnan(to_go[0, 0])
        assert torch.allclose(cost[known], to_go[0, 0][known], atol=1e-4)
        assert (cost[~known] == WaveBlock.UNREACHED).all() and (~known).any()
        best = x[0, :, 1 : WaveBlock.MARKS].view(size, size, 4).permute(2, 0, 1)
        assert torch.equal(best > 0.5, moves[:, 0, 0])
        with pytest.raises(ValueError, match="WaveGates"):
            block(x)
    with pytest.raises(ValueError, match="relax_steps"):
        WaveBlock(8, 0, 4, relax_steps=0)
    with pytest.raises(ValueError, match="hidden_size"):
        WaveBlock(5, 0, 4)


def test_wave_block_combines_two_states_by_the_smaller_cost() -> None:
    """The block's input of two carried states: the features add, the grid's cost channel is the smaller of the
    two; the prefix slots add."""
    block = WaveBlock(7, 1, 2)
    state, injection = torch.randn(2, 5, 7), torch.randn(2, 5, 7)
    x = block.combine(state, injection)
    assert torch.equal(x[:, 1:, 0], torch.minimum(state[:, 1:, 0], injection[:, 1:, 0]))
    assert torch.equal(x[:, :, 1:], (state + injection)[:, :, 1:]) and torch.equal(x[:, 0], (state + injection)[:, 0])


def test_wave_gate_loss_is_least_at_the_exact_gates() -> None:
    """The gate loss fits the gates: at a city's exact gates the cost and move terms vanish (what is left is the
    passable term on cells that cannot reach the goal), wrong costs, an opened one-way street or a barred optimal
    move each raise it, and its gradient moves a wrong cost towards the right one."""
    gates, to_go, moves, _ = city_gates(2, 16)  # a city where a one-way street bars a shortcut
    known = ~torch.isnan(to_go)
    exact = WaveGates(gates.source, known.float(), gates.cost, gates.exits)
    best = wave_gate_loss(exact, to_go, moves)
    assert best.shape == (1,) and float(best) < 1e-4
    cost = gates.cost.clone().requires_grad_(True)
    wrong = WaveGates(gates.source, known.float(), cost * 1.5, gates.exits)
    loss = wave_gate_loss(wrong, to_go, moves)
    assert float(loss.detach()) > float(best) + 0.1
    loss.sum().backward()
    assert (cost.grad > 0).any()  # the too-high costs of the cells optimal moves enter are pushed down
    opened = WaveGates(gates.source, known.float(), gates.cost, torch.ones_like(gates.exits))
    closed = WaveGates(gates.source, known.float(), gates.cost, torch.zeros_like(gates.exits))
    assert float(wave_gate_loss(opened, to_go, moves)) > float(best) + 0.01
    assert float(wave_gate_loss(closed, to_go, moves)) > float(best) + 1.0
