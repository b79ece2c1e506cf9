#!/usr/bin/env bash
# Sets up what trldm needs to build and test on a Debian machine:
#   scripts/setup.sh          project-local venv with torch==2.11.0 (libtorch for tch 0.24)
#   scripts/setup.sh --system also Debian packages for the cluster tests
#                             (SLURM, munge, PMIx, OpenMPI, libclang for rsmpi's bindgen;
#                             pdflatex + booktabs to compile the report's LaTeX tables)
# Both steps are skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--system" ]; then
  pkgs="slurm-wlm munge libpmix2 openmpi-bin libopenmpi-dev libclang-dev pkg-config texlive-latex-recommended"
  missing=""
  # Installed means dpkg's "install ok installed": a package removed but not
  # purged ("deinstall ok config-files") is still known to `dpkg -s`.
  for p in $pkgs; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi

PY=${PYTHON:-python3}
if ! .venv/bin/python -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.11.0") else 1)' 2>/dev/null; then
  echo "setup: creating .venv with torch==2.11.0 (about 4.7 GB, a few minutes)"
  "$PY" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check torch==2.11.0
fi
# safetensors: docs/CHECKPOINTS.md's Python loader (and its test).
if ! .venv/bin/python -c "import safetensors, numpy" 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check safetensors numpy
fi
# cudarc dlopens libnccl.so, the pip package ships libnccl.so.2: a link beside
# it, in the venv, which the binary finds through its rpath (build.rs).
nccl_dir=$(.venv/bin/python -c 'import torch, os; print(os.path.normpath(os.path.join(os.path.dirname(torch.__file__), "..", "nvidia", "nccl", "lib")))')
if [ -f "$nccl_dir/libnccl.so.2" ] && [ ! -e "$nccl_dir/libnccl.so" ]; then
  ln -s libnccl.so.2 "$nccl_dir/libnccl.so"
fi
echo "setup: torch $(.venv/bin/python -c 'import torch; print(torch.__version__)') in .venv"
