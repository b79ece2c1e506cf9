//! The puzzle generator.
use super::*;
use crate::tasks::Pair;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What [`generate`] made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenInfo {
    /// Givens left in the question.
    pub clues: usize,
    /// Solver guesses to the first solution (the `rating` of saved rows).
    pub guesses: u64,
}

/// Settings of [`generate_many`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenOptions {
    /// Box size (3 for 9x9).
    pub n: usize,
    /// Target clue count (reached unless no more clues can be removed).
    pub clues: usize,
    /// Keep only puzzles needing at least this many solver guesses.
    pub min_guesses: Option<u64>,
    /// Keep only puzzles needing at most this many solver guesses.
    pub max_guesses: Option<u64>,
}

/// A random full grid of box size `n`: random digits in the first box (for
/// 9x9 in all three diagonal boxes, which never constrain each other and
/// always complete), the rest by the solver with a random candidate order.
///
/// # Panics
/// If `n` is not one of [`BOX_SIZES`].
pub fn random_full_grid(n: usize, rng: &mut impl Rng) -> Vec<u8> {
    assert!(
        BOX_SIZES.contains(&n),
        "Sudoku box size {n} unsupported (2..=5)"
    );
    let side = n * n;
    let seeded_boxes = if n == 3 { n } else { 1 };
    loop {
        let mut g = vec![0u8; side * side];
        for b in 0..seeded_boxes {
            let mut digits: Vec<u8> = (1..=side as u8).collect();
            digits.shuffle(rng);
            for (k, d) in digits.into_iter().enumerate() {
                g[(b * n + k / n) * side + b * n + k % n] = d;
            }
        }
        let seed = rng.gen::<u64>() | 1;
        // Never empty in practice; retried rather than trusted.
        if let Some(full) = solve_seeded(&g, n, 1, seed).first {
            return full;
        }
    }
}

/// A random puzzle of box size `n` with a unique solution: a random full
/// grid, then clues removed in random order while the solution stays
/// unique, until `target_clues` remain or none can be removed.
///
/// # Panics
/// If `n` is not one of [`BOX_SIZES`].
pub fn generate(n: usize, target_clues: usize, rng: &mut impl Rng) -> (Pair, GenInfo) {
    let answer = random_full_grid(n, rng);
    let mut question = answer.clone();
    let mut order: Vec<usize> = (0..question.len()).collect();
    order.shuffle(rng);
    let mut clues = question.len();
    for cell in order {
        if clues <= target_clues {
            break;
        }
        let given = question[cell];
        question[cell] = 0;
        if solve(&question, n, 2).count == 1 {
            clues -= 1;
        } else {
            question[cell] = given;
        }
    }
    let guesses = solve(&question, n, 1).guesses;
    (Pair { question, answer }, GenInfo { clues, guesses })
}

/// `count` puzzles of [`generate`], deterministic from `seed` (ChaCha8),
/// keeping only those whose solver guesses fall in the band. At most
/// `1000 * count` attempts are made, so a band too narrow returns fewer.
///
/// # Panics
/// If `opts.n` is not one of [`BOX_SIZES`].
pub fn generate_many(opts: &GenOptions, count: usize, seed: u64) -> Vec<Pair> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count);
    let mut attempts = 0usize;
    while out.len() < count && attempts < count.saturating_mul(1000) {
        attempts += 1;
        let (pair, info) = generate(opts.n, opts.clues, &mut rng);
        let hard_enough = opts.min_guesses.is_none_or(|m| info.guesses >= m);
        let easy_enough = opts.max_guesses.is_none_or(|m| info.guesses <= m);
        if hard_enough && easy_enough {
            out.push(pair);
        }
    }
    out
}
