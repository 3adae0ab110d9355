"""Sudoku environment: contract, solver and generator checked by independent rules, dynamics, bad input,
hypothesis invariants, vector envs, encodings and renders."""

from __future__ import annotations

import time

import gymnasium as gym
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hrm_envs  # noqa: F401
from hrm_envs import encoder_for
from hrm_envs.checks import check_contract, vector_oracle_successes
from hrm_envs.sudoku import LEVELS, SudokuEnv, SudokuGenerator, SudokuPuzzle, hard_puzzles, rate
from hrm_envs.sudoku import generator as generator_module
from hrm_envs.sudoku.encoding import BLANK
from hrm_envs.sudoku.env import action_masks, solution_keys
from hrm_envs.sudoku.generator import EXTREME_GUESSES, GIVENS, random_grid
from hrm_envs.sudoku.solver import count_solutions, has_other_solution, singles_decide, solve, solve_by_singles
from oracles import oracle_for

# Wikipedia's example puzzle and its published solution; Norvig's "hard1" and its published solution.
WIKI = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
WIKI_SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
NORVIG = "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......"
NORVIG_SOLUTION = "417369825632158947958724316825437169791586432346912758289643571573291684164875293"
UNSOLVABLE = "12345678." + "........9" + "." * 63  # no duplicate, but cell (0, 8) has no digit left
FOUR = "1..4" "..1." ".4.." "3..2"
# The solution with the corners of a rectangle (rows 4-5, columns 6 and 9) blanked: their two digits can swap.
AMBIGUOUS = "".join(
    "." if (r, c) in {(3, 5), (3, 8), (4, 5), (4, 8)} else WIKI_SOLUTION[r * 9 + c] for r in range(9) for c in range(9)
)


# --- an independent rule checker, sharing no code with the package ---------------------------------
def _units(n: int) -> list[list[tuple[int, int]]]:
    b = int(round(n**0.5))
    rows = [[(r, c) for c in range(n)] for r in range(n)]
    cols = [[(r, c) for r in range(n)] for c in range(n)]
    boxes = [[(br + i, bc + j) for i in range(b) for j in range(b)] for br in range(0, n, b) for bc in range(0, n, b)]
    return rows + cols + boxes


def _is_solution(grid: np.ndarray, givens: np.ndarray | None = None) -> bool:
    """Every row, column and box holds 1..n exactly once (and the givens are kept)."""
    grid = np.asarray(grid).reshape(int(round(np.size(grid) ** 0.5)), -1)
    n = grid.shape[0]
    if any(sorted(int(grid[cell]) for cell in unit) != list(range(1, n + 1)) for unit in _units(n)):
        return False
    return givens is None or bool(np.all((np.asarray(givens).reshape(n, n) == 0) | (np.asarray(givens).reshape(n, n) == grid)))


def _has_duplicate(grid: np.ndarray) -> bool:
    n = grid.shape[0]
    for unit in _units(n):
        digits = [int(grid[cell]) for cell in unit if grid[cell]]
        if len(digits) != len(set(digits)):
            return True
    return False


def _mask_by_rules(grid: np.ndarray, givens: np.ndarray) -> np.ndarray:
    n = grid.shape[0]
    mask = np.zeros((n, n, n + 1), dtype=np.int8)
    units = _units(n)
    for r in range(n):
        for c in range(n):
            if grid[r, c]:
                mask[r, c, n] = not givens[r, c]
                continue
            seen = {int(grid[cell]) for unit in units if (r, c) in unit for cell in unit}
            for d in range(1, n + 1):
                mask[r, c, d - 1] = d not in seen
    return mask.reshape(-1)


def _count_by_brute_force(grid: list[int], n: int, limit: int = 1000) -> int:
    """Solutions of a small grid by plain cell-by-cell backtracking (independent of the solver)."""
    grid = list(grid)
    units = [[r * n + c for r, c in unit] for unit in _units(n)]
    peers = [set().union(*(u for u in units if i in u)) - {i} for i in range(n * n)]

    def count(i: int) -> int:
        if i == n * n:
            return 1
        if grid[i]:
            return count(i + 1)
        total = 0
        for d in range(1, n + 1):
            if all(grid[p] != d for p in peers[i]):
                grid[i] = d
                total += count(i + 1)
                grid[i] = 0
                if total >= limit:
                    break
        return total

    return count(0)


