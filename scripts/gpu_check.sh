#!/usr/bin/env bash
# GPU check of trldm (docs/FACTS.md, "Running on a GPU machine"; issues 3 and 7). Builds nothing: it runs
# the binary that scripts/gpu_pack.sh put in .gpu/ (built elsewhere against
# torch 2.11.0), finds torch's and NVIDIA's libraries in python3's
# site-packages, and runs, each step under its own timeout:
#   1. nvidia-smi -L and `trldm doctor`;
#   2. `trldm bench train`, the paper's recipe (Sec. 9.6) on CUDA with bf16,
#      plain and through the NCCL path with world size 1 (TRLDM_DIST=nccl:
#      communicator, gradient all-reduce, parameter broadcast), with tokens/s,
#      TFLOP/s and the fraction of bf16 peak (790 TFLOP/s measured, docs/FACTS.md;
#      989 spec sheet);
#   3. the reference configuration (ref_trldm.py's) on CUDA, fp32 and bf16:
#      `bench train` and `bench sample` (N = 16);
#   4. a learning run on CUDA: sweeps/cpu/maze9.toml with bf16, trained and
#      evaluated (train.csv, eval.csv copied to $OUT when set);
#   5. on this machine's (quiet) CPU with 2 threads, side by side:
#      ref_trldm.py --time-only / --sample-bench against trldm bench, fp32
#      and with train.cpu_bf16;
#   6. (only when asked: SECTIONS=row) one row of the paper's Table 5,
#      sweeps/gpu/table5-row.toml: its updates/s measured, train.steps set
#      to what fits in ROW_BUDGET_S seconds of training (default 420, at
#      most the paper's 20,000), trained and evaluated on 1,000 test mazes;
#      run folder files to $OUT/table5-row/. ROW_SETS adds --set options
#      (the CPU smoke test in tests/gpu_script.rs shrinks the model with it).
# Usage, from the repo root:  scripts/gpu_check.sh   (STEPS=50 for more steps;
#   SECTIONS="paper ref learn cpu" picks steps 2-5, all by default;
#   SECTIONS=row runs step 6, about ROW_BUDGET_S + 2 minutes).
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=${TRLDM_BIN:-}
for b in .gpu/trldm target/release/trldm; do
  [ -z "$BIN" ] && [ -x "$b" ] && BIN=$b
done
if [ -z "$BIN" ]; then
  echo "gpu_check: no trldm binary; on the build machine run:" >&2
  echo "  cargo build --release && scripts/gpu_pack.sh" >&2
  exit 2
fi
PY=${PYTHON:-python3}
STEPS=${STEPS:-30}
OUTDIR=${OUT:-}
SECTIONS=${SECTIONS:-paper ref learn cpu}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
PEAK_MEASURED=790e12
PEAK_SPEC=989e12

