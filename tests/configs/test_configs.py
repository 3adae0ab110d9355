"""configs: one CONFIG_DIR, the package's own folder, which every entry point and reader takes."""

from __future__ import annotations

from pathlib import Path

import agents.policy
import benchmarks.datasets
import configs
import train.dagger
import train.datasets.__main__
import train.evaluate
import train.ppo
import train.runs
import train.supervised
from configs import CONFIG_DIR


def test_config_dir_is_the_package_folder_with_every_config():
    assert CONFIG_DIR == Path(configs.__file__).parent
    for name in ("dagger", "supervised", "ppo", "evaluate", "datasets"):
        assert (CONFIG_DIR / f"{name}.yaml").is_file(), name
    for group in ("env", "model", "train", "preset"):
        assert list((CONFIG_DIR / group).glob("*.yaml")), group


def test_every_user_takes_the_one_config_dir():
    for module in (train.dagger, train.supervised, train.ppo, train.evaluate, train.runs, train.datasets.__main__):
        assert module.CONFIG_DIR is CONFIG_DIR, module.__name__
    assert agents.policy.MODEL_CONFIG.parent.parent == CONFIG_DIR
    assert benchmarks.datasets.PRESETS.parent == CONFIG_DIR


def test_an_experiment_config_runs_alone_and_is_off_by_default():
    """``python -m train.<entry> experiment=<name>`` composes a config the entry point's start-up check accepts (the
    experiment's keys land at the top level: no ``experiment`` key); without it the defaults are unchanged."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from train.schema import DAGGER, PPO, SUPERVISED, check_config

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("dagger", overrides=["experiment=hanoi_trm_local_carry_dagger"])
        check_config(cfg, DAGGER)
        assert (cfg.model.name, cfg.model.episode_carry, cfg.dagger.episode_restart) == ("trm", True, 0.25)
        assert cfg.out == "runs/experiment/hanoi_trm_local_carry_dagger" and "experiment" not in cfg
        cfg = compose("supervised", overrides=["experiment=sudoku4_large_hrm_supervised"])
        check_config(cfg, SUPERVISED)
        assert (cfg.env.name, cfg.env.preset, cfg.train.eval.puzzles) == ("sudoku", "sudoku-4x4-large", 0)
        check_config(compose("ppo", overrides=["experiment=maze_ppo_hrm"]), PPO)
        plain = OmegaConf.to_container(compose("dagger"))
        assert (plain["model"]["name"], plain["out"], plain["dagger"]["size_sampling"]) == (
            "hrm", "runs/dagger/${env.name}-${model.name}", "per_env")


def test_every_experiment_is_a_headline_row_or_an_exploratory_dagger_run():
    """configs/experiment/ holds the headline rows (<env>_<row>, read by benchmarks.headline), the docs/*.sh
    run maze_grid_small, which composes with train.dagger and passes its start-up check, the city-paper study's
    seq2seq runs, which compose with train.supervised and differ only in the model (the wave run also fits its gates
    to the costs), and the maze, city and
    Sudoku 9x9 protocol runs, pairs of train.dagger runs with the same budget, sides, positions and token labels,
    and the maze's front policy, whose experiment is its release's recorded command."""
    from hydra import compose, initialize_config_dir

    from benchmarks.headline import EXPERIMENTS, experiment_rows, row_module
    from train.schema import DAGGER, SUPERVISED, check_config

    rows = {f"{env}_{row}": row_module(row) for env in EXPERIMENTS for row in experiment_rows(env)}
    names = {path.stem for path in (CONFIG_DIR / "experiment").glob("*.yaml")}
    assert set(rows) <= names and names - set(rows) == {"maze_grid_small", "city_paper_trm_conv",
                                                        "city_paper_conv_baseline", "sudoku9_trm_peers",
                                                        "sudoku9_transformer_peers", "maze_trm_grid_carry",
                                                        "maze_transformer_grid", "city_trm_grid_carry",
                                                        "city_transformer_grid", "maze_trm_front",
                                                        "city_paper_trm_wave"}
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("dagger", overrides=["experiment=maze_grid_small"])
        check_config(cfg, DAGGER)
        assert (cfg.env.kwargs.max_size, cfg.model.attention_grid, list(cfg.dagger.sizes)) == (15, 15, [7, 11])
        # the city-paper study: an HRM-family model and its baseline, the same data, targets, optimizer and minutes
        study = {name: compose("supervised", overrides=[f"experiment={name}"])
                 for name in ("city_paper_trm_conv", "city_paper_conv_baseline")}
        for cfg in study.values():
            check_config(cfg, SUPERVISED)
            assert cfg.env.name == "city_paper" and cfg.env.preset == "city-paper-aug" and cfg.seq2seq.validation_bases > 0
        hrm, baseline = study["city_paper_trm_conv"], study["city_paper_conv_baseline"]
        assert (hrm.model.name, baseline.model.name) == ("trm", "transformer")
        assert hrm.train == baseline.train and hrm.seq2seq == baseline.seq2seq
        assert all(hrm.model[k] == baseline.model[k] for k in ("hidden_size", "block", "attention_grid"))
        wave = compose("supervised", overrides=["experiment=city_paper_trm_wave"])  # the conv run, blocks = wave
        check_config(wave, SUPERVISED)
        assert (wave.model.block, wave.model.relax_steps, wave.seq2seq.cost) == ("wave", 4, True)
        assert (wave.train.epochs, wave.train.max_minutes) == (40, 50) and wave.env == hrm.env and wave.seq2seq.field
        assert {k: v for k, v in wave.train.items() if k not in ("epochs", "max_minutes")} == {
            k: v for k, v in hrm.train.items() if k not in ("epochs", "max_minutes")}
        assert {k: v for k, v in wave.model.items() if k not in ("block", "relax_steps")} == {
            k: v for k, v in hrm.model.items() if k not in ("block", "relax_steps")}
        sudoku = {name: compose("dagger", overrides=[f"experiment={name}"])
                  for name in ("sudoku9_trm_peers", "sudoku9_transformer_peers")}
        for cfg in sudoku.values():
            check_config(cfg, DAGGER)
            assert (cfg.env.kwargs.box, cfg.model.attention_peers, list(cfg.dagger.sizes)) == (3, 3, ["easy", "medium"])
        hrm, baseline = sudoku["sudoku9_trm_peers"], sudoku["sudoku9_transformer_peers"]
        assert (hrm.model.name, baseline.model.name) == ("trm", "transformer")
        assert hrm.train == baseline.train and hrm.dagger == baseline.dagger and hrm.env == baseline.env
        for env, width in (("maze", 15), ("city", 20)):  # step-wise grid runs: a carried TRM and its transformer
            grid = {name: compose("dagger", overrides=[f"experiment={name}"])
                    for name in (f"{env}_trm_grid_carry", f"{env}_transformer_grid")}
            for cfg in grid.values():
                check_config(cfg, DAGGER)
                assert (cfg.env.name, cfg.env.kwargs.max_size, cfg.model.attention_grid) == (env, width, width)
                assert cfg.model.pos_encodings == "rope2d" and cfg.model.global_readout == "acting_token"
                assert cfg.dagger.token_labels
            hrm, baseline = grid[f"{env}_trm_grid_carry"], grid[f"{env}_transformer_grid"]
            assert (hrm.model.name, baseline.model.name) == ("trm", "transformer") and hrm.model.episode_carry
            assert hrm.train == baseline.train and hrm.dagger == baseline.dagger and hrm.env == baseline.env
        # the released front policy: its experiment is the command its manifest entry records
        front = compose("dagger", overrides=["experiment=maze_trm_front"])
        check_config(front, DAGGER)
        recorded = compose("dagger", overrides=[
            "experiment=maze_trm_grid_carry", "model.depth_training=progressive", "model.depth_extra_max=4",
            "model.block=front", "model.hidden_size=32", "train.lr=2e-3", "dagger.rounds=3", "dagger.train_steps=1500",
            "dagger.max_minutes=25", "model.front_rate=6", "model.episode_carry=false", "dagger.episode_restart=null"])
        assert {k: front[k] for k in ("env", "model", "train", "dagger")} == {
            k: recorded[k] for k in ("env", "model", "train", "dagger")}
    assert set(rows.values()) == {"train.dagger", "train.supervised", "train.ppo"}  # each row composed and checked in
    # tests/benchmarks/test_headline.py (test_experiment_rows_compose_to_the_formerly_pinned_commands)
