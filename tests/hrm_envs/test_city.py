"""City routing environment: contract, generator guarantees, dynamics, bad input, invariants, vector envs,
encodings and the cheat-exposing metrics."""

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
from hrm_envs.city import VEHICLES, CityGenerator, CityPuzzle, CityRoutingEnv
from hrm_envs.city.env import ILLEGAL_COST
from hrm_envs.city.generator import (
    ARTERIAL,
    BIKE_LANE,
    BUILDING,
    COST,
    HIGHWAY,
    LOW_BRIDGE,
    RESIDENTIAL,
    TIME,
)
from hrm_envs.city.metrics import labels_to_mask, mean_metrics, route_metrics
from oracles import oracle_for

DR, DC = (-1, 0, 1, 0), (0, 1, 0, -1)


def _legal_by_rules(puzzle: CityPuzzle, cell: tuple[int, int], a: int) -> bool:
    """Legality of a move straight from the documented rules, independent of the env's tables."""
    n, (r, c) = puzzle.size, cell
    q = (r + DR[a], c + DC[a])
    if not (0 <= q[0] < n and 0 <= q[1] < n):
        return False
    usable = lambda x: TIME[puzzle.vehicle, puzzle.street[x]] > 0  # noqa: E731
    against = 1 + (a + 2) % 4  # one-way code of the opposite direction
    return bool(usable(cell) and usable(q) and puzzle.oneway[cell] != against and puzzle.oneway[q] != against)


def _mask_by_rules(puzzle: CityPuzzle, cell: tuple[int, int]) -> list[int]:
    return [int(_legal_by_rules(puzzle, cell, a)) for a in range(4)]


def _reach(puzzle: CityPuzzle, source: tuple[int, int]) -> set[tuple[int, int]]:
    seen, stack = {source}, [source]
    while stack:
        cell = stack.pop()
        for a in range(4):
            q = (cell[0] + DR[a], cell[1] + DC[a])
            if q not in seen and _legal_by_rules(puzzle, cell, a):
                seen.add(q)
                stack.append(q)
    return seen


def _corridor(vehicle: str = "car", **overrides) -> dict:
    """A hand-made 6x6 city: row 0 arterial, row 5 residential eastbound one-way, column 0 and 5 residential."""
    street = np.full((6, 6), BUILDING, np.int8)
    street[0, :] = ARTERIAL
    street[5, :] = RESIDENTIAL
    street[:, 0] = RESIDENTIAL
    street[:, 5] = RESIDENTIAL
    oneway = np.zeros((6, 6), np.int8)
    oneway[5, 1:5] = 2  # travel only right
    puzzle = {
        "street": street, "traffic": np.where(street > 1, 1, 0).astype(np.int8), "oneway": oneway,
        "vehicle": vehicle, "start": (5, 0), "destination": (5, 5),
    }  # fmt: skip
    puzzle.update(overrides)
    return puzzle


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"size": (6, 12), "max_size": 12}, {"size": 20, "vehicle": "truck", "traffic": "heavy"}, {"size": 8, "vehicle": "bicycle", "traffic": "none"}],
)
def test_contract(kwargs):
    check_contract("hrm/CityRouting-v0", kwargs)


def test_spaces_padding_and_size_range():
    env = CityRoutingEnv(size=(6, 9), max_size=12)
    sizes = set()
    for seed in range(40):
        obs, _ = env.reset(seed=seed)
        n = int((obs["street"][:, 0] != 0).sum())
        sizes.add(n)
        assert obs["street"].shape == obs["traffic"].shape == obs["oneway"].shape == (12, 12)
        assert (obs["street"][n:] == 0).all() and (obs["street"][:, n:] == 0).all() and (obs["street"][:n, :n] != 0).all()
    assert sizes == {6, 7, 8, 9}
    assert env.action_space.n == 4


