#!/usr/bin/env bash
# Exploratory (docs/results/maze.md, "Per-cell move labels"): the headline row hrm_labels_dagger on the maze with more
# recurrence (default model.H_cycles=2 model.L_cycles=2: four block applications per ACT segment instead of two),
# then benchmarks.grid_errors on its checkpoint (the token head's accuracy by each cell's moves to the goal).
#   bash docs/maze_labels_depth.sh NAME [train.dagger overrides, e.g. model.H_cycles=3]
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; shift
out=runs/x/$name; mkdir -p runs/x
data=data/maze-ood
[ -f "$data/summary.json" ] || .venv/bin/python -m train.datasets preset=maze-ood out="$data" progress=false
.venv/bin/python -m train.dagger env=maze env.data_dir=$data train.batch_size=16 train.lr=0.003 train.weight_decay=0.01 \
  'train.betas=[0.9,0.95]' train.warmup_steps=100 train.schedule=cosine train.lr_min_ratio=0.05 train.grad_clip=1.0 \
  model=hrm model.hidden_size=64 model.num_heads=4 model.expansion=4.0 model.pos_encodings=rope model.loss=softmax \
  model.H_layers=1 model.L_layers=1 model.H_cycles=2 model.L_cycles=2 model.halt_max_steps=2 model.halt_exploration_prob=0.1 \
  dagger.max_labels=6621 dagger.rounds=3 dagger.envs=14 dagger.steps=128 dagger.train_steps=200 dagger.eval_puzzles=4 \
  dagger.eval_ood_every=0 dagger.size_sampling=per_reset dagger.token_labels=true "$@" threads=1 progress=false seed=0 \
  out=$out > $out.train.log 2>&1
.venv/bin/python -m benchmarks.grid_errors --env maze --checkpoint $out/last.pt > $out.grid_errors.json
cat $out.grid_errors.json
