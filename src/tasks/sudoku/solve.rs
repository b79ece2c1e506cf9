//! The exact solver (constraint propagation and search).
use std::sync::OnceLock;

/// What the solver found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solution {
    /// Solutions found, at most the `limit` asked for.
    pub count: usize,
    /// The first solution found.
    pub first: Option<Vec<u8>>,
    /// Branching trials: every candidate tried at a branch point counts one
    /// (0 when singles alone solve or refute the puzzle).
    pub guesses: u64,
}

impl Solution {
    fn none() -> Self {
        Solution {
            count: 0,
            first: None,
            guesses: 0,
        }
    }
}

/// Counts the solutions of `g` (box size `n`) up to `limit` (0 counts as 1).
///
/// Bitmask constraint propagation (naked and hidden singles) with
/// minimum-remaining-values branching. A grid of the wrong length, an
/// unsupported box size, a code out of range or clashing givens give 0
/// solutions, never a panic.
pub fn solve(g: &[u8], n: usize, limit: usize) -> Solution {
    solve_seeded(g, n, limit, 0)
}

/// [`solve`] that tries the candidates of a branch point in an order drawn
/// from `seed` (0: lowest digit first). Used to build random full grids.
pub(super) fn solve_seeded(g: &[u8], n: usize, limit: usize, seed: u64) -> Solution {
    match n {
        2 => Search::<4, 16>::run(g, limit, seed),
        3 => Search::<9, 81>::run(g, limit, seed),
        4 => Search::<16, 256>::run(g, limit, seed),
        5 => Search::<25, 625>::run(g, limit, seed),
        _ => Solution::none(),
    }
}

/// The box size of a grid side (`side = n*n`).
const fn box_of(side: usize) -> usize {
    let mut n = 1;
    while n * n < side {
        n += 1;
    }
    n
}

/// Flag bit of a candidate mask: the cell holds its (single) digit.
const ASSIGNED: u32 = 1 << 31;

/// Unit and peer lists of one grid size, built once.
struct Tables {
    /// `3*N` units of `N` cells: rows, then columns, then boxes.
    units: Vec<u16>,
    /// The peers of each cell (same row, column or box), `stride` per cell.
    peers: Vec<u16>,
    stride: usize,
}

impl Tables {
    fn build(n: usize) -> Tables {
        let side = n * n;
        let cells = side * side;
        let mut units = Vec::with_capacity(3 * cells);
        for r in 0..side {
            units.extend((0..side).map(|c| (r * side + c) as u16));
        }
        for c in 0..side {
            units.extend((0..side).map(|r| (r * side + c) as u16));
        }
        for b in 0..side {
            let (r0, c0) = (b / n * n, b % n * n);
            units.extend((0..side).map(|k| ((r0 + k / n) * side + c0 + k % n) as u16));
        }
        let stride = 3 * side - 2 * n - 1;
        let mut peers = Vec::with_capacity(cells * stride);
        for cell in 0..cells {
            let (r, c) = (cell / side, cell % side);
            let b = r / n * n + c / n;
            let mut mine: Vec<u16> = [r, side + c, 2 * side + b]
                .iter()
                .flat_map(|&u| units[u * side..(u + 1) * side].iter().copied())
                .filter(|&p| usize::from(p) != cell)
                .collect();
            mine.sort_unstable();
            mine.dedup();
            debug_assert_eq!(mine.len(), stride);
            peers.extend(mine);
        }
        Tables {
            units,
            peers,
            stride,
        }
    }

    /// The tables of box size `n` (2..=5).
    fn get(n: usize) -> &'static Tables {
        static TABLES: [OnceLock<Tables>; 6] = [const { OnceLock::new() }; 6];
        TABLES[n].get_or_init(|| Tables::build(n))
    }
}

/// The search state: one candidate mask per cell (bit `d-1` = digit `d`,
/// plus [`ASSIGNED`]) and the number of cells not yet assigned.
#[derive(Clone, Copy)]
struct State<const C: usize> {
    cand: [u32; C],
    open: usize,
}

/// One solver run for side `N` and `C = N*N` cells; nothing is allocated
/// during the search except the first solution.
struct Search<const N: usize, const C: usize> {
    t: &'static Tables,
    /// Cells reduced to one candidate and not yet assigned.
    queue: [u16; C],
    qlen: usize,
    limit: usize,
    count: usize,
    first: Option<Vec<u8>>,
    guesses: u64,
    /// xorshift state for the candidate order; 0 = lowest digit first.
    rng: u64,
}

