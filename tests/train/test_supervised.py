"""train.supervised: a tiny run learns, the epoch line, exact resume after a kill or Ctrl-C, start-up errors, DDP,
seq2seq metrics, early stop, every shipped env/model config."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

import train.supervised as supervised
from configs import CONFIG_DIR
from hrm_envs.city.metrics import METRICS as CITY_METRICS
from hrm_envs.encoding import encoder_for
from train.checkpoints import read_checkpoint
from train.datasets import Seq2SeqSplit, build, parse_spec
from train.models import build_model, model_config
from train.runs import load_preset

ROOT = Path(__file__).resolve().parents[2]
TINY_SET = {
    "name": "hanoi-tiny", "kind": "stepwise", "env": "hrm/Hanoi-v0", "size_arg": "num_disks", "env_kwargs": {"max_disks": 4},
    "splits": {"train": {"sizes": [1, 2, 3], "puzzles": 24, "seed": 0}, "test": {"sizes": [4], "puzzles": 6, "seed": 1000000}},
}  # fmt: skip
LINE = re.compile(r"^Epoch (\d+) TF: (\d\.\d{4}) Auto: (\d\.\d{4}) Gap: (-?\d\.\d{4}) \| optimality \S+ segments \S+ train TF \S+$")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "hanoi-tiny"
    build(parse_spec(TINY_SET), out, "test", progress=False)
    return out


def overrides(data_dir: Path, out: Path, *extra: str, model: str = "hrm") -> list[str]:
    """A tiny run on the tiny set: hidden 32 (and 1 + 1 blocks for HRM / transformer)."""
    size = ["model.hidden_size=32"] + (["model.H_layers=1", "model.L_layers=1"] if model in ("hrm", "transformer") else [])
    return [f"env.data_dir={data_dir}", "env.kwargs.max_disks=4", "env.eval_sizes=[3,4]", "train=tiny", f"out={out}",
            "progress=false", "threads=1", f"model={model}", *size, *extra]


def config(args: list[str]):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("supervised", overrides=args)


def rows(out: Path, phase: str) -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [row for row in map(json.loads, lines) if row["phase"] == phase]


def test_tiny_run_learns_and_prints_epoch_lines(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    final = supervised.train(config(overrides(data_dir, out, "train.epochs=12", model="transformer")))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch")]
    assert len(lines) == 12
    for k, line in enumerate(lines, 1):
        match = LINE.match(line)
        assert match, line
        epoch, tf, auto, gap = int(match[1]), float(match[2]), float(match[3]), float(match[4])
        assert epoch == k and gap == pytest.approx(tf - auto, abs=2e-4)
    evals, train_rows = rows(out, "eval"), rows(out, "train")
    assert [r["epoch"] for r in evals] == list(range(1, 13))
    assert evals[-1]["train_tf"] >= 0.9 > evals[0]["train_tf"]  # the 1..3-disk policy is learned
    assert train_rows[-1]["loss"] < 0.5 * train_rows[0]["loss"]
    assert 0 <= final["optimality_ratio"] <= final["auto"] <= 1  # failures count 0 in the ratio
    for key in ("optimality_ratio", "segments", "tf", "auto", "gap"):
        assert key in evals[-1]
    assert (out / "last.pt").is_file() and any((out / "tensorboard").iterdir())


def final_state(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "last.pt", weights_only=False)["model"]


def test_resume_after_kill_and_ctrl_c_is_exact(data_dir, tmp_path, monkeypatch):
    args = ["train.epochs=3", "train.eval.puzzles=1", "model.halt_max_steps=2"]  # HRM: carry, Q-head, exploration
    reference = supervised.train(config(overrides(data_dir, tmp_path / "ref", *args)))

    # A kill right after the first epoch's checkpoint was written.
    real_save = supervised.save_checkpoint

    def save_then_die(*a, **k):
        real_save(*a, **k)
        raise SystemExit("killed")

    monkeypatch.setattr(supervised, "save_checkpoint", save_then_die)
    killed = tmp_path / "killed"
    with pytest.raises(SystemExit):
        supervised.train(config(overrides(data_dir, killed, *args)))
    monkeypatch.setattr(supervised, "save_checkpoint", real_save)
    with pytest.raises(ValueError, match="already holds a run"):
        supervised.train(config(overrides(data_dir, killed, *args)))
    resumed = supervised.train(config(overrides(data_dir, killed, *args, "resume=true")))
    assert {k: v for k, v in resumed.items() if not k.endswith("_s")} == \
        {k: v for k, v in reference.items() if not k.endswith("_s")}
    assert [r["step"] for r in rows(killed, "eval")] == [r["step"] for r in rows(tmp_path / "ref", "eval")]

    # Ctrl-C in the middle of epoch 2: saved there, and resumed from that very batch.
    real_step = supervised.Learner.train_step

    def interrupt_at_step_13(self, batch):
        if self.step == 13:
            raise KeyboardInterrupt
        return real_step(self, batch)

    monkeypatch.setattr(supervised.Learner, "train_step", interrupt_at_step_13)
    interrupted = tmp_path / "ctrl-c"
    with pytest.raises(KeyboardInterrupt):
        supervised.train(config(overrides(data_dir, interrupted, *args)))
    saved = torch.load(interrupted / "last.pt", weights_only=False)
    assert (saved["step"], saved["epoch"], saved["batch_in_epoch"]) == (13, 1, 3)  # 10 steps per epoch
    monkeypatch.setattr(supervised.Learner, "train_step", real_step)
    supervised.train(config(overrides(data_dir, interrupted, *args, "resume=true")))
    ref_state, state = final_state(tmp_path / "ref"), final_state(interrupted)
    assert all(torch.equal(ref_state[k], state[k]) for k in ref_state)


def test_a_fresh_start_after_a_kill_before_the_first_checkpoint_starts_a_new_log(data_dir, tmp_path, monkeypatch):
    args = ["train.epochs=1", "train.eval.puzzles=0"]  # 10 steps, a train row every 5
    out, real_step = tmp_path / "run", supervised.Learner.train_step

    def killed_at_step_7(self, batch):
        if self.step == 7:
            raise SystemExit("killed")
        return real_step(self, batch)

    monkeypatch.setattr(supervised.Learner, "train_step", killed_at_step_7)
    with pytest.raises(SystemExit):
        supervised.train(config(overrides(data_dir, out, *args)))
    assert not (out / "last.pt").exists() and [r["step"] for r in rows(out, "train")] == [5]
    monkeypatch.setattr(supervised.Learner, "train_step", real_step)
    supervised.train(config(overrides(data_dir, out, *args)))  # resume=false: the run starts over
    assert [r["step"] for r in rows(out, "train")] == [5, 10]  # not the killed run's row 5 again


def test_init_from_starts_from_another_runs_weights_with_a_fresh_schedule(data_dir, tmp_path, monkeypatch):
    args = ["train.epochs=1", "train.eval.puzzles=0"]
    supervised.train(config(overrides(data_dir, tmp_path / "first", *args)))
    trained = torch.load(tmp_path / "first" / "last.pt", weights_only=False)["model"]
    seen = []
    real_step = supervised.Learner.train_step

    def recording_step(self, batch):
        if not seen:
            seen.append((self.step, {k: v.clone() for k, v in self.module.state_dict().items()}))
        return real_step(self, batch)

    monkeypatch.setattr(supervised.Learner, "train_step", recording_step)
    supervised.train(config(overrides(data_dir, tmp_path / "second", *args, f"init_from={tmp_path / 'first' / 'last.pt'}")))
    step, weights = seen[0]
    assert step == 0 and all(torch.equal(weights[k], trained[k]) for k in trained)
    with pytest.raises(ValueError, match=r"init_from=.*model\.hidden_size"):
        supervised.train(config(overrides(data_dir, tmp_path / "third", *args, "model.hidden_size=64",
                                          f"init_from={tmp_path / 'first' / 'last.pt'}")))


def test_checkpoint_from_another_config_is_refused(data_dir, tmp_path):
    out = tmp_path / "run"
    supervised.train(config(overrides(data_dir, out, "train.epochs=1", "train.eval.puzzles=1")))
    with pytest.raises(ValueError, match=r"model\.hidden_size: checkpoint 32, now 64"):
        supervised.train(config(overrides(data_dir, out, "train.epochs=2", "resume=true", "model.hidden_size=64")))
    with pytest.raises(ValueError, match=r"train\.lr"):
        supervised.train(config(overrides(data_dir, out, "train.epochs=2", "resume=true", "train.lr=0.5")))
    with pytest.raises(ValueError, match="no checkpoint"):
        supervised.train(config(overrides(data_dir, tmp_path / "none", "resume=true")))


@pytest.mark.parametrize("bad, message", [
    (["train.lr=-1"], r"train\.lr must be a number > 0"),
    (["train.lr=inf"], r"train\.lr must be a finite number, got inf"),
    (["train.betas=5"], r"train\.betas must be a list of 2 items"),
    (["seed=1.5"], r"seed must be an int >= 0, got 1\.5"),
    (["threads=-1"], r"threads must be an int >= 0, got -1"),
    (["out=/proc/x"], r"out must be a writable folder path, got '/proc/x'"),
    (["+train.lrr=1"], r"unknown train keys \['train\.lrr'\]"),
    (["train.epochs=0"], r"train\.epochs must be an int >= 1"),
    (["model.hidden_size=30"], r"hidden_size \(30\) must be divisible by num_heads"),
    (["+model.vocab_size=20"], r"must not set \['vocab_size'\]"),
    (["+model.depth=3"], r"model\.depth applies to"),
    (["train.batch_size=100000"], r"train\.batch_size=100000 exceeds"),
    (["device=tpu"], r"device must be one of"),
    (["env.id=hrm/Maze-v0"], r"holds a hrm/Hanoi-v0 data set, but env\.id is 'hrm/Maze-v0'"),
    (["env.kwargs.max_disks=6", "model.pos_encodings=learned"], r"env\.kwargs give 6 tokens, but model hrm"),
    (["env.eval_split=validation"], r"env\.eval_split must be one of"),
    (["env.eval_horizon=0"], r"env\.eval_horizon must be null or a number >= 1"),
    (["model.episode_carry=true"], r"model\.episode_carry=true trains on whole episodes in order: train\.dagger"),
    (["seq2seq.field=true"], r"seq2seq\.field, seq2seq\.cost and seq2seq\.validation_bases apply to seq2seq data sets; .* is step-wise"),
    (["seq2seq.validation_bases=2"], r"seq2seq\.field, seq2seq\.cost and seq2seq\.validation_bases apply to seq2seq"),
    (["seq2seq.cost=true"], r"seq2seq\.field, seq2seq\.cost and seq2seq\.validation_bases apply to seq2seq"),
])  # fmt: skip
def test_bad_values_fail_at_start_up(data_dir, tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        supervised.train(config(overrides(data_dir, tmp_path / "run", *bad)))
    assert not (tmp_path / "run" / "last.pt").exists()


def test_unknown_keys_and_choices_fail_in_hydra(data_dir, tmp_path):
    with pytest.raises(ConfigCompositionException, match="train.lrr"):
        config(overrides(data_dir, tmp_path, "train.lrr=1"))
    with pytest.raises(ConfigCompositionException, match="Could not find 'model/rnn'"):
        config(overrides(data_dir, tmp_path, model="rnn"))


def test_cli_reports_bad_config_without_traceback(data_dir, tmp_path):
    result = subprocess.run([sys.executable, "-m", "train.supervised", *overrides(data_dir, tmp_path / "r", "train.lr=-1")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "error: train.lr must be a number > 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_diverging_run_stops_with_the_step_and_exit_code_2(data_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # a finite lr the schema accepts, but the weights overflow at once
        supervised.main(config(overrides(data_dir, tmp_path / "run", "train.lr=1e30")))
    assert exit_info.value.code == 2
    assert "error: training diverged at step 2: the loss is nan" in capsys.readouterr().err
    assert not (tmp_path / "run" / "last.pt").exists()


@pytest.mark.slow
def test_ddp_two_processes_train_only_rank_zero_writes_and_resume_is_exact(data_dir, tmp_path):
    """Two ranks with HRM carries and ACT exploration: rank 0 alone prints, logs and writes last.pt; 1 epoch + a
    resume to 2 gives the 2-epoch run's weights (rank 1's carry and RNG come back from last.rank1.pt)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def ddp(out: Path, *extra: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "train.supervised",
             *overrides(data_dir, out, "train.eval.puzzles=1", "model.halt_max_steps=3",
                        "model.halt_exploration_prob=0.5", *extra)],
            cwd=ROOT, capture_output=True, text=True, timeout=240, env=env)
        assert result.returncode == 0, result.stderr[:4000] + "\n...\n" + result.stderr[-4000:]
        return result.stdout

    out = tmp_path / "ref"
    stdout = ddp(out, "train.epochs=2")
    lines = [line for line in stdout.splitlines() if line.startswith("Epoch")]
    assert len(lines) == 2 and all(LINE.match(line) for line in lines)  # rank 0 only
    assert "x 2" in stdout
    saved = torch.load(out / "last.pt", weights_only=False)
    assert saved["config"]["world_size"] == 2 and saved["epoch"] == 2
    assert [r["step"] for r in rows(out, "eval")] == [10, 20]  # 86 samples: 43 per rank, 4 per rank and step
    assert torch.load(out / "last.rank1.pt", weights_only=False)["step"] == 20  # rank 1's carry and RNG

    ddp(tmp_path / "split", "train.epochs=1")
    ddp(tmp_path / "split", "train.epochs=2", "resume=true")
    reference, resumed = final_state(tmp_path / "ref"), final_state(tmp_path / "split")
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)


