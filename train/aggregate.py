"""The DAgger aggregate on disk: round files, their manifest, and the readers of the demonstration export.

``train.dagger`` writes one round file per collection round into ``<out>/aggregate/`` (:func:`save_round`) and
trains on all of them (:class:`Aggregate`); ``train.evaluate``'s ``held_out_from`` and :func:`episodes` read
them back. ``aggregate/manifest.json`` (rewritten atomically after each round file) records every round file's
name, byte size, sha256 and row count; :func:`load_round`, :func:`aggregate_rounds` and every reader built on
them check the files against it and refuse a missing, truncated or altered round with a ``ValueError`` naming
the file (an aggregate written before manifests is checked for gaps and readability; a resumed run records its
manifest: ``aggregate_rounds(..., adopt=True)``).

Demonstration export: each ``aggregate/round_NNNN.npz`` (``numpy.load``; see :func:`save_round`) holds
``obs.<key>`` / ``next_obs.<key>`` (the env's Dict observation, one row per step), ``action`` (executed),
``expert_action`` (the oracle's canonical action), ``optimal`` (bool, the whole optimal set), ``learner_action``
(-1 where not queried), ``expert_executed``, ``segments``, ``reward``, ``terminated``, ``truncated``, ``done``,
``success``, ``env_index`` (the sub-env of the vector env each row came from; 0 in a ``dagger.init=dataset``
round 0; missing in files written before it, read as -1) and the scalars ``round`` and ``beta``. A round's rows
are sub-env by sub-env, each sub-env's steps in order; an episode ends at ``done`` or where ``env_index``
changes (the last episode of a sub-env is cut by the end of the round: splitting on ``done`` alone would join
it to the next sub-env's first episode). :func:`episodes` reads a round file, an aggregate or a run folder and
yields whole episodes (:class:`Demonstration`: ``obs`` with T + 1 rows, every state then the final next_obs;
``expert_actions`` and executed ``actions``, T each; ``terminal`` / ``truncated``; cut episodes flagged
``finished=False``), the shape of ``imitation.data.types.Trajectory(obs=DictObs(obs), acts=expert_actions,
infos=None, terminal=terminal)`` (README: using them with ``imitation``, which needs its own environment).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from oracles.base import Oracle
from train.datasets import StepwiseSplit
from train.datasets.storage import load_json
from train.rollout import Transitions

MANIFEST = "manifest.json"


def round_name(round_index: int) -> str:
    return f"round_{round_index:04d}.npz"


def round_path(out: Path, round_index: int) -> Path:
    return out / "aggregate" / round_name(round_index)


def save_round(path: Path, transitions: Transitions, round_index: int, beta: float) -> None:
    """Write one round (the documented demonstration format) atomically: temporary file, then rename; then
    record it in the folder's manifest (:func:`record_round`)."""
    arrays: dict[str, np.ndarray] = {"round": np.array(round_index), "beta": np.array(beta),
                                     "done": transitions.done}
    for name, value in vars(transitions).items():
        if isinstance(value, dict):
            arrays.update({f"{name}.{key}": array for key, array in value.items()})
        else:
            arrays[name] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    record_round(path, len(transitions))


def file_digest(path: Path) -> dict[str, Any]:
    """Byte size and sha256 of a file, as the manifest records them."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def read_manifest(folder: Path) -> dict[str, dict[str, Any]] | None:
    """The aggregate folder's manifest, file name -> entry; None when it has none (written before manifests)."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    data = load_json(path)
    rounds = data.get("rounds") if isinstance(data, dict) else None
    fields = {"file", "bytes", "sha256", "rows"}
    if not isinstance(rounds, list) or not all(isinstance(e, dict) and fields <= set(e) for e in rounds):
        raise ValueError(f"manifest {path} is damaged: it must hold 'rounds', a list of entries with {sorted(fields)}")
    return {entry["file"]: entry for entry in rounds}


