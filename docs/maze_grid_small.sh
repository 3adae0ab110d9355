#!/usr/bin/env bash
# Exploratory (docs/results/maze.md, "Grid attention"): can the grid-attention TRM (the headline's trm_grid_labels_dagger
# model) learn the maze's move field when the grid is small enough for a longer budget? Mazes of sides 7..11
# padded to 15 x 15 (225 tokens instead of 961), 4 rounds x 600 optimizer steps, evaluated on sides 13 and 15
# (configs/experiment/maze_grid_small.yaml; WIDTH, SIZES, EVAL_SIZES and ENV override its grid, sides and env).
# Also the carry comparison (docs/results/maze.md, "Carrying the latent across decisions"): NAME atok_base, atok_carry3,
# atok_carry3_r25 with model.global_readout=acting_token [model.episode_carry=true [dagger.episode_restart=0.25]].
# And the width transfer (docs/results/maze.md, "Rows and columns instead of sequence positions"): NAME rope2d_carry with
# SIZES='[7,8,9,10,11,12,13,14,15]' EVAL_SIZES='[15]' and model.global_readout=acting_token
# model.pos_encodings=rope2d model.episode_carry=true, then train.evaluate on the headline's 21..31 mazes.
# And its longer-route stage (docs/results/maze.md, "Longer routes"): NAME rope2d_carry_w25 with WIDTH=25,
# SIZES='[11,13,15,17,19,21,23,25]' EVAL_SIZES='[25]' GRID_SIZES='11 17 21 25', the same model overrides and
# init_from=runs/x/rope2d_carry/last.pt.
# Both stages for one seed, resumable: docs/maze_two_stage.sh.
# ENV=city runs the same model on city routing (docs/results/city.md, "The maze recipe on the city"): WIDTH=20,
# SIZES='[10,...,20]', EVAL_SIZES='[20]'; GRID_SIZES then name city sides.
#   [ENV=maze] [WIDTH=15] [SIZES=...] [EVAL_SIZES=...] [GRID_SIZES=...|none] [SEED=0] bash docs/maze_grid_small.sh NAME [train.dagger overrides]
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; shift
width=${WIDTH:-15}; sizes=${SIZES:-[7,11]}; eval_sizes=${EVAL_SIZES:-[13,15]}; grid_sizes=${GRID_SIZES:-7 11 13 15}
seed=${SEED:-0}; env=${ENV:-maze}
out=runs/x/$name; mkdir -p runs/x
.venv/bin/python -m train.dagger experiment=maze_grid_small env=$env env.kwargs.max_size=$width model.attention_grid=$width \
  "dagger.sizes=$sizes" "env.eval_sizes=$eval_sizes" "$@" threads=1 progress=false seed=$seed out=$out \
  > $out.train.log 2>&1
[ "$grid_sizes" = none ] && exit 0
.venv/bin/python -m benchmarks.grid_errors --env $env --max-size $width --sizes $grid_sizes --puzzles 10 \
  --checkpoint $out/last.pt > $out.grid_errors.json
cat $out.grid_errors.json
