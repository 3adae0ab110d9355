"""Text and image drawings of a Hanoi state next to its goal (no display needed)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from hrm_envs.hanoi.generator import NUM_PEGS


def _tower_rows(config: Sequence[int], width: int) -> list[str]:
    n = len(config)
    rows = []
    stacks = [[d for d in range(n - 1, -1, -1) if config[d] == p] for p in range(NUM_PEGS)]  # bottom first
    for level in range(n - 1, -1, -1):
        cells = []
        for stack in stacks:
            if level < len(stack):
                d = stack[level]
                cells.append(("=" * d + str(d + 1)[-1] + "=" * d).center(width))
            else:
                cells.append("|".center(width))
        rows.append(" ".join(cells))
    rows.append(" ".join(["-" * width] * NUM_PEGS))
    return rows


def render_ansi(state: Sequence[int], goal: Sequence[int], steps: int) -> str:
    """State (left) and goal (right) as ASCII towers; disk labels are sizes 1..N."""
    width = 2 * len(state) + 1
    left, right = _tower_rows(state, width), _tower_rows(goal, width)
    panel = 3 * width + 2
    lines = [f"{'state (step ' + str(steps) + ')':<{panel}}    goal"]
    lines += [f"{a}    {b}" for a, b in zip(left, right)]
    return "\n".join(lines) + "\n"


def _palette(max_disks: int) -> np.ndarray:
    hues = np.linspace(0.0, 0.8, max_disks)
    k = (np.array([5.0, 3.0, 1.0])[None, :] + hues[:, None] * 6.0) % 6.0
    rgb = 1.0 - 0.75 * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return (rgb * 255).astype(np.uint8)


def render_rgb(state: Sequence[int], goal: Sequence[int], max_disks: int, unit: int = 6) -> np.ndarray:
    """An RGB image, state on top and goal (dimmed) below; its size depends only on ``max_disks``."""
    colours = _palette(max_disks)
    disk_h = 2 * unit
    peg_w = (2 * max_disks + 3) * unit
    panel_h = (max_disks + 2) * disk_h
    image = np.full((2 * panel_h, NUM_PEGS * peg_w, 3), 255, dtype=np.uint8)
    for panel, (config, dim) in enumerate(((state, 1.0), (goal, 0.55))):
        top = panel * panel_h
        base = top + panel_h - disk_h // 2
        image[base : base + 2, :] = 60
        for p in range(NUM_PEGS):
            cx = p * peg_w + peg_w // 2
            image[top + disk_h : base, cx - 1 : cx + 2] = 120
            for level, d in enumerate(d for d in range(len(config) - 1, -1, -1) if config[d] == p):
                half = (d + 1) * unit
                y1 = base - level * disk_h
                colour = 255 - dim * (255 - colours[d].astype(float))
                image[y1 - disk_h + 1 : y1, cx - half : cx + half + 1] = colour.astype(np.uint8)
    return image
