"""Route-quality metrics that expose cheating, for any predicted route or path mask (a model that marks every
cell, or none, as path can score high token accuracy; these metrics cannot be fooled that way).

A prediction is a route (a sequence of ``(row, col)`` cells), a path mask (2-D array, non-zero =
on the path; a ``max_size`` padded mask is cropped to the city), or seq2seq labels (use
``labels_to_mask``). Against a puzzle (``CityPuzzle`` or an observation, whose position is the start):

- ``arrived``: 1.0 iff the vehicle can drive from start to destination by legal moves (restrictions,
  one-way streets) using only predicted cells;
- ``valid``: 1.0 iff at least one cell is predicted and the vehicle may use every predicted cell;
  ``valid_ratio`` is the share of predicted cells it may use;
- ``path_ratio``: share of the city's cells predicted (the "mark the whole grid" cheat gives 1.0);
- ``path_f1``: F1 of predicted cells against a reference optimal route (default: the oracle's
  canonical route, i.e. the seq2seq labels);
- ``efficiency``: optimal travel time / travel time of the best legal route inside the predicted
  cells (0.0 if none); ``optimal``: 1.0 iff that route takes the optimal travel time (a cost-optimal route, the
  canonical one or another of equal time). The oracle route scores 1.0 on every metric except ``path_ratio``.

A per-cell move field connects start and destination by construction: :func:`optimal_moves` is the oracle's
(every street cell's optimal moves towards the destination, an auxiliary target of seq2seq training) and
:func:`follow_field` decodes a predicted one into a route mask by walking it from the start
(:func:`follow_route`); :func:`field_break` says where such a walk first leaves the optimal moves.
"""

from __future__ import annotations

import math

from typing import Any, Sequence

import numpy as np

from hrm_envs.city.encoding import ON_ROUTE
from hrm_envs.city.env import parse_observation
from hrm_envs.city.generator import DC, DR, CityPuzzle

METRICS = ("arrived", "valid", "valid_ratio", "path_ratio", "path_f1", "efficiency", "optimal")


def labels_to_mask(labels: np.ndarray, max_size: int) -> np.ndarray:
    """A ``max_size x max_size`` path mask from seq2seq labels (or predictions) of length ``max_size ** 2``."""
    labels = np.asarray(labels)
    if labels.shape != (max_size * max_size,):
        raise ValueError(f"labels must have shape ({max_size * max_size},), got {labels.shape}")
    return (labels == ON_ROUTE).reshape(max_size, max_size)


def as_mask(prediction: Any, size: int) -> np.ndarray:
    """A bool ``size x size`` mask of a route (cells) or a path mask (cropped to the city)."""
    array = np.asarray(prediction)
    if array.ndim == 2 and array.shape[0] == array.shape[1] and array.shape[0] >= size and array.shape[0] != 2:
        return array[:size, :size] != 0
    if array.size == 0:
        return np.zeros((size, size), dtype=bool)
    if array.ndim == 2 and array.shape[1] == 2 and np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() >= size:
            raise ValueError(f"route cells must lie inside the {size}x{size} city, got {prediction!r:.80}")
        mask = np.zeros((size, size), dtype=bool)
        mask[array[:, 0], array[:, 1]] = True
        return mask
    raise ValueError(f"prediction must be a route of (row, col) cells or a square path mask of side >= {size}")


def _puzzle(puzzle: CityPuzzle | dict) -> CityPuzzle:
    return puzzle if isinstance(puzzle, CityPuzzle) else parse_observation(puzzle)


def reference_route(puzzle: CityPuzzle | dict) -> list[tuple[int, int]]:
    """The oracle's canonical optimal route from the puzzle's start."""
    from oracles.city import CityRoutingOracle  # the oracle builds on this package, not the reverse

    p = _puzzle(puzzle)
    obs = {
        "street": p.street, "traffic": p.traffic, "oneway": p.oneway, "vehicle": np.array([p.vehicle]),
        "position": np.array(p.start), "destination": np.array(p.destination),
    }  # fmt: skip
    return CityRoutingOracle(cache_size=1).route(obs)


