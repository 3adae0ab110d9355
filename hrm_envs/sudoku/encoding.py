"""Sudoku encodings: HRM's one token per cell, a constraint graph, plain text, and seq2seq pairs.

- ``tokens``: row-major, one token per cell, ``seq_len = n * n``. HRM's Sudoku ids for blanks and
  givens: 0 PAD (never produced: every cell is in the grid), 1 blank, ``1 + d`` a given digit ``d``
  (2..n+1). A digit the player wrote gets ``1 + n + d`` (n+2..2n+1), because the policy must tell
  its own, possibly wrong, digits from the givens; ``vocab_size = 2 * n + 2`` (20 for 9x9). A freshly
  reset puzzle therefore encodes exactly as in HRM's Sudoku data.
- Policy heads: ``per_token_actions = n + 1``, ``global_actions = 0``: action ``cell * (n + 1) + k``
  belongs to the cell's token (``k < n`` writes ``k + 1``, ``k = n`` erases), the env's own layout.
- ``seq2seq(obs, oracle)``: HRM's puzzle -> solution pair. ``inputs`` are the puzzle's tokens
  (givens only, the player's digits dropped), ``labels`` the solution's (``1 + digit``);
  ``seq2seq_vocab_size = n + 2`` (11 for 9x9, as HRM).
- ``graph``: an undirected ``nx.Graph`` over the cells ``(row, col)`` with attributes ``row``, ``col``,
  ``box``, ``digit`` (0 = empty), ``given``; an edge joins every two cells that share a unit, with
  ``units`` naming the shared ones (``"row"``, ``"col"``, ``"box"``). Graph attributes ``box``, ``n``.
- ``text``: a legend, the givens and the current grid in the text form ('.' blank).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx
import numpy as np
from gymnasium import spaces

from hrm_envs.sudoku.env import parse_observation
from hrm_envs.sudoku.generator import SYMBOLS
from hrm_envs.sudoku.solver import geometry

if TYPE_CHECKING:  # the env package does not import the oracles at run time
    from oracles.sudoku import SudokuOracle

PAD, BLANK = 0, 1


class SudokuEncoder:
    """Encodings of Sudoku observations; see the module docstring."""

    global_actions = 0

    def __init__(self, observation_space: spaces.Dict):
        self.n = int(observation_space["grid"].shape[0])
        self.box = geometry(int(round(self.n**0.5))).box
        self.seq_len = self.n * self.n
        self.vocab_size = 2 * self.n + 2
        self.seq2seq_vocab_size = self.n + 2
        self.per_token_actions = self.n + 1

    def tokens(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Int64 tokens of shape ``batch_shape + (seq_len,)``."""
        grid = np.asarray(obs["grid"], np.int64)
        given = np.asarray(obs["givens"], bool)
        tokens = np.where(grid == 0, BLANK, np.where(given, 1 + grid, 1 + self.n + grid))
        return tokens.reshape(grid.shape[:-2] + (self.seq_len,))

    def seq2seq(self, obs: dict[str, np.ndarray], oracle: SudokuOracle) -> tuple[np.ndarray, np.ndarray]:
        """``(inputs, labels)`` int64 arrays ``batch_shape + (seq_len,)``: puzzle tokens and solution tokens."""
        grid = np.asarray(obs["grid"], np.int64)
        puzzle = np.where(np.asarray(obs["givens"], bool), 1 + grid, BLANK)
        shape = grid.shape[:-2] + (self.seq_len,)
        return puzzle.reshape(shape), (1 + oracle.solution(obs).astype(np.int64)).reshape(shape)

    def graph(self, obs: dict[str, np.ndarray]) -> nx.Graph:
        """Cells as nodes, an edge per pair of cells sharing a row, column or box (see the module docstring)."""
        box, grid, given = parse_observation(obs)
        g = geometry(box)
        graph = nx.Graph(box=box, n=g.n)
        for i in range(g.cells):
            r, c = divmod(i, g.n)
            graph.add_node((r, c), row=r, col=c, box=int(g.box_of[i]), digit=int(grid[i]), given=bool(given[i]))
        for i in range(g.cells):
            for j in g.peers[i]:
                if j > i:
                    shared = tuple(
                        name for name, key in (("row", g.row), ("col", g.col), ("box", g.box_of)) if key[i] == key[j]
                    )
                    graph.add_edge(divmod(i, g.n), divmod(j, g.n), units=shared)
        return graph

    def text(self, obs: dict[str, np.ndarray]) -> str:
        box, grid, given = parse_observation(obs)
        n = box * box

        def rows(digits: np.ndarray) -> list[str]:
            chars = ["." if d == 0 else SYMBOLS[d - 1] for d in digits.tolist()]
            return ["".join(chars[r * n : (r + 1) * n]) for r in range(n)]

        return "\n".join(
            [
                f"Sudoku {n}x{n} with {box}x{box} boxes: every row, column and box holds each of {SYMBOLS[:n]} once; "
                "'.' is empty.",
                "Givens:",
                *rows(np.where(given, grid, 0)),
                "Current grid (givens and your digits):",
                *rows(grid),
            ]
        )
