"""One evaluation loop for every policy and environment: closed-loop episodes and teacher forcing.

A policy is anything with ``act_batch(obs, episodes=None) -> (actions, segments)`` on a batch of observations
(``segments`` = reasoning segments used per decision, 1 for policies without ACT; ``episodes`` = one id per
row, the same for every decision of an episode and never reused, from :func:`new_episode_ids`, for policies
that remember within an episode; others ignore it). Episodes of a batch run in lockstep so a model sees one
batched forward per step.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import gymnasium as gym
import numpy as np

import hrm_envs  # noqa: F401
from hrm_envs.core import int_arg
from oracles.base import Oracle
from train.stats import wilson_interval

Obs = dict[str, np.ndarray]


class Policy(Protocol):
    def act_batch(self, obs: Obs, episodes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Actions and reasoning segments used, one per row of the batched observation."""
        ...


_EPISODE_IDS = itertools.count()


def new_episode_ids(count: int) -> np.ndarray:
    """``count`` episode ids never handed out before in this process (a remembering policy starts afresh on them)."""
    return np.array([next(_EPISODE_IDS) for _ in range(count)], dtype=np.int64)


def env_fns(env_id: str, env_kwargs: dict[str, Any], size_arg: str, sizes: list[Any], num_envs: int) -> list[Callable[[], gym.Env]]:
    """Env constructors for vector envs: env ``i`` plays ``sizes[i % len(sizes)]`` (a value of ``size_arg``
    or a kwargs dict)."""
    if not sizes:
        raise ValueError("sizes must be a non-empty list of puzzle sizes")

    def make(size: Any) -> Callable[[], gym.Env]:
        kwargs = dict(size) if isinstance(size, dict) else {size_arg: size}
        return lambda: gym.make(env_id, **env_kwargs, **kwargs)

    return [make(sizes[i % len(sizes)]) for i in range(num_envs)]


class SizeMixture(gym.Env):
    """One env per size behind one interface; every reset plays a size drawn uniformly (for sizes such as
    Sudoku's named difficulties that an env cannot take as a ``(lo, hi)`` range). The sizes must share spaces.

    ``reset(seed=s)`` seeds the draw, and each size's env with a seed drawn from it (so mixtures seeded ``s`` and
    ``s + 1``, as a vector env's sub-envs are, share no env seed); later resets continue their streams.
    """

    def __init__(self, makers: list[Callable[[], gym.Env]]):
        if not makers:
            raise ValueError("makers must hold at least one env constructor")
        self.envs = [make() for make in makers]
        self.observation_space, self.action_space = self.envs[0].observation_space, self.envs[0].action_space
        for env in self.envs[1:]:
            if env.observation_space != self.observation_space or env.action_space != self.action_space:
                raise ValueError("every size of a SizeMixture must have the same observation and action spaces")
        self.metadata = self.envs[0].metadata
        self.current = self.envs[0]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Obs, dict]:
        super().reset(seed=seed)
        index = int(self.np_random.integers(len(self.envs)))
        self.current = self.envs[index]
        if seed is None:
            return self.current.reset(options=options)
        env_seeds = self.np_random.integers(2**31, size=len(self.envs)).tolist()
        for i, env in enumerate(self.envs):
            if i != index:
                env.reset(seed=env_seeds[i])
        return self.current.reset(seed=env_seeds[index], options=options)

    def step(self, action: Any) -> tuple[Obs, float, bool, bool, dict]:
        return self.current.step(action)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def stack(observations: list[Obs]) -> Obs:
    return {key: np.stack([o[key] for o in observations]) for key in observations[0]}


