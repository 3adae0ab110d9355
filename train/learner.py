"""Shared training machinery of ``train.supervised`` and ``train.dagger``: models, acting, steps, checkpoints, logs.

Models (sized from an env's :class:`hrm_envs.encoding.Encoder`; the policy head is size-independent, so a
model built on the env's ``max_*`` layout acts on any size with rotary positions):

- ``MODEL_KINDS``: ``hrm``, ``trm`` (HRM with ``variant="trm"``), ``mlp``, ``lstm``, ``transformer``, ``gnn``.
- ``model_config(model_cfg, encoder, task="policy") -> HRMConfig``: ``model_cfg`` is a mapping with ``name``
  (a kind), HRMConfig fields (null = the field's default) other than the ones the encoder fixes (``vocab_size``, ``seq_len``,
  ``per_token_actions``, ``global_actions``, ``token_vocab``) and, for mlp / lstm / gnn, ``depth``.
  ``task="tokens"`` builds a token head of ``encoder.seq2seq_vocab_size`` instead of the policy head.
- ``build_model(model_cfg, config) -> nn.Module``; ``is_act(model)`` tells HRM/TRM (ACT, carry) from baselines.
  The GNN reads a fixed token graph (``token_adjacency``): the 4-neighbour grid when the tokens are a square
  grid (maze, city, sudoku), else the complete graph (Hanoi's disks).
- ``check_fits(config, num_actions=..., vocab=..., seq_len=...)``: ``ValueError`` naming what does not fit.

Acting: ``ModelPolicy(model, encoder, device)`` implements ``train.rollout.Policy``: ``act_batch(obs, episodes)
-> (actions, segments)`` = masked argmax of the policy logits after ACT halting (HRM: Q-head or
``halt_max_steps``; baselines: one segment). An HRM with ``episode_carry`` ``remembers``: it resumes each row
from the latent state its episode (an id in ``episodes``) ended the previous decision in.

Training: ``Learner(model_cfg, optim_cfg, encoder, device, total_steps, task="policy", distributed=False,
token_labels=0)`` (``token_labels > 0``: a token head for an oracle's per-token labels beside the policy head)
owns the model (``learner.module``; ``learner.model`` is it wrapped in ``DistributedDataParallel`` when
``distributed``), ``learner.config`` (HRMConfig), AdamW, a warmup + constant/cosine schedule over
``total_steps``, the HRM carry and ``learner.step``; ``learner.policy()`` is its :class:`ModelPolicy`.
``Learner.train_step(batch) -> dict[str, float]`` runs one optimizer step on a batch of ``tokens`` /
``optimal`` / ``action_mask`` (policy task, plus ``labels`` with ``token_labels``) or ``tokens`` / ``labels``
(token task): for HRM one ACT segment with the carry kept across steps (deep supervision; halted rows take the
batch's rows) and :func:`agents.hrm.act_loss` (set loss + 0.5 * Q losses); for baselines :func:`agents.baselines.baseline_loss`.
The set loss is ``-log sum_{a optimal} p(a)`` over legal actions. A non-finite loss or gradient norm raises
:class:`DivergedError` (a ``ValueError``) naming the step. ``optim_cfg`` keys (``train.schema.OPTIM``): ``lr``,
``weight_decay``, ``betas``, ``warmup_steps``, ``schedule`` (``constant`` | ``cosine``), ``lr_min_ratio``,
``grad_clip``, ``ema`` (null, or the decay of an exponential moving average of the weights, as TRM:
``learner.eval_module``, which acts, is evaluated and is what ``load_policy`` returns).

Checkpoints: ``save_checkpoint(path, learner, config, epoch, batch_in_epoch)`` writes model, optimizer,
schedule, HRM carry, RNG states (python, numpy, torch, cuda), step, epoch and the run's config atomically
(temporary file + rename), as tensors and plain data only. Every reader loads with ``weights_only=True``: a
file that needs other pickled objects (which could run any code on loading) is refused with a ``ValueError``.
``load_checkpoint(path, learner, config, ignore)`` restores them and returns ``(epoch, batch_in_epoch)``; a
checkpoint whose config differs (outside the ``ignore``d dotted keys) raises ``ValueError`` naming every
mismatching key with both values (a key missing from an older config equals null).
``save_rank_state`` / ``load_rank_state`` keep a DDP rank > 0's carry and RNG beside it (``last.rank1.pt``).
``checkpoint_config(path)`` reads only the config; ``load_policy(path, encoder, device)`` rebuilds the model alone
as a :class:`ModelPolicy` (``train.evaluate``); ``on_grid`` lets a ``rope2d`` grid model act on the evaluation
env's grid width (trained on mazes padded to 15, tested on 31).

Logging: ``MetricsLogger(out_dir, enabled, resume_step)`` writes TensorBoard scalars and ``metrics.jsonl`` rows
``{"step", "epoch", "phase", <metrics>}``; disabled loggers (DDP ranks > 0) do nothing. A fresh run
(``resume_step=None``) starts a new log; a resumed one drops rows and TensorBoard events after its checkpoint's
step. Every JSON a run writes is strict (``strict_json`` / ``write_json``: NaN and infinities as ``null``).
``interrupts_at_safe_points()`` defers the first Ctrl-C to an event the training loop polls between batches.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import random
import signal
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.baselines import (BaselineConfig, GNNBaseline, LSTMBaseline, MLPBaseline, TransformerBaseline,
                              baseline_loss)
from agents.hrm import ACTING_FIELDS, HRM, HRMCarry, HRMConfig, act_loss
from hrm_envs.encoding import Encoder, acting_tokens, grid_width
from train.schema import OPTIM, check_config

MODEL_KINDS = ("hrm", "trm", "mlp", "lstm", "transformer", "gnn")
TASKS = ("policy", "tokens")
ENCODER_FIXED = ("vocab_size", "seq_len", "per_token_actions", "global_actions", "token_vocab", "acting_tokens")
DEPTH_KINDS = ("mlp", "lstm", "gnn")
MODEL_KEYS = ("tokens", "optimal", "action_mask", "labels", "puzzle_identifiers", "continues")


# ------------------------------------------------------------------------------------------------ models
def model_config(model_cfg: Mapping[str, Any], encoder: Encoder, task: str = "policy",
                 token_labels: int = 0) -> HRMConfig:
    """The HRMConfig of ``model_cfg`` on the encoder's vocabulary, length and action layout.

    ``token_labels > 0`` (policy task) adds a token head of that many classes for an oracle's per-token labels
    (:meth:`oracles.base.Oracle.token_labels`), trained beside the policy head."""
    kind = model_cfg.get("name")
    if kind not in MODEL_KINDS:
        raise ValueError(f"model.name must be one of {MODEL_KINDS}, got {kind!r}")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    fields = {k: v for k, v in model_cfg.items() if k not in ("name", "depth") and v is not None}  # null: default
    if "depth" in model_cfg and kind not in DEPTH_KINDS:
        raise ValueError(f"model.depth applies to {DEPTH_KINDS} only, not to model.name={kind!r}")
    fixed = sorted(set(ENCODER_FIXED) & set(fields))
    if fixed:
        raise ValueError(f"model config must not set {fixed}: the env's encoder fixes them")
    if "variant" in fields:
        raise ValueError("model.variant is set by model.name: 'hrm' or 'trm' (the recursive variant)")
    if kind == "trm":
        fields["variant"] = "trm"
    layout = {"vocab_size": int(encoder.vocab_size), "seq_len": int(encoder.seq_len)}
    if isinstance(token_labels, bool) or not isinstance(token_labels, int) or token_labels < 0:
        raise ValueError(f"token_labels must be a non-negative int, got {token_labels!r}")
    if token_labels and task != "policy":
        raise ValueError("token_labels (auxiliary per-token labels) apply to task='policy' only")
    if task == "policy":
        layout.update(per_token_actions=int(encoder.per_token_actions), global_actions=int(encoder.global_actions),
                      token_vocab=token_labels, acting_tokens=acting_tokens(encoder))
    else:
        vocab = getattr(encoder, "seq2seq_vocab_size", None)
        if vocab is None:
            raise ValueError(f"task='tokens' needs an encoder with seq2seq_vocab_size; {type(encoder).__name__} has none")
        layout.update(vocab_size=max(int(encoder.vocab_size), int(vocab)), token_vocab=int(vocab))
    base = HRMConfig(**layout)  # validates the layout; the fields below are validated by with_()
    return base.with_(**fields)


def token_adjacency(length: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The GNN's token graph (1, T, T): 4-neighbour grid if ``T`` is a square > 1, else complete (no self loops)."""
    side = math.isqrt(length)
    if side > 1 and side * side == length:
        rows, cols = torch.arange(length, device=device) // side, torch.arange(length, device=device) % side
        distance = (rows[:, None] - rows[None]).abs() + (cols[:, None] - cols[None]).abs()
        return (distance == 1).float().unsqueeze(0)
    return (1.0 - torch.eye(length, device=device)).unsqueeze(0)