def record_round(path: Path, rows: int) -> None:
    """Add (or replace) the round file ``path`` in its folder's manifest (file name, byte size, sha256, row
    count), atomically: a kill leaves the old manifest or the new one."""
    manifest = read_manifest(path.parent) or {}
    manifest[path.name] = {"file": path.name, **file_digest(path), "rows": int(rows)}
    target = path.parent / MANIFEST
    tmp = target.with_name(f".{MANIFEST}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps({"rounds": [manifest[name] for name in sorted(manifest)]}, indent=1) + "\n")
    os.replace(tmp, target)


def check_round_file(path: Path, entry: dict[str, Any], sha256: bool = True) -> None:
    """``ValueError`` naming ``path`` when it is missing or its size (or, with ``sha256``, its sha256) differs
    from its manifest entry."""
    if not path.is_file():
        raise ValueError(f"round file {path} is missing (listed in {path.parent / MANIFEST} with {entry['rows']} "
                         "rows): restore it, or start the run anew")
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise ValueError(f"round file {path} is damaged: {size} bytes, {entry['bytes']} when written "
                         f"({path.parent / MANIFEST})")
    if sha256 and file_digest(path)["sha256"] != entry["sha256"]:
        raise ValueError(f"round file {path} is damaged: its sha256 differs from the one written in "
                         f"{path.parent / MANIFEST}")


def unrecorded(path: Path) -> str:
    """The message for a round file that its folder's manifest does not list."""
    return (f"round file {path} is not in {path.parent / MANIFEST}: written by a run killed before recording it "
            "(resume the run to record it) or put there by hand")


def read_round(path: Path) -> tuple[Transitions, int, float]:
    """A round file's contents, unchecked against the manifest (see :func:`load_round`). Files written before
    ``env_index`` was recorded get -1 there (sub-env unknown; :func:`episode_starts` splits them by obs)."""
    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as error:
        raise ValueError(f"round file {path} is unreadable: {error}") from None
    fields = {}
    for name in Transitions.__dataclass_fields__:
        if name in ("obs", "next_obs"):
            fields[name] = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(name + ".")}
        elif name in arrays:
            fields[name] = arrays[name]
        elif name == "env_index" and "action" in arrays:
            fields[name] = np.full(len(arrays["action"]), -1, np.int64)
        else:
            raise ValueError(f"round file {path} has no {name!r} array")
    return Transitions(**fields), int(arrays["round"]), float(arrays["beta"])


def load_round(path: str | Path) -> tuple[Transitions, int, float]:
    """A round written by :func:`save_round`: transitions, round index and beta. Checked against its folder's
    manifest when there is one (``ValueError`` naming the file if the manifest does not list it or its size,
    sha256 or row count differ); a folder without one (written before manifests) is read as it is."""
    path = Path(path)
    manifest = read_manifest(path.parent)
    if manifest is None:
        return read_round(path)
    if path.name not in manifest:
        raise ValueError(unrecorded(path))
    entry = manifest[path.name]
    check_round_file(path, entry)
    transitions, round_index, beta = read_round(path)
    if len(transitions) != entry["rows"]:
        raise ValueError(f"round file {path} is damaged: {len(transitions)} rows, {entry['rows']} when written")
    return transitions, round_index, beta


def aggregate_rounds(source: str | Path, adopt: bool = False) -> list[Path]:
    """The round files of an aggregate (``source``: the ``aggregate`` folder or its run folder), in order.

    Every file the manifest lists must be there with its recorded size (sha256 and row count are checked when
    it is loaded, :func:`load_round`), and the rounds must be numbered 0, 1, ... without a gap: ``ValueError``
    naming the first missing or damaged file. Round files the manifest does not list (all of them in an
    aggregate written before manifests; the last round of a run killed between writing and recording it) are
    refused when there is a manifest, unless ``adopt`` (a resumed run): then they are read and recorded.
    """
    source = Path(source)
    folder = source / "aggregate" if (source / "aggregate").is_dir() else source
    on_disk = sorted(path.name for path in folder.glob("round_*.npz"))
    manifest = read_manifest(folder)
    listed = manifest or {}
    for name, entry in listed.items():
        check_round_file(folder / name, entry, sha256=False)
    unlisted = [name for name in on_disk if name not in listed]
    if manifest is not None and unlisted and not adopt:
        raise ValueError(unrecorded(folder / unlisted[0]))
    names = sorted({*listed, *on_disk})
    for index, name in enumerate(names):
        if name != round_name(index):
            raise ValueError(f"round file {folder / round_name(index)} is missing: the aggregate holds {names[-1]}")
    if adopt:
        rows = {name: len(read_round(folder / name)[0]) for name in unlisted}  # all readable before any is recorded
        for name, count in rows.items():
            record_round(folder / name, count)
    return [folder / name for name in names]


