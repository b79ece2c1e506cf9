#!/usr/bin/env bash
# The README's main job: generate and check small data sets, then train and
# evaluate a TR-LDM on 9x9 mazes on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/trldm
SHARED=${TRLDM_SHARED:-../shared}
STEPS=${DEMO_STEPS:-1500}

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
$BIN train --config sweeps/cpu/maze9.toml --run-dir runs/demo-maze9 --set train.steps="$STEPS"
cat runs/demo-maze9/eval.csv
