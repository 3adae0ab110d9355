"""Checkpoints of a :class:`train.learner.Learner`: saving, resuming, warm starts, released policies, DDP ranks.

``save_checkpoint(path, learner, config, epoch, batch_in_epoch)`` writes model, optimizer, schedule, HRM carry,
RNG states (python, numpy, torch, cuda), step, epoch and the run's config atomically (temporary file + rename),
as tensors and plain data only. Every reader (:func:`read_checkpoint`) loads with ``weights_only=True``: a file
that needs other pickled objects (which could run any code on loading) is refused with a ``ValueError``.
``load_checkpoint(path, learner, config, ignore)`` restores them and returns ``(epoch, batch_in_epoch)``; a
checkpoint whose config differs (outside the ``ignore``d dotted keys) raises ``ValueError`` naming every
mismatching key with both values (a key missing from an older config equals null: :func:`config_mismatches`).
``init_weights`` starts a learner from another run's weights; ``save_policy`` keeps what acting needs
(``train.acting.load_policy`` reads either file).
``save_rank_state`` / ``load_rank_state`` keep a DDP rank > 0's carry and RNG beside it (``last.rank1.pt``).
``checkpoint_config(path)`` reads only the config.
"""

from __future__ import annotations

import json
import os
import pickle
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from agents.hrm import ACTING_FIELDS, HRMCarry, HRMConfig

if TYPE_CHECKING:
    from train.learner import Learner


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
    state = read_checkpoint(rank_path)
    if state["step"] != learner.step:  # killed between rank 0's save and this rank's
        return False
    _set_carry(learner, state["carry"])
    set_rng_state(state["rng"])
    return True


def _carry_state(learner: Learner) -> dict[str, Any] | None:
    if learner.carry is None:
        return None
    c = learner.carry
    state = {"z_H": c.z_H.cpu(), "z_L": c.z_L.cpu(), "steps": c.steps.cpu(), "halted": c.halted.cpu(),
             "data": {k: v.cpu() for k, v in c.data.items()}}
    return state if c.depth is None else {**state, "depth": c.depth.cpu()}


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


def read_checkpoint(path: str | Path) -> dict[str, Any]:
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
                         "carries. train.checkpoints files hold none; load only checkpoints written by "
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
    return read_checkpoint(path)["config"]


POLICY_KEYS = ("model", "ema", "config", "model_config", "hrm_config")


def save_policy(path: str | Path, out: str | Path, acting: Mapping[str, Any] | None = None, half: bool = False) -> None:
    """Write what acting needs of checkpoint ``path`` (weights, EMA weights, configs) to ``out`` atomically: a
    released policy (``pretrained/``), without the optimizer, RNG and carry state that only resuming needs.
    ``load_policy``, ``checkpoint_config`` and ``init_from`` read it like the full checkpoint. ``acting`` sets
    :data:`agents.hrm.ACTING_FIELDS` of an HRM / TRM (e.g. more segments chosen on validation), validated.
    ``half`` stores the floating-point weights as float16 (half the bytes; loading casts them back to the model's
    float32, so the policy acts with the rounded weights)."""
    state = read_checkpoint(path)
    policy = {key: state[key] for key in POLICY_KEYS}
    if acting:
        unknown = sorted(set(acting) - set(ACTING_FIELDS))
        if unknown:
            raise ValueError(f"acting fields must be among {ACTING_FIELDS}, got {unknown}")
        if state["model_config"].get("name") not in ("hrm", "trm"):
            raise ValueError(f"acting fields apply to hrm / trm checkpoints, not to {path}")
        policy["hrm_config"] = vars(HRMConfig(**state["hrm_config"]).with_(**acting)).copy()
    if half:
        for key in ("model", "ema"):
            if policy[key] is not None:
                policy[key] = {name: value.half() if torch.is_floating_point(value) else value
                               for name, value in policy[key].items()}
    _atomic_save(policy, Path(out))


def load_checkpoint(path: str | Path, learner: Learner, config: Mapping[str, Any],
                    ignore: Iterable[str] = ()) -> tuple[int, int]:
    """Restore ``learner`` and the RNGs; ``(epoch, batch_in_epoch)`` to continue from. Refuses other configs."""
    state = read_checkpoint(path)
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
    state = read_checkpoint(path)
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
