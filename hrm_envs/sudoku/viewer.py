"""Text and image drawings of a Sudoku state (no display needed); givens and entries look different."""

from __future__ import annotations

import numpy as np

from hrm_envs.sudoku.generator import SYMBOLS

CELL_PX = 16
GLYPH_SCALE = 2
COLOURS = {
    "background": (250, 250, 250),
    "thin": (190, 190, 190),
    "thick": (30, 30, 30),
    "given": (20, 20, 20),
    "entry": (40, 90, 220),
}
# 3x5 pixel glyphs of the symbols 1-9, A-G ('#' = ink), row by row.
_FONT = {
    "1": ".#.##..#..#.###", "2": "##...#.#.#..###", "3": "###..#.##..####", "4": "#.##.####..#..#",
    "5": "####..###..####", "6": ".###..####.####", "7": "###..#.#..#..#.", "8": "####.#####.####",
    "9": "####.####..###.", "A": ".#.#.#####.##.#", "B": "##.#.###.#.###.", "C": ".###..#..#...##",
    "D": "##.#.##.##.###.", "E": "####..####..###", "F": "####..####..#..", "G": ".###..#.##.#.##",
}  # fmt: skip
GLYPHS = {s: np.array([ch == "#" for ch in bits], dtype=bool).reshape(5, 3) for s, bits in _FONT.items()}


def render_ansi(grid: np.ndarray, given: np.ndarray, box: int, steps: int) -> str:
    """The grid with box separators; ``'.'`` empty, givens plain, the player's entries marked ``'*'``."""
    n = box * box
    digits, fixed = np.asarray(grid).reshape(n, n), np.asarray(given, dtype=bool).reshape(n, n)
    empty = int((digits == 0).sum())
    givens = int(fixed.sum())
    lines = [f"sudoku {n}x{n}, step {steps}, {givens} givens, {n * n - empty - givens} entries (*), {empty} empty"]
    rows = []
    for r in range(n):
        cells = [" ." if d == 0 else (" " if fixed[r, c] else "*") + SYMBOLS[d - 1] for c, d in enumerate(digits[r].tolist())]
        rows.append(" |".join(" ".join(cells[b * box : (b + 1) * box]) for b in range(box)))
    rule = "".join("+" if ch == "|" else "-" for ch in rows[0])
    for r, row in enumerate(rows):
        if r and r % box == 0:
            lines.append(rule)
        lines.append(row)
    return "\n".join(lines)


def render_rgb(grid: np.ndarray, given: np.ndarray, box: int) -> np.ndarray:
    """An RGB frame of ``n * CELL_PX + 1`` pixels a side: givens dark, entries blue, thick box lines."""
    n = box * box
    digits, fixed = np.asarray(grid).reshape(n, n), np.asarray(given, dtype=bool).reshape(n, n)
    side = n * CELL_PX + 1
    image = np.empty((side, side, 3), dtype=np.uint8)
    image[:] = COLOURS["background"]
    for k in range(n + 1):
        colour = COLOURS["thick" if k % box == 0 else "thin"]
        image[k * CELL_PX, :] = colour
        image[:, k * CELL_PX] = colour
    gh, gw = 5 * GLYPH_SCALE, 3 * GLYPH_SCALE
    for r, c in np.argwhere(digits > 0).tolist():
        glyph = np.repeat(np.repeat(GLYPHS[SYMBOLS[digits[r, c] - 1]], GLYPH_SCALE, axis=0), GLYPH_SCALE, axis=1)
        top, left = r * CELL_PX + (CELL_PX - gh) // 2 + 1, c * CELL_PX + (CELL_PX - gw) // 2 + 1
        image[top : top + gh, left : left + gw][glyph] = COLOURS["given" if fixed[r, c] else "entry"]
    return image
