"""Fast checks of benchmarks.headline: argument validation and the per-env table (no training)."""

from __future__ import annotations

import argparse
import json
import math
import sys

import pytest
import yaml
from omegaconf import OmegaConf

from benchmarks.headline import (
    EXPERIMENTS, ROOT, compose_row, data_and_env, experiment_rows, held_out_from, main, markdown, optimizer_overrides,
    parse_args, resume_flag, row_commands, row_module, run_all, summarize_row)
from configs import CONFIG_DIR
from train.schema import DAGGER, PPO, SUPERVISED, check_config


def test_unknown_env_names_the_argument() -> None:
    with pytest.raises(ValueError, match="--env"):
        parse_args(["--env", "chess"])


def test_env_kwargs_change_the_rows_env_and_the_data_set_of_the_same_puzzles() -> None:
    assert parse_args(["--env", "hanoi", "--env-kwargs", "max_disks=12"]).env_kwargs == ["max_disks=12"]
    with pytest.raises(ValueError, match="--env-kwargs"):
        parse_args(["--env", "hanoi", "--env-kwargs", "max_disks"])
    data, build, env = data_and_env(EXPERIMENTS["hanoi"], ["max_disks=12"])
    assert data == ROOT / "data" / "hanoi-paper-max_disks12"
    assert build == ["preset=hanoi-paper", f"out={data}", "preset.env_kwargs.max_disks=12"]
    assert env == ["env=hanoi", "env.kwargs.max_disks=12"]
    assert data_and_env(EXPERIMENTS["hanoi"], [])[0] == ROOT / "data" / "hanoi-paper"
    from hydra import compose, initialize_config_dir  # the overrides compose with the shipped configs

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        assert compose("datasets", overrides=build[:1] + build[2:]).preset.env_kwargs.max_disks == 12
        assert compose("supervised", overrides=env).env.kwargs.max_disks == 12


@pytest.mark.parametrize("flag", ["--steps", "--episodes", "--jobs", "--hidden", "--batch-size", "--lr"])
def test_non_positive_budgets_name_the_argument(flag: str) -> None:
    with pytest.raises(ValueError, match=flag):
        parse_args(["--env", "maze", flag, "0"])


@pytest.mark.parametrize("decay", ["0", "1", "1.5"])
def test_ema_outside_the_open_unit_interval_names_the_argument(decay: str) -> None:
    with pytest.raises(ValueError, match="--ema"):
        parse_args(["--env", "hanoi", "--ema", decay])


@pytest.mark.parametrize(("flags", "ema"), [([], None), (["--ema", "0.999"], 0.999)])
def test_ema_reaches_every_learned_row_s_optimizer(flags: list[str], ema: float | None) -> None:
    from hydra import compose, initialize_config_dir

    overrides = optimizer_overrides(parse_args(["--env", "hanoi", "--lr", "1e-3", *flags]))
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for module in ("supervised", "dagger"):
            cfg = compose(module, overrides=overrides)
            assert (cfg.train.ema, cfg.train.lr) == (ema, 1e-3), module


def test_defaults_come_from_the_env_table() -> None:
    args = parse_args(["--env", "city"])
    city = EXPERIMENTS["city"]
    assert (args.steps, args.batch_size, args.episodes, args.out) == (city.steps, city.batch_size, city.episodes,
                                                                      "runs/headline_city")


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_table_matches_presets_and_env_configs(name: str) -> None:
    experiment = EXPERIMENTS[name]
    preset = yaml.safe_load((CONFIG_DIR / "preset" / f"{experiment.preset}.yaml").read_text())
    assert (CONFIG_DIR / "env" / f"{experiment.env}.yaml").is_file()
    train = preset["splits"]["train"]["sizes"]
    assert set(experiment.train_sizes) <= set(train)
    env_preset = yaml.safe_load((CONFIG_DIR / "env" / f"{experiment.env}.yaml").read_text())["preset"]
    overrides = [o.split("=", 1)[1] for o in experiment.env_overrides if o.startswith("env.preset=")]
    assert (overrides or [env_preset]) == [experiment.preset]  # the rows train on the preset whose labels they count
    assert not set(experiment.test_sizes) & set(train)
    for row, metric, threshold in experiment.targets.values():
        assert row in ("hrm_dagger", "hrm_labels_dagger", "hrm_local_dagger", "trm_local_dagger", "trm_local_carry_dagger",
                       "trm_local_carry_episodes_dagger", "trm_grid_labels_dagger", "trm_grid_carry_labels_dagger")
        assert metric.startswith(("in_", "out_"))
        assert 0 < threshold <= 1


