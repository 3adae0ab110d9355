"""City routing oracle: exact against exhaustive search over the env's own transitions (small cities) and
against networkx Dijkstra on graphs built from the rules (40x40), per vehicle."""

from __future__ import annotations

import math

import gymnasium as gym
import networkx as nx
import numpy as np
import pytest

import hrm_envs  # noqa: F401
from hrm_envs.city import VEHICLES, CityGenerator, CityPuzzle, CityRoutingEnv
from hrm_envs.city.generator import COST
from oracles import oracle_for
from oracles.check import verify_oracle
from oracles.city import CityRoutingOracle

DR, DC = (-1, 0, 1, 0), (0, 1, 0, -1)


def _rules_graph(puzzle: CityPuzzle) -> nx.DiGraph:
    """The vehicle's move graph straight from the documented rules; edge weight = time of the cell entered."""
    n, graph = puzzle.size, nx.DiGraph()
    cost = COST[puzzle.vehicle, puzzle.street, puzzle.traffic]
    for r in range(n):
        for c in range(n):
            for a in range(4):
                q = (r + DR[a], c + DC[a])
                against = 1 + (a + 2) % 4
                if (
                    0 <= q[0] < n
                    and 0 <= q[1] < n
                    and cost[r, c] > 0
                    and cost[q] > 0
                    and puzzle.oneway[r, c] != against
                    and puzzle.oneway[q] != against
                ):
                    graph.add_edge((r, c), q, weight=int(cost[q]), action=a)
    return graph


def _observation(puzzle: CityPuzzle, cell: tuple[int, int], max_size: int) -> dict:
    env = CityRoutingEnv(size=puzzle.size, max_size=max_size)
    p = CityPuzzle(puzzle.street, puzzle.traffic, puzzle.oneway, puzzle.vehicle, cell, puzzle.destination)
    if cell == puzzle.destination:  # the last observation of an episode: not a valid start, build it directly
        obs, _ = env.reset(options={"puzzle": CityPuzzle(*(p.street, p.traffic, p.oneway, p.vehicle, puzzle.start, puzzle.destination))})
        obs["position"] = np.array(cell, np.int16)
        return obs
    return env.reset(options={"puzzle": p})[0]


def test_oracle_for_returns_the_city_oracle():
    assert isinstance(oracle_for("hrm/CityRouting-v0"), CityRoutingOracle)
    assert isinstance(oracle_for(gym.make("hrm/CityRouting-v0")), CityRoutingOracle)


@pytest.mark.parametrize("vehicle", VEHICLES)
def test_exhaustive_on_small_cities_including_after_mistakes(vehicle):
    """Every state reachable by any action sequence (mistakes included) gets exact labels."""
    oracle = CityRoutingOracle()
    rng = np.random.default_rng(VEHICLES.index(vehicle))
    checked = 0
    for seed in range(6):
        env = CityRoutingEnv(size=(6, 11), max_size=11, vehicle=vehicle, max_steps=10**9)
        obs, _ = env.reset(seed=seed)
        for _ in range(int(rng.integers(0, 6))):  # wander first, masked and illegal moves alike
            obs, _, terminated, _, _ = env.step(int(rng.integers(4)))
            if terminated:
                obs, _ = env.reset(seed=seed)
        checked += verify_oracle(env, oracle, obs)
    assert checked > 30


@pytest.mark.parametrize("seed", range(3))
def test_matches_networkx_on_40x40_for_every_vehicle_variant(seed):
    oracle = CityRoutingOracle()
    routes = []
    for puzzle in CityGenerator((40, 40)).variants(np.random.default_rng(seed)):
        graph = _rules_graph(puzzle)
        dist = nx.single_source_dijkstra_path_length(graph.reverse(copy=False), puzzle.destination)
        assert dist[puzzle.start] == oracle.cost_to_go(_observation(puzzle, puzzle.start, 40))
        obs = _observation(puzzle, puzzle.start, 40)
        usable = np.argwhere(COST[puzzle.vehicle, puzzle.street, puzzle.traffic] > 0)
        for cell in map(tuple, usable.tolist()):
            obs["position"] = np.array(cell, np.int16)
            assert oracle.cost_to_go(obs) == dist.get(cell, math.inf)
            if cell not in dist:
                continue
            if cell == puzzle.destination:
                assert oracle.optimal_actions(obs) == frozenset()
                continue
            best = {d["action"] for _, q, d in graph.out_edges(cell, data=True) if d["weight"] + dist[q] == dist[cell]}
            assert oracle.optimal_actions(obs) == best and oracle.act(obs) == min(best)
        obs["position"] = np.array(puzzle.start, np.int16)
        routes.append(frozenset(oracle.route(obs)))
    assert len(set(routes)) >= 2  # the same map gives different optimal routes per vehicle


