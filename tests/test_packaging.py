"""The wheel: built from the sources, installed (not editable) into a fresh venv, it runs ``python -m train.dagger``
from an empty folder with its own packages and configs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "hrm_envs", "agents", "oracles", "train", "configs")
TINY_DAGGER = ["model.hidden_size=32", "model.num_heads=2", "model.H_layers=1", "model.L_layers=1",
               "model.halt_max_steps=2", "train.batch_size=64", "progress=false", "dagger.sizes=[2,3]",
               "env.eval_sizes=[4]", "dagger.envs=4", "dagger.steps=24", "dagger.vector=sync", "dagger.rounds=0",
               "dagger.train_steps=2", "dagger.eval_puzzles=0", "out=run"]


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_the_wheel_installs_and_runs_dagger_from_an_empty_folder(tmp_path):
    # Build from a copy of the sources, so the build leaves nothing (build/, *.egg-info) in the worktree.
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w",
         str(tmp_path / "dist"), str(source)], tmp_path)
    wheel = next((tmp_path / "dist").glob("hrm_envs-*.whl"))

    # A fresh venv that sees this environment's packages (torch, gymnasium, ...; a plain path entry, so the
    # environment's editable install of the project is not loaded) and holds the wheel, not an editable install.
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).stdout.strip())
    (site / "outer_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], tmp_path)

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    where = run([str(python), "-I", "-c", "import configs, train; print(train.__file__); print(configs.CONFIG_DIR)"],
                empty, env).stdout.split()
    assert all(Path(path).is_relative_to(venv) for path in where), where
    assert (Path(where[1]) / "dagger.yaml").is_file() and (Path(where[1]) / "preset" / "hanoi-small.yaml").is_file()
    assert "dagger.rounds=8" in run([str(python), "-I", "-m", "train.dagger", "--help"], empty, env).stdout
    run([str(python), "-I", "-m", "train.dagger", *TINY_DAGGER], empty, env)
    assert (empty / "run" / "last.pt").is_file()