def route_metrics(
    puzzle: CityPuzzle | dict, prediction: Any, reference: Sequence[tuple[int, int]] | None = None
) -> dict[str, float]:
    """All metrics of one prediction (see the module docstring)."""
    p = _puzzle(puzzle)
    n = p.size
    mask = as_mask(prediction, n)
    net = p.network()
    padded = np.zeros((n + 2, n + 2), dtype=bool)
    padded[1:-1, 1:-1] = mask
    allowed = padded.ravel()
    start, dest = net.flat(p.start), net.flat(p.destination)
    optimal = net.distances_to(dest)[start]
    inside = net.distances_to(dest, allowed=allowed)[start] if allowed[start] and allowed[dest] else np.inf
    arrived = bool(np.isfinite(inside))
    marked = int(mask.sum())
    usable = int((mask & (net.cost.reshape(n + 2, n + 2)[1:-1, 1:-1] > 0)).sum())
    ref = as_mask(reference_route(p) if reference is None else list(reference), n)
    hits = int((mask & ref).sum())
    f1 = 2 * hits / (marked + int(ref.sum())) if marked else 0.0
    return {
        "arrived": float(arrived),
        "valid": float(marked > 0 and usable == marked),
        "valid_ratio": usable / marked if marked else 0.0,
        "path_ratio": marked / (n * n),
        "path_f1": f1,
        "efficiency": float(optimal / inside) if arrived else 0.0,
        "optimal": float(arrived and math.isclose(inside, optimal, rel_tol=1e-9)),
    }


def label_metrics(puzzle: CityPuzzle | dict, labels: np.ndarray) -> dict[str, float]:
    """:func:`route_metrics` of seq2seq labels (or predictions) of length ``max_size ** 2`` (the registry's
    ``label_metrics`` of city routing), and the seed study's two traps: ``no_path`` (1.0 when no cell is
    marked) and ``all_path`` (1.0 when at least half of the city's cells are)."""
    measured = route_metrics(puzzle, labels_to_mask(labels, math.isqrt(np.asarray(labels).size)))
    measured.update(no_path=float(measured["path_ratio"] == 0), all_path=float(measured["path_ratio"] >= 0.5))
    return measured


def _flat_field(obs: dict, size: int, max_size: int, values: np.ndarray) -> np.ndarray:
    """City-cell values (``size x size x K``) laid out on the padded token grid (``max_size ** 2 x K``)."""
    grid = np.full((max_size, max_size, values.shape[-1]), np.nan if values.dtype.kind == "f" else 0, dtype=values.dtype)
    grid[:size, :size] = values
    return grid.reshape(max_size * max_size, -1)


def optimal_moves(obs: dict) -> np.ndarray:
    """(``max_size ** 2``, 4) bool: the moves of every street cell that start an optimal route to the destination
    (none at the destination and at cells that cannot reach it); the registry's ``move_field`` of city routing."""
    p = _puzzle(obs)
    n, max_size = p.size, int(np.asarray(obs["street"]).shape[0])
    net = p.network()
    dist = net.distances_to(net.flat(p.destination))
    moves = net.moves.astype(bool)
    best = np.zeros_like(moves)
    for d, step in enumerate(net.step):
        after = np.roll(dist, -step) + np.roll(net.cost, -step)  # reaching the neighbour, then its distance
        best[:, d] = moves[:, d] & np.isfinite(dist) & np.isclose(after, dist)
    inner = best.reshape(n + 2, n + 2, 4)[1:-1, 1:-1]
    return _flat_field(obs, n, max_size, inner)