@pytest.mark.parametrize("env_id, extra, model", [("hrm/Maze-v0", (), "hrm"), ("hrm/CityRouting-v0", CITY_METRICS, "hrm"),
                                                  ("hrm/Maze-v0", (), "transformer")])
def test_seq2seq_run_reports_sequence_metrics(tmp_path, capsys, env_id, extra, model):
    size = 7 if env_id == "hrm/Maze-v0" else 6
    root = tmp_path / "s2s"
    build(parse_spec({"name": "s2s", "kind": "seq2seq", "env": env_id, "size_arg": "size", "env_kwargs": {"max_size": size},
                      "splits": {"train": {"sizes": [size], "puzzles": 16, "seed": 0},
                                 "test": {"sizes": [size], "puzzles": 4, "seed": 1000000}}}), root, "test", progress=False)
    final = supervised.train(config(overrides(root, tmp_path / "run", f"env.id={env_id}", "train.epochs=2", model=model)))
    line = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch 2")][0]
    assert re.match(r"Epoch 2 Exact: \d\.\d{4} Token: \d\.\d{4} QHalt: (\d\.\d{4}|nan) Steps: \d\.\d\d", line)
    for key in ("exact", "token", "steps", "train_exact", *extra):
        assert 0 <= final[key] <= max(1, final["steps"])
    assert (model == "hrm") == (0 <= final["q_halt"] <= 1)  # baselines have no Q-head (NaN)
    assert 1 <= final["steps"] <= 2 and final["token"] > 0.5  # most labels are one class at first sight