def _digits(text: str) -> list[int]:
    return [0 if ch in ".0" else int(ch) for ch in text]


# --- contract ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"box": 2}, {"box": 4, "difficulty": "easy"}, {"difficulty": "hard"}, {"box": 2, "max_steps": 5}],
)
def test_contract(kwargs):
    check_contract("hrm/Sudoku-v0", kwargs)


def test_make_by_module_path():
    env = gym.make("hrm_envs:hrm/Sudoku-v0", box=2)
    obs, _ = env.reset(seed=0)
    assert obs["grid"].shape == (4, 4) and env.action_space.n == 16 * 5


@pytest.mark.parametrize("box", [2, 3, 4])
def test_spaces(box):
    n = box * box
    env = SudokuEnv(box=box, difficulty="easy")
    obs, _ = env.reset(seed=1)
    assert env.action_space.n == n * n * (n + 1)
    assert obs["grid"].shape == obs["givens"].shape == (n, n) and obs["grid"].dtype == obs["givens"].dtype == np.int8
    assert obs["action_mask"].shape == (n * n * (n + 1),) and obs["action_mask"].dtype == np.int8
    assert np.array_equal(obs["givens"], (obs["grid"] > 0).astype(np.int8))  # a fresh puzzle shows only givens
    assert np.array_equal(obs["action_mask"], _mask_by_rules(obs["grid"], obs["givens"]))


# --- solver ----------------------------------------------------------------------------------------
def test_solver_on_published_solutions():
    for puzzle, published in ((WIKI, WIKI_SOLUTION), (NORVIG, NORVIG_SOLUTION)):
        result = solve(_digits(puzzle), 3)
        assert len(result.solutions) == 1 and result.solutions[0] == _digits(published)
        assert _is_solution(np.array(result.solutions[0]), np.array(_digits(puzzle)))
    assert solve(_digits(WIKI), 3).guesses == 0 and solve(_digits(NORVIG), 3).guesses > 0


def test_every_stored_hard_puzzle_is_unique_and_fast():
    puzzles = hard_puzzles("top95")
    assert len(puzzles) == len(set(puzzles)) == 95 and all(len(p) == 81 for p in puzzles)
    assert sum(sum(ch != "." for ch in p) == 17 for p in puzzles) >= 30  # many 17-clue puzzles
    times = []
    for puzzle in puzzles:
        start = time.perf_counter()
        result = solve(_digits(puzzle), 3, limit=2)
        times.append(time.perf_counter() - start)
        assert len(result.solutions) == 1, puzzle
        assert _is_solution(np.array(result.solutions[0]), np.array(_digits(puzzle)))
        assert result.guesses > 0  # hard: singles alone never do
    assert max(times) < 2.0  # generous (shared CI machines); benchmarks/sudoku.py measures the 20 ms / 500 ms targets
    with pytest.raises(ValueError, match="name"):
        hard_puzzles("top1465")


def test_solution_counts_match_brute_force_on_4x4():
    rng = np.random.default_rng(0)
    counts = set()
    for _ in range(150):
        grid = random_grid(2, rng)
        keep = rng.random(16) < rng.uniform(0.0, 0.5)
        puzzle = [d if k else 0 for d, k in zip(grid, keep)]
        expected = _count_by_brute_force(puzzle, 4)
        counts.add(min(expected, 3))
        assert count_solutions(puzzle, 2, limit=2) == min(expected, 2)
        assert count_solutions(puzzle, 2, limit=1000) == min(expected, 1000)
        for solution in solve(puzzle, 2, limit=5).solutions:
            assert _is_solution(np.array(solution), np.array(puzzle))
    assert counts == {1, 2, 3}  # unique, two and many solutions all occurred
    assert count_solutions([0] * 16, 2, limit=1000) == 288  # the number of 4x4 Sudoku grids


