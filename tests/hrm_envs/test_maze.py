"""Maze environment: contract, generator guarantees, dynamics, bad input, invariants, vector envs, encodings."""

from __future__ import annotations

import gymnasium as gym
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hrm_envs  # noqa: F401
from hrm_envs import encoder_for
from hrm_envs.checks import check_contract, vector_oracle_successes
from hrm_envs.maze import MazeEnv, MazeGenerator, MazePuzzle
from hrm_envs.maze.encoding import GOAL, PATH, START
from hrm_envs.maze.generator import max_path_len
from oracles import oracle_for

SMALL = ["#######", "#S  # #", "### # #", "#   # #", "# ### #", "#    G#", "#######"]


def _floor_graph(walls: np.ndarray) -> nx.Graph:
    """Floor cells and their 4-neighbour edges, built independently of the package."""
    graph = nx.grid_2d_graph(*walls.shape)
    graph.remove_nodes_from([tuple(cell) for cell in np.argwhere(walls)])
    return graph


def _mask_by_rules(walls_obs: np.ndarray, position: np.ndarray) -> np.ndarray:
    r, c = (int(v) for v in position)
    mask = np.zeros(4, dtype=np.int8)
    for a, (dr, dc) in enumerate(((-1, 0), (0, 1), (1, 0), (0, -1))):
        nr, nc = r + dr, c + dc
        inside = 0 <= nr < walls_obs.shape[0] and 0 <= nc < walls_obs.shape[1]
        mask[a] = inside and walls_obs[nr, nc] == 0
    return mask


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"size": (5, 41), "kind": "loops"},
        {"size": 30, "max_size": 30, "min_path_len": 111},
        {"size": 6, "max_size": 6, "kind": "loops", "loop_fraction": 1.0},
    ],
)
def test_contract(kwargs):
    check_contract("hrm/Maze-v0", kwargs)


def test_spaces_and_padding():
    env = MazeEnv(size=7, max_size=11)
    obs, _ = env.reset(seed=0)
    assert env.action_space.n == 4
    walls = obs["walls"]
    assert walls.shape == (11, 11) and walls.dtype == np.int8
    assert (walls[7:] == 2).all() and (walls[:, 7:] == 2).all()  # outside the maze
    maze = walls[:7, :7]
    assert set(np.unique(maze)) == {0, 1}
    assert (maze[0] == 1).all() and (maze[-1] == 1).all() and (maze[:, 0] == 1).all() and (maze[:, -1] == 1).all()
    for key in ("position", "goal"):
        assert obs[key].dtype == np.int16 and maze[tuple(obs[key])] == 0
    assert not np.array_equal(obs["position"], obs["goal"])


@pytest.mark.parametrize("size", [5, 6, 7, 8, 11, 30, 41])
@pytest.mark.parametrize("kind", ["perfect", "loops"])
def test_generated_mazes_are_connected_and_perfect_or_loopy(size, kind):
    generator = MazeGenerator((size, size), kind=kind, loop_fraction=0.3)
    rng = np.random.default_rng(size)
    for _ in range(5):
        puzzle = generator(rng)
        walls = puzzle.walls
        assert walls.shape == (size, size)
        assert walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()
        assert not walls[1].all() and not walls[-2].all() and not walls[:, 1].all() and not walls[:, -2].all()
        assert not (~walls[:-1, :-1] & ~walls[1:, :-1] & ~walls[:-1, 1:] & ~walls[1:, 1:]).any()  # no open 2x2 room
        graph = _floor_graph(walls)
        assert nx.is_connected(graph)
        cycles = graph.number_of_edges() - graph.number_of_nodes() + 1
        assert cycles == 0 if kind == "perfect" else cycles > 0
        assert nx.shortest_path_length(graph, puzzle.start, puzzle.goal) == puzzle.shortest_path_len() >= 1


def test_even_sizes_double_one_wall_row_and_column():
    """Removing one doubled even wall row and column leaves the odd lattice maze: pillars wall, cells floor."""
    rng = np.random.default_rng(0)
    for size in (6, 8, 10, 30):
        for _ in range(3):
            walls = MazeGenerator((size, size))(rng).walls
            found = False
            for r in range(2, size - 2, 2):
                for c in range(2, size - 2, 2):
                    if np.array_equal(walls[r], walls[r + 1]) and np.array_equal(walls[:, c], walls[:, c + 1]):
                        odd = np.delete(np.delete(walls, r + 1, axis=0), c + 1, axis=1)
                        found |= bool(odd[::2, ::2].all() and not odd[1::2, 1::2].any())
            assert found
            if size == 30:
                rows = [r for r in range(1, size - 2) if np.array_equal(walls[r], walls[r + 1])]
                assert len(rows) == 1 and rows[0] % 2 == 0


