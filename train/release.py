"""Release a trained policy into ``pretrained/``: the acting part of its checkpoint, its validation and test figures
under the results protocol, and its entry in ``pretrained/manifest.json``.

    python -m train.release --checkpoint runs/x/last.pt --name hanoi_trm_carry --family hrm --env hanoi \\
        --env-override env.kwargs.max_disks=12 --validation-sizes 3 4 5 6 7 8 --test-sizes 8 9 10 11 12 \\
        --episodes 100 --configs-compared 1 --train-minutes 12.1 --train-command "python -m train.dagger ..." \\
        --held-out-from runs/x
    python -m train.release ... --validate-only      # validation figures only: compare candidates, write nothing

The protocol (docs/results/README.md): every experiment has three disjoint puzzle streams. Training draws its own
(the data set's seeds, DAgger's collection seeds); validation plays seed :data:`VALIDATION_SEED` and the test
:data:`TEST_SEED` (``train.evaluate``'s per-size ``episode_seeds`` streams), and a puzzle of either that starts in
one of the run's training states (``--held-out-from``) is replaced. Configurations, steps and checkpoints are chosen
on validation (``--validate-only``); the test is played once, by the release. Every share carries its 95% Wilson
interval. Each finished stage keeps its figures in ``runs/release/NAME/<stage>/figures.json``: a release that was
interrupted (a long test pass) resumes after its last finished stage when run again with the same policy and
arguments. Anyone can play a released policy on puzzles of their own seed:

    python -m train.evaluate checkpoint=pretrained/NAME.pt env=ENV [ENV_OVERRIDES] sizes=[...] episodes=100 seed=S

A seq2seq policy (``train.supervised`` on a seq2seq set, e.g. city-paper) is scored on a built data set instead of
played: ``--data DIR`` replaces the sizes, validation is the originals of the train split's last
``--validation-bases`` bases (default: the ones the run held out, ``seq2seq.validation_bases``; the run must have
held some out) and the test is every example of the set's test split (:func:`train.seq2seq.split_report`)::

    python -m train.release --checkpoint runs/city/last.pt --name city_trm_field --family hrm --env city_paper \
        --data data/city-paper --configs-compared 1 --train-minutes 30 --train-command "python -m train.supervised ..."
    python -m train.evaluate checkpoint=pretrained/city_trm_field.pt data=data/city-paper
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
import yaml
from hydra import compose, initialize_config_dir

from agents.hrm import ACTING_FIELDS
from configs import CONFIG_DIR
from train.checkpoints import checkpoint_config, save_policy
from train.evaluate import load_seq2seq, seq2seq_checkpoint
from train.evaluate import run as evaluate
from train.metrics import write_json
from train.seq2seq import SHARES, first_examples, split_report, validation_groups
from train.stats import wilson_interval

VALIDATION_SEED = 1_000_003
TEST_SEED = 2_000_003
FAMILIES = ("hrm", "baseline")  # hrm: HRM and TRM variants; baseline: every other model
MAX_POLICY_BYTES = 2 * 2**20
MAX_TOTAL_BYTES = 10 * 2**20
#: The figures a seq2seq policy's manifest entry states (with ``KEY_ci95`` of the 0/1 shares among them).
SEQ2SEQ_FIGURES = ("examples", "exact", "arrived", "valid", "optimal", "path_f1", "efficiency", "path_ratio",
                   "reference_path_ratio", "mask_arrived", "mask_no_path", "mask_all_path", "steps")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line; ``ValueError`` naming the bad argument."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a train.dagger / train.supervised checkpoint")
    parser.add_argument("--name", required=True, help="the policy's name: pretrained/NAME.pt")
    parser.add_argument("--family", required=True, help=f"one of {FAMILIES}")
    parser.add_argument("--env", required=True, help="the Hydra env group (hanoi, maze, city, sudoku, ...)")
    parser.add_argument("--env-override", action="append", default=[], metavar="KEY=VALUE",
                        help="an env.* override of the evaluation, e.g. env.kwargs.max_disks=12 (repeatable)")
    parser.add_argument("--validation-sizes", nargs="+", default=None, help="step-wise policies (required for them)")
    parser.add_argument("--test-sizes", nargs="+", default=None, help="step-wise policies (required for them)")
    parser.add_argument("--data", default=None,
                        help="seq2seq policies: the built data set (validation on its train split's held-out bases, "
                             "test on its test split)")
    parser.add_argument("--validation-bases", type=int, default=None,
                        help="with --data: validate on the originals of the train split's last N bases (default: the "
                             "run's seq2seq.validation_bases)")
    parser.add_argument("--episodes", type=int, default=100, help="puzzles per size, validation and test")
    parser.add_argument("--held-out-from", action="append", default=[],
                        help="the run's training sources (run folder / data set), whose states are held out")
    parser.add_argument("--configs-compared", type=int, default=1,
                        help="how many configurations were compared on validation to choose this one")
    parser.add_argument("--train-command", default="", help="the command that trained the checkpoint")
    parser.add_argument("--train-minutes", type=float, default=None, help="its wall time")
    parser.add_argument("--act", action="append", default=[], metavar="FIELD=VALUE",
                        help=f"an HRM / TRM acting field the released policy keeps, one of {ACTING_FIELDS}, e.g. "
                             "halt_max_steps=32 chosen on validation (repeatable)")
    parser.add_argument("--half", action="store_true",
                        help="store the weights as float16 (a policy over the size limit in float32); validated and "
                             "tested as stored")
    parser.add_argument("--validate-only", action="store_true", help="print validation figures; write nothing")
    parser.add_argument("--root", default=".", help="the repository holding pretrained/ (default: the current folder)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if not Path(args.checkpoint).is_file():
        raise ValueError(f"--checkpoint {args.checkpoint} does not exist")
    if not args.name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"--name must be letters, digits, '_' and '-', got {args.name!r}")
    if args.family not in FAMILIES:
        raise ValueError(f"--family must be one of {FAMILIES}, got {args.family!r}")
    for override in args.env_override:
        if not override.startswith("env.") or "=" not in override:
            raise ValueError(f"--env-override entries look like env.KEY=VALUE, got {override!r}")
    for name in ("episodes", "configs_compared", "threads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.train_minutes is not None and not 0 <= args.train_minutes < float("inf"):
        raise ValueError(f"--train-minutes must be a finite number >= 0, got {args.train_minutes}")
    args.acting = {}
    for override in args.act:
        field, sep, value = override.partition("=")
        if not sep or field not in ACTING_FIELDS:
            raise ValueError(f"--act entries look like FIELD=VALUE with FIELD one of {ACTING_FIELDS}, got {override!r}")
        args.acting[field] = yaml.safe_load(value)
    if args.data is not None:
        return check_seq2seq(args)
    if args.validation_sizes is None or args.test_sizes is None or args.validation_bases is not None:
        raise ValueError("a step-wise policy needs --validation-sizes and --test-sizes (and no --validation-bases); "
                         "pass --data DIR for a seq2seq one")
    args.validation_sizes = [int(s) if s.isdigit() else s for s in args.validation_sizes]
    args.test_sizes = [int(s) if s.isdigit() else s for s in args.test_sizes]
    return args


def check_seq2seq(args: argparse.Namespace) -> argparse.Namespace:
    """The checks of a ``--data`` release: a seq2seq checkpoint whose run held train bases out, no step-wise
    arguments, ``--validation-bases`` (default: the bases the run held out) within those."""
    given = [flag for flag, value in (("--validation-sizes", args.validation_sizes), ("--test-sizes", args.test_sizes),
                                      ("--env-override", args.env_override), ("--held-out-from", args.held_out_from))
             if value]
    if given:
        raise ValueError(f"--data releases a seq2seq policy, scored on the data set: {', '.join(given)} do not apply")
    if not seq2seq_checkpoint(args.checkpoint):
        raise ValueError(f"--data applies to seq2seq checkpoints; {args.checkpoint} acts step by step")
    held = int((checkpoint_config(args.checkpoint).get("seq2seq") or {}).get("validation_bases", 0))
    if held < 1:
        raise ValueError(f"--data: {args.checkpoint}'s run held no train bases out (seq2seq.validation_bases=0), so "
                         f"none is unseen to validate on; release a run trained with seq2seq.validation_bases=N")
    args.validation_bases = held if args.validation_bases is None else args.validation_bases
    if not 1 <= args.validation_bases <= held:
        raise ValueError(f"--validation-bases must be in [1, {held}] (the bases the run held out), got "
                         f"{args.validation_bases}")
    return args


def figures(results: dict[str, dict[str, Any]], name: str, seed: int, episodes: int) -> dict[str, Any]:
    """One policy's shares over all sizes and per size, with their intervals (from ``train.evaluate``'s rows)."""
    def share(row: dict[str, Any]) -> dict[str, Any]:
        return {"episodes": row["episodes"], "success": row["success"], "success_ci95": row["success_ci95"],
                "cost_optimal": row["optimal_episodes"], "cost_optimal_ci95": row["optimal_episodes_ci95"],
                "mean_segments": row["mean_segments"]}

    rows = results[name]
    return {"seed": seed, "episodes_per_size": episodes, **share(rows["all"]),
            "per_size": {size: share(row) for size, row in rows.items() if size != "all"}}


def play(args: argparse.Namespace, checkpoint: Path, sizes: list[Any], seed: int, out: Path) -> dict[str, Any]:
    """``train.evaluate`` of ``checkpoint`` alone on ``sizes`` at ``seed``; its figures."""
    overrides = [f"env={args.env}", *args.env_override, f"checkpoint={checkpoint}", f"names=[{args.name}]",
                 "references=[]", f"sizes=[{','.join(map(str, sizes))}]", f"episodes={args.episodes}", f"seed={seed}",
                 f"threads={args.threads}", f"out={out}",
                 f"held_out_from=[{','.join(map(str, args.held_out_from))}]"]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("evaluate", overrides=overrides)
    report = evaluate(cfg)
    return figures(report["results"], args.name, seed, args.episodes)


def seq2seq_figures(report: dict[str, Any]) -> dict[str, Any]:
    """A manifest's figures of a :func:`train.seq2seq.split_report`: :data:`SEQ2SEQ_FIGURES` and the intervals,
    overall and per variant (city: per vehicle), and where missed routes broke."""
    def pick(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k in SEQ2SEQ_FIGURES or k in {f"{s}_ci95" for s in SHARES}}

    return {**pick(report["all"]), "per_variant": {name: pick(row) for name, row in report["per_variant"].items()},
            "breaks": report["breaks"]}


def score(args: argparse.Namespace, checkpoint: Path, which: str, out: Path) -> dict[str, Any]:
    """A seq2seq checkpoint's figures on ``--data``: ``validation`` = the originals of the train split's last
    ``--validation-bases`` bases (held out of the run), ``test`` = every example of the test split. The whole
    report goes to ``out/results.json``."""
    name = "train" if which == "validation" else "test"
    model, split, env_id = load_seq2seq(checkpoint, args.data, name)
    rows = first_examples(split, validation_groups(split, "train", args.validation_bases)) if name == "train" else None
    report = split_report(model, split, env_id, "cpu", rows=rows)
    write_json(out / "results.json", report)
    held = {"validation_bases": args.validation_bases} if name == "train" else {}
    return {"data": str(args.data), "split": name, **held, **seq2seq_figures(report)}


#: The arguments that decide a stage's figures (with the staged policy's bytes, which hold the acting fields).
STAGE_ARGS = ("env", "env_override", "validation_sizes", "test_sizes", "data", "validation_bases", "episodes",
              "held_out_from")


def measure(args: argparse.Namespace, checkpoint: Path, which: str, out: Path) -> dict[str, Any]:
    """Validation or test figures of ``checkpoint``: scored on ``--data`` (seq2seq) or played (step-wise).

    A stage that finished before is not run again: its figures are kept in ``out/figures.json`` with the policy's
    SHA-256 and :data:`STAGE_ARGS`, and reused when both match (an interrupted release resumes after its last
    finished stage)."""
    key = {"stage": which, "sha256": sha256(checkpoint), **{name: getattr(args, name) for name in STAGE_ARGS}}
    kept = out / "figures.json"
    if kept.is_file():
        stored = json.loads(kept.read_text())
        if stored.get("key") == json.loads(json.dumps(key)):
            print(f"{which}: figures of an earlier run of this release reused ({kept})")
            return stored["figures"]
    if args.data is not None:
        found = score(args, checkpoint, which, out)
    else:
        sizes, seed = (args.validation_sizes, VALIDATION_SEED) if which == "validation" else (args.test_sizes, TEST_SEED)
        found = play(args, checkpoint, sizes, seed, out)
    write_json(kept, {"key": key, "figures": found})
    return found


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(root: Path) -> dict[str, Any]:
    """``pretrained/manifest.json`` (an empty one when missing); ``ValueError`` when it is malformed."""
    path = root / "pretrained" / "manifest.json"
    if not path.is_file():
        return {"policies": []}
    manifest = json.loads(path.read_text())
    if not isinstance(manifest, dict) or not isinstance(manifest.get("policies"), list):
        raise ValueError(f"{path} must hold {{\"policies\": [...]}}")
    return manifest


def check_total(root: Path, name: str, size: int) -> None:
    """``ValueError`` unless the released policies other than ``name`` plus ``size`` bytes fit the size limit."""
    others = [p for p in read_manifest(root)["policies"] if p["name"] != name]
    total = size + sum((root / p["checkpoint"]).stat().st_size for p in others if (root / p["checkpoint"]).is_file())
    if total > MAX_TOTAL_BYTES:
        raise ValueError(f"pretrained/ would hold {total} bytes, more than {MAX_TOTAL_BYTES}: release fewer policies")


def evaluate_command(entry: dict[str, Any], seed: str = "S") -> str:
    """The command that plays a released policy on the test sizes at a seed of the user's choosing (a seq2seq
    policy: that scores it on its data set's test split)."""
    if "data" in entry:
        return f"python -m train.evaluate checkpoint={entry['checkpoint']} data={entry['data']}"
    sizes = ",".join(map(str, entry["test_sizes"]))
    return " ".join(["python -m train.evaluate", f"checkpoint={entry['checkpoint']}", f"env={entry['env']}",
                     *entry["env_overrides"], f"sizes=[{sizes}]", f"episodes={entry['test']['episodes_per_size']}",
                     f"seed={seed}"])


