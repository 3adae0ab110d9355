#!/usr/bin/env bash
# Exploratory (docs/hanoi_experiments.md, "Plan labels on the pinned HRM"): the headline row hrm_labels_dagger on
# Hanoi (max_disks 12, configs/experiment/hanoi_hrm_labels_dagger.yaml) at five times the label budget and steps, then train.evaluate as the headline does.
#   bash docs/hanoi_labels_5x.sh NAME SEED [train.dagger overrides]
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; seed=$2; shift 2
out=runs/x/$name; mkdir -p runs/x
data=data/hanoi-paper-max_disks12
[ -f "$data/summary.json" ] || .venv/bin/python -m train.datasets preset=hanoi-paper out="$data" \
  preset.env_kwargs.max_disks=12 progress=false
.venv/bin/python -m train.dagger experiment=hanoi_hrm_labels_dagger env.kwargs.max_disks=12 env.data_dir=$data \
  dagger.max_labels=66985 dagger.rounds=37 dagger.train_steps=395 "$@" threads=1 progress=false seed=$seed out=$out \
  > $out.train.log 2>&1
.venv/bin/python -m train.evaluate env=hanoi env.kwargs.max_disks=12 'sizes=[3,4,5,6,7,8,9,10]' episodes=50 seed=12345 \
  checkpoint=$out/last.pt "names=[$name]" 'references=[]' "held_out_from=[$out]" out=$out/evaluate > $out.eval.log 2>&1
grep -v "^|---" $out/evaluate/results.md | cut -d'|' -f2-5
