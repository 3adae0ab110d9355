"""train.release: a policy goes into pretrained/ with its manifest entry, validated and tested on separate streams."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from train.evaluate import CONFIG_DIR
from train.release import TEST_SEED, VALIDATION_SEED, main, parse_args, release
from train.stats import wilson_interval


def tiny_checkpoint(path: Path) -> Path:
    from hrm_envs.encoding import encoder_for
    from train.checkpoints import save_checkpoint
    from train.learner import Learner

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        env = OmegaConf.to_container(compose("evaluate", overrides=["env=hanoi", "env.kwargs.max_disks=5"]).env,
                                     resolve=True)
    encoder = encoder_for(gym.make("hrm/Hanoi-v0", max_disks=5))
    torch.manual_seed(0)
    learner = Learner({"name": "lstm", "hidden_size": 16, "depth": 1}, {"lr": 1e-3}, encoder)
    save_checkpoint(path, learner, {"env": env, "seed": 0}, 0)
    return path


def arguments(tmp_path: Path, checkpoint: Path, *extra: str) -> list[str]:
    return ["--checkpoint", str(checkpoint), "--name", "tiny_lstm", "--family", "baseline", "--env", "hanoi",
            "--env-override", "env.kwargs.max_disks=5", "--validation-sizes", "2", "3", "--test-sizes", "3", "4",
            "--episodes", "3", "--configs-compared", "2", "--train-minutes", "0.1", "--train-command", "python -m x",
            "--root", str(tmp_path), *extra]


def test_a_release_writes_the_policy_and_its_manifest_entry(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "run" / "last.pt")
    entry = release(parse_args(arguments(tmp_path, checkpoint)))
    policy = tmp_path / "pretrained" / "tiny_lstm.pt"
    manifest = json.loads((tmp_path / "pretrained" / "manifest.json").read_text())
    assert manifest["policies"] == [entry]
    assert entry["sha256"] == hashlib.sha256(policy.read_bytes()).hexdigest() and entry["bytes"] == policy.stat().st_size
    assert entry["checkpoint"] == "pretrained/tiny_lstm.pt" and entry["family"] == "baseline"
    assert entry["validation"]["seed"] == VALIDATION_SEED and entry["test"]["seed"] == TEST_SEED
    assert set(entry["test"]["per_size"]) == {"3", "4"} and set(entry["validation"]["per_size"]) == {"2", "3"}
    low, high = entry["test"]["success_ci95"]
    assert low <= entry["test"]["success"] <= high and entry["test"]["per_size"]["4"]["episodes"] == 3
    assert entry["evaluate_command"] == ("python -m train.evaluate checkpoint=pretrained/tiny_lstm.pt env=hanoi "
                                         "env.kwargs.max_disks=5 sizes=[3,4] episodes=3 seed=S")
    state = torch.load(policy, map_location="cpu", weights_only=True)
    assert set(state) == {"model", "ema", "config", "model_config", "hrm_config"}  # no optimizer, RNG or carry
    # a second release of the same name replaces its entry; another name is added beside it
    release(parse_args(arguments(tmp_path, checkpoint)))
    release(parse_args([*arguments(tmp_path, checkpoint)[:3], "other", *arguments(tmp_path, checkpoint)[4:]]))
    names = [p["name"] for p in json.loads((tmp_path / "pretrained" / "manifest.json").read_text())["policies"]]
    assert names == ["tiny_lstm", "other"]


def test_validate_only_writes_nothing_into_pretrained(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "run" / "last.pt")
    out = release(parse_args(arguments(tmp_path, checkpoint, "--validate-only")))
    assert set(out) == {"name", "validation"} and out["validation"]["seed"] == VALIDATION_SEED
    assert not (tmp_path / "pretrained").exists()


@pytest.mark.parametrize("change, message", [
    (("--family", "hrm-ish"), "--family must be one of"),
    (("--episodes", "0"), "--episodes must be >= 1"),
    (("--env-override", "max_disks=5"), "--env-override entries look like env.KEY=VALUE"),
    (("--name", "../x"), "--name must be"),
    (("--train-minutes", "nan"), "--train-minutes must be a finite number"),
])
def test_bad_arguments_are_refused_by_name(tmp_path, capsys, change, message):
    checkpoint = tiny_checkpoint(tmp_path / "run" / "last.pt")
    with pytest.raises(SystemExit) as stop:
        main([*arguments(tmp_path, checkpoint), *change])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_the_table_pools_test_sizes_with_their_intervals(tmp_path, capsys):
    checkpoint = tiny_checkpoint(tmp_path / "run" / "last.pt")
    entry = release(parse_args(arguments(tmp_path, checkpoint)))
    capsys.readouterr()  # the evaluations' own report
    main(["table", "--groups", "3,4", "4", "--root", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| policy | family | env | validation (sizes) | test 3,4 | test 4 |")
    per_size = entry["test"]["per_size"]
    solved = round(per_size["3"]["success"] * 3) + round(per_size["4"]["success"] * 3)
    low, high = wilson_interval(solved, 6)
    assert f"{solved / 6:.3f} [{low:.2f}, {high:.2f}]" in lines[2]
    with pytest.raises(SystemExit):
        main(["table", "--groups", "9", "--root", str(tmp_path)])  # a size the figures do not hold
    main(["table", "--env", entry["env"], "--root", str(tmp_path)])  # default: each test size its own column
    assert capsys.readouterr().out.splitlines()[0].startswith(
        "| policy | family | env | validation (sizes) | test 3 | test 4 | configs compared |")
    with pytest.raises(SystemExit):
        main(["table", "--env", "sudoku", "--root", str(tmp_path)])  # an env with no released policy
    assert "--env 'sudoku' names no released policy" in capsys.readouterr().err


def test_a_release_finishing_during_another_keeps_both_entries(tmp_path, monkeypatch):
    """The manifest is read when the entry is written, not before the (long) test evaluation."""
    import train.release as module

    checkpoint = tiny_checkpoint(tmp_path / "run" / "last.pt")
    play = module.play
    other = [*arguments(tmp_path, checkpoint)[:3], "other", *arguments(tmp_path, checkpoint)[4:]]

    def play_and_release_another(args, *rest):
        if args.name == "tiny_lstm" and rest[2] == TEST_SEED:
            release(parse_args(other))  # finishes while tiny_lstm's test is being played
        return play(args, *rest)

    monkeypatch.setattr(module, "play", play_and_release_another)
    release(parse_args(arguments(tmp_path, checkpoint)))
    names = [p["name"] for p in json.loads((tmp_path / "pretrained" / "manifest.json").read_text())["policies"]]
    assert sorted(names) == ["other", "tiny_lstm"]


def test_an_interrupted_release_resumes_after_its_last_finished_stage(tmp_path, monkeypatch):
    """A release killed during its test pass keeps its validation figures: run again, it plays only the test; a
    stage whose policy or arguments changed is played again."""
    import train.release as module

    checkpoint = tiny_checkpoint(tmp_path / "run" / "last.pt")
    play, seeds = module.play, []

    def interrupted(args, checkpoint, sizes, seed, out):
        seeds.append(seed)
        if seed == TEST_SEED and len(seeds) == 2:
            raise KeyboardInterrupt  # the first run is stopped in its test pass
        return play(args, checkpoint, sizes, seed, out)

    monkeypatch.setattr(module, "play", interrupted)
    with pytest.raises(KeyboardInterrupt):
        release(parse_args(arguments(tmp_path, checkpoint)))
    assert not (tmp_path / "pretrained" / "tiny_lstm.pt").exists()
    first = release(parse_args(arguments(tmp_path, checkpoint)))
    assert seeds == [VALIDATION_SEED, TEST_SEED, TEST_SEED]  # validation was not played again
    again = release(parse_args(arguments(tmp_path, checkpoint)))
    assert seeds == [VALIDATION_SEED, TEST_SEED, TEST_SEED] and again == first  # nothing played: both stages kept
    release(parse_args([*arguments(tmp_path, checkpoint)[:-2], "--episodes", "2", "--root", str(tmp_path)]))
    assert seeds[3:] == [VALIDATION_SEED, TEST_SEED]  # other arguments: both played again


def seq2seq_arguments(tmp_path: Path, checkpoint: Path, data: Path, *extra: str) -> list[str]:
    return ["--checkpoint", str(checkpoint), "--name", "tiny_city", "--family", "hrm", "--env", "city_paper",
            "--data", str(data), "--configs-compared", "1", "--train-minutes", "0.1", "--root", str(tmp_path), *extra]


def test_a_seq2seq_release_validates_on_the_held_out_bases_and_tests_on_the_test_split(city_run, tmp_path, capsys):
    from hrm_envs.city import VEHICLES
    from train.evaluate import run

    data, checkpoint = city_run
    entry = release(parse_args(seq2seq_arguments(tmp_path, checkpoint, data)))
    assert json.loads((tmp_path / "pretrained" / "manifest.json").read_text())["policies"] == [entry]
    policy = tmp_path / "pretrained" / "tiny_city.pt"
    assert entry["sha256"] == hashlib.sha256(policy.read_bytes()).hexdigest() and entry["env"] == "city_paper"
    assert entry["data"] == str(data) and entry["validation_bases"] == 1 and "test_sizes" not in entry
    validation, test = entry["validation"], entry["test"]
    assert validation["split"] == "train" and validation["examples"] == 4  # the last base's 4 vehicles, originals
    assert test["split"] == "test" and test["examples"] == 8 and set(test["per_variant"]) == set(VEHICLES)
    for key in ("exact", "arrived", "valid"):
        low, high = test[f"{key}_ci95"]
        assert low <= test[key] <= high
    assert {"path_f1", "efficiency", "path_ratio", "reference_path_ratio"} <= set(test) and test["valid"] == 1.0
    assert entry["evaluate_command"] == f"python -m train.evaluate checkpoint=pretrained/tiny_city.pt data={data}"
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):  # the command reproduces the test
        report = run(compose("evaluate", overrides=[f"checkpoint={policy}", f"data={data}", f"out={tmp_path / 'again'}"]))
    assert {k: report["all"][k] for k in ("exact", "arrived", "path_f1")} == {k: test[k] for k in ("exact", "arrived", "path_f1")}
    capsys.readouterr()
    main(["table", "--groups", "8", "--root", str(tmp_path)])
    assert "| tiny_city | hrm | city_paper |" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (("--test-sizes", "8"), "--data releases a seq2seq policy, scored on the data set: --test-sizes do not apply"),
    (("--validation-bases", "2"), r"--validation-bases must be in \[1, 1\]"),
])  # fmt: skip
def test_bad_seq2seq_arguments_are_refused_by_name(city_run, tmp_path, extra, message):
    data, checkpoint = city_run
    with pytest.raises(ValueError, match=message):
        parse_args(seq2seq_arguments(tmp_path, checkpoint, data, *extra))


def test_data_needs_a_seq2seq_run_that_held_bases_out_and_sizes_need_a_step_wise_one(city_run, tmp_path):
    data, checkpoint = city_run
    stepwise = tiny_checkpoint(tmp_path / "run" / "last.pt")
    with pytest.raises(ValueError, match=r"--data applies to seq2seq checkpoints; .* acts step by step"):
        parse_args(seq2seq_arguments(tmp_path, stepwise, data))
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state["config"]["seq2seq"]["validation_bases"] = 0
    torch.save(state, tmp_path / "all_bases.pt")
    with pytest.raises(ValueError, match=r"held no train bases out \(seq2seq.validation_bases=0\)"):
        parse_args(seq2seq_arguments(tmp_path, tmp_path / "all_bases.pt", data))
    full = arguments(tmp_path, stepwise)
    at = full.index("--test-sizes")
    without = full[:at] + full[at + 3:]  # no --test-sizes 3 4
    with pytest.raises(ValueError, match="a step-wise policy needs --validation-sizes and --test-sizes"):
        parse_args(without)


def test_act_sets_the_released_policys_acting_fields(city_run, tmp_path):
    """--act halt_max_steps=5 inference_halting=max_steps: the policy is validated and tested as released, the
    released file keeps those fields (so the evaluate command reproduces the test), the manifest names them; a field
    outside ACTING_FIELDS is refused by name."""
    from train.checkpoints import read_checkpoint

    data, checkpoint = city_run
    args = seq2seq_arguments(tmp_path, checkpoint, data, "--act", "halt_max_steps=5", "--act", "inference_halting=max_steps")
    entry = release(parse_args(args))
    assert entry["acting"] == {"halt_max_steps": 5, "inference_halting": "max_steps"}
    saved = read_checkpoint(tmp_path / "pretrained" / "tiny_city.pt")["hrm_config"]
    assert (saved["halt_max_steps"], saved["inference_halting"]) == (5, "max_steps")
    assert entry["validation"]["steps"] == entry["test"]["steps"] == 5.0  # every route ran the 5 segments
    with pytest.raises(ValueError, match=r"--act entries look like FIELD=VALUE with FIELD one of"):
        parse_args(seq2seq_arguments(tmp_path, checkpoint, data, "--act", "hidden_size=8"))


def test_half_stores_float16_weights_that_load_and_score_as_tested(city_run, tmp_path):
    """--half: the released file holds float16 weights (about half the bytes), the manifest says so, and the
    evaluate command on it reproduces the test figures (loading casts the weights back to float32)."""
    from train.checkpoints import read_checkpoint
    from train.evaluate import run

    data, checkpoint = city_run
    entry = release(parse_args(seq2seq_arguments(tmp_path, checkpoint, data, "--half")))
    policy = tmp_path / "pretrained" / "tiny_city.pt"
    weights = read_checkpoint(policy)["model"]
    assert entry["weights"] == "float16" and all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())
    full = read_checkpoint(checkpoint)["model"]
    assert sum(v.numel() * v.element_size() for v in weights.values()) < 0.6 * sum(v.numel() * v.element_size() for v in full.values())
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        report = run(compose("evaluate", overrides=[f"checkpoint={policy}", f"data={data}", f"out={tmp_path / 'again'}"]))
    assert {k: report["all"][k] for k in ("exact", "arrived", "path_f1")} == {k: entry["test"][k] for k in ("exact", "arrived", "path_f1")}
