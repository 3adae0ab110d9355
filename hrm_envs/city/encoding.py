"""City encodings: one token per cell, a cell graph with per-vehicle costs, plain text, and seq2seq pairs.

Tokens (``vocab_size = 127``), row-major over the ``max_size x max_size`` grid:

| ids | meaning |
|---|---|
| 0 | outside the city (padding) |
| 1 | building |
| 2..101 | street cell: ``2 + ((street - 2) * 4 + traffic) * 5 + oneway`` (5 street classes x 4 traffic levels x 5 one-way codes) |
| 102..121 | the vehicle's cell: ``102 + 5 * vehicle + oneway`` |
| 122..126 | the destination: ``122 + oneway`` |

The vehicle and destination tokens keep the one-way code (it decides which moves leave or enter the
cell) but not class and traffic, which never change the optimal actions (the cost of the current cell
is never paid again on an optimal route, the destination's is paid by every route). Policy heads:
``per_token_actions = 0``, ``global_actions = 4`` (the moves).

``seq2seq(obs, oracle)`` gives an HRM-style pair: ``inputs = tokens(obs)`` (the start is the vehicle's
cell, so it carries the vehicle) and ``labels`` with 0 outside the city (ignore/pad), 1 off the route,
2 on the oracle's canonical route (start and destination included); ``seq2seq_vocab_size = 127``
covers both.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
from gymnasium import spaces

from hrm_envs.city.env import parse_observation
from hrm_envs.city.generator import BUILDING, COST, DC, DR, STREETS, TIME, VEHICLES, RoadNetwork
from hrm_envs.city.viewer import ARROWS, street_char

STREET_BASE, POSITION_BASE, DESTINATION_BASE = 2, 102, 122
OFF_ROUTE, ON_ROUTE = 1, 2


class CityEncoder:
    """Encodings of CityRouting observations; see the module docstring."""

    vocab_size = 127
    seq2seq_vocab_size = 127
    per_token_actions = 0
    global_actions = 4
    acting_tokens = tuple(range(POSITION_BASE, DESTINATION_BASE))  # the vehicle's cell: the 4 global moves are its moves

    def __init__(self, observation_space: spaces.Dict):
        self.max_size = int(observation_space["street"].shape[0])
        self.seq_len = self.max_size**2
        self.grid_width = self.max_size  # the tokens are the max_size x max_size grid, row-major

    def tokens(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        street = np.asarray(obs["street"], np.int64)
        traffic, oneway = np.asarray(obs["traffic"], np.int64), np.asarray(obs["oneway"], np.int64)
        grid = np.where(street >= 2, STREET_BASE + ((street - 2) * 4 + traffic) * 5 + oneway, street)
        flat_oneway = oneway.reshape(oneway.shape[:-2] + (-1,))
        tokens = grid.reshape(grid.shape[:-2] + (-1,))
        for key, value in (
            ("destination", DESTINATION_BASE),
            ("position", POSITION_BASE + 5 * np.asarray(obs["vehicle"], np.int64)),
        ):
            cell = np.asarray(obs[key], np.int64)
            index = (cell[..., 0] * self.max_size + cell[..., 1])[..., None]
            np.put_along_axis(tokens, index, value + np.take_along_axis(flat_oneway, index, -1), -1)
        return tokens

    def seq2seq(self, obs: dict[str, np.ndarray], oracle) -> tuple[np.ndarray, np.ndarray]:
        """``(inputs, labels)`` int64 arrays of shape ``(seq_len,)``; the route is ``oracle.route(obs)``."""
        labels = np.where(np.asarray(obs["street"]).reshape(-1) != 0, OFF_ROUTE, 0).astype(np.int64)
        for r, c in oracle.route(obs):
            labels[r * self.max_size + c] = ON_ROUTE
        return self.tokens(obs), labels

    def graph(self, obs: dict[str, np.ndarray]) -> nx.DiGraph:
        """Street cells as nodes (street, traffic, oneway), edges for moves the one-way rules allow.

        Edge attributes: ``action`` (0..3), ``allowed`` (the observation's vehicle may make the move),
        ``cost`` (its travel time, ``inf`` if not allowed) and ``barred_for`` (vehicles that may not).
        Graph attributes: ``vehicle``, ``position``, ``destination``, ``size``.
        """
        puzzle = parse_observation(obs)
        n = puzzle.size
        net = RoadNetwork(puzzle.street, puzzle.traffic, puzzle.oneway, puzzle.vehicle)
        graph = nx.DiGraph(vehicle=VEHICLES[puzzle.vehicle], position=puzzle.start, destination=puzzle.destination, size=n)
        streets = np.argwhere(puzzle.street > BUILDING)
        for r, c in streets.tolist():
            graph.add_node(
                (r, c), street=STREETS[puzzle.street[r, c]], traffic=int(puzzle.traffic[r, c]), oneway=int(puzzle.oneway[r, c])
            )
        for r, c in streets.tolist():
            for a in range(4):
                q = (r + DR[a], c + DC[a])
                if q not in graph.nodes:
                    continue
                against = 1 + (a + 2) % 4
                if puzzle.oneway[r, c] == against or puzzle.oneway[q] == against:
                    continue
                allowed = bool(net.moves[net.flat((r, c)), a])
                costs = COST[:, puzzle.street[q], puzzle.traffic[q]]
                graph.add_edge(
                    (r, c),
                    q,
                    action=a,
                    allowed=allowed,
                    cost=float(costs[puzzle.vehicle]) if allowed else math.inf,
                    barred_for=tuple(name for v, name in enumerate(VEHICLES) if costs[v] == 0 or TIME[v, puzzle.street[r, c]] == 0),
                )
        return graph

    def text(self, obs: dict[str, np.ndarray]) -> str:
        puzzle = parse_observation(obs)
        n = puzzle.size
        rows = []
        for r in range(n):
            cells = "".join(
                "@" if (r, c) == puzzle.start else "X" if (r, c) == puzzle.destination else street_char(puzzle, r, c)
                for c in range(n)
            )
            traffic = "".join(str(int(puzzle.traffic[r, c])) if puzzle.street[r, c] > BUILDING else "#" for c in range(n))
            rows.append(f"{cells}  {traffic}")
        return (
            f"City routing, {n}x{n} grid, vehicle: {VEHICLES[puzzle.vehicle]}, position (row, col) {puzzle.start}, "
            f"destination {puzzle.destination}. Map legend: # building, . residential, = arterial, H highway, "
            f"b bike lane, L low bridge, {''.join(ARROWS)} one-way street (direction of travel), @ vehicle, X destination. "
            "Right of each map row: traffic level 0-3 per street cell.\n" + "\n".join(rows)
        )

