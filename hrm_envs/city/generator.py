"""City maps, vehicles, travel-time tables, the per-vehicle road network, and seeded generation.

A city is an ``n x n`` grid of cells with a street code each (``STREETS``), an integer traffic level
0..3 and a one-way code (0 = two-way, ``1 + d`` = travel only in direction ``d`` along the street:
moves in the opposite direction into or out of that cell are forbidden). Directions and actions:
0 up (row - 1), 1 right (col + 1), 2 down (row + 1), 3 left (col - 1).

Travel time of a move = time of the cell entered = ``TIME[vehicle, street] * TRAFFIC_FACTOR[vehicle, level]``
(integers, so equal-cost routes tie exactly). ``TIME`` already folds the street's base time and the
vehicle's speed on it; ``TIME = 0`` means the vehicle is barred from that street class:

| vehicle   | residential | arterial | highway | bike lane | low bridge | traffic factor, levels 0..3 |
|-----------|-------------|----------|---------|-----------|------------|-----------------------------|
| car       | 4           | 3        | 1       | barred    | 3          | 1, 2, 3, 5                  |
| truck     | barred      | 4        | 2       | barred    | barred     | 1, 2, 4, 6                  |
| bicycle   | 5           | 6        | barred  | 3         | 5          | 1, 1, 1, 2                  |
| ambulance | 3           | 2        | 1       | barred    | 2          | 1, 1, 2, 3                  |

Generation: straight street lines (rows and columns, blocks of 2..4 buildings between them) get a
class each (highways on larger maps, at least one two-way arterial per axis, residential streets,
bike lanes), crossings of a highway are interchanges (arterial class, open to everyone), some
residential and arterial lines are one-way, some residential segments are closed, some arterial
cells are low bridges, and every street segment draws a traffic level. Start and destination are
drawn on cells every vehicle of the scenario may use; a scenario is kept only if, for each of its
vehicles, the destination is reachable from every cell the vehicle can reach from the start (a
route exists and no one-way dead end can trap it).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

import numpy as np

from hrm_envs.core import MOVES, choice

VEHICLES = ("car", "truck", "bicycle", "ambulance")
OUTSIDE, BUILDING, RESIDENTIAL, ARTERIAL, HIGHWAY, BIKE_LANE, LOW_BRIDGE = range(7)
STREETS = ("outside", "building", "residential", "arterial", "highway", "bike_lane", "low_bridge")
NUM_STREETS = len(STREETS)
NUM_LEVELS = 4  # traffic levels 0..3
NUM_ONEWAY = 5  # 0 two-way, 1 + d one-way in direction d
MIN_SIZE = 6
MAX_SIZE = 128

#: TIME[vehicle, street]: travel time of one cell at traffic level 0; 0 = barred.
TIME = np.array(
    [
        [0, 0, 4, 3, 1, 0, 3],  # car
        [0, 0, 0, 4, 2, 0, 0],  # truck
        [0, 0, 5, 6, 0, 3, 5],  # bicycle
        [0, 0, 3, 2, 1, 0, 2],  # ambulance
    ],
    dtype=np.int64,
)
#: TRAFFIC_FACTOR[vehicle, level]: multiplier of the travel time per traffic level.
TRAFFIC_FACTOR = np.array([[1, 2, 3, 5], [1, 2, 4, 6], [1, 1, 1, 2], [1, 1, 2, 3]], dtype=np.int64)
#: COST[vehicle, street, level]: the full travel-time table.
COST = TIME[:, :, None] * TRAFFIC_FACTOR[:, None, :]

DR, DC = zip(*MOVES)  # the row / column deltas of the directions (hrm_envs.core.MOVES)
OPPOSITE = (2, 3, 0, 1)

#: Traffic-level distributions per street class, for the ``traffic`` setting.
TRAFFIC_MODES = ("none", "light", "normal", "heavy")
_TRAFFIC_P = {
    "light": {RESIDENTIAL: [0.8, 0.2, 0, 0], ARTERIAL: [0.6, 0.3, 0.1, 0], HIGHWAY: [0.5, 0.3, 0.2, 0], BIKE_LANE: [1, 0, 0, 0]},
    "normal": {
        RESIDENTIAL: [0.55, 0.3, 0.15, 0],
        ARTERIAL: [0.3, 0.3, 0.25, 0.15],
        HIGHWAY: [0.25, 0.3, 0.25, 0.2],
        BIKE_LANE: [0.8, 0.2, 0, 0],
    },
    "heavy": {
        RESIDENTIAL: [0.3, 0.3, 0.3, 0.1],
        ARTERIAL: [0.1, 0.2, 0.35, 0.35],
        HIGHWAY: [0.1, 0.2, 0.3, 0.4],
        BIKE_LANE: [0.6, 0.3, 0.1, 0],
    },
}


def vehicle_id(value: Any, name: str = "vehicle") -> int:
    """A vehicle given by name or id, as its id (index in ``VEHICLES``)."""
    if isinstance(value, str) and value in VEHICLES:
        return VEHICLES.index(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value < len(VEHICLES):
        return int(value)
    raise ValueError(f"{name} must be one of {VEHICLES} (or its index), got {value!r}")


class RoadNetwork:
    """The move graph of one vehicle on one city, on a flat grid padded by one cell all round.

    ``cost[p]`` is the time to enter cell ``p`` (0 = barred), ``moves[p, d]`` = 1 iff the vehicle may
    move from ``p`` in direction ``d`` (inside the city, target usable, one-way rules respected).
    """

    def __init__(self, street: np.ndarray, traffic: np.ndarray, oneway: np.ndarray, vehicle: int):
        n = street.shape[0]
        self.n, self.width = n, n + 2
        self.step = (-self.width, 1, self.width, -1)
        cost = np.zeros((n + 2, n + 2), dtype=np.int64)
        cost[1:-1, 1:-1] = COST[vehicle, street, traffic]
        ow = np.zeros((n + 2, n + 2), dtype=np.int64)
        ow[1:-1, 1:-1] = oneway
        moves = np.zeros((n + 2, n + 2, 4), dtype=np.int8)
        inner = (slice(1, -1), slice(1, -1))
        for d in range(4):
            target = (slice(1 + DR[d], n + 1 + DR[d]), slice(1 + DC[d], n + 1 + DC[d]))
            against = 1 + OPPOSITE[d]
            moves[1:-1, 1:-1, d] = (cost[inner] > 0) & (cost[target] > 0) & (ow[inner] != against) & (ow[target] != against)
        self.cost = cost.ravel()
        self.moves = moves.reshape(-1, 4)
        self.cost_list: list[int] = self.cost.tolist()
        self.move_bits: list[int] = (self.moves.astype(np.int64) @ np.array([1, 2, 4, 8])).tolist()

    def flat(self, cell: tuple[int, int]) -> int:
        """Padded flat index of city cell ``(row, col)``."""
        return (cell[0] + 1) * self.width + cell[1] + 1

    def cell(self, p: int) -> tuple[int, int]:
        """City ``(row, col)`` of padded flat index ``p``."""
        return p // self.width - 1, p % self.width - 1

    def distances_to(self, dest: int, allowed: np.ndarray | None = None) -> np.ndarray:
        """Minimal travel time from every padded cell to ``dest`` (inf if none): Dijkstra on reversed moves.

        ``allowed`` (padded flat bool) restricts routes to those cells (used by the route metrics).
        """
        cost, bits, step = self.cost_list, self.move_bits, self.step
        ok = None if allowed is None else allowed.tolist()
        dist = [float("inf")] * len(cost)
        dist[dest] = 0.0
        heap = [(0.0, dest)]
        while heap:
            d, v = heapq.heappop(heap)
            if d > dist[v]:
                continue
            nd = d + cost[v]
            for a in range(4):
                u = v - step[a]
                if bits[u] >> a & 1 and nd < dist[u] and (ok is None or ok[u]):
                    dist[u] = nd
                    heapq.heappush(heap, (nd, u))
        return np.array(dist)

    def reachable(self, source: int, reverse: bool) -> np.ndarray:
        """Bool mask of padded cells reachable from ``source`` (``reverse``: cells that can reach it)."""
        bits, step = self.move_bits, self.step
        seen = bytearray(len(bits))
        seen[source] = 1
        stack = [source]
        while stack:
            v = stack.pop()
            for a in range(4):
                u = v - step[a] if reverse else v + step[a]
                if not seen[u] and bits[u if reverse else v] >> a & 1:
                    seen[u] = 1
                    stack.append(u)
        return np.frombuffer(bytes(seen), dtype=np.uint8).astype(bool)

    def traps(self, start: int, dest: int) -> np.ndarray:
        """Padded flat indices of the cells reachable from ``start`` that cannot reach ``dest`` (``start`` among
        them iff there is no route): where a vehicle would be stuck, e.g. down a one-way street with no way back."""
        forward = self.reachable(start, reverse=False)
        backward = self.reachable(dest, reverse=True)
        return np.flatnonzero(forward & ~backward)

    def trap_free(self, start: int, dest: int) -> bool:
        """True iff ``dest`` is reachable from ``start`` and from every cell reachable from ``start``."""
        return len(self.traps(start, dest)) == 0


def _as_grid(value: Any, name: str, high: int) -> np.ndarray:
    try:
        grid = np.asarray(value)
    except Exception:  # noqa: BLE001 - any unconvertible input is a bad puzzle
        grid = np.empty(0)
    if grid.ndim != 2 or grid.shape[0] != grid.shape[1] or grid.size == 0 or not np.issubdtype(grid.dtype, np.integer):
        raise ValueError(f"puzzle[{name!r}] must be a square 2-D array of ints, got {value!r:.80}")
    if grid.min() < 0 or grid.max() > high:
        raise ValueError(f"puzzle[{name!r}] values must lie in [0, {high}], got range [{grid.min()}, {grid.max()}]")
    return grid.astype(np.int8)


def _as_cell(value: Any, name: str, n: int) -> tuple[int, int]:
    if (
        isinstance(value, (tuple, list, np.ndarray))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
        and all(0 <= v < n for v in value)
    ):
        return int(value[0]), int(value[1])
    raise ValueError(f"puzzle[{name!r}] must be a (row, col) pair of ints inside the {n}x{n} city, got {value!r}")


@dataclass(frozen=True, eq=False)
class CityPuzzle:
    """One routing task: the map arrays (``n x n`` int8), the vehicle id, start and destination cells.

    As an option, ``reset(options={"puzzle": {...}})`` takes a ``CityPuzzle`` or a dict with keys
    ``street`` (codes 1..6, see ``STREETS``; no 0 inside the city), ``traffic`` (0..3), ``oneway``
    (0..4), ``vehicle`` (name or id), ``start`` and ``destination`` ((row, col) pairs). ``parse`` refuses
    cities with a route but a dead end (a cell reachable from the start that cannot reach the destination,
    e.g. down a one-way street), as the generator never draws them: no reachable state is a trap.
    """

    street: np.ndarray
    traffic: np.ndarray
    oneway: np.ndarray
    vehicle: int
    start: tuple[int, int]
    destination: tuple[int, int]

    @property
    def size(self) -> int:
        return int(self.street.shape[0])

    def network(self) -> RoadNetwork:
        return RoadNetwork(self.street, self.traffic, self.oneway, self.vehicle)

    def to_dict(self) -> dict[str, Any]:
        """The dict form accepted by ``parse`` (lists, vehicle by name)."""
        return {
            "street": self.street.tolist(),
            "traffic": self.traffic.tolist(),
            "oneway": self.oneway.tolist(),
            "vehicle": VEHICLES[self.vehicle],
            "start": self.start,
            "destination": self.destination,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CityPuzzle) and all(
            np.array_equal(getattr(self, k), getattr(other, k)) for k in ("street", "traffic", "oneway")
        ) and (self.vehicle, self.start, self.destination) == (other.vehicle, other.start, other.destination)

    @classmethod
    def parse(cls, value: Any, max_size: int) -> "CityPuzzle":
        """Validate a puzzle option; ``ValueError`` naming the faulty field otherwise."""
        keys = {"street", "traffic", "oneway", "vehicle", "start", "destination"}
        if isinstance(value, CityPuzzle):
            value = {k: getattr(value, k) for k in keys}
        if not isinstance(value, dict) or set(value) != keys:
            raise ValueError(f"options['puzzle'] must be a CityPuzzle or a dict with exactly the keys {sorted(keys)}, got {value!r:.120}")
        street = _as_grid(value["street"], "street", NUM_STREETS - 1)
        traffic = _as_grid(value["traffic"], "traffic", NUM_LEVELS - 1)
        oneway = _as_grid(value["oneway"], "oneway", NUM_ONEWAY - 1)
        n = street.shape[0]
        if not MIN_SIZE <= n <= max_size:
            raise ValueError(f"puzzle size must lie in [{MIN_SIZE}, max_size={max_size}], got {n}")
        if traffic.shape != street.shape or oneway.shape != street.shape:
            raise ValueError(f"puzzle['traffic'] and puzzle['oneway'] must have the street shape {street.shape}")
        if (street == OUTSIDE).any():
            raise ValueError("puzzle['street'] must not contain 0 (outside) inside the city; use 1 for buildings")
        off_street = street == BUILDING
        if traffic[off_street].any() or oneway[off_street].any():
            raise ValueError("puzzle['traffic'] and puzzle['oneway'] must be 0 on buildings (street code 1)")
        vehicle = vehicle_id(value["vehicle"], "puzzle['vehicle']")
        start, dest = _as_cell(value["start"], "start", n), _as_cell(value["destination"], "destination", n)
        for name, cell in (("start", start), ("destination", dest)):
            if TIME[vehicle, street[cell]] == 0:
                raise ValueError(
                    f"puzzle[{name!r}] {cell} is on a {STREETS[street[cell]]} cell, which a {VEHICLES[vehicle]} may not use"
                )
        if start == dest:
            raise ValueError(f"puzzle['start'] and puzzle['destination'] must differ, both are {start}")
        puzzle = cls(street, traffic, oneway, vehicle, start, dest)
        net = puzzle.network()
        traps = net.traps(net.flat(start), net.flat(dest))
        if net.flat(start) in traps:
            raise ValueError(f"puzzle has no route from start {start} to destination {dest} for a {VEHICLES[vehicle]}")
        if len(traps):
            raise ValueError(
                f"puzzle has a dead end for a {VEHICLES[vehicle]}: {len(traps)} cell(s) reachable from start {start}, "
                f"e.g. {net.cell(int(traps[0]))}, cannot reach destination {dest} (a one-way street with no way back?); "
                "every cell reachable from the start must still reach the destination"
            )
        return puzzle


class CityGenerator:
    """Seeded cities with ``size`` drawn from an inclusive range; see the module docstring.

    ``__call__(rng, vehicle)`` draws one puzzle for a vehicle (id); ``variants(rng)`` draws one base
    scenario and returns its puzzle for every vehicle (same map, start and destination), as the
    seed-001 data sets do (each base scenario -> 4 vehicle variants).
    """

    def __init__(self, size: tuple[int, int], traffic: str = "normal"):
        self.size = size
        self.traffic = choice(traffic, "traffic", TRAFFIC_MODES)

    def __call__(self, rng: np.random.Generator, vehicle: int) -> CityPuzzle:
        return self._scenario(rng, (vehicle,))[0]

    def variants(self, rng: np.random.Generator) -> list[CityPuzzle]:
        """One base scenario in all ``len(VEHICLES)`` vehicle variants, each routable and trap-free."""
        return self._scenario(rng, tuple(range(len(VEHICLES))))

    def _scenario(self, rng: np.random.Generator, vehicles: tuple[int, ...]) -> list[CityPuzzle]:
        n = int(rng.integers(self.size[0], self.size[1] + 1))
        while True:
            street, traffic, oneway = self.city(rng, n)
            nets = [RoadNetwork(street, traffic, oneway, v) for v in vehicles]
            usable = np.logical_and.reduce([net.cost > 0 for net in nets])
            candidates = np.flatnonzero(usable)
            if len(candidates) < 2:
                continue
            width = n + 2
            rows, cols = candidates // width, candidates % width
            for _ in range(4):
                dest = int(candidates[rng.integers(len(candidates))])
                far = np.abs(rows - dest // width) + np.abs(cols - dest % width) >= max(2, n // 2)
                if not far.any():
                    continue
                start = int(candidates[far][rng.integers(far.sum())])
                if all(net.trap_free(start, dest) for net in nets):
                    s, d = nets[0].cell(start), nets[0].cell(dest)
                    return [CityPuzzle(street, traffic, oneway, v, s, d) for v in vehicles]

    def city(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw the map arrays ``(street, traffic, oneway)`` of an ``n x n`` city."""
        rows, cols = _lines(rng, n), _lines(rng, n)
        street = np.full((n, n), BUILDING, dtype=np.int8)
        traffic = np.zeros((n, n), dtype=np.int8)
        oneway = np.zeros((n, n), dtype=np.int8)
        classes, anchors = zip(_line_classes(rng, len(rows), n), _line_classes(rng, len(cols), n))
        kinds = []  # per axis: (class, oneway code) of each line
        for axis, lines in enumerate((rows, cols)):
            crossings = np.array(cols if axis == 0 else rows)
            kinds.append([])
            for k, line in enumerate(lines):
                cls = classes[axis][k]
                p_oneway = {RESIDENTIAL: 0.3, ARTERIAL: 0.25}.get(cls, 0.0) if k != anchors[axis] else 0.0
                code = 0
                if rng.random() < p_oneway:
                    code = 1 + (int(rng.integers(2)) * 2 + (1 if axis == 0 else 0))  # rows: right/left, cols: up/down
                kinds[axis].append((cls, code))
                s, t, o = self._line(rng, n, cls, code, crossings)
                view = (line, slice(None)) if axis == 0 else (slice(None), line)
                street[view], traffic[view], oneway[view] = s, t, o
        for i, r in enumerate(rows):  # crossings: interchanges at highways, else the larger street; two-way
            for j, c in enumerate(cols):
                a, b = kinds[0][i][0], kinds[1][j][0]
                if HIGHWAY in (a, b):
                    street[r, c] = ARTERIAL
                else:
                    street[r, c] = max(a, b, key=(BIKE_LANE, RESIDENTIAL, ARTERIAL).index)
                oneway[r, c] = 0
                near = [traffic[r + dr, c + dc] for dr, dc in zip(DR, DC) if 0 <= r + dr < n and 0 <= c + dc < n and street[r + dr, c + dc] != BUILDING]
                traffic[r, c] = max(near, default=0) if street[r, c] != BIKE_LANE else 0
        off = street == BUILDING
        traffic[off], oneway[off] = 0, 0
        return street, traffic, oneway

    def _line(
        self, rng: np.random.Generator, n: int, cls: int, code: int, crossings: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cells of one street line: class, traffic per segment, closures, low bridges, one-way code."""
        segment = np.searchsorted(crossings, np.arange(n))  # segment id of each cell (crossings overwritten later)
        count = len(crossings) + 1
        street = np.full(n, cls, dtype=np.int8)
        if self.traffic == "none":
            levels = np.zeros(count, dtype=np.int8)
        else:
            levels = rng.choice(NUM_LEVELS, size=count, p=_TRAFFIC_P[self.traffic][cls]).astype(np.int8)
        ends = (segment == 0) | (segment == count - 1)
        if code:  # one-way lines stop at their outer crossings (no dead-end stubs)
            street[ends] = BUILDING
        elif cls in (RESIDENTIAL, BIKE_LANE):
            closed = rng.random(count) < np.where(np.arange(count) % (count - 1 or 1) == 0, 0.3, 0.12)
            street[closed[segment]] = BUILDING
        if cls == ARTERIAL and not code:
            for k in np.flatnonzero(rng.random(count) < 0.15):
                cells = np.flatnonzero((segment == k) & ~ends)
                if len(cells):
                    street[cells[rng.integers(len(cells))]] = LOW_BRIDGE
        return street, levels[segment], np.where(street != BUILDING, code, 0).astype(np.int8)


def _lines(rng: np.random.Generator, n: int) -> list[int]:
    """Positions of the street lines of one axis: blocks of 2..4 buildings between them, at least 2 lines."""
    while True:
        p, out = int(rng.integers(0, 2)), []
        while p < n:
            out.append(p)
            p += int(rng.integers(3, 6))
        if len(out) >= 2:
            return out


def _line_classes(rng: np.random.Generator, count: int, n: int) -> tuple[list[int], int]:
    """Classes of the lines of one axis (maybe a highway if n >= 16, arterials, residential, bike lanes)
    and the anchor line: an arterial or highway kept two-way so every vehicle has a through street."""
    u = rng.random(count)
    classes = np.where(u < 0.25, ARTERIAL, np.where(u < 0.83, RESIDENTIAL, BIKE_LANE)).tolist()
    if n >= 16 and rng.random() < 0.7:
        classes[int(rng.integers(count))] = HIGHWAY
    arterial = [k for k, c in enumerate(classes) if c in (ARTERIAL, HIGHWAY)]
    if arterial:
        return classes, arterial[int(rng.integers(len(arterial)))]
    anchor = int(rng.integers(count))
    classes[anchor] = ARTERIAL
    return classes, anchor
