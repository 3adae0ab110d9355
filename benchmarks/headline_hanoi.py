"""Headline experiment 1: Hanoi, seed 000's split (train N = 1..7, test N = 8, 9, 10), at an equal budget of
expert labels and optimizer steps for every learned row.

    python -m benchmarks.headline_hanoi                       # -> runs/headline_hanoi/, prints one JSON object
    python -m benchmarks.headline_hanoi --steps 1000 --episodes 20 --jobs 2 --ppo-minutes 5

Rows (each trained by the suite's own commands, run as subprocesses, ``--jobs`` at a time):

- ``hrm_supervised`` / ``lstm_supervised``: ``python -m train.supervised`` on the ``hanoi-paper`` training split
  (its L oracle labels), ``ceil(steps / steps per epoch)`` epochs.
- ``hrm_dagger`` / ``transformer_dagger`` / ``lstm_dagger``: ``python -m train.dagger`` with ``dagger.max_labels = L`` (the same
  number of oracle labels; round 0 = oracle-only collection) and ``steps`` optimizer steps spread over the rounds.
- ``ppo_hrm`` (with ``--ppo-minutes``): ``python -m train.ppo`` with that wall-time budget (no labels; env reward).

Hyperparameters are pinned in this script (see ``models`` / ``train`` in ``main``), not read from the config
defaults, so the experiment stays the same when the defaults change.

Then ``python -m train.evaluate`` plays the same ``--episodes`` puzzles per size N = 1..10 with every row and
the oracle / random references. The JSON printed (and written to ``summary.json``) has, per row: in-distribution
(N <= 7) and out-of-distribution (N = 8..10) closed-loop success, TF accuracy, gap, optimality ratio and ACT
segments, per-size success, training minutes, and whether HRM DAgger meets the targets (>= 0.95 in
distribution, >= 0.80 at N = 8..10); ``minutes_total`` is the whole experiment's wall time.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from train.evaluate import write_report

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SIZES = [1, 2, 3, 4, 5, 6, 7]
TEST_SIZES = [8, 9, 10]


def run(name: str, command: list[str], log: Path) -> tuple[str, float]:
    """Run one command (output to ``log``); its name and wall time in minutes; exits on failure."""
    started = time.monotonic()
    with open(log, "w") as handle:
        code = subprocess.call(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    if code != 0:
        sys.exit(f"{name} failed with exit code {code}; see {log}")
    return name, (time.monotonic() - started) / 60


def run_all(name: str, commands: list[list[str]], out: Path) -> tuple[str, float]:
    """Run a row's commands in order unless ``<name>.done`` says they finished before; minutes spent."""
    marker = out / f"{name}.done"
    if marker.exists():
        return name, float(marker.read_text().split()[0])
    spent = sum(run(name, command, out / f"{name}.{i}.log")[1] for i, command in enumerate(commands))
    marker.write_text(f"{spent:.2f} minutes\n")
    return name, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/headline_hanoi", help="folder for every run and the report")
    parser.add_argument("--steps", type=int, default=3000, help="optimizer steps of every learned row")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=64, help="hidden size of every model")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation puzzles per size")
    parser.add_argument("--jobs", type=int, default=2, help="training commands run at once")
    parser.add_argument("--ppo-minutes", type=float, default=0.0, help="> 0 adds the MaskablePPO (HRMPolicy) row")
    parser.add_argument("--size-sampling", default="per_reset", choices=("per_reset", "per_env"),
                        help="DAgger collection: equal puzzles per size (as the data set) or equal states per size")
    parser.add_argument("--rows", nargs="*", default=None,
                        help="train/evaluate only these rows (default: all); the report merges every finished row")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in ("steps", "batch_size", "hidden", "episodes", "jobs"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    started = time.monotonic()
    out = (ROOT / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable

    data = ROOT / "data" / "hanoi-paper"
    if not (data / "summary.json").is_file():
        run("data", [py, "-m", "train.datasets", "preset=hanoi-paper", f"out={data}", "progress=false"], out / "data.log")
    labels = json.loads((data / "summary.json").read_text())["splits"]["train"]["samples"]

    # Every hyperparameter is pinned here (not taken from the config defaults, which may change): the HRM and
    # the transformer have the same blocks (1 + 1 of width --hidden); the HRM adds recurrence and ACT.
    train = [f"train.batch_size={args.batch_size}", "train.lr=3e-3", "train.weight_decay=0.01", "train.betas=[0.9,0.95]",
             "train.warmup_steps=100", "train.schedule=cosine", "train.lr_min_ratio=0.05", "train.grad_clip=1.0"]
    blocks = [f"model.hidden_size={args.hidden}", "model.num_heads=4", "model.expansion=4.0", "model.H_layers=1",
              "model.L_layers=1", "model.pos_encodings=rope", "model.loss=softmax"]
    models = {
        "hrm": ["model=hrm", *blocks, "model.H_cycles=1", "model.L_cycles=1", "model.halt_max_steps=2",
                "model.halt_exploration_prob=0.1"],
        "transformer": ["model=transformer", *blocks],
        "lstm": ["model=lstm", f"model.hidden_size={args.hidden}", "model.depth=2", "model.loss=softmax"],
    }
    common = ["env=hanoi", f"env.data_dir={data}", *train, "threads=1", "progress=false", f"seed={args.seed}"]
    epochs = max(1, round(args.steps / (labels // args.batch_size)))
    supervised = ["train.eval.puzzles=0", "train.eval.tf_samples=2000", f"train.epochs={epochs}"]
    envs, steps = 14, 128  # 1792 labels per round
    rounds = math.ceil(labels / (envs * steps))  # rounds 0..rounds-1 cover the budget (the last one is cut to fit)
    dagger = [f"dagger.max_labels={labels}", f"dagger.rounds={rounds - 1}", f"dagger.envs={envs}",
              f"dagger.steps={steps}", f"dagger.train_steps={max(1, args.steps // rounds)}", "dagger.eval_puzzles=4",
              "dagger.eval_ood_every=0", f"dagger.size_sampling={args.size_sampling}"]
    commands = {
        "hrm_dagger": ["train.dagger", *models["hrm"], *dagger],
        "hrm_supervised": ["train.supervised", *models["hrm"], *supervised],
        "transformer_dagger": ["train.dagger", *models["transformer"], *dagger],
        "lstm_supervised": ["train.supervised", *models["lstm"], *supervised],
        "lstm_dagger": ["train.dagger", *models["lstm"], *dagger],
    }
    if args.ppo_minutes > 0:
        commands["ppo_hrm"] = ["train.ppo", *models["hrm"], "ppo.policy=hrm", f"ppo.minutes={args.ppo_minutes}",
                               "threads=1", f"seed={args.seed}"]
    sizes = TRAIN_SIZES + TEST_SIZES
    evaluate = [py, "-m", "train.evaluate", f"sizes=[{','.join(map(str, sizes))}]", f"episodes={args.episodes}",
                f"seed={args.seed + 12345}"]  # the same puzzles for every row
    jobs = [("references", [[*evaluate, f"out={out / 'references'}"]])]
    unknown = sorted(set(args.rows or []) - set(commands) - {"references"})
    if unknown:
        raise ValueError(f"--rows must name rows of {['references', *commands]}, got {unknown}")
    for name, (module, *overrides) in commands.items():
        run_dir = out / name
        checkpoint = run_dir / ("model.zip" if module == "train.ppo" else "last.pt")
        base = ["env=hanoi"] if module == "train.ppo" else common
        command = [py, "-m", module, *base, *overrides, f"out={run_dir}"]
        # each row is evaluated as soon as it is trained; a row whose report exists is reused
        jobs.append((name, [command, [*evaluate, f"checkpoint={checkpoint}", f"names=[{name}]", "references=[]",
                                    f"out={run_dir / 'evaluate'}"]]))
    chosen = [job for job in jobs if args.rows is None or job[0] in args.rows]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        minutes = dict(pool.map(lambda job: run_all(*job, out), chosen))
    results: dict[str, Any] = {}
    for name, _ in jobs:  # every finished row (this invocation's or an earlier one's)
        folder = out / name / "evaluate" if name != "references" else out / "references"
        if (out / f"{name}.done").exists():
            results.update(json.loads((folder / "results.json").read_text())["results"])
            minutes.setdefault(name, float((out / f"{name}.done").read_text().split()[0]))
    write_report(results, out / "evaluate", {"rows": list(results), "episodes": args.episodes, "sizes": sizes})

    def mean(rows: dict[str, Any], key: str, group: list[int]) -> float:
        return sum(rows[str(n)][key] for n in group) / len(group)

    summary: dict[str, Any] = {"labels_budget": labels, "optimizer_steps": args.steps, "episodes_per_size": args.episodes,
                               "hidden_size": args.hidden, "models": models, "train": train, "rows": {}}
    for name, rows in results.items():
        row = {"minutes": minutes.get(name)}
        for tag, group in (("in", TRAIN_SIZES), ("out", TEST_SIZES)):
            for key in ("success", "teacher_forcing", "gap", "optimality_ratio", "mean_segments"):
                row[f"{tag}_{key}"] = round(mean(rows, key, group), 4)
        row["success_per_size"] = {n: rows[str(n)]["success"] for n in sizes}
        summary["rows"][name] = row
    hrm = summary["rows"].get("hrm_dagger")
    if hrm is not None:
        summary["targets"] = {"hrm_dagger_in_success>=0.95": hrm["in_success"] >= 0.95,
                              "hrm_dagger_out_success>=0.80": hrm["out_success"] >= 0.80}
    summary["minutes_total"] = round((time.monotonic() - started) / 60, 2)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
