# trldm: the two commands of the README, and helpers.
# tch builds against the venv's libtorch (LIBTORCH_USE_PYTORCH=1).
export LIBTORCH_USE_PYTORCH := 1
export PATH := $(CURDIR)/.venv/bin:$(PATH)
# Tests read the real puzzles from ../shared (override with TRLDM_SHARED).
export TRLDM_SHARED ?= $(abspath $(CURDIR)/../shared)
CARGO ?= cargo
BIN := target/release/trldm

.PHONY: setup build demo test bench fmt lint

setup:
	scripts/setup.sh

build: setup
	$(CARGO) build --release

# The main job on a small default: data, training and evaluation of a
# TR-LDM on 9x9 mazes on the CPU (a few minutes on 2 cores).
demo: build
	scripts/demo.sh

# Every test (unit + integration), one build profile (release).
test: setup
	scripts/setup.sh --system
	$(CARGO) test --release

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
