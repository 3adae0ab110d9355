"""Data set builds: seconds and samples/s per preset (one per environment and kind), validation included.

    python -m benchmarks.datasets [--presets hanoi-paper,city-paper,...]

Each preset of ``configs/preset/`` is built into a temporary folder exactly as
``python -m train.datasets preset=NAME`` does (build, then the full validation); ``validate_seconds``
times a second validation alone. Samples are step-wise samples or seq2seq examples. Targets:
``hanoi-paper`` builds in under 10 s and ``city-paper`` without augmentation in under 60 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

from benchmarks.harness import emit
from configs import CONFIG_DIR
from train.datasets import build, parse_spec, validate

PRESETS = CONFIG_DIR / "preset"
DEFAULT = ("hanoi-paper", "maze-ood", "city-ood", "sudoku-4x4", "sudoku-ood", "city-paper", "maze-hrm", "sudoku-hrm")
TARGETS = {"hanoi-paper": 10.0, "city-paper": 60.0}


def measure(name: str, folder: Path) -> dict:
    """Build one preset (``city-paper`` without augmentation) and time it."""
    data = OmegaConf.to_container(OmegaConf.load(PRESETS / f"{name}.yaml"), resolve=True)
    if name == "city-paper":
        data["num_aug"] = 0
    spec = parse_spec(data)
    started = time.perf_counter()
    summary = build(spec, folder / name, f"benchmarks.datasets {name}", progress=False)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    report = validate(folder / name)
    validate_seconds = time.perf_counter() - started
    samples = sum(split.get("samples", split.get("examples", 0)) for split in summary["splits"].values())
    return {
        "env": spec.env,
        "kind": spec.kind,
        "samples": samples,
        "build_seconds": round(seconds, 2),
        "validate_seconds": round(validate_seconds, 2),
        "samples_per_s": round(samples / seconds, 1),
        "valid": not report.violations,
    }


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=",".join(DEFAULT), help="comma-separated preset names (configs/preset/)")
    args = parser.parse_args()
    names = [name for name in args.presets.split(",") if name]
    unknown = [name for name in names if not (PRESETS / f"{name}.yaml").is_file()]
    if unknown:
        raise ValueError(f"--presets must name files of {PRESETS}, unknown: {unknown}")
    with tempfile.TemporaryDirectory() as tmp:
        figures = {name: measure(name, Path(tmp)) for name in names}
    targets = {
        f"{name}_build_seconds<{limit:g}": figures[name]["build_seconds"] < limit for name, limit in TARGETS.items() if name in figures
    }
    targets["all_valid"] = all(f["valid"] for f in figures.values())
    return emit("datasets", figures, targets)


if __name__ == "__main__":
    main()