def budget(env: str, steps: int, batch_size: int, **flags) -> argparse.Namespace:
    """The arguments ``row_commands`` reads, with parse_args' defaults unless given."""
    defaults = {"hidden": 64, "lr": 3e-3, "ema": None, "size_sampling": "per_reset", "ppo_minutes": 0.0,
                "dagger_horizon": None}
    return argparse.Namespace(env=env, steps=steps, batch_size=batch_size, **{**defaults, **flags})


def test_hanoi_rows_keep_the_pinned_budget() -> None:
    commands = row_commands(budget("hanoi", 3000, 64), 13397)
    assert set(commands) == {"hrm_dagger", "hrm_labels_dagger", "hrm_supervised", "transformer_dagger", "trm_dagger",
                             "lstm_supervised", "lstm_dagger", "hrm_local_dagger", "trm_local_dagger", "trm_scan_dagger",
                             "trm_scan_labels_dagger", "trm_local_carry_dagger", "trm_local_carry_episodes_dagger"}
    assert commands["trm_local_carry_dagger"][:2] == ["train.dagger", "experiment=hanoi_trm_local_carry_dagger"]
    assert commands["hrm_supervised"][:2] == ["train.supervised", "experiment=hanoi_hrm_supervised"]
    assert "dagger.max_labels=13397" in commands["hrm_dagger"] and "dagger.rounds=7" in commands["hrm_dagger"]
    assert "dagger.train_steps=375" in commands["hrm_dagger"] and "train.epochs=14" in commands["hrm_supervised"]
    carry = compose_row("train.dagger", commands["trm_local_carry_dagger"][1:])
    assert (carry.model.name, carry.model.attention_window, carry.model.episode_carry) == ("trm", 1, True)
    assert carry.dagger.episode_restart == 0.25 and carry.model.halt_max_steps == 3
    assert compose_row("train.dagger", commands["hrm_dagger"][1:]).model.halt_max_steps == 2


def test_rows_come_from_the_experiment_files_of_their_env() -> None:
    """An env's rows are the configs named ``<env>_<row>`` with a row that names its entry point; a longer env key that
    starts alike keeps its own."""
    assert "hrm_dagger" in experiment_rows("sudoku4") and "large_hrm_dagger" not in experiment_rows("sudoku4")
    assert "hrm_labels_dagger" in experiment_rows("sudoku4_large")
    assert "ppo_hrm" in experiment_rows("maze") and "ppo_hrm" not in row_commands(budget("maze", 800, 16), 6621)
    assert "ppo_hrm" in row_commands(budget("maze", 800, 16, ppo_minutes=1.0), 6621)
    assert [row_module(row) for row in ("ppo_hrm", "lstm_supervised", "hrm_dagger", "grid_small")] == [
        "train.ppo", "train.supervised", "train.dagger", None]
    assert "grid_small" not in experiment_rows("maze")  # configs/experiment/maze_grid_small.yaml: exploratory


@pytest.mark.slow
def test_grid_rows_only_on_grids() -> None:
    """The grid-attention rows exist where the experiment has a grid width: the local TRM on that grid, labelled, and
    the same with its latent carried across an episode's decisions."""
    assert "trm_grid_labels_dagger" not in row_commands(budget("hanoi", 800, 16), 6621)
    for env, width in (("maze", 31), ("city", 40)):
        commands = row_commands(budget(env, 800, 16), 6621)
        grid = compose_row("train.dagger", commands["trm_grid_carry_labels_dagger"][1:])
        assert (grid.model.attention_grid, grid.model.global_readout, grid.dagger.token_labels) == (
            width, "acting_token", True)
        assert grid.model.episode_carry and grid.dagger.episode_restart == 0.25


# The headline's rows as benchmarks/headline.py pinned them before the experiment configs (a frozen copy of its
# HRM_CONFIG, TRM_CONFIG, ..., pinned_models and row_commands): the experiment configs plus the budget must compose
# to exactly these commands' configs.
SCHEMAS = {"train.dagger": DAGGER, "train.supervised": SUPERVISED, "train.ppo": PPO}
OLD_TRAIN = ["train.weight_decay=0.01", "train.betas=[0.9,0.95]", "train.warmup_steps=100", "train.schedule=cosine",
             "train.lr_min_ratio=0.05", "train.grad_clip=1.0"]
OLD_TRM_LOCAL = ["model.L_layers=2", "model.H_cycles=1", "model.L_cycles=4", "model.halt_max_steps=3",
                 "model.halt_exploration_prob=0.1", "model.inference_halting=max_steps", "model.attention_window=1"]
OLD_CARRY = ["model.episode_carry=true", "dagger.episode_restart=0.25"]


