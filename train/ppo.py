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
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor

import hrm_envs  # noqa: F401
from train.rollout import env_fns
from train.schema import PPO, check_config
from train.supervised import load_preset

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


class PPOPolicy:
    """A saved MaskablePPO model as a ``train.rollout.Policy`` (greedy, masked; HRM segments when reported)."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"checkpoint {path} does not exist")
        self.model = MaskablePPO.load(path, device="cpu")

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
    so the remaining epochs run empty. Saved models load with ``MaskablePPO.load``.
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
    policy: Any = "MultiInputPolicy"
    if cfg.ppo.policy == "hrm":
        from agents.policy import HRMPolicy

        model_cfg = OmegaConf.to_container(cfg.model, resolve=True).items()
        hrm_fields = {k: v for k, v in model_cfg if k != "name" and v is not None}  # null: the field's default
        policy, kwargs = HRMPolicy, {"policy_kwargs": {"env_id": cfg.env.id, "hrm_config": hrm_fields}}
    model = DeadlinePPO(policy, vec, n_steps=cfg.ppo.n_steps, batch_size=cfg.ppo.batch_size,
                        n_epochs=cfg.ppo.n_epochs, learning_rate=float(cfg.ppo.lr), ent_coef=float(cfg.ppo.ent_coef),
                        gamma=float(cfg.ppo.gamma), seed=cfg.seed, device="cpu", verbose=0, **kwargs)
    started = time.monotonic()
    clock = WallClock(float(cfg.ppo.minutes))
    model.deadline = clock.deadline
    model.learn(total_timesteps=cfg.ppo.timesteps, callback=clock, progress_bar=bool(cfg.progress))
    successes = [info.get("is_success") for info in model.ep_info_buffer if "is_success" in info]
    model.save(out / "model.zip")
    vec.close()
    result = {"timesteps": int(model.num_timesteps), "minutes": (time.monotonic() - started) / 60,
              "policy": cfg.ppo.policy, "sizes": sizes,
              "recent_train_episode_reward": float(np.mean([i["r"] for i in model.ep_info_buffer]))
              if model.ep_info_buffer else float("nan"), "recent_train_success": float(np.mean(successes))
              if successes else float("nan")}
    (out / "progress.json").write_text(json.dumps(result, indent=1))
    return result


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="ppo")
def main(cfg: DictConfig) -> None:
    try:
        print(json.dumps(train(cfg)))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
