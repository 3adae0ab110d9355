#!/usr/bin/env bash
# Exploratory (docs/hanoi_experiments.md, "Plan labels on the pinned HRM"): the headline row hrm_labels_dagger on
# Hanoi (max_disks 12) at five times the label budget and steps, then train.evaluate as the headline does.
#   bash docs/hanoi_labels_5x.sh NAME SEED [train.dagger overrides]
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; seed=$2; shift 2
out=runs/x/$name; mkdir -p runs/x
data=data/hanoi-paper-max_disks12
[ -f "$data/summary.json" ] || .venv/bin/python -m train.datasets preset=hanoi-paper out="$data" \
  preset.env_kwargs.max_disks=12 progress=false
.venv/bin/python -m train.dagger env=hanoi env.kwargs.max_disks=12 env.data_dir=data/hanoi-paper-max_disks12 \
  train.batch_size=64 train.lr=0.003 train.weight_decay=0.01 'train.betas=[0.9,0.95]' train.warmup_steps=100 \
  train.schedule=cosine train.lr_min_ratio=0.05 train.grad_clip=1.0 model=hrm model.hidden_size=64 model.num_heads=4 \
  model.expansion=4.0 model.pos_encodings=rope model.loss=softmax model.H_layers=1 model.L_layers=1 model.H_cycles=1 \
  model.L_cycles=1 model.halt_max_steps=2 model.halt_exploration_prob=0.1 dagger.max_labels=66985 dagger.rounds=37 \
  dagger.envs=14 dagger.steps=128 dagger.train_steps=395 dagger.eval_puzzles=4 dagger.eval_ood_every=0 \
  dagger.size_sampling=per_reset dagger.token_labels=true "$@" threads=1 progress=false seed=$seed out=$out > $out.train.log 2>&1
.venv/bin/python -m train.evaluate env=hanoi env.kwargs.max_disks=12 'sizes=[3,4,5,6,7,8,9,10]' episodes=50 seed=12345 \
  checkpoint=$out/last.pt "names=[$name]" 'references=[]' "held_out_from=[$out]" out=$out/evaluate > $out.eval.log 2>&1
grep -v "^|---" $out/evaluate/results.md | cut -d'|' -f2-5
