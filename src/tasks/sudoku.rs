//! Sudoku(-Extreme): grid format, exact solver, validity, loading, generator,
//! augmentations and metrics (paper Sec. 9.2, Table 4; docs/FACTS.md,
//! "Data formats", "Augmentations").
//!
//! # Cell codes
//! A grid is a `Vec<u8>` of `N*N` cells in row-major order, where `N = n*n`
//! for the box size `n` (2, 3, 4, 5: 4x4, 9x9, 16x16, 25x25 grids).
//! Code 0 is a blank, codes `1..=N` are digits.
//!
//! # Text form
//! One character per cell: `.` or `0` = blank, `1`..`9` = 1..9 and, for
//! `N > 9`, `A` = 10, `B` = 11, ... (lower case is accepted when reading).
//! Blanks are written as `.`. The box size follows from the length
//! (16, 81, 256, 625 characters) unless it is given.
//!
//! # Files
//! The HRM/TRM CSV layout `source,question,answer,rating` (see [`csvio`]);
//! an empty or missing answer is solved on load. Plain files hold one
//! puzzle per line (see [`load_plain`]).
use super::csvio::{self, CsvRow};
use super::{LoadOptions, Loaded, Pair, Problem, ProblemKind, Score};
use anyhow::Result;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

/// Box sizes the solver and generator support (4x4 up to 25x25 grids).
pub const BOX_SIZES: [usize; 4] = [2, 3, 4, 5];

// ---------------------------------------------------------------------------
// Text form
// ---------------------------------------------------------------------------

/// The box size whose grid has `len` cells: 16 → 2, 81 → 3, 256 → 4, 625 → 5.
pub fn infer_box(len: usize) -> Option<usize> {
    BOX_SIZES.into_iter().find(|&n| n.pow(4) == len)
}

/// The cell code of one character in a grid of side `side`, if legal.
fn cell_code(ch: char, side: usize) -> Option<u8> {
    let code = match ch {
        '.' | '0' => 0,
        '1'..='9' => ch as u8 - b'0',
        'A'..='Z' => ch as u8 - b'A' + 10,
        'a'..='z' => ch as u8 - b'a' + 10,
        _ => return None,
    };
    (usize::from(code) <= side).then_some(code)
}

/// The character of one cell code (`.` for blank, `?` for a code out of range).
fn code_char(code: u8) -> char {
    match code {
        0 => '.',
        1..=9 => char::from(b'0' + code),
        10..=35 => char::from(b'A' + code - 10),
        _ => '?',
    }
}

/// Parses a grid of box size `n` from its text form.
///
/// Fails with `WrongLength` when the string does not have `n^4` characters and
/// with `UnknownChar` (naming the 1-based position, row and column) when a
/// character is not a cell of an `n*n` grid (e.g. `A` in a 9x9 grid).
pub fn parse_grid(s: &str, n: usize) -> Result<Vec<u8>, Problem> {
    let side = n * n;
    let cells = side * side;
    let len = s.chars().count();
    if len != cells {
        return Err(Problem::new(
            ProblemKind::WrongLength,
            format!("{len} characters, expected {cells} for a {side}x{side} grid"),
        ));
    }
    s.chars()
        .enumerate()
        .map(|(i, ch)| {
            cell_code(ch, side).ok_or_else(|| {
                Problem::new(
                    ProblemKind::UnknownChar,
                    format!(
                        "character {ch:?} at position {} (row {}, column {}) is not a cell of a {side}x{side} grid",
                        i + 1,
                        i / side + 1,
                        i % side + 1
                    ),
                )
            })
        })
        .collect()
}

/// The text form of a grid (blanks as `.`); `n` is the box size.
pub fn format_grid(g: &[u8], n: usize) -> String {
    let _ = n; // one character per cell whatever the size
    g.iter().map(|&c| code_char(c)).collect()
}