def test_unsolvable_and_ambiguous_puzzles():
    assert count_solutions(_digits(UNSOLVABLE), 3) == 0
    assert count_solutions([0] * 81, 3) == 2
    assert solve_by_singles(_digits(WIKI), 3) == _digits(WIKI_SOLUTION)
    assert solve_by_singles(_digits(NORVIG), 3) is None


def test_the_diggers_shortcuts_agree_with_full_checks():
    """Removing a digit from a singles-solvable (unique) puzzle: the targeted checks equal full re-solves."""
    rng = np.random.default_rng(5)
    for hidden in (False, True):
        puzzle = random_grid(3, rng)
        for cell in rng.permutation(81).tolist():
            digit, puzzle[cell] = puzzle[cell], 0
            fast = singles_decide(puzzle, 3, cell, hidden)
            assert fast == (solve_by_singles(puzzle, 3, hidden) is not None)
            assert has_other_solution(puzzle, 3, cell, digit) == (count_solutions(puzzle, 3) > 1)
            if not fast:
                puzzle[cell] = digit


# --- generator -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "box, level, count",
    [(2, "easy", 30), (2, "medium", 30), (3, "easy", 10), (3, "medium", 10), (3, "hard", 5), (3, "extreme", 2), (4, "medium", 1)],
)
def test_generated_puzzles_are_unique_and_rated_as_their_level(box, level, count):
    generator = SudokuGenerator(box, level)
    rng = np.random.default_rng(7)
    lo, hi = GIVENS[box][level]
    for _ in range(count):
        puzzle = generator(rng)
        assert lo <= puzzle.num_givens <= hi
        assert _is_solution(puzzle.solution, puzzle.givens)
        if box == 2:
            assert _count_by_brute_force(puzzle.givens.ravel().tolist(), 4) == 1
        else:
            assert count_solutions(puzzle.givens.ravel().tolist(), box) == 1
        technique, guesses = rate(puzzle.givens, box)
        if level == "easy":
            assert technique == "naked"
        elif level == "medium":
            assert technique in ("naked", "hidden")
        else:
            assert technique == "search" and (guesses >= EXTREME_GUESSES) == (level == "extreme") and guesses >= 1


def test_levels_get_harder():
    rng = np.random.default_rng(3)
    techniques = {level: [rate(SudokuGenerator(3, level)(rng).givens, 3) for _ in range(6)] for level in ("easy", "medium")}
    assert all(r.technique == "naked" for r in techniques["easy"])
    assert any(r.technique == "hidden" for r in techniques["medium"])  # medium does use hidden singles
    easy = np.mean([SudokuGenerator(3, "easy")(rng).num_givens for _ in range(5)])
    medium = np.mean([SudokuGenerator(3, "medium")(rng).num_givens for _ in range(5)])
    assert easy > medium


def test_givens_override_and_determinism():
    generator = SudokuGenerator(3, "medium", givens=(30, 31))
    puzzles = [generator(np.random.default_rng(s)) for s in range(5)]
    assert all(30 <= p.num_givens <= 31 for p in puzzles)
    assert len({p.string() for p in puzzles}) == 5
    again = SudokuGenerator(3, "medium", givens=(30, 31))(np.random.default_rng(0))
    assert again == puzzles[0] and np.array_equal(again.solution, puzzles[0].solution)
    a, _ = SudokuEnv(difficulty="hard").reset(seed=11)
    b, _ = SudokuEnv(difficulty="hard").reset(seed=11)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_unreachable_givens_range(monkeypatch):
    monkeypatch.setattr(generator_module, "MAX_ATTEMPTS", 3)
    with pytest.raises(ValueError, match="no easy box=3 puzzle with givens in \\(23, 23\\)"):
        SudokuGenerator(3, "easy", givens=(23, 23))(np.random.default_rng(0))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"box": 4, "difficulty": "easy", "givens": 55},
        {"box": 4, "difficulty": "medium", "givens": (60, 88)},
        {"box": 3, "difficulty": "extreme", "givens": 17},
        {"box": 3, "difficulty": "easy", "givens": (17, 22)},
    ],
)
def test_givens_below_what_digging_reaches_fail_fast(kwargs):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=f"out of reach for {kwargs['difficulty']} box={kwargs['box']} puzzles.*upper end >="):
        SudokuEnv(**kwargs).reset(seed=0)
    assert time.perf_counter() - start < 1.0


