"""The reinforcement-learning row: sb3-contrib MaskablePPO on the same environments, with a wall-time budget.

    python -m train.ppo env=hanoi ppo.policy=hrm ppo.minutes=10 out=runs/ppo/hanoi-hrm
    python -m train.evaluate checkpoint=runs/ppo/hanoi-hrm/model.zip

Training envs: ``ppo.envs`` sub-envs (``DummyVecEnv``, or ``SubprocVecEnv`` with ``ppo.vector=subproc``)
playing the env preset's train sizes (sub-env i plays size i mod #sizes) with the env's reward (+1 on
success, -0.01 per move). ``ppo.policy``: ``hrm`` (``agents.policy.HRMPolicy`` with the ``model`` group's
HRM fields) or ``mlp`` (SB3's ``MultiInputPolicy``). Training stops after ``ppo.minutes`` of wall time or
``ppo.timesteps``. The clock is checked at every env step and between the update's minibatches, so the budget
holds to one minibatch (checked between rollouts only, a 5-minute budget on 961-token maze observations ran
18.9 minutes, most of them in one 10-epoch update).
Outputs in ``out``: ``model.zip`` and ``progress.json``.
:class:`PPOPolicy` wraps a saved model as a ``train.rollout.Policy`` for ``train.evaluate``.

Loading is safe by default (:func:`load_model`). SB3 stores the entries of ``model.zip``'s ``data`` that are
not JSON (the policy class, the spaces, schedules, run-time buffers) as cloudpickle, and unpickling runs
whatever code a file carries. ``train.ppo`` therefore also writes ``train_ppo.json`` into the zip (the policy
name, the spaces and the clip range as plain data), and :func:`load_model` hands SB3 a replacement for every
pickled entry (``custom_objects``), so nothing is unpickled; SB3 itself reads the ``.pth`` members with
``torch.load(weights_only=True)``. A zip with a pickled entry that cannot be rebuilt this way (no
``train_ppo.json``: an older or foreign save) is refused with a ``ValueError``; ``trust_pickle=True``
(``train.evaluate trust_pickle=true``) loads it with SB3's unpickling, for files you trust only.
"""

from __future__ import annotations

from train.cli import exit_on_help

if __name__ == "__main__":  # --help answered before torch and Hydra load
    exit_on_help("ppo")

import json
import os
import sys
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from gymnasium import spaces
from omegaconf import DictConfig, OmegaConf
from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor

import hrm_envs  # noqa: F401
from agents.policy import HRMPolicy
from configs import CONFIG_DIR
from train.metrics import strict_json, write_json
from train.rollout import env_fns
from train.runs import job_out, load_preset
from train.schema import PPO, check_config



#: The plain description train.ppo writes into ``model.zip`` beside SB3's members.
PLAIN_MEMBER = "train_ppo.json"
#: Pickled ``data`` entries that ``MaskablePPO._setup_model`` rebuilds from plain entries or the next ``learn()``
#: starts afresh, so loading replaces them by None: the rollout buffer class (None = the default one, which
#: train.ppo uses), the learning-rate schedule (from ``learning_rate``) and run-time state.
REBUILT_BY_SB3 = ("rollout_buffer_class", "lr_schedule", "_last_obs", "_last_original_obs", "_last_episode_starts",
                  "ep_info_buffer", "ep_success_buffer")


def describe_space(space: spaces.Space) -> dict[str, Any]:
    """A Dict / Box (finite bounds) / Discrete space as plain data (:func:`space_from` rebuilds it)."""
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {key: describe_space(value) for key, value in space.spaces.items()}}
    if isinstance(space, spaces.Box) and np.isfinite(space.low).all() and np.isfinite(space.high).all():
        return {"type": "Box", "low": space.low.tolist(), "high": space.high.tolist(), "dtype": space.dtype.name}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    raise ValueError(f"train.ppo saves Dict, Box (finite bounds) and Discrete spaces as plain data, not {space}")


