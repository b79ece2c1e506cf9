#!/usr/bin/env bash
# The README's main job on a small default: generate and check small data
# sets, run the CPU mini sweep (masked diffusion vs TR-LDM on 7x7 mazes,
# 2 seeds, trained and evaluated locally), and report its tables and plots.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/trldm
SHARED=${TRLDM_SHARED:-../shared}
SWEEP=${DEMO_SWEEP:-sweeps/cpu/mini.toml}
RESULTS=${DEMO_RESULTS:-results/cpu-mini}

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
cat "$RESULTS/tables.md"