# --- dynamics --------------------------------------------------------------------------------------
def _action(cell: int, k: int, n: int = 9) -> int:
    return cell * (n + 1) + k


def test_write_erase_illegal_moves_costs_and_success():
    env = SudokuEnv()
    obs, _ = env.reset(options={"puzzle": WIKI})
    solution = _digits(WIKI_SOLUTION)
    assert obs["grid"][0, 0] == 5 and obs["givens"][0, 0] == 1 and obs["grid"][0, 2] == 0
    # cell 2 (row 0): 5 is in the row -> masked; 1 is consistent but wrong (solution 4) -> legal
    assert obs["action_mask"][_action(2, 4)] == 0 and obs["action_mask"][_action(2, 0)] == 1
    obs, reward, terminated, truncated, info = env.step(_action(2, 4))
    assert info == {"illegal_move": True, "cost": 1.0, "is_success": False} and obs["grid"][0, 2] == 0 and reward == pytest.approx(-0.01)
    obs, _, _, _, info = env.step(_action(2, 0))
    assert info == {"illegal_move": False, "cost": 1.0, "is_success": False} and obs["grid"][0, 2] == 1 and obs["givens"][0, 2] == 0
    assert obs["action_mask"][_action(2, 9)] == 1 and obs["action_mask"][_action(2, 3)] == 0  # erase, no overwrite
    assert obs["action_mask"][_action(3, 0)] == 0  # the wrong 1 now blocks 1 in the row
    assert obs["action_mask"][_action(0, 9)] == 0  # givens cannot be erased
    _, _, _, _, info = env.step(_action(0, 9))
    assert info["illegal_move"]
    obs, _, _, _, info = env.step(_action(2, 9))
    assert not info["illegal_move"] and obs["grid"][0, 2] == 0
    assert np.array_equal(obs["action_mask"], _mask_by_rules(obs["grid"], obs["givens"]))
    empty = [i for i in range(81) if obs["grid"].ravel()[i] == 0]
    for i, cell in enumerate(empty):
        obs, reward, terminated, truncated, info = env.step(_action(cell, solution[cell] - 1))
        assert terminated == (i == len(empty) - 1) and not truncated
    assert info["is_success"] is True and reward == 1.0 and obs["grid"].ravel().tolist() == solution
    assert not obs["action_mask"][: 81 * 10].reshape(81, 10)[:, :9].any()


def test_truncation_at_step_limit():
    env = SudokuEnv(box=2)
    env.reset(options={"puzzle": FOUR})
    assert env.max_steps == 2 * 16
    env = SudokuEnv(box=2, max_steps=3)
    env.reset(options={"puzzle": FOUR})
    results = [env.step(_action(0, 4, 4)) for _ in range(3)]  # erasing a given: illegal
    assert [r[3] for r in results] == [False, False, True] and results[-1][4]["is_success"] is False


