#!/usr/bin/env bash
# Side-by-side CPU speed: the eager-PyTorch yardstick ($TRLDM_SHARED/bench/
# ref_trldm.py) against trldm at the same configuration (9x9 mazes, d = 128,
# 4 heads, 2 layers, n = 2, T = 1, batch 64, 2 threads), in alternating
# rounds on this machine, so that drift in the machine's speed hits both;
# at fp32, and at bf16: trldm's `train.cpu_bf16` against the reference under
# torch.autocast("cpu", dtype=torch.bfloat16) (scripts/ref_bf16.py).
# Training is measured twice: one process with 2 libtorch threads, and two
# training threads of one libtorch thread each (train.workers = 2).
#   scripts/bench_cpu.sh [ROUNDS] [OUT.log]     (default 3 rounds, stdout)
# Every line of the log is the JSON a command printed, prefixed with the
# round and what ran; the summary at the end gives each round's ratios and
# their median. Needs a quiet machine: nothing else may run meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
OUT=${2:-/dev/stdout}
SHARED=${TRLDM_SHARED:-$(cd .. && pwd)/shared}
REF="$SHARED/bench/ref_trldm.py"
PY=.venv/bin/python
BIN=target/release/trldm
[ -f "$REF" ] || { echo "bench_cpu: $REF not found (set TRLDM_SHARED)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "bench_cpu: build first (make build)" >&2; exit 1; }
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 CUDA_VISIBLE_DEVICES=
log=$(mktemp)
run() { # round, label, command...
  local r=$1 label=$2; shift 2
  local line
  line=$("$@" 2>/dev/null | grep '^{' | tail -n 1)
  echo "round=$r $label $line" | tee -a "$log" >&2
}
{
  echo "# scripts/bench_cpu.sh on $(hostname), $(date -u +%FT%TZ), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "# trldm $(git rev-parse --short HEAD), torch $($PY -c 'import torch; print(torch.__version__)')"
} | tee "$log" >&2
for r in $(seq 1 "$ROUNDS"); do
  run "$r" ref-train $PY "$REF" --time-only 30 --steps 30
  run "$r" trldm-train "$BIN" bench train --steps 30 --set train.threads=2
  run "$r" trldm-train-workers2 "$BIN" bench train --steps 30 --set train.threads=2 --set train.workers=2
  run "$r" ref-sample $PY "$REF" --sample-bench 500 --train 100 --test 500
  run "$r" trldm-sample "$BIN" bench sample --puzzles 500 --set train.threads=2
  run "$r" ref-bf16train $PY scripts/ref_bf16.py "$REF" --time-only 30 --steps 30
  run "$r" trldm-bf16train "$BIN" bench train --steps 30 --set train.threads=2 --set train.cpu_bf16=true
  run "$r" trldm-bf16train-workers2 "$BIN" bench train --steps 30 --set train.threads=2 --set train.workers=2 --set train.cpu_bf16=true
  run "$r" ref-bf16sample $PY scripts/ref_bf16.py "$REF" --sample-bench 500 --train 100 --test 500
  run "$r" trldm-bf16sample "$BIN" bench sample --puzzles 500 --set train.threads=2 --set train.cpu_bf16=true
done
$PY - "$log" <<'EOF' | tee -a "$log" >&2
import json, re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"round=(\d+) (\S+) (\{.*\})$", line.strip())
    if m:
        rows[(int(m.group(1)), m.group(2))] = json.loads(m.group(3))
rounds = sorted({r for r, _ in rows})
def ratio(kind, key_ref, key_ours):
    out = []
    ref_kind = kind.split("-")[0]
    for r in rounds:
        a, b = rows.get((r, f"ref-{ref_kind}")), rows.get((r, f"trldm-{kind}"))
        if a and b and a.get(key_ref) and b.get(key_ours):
            out.append((r, a[key_ref], b[key_ours], b[key_ours] / a[key_ref]))
    return out
for kind, kr, ko, unit in [("train", "tokens_per_s", "tokens_per_s", "tokens/s"),
                           ("train-workers2", "tokens_per_s", "tokens_per_s", "tokens/s"),
                           ("sample", "puzzles_per_s", "puzzles_per_s", "puzzles/s"),
                           ("bf16train", "tokens_per_s", "tokens_per_s", "tokens/s"),
                           ("bf16train-workers2", "tokens_per_s", "tokens_per_s", "tokens/s"),
                           ("bf16sample", "puzzles_per_s", "puzzles_per_s", "puzzles/s")]:
    rs = ratio(kind, kr, ko)
    for r, a, b, q in rs:
        print(f"summary {kind} round {r}: reference {a:.1f} {unit}, trldm {b:.1f} {unit}, ratio {q:.2f}")
    if rs:
        print(f"summary {kind}: median ratio {statistics.median(q for *_, q in rs):.2f} over {len(rs)} rounds")
EOF
[ "$OUT" = /dev/stdout ] || cp "$log" "$OUT"