/// A multi-line picture of a grid with box separators, for `trldm solve`:
///
/// ```text
/// 5 3 . | . 7 . | . . .
/// 6 . . | 1 9 5 | . . .
/// ------+-------+------
/// ```
pub fn pretty(g: &[u8], n: usize) -> String {
    let side = n * n;
    if n == 0 || g.len() != side * side {
        return format_grid(g, n);
    }
    let rule = vec!["-".repeat(2 * n - 1); n].join("-+-");
    let mut out = String::new();
    for r in 0..side {
        if r > 0 && r % n == 0 {
            out.push_str(&rule);
            out.push('\n');
        }
        let row = &g[r * side..(r + 1) * side];
        let boxes: Vec<String> = row
            .chunks(n)
            .map(|b| {
                let cells: Vec<String> = b.iter().map(|&c| code_char(c).to_string()).collect();
                cells.join(" ")
            })
            .collect();
        out.push_str(&boxes.join(" | "));
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------
// Exact solver
// ---------------------------------------------------------------------------

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
fn solve_seeded(g: &[u8], n: usize, limit: usize, seed: u64) -> Solution {
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

// ---------------------------------------------------------------------------
// Validity
// ---------------------------------------------------------------------------

/// Cells of unit `u` of a grid of box size `n`: rows, then columns, then boxes.
fn unit_cells(n: usize, u: usize) -> impl Iterator<Item = usize> {
    let side = n * n;
    let (kind, k) = (u / side, u % side);
    (0..side).map(move |j| match kind {
        0 => k * side + j,
        1 => j * side + k,
        _ => (k / n * n + j / n) * side + k % n * n + j % n,
    })
}

/// The name of unit `u` for messages (`row 3`, `column 5`, `box 2`, 1-based).
fn unit_name(n: usize, u: usize) -> String {
    let side = n * n;
    let kind = ["row", "column", "box"][(u / side).min(2)];
    format!("{kind} {}", u % side + 1)
}

/// `row R, column C` (1-based) of a cell.
fn cell_name(n: usize, cell: usize) -> String {
    let side = (n * n).max(1);
    format!("row {}, column {}", cell / side + 1, cell % side + 1)
}

/// The first reason `answer` is not a solution of `question`, if any.
fn violation(question: &[u8], answer: &[u8], n: usize) -> Option<Problem> {
    let side = n * n;
    let cells = side * side;
    if question.len() != cells || answer.len() != cells {
        return Some(Problem::new(
            ProblemKind::WrongLength,
            format!(
                "question has {} cells, answer {}, expected {cells}",
                question.len(),
                answer.len()
            ),
        ));
    }
    if let Some(i) =
        (0..cells).find(|&i| question[i] != 0 && answer[i] != 0 && answer[i] != question[i])
    {
        return Some(Problem::new(
            ProblemKind::ContradictsGivens,
            format!(
                "{}: given {} but answer {}",
                cell_name(n, i),
                code_char(question[i]),
                code_char(answer[i])
            ),
        ));
    }
    if let Some(i) = (0..cells).find(|&i| answer[i] == 0 || usize::from(answer[i]) > side) {
        let what = if answer[i] == 0 {
            "blank"
        } else {
            "out of range"
        };
        return Some(Problem::new(
            ProblemKind::InvalidAnswer,
            format!("{}: {what} cell in the answer", cell_name(n, i)),
        ));
    }
    if side > 64 {
        return Some(Problem::new(ProblemKind::InvalidAnswer, "grid too large"));
    }
    for u in 0..3 * side {
        let mut seen = 0u64;
        for i in unit_cells(n, u) {
            let b = 1u64 << (answer[i] - 1);
            if seen & b != 0 {
                return Some(Problem::new(
                    ProblemKind::InvalidAnswer,
                    format!("{} has {} twice", unit_name(n, u), code_char(answer[i])),
                ));
            }
            seen |= b;
        }
    }
    None
}

/// Whether `answer` is a legal solution of `question`: every row, column and
/// box is a permutation of `1..=N` and every given is kept (the paper's
/// "Valid"). Wrong lengths, blanks or codes out of range give false.
pub fn is_valid_solution(question: &[u8], answer: &[u8], n: usize) -> bool {
    violation(question, answer, n).is_none()
}

/// Checks a question/answer pair: `ContradictsGivens` when the answer changes
/// a given, `InvalidAnswer` when it has blanks or breaks a constraint. With
/// `verify`, the question is also solved: `Unsolvable` (no solution) or
/// `MultipleSolutions` (two or more).
pub fn check_pair(q: &[u8], a: &[u8], n: usize, verify: bool) -> Result<(), Problem> {
    if let Some(problem) = violation(q, a, n) {
        return Err(problem);
    }
    if verify {
        unique_solution(q, n)?;
    }
    Ok(())
}

/// The unique solution of `q`, or `Unsolvable` / `MultipleSolutions`.
pub fn unique_solution(q: &[u8], n: usize) -> Result<Vec<u8>, Problem> {
    let sol = solve(q, n, 2);
    match (sol.count, sol.first) {
        (1, Some(first)) => Ok(first),
        (0, _) => Err(Problem::new(
            ProblemKind::Unsolvable,
            "the question has no solution",
        )),
        _ => Err(Problem::new(
            ProblemKind::MultipleSolutions,
            "the question has more than one solution",
        )),
    }
}

// ---------------------------------------------------------------------------
// Loading and writing
// ---------------------------------------------------------------------------

/// Prefixes the detail of a problem with the column it came from.
fn in_column(column: &str, p: Problem) -> Problem {
    Problem::new(p.kind, format!("{column}: {}", p.detail))
}

/// The box size of a file: the one given, else the one of its first row that
/// has a Sudoku length (later rows must match it).
fn resolve_box(fixed: &mut Option<usize>, question: &str) -> Result<usize, Problem> {
    if let Some(n) = *fixed {
        return Ok(n);
    }
    let len = question.chars().count();
    let n = infer_box(len).ok_or_else(|| {
        Problem::new(
            ProblemKind::WrongLength,
            format!("question: {len} characters; a Sudoku grid has 16, 81, 256 or 625"),
        )
    })?;
    *fixed = Some(n);
    Ok(n)
}

/// Builds one pair from the text of a question and an optional answer; an
/// empty or missing answer is solved (and must be unique).
fn pair_from_text(
    question: &str,
    answer: Option<&str>,
    n: usize,
    verify: bool,
) -> Result<Pair, Problem> {
    let q = parse_grid(question, n).map_err(|p| in_column("question", p))?;
    match answer.map(str::trim).filter(|a| !a.is_empty()) {
        Some(text) => {
            let a = parse_grid(text, n).map_err(|p| in_column("answer", p))?;
            check_pair(&q, &a, n, verify)?;
            Ok(Pair {
                question: q,
                answer: a,
            })
        }
        None => Ok(Pair {
            answer: unique_solution(&q, n)?,
            question: q,
        }),
    }
}

/// Loads a Sudoku CSV (`source,question,answer,rating`; only `question` is
/// required). `n` fixes the box size; `None` infers it from the first row.
/// Empty answers are solved. Bad rows fail with `file:line: kind: detail`,
/// or are skipped and counted with `opts.skip_invalid`; `opts.verify` also
/// checks that every question has exactly one solution.
pub fn load_csv(path: &Path, n: Option<usize>, opts: LoadOptions) -> Result<Loaded> {
    let rows = csvio::read_rows(path, false)?;
    load_rows(&rows, path, n, opts)
}

/// As [`load_csv`], from CSV text in memory (`path` names it in errors).
pub fn load_csv_str(
    text: &str,
    path: &Path,
    n: Option<usize>,
    opts: LoadOptions,
) -> Result<Loaded> {
    let rows = csvio::parse_rows(text, path, false)?;
    load_rows(&rows, path, n, opts)
}

fn load_rows(
    rows: &[CsvRow],
    path: &Path,
    mut n: Option<usize>,
    opts: LoadOptions,
) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    for row in rows {
        let question = row.question.trim();
        let pair = resolve_box(&mut n, question)
            .and_then(|b| pair_from_text(question, row.answer.as_deref(), b, opts.verify));
        loaded.push(opts, path, row.line, &row.source, pair)?;
    }
    Ok(loaded)
}

/// Loads a plain puzzle file: one puzzle per line as `question [answer]`
/// (whitespace-separated; further fields are ignored), `#` comments and
/// blank lines skipped. Missing answers are solved. The source of every row
/// is the file stem. Errors as in [`load_csv`]; a file without puzzles fails.
pub fn load_plain(path: &Path, n: Option<usize>, opts: LoadOptions) -> Result<Loaded> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    load_plain_str(&text, path, n, opts)
}

/// As [`load_plain`], from text in memory (`path` names it in errors).
pub fn load_plain_str(
    text: &str,
    path: &Path,
    mut n: Option<usize>,
    opts: LoadOptions,
) -> Result<Loaded> {
    let source = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut loaded = Loaded::default();
    let mut rows = 0;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        rows += 1;
        let mut fields = line.split_whitespace();
        let question = fields.next().unwrap_or("");
        let answer = fields.next();
        let pair = resolve_box(&mut n, question)
            .and_then(|b| pair_from_text(question, answer, b, opts.verify));
        loaded.push(opts, path, i + 1, &source, pair)?;
    }
    if rows == 0 {
        anyhow::bail!(
            "{}: no puzzles (empty file or only comments)",
            path.display()
        );
    }
    Ok(loaded)
}

