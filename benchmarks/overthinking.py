"""No overthinking: does an HRM / TRM policy keep its accuracy when it runs more ACT segments than it was trained with?

    python -m benchmarks.overthinking --checkpoint runs/x/last.pt --sizes 3 5 8 10 --multiples 1 2 4 8 --out DIR
    python -m benchmarks.overthinking --checkpoint runs/x/last.pt --env hanoi --env-override env.kwargs.max_disks=12 \\
        --sizes 8 10 12 --segments 1 3 --puzzles 50 --closed-loop --out DIR

The checkpoint's trained segment count ``T`` is its ``halt_max_steps``. For every count ``k`` of ``--multiples`` x
``T`` and ``--segments`` (plus ``T`` itself, the reference point) the policy acts with exactly ``k`` segments per
decision (``train.acting.load_policy``'s ``{"inference_halting": "max_steps", "halt_max_steps": k}``) and, per
size, is scored on the oracle's own states of ``--puzzles`` fresh puzzles (teacher forcing: the greedy masked
action is optimal) and with ``--closed-loop`` on closed-loop episodes of the same puzzles (success with its 95%
Wilson interval). The puzzles of a size follow its position in ``--sizes`` and ``--seed`` as in ``train.evaluate``,
so ``train.evaluate ... seed=S sizes=[...] act.inference_halting=max_steps act.halt_max_steps=k`` plays them too.

A size is ``non_decreasing`` when its accuracy never falls more than ``--tolerance`` below its best accuracy at
fewer segments (``max_drop``); the verdict holds when every size is. There is no oracle row: the oracle runs no
segments, so its accuracy of 1 at every count says nothing. The env is the checkpoint's (``train.evaluate``'s
``checkpoint_env``) unless ``--env`` names a Hydra env group; ``--env-override env.KEY=VALUE`` changes either.

Prints one JSON object (``benchmarks.harness.emit``) and writes it to ``DIR/overthinking.json``, with
``DIR/overthinking.png``: accuracy (and success) against segments run, log2 x axis, one line per size, the trained
count marked.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

import hrm_envs  # noqa: E402,F401  (registers the ids)
from benchmarks.harness import emit  # noqa: E402
from configs import CONFIG_DIR  # noqa: E402
from hrm_envs.encoding import encoder_for  # noqa: E402
from oracles import oracle_for  # noqa: E402
from train.acting import ModelPolicy, load_policy  # noqa: E402
from train.evaluate import checkpoint_env, episode_seeds, evaluation_env  # noqa: E402
from train.models import is_act  # noqa: E402
from train.metrics import write_json  # noqa: E402
from train.rollout import Obs, check_horizon, oracle_states, run_episodes, summarize, teacher_forcing_hits  # noqa: E402


class SegmentLog:
    """A policy that notes the segments of every decision it makes (``teacher_forcing_hits`` keeps only the
    actions), so the report shows how many segments were really run."""

    def __init__(self, policy: ModelPolicy):
        self.policy, self.remembers, self.segments = policy, policy.remembers, []

    def act_batch(self, obs: Obs, episodes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        actions, segments = self.policy.act_batch(obs, episodes)
        self.segments.append(np.asarray(segments))
        return actions, segments

    def mean(self) -> float:
        return float(np.concatenate(self.segments).mean())


def segment_counts(trained: int, multiples: list[int], segments: list[int]) -> list[int]:
    """The counts to run, ascending: ``multiples`` x ``trained``, the explicit ``segments`` and ``trained``."""
    return sorted({trained, *(m * trained for m in multiples), *segments})


def max_drop(accuracies: list[float]) -> float:
    """The largest fall of an accuracy below the best one at fewer segments (0 when it never falls)."""
    best, drop = -np.inf, 0.0
    for accuracy in accuracies:
        drop, best = max(drop, best - accuracy), max(best, accuracy)
    return drop


def env_config(checkpoint: str, name: str | None, overrides: list[str]) -> dict[str, Any]:
    """The env config: the Hydra env group ``name`` or, without it, the checkpoint's own; then ``overrides``
    (``env.KEY=VALUE``). Refuses a checkpoint trained on another env (``evaluation_env``)."""
    for override in overrides:
        if not override.startswith("env.") or "=" not in override:
            raise ValueError(f"--env-override entries look like env.KEY=VALUE, got {override!r}")
    if name is not None:
        groups = sorted(path.stem for path in (CONFIG_DIR / "env").glob("*.yaml"))
        if name not in groups:
            raise ValueError(f"--env must be one of {groups}, got {name!r}")
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            base = OmegaConf.to_container(compose("evaluate", overrides=[f"env={name}"]).env, resolve=True)
    else:
        base = checkpoint_env(checkpoint)
        if base is None:
            raise ValueError(f"--env is not set and checkpoint {checkpoint} names no env: pass --env NAME "
                             "(hanoi, maze, city, sudoku, ...)")
    merged = OmegaConf.merge(OmegaConf.create({"env": base}), OmegaConf.from_dotlist(overrides))
    return evaluation_env(OmegaConf.to_container(merged, resolve=True)["env"], [checkpoint])


def measure(checkpoint: str, env: dict[str, Any], sizes: list[Any], multiples: list[int], segments: list[int],
            puzzles: int, seed: int, closed_loop: bool, tolerance: float) -> dict[str, Any]:
    """The figures: per size and segment count the TF accuracy (and closed-loop success), per size
    ``max_drop`` / ``non_decreasing``, and the verdict."""
    env_kwargs = dict(env.get("kwargs") or {})
    probe = gym.make(env["id"], **env_kwargs)
    encoder, oracle = encoder_for(probe), oracle_for(probe)
    probe.close()
    model = load_policy(checkpoint, encoder).model
    if not is_act(model):
        raise ValueError(f"--checkpoint {checkpoint} holds a {type(model).__name__} model, which runs no ACT segments: "
                         "pass an hrm / trm checkpoint")
    trained = int(model.config.halt_max_steps)
    counts = segment_counts(trained, multiples, segments)
    policies = {k: load_policy(checkpoint, encoder, acting={"inference_halting": "max_steps", "halt_max_steps": k})
                for k in counts}
    horizon = check_horizon(env.get("eval_horizon"))
    report: dict[str, Any] = {}
    for index, size in enumerate(sizes):
        label = str(size)
        envs = [gym.make(env["id"], **env_kwargs, **{env["size_arg"]: size}) for _ in range(puzzles)]
        seeds = episode_seeds(seed, index, puzzles)
        trajectories = oracle_states(envs, seeds, oracle)
        rows: dict[str, Any] = {}
        for k, policy in policies.items():
            log = SegmentLog(policy)
            hits = teacher_forcing_hits(log, trajectories, oracle)
            row = {"multiple": round(k / trained, 4), "accuracy": round(float(hits.mean()), 4),
                   "mean_segments": round(log.mean(), 4)}
            if closed_loop:
                summary = summarize(run_episodes(policy, envs, seeds, [label] * puzzles, oracle, horizon=horizon))[label]
                row.update({key: summary[key] for key in ("success", "success_ci95", "episodes")},
                           closed_loop_mean_segments=round(summary["mean_segments"], 4))
            rows[str(k)] = row
        for made in envs:
            made.close()
        drop = round(max_drop([row["accuracy"] for row in rows.values()]), 4)  # as reported: 0.5 -> 0.49 is 0.01
        report[label] = {"states": int(sum(map(len, trajectories))), "by_segments": rows,
                         "max_drop": drop, "non_decreasing": drop <= tolerance}
    falling = [size for size, row in report.items() if not row["non_decreasing"]]
    verdict = (f"no overthinking: accuracy never falls more than {tolerance} as segments grow from "
               f"{counts[0]} to {counts[-1]}" if not falling else f"overthinking at sizes {falling}")
    return {"checkpoint": checkpoint, "env": env["id"], "env_name": env.get("name"), "env_kwargs": env_kwargs,
            "seed": seed, "puzzles": puzzles, "tolerance": tolerance, "closed_loop": closed_loop,
            "trained_segments": trained, "segments": counts, "sizes": report,
            "non_decreasing": not falling, "verdict": verdict}


def plot(figures: dict[str, Any], path: Path) -> Path:
    """Accuracy (and closed-loop success with its Wilson interval) against segments run, one line per size, log2
    x axis, the trained count marked; written atomically."""
    counts = figures["segments"]
    panels = [("accuracy", "teacher-forcing accuracy")]
    if figures["closed_loop"]:
        panels.append(("success", "closed-loop success (95% Wilson)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels) + 1.5, 4), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels):
        for i, (size, row) in enumerate(figures["sizes"].items()):
            values = np.array([row["by_segments"][str(k)][key] for k in counts])
            if key == "success":  # sizes at equal success stay visible side by side
                shifted = np.array(counts) * 2 ** ((i - (len(figures["sizes"]) - 1) / 2) * 0.03)
                low, high = np.array([row["by_segments"][str(k)]["success_ci95"] for k in counts]).T
                ax.errorbar(shifted, values, yerr=[values - low, high - values], marker="o", capsize=3,
                            label=f"size {size}")
            else:
                ax.plot(counts, values, marker="o", label=f"size {size}")
        ax.axvline(figures["trained_segments"], color="grey", linestyle="--", linewidth=1,
                   label=f"trained ({figures['trained_segments']})")
        ax.set_xscale("log", base=2)
        ax.set_xticks(counts, [str(k) for k in counts])
        ax.minorticks_off()
        ax.set_xlim(counts[0] / 1.3, counts[-1] * 1.3)
        ax.set(xlabel="ACT segments per decision", ylabel=title, ylim=(-0.02, 1.02))
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    fig.suptitle(f"{figures['env_name'] or figures['env']}: {figures['verdict']}", fontsize="small")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line; ``ValueError`` naming the bad argument."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a train.dagger / train.supervised HRM / TRM checkpoint")
    parser.add_argument("--env", default=None, help="a Hydra env group (default: the checkpoint's env)")
    parser.add_argument("--env-override", action="append", default=[], metavar="KEY=VALUE",
                        help="an env.* override, e.g. env.kwargs.max_disks=12 (repeatable)")
    parser.add_argument("--sizes", nargs="*", default=None, help="puzzle sizes (default: the env's eval_sizes)")
    parser.add_argument("--multiples", type=int, nargs="*", default=None,
                        help="multiples of the trained segment count (default 1 2 4 8 without --segments)")
    parser.add_argument("--segments", type=int, nargs="*", default=[], help="explicit segment counts to run as well")
    parser.add_argument("--puzzles", type=int, default=20, help="puzzles per size")
    parser.add_argument("--seed", type=int, default=0, help="puzzle seeds derive from it and the size's position")
    parser.add_argument("--closed-loop", action="store_true", help="also play closed-loop episodes (success)")
    parser.add_argument("--tolerance", type=float, default=0.01, help="largest accuracy drop still non-decreasing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True, help="folder for overthinking.json and overthinking.png")
    args = parser.parse_args(argv)
    if not Path(args.checkpoint).is_file():
        raise ValueError(f"--checkpoint {args.checkpoint} does not exist")
    if Path(args.checkpoint).suffix == ".zip":
        raise ValueError(f"--checkpoint must be a train.dagger / train.supervised HRM / TRM checkpoint, got the "
                         f"MaskablePPO model {args.checkpoint}, which runs no ACT segments")
    if args.sizes is not None:
        if not args.sizes:
            raise ValueError("--sizes must name at least one puzzle size")
        if len(set(args.sizes)) != len(args.sizes):
            raise ValueError(f"--sizes must not repeat a size, got {args.sizes}")
        args.sizes = [int(s) if s.isdigit() else s for s in args.sizes]
    if args.multiples is None:
        args.multiples = [] if args.segments else [1, 2, 4, 8]
    elif not args.multiples and not args.segments:
        raise ValueError("--multiples must name at least one multiple (or pass --segments)")
    if any(m < 1 for m in args.multiples):
        raise ValueError(f"--multiples must be integers >= 1, got {args.multiples}")
    if any(k < 1 for k in args.segments):
        raise ValueError(f"--segments must be integers >= 1, got {args.segments}")
    for name in ("puzzles", "threads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if not 0 <= args.tolerance < 1:
        raise ValueError(f"--tolerance must lie in [0, 1), got {args.tolerance}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    env = env_config(args.checkpoint, args.env, args.env_override)
    sizes = args.sizes if args.sizes is not None else list(env["eval_sizes"])
    torch.set_num_threads(args.threads)
    figures = measure(args.checkpoint, env, sizes, args.multiples, args.segments, args.puzzles, args.seed,
                      args.closed_loop, args.tolerance)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(figures, out / "overthinking.png")
    result = emit("overthinking", figures, {"non_decreasing": figures["non_decreasing"]})
    write_json(out / "overthinking.json", result)
    return result


if __name__ == "__main__":
    main()
