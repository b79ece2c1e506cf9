//! The paper's metrics (Table 4) and data statistics.
use super::*;
use crate::tasks::{Loaded, Score};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The paper's per-puzzle metrics (Table 4): `exact` when the prediction
/// equals the answer, `valid` when it is a legal solution of the question
/// ([`is_valid_solution`]; blanks or codes out of range are invalid).
pub fn score(question: &[u8], pred: &[u8], answer: &[u8], n: usize) -> Score {
    Score {
        exact: pred == answer,
        valid: is_valid_solution(question, pred, n),
        optimal: None,
        len_ratio: None,
    }
}

/// Min, mean and max of a non-empty list.
fn summary(values: &[u64]) -> (u64, f64, u64) {
    let min = values.iter().copied().min().unwrap_or(0);
    let max = values.iter().copied().max().unwrap_or(0);
    let mean = values.iter().sum::<u64>() as f64 / values.len().max(1) as f64;
    (min, mean, max)
}

/// A text histogram of values, in at most 20 bins.
fn histogram(values: &[u64]) -> String {
    let (min, _, max) = summary(values);
    let width = (max - min) / 20 + 1;
    let mut bins: BTreeMap<u64, usize> = BTreeMap::new();
    for &v in values {
        *bins.entry((v - min) / width).or_default() += 1;
    }
    let top = bins.values().copied().max().unwrap_or(1);
    let mut out = String::new();
    for (bin, count) in bins {
        let lo = min + bin * width;
        let label = if width == 1 {
            format!("{lo}")
        } else {
            format!("{lo}-{}", lo + width - 1)
        };
        let bar = "#".repeat((count * 40).div_ceil(top));
        let _ = writeln!(out, "  {label:>9} | {bar} {count}");
    }
    out
}

/// A short report on loaded puzzles: count, skipped rows by kind, clue
/// counts (min/mean/max and a histogram), difficulty as solver guesses
/// (min/median/mean/max) and the sources.
pub fn stats(loaded: &Loaded, n: usize) -> String {
    let side = n * n;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "puzzles: {} ({side}x{side}), skipped: {}",
        loaded.pairs.len(),
        loaded.n_skipped()
    );
    for (kind, count) in &loaded.skipped {
        let _ = writeln!(out, "  skipped {}: {count}", kind.name());
    }
    if loaded.pairs.is_empty() {
        return out;
    }
    let clues: Vec<u64> = loaded
        .pairs
        .iter()
        .map(|p| p.question.iter().filter(|&&c| c != 0).count() as u64)
        .collect();
    let (min, mean, max) = summary(&clues);
    let _ = writeln!(out, "clues: min {min}, mean {mean:.1}, max {max}");
    out.push_str(&histogram(&clues));
    let mut guesses: Vec<u64> = loaded
        .pairs
        .iter()
        .map(|p| solve(&p.question, n, 1).guesses)
        .collect();
    guesses.sort_unstable();
    let (min, mean, max) = summary(&guesses);
    let median = guesses[guesses.len() / 2];
    let _ = writeln!(
        out,
        "difficulty (solver guesses): min {min}, median {median}, mean {mean:.1}, max {max}"
    );
    let mut sources: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &loaded.sources {
        *sources.entry(s.as_str()).or_default() += 1;
    }
    let _ = writeln!(out, "sources:");
    for (s, count) in sources {
        let _ = writeln!(out, "  {s}: {count}");
    }
    out
}