/// Whether text is CSV: its first line that is neither blank nor a `#`
/// comment has a comma and a `question` field.
fn looks_like_csv(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l.contains(','))
}

/// Loads CSV ([`load_csv`]) or plain text ([`load_plain`]), whichever the
/// first non-comment line shows: a comma means CSV (whose header must then
/// name a `question` column), otherwise one puzzle per line.
pub fn load_any(path: &Path, n: Option<usize>, opts: LoadOptions) -> Result<Loaded> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    if looks_like_csv(&text) || text.trim().is_empty() {
        load_csv_str(&text, path, n, opts)
    } else {
        load_plain_str(&text, path, n, opts)
    }
}

/// One CSV row of a pair (`line` is 0: not from a file).
pub fn to_row(pair: &Pair, n: usize, source: &str, rating: &str) -> CsvRow {
    CsvRow {
        line: 0,
        source: source.to_string(),
        question: format_grid(&pair.question, n),
        answer: Some(format_grid(&pair.answer, n)),
        rating: rating.to_string(),
    }
}

/// Writes pairs as a Sudoku CSV (atomically); the rating column holds the
/// solver's guesses for each question, like the shared data files.
pub fn save_csv(path: &Path, pairs: &[Pair], n: usize, source: &str) -> Result<()> {
    let rows: Vec<CsvRow> = pairs
        .iter()
        .map(|p| {
            let guesses = solve(&p.question, n, 1).guesses;
            to_row(p, n, source, &guesses.to_string())
        })
        .collect();
    csvio::write_rows(path, &rows)
}

