"""Supervised training on the suite's data sets: step-wise (state -> optimal action set) or seq2seq.

    python -m train.supervised                                   # env=hanoi model=hrm train=default
    python -m train.supervised env=hanoi model=transformer train.epochs=5 out=runs/tf
    python -m train.supervised resume=true                       # continue a killed / interrupted run
    python -m train.supervised env=maze_hrm                      # seq2seq (HRM's Maze-Hard layout)
    torchrun --nproc_per_node=2 -m train.supervised              # DistributedDataParallel (gloo on CPU)

The task follows the data set's kind. Step-wise: every epoch prints ``Epoch k TF: x Auto: y Gap: x-y``
plus the optimality ratio and mean ACT segments: TF = share of held-out oracle states (the data set's
``env.eval_split``) where the greedy masked action is optimal; Auto = share of fresh puzzles of
``env.eval_sizes`` solved when the policy acts on its own from the start. Also logged: TF on train states,
per-size success, training loss / accuracy / ACT steps. Seq2seq: exact-sequence, per-token and q_halt
accuracy and mean ACT steps on held-out examples (city routing: also the route metrics of
``hrm_envs.city.metrics``). Outputs in ``out``: ``last.pt`` (written atomically every epoch and on
Ctrl-C), ``metrics.jsonl`` (strict JSON; a fresh run, ``resume=false`` in a folder without ``last.pt``, e.g. one
killed before its first checkpoint, starts it anew; a resumed run drops the rows after its checkpoint),
``tensorboard/``. The data set is built with ``train.datasets`` when
``env.data_dir`` is missing. Only rank 0 evaluates, logs and writes ``last.pt``; every other rank keeps its
carry and RNG in ``last.rankR.pt`` beside it, so DDP resumes are exact too (a rank whose file is of another
step, e.g. after a kill between the two saves, restarts its carry and reseeds).
"""

from __future__ import annotations

from train.cli import exit_on_help

if __name__ == "__main__":  # --help answered before torch and Hydra load
    exit_on_help("supervised")

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DistributedSampler
from tqdm import tqdm

import hrm_envs  # noqa: F401  (registers the env ids)
from agents.hrm import HRMConfig
from configs import CONFIG_DIR
from hrm_envs.encoding import Encoder, encoder_for
from oracles import oracle_for
from train.acting import ModelPolicy
from train.checkpoints import init_weights, load_checkpoint, load_rank_state, save_checkpoint, save_rank_state
from train.datasets import Seq2SeqDataset, Seq2SeqSplit, StepwiseDataset, StepwiseSplit
from train.datasets.loading import observation_space
from train.interrupts import interrupts_at_safe_points
from train.learner import Learner
from train.metrics import MetricsLogger
from train.models import check_fits, unwrap
from train.rollout import check_horizon, run_episodes, summarize
from train.runs import ensure_dataset, job_out, optim_config, setup_distributed
from train.schema import SUPERVISED, check_config
from train.seq2seq import (cost_fields, first_examples, mean_records, move_fields, reference_path_ratios, score_examples,
                           validation_groups)

# Config keys a resumed run may change (everything else must match the checkpoint).
RESUMABLE = ("out", "resume", "device", "threads", "progress", "train.epochs", "train.eval", "train.log_every",
             "train.stop_at_train_accuracy", "train.max_minutes")


# ------------------------------------------------------------------------------------------------ evaluation
def subset(count: int, total: int, rng: np.random.Generator) -> np.ndarray:
    """A fixed sorted random subset of ``count`` indices out of ``total`` (all of them if 0 or more)."""
    return np.sort(rng.choice(total, count, replace=False)) if 0 < count < total else np.arange(total)


