"""Closed-loop evaluation of trained policies against the oracle and a random masked policy.

    python -m train.evaluate checkpoint=runs/dagger/model.pt env=hanoi sizes=[8,9,10] episodes=100
    python -m train.evaluate checkpoint=[runs/sup/last.pt,runs/ppo/model.zip] sizes=[1,2,3,4,5,6,7,8,9,10]

For every method (each checkpoint, plus the ``oracle`` and ``random`` reference rows) and every size:
closed-loop success, optimality ratio (optimal cost / achieved cost, 0 for failures), teacher-forcing
accuracy on the oracle's own states of the same puzzles, the gap TF - success, the step of the first
non-optimal action, and the mean ACT segments per decision. Every method plays the same puzzles
(``reset(seed=...)`` with seeds derived from ``seed`` and the size).

Outputs in ``out``: ``results.json``, ``results.md`` (markdown table) and PNG plots
``success_vs_size.png``, ``gap.png``, ``first_error.png``, ``segments_vs_size.png``.
``held_out_from`` (data set folders and ``train.dagger`` run folders) makes the puzzles held out: a puzzle
whose first observation is a state of those training sets (a data set's train split, a run's aggregate) is
replaced by the next seed of its size's stream, and ``results.json`` counts the replacements per size; states
are compared without the env's padding (``PuzzleEnv.padding``), so sources built under other size bounds count.
``act.inference_halting`` / ``act.halt_max_steps`` (null = the checkpoint's) change how HRM / TRM checkpoints
act, e.g. ``act.inference_halting=max_steps act.halt_max_steps=4`` runs 4 ACT segments per decision.
Seq2seq checkpoints (``train.supervised`` on a seq2seq set, e.g. ``env=city_paper``) are scored on a built data set
instead of played (``references``, ``sizes``, ``episodes``, ``seed`` and ``held_out_from`` do not apply)::

    python -m train.evaluate checkpoint=runs/city/last.pt data=data/city-paper [split=test]

Every example of the split is scored by :func:`train.seq2seq.split_report`: ``results.json`` holds the means
(exact, token, the route metrics of a decoded route and ``mask_*`` of the raw mask), 95% Wilson intervals on the 0/1
shares, the optimal routes' own ``reference_path_ratio``, the same per variant (city: per vehicle) and ``breaks``:
how far from the goal (oracle travel time, and its share of the start's) the decoded routes that did not arrive
first left the optimal moves; ``results.md`` a table of them.
Checkpoints: ``.zip`` files are MaskablePPO models (``train.ppo``), anything else a checkpoint of
``train.supervised`` / ``train.dagger`` (``train.checkpoints``). Neither kind is unpickled (unpickling runs whatever
code a file carries): a checkpoint that needs it is refused, except a ``.zip`` with ``trust_pickle=true``, for
files you trust only (e.g. your own, saved by an older ``train.ppo``).
"""

from __future__ import annotations

from train.cli import exit_on_help

if __name__ == "__main__":  # --help answered before torch and Hydra load
    exit_on_help("evaluate")

import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

import hrm_envs  # noqa: E402,F401
from configs import CONFIG_DIR  # noqa: E402
from hrm_envs.core import int_arg  # noqa: E402
from hrm_envs.encoding import encoder_for  # noqa: E402
from hrm_envs.registry import ENVS, load  # noqa: E402
from oracles import oracle_for  # noqa: E402
from train.acting import load_policy  # noqa: E402
from train.aggregate import aggregate_rounds, load_round  # noqa: E402
from train.checkpoints import checkpoint_config  # noqa: E402
from train.datasets.loading import Seq2SeqSplit, StepwiseSplit, observation_space  # noqa: E402
from train.metrics import write_json, write_text  # noqa: E402
from train.ppo import PPOPolicy  # noqa: E402
from train.models import check_fits  # noqa: E402
from train.runs import load_preset  # noqa: E402
from train.seq2seq import SHARES, split_report  # noqa: E402
from train.rollout import (  # noqa: E402
    OraclePolicy, Policy, RandomMaskedPolicy, check_horizon, oracle_states, run_episodes, summarize,
    teacher_forcing_hits)