def release(args: argparse.Namespace) -> dict[str, Any]:
    """Validate, and unless ``--validate-only`` write the policy, play the test and record the manifest entry."""
    root = Path(args.root)
    runs = root / "runs" / "release" / args.name
    if args.data is not None:
        torch.set_num_threads(args.threads)
    staged = runs / "policy.pt"  # checked before it replaces anything in pretrained/
    save_policy(args.checkpoint, staged, args.acting, args.half)  # validated as released (acting fields, precision)
    validation = measure(args, staged, "validation", runs / "validation")
    if args.validate_only:
        return {"name": args.name, "validation": validation, **({"acting": args.acting} if args.acting else {})}
    size = staged.stat().st_size
    if size > MAX_POLICY_BYTES:
        raise ValueError(f"{args.name}'s policy takes {size} bytes, more than the {MAX_POLICY_BYTES} a released "
                         f"policy may")
    check_total(root, args.name, size)
    test = measure(args, staged, "test", runs / "test")
    check_total(root, args.name, size)  # again: another release may have finished meanwhile
    policy = root / "pretrained" / f"{args.name}.pt"
    policy.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, policy)
    where = ({"data": str(args.data), "validation_bases": args.validation_bases} if args.data is not None else
             {"env_overrides": list(args.env_override), "validation_sizes": args.validation_sizes,
              "test_sizes": args.test_sizes})
    entry = {"name": args.name, "family": args.family, "checkpoint": f"pretrained/{args.name}.pt", "env": args.env,
             **where, **({"acting": args.acting} if args.acting else {}), **({"weights": "float16"} if args.half else {}),
             "validation": validation, "test": test,
             "configs_compared": args.configs_compared, "train_command": args.train_command,
             "train_minutes": args.train_minutes, "bytes": size, "sha256": sha256(policy)}
    entry["evaluate_command"] = evaluate_command(entry)
    others = [p for p in read_manifest(root)["policies"] if p["name"] != args.name]  # read now, not before the test
    write_json(root / "pretrained" / "manifest.json", {"policies": [*others, entry]})
    return entry


