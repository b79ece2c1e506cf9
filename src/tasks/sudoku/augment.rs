//! The HRM/TRM augmentations and the Sudoku-Extreme subsample protocol.
use super::*;
use crate::tasks::Pair;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random order of the `n*n` rows (or columns): the bands (stacks) are
/// shuffled, then the rows inside each band.
fn line_order(n: usize, rng: &mut impl Rng) -> Vec<usize> {
    let mut bands: Vec<usize> = (0..n).collect();
    bands.shuffle(rng);
    let mut order = Vec::with_capacity(n * n);
    for band in bands {
        let mut inner: Vec<usize> = (0..n).collect();
        inner.shuffle(rng);
        order.extend(inner.into_iter().map(|r| band * n + r));
    }
    order
}

/// The HRM/TRM Sudoku augmentation, applied identically to question and
/// answer (docs/FACTS.md, "Augmentations"): permute the digits `1..=N`, transpose
/// with probability 0.5, shuffle the bands and the rows inside each band,
/// and the stacks and the columns inside each stack. Validity and the number
/// of solutions are preserved. Grids not of box size `n` are returned as is.
pub fn augment(pair: &Pair, n: usize, rng: &mut impl Rng) -> Pair {
    let side = n * n;
    let cells = side * side;
    if pair.question.len() != cells || pair.answer.len() != cells {
        return pair.clone();
    }
    let mut digits: Vec<u8> = (1..=side as u8).collect();
    digits.shuffle(rng);
    let transpose = rng.gen_bool(0.5);
    let rows = line_order(n, rng);
    let cols = line_order(n, rng);
    let map = |g: &[u8]| -> Vec<u8> {
        (0..cells)
            .map(|i| {
                let (r, c) = (rows[i / side], cols[i % side]);
                let src = if transpose {
                    c * side + r
                } else {
                    r * side + c
                };
                match g[src] {
                    0 => 0,
                    v => digits.get(usize::from(v) - 1).copied().unwrap_or(v),
                }
            })
            .collect()
    };
    Pair {
        question: map(&pair.question),
        answer: map(&pair.answer),
    }
}

/// The few-shot training protocol of Sudoku-Extreme (HRM/TRM: 1000 puzzles ×
/// 1000 augmentations): choose `k` puzzles at random (all, in order, when
/// `k >= pairs.len()`; else in their original order) and emit `a` copies of
/// each: the **original counts as the first copy**, followed by `a - 1`
/// augmented ones ([`augment`]). `a = 1` gives the originals only, `a = 0`
/// nothing. Deterministic from `seed`; the box size is inferred per pair.
pub fn subsample_augment(pairs: &[Pair], k: usize, a: usize, seed: u64) -> Vec<Pair> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let chosen: Vec<usize> = if k >= pairs.len() {
        (0..pairs.len()).collect()
    } else {
        let mut idx = rand::seq::index::sample(&mut rng, pairs.len(), k).into_vec();
        idx.sort_unstable();
        idx
    };
    let mut out = Vec::with_capacity(chosen.len() * a);
    for i in chosen {
        let pair = &pairs[i];
        if a == 0 {
            continue;
        }
        out.push(pair.clone());
        let n = infer_box(pair.question.len()).unwrap_or(0);
        for _ in 1..a {
            out.push(augment(pair, n, &mut rng));
        }
    }
    out
}