impl<const N: usize, const C: usize> Search<N, C> {
    const DIGITS: u32 = (1u32 << N) - 1;
    /// The box size `n` (`N = n*n`).
    const B: usize = box_of(N);

    fn run(g: &[u8], limit: usize, seed: u64) -> Solution {
        if g.len() != C {
            return Solution::none();
        }
        let mut search = Search::<N, C> {
            t: Tables::get(Self::B),
            queue: [0; C],
            qlen: 0,
            limit: limit.max(1),
            count: 0,
            first: None,
            guesses: 0,
            rng: seed,
        };
        let mut s = State {
            cand: [Self::DIGITS; C],
            open: C,
        };
        if search.place_givens(&mut s, g) && search.propagate(&mut s) {
            if s.open == 0 {
                search.record(&s);
            } else {
                search.branch(&s);
            }
        }
        Solution {
            count: search.count,
            first: search.first,
            guesses: search.guesses,
        }
    }

    /// Assigns every given; false on a code out of range or a clash.
    fn place_givens(&mut self, s: &mut State<C>, g: &[u8]) -> bool {
        for (cell, &v) in g.iter().enumerate() {
            if v == 0 {
                continue;
            }
            if usize::from(v) > N {
                return false;
            }
            let b = 1u32 << (v - 1);
            if s.cand[cell] & b == 0 || s.cand[cell] & ASSIGNED != 0 || !self.assign(s, cell, b) {
                return false;
            }
        }
        true
    }

    /// Puts digit bit `b` in `cell` and removes it from the peers, queueing
    /// peers left with one candidate; false on a contradiction.
    #[inline]
    fn assign(&mut self, s: &mut State<C>, cell: usize, b: u32) -> bool {
        s.cand[cell] = b | ASSIGNED;
        s.open -= 1;
        let peers = &self.t.peers[cell * self.t.stride..(cell + 1) * self.t.stride];
        for &p in peers {
            let p = usize::from(p);
            let c = s.cand[p];
            if c & b != 0 {
                let rest = c & !b;
                if c & ASSIGNED != 0 || rest == 0 {
                    return false;
                }
                s.cand[p] = rest;
                if rest & (rest - 1) == 0 {
                    self.queue[self.qlen] = p as u16;
                    self.qlen += 1;
                }
            }
        }
        true
    }

    /// Naked and hidden singles to a fixed point; false on a contradiction.
    fn propagate(&mut self, s: &mut State<C>) -> bool {
        loop {
            while self.qlen > 0 {
                self.qlen -= 1;
                let cell = usize::from(self.queue[self.qlen]);
                let c = s.cand[cell];
                if c & ASSIGNED == 0 && !self.assign(s, cell, c) {
                    return false;
                }
            }
            if s.open == 0 {
                return true;
            }
            match self.hidden_singles(s) {
                None => return false,
                Some(true) => continue,
                Some(false) => {}
            }
            match self.locked_candidates(s) {
                None => return false,
                Some(false) => return true,
                Some(true) => {}
            }
        }
    }

    /// Assigns every digit that has one place left in a unit. `None` on a
    /// contradiction (a digit with no place), else whether anything changed.
    fn hidden_singles(&mut self, s: &mut State<C>) -> Option<bool> {
        let mut changed = false;
        for u in 0..3 * N {
            let unit = &self.t.units[u * N..(u + 1) * N];
            let (mut once, mut twice, mut placed) = (0u32, 0u32, 0u32);
            for &i in unit {
                let c = s.cand[usize::from(i)];
                twice |= once & c;
                once |= c;
                // All ones when the cell is assigned, else zero.
                placed |= c & 0u32.wrapping_sub(c >> 31);
            }
            if once & Self::DIGITS != Self::DIGITS {
                return None;
            }
            let mut hidden = once & !twice & !placed & Self::DIGITS;
            while hidden != 0 {
                let b = hidden & hidden.wrapping_neg();
                hidden ^= b;
                let cell = unit
                    .iter()
                    .map(|&i| usize::from(i))
                    .find(|&i| s.cand[i] & b != 0)?;
                if s.cand[cell] & ASSIGNED != 0 {
                    continue;
                }
                if !self.assign(s, cell, b) {
                    return None;
                }
                changed = true;
            }
        }
        Some(changed)
    }

