"""Build or validate data sets.

    python -m train.datasets preset=hanoi-paper [out=data/hanoi-paper] [overwrite=true] [preset.num_aug=7]
    python -m train.datasets --help                  # options and presets (configs/preset/)
    python -m train.datasets validate DIR            # re-check a built set; exits 1 on any violation
"""

from __future__ import annotations

import json
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from configs import CONFIG_DIR
from train.datasets.build import build
from train.datasets.spec import parse_spec
from train.datasets.validate import validate
from train.schema import DATASETS, check_config


def validate_command(args: list[str]) -> int:
    """``validate DIR``: print the report of a built data set; exit status 1 on any violation, 2 on bad usage."""
    if len(args) != 1:
        print("usage: python -m train.datasets validate DIR", file=sys.stderr)
        return 2
    report = validate(args[0])
    print(report.text())
    return 1 if report.violations else 0


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="datasets")
def main(cfg: DictConfig) -> None:
    """Build the data set of ``preset`` into ``out``; prints its counts as JSON."""
    overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith(("out=", "overwrite=", "progress="))]
    try:
        check_config(cfg, DATASETS)
        spec = parse_spec(OmegaConf.to_container(cfg.preset, resolve=True))
        summary = build(
            spec, cfg.out, " ".join(["python -m train.datasets", *overrides]), overwrite=cfg.overwrite, progress=cfg.progress
        )
    except ValueError as error:  # bad preset or out: a clear message, not a traceback
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    shown = ("bases", "puzzles", "samples") if spec.kind == "stepwise" else ("bases", "groups", "examples")
    counts = {name: {key: split[key] for key in shown} for name, split in summary["splits"].items()}
    print(json.dumps({"out": str(cfg.out), "splits": counts, "build_seconds": summary["build_seconds"]}))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "validate":
        sys.exit(validate_command(sys.argv[2:]))
    main()