def old_row_commands(args: argparse.Namespace, labels: int, grid_width: int) -> dict[str, list[str]]:
    width = [f"model.hidden_size={args.hidden}", "model.num_heads=4", "model.expansion=4.0", "model.pos_encodings=rope",
             "model.loss=softmax"]
    blocks = [*width, "model.H_layers=1", "model.L_layers=1"]
    hrm = ["model=hrm", *blocks, "model.H_cycles=1", "model.L_cycles=1", "model.halt_max_steps=2",
           "model.halt_exploration_prob=0.1"]
    trm = ["model=trm", *width, "model.L_layers=2", "model.H_cycles=1", "model.L_cycles=2", "model.halt_max_steps=2",
           "model.halt_exploration_prob=0.1"]
    hrm_local = ["model=hrm", *blocks, "model.H_cycles=2", "model.L_cycles=3", "model.halt_max_steps=4",
                 "model.halt_exploration_prob=0.1", "model.attention_window=1"]
    trm_local = ["model=trm", *width, *OLD_TRM_LOCAL]
    trm_scan = [*trm_local, "model.attention_direction=later"]
    lstm = ["model=lstm", f"model.hidden_size={args.hidden}", "model.depth=2", "model.loss=softmax"]
    trm_grid = [*trm_local, f"model.attention_grid={grid_width}", "model.global_readout=acting_token"]
    epochs = max(1, round(args.steps / max(1, labels // args.batch_size)))
    supervised = ["train.eval.puzzles=0", "train.eval.tf_samples=2000", f"train.epochs={epochs}"]
    rounds = math.ceil(labels / (14 * 128))
    dagger = [f"dagger.max_labels={labels}", f"dagger.rounds={rounds - 1}", "dagger.envs=14", "dagger.steps=128",
              f"dagger.train_steps={max(1, args.steps // rounds)}", "dagger.eval_puzzles=4", "dagger.eval_ood_every=0",
              f"dagger.size_sampling={args.size_sampling}",
              *([f"dagger.horizon={args.dagger_horizon:g}"] if args.dagger_horizon is not None else [])]
    labelled = [*dagger, "dagger.token_labels=true"]
    commands = {
        "hrm_dagger": ["train.dagger", *hrm, *dagger], "hrm_labels_dagger": ["train.dagger", *hrm, *labelled],
        "hrm_supervised": ["train.supervised", *hrm, *supervised],
        "transformer_dagger": ["train.dagger", "model=transformer", *blocks, *dagger],
        "trm_dagger": ["train.dagger", *trm, *dagger], "hrm_local_dagger": ["train.dagger", *hrm_local, *dagger],
        "trm_local_dagger": ["train.dagger", *trm_local, *dagger],
        "trm_local_carry_dagger": ["train.dagger", *trm_local, *dagger, *OLD_CARRY],
        "trm_local_carry_episodes_dagger": ["train.dagger", *trm_local, *dagger, "model.episode_carry=true",
                                            "dagger.episode_restart=null"],
        "trm_scan_dagger": ["train.dagger", *trm_scan, *dagger],
        "trm_scan_labels_dagger": ["train.dagger", *trm_scan, *labelled],
        **({"trm_grid_labels_dagger": ["train.dagger", *trm_grid, *labelled],
            "trm_grid_carry_labels_dagger": ["train.dagger", *trm_grid, *labelled, *OLD_CARRY]} if grid_width else {}),
        "lstm_supervised": ["train.supervised", *lstm, *supervised], "lstm_dagger": ["train.dagger", *lstm, *dagger]}
    if args.ppo_minutes > 0:
        commands["ppo_hrm"] = ["train.ppo", *hrm, "ppo.policy=hrm", f"ppo.minutes={args.ppo_minutes}"]
    return commands


@pytest.mark.parametrize("env", list(EXPERIMENTS))
@pytest.mark.slow
def test_experiment_rows_compose_to_the_formerly_pinned_commands(env: str, tmp_path) -> None:
    """For every env and row, the headline's command (experiment=<env>_<row> plus the flags and the budget) composes
    to the same config as the override list the headline pinned before, with every flag away from its default
    (and, on Hanoi, at the defaults)."""
    experiment = EXPERIMENTS[env]
    flags = {"hidden": 32, "lr": 1e-3, "ema": 0.999, "size_sampling": "per_env", "ppo_minutes": 2.0,
             "dagger_horizon": 1.5}
    cases = [(budget(env, 1500, 32, **flags), {"hanoi": ["max_disks=12"], "maze": ["max_size=41"]}.get(env, []))]
    if env == "hanoi":
        cases.append((budget(env, experiment.steps, experiment.batch_size), []))
    for args, env_kwargs in cases:
        data, _, env_overrides = data_and_env(experiment, env_kwargs)
        kwargs = [f"env.kwargs.{kwarg}" for kwarg in env_kwargs]
        new, old = row_commands(args, 5000), old_row_commands(args, 5000, experiment.grid_width)
        assert set(new) == set(old)
        run = ["threads=1", "progress=false", "seed=3", f"out={tmp_path}"]
        common = [*env_overrides, f"env.data_dir={data}", f"train.batch_size={args.batch_size}",
                  f"train.lr={args.lr:g}", *OLD_TRAIN, *([f"train.ema={args.ema:g}"] if args.ema is not None else [])]
        for row, (module, *overrides) in new.items():
            old_module, *old_overrides = old[row]
            assert module == old_module, row
            base = kwargs if module == "train.ppo" else [*kwargs, f"env.data_dir={data}"]
            composed = OmegaConf.to_container(compose_row(module, [*overrides, *base, *run]), resolve=True)
            check_config(composed, SCHEMAS[module])  # the entry point's start-up check accepts it
            old_base = env_overrides if module == "train.ppo" else common
            pinned = OmegaConf.to_container(compose_row(module, [*old_base, *old_overrides, *run]), resolve=True)
            assert composed == pinned, row


def test_table_prints_a_finished_summary(tmp_path, capsys) -> None:
    rows = {str(n): {"success": 1.0 if n < 3 else 0.25, "optimal_episodes": 0.5, "optimality_ratio": 0.9,
                     "teacher_forcing": 0.8, "gap": 0.55, "mean_segments": 1.5, "first_error_steps": [3, 5]}
            for n in (1, 2, 3)}
    experiment = EXPERIMENTS["hanoi"].__class__("hanoi", "hanoi-paper", [1, 2], [3], 10, 8, 2, {
        "t": ("hrm_dagger", "out_success", 0.8)})
    row = {"minutes": 1.25, **summarize_row(rows, experiment)}
    summary = {"env": "hanoi", "train_sizes": [1, 2], "test_sizes": [3], "episodes_per_size": 2,
               "rows": {"hrm_dagger": row}, "targets": {"t": row["out_success"] >= 0.8}, "minutes_rows": 1.25,
               "fresh_run": True}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    main(["--env", "hanoi", "--out", str(tmp_path), "--table"])
    table = capsys.readouterr().out
    line = next(line for line in table.splitlines() if line.startswith("| hrm_dagger"))
    assert line.split(" | ")[1:4] == ["1.000", "0.250", "0.500"]
    assert "| 4.000 | 1.250 | 1:1.00 2:1.00 3:0.25 |" in line  # median first error, minutes, per size
    assert "t: NOT met" in table


def test_an_interrupted_row_resumes_after_its_last_finished_command(tmp_path) -> None:
    count = tmp_path / "count"
    train = [sys.executable, "-c", f"open({str(count)!r}, 'a').write('t')"]
    evaluate = [sys.executable, "-c", "raise SystemExit(3)"]
    with pytest.raises(SystemExit, match="exit code 3"):
        run_all("row", [train, evaluate], tmp_path)
    assert (tmp_path / "row.0.done").exists() and not (tmp_path / "row.done").exists()
    evaluate = [sys.executable, "-c", f"open({str(count)!r}, 'a').write('e')"]
    name, minutes = run_all("row", [train, evaluate], tmp_path)
    assert count.read_text() == "te"  # training ran once, the evaluation on the second call
    assert name == "row" and minutes >= 0 and (tmp_path / "row.done").exists()
    assert run_all("row", [evaluate], tmp_path)[1] == minutes and count.read_text() == "te"


def test_a_killed_training_run_is_resumed_from_its_checkpoint(tmp_path) -> None:
    assert resume_flag("train.dagger", tmp_path) == []
    (tmp_path / "last.pt").write_bytes(b"")
    assert resume_flag("train.dagger", tmp_path) == ["resume=true"]
    assert resume_flag("train.supervised", tmp_path) == ["resume=true"]
    assert resume_flag("train.ppo", tmp_path) == []  # PPO keeps model.zip, no resume


def test_table_without_a_finished_run_names_the_folder(tmp_path) -> None:
    with pytest.raises(ValueError, match="--table needs a finished run"):
        main(["--env", "maze", "--out", str(tmp_path), "--table"])


def test_learned_rows_are_evaluated_on_puzzles_held_out_from_their_own_training_states(tmp_path) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    assert held_out_from("train.supervised", data, run) == f"held_out_from=[{data}]"
    assert held_out_from("train.dagger", data, run) == f"held_out_from=[{run}]"  # its round 0 is in the aggregate
    assert held_out_from("train.ppo", data, run) == "held_out_from=[]"
    summary = {"env": "hanoi", "train_sizes": [3], "test_sizes": [8], "episodes_per_size": 2, "targets": {},
               "minutes_rows": 1.0, "fresh_run": True,
               "rows": {"hrm_dagger": {"success_per_size": {"3": 1.0, "8": 0.0}, "held_out_replaced": {"3": 4, "8": 0}},
                        "oracle": {"success_per_size": {"3": 1.0, "8": 1.0}, "held_out_replaced": None}}}
    assert markdown(summary).splitlines()[-1].endswith("own training states: hrm_dagger 3:4 8:0")
