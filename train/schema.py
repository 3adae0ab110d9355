"""The typed schema of every entry point's config, checked once at start-up.

Hydra composes ``configs/*.yaml`` plus the command line's overrides into untyped values: ``train.lr=abc`` is a
string, ``seed=1.5`` a float, ``train.lr=inf`` and ``dagger.max_labels=nan`` are floats that pass ``> 0``
comparisons (or fail them without naming the key). :func:`check_config` walks the composed config and checks
every leaf against a table keyed by dotted key (``SUPERVISED``, ``DAGGER``, ``EVALUATE``, ``PPO``,
``DATASETS``), raising a ``ValueError`` that names the key and what is allowed for:

- a non-finite float anywhere (``train.lr must be a finite number, got inf``), also under free-form keys;
- a key the table does not know (``+train.lrr=1``, ``+foo=1``) or a required key that is missing;
- a value of the wrong type or out of range (``train.betas=5``, ``threads=-1``, ``seed=1.5``);
- an ``out`` folder that cannot be written (``out=/proc/x``): probed by creating and removing a temporary
  folder in its nearest existing ancestor.

Checks that involve several keys or the data (batch size vs. data set, label budget vs. sub-envs) stay with
the entry points. The ``model`` keys' types come from :class:`agents.hrm.HRMConfig`'s fields, whose ranges the
model config checks.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from agents.hrm import HALT_SCALES, INFERENCE_HALTING, HRMConfig
from hrm_envs.core import is_int

LR_SCHEDULES = ("constant", "cosine")
BETA_SCHEDULES = ("constant", "linear", "exponential")
DAGGER_INITS = ("expert", "dataset")
DAGGER_VECTORS = ("auto", "sync", "async")
SIZE_SAMPLING = ("per_env", "per_reset")
PPO_POLICIES = ("hrm", "mlp")
PPO_VECTORS = ("dummy", "subproc")
REFERENCES = ("oracle", "random")
DEVICES = ("auto", "cpu", "cuda")


# ------------------------------------------------------------------------------------------------ specs
@dataclass(frozen=True, kw_only=True)
class Spec:
    """What one config leaf may hold. ``null``: None is allowed; ``optional``: the key may be absent."""

    null: bool = False
    optional: bool = False

    def accepts(self, value: Any) -> bool:
        return True

    def allowed(self) -> str:
        return "anything"

    def check(self, key: str, value: Any) -> None:
        """``ValueError`` naming ``key`` unless ``value`` is allowed."""
        if value is None and self.null:
            return
        if not self.accepts(value):
            raise ValueError(f"{key} must be {'null or ' if self.null else ''}{self.allowed()}, got {value!r}")


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high}"
    return ""


@dataclass(frozen=True, kw_only=True)
class Int(Spec):
    """An int (not a bool) in ``[low, high]`` (None: unbounded)."""

    low: int | None = None
    high: int | None = None

    def accepts(self, value: Any) -> bool:
        return is_int(value) and (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def allowed(self) -> str:
        return "an int" + _bounds(self.low, self.high, False, False)


@dataclass(frozen=True, kw_only=True)
class Num(Spec):
    """A finite int or float between ``low`` and ``high`` (``*_open``: that end excluded; None: unbounded)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def allowed(self) -> str:
        return "a number" + _bounds(self.low, self.high, self.low_open, self.high_open)


@dataclass(frozen=True, kw_only=True)
class Bool(Spec):
    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def allowed(self) -> str:
        return "true or false"


@dataclass(frozen=True, kw_only=True)
class Str(Spec):
    """A non-empty string."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value != ""

    def allowed(self) -> str:
        return "a non-empty string"


@dataclass(frozen=True, kw_only=True)
class Choice(Spec):
    choices: tuple[str, ...] = ()

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.choices

    def allowed(self) -> str:
        return f"one of {self.choices}"


@dataclass(frozen=True, kw_only=True)
class List(Spec):
    """A list (or tuple) of ``length`` items (None: any length >= ``min_items``), each checked by ``item`` (``key[i]``);
    ``scalar``: a single item is allowed too."""

    item: Spec | None = None
    length: int | None = None
    min_items: int = 0
    scalar: bool = False

    def accepts(self, value: Any) -> bool:
        if self.scalar and not isinstance(value, (list, tuple)):
            return value is not None and (self.item is None or self.item.accepts(value))
        if not isinstance(value, (list, tuple)):
            return False
        return len(value) == self.length if self.length is not None else len(value) >= self.min_items

    def allowed(self) -> str:
        what = f"a list of {self.length}" if self.length is not None else (
            "a non-empty list" if self.min_items == 1 else "a list" if not self.min_items
            else f"a list of at least {self.min_items}")
        text = what + (f" items, each {self.item.allowed()}" if self.item is not None else "")
        return f"{self.item.allowed()} or {text}" if self.scalar and self.item is not None else text

    def check(self, key: str, value: Any) -> None:
        super().check(key, value)
        if isinstance(value, (list, tuple)) and self.item is not None:
            for index, item in enumerate(value):
                self.item.check(f"{key}[{index}]", item)


@dataclass(frozen=True, kw_only=True)
class Open(Spec):
    """A free-form mapping (env kwargs, a data set preset): its own code checks it; only non-finite floats are
    refused here, as everywhere."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def allowed(self) -> str:
        return "a mapping"


