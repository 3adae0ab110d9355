"""hrm_envs.registry: every row resolves to working parts, and every per-env lookup answers from the one table."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

from hrm_envs import ENVS, EnvSpec, encoder_for, env_id_of
from hrm_envs.encoding import Encoder
from hrm_envs.maze.encoding import MazeEncoder
from hrm_envs.registry import load, seq2seq_ids
from oracles import Oracle, oracle_for
from oracles.hanoi import HanoiOracle
from train.datasets.augment import Augmentation, Dihedral, augmentation_for, puzzle_of
from train.datasets.seq2seq import split_augmentation
from train.datasets.spec import DatasetSpec
from train.datasets.validate import Report, validate_seq2seq

#: Small instances of every env, so each check stays fast.
SMALL = {
    "hrm/Hanoi-v0": {"num_disks": 2},
    "hrm/Maze-v0": {"size": 5, "max_size": 7},
    "hrm/CityRouting-v0": {"size": 8, "max_size": 8},
    "hrm/Sudoku-v0": {"box": 2},
}


def test_the_rows_are_the_suites_envs_and_gymnasium_registers_each_entry_point():
    assert sorted(ENVS) == sorted(SMALL)
    assert seq2seq_ids() == ["hrm/CityRouting-v0", "hrm/Maze-v0", "hrm/Sudoku-v0"]
    for env_id, spec in ENVS.items():
        assert spec.id == env_id
        assert gym.registry[env_id].entry_point == spec.entry_point


@pytest.mark.parametrize("env_id", sorted(SMALL))
def test_every_row_resolves_to_working_parts(env_id):
    spec = ENVS[env_id]
    env_class = load(spec.entry_point)
    assert issubclass(env_class, gym.Env) and env_id_of(env_class) == env_id
    env = gym.make(env_id, **SMALL[env_id])
    obs, _ = env.reset(seed=0)
    oracle = load(spec.oracle)()
    assert isinstance(oracle, Oracle) and oracle.optimal_actions(obs)
    encoder = load(spec.encoder)(env.observation_space)
    assert isinstance(encoder, Encoder) and encoder.tokens(obs).shape == (encoder.seq_len,)
    if spec.answer_keys is not None:  # Sudoku: one key per state, the same for a state and its fresh puzzle
        keys = load(spec.answer_keys)({k: np.stack([obs[k], obs[k]]) for k in obs})
        assert len(keys) == 2 and isinstance(keys[0], bytes) and keys[0] == keys[1]
    if not spec.seq2seq:
        assert spec.augmentation is spec.puzzle is spec.solution_check is None
        return
    augmentation = load(spec.augmentation)(env.observation_space)
    assert isinstance(augmentation, Augmentation)
    fresh, _ = env.reset(options={"puzzle": load(spec.puzzle)(obs)})  # the puzzle function restarts at obs
    assert all(np.array_equal(fresh[k], obs[k]) for k in obs)
    _, labels = encoder.seq2seq(obs, oracle)
    assert load(spec.solution_check)(obs, labels, oracle.cost_to_go(obs))
    if spec.variant_names is not None:  # city routing: one name per vehicle id, what per-variant reports are keyed by
        names = load(spec.variant_names)
        assert len(set(names)) == len(names) and all(isinstance(n, str) for n in names)


def test_a_new_row_is_found_by_every_lookup(monkeypatch):
    """Adding an env is adding a row: oracle_for, encoder_for, env_id_of and the augmentation lookups read it."""
    maze = ENVS["hrm/Maze-v0"]
    monkeypatch.setitem(ENVS, "hrm/Fifth-v0", dataclasses.replace(
        maze, id="hrm/Fifth-v0", entry_point="hrm_envs.fifth:FifthEnv", oracle="oracles.hanoi:HanoiOracle"))
    env = gym.make("hrm/Maze-v0", **SMALL["hrm/Maze-v0"])
    obs, _ = env.reset(seed=0)
    assert env_id_of("hrm_envs:hrm/Fifth-v0") == "hrm/Fifth-v0"
    assert isinstance(oracle_for("hrm/Fifth-v0"), HanoiOracle)
    assert isinstance(encoder_for("hrm/Fifth-v0", env.observation_space), MazeEncoder)
    assert isinstance(augmentation_for("hrm/Fifth-v0", env.observation_space), Dihedral)
    assert puzzle_of("hrm/Fifth-v0", obs)["goal"] == tuple(obs["goal"])
    with pytest.raises(ValueError, match=r"env id must be one of \[.*'hrm/Fifth-v0'"):
        oracle_for("hrm/Sixth-v0")


def test_the_seq2seq_build_and_validation_read_the_row(monkeypatch):
    """A row without seq2seq parts makes building and validating its seq2seq sets refuse, naming the other envs."""
    monkeypatch.setitem(ENVS, "hrm/Maze-v0", dataclasses.replace(
        ENVS["hrm/Maze-v0"], augmentation=None, puzzle=None, solution_check=None))
    spec = DatasetSpec(name="maze", kind="seq2seq", env="hrm/Maze-v0", size_arg="size", splits={})
    with pytest.raises(ValueError, match=r"one of \['hrm/CityRouting-v0', 'hrm/Sudoku-v0'\]; got hrm/Maze-v0"):
        split_augmentation(spec, "train")
    report = Report()
    validate_seq2seq(None, {"env": "hrm/Maze-v0"}, report)
    assert report.violations == ["summary.json: env 'hrm/Maze-v0' has no seq2seq sets; seq2seq envs: "
                                 "['hrm/CityRouting-v0', 'hrm/Sudoku-v0']"]
    with pytest.raises(ValueError, match="env_id must be one with an augmentation"):
        puzzle_of("hrm/Maze-v0", {})
    assert augmentation_for("hrm/Maze-v0", gym.spaces.Dict()) is None


@pytest.mark.parametrize("lookup", [oracle_for, lambda env_id: encoder_for(env_id, gym.spaces.Dict()),
                                    lambda env_id: augmentation_for(env_id, gym.spaces.Dict())])
def test_an_unknown_env_id_names_the_allowed_ids(lookup):
    with pytest.raises(ValueError, match=r"env id must be one of \['hrm/CityRouting-v0', 'hrm/Hanoi-v0', .*got 'hrm/Nope-v0'"):
        lookup("hrm/Nope-v0")


def test_a_row_has_all_seq2seq_parts_or_none_and_references_name_module_and_attribute():
    with pytest.raises(ValueError, match="augmentation, puzzle and solution_check must be all set or all None"):
        EnvSpec(id="hrm/X-v0", entry_point="m:E", oracle="m:O", encoder="m:C", augmentation="m:A")
    with pytest.raises(ValueError, match="move_field and follow_field must be both set or both None"):
        EnvSpec(id="hrm/X-v0", entry_point="m:E", oracle="m:O", encoder="m:C", move_field="m:F")
    with pytest.raises(ValueError, match="field_break needs move_field and follow_field"):
        EnvSpec(id="hrm/X-v0", entry_point="m:E", oracle="m:O", encoder="m:C", field_break="m:B")
    with pytest.raises(ValueError, match="reference must be 'module:attr', got 'oracles.hanoi'"):
        load("oracles.hanoi")
