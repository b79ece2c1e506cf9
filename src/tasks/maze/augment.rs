//! The 8 dihedral symmetries (Maze-Hard's augmentation).
use super::*;
use crate::tasks::Pair;
use rand::Rng;

/// The 8 symmetries of the square, Maze-Hard's augmentation (docs/FACTS.md,
/// "Augmentations"): `k % 4` quarter turns clockwise, then a
/// left-right mirror when `k >= 4`. Returns the grid and its new (h, w)
/// (swapped for odd `k % 4`). `k` is taken modulo 8.
pub fn transform(grid: &[u8], h: usize, w: usize, k: usize) -> (Vec<u8>, usize, usize) {
    let k = k % 8;
    let (nh, nw) = if k % 2 == 1 { (w, h) } else { (h, w) };
    let mut out = vec![WALL; nh * nw];
    for r in 0..h {
        for c in 0..w {
            let (nr, mut nc) = match k % 4 {
                0 => (r, c),
                1 => (c, h - 1 - r),
                2 => (h - 1 - r, w - 1 - c),
                _ => (w - 1 - c, r),
            };
            if k >= 4 {
                nc = nw - 1 - nc;
            }
            if let Some(v) = grid.get(r * w + c) {
                out[nr * nw + nc] = *v;
            }
        }
    }
    (out, nh, nw)
}

/// The transform undoing `transform(.., k)`: rotations invert to the
/// opposite turn, mirrors are their own inverse.
pub fn inverse(k: usize) -> usize {
    let k = k % 8;
    if k < 4 {
        (4 - k) % 4
    } else {
        k
    }
}

/// The transforms that keep an H x W grid H x W: all 8 when square, else
/// identity, half turn and the two mirrors.
pub fn shape_preserving(h: usize, w: usize) -> &'static [usize] {
    if h == w {
        &[0, 1, 2, 3, 4, 5, 6, 7]
    } else {
        &[0, 2, 4, 6]
    }
}

/// A random dihedral augmentation of a pair (same transform on question and
/// answer). Non-square grids only get the shape-preserving transforms so the
/// result is still H x W.
pub fn augment<R: Rng + ?Sized>(pair: &Pair, h: usize, w: usize, rng: &mut R) -> Pair {
    let ks = shape_preserving(h, w);
    let k = ks[rng.gen_range(0..ks.len())];
    Pair {
        question: transform(&pair.question, h, w, k).0,
        answer: transform(&pair.answer, h, w, k).0,
    }
}
