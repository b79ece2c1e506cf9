# trldm: the two commands of the README, and helpers.
# tch builds against the venv's libtorch (LIBTORCH_USE_PYTORCH=1).
export LIBTORCH_USE_PYTORCH := 1
export PATH := $(CURDIR)/.venv/bin:$(PATH)
# Tests read the real puzzles from ../shared (override with TRLDM_SHARED).
export TRLDM_SHARED ?= $(abspath $(CURDIR)/../shared)
CARGO ?= cargo
BIN := target/release/trldm
# Optional cargo features: `make build FEATURES=mpi` adds CPU data parallelism
# over OpenMPI (needs scripts/setup.sh --system). The main job needs none.
FEATURES ?=
CARGO_FEATURES := $(if $(FEATURES),--features $(FEATURES),)

.PHONY: setup build demo test bench fmt lint

setup:
	scripts/setup.sh

build: setup
	$(CARGO) build --release $(CARGO_FEATURES)

# The main job on a small default (Rust + Python 3, no root, no OpenMPI):
# data, then TR-LDM against masked diffusion without recursion on 9x9 mazes,
# 3 seeds each, trained and evaluated on the CPU into a fresh folder under
# runs/ (DEMO_RESULTS=DIR names another), then the report (about 6 minutes on
# 2 cores after the build).
demo: build
	scripts/demo.sh

# Every test (unit + integration), one build profile (release), with MPI:
# installs SLURM, munge, OpenMPI and libclang from Debian first (root).
test: setup
	scripts/setup.sh --system
	$(CARGO) test --release --features mpi

bench: build
	$(BIN) bench train
	$(BIN) bench train --set train.cpu_bf16=true
	$(BIN) bench sample
	$(BIN) bench sample --set train.cpu_bf16=true
	$(BIN) bench data --sudoku $(TRLDM_SHARED)/data/sudoku/forum_hardest_1106.csv

fmt:
	$(CARGO) fmt

lint:
	$(CARGO) clippy --release --all-targets -- -D warnings
