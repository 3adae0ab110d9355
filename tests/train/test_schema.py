"""train.schema: every shipped config passes; wrong types, non-finite numbers, unknown or missing keys and an
unwritable out fail with a ValueError naming the dotted key; each entry point runs the check first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from configs import CONFIG_DIR
from train import dagger, evaluate, ppo, supervised
from train.schema import DAGGER, DATASETS, EVALUATE, PPO, SUPERVISED, check_config

CONFIGS = CONFIG_DIR
ROOT = CONFIGS.parent
SCHEMAS = {"supervised": SUPERVISED, "dagger": DAGGER, "evaluate": EVALUATE, "ppo": PPO, "datasets": DATASETS}
GROUPS = {name: sorted(p.stem for p in (CONFIGS / name).glob("*.yaml")) for name in ("env", "model", "train", "preset")}


def config(name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(name, overrides=list(overrides))


def shipped() -> list[tuple[str, list[str]]]:
    """Every entry point's config with every option of each of its groups."""
    cases = [("datasets", [f"preset={p}"]) for p in GROUPS["preset"]]
    for name in ("supervised", "dagger", "ppo", "evaluate"):
        groups = {"supervised": ("env", "model", "train"), "dagger": ("env", "model", "train"), "ppo": ("env", "model"),
                  "evaluate": ("env",)}[name]
        cases += [(name, [f"{group}={option}"]) for group in groups for option in GROUPS[group]]
    return cases


@pytest.mark.parametrize("name, overrides", shipped())
def test_every_shipped_config_passes(name, overrides, tmp_path):
    check_config(config(name, f"out={tmp_path}", *overrides), SCHEMAS[name])


@pytest.mark.parametrize("name, override, message", [
    ("supervised", "train.lr=inf", r"^train\.lr must be a finite number, got inf$"),
    ("supervised", "train.lr=abc", r"^train\.lr must be a number > 0, got 'abc'$"),
    ("supervised", "train.betas=5", r"^train\.betas must be a list of 2 items, each a number in \[0, 1\), got 5$"),
    ("supervised", "train.betas=[0.9,1.0]", r"^train\.betas\[1\] must be a number in \[0, 1\)"),
    ("supervised", "seed=1.5", r"^seed must be an int >= 0, got 1\.5$"),
    ("supervised", "threads=-1", r"^threads must be an int >= 0, got -1$"),
    ("supervised", "progress=1", r"^progress must be true or false"),
    ("supervised", "train.eval.puzzles=-2", r"^train\.eval\.puzzles must be an int >= 0"),
    ("supervised", "train.stop_at_train_accuracy=0",
     r"^train\.stop_at_train_accuracy must be null or a number in \(0, 1\]"),
    ("supervised", "model.hidden_size=abc", r"^model\.hidden_size must be null or an int, got 'abc'$"),
    ("supervised", "model.expansion=nan", r"^model\.expansion must be a finite number, got nan$"),
    ("supervised", "env.kwargs.max_disks=inf", r"^env\.kwargs\.max_disks must be a finite number"),  # free-form too
    ("supervised", "env.eval_sizes=[]", r"^env\.eval_sizes must be a non-empty list"),
    ("supervised", "train.eval=5", r"^train\.eval must be a mapping of \['batch_size'"),
    ("supervised", "~train.epochs", r"config keys \['train\.epochs'\] are missing"),
    ("supervised", "+train.lrr=1", r"^unknown train keys \['train\.lrr'\]; allowed: \['batch_size'"),
    ("supervised", "+foo=1", r"^unknown keys \['foo'\]"),
    ("supervised", "seq2seq.field=1", r"^seq2seq\.field must be true or false, got 1$"),
    ("supervised", "seq2seq.validation_bases=-1", r"^seq2seq\.validation_bases must be an int >= 0, got -1$"),
    ("supervised", "seq2seq.validation_bases=0.5", r"^seq2seq\.validation_bases must be an int >= 0, got 0\.5$"),
    ("supervised", "+seq2seq.fields=true", r"^unknown seq2seq keys \['seq2seq\.fields'\]; allowed: \['cost', "
                                           r"'field', 'validation_bases'\]"),
    ("supervised", "seq2seq=5", r"^seq2seq must be a mapping of \['cost', 'field', 'validation_bases'\]"),
    ("dagger", "dagger.max_labels=nan", r"^dagger\.max_labels must be a finite number, got nan$"),
    ("dagger", "dagger.max_labels=1.5", r"^dagger\.max_labels must be null or an int >= 1"),
    ("dagger", "dagger.beta.decay=-inf", r"^dagger\.beta\.decay must be a finite number"),
    ("dagger", "+dagger.beta.foo=1", r"unknown dagger\.beta keys \['dagger\.beta\.foo'\]"),
    ("evaluate", "checkpoint=[a.pt,3]", r"^checkpoint\[1\] must be a non-empty string, got 3$"),
    ("evaluate", "references=[oracle,expert]", r"^references\[1\] must be one of \('oracle', 'random'\)"),
    ("evaluate", "data=3", r"^data must be null or a non-empty string, got 3$"),
    ("evaluate", "split=[test]", r"^split must be null or a non-empty string"),
    ("evaluate", "act.inference_halting=never", r"^act\.inference_halting must be null or one of"),
    ("ppo", "ppo.gamma=1.5", r"^ppo\.gamma must be a number in \[0, 1\]"),
    ("ppo", "ppo.lr=inf", r"^ppo\.lr must be a finite number"),
    ("datasets", "overwrite=yes", r"^overwrite must be true or false"),
    ("datasets", "+preset.num_aug=inf", r"^preset\.num_aug must be a finite number"),
])  # fmt: skip
def test_bad_values_name_the_key(name, override, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        check_config(config(name, f"out={tmp_path}", override), SCHEMAS[name])


def test_out_must_be_a_writable_folder_and_the_probe_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"^out must be a writable folder path, got '/proc/x' \(cannot create"):
        check_config(config("evaluate", "out=/proc/x"), EVALUATE)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"out must be a writable folder path, got .*file.* is not a folder"):
        check_config(config("evaluate", f"out={tmp_path / 'file' / 'run'}"), EVALUATE)
    check_config(config("evaluate", f"out={tmp_path / 'new' / 'run'}"), EVALUATE)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]  # nothing created, the probe removed


