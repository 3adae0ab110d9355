"""Where a Sudoku policy fails: teacher forcing split by how many cells are forced, and its wrong moves.

    python -m benchmarks.sudoku_errors --checkpoint runs/headline_sudoku4/hrm_dagger/last.pt
    python -m benchmarks.sudoku_errors --checkpoint A.pt B.pt --box 2 --levels easy medium --puzzles 100

Plays the oracle's own trajectory of ``--puzzles`` fresh puzzles per level. Every state is bucketed by its
number of naked singles (blank cells with one candidate left: ``0`` means an optimal move needs a hidden
single or more), and every non-optimal greedy masked action by what it did: ``erase`` (a correct digit)
or ``guess_k`` (wrote a wrong digit in a cell with ``k`` candidates; a naked single cannot be written
wrong, the action mask forbids it). Prints one JSON object: per checkpoint and level, the states, the
teacher-forcing accuracy overall and per bucket, and the wrong moves by kind. For a checkpoint trained with
``dagger.token_labels=true``, ``solution_labels`` scores its token head against the solution's digits
(``Oracle.token_labels``) per kind of cell (blank by candidates left, or the player's own digit), and the TF
of acting by it: write the digit it is surest of into the blank cell where that write is legal.

``--closed-loop`` also plays the policy itself on the same puzzles (greedy, to the env's ``max_steps``) and reports
how it errs and recovers (``closed_loop``): the solved share with its 95% Wilson interval, the wrong digits it
writes per puzzle and the share of them it erases later (recovery), its erasures of right digits, and its first
wrong digit: the step, the candidates of that cell, and whether a naked single was on the board (a forced move
was there to play instead).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import hrm_envs  # noqa: F401  (registers the ids)
from hrm_envs.encoding import encoder_for
from hrm_envs.sudoku.env import peer_digits, solution_keys
from oracles import oracle_for
from train.evaluate import episode_seeds, load_any_policy
from train.rollout import Episode, oracle_states, run_episodes, stack, trajectory_actions
from train.stats import wilson_interval

BUCKETS = ("0", "1", "2", "3+")


def candidate_counts(grids: np.ndarray, box: int) -> np.ndarray:
    """Candidates left per cell of flat grids ``(batch, n * n)`` (0 = blank); 0 for filled cells."""
    n = box * box
    free = np.where(grids == 0, ((1 << n) - 1) & ~peer_digits(grids, box), 0)
    return sum((free >> bit) & 1 for bit in range(n))


CELL_KINDS = ("blank_0", "blank_1", "blank_2", "blank_3+")  # blank cells by candidates left (0: a dead end)


def solution_labels(policy: Any, labels: np.ndarray, batch: dict[str, np.ndarray], optimal: np.ndarray,
                    counts: np.ndarray) -> dict[str, Any]:
    """The token head of a ``dagger.token_labels`` checkpoint against the solution's digits: accuracy on the
    cells the player fills (blank ones by ``CELL_KINDS``, ``written`` the player's own digits), the share of
    states with all of them right, and the TF of writing its surest legal digit."""
    n = int(round(labels.shape[1] ** 0.5))
    tokens = torch.as_tensor(policy.encoder.tokens(batch), dtype=torch.long, device=policy.device)
    with torch.no_grad():
        probs = torch.softmax(policy.model.predict({"tokens": tokens})["logits"][..., :n].float(), -1).cpu().numpy()
    predicted, sure = probs.argmax(-1), probs.max(-1)
    scored = labels >= 0
    right = predicted == labels
    blank = batch["grid"].reshape(labels.shape) == 0
    kind = np.where(blank, np.array(CELL_KINDS)[np.minimum(counts, 3)], "written")
    by_cell = {k: {"cells": int((scored & (kind == k)).sum()), "accuracy": round(float(right[scored & (kind == k)].mean()), 4)}
               for k in (*CELL_KINDS, "written") if (scored & (kind == k)).any()}
    rows = np.arange(len(labels))[:, None]
    writes = np.arange(labels.shape[1])[None] * (n + 1) + predicted
    legal = blank & batch["action_mask"].astype(bool)[rows, writes]
    chosen = writes[rows[:, 0], np.where(legal, sure, -1.0).argmax(1)]
    readout = legal.any(1) & optimal[rows[:, 0], chosen]
    return {"accuracy": round(float(right[scored].mean()), 4),
            "all_right": round(float((right | ~scored).all(1).mean()), 4),
            "by_cell": by_cell, "readout_tf": round(float(readout.mean()), 4)}


def recovery(episodes: list[Episode], box: int) -> dict[str, Any]:
    """How closed-loop episodes (``run_episodes(..., record=True)``) err and recover: see the module docstring."""
    n = box * box
    solved = sum(e.success for e in episodes)
    wrong = erased = right_erased = 0
    made: list[dict[str, int]] = []  # the first wrong digit of each episode that wrote one
    for episode in episodes:
        start = {k: np.asarray(v)[None] for k, v in episode.observations[0].items()}
        solution = np.frombuffer(solution_keys(start)[0], dtype=np.int8)
        standing: set[int] = set()  # cells holding a wrong digit the policy wrote
        first: dict[str, int] | None = None
        for step, (obs, action) in enumerate(zip(episode.observations, episode.actions)):
            cell, kind = divmod(action, n + 1)
            if kind == n:  # an erasure
                erased += cell in standing
                right_erased += cell not in standing
                standing.discard(cell)
            elif kind + 1 != solution[cell]:
                wrong += 1
                standing.add(cell)
                if first is None:
                    counts = candidate_counts(np.asarray(obs["grid"]).reshape(1, -1).astype(np.int64), box)[0]
                    first = {"step": step, "candidates": int(counts[cell]), "naked_single": int((counts == 1).any())}
        if first is not None:
            made.append(first)
    low, high = wilson_interval(int(solved), len(episodes))
    return {
        "puzzles": len(episodes), "solved": round(solved / len(episodes), 4),
        "solved_ci95": [round(low, 4), round(high, 4)],
        "wrong_digits_per_puzzle": round(wrong / len(episodes), 3),
        "wrong_digits_erased": round(erased / wrong, 4) if wrong else None,
        "right_digits_erased_per_puzzle": round(right_erased / len(episodes), 3),
        "first_wrong_digit": {
            "puzzles": len(made),
            "median_step": float(np.median([f["step"] for f in made])) if made else None,
            "candidates": dict(sorted(Counter(BUCKETS[min(f["candidates"], 3)] for f in made).items())),
            "with_a_naked_single_on_the_board":
                round(float(np.mean([f["naked_single"] for f in made])), 4) if made else None,
        },
    }


def analyse(checkpoint: str, box: int, levels: list[str], puzzles: int, seed: int,
            closed_loop: bool = False) -> dict[str, Any]:
    """Per level: TF accuracy per naked-single bucket and the kinds of wrong moves, on oracle trajectories."""
    probe = gym.make("hrm/Sudoku-v0", box=box)
    policy = load_any_policy(checkpoint, encoder_for(probe))
    oracle = oracle_for(probe)
    n = box * box
    report: dict[str, Any] = {}
    for index, level in enumerate(levels):
        envs = [gym.make("hrm/Sudoku-v0", box=box, difficulty=level) for _ in range(puzzles)]
        trajectories = oracle_states(envs, episode_seeds(seed, index, puzzles), oracle)
        states = [state for trajectory in trajectories for state in trajectory]
        batch = stack(states)
        actions, _ = trajectory_actions(policy, trajectories)  # in order, for a policy that remembers
        optimal = oracle.label_batch(batch).optimal
        right = optimal[np.arange(len(actions)), actions]
        counts = candidate_counts(batch["grid"].reshape(len(states), -1).astype(np.int64), box)
        naked = (counts == 1).sum(axis=1)
        bucket = np.array([BUCKETS[min(int(k), 3)] for k in naked])
        cell, kind = np.divmod(actions, n + 1)
        wrong = Counter("erase" if kind[i] == n else f"guess_{counts[i, cell[i]]}" for i in np.flatnonzero(~right))
        report[level] = {"states": len(states), "tf": round(float(right.mean()), 4),
                         "tf_by_naked_singles": {b: {"states": int((bucket == b).sum()),
                                                     "tf": round(float(right[bucket == b].mean()), 4)}
                                                 for b in BUCKETS if (bucket == b).any()},
                         "wrong_moves": dict(sorted(wrong.items()))}
        if getattr(policy.model.config, "token_vocab", 0) == oracle.token_label_classes:
            report[level]["solution_labels"] = solution_labels(policy, oracle.token_labels(batch), batch, optimal, counts)
        if closed_loop:
            played = run_episodes(policy, envs, episode_seeds(seed, index, puzzles), [level] * puzzles, oracle,
                                  record=True)
            report[level]["closed_loop"] = recovery(played, box)
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", nargs="+", required=True, help="train.dagger / train.supervised checkpoints")
    parser.add_argument("--box", type=int, default=2, help="2 (4x4) or 3 (9x9)")
    parser.add_argument("--levels", nargs="+", default=["easy", "medium"])
    parser.add_argument("--puzzles", type=int, default=100, help="puzzles per level")
    parser.add_argument("--seed", type=int, default=54321)
    parser.add_argument("--closed-loop", action="store_true", help="also play the policy and report its recovery")
    args = parser.parse_args(argv)
    if args.puzzles < 1:
        raise ValueError(f"--puzzles must be >= 1, got {args.puzzles}")
    for path in args.checkpoint:
        if not Path(path).is_file():
            raise ValueError(f"--checkpoint {path} does not exist")
    torch.set_num_threads(1)
    result = {path: analyse(path, args.box, args.levels, args.puzzles, args.seed, args.closed_loop)
              for path in args.checkpoint}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