@pytest.mark.parametrize("size", [6, 7, 10, 23, 40])
def test_generated_variants_share_a_base_and_are_routable_and_trap_free(size):
    generator, rng = CityGenerator((size, size)), np.random.default_rng(size)
    for _ in range(3 if size == 40 else 8):
        variants = generator.variants(rng)
        assert [p.vehicle for p in variants] == [0, 1, 2, 3]
        first = variants[0]
        for puzzle in variants:
            assert puzzle.street is first.street and (puzzle.start, puzzle.destination) == (first.start, first.destination)
            reach = _reach(puzzle, puzzle.start)
            assert puzzle.destination in reach
            for cell in list(reach)[:: max(1, len(reach) // 15)]:  # no cell reachable from the start is a trap
                assert puzzle.destination in _reach(puzzle, cell)
            CityPuzzle.parse(puzzle, size)  # a generated puzzle passes the option validation


def test_every_street_class_and_one_way_streets_appear():
    generator, rng = CityGenerator((40, 40)), np.random.default_rng(0)
    streets, oneways = set(), set()
    for _ in range(10):
        street, _, oneway = generator.city(rng, 40)
        streets |= set(np.unique(street).tolist())
        oneways |= set(np.unique(oneway).tolist())
    assert streets == {BUILDING, RESIDENTIAL, ARTERIAL, HIGHWAY, BIKE_LANE, LOW_BRIDGE}
    assert oneways == {0, 1, 2, 3, 4}


def test_vehicle_is_fixed_or_drawn_and_restrictions_hold():
    assert {int(CityRoutingEnv(size=10).reset(seed=s)[0]["vehicle"][0]) for s in range(40)} == {0, 1, 2, 3}
    env = CityRoutingEnv(size=20, vehicle="truck")
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        assert obs["vehicle"][0] == VEHICLES.index("truck")
        assert obs["street"][tuple(obs["position"])] in (ARTERIAL, HIGHWAY)
    assert TIME[VEHICLES.index("truck"), [RESIDENTIAL, LOW_BRIDGE, BIKE_LANE]].tolist() == [0, 0, 0]
    assert TIME[VEHICLES.index("bicycle"), HIGHWAY] == 0 and TIME[VEHICLES.index("bicycle"), BIKE_LANE] > 0


def test_moves_costs_one_way_and_arrival():
    env = CityRoutingEnv(size=6, max_size=8)
    obs, _ = env.reset(options={"puzzle": _corridor()})
    assert obs["action_mask"].tolist() == [1, 1, 0, 0]  # up the column, right along the one-way street
    obs, reward, terminated, _, info = env.step(3)  # off the grid
    assert info == {"illegal_move": True, "cost": ILLEGAL_COST, "is_success": False} and obs["position"].tolist() == [5, 0]
    assert reward == pytest.approx(-0.01 * ILLEGAL_COST) and not terminated
    obs, _, _, _, info = env.step(1)
    assert obs["position"].tolist() == [5, 1] and info["cost"] == COST[0, RESIDENTIAL, 1] == 8
    assert obs["action_mask"].tolist() == [0, 1, 0, 0]  # cannot turn back against the one-way street
    _, _, _, _, info = env.step(3)
    assert info["illegal_move"]
    for _ in range(3):
        obs, reward, terminated, _, info = env.step(1)
    assert not terminated and obs["position"].tolist() == [5, 4]
    obs, reward, terminated, truncated, info = env.step(1)
    assert terminated and not truncated and info["is_success"] is True and reward == 1.0


def test_truncation_at_step_limit():
    env = CityRoutingEnv(size=6, max_steps=3)
    env.reset(options={"puzzle": _corridor()})
    assert [env.step(2)[3] for _ in range(3)] == [False, False, True]
    env = CityRoutingEnv(size=7)
    env.reset(seed=0)
    assert env.max_steps == 2 * 49


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"size": 5}, "size"),
        ({"size": 41}, "size"),
        ({"size": (12, 8)}, "size"),
        ({"size": "40"}, "size"),
        ({"max_size": 5}, "max_size"),
        ({"max_size": 500}, "max_size"),
        ({"vehicle": "tank"}, "vehicle"),
        ({"vehicle": True}, "vehicle"),
        ({"traffic": "jam"}, "traffic"),
        ({"max_steps": 0}, "max_steps"),
        ({"render_mode": "human"}, "render_mode"),
        ({"step_penalty": -1}, "step_penalty"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CityRoutingEnv(**kwargs)


def _bad_puzzles():
    street = _corridor()["street"]
    cut = street.copy()
    cut[0, 3] = cut[4, 0] = BUILDING  # the car can still go right along row 5 ...
    cut[5, 3] = BUILDING  # ... not any more
    return [
        ({k: v for k, v in _corridor().items() if k != "oneway"}, "keys"),
        ("city", "puzzle"),
        (_corridor(street=street[:5]), "square"),
        (_corridor(street=street.astype(float)), "ints"),
        (_corridor(street=np.where(street == 1, 9, street)), "street"),
        (_corridor(street=np.where(street == 1, 0, street)), "outside"),
        (_corridor(traffic=np.full((6, 6), 2)), "buildings"),
        (_corridor(oneway=np.full((6, 6), 7)), "oneway"),
        (_corridor(traffic=np.ones((7, 7), np.int8)), "shape"),
        (_corridor(vehicle="tank"), "vehicle"),
        (_corridor(start=(2, 2)), "building"),
        (_corridor(vehicle="truck"), "truck may not"),
        (_corridor(start=(6, 0)), "start"),
        (_corridor(destination=(5, 0)), "differ"),
        (_corridor(start=[5, True]), "start"),
        (_corridor(street=cut, traffic=np.where(cut > 1, 1, 0), oneway=np.where(cut > 1, _corridor()["oneway"], 0)), "no route"),
        (_corridor(street=np.full((5, 5), RESIDENTIAL), traffic=np.zeros((5, 5), np.int8), oneway=np.zeros((5, 5), np.int8)), "size"),
    ]


@pytest.mark.parametrize("puzzle, match", _bad_puzzles())
def test_bad_puzzles(puzzle, match):
    env = CityRoutingEnv(size=6, max_size=8)
    with pytest.raises(ValueError, match=match):
        env.reset(options={"puzzle": puzzle})


def test_bad_options_and_actions():
    env = CityRoutingEnv(size=8)
    with pytest.raises(ValueError, match="options"):
        env.reset(options="puzzle")
    env.reset(seed=0)
    for action in (-1, 4, 1.0, None, "2"):
        with pytest.raises(ValueError, match="action"):
            env.step(action)


def test_puzzle_roundtrip_from_env_and_dict():
    env = CityRoutingEnv(size=(10, 30))
    obs, _ = env.reset(seed=5)
    other = CityRoutingEnv(size=(10, 30))
    for option in (env.puzzle, env.puzzle.to_dict()):
        again, _ = other.reset(options={"puzzle": option})
        assert all(np.array_equal(obs[k], again[k]) for k in obs)
    legal = int(np.flatnonzero(obs["action_mask"])[0])
    moved, *_ = env.step(legal)
    assert env.puzzle.start == tuple(moved["position"].tolist()) and env.puzzle.destination == tuple(obs["destination"].tolist())


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(6, 16),
    seed=st.integers(0, 2**31 - 1),
    actions=st.lists(st.integers(0, 3), min_size=1, max_size=120),
)
def test_random_action_sequences_keep_invariants(size, seed, actions):
    env = CityRoutingEnv(size=size, max_size=16)
    obs, _ = env.reset(seed=seed)
    puzzle = env.puzzle
    fixed = {k: obs[k].copy() for k in ("street", "traffic", "oneway", "vehicle", "destination")}
    for action in actions:
        cell = tuple(obs["position"].tolist())
        assert obs["action_mask"].tolist() == _mask_by_rules(puzzle, cell)
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        assert all(np.array_equal(obs[k], v) for k, v in fixed.items())
        after = tuple(obs["position"].tolist())
        if _legal_by_rules(puzzle, cell, action):
            assert not info["illegal_move"] and after == (cell[0] + DR[action], cell[1] + DC[action])
            assert info["cost"] == COST[puzzle.vehicle, puzzle.street[after], puzzle.traffic[after]] > 0
        else:
            assert info["illegal_move"] and after == cell and info["cost"] == ILLEGAL_COST
        assert terminated == (after == puzzle.destination)
        if terminated or truncated:
            assert info["is_success"] == terminated
            break


