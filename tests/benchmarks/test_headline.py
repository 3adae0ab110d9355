"""Fast checks of benchmarks.headline: argument validation and the per-env table (no training)."""

from __future__ import annotations

import argparse
import json
import sys

import pytest
import yaml

from benchmarks.headline import (
    EXPERIMENTS, ROOT, data_and_env, held_out_from, main, markdown, optimizer_overrides, parse_args, pinned_models,
    resume_flag, row_commands, run_all, summarize_row)
from configs import CONFIG_DIR


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


def test_hanoi_rows_keep_the_pinned_budget() -> None:
    args = argparse.Namespace(steps=3000, batch_size=64, size_sampling="per_reset", ppo_minutes=0.0, dagger_horizon=None)
    commands = row_commands(args, 13397, pinned_models(64))
    assert set(commands) == {"hrm_dagger", "hrm_labels_dagger", "hrm_supervised", "transformer_dagger", "trm_dagger",
                             "lstm_supervised", "lstm_dagger", "hrm_local_dagger", "trm_local_dagger", "trm_scan_dagger",
                             "trm_scan_labels_dagger", "trm_local_carry_dagger", "trm_local_carry_episodes_dagger"}
    assert "model.attention_window=1" in commands["trm_local_dagger"] and "model=hrm" in commands["hrm_local_dagger"]
    assert set(commands["trm_local_carry_dagger"]) - set(commands["trm_local_dagger"]) == {
        "model.episode_carry=true", "dagger.episode_restart=0.25"}
    assert set(commands["trm_local_carry_episodes_dagger"]) - set(commands["trm_local_dagger"]) == {
        "model.episode_carry=true", "dagger.episode_restart=null"}
    scan = commands["trm_scan_dagger"]
    assert set(scan) - set(commands["trm_local_dagger"]) == {"model.attention_direction=later"}
    assert set(commands["trm_scan_labels_dagger"]) - set(scan) == {"dagger.token_labels=true"}
    assert set(commands["hrm_labels_dagger"]) - set(commands["hrm_dagger"]) == {"dagger.token_labels=true"}
    assert "dagger.max_labels=13397" in commands["hrm_dagger"] and "dagger.rounds=7" in commands["hrm_dagger"]
    assert "dagger.train_steps=375" in commands["hrm_dagger"] and "train.epochs=14" in commands["hrm_supervised"]
    assert "model.halt_max_steps=2" in commands["hrm_dagger"]


def test_grid_rows_only_on_grids() -> None:
    """The grid-attention rows exist where the experiment has a grid width: the local TRM on that grid, labelled, and
    the same with its latent carried across an episode's decisions."""
    args = argparse.Namespace(steps=800, batch_size=16, size_sampling="per_reset", ppo_minutes=0.0, dagger_horizon=None)
    assert "trm_grid_labels_dagger" not in row_commands(args, 6621, pinned_models(64, EXPERIMENTS["hanoi"].grid_width))
    commands = row_commands(args, 6621, pinned_models(64, EXPERIMENTS["maze"].grid_width))
    assert set(commands["trm_grid_labels_dagger"]) - set(commands["trm_local_dagger"]) == {
        "model.attention_grid=31", "model.global_readout=acting_token", "dagger.token_labels=true"}
    assert set(commands["trm_grid_carry_labels_dagger"]) - set(commands["trm_grid_labels_dagger"]) == {
        "model.episode_carry=true", "dagger.episode_restart=0.25"}
    assert set(commands["trm_local_carry_episodes_dagger"]) - set(commands["trm_local_dagger"]) == {
        "model.episode_carry=true", "dagger.episode_restart=null"}


def test_every_row_command_composes_with_the_configs() -> None:
    """Each row's overrides are valid Hydra overrides of its module's config (e.g. model=trm has no H_layers)."""
    from hydra import compose, initialize_config_dir

    args = argparse.Namespace(steps=1500, batch_size=64, size_sampling="per_reset", ppo_minutes=1.0, dagger_horizon=1.5)
    commands = row_commands(args, 5000, pinned_models(32, grid_width=31))
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for name, (module, *overrides) in commands.items():
            cfg = compose(module.split(".")[1], overrides=["env=maze", *overrides])
            assert cfg.model.hidden_size == 32, name
            assert cfg.get("dagger", {}).get("horizon", 1.5) == 1.5, name  # --dagger-horizon reaches the DAgger rows


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
