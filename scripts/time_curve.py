#!/usr/bin/env python3
"""Optimal % against wall-clock minutes for a trldm run and the eager-PyTorch
reference (../shared/bench/ref_trldm.py), trained on the same machine.

    scripts/time_curve.py RUN_DIR REF_LOG[,REF_LOG...] OUT_DIR

RUN_DIR: a trldm run folder (train.csv's eval columns during training,
eval.csv's final evaluation, whose wall_s is added to the last point).
REF_LOG: what ref_trldm.py printed (one JSON object per evaluation; its
elapsed_s includes its own evaluations); several logs, comma-separated,
give one curve each, labelled with their number of steps. Writes OUT_DIR/curve.csv and
OUT_DIR/curve.svg. Standard library only.
"""
import csv
import json
import sys
from pathlib import Path


def trldm_points(run: Path):
    """(minutes, optimal %, test mazes) per evaluation of a trldm run."""
    pts = []
    with open(run / "train.csv") as f:
        rows = list(csv.DictReader(f))
    n_during = None
    cfg = (run / "config.toml").read_text()
    for line in cfg.splitlines():
        if line.startswith("n_during"):
            n_during = int(line.split("=")[1])
    for r in rows:
        if r["eval_optimal"]:
            pts.append((float(r["elapsed_s"]) / 60, 100 * float(r["eval_optimal"]), n_during))
    final = list(csv.DictReader(open(run / "eval.csv")))[-1]
    end = float(rows[-1]["elapsed_s"]) + float(final["wall_s"])
    pts.append((end / 60, 100 * float(final["optimal"]), int(final["n"])))
    return pts


def ref_points(log: Path):
    """(minutes, optimal %, test mazes) per evaluation of the reference
    (fresh states at every step, as the trldm run samples), and its last
    step."""
    pts, last = [], 0
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            pts.append((r["elapsed_s"] / 60, 100 * r["optimal_fresh"], None))
            last = r["step"]
    return pts, last


def svg(series, path: Path):
    w, h, m = 640, 400, 50
    xmax = max(x for _, pts, _ in series for x, _, _ in pts) * 1.05
    sx = lambda x: m + (w - 2 * m) * x / xmax
    sy = lambda y: h - m - (h - 2 * m) * y / 100
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<line x1="{m}" y1="{h-m}" x2="{w-m}" y2="{h-m}" stroke="black"/>',
           f'<line x1="{m}" y1="{m}" x2="{m}" y2="{h-m}" stroke="black"/>',
           f'<text x="{w/2}" y="{h-12}" text-anchor="middle">wall-clock minutes (2 cores)</text>',
           f'<text x="14" y="{h/2}" transform="rotate(-90 14 {h/2})" text-anchor="middle">optimal paths (%)</text>']
    for y in range(0, 101, 20):
        out.append(f'<line x1="{m}" y1="{sy(y)}" x2="{w-m}" y2="{sy(y)}" stroke="#ddd"/>')
        out.append(f'<text x="{m-6}" y="{sy(y)+4}" text-anchor="end">{y}</text>')
    step = 4 if xmax > 12 else 2
    for x in range(0, int(xmax) + 1, step):
        out.append(f'<text x="{sx(x)}" y="{h-m+16}" text-anchor="middle">{x}</text>')
    out.append(f'<line x1="{sx(24)}" y1="{m}" x2="{sx(24)}" y2="{h-m}" stroke="#999" stroke-dasharray="4"/>' if xmax > 24 else "")
    out.append(f'<line x1="{m}" y1="{sy(80)}" x2="{w-m}" y2="{sy(80)}" stroke="#999" stroke-dasharray="4"/>')
    for i, (label, pts, color) in enumerate(series):
        p = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _ in pts)
        out.append(f'<polyline points="{p}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y, _ in pts:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}"/>')
        out.append(f'<text x="{m+10}" y="{m+16+16*i}" fill="{color}">{label}</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    run, logs, out = Path(sys.argv[1]), sys.argv[2].split(","), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    series = [("trldm", trldm_points(run), "#c0392b")]
    colors = ["#2c3e50", "#2980b9", "#27ae60", "#8e44ad"]
    for i, log in enumerate(logs):
        pts, steps = ref_points(Path(log))
        label = "reference (eager PyTorch)"
        if len(logs) > 1:
            label = f"reference (eager PyTorch, {steps} steps)"
        series.append((label, pts, colors[i % len(colors)]))
    with open(out / "curve.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["tool", "minutes", "optimal_pct", "test_mazes"])
        for label, pts, _ in series:
            for x, y, n in pts:
                wr.writerow([label, f"{x:.2f}", f"{y:.1f}", n if n else 500])
    svg(series, out / "curve.svg")
    for label, pts, _ in series:
        print(label, " ".join(f"{x:.1f}min:{y:.1f}%" for x, y, _ in pts))


if __name__ == "__main__":
    main()