@dataclass(frozen=True, kw_only=True)
class OutDir(Spec):
    """A folder the run can create and write into."""

    def allowed(self) -> str:
        return "a writable folder path"

    def check(self, key: str, value: Any) -> None:
        if value is None and self.null:
            return
        if not isinstance(value, str) or not value:
            raise ValueError(f"{key} must be {self.allowed()}, got {value!r}")
        path = Path(value)
        existing = path
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise ValueError(f"{key} must be {self.allowed()}, got {value!r} ({existing} is not a folder)")
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=existing))
        except OSError as error:
            raise ValueError(f"{key} must be {self.allowed()}, got {value!r} (cannot create a folder in "
                             f"{existing}: {error.strerror})") from None


# ------------------------------------------------------------------------------------------------ tables
def _model_spec(type_name: str) -> Spec:
    simple = {"int": Int(null=True, optional=True), "float": Num(null=True, optional=True),
              "bool": Bool(null=True, optional=True), "str": Str(null=True, optional=True)}
    return simple.get(type_name, List(item=Int(), null=True, optional=True))


#: The ``model`` group: ``name``, ``depth`` (mlp / lstm / gnn) and any HRMConfig field (null = its default).
MODEL = {"model.name": Str(), "model.depth": Int(low=1, null=True, optional=True),
         **{f"model.{f.name}": _model_spec(str(f.type)) for f in fields(HRMConfig)}}

#: The ``env`` group.
ENV = {"env.name": Str(), "env.id": Str(), "env.preset": Str(), "env.data_dir": Str(), "env.eval_split": Str(),
       "env.size_arg": Str(), "env.kwargs": Open(), "env.eval_sizes": List(min_items=1),
       "env.eval_horizon": Num(low=1, null=True, optional=True)}

#: The optimizer keys of the ``train`` group (``train.learner.Learner``'s ``optim_cfg``; absent: its default).
OPTIM = {
    "train.lr": Num(low=0, low_open=True, optional=True),
    "train.weight_decay": Num(low=0, optional=True),
    "train.betas": List(item=Num(low=0, high=1, high_open=True), length=2, optional=True),
    "train.warmup_steps": Int(low=0, optional=True),
    "train.schedule": Choice(choices=LR_SCHEDULES, optional=True),
    "train.lr_min_ratio": Num(low=0, high=1, optional=True),
    "train.grad_clip": Num(low=0, low_open=True, null=True, optional=True),
    "train.ema": Num(low=0, high=1, low_open=True, high_open=True, null=True, optional=True),
}

#: The ``train`` group.
TRAIN = {
    "train.name": Str(), "train.epochs": Int(low=1), "train.batch_size": Int(low=1), "train.log_every": Int(low=1),
    **OPTIM,
    "train.stop_at_train_accuracy": Num(low=0, high=1, low_open=True, null=True),
    "train.max_minutes": Num(low=0, low_open=True, null=True, optional=True),
    "train.eval.tf_samples": Int(low=0), "train.eval.train_tf_samples": Int(low=0),
    "train.eval.puzzles": Int(low=0), "train.eval.batch_size": Int(low=1),
}

#: Keys of every training run.
RUN = {"out": OutDir(), "seed": Int(low=0), "threads": Int(low=0), "progress": Bool()}

TRAINING = {**RUN, "resume": Bool(), "init_from": Str(null=True), "device": Choice(choices=DEVICES),
            **ENV, **MODEL, **TRAIN}

#: ``train.supervised`` also reads the seq2seq options.
SUPERVISED = {**TRAINING, "seq2seq.field": Bool(), "seq2seq.cost": Bool(), "seq2seq.validation_bases": Int(low=0)}

