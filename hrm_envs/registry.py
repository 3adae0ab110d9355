"""The suite's one table of environments: one ``EnvSpec`` row per env id, read by every per-env lookup.

Gymnasium registration (``hrm_envs``), ``oracles.oracle_for``, ``hrm_envs.encoding.encoder_for``,
``train.datasets.augment.augmentation_for`` / ``puzzle_of`` and the seq2seq solution check of
``train.datasets.validate`` all answer from ``ENVS``. Adding a fifth environment means adding one row here.

The members of a row are ``"module:attr"`` strings, imported by :func:`load` on first use: this package
may not import ``oracles`` (which imports ``hrm_envs``) nor the training code, and a string names them
without an import.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import gymnasium as gym


@dataclass(frozen=True)
class EnvSpec:
    """One environment and its parts, each a ``"module:attr"`` reference (see :func:`load`).

    ``entry_point``: the env class; ``oracle``: the oracle class (built without arguments); ``encoder``:
    the encoder class (built from an observation space). Seq2seq envs (whole puzzle in, whole solution
    out) set all three of ``augmentation`` (observation space -> ``Augmentation``), ``puzzle`` (observation
    -> the ``reset(options={"puzzle": ...})`` value that starts an episode there) and ``solution_check``
    (``(obs, labels, cost) -> bool``: the labels are a valid optimal solution); other envs set none.
    ``label_metrics`` (optional, seq2seq envs): ``(obs, predicted labels) -> dict`` of quality measures of one
    predicted solution that a token accuracy hides (city routing: arrived, valid, path F1, ...), which
    ``train.supervised`` averages over its held-out examples. ``move_field`` / ``follow_field`` (optional, together):
    ``obs -> (T, K) bool`` the oracle's optimal moves of every token towards the goal (an auxiliary target) and
    ``(obs, (T, K) move scores) -> labels`` the solution that walks a predicted field from the start;
    ``field_break`` (optional, with them): ``(obs, scores) -> {"time_to_goal", "share"} | None`` the oracle distance
    to the goal at which that walk first takes a non-optimal move (``train.evaluate data=DIR``'s ``breaks``);
    ``cost_field`` (optional, with them): ``obs -> (T,) float`` each token's scaled optimal cost to the goal (NaN:
    none), a regression target beside the move field. ``variant_names`` (optional): the names of a base puzzle's
    variants, by ``puzzle_variant`` id (city routing: the vehicles), which per-variant reports are keyed by.
    ``answer_keys`` (optional): ``obs batch -> list[bytes | None]``, the identity of each state's answer (Sudoku:
    its puzzle's solution grid); ``train.evaluate``'s ``held_out_from`` then also replaces evaluation puzzles whose
    answer occurs among the training states', not only those that start in one.
    """

    id: str
    entry_point: str
    oracle: str
    encoder: str
    augmentation: str | None = None
    puzzle: str | None = None
    solution_check: str | None = None
    label_metrics: str | None = None
    move_field: str | None = None
    follow_field: str | None = None
    cost_field: str | None = None
    field_break: str | None = None
    variant_names: str | None = None
    answer_keys: str | None = None

    def __post_init__(self) -> None:
        if (self.move_field is None) != (self.follow_field is None):
            raise ValueError(f"EnvSpec {self.id!r}: move_field and follow_field must be both set or both None")
        if self.cost_field is not None and self.move_field is None:
            raise ValueError(f"EnvSpec {self.id!r}: cost_field needs move_field (it is read beside the move field)")
        if self.field_break is not None and self.follow_field is None:
            raise ValueError(f"EnvSpec {self.id!r}: field_break needs move_field and follow_field")
        seq2seq = {"augmentation": self.augmentation, "puzzle": self.puzzle, "solution_check": self.solution_check}
        if len({value is None for value in seq2seq.values()}) > 1:
            raise ValueError(f"EnvSpec {self.id!r}: augmentation, puzzle and solution_check must be all set or all None, "
                             f"got {seq2seq}")

    @property
    def seq2seq(self) -> bool:
        """Whether the env has seq2seq data sets (augmentation, puzzle and solution check)."""
        return self.solution_check is not None


ENVS: dict[str, EnvSpec] = {
    spec.id: spec
    for spec in (
        EnvSpec(
            id="hrm/Hanoi-v0",
            entry_point="hrm_envs.hanoi.env:HanoiEnv",
            oracle="oracles.hanoi:HanoiOracle",
            encoder="hrm_envs.hanoi.encoding:HanoiEncoder",
        ),
        EnvSpec(
            id="hrm/Maze-v0",
            entry_point="hrm_envs.maze.env:MazeEnv",
            oracle="oracles.maze:MazeOracle",
            encoder="hrm_envs.maze.encoding:MazeEncoder",
            augmentation="train.datasets.augment:maze_dihedral",
            puzzle="train.datasets.augment:maze_puzzle",
            solution_check="train.datasets.validate:maze_route_ok",
        ),
        EnvSpec(
            id="hrm/CityRouting-v0",
            entry_point="hrm_envs.city.env:CityRoutingEnv",
            oracle="oracles.city:CityRoutingOracle",
            encoder="hrm_envs.city.encoding:CityEncoder",
            augmentation="train.datasets.augment:city_dihedral",
            puzzle="train.datasets.augment:city_puzzle",
            solution_check="train.datasets.validate:city_route_ok",
            label_metrics="hrm_envs.city.metrics:label_metrics",
            move_field="hrm_envs.city.metrics:optimal_moves",
            follow_field="hrm_envs.city.metrics:follow_field",
            cost_field="hrm_envs.city.metrics:cost_to_go",
            field_break="hrm_envs.city.metrics:field_break",
            variant_names="hrm_envs.city.generator:VEHICLES",
        ),
        EnvSpec(
            id="hrm/Sudoku-v0",
            entry_point="hrm_envs.sudoku.env:SudokuEnv",
            oracle="oracles.sudoku:SudokuOracle",
            encoder="hrm_envs.sudoku.encoding:SudokuEncoder",
            augmentation="train.datasets.augment:sudoku_shuffle",
            puzzle="train.datasets.augment:sudoku_puzzle",
            solution_check="train.datasets.validate:sudoku_solution_ok",
            answer_keys="hrm_envs.sudoku.env:solution_keys",
        ),
    )
}


def load(reference: str) -> Any:
    """The object a ``"module:attr"`` reference of a row names (``importlib`` imports the module on first use)."""
    module, sep, attr = reference.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"reference must be 'module:attr', got {reference!r}")
    return getattr(importlib.import_module(module), attr)


def seq2seq_ids() -> list[str]:
    """The ids of the envs with seq2seq data sets, sorted."""
    return sorted(env_id for env_id, spec in ENVS.items() if spec.seq2seq)


def env_id_of(env_or_id: gym.Env | str | type) -> str:
    """The registered id (``"hrm/Hanoi-v0"``) of an env instance, wrapper, class or id string."""
    if isinstance(env_or_id, str):
        env_id = env_or_id.split(":", 1)[1] if env_or_id.startswith("hrm_envs:") else env_or_id
        if env_id not in ENVS:
            raise ValueError(f"env id must be one of {sorted(ENVS)}, got {env_or_id!r}")
        return env_id
    cls = env_or_id if isinstance(env_or_id, type) else type(getattr(env_or_id, "unwrapped", env_or_id))
    entry = f"{cls.__module__}:{cls.__qualname__}"
    for env_id, spec in ENVS.items():
        if spec.entry_point == entry:
            return env_id
    raise ValueError(f"env must be one of this suite's environments {sorted(ENVS)}, got {cls.__name__}")


def env_spec(env_or_id: gym.Env | str | type) -> EnvSpec:
    """The registry row of an env instance, wrapper, class or id (a ValueError naming the ids if unknown)."""
    return ENVS[env_id_of(env_or_id)]
