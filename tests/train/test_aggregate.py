"""train.aggregate: episode boundaries of collected rounds and the episode streams of ``model.episode_carry``.

The round files, their manifest and the export reader are checked on runs of ``train.dagger`` in
tests/train/test_dagger.py (damage, resume, whole episodes)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from hrm_envs.encoding import encoder_for
from oracles import oracle_for
from train.aggregate import Aggregate, episode_starts
from train.rollout import Transitions, collect, env_fns


def collected(steps: int = 20) -> Transitions:
    """Expert transitions of 3 Hanoi sub-envs (2 and 3 disks), ``steps`` rows each."""
    envs = SyncVectorEnv(env_fns("hrm/Hanoi-v0", {"max_disks": 4}, "num_disks", [2, 3], 3),
                         autoreset_mode=AutoresetMode.SAME_STEP)
    return collect(envs, None, oracle_for("hrm/Hanoi-v0"), steps=steps, beta=1.0, seed=0)


def test_episode_starts_split_rounds_at_dones_and_sub_env_blocks():
    t = collected()
    starts = episode_starts(t)
    expected = np.zeros(len(t), bool)
    expected[::20] = True  # each sub-env's block of 20 rows begins with a reset
    expected[1:] |= t.done[:-1]
    assert np.array_equal(starts, expected)


def test_stream_walks_episodes_in_order_and_continues_only_inside_one():
    t = collected()
    encoder = encoder_for(gym.make("hrm/Hanoi-v0", num_disks=2, max_disks=4))
    aggregate = Aggregate(encoder)
    aggregate.add(t)
    starts = episode_starts(t)
    generator = torch.Generator().manual_seed(0)
    first = aggregate.stream(5, generator, None)
    assert not first["continues"].any() and starts[aggregate._streams.numpy()].all()
    rows = [aggregate._streams.clone()]
    for step in range(40):
        advance = torch.tensor([True, True, True, step % 2 == 0, False])
        batch = aggregate.stream(5, generator, advance)
        now = aggregate._streams
        assert torch.equal(now[~advance], rows[-1][~advance])  # not advanced: the same state again
        moved = advance & batch["continues"]
        assert torch.equal(now[moved], rows[-1][moved] + 1)  # the episode's next state
        assert starts[now[advance & ~batch["continues"]].numpy()].all()  # a new episode from its first state
        assert not starts[now[moved].numpy()].any()
        assert torch.equal(batch["tokens"], aggregate._tensors()["tokens"][now])
        rows.append(now.clone())
    positions = []
    for _ in range(20):  # restart=1: every state afresh, drawn from the whole aggregate, as uniform sampling
        assert not aggregate.stream(5, generator, torch.ones(5, dtype=torch.bool), restart=1.0)["continues"].any()
        positions.append(aggregate._streams.clone())
    assert not starts[torch.cat(positions).numpy()].all()
    half = [aggregate.stream(5, generator, torch.ones(5, dtype=torch.bool), restart=0.5)["continues"] for _ in range(40)]
    assert 0.2 < torch.stack(half).float().mean() < 0.8