def test_size_range_is_sampled_and_seeds_are_deterministic():
    env = MazeEnv(size=(5, 9), max_size=9)
    sizes = {int((env.reset(seed=s)[0]["walls"][:, 0] != 2).sum()) for s in range(40)}
    assert sizes == {5, 6, 7, 8, 9}
    a, _ = MazeEnv(size=(5, 41)).reset(seed=11)
    b, _ = MazeEnv(size=(5, 41)).reset(seed=11)
    assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kind", ["perfect", "loops"])
def test_min_path_len_is_respected(kind):
    env = MazeEnv(size=15, kind=kind, min_path_len=30)
    oracle = oracle_for(env)
    lengths = [oracle.cost_to_go(env.reset(seed=seed)[0]) for seed in range(30)]
    assert min(lengths) >= 30
    short = MazeEnv(size=15, kind=kind)
    assert min(oracle.cost_to_go(short.reset(seed=seed)[0]) for seed in range(30)) < 30  # the filter does something


def test_hrm_maze_hard_30x30_with_path_over_110():
    env = MazeEnv(size=30, max_size=30, min_path_len=111)
    oracle = oracle_for(env)
    for seed in range(10):
        obs, _ = env.reset(seed=seed)
        assert (obs["walls"] != 2).all()  # the 30x30 maze fills the grid
        assert oracle.cost_to_go(obs) > 110


def test_min_path_len_out_of_reach():
    assert max_path_len(5) == 6 and max_path_len(6) == 10 and max_path_len(7) == 16
    with pytest.raises(ValueError, match="min_path_len"):
        MazeEnv(size=7, min_path_len=17)
    with pytest.raises(ValueError, match=r"min_path_len.*\[1, 6\]"):
        MazeEnv(size=(5, 41), min_path_len=100)  # the smallest size bounds it
    env = MazeEnv(size=21, kind="loops", loop_fraction=1.0, min_path_len=100)  # an open grid: paths <= 36
    with pytest.raises(ValueError, match="min_path_len=100 was not reached"):
        env.reset(seed=0)


def test_moves_illegal_moves_goal_and_costs():
    env = MazeEnv(size=7, max_size=7)
    obs, _ = env.reset(options={"puzzle": SMALL})
    assert obs["position"].tolist() == [1, 1] and obs["goal"].tolist() == [5, 5]
    assert obs["action_mask"].tolist() == [0, 1, 0, 0]
    obs, reward, terminated, truncated, info = env.step(0)  # into the wall above
    assert info == {"illegal_move": True, "cost": 1.0, "is_success": False} and obs["position"].tolist() == [1, 1]
    assert reward == pytest.approx(-0.01) and not terminated and not truncated
    for action in (1, 1, 2, 2):
        obs, _, terminated, _, info = env.step(action)
        assert not info["illegal_move"] and not terminated
    assert obs["position"].tolist() == [3, 3] and obs["action_mask"].tolist() == [1, 0, 0, 1]
    for action in (3, 3, 2, 2, 1, 1, 1, 1):
        obs, reward, terminated, _, info = env.step(action)
    assert terminated and info["is_success"] is True and info["cost"] == 1.0 and reward == 1.0
    assert obs["position"].tolist() == [5, 5]


def test_moving_off_a_borderless_grid_is_masked():
    env = MazeEnv(size=5, max_size=5)
    obs, _ = env.reset(options={"puzzle": "S G"})
    assert obs["action_mask"].tolist() == [0, 1, 0, 0]
    for action in (0, 2, 3):
        obs, _, _, _, info = env.step(action)
        assert info["illegal_move"] and obs["position"].tolist() == [0, 0]
    env.step(1)
    _, _, terminated, _, info = env.step(1)
    assert terminated and info["is_success"]


