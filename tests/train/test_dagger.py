"""train.dagger: improvement over its first round, resume after a kill, the demonstration export, bad config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

import train.dagger as dagger
from configs import CONFIG_DIR
from hrm_envs.encoding import encoder_for
from oracles import oracle_for
from train.acting import load_policy
from train.aggregate import MANIFEST, Aggregate, episodes, file_digest, load_round, round_name
from train.evaluate import HeldOut
from train.learner import Learner

TINY = [
    "model.hidden_size=32", "model.num_heads=2", "model.H_layers=1", "model.L_layers=1", "model.halt_max_steps=2",
    "train.batch_size=64", "train.lr=3e-3", "train.warmup_steps=0", "train.log_every=10", "progress=false",
    "dagger.sizes=[2,3]", "env.eval_sizes=[4]", "dagger.envs=4", "dagger.steps=24", "dagger.vector=sync",
]


def config(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("dagger", overrides=[f"out={tmp_path / 'run'}", *TINY, *overrides])


def eval_rows(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["phase"] == "eval"]


@pytest.mark.slow
def test_dagger_improves_closed_loop_success_over_its_first_round(tmp_path):
    cfg = config(tmp_path, "dagger.rounds=3", "dagger.train_steps=60", "dagger.eval_puzzles=16",
                 "dagger.beta.start=0.0")
    final = dagger.run(cfg)
    rows = eval_rows(tmp_path / "run")
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    first, later = rows[0], rows[1:]
    # 16 puzzles per size: compare the best later round (closed-loop success is noisy at this scale) and TF
    assert max(r["in_success"] for r in later) >= first["in_success"] + 0.1, [r["in_success"] for r in rows]
    assert later[-1]["in_tf"] > first["in_tf"], [r["in_tf"] for r in rows]
    assert final["labels"] == 4 * 4 * 24 and final["rounds"] == 4
    collected = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    collects = [r for r in collected if r["phase"] == "collect"]
    assert [r["beta"] for r in collects] == [1.0, 0.0, 0.0, 0.0]  # expert round 0, then the learner only
    assert all(r["segments"] >= 1 for r in collects[1:])


def killed_at_train_step(monkeypatch, step: int, run) -> None:
    """Run ``run()`` with ``Learner.train_step`` raising KeyboardInterrupt (a kill) at its ``step``-th call."""
    original, calls = Learner.train_step, [0]

    def dying_step(self, batch):
        calls[0] += 1
        if calls[0] == step:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(Learner, "train_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.setattr(Learner, "train_step", original)


def test_resume_after_a_kill_keeps_every_collected_round(tmp_path, monkeypatch):
    cfg = config(tmp_path, "dagger.rounds=2", "dagger.train_steps=5", "dagger.eval_puzzles=0")
    # killed at the first optimizer step of round 1, after round 1 was collected and saved
    killed_at_train_step(monkeypatch, 6, lambda: dagger.run(cfg))
    aggregate = tmp_path / "run" / "aggregate"
    saved = {p.name: p.read_bytes() for p in aggregate.glob("round_*.npz")}
    assert sorted(saved) == ["round_0000.npz", "round_0001.npz"]
    assert not list(aggregate.glob(".*tmp*"))  # no temporary files left behind

    collect, calls = dagger.collect, {"collect": 0}

    def counting_collect(*args, **kwargs):
        calls["collect"] += 1
        return collect(*args, **kwargs)

    monkeypatch.setattr(dagger, "collect", counting_collect)
    final = dagger.run(config(tmp_path, "dagger.rounds=2", "dagger.train_steps=5", "dagger.eval_puzzles=0",
                              "resume=true"))
    assert calls["collect"] == 1  # only round 2 is new
    for name, data in saved.items():
        assert (aggregate / name).read_bytes() == data
    assert final["rounds"] == 3 and final["labels"] == 3 * 4 * 24 and final["steps"] == 15


@pytest.mark.parametrize("overrides", [(), ("model.episode_carry=true",)], ids=["sampled", "episode_carry"])
def test_a_run_resumed_after_a_kill_trains_as_the_unbroken_run(tmp_path, monkeypatch, overrides):
    args = ("dagger.rounds=2", "dagger.train_steps=5", "dagger.eval_puzzles=0", *overrides)
    dagger.run(config(tmp_path / "unbroken", *args))
    killed_at_train_step(monkeypatch, 6, lambda: dagger.run(config(tmp_path / "broken", *args)))
    # (round 1 collected and saved when killed; the checkpoint holds round 0 only)
    dagger.run(config(tmp_path / "broken", "resume=true", *args))
    unbroken, resumed = (torch.load(tmp_path / name / "run" / "last.pt", weights_only=False)["model"]
                         for name in ("unbroken", "broken"))
    assert all(torch.equal(unbroken[key], resumed[key]) for key in unbroken)
    # round 2 was collected by the resumed learner
    unbroken_round, resumed_round = (np.load(tmp_path / name / "run" / "aggregate" / "round_0002.npz")
                                     for name in ("unbroken", "broken"))
    assert all(np.array_equal(unbroken_round[key], resumed_round[key]) for key in unbroken_round.files)


def test_a_run_killed_before_its_first_checkpoint_restarts_with_resume_and_reuses_its_rounds(tmp_path, monkeypatch):
    args = ("dagger.rounds=1", "dagger.train_steps=5", "dagger.eval_puzzles=0")
    dagger.run(config(tmp_path / "unbroken", *args))
    killed_at_train_step(monkeypatch, 3, lambda: dagger.run(config(tmp_path / "broken", *args)))
    # (round 0 collected and saved when killed, no last.pt yet)
    run_dir = tmp_path / "broken" / "run"
    assert not (run_dir / "last.pt").exists() and (run_dir / "aggregate" / "round_0000.npz").exists()
    with pytest.raises(ValueError, match="already holds a run; pass resume=true"):
        dagger.run(config(tmp_path / "broken", *args))
    with pytest.raises(ValueError, match=r"another configuration .*dagger\.steps: checkpoint 24, now 12"):
        dagger.run(config(tmp_path / "broken", "resume=true", "dagger.steps=12", *args))
    (run_dir / "config.json").rename(tmp_path / "config.json")  # a run started by an older train.dagger
    with pytest.raises(ValueError, match="1 collected round.*cannot be checked"):
        dagger.run(config(tmp_path / "broken", "resume=true", *args))
    (tmp_path / "config.json").rename(run_dir / "config.json")

    collect, calls = dagger.collect, {"collect": 0}

    def counting_collect(*a, **k):
        calls["collect"] += 1
        return collect(*a, **k)

    monkeypatch.setattr(dagger, "collect", counting_collect)
    final = dagger.run(config(tmp_path / "broken", "resume=true", *args))
    assert calls["collect"] == 1 and final["rounds"] == 2  # round 0 reused, round 1 collected
    unbroken, restarted = (torch.load(tmp_path / name / "run" / "last.pt", weights_only=True)["model"]
                           for name in ("unbroken", "broken"))
    assert all(torch.equal(unbroken[key], restarted[key]) for key in unbroken)
    logged = [[(r["step"], r["phase"]) for r in map(json.loads, (tmp_path / name / "run" / "metrics.jsonl").open())]
              for name in ("unbroken", "broken")]
    assert logged[0] == logged[1]  # the killed attempt's rows are gone, round 0's collection row kept


def test_export_is_a_documented_npz_that_imitation_code_can_read(tmp_path):
    dagger.run(config(tmp_path, "dagger.rounds=1", "dagger.train_steps=5", "dagger.eval_puzzles=0",
                      "dagger.beta.schedule=constant", "dagger.beta.start=0.5"))
    with np.load(tmp_path / "run" / "aggregate" / "round_0001.npz") as data:
        arrays = {k: data[k] for k in data.files}
    n = 4 * 24
    for key in ("obs.state", "obs.goal", "obs.action_mask", "next_obs.state", "action", "expert_action", "optimal",
                "learner_action", "expert_executed", "segments", "reward", "terminated", "truncated", "done",
                "success"):
        assert len(arrays[key]) == n, key
    assert float(arrays["beta"]) == 0.5 and int(arrays["round"]) == 1
    np.testing.assert_array_equal(arrays["done"], arrays["terminated"] | arrays["truncated"])
    labels = oracle_for("hrm/Hanoi-v0").label_batch({k[4:]: v for k, v in arrays.items() if k.startswith("obs.")})
    np.testing.assert_array_equal(labels.optimal, arrays["optimal"])
    np.testing.assert_array_equal(labels.action, arrays["expert_action"])
    mixed = arrays["expert_executed"]
    assert 0 < mixed.mean() < 1
    np.testing.assert_array_equal(arrays["action"][~mixed], arrays["learner_action"][~mixed])
    transitions, index, beta = load_round(tmp_path / "run" / "aggregate" / "round_0001.npz")
    assert (index, beta, len(transitions)) == (1, 0.5, n)


# A finished run of rounds 0..2 whose learner acts half the time (episodes end terminated, truncated or cut).
FINISHED = ("dagger.rounds=2", "dagger.train_steps=2", "dagger.eval_puzzles=0", "dagger.beta.schedule=constant",
            "dagger.beta.start=0.5")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("finished")
    dagger.run(config(root, *FINISHED))
    return root / "run"


def copy_run(run: Path, tmp_path: Path) -> Path:
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def alter(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# round, damage, message with the manifest, message without it (an aggregate from before manifests)
DAMAGE = {
    "truncated": (2, truncate, r"round_0002.npz is damaged: \d+ bytes, \d+ when written", r"round_0002.npz is unreadable"),
    "deleted": (1, Path.unlink, r"round_0001.npz is missing", r"round_0001.npz is missing"),
    "altered": (1, alter, r"round_0001.npz is damaged: its sha256 differs", None),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_or_missing_round_is_named_on_resume_and_by_every_reader(finished_run, tmp_path, damage):
    run = copy_run(finished_run, tmp_path)
    index, hurt, message, legacy_message = DAMAGE[damage]
    path = run / "aggregate" / round_name(index)
    hurt(path)
    with pytest.raises(ValueError, match=message):  # not re-collected by the current model, not a BadZipFile
        dagger.run(config(tmp_path, *FINISHED, "resume=true"))
    with pytest.raises(ValueError, match=message):
        HeldOut.load([run])
    with pytest.raises(ValueError, match=message):
        list(episodes(run))
    with pytest.raises(ValueError, match=message):
        load_round(path)
    (run / "aggregate" / MANIFEST).unlink()
    if legacy_message is not None:
        with pytest.raises(ValueError, match=legacy_message):
            dagger.run(config(tmp_path, *FINISHED, "resume=true"))
        with pytest.raises(ValueError, match=legacy_message):
            HeldOut.load([run])


def test_a_resumed_run_needs_every_round_its_checkpoint_trained_on(finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    (run / "aggregate" / MANIFEST).unlink()  # without a manifest the last round's loss is seen too
    (run / "aggregate" / "round_0002.npz").unlink()
    with pytest.raises(ValueError, match=r"has trained on 3 rounds but .* holds 2: round file .*round_0002.npz is "
                                         "missing"):
        dagger.run(config(tmp_path, *FINISHED, "resume=true"))


def test_the_manifest_records_every_round_and_a_resume_records_what_it_lacks(finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    aggregate = run / "aggregate"
    entries = json.loads((aggregate / MANIFEST).read_text())["rounds"]
    assert [e["file"] for e in entries] == [round_name(i) for i in range(3)]
    for entry in entries:
        assert entry == {"file": entry["file"], **file_digest(aggregate / entry["file"]),
                         "rows": len(load_round(aggregate / entry["file"])[0])}
    # killed between writing round 2 and recording it: readers refuse it, a resumed run records it
    (aggregate / MANIFEST).write_text(json.dumps({"rounds": entries[:2]}))
    with pytest.raises(ValueError, match="round_0002.npz is not in .*manifest.json"):
        HeldOut.load([run])
    final = dagger.run(config(tmp_path, *FINISHED, "dagger.rounds=3", "resume=true"))
    assert final["rounds"] == 4
    recorded = json.loads((aggregate / MANIFEST).read_text())["rounds"]
    assert recorded[:3] == entries and recorded[3]["file"] == "round_0003.npz"
    assert not list(aggregate.glob(".*tmp*"))


def test_an_aggregate_from_before_manifests_and_env_index_is_read_and_recorded(finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    aggregate = run / "aggregate"
    (aggregate / MANIFEST).unlink()
    for path in aggregate.glob("round_*.npz"):
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files if k != "env_index"}
        np.savez_compressed(path, **arrays)
    transitions, _, _ = load_round(aggregate / "round_0001.npz")
    assert (transitions.env_index == -1).all()
    for episode in episodes(run):  # split by obs where the sub-env is unknown: within one block of 24
        assert episode.env_index == -1 and len(set(episode.rows // 24)) == 1
    assert HeldOut.load([run]).keys
    dagger.run(config(tmp_path, *FINISHED, "resume=true"))
    recorded = json.loads((aggregate / MANIFEST).read_text())["rounds"]
    assert [e["file"] for e in recorded] == [round_name(i) for i in range(3)]
    assert all(e["sha256"] == file_digest(aggregate / e["file"])["sha256"] for e in recorded)


def test_episodes_are_whole_imitation_trajectories_of_one_sub_env(finished_run):
    """The export read as ``imitation`` trajectories: obs with T + 1 rows, T actions, a terminal flag; the rows
    of an episode link up (next_obs of step t is the obs of step t + 1) and come from one sub-env."""
    raw = {}
    for index in range(3):
        with np.load(finished_run / "aggregate" / round_name(index)) as data:
            raw[index] = {k: data[k] for k in data.files}
    whole = list(episodes(finished_run))
    trajectories = []
    for episode in whole:
        arrays, rows = raw[episode.round], episode.rows
        steps = len(rows)
        trajectory = {"obs": episode.obs, "acts": episode.expert_actions, "terminal": episode.terminal}
        assert all(len(v) == steps + 1 for v in trajectory["obs"].values()) and len(trajectory["acts"]) == steps
        assert set(arrays["env_index"][rows]) == {episode.env_index}
        np.testing.assert_array_equal(trajectory["acts"], arrays["expert_action"][rows])
        np.testing.assert_array_equal(episode.actions, arrays["action"][rows])
        for key, value in trajectory["obs"].items():
            np.testing.assert_array_equal(arrays[f"next_obs.{key}"][rows[:-1]], arrays[f"obs.{key}"][rows[1:]])
            np.testing.assert_array_equal(value[:-1], arrays[f"obs.{key}"][rows])
            np.testing.assert_array_equal(value[-1], arrays[f"next_obs.{key}"][rows[-1]])
        assert not arrays["done"][rows[:-1]].any()
        assert trajectory["terminal"] == bool(arrays["terminated"][rows[-1]])
        assert episode.finished == bool(arrays["done"][rows[-1]]) == (episode.terminal or episode.truncated)
        if not episode.finished:  # cut by the round's end: its sub-env's last row
            assert rows[-1] % 24 == 23
        trajectories.append(trajectory)
    for index, arrays in raw.items():  # every row once, in order
        np.testing.assert_array_equal(np.concatenate([e.rows for e in whole if e.round == index]),
                                      np.arange(len(arrays["action"])))
        np.testing.assert_array_equal(arrays["env_index"], np.repeat(np.arange(4), 24))
        # splitting on done alone would join a sub-env's cut episode to the next sub-env's first one
        ends = np.flatnonzero(arrays["done"])
        assert any(len(set(arrays["env_index"][a + 1 : b + 1])) > 1 for a, b in zip([-1, *ends], ends))
    kinds = {(e.terminal, e.truncated, e.finished) for e in whole}
    assert kinds == {(True, False, True), (False, True, True), (False, False, False)}, kinds
    assert len(list(episodes(finished_run / "aggregate" / "round_0001.npz"))) == sum(
        e.round == 1 for e in whole)


def test_dataset_init_is_the_supervised_start(tmp_path):
    from omegaconf import OmegaConf

    from train.datasets import build, parse_spec
    from train.runs import load_preset

    spec = parse_spec(load_preset("hanoi-small"))
    build(spec, tmp_path / "data", "test", progress=False)
    summary = json.loads((tmp_path / "data" / "summary.json").read_text())
    cfg = config(tmp_path, "dagger.init=dataset", "dagger.rounds=0", "dagger.train_steps=5", "dagger.eval_puzzles=0",
                 f"env.data_dir={tmp_path / 'data'}", "env.preset=hanoi-small")
    OmegaConf.resolve(cfg)
    final = dagger.run(cfg)
    transitions, _, _ = load_round(tmp_path / "run" / "aggregate" / "round_0000.npz")
    assert final["labels"] == len(transitions) == summary["splits"]["train"]["samples"]
    assert transitions.expert_executed.all() and transitions.success.sum() == summary["splits"]["train"]["puzzles"]
    assert (transitions.env_index == 0).all()
    whole = list(episodes(tmp_path / "run"))  # one episode per puzzle, each solved
    assert len(whole) == summary["splits"]["train"]["puzzles"] and all(e.terminal and e.success for e in whole)


def test_label_budget_is_exact(tmp_path):
    final = dagger.run(config(tmp_path, "dagger.rounds=5", "dagger.max_labels=200", "dagger.train_steps=2",
                              "dagger.eval_puzzles=0"))
    assert final["labels"] == 200 - 200 % 4 and final["rounds"] == 3  # 96 + 96 + 8 (2 steps x 4 envs)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["dagger.beta.schedule=cosine"], "dagger.beta.schedule"),
        (["dagger.envs=0"], "dagger.envs"),
        (["dagger.init=random"], "dagger.init"),
        (["dagger.vector=threads"], "dagger.vector"),
        (["dagger.max_labels=-3"], "dagger.max_labels"),
        (["dagger.beta.start=1.5"], "dagger.beta.start"),
        (["env.eval_horizon=0.5"], "env.eval_horizon"),
        (["dagger.horizon=0.5"], "dagger.horizon"),
        (["+dagger.foo=1"], "unknown dagger keys"),
        (["resume=true"], "no checkpoint"),
        (["dagger.token_labels=1"], "dagger.token_labels"),
        (["dagger.episode_restart=1.5"], "dagger.episode_restart must be null or a number in \\[0, 1\\]"),
        (["dagger.max_labels=nan"], "dagger.max_labels must be a finite number, got nan"),
        (["dagger.max_labels=3"], r"dagger\.max_labels must be null or >= dagger\.envs \(4\) with dagger\.init=expert"),
        (["train.lr=inf"], "train.lr must be a finite number, got inf"),
        (["+train.lrr=1"], r"unknown train keys \['train\.lrr'\]"),
        (["train.lr=1e30"], r"training diverged at step 2: the loss is nan"),  # after round 0's collection
    ],
)
def test_bad_config_names_the_key(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        dagger.run(config(tmp_path, *overrides))


def test_token_labels_need_an_oracle_that_gives_them(tmp_path, monkeypatch):
    monkeypatch.setattr(type(oracle_for("hrm/Hanoi-v0")), "token_label_classes", 0)
    with pytest.raises(ValueError, match="dagger.token_labels=true needs an oracle with per-token labels"):
        dagger.run(config(tmp_path, "dagger.token_labels=true"))


@pytest.mark.parametrize("grid", [0, 9])
def test_token_labels_on_a_grid_env_label_every_cell_of_the_maze(tmp_path, grid):
    """The maze's token labels (every floor cell's optimal move) train beside the policy in one DAgger round, also
    with grid-window attention (the checkpoint keeps it)."""
    attention = ["model.attention_window=1", f"model.attention_grid={grid}"] if grid else []
    final = dagger.run(config(tmp_path, "env=maze", "env.kwargs.max_size=9", "dagger.sizes=[7]", "env.eval_sizes=[9]",
                              "dagger.rounds=0", "dagger.train_steps=3", "dagger.eval_puzzles=1",
                              "dagger.token_labels=true", "train.log_every=1", *attention))
    assert final["labels"] == 4 * 24
    policy = load_policy(tmp_path / "run" / "last.pt", dagger.encoder_for(gym.make("hrm/Maze-v0", size=9, max_size=9)))
    assert policy.model.config.token_vocab == 4 and policy.model.config.attention_grid == grid
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_rows = [row for row in rows if row.get("phase") == "train"]
    assert train_rows and all(0.0 <= row["action_accuracy"] <= 1.0 for row in train_rows)  # the policy head alone


def test_front_rate_trains_on_the_maze_with_each_cells_cost_and_halts_when_the_agent_is_reached(tmp_path):
    """model.front_rate: the aggregate carries every labelled cell's cost to the goal beside its move, the token head
    gets the "not reached yet" class, and the policy acts with inference_halting=reached; an oracle without
    per-token costs is refused at start-up."""
    final = dagger.run(config(tmp_path, "env=maze", "env.kwargs.max_size=9", "dagger.sizes=[7]", "env.eval_sizes=[9]",
                              "dagger.rounds=0", "dagger.train_steps=3", "dagger.eval_puzzles=1",
                              "dagger.token_labels=true", "model.front_rate=2", "model.depth_training=progressive",
                              "model.depth_extra_max=2", "model.inference_halting=reached",
                              "model.global_readout=acting_token", "model.episode_carry=true"))
    assert final["labels"] == 4 * 24
    encoder = dagger.encoder_for(gym.make("hrm/Maze-v0", size=9, max_size=9))
    transitions, _, _ = load_round(tmp_path / "run" / "aggregate" / "round_0000.npz")
    aggregate = Aggregate(encoder, oracle_for("hrm/Maze-v0"), token_costs=True)
    aggregate.add(transitions)
    batch = aggregate.sample(8, torch.Generator().manual_seed(0))
    assert set(batch) == {"tokens", "action_mask", "optimal", "labels", "cost"}
    unlabelled = torch.isnan(batch["cost"]) | torch.isinf(batch["cost"])  # inf: a wall, never reached
    assert torch.equal(unlabelled, batch["labels"] == -100) and torch.isinf(batch["cost"]).any()
    policy = load_policy(tmp_path / "run" / "last.pt", encoder)
    assert policy.model.config.token_vocab == 5 and policy.model.config.inference_halting == "reached"
    with pytest.raises(ValueError, match="model.front_rate > 0 needs per-token costs"):
        dagger.run(config(tmp_path / "hanoi", "dagger.token_labels=true", "model.front_rate=2"))
    with pytest.raises(ValueError, match="token_costs=True needs a token_oracle"):
        Aggregate(encoder, None, token_costs=True)


def test_beta_schedules():
    from omegaconf import OmegaConf

    beta = OmegaConf.create({"schedule": "linear", "start": 1.0, "end": 0.0, "decay": 0.5})
    assert [dagger.beta_for_round(beta, r, 5) for r in (1, 3, 5, 9)] == [1.0, 0.5, 0.0, 0.0]
    beta.schedule = "exponential"
    assert [dagger.beta_for_round(beta, r, 5) for r in (1, 2, 3)] == [1.0, 0.5, 0.25]
    beta.schedule = "constant"
    assert dagger.beta_for_round(beta, 7, 5) == 1.0
    assert dagger.curriculum([1, 2, 3, 4], 0, 3) == [1] and dagger.curriculum([1, 2, 3, 4], 3, 3) == [1, 2, 3, 4]


def test_per_reset_size_sampling_draws_sizes_per_episode(tmp_path):
    dagger.run(config(tmp_path, "dagger.rounds=0", "dagger.train_steps=1", "dagger.eval_puzzles=0",
                      "dagger.size_sampling=per_reset", "dagger.sizes=[1,4]", "dagger.steps=64"))
    transitions, _, _ = load_round(tmp_path / "run" / "aggregate" / "round_0000.npz")
    disks = (transitions.obs["state"] != 3).sum(axis=1)
    assert set(np.unique(disks)) == {1, 2, 3, 4}  # sizes between the bounds appear (per_env would give 1 and 4 only)
    with pytest.raises(ValueError, match="dagger.size_sampling"):
        dagger.run(config(tmp_path, "dagger.size_sampling=mixed"))


def test_per_reset_with_named_sizes_draws_them_per_reset(tmp_path):
    cfg = config(tmp_path, "env=sudoku", "dagger.size_sampling=per_reset")
    envs = dagger.make_vector_env(cfg, ["easy"])
    assert envs.num_envs == cfg.dagger.envs and np.prod(envs.single_observation_space["grid"].shape) == 16
    envs.close()
    envs = dagger.make_vector_env(cfg, ["easy", "medium"])  # easy: 8-10 givens, medium: 4-7
    givens = []
    for seed in range(6):
        obs, _ = envs.reset(seed=100 * seed)
        givens += obs["givens"].reshape(envs.num_envs, -1).sum(axis=1).tolist()
    envs.close()
    assert min(givens) <= 7 and max(givens) >= 8  # both levels appear
    assert all(4 <= g <= 10 for g in givens)


def test_rounds_play_new_puzzles(tmp_path):
    """Each round's sub-envs start from fresh seeds (no round replays another round's puzzles)."""
    dagger.run(config(tmp_path, "dagger.rounds=2", "dagger.train_steps=1", "dagger.eval_puzzles=0", "dagger.sizes=[6]",
                      "dagger.beta.schedule=constant", "dagger.beta.start=1.0"))
    seen = []
    for index in range(3):
        transitions, _, _ = load_round(tmp_path / "run" / "aggregate" / f"round_{index:04d}.npz")
        seen.append({bytes(s) + bytes(g) for s, g in zip(transitions.obs["state"], transitions.obs["goal"])})
    for a in range(3):
        for b in range(a + 1, 3):
            assert len(seen[a] & seen[b]) < 0.1 * len(seen[b]), (a, b)


def test_token_labels_train_a_token_head_on_the_oracles_plan(tmp_path):
    """dagger.token_labels=true: the aggregate carries the oracle's per-token labels of its stored states and
    the model gets a token head of the oracle's classes beside its policy head (acting is unchanged)."""
    final = dagger.run(config(tmp_path, "dagger.rounds=1", "dagger.train_steps=20", "dagger.eval_puzzles=2",
                              "dagger.token_labels=true"))
    assert final["labels"] == 2 * 4 * 24
    run = tmp_path / "run"
    transitions, _, _ = load_round(run / "aggregate" / "round_0001.npz")
    oracle = oracle_for("hrm/Hanoi-v0")
    probe = Learner(dict(name="hrm", hidden_size=16, num_heads=2), {}, dagger.encoder_for(gym.make("hrm/Hanoi-v0")))
    aggregate = Aggregate(probe.encoder, oracle)
    aggregate.add(transitions)
    batch = aggregate.sample(50, torch.Generator().manual_seed(0))
    assert set(batch) == {"tokens", "action_mask", "optimal", "labels"}
    expected = oracle.token_labels(transitions.obs)
    rows = [int(np.flatnonzero((probe.encoder.tokens(transitions.obs) == t.numpy()).all(1))[0]) for t in batch["tokens"]]
    assert (batch["labels"].numpy() == expected[rows]).all()
    policy = load_policy(run / "last.pt", probe.encoder)
    assert policy.model.config.token_vocab == oracle.token_label_classes == 3
    out = policy.model.predict({"tokens": batch["tokens"]})
    assert out["logits"].shape == (50, batch["tokens"].shape[1], 3)
    assert "policy_logits" in out


