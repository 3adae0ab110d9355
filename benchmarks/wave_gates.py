"""Where a ``model.block=wave`` city-routing policy fails: its gates against the city's own tables, route by route.

    python -m benchmarks.wave_gates --checkpoint pretrained/city_paper_trm_wave.pt --data data/city-paper
    python -m benchmarks.wave_gates --checkpoint runs/x/last.pt --data data/city-paper-aug --validation-bases 40

Scores a seq2seq checkpoint with wave blocks on a built city data set: the test split, or with
``--validation-bases N`` the originals of the train split's last N bases (the release's validation routes). For
every route it compares the gates the relaxation applies (:meth:`agents.layers.WaveGates.hard`) with the road
network of the route's vehicle (:class:`hrm_envs.city.generator.RoadNetwork`) on the cells that can reach the
destination: ``cost_exact`` (the entry cost within half a time unit; the start and destination tokens do not show
their street, so they are left out), ``moves_exact`` (the 4 allowed moves), ``passable_exact`` (every city cell:
passable iff the vehicle may use its street) and ``source_exact`` (the destination is the one source);
``start_cost_error``: the relaxed cost to go at the start against the oracle's, relative to it, both without the
destination's own entry cost (every route pays it, and its token does not show it); and whether the route decoded
from the move field arrives, and in the oracle's travel time (``optimal``). Prints one JSON object: the means
overall and per vehicle, and each route that did not arrive, was not cost-optimal or had a wrong gate.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.layers import WaveGates
from hrm_envs.city.env import parse_observation
from hrm_envs.city.generator import VEHICLES
from hrm_envs.city.metrics import COST_SCALE, follow_route, route_metrics
from train.evaluate import load_seq2seq
from train.seq2seq import first_examples, validation_groups

#: Routes per forward pass.
CHUNK = 32
STATS = ("arrived", "optimal", "cost_exact", "moves_exact", "passable_exact", "source_exact", "gates_exact", "start_cost_error")


def route_stats(obs: dict, gates: WaveGates, cost_to_go: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """One route's figures (:data:`STATS`: shares in [0, 1], 0/1 flags and a relative error) from its hard gates
    (B = 1, on the padded grid), the relaxed cost to go (flat over the padded grid, in units of :data:`COST_SCALE`)
    and the move scores (``max_size ** 2``, >= 4) its route is decoded from; the counts of wrong costs and moves."""
    puzzle = parse_observation(obs)
    n, net = puzzle.size, puzzle.network()
    inner = (slice(1, -1), slice(1, -1))
    dist = net.distances_to(net.flat(puzzle.destination)).reshape(n + 2, n + 2)[inner]
    cost = net.cost.reshape(n + 2, n + 2)[inner]
    legal = net.moves.reshape(n + 2, n + 2, 4)[inner].astype(bool)
    reach = np.isfinite(dist)
    shown = reach.copy()
    shown[puzzle.start] = shown[puzzle.destination] = False  # their tokens do not carry the street
    entry = gates.cost[0, 0, :n, :n].numpy() * COST_SCALE
    allowed = (gates.allowed()[:, 0, 0, :n, :n].numpy() > 0.5).transpose(1, 2, 0)
    passable = gates.passable[0, 0, :n, :n].numpy() > 0.5
    dest = puzzle.destination
    source = gates.source[0, 0, :n, :n].numpy() > 0.5
    width = np.asarray(obs["street"]).shape[0]  # the padded grid's side
    start = float(cost_to_go[puzzle.start[0] * width + puzzle.start[1]]) * COST_SCALE
    route = follow_route(obs, scores)
    stats = {
        "arrived": float(route[-1] == puzzle.destination),
        "optimal": route_metrics(puzzle, route)["optimal"],  # the route takes the oracle's travel time
        "cost_exact": float((np.abs(entry - cost) < 0.5)[shown].mean()),
        "moves_exact": float((allowed == legal).all(-1)[reach].mean()),
        "passable_exact": float((passable == (cost > 0)).mean()),
        "source_exact": float(source.sum() == 1 and source[puzzle.destination]),
        "start_cost_error": float(abs((start - entry[dest]) - (dist[puzzle.start] - cost[dest]))
                                  / max(dist[puzzle.start] - cost[dest], 1.0)),
    }
    stats["gates_exact"] = float(all(stats[k] == 1.0 for k in ("cost_exact", "moves_exact", "passable_exact",
                                                                 "source_exact")))
    return {"vehicle": VEHICLES[puzzle.vehicle], **stats, "start_cost": start,
            "oracle_start_cost": float(dist[puzzle.start]), "cost_errors": int((np.abs(entry - cost) >= 0.5)[shown].sum()),
            "move_errors": int((allowed != legal).any(-1)[reach].sum())}


def analyse(checkpoint: str, data: str, validation_bases: int | None) -> dict[str, Any]:
    """:func:`route_stats` of every route of the split, their means overall and per vehicle, and the routes that did
    not arrive or had a wrong gate."""
    model, split, _ = load_seq2seq(checkpoint, data, "train" if validation_bases else "test")
    if getattr(model.config, "block", None) != "wave":
        raise ValueError(f"--checkpoint {checkpoint} has no wave blocks (model.block={model.config.block!r})")
    rows = (first_examples(split, validation_groups(split, "train", validation_bases)) if validation_bases
            else np.arange(split.num_examples))
    model.eval()
    width = model.config.attention_grid
    routes = []
    for start in range(0, len(rows), CHUNK):
        chunk = [int(r) for r in rows[start : start + CHUNK]]
        tokens = torch.as_tensor(np.stack([split.inputs[r] for r in chunk])).long()
        with torch.no_grad():
            gates = model._wave_gates(model._embed({"tokens": tokens})[0]).hard()
            out = model.predict({"tokens": tokens})
        scores = out["policy_logits"].view(len(chunk), width * width, -1).float().numpy()
        for j, row in enumerate(chunk):
            one = WaveGates(*(g[j : j + 1] for g in (gates.source, gates.passable, gates.cost, gates.exits)))
            routes.append({"row": row, **route_stats(split.obs(row), one, out["cost_to_go"][j].numpy(), scores[j])})

    def means(selected: list[dict[str, Any]]) -> dict[str, Any]:
        return {"routes": len(selected), **{k: float(np.mean([r[k] for r in selected])) for k in STATS}}

    vehicles = sorted({r["vehicle"] for r in routes}, key=VEHICLES.index)
    return {"checkpoint": checkpoint, "data": data, "split": "validation" if validation_bases else "test",
            **means(routes), "per_vehicle": {v: means([r for r in routes if r["vehicle"] == v]) for v in vehicles},
            "failing": [r for r in routes if not (r["arrived"] and r["optimal"] and r["gates_exact"])]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a train.supervised checkpoint with model.block=wave")
    parser.add_argument("--data", required=True, help="a built city-routing seq2seq data set (e.g. data/city-paper)")
    parser.add_argument("--validation-bases", type=int, default=None,
                        help="score the originals of the train split's last N bases instead of the test split")
    args = parser.parse_args(argv)
    if not Path(args.checkpoint).is_file():
        raise ValueError(f"--checkpoint {args.checkpoint} does not exist")
    if args.validation_bases is not None and args.validation_bases < 1:
        raise ValueError(f"--validation-bases must be >= 1, got {args.validation_bases}")
    torch.set_num_threads(1)
    result = analyse(args.checkpoint, args.data, args.validation_bases)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
