"""One evaluation loop for every policy and environment: closed-loop episodes and teacher forcing.

A policy is anything with ``act_batch(obs) -> (actions, segments)`` on a batch of observations
(``segments`` = reasoning segments used per decision, 1 for policies without ACT). Episodes of a
batch run in lockstep so a model sees one batched forward per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

import hrm_envs  # noqa: F401
from oracles import oracle_for
from oracles.base import Oracle

Obs = dict[str, np.ndarray]


class Policy(Protocol):
    def act_batch(self, obs: Obs) -> tuple[np.ndarray, np.ndarray]:
        """Actions and reasoning segments used, one per row of the batched observation."""
        ...


def stack(observations: list[Obs]) -> Obs:
    return {key: np.stack([o[key] for o in observations]) for key in observations[0]}


class OraclePolicy:
    """The oracle as a policy (reference row: must score 100%)."""

    def __init__(self, oracle: Oracle):
        self.oracle = oracle

    def act_batch(self, obs: Obs) -> tuple[np.ndarray, np.ndarray]:
        actions = self.oracle.act_batch(obs)
        return actions, np.ones(len(actions), dtype=np.int64)


class RandomMaskedPolicy:
    """Uniformly random legal actions (reference row)."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def act_batch(self, obs: Obs) -> tuple[np.ndarray, np.ndarray]:
        mask = obs["action_mask"].astype(bool)
        scores = np.where(mask, self.rng.random(mask.shape), -1.0)
        return scores.argmax(axis=1), np.ones(len(mask), dtype=np.int64)


@dataclass
class Episode:
    """One closed-loop episode and the oracle's verdict on each decision."""

    size: str
    success: bool = False
    cost: float = 0.0
    optimal_cost: float = 0.0
    steps: int = 0
    first_error_step: int | None = None  # first action outside the optimal set
    segments: list[int] = field(default_factory=list)
    observations: list[Obs] = field(default_factory=list)  # kept when record=True (DAgger)
    actions: list[int] = field(default_factory=list)


def run_episodes(
    policy: Policy,
    envs: list[gym.Env],
    seeds: list[int],
    sizes: list[str],
    oracle: Oracle,
    record: bool = False,
) -> list[Episode]:
    """Run one episode per env (reset with its seed) in lockstep; label every decision with the oracle."""
    observations = [env.reset(seed=seed)[0] for env, seed in zip(envs, seeds)]
    episodes = [Episode(size=size, optimal_cost=oracle.cost_to_go(obs)) for size, obs in zip(sizes, observations)]
    active = list(range(len(envs)))
    while active:
        batch = stack([observations[i] for i in active])
        actions, segments = policy.act_batch(batch)
        labels = oracle.label_batch(batch)
        still = []
        for row, i in enumerate(active):
            episode, action = episodes[i], int(actions[row])
            if episode.first_error_step is None and not labels.optimal[row, action]:
                episode.first_error_step = episode.steps
            if record:
                episode.observations.append(observations[i])
                episode.actions.append(action)
            episode.segments.append(int(segments[row]))
            observations[i], _, terminated, truncated, info = envs[i].step(action)
            episode.steps += 1
            episode.cost += float(info["cost"])
            if terminated or truncated:
                episode.success = bool(info["is_success"])
            else:
                still.append(i)
        active = still
    return episodes


def teacher_forcing(policy: Policy, observations: list[Obs], oracle: Oracle, batch_size: int = 256) -> float:
    """Share of oracle states where the policy's action is optimal."""
    hits = 0
    for start in range(0, len(observations), batch_size):
        batch = stack(observations[start : start + batch_size])
        actions, _ = policy.act_batch(batch)
        optimal = oracle.label_batch(batch).optimal
        hits += int(optimal[np.arange(len(actions)), actions].sum())
    return hits / max(1, len(observations))


def oracle_states(envs: list[gym.Env], seeds: list[int], oracle: Oracle) -> list[list[Obs]]:
    """The states of the oracle's own trajectory for each (env, seed)."""
    trajectories = []
    for env, seed in zip(envs, seeds):
        obs, _ = env.reset(seed=seed)
        states = [obs]
        for action in oracle.solve(obs)[:-1]:
            obs, *_ = env.step(action)
            states.append(obs)
        trajectories.append(states)
    return trajectories


def summarize(episodes: list[Episode], tf_accuracy: dict[str, float] | None = None) -> dict[str, Any]:
    """Per-size and overall metrics: success, optimality ratio, TF accuracy and gap, first errors, segments."""
    out: dict[str, Any] = {}
    groups = {size: [e for e in episodes if e.size == size] for size in dict.fromkeys(e.size for e in episodes)}
    for size, group in {**groups, "all": episodes}.items():
        success = float(np.mean([e.success for e in group]))
        ratios = [e.optimal_cost / e.cost if e.success and e.cost > 0 else float(e.success) for e in group]
        first_errors = [e.first_error_step for e in group if e.first_error_step is not None]
        row = {
            "episodes": len(group),
            "success": success,
            "optimality_ratio": float(np.mean(ratios)),
            "optimal_episodes": float(np.mean([e.success and e.first_error_step is None for e in group])),
            "mean_segments": float(np.mean([s for e in group for s in e.segments])) if group else 0.0,
            "first_error_steps": first_errors,
        }
        if tf_accuracy is not None and size in tf_accuracy:
            row["teacher_forcing"] = tf_accuracy[size]
            row["gap"] = tf_accuracy[size] - success
        out[size] = row
    return out