@pytest.mark.parametrize("vector_cls", [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv])
def test_vector_envs_solved_by_batched_oracle(vector_cls):
    assert vector_oracle_successes("hrm/CityRouting-v0", {"size": (8, 14), "max_size": 14}, vector_cls, steps=60, seed=3) >= 3


def test_token_encoding():
    env = CityRoutingEnv(size=6, max_size=8)
    obs, _ = env.reset(options={"puzzle": _corridor(vehicle="bicycle")})
    encoder = encoder_for(env)
    assert (encoder.seq_len, encoder.per_token_actions, encoder.global_actions) == (64, 0, 4)
    tokens = encoder.tokens(obs)
    assert tokens.shape == (64,) and tokens.dtype == np.int64
    assert tokens[6] == 0 and tokens[8 + 1] == 1  # outside, building
    assert tokens[2] == 2 + ((ARTERIAL - 2) * 4 + 1) * 5 + 0
    assert tokens[5 * 8 + 2] == 2 + ((RESIDENTIAL - 2) * 4 + 1) * 5 + 2  # one-way right
    assert tokens[5 * 8 + 0] == 102 + 5 * VEHICLES.index("bicycle") + 0 and tokens[5 * 8 + 5] == 122
    batch = {k: np.stack([v, v, v]) for k, v in obs.items()}
    assert encoder.tokens(batch).shape == (3, 64) and (encoder.tokens(batch) == tokens).all()
    generated = CityRoutingEnv(size=(6, 40)).reset(seed=1)[0]
    big = encoder_for(gym.make("hrm/CityRouting-v0"))
    assert big.seq_len == 1600 and 0 <= big.tokens(generated).min() and big.tokens(generated).max() < big.vocab_size


