"""Hanoi encodings: one token per disk, a disk/peg graph, and plain text."""

from __future__ import annotations

import networkx as nx
import numpy as np
from gymnasium import spaces

from hrm_envs.hanoi.env import ABSENT, parse_observation

PEG_NAMES = "ABC"


class HanoiEncoder:
    """Encodings of Hanoi observations.

    - ``tokens``: one token per disk, smallest first: ``1 + 3 * peg + goal_peg`` (1..9), 0 for absent
      disks; ``seq_len = max_disks``, ``vocab_size = 10``. Token ``i`` is always disk ``i``, so a per-disk
      action head applies to any number of disks: action ``3 * d + p`` is token ``d``'s ``p``-th logit, STOP global.
    - ``graph``: a ``DiGraph`` with peg nodes ``("peg", p)`` and disk nodes ``("disk", d)`` (attributes
      ``size``, ``peg``, ``goal_peg``); edges ``on`` (disk -> the disk or peg right below it now) and
      ``goal`` (disk -> its goal peg).
    - ``text``: pegs A, B, C listed bottom to top, for the state and for the goal.
    """

    vocab_size = 10
    per_token_actions = 3  # action 3 * disk + peg belongs to the disk's token
    global_actions = 1  # STOP

    def __init__(self, observation_space: spaces.Dict):
        self.seq_len = int(observation_space["state"].shape[0])

    def tokens(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        state, goal = np.asarray(obs["state"], np.int64), np.asarray(obs["goal"], np.int64)
        return np.where(state == ABSENT, 0, 1 + 3 * state + goal)

    def graph(self, obs: dict[str, np.ndarray]) -> nx.DiGraph:
        state, goal = parse_observation(obs)
        graph = nx.DiGraph()
        for p in range(3):
            graph.add_node(("peg", p), kind="peg", name=PEG_NAMES[p])
        below = {p: ("peg", p) for p in range(3)}
        for d in range(len(state) - 1, -1, -1):  # largest first, so "below" is the disk under d
            node = ("disk", d)
            graph.add_node(node, kind="disk", size=d + 1, peg=state[d], goal_peg=goal[d])
            graph.add_edge(node, below[state[d]], relation="on")
            graph.add_edge(node, ("peg", goal[d]), relation="goal")
            below[state[d]] = node
        return graph

    def text(self, obs: dict[str, np.ndarray]) -> str:
        state, goal = parse_observation(obs)

        def describe(config: list[int]) -> str:
            pegs = []
            for p in range(3):
                disks = [str(d + 1) for d in range(len(config) - 1, -1, -1) if config[d] == p]
                pegs.append(f"{PEG_NAMES[p]}: {' '.join(disks) if disks else 'empty'}")
            return "; ".join(pegs)

        return (
            f"Tower of Hanoi with {len(state)} disks (1 = smallest), pegs listed bottom to top. "
            f"Now: {describe(state)}. Goal: {describe(goal)}."
        )