def test_episode_carry_trains_on_streams_and_the_checkpoint_remembers(tmp_path, monkeypatch):
    seen = []
    original = Learner.train_step

    def recording_step(self, batch):
        seen.append(batch["continues"].clone())
        return original(self, batch)

    monkeypatch.setattr(Learner, "train_step", recording_step)
    cfg = config(tmp_path, "model.episode_carry=true", "dagger.rounds=1",
                 "dagger.train_steps=20", "dagger.eval_puzzles=2")
    final = dagger.run(cfg)
    assert final["rounds"] == 2 and len(seen) == 40
    assert not seen[0].any() and any(c.any() for c in seen[1:])  # later steps go on within episodes
    encoder = encoder_for(gym.make("hrm/Hanoi-v0", num_disks=2, max_disks=4))
    assert load_policy(tmp_path / "run" / "last.pt", encoder).remembers


def grid_stage(tmp_path: Path, width: int, *overrides: str):
    """A one-round maze run of a rope2d grid model padded to ``width``."""
    return config(tmp_path, "env=maze", f"env.kwargs.max_size={width}", "dagger.sizes=[7]", f"env.eval_sizes=[{width}]",
                  "dagger.rounds=0", "dagger.train_steps=2", "dagger.eval_puzzles=0", "model.attention_window=1",
                  f"model.attention_grid={width}", "model.pos_encodings=rope2d", *overrides)


