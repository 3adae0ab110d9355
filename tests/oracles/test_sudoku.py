"""Sudoku oracle: exact against exhaustive search over the env's own transitions on 4x4 puzzles (also after
mistakes), one-step consistency on 9x9 states with wrong digits, canonical act, batches, bad obs, cache."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest

import hrm_envs  # noqa: F401
import oracles.sudoku as oracle_module
from hrm_envs.sudoku import SudokuEnv, hard_puzzles
from hrm_envs.sudoku.generator import random_grid
from hrm_envs.sudoku.solver import count_solutions
from oracles import oracle_for
from oracles.check import verify_oracle
from oracles.sudoku import SudokuOracle

WIKI = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
WIKI_SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"


def _action(cell: int, k: int, n: int = 9) -> int:
    return cell * (n + 1) + k


def _small_puzzle(rng: np.random.Generator, blanks: int) -> np.ndarray:
    """A unique 4x4 puzzle with ``blanks`` empty cells."""
    grid = random_grid(2, rng)
    while True:
        puzzle = np.array(grid)
        puzzle[rng.choice(16, blanks, replace=False)] = 0
        if count_solutions(puzzle.tolist(), 2) == 1:
            return puzzle


def _wrong_digits(obs: dict, solution: np.ndarray) -> int:
    grid = obs["grid"]
    return int(((grid > 0) & (obs["givens"] == 0) & (grid != solution)).sum())


def _write_wrong(env: SudokuEnv, obs: dict, rng: np.random.Generator, count: int) -> dict:
    """Write up to ``count`` rule-consistent but wrong digits in random empty cells."""
    n = env.n
    solution = env.puzzle.solution.ravel()
    for _ in range(count):
        mask = obs["action_mask"].reshape(-1, n + 1)
        wrong = [c * (n + 1) + k for c, k in np.argwhere(mask[:, :n]) if k + 1 != solution[c]]
        if not wrong:
            break
        obs, *_ = env.step(int(rng.choice(wrong)))
    return obs


def test_oracle_for_sudoku():
    assert isinstance(oracle_for("hrm/Sudoku-v0"), SudokuOracle)
    assert isinstance(oracle_for(gym.make("hrm/Sudoku-v0", box=2)), SudokuOracle)
    with pytest.raises(ValueError, match="cache_size"):
        SudokuOracle(cache_size=0)


@pytest.mark.parametrize("blanks", [3, 5, 6, 7])
def test_exhaustive_search_over_env_transitions(blanks):
    rng = np.random.default_rng(blanks)
    env = SudokuEnv(box=2, max_steps=10**9)
    oracle = SudokuOracle()
    for _ in range(2 if blanks < 7 else 1):
        obs, _ = env.reset(options={"puzzle": _small_puzzle(rng, blanks)})
        assert verify_oracle(env, oracle, obs) > blanks


@pytest.mark.slow
def test_exhaustive_search_from_states_with_wrong_digits():
    """Start from states holding wrong digits (some blocking the right digit elsewhere)."""
    rng = np.random.default_rng(0)
    env = SudokuEnv(box=2, max_steps=10**9)
    oracle = SudokuOracle()
    checked = blocked = 0
    while checked < 4:
        obs, _ = env.reset(options={"puzzle": _small_puzzle(rng, 6)})
        obs = _write_wrong(env, obs, rng, 2)
        wrong = _wrong_digits(obs, env.puzzle.solution)
        if not wrong:
            continue  # every legal digit here was right
        checked += 1
        assert oracle.cost_to_go(obs) == 2 * wrong + (obs["grid"] == 0).sum()
        writes = [a for a in oracle.optimal_actions(obs) if a % 5 != 4]
        blocked += len(writes) < (obs["grid"] == 0).sum()
        verify_oracle(env, oracle, obs)
    assert blocked >= 1  # a wrong digit did block a right one somewhere


def test_one_step_consistency_on_9x9_states_with_mistakes():
    """Every action, stepped on a copy of the env: optimal iff 1 + cost_to_go(next) == cost_to_go(now)."""
    rng = np.random.default_rng(1)
    env = SudokuEnv(max_steps=10**9)
    oracle = SudokuOracle()
    for seed in range(2):
        obs, _ = env.reset(seed=seed)
        obs = _write_wrong(env, obs, rng, 3)
        here = oracle.cost_to_go(obs)
        best = set()
        for action in range(env.action_space.n):
            child = copy.deepcopy(env)
            nxt, _, terminated, _, info = child.step(action)
            after = 0.0 if terminated and info["is_success"] else oracle.cost_to_go(nxt)
            assert info["cost"] + after >= here
            if info["cost"] + after == here:
                best.add(action)
        assert best == oracle.optimal_actions(obs) and oracle.act(obs) in best


def test_canonical_act_erases_first_then_fills_the_most_constrained_cell():
    env = SudokuEnv()
    oracle = SudokuOracle()
    obs, _ = env.reset(options={"puzzle": WIKI})
    solution = np.array([int(ch) for ch in WIKI_SOLUTION])
    # no mistakes: every empty cell's right digit is optimal; act picks the cell with fewest legal digits
    label = oracle.label(obs)
    empty = np.flatnonzero(obs["grid"].ravel() == 0)
    assert label.optimal == {_action(c, solution[c] - 1) for c in empty}
    freedom = obs["action_mask"].reshape(81, 10)[:, :9].sum(axis=1)
    target = min(empty, key=lambda c: (freedom[c], c))
    assert label.action == _action(target, solution[target] - 1) and label.cost_to_go == len(empty) == 51
    # two wrong digits: 1 in cell 2 (should be 4) blocks the right 1 in cell 7; 5 in cell 33 (should be 4)
    obs, *_ = env.step(_action(2, 0))
    obs, _, _, _, info = env.step(_action(33, 4))
    assert not info["illegal_move"]
    label = oracle.label(obs)
    assert label.cost_to_go == 2 * 2 + 49
    assert label.action == _action(2, 9)  # the wrong digit with the lowest index is erased first
    assert {_action(2, 9), _action(33, 9)} <= label.optimal
    assert _action(7, 0) not in label.optimal and obs["action_mask"][_action(7, 0)] == 0  # blocked
    assert _action(3, 5) in label.optimal  # unblocked right digits stay optimal
    assert all(a % 10 != 9 or a in (_action(2, 9), _action(33, 9)) for a in label.optimal)


@pytest.mark.parametrize("box", [2, 3, 4])
def test_solve_from_mistakes_reaches_success_in_cost_to_go_steps(box):
    env = SudokuEnv(box=box, difficulty="easy" if box == 4 else "medium", max_steps=10**6)
    oracle = SudokuOracle()
    rng = np.random.default_rng(box)
    for seed in range(2):
        obs, _ = env.reset(seed=seed)
        obs = _write_wrong(env, obs, rng, 3)
        plan = oracle.solve(obs)
        assert len(plan) == oracle.cost_to_go(obs)
        for i, action in enumerate(plan):
            assert action == oracle.act(obs)
            expected, done = oracle.successor(obs, action)
            obs, _, terminated, _, info = env.step(action)
            assert not info["illegal_move"] and terminated == (i == len(plan) - 1) == done
            assert all(np.array_equal(obs[k], expected[k]) for k in obs)
        assert info["is_success"]


def test_solves_every_stored_hard_puzzle():
    env = SudokuEnv(max_steps=10**6)
    oracle = SudokuOracle()
    for puzzle in hard_puzzles()[::10]:
        obs, _ = env.reset(options={"puzzle": puzzle})
        for action in oracle.solve(obs):
            obs, _, terminated, _, info = env.step(action)
        assert terminated and info["is_success"]


def test_successor_of_illegal_actions_keeps_the_state():
    env = SudokuEnv(box=2)
    obs, _ = env.reset(seed=2)
    oracle = SudokuOracle()
    for action in np.flatnonzero(obs["action_mask"] == 0)[:20]:
        nxt, done = oracle.successor(obs, int(action))
        assert not done and all(np.array_equal(obs[k], nxt[k]) for k in obs)
    with pytest.raises(ValueError, match="action"):
        oracle.successor(obs, 80)


def test_label_batch_matches_single_labels_across_puzzles():
    oracle = SudokuOracle()
    rng = np.random.default_rng(0)
    for box in (2, 3):
        env = SudokuEnv(box=box)
        observations = []
        for seed in range(5):
            obs, _ = env.reset(seed=seed)
            observations.append(obs)
            for _ in range(6):
                obs, *_ = env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
                observations.append(obs)
        batch = {k: np.stack([o[k] for o in observations]) for k in observations[0]}
        labels = oracle.label_batch(batch)
        assert labels.optimal.shape == (len(observations), env.action_space.n)
        for i, obs in enumerate(observations):
            label = oracle.label(obs)
            assert set(np.flatnonzero(labels.optimal[i])) == label.optimal
            assert labels.action[i] == label.action and labels.cost_to_go[i] == label.cost_to_go == oracle.cost_to_go(obs)
        assert np.array_equal(oracle.act_batch(batch), labels.action)
        assert np.array_equal(oracle.solution(batch)[0], env.reset(seed=0)[0]["grid"] * 0 + env.puzzle.solution)


@pytest.mark.parametrize("box", [2, 3])
def test_token_labels_spell_out_the_solution_in_every_cell_the_player_fills(box):
    """Givens -100, every other cell (blank, right or wrong digit) its solution digit - 1, aligned with the
    encoder's row-major tokens; writing a labelled digit into a blank cell where it is legal is optimal."""
    oracle = SudokuOracle()
    rng = np.random.default_rng(box)
    env = SudokuEnv(box=box, max_steps=10**9)
    observations, solutions = [], []
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        observations.append(_write_wrong(env, obs, rng, 2))
        solutions.append(env.puzzle.solution.ravel())
    batch = {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    labels = oracle.token_labels(batch)
    given = batch["givens"].reshape(len(observations), -1).astype(bool)
    assert labels.shape == given.shape and labels.dtype == np.int64
    assert np.all(labels[given] == -100)
    assert np.array_equal(labels[~given], (np.stack(solutions) - 1)[~given])
    assert labels.max() < env.n <= oracle.token_label_classes
    optimal = oracle.label_batch(batch).optimal
    mask = batch["action_mask"].astype(bool)
    blank = batch["grid"].reshape(len(observations), -1) == 0
    rows, cells = np.nonzero(blank)
    writes = cells * (env.n + 1) + labels[rows, cells]
    legal = mask[rows, writes]
    assert legal.any() and np.array_equal(optimal[rows, writes], legal)
    grid = batch["grid"].reshape(len(observations), -1).astype(np.int64)
    wrong = ~blank & ~given & (grid != np.stack(solutions))
    assert wrong.any() and np.all(labels[wrong] != grid[wrong] - 1)  # a wrong digit's cell is labelled the right one
    with pytest.raises(ValueError, match="batch"):
        oracle.token_labels(observations[0])


def test_solved_grid_is_terminal():
    env = SudokuEnv()
    oracle = SudokuOracle()
    obs, _ = env.reset(options={"puzzle": WIKI})
    solved = {**obs, "grid": np.array([int(ch) for ch in WIKI_SOLUTION], dtype=np.int8).reshape(9, 9)}
    assert oracle.cost_to_go(solved) == 0 and oracle.optimal_actions(solved) == frozenset()
    assert oracle.act(solved) == 0 and oracle.solve(solved) == []


def test_bad_observations():
    env = SudokuEnv()
    obs, _ = env.reset(options={"puzzle": WIKI})
    oracle = SudokuOracle()
    clash = obs["grid"].copy()
    clash[0, 2] = 5
    givens = obs["givens"].copy()
    givens[0, 2] = 1
    cases = [
        ({k: v for k, v in obs.items() if k != "givens"}, "grid and givens"),
        ({**obs, "grid": obs["grid"][:8]}, "Sudoku observation"),
        ({**obs, "grid": np.zeros((5, 5), np.int8), "givens": np.zeros((5, 5), np.int8)}, "Sudoku observation"),
        ({**obs, "grid": obs["grid"] + 10}, "values"),
        ({**obs, "grid": obs["grid"].astype(float)}, "values"),
        ({**obs, "givens": obs["givens"] * 2}, "givens"),
        ({**obs, "givens": givens}, "givens is empty"),
        ({"grid": clash, "givens": givens}, "contradictory givens: digit 5 appears twice in row 1"),
        ({**obs, "givens": np.zeros_like(givens)}, "more than one solution"),
        ("obs", "Sudoku observation"),
    ]
    for bad, match in cases:
        with pytest.raises(ValueError, match=match):
            oracle.cost_to_go(bad)
    with pytest.raises(ValueError, match="batch"):
        oracle.label_batch(obs)
    with pytest.raises(ValueError, match="one observation"):
        oracle.label({k: v[None] for k, v in obs.items()})


def test_each_puzzle_is_solved_once_and_the_cache_is_bounded_lru(monkeypatch):
    calls = []
    real_solve = oracle_module.solve

    def counting_solve(*args, **kwargs):
        calls.append(args)
        return real_solve(*args, **kwargs)

    monkeypatch.setattr(oracle_module, "solve", counting_solve)
    env = SudokuEnv()
    oracle = SudokuOracle(cache_size=2)
    obs, _ = env.reset(seed=0)
    for action in oracle.solve(obs):  # labelling a whole episode
        obs, *_ = env.step(action)
    assert len(calls) == 1
    first, _ = env.reset(seed=0)
    second, _ = env.reset(seed=1)
    third, _ = env.reset(seed=2)
    oracle.act(second)
    oracle.act(first)  # now the most recently used
    oracle.act(third)  # evicts the second
    assert len(calls) == 3 and len(oracle._cache) == 2
    oracle.act(first)
    assert len(calls) == 3
    oracle.act(second)
    assert len(calls) == 4
