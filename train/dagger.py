"""DAgger: the learner acts, the oracle labels every state it visits, the model retrains on the aggregate.

    python -m train.dagger                                    # env=hanoi model=hrm train=default
    python -m train.dagger model=transformer dagger.max_labels=12978 out=runs/dagger-tf
    python -m train.dagger resume=true                        # continue a killed run; no collected round is lost
    python -m train.dagger init_from=runs/a/last.pt ...       # a new run starting from another run's weights

One run, top to bottom (see ``run``):

1. Round 0: ``dagger.init=expert`` collects with the oracle only (beta = 1); ``init=dataset`` takes the env's
   step-wise training split (``env.preset``, built when missing), i.e. the supervised start.
2. Rounds 1..: collect ``dagger.steps`` steps on each of ``dagger.envs`` sub-envs of a Gymnasium vector env
   (``AsyncVectorEnv`` when the machine has cores to spare) with the mixture policy (oracle with probability
   beta, learner otherwise; masks respected, ACT segments recorded), label every visited state with the
   oracle's optimal-action set (:func:`train.rollout.collect`), write the round to ``aggregate/`` atomically.
   ``dagger.horizon=x`` truncates an episode after ``x`` times the oracle's solution from its start.
3. After every round: ``dagger.train_steps`` optimizer steps (``train.learner.Learner``, warm start: same model,
   optimizer and schedule) on batches drawn uniformly from the whole aggregate, with the set loss (+ ACT Q
   losses for HRM; with ``dagger.token_labels=true`` also a token head's cross-entropy on the oracle's per-token
   labels of the same states, ``Oracle.token_labels``: its plan spelled out per token; with
   ``model.episode_carry=true`` the batch rows walk whole collected episodes in order instead, the HRM carry
   going on from one state to the next, as the policy then acts: ``Aggregate.stream``); then closed-loop
   evaluation on ``dagger.eval_puzzles`` fresh puzzles per size, in distribution (the collection sizes) and out
   of distribution (``env.eval_sizes``, every ``dagger.eval_ood_every`` rounds and after the last one), and a
   checkpoint.
4. Stop on ``dagger.rounds``, ``dagger.max_labels`` (expert labels = rows of the aggregate) or ``dagger.max_minutes``
   (checked from round 1 on: round 0 is always collected and trained, so every run leaves a checkpoint).

Resume: ``last.pt`` records the rounds the model has trained on; rounds already in ``aggregate/`` are loaded,
not collected again, so a kill at any point loses at most the optimizer steps of the current round. A run
killed before its first ``last.pt`` (during round 0) resumes too: ``resume=true`` then restarts it from round 0
in the same folder, reusing the rounds it collected, once ``config.json`` (the configuration the run started
with) matches outside the resumable keys. ``resume=false`` refuses any folder holding a run's start
(``last.pt``, ``config.json`` or round 0), so a run is never mixed with another one's rounds. Each round's
training reseeds from ``(seed, round)`` and restarts the ACT carry and episode streams, so a resumed run trains
and collects exactly as the unbroken run would have (a run extended to more rounds differs: the learning-rate
schedule spans ``dagger.rounds``). The round files and their manifest are :mod:`train.aggregate`'s: a resumed
run refuses a missing, truncated or altered round with a ``ValueError`` naming the file.

Outputs in ``out``: ``config.json`` (the configuration the run started with), ``last.pt`` (``train.checkpoints``
checkpoint; ``python -m train.evaluate checkpoint=...``), ``aggregate/round_NNNN.npz`` and
``aggregate/manifest.json``, ``metrics.jsonl`` and ``tensorboard/`` (phases ``train``, ``collect``, ``eval``),
``final.json`` (the last evaluation and the label count; strict JSON, NaN as null).

Demonstration export: the round files, read as whole episodes by :func:`train.aggregate.episodes` (format in
:mod:`train.aggregate`).
"""

from __future__ import annotations

from train.cli import exit_on_help

if __name__ == "__main__":  # --help answered before torch and Hydra load
    exit_on_help("dagger")

import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
import numpy as np
import torch
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