from train.schema import EVALUATE, REFERENCES, check_config  # noqa: E402

REFERENCE_METHODS = REFERENCES


def episode_seeds(seed: int, size_index: int, episodes: int) -> list[int]:
    """Reset seeds of the evaluation puzzles of one size (independent streams per size)."""
    return [int(s) for s in np.random.SeedSequence([seed, size_index]).generate_state(episodes)]


def state_keys(obs: dict[str, np.ndarray], padding: dict[str, int] | None = None) -> list[bytes]:
    """One digest per row of a batch of observations (every key but the derived ``action_mask``), the same for
    an env's int8 or a data set's int64 copy of a state: integers and booleans hash as int64, floats as float64.

    ``padding`` (an env's ``PuzzleEnv.padding``) names keys padded up to the env's size bound and their fill
    value: those hash without their trailing padding, so a puzzle has one digest under every bound."""
    padding = {k: v for k, v in (padding or {}).items() if k in obs}
    rows = len(next(iter(obs.values())))
    arrays = {k: np.asarray(v) for k, v in obs.items() if k != "action_mask"}
    wide = {k: a.astype(np.float64 if np.issubdtype(a.dtype, np.floating) else np.int64) for k, a in arrays.items()}
    fixed = [np.ascontiguousarray(wide[k].reshape(rows, -1)).view(np.uint8).reshape(rows, -1)
             for k in sorted(wide) if k not in padding]
    table = np.concatenate(fixed, axis=1) if fixed else np.zeros((rows, 0), dtype=np.uint8)
    trimmed = {k: without_padding(wide[k], value) for k, value in sorted(padding.items())}
    digests = []
    for i, row in enumerate(table):
        digest = hashlib.sha1(row.tobytes())
        for parts in trimmed.values():
            digest.update(np.asarray(parts[i].shape, dtype=np.int64).tobytes() + parts[i].tobytes())
        digests.append(digest.digest())
    return digests


def without_padding(batch: np.ndarray, value: int) -> list[np.ndarray]:
    """Each row of ``batch`` with the trailing slices along every axis that hold only ``value`` cut off."""
    real = batch != value
    axes = range(1, batch.ndim)
    ends = []
    for axis in axes:
        used = real.any(axis=tuple(a for a in axes if a != axis))  # (rows, length of this axis)
        ends.append(np.where(used.any(axis=1), used.shape[1] - np.argmax(used[:, ::-1], axis=1), 0))
    return [np.ascontiguousarray(batch[(i, *(slice(0, int(end[i])) for end in ends))]) for i in range(len(batch))]


#: An env's registry ``answer_keys``: a batch of observations -> each state's answer (None: none).
AnswerKeys = Callable[[dict[str, np.ndarray]], list[bytes | None]]