class StepwiseEvaluator:
    """TF on fixed subsets of the train and held-out splits, and closed-loop episodes on fresh puzzles."""

    def __init__(self, cfg: DictConfig, root: Path, data: StepwiseDataset, config: HRMConfig, seed: int):
        self.batch_size = cfg.train.eval.batch_size
        self.data_encoder = data.encoder
        rng = np.random.default_rng(seed)
        self.splits = {"train": data.split, "heldout": StepwiseSplit(root, cfg.env.eval_split)}
        self.indices = {name: subset(count, self.splits[name].num_samples, rng)
                        for name, count in (("train", cfg.train.eval.train_tf_samples),
                                            ("heldout", cfg.train.eval.tf_samples))}
        self.oracle = oracle_for(cfg.env.id)
        self.horizon = check_horizon(cfg.env.get("eval_horizon"))
        self.envs, self.seeds, self.sizes = [], [], []
        for index, size in enumerate(cfg.env.eval_sizes):
            kwargs = dict(size) if isinstance(size, DictConfig) else {cfg.env.size_arg: size}
            label = ",".join(f"{k}={v}" for k, v in kwargs.items()) if isinstance(size, DictConfig) else str(size)
            streams = np.random.SeedSequence([seed, 7919, index]).generate_state(cfg.train.eval.puzzles)
            for puzzle_seed in streams:
                self.envs.append(gym.make(cfg.env.id, **OmegaConf.to_container(cfg.env.kwargs), **kwargs))
                self.seeds.append(int(puzzle_seed))
                self.sizes.append(label)
        self.env_encoder = encoder_for(self.envs[0]) if self.envs else data.encoder
        fixed_length = cfg.model.name == "mlp" or config.pos_encodings == "learned"
        if fixed_length and self.env_encoder.seq_len != config.seq_len:
            raise ValueError(f"env.kwargs give {self.env_encoder.seq_len} tokens, but model {cfg.model.name} "
                             f"(pos_encodings={config.pos_encodings}) only reads the data set's {config.seq_len}")
        if self.envs and self.envs[0].action_space.n != config.num_actions(self.env_encoder.seq_len):
            raise ValueError(f"env.kwargs give {self.envs[0].action_space.n} actions, the model's layout "
                             f"{config.num_actions(self.env_encoder.seq_len)}")

    def teacher_forcing(self, policy: ModelPolicy, name: str) -> tuple[float, float]:
        """Share of the split's chosen states where the policy's action is optimal; mean segments."""
        split, indices = self.splits[name], self.indices[name]
        hits, segments = 0, 0
        for start in range(0, len(indices), self.batch_size):
            chunk = indices[start : start + self.batch_size]
            actions, used = policy.act_batch(split.obs_batch(chunk))
            optimal = np.unpackbits(split.optimal_bits[chunk], axis=1, count=split.num_actions).astype(bool)
            hits += int(optimal[np.arange(len(chunk)), actions].sum())
            segments += int(used.sum())
        return hits / max(1, len(indices)), segments / max(1, len(indices))

    def __call__(self, model: torch.nn.Module, device: torch.device) -> dict[str, Any]:
        policy = ModelPolicy(model, self.data_encoder, device)
        tf, tf_segments = self.teacher_forcing(policy, "heldout")
        train_tf, _ = self.teacher_forcing(policy, "train")
        metrics: dict[str, Any] = {"tf": tf, "train_tf": train_tf, "tf_segments": tf_segments}
        if self.envs:
            policy = ModelPolicy(model, self.env_encoder, device)
            summary = summarize(run_episodes(policy, self.envs, self.seeds, self.sizes, self.oracle,
                                             horizon=self.horizon))
            overall = summary.pop("all")
            metrics.update(auto=overall["success"], optimality_ratio=overall["optimality_ratio"],
                           segments=overall["mean_segments"])
            metrics.update({f"auto_{size}": row["success"] for size, row in summary.items()})
        else:
            metrics.update(auto=float("nan"), optimality_ratio=float("nan"), segments=tf_segments)
        metrics["gap"] = tf - metrics["auto"]
        return metrics

    @staticmethod
    def line(epoch: int, m: dict[str, Any]) -> str:
        return (f"Epoch {epoch} TF: {m['tf']:.4f} Auto: {m['auto']:.4f} Gap: {m['gap']:.4f} | "
                f"optimality {m['optimality_ratio']:.4f} segments {m['segments']:.2f} train TF {m['train_tf']:.4f}")


