"""The training step of ``train.supervised`` and ``train.dagger``: ``Learner``, its optimizer and schedule.

``Learner(model_cfg, optim_cfg, encoder, device, total_steps, task="policy", distributed=False,
token_labels=0, field_moves=0)`` (``token_labels > 0``: a token head for an oracle's per-token labels beside the
policy head; ``field_moves > 0``: per-token move logits beside a token task's head, trained on a ``field`` key)
owns the model (``learner.module``, built by :mod:`train.models`; ``learner.model`` is it wrapped in
``DistributedDataParallel`` when ``distributed``), ``learner.config`` (HRMConfig), AdamW, a warmup +
constant/cosine schedule over ``total_steps`` (:func:`lr_factor`), the HRM carry and ``learner.step``;
``learner.policy()`` is its :class:`train.acting.ModelPolicy`.
``Learner.train_step(batch) -> dict[str, float]`` runs one optimizer step on a batch of ``tokens`` /
``optimal`` / ``action_mask`` (policy task, plus ``labels`` with ``token_labels``) or ``tokens`` / ``labels``
(token task): for HRM one ACT segment with the carry kept across steps (deep supervision; halted rows take the
batch's rows) and :func:`agents.hrm.act_loss` (set loss + 0.5 * Q losses); for baselines :func:`agents.baselines.baseline_loss`.
The set loss is ``-log sum_{a optimal} p(a)`` over legal actions. A non-finite loss or gradient norm raises
:class:`DivergedError` (a ``ValueError``) naming the step. ``optim_cfg`` keys (``train.schema.OPTIM``): ``lr``,
``weight_decay``, ``betas``, ``warmup_steps``, ``schedule`` (``constant`` | ``cosine``), ``lr_min_ratio``,
``grad_clip``, ``ema`` (null, or the decay of an exponential moving average of the weights, as TRM:
``learner.eval_module``, which acts, is evaluated and is what ``train.acting.load_policy`` returns).

Saving and restoring a learner: :mod:`train.checkpoints`; its metrics: :mod:`train.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from agents.baselines import baseline_loss
from agents.hrm import HRMCarry, act_loss
from hrm_envs.encoding import Encoder
from train.acting import ModelPolicy
from train.models import build_model, is_act, model_config
from train.schema import OPTIM, check_config

MODEL_KEYS = ("tokens", "optimal", "action_mask", "labels", "field", "cost", "puzzle_identifiers", "continues")


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
                 distributed: bool = False, token_labels: int = 0, field_moves: int = 0):
        self.device = torch.device(device)
        self.model_cfg = dict(model_cfg)
        self.encoder = encoder
        self.config = model_config(model_cfg, encoder, task, token_labels, field_moves)
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
