"""train.evaluate: reference rows, a checkpoint row, the report files, held-out puzzles, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from train.aggregate import dataset_round, save_round
from train.datasets import build, parse_spec
from train.datasets.loading import StepwiseSplit
from configs import CONFIG_DIR
from train.evaluate import HeldOut, episode_seeds, evaluate_policies, held_out_seeds, run, state_keys

ENV = "hrm/Hanoi-v0"


def config(tmp_path: Path, *overrides: str, env: str | None = "hanoi"):
    """The evaluate config; ``env=None`` leaves the env to the checkpoint."""
    chosen = [f"env={env}"] if env else []
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("evaluate", overrides=[*chosen, f"out={tmp_path / 'report'}", "episodes=6", "sizes=[2,4]",
                                              *overrides])


def hanoi_env_config() -> dict:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("evaluate", overrides=["env=hanoi", "env.kwargs.max_disks=6"])
    return OmegaConf.to_container(cfg.env, resolve=True)


def test_oracle_row_is_perfect_and_random_row_is_not():
    results = evaluate_policies({"oracle": None, "random": None}, ENV, [3, 5], 8, "num_disks", {"max_disks": 6})
    for size in ("3", "5", "all"):
        row = results["oracle"][size]
        assert (row["success"], row["optimality_ratio"], row["teacher_forcing"], row["gap"]) == (1.0, 1.0, 1.0, 0.0)
        assert row["first_error_steps"] == []
    assert results["random"]["all"]["success"] < 1.0
    assert results["random"]["all"]["teacher_forcing"] < 1.0
    assert results["oracle"]["3"]["episodes"] == 8 and results["oracle"]["all"]["episodes"] == 16


def test_without_teacher_forcing_the_episodes_are_the_same_and_no_tf_column_is_made():
    """``teacher_forcing=False`` plays the same puzzles with the same outcome and leaves TF and gap out."""
    args = ({"oracle": None, "random": None}, ENV, [2, 3], 8, "num_disks", {"max_disks": 6})
    full, quick = evaluate_policies(*args), evaluate_policies(*args, teacher_forcing=False)
    for name in ("oracle", "random"):
        for size in ("2", "3", "all"):
            assert "teacher_forcing" not in quick[name][size] and "gap" not in quick[name][size]
            assert {k: v for k, v in full[name][size].items() if k not in ("teacher_forcing", "gap")} == quick[name][size]
    assert quick["oracle"]["all"]["success"] == 1.0 and full["random"]["all"]["teacher_forcing"] < 1.0


def test_cli_evaluates_a_checkpoint_and_writes_the_report(tmp_path):
    import torch

    from hrm_envs.encoding import encoder_for
    import gymnasium as gym
    from train.checkpoints import save_checkpoint
    from train.learner import Learner

    encoder = encoder_for(gym.make(ENV, max_disks=10))
    learner = Learner({"name": "hrm", "hidden_size": 16, "num_heads": 2, "H_layers": 1, "L_layers": 1,
                       "halt_max_steps": 3}, {"lr": 1e-3}, encoder)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "hrm" / "last.pt", learner, {"test": True}, 0)
    out = run(config(tmp_path, f"checkpoint={tmp_path / 'hrm' / 'last.pt'}"))
    report = tmp_path / "report"
    data = json.loads((report / "results.json").read_text())
    assert set(data["results"]) == {"oracle", "random", "hrm"} == set(out["results"])
    row = data["results"]["hrm"]["all"]
    assert 1.0 <= row["mean_segments"] <= 3.0 and 0.0 <= row["success"] <= 1.0
    assert data["meta"]["sizes"] == [2, 4]
    table = (report / "results.md").read_text()
    assert "| hrm | 4 | 6 |" in table and "| oracle | all | 12 | 1.000 [0.76, 1.00] |" in table
    for name in ("success_vs_size", "gap", "first_error", "segments_vs_size"):
        png = report / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    # acting overrides: every decision runs 4 segments (one more than trained), recorded in meta
    longer = run(config(tmp_path, f"checkpoint={tmp_path / 'hrm' / 'last.pt'}", "references=[]",
                        "act.inference_halting=max_steps", "act.halt_max_steps=4"))
    assert longer["results"]["hrm"]["all"]["mean_segments"] == 4.0
    assert longer["meta"]["act"] == {"inference_halting": "max_steps", "halt_max_steps": 4}
    for bad, name in (("act.halt_max_steps=0", "halt_max_steps"), ("act.inference_halting=never", "inference_halting")):
        with pytest.raises(ValueError, match=name):
            run(config(tmp_path, f"checkpoint={tmp_path / 'hrm' / 'last.pt'}", "references=[]", bad))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["episodes=0"], "episodes"),
        (["sizes=[]"], "sizes"),
        (["references=[oracle,expert]"], "references"),
        (["checkpoint=[a.pt,b.pt]", "names=[x]"], "names"),
        (["checkpoint=/nonexistent/last.pt"], "does not exist"),
        (["checkpoint=/nonexistent/model.zip"], "does not exist"),
        (["env.eval_horizon=-1"], "env.eval_horizon"),
        (["threads=-1"], "threads must be an int >= 0, got -1"),
        (["out=/proc/x"], "out must be a writable folder path, got '/proc/x'"),
        (["seed=1.5"], "seed must be an int >= 0, got 1.5"),
    ],
)
def test_bad_input_names_the_argument(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        run(config(tmp_path, *overrides))


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    """A step-wise Hanoi set (2 and 3 disks, max_disks 4) whose states cover much of the 81 two-disk puzzles."""
    spec = {"name": "hanoi-small", "kind": "stepwise", "env": ENV, "size_arg": "num_disks", "env_kwargs": {"max_disks": 4},
            "splits": {"train": {"sizes": [2, 3], "puzzles": 40, "seed": 0},
                       "test": {"sizes": [3], "puzzles": 4, "seed": 1000000}}}
    out = tmp_path_factory.mktemp("data") / "hanoi-small"
    build(parse_spec(spec), out, "test", progress=False)
    return out


def test_held_out_puzzles_skip_every_training_state_and_keep_the_seed_order(small_set, tmp_path):
    split = StepwiseSplit(small_set, "train")
    obs = split.obs_batch(np.arange(split.num_samples))
    seen = {(tuple(state), tuple(goal)) for state, goal in zip(obs["state"].tolist(), obs["goal"].tolist())}
    held_out = HeldOut.load([small_set])
    assert len(held_out.keys) == len(seen)  # one key per distinct state, whatever the stored dtype

    envs = [gym.make(ENV, num_disks=2, max_disks=4) for _ in range(12)]
    chosen = held_out_seeds(envs, 7, 0, "2", held_out)
    starts = [envs[0].reset(seed=s)[0] for s in chosen]
    assert len(set(chosen)) == 12 and all((tuple(o["state"]), tuple(o["goal"])) not in seen for o in starts)
    stream = episode_seeds(7, 0, 200)
    skipped = [s for s in stream[: stream.index(chosen[-1])] if s not in chosen]
    assert chosen == [s for s in stream if s in chosen]  # the stream's order, training puzzles removed
    assert held_out.replaced["2"] == len(skipped) > 0
    assert all((tuple(o["state"]), tuple(o["goal"])) in seen for o in (envs[0].reset(seed=s)[0] for s in skipped))

    # A train.dagger run folder (round files) holding the same states gives the same keys.
    save_round(tmp_path / "run" / "aggregate" / "round_0000.npz", dataset_round(small_set), 0, 1.0)
    assert HeldOut.load([tmp_path / "run"]).keys == held_out.keys


def test_held_out_report_and_its_errors(small_set, tmp_path):
    out = run(config(tmp_path, "env.kwargs.max_disks=4", "sizes=[2,4]", "references=[oracle]",
                     f"held_out_from=[{small_set}]"))
    held = json.loads((tmp_path / "report" / "results.json").read_text())["meta"]["held_out"]
    assert held["training_states"] > 0 and held["replaced_puzzles"]["2"] > 0 and held["replaced_puzzles"]["4"] == 0
    assert out["results"]["oracle"]["all"]["success"] == 1.0
    # under max_disks 10 the same puzzles are training states (compared without the padding disks)
    wider = run(config(tmp_path, "sizes=[2,4]", "references=[oracle]", f"held_out_from=[{small_set}]"))
    assert wider["meta"]["held_out"]["replaced_puzzles"] == held["replaced_puzzles"]
    sudoku = HeldOut([], set(), {"grid": (4, 4), "givens": (4, 4)})
    with pytest.raises(ValueError, match="held_out_from states have shapes"):  # sudoku pads nothing: 9x9 never equal
        sudoku.check_space(gym.make("hrm/Sudoku-v0", box=3).observation_space)
    with pytest.raises(ValueError, match="held_out_from entries must be"):
        run(config(tmp_path, f"held_out_from=[{tmp_path}]"))
    env = gym.make(ENV, num_disks=1, max_disks=4)
    every_one_disk_puzzle = [env.reset(options={"puzzle": {"start": [s], "goal": [g]}})[0] for s in range(3) for g in range(3)]
    held_out = HeldOut([], {key for o in every_one_disk_puzzle for key in state_keys({k: v[None] for k, v in o.items()})},
                       {k: v.shape for k, v in every_one_disk_puzzle[0].items() if k != "action_mask"})
    with pytest.raises(ValueError, match="size 1: every one of the 140 puzzles drawn is a training state"):
        held_out_seeds([env] * 2, 0, 0, "1", held_out)


@pytest.mark.parametrize("env_id, size_arg, size, bounds", [
    ("hrm/Maze-v0", "size", 9, ("max_size", 11, 25)),
    ("hrm/CityRouting-v0", "size", 10, ("max_size", 12, 20)),
    ("hrm/Hanoi-v0", "num_disks", 3, ("max_disks", 3, 8)),
])
def test_state_keys_without_padding_are_the_same_under_every_size_bound(env_id, size_arg, size, bounds):
    name, small, large = bounds
    stream = episode_seeds(0, 0, 40)
    keys = {}
    for bound in (small, large):
        env = gym.make(env_id, **{size_arg: size, name: bound})
        starts = [env.reset(seed=seed)[0] for seed in stream]
        batch = {k: np.stack([o[k] for o in starts]) for k in starts[0]}
        keys[bound] = state_keys(batch, env.unwrapped.padding)
        assert len(set(state_keys(batch))) == len(set(keys[bound]))  # distinct puzzles stay distinct
    assert keys[small] == keys[large]
    # the first 10 puzzles as a training set at the smaller bound: held out under both bounds, the rest kept
    training = set(keys[small][:10])
    held_out = HeldOut([], training, {k: v.shape for k, v in starts[0].items() if k != "action_mask"},
                       env.unwrapped.padding)
    expected = [seed for seed, key in zip(stream, keys[small]) if key not in training][:5]
    for bound in (small, large):
        envs = [gym.make(env_id, **{size_arg: size, name: bound}) for _ in range(5)]
        assert held_out_seeds(envs, 0, 0, "x", held_out) == expected
        assert held_out.replaced["x"] >= 10


def test_bad_size_argument():
    with pytest.raises(ValueError, match="size_arg"):
        evaluate_policies({"oracle": None}, ENV, [3], 2, "disks")
    with pytest.raises(ValueError, match="only"):
        evaluate_policies({"mine": None}, ENV, [3], 2, "num_disks")


def test_ppo_row_trains_within_its_wall_time_and_is_evaluated_like_the_others(tmp_path):
    import time

    from train.ppo import train

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("ppo", overrides=[f"out={tmp_path / 'ppo'}", "ppo.policy=mlp", "ppo.minutes=0.05",
                                        "ppo.n_steps=16", "ppo.batch_size=32"])
    started = time.monotonic()
    progress = train(cfg)
    assert time.monotonic() - started < 40 and progress["timesteps"] > 0
    assert progress["minutes"] < 0.5
    out = run(config(tmp_path, f"checkpoint={tmp_path / 'ppo' / 'model.zip'}", "references=[]"))
    assert set(out["results"]) == {"ppo"} and out["results"]["ppo"]["all"]["episodes"] == 12
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        bad = compose("ppo", overrides=[f"out={tmp_path / 'bad'}", "ppo.policy=transformer"])
    with pytest.raises(ValueError, match="ppo.policy"):
        train(bad)


def tiny_checkpoint(path: Path, run_config: dict) -> Path:
    from hrm_envs.encoding import encoder_for
    from train.checkpoints import save_checkpoint
    from train.learner import Learner

    encoder = encoder_for(gym.make(ENV, max_disks=6))
    learner = Learner({"name": "hrm", "hidden_size": 16, "num_heads": 2, "H_layers": 1, "L_layers": 1,
                       "halt_max_steps": 2}, {"lr": 1e-3}, encoder)
    save_checkpoint(path, learner, run_config, 0)
    return path


def test_the_env_comes_from_the_checkpoint_when_env_is_not_given(tmp_path):
    path = tiny_checkpoint(tmp_path / "hrm" / "last.pt", {"env": hanoi_env_config()})
    out = run(config(tmp_path, f"checkpoint={path}", "references=[oracle]", env=None))
    assert out["meta"]["env"] == ENV and out["meta"]["env_kwargs"] == {"max_disks": 6}
    assert out["results"]["oracle"]["all"]["success"] == 1.0


def test_a_checkpoint_of_another_env_is_refused_naming_both(tmp_path):
    path = tiny_checkpoint(tmp_path / "hrm" / "last.pt", {"env": hanoi_env_config()})
    with pytest.raises(ValueError, match=r"trained on hrm/Hanoi-v0 \(env=hanoi\).*hrm/Maze-v0 \(env=maze\)"):
        run(config(tmp_path, f"checkpoint={path}", env="maze"))
    with pytest.raises(ValueError, match="env is not set"):
        run(config(tmp_path, env=None))  # no checkpoint to take it from


def test_success_figures_carry_wilson_intervals(tmp_path):
    results = evaluate_policies({"oracle": None, "random": None}, ENV, [4], 20, "num_disks", {"max_disks": 6})
    oracle, random = results["oracle"]["4"], results["random"]["4"]
    assert oracle["success_ci95"] == pytest.approx([0.8389, 1.0], abs=1e-4)  # 20 of 20
    assert oracle["optimal_episodes_ci95"] == oracle["success_ci95"]
    low, high = random["success_ci95"]
    assert low <= random["success"] <= high and high - low > 0.1
    from train.evaluate import markdown_table

    assert "| oracle | 4 | 20 | 1.000 [0.84, 1.00] |" in markdown_table(results)


def test_act_overrides_scale_the_segments_with_the_puzzle(tmp_path):
    """``act.halt_scale=tokens``: a checkpoint trained with 2 segments thinks in proportion to the disks."""
    path = tiny_checkpoint(tmp_path / "hrm" / "last.pt", {"env": hanoi_env_config()})
    out = run(config(tmp_path, f"checkpoint={path}", "references=[]", "act.inference_halting=max_steps",
                     "act.halt_scale=tokens", "act.halt_reference=2", "sizes=[2,4,6]", env=None))
    segments = {size: out["results"]["hrm"][size]["mean_segments"] for size in ("2", "4", "6")}
    assert segments == {"2": 2.0, "4": 4.0, "6": 6.0}
    with pytest.raises(ValueError, match="act.halt_scale must be null or one of"):
        run(config(tmp_path, f"checkpoint={path}", "act.halt_scale=area", env=None))


def test_a_seq2seq_checkpoint_is_scored_on_every_example_of_a_split(city_run, tmp_path):
    from hrm_envs.city import VEHICLES
    from train.datasets import Seq2SeqSplit

    root, checkpoint = city_run
    report = run(config(tmp_path, f"checkpoint={checkpoint}", f"data={root}", env=None))
    saved = json.loads((tmp_path / "report" / "results.json").read_text())
    assert saved["meta"]["examples"] == 8 and saved["meta"]["split"] == "test" and saved["all"] == report["all"]
    every = report["all"]
    assert every["examples"] == 8 and set(report["per_variant"]) == set(VEHICLES)
    assert all(row["examples"] == 2 for row in report["per_variant"].values())
    for key in ("exact", "arrived", "valid", "mask_exact", "mask_arrived", "mask_valid"):
        low, high = every[f"{key}_ci95"]
        assert low <= every[key] <= high
    for key in ("path_ratio", "path_f1", "efficiency", "token", "mask_path_ratio", "mask_no_path", "no_path", "all_path"):
        assert 0 <= every[key] <= 1
    assert every["valid"] == 1.0  # decoded routes walk legal streets only
    split = Seq2SeqSplit(root, "test")
    inside = (split.labels != 0).sum(1)  # 0 = outside the city
    assert every["reference_path_ratio"] == pytest.approx(float(np.mean((split.labels == 2).sum(1) / inside)))
    breaks = report["breaks"]
    assert breaks["not_arrived"] == round((1 - every["arrived"]) * 8) == breaks["routes"]  # every miss has a break
    if breaks["routes"]:
        assert sum(breaks["share"]["histogram"]["counts"]) == breaks["routes"]
        assert 0 < breaks["share"]["quantiles"]["0.5"] <= 1 and breaks["time_to_goal"]["quantiles"]["0.9"] > 0
    table = (tmp_path / "report" / "results.md").read_text()
    assert "| 8 | all |" in table and "| 2 | bicycle |" in table
    train = run(config(tmp_path, f"checkpoint={checkpoint}", f"data={root}", "split=train", env=None))
    assert train["all"]["examples"] == 12  # 3 train bases x 4 vehicles


def test_data_is_refused_with_a_step_wise_checkpoint_or_set_and_a_seq2seq_checkpoint_needs_it(city_run, tmp_path):
    import torch

    from hrm_envs.encoding import encoder_for
    from train.checkpoints import save_checkpoint
    from train.learner import Learner

    root, checkpoint = city_run
    stepwise = tmp_path / "lstm.pt"
    learner = Learner({"name": "lstm", "hidden_size": 16, "depth": 1}, {"lr": 1e-3}, encoder_for(gym.make(ENV, max_disks=6)))
    torch.manual_seed(0)
    save_checkpoint(stepwise, learner, {"env": hanoi_env_config(), "seed": 0}, 0)
    with pytest.raises(ValueError, match=r"data= applies to seq2seq checkpoints; .*lstm\.pt acts step by step"):
        run(config(tmp_path, f"checkpoint={stepwise}", f"data={root}", env=None))
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "summary.json").write_text(json.dumps({"kind": "stepwise", "env": ENV, "splits": {}}))
    with pytest.raises(ValueError, match=r"data must be a seq2seq data set; .*steps holds a 'stepwise' one"):
        run(config(tmp_path, f"checkpoint={checkpoint}", f"data={tmp_path / 'steps'}", env=None))
    with pytest.raises(ValueError, match=r"data must be a built data set folder"):
        run(config(tmp_path, f"checkpoint={checkpoint}", f"data={tmp_path / 'none'}", env=None))
    with pytest.raises(ValueError, match=r"split must be one of \['test', 'train'\]"):
        run(config(tmp_path, f"checkpoint={checkpoint}", f"data={root}", "split=validation", env=None))
    with pytest.raises(ValueError, match=r"is a seq2seq checkpoint: pass data=DIR"):
        run(config(tmp_path, f"checkpoint={checkpoint}", env=None))
    with pytest.raises(ValueError, match=r"split applies with data=DIR"):
        run(config(tmp_path, f"checkpoint={stepwise}", "split=test", env=None))
    maze = {"name": "maze-tiny", "kind": "seq2seq", "env": "hrm/Maze-v0", "size_arg": "size", "num_aug": 0,
            "env_kwargs": {"max_size": 7}, "splits": {"test": {"sizes": [7], "puzzles": 2, "seed": 5}}}
    build(parse_spec(maze), tmp_path / "maze", "test", progress=False)
    with pytest.raises(ValueError, match=r"holds a hrm/Maze-v0 set, checkpoint .* was trained on hrm/CityRouting-v0"):
        run(config(tmp_path, f"checkpoint={checkpoint}", f"data={tmp_path / 'maze'}", env=None))


def test_held_out_sudoku_puzzles_skip_every_training_solution_grid(tmp_path):
    """With the registry's answer_keys (Sudoku: the solution grid), a training run's states hold out every puzzle
    of their solution grids: a puzzle of the same grid with other givens is replaced, as is the same puzzle;
    another grid is played. ``run`` reports how many answers the training states hold."""
    from hrm_envs.sudoku.env import solution_keys
    from train.rollout import Transitions

    env = gym.make("hrm/Sudoku-v0", box=3, difficulty="easy")
    first, _ = env.reset(seed=11)
    solution = env.unwrapped._puzzle.solution
    obs = {k: np.stack([first[k]]) for k in first}
    n = 1
    save_round(tmp_path / "run" / "aggregate" / "round_0000.npz", Transitions(
        obs=obs, next_obs=obs, action=np.zeros(n, np.int64), expert_action=np.zeros(n, np.int64),
        optimal=np.ones((n, 810), bool), learner_action=np.full(n, -1, np.int64), expert_executed=np.ones(n, bool),
        segments=np.zeros(n, np.int64), reward=np.zeros(n, np.float32), terminated=np.zeros(n, bool),
        truncated=np.zeros(n, bool), success=np.zeros(n, bool), env_index=np.zeros(n, np.int64)), 0, 1.0)
    held_out = HeldOut.load([tmp_path / "run"], {}, solution_keys)
    assert held_out.answers == {solution.astype(np.int8).tobytes()} and len(held_out.keys) == 1
    givens = first["givens"].astype(bool).copy()
    givens[np.unravel_index(np.flatnonzero(~givens.ravel())[0], givens.shape)] = True  # one more given
    same_grid = {"grid": np.where(givens, solution, 0).astype(np.int8), "givens": givens.astype(np.int8)}
    assert same_grid in held_out and first in held_out
    assert env.reset(seed=12)[0] not in held_out
    assert HeldOut.load([tmp_path / "run"]).answers == set()  # without answer_keys: states only
    out = run(config(tmp_path, "references=[oracle]", "sizes=[easy]", "episodes=2", "env.kwargs.box=3",
                     f"held_out_from=[{tmp_path / 'run'}]", env="sudoku"))
    assert out["meta"]["held_out"]["training_answers"] == 1