def test_puzzle_forms_and_round_trip():
    env = SudokuEnv()
    ref, _ = env.reset(options={"puzzle": WIKI})
    assert env.puzzle.string() == WIKI and env.puzzle.solution.ravel().tolist() == _digits(WIKI_SOLUTION)
    grid = np.array(_digits(WIKI)).reshape(9, 9)
    zeros = WIKI.replace(".", "0")
    lines = "\n".join(" ".join(zeros[r * 9 : r * 9 + 9]) for r in range(9))
    for form in (zeros, lines, grid, grid.ravel(), grid.tolist(), SudokuPuzzle.parse(WIKI, 3), env.puzzle):
        obs, _ = env.reset(options={"puzzle": form})
        assert all(np.array_equal(obs[k], ref[k]) for k in ref)
    big = SudokuEnv(box=4, difficulty="easy")
    big.reset(seed=0)
    text = big.puzzle.string()
    assert len(text) == 256 and set(text) <= set(".123456789ABCDEFG")
    assert SudokuPuzzle.parse(text.lower(), 4) == big.puzzle
    for puzzle in hard_puzzles()[:5]:
        obs, _ = env.reset(options={"puzzle": puzzle})
        assert obs["givens"].sum() == sum(ch != "." for ch in puzzle)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"box": 1}, "box"),
        ({"box": 5}, "box"),
        ({"box": "3"}, "box"),
        ({"box": True}, "box"),
        ({"difficulty": "insane"}, "difficulty"),
        ({"box": 2, "difficulty": "hard"}, "difficulty 'hard' is not available for box=2"),
        ({"box": 4, "difficulty": "extreme"}, "box=4"),
        ({"givens": 16}, "givens"),
        ({"givens": 81}, "givens"),
        ({"givens": (30, 20)}, "givens"),
        ({"givens": 30.0}, "givens"),
        ({"max_steps": 0}, "max_steps"),
        ({"render_mode": "human"}, "render_mode"),
        ({"step_penalty": -1}, "step_penalty"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SudokuEnv(**kwargs)


@pytest.mark.parametrize(
    "puzzle, match",
    [
        (WIKI[:-1], "81 cells for box=3"),
        (WIKI + "1", "81 cells"),
        (WIKI[:-1] + "x", "characters"),
        (WIKI[:-1] + "A", "characters"),
        ("55" + WIKI[2:], "contradictory givens: digit 5 appears twice in row 1"),
        (WIKI[:18] + "5" + WIKI[19:], "contradictory givens: digit 5 appears twice in column 1"),
        (WIKI[:10] + "8" + WIKI[11:], "contradictory givens: digit 8 appears twice in box 1"),
        (UNSOLVABLE, "no solution"),
        ("." * 81, "more than one solution"),
        (AMBIGUOUS, "more than one solution"),
        (np.zeros((9, 8), dtype=int), "shape"),
        (np.full((9, 9), 10), "values"),
        (np.zeros((9, 9)), "ints"),
        (42, "options\\['puzzle'\\]"),
        (None, "options\\['puzzle'\\]"),
        (SudokuPuzzle.parse(FOUR, 2), "box=2"),
    ],
)
def test_bad_puzzles(puzzle, match):
    with pytest.raises(ValueError, match=match):
        SudokuEnv().reset(options={"puzzle": puzzle})


def test_bad_options_and_actions():
    env = SudokuEnv(box=2)
    with pytest.raises(ValueError, match="options"):
        env.reset(options="puzzle")
    with pytest.raises(ValueError, match="reset"):
        _ = env.puzzle
    env.reset(seed=0)
    for action in (-1, 80, 1.0, None, "0", np.array([1, 2]), True):
        with pytest.raises(ValueError, match="action"):
            env.step(action)
    env.step(np.int64(3))  # numpy integers are fine


# --- invariants ------------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(
    box=st.sampled_from([2, 3]),
    seed=st.integers(0, 2**31 - 1),
    moves=st.lists(st.tuples(st.sampled_from(["write", "erase", "any"]), st.integers(0, 10**6)), min_size=1, max_size=120),
)
def test_random_action_sequences_keep_invariants(box, seed, moves):
    """Legal writes, legal erasures and arbitrary (mostly masked) actions, mixed."""
    env = SudokuEnv(box=box)
    n = box * box
    obs, _ = env.reset(seed=seed)
    givens, clues = obs["givens"].copy(), obs["grid"].copy()
    solution = env.puzzle.solution
    for kind, x in moves:
        legal = np.flatnonzero(obs["action_mask"])
        erasures = legal[legal % (n + 1) == n]
        pool = {"write": legal[legal % (n + 1) < n], "erase": erasures}.get(kind, np.arange(env.action_space.n))
        action = int(pool[x % len(pool)]) if len(pool) else x % env.action_space.n
        was_legal = bool(obs["action_mask"][action])
        before = obs["grid"].copy()
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        assert np.array_equal(obs["givens"], givens) and np.array_equal(obs["grid"][givens == 1], clues[givens == 1])
        assert not _has_duplicate(obs["grid"])
        assert np.array_equal(obs["action_mask"], _mask_by_rules(obs["grid"], obs["givens"]))
        assert info["cost"] == 1.0 and info["illegal_move"] == (not was_legal)
        changed = np.flatnonzero(obs["grid"].ravel() != before.ravel())
        assert len(changed) == (1 if was_legal else 0)
        assert terminated == bool(obs["grid"].all())
        if terminated:
            assert info["is_success"] and reward == 1.0 and np.array_equal(obs["grid"], solution)
            break
        assert reward == pytest.approx(-0.01)
        if truncated:
            break


