"""Build a data set from a preset: every split, a ``summary.json``, then validation; atomically."""

from __future__ import annotations

import importlib.metadata
import platform
import time
from pathlib import Path
from typing import Any

from train.datasets import seq2seq, stepwise
from train.datasets.spec import DatasetSpec
from train.datasets.storage import atomic_directory, load_json, save_json
from train.datasets.validate import summary_problems, validate

VERSIONED = ("hrm-envs", "numpy", "gymnasium", "networkx", "torch")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def check_replaceable(out: Path) -> None:
    """Refuse (``ValueError``) to let ``overwrite=true`` replace ``out`` unless it is missing or a data set of this
    suite: a folder whose ``summary.json`` is readable and of the suite's format. Anything else stays untouched."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise ValueError(f"out={str(out)!r} is a file or a symbolic link; overwrite=true replaces only a data set folder")
    try:
        problems = summary_problems(load_json(out / "summary.json"))
    except ValueError as error:
        problems = [str(error)]
    if problems:
        raise ValueError(
            f"out={str(out)!r} is not a data set of this suite ({problems[0]}); overwrite=true replaces only those, "
            "so move or delete it yourself or choose another out"
        )


def build(spec: DatasetSpec, out: str | Path, command: str, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Build every split of ``spec`` into ``out`` and validate it; returns the summary.

    Deterministic: the same preset gives byte-identical files. Atomic: written to a temporary folder
    and renamed, so an interrupted build leaves nothing at ``out``. ``overwrite`` replaces only a data
    set (see ``check_replaceable``).
    """
    started = time.perf_counter()
    if overwrite:
        check_replaceable(Path(out))
    with atomic_directory(out, overwrite=overwrite) as folder:
        exclude: set[str] = set()
        splits = {}
        for split_name in spec.splits:
            (folder / split_name).mkdir()
            if spec.kind == "stepwise":
                splits[split_name] = stepwise.build_split(spec, split_name, folder / split_name, exclude, progress)
            else:
                splits[split_name] = seq2seq.build_split(spec, split_name, folder / split_name, exclude, progress)
        summary = {
            "name": spec.name,
            "kind": spec.kind,
            "env": spec.env,
            "env_kwargs": spec.env_kwargs,
            "size_arg": spec.size_arg,
            "obs_env_kwargs": {**spec.env_kwargs, **spec.size_kwargs(next(iter(spec.splits.values())).sizes[0])},
            "num_aug": spec.num_aug,
            "variants": spec.variants,
            "splits": splits,
            "build_command": command,
            "versions": library_versions(),
        }
        save_json(folder / "summary.json", summary)
        report = validate(folder)
        if report.violations:
            raise RuntimeError("the built data set failed validation:\n" + "\n".join(report.violations[:20]))
    summary["build_seconds"] = round(time.perf_counter() - started, 3)
    return summary