@dataclass
class HeldOut:
    """The states of training sets; evaluation puzzles that start in one of them are replaced, and with the env's
    registry ``answer_keys`` (Sudoku: the solution grid) also those whose answer is one of the training states'.

    States are compared without the padding of the env's ``padding`` keys, so training sets built under one
    size bound (``max_size``, ``max_disks``) hold out the same puzzles under a larger one."""

    sources: list[str]
    keys: set[bytes]
    shapes: dict[str, tuple[int, ...]]  # per-state shape of every observation key
    padding: dict[str, int] = field(default_factory=dict)  # the env's padded keys and their fill value
    replaced: dict[str, int] = field(default_factory=dict)  # size label -> puzzles replaced
    answers: set[bytes] = field(default_factory=set)  # the training states' answers (with answer_keys)
    answer_keys: AnswerKeys | None = None

    @classmethod
    def load(cls, sources: list[str | Path], padding: dict[str, int] | None = None,
             answer_keys: AnswerKeys | None = None) -> HeldOut:
        """States of every source: a step-wise data set folder (its train split), a ``train.dagger`` run
        folder or its ``aggregate`` folder (every round file); ``padding`` as in :func:`state_keys`;
        ``answer_keys`` an env's registry ``answer_keys``."""
        padding = dict(padding or {})
        keys: set[bytes] = set()
        answers: set[bytes] = set()
        shapes: dict[str, tuple[int, ...]] = {}
        for source in map(Path, sources):
            for obs in cls._batches(source):
                batch_shapes = {k: tuple(np.shape(v)[1:]) for k, v in obs.items() if k != "action_mask"}
                if shapes and not comparable(batch_shapes, shapes, padding):
                    raise ValueError(f"held_out_from sources hold states of different shapes: {shapes} and "
                                     f"{batch_shapes} ({source})")
                shapes = {k: tuple(map(max, shapes.get(k, v), v)) for k, v in batch_shapes.items()}
                keys.update(state_keys(obs, padding))
                if answer_keys is not None:
                    answers.update(key for key in answer_keys(obs) if key is not None)
        return cls([str(s) for s in sources], keys, shapes, padding, answers=answers, answer_keys=answer_keys)

    @staticmethod
    def _batches(source: Path) -> list[dict[str, np.ndarray]]:
        if (source / "summary.json").is_file():
            split = StepwiseSplit(source, "train")
            return [split.obs_batch(np.arange(split.num_samples))]
        rounds = aggregate_rounds(source)  # checked against the aggregate's manifest: ValueError naming a bad round
        if not rounds:
            raise ValueError(f"held_out_from entries must be step-wise data set folders (with summary.json) or "
                             f"train.dagger run folders (with aggregate/round_*.npz), got {str(source)!r}")
        return [load_round(path)[0].obs for path in rounds]

    def check_space(self, space: gym.spaces.Dict) -> None:
        """Refuse an evaluation env whose observations cannot equal the training states: other keys, or another
        shape of a key the env does not pad."""
        wanted = {k: tuple(v.shape) for k, v in space.spaces.items() if k != "action_mask"}
        if self.shapes and not comparable(wanted, self.shapes, self.padding):
            raise ValueError(f"held_out_from states have shapes {self.shapes}, the evaluation env's observations "
                             f"{wanted}: pass the env.kwargs the training used")

    def __contains__(self, obs: dict[str, np.ndarray]) -> bool:
        batch = {k: np.asarray(v)[None] for k, v in obs.items()}
        if state_keys(batch, self.padding)[0] in self.keys:
            return True
        return self.answer_keys is not None and self.answer_keys(batch)[0] in self.answers


def comparable(shapes: dict[str, tuple[int, ...]], other: dict[str, tuple[int, ...]], padding: dict[str, int]) -> bool:
    """Whether states of these per-key shapes can be equal: the same keys, the same shape where a key is not
    padded, the same number of axes where it is."""
    return shapes.keys() == other.keys() and all(
        len(shapes[k]) == len(other[k]) if k in padding else shapes[k] == other[k] for k in shapes)


def held_out_seeds(envs: list[gym.Env], seed: int, size_index: int, label: str, held_out: HeldOut | None) -> list[int]:
    """``episode_seeds`` with every puzzle that starts in a training state replaced by the stream's next seed."""
    episodes = len(envs)
    if held_out is None:
        return episode_seeds(seed, size_index, episodes)
    held_out.check_space(envs[0].observation_space)
    candidates = episode_seeds(seed, size_index, 20 * episodes + 100)  # a prefix-stable stream
    chosen: list[int] = []
    for candidate in candidates:
        if envs[0].reset(seed=candidate)[0] not in held_out:
            chosen.append(candidate)
            if len(chosen) == episodes:
                break
    if not chosen:
        raise ValueError(f"size {label}: every one of the {len(candidates)} puzzles drawn is a training state "
                         f"(held_out_from); leave it out of sizes")
    if len(chosen) < episodes:
        raise ValueError(f"size {label}: only {len(chosen)} of {len(candidates)} puzzles are outside held_out_from; "
                         f"lower episodes to at most {len(chosen)}")
    held_out.replaced[label] = candidates.index(chosen[-1]) + 1 - episodes
    return chosen