#: A tiny city set: 3 train bases x 4 vehicles, each with 1 dihedral copy (12 groups of 2 examples), 2 test bases.
CITY_TINY = {"name": "city-tiny", "kind": "seq2seq", "env": "hrm/CityRouting-v0", "size_arg": "size",
             "env_kwargs": {"max_size": 8}, "variants": True, "num_aug": 1,
             "splits": {"train": {"sizes": [6, 8], "puzzles": 3, "seed": 0},
                        "test": {"sizes": [8], "puzzles": 2, "seed": 1000000}}}


def test_a_field_run_trains_on_all_but_the_validation_bases_and_logs_route_and_trap_metrics(tmp_path, capsys):
    """seq2seq.field=true seq2seq.validation_bases=1: the last base's 4 groups (originals and copies) never enter
    the training order nor the train evaluation; the validation rows are their originals; metrics.jsonl holds the
    decoded route's metrics beside the raw mask's and the trap shares."""
    root = tmp_path / "city"
    build(parse_spec(CITY_TINY), root, "test", progress=False)
    cfg = config(["env=city_paper", f"env.data_dir={root}", "env.kwargs.max_size=8", "train=tiny", "train.epochs=2",
                  "train.batch_size=4", f"out={tmp_path / 'run'}", "progress=false", "model=trm", "model.hidden_size=32",
                  "model.L_layers=1", "seq2seq.field=true", "seq2seq.validation_bases=1"])
    data, _, task, keys, order, validation = supervised.load_task(cfg, root, 0, 1)
    assert task == "tokens" and keys == ("tokens", "labels", "field") and data.field.shape == (24, 64, 4)
    group_of = data.group_of.numpy()
    held = set(group_of[validation].tolist())
    assert held == {8, 9, 10, 11} and len(validation) == 4
    for epoch in range(3):
        drawn = order(epoch).numpy()
        assert len(drawn) == 8 and not held & set(group_of[drawn].tolist())
    evaluator = supervised.Seq2SeqEvaluator(cfg, root, data, validation, 0)
    assert set(evaluator.sets["heldout"][1].tolist()) == set(validation.tolist())
    assert not held & set(group_of[evaluator.sets["train"][1]].tolist()) and len(evaluator.sets["train"][1]) == 16

    final = supervised.train(cfg)
    evals = rows(tmp_path / "run", "eval")
    assert len(evals) == 2
    for key in ("arrived", "valid", "path_ratio", "path_f1", "efficiency", "no_path", "all_path", "mask_exact",
                "mask_arrived", "mask_no_path", "mask_all_path", "mask_path_ratio", "train_exact", "reference_path_ratio"):
        assert key in evals[-1] and 0 <= final[key] <= 1, key
    assert final["valid"] == 1.0  # a followed field only walks legal streets
    assert evals[0]["reference_path_ratio"] == evals[1]["reference_path_ratio"] > 0  # the optimal routes' own
    assert "mask_arrived" in [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch 2")][0]


def test_stops_once_train_accuracy_reaches_the_target(data_dir, tmp_path, capsys):
    final = supervised.train(config(overrides(data_dir, tmp_path / "run", "train.epochs=30", "train.eval.puzzles=1",
                                              "train.stop_at_train_accuracy=0.5", model="transformer")))
    evals = rows(tmp_path / "run", "eval")
    assert final["train_tf"] >= 0.5 and len(evals) < 30 and all(r["train_tf"] < 0.5 for r in evals[:-1])
    assert "stopping after epoch" in capsys.readouterr().out


@pytest.mark.parametrize("env_name", sorted(p.stem for p in (CONFIG_DIR / "env").glob("*.yaml")))
def test_every_env_config_names_a_preset_and_fits_every_model(env_name):
    cfg = config([f"env={env_name}"])
    preset = load_preset(cfg.env.preset)
    assert preset["env"] == cfg.env.id
    env = gym.make(cfg.env.id, **OmegaConf.to_container(cfg.env.kwargs), **{cfg.env.size_arg: cfg.env.eval_sizes[0]})
    task = "policy" if preset["kind"] == "stepwise" else "tokens"
    for model in sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml")):
        model_cfg = OmegaConf.to_container(config([f"env={env_name}", f"model={model}"]).model)
        assert build_model(model_cfg, model_config(model_cfg, encoder_for(env), task)) is not None


@pytest.mark.slow
def test_ctrl_c_saves_and_exits_130(data_dir, tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "train.supervised", *overrides(data_dir, out, "train.epochs=500")],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().startswith("hrm:")
        assert process.stdout.readline().startswith("Epoch 1 ")
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130 and "interrupted: saved" in stdout
    saved = torch.load(out / "last.pt", weights_only=False)
    assert saved["step"] >= 10  # at least the first epoch


def test_a_cost_run_regresses_the_cost_to_the_goal_in_one_more_channel(tmp_path):
    """seq2seq.cost=true (with field): the batch key ``cost`` is every example's registry cost_field, the model has
    K + 1 per-token channels and still decodes routes; without seq2seq.field it is refused at start-up."""
    from hrm_envs.city.metrics import cost_to_go

    root = tmp_path / "city"
    build(parse_spec(CITY_TINY), root, "test", progress=False)
    base = ["env=city_paper", f"env.data_dir={root}", "env.kwargs.max_size=8", "train=tiny", "train.epochs=1",
            "train.batch_size=4", "progress=false", "model=trm", "model.hidden_size=32", "model.L_layers=1",
            "seq2seq.validation_bases=1", "seq2seq.cost=true"]
    with pytest.raises(ValueError, match=r"seq2seq\.cost=true .* needs seq2seq\.field=true"):
        supervised.train(config(base + [f"out={tmp_path / 'refused'}"]))
    cfg = config(base + ["seq2seq.field=true", f"out={tmp_path / 'run'}"])
    data, _, _, keys, _, _ = supervised.load_task(cfg, root, 0, 1)
    assert keys == ("tokens", "labels", "field", "cost") and data.cost.shape == (24, 64)
    sources = Seq2SeqSplit(root, "train", sources=True)
    assert np.allclose(data.cost[5].numpy(), cost_to_go(sources.obs(5)), equal_nan=True)
    final = supervised.train(cfg)
    assert read_checkpoint(tmp_path / "run" / "last.pt")["hrm_config"]["per_token_actions"] == 5
    assert final["valid"] == 1.0 and 0 <= final["arrived"] <= 1


def test_max_minutes_stops_after_the_epoch_that_spends_the_budget(data_dir, tmp_path, capsys):
    """train.max_minutes: a run of 5 epochs with a budget spent by the first one stops after it, with a checkpoint."""
    supervised.train(config(overrides(data_dir, tmp_path / "run", "train.epochs=5", "train.eval.puzzles=1",
                                      "+train.max_minutes=1e-6")))
    assert len(rows(tmp_path / "run", "eval")) == 1 and (tmp_path / "run" / "last.pt").is_file()
    assert "train.max_minutes=1e-06 spent: stopping after epoch 1" in capsys.readouterr().out