import hrm_envs  # noqa: F401  (registers the env ids)
from configs import CONFIG_DIR
from hrm_envs.encoding import encoder_for
from oracles import oracle_for
from oracles.base import Oracle
from train.aggregate import Aggregate, aggregate_rounds, dataset_round, load_round, round_path, save_round
from train.checkpoints import config_mismatches, init_weights, load_checkpoint, save_checkpoint
from train.evaluate import evaluate_policies
from train.learner import Learner
from train.metrics import MetricsLogger, strict_json, write_json
from train.rollout import OracleHorizon, SizeMixture, collect, env_fns
from train.runs import ensure_dataset, job_out, load_preset, optim_config, setup_distributed
from train.schema import DAGGER, check_config

# Config keys a resumed run may change (budgets can be extended; everything else must match).
RESUMABLE = ("out", "resume", "device", "threads", "progress", "dagger.rounds", "dagger.max_labels",
             "dagger.max_minutes", "dagger.eval_puzzles", "train.epochs", "train.eval", "train.log_every")
#: The configuration a run started with, in ``out``: checked when ``resume=true`` finds no ``last.pt``.
RUN_CONFIG = "config.json"


# ------------------------------------------------------------------------------------------------ config
def check_dagger_config(cfg: DictConfig) -> None:
    """``ValueError`` naming the key and what is allowed (:data:`train.schema.DAGGER`, then the label budget)."""
    check_config(cfg, DAGGER)
    d = cfg.dagger
    if d.init == "expert" and d.max_labels is not None and d.max_labels < d.envs:
        raise ValueError(f"dagger.max_labels must be null or >= dagger.envs ({d.envs}) with dagger.init=expert: "
                         f"round 0 collects at least one step on every sub-env, got {d.max_labels}")


def beta_for_round(beta: DictConfig, round_index: int, rounds: int) -> float:
    """Probability of executing the oracle's action in collection round ``round_index`` >= 1."""
    if beta.schedule == "constant":
        return float(beta.start)
    if beta.schedule == "linear":
        progress = (round_index - 1) / max(1, rounds - 1)
        return float(beta.start + (beta.end - beta.start) * min(1.0, progress))
    return float(beta.start * beta.decay ** (round_index - 1))


def collection_sizes(cfg: DictConfig) -> list[Any]:
    """``dagger.sizes``, or the train sizes of the env's data set preset."""
    if cfg.dagger.sizes is not None:
        sizes = OmegaConf.to_container(cfg.dagger.sizes, resolve=True)
        if not isinstance(sizes, list) or not sizes:
            raise ValueError(f"dagger.sizes must be null or a non-empty list of sizes, got {sizes!r}")
        return sizes
    preset = load_preset(OmegaConf.to_container(cfg.env, resolve=True)["preset"])
    return list(preset["splits"]["train"]["sizes"])


def curriculum(sizes: list[Any], round_index: int, curriculum_rounds: int) -> list[Any]:
    """The sizes open in a round (all of them without a curriculum)."""
    if curriculum_rounds == 0:
        return sizes
    return sizes[: max(1, math.ceil(len(sizes) * (round_index + 1) / (curriculum_rounds + 1)))]


def with_horizon(make: Callable[[], gym.Env], env_id: str, horizon: float) -> Callable[[], gym.Env]:
    """``make`` with its episodes cut at ``horizon`` x the oracle's solution (built in the sub-env's process)."""
    return lambda: OracleHorizon(make(), oracle_for(env_id), horizon)


