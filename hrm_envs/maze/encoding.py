"""Maze encodings in HRM's Maze-Hard format: one token per cell, a floor-cell graph, and text.

- ``tokens``: row-major over the ``max_size x max_size`` ``walls`` grid, PAD 0 outside the maze,
  ``'#'`` 1, ``' '`` 2, ``'S'`` 3 (the agent's CURRENT position), ``'G'`` 4; ``vocab_size = 6`` (5 is
  ``'o'``, used by ``seq2seq`` labels); ``seq_len = max_size ** 2``. The 4 moves are global actions
  (``per_token_actions = 0``). On the last observation of an episode (agent on the goal) the cell shows 'S'.
- ``seq2seq(obs, oracle)``: HRM's input/label pair; labels mark with ``'o'`` every cell the oracle's
  ``solve`` path passes between S and G (S and G keep their tokens), so with ``size=30``,
  ``max_size=30`` and ``min_path_len=111`` it reproduces the Maze-Hard task layout.
- ``graph``: an undirected ``nx.Graph`` of the floor cells, nodes ``(row, col)`` with attributes
  ``position``, ``is_goal``, ``is_agent``, 4-neighbour edges with ``cost`` 1.
- ``text``: the maze in HRM's characters, one line per row, after a one-line legend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx
import numpy as np
from gymnasium import spaces

from hrm_envs.maze.env import parse_observation
from hrm_envs.maze.generator import MOVES, MazePuzzle

if TYPE_CHECKING:  # the env package does not import the oracles at run time
    from oracles.base import Oracle

PAD, WALL, FLOOR, START, GOAL, PATH = 0, 1, 2, 3, 4, 5
_CELL_TOKENS = np.array([FLOOR, WALL, PAD], dtype=np.int64)  # indexed by the walls code 0 floor, 1 wall, 2 outside


class MazeEncoder:
    """Encodings of Maze observations; see the module docstring."""

    vocab_size = 6
    seq2seq_vocab_size = 6
    per_token_actions = 0
    global_actions = 4
    acting_tokens = (START,)  # the agent's cell: the 4 global moves are its moves

    def __init__(self, observation_space: spaces.Dict):
        self.max_size = int(observation_space["walls"].shape[0])
        self.seq_len = self.max_size**2
        self.grid_width = self.max_size  # the tokens are the max_size x max_size grid, row-major

    def tokens(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Int64 tokens of shape ``batch_shape + (seq_len,)``."""
        walls = np.asarray(obs["walls"], np.int64)
        tokens = _CELL_TOKENS[walls.reshape(walls.shape[:-2] + (-1,))]
        for key, token in (("goal", GOAL), ("position", START)):
            cell = np.asarray(obs[key], np.int64)
            index = (cell[..., 0] * self.max_size + cell[..., 1])[..., None]
            np.put_along_axis(tokens, index, token, axis=-1)
        return tokens

    def seq2seq(self, obs: dict[str, np.ndarray], oracle: Oracle) -> tuple[np.ndarray, np.ndarray]:
        """``(inputs, labels)`` int64 arrays of shape ``(seq_len,)``: the maze, and it with the path marked 'o'."""
        inputs = self.tokens(obs)
        labels = inputs.copy()
        r, c = (int(v) for v in obs["position"])
        for action in oracle.solve(obs)[:-1]:
            r, c = r + MOVES[action][0], c + MOVES[action][1]
            labels[r * self.max_size + c] = PATH
        return inputs, labels

    def graph(self, obs: dict[str, np.ndarray]) -> nx.Graph:
        """Floor cells as nodes, 4-neighbour edges (cost 1); graph attributes ``position``, ``goal``, ``shape``."""
        floor, position, goal = parse_observation(obs)
        graph = nx.Graph(position=position, goal=goal, shape=floor.shape)
        cells = [tuple(cell) for cell in np.argwhere(floor).tolist()]
        graph.add_nodes_from((cell, {"position": cell, "is_goal": cell == goal, "is_agent": cell == position}) for cell in cells)
        for pairs, dr, dc in ((floor[:, :-1] & floor[:, 1:], 0, 1), (floor[:-1] & floor[1:], 1, 0)):
            graph.add_edges_from(((r, c), (r + dr, c + dc), {"cost": 1}) for r, c in np.argwhere(pairs).tolist())
        return graph

    def text(self, obs: dict[str, np.ndarray]) -> str:
        floor, position, goal = parse_observation(obs)
        h, w = floor.shape
        rows = MazePuzzle(~floor, position, goal).rows()  # 'S' covers 'G' on the last observation
        return (
            f"Maze of {h}x{w} cells: '#' wall, ' ' floor, 'S' you, 'G' goal; moves 0 up, 1 right, 2 down, 3 left.\n"
            + "\n".join(rows)
        )
