"""Answer-preserving transforms of observations, for augmentation groups and symmetry-aware overlap checks.

One mechanism for every environment: an ``Augmentation`` maps an observation and a parameter row to
the observation of the transformed puzzle, which the oracle then labels afresh (labels stay exactly
optimal, and the canonical route of the transformed puzzle is used, not a transformed route).

- ``Dihedral`` (maze, city routing): the 8 symmetries of the square, parameter ``k`` in 0..7 =
  ``k % 4`` quarter turns counter-clockwise (``np.rot90``), then a transpose if ``k >= 4``. Grids are
  transformed on the puzzle's own extent (padding stays bottom-right), cells move with them, and
  direction codes (city one-way streets, the action mask) are permuted.
- ``SudokuShuffle`` (sudoku): HRM's validity-preserving shuffles: a digit permutation, an optional
  transpose, a permutation of the bands and of the rows inside each band, the same for stacks and
  columns. Parameters: ``[digit map (n), transpose (1), row order (n), column order (n)]``.

``canonical_key`` hashes an observation up to the transforms of its augmentation (the smallest hash
over the dihedral orbit) and without the keys that only tell variants of one base scenario apart
(the city's vehicle), so overlap checks catch a test puzzle that is a rotated train puzzle.

Each env's augmentation and puzzle function are named by its row of ``hrm_envs.registry.ENVS``.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from hrm_envs.city.env import parse_observation
from hrm_envs.core import MOVES
from hrm_envs.registry import env_spec, load, seq2seq_ids
from hrm_envs.sudoku.env import action_masks
from train.datasets.storage import content_hash

Obs = dict[str, np.ndarray]


class Augmentation(ABC):
    """Transforms of one environment's observations; parameter rows of length ``num_params``."""

    name: str
    num_params: int
    #: distinct non-identity transforms available
    max_variants: int
    #: observation keys that differ between the variants of one base scenario (ignored by ``canonical_key``)
    variant_keys: tuple[str, ...] = ()

    @abstractmethod
    def identity(self, obs: Obs) -> np.ndarray:
        """The parameter row of the identity transform."""

    @abstractmethod
    def sample(self, rng: np.random.Generator, obs: Obs, count: int) -> np.ndarray:
        """``count`` non-identity parameter rows, shape ``(count, num_params)``, distinct where the group allows."""

    @abstractmethod
    def apply(self, obs: Obs, params: np.ndarray) -> Obs:
        """The observation of the transformed puzzle (a valid observation of the same environment)."""

    def orbit(self, obs: Obs) -> list[Obs]:
        """Observations whose smallest hash is the canonical key (default: the observation alone)."""
        return [obs]

    def canonical_key(self, obs: Obs) -> str:
        """Content hash up to this augmentation's symmetries, without ``action_mask`` and ``variant_keys``."""
        skip = {"action_mask", *self.variant_keys}
        return min(content_hash(*(o[k] for k in sorted(o) if k not in skip)) for o in self.orbit(obs))


@dataclass(frozen=True)
class GridLayout:
    """Where an environment keeps its grids: ``grids`` maps a key to its padding value; ``cells`` are
    (row, col) keys; ``direction_grids`` hold 0 or ``1 + direction``; ``extent`` gives the puzzle's (h, w)."""

    grids: dict[str, int]
    cells: tuple[str, ...]
    direction_grids: tuple[str, ...]
    extent: Callable[[Obs], tuple[int, int]]


def _dihedral(array: np.ndarray, k: int) -> np.ndarray:
    out = np.rot90(array, k % 4)
    return out.T if k >= 4 else out


def _direction_permutation(k: int) -> np.ndarray:
    """``perm[d]``: the direction that direction ``d`` becomes under transform ``k``."""
    index = _dihedral(np.arange(9).reshape(3, 3), k)
    where = {int(v): divmod(i, 3) for i, v in enumerate(index.ravel())}
    r0, c0 = where[4]
    moved = [where[(1 + dr) * 3 + 1 + dc] for dr, dc in MOVES]
    return np.array([MOVES.index((r - r0, c - c0)) for r, c in moved])