DAGGER = {
    **TRAINING,
    "dagger.rounds": Int(low=0), "dagger.max_labels": Int(low=1, null=True),
    "dagger.max_minutes": Num(low=0, low_open=True, null=True), "dagger.init": Choice(choices=DAGGER_INITS),
    "dagger.beta.schedule": Choice(choices=BETA_SCHEDULES), "dagger.beta.start": Num(low=0, high=1),
    "dagger.beta.end": Num(low=0, high=1), "dagger.beta.decay": Num(low=0, high=1),
    "dagger.envs": Int(low=1), "dagger.size_sampling": Choice(choices=SIZE_SAMPLING), "dagger.steps": Int(low=1),
    "dagger.horizon": Num(low=1, null=True), "dagger.vector": Choice(choices=DAGGER_VECTORS),
    "dagger.sizes": List(min_items=1, null=True), "dagger.curriculum_rounds": Int(low=0),
    "dagger.token_labels": Bool(), "dagger.episode_restart": Num(low=0, high=1, null=True, optional=True),
    "dagger.train_steps": Int(low=1), "dagger.eval_puzzles": Int(low=0), "dagger.eval_ood_every": Int(low=0),
}

PPO = {
    **RUN, **ENV, **MODEL,
    "ppo.policy": Choice(choices=PPO_POLICIES), "ppo.minutes": Num(low=0, low_open=True),
    "ppo.timesteps": Int(low=1), "ppo.envs": Int(low=1), "ppo.vector": Choice(choices=PPO_VECTORS),
    "ppo.n_steps": Int(low=1), "ppo.batch_size": Int(low=1), "ppo.n_epochs": Int(low=1),
    "ppo.lr": Num(low=0, low_open=True), "ppo.ent_coef": Num(low=0), "ppo.gamma": Num(low=0, high=1),
}

EVALUATE = {
    **{key: replace(spec, optional=True) for key, spec in ENV.items()},  # absent: the checkpoint's env
    "checkpoint": List(item=Str(), scalar=True), "data": Str(null=True), "split": Str(null=True),
    "names": List(item=Str()),
    "references": List(item=Choice(choices=REFERENCES)), "sizes": List(min_items=1, null=True),
    "episodes": Int(low=1), "seed": Int(low=0), "held_out_from": List(item=Str()), "teacher_forcing": Bool(),
    "act.inference_halting": Choice(choices=INFERENCE_HALTING, null=True), "act.halt_max_steps": Int(low=1, null=True),
    "act.halt_scale": Choice(choices=HALT_SCALES, null=True), "act.halt_reference": Int(low=1, null=True),
    "act.halt_tolerance": Num(low=0, high=1, high_open=True, null=True), "act.episode_carry": Bool(null=True),
    "threads": Int(low=0), "out": OutDir(null=True), "trust_pickle": Bool(),
}

DATASETS = {"out": OutDir(), "overwrite": Bool(), "progress": Bool(), "preset": Open()}


# ------------------------------------------------------------------------------------------------ check
def check_config(cfg: Any, schema: Mapping[str, Spec]) -> None:
    """``ValueError`` naming the dotted key of the first non-finite float, unknown key, missing key or value
    that ``schema`` does not allow. ``cfg``: a composed Hydra config or plain nested mappings."""
    data = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg
    _check_finite("", data)
    found: dict[str, Any] = {}
    _collect(data, "", schema, found)
    missing = [key for key, spec in schema.items() if key not in found and not spec.optional]
    if missing:
        raise ValueError(f"config keys {missing} are missing")
    for key, value in found.items():
        schema[key].check(key, value)


def _check_finite(key: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value!r}")
    if isinstance(value, Mapping):
        for name, item in value.items():
            _check_finite(f"{key}.{name}" if key else str(name), item)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_finite(f"{key}[{index}]", item)


def _collect(node: Mapping[str, Any], prefix: str, schema: Mapping[str, Spec], found: dict[str, Any]) -> None:
    """Record the value of every schema key under ``node``; ``ValueError`` for keys the schema does not know."""
    unknown = []
    for name, value in node.items():
        key = f"{prefix}{name}"
        if key in schema:
            found[key] = value
        elif any(k.startswith(key + ".") for k in schema):
            if not isinstance(value, Mapping):
                raise ValueError(f"{key} must be a mapping of {_children(schema, key + '.')}, got {value!r}")
            _collect(value, key + ".", schema, found)
        else:
            unknown.append(key)
    if unknown:
        where = f"{prefix[:-1]} " if prefix else ""
        raise ValueError(f"unknown {where}keys {unknown}; allowed: {_children(schema, prefix)}")


def _children(schema: Mapping[str, Spec], prefix: str) -> list[str]:
    """The names directly under ``prefix`` (``"train."`` -> ``["batch_size", ..., "eval", ...]``)."""
    return sorted({key[len(prefix):].split(".")[0] for key in schema if key.startswith(prefix)})