def test_seq2seq_pairs_and_metrics_of_the_labels():
    env = CityRoutingEnv()
    oracle = oracle_for(env)
    encoder = encoder_for(env)
    obs, _ = env.reset(seed=2)
    inputs, labels = encoder.seq2seq(obs, oracle)
    assert inputs.shape == labels.shape == (1600,) and inputs.dtype == labels.dtype == np.int64
    assert set(np.unique(labels).tolist()) <= {0, 1, 2} and labels.max() < encoder.seq2seq_vocab_size
    assert np.array_equal(inputs, encoder.tokens(obs))
    route = oracle.route(obs)
    assert (labels == 2).sum() == len(route) == len(oracle.solve(obs)) + 1
    assert route_metrics(obs, labels_to_mask(labels, 40)) == route_metrics(obs, route)


def test_graph_and_text_encodings():
    env = CityRoutingEnv(size=6, max_size=8)
    obs, _ = env.reset(options={"puzzle": _corridor()})
    encoder = encoder_for(env)
    graph = encoder.graph(obs)
    assert isinstance(graph, nx.DiGraph) and graph.number_of_nodes() == 20  # street cells
    assert graph.has_edge((5, 1), (5, 2)) and not graph.has_edge((5, 2), (5, 1))  # one-way
    edge = graph.edges[(0, 0), (0, 1)]
    assert edge["allowed"] and edge["cost"] == COST[0, ARTERIAL, 1] and edge["barred_for"] == ("truck",)  # truck: from residential
    assert graph.graph["vehicle"] == "car" and graph.graph["destination"] == (5, 5)
    cost = nx.shortest_path_length(graph, (5, 0), (5, 5), weight=lambda u, v, d: d["cost"] if d["allowed"] else None)
    assert cost == oracle_for(env).cost_to_go(obs) == 5 * 8
    text = encoder.text(obs)
    assert "vehicle: car" in text and "@>>>>X" in text and "===" in text