def pooled(per_size: dict[str, dict[str, Any]], sizes: list[str]) -> dict[str, Any]:
    """Success and cost-optimal shares over ``sizes`` together (counts summed), with their Wilson intervals."""
    missing = [size for size in sizes if size not in per_size]
    if missing:
        raise ValueError(f"--groups name sizes {missing} that the figures do not hold (they hold {list(per_size)})")
    trials = sum(per_size[size]["episodes"] for size in sizes)
    solved = sum(round(per_size[size]["success"] * per_size[size]["episodes"]) for size in sizes)
    optimal = sum(round(per_size[size]["cost_optimal"] * per_size[size]["episodes"]) for size in sizes)
    return {"episodes": trials, "success": solved / trials, "success_ci95": list(wilson_interval(solved, trials)),
            "cost_optimal": optimal / trials, "cost_optimal_ci95": list(wilson_interval(optimal, trials))}


def seq2seq_table(entries: list[dict[str, Any]]) -> str:
    """The seq2seq policies of a manifest: validation and test shares (exact / arrived, with their intervals) and
    the test's route figures, the optimal routes' path ratio beside the predicted one."""
    def share(figures: dict[str, Any], key: str) -> str:
        low, high = figures[f"{key}_ci95"]
        return f"{figures[key]:.3f} [{low:.2f}, {high:.2f}]"

    lines = ["| policy | family | env | data | validation exact / arrived | test exact / arrived | test valid | "
             "path F1 | efficiency | path ratio (optimal) | configs compared | train minutes |", "|---" * 12 + "|"]
    for entry in entries:
        v, t = entry["validation"], entry["test"]
        lines.append(f"| {entry['name']} | {entry['family']} | {entry['env']} | {entry['data']} | "
                     f"{share(v, 'exact')} / {share(v, 'arrived')} | {share(t, 'exact')} / {share(t, 'arrived')} | "
                     f"{share(t, 'valid')} | {t['path_f1']:.3f} | {t['efficiency']:.3f} | {t['path_ratio']:.3f} "
                     f"({t['reference_path_ratio']:.3f}) | {entry['configs_compared']} | {entry['train_minutes']} |")
    return "\n".join(lines) + "\n"


