"""What the training entry points (``train.supervised``, ``train.dagger``, ``train.ppo``) and the benchmarks share:
the device and process group, the data set presets and their building, the optimizer keys of the ``train`` group,
the output folder of a multirun job."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
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


def job_out(cfg: DictConfig, ignore: tuple[str, ...] = ()) -> None:
    """In a Hydra multirun (``-m``), give the job its own ``out`` unless ``out`` is on the command line: the default
    ``out`` plus a folder naming the job's values of the swept keys (``-m train.lr=1e-3,3e-3``:
    ``runs/dagger/hanoi-hrm/train.lr=0.001`` and ``.../train.lr=0.003``), so the jobs of a sweep never share a run
    folder; swept keys of ``ignore`` (and their sub-keys: the entry point's resumable keys) stay out of the name, so
    the same sweep with ``resume=true`` finds its folders again. A single run, or ``main(cfg)`` called outside Hydra,
    keeps its ``out``."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return
    hydra = HydraConfig.get()
    task = {o.key_or_group: o for o in OverridesParser.create().parse_overrides(list(hydra.overrides.task))}
    if "out" in task:
        return
    given = [arg for arg in sys.argv[1:] if "=" in arg and not arg.startswith("-")]
    swept = sorted(o.key_or_group for o in OverridesParser.create().parse_overrides(given) if o.is_sweep_override())
    named = [key for key in swept if key in task and not any(key == k or key.startswith(k + ".") for k in ignore)]
    name = ",".join(f"{key}={task[key].value()}" for key in named).replace(os.sep, "_")
    cfg.out = str(Path(cfg.out) / (name or f"job{hydra.job.num}"))