def dataset_round(root: Path) -> Transitions:
    """The training split of a step-wise data set as oracle-only transitions (dones at puzzle ends)."""
    split = StepwiseSplit(root, "train")
    rows = np.arange(split.num_samples)
    obs = split.obs_batch(rows)
    last = np.zeros(split.num_samples, bool)
    last[split.offsets[1:] - 1] = True
    following = np.where(last, rows, rows + 1)  # after the final STOP the state stays
    optimal = np.unpackbits(split.optimal_bits, axis=1, count=split.num_actions).astype(bool)
    n = split.num_samples
    return Transitions(
        obs=obs, next_obs={k: v[following] for k, v in obs.items()}, action=split.action.copy(),
        expert_action=split.action.copy(), optimal=optimal, learner_action=np.full(n, -1, np.int64),
        expert_executed=np.ones(n, bool), segments=np.zeros(n, np.int64),
        reward=np.zeros(n, np.float32), terminated=last, truncated=np.zeros(n, bool), success=last,
        env_index=np.zeros(n, np.int64),
    )


def episode_starts(transitions: Transitions) -> np.ndarray:
    """Whether each row begins an episode: the first row, a row after a ``done``, a row of another sub-env
    than the previous row (``env_index``: rows of one sub-env are consecutive) or a row that is not the
    previous row's ``next_obs`` (which also finds the sub-env blocks of round files without ``env_index``)."""
    n = len(transitions)
    starts = np.ones(n, bool)
    if n > 1:
        follows = ~transitions.done[:-1] & (transitions.env_index[1:] == transitions.env_index[:-1])
        for key, value in transitions.obs.items():
            follows &= (transitions.next_obs[key][:-1] == value[1:]).reshape(n - 1, -1).all(axis=1)
        starts[1:] = ~follows
    return starts


@dataclass
class Demonstration:
    """One whole episode of a round file, in order (:func:`episodes`): ``T`` decisions."""

    obs: dict[str, np.ndarray]  # T + 1 rows: every state, then the last step's next_obs
    expert_actions: np.ndarray  # (T,) the oracle's canonical action in each state (the DAgger labels)
    actions: np.ndarray  # (T,) the executed actions (the mixture's), which led to the next state
    terminal: bool  # ended by termination (the puzzle solved, or lost for good)
    truncated: bool  # cut by the env's max_steps or dagger.horizon
    finished: bool  # False: cut by the end of its round's collection (neither terminal nor truncated)
    success: bool
    env_index: int  # the sub-env it came from (-1: a round file written before env_index was recorded)
    round: int
    rows: np.ndarray  # its rows in the round file


def episodes(source: str | Path) -> Iterator[Demonstration]:
    """The episodes of a DAgger export in order: ``source`` is a round file, an ``aggregate`` folder or a
    ``train.dagger`` run folder (every round, checked by :func:`aggregate_rounds` and :func:`load_round`).

    Episodes are split at ``done`` and where the sub-env changes (:func:`episode_starts`), so no episode joins
    rows of two sub-envs. An episode cut by the end of its round's collection is yielded too, with
    ``finished`` False (and ``terminal`` False: to an imitation library, a truncated trajectory); skip those
    to keep whole puzzles only.
    """
    source = Path(source)
    paths = [source] if source.is_file() else aggregate_rounds(source)
    if not paths:
        raise ValueError(f"episodes needs a round file, an aggregate folder or a train.dagger run folder with "
                         f"round files, got {str(source)!r}")
    for path in paths:
        transitions, round_index, _ = load_round(path)
        starts = np.flatnonzero(episode_starts(transitions))
        for begin, end in zip(starts, [*starts[1:], len(transitions)]):
            last = end - 1
            yield Demonstration(
                obs={key: np.concatenate([value[begin:end], transitions.next_obs[key][last:end]])
                     for key, value in transitions.obs.items()},
                expert_actions=transitions.expert_action[begin:end], actions=transitions.action[begin:end],
                terminal=bool(transitions.terminated[last]), truncated=bool(transitions.truncated[last]),
                finished=bool(transitions.done[last]), success=bool(transitions.success[last]),
                env_index=int(transitions.env_index[begin]), round=round_index, rows=np.arange(begin, end),
            )