class TokenGNN(GNNBaseline):
    """:class:`GNNBaseline` on :func:`token_adjacency` (so batches need only ``tokens``)."""

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        length = batch["tokens"].shape[1]
        return super().features({**batch, "adjacency": token_adjacency(length, batch["tokens"].device)})


def build_model(model_cfg: Mapping[str, Any], config: HRMConfig) -> nn.Module:
    """The model of ``model_cfg["name"]`` with ``config``; a baseline reads the :class:`BaselineConfig` fields of
    it, ``model_cfg["depth"]`` (mlp / lstm / gnn) or, for the transformer, ``H_layers + L_layers`` blocks."""
    kind = model_cfg["name"]
    if kind in ("hrm", "trm"):
        return HRM(config)
    baselines = {"mlp": MLPBaseline, "lstm": LSTMBaseline, "transformer": TransformerBaseline, "gnn": TokenGNN}
    if kind not in baselines:
        raise ValueError(f"model.name must be one of {MODEL_KINDS}, got {kind!r}")
    depth = config.H_layers + config.L_layers if kind == "transformer" else model_cfg.get("depth")
    return baselines[kind](BaselineConfig.of(vars(config), None if depth is None else int(depth)))


def is_act(model: nn.Module) -> bool:
    """True for HRM / TRM (ACT segments with a carry), False for the one-shot baselines."""
    return isinstance(unwrap(model), HRM)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def check_fits(config: HRMConfig, num_actions: int | None = None, vocab: int | None = None, seq_len: int | None = None,
               where: str = "data set") -> None:
    """``ValueError`` if a data set's action count, largest token + 1 or length does not fit the model."""
    if seq_len is not None and seq_len != config.seq_len:
        raise ValueError(f"{where} has seq_len {seq_len}, the model was built for seq_len {config.seq_len}")
    if vocab is not None and vocab > config.vocab_size:
        raise ValueError(f"{where} has token ids up to {vocab - 1}, the model's vocab_size is {config.vocab_size}")
    if num_actions is not None and config.has_policy_head and num_actions != config.num_actions():
        raise ValueError(f"{where} has {num_actions} actions, the model's action layout has {config.num_actions()}")


