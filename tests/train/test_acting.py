"""train.acting: a rope2d grid policy on a wider grid, a policy remembering each episode by its id."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from hrm_envs.encoding import encoder_for, grid_width
from train.acting import load_policy, on_grid
from train.checkpoints import save_checkpoint
from train.learner import Learner

torch.set_num_threads(1)  # tiny models: one thread is fastest, and the machine is shared


def test_a_rope2d_grid_checkpoint_acts_on_a_wider_grid(encoder, tmp_path, model_cfg):
    """``load_policy`` gives a rope2d grid model the evaluation env's width (trained on mazes padded to 9, it
    plays a maze padded to 15); a 1-D rope grid model is refused with the fix named; hanoi has no grid."""
    small, large = (encoder_for(gym.make("hrm/Maze-v0", size=7, max_size=side)) for side in (9, 15))
    assert (grid_width(small), grid_width(large), grid_width(encoder)) == (9, 15, 0)
    grid = {**model_cfg("trm"), "attention_window": 1, "attention_grid": 9, "global_readout": "acting_token"}
    for positions in ("rope2d", "rope"):
        config = {"model": {**grid, "pos_encodings": positions}}
        learner = Learner(config["model"], {}, small)
        save_checkpoint(tmp_path / f"{positions}.pt", learner, config, epoch=0)
    assert on_grid(learner.config, small) == learner.config
    policy = load_policy(tmp_path / "rope2d.pt", large)
    assert (policy.model.config.attention_grid, policy.model.config.seq_len) == (15, 225)
    env = gym.make("hrm/Maze-v0", size=13, max_size=15)
    obs = {k: v[None] for k, v in env.reset(seed=0)[0].items()}
    action = int(policy.act_batch(obs)[0][0])
    assert obs["action_mask"][0, action]
    with pytest.raises(ValueError, match="grid 9 wide with pos_encodings='rope'.*rope2d"):
        load_policy(tmp_path / "rope.pt", large)


def test_a_policy_with_episode_carry_remembers_each_episode_by_its_id(encoder, hanoi, model_cfg):
    """Two decisions of one episode on the same state = one decision thinking twice as long; a new id starts
    afresh; rows are matched by id, not by position; baselines refuse the option."""
    torch.manual_seed(0)
    cfg = {**model_cfg("trm"), "episode_carry": True, "inference_halting": "max_steps", "halt_max_steps": 2}
    learner = Learner(cfg, {}, encoder)
    policy = learner.policy()
    assert policy.remembers and not Learner(model_cfg("trm"), {}, encoder).policy().remembers
    env = hanoi
    obs = [env.reset(seed=s)[0] for s in range(3)]
    batch = {k: np.stack([o[k] for o in obs]) for k in obs[0]}
    fresh, _ = policy.logits(batch)
    first, _ = policy.logits(batch, np.array([10, 11, 12]))
    torch.testing.assert_close(first, fresh)  # unseen ids: fresh starts
    swapped = {k: v[[2, 1, 0]] for k, v in batch.items()}
    second, _ = policy.logits(swapped, np.array([12, 11, 99]))  # 12 and 11 go on, 99 is new
    longer = Learner({**cfg, "halt_max_steps": 4}, {}, encoder)
    longer.module.load_state_dict(learner.module.state_dict())
    twice, _ = longer.policy().logits(batch)
    torch.testing.assert_close(second[0], twice[2])
    torch.testing.assert_close(second[1], twice[1])
    torch.testing.assert_close(second[2], fresh[0])
    with pytest.raises(ValueError, match="one distinct id"):
        policy.logits(batch, np.array([1, 1, 2]))
    with pytest.raises(ValueError, match="episode_carry applies to hrm / trm"):
        Learner({**model_cfg("lstm"), "episode_carry": True}, {}, encoder)
