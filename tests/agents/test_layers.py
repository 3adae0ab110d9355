"""Shared layers: grid-window attention against a dense Manhattan mask, edges, prefix, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from agents.layers import GridWindow


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


@pytest.mark.parametrize("prefix, rows, width, window", [(1, 4, 5, 1), (2, 3, 3, 2), (0, 5, 4, 1), (1, 1, 6, 1)])
def test_grid_window_equals_dense_masked_attention(prefix: int, rows: int, width: int, window: int) -> None:
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, prefix + rows * width, 8, requires_grad=True) for _ in range(3))
    ours = GridWindow(prefix, width, window).attend(q, k, v)
    dense = F.scaled_dot_product_attention(q, k, v, attn_mask=manhattan_mask(prefix, rows, width, window))
    assert torch.allclose(ours, dense, atol=1e-5)
    grads = torch.autograd.grad(ours.square().sum(), (q, k, v))
    dense_grads = torch.autograd.grad(dense.square().sum(), (q, k, v))
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(grads, dense_grads))


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
