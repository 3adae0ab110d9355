"""The small default job: build a small step-wise data set, then show the oracle solving a Hanoi puzzle.

    python -m train.demo [--out outputs/demo] [--disks 4] [--seed 0]

Prints the data set's counts and validation, the oracle's moves as ASCII frames, and writes the
rendered frames as one PNG strip (``hanoi_oracle.png``).
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
from omegaconf import OmegaConf  # noqa: E402

import hrm_envs  # noqa: E402,F401
from oracles import oracle_for  # noqa: E402
from train.datasets import build, parse_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/demo", help="folder for the data set and the PNG")
    parser.add_argument("--disks", type=int, default=4, help="disks of the puzzle the oracle solves (1..10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of that puzzle")
    args = parser.parse_args()
    out = Path(args.out)

    spec = parse_spec(OmegaConf.to_container(OmegaConf.load(ROOT / "configs/preset/hanoi-small.yaml")))
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


if __name__ == "__main__":
    main()