_PERMUTATIONS = [_direction_permutation(k) for k in range(8)]


@functools.lru_cache(maxsize=256)
def _cell_map(h: int, w: int, k: int) -> tuple[list[int], int]:
    """Where transform ``k`` moves each flat cell of an ``h x w`` grid, and the new width."""
    flat = _dihedral(np.arange(h * w).reshape(h, w), k)
    where = np.empty(h * w, dtype=np.int64)
    where[flat.ravel()] = np.arange(h * w)
    return where.tolist(), flat.shape[1]


class Dihedral(Augmentation):
    """The 8 symmetries of the square on a grid environment; see the module docstring."""

    name = "dihedral"
    num_params = 1
    max_variants = 7

    def __init__(self, layout: GridLayout, variant_keys: tuple[str, ...] = ()):
        self.layout = layout
        self.variant_keys = variant_keys

    def identity(self, obs: Obs) -> np.ndarray:
        return np.zeros(1, dtype=np.int64)

    def sample(self, rng: np.random.Generator, obs: Obs, count: int) -> np.ndarray:
        if count > self.max_variants:
            raise ValueError(f"num_aug must be <= {self.max_variants} for dihedral augmentation, got {count}")
        return np.sort(rng.permutation(np.arange(1, 8))[:count]).reshape(-1, 1)

    def apply(self, obs: Obs, params: np.ndarray) -> Obs:
        k = int(np.asarray(params).reshape(-1)[0])
        if not 0 <= k < 8:
            raise ValueError(f"params must hold a dihedral transform id in 0..7, got {k}")
        layout = self.layout
        h, w = layout.extent(obs)
        out = {key: np.array(value, copy=True) for key, value in obs.items()}
        perm = _PERMUTATIONS[k]
        for key, pad in layout.grids.items():
            grid = np.asarray(obs[key])
            block = _dihedral(grid[:h, :w], k)
            if key in layout.direction_grids:
                codes = np.concatenate([[0], 1 + perm]).astype(grid.dtype)
                block = codes[block]
            new = np.full_like(grid, pad)
            new[: block.shape[0], : block.shape[1]] = block
            out[key] = new
        where, new_w = _cell_map(h, w, k)
        for key in layout.cells:
            r, c = (int(v) for v in obs[key])
            out[key] = np.array(divmod(where[r * w + c], new_w), dtype=np.asarray(obs[key]).dtype)
        if "action_mask" in obs:
            mask = np.asarray(obs["action_mask"])
            out["action_mask"] = np.zeros_like(mask)
            out["action_mask"][perm] = mask
        return out

    def orbit(self, obs: Obs) -> list[Obs]:
        return [self.apply(obs, np.array([k])) for k in range(8)]