def check_sizes(sizes: Any, episodes: Any) -> list[Any]:
    """Validate ``sizes`` (non-empty list) and ``episodes`` (int >= 1)."""
    if isinstance(sizes, (int, str)) or not hasattr(sizes, "__iter__"):
        sizes = [sizes]
    sizes = list(sizes)
    if not sizes:
        raise ValueError("sizes must be a non-empty list of puzzle sizes")
    int_arg(episodes, "episodes", 1)
    return sizes


def evaluate_policies(
    policies: dict[str, Policy],
    env_id: str,
    sizes: list[Any],
    episodes: int,
    size_arg: str,
    env_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    horizon: float | None = None,
    held_out: HeldOut | None = None,
    teacher_forcing: bool = True,
) -> dict[str, dict[str, Any]]:
    """``summarize`` rows (per size and ``all``) for every policy on the same puzzles, with TF and gap (unless
    ``teacher_forcing`` is false: closed-loop episodes only, one pass over the oracle's states fewer);
    ``horizon`` as in ``run_episodes`` (episodes longer than ``horizon`` x the oracle's solution fail);
    ``held_out`` replaces puzzles that start in a training state (counted in ``held_out.replaced``).

    A policy that is ``None`` is replaced by the reference policies of this module's ``REFERENCE_METHODS``
    (``oracle`` / ``random``) when its name is one of them.
    """
    sizes = check_sizes(sizes, episodes)
    env_kwargs = dict(env_kwargs or {})
    if size_arg in env_kwargs:
        raise ValueError(f"env_kwargs must not set the size argument {size_arg!r}; pass sizes instead")
    envs, seeds, labels = [], [], []
    for index, size in enumerate(sizes):
        try:
            made = [gym.make(env_id, **env_kwargs, **{size_arg: size}) for _ in range(episodes)]
        except TypeError as error:
            raise ValueError(f"size_arg {size_arg!r} is not an argument of {env_id}: {error}") from None
        envs += made
        seeds += held_out_seeds(made, seed, index, str(size), held_out)
        labels += [str(size)] * episodes
    oracle = oracle_for(env_id)
    states = oracle_states(envs, seeds, oracle) if teacher_forcing else None
    results = {}
    for name, policy in policies.items():
        if policy is None:
            if name not in REFERENCE_METHODS:
                raise ValueError(f"policy {name!r} is None; only {REFERENCE_METHODS} have built-in policies")
            policy = OraclePolicy(oracle) if name == "oracle" else RandomMaskedPolicy(seed)
        episodes_run = run_episodes(policy, envs, seeds, labels, oracle, horizon=horizon)
        if states is None:
            results[name] = summarize(episodes_run)
            continue
        right = teacher_forcing_hits(policy, states, oracle)  # one pass over the oracle states per policy
        state_labels = np.repeat(labels, [len(trajectory) for trajectory in states])
        tf = {label: float(right[state_labels == label].mean()) for label in dict.fromkeys(labels)}
        tf["all"] = float(right.mean())
        results[name] = summarize(episodes_run, tf)
    for env in envs:
        env.close()
    return results