# ------------------------------------------------------------------------------------------------ acting
class ModelPolicy:
    """``train.rollout.Policy`` of a model: tokens -> ACT until halted -> masked argmax; segments used.

    ``remembers`` (an HRM with ``episode_carry``): each row resumes from the latent state its episode ended the
    previous decision in (rows are matched by the ids of ``episodes``; an id not seen in the previous call
    starts an episode, ids absent from a call are forgotten); without ``episodes`` every row starts one.
    """

    def __init__(self, model: nn.Module, encoder: Encoder, device: torch.device | str = "cpu"):
        self.model, self.encoder, self.device = unwrap(model), encoder, torch.device(device)
        self.remembers = is_act(self.model) and self.model.config.episode_carry
        self._memory: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def logits(self, obs: Mapping[str, np.ndarray], episodes: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked policy logits (illegal = -inf) and segments used, for a batch of observations."""
        tokens = torch.as_tensor(self.encoder.tokens(obs), dtype=torch.long, device=self.device)
        keys = self._episode_keys(episodes, len(tokens))
        was_training = self.model.training
        self.model.eval()
        try:
            start = self._start(tokens, keys)
            out = self.model.predict({"tokens": tokens}, **({} if start is None else {"start": start}))
        finally:
            self.model.train(was_training)
        if keys is not None:
            self._memory = {key: (out["z_H"][row], out["z_L"][row]) for row, key in enumerate(keys)}
        legal = torch.as_tensor(np.asarray(obs["action_mask"]), device=self.device).bool()
        if legal.shape != out["policy_logits"].shape:
            raise ValueError(f"action_mask has shape {tuple(legal.shape)}, the model gives logits of shape "
                             f"{tuple(out['policy_logits'].shape)}")
        return out["policy_logits"].float().masked_fill(~legal, float("-inf")), out["segments"]

    def act_batch(self, obs: Mapping[str, np.ndarray], episodes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        logits, segments = self.logits(obs, episodes)
        return logits.argmax(-1).cpu().numpy(), segments.cpu().numpy()

    def _episode_keys(self, episodes: np.ndarray | None, rows: int) -> list[int] | None:
        if not self.remembers or episodes is None:
            return None
        keys = [int(e) for e in np.asarray(episodes).reshape(-1)]
        if len(keys) != rows or len(set(keys)) != rows:
            raise ValueError(f"episodes must hold one distinct id per observation row ({rows}), got {keys[:8]}...")
        return keys

    def _start(self, tokens: torch.Tensor, keys: list[int] | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The rows' remembered latent states (fresh ones for new episodes), or None when nothing is remembered."""
        if keys is None or not any(key in self._memory for key in keys):
            return None
        carry = self.model.initial_carry({"tokens": tokens})
        for row, key in enumerate(keys):
            if key in self._memory:
                carry.z_H[row], carry.z_L[row] = self._memory[key]
        return carry.z_H, carry.z_L


# ------------------------------------------------------------------------------------------------ training
def _check_optim(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The optimizer settings with their defaults; ``ValueError`` naming a ``train.*`` key the schema refuses."""
    out = {"lr": 1e-3, "weight_decay": 0.1, "betas": (0.9, 0.95), "warmup_steps": 0, "schedule": "constant",
           "lr_min_ratio": 1.0, "grad_clip": 1.0, "ema": None, **cfg}
    check_config({"train": out}, OPTIM)
    return out


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: str, lr_min_ratio: float) -> float:
    """Linear warmup to 1, then constant or cosine decay to ``lr_min_ratio`` at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return lr_min_ratio + (1 - lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class DivergedError(FloatingPointError, ValueError):
    """Training produced a non-finite loss or gradient; a ``ValueError``, so the entry points report it and exit
    non-zero."""


class Learner:
    """Model, optimizer, schedule, HRM carry and step counter (see the module docstring)."""

    def __init__(self, model_cfg: Mapping[str, Any], optim_cfg: Mapping[str, Any], encoder: Encoder,
                 device: torch.device | str = "cpu", total_steps: int = 1, task: str = "policy",
                 distributed: bool = False, token_labels: int = 0):
        self.device = torch.device(device)
        self.model_cfg = dict(model_cfg)
        self.encoder = encoder
        self.config = model_config(model_cfg, encoder, task, token_labels)
        optim = _check_optim(dict(optim_cfg))
        if self.config.episode_carry and model_cfg.get("name") not in ("hrm", "trm"):
            raise ValueError(f"model.episode_carry applies to hrm / trm, not to model.name={model_cfg.get('name')!r}")
        self.module = build_model(model_cfg, self.config).to(self.device)
        self.model: nn.Module = self.module
        if distributed:
            self.model = nn.parallel.DistributedDataParallel(
                self.module, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.optimizer = torch.optim.AdamW(self.module.parameters(), lr=float(optim["lr"]),
                                           betas=tuple(float(b) for b in optim["betas"]),
                                           weight_decay=float(optim["weight_decay"]))
        args = (int(optim["warmup_steps"]), int(total_steps), optim["schedule"], float(optim["lr_min_ratio"]))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, *args))
        self.grad_clip = optim["grad_clip"]
        #: Exponential moving average of the weights (TRM's evaluation weights), or None.
        self.ema = None if optim["ema"] is None else torch.optim.swa_utils.AveragedModel(
            self.module, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(float(optim["ema"])))
        self.carry: HRMCarry | None = None
        self.step = 0

    @property
    def eval_module(self) -> nn.Module:
        """The weights to evaluate and act with: the EMA copy when ``train.ema`` is set, else the model."""
        return self.module if self.ema is None else self.ema.module

    def policy(self) -> ModelPolicy:
        return ModelPolicy(self.eval_module, self.encoder, self.device)

    def train_step(self, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """One optimizer step (one ACT segment for HRM); returns the loss and training metrics."""
        data = {k: v.to(self.device, non_blocking=True) for k, v in batch.items() if k in MODEL_KEYS}
        self.model.train()
        if is_act(self.module):
            if self.carry is None or self.carry.halted.shape[0] != data["tokens"].shape[0]:
                self.carry = self.module.initial_carry(data)
            self.carry, out = self.model(self.carry, data)
            loss, metrics = act_loss(out, self.carry.data, self.config)
        else:
            out = self.model(data)
            loss, metrics = baseline_loss(out, data, self.module.config)
        if not torch.isfinite(loss):  # one check per step: NaN / inf weights give a non-finite loss at once
            raise DivergedError(f"training diverged at step {self.step + 1}: the loss is {float(loss.detach())} "
                                "(non-finite weights or inputs); lower train.lr or raise train.warmup_steps")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip is not None:
            metrics["grad_norm"] = nn.utils.clip_grad_norm_(self.module.parameters(), float(self.grad_clip))
            if not torch.isfinite(metrics["grad_norm"]):  # computed anyway: keep a non-finite step off the weights
                raise DivergedError(f"training diverged at step {self.step + 1}: the gradient norm is "
                                    f"{float(metrics['grad_norm'])}; lower train.lr or raise train.warmup_steps")
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.module)
        self.scheduler.step()
        self.step += 1
        result = {k: float(v) for k, v in metrics.items()}
        result.update(loss=float(loss.detach()), lr=self.scheduler.get_last_lr()[0])
        return result

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())


# ------------------------------------------------------------------------------------------------ checkpoints
def rng_state() -> dict[str, Any]:
    """The python, numpy, torch (and CUDA) RNG states as tensors and plain lists / numbers, which
    ``torch.load(weights_only=True)`` reads (numpy's key array becomes a list of ints)."""
    version, internal, gauss = random.getstate()
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {"python": [version, list(internal), gauss],
             "numpy": [name, keys.tolist(), int(position), int(has_gauss), float(cached)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore :func:`rng_state` (also the tuple / numpy-array form of older checkpoints)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def config_mismatches(saved: Mapping[str, Any], current: Mapping[str, Any], ignore: Iterable[str] = ()) -> list[str]:
    """``key: saved -> current`` for every dotted key that differs (keys under an ``ignore`` prefix skipped).
    A key missing on one side equals null on the other: options added later default to null, the old behaviour."""
    ignore = tuple(ignore)
    a, b = _flatten(saved), _flatten(current)
    out = []
    for key in sorted(set(a) | set(b)):
        if any(key == i or key.startswith(i + ".") for i in ignore):
            continue
        if a.get(key) != b.get(key):
            out.append(f"{key}: checkpoint {a.get(key, '<missing>')!r}, now {b.get(key, '<missing>')!r}")
    return out


def save_checkpoint(path: str | Path, learner: Learner, config: Mapping[str, Any], epoch: int,
                    batch_in_epoch: int = 0) -> None:
    """Write the whole training state atomically (temporary file in the same folder, then rename)."""
    state = {
        "model": learner.module.state_dict(), "ema": None if learner.ema is None else learner.ema.state_dict(),
        "optimizer": learner.optimizer.state_dict(),
        "scheduler": learner.scheduler.state_dict(), "carry": _carry_state(learner), "rng": rng_state(),
        "step": learner.step, "epoch": epoch, "batch_in_epoch": batch_in_epoch, "config": json.loads(json.dumps(config)),
        "model_config": dict(learner.model_cfg), "hrm_config": vars(learner.config).copy(),
    }
    _atomic_save(state, Path(path))


def rank_state_path(path: str | Path, rank: int) -> Path:
    """Where DDP rank ``rank`` > 0 keeps its part of the checkpoint at ``path`` (``last.pt`` -> ``last.rank1.pt``)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


def save_rank_state(path: str | Path, learner: Learner, rank: int) -> None:
    """What a DDP rank > 0 needs beyond rank 0's checkpoint for an exact resume: its carry and RNG, atomically."""
    _atomic_save({"step": learner.step, "carry": _carry_state(learner), "rng": rng_state()}, rank_state_path(path, rank))


def load_rank_state(path: str | Path, learner: Learner, rank: int) -> bool:
    """Restore rank ``rank``'s carry and RNG if its file matches the step ``learner`` was restored to."""
    rank_path = rank_state_path(path, rank)
    if not rank_path.is_file():
        return False
    state = _read(rank_path)
    if state["step"] != learner.step:  # killed between rank 0's save and this rank's
        return False
    _set_carry(learner, state["carry"])
    set_rng_state(state["rng"])
    return True


def _carry_state(learner: Learner) -> dict[str, Any] | None:
    if learner.carry is None:
        return None
    c = learner.carry
    return {"z_H": c.z_H.cpu(), "z_L": c.z_L.cpu(), "steps": c.steps.cpu(), "halted": c.halted.cpu(),
            "data": {k: v.cpu() for k, v in c.data.items()}}


def _set_carry(learner: Learner, carry: dict[str, Any] | None) -> None:
    learner.carry = None
    if carry is not None:
        tensors = {k: v.to(learner.device) for k, v in carry.items() if k != "data"}
        learner.carry = HRMCarry(**tensors, data={k: v.to(learner.device) for k, v in carry["data"].items()})


def _atomic_save(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: a kill leaves the old file or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


_reconstruct = np.zeros(0).__reduce__()[0]  # numpy's array rebuilder (numpy._core or numpy.core.multiarray)
#: What checkpoints written before the RNG state became plain lists hold beyond tensors and plain data: numpy's
#: uint32 RNG key array (rebuilding a numpy array runs no code of the file's choosing; numpy 1 named the
#: rebuilder numpy.core.multiarray._reconstruct).
LEGACY_GLOBALS = [np.ndarray, np.dtype, type(np.dtype(np.uint32)), _reconstruct,
                  (_reconstruct, "numpy.core.multiarray._reconstruct")]


def _read(path: str | Path) -> dict[str, Any]:
    """A checkpoint's contents, read with ``weights_only=True``: tensors and plain data only.

    Unpickling arbitrary objects can run any code a file carries, so a checkpoint that needs other Python
    objects (any global beyond :data:`LEGACY_GLOBALS`) is refused with a ``ValueError`` naming them."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    try:
        with torch.serialization.safe_globals(LEGACY_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = _unsafe_globals(path)
        if not unsafe:
            raise ValueError(f"checkpoint {path} is unreadable or truncated: {error}") from None
        raise ValueError(f"checkpoint {path} holds pickled Python objects ({', '.join(unsafe)}), not only tensors "
                         "and plain data: refused, because unpickling them would run whatever code the file "
                         "carries. train.learner checkpoints hold none; load only checkpoints written by "
                         "train.supervised / train.dagger") from None
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ValueError(f"checkpoint {path} is unreadable or truncated: {error}") from None


def _unsafe_globals(path: Path) -> list[str]:
    """The globals a pickled checkpoint names beyond the allowed ones (read without unpickling; [] if unreadable)."""
    allowed = {entry[1] if isinstance(entry, tuple) else f"{entry.__module__}.{entry.__qualname__}"
               for entry in LEGACY_GLOBALS}
    try:
        return [name for name in torch.serialization.get_unsafe_globals_in_checkpoint(path) if name not in allowed]
    except Exception:  # noqa: BLE001 - not a readable pickle at all
        return []


def checkpoint_config(path: str | Path) -> dict[str, Any]:
    """The run config stored in a checkpoint."""
    return _read(path)["config"]


POLICY_KEYS = ("model", "ema", "config", "model_config", "hrm_config")


def save_policy(path: str | Path, out: str | Path) -> None:
    """Write what acting needs of checkpoint ``path`` (weights, EMA weights, configs) to ``out`` atomically: a
    released policy (``pretrained/``), without the optimizer, RNG and carry state that only resuming needs.
    ``load_policy``, ``checkpoint_config`` and ``init_from`` read it like the full checkpoint."""
    state = _read(path)
    _atomic_save({key: state[key] for key in POLICY_KEYS}, Path(out))


def load_checkpoint(path: str | Path, learner: Learner, config: Mapping[str, Any],
                    ignore: Iterable[str] = ()) -> tuple[int, int]:
    """Restore ``learner`` and the RNGs; ``(epoch, batch_in_epoch)`` to continue from. Refuses other configs."""
    state = _read(path)
    mismatches = config_mismatches(state["config"], json.loads(json.dumps(config)), ignore)
    if mismatches:
        raise ValueError(f"checkpoint {path} was written by another configuration: " + "; ".join(mismatches))
    learner.module.load_state_dict(state["model"])
    if learner.ema is not None:
        learner.ema.load_state_dict(state["ema"])
    learner.optimizer.load_state_dict(state["optimizer"])
    learner.scheduler.load_state_dict(state["scheduler"])
    learner.step = int(state["step"])
    _set_carry(learner, state["carry"])
    set_rng_state(state["rng"])
    return int(state["epoch"]), int(state["batch_in_epoch"])


def init_weights(path: str | Path, learner: Learner) -> None:
    """Start ``learner`` from another run's trained weights (not its EMA copy; with ``train.ema`` the new average
    starts from them), with its own fresh optimizer and schedule: a stage
    of a curriculum, e.g. a rope2d grid model trained on mazes padded to 15 going on at 25. The model configs must
    agree; only ``attention_grid`` may differ, and only for ``pos_encodings='rope2d'`` (weights independent of the
    grid's width). Otherwise ``ValueError``."""
    state = _read(path)
    saved, current = dict(state["model_config"]), dict(learner.model_cfg)
    if current.get("pos_encodings") == "rope2d":
        saved.pop("attention_grid", None)
        current.pop("attention_grid", None)
    mismatches = config_mismatches({"model": saved}, {"model": current})
    if mismatches:
        raise ValueError(f"init_from={str(path)!r} holds another model (only model.attention_grid may differ, with "
                         "model.pos_encodings=rope2d): " + "; ".join(mismatches))
    learner.module.load_state_dict(state["model"])
    if learner.ema is not None:
        learner.ema.module.load_state_dict(learner.module.state_dict())


#: HRMConfig fields that change only how a trained HRM / TRM acts, so evaluation may override them.


def on_grid(config: HRMConfig, encoder: Encoder, where: str = "checkpoint") -> HRMConfig:
    """``config`` acting on the encoder's grid: a grid model (``attention_grid``) with ``pos_encodings='rope2d'``
    takes the env's grid width (and length); with other positions the widths must agree (``ValueError``)."""
    width = grid_width(encoder)
    if not config.attention_grid or width in (0, config.attention_grid):
        return config
    if config.pos_encodings != "rope2d":
        raise ValueError(f"{where} reads a grid {config.attention_grid} wide with pos_encodings="
                         f"{config.pos_encodings!r}, the env's grid is {width} wide: evaluate with the env.kwargs the "
                         f"training used, or train with model.pos_encodings=rope2d to act on other widths")
    return config.with_(seq_len=int(encoder.seq_len), attention_grid=width)


def load_policy(
    path: str | Path, encoder: Encoder, device: torch.device | str = "cpu", acting: Mapping[str, Any] | None = None
) -> ModelPolicy:
    """A :class:`ModelPolicy` of a checkpoint's model (e.g. for ``train.evaluate``), acting with ``encoder``.

    ``acting`` overrides :data:`ACTING_FIELDS` of an HRM / TRM checkpoint (null values keep the checkpoint's),
    e.g. ``{"inference_halting": "max_steps", "halt_max_steps": 4}`` to think longer than in training. A rope2d
    grid model acts on the encoder's grid width (:func:`on_grid`), e.g. trained on mazes padded to 15, tested on 31."""
    state = _read(path)
    config = HRMConfig(**state["hrm_config"])
    changes = {k: v for k, v in (acting or {}).items() if v is not None}
    unknown = sorted(set(changes) - set(ACTING_FIELDS))
    if unknown:
        raise ValueError(f"acting overrides must be among {ACTING_FIELDS}, got {unknown}")
    if changes and state["model_config"]["name"] not in ("hrm", "trm"):
        raise ValueError(f"acting overrides {sorted(changes)} apply to hrm / trm checkpoints, not to {path}")
    config = on_grid(config.with_(**changes), encoder, str(path))
    model = build_model(state["model_config"], config)
    ema = state.get("ema")
    if ema is not None:  # AveragedModel's state: "module." + the model's keys, plus n_averaged
        model.load_state_dict({k.removeprefix("module."): v for k, v in ema.items() if k.startswith("module.")})
    else:
        model.load_state_dict(state["model"])
    return ModelPolicy(model.to(device), encoder, device)


# ------------------------------------------------------------------------------------------------ logging
def strict_json(data: Any, indent: int | None = None) -> str:
    """``data`` as strict JSON: non-finite floats (NaN, +-inf), which strict parsers reject, become ``null``."""
    return json.dumps(_finite(data), indent=indent, allow_nan=False)


def _finite(data: Any) -> Any:
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, Mapping):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(value) for value in data]
    return data


def _atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to a temporary file in the same folder, then rename: a kill leaves the old file or the new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented strict JSON (:func:`strict_json`) atomically: the runs' ``final.json`` etc."""
    _atomic_write_text(path, strict_json(data, indent=1) + "\n")


def _truncate_jsonl(path: str | Path, step: int) -> None:
    """Drop metric rows written after ``step`` (the checkpoint a resumed run continues from), atomically."""
    path = Path(path)
    if path.is_file():
        rows = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
        _atomic_write_text(path, "".join(row + "\n" for row in rows))


class MetricsLogger:
    """TensorBoard scalars + ``metrics.jsonl`` (strict JSON: NaN and infinities as null) in ``out_dir``.

    ``resume_step=None`` (a fresh run) starts ``metrics.jsonl`` anew and hides TensorBoard events an earlier,
    uncheckpointed run left in the folder; a resumed run passes its checkpoint's step, and rows and events after
    it are dropped. A disabled logger (DDP ranks > 0) ignores everything."""

    def __init__(self, out_dir: str | Path, enabled: bool = True, resume_step: int | None = None):
        self.enabled = enabled
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            out_dir = Path(out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            self.writer = SummaryWriter(str(out_dir / "tensorboard"), purge_step=resume_step or 0)
            if resume_step is not None:
                _truncate_jsonl(out_dir / "metrics.jsonl", resume_step)
            self.jsonl = open(out_dir / "metrics.jsonl", "w" if resume_step is None else "a")

    def log(self, step: int, epoch: int, phase: str, metrics: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        row = {"step": step, "epoch": epoch, "phase": phase, **metrics}
        self.jsonl.write(strict_json(row) + "\n")
        self.jsonl.flush()
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{phase}/{key}", value, step)

    def close(self) -> None:
        if self.enabled:
            self.writer.close()
            self.jsonl.close()


@contextmanager
def interrupts_at_safe_points() -> Iterator[threading.Event]:
    """Turn the first Ctrl-C into an event the training loop polls between batches: a KeyboardInterrupt raised
    inside a TensorBoard or checkpoint write can leave a lock held and hang the save-and-exit path. A second
    Ctrl-C interrupts at once. Outside the main thread (no signal handlers there) the event never fires."""
    pending = threading.Event()
    previous = signal.getsignal(signal.SIGINT) or signal.default_int_handler

    def defer(signum: int, frame: Any) -> None:
        pending.set()
        signal.signal(signal.SIGINT, previous)

    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        signal.signal(signal.SIGINT, defer)
    try:
        yield pending
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
