"""train.learner: model factory, the set loss, acting with masks, training steps, checkpoints, logging."""

from __future__ import annotations

import json
import math
import os
import signal
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

import hrm_envs  # noqa: F401
from agents.baselines import BaselineConfig, GNNBaseline
from agents.hrm import HRM, set_loss
from hrm_envs.encoding import encoder_for, grid_width
from oracles import oracle_for
from train.learner import (
    MODEL_KINDS, DivergedError, Learner, MetricsLogger, ModelPolicy, check_fits, checkpoint_config, config_mismatches,
    init_weights, interrupts_at_safe_points, load_checkpoint, load_policy, load_rank_state, lr_factor, model_config,
    on_grid, save_checkpoint, strict_json, token_adjacency, write_json,
)
from train.rollout import run_episodes, summarize

SMALL = {"hidden_size": 32, "num_heads": 4}
torch.set_num_threads(1)  # tiny models: one thread is fastest, and the machine is shared
ENV = dict(num_disks=3, max_disks=5)


@pytest.fixture(scope="module")
def encoder():
    return encoder_for(gym.make("hrm/Hanoi-v0", **ENV))


def model_cfg(kind: str) -> dict:
    extra = {"H_layers": 1, "L_layers": 1} if kind in ("hrm", "transformer") else {"L_layers": 1} if kind == "trm" else {}
    return {"name": kind, **({"hidden_size": 32} if kind in ("mlp", "lstm", "gnn") else SMALL), **extra}