class SudokuShuffle(Augmentation):
    """HRM's Sudoku augmentation; see the module docstring."""

    name = "sudoku_shuffle"

    def __init__(self, box: int):
        self.box, self.n = box, box * box
        self.num_params = 3 * self.n + 1
        # digit maps x transpose x (band order x row orders in each band), the same for columns; minus the identity
        self.max_variants = math.factorial(self.n) * 2 * math.factorial(box) ** (2 * box + 2) - 1

    def identity(self, obs: Obs) -> np.ndarray:
        order = np.arange(self.n)
        return np.concatenate([order, [0], order, order]).astype(np.int64)

    def _order(self, rng: np.random.Generator) -> np.ndarray:
        return np.concatenate([band * self.box + rng.permutation(self.box) for band in rng.permutation(self.box)])

    def sample(self, rng: np.random.Generator, obs: Obs, count: int) -> np.ndarray:
        rows = {tuple(self.identity(obs))}
        while len(rows) <= count:
            rows.add(tuple(np.concatenate([rng.permutation(self.n), [rng.integers(2)], self._order(rng), self._order(rng)])))
        rows.discard(tuple(self.identity(obs)))
        return np.array(sorted(rows), dtype=np.int64).reshape(count, self.num_params)

    def _valid(self, params: np.ndarray) -> bool:
        n, box = self.n, self.box
        if params.shape != (self.num_params,) or params[n] not in (0, 1) or sorted(params[:n]) != list(range(n)):
            return False
        for order in (params[n + 1 : 2 * n + 1], params[2 * n + 1 :]):
            bands = order.reshape(box, box) // box  # each band's rows must stay together
            if sorted(order) != list(range(n)) or (bands != bands[:, :1]).any():
                return False
        return True

    def apply(self, obs: Obs, params: np.ndarray) -> Obs:
        n, params = self.n, np.asarray(params)
        if not self._valid(params):
            raise ValueError(f"params must be [digit map, transpose, row order, column order] of a {n}x{n} Sudoku, got {params}")
        digits = np.concatenate([[0], params[:n] + 1]).astype(np.int8)
        out = dict(obs)
        for key in ("grid", "givens"):
            grid = np.asarray(obs[key])
            grid = grid.T if params[n] else grid
            out[key] = np.ascontiguousarray(grid[params[n + 1 : 2 * n + 1]][:, params[2 * n + 1 :]])
        out["grid"] = digits[out["grid"]]
        if "action_mask" in obs:
            out["action_mask"] = action_masks(out["grid"].ravel(), out["givens"].ravel(), self.box)
        return out


def _maze_extent(obs: Obs) -> tuple[int, int]:
    inside = np.asarray(obs["walls"]) != 2
    return int(inside.any(axis=1).sum()), int(inside.any(axis=0).sum())


def _city_extent(obs: Obs) -> tuple[int, int]:
    size = int((np.asarray(obs["street"])[:, 0] != 0).sum())
    return size, size


def maze_dihedral(space: gym.spaces.Dict) -> Augmentation:
    """The maze's augmentation (the registry row's ``augmentation``)."""
    return Dihedral(GridLayout({"walls": 2}, ("position", "goal"), (), _maze_extent))


def city_dihedral(space: gym.spaces.Dict) -> Augmentation:
    """City routing's augmentation; the vehicle only tells variants of one base scenario apart."""
    layout = GridLayout({"street": 0, "traffic": 0, "oneway": 0}, ("position", "destination"), ("oneway",), _city_extent)
    return Dihedral(layout, variant_keys=("vehicle",))


def sudoku_shuffle(space: gym.spaces.Dict) -> Augmentation:
    """Sudoku's augmentation, for the box size of the observation space's grid."""
    return SudokuShuffle(int(round(space["grid"].shape[0] ** 0.5)))


def maze_puzzle(obs: Obs) -> Any:
    """The maze puzzle (``reset(options={"puzzle": ...})`` value) shown by ``obs``."""
    h, w = _maze_extent(obs)
    return {"walls": np.asarray(obs["walls"])[:h, :w] == 1, "start": tuple(obs["position"]), "goal": tuple(obs["goal"])}


def city_puzzle(obs: Obs) -> Any:
    """The city scenario shown by ``obs``."""
    return parse_observation(obs)


def sudoku_puzzle(obs: Obs) -> Any:
    """The Sudoku puzzle (the givens) shown by ``obs``."""
    return np.where(np.asarray(obs["givens"]) == 1, obs["grid"], 0)


def augmentation_for(env_id: str, observation_space: gym.spaces.Dict) -> Augmentation | None:
    """The augmentation of an environment's observations (its registry row's), or None if it has none."""
    reference = env_spec(env_id).augmentation
    return load(reference)(observation_space) if reference else None


def puzzle_of(env_id: str, obs: Obs) -> Any:
    """The ``reset(options={"puzzle": ...})`` value that starts an episode at ``obs`` (augmented envs only)."""
    reference = env_spec(env_id).puzzle
    if reference is None:
        raise ValueError(f"env_id must be one with an augmentation, one of {seq2seq_ids()}; got {env_id!r}")
    return load(reference)(obs)
