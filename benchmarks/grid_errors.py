"""Where a maze / city policy fails: teacher forcing by how far the goal is, and its token head by the cell's distance.

    python -m benchmarks.grid_errors --env maze --checkpoint runs/headline_maze_labels/hrm_labels_dagger/last.pt
    python -m benchmarks.grid_errors --env city --checkpoint A.pt B.pt --sizes 10 20 40 --puzzles 10

Plays the oracle's own trajectory of ``--puzzles`` fresh puzzles per size (the ``train.evaluate`` seed stream) and
buckets every state by the moves left to the goal on that trajectory (``DISTANCE_BINS``): the TF accuracy (greedy
masked action optimal) per bucket shows how far from the goal the policy still knows the way; ``tf_by_puzzle``
lists each puzzle's ``[moves, TF]`` (with ``--seed`` = train.evaluate's ``seed`` and the same ``--sizes``, the
puzzles ``train.evaluate`` plays). For a checkpoint
trained with ``dagger.token_labels=true`` (a 4-class token head), ``move_labels`` scores that head's move at every
cell of each puzzle's first state against the oracle's optimal moves there, per bucket of the cell's own
cost-to-go (moves in a maze, travel time in a city), and ``readout_tf`` is the TF of acting by the head's move at
the agent's cell (a ``model.front_rate`` checkpoint's head has a class more, "not reached yet": ``not_reached`` is
the share of cells it gives, scored as wrong). A ``model.block=front`` checkpoint's ``front`` scores its reached
bit and came-from marks on those cells (:func:`front_stats`). ``--segments K`` makes an HRM / TRM checkpoint think K ACT
segments per decision (does more recurrence at test time carry the field further?). A checkpoint with
``model.episode_carry`` walks each trajectory in order, its latent carried from state to state as when it acts (the
token head is read from fresh states).
Prints one JSON object: per checkpoint and size.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

import hrm_envs  # noqa: F401  (registers the ids)
from agents.layers import FrontBlock
from benchmarks.headline import EXPERIMENTS
from hrm_envs.core import MOVES
from hrm_envs.encoding import encoder_for
from oracles import oracle_for
from train.evaluate import episode_seeds, load_any_policy
from train.rollout import oracle_states, stack, trajectory_actions

#: Env name -> (id, default max_size: the headline's padded grid).
ENVS = {"maze": ("hrm/Maze-v0", 31), "city": ("hrm/CityRouting-v0", 40)}
#: Upper bounds (inclusive) of the distance buckets; the last bucket is everything beyond.
DISTANCE_BINS = (2, 4, 8, 16, 32, 64)
#: States per forward pass.
CHUNK = 256


def bucket_names() -> list[str]:
    lows = (1, *(b + 1 for b in DISTANCE_BINS))
    return [f"{lo}-{hi}" for lo, hi in zip(lows, DISTANCE_BINS)] + [f"{lows[-1]}+"]


def buckets(distance: np.ndarray) -> np.ndarray:
    """Bucket index of each (positive) distance."""
    return np.searchsorted(np.array(DISTANCE_BINS), distance, side="left")


def by_bucket(right: np.ndarray, distance: np.ndarray) -> dict[str, dict[str, float]]:
    """Count and accuracy of ``right`` per distance bucket (non-empty buckets only)."""
    index, names = buckets(distance), bucket_names()
    return {names[b]: {"n": int((index == b).sum()), "accuracy": round(float(right[index == b].mean()), 4)}
            for b in range(len(names)) if (index == b).any()}


def chunked(fn: Callable[[dict[str, np.ndarray]], np.ndarray], batch: dict[str, np.ndarray],
            size: int = CHUNK) -> np.ndarray:
    """``fn`` over ``batch`` in slices of ``size`` states, concatenated (a 31x31 maze's thousands of states at
    once would hold gigabytes of activations)."""
    total = len(next(iter(batch.values())))
    return np.concatenate([fn({key: value[start:start + size] for key, value in batch.items()})
                           for start in range(0, total, size)])


def cell_labels(oracle: Any, first: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each cell of the puzzles' first states as the agent's position: its cost-to-go (NaN where there is no label,
    inf where the goal cannot be reached), its optimal moves (False where unlabelled) and its trained label."""
    labels = oracle.token_labels(first)
    side = int(first[oracle.grid_key].shape[-1])
    cost = oracle.token_costs(first).astype(np.float64)
    optimal = np.zeros((*labels.shape, oracle.token_label_classes), dtype=bool)
    for i, token in zip(*np.nonzero(labels >= 0)):
        state = {key: value[i] for key, value in first.items()}
        state["position"] = np.array(divmod(int(token), side), dtype=np.int16)
        label = oracle.label(state)
        cost[i, token] = label.cost_to_go
        optimal[i, token, list(label.optimal)] = True
    return cost, optimal, labels


