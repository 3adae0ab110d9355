"""``train.dagger`` with another training target than the oracle's optimal set (Sudoku experiments only).

    python docs/sudoku_experiments/dagger_targets.py TARGETS <train.dagger overrides>

TARGETS: ``set`` (unchanged: every optimal action), ``canonical`` (only the oracle's canonical action: the
most constrained blank cell, lowest index on ties, or the first wrong digit's erase) or ``forced`` (the
optimal writes into forced cells, i.e. blank cells with one candidate left, where a state has any; else the
whole optimal set). The aggregate on disk keeps the oracle's full labels; only the training batches change.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import train.aggregate as aggregate  # noqa: E402
import train.dagger as dagger  # noqa: E402
from train.rollout import Transitions  # noqa: E402
from benchmarks.sudoku_errors import candidate_counts  # noqa: E402

TARGETS = ("set", "canonical", "forced")


def cut(transitions: Transitions, targets: str) -> np.ndarray:
    """The training target mask of a round's transitions."""
    optimal = transitions.optimal
    if targets == "canonical":
        onehot = np.zeros_like(optimal)
        onehot[np.arange(len(optimal)), transitions.expert_action] = True
        return onehot
    if targets == "forced":
        grid = transitions.obs["grid"].reshape(len(optimal), -1).astype(np.int64)
        n = int(round(grid.shape[1] ** 0.5))
        forced = np.repeat(candidate_counts(grid, int(round(n**0.5))) == 1, n + 1, axis=1)
        chosen = optimal & forced
        return np.where(chosen.any(axis=1)[:, None], chosen, optimal)
    return optimal


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        raise SystemExit(f"usage: dagger_targets.py {{{','.join(TARGETS)}}} <train.dagger overrides>")
    targets = sys.argv.pop(1)
    add = aggregate.Aggregate.add

    def add_with_targets(self: aggregate.Aggregate, transitions: Transitions) -> None:
        add(self, Transitions(**{**vars(transitions), "optimal": cut(transitions, targets)}))

    aggregate.Aggregate.add = add_with_targets
    sys.argv[0] = "train.dagger"
    dagger.main()