def oracle_batch(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random 3-disk Hanoi states with every optimal action (ties included)."""
    env, oracle = gym.make("hrm/Hanoi-v0", **ENV), oracle_for("hrm/Hanoi-v0")
    encoder = encoder_for(env)
    observations = [env.reset(seed=seed + i)[0] for i in range(n)]
    obs = {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    return {"tokens": torch.as_tensor(encoder.tokens(obs)), "optimal": torch.as_tensor(oracle.label_batch(obs).optimal),
            "action_mask": torch.as_tensor(obs["action_mask"]).bool()}


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


def test_training_on_ties_spreads_probability_over_the_set(encoder):
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
def test_every_kind_learns_and_acts_with_masks_on_larger_puzzles(kind, encoder):
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


def test_hrm_step_keeps_the_carry_across_steps(encoder):
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


def test_model_config_takes_acting_tokens_from_the_encoder():
    """Maze and city mark the agent's cell, Hanoi nothing: ``global_readout=acting_token`` works where marked."""
    maze = encoder_for(gym.make("hrm/Maze-v0", size=7, max_size=7))
    config = model_config({"name": "hrm", "global_readout": "acting_token"}, maze)
    assert config.acting_tokens == (3,) and config.global_readout == "acting_token"  # the maze's 'S'
    city = encoder_for(gym.make("hrm/CityRouting-v0", size=10, max_size=10))
    assert model_config({"name": "hrm"}, city).acting_tokens == tuple(range(102, 122))
    hanoi = encoder_for(gym.make("hrm/Hanoi-v0", num_disks=3))
    with pytest.raises(ValueError, match="acting_tokens"):
        model_config({"name": "hrm", "global_readout": "acting_token"}, hanoi)
    with pytest.raises(ValueError, match=r"must not set \['acting_tokens'\]"):
        model_config({"name": "hrm", "acting_tokens": [3]}, maze)


def test_model_config_errors_name_the_key(encoder):
    with pytest.raises(ValueError, match="model.name must be one of"):
        model_config({"name": "rnn"}, encoder)
    with pytest.raises(ValueError, match=r"must not set \['seq_len'\]"):
        model_config({"name": "hrm", "seq_len": 4}, encoder)
    with pytest.raises(ValueError, match=r"unknown HRMConfig fields: \['hiden_size'\]"):
        model_config({"name": "hrm", "hiden_size": 4}, encoder)
    with pytest.raises(ValueError, match="model.depth applies to"):
        model_config({"name": "hrm", "depth": 2}, encoder)
    with pytest.raises(ValueError, match="seq2seq_vocab_size"):
        model_config({"name": "hrm"}, encoder, task="tokens")
    config = model_config({"name": "trm", **SMALL}, encoder)
    assert config.variant == "trm" and config.num_actions() == 3 * 5 + 1 and config.seq_len == 5
    with pytest.raises(ValueError, match="has 31 actions, the model's action layout has 16"):
        check_fits(config, num_actions=31)
    with pytest.raises(ValueError, match="token ids up to 10"):
        check_fits(config, vocab=11)
    with pytest.raises(ValueError, match="token_labels must be a non-negative int"):
        model_config({"name": "hrm"}, encoder, token_labels=-1)
    with pytest.raises(ValueError, match="apply to task='policy' only"):
        model_config({"name": "hrm"}, encoder, task="tokens", token_labels=3)
    both = model_config({"name": "hrm", **SMALL}, encoder, token_labels=3)
    assert both.token_vocab == 3 and both.num_actions() == config.num_actions()


def test_optimizer_settings_are_validated_and_scheduled(encoder):
    for bad, message in (({"lr": 0}, "train.lr"), ({"schedule": "step"}, "train.schedule"),
                         ({"momentum": 0.9}, r"unknown train keys \['train\.momentum'\]"),
                         ({"lr": float("nan")}, r"train\.lr must be a finite number, got nan"),
                         ({"betas": 5}, r"train\.betas must be a list of 2 items"), ({"betas": [0.9]}, "train.betas")):
        with pytest.raises(ValueError, match=message):
            Learner(model_cfg("mlp"), bad, encoder)
    assert [lr_factor(s, 4, 100, "constant", 1.0) for s in (0, 3, 50)] == [0.25, 1.0, 1.0]
    assert lr_factor(100, 0, 100, "cosine", 0.1) == pytest.approx(0.1) and lr_factor(50, 0, 100, "cosine", 0.0) == 0.5


def test_a_diverging_step_stops_training_naming_the_step(encoder):
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


def test_token_graph_is_a_grid_for_square_layouts_else_complete():
    grid = token_adjacency(9)[0]
    assert grid.sum().item() == 24 and grid[4].sum().item() == 4 and grid[0, 1] == 1 and grid[0, 4] == 0
    complete = token_adjacency(5)[0]
    assert complete.sum().item() == 20 and complete.diagonal().sum() == 0
    assert isinstance(Learner(model_cfg("gnn"), {}, encoder_for(gym.make("hrm/Hanoi-v0", **ENV))).module, GNNBaseline)


def test_checkpoint_round_trip_is_atomic_and_refuses_other_configs(encoder, tmp_path):
    torch.manual_seed(0)
    config = {"model": model_cfg("hrm"), "train": {"lr": 1e-3}}
    learner = Learner(config["model"], config["train"], encoder)
    batch = oracle_batch(8)
    for _ in range(3):
        learner.train_step(batch)
    path = tmp_path / "ck" / "last.pt"
    save_checkpoint(path, learner, config, epoch=2, batch_in_epoch=1)
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary file left behind
    expected = learner.train_step(batch)

    torch.manual_seed(123)  # the checkpoint restores the RNG (HRM's exploration draws from it)
    other = Learner(config["model"], config["train"], encoder)
    assert load_checkpoint(path, other, config) == (2, 1) and other.step == 3
    assert other.train_step(batch) == expected
    assert checkpoint_config(path) == config
    with pytest.raises(ValueError, match=r"model\.hidden_size: checkpoint 32, now 64"):
        load_checkpoint(path, other, {**config, "model": {**config["model"], "hidden_size": 64}})
    assert load_checkpoint(path, other, {**config, "train": {"lr": 2.0}}, ignore=["train"]) == (2, 1)
    policy = load_policy(path, encoder)
    obs = {k: v[None] for k, v in gym.make("hrm/Hanoi-v0", **ENV).reset(seed=0)[0].items()}
    assert isinstance(policy.model, HRM) and policy.act_batch(obs)[0].shape == (1,)
    longer = load_policy(path, encoder, acting={"inference_halting": "max_steps", "halt_max_steps": 5})
    assert (longer.model.config.halt_max_steps, longer.model.config.inference_halting) == (5, "max_steps")
    with pytest.raises(ValueError, match="acting overrides must be among"):
        load_policy(path, encoder, acting={"hidden_size": 8})
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="unreadable or truncated"):
        load_checkpoint(path, other, config)