def test_optimizer_defaults_and_plain_mappings():
    check_config({"train": {"lr": 1e-3, "betas": (0.9, 0.95)}}, {k: v for k, v in SUPERVISED.items() if k in (
        "train.lr", "train.betas")})
    with pytest.raises(ValueError, match=r"train\.lr must be a finite number"):
        check_config({"train": {"lr": float("inf")}}, {"train.lr": SUPERVISED["train.lr"]})


# ------------------------------------------------------------------------------------------------ entry points
@pytest.mark.parametrize("module, name, overrides, message", [
    (supervised, "supervised", ["train.lr=inf"], "error: train.lr must be a finite number, got inf"),
    (supervised, "supervised", ["out=/proc/x"], "error: out must be a writable folder path, got '/proc/x'"),
    (dagger, "dagger", ["dagger.max_labels=nan"], "error: dagger.max_labels must be a finite number, got nan"),
    (dagger, "dagger", ["dagger.max_labels=1"], "error: dagger.max_labels must be null or >= dagger.envs (14)"),
    (dagger, "dagger", ["seed=1.5"], "error: seed must be an int >= 0, got 1.5"),
    (evaluate, "evaluate", ["threads=-1"], "error: threads must be an int >= 0, got -1"),
    (ppo, "ppo", ["+ppo.epochs=3"], "error: unknown ppo keys ['ppo.epochs']"),
])  # fmt: skip
def test_entry_points_refuse_bad_values_before_doing_anything(module, name, overrides, message, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        module.main(config(name, f"out={out}", *overrides))  # hydra.main passes a given config straight through
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not out.exists()


def test_datasets_cli_refuses_an_unwritable_out(tmp_path):
    result = subprocess.run([sys.executable, "-m", "train.datasets", "preset=hanoi-small", "out=/proc/x"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "error: out must be a writable folder path" in result.stderr
    assert "Traceback" not in result.stderr