def test_metrics_expose_cheating_and_reward_the_oracle_route():
    env = CityRoutingEnv(size=40)
    oracle = oracle_for(env)
    cheats = {"whole grid": [], "every usable cell": [], "oracle": [], "broken route": [], "sparse scatter": []}
    rng = np.random.default_rng(0)
    for seed in range(6):
        obs, _ = env.reset(seed=seed)
        route = oracle.route(obs)
        usable = TIME[obs["vehicle"][0]][obs["street"]] > 0
        cheats["oracle"].append(route_metrics(obs, route))
        cheats["whole grid"].append(route_metrics(obs, np.ones((40, 40))))
        cheats["every usable cell"].append(route_metrics(obs, usable))
        cheats["broken route"].append(route_metrics(obs, route[: len(route) // 2] + route[len(route) // 2 + 1 :]))
        cheats["sparse scatter"].append(route_metrics(obs, usable & (rng.random((40, 40)) < 0.05)))
    mean = {name: mean_metrics(results) for name, results in cheats.items()}
    perfect = ("arrived", "valid", "valid_ratio", "path_f1", "efficiency", "optimal")
    assert all(mean["oracle"][k] == 1.0 for k in perfect)
    assert mean["every usable cell"]["optimal"] == 1.0  # the best route inside every usable cell is an optimal one
    assert mean["oracle"]["path_ratio"] < 0.1
    assert mean["whole grid"]["path_ratio"] == 1.0 and mean["whole grid"]["valid"] == 0.0 and mean["whole grid"]["path_f1"] < 0.15
    assert mean["every usable cell"]["valid"] == 1.0 and mean["every usable cell"]["path_ratio"] > 0.2
    assert mean["every usable cell"]["path_f1"] < 0.3
    broken = mean["broken route"]
    assert broken["arrived"] == broken["optimal"] == broken["efficiency"] == 0.0
    assert mean["broken route"]["path_f1"] > 0.9
    assert mean["sparse scatter"]["arrived"] == 0.0 and mean["sparse scatter"]["valid"] == 1.0


def test_metrics_efficiency_of_a_detour_and_bad_predictions():
    env = CityRoutingEnv(size=6, max_size=8)
    obs, _ = env.reset(options={"puzzle": _corridor()})
    detour = [(5, 0)] + [(r, 0) for r in range(4, -1, -1)] + [(0, c) for c in range(1, 6)] + [(r, 5) for r in range(1, 6)]
    result = route_metrics(obs, detour)  # 11 residential + 4 arterial cells at traffic 1 vs 5 residential
    assert result["arrived"] == 1.0 and result["efficiency"] == pytest.approx(40 / (11 * 8 + 4 * 6))
    assert result["optimal"] == 0.0 and route_metrics(obs, detour + [(5, c) for c in range(6)])["optimal"] == 1.0
    assert route_metrics(obs, [])["arrived"] == 0.0
    for bad in ([(9, 9)], np.ones((3, 3)), "route"):
        with pytest.raises(ValueError, match="route|prediction"):
            route_metrics(obs, bad)
    with pytest.raises(ValueError, match="labels"):
        labels_to_mask(np.zeros(10), 8)
    with pytest.raises(ValueError, match="results"):
        mean_metrics([])


def test_renders():
    env = CityRoutingEnv(size=6, max_size=10, render_mode="ansi")
    env.reset(options={"puzzle": _corridor()})
    text = env.render()
    assert "car at (5, 0)" in text and "@>>>>X" in text
    env = CityRoutingEnv(size=(6, 10), max_size=10, render_mode="rgb_array")
    shapes = set()
    for seed in range(3):
        env.reset(seed=seed)
        shapes.add(env.render().shape)
    assert shapes == {(80, 80, 3)}
    before = env.render().copy()
    env.step(int(np.flatnonzero(env.action_masks())[0]))
    assert not np.array_equal(before, env.render())


def _dead_end() -> dict:
    """The corridor city with column 5 cut above row 5: the eastbound one-way row 5 ends in a dead end at (5, 5)."""
    puzzle = _corridor(destination=(0, 3))
    street = puzzle["street"].copy()
    street[:5, 5] = BUILDING
    puzzle.update(street=street, traffic=np.where(street > 1, 1, 0).astype(np.int8), oneway=np.where(street > 1, puzzle["oneway"], 0))
    return puzzle


def test_cities_with_a_reachable_dead_end_are_refused():
    puzzle = _dead_end()
    net = CityPuzzle(*(np.asarray(puzzle[k], np.int8) for k in ("street", "traffic", "oneway")), 0, (5, 0), (0, 3)).network()
    assert net.reachable(net.flat((0, 3)), reverse=True)[net.flat((5, 0))]  # a route exists: up column 0
    env = CityRoutingEnv(size=6, max_size=8)
    with pytest.raises(ValueError, match=r"dead end for a car: 5 cell\(s\) reachable from start \(5, 0\), e\.g\. \(5, 1\)"):
        env.reset(options={"puzzle": puzzle})
    bike = {**puzzle, "vehicle": "bicycle"}  # same rules for every vehicle
    with pytest.raises(ValueError, match="dead end for a bicycle"):
        env.reset(options={"puzzle": bike})
    env.reset(options={"puzzle": _corridor()})  # the ring of the corridor city has no dead end


def test_ansi_render_has_a_legend():
    env = CityRoutingEnv(size=6, max_size=8, render_mode="ansi")
    env.reset(options={"puzzle": _corridor()})
    legend = env.render().splitlines()[-1]
    for glyph in ("@ vehicle", "X destination", "# building", ". residential", "= arterial", "H highway", "b bike lane",
                  "L low bridge", "^>v< one-way", "traffic level 0..3"):
        assert glyph in legend


def test_size_bound_names_max_size():
    with pytest.raises(ValueError, match=r"size must lie in \[6, 40\] \(max_size=40; raise max_size for larger puzzles\)"):
        CityRoutingEnv(size=41)


def test_the_registry_label_metrics_read_seq2seq_labels():
    """The city row's ``label_metrics`` (what ``train.supervised`` reports on seq2seq sets) = route_metrics of the mask."""
    from hrm_envs.registry import ENVS, load

    label_metrics = load(ENVS["hrm/CityRouting-v0"].label_metrics)
    env = CityRoutingEnv()
    oracle = oracle_for(env)
    obs, _ = env.reset(seed=4)
    _, labels = encoder_for(env).seq2seq(obs, oracle)
    assert label_metrics(obs, labels) == {**route_metrics(obs, oracle.route(obs)), "no_path": 0.0, "all_path": 0.0}
    assert label_metrics(obs, labels)["arrived"] == 1.0
    nothing = label_metrics(obs, np.zeros_like(labels))  # "no path anywhere" arrives nowhere: the first trap
    assert nothing["arrived"] == 0.0 and nothing["no_path"] == 1.0 and nothing["all_path"] == 0.0
    everything = label_metrics(obs, np.full_like(labels, 2))  # "all path": the second trap
    assert everything["all_path"] == 1.0 and everything["no_path"] == 0.0



@pytest.mark.parametrize("seed", [0, 3, 7])
def test_following_the_oracle_move_field_arrives_optimally(seed):
    """optimal_moves: every street cell that reaches the destination has an optimal legal move (the destination and
    the padding none); follow_field of it is an optimal, valid route."""
    from hrm_envs.city.metrics import follow_field, label_metrics, optimal_moves

    env = CityRoutingEnv(size=10, max_size=12)
    obs, _ = env.reset(seed=seed)
    puzzle = env.unwrapped.puzzle
    field = optimal_moves(obs)
    assert field.shape == (144, 4) and field.dtype == bool
    grid = field.reshape(12, 12, 4)
    assert not grid[10:].any() and not grid[:, 10:].any()  # the padding has no moves
    dest = puzzle.destination
    assert not grid[dest].any()
    reaching = {cell for cell in np.ndindex(10, 10) if cell != dest and dest in _reach(puzzle, cell)}
    assert reaching and all(grid[cell].any() for cell in reaching)
    assert all(_legal_by_rules(puzzle, cell, a) for cell in np.ndindex(10, 10) for a in range(4) if grid[cell][a])
    measured = label_metrics(obs, follow_field(obs, field.astype(float)))
    assert measured["arrived"] == measured["valid"] == measured["efficiency"] == 1.0


def test_follow_field_never_takes_an_illegal_move_nor_revisits_a_cell():
    """On the corridor city, scores that prefer west (often illegal or back), then north: the walk takes the long
    way round (up column 0, along row 0, down column 5) instead of oscillating, and arrives."""
    from hrm_envs.city.metrics import follow_field

    env = CityRoutingEnv(size=6, max_size=8)
    obs, _ = env.reset(options={"puzzle": _corridor()})
    scores = np.tile(np.array([50.0, 0.0, 10.0, 100.0]), (64, 1))  # up, right, down, left
    labels = follow_field(obs, scores)
    route = {(0, c) for c in range(6)} | {(r, 0) for r in range(6)} | {(r, 5) for r in range(6)}
    expected = np.zeros((8, 8), dtype=bool)
    expected[tuple(np.array(sorted(route)).T)] = True
    assert np.array_equal(labels_to_mask(labels, 8), expected)
    assert set(np.unique(labels.reshape(8, 8)[6:])) == {0} and labels.reshape(8, 8)[1, 1] == 1  # outside / off route


@pytest.mark.parametrize("seed", range(6))
def test_follow_field_of_random_scores_stays_legal_and_stops(seed):
    """Adversarial (random, also +-huge) scores: the walk stops; its cells are street cells the vehicle may use,
    each reached from the start by legal moves inside the route."""
    from hrm_envs.city.metrics import follow_field, label_metrics

    env = CityRoutingEnv(size=8, max_size=10)
    obs, _ = env.reset(seed=seed)
    puzzle = env.unwrapped.puzzle
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(100, 4)) * rng.choice([1.0, 1e12], size=(100, 4))
    labels = follow_field(obs, scores)
    cells = {tuple(map(int, c)) for c in np.argwhere(labels_to_mask(labels, 10))}
    assert puzzle.start in cells and label_metrics(obs, labels)["valid"] == 1.0
    seen, stack = {puzzle.start}, [puzzle.start]
    while stack:  # reachability from the start by legal moves inside the route
        cell = stack.pop()
        for a in range(4):
            q = (cell[0] + DR[a], cell[1] + DC[a])
            if q in cells and q not in seen and _legal_by_rules(puzzle, cell, a):
                seen.add(q)
                stack.append(q)
    assert seen == cells


def test_follow_field_refuses_scores_of_another_shape():
    from hrm_envs.city.metrics import follow_field

    env = CityRoutingEnv(size=6, max_size=8)
    obs, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match=r"scores must have shape \(64, 4\) .*got \(36, 4\)"):
        follow_field(obs, np.zeros((36, 4)))


def test_field_break_names_the_first_non_optimal_move_and_its_distance_to_the_goal():
    """The oracle's field never breaks; a field that turns off the optimal moves at the k-th cell of the route
    breaks there, at that cell's oracle travel time to the destination (share 1.0 at the start)."""
    from hrm_envs.city.metrics import field_break, follow_route, optimal_moves

    env = CityRoutingEnv(size=10, max_size=12)
    obs, _ = env.reset(seed=1)
    puzzle = env.unwrapped.puzzle
    field = optimal_moves(obs)
    assert field_break(obs, field.astype(float)) is None
    route = follow_route(obs, field.astype(float))
    assert route[0] == puzzle.start and route[-1] == puzzle.destination
    net = puzzle.network()
    dist = net.distances_to(net.flat(puzzle.destination))
    turned = 0
    for k, cell in enumerate(route[:-1]):
        row = cell[0] * 12 + cell[1]
        wrong = [a for a in range(4) if _legal_by_rules(puzzle, cell, a) and not field[row, a]
                 and (cell[0] + DR[a], cell[1] + DC[a]) not in route[:k]]
        if not wrong:
            continue
        scores = field.astype(float)
        scores[row, wrong[0]] = 5.0
        broken = field_break(obs, scores)
        time = float(dist[net.flat(cell)])
        assert broken == {"time_to_goal": time, "share": time / float(dist[net.flat(puzzle.start)])}
        assert (broken["share"] == 1.0) == (k == 0)
        turned += 1
    assert turned >= 2


@pytest.mark.parametrize("seed", [0, 3])
def test_cost_to_go_is_the_oracle_travel_time_and_satisfies_bellman(seed):
    """cost_to_go: 0 at the destination, NaN on padding, the oracle's cost of the episode at the start (scaled), and
    a min-plus fixed point: each reaching cell's value = min over its optimal moves of (enter cost + next value);
    the extra column it adds beside the moves does not change follow_field's route."""
    from hrm_envs.city.metrics import COST_SCALE, cost_to_go, follow_field, optimal_moves
    from oracles import oracle_for

    env = CityRoutingEnv(size=10, max_size=12)
    obs, _ = env.reset(seed=seed)
    puzzle = env.unwrapped.puzzle
    cost = cost_to_go(obs)
    grid = cost.reshape(12, 12)
    assert cost.dtype == np.float32 and np.isnan(grid[10:]).all() and np.isnan(grid[:, 10:]).all()
    assert grid[puzzle.destination] == 0.0
    oracle = oracle_for("hrm/CityRouting-v0")
    assert grid[puzzle.start] * COST_SCALE == pytest.approx(oracle.cost_to_go(obs))
    net = puzzle.network()
    field = optimal_moves(obs).reshape(12, 12, 4)
    for cell in np.ndindex(10, 10):
        for a in np.flatnonzero(field[cell]):
            nxt = (cell[0] + (-1, 0, 1, 0)[a], cell[1] + (0, 1, 0, -1)[a])
            enter = net.cost[net.flat(nxt)] / COST_SCALE
            assert grid[cell] == pytest.approx(enter + grid[nxt], abs=1e-5)
    scores = optimal_moves(obs).astype(float)
    widened = np.concatenate([scores, cost[:, None]], axis=1)
    assert (follow_field(obs, widened) == follow_field(obs, scores)).all()