def test_action_masks_function_batches():
    env = SudokuEnv(box=2)
    observations = []
    for seed in range(4):
        obs, _ = env.reset(seed=seed)
        observations.append(obs)
    grids = np.stack([o["grid"].ravel() for o in observations])
    givens = np.stack([o["givens"].ravel() for o in observations])
    masks = action_masks(grids, givens, 2)
    assert masks.shape == (4, 80) and all(np.array_equal(masks[i], o["action_mask"]) for i, o in enumerate(observations))


@pytest.mark.parametrize("vector_cls", [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv])
def test_vector_envs_solved_by_batched_oracle(vector_cls):
    assert vector_oracle_successes("hrm/Sudoku-v0", {"box": 2}, vector_cls, steps=40, seed=7) >= 9


# --- encodings and renders -------------------------------------------------------------------------
def test_token_encoding_hrm_ids_and_action_layout():
    env = SudokuEnv()
    obs, _ = env.reset(options={"puzzle": WIKI})
    encoder = encoder_for(env)
    assert isinstance(encoder, hrm_envs.Encoder)
    assert (encoder.vocab_size, encoder.seq2seq_vocab_size, encoder.seq_len) == (20, 11, 81)
    assert encoder.per_token_actions * encoder.seq_len + encoder.global_actions == env.action_space.n
    tokens = encoder.tokens(obs)
    assert tokens.shape == (81,) and tokens.dtype == np.int64
    hrm = [1 if ch == "." else int(ch) + 1 for ch in WIKI]  # HRM: blank 1, digit d -> d + 1
    assert tokens.tolist() == hrm
    moved, *_ = env.step(_action(2, 3))  # the player writes 4 in cell 2
    after = encoder.tokens(moved)
    assert after[2] == 1 + 9 + 4 and np.array_equal(np.delete(after, 2), np.delete(tokens, 2))
    assert tokens.max() < encoder.vocab_size and after.max() < encoder.vocab_size and BLANK == 1
    # action t * (n + 1) + k belongs to token t: writes go to blank tokens, erasures to the player's digits
    for action in np.flatnonzero(moved["action_mask"]):
        token, k = divmod(int(action), encoder.per_token_actions)
        assert after[token] == (1 + 9 + 4 if k == 9 else BLANK)
    batch = {k: np.stack([obs[k], moved[k]]) for k in obs}
    assert np.array_equal(encoder.tokens(batch), np.stack([tokens, after]))
    assert encoder.tokens({k: v[None, None] for k, v in obs.items()}).shape == (1, 1, 81)
    small = SudokuEnv(box=4, difficulty="easy")
    big_encoder = encoder_for(small)
    assert (big_encoder.seq_len, big_encoder.per_token_actions, big_encoder.vocab_size) == (256, 17, 34)


def test_seq2seq_puzzle_to_solution():
    env = SudokuEnv()
    oracle = oracle_for(env)
    encoder = encoder_for(env)
    obs, _ = env.reset(options={"puzzle": NORVIG})
    moved, *_ = env.step(int(np.flatnonzero(obs["action_mask"])[0]))
    for state in (obs, moved):  # the player's digits are dropped from the inputs
        inputs, labels = encoder.seq2seq(state, oracle)
        assert inputs.tolist() == [1 if ch == "." else int(ch) + 1 for ch in NORVIG]
        assert labels.tolist() == [int(ch) + 1 for ch in NORVIG_SOLUTION]
        assert labels.max() < encoder.seq2seq_vocab_size


