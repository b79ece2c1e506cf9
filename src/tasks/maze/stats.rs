//! Data statistics.
use super::*;
use crate::tasks::Loaded;

/// A text summary of loaded mazes: count, size, wall fraction, shortest-path
/// length (min/mean/max and a histogram) and mean number of shortest paths.
pub fn stats(loaded: &Loaded, h: usize, w: usize) -> String {
    let n = loaded.pairs.len();
    let mut out = format!("mazes: {n} ({h}x{w})\n");
    if n == 0 || h * w == 0 {
        return out;
    }
    let cells = (h * w) as f64;
    let wall_frac = loaded
        .pairs
        .iter()
        .map(|p| p.question.iter().filter(|&&c| c == WALL).count() as f64 / cells)
        .sum::<f64>()
        / n as f64;
    out += &format!("wall fraction: mean {wall_frac:.3}\n");
    let lens: Vec<usize> = loaded
        .pairs
        .iter()
        .filter_map(|p| shortest_len(&p.question, h, w))
        .collect();
    if lens.len() < n {
        out += &format!("no path: {}\n", n - lens.len());
    }
    if lens.is_empty() {
        return out;
    }
    let (min, max) = (
        lens.iter().min().copied().unwrap_or(0),
        lens.iter().max().copied().unwrap_or(0),
    );
    let mean = lens.iter().sum::<usize>() as f64 / lens.len() as f64;
    out += &format!("shortest path (moves): min {min}, mean {mean:.1}, max {max}\n");
    out += &histogram(&lens, min, max);
    let n_paths: f64 = loaded
        .pairs
        .iter()
        .map(|p| count_shortest_paths(&p.question, h, w) as f64)
        .sum();
    out += &format!("shortest paths per maze: mean {:.1}\n", n_paths / n as f64);
    out
}

/// A text histogram of `values` in `[min, max]`, at most 10 bins of bars.
fn histogram(values: &[usize], min: usize, max: usize) -> String {
    const BINS: usize = 10;
    const BAR: usize = 40;
    let width = (max - min) / BINS + 1;
    let mut counts = vec![0usize; (max - min) / width + 1];
    for &v in values {
        counts[(v - min) / width] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut out = String::new();
    for (b, &c) in counts.iter().enumerate() {
        let lo = min + b * width;
        let bar = "#".repeat((c * BAR).div_ceil(top));
        out += &format!("  {:>4}-{:<4} {:>7} {bar}\n", lo, lo + width - 1, c);
    }
    out
}