    /// Removes `mask` from an open cell; `None` on a contradiction, else
    /// whether anything was removed.
    #[inline]
    fn eliminate(&mut self, s: &mut State<C>, cell: usize, mask: u32) -> Option<bool> {
        let c = s.cand[cell];
        if c & ASSIGNED != 0 || c & mask == 0 {
            return Some(false);
        }
        let rest = c & !mask;
        if rest == 0 {
            return None;
        }
        s.cand[cell] = rest;
        if rest & (rest - 1) == 0 {
            self.queue[self.qlen] = cell as u16;
            self.qlen += 1;
        }
        Some(true)
    }

    /// Locked candidates where a box meets a row or column: a digit of the
    /// box confined to one line segment leaves the rest of the line
    /// (pointing), a digit of the line confined to the box leaves the rest of
    /// the box (claiming). `None` on a contradiction, else whether anything
    /// changed.
    fn locked_candidates(&mut self, s: &mut State<C>) -> Option<bool> {
        let mut changed = false;
        for by_rows in [true, false] {
            // Cell `i` of line `l` (a row, or a column when `!by_rows`).
            let at = |l: usize, i: usize| if by_rows { l * N + i } else { i * N + l };
            // seg[l * B + k]: candidates of line `l` inside the k-th box it crosses.
            let mut seg = [0u32; 125];
            for l in 0..N {
                for k in 0..Self::B {
                    seg[l * Self::B + k] = (k * Self::B..(k + 1) * Self::B)
                        .fold(0, |acc, i| acc | s.cand[at(l, i)])
                        & Self::DIGITS;
                }
            }
            for l in 0..N {
                let band = l / Self::B * Self::B;
                for k in 0..Self::B {
                    let here = seg[l * Self::B + k];
                    let line_rest = (0..Self::B)
                        .filter(|&j| j != k)
                        .fold(0, |acc, j| acc | seg[l * Self::B + j]);
                    let box_rest = (band..band + Self::B)
                        .filter(|&m| m != l)
                        .fold(0, |acc, m| acc | seg[m * Self::B + k]);
                    let pointing = here & !box_rest & line_rest;
                    if pointing != 0 {
                        for i in (0..N).filter(|i| i / Self::B != k) {
                            changed |= self.eliminate(s, at(l, i), pointing)?;
                        }
                    }
                    let claiming = here & !line_rest & box_rest;
                    if claiming != 0 {
                        for m in (band..band + Self::B).filter(|&m| m != l) {
                            for i in k * Self::B..(k + 1) * Self::B {
                                changed |= self.eliminate(s, at(m, i), claiming)?;
                            }
                        }
                    }
                }
            }
        }
        Some(changed)
    }

    /// Branches on the open cell with the fewest candidates (MRV).
    fn branch(&mut self, s: &State<C>) {
        let (mut best, mut fewest) = (0, u32::MAX);
        for (i, &c) in s.cand.iter().enumerate() {
            if c & ASSIGNED == 0 {
                let k = c.count_ones();
                if k < fewest {
                    (best, fewest) = (i, k);
                    if k <= 2 {
                        break;
                    }
                }
            }
        }
        let rot = self.next_rotation();
        let mut mask = s.cand[best];
        while mask != 0 {
            let b = Self::pick(mask, rot);
            mask ^= b;
            self.guesses += 1;
            let mut child = *s;
            self.qlen = 0;
            if self.assign(&mut child, best, b) && self.propagate(&mut child) {
                if child.open == 0 {
                    self.record(&child);
                } else {
                    self.branch(&child);
                }
            }
            if self.count >= self.limit {
                return;
            }
        }
    }

    /// A rotation of the digit order for the next branch point.
    fn next_rotation(&mut self) -> u32 {
        if self.rng == 0 {
            return 0;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % N as u64) as u32
    }

    /// The first candidate bit of `mask` at or after digit bit `rot` (cyclically).
    #[inline]
    fn pick(mask: u32, rot: u32) -> u32 {
        if rot == 0 {
            return mask & mask.wrapping_neg();
        }
        let rotated = ((mask >> rot) | (mask << (N as u32 - rot))) & Self::DIGITS;
        let pos = (rotated.trailing_zeros() + rot) % N as u32;
        1 << pos
    }

    fn record(&mut self, s: &State<C>) {
        self.count += 1;
        if self.first.is_none() {
            let grid = s
                .cand
                .iter()
                .map(|&c| ((c & Self::DIGITS).trailing_zeros() + 1) as u8)
                .collect();
            self.first = Some(grid);
        }
    }
}