def test_graph_and_text_encodings():
    env = SudokuEnv()
    obs, _ = env.reset(options={"puzzle": WIKI})
    obs, *_ = env.step(_action(2, 3))
    encoder = encoder_for(env)
    graph = encoder.graph(obs)
    assert isinstance(graph, nx.Graph) and graph.number_of_nodes() == 81
    assert graph.number_of_edges() == 81 * 20 // 2 and all(d == 20 for _, d in graph.degree)
    assert graph.nodes[(0, 0)] == {"row": 0, "col": 0, "box": 0, "digit": 5, "given": True}
    assert graph.nodes[(0, 2)] == {"row": 0, "col": 2, "box": 0, "digit": 4, "given": False}
    assert graph.edges[(0, 0), (0, 1)]["units"] == ("row", "box")
    assert graph.edges[(0, 0), (8, 0)]["units"] == ("col",)
    assert not graph.has_edge((0, 0), (4, 4)) and graph.graph == {"box": 3, "n": 9}
    lines = encoder.text(obs).splitlines()
    assert lines[1] == "Givens:" and "".join(lines[2:11]) == WIKI
    assert lines[11].startswith("Current grid") and "".join(lines[12:21]) == WIKI[:2] + "4" + WIKI[3:]


def test_renders():
    env = SudokuEnv(render_mode="ansi")
    env.reset(options={"puzzle": WIKI})
    env.step(_action(2, 3))
    text = env.render()
    assert "step 1" in text and "30 givens, 1 entries" in text
    assert text.splitlines()[1].split() == ["5", "3", "*4", "|", ".", "7", ".", "|", ".", ".", "."]
    assert len(text.splitlines()) == 1 + 9 + 2 and text.splitlines()[4] == "---------+---------+--------"
    shapes = set()
    for box in (2, 3, 4):
        env = SudokuEnv(box=box, difficulty="easy", render_mode="rgb_array")
        env.reset(seed=0)
        frame = env.render()
        assert frame.dtype == np.uint8 and frame.shape == (box**2 * 16 + 1,) * 2 + (3,)
        shapes.add(frame.shape)
        before = frame.copy()
        env.step(int(np.flatnonzero(env.action_masks())[0]))
        after = env.render()
        assert not np.array_equal(before, after)
        assert (after == (40, 90, 220)).all(axis=-1).any() and not (before == (40, 90, 220)).all(axis=-1).any()
    assert len(shapes) == 3


@pytest.mark.parametrize("level", LEVELS)
def test_every_level_resets(level):
    env = SudokuEnv(difficulty=level)
    obs, _ = env.reset(seed=0)
    assert obs["givens"].sum() == env.puzzle.num_givens


def test_solution_keys_name_the_puzzles_solution_grid_at_any_progress():
    """Every state of one puzzle (fresh, after placements, with a wrong digit) has the puzzle's solution grid as its
    key; another puzzle of the same solution grid (other givens) shares it, another grid does not; givens that
    cannot be completed have None."""
    env = SudokuEnv(box=3, difficulty="easy")
    obs, _ = env.reset(seed=3)
    solution = env.unwrapped._puzzle.solution
    states = [obs]
    empty = np.flatnonzero(obs["grid"].ravel() == 0)
    for cell in empty[:2]:  # place the right digit, then a wrong one
        digit = int(solution.ravel()[cell])
        states.append(env.step(int(cell) * 10 + digit - 1)[0])
    legal = obs["action_mask"].reshape(81, 10)[empty[5]]
    wrong = [d for d in range(1, 10) if legal[d - 1] and d != solution.ravel()[empty[5]]]
    states.append(env.step(int(empty[5]) * 10 + wrong[0] - 1)[0])
    batch = {k: np.stack([s[k] for s in states]) for k in ("grid", "givens")}
    keys = solution_keys(batch)
    assert keys == [solution.astype(np.int8).tobytes()] * len(states)
    more = solution.copy()
    more_givens = (obs["givens"] != 0) | (np.arange(81).reshape(9, 9) == empty[0])  # one more given
    other = {"grid": np.where(more_givens, more, 0)[None], "givens": more_givens.astype(np.int8)[None]}
    assert solution_keys(other) == keys[:1]
    assert solution_keys({k: v[None] for k, v in SudokuEnv(box=3).reset(seed=4)[0].items()}) != keys[:1]
    clash = {"grid": np.zeros((1, 9, 9), np.int8), "givens": np.zeros((1, 9, 9), np.int8)}
    clash["grid"][0, 0, :2] = 5
    clash["givens"][0, 0, :2] = 1
    assert solution_keys(clash) == [None]

