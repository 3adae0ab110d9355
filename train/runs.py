"""What the training entry points (``train.supervised``, ``train.dagger``, ``train.ppo``) and the benchmarks share:
the device and process group, the data set presets and their building, the optimizer keys of the ``train`` group."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf

from configs import CONFIG_DIR
from train.datasets import build, parse_spec
from train.schema import OPTIM

#: The ``train`` group's keys that configure the optimizer and its schedule (``train.learner.Learner``).
OPTIM_KEYS = tuple(key.removeprefix("train.") for key in OPTIM)


def setup_distributed(device_cfg: str) -> tuple[torch.device, int, int]:
    """Init the process group under torchrun; the device (CUDA if present and allowed), rank, world size."""
    if device_cfg not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be one of ('auto', 'cpu', 'cuda'), got {device_cfg!r}")
    if device_cfg == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda but CUDA is not available; use device=auto or device=cpu")
    use_cuda = device_cfg != "cpu" and torch.cuda.is_available()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local), rank, world
    return torch.device("cpu"), rank, world


def load_preset(name: str) -> dict[str, Any]:
    """The data set preset ``configs/preset/<name>.yaml``."""
    path = CONFIG_DIR / "preset" / f"{name}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in (CONFIG_DIR / "preset").glob("*.yaml"))
        raise ValueError(f"env.preset {name!r} is not a preset in {path.parent}; available: {names}")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def ensure_dataset(env_cfg: DictConfig, rank: int) -> Path:
    """``env.data_dir``, built from ``env.preset`` by rank 0 if missing; checks it is a set of ``env.id``."""
    root = Path(env_cfg.data_dir)
    if rank == 0 and not (root / "summary.json").is_file():
        spec = parse_spec(load_preset(env_cfg.preset))
        print(f"building data set {spec.name} into {root} ...", flush=True)
        build(spec, root, f"python -m train.supervised (preset {spec.name})", progress=True)
    if dist.is_initialized():
        dist.barrier()  # the other ranks wait for rank 0's build
    summary = json.loads((root / "summary.json").read_text())
    if summary["env"] != env_cfg.id:
        raise ValueError(f"env.data_dir {str(root)!r} holds a {summary['env']} data set, but env.id is {env_cfg.id!r}")
    if env_cfg.eval_split not in summary["splits"]:
        raise ValueError(f"env.eval_split must be one of {sorted(summary['splits'])}, got {env_cfg.eval_split!r}")
    return root


def optim_config(train_cfg: dict[str, Any]) -> dict[str, Any]:
    """The optimizer settings of a resolved ``train`` group (:data:`OPTIM_KEYS`), ``betas`` as a list."""
    return {k: (list(v) if k == "betas" else v) for k, v in train_cfg.items() if k in OPTIM_KEYS}