def test_truncation_at_step_limit():
    env = MazeEnv(size=7, max_size=7)
    env.reset(options={"puzzle": SMALL})
    assert env.max_steps == 2 * 7 * 7
    env = MazeEnv(size=7, max_steps=3)
    env.reset(options={"puzzle": SMALL})
    results = [env.step(0) for _ in range(3)]
    assert [r[3] for r in results] == [False, False, True] and results[-1][4]["is_success"] is False


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"size": 4}, "size"),
        ({"size": 42}, "size"),
        ({"size": 31, "max_size": 30}, "size"),
        ({"size": (9, 7)}, "size"),
        ({"size": "11"}, "size"),
        ({"max_size": 4}, "max_size"),
        ({"max_size": 256}, "max_size"),
        ({"max_size": 41.0}, "max_size"),
        ({"kind": "braided"}, "kind"),
        ({"kind": "loops", "loop_fraction": 0}, "loop_fraction"),
        ({"loop_fraction": 1.5}, "loop_fraction"),
        ({"min_path_len": 0}, "min_path_len"),
        ({"min_path_len": 2.5}, "min_path_len"),
        ({"min_path_len": True}, "min_path_len"),
        ({"max_steps": 0}, "max_steps"),
        ({"render_mode": "human"}, "render_mode"),
        ({"step_penalty": -1}, "step_penalty"),
        ({"success_reward": "1"}, "success_reward"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MazeEnv(**kwargs)


WALLS = np.array([[1, 1, 1, 1], [1, 0, 0, 1], [1, 1, 1, 1]])


@pytest.mark.parametrize(
    "puzzle, match",
    [
        (["#S#", "#G"], "one length"),
        ("", "non-empty"),
        ([], "options\\['puzzle'\\]"),
        (42, "options\\['puzzle'\\]"),
        (["S", 1], "strings"),
        (["S.G"], "characters"),
        (["SSG"], "exactly one 'S'"),
        (["S  "], "exactly one 'G'"),
        (["S#G"], "no route"),
        (["S" + " " * 40 + "G"], "max_size"),
        ({"walls": WALLS, "start": (0, 0), "goal": (1, 2)}, "start.*floor"),
        ({"walls": WALLS, "start": (1, 1), "goal": (2, 2)}, "goal.*floor"),
        ({"walls": WALLS, "start": (1, 1), "goal": (1, 4)}, "goal.*inside"),
        ({"walls": WALLS, "start": (1, 1), "goal": (1, 1)}, "differ"),
        ({"walls": WALLS, "start": (1, 1.0), "goal": (1, 2)}, "start"),
        ({"walls": WALLS * 2, "start": (1, 1), "goal": (1, 2)}, "walls"),
        ({"walls": [1, 0, 0], "start": (0, 1), "goal": (0, 2)}, "walls"),
        ({"walls": WALLS, "start": (1, 1)}, "options\\['puzzle'\\]"),
    ],
)
def test_bad_puzzles(puzzle, match):
    env = MazeEnv()
    with pytest.raises(ValueError, match=match):
        env.reset(options={"puzzle": puzzle})


def test_bad_options_and_actions():
    env = MazeEnv()
    with pytest.raises(ValueError, match="options"):
        env.reset(options="puzzle")
    env.reset(seed=0)
    for action in (-1, 4, 1.0, None, "0", np.array([1, 2])):
        with pytest.raises(ValueError, match="action"):
            env.step(action)
    env.step(np.int64(3))  # numpy integers are fine


def test_puzzle_forms_and_roundtrip():
    env = MazeEnv(size=(5, 41), kind="loops")
    obs, _ = env.reset(seed=5)
    moved, _, terminated, _, _ = env.step(int(np.flatnonzero(obs["action_mask"])[0]))
    assert not terminated
    puzzle = env.puzzle
    other = MazeEnv(size=(5, 41))
    as_dict = {"walls": puzzle.walls, "start": puzzle.start, "goal": puzzle.goal}
    for form in (puzzle, puzzle.rows(), "\n".join(puzzle.rows()), as_dict):
        restarted, _ = other.reset(options={"puzzle": form})
        assert MazePuzzle.parse(form, 41) == puzzle
        assert all(np.array_equal(restarted[k], moved[k]) for k in moved)


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(5, 13),
    kind=st.sampled_from(["perfect", "loops"]),
    seed=st.integers(0, 2**31 - 1),
    actions=st.lists(st.integers(0, 3), min_size=1, max_size=120),
)
def test_random_action_sequences_keep_invariants(size, kind, seed, actions):
    env = MazeEnv(size=size, max_size=13, kind=kind)
    obs, _ = env.reset(seed=seed)
    walls, goal = obs["walls"].copy(), obs["goal"].copy()
    for action in actions:
        before = obs["position"].copy()
        legal = bool(obs["action_mask"][action])
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        assert np.array_equal(obs["walls"], walls) and np.array_equal(obs["goal"], goal)
        assert walls[tuple(obs["position"])] == 0
        assert np.array_equal(obs["action_mask"], _mask_by_rules(walls, obs["position"]))
        assert info["cost"] == 1.0 and info["illegal_move"] == (not legal)
        step = obs["position"].astype(int) - before
        assert step.tolist() == ([[-1, 0], [0, 1], [1, 0], [0, -1]][action] if legal else [0, 0])
        assert terminated == np.array_equal(obs["position"], goal)
        if terminated:
            assert info["is_success"] and reward == 1.0
            break
        assert reward == pytest.approx(-0.01)
        if truncated:
            break