def make_vector_env(cfg: DictConfig, sizes: list[Any]) -> gym.vector.VectorEnv:
    """``dagger.envs`` sub-envs with SAME_STEP autoreset. ``per_env``: sub-env i plays ``sizes[i % len(sizes)]``
    (as many states per size); ``per_reset``: every reset draws the size from ``[min(sizes), max(sizes)]`` (as
    many puzzles per size, so long puzzles give most states, like the step-wise data sets; one size: the same;
    named sizes: one of them, uniformly, through :class:`train.rollout.SizeMixture`)."""
    kwargs = OmegaConf.to_container(cfg.env.kwargs, resolve=True)
    if cfg.dagger.size_sampling == "per_env" or len(sizes) == 1:
        fns = env_fns(cfg.env.id, kwargs, cfg.env.size_arg, sizes, cfg.dagger.envs)
    elif all(isinstance(size, int) for size in sizes):  # the env's size argument takes an inclusive (lo, hi) range
        fns = env_fns(cfg.env.id, kwargs, cfg.env.size_arg, [[min(sizes), max(sizes)]], cfg.dagger.envs)
    else:  # named sizes (Sudoku's difficulties): one env per size, a uniform draw at every reset
        makers = env_fns(cfg.env.id, kwargs, cfg.env.size_arg, sizes, len(sizes))
        fns = [lambda: SizeMixture(makers)] * cfg.dagger.envs
    if cfg.dagger.horizon is not None:
        fns = [with_horizon(fn, cfg.env.id, cfg.dagger.horizon) for fn in fns]
    mode = cfg.dagger.vector
    if mode == "auto":
        mode = "async" if (os.cpu_count() or 1) > 2 else "sync"
    vector_cls = AsyncVectorEnv if mode == "async" else SyncVectorEnv
    return vector_cls(fns, autoreset_mode=AutoresetMode.SAME_STEP)


