"""The oracle protocol shared by every environment of the suite."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

import numpy as np

Obs = dict[str, np.ndarray]


class Label(NamedTuple):
    """Everything an oracle says about one observation."""

    optimal: frozenset[int]
    action: int
    cost_to_go: float


class LabelBatch(NamedTuple):
    """Labels of a batch: ``optimal`` is a (batch, num_actions) bool mask."""

    optimal: np.ndarray
    action: np.ndarray
    cost_to_go: np.ndarray


class Oracle(ABC):
    """Optimal labels of an environment's observations, from any reachable state.

    ``cost_to_go`` is the minimal sum of ``info["cost"]`` over action sequences that end in a
    successful terminating step; ``optimal_actions`` holds every action that starts such a
    sequence; ``act`` is one deterministic member (documented per oracle); ``solve`` is a whole
    optimal sequence. Subclasses give the first three and ``successor``, the env's own transition
    as a pure function of the observation, which ``solve`` uses.
    """

    #: Upper bound on ``solve`` length, guarding against a non-terminating label loop.
    max_solve_steps: int = 1_000_000
    #: Classes of :meth:`token_labels` (0: this oracle gives no per-token labels).
    token_label_classes: int = 0

    @abstractmethod
    def cost_to_go(self, obs: Obs) -> float:
        """Minimal total cost to a successful termination."""

    @abstractmethod
    def optimal_actions(self, obs: Obs) -> frozenset[int]:
        """Every action that starts a minimal-cost successful sequence."""

    @abstractmethod
    def act(self, obs: Obs) -> int:
        """One deterministic optimal action (the oracle's canonical choice)."""

    @abstractmethod
    def successor(self, obs: Obs, action: int) -> tuple[Obs, bool]:
        """The observation after ``action`` and whether that step terminates the episode."""

    def label(self, obs: Obs) -> Label:
        """Optimal set, canonical action and cost-to-go at once (oracles override it to share work)."""
        return Label(self.optimal_actions(obs), self.act(obs), self.cost_to_go(obs))

    def label_batch(self, obs: Obs) -> LabelBatch:
        """``label`` over a batch of observations (leading dimension), as vector envs return them."""
        size, num_actions = obs["action_mask"].shape
        optimal = np.zeros((size, num_actions), dtype=bool)
        action = np.zeros(size, dtype=np.int64)
        cost = np.zeros(size, dtype=np.float64)
        for i in range(size):
            label = self.label({key: value[i] for key, value in obs.items()})
            optimal[i, list(label.optimal)] = True
            action[i], cost[i] = label.action, label.cost_to_go
        return LabelBatch(optimal, action, cost)

    def act_batch(self, obs: Obs) -> np.ndarray:
        """``act`` over a batch of observations."""
        return self.label_batch(obs).action

    def token_labels(self, obs: Obs) -> np.ndarray:
        """Per-token intermediate targets of a batch, (batch, seq_len) int64 in ``[0, token_label_classes)``,
        ``-100`` where a token has none: the oracle's plan spelled out per token (auxiliary supervision, e.g.
        ``train.dagger`` with ``dagger.token_labels=true``). Oracles with ``token_label_classes > 0`` give it."""
        raise NotImplementedError(f"{type(self).__name__} gives no per-token labels (token_label_classes = 0)")

    def token_costs(self, obs: Obs) -> np.ndarray:
        """Each token's cost to the goal, (batch, seq_len) float32, NaN where :meth:`token_labels` has no label (what
        ``model.front_rate`` training reads). The grid oracles (:class:`oracles.field.FieldOracle`) give it."""
        raise NotImplementedError(f"{type(self).__name__} gives no per-token costs to the goal")

    def solve(self, obs: Obs) -> list[int]:
        """A whole optimal action sequence from ``obs``, ending with the successful terminating step."""
        actions: list[int] = []
        done = False
        while not done:
            if len(actions) >= self.max_solve_steps:
                raise RuntimeError(f"solve exceeded {self.max_solve_steps} steps; the oracle is not making progress")
            action = self.act(obs)
            actions.append(action)
            obs, done = self.successor(obs, action)
        return actions
