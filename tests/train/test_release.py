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