# --------------------------------------------------------------------------- report
COLUMNS = (
    ("success", "success [95% CI]"),
    ("optimality_ratio", "opt. ratio"),
    ("optimal_episodes", "cost-optimal [95% CI]"),
    ("teacher_forcing", "TF acc"),
    ("gap", "gap TF-success"),
    ("mean_segments", "ACT segments"),
)


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    """One row per (method, size): the metrics of ``COLUMNS`` (success and cost-optimal shares with their 95%
    Wilson intervals) and the median first-error step over the episodes that erred."""
    header = ("| method | size | episodes | " + " | ".join(title for _, title in COLUMNS)
              + " | median first error (erring episodes) |")
    lines = [header, "|" + "---|" * (len(COLUMNS) + 4)]
    for method, rows in results.items():
        for size, row in rows.items():
            cells = [cell(row, key) for key, _ in COLUMNS]
            first = row["first_error_steps"]
            median = f"{np.median(first):.0f} ({len(first)})" if first else "none"
            lines.append(f"| {method} | {size} | {row['episodes']} | " + " | ".join(cells) + f" | {median} |")
    return "\n".join(lines) + "\n"


def cell(row: dict[str, Any], key: str) -> str:
    """A metric as text, with its interval when the row has one (``KEY_ci95``)."""
    if key not in row:
        return "-"
    interval = row.get(f"{key}_ci95")
    return f"{row[key]:.3f}" + (f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "")


def plot_report(results: dict[str, dict[str, Any]], out: Path) -> list[Path]:
    """PNG plots: success vs size (with 95% Wilson intervals), gap per method and size, first-error histogram
    (integer steps), segments vs size (methods that run ACT segments)."""
    sizes = [s for s in next(iter(results.values())) if s != "all"]
    x = np.arange(len(sizes))
    paths = []

    def save(fig: plt.Figure, name: str, ax: plt.Axes) -> None:
        if ax.get_legend_handles_labels()[0]:  # beside the axes, so it covers no line
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        paths.append(out / name)

    fig, ax = plt.subplots(figsize=(7.5, 4))
    for i, (method, rows) in enumerate(results.items()):
        offset = (i - (len(results) - 1) / 2) * 0.04  # methods at equal success stay visible side by side
        success = np.array([rows[s]["success"] for s in sizes])
        low, high = np.array([rows[s].get("success_ci95", (rows[s]["success"],) * 2) for s in sizes]).T
        ax.errorbar(x + offset, success, yerr=[success - low, high - success], marker="o", capsize=3, label=method)
    ax.set(xticks=x, xticklabels=sizes, xlabel="size", ylabel="closed-loop success (95% Wilson)", ylim=(-0.02, 1.02))
    save(fig, "success_vs_size.png", ax)

    fig, ax = plt.subplots(figsize=(7.5, 4))
    width = 0.8 / len(results)
    for i, (method, rows) in enumerate(results.items()):
        ax.bar(x + i * width, [rows[s].get("gap", 0.0) for s in sizes], width, label=method)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set(xticks=x + 0.4 - width / 2, xticklabels=sizes, xlabel="size", ylabel="TF accuracy - closed-loop success")
    save(fig, "gap.png", ax)

    fig, ax = plt.subplots(figsize=(7.5, 4))
    for method, rows in results.items():
        first = rows["all"]["first_error_steps"]
        if first:  # one bin per integer step
            ax.hist(first, bins=np.arange(min(first), max(first) + 2) - 0.5, alpha=0.5, label=f"{method} ({len(first)})")
    ax.set(xlabel="step of the first non-optimal action (erring episodes)", ylabel="episodes")
    ax.xaxis.get_major_locator().set_params(integer=True)
    save(fig, "first_error.png", ax)

    fig, ax = plt.subplots(figsize=(7.5, 4))
    without = []
    for method, rows in results.items():
        segments = [rows[s]["mean_segments"] for s in sizes]
        if max(segments) <= 1.0 and method in REFERENCE_METHODS:
            without.append(method)  # the oracle and the random policy decide without segments: no line
            continue
        ax.plot(x, segments, marker="o", label=method)
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=1, label="one segment")
    title = f"no ACT segments: {', '.join(without)}" if without else None
    ax.set(xticks=x, xticklabels=sizes, xlabel="size", ylabel="mean ACT segments per decision", title=title)
    ax.set_ylim(bottom=0)
    save(fig, "segments_vs_size.png", ax)
    return paths