@pytest.mark.parametrize("vector_cls", [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv])
def test_vector_envs_solved_by_batched_oracle(vector_cls):
    assert vector_oracle_successes("hrm/Maze-v0", {"size": (5, 15), "kind": "loops"}, vector_cls, steps=150, seed=7) >= 6


def test_token_encoding():
    env = MazeEnv(size=7, max_size=9)
    obs, _ = env.reset(options={"puzzle": SMALL})
    encoder = encoder_for(env)
    assert encoder.vocab_size == encoder.seq2seq_vocab_size == 6 and encoder.seq_len == 81
    assert encoder.per_token_actions * encoder.seq_len + encoder.global_actions == env.action_space.n
    tokens = encoder.tokens(obs)
    assert tokens.shape == (81,) and tokens.dtype == np.int64
    grid = tokens.reshape(9, 9)
    assert (grid[7:] == 0).all() and (grid[:, 7:] == 0).all()
    chars = {1: "#", 2: " ", 3: "S", 4: "G"}
    assert ["".join(chars[t] for t in row[:7]) for row in grid[:7]] == SMALL
    obs2, *_ = env.step(1)
    batch = {k: np.stack([obs[k], obs2[k]]) for k in obs}
    batched = encoder.tokens(batch)
    assert batched.shape == (2, 81) and np.array_equal(batched[0], tokens) and np.array_equal(batched[1], encoder.tokens(obs2))
    assert batched[1, 1 * 9 + 2] == START and batched[1, 1 * 9 + 1] == 2
    assert encoder.tokens({k: v[None, None] for k, v in obs.items()}).shape == (1, 1, 81)


def test_seq2seq_marks_the_oracle_path_hrm_style():
    env = MazeEnv(size=30, max_size=30, min_path_len=111)
    oracle = oracle_for(env)
    encoder = encoder_for(env)
    obs, _ = env.reset(seed=3)
    inputs, labels = encoder.seq2seq(obs, oracle)
    assert inputs.shape == labels.shape == (900,) and inputs.dtype == labels.dtype == np.int64
    assert np.array_equal(inputs, encoder.tokens(obs))
    assert (labels == PATH).sum() == oracle.cost_to_go(obs) - 1 > 109
    assert np.array_equal(labels != PATH, inputs == labels) and (inputs[labels == PATH] == 2).all()
    assert (labels == START).sum() == (labels == GOAL).sum() == 1
    path = {tuple(divmod(int(i), 30)) for i in np.flatnonzero(labels == PATH)}
    path |= {tuple(obs["position"]), tuple(obs["goal"])}
    graph = _floor_graph(obs["walls"] == 1).subgraph(path)
    assert nx.is_connected(graph) and nx.is_tree(graph)  # a simple path from S to G


def test_graph_and_text_encodings():
    env = MazeEnv(size=7, max_size=9)
    obs, _ = env.reset(options={"puzzle": SMALL})
    encoder = encoder_for(env)
    graph = encoder.graph(obs)
    expected = _floor_graph(np.array([[ch == "#" for ch in row] for row in SMALL]))
    assert isinstance(graph, nx.Graph) and set(graph.nodes) == set(expected.nodes)
    assert {frozenset(e) for e in graph.edges} == {frozenset(e) for e in expected.edges}
    assert all(data["cost"] == 1 for *_, data in graph.edges(data=True))
    assert graph.nodes[(1, 1)] == {"position": (1, 1), "is_goal": False, "is_agent": True}
    assert graph.nodes[(5, 5)]["is_goal"] and not graph.nodes[(5, 5)]["is_agent"]
    text = encoder.text(obs)
    assert text.splitlines()[1:] == SMALL and "'S' you" in text
    with pytest.raises(ValueError, match="observation_space"):
        encoder_for("hrm/Maze-v0")


