#!/usr/bin/env bash
# Exploratory (docs/results/maze.md, "Per-cell move labels"): the headline row hrm_labels_dagger on the maze
# (configs/experiment/maze_hrm_labels_dagger.yaml) with more
# recurrence (default model.H_cycles=2 model.L_cycles=2: four block applications per ACT segment instead of two),
# then benchmarks.grid_errors on its checkpoint (the token head's accuracy by each cell's moves to the goal).
#   bash docs/maze_labels_depth.sh NAME [train.dagger overrides, e.g. model.H_cycles=3]
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; shift
out=runs/x/$name; mkdir -p runs/x
data=data/maze-ood
[ -f "$data/summary.json" ] || .venv/bin/python -m train.datasets preset=maze-ood out="$data" progress=false
.venv/bin/python -m train.dagger experiment=maze_hrm_labels_dagger env.data_dir=$data model.H_cycles=2 model.L_cycles=2 \
  dagger.max_labels=6621 dagger.rounds=3 dagger.train_steps=200 "$@" threads=1 progress=false seed=0 out=$out \
  > $out.train.log 2>&1
.venv/bin/python -m benchmarks.grid_errors --env maze --checkpoint $out/last.pt > $out.grid_errors.json
cat $out.grid_errors.json
