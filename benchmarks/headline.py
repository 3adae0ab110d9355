"""Headline experiments (issue 7): HRM supervised vs HRM DAgger (plus transformer DAgger and LSTM rows) on one
env, every learned row at an equal budget of expert labels and optimizer steps, evaluated in and out of
distribution.

    python -m benchmarks.headline --env hanoi                 # -> runs/headline_hanoi/, prints one JSON object
    python -m benchmarks.headline --env maze --episodes 20 --jobs 1
    python -m benchmarks.headline --env city --rows references hrm_dagger hrm_supervised
    python -m benchmarks.headline --env maze --table          # a finished run as a markdown table (= summary.md)
    python -m benchmarks.headline --env hanoi --env-kwargs max_disks=12 --out runs/headline_hanoi_max_disks12

Per-env settings live in ``EXPERIMENTS`` (one ``Experiment`` each): the Hydra env group and data set preset,
the in- and out-of-distribution evaluation sizes, the default optimizer steps, batch size and evaluation episodes, and the
issue's targets. The expert-label budget is always the preset's training split (its number of oracle labels):

| env | preset | in / out sizes | steps | batch | episodes | targets |
|---|---|---|---|---|---|---|
| hanoi | hanoi-paper | N = 3..7 (trained 1..7) / 8..10 | 3000 | 64 | 50 | HRM DAgger >= 0.95 in, >= 0.80 out |
| maze | maze-ood | 7, 11, 15 / 21, 25, 31 | 800 | 16 | 20 | HRM DAgger >= 0.90 out |
| city | city-ood | 10, 15, 20 / 40 | 600 | 8 | 20 | HRM DAgger >= 0.95 arrival and >= 0.80 cost-optimal out |
| sudoku4 | sudoku-4x4 | easy / medium | 1500 | 64 | 30 | HRM DAgger >= 0.95 solved out |
| sudoku4_large | sudoku-4x4-large (5x the labels) | easy / medium | 7500 | 64 | 100 | HRM DAgger (also with token labels) >= 0.95 solved out |
| sudoku9 | sudoku-ood | easy / medium | 1500 | 64 | 20 | (solve rate reported) |

Maze and city observations are 31 x 31 = 961 and 40 x 40 = 1600 tokens (the largest test grid fixes the
shape), so one optimizer step of the 64-wide HRM costs about 1.5 s at batch 16 on maze on one core (measured):
their budgets are cut: the HRM DAgger rows took 29 (maze) and 35 (city) minutes, plus 21 and 16 minutes
of evaluation (runs of 2026-12-01).

Rows: one Hydra experiment config each, ``configs/experiment/<env>_<row>.yaml`` (model, collection and per-env keys;
``python -m train.dagger experiment=hanoi_trm_local_carry_dagger`` runs one alone), built from the pinned pieces of
``configs/headline/`` (the models, the optimizer, the DAgger collection). This script lists an env's rows from those
files and runs each with ``experiment=<env>_<row>`` plus its flags and the shared budget, through the suite's own
commands, as subprocesses, ``--jobs`` at a time:

- ``hrm_supervised`` / ``lstm_supervised``: ``python -m train.supervised`` on the preset's training split
  (its L oracle labels), ``round(steps / steps per epoch)`` epochs.
- ``hrm_dagger`` / ``transformer_dagger`` / ``trm_dagger`` / ``lstm_dagger``: ``python -m train.dagger`` with ``dagger.max_labels = L``
  (round 0 = oracle-only collection) and ``steps`` optimizer steps spread over the rounds.
- ``hrm_local_dagger`` / ``trm_local_dagger``: the same DAgger with local attention (``headline/hrm_local``,
  ``headline/trm_local``: a token sees its neighbours only, the recurrence carries information along the puzzle).
- ``trm_local_carry_dagger``: ``trm_local_dagger`` as a recurrent policy (``model.episode_carry=true``,
  each decision goes on from the latent state of the previous one, and DAgger trains on collected episodes in
  order, ``dagger.episode_restart=0.25``); ``trm_local_carry_episodes_dagger``: the same on whole collected
  episodes (no restarts, every batch row walks an episode from its start to its end).
- ``trm_scan_dagger``: ``trm_local_dagger`` with one-way attention (``headline/trm_scan``: a token sees itself and the
  next token, a scan from the last token down); ``trm_scan_labels_dagger``: the same plus ``dagger.token_labels=true``
  (a token head trained on the oracle's per-token plan, ``Oracle.token_labels``: Hanoi's per-disk target pegs).
- ``hrm_labels_dagger``: ``hrm_dagger`` plus ``dagger.token_labels=true`` (every oracle gives per-token labels:
  Hanoi's per-disk target pegs, Sudoku's solution digit in every cell the player fills, Maze's and City's optimal
  move from every cell).
- ``trm_grid_labels_dagger`` (maze, city): ``trm_local_dagger`` with the window on the 2-D grid
  (``model.attention_grid`` = the grid's side: a cell attends to its 4 neighbours), the moves read at the agent's
  cell (``model.global_readout=acting_token``) and ``dagger.token_labels=true`` (every cell's optimal move), so
  the model can learn a breadth-first field from the goal and act on it where it stands.
- ``trm_grid_carry_labels_dagger`` (maze, city): ``trm_grid_labels_dagger`` with ``model.episode_carry=true``: each
  decision goes on from the latent state of the previous one, so the field's reach adds up over an episode's
  decisions (30 cells each) instead of starting again at every step (restarts as ``trm_local_carry_dagger``).
- ``ppo_hrm`` (with ``--ppo-minutes``): ``python -m train.ppo`` with that wall-time budget (no labels; env reward).

Hyperparameters are pinned in the experiment configs (``configs/headline/``: the models, the optimizer; the
width is ``--hidden``, 64, the peak learning rate ``--lr``, 3e-3; ``--ema`` adds an EMA of the weights, off by default),
not read from the config defaults, so the experiment stays the same when the defaults change.

Then ``python -m train.evaluate`` plays ``--episodes`` puzzles per size with every row and the oracle / random
references, all from one seed stream; for a learned row, a puzzle that starts in one of its own training states
(``held_out_from``: the data set for supervised rows, the aggregate for DAgger rows) is replaced by the stream's
next puzzle, so rows play the same puzzles except those replacements (counted per row and size in the summary).
That is why Hanoi's in-distribution sizes start at 3: all 9 one-disk and all 81 two-disk puzzles are states of
hanoi-paper's train split (a DAgger aggregate holds 67..72 of the 81). ``--reevaluate`` evaluates finished rows
again (e.g. after a change of ``train.evaluate``). The JSON printed (and written to ``summary.json``) has, per
row: in- and out-of-distribution closed-loop success, share of cost-optimal episodes, optimality ratio, TF accuracy, gap and ACT segments,
per-size success, median first-error step and training + evaluation minutes; the env's targets as booleans;
``minutes_wall`` (this invocation), ``minutes_rows`` (sum of every reported row's own minutes, from its
``.done`` marker) and ``fresh_run`` (every reported row was run by this invocation).

A killed invocation resumes when run again with the same arguments: finished rows (``<row>.done``) are reused, a
row whose training finished (``<row>.0.done``) goes on with its evaluation, and a training run with a checkpoint
continues from it (``resume=true``).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from configs import CONFIG_DIR
from train.evaluate import write_report
from train.metrics import strict_json, write_json

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Experiment:
    """One env's headline settings: Hydra env group (+ overrides), preset, evaluation sizes, budgets, targets.

    ``train_sizes`` are the in-distribution evaluation sizes (training sizes with held-out puzzles left).

    ``targets`` maps a name to (row, metric, threshold): met when ``row[metric] >= threshold``.
    ``grid_width`` (maze, city: the observation grid's side) enables the grid-attention rows.
    """

    env: str
    preset: str
    train_sizes: list[Any]
    test_sizes: list[Any]
    steps: int
    batch_size: int
    episodes: int
    targets: dict[str, tuple[str, str, float]]
    env_overrides: list[str] = field(default_factory=list)
    grid_width: int = 0


EXPERIMENTS: dict[str, Experiment] = {
    "hanoi": Experiment("hanoi", "hanoi-paper", [3, 4, 5, 6, 7], [8, 9, 10], 3000, 64, 50, {
        "hrm_dagger_in_success>=0.95": ("hrm_dagger", "in_success", 0.95),
        "hrm_dagger_out_success>=0.80": ("hrm_dagger", "out_success", 0.80),
        "hrm_local_dagger_in_success>=0.95": ("hrm_local_dagger", "in_success", 0.95),
        "hrm_local_dagger_out_success>=0.80": ("hrm_local_dagger", "out_success", 0.80),
        "trm_local_dagger_in_success>=0.95": ("trm_local_dagger", "in_success", 0.95),
        "trm_local_dagger_out_success>=0.80": ("trm_local_dagger", "out_success", 0.80),
        "trm_local_carry_dagger_in_success>=0.95": ("trm_local_carry_dagger", "in_success", 0.95),
        "trm_local_carry_dagger_out_success>=0.80": ("trm_local_carry_dagger", "out_success", 0.80),
        "trm_local_carry_episodes_dagger_in_success>=0.95": ("trm_local_carry_episodes_dagger", "in_success", 0.95),
        "trm_local_carry_episodes_dagger_out_success>=0.80": ("trm_local_carry_episodes_dagger", "out_success", 0.80)}),
    "maze": Experiment("maze", "maze-ood", [7, 11, 15], [21, 25, 31], 800, 16, 20, {
        "hrm_dagger_out_success>=0.90": ("hrm_dagger", "out_success", 0.90),
        "trm_grid_labels_dagger_out_success>=0.90": ("trm_grid_labels_dagger", "out_success", 0.90),
        "trm_grid_carry_labels_dagger_out_success>=0.90": ("trm_grid_carry_labels_dagger", "out_success", 0.90)},
                       grid_width=31),
    "city": Experiment("city", "city-ood", [10, 15, 20], [40], 600, 8, 20, {
        "hrm_dagger_out_arrival>=0.95": ("hrm_dagger", "out_success", 0.95),
        "hrm_dagger_out_cost_optimal>=0.80": ("hrm_dagger", "out_optimal_episodes", 0.80),
        "trm_grid_labels_dagger_out_arrival>=0.95": ("trm_grid_labels_dagger", "out_success", 0.95),
        "trm_grid_labels_dagger_out_cost_optimal>=0.80": ("trm_grid_labels_dagger", "out_optimal_episodes", 0.80),
        "trm_grid_carry_labels_dagger_out_arrival>=0.95": ("trm_grid_carry_labels_dagger", "out_success", 0.95),
        "trm_grid_carry_labels_dagger_out_cost_optimal>=0.80": ("trm_grid_carry_labels_dagger", "out_optimal_episodes",
                                                                0.80)},
                       grid_width=40),
    "sudoku4": Experiment("sudoku", "sudoku-4x4", ["easy"], ["medium"], 1500, 64, 30, {
        "hrm_dagger_out_solved>=0.95": ("hrm_dagger", "out_success", 0.95)}),
    "sudoku4_large": Experiment("sudoku", "sudoku-4x4-large", ["easy"], ["medium"], 7500, 64, 100, {
        "hrm_dagger_out_solved>=0.95": ("hrm_dagger", "out_success", 0.95),
        "hrm_labels_dagger_out_solved>=0.95": ("hrm_labels_dagger", "out_success", 0.95)},
                                 ["env.preset=sudoku-4x4-large"]),
    "sudoku9": Experiment("sudoku", "sudoku-ood", ["easy"], ["medium"], 1500, 64, 20, {},
                          ["env.preset=sudoku-ood", "env.kwargs.box=3", "env.eval_sizes=[medium]"]),
}

ROW_METRICS = ("success", "optimal_episodes", "optimality_ratio", "teacher_forcing", "gap", "mean_segments")
#: The rows: one Hydra experiment config each, ``<env>_<row>.yaml`` (``python -m train.dagger experiment=<env>_<row>``).
EXPERIMENT_DIR = CONFIG_DIR / "experiment"


def experiment_rows(env: str) -> list[str]:
    """The rows of ``env`` (an ``EXPERIMENTS`` key): the experiment configs named ``<env>_<row>`` whose row names an
    entry point (:func:`row_module`; others, e.g. ``maze_grid_small``, are exploratory runs); a name that starts with
    a longer env key belongs to that env (``sudoku4_large_hrm_dagger`` is sudoku4_large's, not sudoku4's)."""
    rows = []
    for path in sorted(EXPERIMENT_DIR.glob("*.yaml")):
        owner = max((key for key in EXPERIMENTS if path.stem.startswith(f"{key}_")), key=len, default=None)
        if owner == env and row_module(path.stem[len(env) + 1:]):
            rows.append(path.stem[len(env) + 1:])
    return rows


def row_module(row: str) -> str | None:
    """The entry point that trains headline row ``row``, from its name: ``ppo_*`` -> train.ppo, ``*_supervised`` ->
    train.supervised, ``*_dagger`` -> train.dagger; None for a name of none of these forms (not a headline row)."""
    if row.startswith("ppo_"):
        return "train.ppo"
    return next((f"train.{suffix}" for suffix in ("supervised", "dagger") if row.endswith(f"_{suffix}")), None)


def compose_row(module: str, overrides: list[str]) -> DictConfig:
    """The config ``python -m <module> <overrides>`` runs with (without Hydra's own keys)."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(module.split(".")[1], overrides=overrides)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and validate the command line; ``ValueError`` naming the bad argument."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help=f"one of {list(EXPERIMENTS)}")
    parser.add_argument("--out", default=None, help="folder for every run and the report (default runs/headline_<env>)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps of every learned row (default per env)")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size of every learned row (default per env)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden size of every model")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of every learned row")
    parser.add_argument("--episodes", type=int, default=None, help="evaluation puzzles per size (default per env)")
    parser.add_argument("--jobs", type=int, default=1, help="training commands run at once")
    parser.add_argument("--ppo-minutes", type=float, default=0.0, help="> 0 adds the MaskablePPO (HRMPolicy) row")
    parser.add_argument("--size-sampling", default="per_reset", choices=("per_reset", "per_env"),
                        help="DAgger collection: equal puzzles per size (as the data set) or equal states per size")
    parser.add_argument("--dagger-horizon", type=float, default=None,
                        help="DAgger rows: cut collected episodes at this multiple of the oracle's solution (>= 1)")
    parser.add_argument("--ema", type=float, default=None,
                        help="learned rows act and are evaluated with an EMA of their weights of this decay (train.ema)")
    parser.add_argument("--rows", nargs="*", default=None,
                        help="train/evaluate only these rows (default: all); the report merges every finished row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE",
                        help="env arguments for every row and the data set, e.g. max_disks=12 (more padding)")
    parser.add_argument("--reevaluate", action="store_true",
                        help="evaluate finished rows again (their minutes stay those of the first run)")
    parser.add_argument("--table", action="store_true",
                        help="print the finished run's summary.json in --out as a markdown table; train nothing")
    args = parser.parse_args(argv)
    if args.env not in EXPERIMENTS:
        raise ValueError(f"--env must be one of {list(EXPERIMENTS)}, got {args.env!r}")
    experiment = EXPERIMENTS[args.env]
    args.steps = experiment.steps if args.steps is None else args.steps
    args.episodes = experiment.episodes if args.episodes is None else args.episodes
    args.batch_size = experiment.batch_size if args.batch_size is None else args.batch_size
    args.out = args.out or f"runs/headline_{args.env}"
    for name in ("steps", "batch_size", "hidden", "episodes", "jobs"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.lr > 0:
        raise ValueError(f"--lr must be > 0, got {args.lr}")
    if args.dagger_horizon is not None and not args.dagger_horizon >= 1:
        raise ValueError(f"--dagger-horizon must be >= 1, got {args.dagger_horizon}")
    if args.ema is not None and not 0 < args.ema < 1:
        raise ValueError(f"--ema must be a decay in (0, 1), got {args.ema}")
    for kwarg in args.env_kwargs:
        if not re.fullmatch(r"[A-Za-z_]\w*=[\w.]+", kwarg):
            raise ValueError(f"--env-kwargs entries must look like KEY=VALUE (e.g. max_disks=12), got {kwarg!r}")
    return args


def run(name: str, command: list[str], log: Path) -> float:
    """Run one command (output to ``log``); its wall time in minutes; exits on failure."""
    started = time.monotonic()
    with open(log, "w") as handle:
        code = subprocess.call(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    if code != 0:
        sys.exit(f"{name} failed with exit code {code}; see {log}")
    return (time.monotonic() - started) / 60


def run_all(name: str, commands: list[list[str]], out: Path) -> tuple[str, float]:
    """Run a row's commands in order unless ``<name>.done`` says they finished before; minutes spent.

    Each finished command leaves ``<name>.<i>.done`` (its minutes), so a row interrupted after training
    resumes at its evaluation instead of training again."""
    marker = out / f"{name}.done"
    if marker.exists():
        return name, float(marker.read_text().split()[0])
    spent = 0.0
    for i, command in enumerate(commands):
        step = out / f"{name}.{i}.done"
        if not step.exists():
            step.write_text(f"{run(name, command, out / f'{name}.{i}.log'):.2f} minutes\n")
        spent += float(step.read_text().split()[0])
    marker.write_text(f"{spent:.2f} minutes\n")
    return name, spent


def data_and_env(experiment: Experiment, env_kwargs: list[str]) -> tuple[Path, list[str], list[str]]:
    """The data set folder, the ``train.datasets`` overrides that build it and the env overrides of every row;
    ``env_kwargs`` (``KEY=VALUE``, from ``--env-kwargs``) change both the env and the data set's env (the puzzles
    stay the same, e.g. with more padding) and name the folder (``data/hanoi-paper-max_disks12``)."""
    data = ROOT / "data" / "-".join([experiment.preset, *(kwarg.replace("=", "") for kwarg in env_kwargs)])
    build = [f"preset={experiment.preset}", f"out={data}", *(f"preset.env_kwargs.{kwarg}" for kwarg in env_kwargs)]
    env = [f"env={experiment.env}", *experiment.env_overrides, *(f"env.kwargs.{kwarg}" for kwarg in env_kwargs)]
    return data, build, env


def held_out_from(module: str, data: Path, run_dir: Path) -> str:
    """The ``train.evaluate`` override that replaces evaluation puzzles starting in the row's own training
    states: the data set's train split for supervised rows, the run's aggregate (every round it trained on)
    for DAgger rows. PPO keeps no visited states: its puzzles are the seed stream's."""
    sources = {"train.supervised": [data], "train.dagger": [run_dir]}.get(module, [])
    return f"held_out_from=[{','.join(map(str, sources))}]"


def resume_flag(module: str, run_dir: Path) -> list[str]:
    """``resume=true`` for a ``train.dagger`` / ``train.supervised`` row killed after its first checkpoint, so a
    re-run continues it (no collected round or finished epoch is lost); nothing for a fresh row or PPO."""
    return ["resume=true"] if module != "train.ppo" and (run_dir / "last.pt").is_file() else []


def row_commands(args: argparse.Namespace, labels: int) -> dict[str, list[str]]:
    """Each row's module and overrides: its experiment config plus the command line's flags and the shared budget of
    ``labels`` expert labels and ``args.steps`` optimizer steps (``train.epochs`` for supervised rows; for DAgger
    rows the rounds of the experiment's ``dagger.envs x dagger.steps`` labels that cover the budget, the steps spread
    over them). ``ppo_*`` rows only with ``--ppo-minutes``."""
    epochs = max(1, round(args.steps / max(1, labels // args.batch_size)))
    commands = {}
    for row in experiment_rows(args.env):
        module = row_module(row)
        if module == "train.ppo" and not args.ppo_minutes > 0:
            continue
        overrides = [f"experiment={args.env}_{row}", f"model.hidden_size={args.hidden}"]
        if module == "train.ppo":
            commands[row] = [module, *overrides, f"ppo.minutes={args.ppo_minutes}"]
            continue
        overrides += [f"train.batch_size={args.batch_size}", *optimizer_overrides(args)]
        if module == "train.supervised":
            commands[row] = [module, *overrides, f"train.epochs={epochs}"]
            continue
        collection = compose_row(module, overrides).dagger
        rounds = math.ceil(labels / (collection.envs * collection.steps))  # rounds 0..rounds-1 (the last one cut)
        commands[row] = [module, *overrides, f"dagger.max_labels={labels}", f"dagger.rounds={rounds - 1}",
                         f"dagger.train_steps={max(1, args.steps // rounds)}",
                         f"dagger.size_sampling={args.size_sampling}",
                         *([f"dagger.horizon={args.dagger_horizon:g}"] if args.dagger_horizon is not None else [])]
    return commands


def optimizer_overrides(args: argparse.Namespace) -> list[str]:
    """The ``train.*`` overrides of the command line every learned row shares: the peak ``--lr`` and ``--ema`` (the
    rest of the optimizer is pinned in configs/headline/optim.yaml)."""
    return [f"train.lr={args.lr:g}", *([f"train.ema={args.ema:g}"] if args.ema is not None else [])]


def summarize_row(rows: dict[str, Any], experiment: Experiment) -> dict[str, Any]:
    """In/out means of ``ROW_METRICS``, per-size success and the median first-error step out of distribution."""
    row: dict[str, Any] = {}
    for tag, group in (("in", experiment.train_sizes), ("out", experiment.test_sizes)):
        for key in ROW_METRICS:
            values = [rows[str(n)][key] for n in group if key in rows[str(n)]]
            row[f"{tag}_{key}"] = round(sum(values) / len(values), 4) if values else None
    first = [s for n in experiment.test_sizes for s in rows[str(n)]["first_error_steps"]]
    row["out_median_first_error"] = statistics.median(first) if first else None
    row["success_per_size"] = {str(n): rows[str(n)]["success"] for n in experiment.train_sizes + experiment.test_sizes}
    return row


def markdown(summary: dict[str, Any]) -> str:
    """The summary as a markdown table (one line per row) with per-size success and the targets."""
    def cell(value: Any) -> str:
        return "-" if value is None else f"{float(value):.3f}"

    columns = [("in_success", "success in"), ("out_success", "success out"),
               ("out_optimal_episodes", "cost-optimal out"), ("out_optimality_ratio", "opt. ratio out"),
               ("out_teacher_forcing", "TF out"), ("out_gap", "gap out"), ("out_mean_segments", "segments out"),
               ("out_median_first_error", "median first error out"), ("minutes", "minutes")]
    lines = ["| row | " + " | ".join(title for _, title in columns) + " | success per size |",
             "|" + "---|" * (len(columns) + 2)]
    for name, row in summary["rows"].items():
        sizes = " ".join(f"{size}:{value:.2f}" for size, value in row["success_per_size"].items())
        lines.append(f"| {name} | " + " | ".join(cell(row.get(key)) for key, _ in columns) + f" | {sizes} |")
    targets = ", ".join(f"{name}: {'met' if met else 'NOT met'}" for name, met in summary["targets"].items())
    lines.append("")
    env = " ".join([summary["env"], *summary.get("env_kwargs", [])])
    lines.append(f"{env}: in = {summary['train_sizes']}, out = {summary['test_sizes']}, "
                 f"{summary['episodes_per_size']} puzzles per size; targets: {targets or 'none'}; "
                 f"minutes_rows {summary['minutes_rows']}, fresh_run {summary['fresh_run']}")
    held_out = {name: row["held_out_replaced"] for name, row in summary["rows"].items() if row.get("held_out_replaced")}
    if held_out:
        lines.append("")
        lines.append("held out: puzzles replaced because they start in the row's own training states: " + "; ".join(
            f"{name} " + " ".join(f"{size}:{count}" for size, count in counts.items())
            for name, counts in held_out.items()))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train and evaluate every chosen row of ``--env``; write and print the summary (``--table``: print an
    existing run's summary as markdown instead)."""
    args = parse_args(argv)
    if args.table:
        path = ROOT / args.out / "summary.json"
        if not path.is_file():
            raise ValueError(f"--table needs a finished run: --out {args.out} has no summary.json")
        summary = json.loads(path.read_text())
        print(markdown(summary), end="")
        return summary
    experiment = EXPERIMENTS[args.env]
    started = time.monotonic()
    out = (ROOT / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable

    data, build, env = data_and_env(experiment, args.env_kwargs)
    if not (data / "summary.json").is_file():
        run("data", [py, "-m", "train.datasets", *build, "progress=false"], out / "data.log")
    labels = json.loads((data / "summary.json").read_text())["splits"]["train"]["samples"]
    commands = row_commands(args, labels)
    kwargs = [f"env.kwargs.{kwarg}" for kwarg in args.env_kwargs]
    sizes = experiment.train_sizes + experiment.test_sizes
    evaluate = [py, "-m", "train.evaluate", *env, f"sizes=[{','.join(map(str, sizes))}]", f"episodes={args.episodes}",
                f"seed={args.seed + 12345}"]  # one seed stream for every row
    jobs = [("references", [[*evaluate, f"out={out / 'references'}"]])]
    unknown = sorted(set(args.rows or []) - set(commands) - {"references"})
    if unknown:
        raise ValueError(f"--rows must name rows of {['references', *commands]}, got {unknown}")
    for name, (module, *overrides) in commands.items():
        run_dir = out / name
        checkpoint = run_dir / ("model.zip" if module == "train.ppo" else "last.pt")
        base = kwargs if module == "train.ppo" else [*kwargs, f"env.data_dir={data}"]
        command = [py, "-m", module, *overrides, *base, "threads=1", "progress=false", f"seed={args.seed}",
                   f"out={run_dir}", *resume_flag(module, run_dir)]
        # each row is evaluated as soon as it is trained; a row whose .done marker exists is reused
        jobs.append((name, [command, [*evaluate, f"checkpoint={checkpoint}", f"names=[{name}]", "references=[]",
                                      held_out_from(module, data, run_dir), f"out={run_dir / 'evaluate'}"]]))
    chosen = [job for job in jobs if args.rows is None or job[0] in args.rows]
    fresh = {name for name, _ in chosen if not (out / f"{name}.done").exists()}
    if args.reevaluate:
        for name, commands_of_row in chosen:
            if (out / f"{name}.done").exists():
                run(name, commands_of_row[-1], out / f"{name}.{len(commands_of_row) - 1}.log")
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        minutes = dict(pool.map(lambda job: run_all(*job, out), chosen))
    results: dict[str, Any] = {}
    replaced: dict[str, dict[str, int]] = {}
    for name, _ in jobs:  # every finished row (this invocation's or an earlier one's)
        folder = out / name / "evaluate" if name != "references" else out / "references"
        if (out / f"{name}.done").exists():
            report = json.loads((folder / "results.json").read_text())
            results.update(report["results"])
            if report["meta"].get("held_out"):
                replaced[name] = report["meta"]["held_out"]["replaced_puzzles"]
            minutes.setdefault(name, float((out / f"{name}.done").read_text().split()[0]))
    write_report(results, out / "evaluate", {"env": args.env, "rows": list(results), "episodes": args.episodes,
                                             "sizes": sizes})

    summary: dict[str, Any] = {"env": args.env, "env_kwargs": args.env_kwargs, "preset": experiment.preset,
                               "train_sizes": experiment.train_sizes,
                               "test_sizes": experiment.test_sizes, "labels_budget": labels,
                               "optimizer_steps": args.steps, "episodes_per_size": args.episodes,
                               "hidden_size": args.hidden,
                               "models": {name: OmegaConf.to_container(compose_row(module, overrides).model)
                                          for name, (module, *overrides) in commands.items()},
                               "train": optimizer_overrides(args),
                               "commands": {name: " ".join(command) for name, command in commands.items()}, "rows": {}}
    for name, rows in results.items():
        summary["rows"][name] = {"minutes": minutes.get(name), **summarize_row(rows, experiment),
                                 "held_out_replaced": replaced.get(name)}
    summary["targets"] = {
        target: summary["rows"][row][metric] >= threshold
        for target, (row, metric, threshold) in experiment.targets.items() if row in summary["rows"]}
    summary["minutes_wall"] = round((time.monotonic() - started) / 60, 2)
    summary["minutes_rows"] = round(sum(minutes[name] for name, _ in jobs if name in minutes), 2)
    summary["fresh_run"] = all(name in fresh for name, _ in jobs if (out / f"{name}.done").exists())
    write_json(out / "summary.json", summary)
    (out / "summary.md").write_text(markdown(summary))
    print(strict_json(summary))
    return summary


if __name__ == "__main__":
    main()