def predicted(policy: Any, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's outputs on ``obs`` (one fresh ACT pass), as numpy."""
    tokens = torch.as_tensor(policy.encoder.tokens(obs), dtype=torch.long, device=policy.device)
    with torch.no_grad():
        return {key: value.float().cpu().numpy() for key, value in policy.model.predict({"tokens": tokens}).items()}


def move_labels(policy: Any, cells: tuple[np.ndarray, np.ndarray, np.ndarray], first: dict[str, np.ndarray],
                batch: dict[str, np.ndarray], optimal: np.ndarray, classes: int) -> dict[str, Any]:
    """The token head of a ``dagger.token_labels`` checkpoint on every cell of the puzzles' first states
    (``cells``: :func:`cell_labels`): ``accuracy`` = its move is optimal there (overall and by the cell's
    cost-to-go), ``label_accuracy`` = it is the trained label (the lowest optimal move; lower where moves tie, as in
    a city); and ``readout_tf``, the TF of acting by its move at the agent's cell (every state)."""
    cost, cell_optimal, labels = cells
    moves = predicted(policy, first)["logits"].argmax(-1)
    scored = labels >= 0
    right = np.take_along_axis(cell_optimal, np.minimum(moves, classes - 1)[..., None], -1)[..., 0] & (moves < classes)
    side = int(np.sqrt(labels.shape[1]))
    at_agent = batch["position"][:, 0].astype(np.int64) * side + batch["position"][:, 1]
    readout = chunked(lambda part: predicted(policy, part)["logits"].argmax(-1), batch)[np.arange(len(at_agent)),
                                                                                          at_agent]
    move = readout < optimal.shape[1]  # not the "not reached yet" class of a front_rate model: that is a miss
    hits = np.zeros(len(readout), dtype=bool)
    hits[move] = optimal[np.flatnonzero(move), readout[move]]
    return {"accuracy": round(float(right[scored].mean()), 4),
            "not_reached": round(float((moves >= classes)[scored].mean()), 4),
            "label_accuracy": round(float((moves == labels)[scored].mean()), 4),
            "by_cost_to_go": by_bucket(right[scored], cost[scored]),
            "readout_tf": round(float(hits.mean()), 4)}


def front_stats(policy: Any, cells: tuple[np.ndarray, np.ndarray, np.ndarray],
                first: dict[str, np.ndarray]) -> dict[str, Any]:
    """A ``model.block=front`` checkpoint's bit and came-from marks on the puzzles' first states: ``reached``, the
    share of labelled cells whose bit is set; ``dead_reached``, of cells that cannot reach the goal (walls);
    ``ball``, the share of puzzles whose reached cells are exactly those below some cost-to-go (a front, nothing
    guessed beyond it); ``came_optimal`` / ``came_exact``, the share of reached labelled cells whose marks are all
    optimal moves / are exactly the optimal moves (with unit-cost moves, as in a maze, they should be both)."""
    cost, cell_optimal, labels = cells
    out = predicted(policy, first)
    bit = out["reach_bit"] > 0.5
    came = out["came_from"][..., [FrontBlock.OFFSETS.index(move) for move in MOVES]] > 0.5  # in action order
    scored, dead = labels >= 0, np.isinf(cost)
    reached = bit & scored
    farthest = np.where(reached, cost, -np.inf).max(1)
    nearest = np.where(scored & ~bit, cost, np.inf).min(1)
    marked = came.any(-1)
    return {"reached": round(float(reached.sum() / max(scored.sum(), 1)), 4),
            "dead_reached": round(float((bit & dead).sum() / max(dead.sum(), 1)), 4),
            "ball": round(float((farthest < nearest).mean()), 4),
            "came_optimal": round(float((marked & ~(came & ~cell_optimal).any(-1))[reached].mean()), 4)
            if reached.any() else None,
            "came_exact": round(float((came == cell_optimal).all(-1)[reached].mean()), 4) if reached.any() else None}


def analyse(checkpoint: str, env: str, max_size: int, sizes: list[int], puzzles: int, seed: int,
            segments: int | None = None) -> dict[str, Any]:
    """Per size: TF overall and per moves-to-goal bucket on oracle trajectories (and the token head's labels);
    ``segments``: an HRM / TRM checkpoint thinks that many ACT segments per decision (its Q-head ignored)."""
    env_id = ENVS[env][0]
    probe = gym.make(env_id, size=max_size, max_size=max_size)
    acting = None if segments is None else {"inference_halting": "max_steps", "halt_max_steps": segments}
    policy = load_any_policy(checkpoint, encoder_for(probe), acting)
    oracle = oracle_for(probe)
    model_config = getattr(getattr(policy, "model", None), "config", None)
    rate = bool(getattr(model_config, "front_rate", 0))  # the token head's last class: "not reached yet"
    labelled = getattr(model_config, "token_vocab", 0) == oracle.token_label_classes + rate
    front = getattr(model_config, "block", "") == "front"  # a reached bit and came-from marks to score
    report: dict[str, Any] = {}
    for index, size in enumerate(sizes):
        envs = [gym.make(env_id, size=size, max_size=max_size) for _ in range(puzzles)]
        trajectories = oracle_states(envs, episode_seeds(seed, index, puzzles), oracle)
        batch = stack([state for trajectory in trajectories for state in trajectory])
        to_go = np.concatenate([np.arange(len(t), 0, -1) for t in trajectories])
        actions, used = trajectory_actions(policy, trajectories, CHUNK)  # in order, for a policy that remembers
        optimal = chunked(lambda part: oracle.label_batch(part).optimal, batch)
        right = optimal[np.arange(len(actions)), actions]
        starts = np.cumsum([0] + [len(t) for t in trajectories])
        per_puzzle = [[len(t), round(float(right[a:b].mean()), 4)] for t, a, b in zip(trajectories, starts, starts[1:])]
        report[str(size)] = {"states": len(right), "tf": round(float(right.mean()), 4),
                             "segments": round(float(used.mean()), 3), "tf_by_moves_to_goal": by_bucket(right, to_go),
                             "tf_by_puzzle": per_puzzle}
        if labelled or front:
            first = stack([trajectory[0] for trajectory in trajectories])
            cells = cell_labels(oracle, first)
        if labelled:
            report[str(size)]["move_labels"] = move_labels(policy, cells, first, batch, optimal,
                                                           oracle.token_label_classes)
        if front:
            report[str(size)]["front"] = front_stats(policy, cells, first)
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, choices=sorted(ENVS))
    parser.add_argument("--checkpoint", nargs="+", required=True, help="train.dagger / train.supervised checkpoints")
    parser.add_argument("--max-size", type=int, default=None, help="padded grid side (default: the headline's)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="puzzle sizes (default: the headline's in- and out-of-distribution sizes)")
    parser.add_argument("--puzzles", type=int, default=20, help="puzzles per size")
    parser.add_argument("--seed", type=int, default=54321)
    parser.add_argument("--segments", type=int, default=None,
                        help="ACT segments per decision of an HRM / TRM checkpoint (default: as trained, by its Q-head)")
    args = parser.parse_args(argv)
    max_size = args.max_size or ENVS[args.env][1]
    sizes = args.sizes or EXPERIMENTS[args.env].train_sizes + EXPERIMENTS[args.env].test_sizes
    if args.puzzles < 1:
        raise ValueError(f"--puzzles must be >= 1, got {args.puzzles}")
    if args.segments is not None and args.segments < 1:
        raise ValueError(f"--segments must be >= 1, got {args.segments}")
    if any(size > max_size for size in sizes):
        raise ValueError(f"--sizes must be <= --max-size {max_size}, got {sizes}")
    for path in args.checkpoint:
        if not Path(path).is_file():
            raise ValueError(f"--checkpoint {path} does not exist")
    torch.set_num_threads(1)
    result = {path: analyse(path, args.env, max_size, sizes, args.puzzles, args.seed, args.segments)
              for path in args.checkpoint}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