def space_from(data: dict[str, Any]) -> spaces.Space:
    """The space :func:`describe_space` described."""
    if data["type"] == "Dict":
        return spaces.Dict({key: space_from(value) for key, value in data["spaces"].items()})
    if data["type"] == "Box":
        dtype = np.dtype(data["dtype"])
        return spaces.Box(np.array(data["low"], dtype), np.array(data["high"], dtype), dtype=dtype)
    if data["type"] == "Discrete":
        return spaces.Discrete(int(data["n"]), start=int(data["start"]))
    raise ValueError(f"unknown space type {data['type']!r}")


def policy_classes() -> dict[str, type]:
    """``ppo.policy`` name -> policy class."""
    return {"hrm": HRMPolicy, "mlp": MaskablePPO.policy_aliases["MultiInputPolicy"]}


def save_model(model: MaskablePPO, path: Path, policy: str) -> None:
    """``model.save`` plus :data:`PLAIN_MEMBER` (policy name, spaces, clip range), atomically (temporary file,
    then rename)."""
    plain = {"policy": policy, "observation_space": describe_space(model.observation_space),
             "action_space": describe_space(model.action_space), "clip_range": float(model.clip_range(1.0))}
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.zip")
    model.save(tmp)
    with zipfile.ZipFile(tmp, "a") as archive:
        archive.writestr(PLAIN_MEMBER, strict_json(plain))
    os.replace(tmp, path)


