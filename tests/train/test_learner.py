"""train.learner: the set loss, training steps on every model kind, the HRM carry, the optimizer and schedule,
divergence, EMA weights."""

from __future__ import annotations

import math

import gymnasium as gym
import pytest
import torch

from agents.baselines import BaselineConfig
from agents.hrm import set_loss
from hrm_envs.encoding import encoder_for
from oracles import oracle_for
from train.acting import ModelPolicy, load_policy
from train.checkpoints import load_checkpoint, save_checkpoint
from train.learner import DivergedError, Learner, lr_factor
from train.models import MODEL_KINDS
from train.rollout import run_episodes, summarize

torch.set_num_threads(1)  # tiny models: one thread is fastest, and the machine is shared


def test_set_loss_credits_the_whole_optimal_set():
    logits = torch.log(torch.tensor([[0.4, 0.4, 0.15, 0.05]]))
    both = torch.tensor([[True, True, False, False]])
    loss, correct = set_loss(logits, both, "softmax")
    assert loss.item() == pytest.approx(-math.log(0.8), rel=1e-5) and bool(correct)
    # Moving mass between two optimal actions leaves the loss unchanged; a single-label CE would not.
    shifted = torch.log(torch.tensor([[0.7, 0.1, 0.15, 0.05]]))
    assert set_loss(shifted, both, "softmax")[0].item() == pytest.approx(loss.item(), rel=1e-5)
    # Illegal actions are masked out of the normaliser.
    legal = torch.tensor([[True, True, True, False]])
    assert set_loss(logits, both, "softmax", legal)[0].item() == pytest.approx(-math.log(0.8 / 0.95), rel=1e-5)


def test_training_on_ties_spreads_probability_over_the_set(encoder, model_cfg, oracle_batch):
    torch.manual_seed(0)
    batch = oracle_batch(64)
    assert (batch["optimal"].sum(1) > 1).any()  # the batch has ties
    learner = Learner(model_cfg("transformer"), {"lr": 3e-3, "weight_decay": 0.0}, encoder, total_steps=200)
    losses = [learner.train_step(batch)["loss"] for _ in range(100)]
    assert losses[-1] < 0.1 * losses[0]
    logits = learner.module(batch)["policy_logits"].masked_fill(~batch["action_mask"], float("-inf"))
    mass = (logits.softmax(-1) * batch["optimal"]).sum(-1)
    assert mass.min() > 0.9  # the whole set holds the probability, whichever member the argmax picks


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_every_kind_learns_and_acts_with_masks_on_larger_puzzles(kind, encoder, model_cfg, oracle_batch):
    torch.manual_seed(0)
    learner = Learner(model_cfg(kind), {"lr": 3e-3}, encoder, total_steps=50)
    batch = oracle_batch(32)
    first = learner.train_step(batch)["loss"]
    for _ in range(40):
        last = learner.train_step(batch)["loss"]
    assert last < first and learner.step == 41
    assert ("q_halt_loss" in learner.train_step(batch)) == (kind in ("hrm", "trm"))
    bigger = gym.make("hrm/Hanoi-v0", num_disks=5, max_disks=7)  # more tokens than the model was built for
    policy = ModelPolicy(learner.model, encoder_for(bigger), "cpu")
    if kind == "mlp":  # the MLP reads a fixed number of tokens
        with pytest.raises(ValueError, match="seq_len"):
            policy.act_batch({k: v[None] for k, v in bigger.reset(seed=0)[0].items()})
        return
    episodes = run_episodes(policy, [gym.make("hrm/Hanoi-v0", num_disks=5, max_disks=7, max_steps=8) for _ in range(3)],
                            [0, 1, 2], ["5"] * 3, oracle_for("hrm/Hanoi-v0"), record=True)
    for episode in episodes:
        for obs, action in zip(episode.observations, episode.actions):
            assert obs["action_mask"][action] == 1  # masked argmax never picks an illegal action
    assert 1 <= summarize(episodes)["all"]["mean_segments"] <= learner.config.halt_max_steps


def test_hrm_step_keeps_the_carry_across_steps(encoder, model_cfg, oracle_batch):
    torch.manual_seed(0)
    learner = Learner({**model_cfg("hrm"), "halt_max_steps": 3}, {}, encoder)
    first, second = oracle_batch(8), oracle_batch(8, seed=100)
    learner.train_step(first)
    assert learner.carry.steps.tolist() == [1] * 8  # Q-head starts at halt == continue: nobody halts early
    for _ in range(6):
        steps, halted, tokens = learner.carry.steps, learner.carry.halted, learner.carry.data["tokens"]
        learner.train_step(second)
        # Halted rows restart on the new batch's rows, the others continue their example one segment further.
        assert torch.equal(learner.carry.steps, torch.where(halted, 1, steps + 1))
        assert torch.equal(learner.carry.data["tokens"], torch.where(halted[:, None], second["tokens"], tokens))
        assert learner.carry.steps.max() <= 3


