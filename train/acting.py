"""Acting with a trained model: ``ModelPolicy`` and loading one from a checkpoint (``load_policy``).

``ModelPolicy(model, encoder, device)`` implements ``train.rollout.Policy``: ``act_batch(obs, episodes)
-> (actions, segments)`` = masked argmax of the policy logits after ACT halting (HRM: Q-head or
``halt_max_steps``; baselines: one segment). An HRM with ``episode_carry`` ``remembers``: it resumes each row
from the latent state its episode (an id in ``episodes``) ended the previous decision in.

``load_policy(path, encoder, device)`` rebuilds a checkpoint's model alone (its EMA weights when it has them)
as a :class:`ModelPolicy` (``train.evaluate``); ``on_grid`` lets a ``rope2d`` grid model act on the evaluation
env's grid width (trained on mazes padded to 15, tested on 31).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.hrm import ACTING_FIELDS, HRMConfig
from hrm_envs.encoding import Encoder, grid_width
from train.checkpoints import read_checkpoint
from train.models import build_model, is_act, unwrap


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


def on_grid(config: HRMConfig, encoder: Encoder, where: str = "checkpoint") -> HRMConfig:
    """``config`` acting on the encoder's grid: a grid model (``attention_grid``) with ``pos_encodings='rope2d'`` or
    grid blocks (conv, max) takes the env's grid width (and length); with other positions the widths must agree
    (``ValueError``)."""
    width = grid_width(encoder)
    if not config.attention_grid or width in (0, config.attention_grid):
        return config
    if config.pos_encodings != "rope2d" and config.block == "attention":
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
    state = read_checkpoint(path)
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