def test_renders():
    env = MazeEnv(size=7, max_size=9, render_mode="ansi")
    env.reset(options={"puzzle": SMALL})
    text = env.render()
    assert text.splitlines()[1:] == SMALL and "step 0" in text
    env = MazeEnv(size=(5, 9), max_size=9, render_mode="rgb_array")
    shapes = set()
    for seed in range(3):
        env.reset(seed=seed)
        shapes.add(env.render().shape)
    assert shapes == {(72, 72, 3)}
    before = env.render().copy()
    env.step(int(np.flatnonzero(env.action_masks())[0]))
    assert not np.array_equal(before, env.render())


@pytest.mark.slow
def test_maskable_ppo_learns_small_mazes():
    """RL usability: MaskablePPO on the Dict observation with action masks solves random 5x5 mazes."""
    from sb3_contrib import MaskablePPO

    env = gym.make("hrm/Maze-v0", size=5, max_size=5, max_steps=20)
    model = MaskablePPO("MultiInputPolicy", env, seed=0, n_steps=256, batch_size=64, device="cpu", verbose=0)
    model.learn(total_timesteps=8000)
    eval_env = gym.make("hrm/Maze-v0", size=5, max_size=5, max_steps=20)
    successes = []
    for episode in range(50):
        obs, _ = eval_env.reset(seed=10_000 + episode)
        done = False
        while not done:
            action, _ = model.predict(obs, action_masks=eval_env.unwrapped.action_masks(), deterministic=True)
            obs, _, terminated, truncated, info = eval_env.step(action)
            done = terminated or truncated
        successes.append(info["is_success"])
    assert np.mean(successes) >= 0.8, np.mean(successes)


OPEN = np.ones((5, 5), dtype=bool)
OPEN[1:4, 1:4] = False  # a 3x3 room inside a wall ring


@pytest.mark.parametrize("start", [[1, 1], (1, 1), np.array([1, 1]), [np.int64(1), 1]])
def test_puzzle_cells_may_be_lists_or_arrays_of_two_ints(start):
    puzzle = MazePuzzle(OPEN, start, [3, 3])
    assert puzzle.start == (1, 1) and puzzle.goal == (3, 3) and type(puzzle.start) is tuple
    assert puzzle.rows()[1] == "#S  #" and puzzle.shortest_path_len() == 4
    env = MazeEnv(size=5, max_size=5)
    obs, _ = env.reset(options={"puzzle": puzzle})
    assert obs["position"].tolist() == [1, 1] and env.observation_space.contains(obs)
    for action in (1, 1, 2):
        env.step(action)
    *_, terminated, _, info = env.step(2)
    assert terminated and info["is_success"]


@pytest.mark.parametrize(
    "walls, start, match",
    [
        (OPEN, [1.0, 1], "start must be a \\(row, col\\) pair of ints"),
        (OPEN, [1, 1, 1], "start must be a \\(row, col\\) pair"),
        (OPEN, np.array([[1, 1]]), "start must be a \\(row, col\\) pair"),
        (OPEN, "11", "start must be a \\(row, col\\) pair"),
        (OPEN, (0, 0), "start \\(0, 0\\) must be a floor cell"),
        (OPEN, (5, 1), "inside the 5x5 grid"),
        (OPEN.astype(float), (1, 1), "walls must be a non-empty 2-D array"),
        (OPEN[0], (1, 1), "walls must be a non-empty 2-D array"),
    ],
)
def test_bad_puzzles_are_refused_on_construction(walls, start, match):
    with pytest.raises(ValueError, match=match):
        MazePuzzle(walls, start, (3, 3))


def test_puzzle_does_not_share_the_callers_walls():
    walls = OPEN.copy()
    puzzle = MazePuzzle(walls, (1, 1), (3, 3))
    walls[2, 2] = True
    assert not puzzle.walls[2, 2]


def test_size_bound_names_max_size():
    with pytest.raises(ValueError, match=r"size must lie in \[5, 41\] \(max_size=41; raise max_size for larger puzzles\)"):
        MazeEnv(size=43)