# ------------------------------------------------------------------------------------------------ main
def run(cfg: DictConfig) -> dict[str, Any]:
    """Run (or resume) DAgger; returns the final evaluation."""
    check_dagger_config(cfg)
    d = cfg.dagger
    device, _, _ = setup_distributed(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    started = time.monotonic()
    out = Path(cfg.out)
    config = OmegaConf.to_container(cfg, resolve=True)
    sizes = collection_sizes(cfg)
    env_kwargs = OmegaConf.to_container(cfg.env.kwargs, resolve=True)
    probe = env_fns(cfg.env.id, env_kwargs, cfg.env.size_arg, sizes[-1:], 1)[0]()
    encoder = encoder_for(probe)
    probe.close()
    oracle = oracle_for(cfg.env.id)

    # Learner: model, AdamW and schedule over every round's optimizer steps.
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    token_oracle = oracle if d.token_labels else None
    if token_oracle is not None and oracle.token_label_classes < 1:
        raise ValueError(f"dagger.token_labels=true needs an oracle with per-token labels; {type(oracle).__name__} "
                         "gives none (oracles with them: token_label_classes > 0, e.g. Hanoi's)")
    learner = Learner(config["model"], optim_config(config["train"]), encoder, device,
                      total_steps=(d.rounds + 1) * d.train_steps,
                      token_labels=oracle.token_label_classes if token_oracle is not None else 0)
    if getattr(learner.config, "front_rate", 0) and type(oracle).token_costs is Oracle.token_costs:
        raise ValueError(f"model.front_rate > 0 needs per-token costs to the goal; {type(oracle).__name__} gives none "
                         "(grid oracles do: maze, city)")
    checkpoint = out / "last.pt"
    trained_rounds = 0  # rounds 0..trained_rounds-1 are in the model
    if cfg.resume and checkpoint.is_file():
        trained_rounds, _ = load_checkpoint(checkpoint, learner, config, ignore=RESUMABLE)
        print(f"resumed from {checkpoint}: {trained_rounds} rounds trained (step {learner.step})", flush=True)
    else:
        if cfg.resume:  # killed before its first checkpoint: start again, reusing the rounds already collected
            rounds = check_restart(out, config)
            print(f"no checkpoint at {checkpoint} yet: restarting the run from round 0, reusing its {rounds} "
                  "collected round(s)", flush=True)
        elif checkpoint.exists() or (out / RUN_CONFIG).exists() or round_path(out, 0).exists():
            raise ValueError(f"out={str(out)!r} already holds a run; pass resume=true to continue it (a run killed "
                             "before its first last.pt restarts from round 0 with the rounds it collected) or choose "
                             "another out")
        write_json(out / RUN_CONFIG, config)
        if cfg.init_from:
            init_weights(cfg.init_from, learner)
            print(f"weights from {cfg.init_from}", flush=True)
    logger = MetricsLogger(out, resume_step=learner.step if cfg.resume else None)
    print(f"DAgger {cfg.model.name}: {learner.num_parameters():,} parameters on {device}; collection sizes {sizes}, "
          f"{d.envs} envs x {d.steps} steps per round", flush=True)

    stored = aggregate_rounds(out / "aggregate", adopt=True)  # ValueError naming a missing or damaged round file
    if len(stored) < trained_rounds:
        raise ValueError(f"{checkpoint} has trained on {trained_rounds} rounds but {out / 'aggregate'} holds "
                         f"{len(stored)}: round file {round_path(out, len(stored))} is missing")
    aggregate = Aggregate(encoder, token_oracle, token_costs=getattr(learner.config, "front_rate", 0) > 0)
    metrics: dict[str, Any] = {}
    round_index = 0
    while True:
        # --- budgets (checked before collecting a new round; rounds already on disk are always used)
        path = round_path(out, round_index)
        minutes = (time.monotonic() - started) / 60
        if not path.exists():
            if round_index > d.rounds or (round_index > 0 and d.max_minutes is not None and minutes >= d.max_minutes):
                break
            if d.max_labels is not None and aggregate.size >= d.max_labels:
                break

        # --- collect (or reload) round `round_index` and append it to the on-disk aggregate
        if path.exists():
            transitions, _, beta = load_round(path)
        elif round_index == 0 and d.init == "dataset":
            beta = 1.0
            transitions = dataset_round(ensure_dataset(cfg.env, 0))
            save_round(path, transitions, round_index, beta)
        else:
            beta = 1.0 if round_index == 0 else beta_for_round(d.beta, round_index, d.rounds)
            steps = d.steps
            if d.max_labels is not None:
                steps = min(steps, int(d.max_labels - aggregate.size) // d.envs)
                if steps == 0:
                    break
            envs = make_vector_env(cfg, curriculum(sizes, round_index, d.curriculum_rounds))
            tick = time.perf_counter()
            seed = int(np.random.SeedSequence([cfg.seed, round_index]).generate_state(1)[0])  # sub-env i: seed + i
            transitions = collect(envs, learner.policy(), oracle, steps, beta, seed=seed)
            envs.close()
            save_round(path, transitions, round_index, beta)
            queried = transitions.learner_action >= 0
            done = transitions.done
            logger.log(learner.step, round_index, "collect", {
                "beta": beta, "labels": len(transitions), "seconds": time.perf_counter() - tick,
                "episodes": int(done.sum()),
                "episode_success": float(transitions.success[done].mean()) if done.any() else float("nan"),
                # on-policy agreement: share of visited states where the learner's action is optimal
                "learner_optimal": float(transitions.optimal[queried, transitions.learner_action[queried]].mean())
                if queried.any() else float("nan"),
                "segments": float(transitions.segments[queried].mean()) if queried.any() else float("nan"),
            })
        aggregate.add(transitions)

        # --- retrain on the aggregate (warm start), skipped for rounds the checkpoint already holds
        if round_index >= trained_rounds:
            # A round's training depends only on the checkpoint, the aggregate and (seed, round): RNGs reseeded,
            # ACT carry and episode streams restarted, so a run resumed after a kill trains as the unbroken one.
            training_seed = int(np.random.SeedSequence([cfg.seed, round_index, 1]).generate_state(1)[0])
            torch.manual_seed(training_seed)
            generator = torch.Generator().manual_seed(training_seed)
            learner.carry = None
            aggregate.restart_streams()
            running: dict[str, float] = {}
            bar = tqdm(range(d.train_steps), desc=f"round {round_index} ({aggregate.size} labels)",
                       disable=not cfg.progress, leave=False)
            for _ in bar:
                if learner.config.episode_carry:
                    halted = None if learner.carry is None else learner.carry.halted
                    batch = aggregate.stream(cfg.train.batch_size, generator, halted,
                                             float(d.episode_restart or 0.0))
                else:
                    batch = aggregate.sample(cfg.train.batch_size, generator)
                step_metrics = learner.train_step(batch)
                for key, value in step_metrics.items():
                    running[key] = running.get(key, 0.0) + value
                if learner.step % cfg.train.log_every == 0:
                    logger.log(learner.step, round_index, "train",
                               {k: v / cfg.train.log_every for k, v in running.items()})
                    running = {}
                bar.set_postfix(loss=f"{step_metrics['loss']:.3f}")
            ood = d.eval_ood_every > 0 and round_index % d.eval_ood_every == 0
            metrics = evaluate_round(cfg, learner, sizes, aggregate.size, ood)
            metrics["minutes"] = (time.monotonic() - started) / 60
            logger.log(learner.step, round_index, "eval", metrics)
            print(round_line(round_index, metrics), flush=True)
            save_checkpoint(checkpoint, learner, config, round_index + 1)
            trained_rounds = round_index + 1
        round_index += 1
    logger.close()
    if "out_success" not in metrics:  # resumed after the last round, or no OOD evaluation in it
        metrics = {**metrics, **evaluate_round(cfg, learner, sizes, aggregate.size, ood=True)}
    final = {"rounds": trained_rounds, "labels": aggregate.size, "steps": learner.step, **metrics}
    write_json(out / "final.json", final)
    return final


def check_restart(out: Path, config: dict[str, Any]) -> int:
    """``resume=true`` in a folder without ``last.pt``: the run's ``config.json`` must match ``config`` (outside
    :data:`RESUMABLE`), so its collected rounds can be reused; returns how many there are. ``ValueError`` when
    there is no run to restart or it was of another configuration."""
    path = out / RUN_CONFIG
    rounds = len(list((out / "aggregate").glob("round_*.npz")))
    if not path.is_file():
        if rounds:
            raise ValueError(f"resume=true: {out} holds {rounds} collected round(s) but neither last.pt nor "
                             f"{RUN_CONFIG}, so the configuration that collected them cannot be checked; choose "
                             "another out")
        raise ValueError(f"resume=true but there is no checkpoint at {out / 'last.pt'} and no run started in {out}")
    try:
        saved = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is unreadable: {error}") from None
    mismatches = config_mismatches(saved, json.loads(strict_json(config)), RESUMABLE)
    if mismatches:
        raise ValueError(f"resume=true: {out} holds the start of a run of another configuration ({path}): "
                         + "; ".join(mismatches))
    return rounds


def evaluate_round(cfg: DictConfig, learner: Learner, sizes: list[Any], labels: int, ood: bool) -> dict[str, Any]:
    """Closed-loop success, TF and gap in distribution (``in_*``) and, with ``ood``, out of it (``out_*``)."""
    metrics: dict[str, Any] = {"labels": labels}
    if cfg.dagger.eval_puzzles == 0:
        return metrics
    env_kwargs = OmegaConf.to_container(cfg.env.kwargs, resolve=True)
    eval_sizes = OmegaConf.to_container(cfg.env.eval_sizes, resolve=True)
    for tag, group in (("in", sizes), ("out", eval_sizes))[: 2 if ood else 1]:
        rows = evaluate_policies({"model": learner.policy()}, cfg.env.id, group, cfg.dagger.eval_puzzles,
                                 cfg.env.size_arg, env_kwargs, seed=cfg.seed + 1,
                                 horizon=cfg.env.get("eval_horizon"))["model"]
        overall = rows.pop("all")
        metrics.update({f"{tag}_success": overall["success"], f"{tag}_tf": overall["teacher_forcing"],
                        f"{tag}_gap": overall["gap"], f"{tag}_optimality": overall["optimality_ratio"],
                        f"{tag}_segments": overall["mean_segments"]})
        metrics.update({f"{tag}_success_{size}": row["success"] for size, row in rows.items()})
    return metrics


def round_line(round_index: int, m: dict[str, Any]) -> str:
    if "in_success" not in m:
        return f"Round {round_index} labels {m['labels']}"
    line = f"Round {round_index} labels {m['labels']} | in: success {m['in_success']:.3f} TF {m['in_tf']:.3f} "
    if "out_success" in m:
        line += (f"| out: success {m['out_success']:.3f} TF {m['out_tf']:.3f} gap {m['out_gap']:.3f} "
                 f"segments {m['out_segments']:.2f} ")
    return line + f"| {m['minutes']:.1f} min"


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="dagger")
def main(cfg: DictConfig) -> None:
    try:
        job_out(cfg, RESUMABLE)
        print(strict_json(run(cfg)))
    except ValueError as error:  # bad config, data set, round file or checkpoint: a message, not a traceback
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
