"""The small default job: data set, oracle, DAgger training of an HRM policy and its closed-loop evaluation.

    python -m train.demo [--out outputs/demo] [--disks 4] [--seed 0] [--rounds 3]

1. Builds (and validates) the ``hanoi-small`` step-wise data set: train on 1..4 disks, test on 5..6.
2. Shows the oracle solving a ``--disks`` puzzle as ASCII frames and one PNG strip (``hanoi_oracle.png``).
3. Trains the default HRM policy with ``train.dagger`` (``--rounds`` rounds after a behaviour-cloning round
   0 on 1..4 disks; about a minute on one core) and evaluates it with ``train.evaluate`` on 1..6 disks
   against the oracle and a random masked policy (``evaluate/results.md`` and PNG plots).
The same steps at full size are ``python -m train.dagger`` and ``python -m train.evaluate`` (see README).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

import hrm_envs  # noqa: E402,F401
from configs import CONFIG_DIR  # noqa: E402
from oracles import oracle_for  # noqa: E402
from train import dagger, evaluate  # noqa: E402
from train.datasets import build, parse_spec  # noqa: E402
from train.runs import load_preset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/demo", help="folder for the data set and the PNG")
    parser.add_argument("--disks", type=int, default=4, help="disks of the puzzle the oracle solves (1..10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of that puzzle and of the training run")
    parser.add_argument("--rounds", type=int, default=3, help="DAgger rounds after round 0 (0..20)")
    args = parser.parse_args()
    if not 1 <= args.disks <= 10:
        parser.error(f"--disks must be in 1..10, got {args.disks}")
    if not 0 <= args.rounds <= 20:
        parser.error(f"--rounds must be in 0..20, got {args.rounds}")
    out = Path(args.out)

    spec = parse_spec(load_preset("hanoi-small"))
    summary = build(spec, out / spec.name, "python -m train.demo", overwrite=True, progress=False)
    print(f"data set {out / spec.name} (validated):")
    print(json.dumps({name: {k: s[k] for k in ("puzzles", "samples", "per_size")} for name, s in summary["splits"].items()}, indent=1))

    env = gym.make("hrm/Hanoi-v0", num_disks=args.disks, render_mode="ansi")
    frames_env = gym.make("hrm/Hanoi-v0", num_disks=args.disks, render_mode="rgb_array")
    obs, _ = env.reset(seed=args.seed)
    frames_env.reset(seed=args.seed)
    oracle = oracle_for(env)
    plan = oracle.solve(obs)
    print(f"\nthe oracle solves a {args.disks}-disk puzzle in {len(plan) - 1} moves + STOP (optimal: {oracle.cost_to_go(obs):.0f}):")
    print(env.render())
    frames = [frames_env.render()]
    for action in plan:
        obs, _, terminated, _, info = env.step(action)
        frames_env.step(action)
        frames.append(frames_env.render())
        print(env.render() if not terminated else f"STOP -> success: {info['is_success']}")
    columns = min(8, len(frames))
    rows = -(-len(frames) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.4 * rows), squeeze=False)
    for ax, index in zip(axes.flat, range(rows * columns)):
        ax.axis("off")
        if index < len(frames):
            ax.imshow(frames[index])
            ax.set_title(f"step {index}", fontsize=8)
    figure.suptitle("oracle solution: state (top) and goal (bottom)")
    figure.tight_layout()
    png = out / "hanoi_oracle.png"
    figure.savefig(png, dpi=80)
    print(f"frames: {png} ({len(frames)} frames, {np.asarray(frames[0]).shape})")
    train_and_evaluate(out, out / spec.name, args.rounds, args.seed)


def train_and_evaluate(out: Path, data: Path, rounds: int, seed: int) -> None:
    """DAgger-train the default HRM on ``data`` (1..4 disks), then evaluate it closed loop on 1..6 disks."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        print(f"\nDAgger: HRM policy, round 0 = oracle demonstrations, then {rounds} rounds of learner-visited states")
        dagger_cfg = compose("dagger", overrides=[
            "env=hanoi_small", f"env.data_dir={data}", f"out={out / 'dagger'}", f"seed={seed}", "progress=false",
            f"dagger.rounds={rounds}", "dagger.envs=8", "dagger.steps=64", "dagger.train_steps=400",
            "dagger.eval_puzzles=8"])
        dagger.run(dagger_cfg)
        print("\nclosed-loop evaluation (train sizes 1..4, held-out 5..6):")
        evaluate.run(compose("evaluate", overrides=[
            "env=hanoi_small", f"checkpoint={out / 'dagger' / 'last.pt'}", "names=[hrm_dagger]",
            "sizes=[1,2,3,4,5,6]", "episodes=20", f"seed={seed + 1}", f"out={out / 'evaluate'}"]))


if __name__ == "__main__":
    main()
