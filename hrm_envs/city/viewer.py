"""Text and image drawings of a city routing state (no display needed)."""

from __future__ import annotations

import numpy as np

from hrm_envs.city.generator import STREETS, VEHICLES, CityPuzzle

#: One character per street code (outside, building, residential, arterial, highway, bike lane, low bridge).
STREET_CHARS = " #.=HbL"
#: One-way arrows per direction (up, right, down, left).
ARROWS = "^>v<"
#: The last line of the ansi drawing: what each glyph means.
LEGEND = "legend: @ vehicle, X destination, " + ", ".join(
    f"{char} {name.replace('_', ' ')}" for char, name in zip(STREET_CHARS[1:], STREETS[1:])
) + f", {ARROWS} one-way (travel direction); digits right of the map: traffic level 0..3"
#: RGB per street code; traffic darkens streets towards red.
COLOURS = np.array(
    [[255, 255, 255], [90, 90, 100], [235, 235, 225], [250, 215, 120], [240, 150, 60], [150, 215, 150], [170, 140, 230]],
    dtype=np.float64,
)


def street_char(puzzle: CityPuzzle, r: int, c: int) -> str:
    """The map character of a cell: a one-way arrow if it has one, else its street character."""
    code = int(puzzle.oneway[r, c])
    return ARROWS[code - 1] if code else STREET_CHARS[int(puzzle.street[r, c])]


def render_ansi(puzzle: CityPuzzle, position: tuple[int, int], steps: int) -> str:
    """The map (``@`` vehicle, ``X`` destination) beside the traffic levels of the streets, then ``LEGEND``."""
    n = puzzle.size
    lines = [f"{VEHICLES[puzzle.vehicle]} at {position} -> {puzzle.destination}, step {steps}"]
    for r in range(n):
        cells = []
        for c in range(n):
            cells.append("@" if (r, c) == position else "X" if (r, c) == puzzle.destination else street_char(puzzle, r, c))
        traffic = "".join(str(int(t)) if puzzle.street[r, c] > 1 else " " for c, t in enumerate(puzzle.traffic[r]))
        lines.append("".join(cells) + "   " + traffic)
    lines.append(LEGEND)
    return "\n".join(lines) + "\n"


def render_rgb(puzzle: CityPuzzle, position: tuple[int, int], max_size: int, unit: int = 8) -> np.ndarray:
    """An RGB image of size ``max_size * unit`` squared: streets by class, traffic in red, one-way ticks."""
    n = puzzle.size
    colour = np.full((max_size, max_size, 3), 255.0)
    base = COLOURS[puzzle.street]
    heat = (puzzle.traffic / 3.0)[..., None] * (puzzle.street > 1)[..., None]
    colour[:n, :n] = base * (1 - 0.5 * heat) + np.array([220.0, 40.0, 40.0]) * 0.5 * heat
    colour[position] = [30, 90, 230]
    colour[puzzle.destination] = [20, 170, 60]
    image = np.repeat(np.repeat(colour.astype(np.uint8), unit, 0), unit, 1)
    half = unit // 2
    for r, c in zip(*np.nonzero(puzzle.oneway)):  # a dark tick on the side the traffic flows to
        d = int(puzzle.oneway[r, c]) - 1
        y, x = r * unit + half, c * unit + half
        dy, dx = ((-half + 1, 0), (0, half - 2), (half - 2, 0), (0, -half + 1))[d]
        image[min(y, y + dy) : max(y, y + dy) + 1, min(x, x + dx) : max(x, x + dx) + 1] = 40
    return image