// ---------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Augmentations (HRM/TRM)
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Metrics, stats, benchmarks
// ---------------------------------------------------------------------------

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

/// Solver speed over the questions of `pairs` (first solution, one core):
/// puzzles per second and the total guesses.
pub fn bench_solver(pairs: &[Pair], n: usize) -> (f64, u64) {
    let start = Instant::now();
    let mut guesses = 0;
    for p in pairs {
        guesses += std::hint::black_box(solve(&p.question, n, 1)).guesses;
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    (pairs.len() as f64 / secs, guesses)
}

/// Generator speed for 9x9 puzzles with `clues` givens: puzzles per second.
pub fn bench_generate(clues: usize, count: usize, seed: u64) -> f64 {
    let opts = GenOptions {
        n: 3,
        clues,
        min_guesses: None,
        max_guesses: None,
    };
    let start = Instant::now();
    let made = std::hint::black_box(generate_many(&opts, count, seed)).len();
    made as f64 / start.elapsed().as_secs_f64().max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::PathBuf;

    fn shared_dir() -> PathBuf {
        std::env::var("TRLDM_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")))
    }

    fn data_files() -> Vec<PathBuf> {
        let dir = shared_dir().join("data/sudoku");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no CSV in {}", dir.display());
        files
    }

    fn hardest() -> Vec<Pair> {
        let path = shared_dir().join("data/sudoku/forum_hardest_1106.csv");
        load_csv(&path, Some(3), LoadOptions::default())
            .unwrap()
            .pairs
    }

    fn strict() -> LoadOptions {
        LoadOptions {
            skip_invalid: false,
            verify: true,
        }
    }

    fn lenient() -> LoadOptions {
        LoadOptions {
            skip_invalid: true,
            verify: true,
        }
    }

    fn clue_count(g: &[u8]) -> usize {
        g.iter().filter(|&&c| c != 0).count()
    }

    const Q: &str =
        "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";
    const A: &str =
        "534678912672195348198342567859761423426853791713924856961537284287419635345286179";

    #[test]
    fn shared_files_load_verified_and_solver_reproduces_answers() {
        for path in data_files() {
            let loaded = load_csv(&path, None, strict()).unwrap();
            let rows = std::fs::read_to_string(&path).unwrap().lines().count() - 1;
            assert_eq!(loaded.pairs.len(), rows, "{}", path.display());
            assert_eq!(load_any(&path, None, strict()).unwrap().pairs.len(), rows);
            for p in &loaded.pairs {
                let sol = solve(&p.question, 3, 2);
                assert_eq!(sol.count, 1);
                assert_eq!(sol.first.as_ref(), Some(&p.answer));
            }
        }
    }

    #[test]
    fn text_form_round_trips() {
        let q = parse_grid(Q, 3).unwrap();
        assert_eq!(format_grid(&q, 3), Q);
        assert_eq!(parse_grid(&Q.replace('.', "0"), 3).unwrap(), q);
        assert_eq!(infer_box(16), Some(2));
        assert_eq!(infer_box(81), Some(3));
        assert_eq!(infer_box(256), Some(4));
        assert_eq!(infer_box(625), Some(5));
        assert_eq!(infer_box(80), None);
        let big: Vec<u8> = (0..256).map(|i| (i % 17) as u8).collect();
        let text = format_grid(&big, 4);
        assert!(text.contains('G') && text.contains('.'));
        assert_eq!(parse_grid(&text, 4).unwrap(), big);
        assert_eq!(parse_grid(&text.to_lowercase(), 4).unwrap(), big);
        let picture = pretty(&q, 3);
        assert_eq!(picture.lines().count(), 11);
        assert!(picture.starts_with("5 3 . | . 7 . | . . .\n6 . . | 1 9 5 | . . .\n"));
        assert!(picture.contains("------+-------+------"));
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let e = parse_grid(&Q[..80], 3).unwrap_err();
        assert_eq!(e.kind, ProblemKind::WrongLength);
        assert!(e.detail.contains("80 characters, expected 81"), "{e}");
        let bad = format!("{}x{}", &Q[..10], &Q[11..]);
        let e = parse_grid(&bad, 3).unwrap_err();
        assert_eq!(e.kind, ProblemKind::UnknownChar);
        assert!(
            e.detail.contains("'x' at position 11 (row 2, column 2)"),
            "{e}"
        );
        let e = parse_grid(&Q.replace('7', "A"), 3).unwrap_err();
        assert_eq!(e.kind, ProblemKind::UnknownChar);
        assert_eq!(parse_grid("1234341221434321", 2).unwrap()[4], 3);
        assert_eq!(
            parse_grid("5234341221434321", 2).unwrap_err().kind,
            ProblemKind::UnknownChar
        );
    }

    #[test]
    fn solver_handles_bad_and_edge_inputs() {
        let q = parse_grid(Q, 3).unwrap();
        let a = parse_grid(A, 3).unwrap();
        assert_eq!(solve(&q, 3, 2).first, Some(a.clone()));
        assert_eq!(solve(&a, 3, 2).count, 1);
        assert_eq!(solve(&a, 3, 2).guesses, 0);
        assert_eq!(solve(&[0; 81], 3, 5).count, 5);
        assert_eq!(solve(&q[..80], 3, 2).count, 0);
        assert_eq!(solve(&q, 7, 2).count, 0);
        let mut clash = q.clone();
        clash[2] = 5; // 5 already in row 1
        assert_eq!(solve(&clash, 3, 2).count, 0);
        let mut out_of_range = q.clone();
        out_of_range[2] = 10;
        assert_eq!(solve(&out_of_range, 3, 2).count, 0);
        assert_eq!(solve(&[0; 625], 5, 1).count, 1);
    }

    #[test]
    fn generated_9x9_puzzles_are_unique_in_every_band() {
        let mut total = 0;
        for (clues, seed) in [(22, 1), (25, 2), (30, 3), (36, 4)] {
            let opts = GenOptions {
                n: 3,
                clues,
                min_guesses: None,
                max_guesses: None,
            };
            let pairs = generate_many(&opts, 260, seed);
            assert_eq!(pairs.len(), 260);
            for p in &pairs {
                let sol = solve(&p.question, 3, 2);
                assert_eq!(sol.count, 1);
                assert_eq!(sol.first.as_ref(), Some(&p.answer));
                assert!(is_valid_solution(&p.question, &p.answer, 3));
                let k = clue_count(&p.question);
                assert!(
                    k >= clues && (clues < 30 || k == clues),
                    "{k} clues for target {clues}"
                );
            }
            total += pairs.len();
        }
        assert!(total >= 1000);
    }

    #[test]
    fn generation_is_deterministic_and_respects_the_band() {
        let opts = GenOptions {
            n: 3,
            clues: 24,
            min_guesses: Some(1),
            max_guesses: Some(50),
        };
        let a = generate_many(&opts, 20, 7);
        assert_eq!(a, generate_many(&opts, 20, 7));
        assert_ne!(a, generate_many(&opts, 20, 8));
        for p in &a {
            let g = solve(&p.question, 3, 1).guesses;
            assert!((1..=50).contains(&g), "{g} guesses");
        }
    }

    #[test]
    fn other_sizes_generate() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..50 {
            let (p, info) = generate(2, 4, &mut rng);
            assert_eq!(solve(&p.question, 2, 2).count, 1);
            assert!(is_valid_solution(&p.question, &p.answer, 2));
            assert_eq!(info.clues, clue_count(&p.question));
        }
        for _ in 0..2 {
            let (p, info) = generate(4, 150, &mut rng);
            assert_eq!(info.clues, 150);
            assert_eq!(solve(&p.question, 4, 2).count, 1);
            assert!(is_valid_solution(&p.question, &p.answer, 4));
        }
        let full = random_full_grid(5, &mut rng);
        assert!(is_valid_solution(&full, &full, 5));
    }

    #[test]
    fn augmentations_keep_validity_and_uniqueness() {
        let pairs = hardest();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut transposed = 0;
        for p in pairs.iter().take(150) {
            let a = augment(p, 3, &mut rng);
            assert!(is_valid_solution(&a.question, &a.answer, 3));
            assert_eq!(clue_count(&a.question), clue_count(&p.question));
            assert_eq!(solve(&a.question, 3, 2).count, 1);
            transposed += usize::from(a.question != p.question);
        }
        assert!(transposed > 140);
        let again = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            augment(&pairs[0], 3, &mut rng)
        };
        assert_eq!(again(5), again(5));
        assert_ne!(again(5), again(6));
        // 16x16 too.
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (p, _) = generate(4, 200, &mut rng);
        let a = augment(&p, 4, &mut rng);
        assert!(is_valid_solution(&a.question, &a.answer, 4));
    }

    #[test]
    fn subsample_augment_follows_the_protocol() {
        let pairs = hardest();
        let out = subsample_augment(&pairs, 10, 3, 1);
        assert_eq!(out.len(), 30);
        for chunk in out.chunks(3) {
            assert!(pairs.contains(&chunk[0]), "the original comes first");
            for a in chunk {
                assert!(is_valid_solution(&a.question, &a.answer, 3));
            }
        }
        assert_eq!(out, subsample_augment(&pairs, 10, 3, 1));
        assert_ne!(out, subsample_augment(&pairs, 10, 3, 2));
        let originals = subsample_augment(&pairs, 5, 1, 4);
        assert!(originals.iter().all(|p| pairs.contains(p)));
        assert_eq!(subsample_augment(&pairs, 1000, 1, 0), pairs);
        assert!(subsample_augment(&pairs, 3, 0, 0).is_empty());
    }

    #[test]
    fn metrics_by_hand() {
        let q = parse_grid(Q, 3).unwrap();
        let a = parse_grid(A, 3).unwrap();
        let s = score(&q, &a, &a, 3);
        assert!(s.exact && s.valid);
        assert_eq!((s.optimal, s.len_ratio), (None, None));
        // A valid grid (digits 5 and 3 swapped everywhere) that changes givens.
        let swapped: Vec<u8> = a
            .iter()
            .map(|&d| match d {
                5 => 3,
                3 => 5,
                d => d,
            })
            .collect();
        assert!(is_valid_solution(&swapped, &swapped, 3));
        let s = score(&q, &swapped, &a, 3);
        assert!(!s.exact && !s.valid);
        assert_eq!(
            check_pair(&q, &swapped, 3, false).unwrap_err().kind,
            ProblemKind::ContradictsGivens
        );
        // A duplicate in a box (and its row): swap two cells of row 1, box 1.
        let mut dup = a.clone();
        dup[2] = dup[1];
        let s = score(&q, &dup, &a, 3);
        assert!(!s.exact && !s.valid);
        let e = check_pair(&q, &dup, 3, false).unwrap_err();
        assert_eq!(e.kind, ProblemKind::InvalidAnswer);
        assert!(e.detail.contains("twice"), "{e}");
        // A blank, a code out of range, a short grid: invalid, no panic.
        let mut blank = a.clone();
        blank[2] = 0;
        assert!(!score(&q, &blank, &a, 3).valid);
        assert_eq!(
            check_pair(&q, &blank, 3, false).unwrap_err().kind,
            ProblemKind::InvalidAnswer
        );
        let mut high = a.clone();
        high[2] = 200;
        assert!(!score(&q, &high, &a, 3).valid);
        assert!(!score(&q, &a[..80], &a, 3).valid);
        assert!(!score(&q, &a, &a, 9).valid);
    }

    /// Writes `text` as `name` in a fresh temporary folder.
    fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    /// The bad-row cases: (row text, expected kind, expected text in the error).
    fn bad_rows() -> Vec<(String, ProblemKind, &'static str)> {
        let mut changed = A.to_string();
        changed.replace_range(0..1, "4");
        // Two 5s in row 1: no solution.
        let unsolvable = format!("55{}", &Q[2..]);
        // Only the first row given: many solutions.
        let multi = format!("{}{}", &A[..9], ".".repeat(72));
        vec![
            (
                format!("x,{},{A},0", &Q[..80]),
                ProblemKind::WrongLength,
                "wrong length: question: 80 characters",
            ),
            (
                format!("x,{}#{},{A},0", &Q[..5], &Q[6..]),
                ProblemKind::UnknownChar,
                "unknown character: question: character '#' at position 6",
            ),
            (
                format!("x,{Q},{changed},0"),
                ProblemKind::ContradictsGivens,
                "answer contradicts givens: row 1, column 1: given 5 but answer 4",
            ),
            (
                format!("x,{unsolvable},,0"),
                ProblemKind::Unsolvable,
                "unsolvable",
            ),
            (
                format!("x,{multi},,0"),
                ProblemKind::MultipleSolutions,
                "multiple solutions",
            ),
            (
                format!("x,{Q},{},0", &A[..80]),
                ProblemKind::WrongLength,
                "wrong length: answer: 80 characters",
            ),
        ]
    }

    #[test]
    fn bad_rows_name_file_and_line() {
        for (row, kind, text) in bad_rows() {
            let csv = format!("source,question,answer,rating\nok,{Q},{A},0\n{row}\nok,{Q},,0\n");
            let (_dir, path) = temp_file("bad.csv", &csv);
            let err = load_csv(&path, None, strict()).unwrap_err().to_string();
            assert!(err.contains("bad.csv:3: "), "{err}");
            assert!(err.contains(text), "{err} lacks {text}");
            let loaded = load_csv(&path, None, lenient()).unwrap();
            assert_eq!(loaded.pairs.len(), 2);
            assert_eq!(loaded.skipped.get(&kind), Some(&1), "{kind:?}: {err}");
            assert_eq!(loaded.examples[0].line, 3);
        }
    }

    #[test]
    fn skip_invalid_counts_by_kind() {
        let mut csv = format!("source,question,answer,rating\nok,{Q},{A},0\n");
        for (row, _, _) in bad_rows() {
            csv.push_str(&row);
            csv.push('\n');
        }
        let (_dir, path) = temp_file("mixed.csv", &csv);
        let loaded = load_csv(&path, Some(3), lenient()).unwrap();
        assert_eq!(loaded.pairs.len(), 1);
        assert_eq!(loaded.n_skipped(), 6);
        assert_eq!(loaded.skipped[&ProblemKind::WrongLength], 2);
        assert_eq!(loaded.skipped[&ProblemKind::MultipleSolutions], 1);
        let report = stats(&loaded, 3);
        assert!(report.contains("puzzles: 1 (9x9), skipped: 6"), "{report}");
        assert!(report.contains("skipped wrong length: 2"), "{report}");
        // Without verify a unique-looking answer is not checked against the solver.
        let opts = LoadOptions {
            skip_invalid: true,
            verify: false,
        };
        assert_eq!(load_csv(&path, Some(3), opts).unwrap().n_skipped(), 6);
    }

    #[test]
    fn bad_files_name_the_file() {
        let (_d, empty) = temp_file("empty.csv", "");
        let err = load_csv(&empty, None, strict()).unwrap_err().to_string();
        assert!(
            err.contains("empty.csv") && err.contains("empty file"),
            "{err}"
        );
        let err = load_any(&empty, None, strict()).unwrap_err().to_string();
        assert!(err.contains("empty.csv"), "{err}");
        let (_d, no_q) = temp_file("noq.csv", &format!("source,puzzle,answer\nx,{Q},{A}\n"));
        let err = load_csv(&no_q, None, strict()).unwrap_err().to_string();
        assert!(
            err.contains("noq.csv:1: missing column `question`"),
            "{err}"
        );
        let (_d, empty_plain) = temp_file("empty.txt", "# nothing\n\n");
        let err = load_plain(&empty_plain, None, strict())
            .unwrap_err()
            .to_string();
        assert!(err.contains("empty.txt: no puzzles"), "{err}");
        // A file of another size: the box size is inferred, and a fixed one is enforced.
        let err = load_plain_str(&format!("{Q}\n"), Path::new("q.txt"), Some(2), strict())
            .unwrap_err()
            .to_string();
        assert!(err.contains("q.txt:1: wrong length"), "{err}");
    }

    #[test]
    fn plain_files_and_load_any() {
        let text = format!("# a comment\n\n{Q}\n{Q} {A}\n  {}  \n", Q.replace('.', "0"));
        let (_d, path) = temp_file("p.txt", &text);
        let loaded = load_any(&path, None, strict()).unwrap();
        assert_eq!(loaded.pairs.len(), 3);
        assert!(loaded.pairs.iter().all(|p| format_grid(&p.answer, 3) == A));
        assert_eq!(loaded.sources[0], "p");
        let bad = format!("{Q}\n# c\n{}\n", &Q[..79]);
        let err = load_plain_str(&bad, Path::new("p.txt"), None, strict())
            .unwrap_err()
            .to_string();
        assert!(err.contains("p.txt:3: wrong length"), "{err}");
        // 4x4 plain file with inferred box size.
        let small =
            load_plain_str("1.3.3..2.1.34..1\n", Path::new("s.txt"), None, strict()).unwrap();
        assert!(is_valid_solution(
            &small.pairs[0].question,
            &small.pairs[0].answer,
            2
        ));
    }

    #[test]
    fn written_rows_load_back() {
        let pairs = generate_many(
            &GenOptions {
                n: 3,
                clues: 28,
                min_guesses: None,
                max_guesses: None,
            },
            20,
            9,
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gen.csv");
        save_csv(&path, &pairs, 3, "generated").unwrap();
        let loaded = load_any(&path, Some(3), strict()).unwrap();
        assert_eq!(loaded.pairs, pairs);
        assert_eq!(loaded.sources[0], "generated");
        let row = to_row(&pairs[0], 3, "s", "7");
        assert_eq!(row.question.len(), 81);
        assert_eq!(row.rating, "7");
        let report = stats(&loaded, 3);
        assert!(
            report.contains("clues: min 28, mean 28.0, max 28"),
            "{report}"
        );
        assert!(report.contains("generated: 20"), "{report}");
    }

    /// A row text: a real puzzle mutated, or random characters.
    fn row_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[.0-9A-Za-z#x ]{0,90}",
            (0usize..81, "[.0-9A-Z,\"x]{0,3}").prop_map(|(i, s)| format!(
                "{}{s}{}",
                &Q[..i],
                &Q[i + 1..]
            )),
            (0usize..81, 0usize..81).prop_map(|(i, j)| format!(
                "{}{}",
                &A[..i.max(j)],
                &Q[i.max(j)..]
            )),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn parse_never_panics(s in "\\PC{0,100}", n in 0usize..7) {
            let _ = parse_grid(&s, n);
            let _ = infer_box(s.len());
        }

        #[test]
        fn load_never_panics(
            rows in proptest::collection::vec((row_text(), row_text()), 0..6),
            header in prop_oneof![Just("source,question,answer,rating"), Just("question"), Just("question,answer"), Just("a,b")],
            skip in any::<bool>(),
            verify in any::<bool>(),
            junk in "\\PC{0,40}",
        ) {
            let opts = LoadOptions { skip_invalid: skip, verify };
            let mut csv = format!("{header}\n");
            let mut plain = String::new();
            for (q, a) in &rows {
                csv.push_str(&format!("s,{q},{a},1\n"));
                plain.push_str(&format!("{q} {a}\n"));
            }
            let path = Path::new("p.csv");
            for n in [None, Some(3)] {
                let _ = load_csv_str(&csv, path, n, opts);
                let _ = load_csv_str(&junk, path, n, opts);
                let _ = load_plain_str(&plain, path, n, opts);
                let _ = load_plain_str(&junk, path, n, opts);
            }
        }

        #[test]
        fn score_never_panics(pred in proptest::collection::vec(any::<u8>(), 0..90)) {
            let q = parse_grid(Q, 3).unwrap();
            let a = parse_grid(A, 3).unwrap();
            let s = score(&q, &pred, &a, 3);
            prop_assert_eq!(s.exact, pred == a);
        }
    }

    #[test]
    #[ignore = "benchmark: cargo test --release -- --ignored --nocapture"]
    fn bench_report() {
        let dir = shared_dir().join("data/sudoku");
        for f in [
            "forum_hardest_1106.csv",
            "forum_hardest_1905_11plus_3000.csv",
            "magictour_top1465.csv",
            "17clue_1000.csv",
        ] {
            let loaded = load_csv(&dir.join(f), Some(3), LoadOptions::default()).unwrap();
            let (rate, guesses) = bench_solver(&loaded.pairs, 3);
            let per = guesses as f64 / loaded.pairs.len() as f64;
            println!("solve {f}: {rate:.0} puzzles/s, {per:.1} guesses/puzzle");
        }
        for clues in [22, 25, 30, 36] {
            println!(
                "generate 9x9 @{clues}: {:.0} puzzles/s",
                bench_generate(clues, 500, 1)
            );
        }
    }
}