def write_report(results: dict[str, dict[str, Any]], out: str | Path, meta: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``results.json`` (with ``meta``), ``results.md`` and the plots into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", {"meta": meta or {}, "results": results})
    (out / "results.md").write_text(markdown_table(results))
    plots = plot_report(results, out)
    return {"json": out / "results.json", "markdown": out / "results.md", **{p.stem: p for p in plots}}


# --------------------------------------------------------------------------- command line
def load_any_policy(path: str | Path, encoder: Any, acting: dict[str, Any] | None = None,
                    trust_pickle: bool = False) -> Policy:
    """A policy from a checkpoint: ``.zip`` = MaskablePPO (``train.ppo``; ``trust_pickle``: see
    :func:`train.ppo.load_model`), else a ``train.checkpoints`` checkpoint (``acting``: HRM / TRM acting overrides,
    see :func:`train.acting.load_policy`). Neither unpickles anything unless ``trust_pickle``."""
    path = Path(path)
    if path.suffix == ".zip":
        return PPOPolicy(path, trust_pickle)
    return load_policy(path, encoder, acting=acting)


def checkpoint_env(path: str | Path) -> dict[str, Any] | None:
    """The env config (the Hydra ``env`` group's values) a ``train.checkpoints`` checkpoint was trained with; ``None``
    for a ``.zip`` model, which does not store it."""
    if Path(path).suffix == ".zip":
        return None
    env = checkpoint_config(path).get("env")
    return dict(env) if isinstance(env, dict) and "id" in env else None


def evaluation_env(given: dict[str, Any] | None, checkpoints: list[str]) -> dict[str, Any]:
    """The env to evaluate on: ``given`` (``env=...`` on the command line) if set, else the checkpoints' own.
    Refuses checkpoints trained on another env than the evaluation's, naming both."""
    trained = {path: checkpoint_env(path) for path in checkpoints}
    known = {path: env for path, env in trained.items() if env is not None}
    if given is None:
        if not known:
            raise ValueError("env is not set and no train.checkpoints checkpoint names its env: pass env=NAME "
                             "(hanoi, maze, city, sudoku, ...)")
        given = next(iter(known.values()))
    for path, env in known.items():
        if env["id"] != given["id"]:
            raise ValueError(f"checkpoint {path} was trained on {env['id']} (env={env.get('name')}), the evaluation "
                             f"env is {given['id']} (env={given.get('name')}): leave env= out to evaluate on the "
                             f"checkpoint's env, or pass env={env.get('name')}")
    return given


def seq2seq_checkpoint(path: str | Path) -> bool:
    """Whether a checkpoint learned a seq2seq task: a ``train.supervised`` run whose ``env.preset`` builds a seq2seq
    set (``.zip`` models and ``train.dagger`` runs act step by step)."""
    if Path(path).suffix == ".zip":
        return False
    config = checkpoint_config(path)
    preset = (config.get("env") or {}).get("preset")
    if "dagger" in config or not isinstance(preset, str):
        return False
    try:
        return load_preset(preset).get("kind") == "seq2seq"
    except ValueError:  # a preset that no longer exists: as before, a step-wise checkpoint
        return False


SEQ2SEQ_COLUMNS = (("exact", "exact"), ("arrived", "arrived"), ("valid", "valid"), ("path_ratio", "path ratio"),
                   ("reference_path_ratio", "optimal ratio"), ("path_f1", "path F1"), ("efficiency", "efficiency"),
                   ("optimal", "cost-optimal"),
                   ("mask_arrived", "mask arrived"), ("mask_no_path", "mask no path"), ("mask_all_path", "mask all path"))


def seq2seq_table(report: dict[str, Any]) -> str:
    """``results.md`` of a seq2seq evaluation: one row for the whole split and one per variant (shares with their
    95% Wilson interval), and a line on where the decoded routes that did not arrive broke."""
    rows = {"all": report["all"], **report["per_variant"]}
    columns = [(key, title) for key, title in SEQ2SEQ_COLUMNS if key in report["all"]]
    lines = ["| examples | variant | " + " | ".join(title for _, title in columns) + " |",
             "|" + "---|" * (len(columns) + 2)]
    for name, row in rows.items():
        lines.append(f"| {row['examples']} | {name} | " + " | ".join(cell(row, key) for key, _ in columns) + " |")
    breaks = report["breaks"]
    if breaks.get("routes"):
        quantiles = breaks["share"]["quantiles"]
        lines += ["", f"{breaks['routes']} of {breaks['not_arrived']} routes that did not arrive left the optimal moves "
                  f"at a median {breaks['time_to_goal']['quantiles']['0.5']:.0f} time units from the goal (share of "
                  f"the start's: median {quantiles['0.5']:.2f}, quartiles {quantiles['0.25']:.2f} / {quantiles['0.75']:.2f})"]
    return "\n".join(lines) + "\n"


def load_seq2seq(path: str | Path, data: str | Path, split: str, acting: dict[str, Any] | None = None
                 ) -> tuple[torch.nn.Module, Seq2SeqSplit, str]:
    """A seq2seq checkpoint's model, split ``split`` of the data set ``data`` (with its sources) and its env id, after
    checking they fit: ``ValueError`` naming ``data`` for a step-wise checkpoint or set, another env or layout."""
    root = Path(data)
    if not seq2seq_checkpoint(path):
        raise ValueError(f"data= applies to seq2seq checkpoints; {path} acts step by step: leave data out to play it")
    if not (root / "summary.json").is_file():
        raise ValueError(f"data must be a built data set folder (with summary.json), got {str(root)!r}")
    summary = json.loads((root / "summary.json").read_text())
    if summary.get("kind") != "seq2seq":
        raise ValueError(f"data must be a seq2seq data set; {root} holds a {summary.get('kind')!r} one")
    if split not in summary["splits"]:
        raise ValueError(f"split must be one of {sorted(summary['splits'])} (the splits of data={root}), got {split!r}")
    trained = checkpoint_config(path)["env"]
    if summary["env"] != trained["id"]:
        raise ValueError(f"data={root} holds a {summary['env']} set, checkpoint {path} was trained on {trained['id']}")
    data_split = Seq2SeqSplit(root, split, sources=True)
    model = load_policy(path, encoder_for(summary["env"], observation_space(summary)), acting=acting).model
    vocab = int(max(data_split.inputs.max(), data_split.labels.max())) + 1
    check_fits(model.config, vocab=vocab, seq_len=int(data_split.metadata["seq_len"]), where=f"data={root}")
    return model, data_split, summary["env"]


def run_seq2seq(cfg: DictConfig, checkpoints: list[str]) -> dict[str, Any]:
    """Score one seq2seq checkpoint on every example of ``cfg.split`` (default ``test``) of the data set ``cfg.data``
    and write ``results.json`` and ``results.md`` into ``cfg.out``."""
    if len(checkpoints) != 1:
        raise ValueError(f"data= scores one seq2seq checkpoint, got checkpoint={checkpoints}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    name = cfg.split if cfg.split is not None else "test"
    acting = {k: v for k, v in OmegaConf.to_container(cfg.act, resolve=True).items() if v is not None}
    model, split, env_id = load_seq2seq(checkpoints[0], cfg.data, name, acting)
    started = time.perf_counter()
    report = split_report(model, split, env_id, "cpu")
    meta = {"checkpoint": checkpoints[0], "data": str(cfg.data), "split": name, "env": env_id, "act": acting,
            "examples": split.num_examples, "shares_with_intervals": [k for k in SHARES if k in report["all"]],
            "seconds": time.perf_counter() - started}
    out = Path(cfg.out if cfg.out is not None else f"outputs/evaluate/{split.summary.get('name', Path(cfg.data).name)}")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", {"meta": meta, **report})
    table = seq2seq_table(report)
    write_text(out / "results.md", table)
    print(table, end="")
    print(f"wrote {out / 'results.json'}, {out / 'results.md'}")
    return {"meta": meta, **report}


def run(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.checkpoint`` (and the reference rows) and write the report into ``cfg.out``; with ``cfg.data``
    score a seq2seq checkpoint on that data set (:func:`run_seq2seq`)."""
    check_config(cfg, EVALUATE)
    checkpoints = OmegaConf.to_container(cfg.checkpoint, resolve=True) if OmegaConf.is_list(cfg.checkpoint) else (
        [cfg.checkpoint] if cfg.checkpoint else [])
    if cfg.data is not None:
        return run_seq2seq(cfg, checkpoints)
    if cfg.split is not None:
        raise ValueError("split applies with data=DIR (a seq2seq checkpoint scored on a data set's split)")
    names = list(cfg.names) or [Path(p).parent.name or Path(p).stem for p in checkpoints]
    if len(names) != len(checkpoints):
        raise ValueError(f"names must give one name per checkpoint ({len(checkpoints)}), got {len(names)}")
    references = list(cfg.references)
    if len(set(names + references)) != len(names) + len(references):
        raise ValueError(f"method names must be unique, got {names + references}")
    given = OmegaConf.to_container(cfg.env, resolve=True) if cfg.get("env") is not None else None
    env = evaluation_env(given, checkpoints)
    seq2seq = [path for path in checkpoints if seq2seq_checkpoint(path)]
    if seq2seq:
        raise ValueError(f"{seq2seq[0]} is a seq2seq checkpoint: pass data=DIR (a built data set of its env) to "
                         f"score it")
    sizes = OmegaConf.to_container(cfg.sizes, resolve=True) if cfg.sizes is not None else list(env["eval_sizes"])
    sizes = check_sizes(sizes, cfg.episodes)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    env_kwargs = dict(env.get("kwargs") or {})
    probe = gym.make(env["id"], **env_kwargs)
    encoder, padding = encoder_for(probe), probe.unwrapped.padding
    probe.close()
    policies: dict[str, Policy | None] = {name: None for name in references}
    acting = {k: v for k, v in OmegaConf.to_container(cfg.act, resolve=True).items() if v is not None}
    if not isinstance(cfg.trust_pickle, bool):
        raise ValueError(f"trust_pickle must be true or false, got {cfg.trust_pickle!r}")
    policies.update({name: load_any_policy(path, encoder, acting, cfg.trust_pickle)
                     for name, path in zip(names, checkpoints)})
    started = time.perf_counter()
    horizon = check_horizon(env.get("eval_horizon"))
    answers = ENVS[env["id"]].answer_keys
    held_out = HeldOut.load(list(cfg.held_out_from), padding, None if answers is None else load(answers)) \
        if cfg.held_out_from else None
    results = evaluate_policies(policies, env["id"], sizes, cfg.episodes, env["size_arg"], env_kwargs, cfg.seed,
                                horizon, held_out, cfg.teacher_forcing)
    meta = {"env": env["id"], "env_name": env.get("name"), "env_kwargs": env_kwargs, "sizes": sizes,
            "episodes": cfg.episodes, "seed": cfg.seed, "eval_horizon": horizon, "act": acting,
            "teacher_forcing": cfg.teacher_forcing,
            "held_out": None if held_out is None else {"sources": held_out.sources, "training_states": len(held_out.keys),
                                                       "training_answers": len(held_out.answers),
                                                       "replaced_puzzles": held_out.replaced},
            "checkpoints": dict(zip(names, checkpoints)), "seconds": time.perf_counter() - started}
    out = cfg.out if cfg.out is not None else f"outputs/evaluate/{env.get('name') or env['id'].split('/')[-1]}"
    paths = write_report(results, out, meta)
    print(markdown_table(results))
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return {"meta": meta, "results": results}


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