def follow_route(obs: dict, scores: np.ndarray) -> list[tuple[int, int]]:
    """The cells, in order, of the walk of a predicted move field from the start: at each cell the best-scoring
    legal move to a cell not yet visited, until the destination, a cell without such a move, or ``size ** 2``
    moves. ``scores`` is (``max_size ** 2``, 4), e.g. a model's per-cell move logits."""
    p = _puzzle(obs)
    n, max_size = p.size, int(np.asarray(obs["street"]).shape[0])
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != max_size * max_size or scores.shape[1] < 4:
        raise ValueError(f"scores must have shape ({max_size * max_size}, 4) (extra columns, e.g. a cost-to-go "
                         f"estimate, are ignored), got {scores.shape}")
    scores = scores[:, :4]
    net = p.network()
    cell, dest = p.start, p.destination
    route, seen = [cell], {cell}
    for _ in range(n * n):
        if cell == dest:
            break
        legal = net.moves[net.flat(cell)]
        options = [(scores[cell[0] * max_size + cell[1], d], d) for d in range(4) if legal[d]
                   and (cell[0] + DR[d], cell[1] + DC[d]) not in seen]
        if not options:
            break
        d = max(options)[1]
        cell = (cell[0] + DR[d], cell[1] + DC[d])
        route.append(cell)
        seen.add(cell)
    return route


#: Travel time per unit of :func:`cost_to_go` (a few units across a 40x40 city).
COST_SCALE = 100.0


def cost_to_go(obs: dict) -> np.ndarray:
    """(``max_size ** 2``,) float32: every cell's optimal travel time to the destination over :data:`COST_SCALE`
    (NaN outside the city and where the destination cannot be reached); the registry's ``cost_field`` of city
    routing, an auxiliary regression target: the quantity a min-plus (Bellman-Ford) update propagates."""
    p = _puzzle(obs)
    n, max_size = p.size, int(np.asarray(obs["street"]).shape[0])
    net = p.network()
    dist = net.distances_to(net.flat(p.destination)).reshape(n + 2, n + 2)[1:-1, 1:-1]
    values = np.where(np.isfinite(dist), dist / COST_SCALE, np.nan).astype(np.float32)
    return _flat_field(obs, n, max_size, values[..., None])[:, 0]


def follow_field(obs: dict, scores: np.ndarray) -> np.ndarray:
    """Seq2seq labels (0 outside the city, 1 off the route, 2 on it) of :func:`follow_route`: the route is
    connected and legal by construction (the registry's ``follow_field`` of city routing)."""
    max_size = int(np.asarray(obs["street"]).shape[0])
    labels = np.where(np.asarray(obs["street"]).reshape(-1) != 0, 1, 0).astype(np.int64)
    for r, c in follow_route(obs, scores):
        labels[r * max_size + c] = ON_ROUTE
    return labels


def field_break(obs: dict, scores: np.ndarray) -> dict[str, float] | None:
    """Where the walk of a predicted move field (:func:`follow_route`) first takes a move that is not one of the
    oracle's (:func:`optimal_moves`): the oracle's travel time from that cell to the destination
    (``time_to_goal``) and its share of the start's (``share``: 1.0 = the first move, near 0 = next to the goal).
    None when every move is optimal (then the walk arrives). The registry's ``field_break`` of city routing."""
    route = follow_route(obs, scores)
    p = _puzzle(obs)
    max_size = int(np.asarray(obs["street"]).shape[0])
    best = optimal_moves(obs)
    net = p.network()
    dist = net.distances_to(net.flat(p.destination))
    for a, b in zip(route, route[1:]):
        d = list(zip(DR, DC)).index((b[0] - a[0], b[1] - a[1]))
        if not best[a[0] * max_size + a[1], d]:
            time = float(dist[net.flat(a)])
            return {"time_to_goal": time, "share": time / float(dist[net.flat(p.start)])}
    return None


def mean_metrics(results: Sequence[dict[str, float]]) -> dict[str, float]:
    """Average of ``route_metrics`` results (e.g. over a validation set)."""
    if not results:
        raise ValueError("results must hold at least one metrics dict")
    return {key: float(np.mean([r[key] for r in results])) for key in METRICS}