@pytest.mark.parametrize("kind, depth, blocks", [("mlp", 3, 3), ("lstm", 1, 1), ("gnn", None, 4), ("transformer", None, 2)])
def test_baseline_checkpoints_store_hrm_config_and_load_as_baseline_config(encoder, tmp_path, kind, depth, blocks):
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


class RunsAShellCommand:
    """Unpickling this runs ``touch marker``: what a malicious checkpoint could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_checkpoint_holding_pickled_code_is_refused_without_running_it(encoder, tmp_path):
    marker, evil = tmp_path / "marker", tmp_path / "evil.pt"
    torch.save({"config": {}, "model_config": {}, "step": 0, "rng": RunsAShellCommand(marker)}, evil)
    learner = Learner(model_cfg("mlp"), {}, encoder)
    readers = [lambda: checkpoint_config(evil), lambda: load_policy(evil, encoder),
               lambda: load_checkpoint(evil, learner, {}), lambda: init_weights(evil, learner)]
    for read in readers:
        with pytest.raises(ValueError, match=r"holds pickled Python objects \(posix\.system\).*refused"):
            read()
        assert not marker.exists()
    torch.save({"step": 0, "rng": RunsAShellCommand(marker)}, tmp_path / "evil.rank1.pt")  # a DDP rank's part
    with pytest.raises(ValueError, match="pickled Python objects"):
        load_rank_state(evil, learner, 1)
    assert not marker.exists()
    torch.load(evil, weights_only=False)  # the repro is real: unpickling runs the command
    assert marker.exists()


def test_checkpoints_hold_plain_data_and_older_ones_with_numpy_rng_still_load(encoder, tmp_path):
    import random

    learner = Learner(model_cfg("hrm"), {}, encoder)
    random.seed(1)
    np.random.seed(2)
    path = tmp_path / "last.pt"
    save_checkpoint(path, learner, {"run": 1}, epoch=1)
    draws = (random.random(), np.random.rand())
    state = torch.load(path, weights_only=True)  # no allow-listed globals needed: tensors and plain data only
    assert isinstance(state["rng"]["numpy"][1], list)
    # a checkpoint of an earlier version: python's tuple state and numpy's (name, uint32 array, ...) tuple
    state["rng"]["python"], state["rng"]["numpy"] = random.getstate(), np.random.get_state()
    state["step"] = 7
    torch.save(state, tmp_path / "old.pt")
    later = (random.random(), np.random.rand())
    for name, expected in (("last.pt", draws), ("old.pt", later)):
        random.seed(9)
        np.random.seed(9)
        load_checkpoint(tmp_path / name, learner, {"run": 1})
        assert (random.random(), np.random.rand()) == expected


def test_metrics_logger_writes_jsonl_and_tensorboard(tmp_path):
    logger = MetricsLogger(tmp_path, enabled=True)
    logger.log(5, 1, "train", {"loss": 0.5, "note": "x"})
    logger.close()
    assert json.loads((tmp_path / "metrics.jsonl").read_text()) == {"step": 5, "epoch": 1, "phase": "train",
                                                                     "loss": 0.5, "note": "x"}
    assert any((tmp_path / "tensorboard").iterdir())
    silent = MetricsLogger(tmp_path / "rank1", enabled=False)
    silent.log(1, 1, "train", {"loss": 1.0})
    silent.close()
    assert not (tmp_path / "rank1").exists()


def strict(text: str):
    """``json.loads`` that refuses NaN and infinities, as strict JSON parsers do."""
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_metrics_and_run_json_are_strict_and_a_fresh_log_replaces_an_old_one(tmp_path):
    logger = MetricsLogger(tmp_path)
    for step in (5, 10, 15):
        logger.log(step, 1, "eval", {"loss": float("nan"), "gap": float("-inf"), "tf": 0.5, "sizes": [1.0, math.inf]})
    logger.close()
    rows = [strict(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[0] == {"step": 5, "epoch": 1, "phase": "eval", "loss": None, "gap": None, "tf": 0.5,
                       "sizes": [1.0, None]}
    resumed = MetricsLogger(tmp_path, resume_step=10)  # resumed from a checkpoint at step 10: later rows go
    resumed.log(15, 2, "eval", {"tf": 0.75})
    resumed.close()
    steps = [strict(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15]
    fresh = MetricsLogger(tmp_path)  # a fresh run in a folder an uncheckpointed run left rows in
    fresh.log(5, 1, "train", {"loss": 1.0})
    fresh.close()
    assert [strict(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [
        {"step": 5, "epoch": 1, "phase": "train", "loss": 1.0}]
    write_json(tmp_path / "final.json", {"success": float("nan"), "rounds": 3})
    assert strict((tmp_path / "final.json").read_text()) == {"success": None, "rounds": 3}
    assert strict_json({"a": (float("inf"), 1)}) == '{"a": [null, 1]}'


def test_config_mismatches_treat_a_missing_key_as_null():
    saved = {"dagger": {"steps": 128}, "seed": 0}  # written before dagger.horizon existed
    assert config_mismatches(saved, {"dagger": {"steps": 128, "horizon": None}, "seed": 0}) == []
    assert config_mismatches(saved, {"dagger": {"steps": 128, "horizon": 1.5}, "seed": 0}) == [
        "dagger.horizon: checkpoint '<missing>', now 1.5"]
    assert config_mismatches(saved, {"dagger": {"steps": 64}, "seed": 1}, ignore=["seed"]) == [
        "dagger.steps: checkpoint 128, now 64"]


def test_first_ctrl_c_is_deferred_and_the_second_interrupts_at_once():
    # Python's own handler, also when the suite runs as a background job (which starts with SIGINT ignored)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with interrupts_at_safe_points() as ctrl_c:
            assert not ctrl_c.is_set()
            os.kill(os.getpid(), signal.SIGINT)  # handled between bytecodes: no KeyboardInterrupt here
            assert ctrl_c.is_set()
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)  # not reached: the handler runs as soon as os.kill returns
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outer)


def test_ema_weights_act_are_checkpointed_and_loaded(encoder, tmp_path):
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


def test_a_rope2d_grid_checkpoint_acts_on_a_wider_grid(tmp_path):
    """``load_policy`` gives a rope2d grid model the evaluation env's width (trained on mazes padded to 9, it
    plays a maze padded to 15); a 1-D rope grid model is refused with the fix named; hanoi has no grid."""
    small, large = (encoder_for(gym.make("hrm/Maze-v0", size=7, max_size=side)) for side in (9, 15))
    assert (grid_width(small), grid_width(large), grid_width(encoder_for(gym.make("hrm/Hanoi-v0", **ENV)))) == (9, 15, 0)
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


def test_a_policy_with_episode_carry_remembers_each_episode_by_its_id(encoder):
    """Two decisions of one episode on the same state = one decision thinking twice as long; a new id starts
    afresh; rows are matched by id, not by position; baselines refuse the option."""
    torch.manual_seed(0)
    cfg = {**model_cfg("trm"), "episode_carry": True, "inference_halting": "max_steps", "halt_max_steps": 2}
    learner = Learner(cfg, {}, encoder)
    policy = learner.policy()
    assert policy.remembers and not Learner(model_cfg("trm"), {}, encoder).policy().remembers
    env = gym.make("hrm/Hanoi-v0", **ENV)
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
