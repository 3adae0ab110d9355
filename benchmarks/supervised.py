"""Supervised training speed on ``hanoi-paper``: throughput and the time to 99% teacher forcing on train.

    python -m benchmarks.supervised [--seconds 20] [--threads 2] [--skip-paper] [--skip-run]

- Throughput: training samples/s (optimizer steps x batch; HRM runs one ACT segment per step, including
  the extra no_grad segment of the Q target) of the paper's configuration (hidden 512, 8 heads, 4 + 4
  layers, 2 x 2 cycles, halt_max_steps 16; a few steps at batch 32, since its batch of 768 takes minutes
  per step on a CPU) and of the default small configuration (``configs/model/hrm.yaml`` with the batch of
  ``configs/train/default.yaml``), at 1 thread and at ``--threads``.
- Time to target: the default run (``python -m train.supervised``, every default, 1 thread) with
  ``train.stop_at_train_accuracy=0.99`` and TF measured on the whole train split after every epoch; wall
  time includes data loading, the per-epoch evaluation and checkpoints. Target: under 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from benchmarks.harness import emit
from train.datasets import StepwiseDataset
from train.learner import Learner
from train.runs import CONFIG_DIR, ensure_dataset
from train.supervised import train

PAPER_MODEL = {"name": "hrm", "hidden_size": 512, "num_heads": 8, "expansion": 4.0, "H_layers": 4, "L_layers": 4,
               "H_cycles": 2, "L_cycles": 2, "halt_max_steps": 16, "loss": "stablemax"}


def default_config(*overrides: str) -> Any:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("supervised", overrides=list(overrides))


def throughput(data: StepwiseDataset, model_cfg: dict, batch_size: int, seconds: float, threads: int,
               min_steps: int = 2) -> dict[str, float]:
    """Training samples/s of ``model_cfg`` on random batches of ``data`` (after one warm-up step)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    learner = Learner(model_cfg, {"lr": 1e-4}, data.encoder, total_steps=10**6)
    generator = torch.Generator().manual_seed(0)

    def step() -> None:
        rows = torch.randint(len(data), (batch_size,), generator=generator)
        learner.train_step({"tokens": data.tokens[rows], "optimal": data.optimal[rows], "action_mask": data.action_mask[rows]})

    step()
    steps, start = 0, time.perf_counter()
    while steps < min_steps or time.perf_counter() - start < seconds:
        step()
        steps += 1
    elapsed = time.perf_counter() - start
    return {"samples_per_s": round(steps * batch_size / elapsed, 1), "steps": steps, "batch_size": batch_size,
            "threads": threads, "parameters": learner.num_parameters()}


def time_to_target(target: float) -> dict[str, Any]:
    """Run the default supervised run until TF on the whole train split reaches ``target``."""
    with tempfile.TemporaryDirectory() as out:
        cfg = default_config(f"out={out}", "progress=false", f"train.stop_at_train_accuracy={target}",
                             "train.eval.train_tf_samples=0")
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # the run's epoch lines; stdout carries the JSON only
            final = train(cfg)
        elapsed = time.perf_counter() - start
        epochs = sum(1 for line in (Path(out) / "metrics.jsonl").read_text().splitlines() if '"eval"' in line)
    return {"seconds": round(elapsed, 1), "reached": final["train_tf"] >= target, "epochs": epochs,
            "train_tf": round(final["train_tf"], 4), "heldout_tf": round(final["tf"], 4),
            "auto": round(final["auto"], 4), "threads": cfg.threads, "model": OmegaConf.to_container(cfg.model),
            "train": {k: v for k, v in OmegaConf.to_container(cfg.train).items() if k != "eval"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="timing window per throughput figure")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the multi-thread throughput figures")
    parser.add_argument("--skip-paper", action="store_true", help="skip the paper-configuration throughput")
    parser.add_argument("--skip-run", action="store_true", help="skip the time-to-99%% run")
    args = parser.parse_args()

    cfg = default_config()
    data = StepwiseDataset(ensure_dataset(cfg.env, rank=0), "train")
    small = OmegaConf.to_container(cfg.model)
    figures: dict[str, Any] = {}
    for threads in sorted({1, args.threads}):
        figures[f"default_small_{threads}_threads"] = throughput(data, small, cfg.train.batch_size, args.seconds, threads)
        if not args.skip_paper:
            figures[f"paper_{threads}_threads"] = throughput(data, PAPER_MODEL, 32, args.seconds, threads)
    targets = {}
    if not args.skip_run:
        run = time_to_target(0.99)
        figures["time_to_99_train_tf"] = run
        targets["default_run_reaches_99_train_tf_under_600_s"] = bool(run["reached"] and run["seconds"] < 600)
    emit("supervised", figures, targets)


if __name__ == "__main__":
    main()