class OraclePolicy:
    """The oracle as a policy (reference row: must score 100%)."""

    def __init__(self, oracle: Oracle):
        self.oracle = oracle

    def act_batch(self, obs: Obs, episodes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        actions = self.oracle.act_batch(obs)
        return actions, np.ones(len(actions), dtype=np.int64)


class RandomMaskedPolicy:
    """Uniformly random legal actions (reference row)."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def act_batch(self, obs: Obs, episodes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
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


def check_horizon(horizon: Any, name: str = "env.eval_horizon") -> float | None:
    """``horizon`` as a float >= 1, or None; ``ValueError`` naming it (as ``name``) otherwise."""
    if horizon is None:
        return None
    if isinstance(horizon, bool) or not isinstance(horizon, (int, float)) or not horizon >= 1:
        raise ValueError(f"{name} must be null or a number >= 1, got {horizon!r}")
    return float(horizon)


def step_limit(oracle: Oracle, obs: Obs, horizon: float | None) -> float:
    """Steps an episode from ``obs`` may take: ``ceil(horizon * n)``, ``n`` = the oracle's solution length."""
    return math.ceil(horizon * len(oracle.solve(obs))) if horizon else math.inf


class OracleHorizon(gym.Wrapper):
    """Truncate an episode after ``step_limit`` steps (``horizon`` x the oracle's solution from its start), so
    that a lost learner stops wandering until the env's ``max_steps`` and DAgger collects more puzzles."""

    def __init__(self, env: gym.Env, oracle: Oracle, horizon: float):
        super().__init__(env)
        self.oracle, self.horizon = oracle, check_horizon(horizon, "horizon")
        self.steps, self.limit = 0, math.inf

    def reset(self, **kwargs: Any) -> tuple[Obs, dict]:
        obs, info = self.env.reset(**kwargs)
        self.steps, self.limit = 0, step_limit(self.oracle, obs, self.horizon)
        return obs, info

    def step(self, action: Any) -> tuple[Obs, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        if not (terminated or truncated) and self.steps >= self.limit:
            truncated, info = True, {**info, "is_success": False}
        return obs, reward, terminated, truncated, info


def run_episodes(
    policy: Policy,
    envs: list[gym.Env],
    seeds: list[int],
    sizes: list[str],
    oracle: Oracle,
    record: bool = False,
    horizon: float | None = None,
) -> list[Episode]:
    """Run one episode per env (reset with its seed) in lockstep; label every decision with the oracle.

    ``horizon``: cut an episode, as a failure, after ``ceil(horizon * n)`` steps, ``n`` = the length of the
    oracle's solution from the start (None: only the env's own ``max_steps``). On large grids a lost policy
    otherwise walks for the env's full ``2 * size ** 2`` steps, which costs a forward pass each.
    """
    horizon = check_horizon(horizon)
    observations = [env.reset(seed=seed)[0] for env, seed in zip(envs, seeds)]
    episodes = [Episode(size=size, optimal_cost=oracle.cost_to_go(obs)) for size, obs in zip(sizes, observations)]
    limits = [step_limit(oracle, obs, horizon) for obs in observations]
    ids = new_episode_ids(len(envs))
    active = list(range(len(envs)))
    while active:
        batch = stack([observations[i] for i in active])
        actions, segments = policy.act_batch(batch, ids[active])
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
            elif episode.steps < limits[i]:
                still.append(i)
        active = still
    return episodes


def trajectory_actions(policy: Policy, trajectories: list[list[Obs]], batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The policy's actions and segments on every state of ``trajectories``, flattened in trajectory order.

    A policy that ``remembers`` walks the trajectories in lockstep, one decision per state in order (as it acts
    in an episode); any other policy sees the states in batches of ``batch_size``.
    """
    states = [state for trajectory in trajectories for state in trajectory]
    if not states:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    actions, segments = np.zeros(len(states), np.int64), np.zeros(len(states), np.int64)
    if not getattr(policy, "remembers", False):
        for start in range(0, len(states), batch_size):
            acted, used = policy.act_batch(stack(states[start : start + batch_size]))
            actions[start : start + len(acted)], segments[start : start + len(acted)] = acted, used
        return actions, segments
    offsets = np.cumsum([0] + [len(t) for t in trajectories])
    ids = new_episode_ids(len(trajectories))
    for step in range(max(len(t) for t in trajectories)):
        rows = [i for i, trajectory in enumerate(trajectories) if step < len(trajectory)]
        acted, used = policy.act_batch(stack([trajectories[i][step] for i in rows]), ids[rows])
        flat = offsets[rows] + step
        actions[flat], segments[flat] = acted, used
    return actions, segments


def teacher_forcing_hits(policy: Policy, trajectories: list[list[Obs]], oracle: Oracle,
                         batch_size: int = 256) -> np.ndarray:
    """Whether the policy's action is optimal on each state of oracle ``trajectories`` (flattened in order)."""
    states = [state for trajectory in trajectories for state in trajectory]
    actions, _ = trajectory_actions(policy, trajectories, batch_size)
    hits = np.zeros(len(states), bool)
    for start in range(0, len(states), batch_size):
        optimal = oracle.label_batch(stack(states[start : start + batch_size])).optimal
        hits[start : start + len(optimal)] = optimal[np.arange(len(optimal)), actions[start : start + batch_size]]
    return hits


def teacher_forcing(policy: Policy, trajectories: list[list[Obs]], oracle: Oracle, batch_size: int = 256) -> float:
    """Share of the states of oracle ``trajectories`` where the policy's action is optimal."""
    hits = teacher_forcing_hits(policy, trajectories, oracle, batch_size)
    return float(hits.mean()) if len(hits) else 0.0


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
    """Per-size and overall metrics: success, optimality ratio, TF accuracy and gap, first errors, segments.

    ``success_ci95`` / ``optimal_episodes_ci95`` are 95% Wilson intervals; ``optimal_episodes`` counts episodes
    that reach the goal with only oracle-optimal actions, i.e. in exactly the oracle's cost."""
    out: dict[str, Any] = {}
    groups = {size: [e for e in episodes if e.size == size] for size in dict.fromkeys(e.size for e in episodes)}
    for size, group in {**groups, "all": episodes}.items():
        success = float(np.mean([e.success for e in group]))
        ratios = [e.optimal_cost / e.cost if e.success and e.cost > 0 else float(e.success) for e in group]
        first_errors = [e.first_error_step for e in group if e.first_error_step is not None]
        solved = sum(bool(e.success) for e in group)
        optimal = sum(bool(e.success and e.first_error_step is None) for e in group)
        row = {
            "episodes": len(group),
            "success": success,
            "success_ci95": list(wilson_interval(solved, len(group))),
            "optimality_ratio": float(np.mean(ratios)),
            "optimal_episodes": optimal / len(group),
            "optimal_episodes_ci95": list(wilson_interval(optimal, len(group))),
            "mean_segments": float(np.mean([s for e in group for s in e.segments])) if group else 0.0,
            "first_error_steps": first_errors,
        }
        if tf_accuracy is not None and size in tf_accuracy:
            row["teacher_forcing"] = tf_accuracy[size]
            row["gap"] = tf_accuracy[size] - success
        out[size] = row
    return out


@dataclass
class Transitions:
    """Steps collected on a vector env, env-major: row ``i * steps + t`` is step ``t`` of sub-env ``i``.

    Each sub-env's rows are consecutive (``env_index`` names the sub-env of each row), so ``done`` (=
    terminated or truncated) and a change of ``env_index`` split them into episodes; the last episode of each
    sub-env may be cut by the end of collection (``done`` False there). ``learner_action`` / ``segments`` are
    -1 / 0 where the learner was not queried (``beta == 1``).
    """

    obs: Obs
    next_obs: Obs
    action: np.ndarray  # executed (int64)
    expert_action: np.ndarray  # the oracle's canonical action (int64)
    optimal: np.ndarray  # (rows, num_actions) bool: the oracle's optimal-action set
    learner_action: np.ndarray  # int64
    expert_executed: np.ndarray  # bool: the mixture chose the expert
    segments: np.ndarray  # ACT segments of the learner's decision (int64)
    reward: np.ndarray  # float32
    terminated: np.ndarray  # bool
    truncated: np.ndarray  # bool
    success: np.ndarray  # bool, True on the terminating step of a successful episode
    env_index: np.ndarray  # int64: the sub-env of the vector env the row came from

    @property
    def done(self) -> np.ndarray:
        return self.terminated | self.truncated

    def __len__(self) -> int:
        return len(self.action)


def collect(
    envs: gym.vector.VectorEnv,
    learner: Policy | None,
    oracle: Oracle,
    steps: int,
    beta: float,
    seed: int,
) -> Transitions:
    """``steps`` steps of every sub-env with the DAgger mixture; every visited state labelled by the oracle.

    At each step and sub-env the oracle's action is executed with probability ``beta``, the learner's
    otherwise (``learner`` may be None only when ``beta == 1``). ``envs`` must autoreset in
    ``SAME_STEP`` mode so that every returned observation is a decision state.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must lie in [0, 1], got {beta!r}")
    if learner is None and beta < 1.0:
        raise ValueError("learner is required when beta < 1")
    int_arg(steps, "steps", 1)
    if envs.metadata.get("autoreset_mode") != gym.vector.AutoresetMode.SAME_STEP:
        raise ValueError("envs must be created with autoreset_mode=AutoresetMode.SAME_STEP")
    rng = np.random.default_rng(seed)
    n = envs.num_envs
    obs, _ = envs.reset(seed=seed)
    ids = new_episode_ids(n)
    columns: dict[str, list[Any]] = {key: [] for key in Transitions.__dataclass_fields__}
    for _ in range(steps):
        labels = oracle.label_batch(obs)
        use_expert = rng.random(n) < beta
        learner_action, segments = np.full(n, -1, np.int64), np.zeros(n, np.int64)
        if not use_expert.all():
            learner_action, segments = (np.asarray(a, np.int64) for a in learner.act_batch(obs, ids))
        action = np.where(use_expert, labels.action, learner_action)
        next_obs, reward, terminated, truncated, info = envs.step(action)
        final = {key: value.copy() for key, value in next_obs.items()}
        success = np.zeros(n, bool)
        done = terminated | truncated
        ids[done] = new_episode_ids(int(done.sum()))
        for i in np.flatnonzero(done):
            for key in final:
                final[key][i] = info["final_obs"][i][key]
            success[i] = bool(info["final_info"]["is_success"][i])
        for key, value in (
            ("obs", obs), ("next_obs", final), ("action", action), ("expert_action", labels.action),
            ("optimal", labels.optimal), ("learner_action", learner_action), ("expert_executed", use_expert),
            ("segments", segments), ("reward", reward.astype(np.float32)), ("terminated", terminated),
            ("truncated", truncated), ("success", success), ("env_index", np.arange(n, dtype=np.int64)),
        ):
            columns[key].append(value)
        obs = next_obs

    def env_major(values: list[np.ndarray]) -> np.ndarray:
        stacked = np.stack(values, axis=1)  # (n, steps, ...)
        return stacked.reshape(n * steps, *stacked.shape[2:])

    return Transitions(**{
        key: {k: env_major([v[k] for v in values]) for k in values[0]} if isinstance(values[0], dict) else env_major(values)
        for key, values in columns.items()
    })