# torch's libraries and the nvidia-* pip packages (cuBLAS, cuDNN, NCCL, ...);
# .gpu/lib last (OpenMPI and the like, only where the machine lacks them).
TL=$($PY -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")' 2>/dev/null)
NV=$($PY -c 'import nvidia,os;print(os.path.dirname(nvidia.__path__[0]))' 2>/dev/null)
LIBS=$TL
[ -n "$NV" ] && LIBS=$LIBS:$(ls -d "$NV"/nvidia/*/lib "$NV"/nvidia/*/*/lib 2>/dev/null | tr '\n' ':')
# cudarc loads libnccl.so (or .so.12), the pip package ships libnccl.so.2:
# link it under the name cudarc looks for (docs/FACTS.md, "MPI, NCCL and plots from Rust").
LINKDIR=$(mktemp -d /tmp/trldm-nccl.XXXXXX)
trap 'rm -rf "$LINKDIR"' EXIT
NCCL2=$(ls "$NV"/nvidia/nccl/lib/libnccl.so.2 "$NV"/nvidia/*/lib/libnccl.so.2 2>/dev/null | head -1)
[ -z "$NCCL2" ] && NCCL2=$(ldconfig -p 2>/dev/null | awk '/libnccl\.so\.2 /{print $NF; exit}')
if [ -n "$NCCL2" ]; then
  ln -sf "$NCCL2" "$LINKDIR/libnccl.so"
  echo "gpu_check: NCCL $NCCL2 (linked as $LINKDIR/libnccl.so)"
else
  echo "gpu_check: libnccl.so.2 not found; the NCCL step is expected to fail with a clear error"
fi
export LD_LIBRARY_PATH=$LINKDIR:$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
[ -d .gpu/lib ] && export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$PWD/.gpu/lib

# Prints one line from a train bench's JSON (stdin): tokens/s and peak fractions.
read -r -d '' REPORT <<'PYEOF'
import json, sys
label, pm, ps = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
lines = [l for l in sys.stdin if l.startswith("{")]
if not lines:
    sys.exit(label + ": no result")
j = json.loads(lines[-1])
f = j["flops_per_token"] * j["tokens_per_s"]
print("%s: %.0f tokens/s, %.2f steps/s, %.2f TFLOP/s = %.2f%% of bf16 peak 790 TFLOP/s (measured), "
      "%.2f%% of 989 TFLOP/s (spec); world %d %s, all-reduce %.1f%% of the step; batch %d, "
      "seq %d, %d non-embedding params, %.1f MFLOP/token; bf16 %s; device %s"
      % (label, j["tokens_per_s"], j["steps_per_s"], f / 1e12, 100 * f / pm, 100 * f / ps,
         j["world"], j["backend"], 100 * j["allreduce_share"], j["batch"], j["seq_len"],
         j["params_non_emb"], j["flops_per_token"] / 1e6, j["bf16"], j["device"]))
PYEOF
report() { $PY -c "$REPORT" "$1" "$PEAK_MEASURED" "$PEAK_SPEC"; }

rc=0
# step LABEL TIMEOUT CMD...: runs CMD, prints its last lines, records failure.
step() {
  local label=$1 limit=$2; shift 2
  echo "== $label"
  local t0=$SECONDS
  OUTPUT=$(timeout "$limit" "$@" 2>&1); local r=$?
  echo "$OUTPUT" | tail -4
  echo "   ($label: rc $r, $((SECONDS - t0)) s)"
  [ $r -eq 0 ] || rc=1
  return $r
}

echo "== nvidia-smi -L"; timeout 30 nvidia-smi -L
step "trldm doctor" 60 "$BIN" doctor

# 2. The paper's recipe (Sec. 9.6): 2 layers, d=512, 8 heads, FFN 2048, n=4,
# T=2, bf16; 9x9 mazes (81 tokens), a batch large enough to fill the GPU.
PAPER=(--set train.device=cuda --set train.bf16=true --set model.d=512 --set model.heads=8
       --set model.layers=2 --set model.ffn=2048 --set model.n_rec=4 --set model.T=2
       --set train.batch=${BATCH:-512} --set task.n_train=2000 --set train.threads=4)
if want paper; then
  TRLDM_DIST=off step "bench train, paper recipe, CUDA bf16, one process" 120 \
    "$BIN" bench train --steps "$STEPS" "${PAPER[@]}" && echo "$OUTPUT" | report paper-plain
  TRLDM_DIST=nccl step "bench train, paper recipe, CUDA bf16, NCCL world 1" 120 \
    "$BIN" bench train --steps "$STEPS" "${PAPER[@]}" && echo "$OUTPUT" | report paper-nccl
fi

# 3. The reference configuration (d=128, batch 64, n=2, T=1) on CUDA.
want ref && for bf in false true; do
  TRLDM_DIST=off step "bench train, reference config, CUDA bf16=$bf" 90 \
    "$BIN" bench train --steps 100 --set train.device=cuda --set train.bf16=$bf \
    && echo "$OUTPUT" | report ref-cuda-bf16-$bf
done
want ref && for bf in false true; do
  step "bench sample, reference config, CUDA bf16=$bf, N=16, 5000 puzzles" 90 \
    "$BIN" bench sample --puzzles 5000 --set train.device=cuda --set train.bf16=$bf
done

# 4. Learning run on CUDA: the CPU maze config, bf16.
if want learn; then
  RUN=$(mktemp -d /tmp/trldm-run.XXXXXX)/maze9-cuda
  step "learning run: sweeps/cpu/maze9.toml on CUDA, bf16" ${LEARN_TIMEOUT:-240} \
    "$BIN" train --config sweeps/cpu/maze9.toml --run-dir "$RUN" \
    --set train.device=cuda --set train.bf16=true ${LEARN_STEPS:+--set train.steps=$LEARN_STEPS}
  echo "-- train.csv (every 250 steps)"; awk -F, 'NR == 1 || $1 % 250 == 0' "$RUN/train.csv" 2>/dev/null | cut -c1-200
  echo "-- eval.csv"; cat "$RUN/eval.csv" 2>/dev/null
  if [ -n "$OUTDIR" ]; then
    for f in train.csv eval.csv status.json; do
      [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUTDIR/maze9-cuda-$f"
    done
  fi
fi

# 5. Side by side on this machine's CPU, 2 threads (issue 3's speed targets).
if [ -f .gpu/ref_trldm.py ] && want cpu; then
  export CUDA_VISIBLE_DEVICES=
  step "CPU train, reference ref_trldm.py" 120 $PY .gpu/ref_trldm.py --time-only 30 --steps 30
  for bf in false true; do
    step "CPU train, trldm bench train, cpu_bf16=$bf" 120 "$BIN" bench train --steps 30 --set train.cpu_bf16=$bf
  done
  step "CPU sample, reference ref_trldm.py --sample-bench 500" 150 \
    $PY .gpu/ref_trldm.py --sample-bench 500 --train 100 --test 500
  for bf in false true; do
    step "CPU sample, trldm bench sample --puzzles 500, cpu_bf16=$bf" 150 \
      "$BIN" bench sample --puzzles 500 --set train.cpu_bf16=$bf
  done
fi
# 6. One row of Table 5 (issue 15, item 5), in the time budget.
if want row; then
  ROW=sweeps/gpu/table5-row.toml
  read -r -a EXTRA <<< "${ROW_SETS:-}"
  RUN=$(mktemp -d /tmp/trldm-row.XXXXXX)/table5-row
  BUDGET=${ROW_BUDGET_S:-420}
  if step "bench train, Table 5 row (n_rec=8, d=256, T=2, batch 256, bf16)" 180 \
    "$BIN" bench train --config "$ROW" --steps "${ROW_BENCH_STEPS:-20}" "${EXTRA[@]}"; then
    echo "$OUTPUT" | report table5-row-bench
    N=$(echo "$OUTPUT" | grep '^{' | tail -n 1 | $PY -c \
      'import json,sys; j=json.load(sys.stdin); print(max(1, min(20000, int(float(sys.argv[1]) * j["steps_per_s"]))))' "$BUDGET")
    echo "   table5-row: $N updates fit in $BUDGET s (the paper: 20,000)"
    step "train + evaluate Table 5 row, $N updates" $((BUDGET + 600)) \
      "$BIN" train --config "$ROW" --run-dir "$RUN" --set train.steps="$N" "${EXTRA[@]}"
    echo "-- train.csv (every 500 steps)"; awk -F, 'NR == 1 || $1 % 500 == 0' "$RUN/train.csv" 2>/dev/null | cut -c1-200
    echo "-- eval.csv"; cat "$RUN/eval.csv" 2>/dev/null
    echo "-- the paper (Table 5, n_rec=8, d=256, lr=1e-4, 20,000 updates): valid 89.8 %, optimal 89.2 %"
    if [ -n "$OUTDIR" ]; then
      mkdir -p "$OUTDIR/table5-row"
      for f in config.toml train.csv eval.csv status.json; do
        [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUTDIR/table5-row/$f"
      done
    fi
  fi
fi
exit $rc