class Seq2SeqEvaluator:
    """Exact-sequence, per-token and q_halt accuracy and ACT steps on the validation examples (the train split's
    held-out bases with ``seq2seq.validation_bases``, else ``env.eval_split``) and on train examples, and on the
    validation ones the env's ``label_metrics`` where its registry row has them (city routing: the cheat-exposing
    route metrics of ``hrm_envs.city.metrics``, and ``reference_path_ratio``, the optimal routes' own); a model
    with a move field is scored on the route it decodes (:func:`train.seq2seq.score_examples`, raw mask under
    ``mask_*``)."""

    def __init__(self, cfg: DictConfig, root: Path, data: Seq2SeqDataset, validation: np.ndarray | None, seed: int):
        self.batch_size = cfg.train.eval.batch_size
        self.env_id = cfg.env.id
        rng = np.random.default_rng(seed)
        self.label_keys: tuple[str, ...] = ()
        self.reference: float | None = None  # the validation routes' reference_path_ratio, computed once
        train_split = Seq2SeqSplit(root, "train", sources=True)
        if validation is None:
            heldout = Seq2SeqSplit(root, cfg.env.eval_split, sources=True)
            heldout_rows = np.arange(heldout.num_examples)
        else:
            heldout, heldout_rows = train_split, validation
        train_rows = np.arange(len(data))
        if validation is not None:  # none of the held-out groups' examples (their augmented copies included)
            train_rows = np.flatnonzero(~np.isin(data.group_of.numpy(), data.group_of.numpy()[validation]))
        self.sets = {"heldout": (heldout, heldout_rows[subset(cfg.train.eval.tf_samples, len(heldout_rows), rng)]),
                     "train": (train_split, train_rows[subset(cfg.train.eval.train_tf_samples, len(train_rows), rng)])}

    def evaluate(self, model: torch.nn.Module, device: torch.device, name: str) -> dict[str, float]:
        split, rows = self.sets[name]
        records = score_examples(model, split, rows, self.env_id, device, self.batch_size,
                                 route_metrics=name == "heldout")
        metrics = mean_records(records)
        if name == "heldout" and "path_ratio" in metrics:  # the optimal routes' own ratio, the same every epoch
            if self.reference is None:
                self.reference = float(reference_path_ratios(split, rows, self.env_id).mean())
            metrics["reference_path_ratio"] = self.reference
        if name == "heldout":
            self.label_keys = tuple(k for k in metrics if k not in ("exact", "token", "q_halt", "steps"))
        return metrics

    def __call__(self, model: torch.nn.Module, device: torch.device) -> dict[str, Any]:
        model = unwrap(model)
        metrics = self.evaluate(model, device, "heldout")
        metrics.update({f"train_{k}": v for k, v in self.evaluate(model, device, "train").items()})
        return metrics

    def line(self, epoch: int, m: dict[str, Any]) -> str:
        """The epoch's line: the sequence metrics, then the env's label metrics (e.g. city routes) if any."""
        text = (f"Epoch {epoch} Exact: {m['exact']:.4f} Token: {m['token']:.4f} QHalt: {m['q_halt']:.4f} "
                f"Steps: {m['steps']:.2f} | train exact {m['train_exact']:.4f}")
        measured = [key for key in self.label_keys if key in m]
        if measured:
            text += " | " + " ".join(f"{k} {m[k]:.4f}" for k in measured)
        return text


