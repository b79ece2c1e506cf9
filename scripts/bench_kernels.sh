#!/usr/bin/env bash
# A/B of trldm's CPU kernels on one binary: `model.cpu_kernels = "aten"`
# against `"fused"` (csrc/fused.cpp), training and sampling at fp32 and bf16,
# in alternating rounds so that drift in the machine's speed hits both.
#   scripts/bench_kernels.sh [ROUNDS] [OUT.log]   (default 3 rounds, stdout)
# Needs a quiet machine: nothing else may run meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
OUT=${2:-/dev/stdout}
BIN=target/release/trldm
[ -x "$BIN" ] || { echo "bench_kernels: build first (make build)" >&2; exit 1; }
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 CUDA_VISIBLE_DEVICES=
{
  echo "# scripts/bench_kernels.sh on $(hostname), $(date -u +%FT%TZ), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "# trldm $(git rev-parse --short HEAD)"
  for r in $(seq 1 "$ROUNDS"); do
    for prec in false true; do
      for k in aten fused; do
        t=$("$BIN" bench train --steps 30 --set train.threads=2 --set train.cpu_bf16=$prec --set model.cpu_kernels=$k 2>/dev/null | grep '^{' | tail -n 1)
        s=$("$BIN" bench sample --puzzles 300 --set train.threads=2 --set train.cpu_bf16=$prec --set model.cpu_kernels=$k 2>/dev/null | grep '^{' | tail -n 1)
        echo "round=$r bf16=$prec kernels=$k train=$(echo "$t" | grep -o '"tokens_per_s":[0-9.]*' | cut -d: -f2) sample=$(echo "$s" | grep -o '"puzzles_per_s":[0-9.]*' | cut -d: -f2)"
      done
    done
  done
} | tee "$OUT"
