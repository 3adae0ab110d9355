"""Maze puzzles and their seeded generator.

A maze is a rectangular grid of wall and floor cells with a start and a goal on the floor. The
generator carves square mazes of side ``size`` (walls included) with a randomised depth-first search
(the "recursive backtracker": long winding corridors, like HRM's Maze-Hard), on the usual lattice
where cells sit at odd coordinates and the outer border is wall:

- odd ``size``: a ``(size - 1) / 2`` squared lattice of cells;
- even ``size``: the maze of side ``size - 1`` with one randomly chosen interior wall row and wall
  column doubled. Passages across a doubled line get one cell longer; nothing else changes, so a
  perfect maze stays perfect and the border stays one cell thick (HRM's 30x30 grids are even).

``kind="loops"`` then knocks down a ``loop_fraction`` of the remaining walls between two lattice
cells, adding cycles and hence several shortest paths. Start and goal are drawn on floor cells
(any, not only lattice cells) so that the shortest path has at least ``min_path_len`` moves.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from hrm_envs.core import MOVES, choice

KINDS = ("perfect", "loops")
MIN_SIZE = 5
MAX_SIZE = 255  # positions are int16, and observations grow as max_size ** 2
MAX_ATTEMPTS = 100  # mazes drawn per reset before a min_path_len is declared out of reach
WALL, FLOOR, START, GOAL = "#", " ", "S", "G"


def max_path_len(size: int) -> int:
    """An upper bound on the shortest-path length (moves) of any generated maze of side ``size``.

    Every floor cell is visited at most once, so the bound is the floor count of a perfect maze
    minus one: ``2 k**2 - 2`` for the ``k x k`` lattice, plus the ``2 k`` cells doubling can add.
    """
    k = (size - 1) // 2
    return 2 * k * k - 2 + (2 * k if size % 2 == 0 else 0)


def bfs_distances(floor: np.ndarray, source: tuple[int, int]) -> np.ndarray:
    """Moves from ``source`` to every cell of a boolean floor grid; -1 for walls and unreachable cells."""
    h, w = floor.shape
    width = w + 2
    ring = np.zeros((h + 2, width), dtype=bool)
    ring[1:-1, 1:-1] = floor
    open_cells = ring.ravel().tolist()
    dist = [-1] * len(open_cells)
    start = (source[0] + 1) * width + source[1] + 1
    dist[start] = 0
    queue = deque([start])
    steps = (-width, 1, width, -1)
    while queue:
        p = queue.popleft()
        d = dist[p] + 1
        for step in steps:
            q = p + step
            if open_cells[q] and dist[q] < 0:
                dist[q] = d
                queue.append(q)
    return np.array(dist, dtype=np.int64).reshape(h + 2, width)[1:-1, 1:-1]


def _cell(value: Any, name: str) -> tuple[int, int]:
    """A ``(row, col)`` tuple of a tuple, list or 1-D array of two ints."""
    if (
        isinstance(value, (tuple, list, np.ndarray))
        and np.ndim(value) == 1
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be a (row, col) pair of ints, got {value!r}")


@dataclass(frozen=True, eq=False)
class MazePuzzle:
    """A maze: ``walls`` (h, w) bool (True = wall), ``start`` and ``goal`` (row, col) floor cells.

    Checked on construction: ``walls`` a non-empty 2-D array of bools or 0/1, ``start`` and ``goal`` pairs
    of ints (tuples, lists or arrays; stored as tuples) on floor cells. ``parse`` adds the env's checks
    (size bound, distinct start and goal, a route).
    """

    walls: np.ndarray
    start: tuple[int, int]
    goal: tuple[int, int]

    def __post_init__(self) -> None:
        try:
            walls = np.array(self.walls)  # a copy: the puzzle never shares the caller's array
        except ValueError:  # ragged nested lists
            walls = np.empty(0)
        if walls.ndim != 2 or walls.size == 0 or walls.dtype.kind not in "biu" or not np.isin(walls, (0, 1)).all():
            raise ValueError(f"puzzle walls must be a non-empty 2-D array of bools or 0/1 (1 = wall), got {self.walls!r:.120}")
        walls = walls.astype(bool, copy=False)
        h, w = walls.shape
        for name in ("start", "goal"):
            r, c = cell = _cell(getattr(self, name), f"puzzle {name}")
            if not (0 <= r < h and 0 <= c < w):
                raise ValueError(f"puzzle {name} {cell} must lie inside the {h}x{w} grid")
            if walls[r, c]:
                raise ValueError(f"puzzle {name} {cell} must be a floor cell, not a wall")
            object.__setattr__(self, name, cell)
        object.__setattr__(self, "walls", walls)

    @property
    def shape(self) -> tuple[int, int]:
        return self.walls.shape

    def rows(self) -> list[str]:
        """The maze as strings: ``'#'`` wall, ``' '`` floor, ``'S'`` start, ``'G'`` goal."""
        grid = np.where(self.walls, WALL, FLOOR)
        grid[self.goal] = GOAL
        grid[self.start] = START
        return ["".join(row) for row in grid]

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, MazePuzzle)
            and self.start == other.start
            and self.goal == other.goal
            and np.array_equal(self.walls, other.walls)
        )

    def shortest_path_len(self) -> int:
        """Moves on a shortest path from start to goal, -1 if there is none."""
        return int(bfs_distances(~self.walls, self.goal)[self.start])

    @classmethod
    def parse(cls, value: Any, max_size: int) -> "MazePuzzle":
        """Accept a ``MazePuzzle``, strings or a dict, and check it: sides in ``[1, max_size]``, a route.

        - one string with rows separated by newlines, or a list of row strings, all of one length,
          using ``'#'`` wall, ``' '`` floor, ``'S'`` start and ``'G'`` goal (exactly one of each);
        - ``{"walls": 2-D array of bools or 0/1 (1 = wall), "start": (r, c), "goal": (r, c)}``.
        """
        if isinstance(value, MazePuzzle):
            puzzle = cls(value.walls, value.start, value.goal)
        elif isinstance(value, (str, list, tuple)) and not (isinstance(value, (list, tuple)) and not value):
            puzzle = cls(*_parse_rows(value))
        elif isinstance(value, dict) and set(value) == {"walls", "start", "goal"}:
            puzzle = cls(value["walls"], value["start"], value["goal"])
        else:
            raise ValueError(
                "options['puzzle'] must be a MazePuzzle, a string or list of row strings "
                f"('#' wall, ' ' floor, 'S' start, 'G' goal), or a dict with keys walls/start/goal; got {value!r}"
            )
        h, w = puzzle.shape
        if not (h <= max_size and w <= max_size):
            raise ValueError(f"puzzle sides must lie in [1, max_size={max_size}] cells, got {h}x{w}")
        if puzzle.start == puzzle.goal:
            raise ValueError(f"puzzle start and goal must differ, both are {puzzle.start}")
        if puzzle.shortest_path_len() < 0:
            raise ValueError(f"puzzle has no route from start {puzzle.start} to goal {puzzle.goal}")
        return puzzle


def _parse_rows(value: str | list | tuple) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    rows = value.split("\n") if isinstance(value, str) else list(value)
    if not all(isinstance(row, str) for row in rows):
        raise ValueError(f"puzzle rows must be strings, got {value!r}")
    if len({len(row) for row in rows}) != 1 or not rows[0]:
        raise ValueError(f"puzzle rows must be non-empty and all of one length, got lengths {[len(r) for r in rows]}")
    grid = np.array([list(row) for row in rows])
    bad = set(np.unique(grid).tolist()) - {WALL, FLOOR, START, GOAL}
    if bad:
        raise ValueError(f"puzzle characters must be '#' wall, ' ' floor, 'S' start or 'G' goal; got {sorted(bad)}")
    cells = {}
    for name, char in (("start", START), ("goal", GOAL)):
        found = np.argwhere(grid == char)
        if len(found) != 1:
            raise ValueError(f"puzzle must hold exactly one {char!r} ({name}), found {len(found)}")
        cells[name] = (int(found[0][0]), int(found[0][1]))
    return grid == WALL, cells["start"], cells["goal"]


def carve(size: int, rng: np.random.Generator, loop_fraction: float = 0.0) -> np.ndarray:
    """A ``size x size`` bool wall grid: a depth-first-search maze, with ``loop_fraction`` loops knocked in."""
    base = size - 1 if size % 2 == 0 else size
    k = (base - 1) // 2
    walls = np.ones((base, base), dtype=bool)
    walls[1::2, 1::2] = False
    # Randomised DFS: each cell tries its neighbours in its own random order, which picks a uniformly
    # random unvisited neighbour at every visit, as the textbook version does.
    orders = rng.permuted(np.tile(np.arange(4), (k * k, 1)), axis=1).tolist()
    visited = [False] * (k * k)
    flat = walls.ravel()  # a view: writes carve the grid
    first = int(rng.integers(k * k))
    visited[first] = True
    stack = [(first, 0)]
    while stack:
        cell, tried = stack[-1]
        r, c = divmod(cell, k)
        while tried < 4:
            dr, dc = MOVES[orders[cell][tried]]
            tried += 1
            nr, nc = r + dr, c + dc
            if 0 <= nr < k and 0 <= nc < k and not visited[nr * k + nc]:
                stack[-1] = (cell, tried)
                nxt = nr * k + nc
                visited[nxt] = True
                flat[(2 * r + 1 + dr) * base + 2 * c + 1 + dc] = False
                stack.append((nxt, 0))
                break
        else:
            stack.pop()
    if loop_fraction > 0:
        inner = np.zeros_like(walls)
        inner[1:-1:2, 2:-1:2] = True  # walls between horizontal neighbours
        inner[2:-1:2, 1:-1:2] = True  # walls between vertical neighbours
        candidates = np.flatnonzero(inner & walls)
        count = min(len(candidates), max(1, round(loop_fraction * len(candidates))))
        flat[rng.choice(candidates, size=count, replace=False)] = False
    if size != base:
        repeats = np.ones((2, base), dtype=np.int64)
        repeats[(0, 1), 2 * rng.integers(1, k, size=2)] = 2  # one interior wall row and one wall column
        walls = np.repeat(np.repeat(walls, repeats[0], axis=0), repeats[1], axis=1)
    return walls


class MazeGenerator:
    """Seeded mazes with side drawn uniformly from an inclusive ``size`` range; see the module docstring.

    Start and goal: the goal is a uniformly random floor cell and the start a uniformly random floor
    cell at least ``min_path_len`` moves away. If there is none, the goal moves to a cell farthest
    from the first goal (for perfect mazes an end of a longest path) and the draw is repeated; if that
    fails too, a new maze is carved, up to ``MAX_ATTEMPTS`` mazes (then ``ValueError``).
    """

    def __init__(self, size: tuple[int, int], kind: str = "perfect", loop_fraction: float = 0.1, min_path_len: int = 1):
        self.size = size
        self.kind = choice(kind, "kind", KINDS)
        if isinstance(loop_fraction, bool) or not isinstance(loop_fraction, (int, float)) or not 0 < loop_fraction <= 1:
            raise ValueError(f"loop_fraction must be a number in (0, 1], got {loop_fraction!r}")
        self.loop_fraction = float(loop_fraction)
        bound = max_path_len(size[0])
        if isinstance(min_path_len, bool) or not isinstance(min_path_len, (int, np.integer)) or not 1 <= min_path_len <= bound:
            raise ValueError(
                f"min_path_len must be an int in [1, {bound}] (the longest path possible at the smallest size "
                f"{size[0]}), got {min_path_len!r}"
            )
        self.min_path_len = int(min_path_len)

    def __call__(self, rng: np.random.Generator) -> MazePuzzle:
        size = int(rng.integers(self.size[0], self.size[1] + 1))
        longest = 0
        for _ in range(MAX_ATTEMPTS):
            walls = carve(size, rng, self.loop_fraction if self.kind == "loops" else 0.0)
            floor = ~walls
            cells = np.argwhere(floor)
            goal = tuple(cells[rng.integers(len(cells))].tolist())
            for _ in range(2):
                dist = bfs_distances(floor, goal)
                longest = max(longest, int(dist.max()))
                far = np.argwhere(dist >= self.min_path_len)
                if len(far):
                    start = tuple(far[rng.integers(len(far))].tolist())
                    return MazePuzzle(walls, start, goal)
                ends = np.argwhere(dist == dist.max())
                goal = tuple(ends[rng.integers(len(ends))].tolist())
        raise ValueError(
            f"min_path_len={self.min_path_len} was not reached in {MAX_ATTEMPTS} {self.kind} mazes of size {size} "
            f"(longest shortest path found: {longest}); lower min_path_len or raise size"
        )
