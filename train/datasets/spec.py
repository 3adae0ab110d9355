"""Data set presets: which environment, which sizes per split, how many puzzles, which seeds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hrm_envs import ENVS

KINDS = ("stepwise", "seq2seq")


@dataclass(frozen=True)
class SplitSpec:
    """One split: ``puzzles`` base scenarios spread evenly over ``sizes`` (a size is a value of ``size_arg``
    or a kwargs dict), drawn with consecutive seeds from ``seed``."""

    sizes: tuple[Any, ...]
    puzzles: int
    seed: int


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    kind: str
    env: str
    size_arg: str
    splits: dict[str, SplitSpec]
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    num_aug: int = 0  # seq2seq: augmented copies of each puzzle of the ``train`` split, stored in its group
    max_draw_misses: int = 200  # consecutive duplicate draws after which a size counts as exhausted
    variants: bool = False  # draw base scenarios with the generator's ``variants(rng)`` (city: all 4 vehicles)

    def size_kwargs(self, size: Any) -> dict[str, Any]:
        """Env kwargs of one size entry."""
        return dict(size) if isinstance(size, dict) else {self.size_arg: size}

    @staticmethod
    def size_label(size: Any) -> str:
        if isinstance(size, dict):
            return ",".join(f"{k}={v}" for k, v in sorted(size.items()))
        return str(size)


def _require(data: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ValueError(f"{where}.{key} is required")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ValueError(f"{where}.{key} must be of type {kind}, got {value!r}")
    return value


def parse_spec(data: dict[str, Any]) -> DatasetSpec:
    """Validate a preset given as plain data (e.g. from Hydra), with errors naming the bad key."""
    allowed = {"name", "kind", "env", "size_arg", "splits", "env_kwargs", "num_aug", "max_draw_misses", "variants"}
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"preset has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    name = _require(data, "name", str, "preset")
    kind = _require(data, "kind", str, "preset")
    if kind not in KINDS:
        raise ValueError(f"preset.kind must be one of {KINDS}, got {kind!r}")
    env = _require(data, "env", str, "preset")
    if env not in ENVS:
        raise ValueError(f"preset.env must be one of {sorted(ENVS)}, got {env!r}")
    size_arg = _require(data, "size_arg", str, "preset")
    env_kwargs = dict(data.get("env_kwargs") or {})
    num_aug = data.get("num_aug", 0)
    if not isinstance(num_aug, int) or num_aug < 0:
        raise ValueError(f"preset.num_aug must be an int >= 0, got {num_aug!r}")
    misses = data.get("max_draw_misses", 200)
    if not isinstance(misses, int) or misses < 1:
        raise ValueError(f"preset.max_draw_misses must be an int >= 1, got {misses!r}")
    variants = data.get("variants", False)
    if not isinstance(variants, bool):
        raise ValueError(f"preset.variants must be true or false, got {variants!r}")
    raw_splits = _require(data, "splits", dict, "preset")
    if not raw_splits:
        raise ValueError("preset.splits must name at least one split")
    splits = {}
    for split_name, raw in raw_splits.items():
        where = f"preset.splits.{split_name}"
        if not isinstance(raw, dict) or set(raw) - {"sizes", "puzzles", "seed"}:
            raise ValueError(f"{where} must be a mapping with keys sizes, puzzles, seed; got {raw!r}")
        sizes = _require(raw, "sizes", (list, tuple), where)
        if not sizes:
            raise ValueError(f"{where}.sizes must not be empty")
        puzzles = _require(raw, "puzzles", int, where)
        if puzzles < 1:
            raise ValueError(f"{where}.puzzles must be >= 1, got {puzzles}")
        splits[split_name] = SplitSpec(tuple(dict(s) if isinstance(s, dict) else s for s in sizes), puzzles, _require(raw, "seed", int, where))
    seeds = [s.seed for s in splits.values()]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"preset.splits must use distinct seeds, got {seeds}")
    return DatasetSpec(name, kind, env, size_arg, splits, env_kwargs, num_aug, misses, variants)
