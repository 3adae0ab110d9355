"""Where a Hanoi policy fails: teacher forcing split by the kind of decision, and how closed-loop episodes end.

    python -m benchmarks.hanoi_errors --checkpoint runs/headline_hanoi_local/trm_local_dagger/last.pt --max-disks 12
    python -m benchmarks.hanoi_errors --checkpoint A.pt B.pt --sizes 8 9 10 --puzzles 50

With the action mask, an optimal Hanoi move is one of two kinds: the smallest disk goes to its target peg (the
end of the chain of targets from the largest misplaced disk down), or, when the smallest disk is already where
the chain wants it, the one legal move of another disk. Every state of the oracle's own trajectory of
``--puzzles`` fresh puzzles per size is bucketed by

- ``kind``: ``smallest`` (every optimal move moves disk 0), ``other`` (none does), ``both`` or ``stop``;
- ``plan``: ``once`` / ``twice`` / ``tie``: whether a shortest path moves the largest misplaced disk once,
  twice (park it on the third peg first; ``oracles.hanoi``), or either (``stop`` at the goal);
- ``chain``: how many disks lie between the largest misplaced disk and disk 0 (the length of the scan the
  label needs);

and every non-optimal greedy masked action by what it did wrong: ``wrong_disk`` (moved disk 0 instead of the
other disk or the other way round), ``wrong_peg`` (disk 0 to the wrong peg), ``stop`` (STOP before the goal) or
``move_at_goal``. For a checkpoint trained with ``dagger.token_labels=true``, ``plan_labels`` scores its token
head against the oracle's per-disk target pegs (``Oracle.token_labels``). Closed loop (the same puzzles): how
failed episodes end (``stopped`` early, ``truncated`` at the env's max_steps) and whether they revisit a state
(a deterministic policy that revisits a state loops).
Prints one JSON object per checkpoint and size. The puzzles of a size follow its position in ``--sizes`` (as in
``train.evaluate``), so compare checkpoints with the same ``--sizes`` and ``--seed``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import hrm_envs  # noqa: F401  (registers the ids)
from hrm_envs.encoding import encoder_for
from hrm_envs.hanoi.env import ABSENT
from oracles import oracle_for
from oracles.hanoi import gather_moves
from train.evaluate import episode_seeds, load_any_policy
from train.rollout import oracle_states, run_episodes, stack, trajectory_actions


def plan(state: list[int], goal: list[int]) -> tuple[str, int]:
    """``(once | twice | tie | stop, chain)``: how often a shortest path moves the largest misplaced disk ``m``,
    and ``m`` (the number of smaller disks the target chain runs through)."""
    m = len(state) - 1
    while m >= 0 and state[m] == goal[m]:
        m -= 1
    if m < 0:
        return "stop", 0
    i, j = state[m], goal[m]
    k = 3 - i - j
    once = gather_moves(state, m, k) + 1 + gather_moves(goal, m, k)
    twice = gather_moves(state, m, j) + 1 + (1 << m) + gather_moves(goal, m, i)
    return ("once" if once < twice else "twice" if twice < once else "tie"), m


def wrong_kind(action: int, optimal: np.ndarray, stop: int) -> str:
    """What a non-optimal action did (see the module docstring)."""
    if optimal[stop]:
        return "move_at_goal"
    if action == stop:
        return "stop"
    smallest_optimal = optimal[:3].any()
    if (action < 3) != smallest_optimal:
        return "wrong_disk"
    return "wrong_peg"


def rates(right: np.ndarray, groups: np.ndarray) -> dict[str, dict[str, float]]:
    """States and TF accuracy per group value."""
    return {str(g): {"states": int((groups == g).sum()), "tf": float(right[groups == g].mean())}
            for g in sorted(set(groups.tolist()), key=str)}


def plan_labels(policy: Any, labels: np.ndarray, batch: dict[str, np.ndarray], optimal: np.ndarray,
                size: int) -> dict[str, Any]:
    """The token head of a ``dagger.token_labels`` checkpoint against the oracle's per-disk target pegs: accuracy
    (overall, per disk smallest first, every disk right) and the TF of acting by the plan it spells out (the
    smallest disk off its predicted peg goes there; STOP when none is)."""
    tokens = torch.as_tensor(policy.encoder.tokens(batch), dtype=torch.long, device=policy.device)
    with torch.no_grad():
        predicted = policy.model.predict({"tokens": tokens})["logits"].argmax(-1).cpu().numpy()[:, :size]
    right = predicted == labels[:, :size]
    off = predicted != batch["state"][:, :size]
    rows = np.arange(len(predicted))
    disk = off.argmax(1)
    readout = np.where(off.any(1), 3 * disk + predicted[rows, disk], optimal.shape[1] - 1)
    return {"accuracy": float(right.mean()), "all_right": float(right.all(1).mean()),
            "by_disk": [round(float(x), 4) for x in right.mean(0)], "readout_tf": float(optimal[rows, readout].mean())}


def analyse(checkpoint: str, sizes: list[int], max_disks: int, puzzles: int, seed: int) -> dict[str, Any]:
    """Per size: TF per decision kind, plan and chain length, the wrong moves, and how failed episodes end."""
    probe = gym.make("hrm/Hanoi-v0", max_disks=max_disks)
    policy = load_any_policy(checkpoint, encoder_for(probe))
    oracle = oracle_for(probe)
    stop = 3 * max_disks
    report: dict[str, Any] = {}
    for index, size in enumerate(sizes):
        seeds = episode_seeds(seed, index, puzzles)
        envs = [gym.make("hrm/Hanoi-v0", num_disks=size, max_disks=max_disks) for _ in range(puzzles)]
        trajectories = oracle_states(envs, seeds, oracle)
        states = [s for trajectory in trajectories for s in trajectory]
        batch = stack(states)
        actions, _ = trajectory_actions(policy, trajectories)  # in order, for a policy that remembers
        optimal = oracle.label_batch(batch).optimal
        right = optimal[np.arange(len(actions)), actions]
        kind = np.select([optimal[:, stop], optimal[:, :3].any(1) & optimal[:, 3:stop].any(1), optimal[:, :3].any(1)],
                         ["stop", "both", "smallest"], "other")
        plans = [plan([p for p in s["state"].tolist() if p != ABSENT], s["goal"].tolist()[:size]) for s in states]
        wrong = Counter(wrong_kind(int(a), o, stop) for a, o, r in zip(actions, optimal, right) if not r)
        episodes = run_episodes(policy, envs, seeds, [str(size)] * puzzles, oracle, record=True)
        failed = [e for e in episodes if not e.success]
        revisits = sum(len({o["state"].tobytes() for o in e.observations}) < len(e.observations) for e in failed)
        report[str(size)] = {
            "states": len(states),
            "tf": float(right.mean()),
            "by_kind": rates(right, kind),
            "by_plan": rates(right, np.array([p for p, _ in plans])),
            "by_chain": rates(right, np.array([c for _, c in plans])),
            "wrong_moves": dict(wrong),
            "success": float(np.mean([e.success for e in episodes])),
            "failed": len(failed),
            "failed_stopped": sum(e.actions[-1] == stop for e in failed),
            "failed_revisiting": revisits,
        }
        if getattr(policy.model.config, "token_vocab", 0) == oracle.token_label_classes:
            report[str(size)]["plan_labels"] = plan_labels(policy, oracle.token_labels(batch), batch, optimal, size)
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", nargs="+", required=True, help="train.supervised / train.dagger checkpoints")
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 9, 10])
    parser.add_argument("--max-disks", type=int, default=10, help="padding the checkpoint was trained with")
    parser.add_argument("--puzzles", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args(argv)
    if not args.sizes or min(args.sizes) < 1 or max(args.sizes) > args.max_disks:
        raise ValueError(f"--sizes must lie in 1..--max-disks ({args.max_disks}), got {args.sizes}")
    if args.puzzles < 1:
        raise ValueError(f"--puzzles must be >= 1, got {args.puzzles}")
    result = {path: analyse(path, args.sizes, args.max_disks, args.puzzles, args.seed) for path in args.checkpoint}
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
