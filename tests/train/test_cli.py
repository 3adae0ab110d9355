"""train.cli: ``python -m train.<entry> --help`` answers fast, before torch loads, listing every option with its
comment from configs/*.yaml."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from configs import CONFIG_DIR
from train.cli import help_text, options

ROOT = Path(__file__).resolve().parents[2]
OPTION = re.compile(r"^(\w+): (\S+)\s+# (.+)$")  # a top-level option with a one-line value and a comment


@pytest.mark.parametrize("entry", ["dagger", "supervised", "ppo", "evaluate"])
def test_help_is_fast_and_lists_each_option_with_its_comment(entry):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", f"train.{entry}", "--help"], capture_output=True, text=True, env=env,
                            timeout=60)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert seconds < 2, f"--help took {seconds:.1f} s"
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"python -m train.{entry}")
    commented = [m.groups() for m in map(OPTION.match, (CONFIG_DIR / f"{entry}.yaml").read_text().splitlines()) if m]
    assert commented
    for key, value, comment in commented:  # every top-level commented option, with its comment
        assert any(line.split("  # ")[0].strip() == f"{key}={value}" and f"# {comment}" in line
                   for line in lines), key
    if entry != "evaluate":  # the groups' default files too, with their comments
        assert any(line.lstrip().startswith("env.preset=hanoi-paper") and "# a data set preset in configs/preset/" in line
                   for line in lines)


def test_help_joins_continued_comments_and_names_the_groups():
    text = help_text("dagger")
    assert "dagger.rounds=8" in text and "# collection rounds after round 0 (0 = round 0 only" in text
    init_from = next(line for line in text.splitlines() if line.lstrip().startswith("init_from=null"))
    assert init_from.endswith("(fresh optimizer, new aggregate): a curriculum stage, e.g. a rope2d grid model trained "
                              "at a smaller padding")
    assert "  model: gnn, hrm, lstm, mlp, transformer, trm (default hrm)" in text.splitlines()
    assert "Budgets" not in text  # a section comment is no option's


def test_options_read_nested_keys_defaults_and_comments(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("# usage line\ndefaults:\n  - env: hanoi   # the env\n  - override hydra/job_logging: disabled\n\n"
                    "out: runs/x   # where\nsub:\n  # a section note\n  a: 1        # first\n              # and more\n"
                    "  b: [1, 2]\nhydra:\n  run:\n    dir: .\n")
    header, found, defaults = options(path)
    assert header == ["usage line"]
    assert defaults == [("env", "hanoi", "the env")]
    assert found == [("out", "runs/x", "where"), ("sub.a", "1", "first and more"), ("sub.b", "[1, 2]", "")]