def test_init_from_starts_a_wider_stage_from_the_narrower_runs_weights(tmp_path, monkeypatch):
    dagger.run(grid_stage(tmp_path / "narrow", 9))
    trained = torch.load(tmp_path / "narrow" / "run" / "last.pt", weights_only=False)["model"]
    first_weights = []
    original = Learner.train_step

    def recording_step(self, batch):
        if not first_weights:
            first_weights.append({k: v.clone() for k, v in self.module.state_dict().items()})
        return original(self, batch)

    monkeypatch.setattr(Learner, "train_step", recording_step)
    final = dagger.run(grid_stage(tmp_path / "wide", 11, f"init_from={tmp_path / 'narrow' / 'run' / 'last.pt'}"))
    assert final["steps"] == 2  # a fresh schedule: the narrow run's steps are not counted
    assert first_weights[0].keys() == trained.keys()
    assert all(torch.equal(first_weights[0][k], trained[k]) for k in trained)


@pytest.mark.parametrize("overrides, message", [
    (["model.hidden_size=64"], "only model.attention_grid may differ"),
    (["model.pos_encodings=rope"], "model.pos_encodings"),
])
def test_init_from_refuses_another_model(tmp_path, overrides, message):
    dagger.run(grid_stage(tmp_path / "narrow", 9))
    with pytest.raises(ValueError, match=message):
        dagger.run(grid_stage(tmp_path / "wide", 11, f"init_from={tmp_path / 'narrow' / 'run' / 'last.pt'}", *overrides))


def test_a_time_budget_spent_before_round_0_still_trains_and_saves_round_0(tmp_path):
    final = dagger.run(config(tmp_path, "dagger.max_minutes=1e-9", "dagger.train_steps=2", "dagger.eval_puzzles=0"))
    assert final["rounds"] == 1 and (tmp_path / "run" / "last.pt").is_file()
