#!/usr/bin/env bash
# GPU check of data-parallel training (docs: GPU.md; src/dist). Builds
# nothing: it runs a trldm binary built elsewhere against torch 2.11.0
# (cargo build --release && mkdir -p .gpu && cp target/release/trldm .gpu/),
# finds torch's and NVIDIA's libraries in python3's site-packages, and runs
#   1. nvidia-smi -L and `trldm doctor`,
#   2. `trldm bench train` on CUDA with bf16, plain (no collectives),
#   3. the same through the NCCL path with world size 1 (TRLDM_DIST=nccl:
#      NCCL communicator, gradient all-reduce and parameter broadcast),
# and prints tokens/s, achieved TFLOP/s and the fraction of bf16 peak, with
# peak = 790 TFLOP/s (H200 bf16 matrix products as measured, GPU.md) and,
# for reference, 989 TFLOP/s (H200 dense bf16 spec sheet).
# At most ~5 minutes (each step has a timeout). Usage, from the repo root:
#   scripts/gpu_check.sh            # binary: $TRLDM_BIN, .gpu/trldm or target/release/trldm
#   STEPS=50 scripts/gpu_check.sh   # more timed steps
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=${TRLDM_BIN:-}
for b in .gpu/trldm target/release/trldm; do
  [ -z "$BIN" ] && [ -x "$b" ] && BIN=$b
done
if [ -z "$BIN" ]; then
  echo "gpu_check: no trldm binary; on the build machine run:" >&2
  echo "  cargo build --release && mkdir -p .gpu && cp target/release/trldm .gpu/" >&2
  exit 2
fi
PY=${PYTHON:-python3}
STEPS=${STEPS:-30}
PEAK_MEASURED=790e12
PEAK_SPEC=989e12

# torch's libraries and the nvidia-* pip packages (cuBLAS, cuDNN, NCCL, ...).
TL=$($PY -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")' 2>/dev/null)
NV=$($PY -c 'import nvidia,os;print(os.path.dirname(nvidia.__path__[0]))' 2>/dev/null)
LIBS=$TL
[ -n "$NV" ] && LIBS=$LIBS:$(ls -d "$NV"/nvidia/*/lib "$NV"/nvidia/*/*/lib 2>/dev/null | tr '\n' ':')
# cudarc loads libnccl.so (or .so.12), the pip package ships libnccl.so.2:
# link it under the name cudarc looks for (REFERENCE.md, NCCL pitfalls).
LINKDIR=$(mktemp -d /tmp/trldm-nccl.XXXXXX)
trap 'rm -rf "$LINKDIR"' EXIT
NCCL2=$(ls "$NV"/nvidia/nccl/lib/libnccl.so.2 2>/dev/null | head -1)
[ -z "$NCCL2" ] && NCCL2=$(ldconfig -p 2>/dev/null | awk '/libnccl\.so\.2 /{print $NF; exit}')
if [ -n "$NCCL2" ]; then
  ln -sf "$NCCL2" "$LINKDIR/libnccl.so"
  echo "gpu_check: NCCL $NCCL2 (linked as $LINKDIR/libnccl.so)"
else
  echo "gpu_check: libnccl.so.2 not found; the NCCL step is expected to fail with a clear error"
fi
export LD_LIBRARY_PATH=$LINKDIR:$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

echo "== nvidia-smi -L"; timeout 30 nvidia-smi -L
echo "== trldm doctor"; timeout 60 "$BIN" doctor

# The paper's recipe (Sec. 9.6): 2 layers, d=512, 8 heads, FFN 2048, n=4,
# T=2, bf16; 9x9 mazes (81 tokens), a batch large enough to fill the GPU.
SETS=(--set train.device=cuda --set train.bf16=true --set model.d=512 --set model.heads=8
      --set model.layers=2 --set model.ffn=2048 --set model.n_rec=4 --set model.T=2
      --set train.batch=${BATCH:-512} --set task.n_train=2000 --set train.threads=4)

# Prints one line from the bench's JSON (stdin): tokens/s and peak fractions.
read -r -d '' REPORT <<'PYEOF'
import json, sys
label, pm, ps = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
lines = [l for l in sys.stdin if l.startswith("{")]
if not lines:
    sys.exit(label + ": no result")
j = json.loads(lines[-1])
f = j["flops_per_token"] * j["tokens_per_s"]
print("%s: %.0f tokens/s, %.2f steps/s, %.1f TFLOP/s = %.1f%% of bf16 peak 790 TFLOP/s (measured), "
      "%.1f%% of 989 TFLOP/s (spec); world %d %s, all-reduce %.1f%% of the step; batch %d, "
      "seq %d, %d non-embedding params, %.0f MFLOP/token; device %s"
      % (label, j["tokens_per_s"], j["steps_per_s"], f / 1e12, 100 * f / pm, 100 * f / ps,
         j["world"], j["backend"], 100 * j["allreduce_share"], j["batch"], j["seq_len"],
         j["params_non_emb"], j["flops_per_token"] / 1e6, j["device"]))
PYEOF
report() { $PY -c "$REPORT" "$1" "$PEAK_MEASURED" "$PEAK_SPEC"; }

rc=0
echo "== bench train, CUDA bf16, one process (no collectives)"
OUT=$(TRLDM_DIST=off timeout 120 "$BIN" bench train --steps "$STEPS" "${SETS[@]}" 2>&1); r=$?
echo "$OUT" | tail -3
[ $r -eq 0 ] && echo "$OUT" | report plain || { echo "plain bench failed (rc $r)"; rc=1; }

echo "== bench train, CUDA bf16, NCCL path with world size 1 (TRLDM_DIST=nccl)"
OUT=$(TRLDM_DIST=nccl timeout 120 "$BIN" bench train --steps "$STEPS" "${SETS[@]}" 2>&1); r=$?
echo "$OUT" | tail -3
[ $r -eq 0 ] && echo "$OUT" | report nccl || { echo "NCCL bench failed (rc $r)"; rc=1; }
exit $rc
