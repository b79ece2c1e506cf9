#!/usr/bin/env bash
# The README's main job: generate and check small data sets, then train and
# evaluate TR-LDM against masked diffusion without recursion on 9x9 mazes
# (sweeps/cpu/demo.toml, 3 seeds each, locally on the CPU), and report the
# table and plots. Trains for real every time: the results go to a fresh
# folder under runs/ unless DEMO_RESULTS names one; results/ is never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/trldm
SHARED=${TRLDM_SHARED:-../shared}
SWEEP=${DEMO_SWEEP:-sweeps/cpu/demo.toml}
RESULTS=${DEMO_RESULTS:-runs/demo-$(date +%Y%m%d-%H%M%S)}
if [ -e "$RESULTS/sweep.toml" ]; then
  echo "demo: $RESULTS already holds a sweep; name a new folder with DEMO_RESULTS=DIR" >&2
  exit 1
fi
start=$(date +%s)

$BIN doctor
mkdir -p data/demo
$BIN data gen sudoku --count 200 --clues 25 --seed 0 --out data/demo/sudoku.csv
$BIN data gen maze --size 9 --min-path-len 8 --wall-min 0.3 --wall-max 0.3 --count 200 --seed 0 --out data/demo/maze9.csv
$BIN data check data/demo/sudoku.csv
$BIN data check data/demo/maze9.csv
$BIN data stats data/demo/maze9.csv
if [ -f "$SHARED/data/sudoku/forum_hardest_1106.csv" ]; then
  $BIN data check "$SHARED/data/sudoku/forum_hardest_1106.csv"
fi
$BIN sweep plan "$SWEEP" --results "$RESULTS"
$BIN sweep run "$SWEEP" --results "$RESULTS"
$BIN sweep status "$SWEEP" --results "$RESULTS"
$BIN report "$RESULTS"
echo
cat "$RESULTS/tables.md"
echo
echo "demo: done in $(( $(date +%s) - start )) s"
echo "tables: $RESULTS/tables.md $RESULTS/tables.tex $RESULTS/tables.csv"
echo "plots:  $(ls "$RESULTS"/*.png | tr '\n' ' ')"
echo "runs:   $RESULTS/<run-id>/{config.toml,train.csv,eval.csv,train.log}"
