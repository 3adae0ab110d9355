"""A run's metrics and JSON files: ``MetricsLogger`` and strict JSON (``strict_json``, ``write_json``).

``MetricsLogger(out_dir, enabled, resume_step)`` writes TensorBoard scalars and ``metrics.jsonl`` rows
``{"step", "epoch", "phase", <metrics>}``; disabled loggers (DDP ranks > 0) do nothing. A fresh run
(``resume_step=None``) starts a new log; a resumed one drops rows and TensorBoard events after its checkpoint's
step. Every JSON a run writes is strict (``strict_json`` / ``write_json``: NaN and infinities as ``null``);
``write_text`` / ``write_json`` write atomically.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


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


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to a temporary file in the same folder, then rename: a kill leaves the old file or the new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented strict JSON (:func:`strict_json`) atomically: the runs' ``final.json`` etc."""
    write_text(path, strict_json(data, indent=1) + "\n")


def _truncate_jsonl(path: str | Path, step: int) -> None:
    """Drop metric rows written after ``step`` (the checkpoint a resumed run continues from), atomically."""
    path = Path(path)
    if path.is_file():
        rows = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
        write_text(path, "".join(row + "\n" for row in rows))


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