def load_model(path: str | Path, trust_pickle: bool = False) -> MaskablePPO:
    """A saved MaskablePPO model on the CPU, without unpickling anything (see the module docstring).

    ``ValueError`` if the zip holds a pickled entry that cannot be rebuilt from :data:`PLAIN_MEMBER` or
    :data:`REBUILT_BY_SB3`. ``trust_pickle=True`` lets SB3 unpickle such entries: that runs whatever code the
    file carries, so only for files you trust (e.g. trained by yourself with an older train.ppo)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    if trust_pickle:
        return MaskablePPO.load(path, device="cpu")
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
            plain = json.loads(archive.read(PLAIN_MEMBER)) if PLAIN_MEMBER in archive.namelist() else None
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"checkpoint {path} is not a readable MaskablePPO model: {error}") from None
    custom: dict[str, Any] = dict.fromkeys(REBUILT_BY_SB3)
    if plain is not None:
        try:
            custom.update(policy_class=policy_classes()[plain["policy"]],
                          observation_space=space_from(plain["observation_space"]),
                          action_space=space_from(plain["action_space"]), clip_range=float(plain["clip_range"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"checkpoint {path} has a malformed {PLAIN_MEMBER}: {error!r}") from None
    pickled = sorted(key for key, value in data.items()
                     if isinstance(value, dict) and ":serialized:" in value and key not in custom)
    if pickled:
        missing = "" if plain is not None else f" (it has no {PLAIN_MEMBER}: not saved by this train.ppo)"
        raise ValueError(f"checkpoint {path} holds pickled entries {pickled} that cannot be rebuilt from plain "
                         f"data{missing}; unpickling runs whatever code the file carries, so it is refused. Pass "
                         "trust_pickle=true only for a file you trust")
    return MaskablePPO.load(path, device="cpu", custom_objects=custom)


class PPOPolicy:
    """A saved MaskablePPO model as a ``train.rollout.Policy`` (greedy, masked; HRM segments when reported).
    Loaded by :func:`load_model` (``trust_pickle``: see there)."""

    def __init__(self, path: str | Path, trust_pickle: bool = False):
        self.model = load_model(path, trust_pickle)

    def act_batch(self, obs: dict[str, np.ndarray], episodes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        actions, _ = self.model.predict(obs, action_masks=obs["action_mask"].astype(bool), deterministic=True)
        segments = getattr(self.model.policy, "last_segments", None)
        if segments is None or len(segments) != len(actions):
            segments = np.ones(len(actions), np.int64)
        return np.asarray(actions, np.int64), np.asarray(segments, np.int64)


class WallClock(BaseCallback):
    """Stops training once ``minutes`` have passed (the rollout in progress is dropped)."""

    def __init__(self, minutes: float):
        super().__init__()
        self.deadline = time.monotonic() + 60 * minutes

    def _on_step(self) -> bool:
        return time.monotonic() < self.deadline


class DeadlinePPO(MaskablePPO):
    """MaskablePPO whose update stops at ``deadline`` (``time.monotonic()``) after its first minibatch.

    SB3 checks callbacks only while collecting rollouts; this cuts the minibatch stream of ``train()`` instead,
    so the remaining epochs run empty. Saved models load as MaskablePPO (:func:`load_model`).
    """

    deadline = float("inf")

    def train(self) -> None:
        minibatches = self.rollout_buffer.get
        done = 0

        def until_deadline(batch_size: int | None = None):
            nonlocal done
            for batch in minibatches(batch_size):
                if done and time.monotonic() >= self.deadline:
                    return
                done += 1
                yield batch

        self.rollout_buffer.get = until_deadline  # shadows the method for this update only
        try:
            with warnings.catch_warnings():  # epochs cut to nothing log the mean KL of no minibatch as nan
                warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
                warnings.filterwarnings("ignore", "invalid value encountered in scalar divide", RuntimeWarning)
                super().train()
        finally:
            del self.rollout_buffer.get


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train MaskablePPO within the budget; returns timing and the training-episode success rate."""
    check_config(cfg, PPO)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    env_kwargs = OmegaConf.to_container(cfg.env.kwargs, resolve=True)
    sizes = list(load_preset(OmegaConf.to_container(cfg.env, resolve=True)["preset"])["splits"]["train"]["sizes"])
    fns = env_fns(cfg.env.id, env_kwargs, cfg.env.size_arg, sizes, cfg.ppo.envs)
    vec = VecMonitor(SubprocVecEnv(fns) if cfg.ppo.vector == "subproc" else DummyVecEnv(fns), info_keywords=("is_success",))
    kwargs: dict[str, Any] = {}
    if cfg.ppo.policy == "hrm":
        model_cfg = OmegaConf.to_container(cfg.model, resolve=True).items()
        hrm_fields = {k: v for k, v in model_cfg if k != "name" and v is not None}  # null: the field's default
        kwargs = {"policy_kwargs": {"env_id": cfg.env.id, "hrm_config": hrm_fields}}
    describe_space(vec.observation_space)  # a space save_model cannot describe fails now, not after training
    model = DeadlinePPO(policy_classes()[cfg.ppo.policy], vec, n_steps=cfg.ppo.n_steps, batch_size=cfg.ppo.batch_size,
                        n_epochs=cfg.ppo.n_epochs, learning_rate=float(cfg.ppo.lr), ent_coef=float(cfg.ppo.ent_coef),
                        gamma=float(cfg.ppo.gamma), seed=cfg.seed, device="cpu", verbose=0, **kwargs)
    started = time.monotonic()
    clock = WallClock(float(cfg.ppo.minutes))
    model.deadline = clock.deadline
    model.learn(total_timesteps=cfg.ppo.timesteps, callback=clock, progress_bar=bool(cfg.progress))
    successes = [info.get("is_success") for info in model.ep_info_buffer if "is_success" in info]
    save_model(model, out / "model.zip", cfg.ppo.policy)
    vec.close()
    result = {"timesteps": int(model.num_timesteps), "minutes": (time.monotonic() - started) / 60,
              "policy": cfg.ppo.policy, "sizes": sizes,
              "recent_train_episode_reward": float(np.mean([i["r"] for i in model.ep_info_buffer]))
              if model.ep_info_buffer else float("nan"), "recent_train_success": float(np.mean(successes))
              if successes else float("nan")}
    write_json(out / "progress.json", result)
    return result


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="ppo")
def main(cfg: DictConfig) -> None:
    try:
        job_out(cfg, ("out", "device", "threads", "progress"))
        print(strict_json(train(cfg)))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