class Aggregate:
    """Every labelled state so far as model inputs: tokens, legal mask, optimal set; with ``token_oracle``
    also its per-token ``labels`` (:meth:`oracles.base.Oracle.token_labels`, recomputed from the stored states), and
    with ``token_costs`` each token's ``cost`` to the goal (:meth:`oracles.base.Oracle.token_costs`, ``front_rate``).

    :meth:`sample` draws rows uniformly; :meth:`stream` walks whole episodes in order (``episode_carry``)."""

    def __init__(self, encoder: Any, token_oracle: Oracle | None = None, token_costs: bool = False):
        if token_costs and token_oracle is None:
            raise ValueError("token_costs=True needs a token_oracle (the costs sit beside its per-token labels)")
        self.encoder, self.token_oracle, self.token_costs = encoder, token_oracle, token_costs
        self.parts: dict[str, list[torch.Tensor]] = {key: [] for key in self.keys}
        self.starts: list[torch.Tensor] = []
        self.size = 0
        self._cat: dict[str, torch.Tensor] | None = None
        self._streams: torch.Tensor | None = None  # the row each stream of :meth:`stream` is at

    @property
    def keys(self) -> tuple[str, ...]:
        return ("tokens", "action_mask", "optimal") + (("labels",) if self.token_oracle is not None else ()) + (
            ("cost",) if self.token_costs else ())

    def add(self, transitions: Transitions) -> None:
        obs = transitions.obs
        self.parts["tokens"].append(torch.from_numpy(self.encoder.tokens(obs)))
        self.parts["action_mask"].append(torch.from_numpy(obs["action_mask"].astype(bool)))
        self.parts["optimal"].append(torch.from_numpy(transitions.optimal))
        if self.token_oracle is not None:
            self.parts["labels"].append(torch.from_numpy(self.token_oracle.token_labels(obs).astype(np.int64)))
        if self.token_costs:
            self.parts["cost"].append(torch.from_numpy(self.token_oracle.token_costs(obs)))
        self.starts.append(torch.from_numpy(episode_starts(transitions)))
        self.size += len(transitions)
        self._cat = None

    def _tensors(self) -> dict[str, torch.Tensor]:
        if self._cat is None:
            self._cat = {key: torch.cat(parts) for key, parts in self.parts.items()}
            self._cat["starts"] = torch.cat(self.starts)
        return self._cat

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        rows = torch.randint(0, self.size, (batch_size,), generator=generator)
        return {key: value[rows] for key, value in self._tensors().items() if key != "starts"}

    def restart_streams(self) -> None:
        """Make the next :meth:`stream` call draw every stream's episode afresh."""
        self._streams = None

    def stream(self, batch_size: int, generator: torch.Generator, advance: torch.Tensor | None,
               restart: float = 0.0) -> dict[str, torch.Tensor]:
        """A batch of ``batch_size`` streams, each walking one episode state by state (for ``episode_carry``).

        ``advance`` (the learner's ``carry.halted``; None at the start) marks the streams whose current state
        the model has finished: they move to their episode's next state (``continues`` true: the carry goes
        on) or, after the episode's last state, to the first state of an episode drawn uniformly (``continues``
        false). With probability ``restart`` an advancing stream instead jumps to a state drawn uniformly from
        the whole aggregate, with a fresh carry: shorter unrolls over more puzzles per optimizer step (16
        streams on whole episodes see a few puzzles for dozens of steps). The other rows repeat their state;
        the model keeps working on its copy of it.
        """
        cat = self._tensors()
        starts = cat["starts"].nonzero().squeeze(1)
        fresh = torch.ones(batch_size, dtype=torch.bool)
        if self._streams is None or len(self._streams) != batch_size or advance is None:
            rows = starts[torch.randint(0, len(starts), (batch_size,), generator=generator)]
        else:
            advance = advance.cpu().bool()
            following = self._streams + 1
            ended = following >= self.size
            ended[~ended] = cat["starts"][following[~ended]]
            drawn = starts[torch.randint(0, len(starts), (batch_size,), generator=generator)]
            jump = torch.rand(batch_size, generator=generator) < restart
            anywhere = torch.randint(0, self.size, (batch_size,), generator=generator)
            following = torch.where(ended, drawn, following)
            rows = torch.where(advance, torch.where(jump, anywhere, following), self._streams)
            fresh = advance & (ended | jump)
        self._streams = rows
        batch = {key: value[rows] for key, value in cat.items() if key != "starts"}
        batch["continues"] = ~fresh
        return batch
