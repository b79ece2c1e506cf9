#!/usr/bin/env bash
# CPU benchmark of data parallelism (src/dist): time per training step of
# `mpirun -n 2` (one libtorch thread per rank) against one process at the
# same global batch (1 thread, and 2 threads = the same cores), and the
# share of the step spent in the gradient all-reduce (including waiting for
# the slower rank). Uses `trldm bench train` (reference config: 9x9 mazes,
# d=128, 4 heads, 2 layers, batch 64 unless overridden).
#   scripts/bench_dist.sh [REPEATS] [-- extra --set KEY=VALUE ...]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TRLDM_BIN:-target/release/trldm}
REPEATS=${1:-3}
shift || true
[ "${1:-}" = "--" ] && shift
STEPS=${STEPS:-20}
MPI=(mpirun --allow-run-as-root --oversubscribe -n 2)
summary() {
  python3 -c '
import json, sys
j = [json.loads(l) for l in sys.stdin if l.startswith("{")][-1]
print("%-28s world %d threads/rank %d batch %d: %.3f s/step, %.0f tokens/s, all-reduce %.1f ms/step = %.1f%% of the step (%.1f ms alone)"
      % (sys.argv[1], j["world"], j["threads"], j["batch"], j["s_per_step"], j["tokens_per_s"],
         1e3 * j["allreduce_s_per_step"], 100 * j["allreduce_share"], 1e3 * j["allreduce_alone_s"]))
' "$1"
}
for r in $(seq "$REPEATS"); do
  echo "# repeat $r (load: $(cut -d" " -f1-3 /proc/loadavg))"
  "$BIN" bench train --steps "$STEPS" --set train.threads=1 "$@" | summary "1 process, 1 thread"
  "${MPI[@]}" "$BIN" bench train --steps "$STEPS" --set train.threads=1 "$@" | summary "mpirun -n 2, 1 thread each"
  "$BIN" bench train --steps "$STEPS" --set train.threads=2 "$@" | summary "1 process, 2 threads"
done
