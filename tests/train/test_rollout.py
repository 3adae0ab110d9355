"""train.rollout: lockstep episodes with oracle verdicts, teacher forcing, and DAgger collection on vector envs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import hrm_envs  # noqa: F401
from oracles import oracle_for
from train.rollout import (OracleHorizon, OraclePolicy, RandomMaskedPolicy, SizeMixture, collect, env_fns,
                           oracle_states, run_episodes, summarize, teacher_forcing, trajectory_actions)

ENV = "hrm/Hanoi-v0"


def vector(sizes, n=3, mode=AutoresetMode.SAME_STEP):
    return SyncVectorEnv(env_fns(ENV, {"max_disks": 6}, "num_disks", sizes, n), autoreset_mode=mode)


def test_oracle_episodes_are_optimal_and_random_ones_fail():
    oracle = oracle_for(ENV)
    envs = [gym.make(ENV, num_disks=4, max_disks=6) for _ in range(6)]
    seeds, sizes = list(range(6)), ["4"] * 6
    best = summarize(run_episodes(OraclePolicy(oracle), envs, seeds, sizes, oracle))
    assert best["all"]["success"] == 1.0 and best["all"]["optimality_ratio"] == 1.0
    assert best["4"]["first_error_steps"] == []
    random = summarize(run_episodes(RandomMaskedPolicy(0), envs, seeds, sizes, oracle))
    assert random["all"]["success"] < 1.0 and len(random["4"]["first_error_steps"]) > 0
    states = oracle_states(envs, seeds, oracle)
    assert teacher_forcing(OraclePolicy(oracle), states, oracle) == 1.0
    assert teacher_forcing(RandomMaskedPolicy(1), states, oracle) < 0.6


def test_horizon_cuts_episodes_at_a_multiple_of_the_oracle_solution():
    env_id = "hrm/Maze-v0"
    oracle = oracle_for(env_id)
    envs = [gym.make(env_id, size=15, max_size=15) for _ in range(8)]
    seeds, sizes = list(range(8)), ["15"] * 8
    lengths = [len(oracle.solve(env.reset(seed=seed)[0])) for env, seed in zip(envs, seeds)]
    best = run_episodes(OraclePolicy(oracle), envs, seeds, sizes, oracle, horizon=1.0)
    assert all(e.success for e in best) and [e.steps for e in best] == lengths
    cut = run_episodes(RandomMaskedPolicy(0), envs, seeds, sizes, oracle, horizon=1.5)
    assert all(e.steps <= -(-3 * n // 2) for e, n in zip(cut, lengths))
    assert any(not e.success and e.steps == -(-3 * n // 2) for e, n in zip(cut, lengths))
    uncut = run_episodes(RandomMaskedPolicy(0), envs, seeds, sizes, oracle)
    assert max(e.steps for e in uncut) > max(e.steps for e in cut)


def test_oracle_horizon_truncates_collected_episodes_like_the_evaluation_horizon():
    oracle = oracle_for(ENV)
    fns = [lambda: OracleHorizon(gym.make(ENV, num_disks=5, max_disks=6), oracle, 1.5) for _ in range(3)]
    steps = 200
    t = collect(SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP), RandomMaskedPolicy(0), oracle, steps=steps,
                beta=0.0, seed=0)
    cut = 0
    for i in range(3):  # every finished episode of every sub-env (rows are env-major)
        start = 0
        for end in np.flatnonzero(t.done[i * steps : (i + 1) * steps]):
            first = {key: value[i * steps + start] for key, value in t.obs.items()}
            limit, length = -(-3 * len(oracle.solve(first)) // 2), end - start + 1
            assert length <= limit
            if t.truncated[i * steps + end]:
                assert length == limit and not t.success[i * steps + end]
                cut += 1
            start = end + 1
    assert cut >= 3  # random play on 5 disks is cut, at exactly ceil(1.5 x the oracle's solution)
    expert = collect(SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP), None, oracle, steps=60, beta=1.0, seed=0)
    assert expert.done.any() and expert.success[expert.done].all()  # the oracle is never cut
    with pytest.raises(ValueError, match="horizon"):
        OracleHorizon(gym.make(ENV), oracle, 0.5)


@pytest.mark.parametrize("horizon", [0.5, "2", True])
def test_bad_horizon_names_the_key(horizon):
    oracle = oracle_for(ENV)
    with pytest.raises(ValueError, match="env.eval_horizon"):
        run_episodes(OraclePolicy(oracle), [gym.make(ENV, num_disks=2)], [0], ["2"], oracle, horizon=horizon)


def test_collect_with_expert_only_labels_every_state_and_solves_everything():
    oracle = oracle_for(ENV)
    t = collect(vector([2, 3]), None, oracle, steps=40, beta=1.0, seed=0)
    assert len(t) == 3 * 40 and t.expert_executed.all() and (t.learner_action == -1).all()
    assert (t.action == t.expert_action).all()
    assert t.optimal[np.arange(len(t)), t.expert_action].all()
    assert t.done.any() and (t.success == t.terminated).all()  # every finished expert episode succeeds
    np.testing.assert_array_equal(t.env_index, np.repeat(np.arange(3), 40))  # the sub-env of every row
    # rows of one sub-env are consecutive: next_obs is the following row's obs unless the episode ended there
    for i in range(3):
        rows = np.arange(i * 40, (i + 1) * 40 - 1)
        cont = rows[~t.done[rows]]
        for key in t.obs:
            np.testing.assert_array_equal(t.next_obs[key][cont], t.obs[key][cont + 1])
    relabel = oracle.label_batch(t.obs)
    np.testing.assert_array_equal(relabel.optimal, t.optimal)


def test_collect_mixture_uses_the_learner_and_records_its_choices():
    oracle = oracle_for(ENV)
    t = collect(vector([3]), RandomMaskedPolicy(0), oracle, steps=50, beta=0.3, seed=1)
    share = t.expert_executed.mean()
    assert 0.1 < share < 0.5
    mine = ~t.expert_executed
    np.testing.assert_array_equal(t.action[mine], t.learner_action[mine])
    assert (t.segments[mine] == 1).all()
    assert not t.optimal[mine, t.learner_action[mine]].all()  # the random learner errs; the oracle labels it


def test_collect_rejects_bad_arguments():
    oracle = oracle_for(ENV)
    with pytest.raises(ValueError, match="beta"):
        collect(vector([2]), None, oracle, 5, 1.5, 0)
    with pytest.raises(ValueError, match="learner"):
        collect(vector([2]), None, oracle, 5, 0.5, 0)
    with pytest.raises(ValueError, match="steps"):
        collect(vector([2]), None, oracle, 0, 1.0, 0)
    with pytest.raises(ValueError, match="SAME_STEP"):
        collect(vector([2], mode=AutoresetMode.NEXT_STEP), None, oracle, 5, 1.0, 0)
    with pytest.raises(ValueError, match="sizes"):
        env_fns(ENV, {}, "num_disks", [], 2)


def test_size_mixture_draws_every_size_reproducibly_and_checks_spaces():
    mixture = SizeMixture([lambda: gym.make("hrm/Hanoi-v0", num_disks=2), lambda: gym.make("hrm/Hanoi-v0", num_disks=5)])

    def disks(seed: int) -> list[int]:
        observations = [mixture.reset(seed=seed)[0]] + [mixture.reset()[0] for _ in range(30)]
        return [int((obs["state"] != 3).sum()) for obs in observations]

    first = disks(7)
    assert set(first) == {2, 5} and disks(7) == first
    obs, _ = mixture.reset(seed=1)
    after, *_ = mixture.step(int(np.flatnonzero(obs["action_mask"])[0]))  # steps the drawn env
    assert (after["state"] != obs["state"]).sum() == 1
    with pytest.raises(ValueError, match="same observation and action spaces"):
        SizeMixture([lambda: gym.make("hrm/Hanoi-v0", max_disks=4), lambda: gym.make("hrm/Hanoi-v0", max_disks=6)])
    with pytest.raises(ValueError, match="makers"):
        SizeMixture([])


class RecordingPolicy(RandomMaskedPolicy):
    """A random policy that says it remembers and records which episode ids saw which states."""

    remembers = True

    def __init__(self) -> None:
        super().__init__(0)
        self.seen: dict[int, list[np.ndarray]] = {}

    def act_batch(self, obs, episodes=None):
        assert episodes is not None and len(set(episodes.tolist())) == len(episodes)
        for row, episode in enumerate(episodes):
            self.seen.setdefault(int(episode), []).append(obs["state"][row])
        return super().act_batch(obs)


def test_a_remembering_policy_walks_each_trajectory_in_order_under_one_id():
    oracle = oracle_for(ENV)
    envs = [gym.make(ENV, num_disks=n, max_disks=4) for n in (2, 3, 4)]
    trajectories = oracle_states(envs, [0, 1, 2], oracle)
    policy = RecordingPolicy()
    actions, segments = trajectory_actions(policy, trajectories)
    assert len(actions) == len(segments) == sum(len(t) for t in trajectories)
    assert len(policy.seen) == 3
    for trajectory, seen in zip(trajectories, policy.seen.values()):
        assert [s.tolist() for s in seen] == [t["state"].tolist() for t in trajectory]
    again = RecordingPolicy()
    run_episodes(again, envs, [0, 1, 2], ["2", "3", "4"], oracle)
    assert not set(again.seen) & set(policy.seen)  # every episode gets an id never used before
    collected = RecordingPolicy()
    t = collect(vector([2]), collected, oracle, steps=30, beta=0.0, seed=0)
    assert len(collected.seen) == 3 + int(t.done.sum()) - int(t.done.reshape(3, 30)[:, -1].sum())