def table(root: Path, groups: list[list[str]] | None = None, env: str | None = None) -> str:
    """The manifest as markdown: per env (only ``env`` when given), a table of each step-wise policy's validation
    and test shares pooled over ``groups`` of test sizes (None: every test size its own column); seq2seq policies
    (scored on a data set) follow in a table of their own (:func:`seq2seq_table`)."""
    def cell(figures: dict[str, Any]) -> str:
        (low, high), (olow, ohigh) = figures["success_ci95"], figures["cost_optimal_ci95"]
        return (f"{figures['success']:.3f} [{low:.2f}, {high:.2f}] / {figures['cost_optimal']:.3f} "
                f"[{olow:.2f}, {ohigh:.2f}]")

    entries = [e for e in read_manifest(root)["policies"] if env is None or e["env"] == env]
    if not entries:
        raise ValueError(f"--env {env!r} names no released policy")
    tables = []
    for name in dict.fromkeys(e["env"] for e in entries if "data" not in e):  # step-wise policies, by env
        rows = [e for e in entries if e["env"] == name and "data" not in e]
        columns = groups or [[size] for size in dict.fromkeys(s for e in rows for s in e["test"]["per_size"])]
        lines = ["| policy | family | env | validation (sizes) | " + " | ".join(f"test {','.join(g)}" for g in columns)
                 + " | configs compared | train minutes |", "|---" * (6 + len(columns)) + "|"]
        for entry in rows:
            validation = pooled(entry["validation"]["per_size"], list(entry["validation"]["per_size"]))
            tests = [cell(pooled(entry["test"]["per_size"], group)) for group in columns]
            sizes = ",".join(map(str, entry["validation_sizes"]))
            lines.append(f"| {entry['name']} | {entry['family']} | {entry['env']} | {cell(validation)} ({sizes}) | "
                         + " | ".join(tests) + f" | {entry['configs_compared']} | {entry['train_minutes']} |")
        tables.append("\n".join(lines) + "\n")
    seq2seq = [entry for entry in entries if "data" in entry]
    return "\n".join(tables + ([seq2seq_table(seq2seq)] if seq2seq else []))


def main(argv: list[str] | None = None) -> None:
    """``python -m train.release ARGS`` releases; ``python -m train.release table [--env hanoi --groups 8,9,10
    11,12]`` prints the manifest's figures (success / cost-optimal, each with its interval), per env, pooled over
    groups of test sizes."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["table"]:
            parser = argparse.ArgumentParser(prog="python -m train.release table")
            parser.add_argument("--env", default=None, help="only this env's policies (the Hydra env group)")
            parser.add_argument("--groups", nargs="+", default=None,
                                help="comma-separated test sizes pooled in one column, e.g. 8,9,10 (default: each "
                                     "test size its own column)")
            parser.add_argument("--root", default=".")
            args = parser.parse_args(argv[1:])
            groups = None if args.groups is None else [group.split(",") for group in args.groups]
            print(table(Path(args.root), groups, args.env), end="")
            return
        args = parse_args(argv)
        print(json.dumps(release(args)))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
