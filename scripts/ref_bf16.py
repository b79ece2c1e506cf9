#!/usr/bin/env python3
"""Run the eager-PyTorch yardstick (ref_trldm.py) under CPU bf16 autocast.

    python scripts/ref_bf16.py PATH/TO/ref_trldm.py [its arguments...]

The whole of the reference's main() (training, sampling, the --time-only and
--sample-bench timers) runs inside torch.autocast("cpu", dtype=torch.bfloat16),
which is how a researcher would switch an eager script to bf16 (the
precision issue 15, item 4, compares trldm's `train.cpu_bf16` against).
The reference file itself is not modified.
"""
import importlib.util
import sys

import torch


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: ref_bf16.py PATH/TO/ref_trldm.py [ARGS...]")
    path = sys.argv[1]
    spec = importlib.util.spec_from_file_location("ref_trldm", path)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    sys.argv = [path] + sys.argv[2:]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref.main()


if __name__ == "__main__":
    main()
