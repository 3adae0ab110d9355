"""Atomic, deterministic on-disk data sets: ``.npy`` arrays and sorted JSON, written to a temporary
folder beside the target and renamed into place, so an interrupted build leaves no half data set."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np


def _temporary_name(target: Path, pid: int | str) -> str:
    """The name of the temporary folder in which process ``pid`` builds ``target``."""
    return f".{target.name}.tmp-{pid}"


def _process_exists(pid: int) -> bool:
    """Whether a process with this id runs; when that cannot be told, it counts as running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; an id too large for a process
        pass
    return True


def _remove_stale_temporary_folders(target: Path) -> None:
    """Delete the temporary folders that killed builds of ``target`` left beside it: only folders named as
    ``_temporary_name`` names them whose process is gone."""
    pattern = re.compile(re.escape(_temporary_name(target, "")) + r"([1-9][0-9]*)")
    for path in target.parent.iterdir():
        match = pattern.fullmatch(path.name)
        if match and path.is_dir() and not path.is_symlink() and not _process_exists(int(match[1])):
            shutil.rmtree(path)


@contextlib.contextmanager
def atomic_directory(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``target`` (``ValueError`` if it exists and not ``overwrite``;
    the caller checks that an existing ``target`` may go). Stale temporary folders of killed builds are removed first."""
    target = Path(target)
    if target.exists() and not overwrite:
        raise ValueError(f"out={str(target)!r} already exists; pass overwrite=true to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporary_folders(target)
    tmp = target.parent / _temporary_name(target, os.getpid())
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def save_array(folder: Path, name: str, array: np.ndarray) -> None:
    np.save(folder / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)


def save_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def load_array(path: Path, shape: tuple[int, ...] | None = None, dtype: Any = None) -> np.ndarray:
    """Load one ``.npy``, refusing a missing, truncated or mismatched (shape, dtype) file with an error naming it."""
    if not path.is_file():
        raise ValueError(f"missing data file {path}")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"unreadable or truncated data file {path}: {error}") from None
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"data file {path} has shape {array.shape}, expected {tuple(shape)}")
    if dtype is not None and array.dtype != np.dtype(dtype):
        raise ValueError(f"data file {path} has dtype {array.dtype}, expected {np.dtype(dtype)}")
    return array


def load_json(path: Path) -> Any:
    if not path.is_file():
        raise ValueError(f"missing data file {path}")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:  # unreadable, not UTF-8, not JSON
        raise ValueError(f"unreadable or corrupt JSON in {path}: {error}") from None


def content_hash(*arrays: np.ndarray) -> str:
    """A stable hash of array contents (shape, dtype and bytes)."""
    digest = hashlib.sha1()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
