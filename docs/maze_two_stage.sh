#!/usr/bin/env bash
# The two-stage maze run (docs/results/maze.md, "Longer routes") for one seed, step by step as seed 0 ran it:
#   stage 1: rope2d carry model on sides 7..15 padded to 15, 4 rounds, then resumed to 8 rounds;
#   stage 2: from stage 1's weights, sides 11..25 padded to 25, 3 rounds, then resumed to 5 rounds;
# then the evaluations of seed 0's final checkpoint (end of this file) on the same puzzles.
# Safe to rerun after a kill: finished steps (in runs/x/) are skipped, a started one resumes from its last round.
#   bash docs/maze_two_stage.sh SEED     # ends with one JSON line of the figures
# A variant of stage 2 (same stage 1) gets a name suffix and its extra train.dagger overrides:
#   bash docs/maze_two_stage.sh SEED SUFFIX OVERRIDE...   # e.g. 1 h dagger.horizon=2.0 -> maze2s_seed1_stage2h
set -euo pipefail
cd "$(dirname "$0")/.."
seed=$1; suffix=${2:-}; shift $(($# < 2 ? $# : 2))
model='model.global_readout=acting_token model.pos_encodings=rope2d model.episode_carry=true'
stage1=maze2s_seed${seed}_stage1; stage2=maze2s_seed${seed}_stage2$suffix
mkdir -p runs/x

rounds_done() {  # rounds recorded in runs/x/$1/final.json (0 if the step has not finished)
  .venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['rounds'])" runs/x/$1/final.json \
    2>/dev/null || echo 0
}
step() {  # step NAME ROUNDS_OVERRIDE ROUNDS_AFTER [overrides]: one train.dagger call, skipped when done
  local name=$1 rounds=$2 after=$3; shift 3
  [ "$(rounds_done $name)" -ge "$after" ] && return 0
  local resume=(); [ -f runs/x/$name/last.pt ] && resume=(resume=true)
  GRID_SIZES=none SEED=$seed bash docs/maze_grid_small.sh $name $model dagger.rounds=$rounds "$@" "${resume[@]}"
  cp runs/x/$name.train.log runs/x/$name.rounds$after.train.log
  cp runs/x/$name/last.pt runs/x/$name.rounds$after.pt
}

SIZES='[7,8,9,10,11,12,13,14,15]' EVAL_SIZES='[15]' step $stage1 3 4
SIZES='[7,8,9,10,11,12,13,14,15]' EVAL_SIZES='[15]' step $stage1 7 8
export WIDTH=25 SIZES='[11,13,15,17,19,21,23,25]' EVAL_SIZES='[25]'
stage2_args=(init_from=runs/x/$stage1/last.pt dagger.eval_puzzles=4 dagger.eval_ood_every=0 "$@")
step $stage2 2 3 "${stage2_args[@]}"
step $stage2 4 5 "${stage2_args[@]}"
# The checkpoint after both stages on the puzzles of docs/results/maze.md: the headline's test sides (60 puzzles), 20 more at
# side 31, sides 35 / 41 padded to 41 (none of 31..41 is a training side of either stage), and in distribution
# at sides 7 / 15 / 25 padded to 25 with both stages' training states held out.
final=runs/x/$stage2.rounds5.pt
evaluate() {  # evaluate OUT [overrides]: train.evaluate of the final checkpoint, skipped when done
  local out=runs/x/eval_${stage2}_$1; shift
  [ -f $out/results.json ] && return 0
  .venv/bin/python -m train.evaluate env=maze episodes=20 seed=12345 checkpoint=$final "names=[$stage2]" \
    'references=[]' "$@" out=$out > $out.log 2>&1
}
# The longest one (sides 35 / 41, ~50 minutes on one core) runs beside the other three, one on each core.
evaluate large env.kwargs.max_size=41 'sizes=[35,41]' & large=$!
evaluate out 'sizes=[21,25,31]'
evaluate 31 'sizes=[31]'
evaluate in env.kwargs.max_size=25 'sizes=[7,15,25]' "held_out_from=[runs/x/$stage1,runs/x/$stage2]"
wait $large
# One JSON line: success per evaluation and size, and over the 80 episodes at sides no stage trained on.
.venv/bin/python - "$stage2" <<'PY'
import json, sys
stage = sys.argv[1]
runs = {name: json.load(open(f"runs/x/eval_{stage}_{name}/results.json"))["results"][stage]
        for name in ("in", "out", "31", "large")}
unseen = [(runs[name][size]["success"], runs[name][size]["episodes"])
          for name, size in (("out", "31"), ("31", "31"), ("large", "35"), ("large", "41"))]
print(json.dumps({"run": stage, "success": {name: {size: row["success"] for size, row in rows.items()}
                                            for name, rows in runs.items()},
                  "unseen_sides_success": sum(s * n for s, n in unseen) / sum(n for _, n in unseen)}))
PY