def test_optimizer_settings_are_validated_and_scheduled(encoder, model_cfg):
    for bad, message in (({"lr": 0}, "train.lr"), ({"schedule": "step"}, "train.schedule"),
                         ({"momentum": 0.9}, r"unknown train keys \['train\.momentum'\]"),
                         ({"lr": float("nan")}, r"train\.lr must be a finite number, got nan"),
                         ({"betas": 5}, r"train\.betas must be a list of 2 items"), ({"betas": [0.9]}, "train.betas")):
        with pytest.raises(ValueError, match=message):
            Learner(model_cfg("mlp"), bad, encoder)
    assert [lr_factor(s, 4, 100, "constant", 1.0) for s in (0, 3, 50)] == [0.25, 1.0, 1.0]
    assert lr_factor(100, 0, 100, "cosine", 0.1) == pytest.approx(0.1) and lr_factor(50, 0, 100, "cosine", 0.0) == 0.5


def test_a_diverging_step_stops_training_naming_the_step(encoder, model_cfg, oracle_batch):
    torch.manual_seed(0)
    learner = Learner(model_cfg("hrm"), {"lr": 1e30}, encoder)  # finite, but one step makes the weights overflow
    batch = oracle_batch(16)
    learner.train_step(batch)
    with pytest.raises(DivergedError, match=r"^training diverged at step 2: the loss is nan"):
        learner.train_step(batch)
    assert learner.step == 1 and isinstance(DivergedError("x"), ValueError)
    # A non-finite gradient never reaches the weights (its norm is computed for grad_clip anyway).
    learner = Learner(model_cfg("mlp"), {}, encoder)
    weights = [p.detach().clone() for p in learner.module.parameters()]
    next(learner.module.parameters()).register_hook(lambda grad: torch.full_like(grad, float("inf")))
    with pytest.raises(DivergedError, match=r"^training diverged at step 1: the gradient norm is inf"):
        learner.train_step(batch)
    assert all(torch.equal(a, b) for a, b in zip(weights, learner.module.parameters())) and learner.step == 0


def test_ema_weights_act_are_checkpointed_and_loaded(encoder, tmp_path, model_cfg, oracle_batch):
    with pytest.raises(ValueError, match="train.ema"):
        Learner(model_cfg("trm"), {"ema": 1.0}, encoder)
    torch.manual_seed(0)
    learner = Learner(model_cfg("trm"), {"lr": 1e-2, "ema": 0.5}, encoder)
    start = {k: v.clone() for k, v in learner.module.state_dict().items()}
    batch = oracle_batch(16)
    learner.train_step(batch)
    after_one = {k: v.clone() for k, v in learner.module.state_dict().items()}
    learner.train_step(batch)
    name = next(k for k, v in start.items() if v.is_floating_point() and not torch.equal(v, after_one[k]))
    # get_ema_multi_avg_fn: the first update copies, later ones mix: ema = 0.5 * ema + 0.5 * weights
    expected = 0.5 * after_one[name] + 0.5 * learner.module.state_dict()[name]
    assert torch.allclose(learner.eval_module.state_dict()[name], expected, atol=1e-6)
    assert learner.policy().model is learner.eval_module
    path = tmp_path / "ema.pt"
    save_checkpoint(path, learner, {"run": 1}, epoch=1)
    again = Learner(model_cfg("trm"), {"lr": 1e-2, "ema": 0.5}, encoder)
    load_checkpoint(path, again, {"run": 1})
    assert torch.equal(again.eval_module.state_dict()[name], learner.eval_module.state_dict()[name])
    assert torch.equal(load_policy(path, encoder).model.state_dict()[name], expected)


@pytest.mark.parametrize("kind, depth, blocks", [("mlp", 3, 3), ("lstm", 1, 1), ("gnn", None, 4), ("transformer", None, 2)])
def test_baseline_checkpoints_store_hrm_config_and_load_as_baseline_config(encoder, tmp_path, model_cfg, oracle_batch,
                                                                           kind, depth, blocks):
    """A baseline trains with a BaselineConfig built from its HRMConfig (``model.depth``; the transformer runs
    H_layers + L_layers blocks); its checkpoint keeps ``hrm_config`` as HRMConfig fields, as older ones did, and
    ``load_policy`` rebuilds the same model from them."""
    cfg = {**model_cfg(kind), **({} if depth is None else {"depth": depth})}
    learner = Learner(cfg, {}, encoder)
    assert isinstance(learner.module.config, BaselineConfig) and learner.module.depth == blocks
    learner.train_step(oracle_batch(4))
    path = tmp_path / f"{kind}.pt"
    save_checkpoint(path, learner, {"run": kind}, epoch=1)
    stored = torch.load(path, weights_only=True)["hrm_config"]
    assert stored == vars(learner.config) and "halt_max_steps" in stored  # HRMConfig fields, as before
    model = load_policy(path, encoder).model
    assert model.config == learner.module.config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), learner.module.state_dict().values()))