def test_vehicles_route_differently_on_most_base_scenarios():
    oracle, generator, rng = CityRoutingOracle(), CityGenerator((30, 40)), np.random.default_rng(7)
    differing = 0
    for _ in range(10):
        variants = generator.variants(rng)
        routes = {frozenset(oracle.route(_observation(p, p.start, 40))) for p in variants}
        costs = {oracle.cost_to_go(_observation(p, p.start, 40)) for p in variants}
        differing += len(routes) >= 2 and len(costs) >= 2
    assert differing >= 8


@pytest.mark.parametrize("seed", range(4))
def test_solve_is_optimal_and_succeeds_in_env(seed):
    oracle = CityRoutingOracle()
    env = CityRoutingEnv(size=(20, 40))
    obs, _ = env.reset(seed=seed)
    plan, expected, total = oracle.solve(obs), oracle.cost_to_go(obs), 0.0
    for action in plan:
        assert action in oracle.optimal_actions(obs)
        obs, _, terminated, _, info = env.step(action)
        total += info["cost"]
    assert terminated and info["is_success"] and total == expected
    assert oracle.solve(obs) == [] and oracle.cost_to_go(obs) == 0 and oracle.act(obs) == 0


def test_ties_exist_and_act_batch_matches_act():
    oracle = CityRoutingOracle()
    env = CityRoutingEnv(size=(10, 40))
    observations, ties = [], 0
    rng = np.random.default_rng(1)
    for seed in range(10):
        obs, _ = env.reset(seed=seed)
        for _ in range(30):
            observations.append(obs)
            ties += len(oracle.optimal_actions(obs)) >= 2
            obs, _, terminated, _, _ = env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
            if terminated:
                break
    assert ties > 0
    batch = {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    assert oracle.act_batch(batch).tolist() == [oracle.act(o) for o in observations]


def test_cut_off_cells_and_bounded_cache():
    street = np.full((6, 6), 2, np.int8)
    street[1:5, 1:5] = 1
    oneway = np.zeros((6, 6), np.int8)
    oneway[5, 1:5] = 2  # bottom row eastbound
    oneway[1:5, 5] = 3  # right column southbound: (5, 5) is a dead end
    oneway[1:5, 0] = 1  # left column northbound
    oneway[0, 1:5] = 4  # top row westbound
    oneway[0, 0] = oneway[5, 0] = oneway[0, 5] = 0
    traffic = np.where(street > 1, 0, 0).astype(np.int8)
    puzzle = {"street": street, "traffic": traffic, "oneway": oneway, "vehicle": "car", "start": (5, 0), "destination": (5, 3)}
    env = CityRoutingEnv(size=6, max_size=6)
    obs, _ = env.reset(options={"puzzle": {**puzzle, "oneway": np.zeros_like(oneway)}})
    obs["oneway"] = oneway  # the env refuses cities with dead ends, so the oracle is shown this one directly
    oracle = CityRoutingOracle(cache_size=2)
    assert oracle.cost_to_go(obs) == 3 * 4
    obs["position"] = np.array([5, 5], np.int16)  # past the destination: no way back
    assert math.isinf(oracle.cost_to_go(obs)) and oracle.optimal_actions(obs) == frozenset() and oracle.act(obs) == 0
    with pytest.raises(ValueError, match="no route"):
        oracle.solve(obs)
    with pytest.raises(ValueError, match="no route"):
        oracle.route(obs)
    for seed in range(5):
        oracle.cost_to_go(CityRoutingEnv(size=8).reset(seed=seed)[0])
    assert len(oracle._cache) == 2


def test_malformed_observations_raise_value_error():
    oracle = CityRoutingOracle()
    obs, _ = CityRoutingEnv(size=8, max_size=10).reset(seed=0)
    for bad in (
        {k: v for k, v in obs.items() if k != "street"},
        {**obs, "position": np.array([9, 9], np.int16)},
        {**obs, "vehicle": np.array([7], np.int8)},
        {**obs, "street": np.zeros((10, 10), np.int8)},
        "obs",
    ):
        with pytest.raises(ValueError, match="obs"):
            oracle.optimal_actions(bad)
