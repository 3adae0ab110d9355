#!/usr/bin/env bash
# One Sudoku 4x4 DAgger experiment of docs/sudoku_experiments/README.md (the headline's hrm_dagger,
# configs/experiment/sudoku4_hrm_dagger.yaml, with other targets / presets / budgets), then train.evaluate on EPISODES (30)
# easy and EPISODES medium puzzles (the headline's puzzle stream: seed 12345).
#   [SEED=0] [EPISODES=30] [LABELS=n] bash docs/sudoku_experiments/run.sh NAME PRESET TOTAL_STEPS TARGETS [overrides...]
# LABELS: the expert-label budget (default: the preset's train split, as the headline).
# PRESET: sudoku-4x4 (train easy) or sudoku-4x4-all (train easy + medium); TARGETS: set | canonical | forced.
set -euo pipefail
cd "$(dirname "$0")/../.."
name=$1; preset=$2; total=$3; targets=$4; shift 4
PY=.venv/bin/python
out=runs/sudoku_exp/$name
data=data/$preset
[ -f "$data/summary.json" ] || $PY -m train.datasets preset="$preset" out="$data" progress=false
labels=${LABELS:-$($PY -c "import json; print(json.load(open('$data/summary.json'))['splits']['train']['samples'])")}
rounds=$(( (labels + 1791) / 1792 ))  # 14 envs x 128 steps per round, as benchmarks.headline
sampling=$([ "$preset" = sudoku-4x4 ] && echo per_reset || echo per_env)  # easy + medium: equal states per level, as recorded
mkdir -p runs/sudoku_exp
start=$(date +%s)
$PY docs/sudoku_experiments/dagger_targets.py "$targets" experiment=sudoku4_hrm_dagger env.preset="$preset" \
  env.data_dir="$data" "$@" dagger.max_labels="$labels" dagger.rounds=$((rounds - 1)) \
  dagger.train_steps=$((total / rounds)) dagger.size_sampling="$sampling" threads=1 progress=false seed="${SEED:-0}" \
  out="$out" > "$out.train.log" 2>&1
mid=$(date +%s)
$PY -m train.evaluate env=sudoku 'sizes=[easy,medium]' episodes="${EPISODES:-30}" seed=12345 checkpoint="$out/last.pt" \
  "names=[$name]" 'references=[]' "held_out_from=[$out]" out="$out/evaluate" > "$out.eval.log" 2>&1
echo "$name: train $((mid - start)) s, evaluate $(( $(date +%s) - mid )) s"
cat "$out/evaluate/results.md"
