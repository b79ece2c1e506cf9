#!/usr/bin/env python3
"""Compare two evaluations of the same run folders (same weights, two
decision rules or sampler settings), paired over seeds.

    scripts/paired_evals.py SWEEP_DIR EVAL_A EVAL_B [--group COL=VALUE ...]

SWEEP_DIR is a results/<sweep>/ folder with runs.csv (as `trldm sweep`
writes it); EVAL_A and EVAL_B are file names inside each run folder (e.g.
eval.csv and eval_logit_adjust.csv, written by `trldm eval --out`). Runs are
grouped by their runs.csv columns without the seed; every group with both
files in at least two runs gets one line per metric: mean ± sample std
(ddof = 1) [95 % CI, Student t] of A and of B, the mean paired difference
B - A with its 95 % CI, and the two-sided exact sign-flip permutation
p-value of that difference (all 2^n sign patterns; n = runs with both files).
Standard library only.
"""
import argparse
import csv
import itertools
import math
import os
import statistics
import sys

# Two-sided 95 % quantiles of Student's t, df = 1..30 (then the normal's).
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
METRICS = ["exact", "optimal", "valid", "token_acc"]


def t975(df):
    return T975[df - 1] if df <= len(T975) else 1.960


def summary(xs):
    m = statistics.fmean(xs)
    s = statistics.stdev(xs) if len(xs) > 1 else 0.0
    h = t975(len(xs) - 1) * s / math.sqrt(len(xs)) if len(xs) > 1 else 0.0
    return m, s, m - h, m + h


def sign_flip_p(d):
    obs = abs(sum(d))
    hits = total = 0
    for signs in itertools.product((1, -1), repeat=len(d)):
        total += 1
        if abs(sum(s * x for s, x in zip(signs, d))) >= obs - 1e-12:
            hits += 1
    return hits / total


def read_eval(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"{path}: no rows")
    return rows[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep")
    ap.add_argument("eval_a")
    ap.add_argument("eval_b")
    ap.add_argument("--group", action="append", default=[], metavar="COL=VALUE",
                    help="keep only runs whose runs.csv column COL equals VALUE")
    a = ap.parse_args()
    sweep, fa, fb = a.sweep, a.eval_a, a.eval_b
    filters = [g.partition("=")[::2] for g in a.group]
    runs_csv = os.path.join(sweep, "runs.csv")
    if not os.path.exists(runs_csv):
        raise SystemExit(f"{runs_csv}: not found (is {sweep} a sweep folder?)")
    with open(runs_csv) as f:
        runs = list(csv.DictReader(f))
    groups = {}
    for r in runs:
        if any(r.get(k) != v for k, v in filters):
            continue
        pa, pb = (os.path.join(sweep, r["run_id"], x) for x in (fa, fb))
        if not (os.path.exists(pa) and os.path.exists(pb)):
            continue
        key = tuple((k, v) for k, v in r.items() if k not in ("run_id", "seed"))
        groups.setdefault(key, []).append((r["seed"], read_eval(pa), read_eval(pb)))
    print(f"# {sweep}: A = {fa}, B = {fb}; mean ± std [95 % CI] over seeds (%), "
          "paired difference B - A [95 % CI], exact sign-flip p")
    for key, rows in sorted(groups.items()):
        if len(rows) < 2:
            continue
        differs = ", ".join(f"{k}={v}" for k, v in key)
        seeds = " ".join(s for s, _, _ in sorted(rows))
        print(f"\n## {differs}  (n = {len(rows)}, seeds {seeds})")
        print("| metric | A | B | B - A | p |")
        print("|---|---:|---:|---:|---:|")
        for m in METRICS:
            a = [100 * float(ra[m]) for _, ra, _ in rows]
            b = [100 * float(rb[m]) for _, _, rb in rows]
            d = [y - x for x, y in zip(a, b)]
            fmt = lambda s: f"{s[0]:.1f} ± {s[1]:.1f} [{s[2]:.1f}, {s[3]:.1f}]"
            print(f"| {m} | {fmt(summary(a))} | {fmt(summary(b))} | "
                  f"{summary(d)[0]:+.1f} [{summary(d)[2]:+.1f}, {summary(d)[3]:+.1f}] | "
                  f"{sign_flip_p(d):.3f} |")


if __name__ == "__main__":
    main()
