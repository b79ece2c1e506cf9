#!/usr/bin/env bash
# Packs what scripts/gpu_check.sh needs on a GPU machine that has torch
# 2.11.0 in Python but no Rust toolchain and no OpenMPI (docs/FACTS.md, "Running on a GPU machine") into .gpu/
# (git-ignored; name it in the device tool's `carry`):
#   .gpu/trldm          the release binary (links libtorch dynamically),
#   .gpu/lib/           the shared libraries it links that are neither glibc's
#                       nor torch's (with the `mpi` feature: OpenMPI and its
#                       dependencies, since such a binary cannot start without
#                       libmpi.so.40 even when it never initialises MPI),
#   .gpu/ref_trldm.py   the eager-PyTorch yardstick ($TRLDM_SHARED/bench).
# Usage, from the repo root after `cargo build --release`: scripts/gpu_pack.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/trldm
[ -x "$BIN" ] || { echo "gpu_pack: build first (cargo build --release)" >&2; exit 2; }
rm -rf .gpu && mkdir -p .gpu/lib
cp "$BIN" .gpu/trldm
# Every resolved library except glibc's, the C++ runtime and torch's own.
ldd "$BIN" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r name path; do
  case "$name" in
    libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|libutil.so*|ld-linux*|libstdc++*|libgcc_s*) continue ;;
  esac
  case "$path" in */site-packages/*) continue ;; esac # torch and nvidia-* wheels
  cp -L "$path" ".gpu/lib/$name"
done
SHARED=${TRLDM_SHARED:-../shared}
[ -f "$SHARED/bench/ref_trldm.py" ] && cp "$SHARED/bench/ref_trldm.py" .gpu/
echo "gpu_pack: $(du -sh .gpu | cut -f1) in .gpu: $(ls .gpu/lib | tr '\n' ' ')"