# ------------------------------------------------------------------------------------------------ main
def load_task(cfg: DictConfig, root: Path, rank: int, world: int) -> tuple[Any, Encoder, str, tuple[str, ...], Any,
                                                                         np.ndarray | None]:
    """Training data, encoder, model task, batch keys, a per-epoch ``order(epoch)`` of this rank's rows and the
    validation rows held out of a seq2seq train split (``seq2seq.validation_bases``; None: none held out).
    ``seq2seq.field=true`` adds the oracle's move field of every example as the batch key ``field``, ``seq2seq.cost=true``
    its cost to the goal as ``cost`` (one more per-token channel)."""
    kind = json.loads((root / "summary.json").read_text())["kind"]
    if kind == "stepwise":
        if cfg.seq2seq.field or cfg.seq2seq.cost or cfg.seq2seq.validation_bases:
            raise ValueError(f"seq2seq.field, seq2seq.cost and seq2seq.validation_bases apply to seq2seq data sets; "
                             f"{root} is step-wise")
        data = StepwiseDataset(root, "train")
        sampler = DistributedSampler(range(len(data)), num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed,
                                     drop_last=True)

        def order(epoch: int) -> torch.Tensor:
            sampler.set_epoch(epoch)
            return torch.tensor(list(sampler))

        return data, data.encoder, "policy", ("tokens", "optimal", "action_mask"), order, None
    data = Seq2SeqDataset(root, "train")
    encoder = encoder_for(data.split.summary["env"], observation_space(data.split.summary))
    keys: tuple[str, ...] = ("tokens", "labels")
    validation, kept = None, None
    if cfg.seq2seq.cost and not cfg.seq2seq.field:
        raise ValueError("seq2seq.cost=true regresses the cost to the goal beside the move field: it needs seq2seq.field=true")
    if cfg.seq2seq.validation_bases or cfg.seq2seq.field:
        sources = Seq2SeqSplit(root, "train", sources=True)
        if cfg.seq2seq.validation_bases:
            held = validation_groups(sources, "train", int(cfg.seq2seq.validation_bases))
            validation, kept = first_examples(sources, held), np.flatnonzero(~held)
        if cfg.seq2seq.field:
            data.field = torch.from_numpy(move_fields(sources, data.split.summary["env"]))
            keys += ("field",)
        if cfg.seq2seq.cost:
            data.cost = torch.from_numpy(cost_fields(sources, data.split.summary["env"]))
            keys += ("cost",)
    groups = data.group_sampler(cfg.seed, kept)

    def order(epoch: int) -> torch.Tensor:  # HRM's sampling (one example per group), sharded over ranks
        groups.epoch = epoch
        rows = torch.tensor(list(groups))
        return rows[: len(rows) // world * world][rank::world]

    return data, encoder, "tokens", keys, order, validation


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run (or resume) one supervised training run; returns the last evaluation metrics."""
    check_config(cfg, SUPERVISED)
    device, rank, world = setup_distributed(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    config = OmegaConf.to_container(cfg, resolve=True)
    config["world_size"] = world
    if cfg.train.batch_size % world:
        raise ValueError(f"train.batch_size ({cfg.train.batch_size}) must be divisible by the {world} processes")

    # Data (built if missing): the training split, its encoder and this rank's order of rows per epoch.
    root = ensure_dataset(cfg.env, rank)
    data, encoder, task, keys, order, validation = load_task(cfg, root, rank, world)
    per_rank_batch = cfg.train.batch_size // world
    steps_per_epoch = len(order(0)) // per_rank_batch
    if steps_per_epoch == 0:
        raise ValueError(f"train.batch_size={cfg.train.batch_size} exceeds the {len(order(0)) * world} training "
                         f"samples per epoch of {root}")

    # Model, optimizer, schedule; the data set must fit the model.
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    learner = Learner(config["model"], optim_config(config["train"]), encoder, device, total_steps=cfg.train.epochs * steps_per_epoch,
                      task=task, distributed=world > 1, field_moves=int(data.field.shape[-1]) + ("cost" in keys) if "field" in keys else 0)
    if learner.config.episode_carry:
        raise ValueError("model.episode_carry=true trains on whole episodes in order: train.dagger does that, "
                         "train.supervised draws single states")
    check_fits(learner.config, num_actions=getattr(data.split, "num_actions", None), seq_len=data.tokens.shape[1],
               vocab=int(max(data.tokens.max(), data.labels.max() if task == "tokens" else 0)) + 1,
               where=f"data set {root}")
    evaluator = None
    if rank == 0:
        evaluator = (StepwiseEvaluator(cfg, root, data, learner.config, cfg.seed) if task == "policy"
                     else Seq2SeqEvaluator(cfg, root, data, validation, cfg.seed))

    # Resume or start fresh.
    start_epoch, skip = 0, 0
    checkpoint = out / "last.pt"
    if cfg.resume:
        if not checkpoint.is_file():
            raise ValueError(f"resume=true but there is no checkpoint at {checkpoint}")
        start_epoch, skip = load_checkpoint(checkpoint, learner, config, ignore=RESUMABLE)
        if rank > 0 and not load_rank_state(checkpoint, learner, rank):  # no file of this step: restart carry, reseed
            learner.carry = None
            torch.manual_seed(cfg.seed + 1000 * rank + learner.step)
        if rank == 0:
            print(f"resumed from {checkpoint} at epoch {start_epoch + 1} batch {skip} (step {learner.step})", flush=True)
    elif checkpoint.exists():
        raise ValueError(f"out={str(out)!r} already holds a run ({checkpoint}); pass resume=true or choose another out")
    else:
        torch.manual_seed(cfg.seed + 1000 * rank)
        if cfg.init_from:
            init_weights(cfg.init_from, learner)
    # A fresh run starts a new metrics.jsonl (an earlier run killed before its first last.pt left rows there).
    logger = MetricsLogger(out, enabled=rank == 0, resume_step=learner.step if cfg.resume else None)
    if rank == 0:
        print(f"{cfg.model.name}: {learner.num_parameters():,} parameters; {len(order(0)) * world} training samples per epoch "
              f"({task} task), {steps_per_epoch} steps/epoch x {cfg.train.epochs} epochs on {device} x {world}",
              flush=True)

    # Train: one optimizer step per batch (one ACT segment for HRM); evaluate, log and checkpoint per epoch.
    metrics: dict[str, Any] = {}
    epoch, batch_index, started = start_epoch, skip, time.perf_counter()
    with interrupts_at_safe_points() as ctrl_c:
        try:
            for epoch in range(start_epoch, cfg.train.epochs):
                rows_of_epoch = order(epoch)
                running: dict[str, float] = {}
                bar = tqdm(total=steps_per_epoch, initial=skip, desc=f"epoch {epoch + 1}", leave=False,
                           disable=not (cfg.progress and rank == 0))
                epoch_start = time.perf_counter()
                for batch_index in range(skip, steps_per_epoch):
                    if on_any_rank(ctrl_c.is_set(), device, world):  # saved batch_index = first batch not trained
                        raise KeyboardInterrupt
                    rows = rows_of_epoch[batch_index * per_rank_batch : (batch_index + 1) * per_rank_batch]
                    step_metrics = learner.train_step({key: getattr(data, key)[rows] for key in keys})
                    for key, value in step_metrics.items():
                        running[key] = running.get(key, 0.0) + value
                    if learner.step % cfg.train.log_every == 0:
                        logger.log(learner.step, epoch + 1, "train", {k: v / cfg.train.log_every for k, v in running.items()})
                        running = {}
                    bar.update(1)
                    bar.set_postfix(loss=f"{step_metrics['loss']:.3f}", acc=f"{step_metrics['exact_accuracy']:.3f}")
                bar.close()
                samples_per_s = (steps_per_epoch - skip) * cfg.train.batch_size / (time.perf_counter() - epoch_start)
                batch_index, skip = steps_per_epoch, 0
                if evaluator is not None:
                    metrics = evaluator(learner.eval_module, device)
                    metrics.update(samples_per_s=samples_per_s, elapsed_s=time.perf_counter() - started)
                    print(evaluator.line(epoch + 1, metrics), flush=True)
                    logger.log(learner.step, epoch + 1, "eval", metrics)
                    save_checkpoint(checkpoint, learner, config, epoch + 1, 0)
                else:
                    save_rank_state(checkpoint, learner, rank)
                budget = cfg.train.get("max_minutes")
                if budget is not None and on_any_rank(time.perf_counter() - started > 60 * budget, device, world):
                    if rank == 0:
                        print(f"train.max_minutes={budget} spent: stopping after epoch {epoch + 1} "
                              f"({time.perf_counter() - started:.0f} s)", flush=True)
                    break
                if reached(cfg.train.stop_at_train_accuracy, metrics, device, world):
                    if rank == 0:
                        print(f"train accuracy reached train.stop_at_train_accuracy={cfg.train.stop_at_train_accuracy}: "
                              f"stopping after epoch {epoch + 1} ({metrics['elapsed_s']:.0f} s)", flush=True)
                    break
        except KeyboardInterrupt:
            if rank > 0:
                save_rank_state(checkpoint, learner, rank)
            else:
                save_checkpoint(checkpoint, learner, config, epoch, batch_index)
                print(f"\ninterrupted: saved {checkpoint} at epoch {epoch + 1} batch {batch_index} (step {learner.step}); "
                      f"continue with resume=true", flush=True)
            raise
        finally:
            logger.close()
            if dist.is_initialized():
                dist.destroy_process_group()
    return metrics


def on_any_rank(flag: bool, device: torch.device, world: int) -> bool:
    """Whether ``flag`` holds on any rank, so that every rank stops at the same batch."""
    if world == 1:
        return flag
    agreed = torch.tensor([int(flag)], device=device)
    dist.all_reduce(agreed, op=dist.ReduceOp.MAX)
    return bool(agreed.item())


def reached(target: float | None, metrics: dict[str, Any], device: torch.device, world: int) -> bool:
    """Whether rank 0's train accuracy (TF, or exact for seq2seq) reached ``target``; agreed by every rank."""
    accuracy = metrics.get("train_tf", metrics.get("train_exact", 0.0))
    flag = torch.tensor([target is not None and bool(metrics) and accuracy >= target], device=device)
    if world > 1:
        dist.broadcast(flag, 0)  # also keeps the ranks in step while rank 0 evaluates
    return bool(flag.item())


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="supervised")
def main(cfg: DictConfig) -> None:
    code = 0
    try:
        job_out(cfg, RESUMABLE)
        train(cfg)
    except ValueError as error:  # bad config, data set or checkpoint: a clear message, not a traceback
        print(f"error: {error}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    finally:  # also after an error before training began
        if dist.is_initialized():
            dist.destroy_process_group()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun, skip interpreter finalization: the gloo process group outlives destroy_process_group,
        # and a worker thread still freeing the last collective's tensors takes the GIL while the interpreter
        # shuts down, which aborts the process ("terminate called without an active exception") in ~5% of runs.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
