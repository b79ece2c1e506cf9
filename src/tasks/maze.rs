//! Maze(-Hard): grid format, Searchformer-style generator, BFS shortest
//! paths, dihedral augmentation, data checks and the paper's metrics.
//!
//! * Format (REFERENCE.md "Data formats", Maze-Hard CSV): a grid is H x W
//!   characters in row-major order, `#` wall, ` ` open, `S` start, `G` goal,
//!   `o` path (answers only). 30x30 rows are 900 characters.
//! * Cell codes (this module): [`WALL`] 0, [`OPEN`] 1, [`START`] 2, [`GOAL`] 3,
//!   [`PATH`] 4. The model token map lives in `tokens`, not here.
//! * Tokenization (paper Sec. 7.1): the sequence is the H x W grid, one token
//!   per cell (e.g. 20 x 20 = 400).
//! * Path length convention (as `ref_trldm.py`'s `gen_maze`): the length of a
//!   path is its number of *moves*, i.e. the number of `o` cells + 1.
//! * Metrics (paper Sec. 9, Tables 1 and 5): exact match, valid path, optimal
//!   path and length ratio, see [`score`].
use super::csvio::{self, CsvRow};
use super::{LoadOptions, Loaded, Pair, Problem, ProblemKind, Score};
use anyhow::{bail, Result};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// A wall cell (`#`).
pub const WALL: u8 = 0;
/// An open cell (` `).
pub const OPEN: u8 = 1;
/// The start cell (`S`), exactly one per maze.
pub const START: u8 = 2;
/// The goal cell (`G`), exactly one per maze.
pub const GOAL: u8 = 3;
/// A cell on the answer path (`o`), answers only.
pub const PATH: u8 = 4;
/// Number of cell codes; codes `>= N_CODES` are invalid.
pub const N_CODES: u8 = 5;

/// Neighbour order used by every BFS (down, up, right, left, as `ref_trldm.py`);
/// fixing it makes the chosen shortest path deterministic.
const DIRS: [(isize, isize); 4] = [(1, 0), (-1, 0), (0, 1), (0, -1)];

/// Marks an unreached cell in a distance buffer.
const UNSEEN: u32 = u32::MAX;

// ---------------------------------------------------------------- format --

/// The cell code of a Maze-Hard character (REFERENCE.md "Data formats").
pub fn char_code(c: char) -> Option<u8> {
    match c {
        '#' => Some(WALL),
        ' ' => Some(OPEN),
        'S' => Some(START),
        'G' => Some(GOAL),
        'o' => Some(PATH),
        _ => None,
    }
}

/// The Maze-Hard character of a cell code; `?` for an out-of-range code.
pub fn code_char(code: u8) -> char {
    match code {
        WALL => '#',
        OPEN => ' ',
        START => 'S',
        GOAL => 'G',
        PATH => 'o',
        _ => '?',
    }
}

/// The side of a square grid with `len` cells (81 -> 9, 400 -> 20, 900 -> 30).
pub fn infer_square(len: usize) -> Option<usize> {
    if len == 0 {
        return None;
    }
    let side = (len as f64).sqrt().round() as usize;
    (side * side == len).then_some(side)
}

/// Parses an H x W Maze-Hard string into cell codes. `o` is accepted only
/// when `allow_path` (answers). Errors: `WrongLength`, or `UnknownChar`
/// naming the character and its row/column.
pub fn parse_grid(s: &str, h: usize, w: usize, allow_path: bool) -> Result<Vec<u8>, Problem> {
    let n = s.chars().count();
    if n != h * w {
        return Err(Problem::new(
            ProblemKind::WrongLength,
            format!("expected {} cells ({h}x{w}), got {n}", h * w),
        ));
    }
    let mut grid = Vec::with_capacity(n);
    for (i, c) in s.chars().enumerate() {
        let (r, col) = (i / w.max(1), i % w.max(1));
        match char_code(c) {
            Some(PATH) if !allow_path => {
                return Err(Problem::new(
                    ProblemKind::UnknownChar,
                    format!("path mark 'o' in a question at row {r}, column {col} (index {i})"),
                ))
            }
            Some(code) => grid.push(code),
            None => {
                return Err(Problem::new(
                    ProblemKind::UnknownChar,
                    format!(
                        "{c:?} at row {r}, column {col} (index {i}); expected one of '#', ' ', 'S', 'G', 'o'"
                    ),
                ))
            }
        }
    }
    Ok(grid)
}

/// Formats cell codes as a Maze-Hard string (inverse of [`parse_grid`]).
pub fn format_grid(g: &[u8]) -> String {
    g.iter().map(|&c| code_char(c)).collect()
}

/// A framed multi-line picture of a grid of width `w` (for `trldm solve`).
pub fn pretty(g: &[u8], w: usize) -> String {
    let w = w.max(1);
    let border = format!("+{}+\n", "-".repeat(w));
    let mut out = border.clone();
    for row in g.chunks(w) {
        out.push('|');
        out.extend(row.iter().map(|&c| code_char(c)));
        out.push_str("|\n");
    }
    out.push_str(&border);
    out
}

// ------------------------------------------------------------------- BFS --

/// Whether a cell can be walked on (anything but a wall or an invalid code).
fn passable(code: u8) -> bool {
    code != WALL && code < N_CODES
}

/// Calls `f` on each in-grid 4-neighbour of `cell`, in [`DIRS`] order.
#[inline]
fn for_neighbours(cell: usize, h: usize, w: usize, mut f: impl FnMut(usize)) {
    let (r, c) = ((cell / w) as isize, (cell % w) as isize);
    for (dr, dc) in DIRS {
        let (nr, nc) = (r + dr, c + dc);
        if nr >= 0 && nc >= 0 && (nr as usize) < h && (nc as usize) < w {
            f(nr as usize * w + nc as usize);
        }
    }
}

/// Breadth-first search from `src` over cells where `open[i]`, writing move
/// counts into `dist` (`UNSEEN` when unreachable) and the visit order into
/// `queue`. Allocation-free when the buffers have capacity.
fn bfs(
    open: impl Fn(usize) -> bool,
    h: usize,
    w: usize,
    src: usize,
    dist: &mut Vec<u32>,
    queue: &mut Vec<u32>,
) {
    dist.clear();
    dist.resize(h * w, UNSEEN);
    queue.clear();
    dist[src] = 0;
    queue.push(src as u32);
    let mut head = 0;
    while head < queue.len() {
        let cell = queue[head] as usize;
        head += 1;
        let d = dist[cell] + 1;
        for_neighbours(cell, h, w, |n| {
            if dist[n] == UNSEEN && open(n) {
                dist[n] = d;
                queue.push(n as u32);
            }
        });
    }
}

/// The unique `START` and `GOAL` of a grid, or why not.
fn endpoints(grid: &[u8]) -> Result<(usize, usize), String> {
    let find = |code: u8, name: &str| {
        let mut it = grid
            .iter()
            .enumerate()
            .filter(|(_, &c)| c == code)
            .map(|(i, _)| i);
        match (it.next(), it.count()) {
            (Some(i), 0) => Ok(i),
            (None, _) => Err(format!("no {name}")),
            (Some(_), more) => Err(format!("{} {name} cells (expected 1)", more + 1)),
        }
    };
    Ok((find(START, "start 'S'")?, find(GOAL, "goal 'G'")?))
}

/// BFS distances from the start of a well-formed H x W grid.
fn distances_from_start(
    grid: &[u8],
    h: usize,
    w: usize,
) -> Option<(usize, usize, Vec<u32>, Vec<u32>)> {
    if grid.len() != h * w {
        return None;
    }
    let (s, g) = endpoints(grid).ok()?;
    let (mut dist, mut queue) = (Vec::new(), Vec::new());
    bfs(|i| passable(grid[i]), h, w, s, &mut dist, &mut queue);
    Some((s, g, dist, queue))
}

/// Walks back from `goal` to the start along decreasing `dist`, taking the
/// first neighbour in [`DIRS`] order: one shortest path, `S` first.
fn backtrack(dist: &[u32], h: usize, w: usize, goal: usize) -> Vec<usize> {
    let mut path = vec![goal];
    let mut cur = goal;
    while dist[cur] > 0 {
        let want = dist[cur] - 1;
        let mut next = cur;
        for_neighbours(cur, h, w, |n| {
            if next == cur && dist[n] == want {
                next = n;
            }
        });
        cur = next;
        path.push(cur);
    }
    path.reverse();
    path
}

/// One shortest 4-connected path from `S` to `G` (cells, both ends included),
/// chosen deterministically by BFS with a fixed neighbour order; `None` when
/// the grid is malformed or `G` is unreachable. Walls block; every other
/// valid code is walkable.
pub fn shortest_path(grid: &[u8], h: usize, w: usize) -> Option<Vec<usize>> {
    let (_, g, dist, _) = distances_from_start(grid, h, w)?;
    (dist[g] != UNSEEN).then(|| backtrack(&dist, h, w, g))
}

/// The shortest `S`->`G` path length in moves (path cells + 1), if any.
pub fn shortest_len(grid: &[u8], h: usize, w: usize) -> Option<usize> {
    let (_, g, dist, _) = distances_from_start(grid, h, w)?;
    (dist[g] != UNSEEN).then_some(dist[g] as usize)
}

/// The number of distinct shortest `S`->`G` paths (saturating), by dynamic
/// programming over BFS layers; 0 when there is none (REFERENCE.md: shortest
/// paths are often not unique).
pub fn count_shortest_paths(grid: &[u8], h: usize, w: usize) -> u128 {
    let Some((s, g, dist, queue)) = distances_from_start(grid, h, w) else {
        return 0;
    };
    count_from_layers(&dist, &queue, h, w, s, g, &mut Vec::new())
}

/// Path counting over a finished BFS (`queue` is in nondecreasing distance).
fn count_from_layers(
    dist: &[u32],
    queue: &[u32],
    h: usize,
    w: usize,
    s: usize,
    g: usize,
    ways: &mut Vec<u128>,
) -> u128 {
    if dist[g] == UNSEEN {
        return 0;
    }
    ways.clear();
    ways.resize(h * w, 0);
    ways[s] = 1;
    for &cell in queue {
        let cell = cell as usize;
        if dist[cell] > dist[g] {
            break;
        }
        if cell == s {
            continue;
        }
        let mut sum: u128 = 0;
        for_neighbours(cell, h, w, |n| {
            if dist[n] != UNSEEN && dist[n] + 1 == dist[cell] {
                sum = sum.saturating_add(ways[n]);
            }
        });
        ways[cell] = sum;
    }
    ways[g]
}

// ------------------------------------------------------------- generator --

/// Generator settings (REFERENCE.md "Maze generation in the Searchformer
/// style"; paper Sec. 9.2 "Maze-Hard").
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GenOptions {
    pub h: usize,
    pub w: usize,
    /// Each maze draws its wall fraction uniformly from `[wall_min, wall_max]`.
    pub wall_min: f64,
    pub wall_max: f64,
    /// Keep a maze only if its shortest path has at least this many moves.
    pub min_path_len: usize,
}

impl GenOptions {
    /// Searchformer style: 30-50% walls, shortest path >= max(H, W) moves.
    pub fn searchformer(h: usize, w: usize) -> Self {
        GenOptions {
            h,
            w,
            wall_min: 0.3,
            wall_max: 0.5,
            min_path_len: h.max(w),
        }
    }

    /// Named presets:
    /// * `9x9`, `20x20`: [`GenOptions::searchformer`].
    /// * `9x9-ref`: 30% walls, path >= 8 moves (REFERENCE.md "Measured here").
    /// * `30x30-hard`: Maze-Hard, 30-50% walls, shortest path > 110 moves.
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "9x9" => Some(Self::searchformer(9, 9)),
            "20x20" => Some(Self::searchformer(20, 20)),
            "9x9-ref" => Some(GenOptions {
                h: 9,
                w: 9,
                wall_min: 0.3,
                wall_max: 0.3,
                min_path_len: 8,
            }),
            "30x30-hard" => Some(GenOptions {
                min_path_len: 111,
                ..Self::searchformer(30, 30)
            }),
            _ => None,
        }
    }

    /// The preset names accepted by [`GenOptions::preset`].
    pub const PRESETS: [&'static str; 4] = ["9x9", "9x9-ref", "20x20", "30x30-hard"];

    /// Rejects settings under which no maze can exist.
    pub fn validate(&self) -> Result<()> {
        let n = self.h * self.w;
        if self.h == 0 || self.w == 0 || n < 2 {
            bail!("maze size {}x{} needs at least 2 cells", self.h, self.w);
        }
        if n > u32::MAX as usize / 2 {
            bail!("maze size {}x{} is too large", self.h, self.w);
        }
        let ok_frac = |p: f64| (0.0..1.0).contains(&p);
        if !ok_frac(self.wall_min) || !ok_frac(self.wall_max) || self.wall_min > self.wall_max {
            bail!(
                "wall fractions must satisfy 0 <= wall_min <= wall_max < 1 (got {}..{})",
                self.wall_min,
                self.wall_max
            );
        }
        if self.min_path_len >= n {
            bail!(
                "min_path_len {} is impossible in a {}x{} maze (at most {} moves)",
                self.min_path_len,
                self.h,
                self.w,
                n - 1
            );
        }
        Ok(())
    }
}

/// Facts about a generated maze.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenInfo {
    /// Shortest path length in moves (path cells + 1).
    pub path_len: usize,
    /// Number of distinct shortest paths (saturating).
    pub n_shortest: u128,
    /// Number of wall cells.
    pub walls: usize,
}

/// How many start cells are tried on one wall layout before drawing a new one.
const STARTS_PER_LAYOUT: usize = 16;

/// Reusable buffers of the generator, so the hot loop does not allocate.
#[derive(Default)]
struct Scratch {
    grid: Vec<u8>,
    comp: Vec<u32>,
    comp_size: Vec<u32>,
    cands: Vec<u32>,
    far: Vec<u32>,
    dist: Vec<u32>,
    queue: Vec<u32>,
    ways: Vec<u128>,
}

impl Scratch {
    /// Draws a wall layout: each cell a wall with probability `p`
    /// (one 32-bit draw per cell).
    fn draw_walls<R: RngCore + ?Sized>(&mut self, n: usize, p: f64, rng: &mut R) {
        let threshold = (p * 4_294_967_296.0) as u64;
        self.grid.clear();
        self.grid.extend((0..n).map(|_| {
            if (rng.next_u32() as u64) < threshold {
                WALL
            } else {
                OPEN
            }
        }));
    }

    /// Labels the open components and collects into `cands` every open cell
    /// whose component has more than `min_len` cells (only those can start a
    /// path of `min_len` moves). Returns the largest component size.
    fn candidates(&mut self, h: usize, w: usize, min_len: usize) -> usize {
        let n = h * w;
        self.comp.clear();
        self.comp.resize(n, UNSEEN);
        self.comp_size.clear();
        self.cands.clear();
        let mut largest = 0;
        for root in 0..n {
            if self.grid[root] == WALL || self.comp[root] != UNSEEN {
                continue;
            }
            let id = self.comp_size.len() as u32;
            self.comp[root] = id;
            self.queue.clear();
            self.queue.push(root as u32);
            let mut head = 0;
            while head < self.queue.len() {
                let cell = self.queue[head] as usize;
                head += 1;
                let (grid, comp, queue) = (&self.grid, &mut self.comp, &mut self.queue);
                for_neighbours(cell, h, w, |nb| {
                    if comp[nb] == UNSEEN && grid[nb] != WALL {
                        comp[nb] = id;
                        queue.push(nb as u32);
                    }
                });
            }
            let size = self.queue.len();
            self.comp_size.push(size as u32);
            largest = largest.max(size);
            if size > min_len {
                self.cands.extend_from_slice(&self.queue);
            }
        }
        largest
    }
}

/// Generates one maze and its label (REFERENCE.md "Maze generation in the
/// Searchformer style"; paper Sec. 9.2).
///
/// Per maze a wall fraction `p ~ U[wall_min, wall_max]` is drawn and each cell
/// becomes a wall with probability `p`. Start and goal are distinct open
/// cells whose shortest path has `>= min_path_len` moves (and >= 1). The
/// label is one shortest path: BFS from `S` with a fixed neighbour order,
/// walked back from `G`.
///
/// Sampling of (S, G) on a layout, instead of the reference's "draw a pair,
/// reject, redraw everything": S is drawn uniformly among open cells of
/// components larger than `min_path_len`; one BFS from S gives the set F of
/// cells far enough; S is accepted with probability |F| / (C - 1) (C = size
/// of the largest component) and G is then uniform in F. Conditional on the
/// wall layout, (S, G) is therefore exactly uniform over all qualifying
/// ordered pairs, as in the reference. After [`STARTS_PER_LAYOUT`] rejected
/// starts a fresh layout (and fraction) is drawn; so only the weighting
/// between layouts differs from pure rejection sampling (layouts with few
/// qualifying pairs are relatively more frequent). This makes 30x30 mazes
/// with paths > 110 cheap.
///
/// Panics if `opts` fails [`GenOptions::validate`]; loops until a maze is found.
pub fn generate<R: Rng + ?Sized>(opts: &GenOptions, rng: &mut R) -> (Pair, GenInfo) {
    generate_with(opts, rng, &mut Scratch::default())
}

fn generate_with<R: Rng + ?Sized>(
    opts: &GenOptions,
    rng: &mut R,
    s: &mut Scratch,
) -> (Pair, GenInfo) {
    if let Err(e) = opts.validate() {
        panic!("invalid maze generator options: {e}");
    }
    let (h, w) = (opts.h, opts.w);
    let n = h * w;
    let min_len = opts.min_path_len.max(1);
    loop {
        let p = rng.gen_range(opts.wall_min..=opts.wall_max);
        s.draw_walls(n, p, rng);
        let largest = s.candidates(h, w, min_len);
        if s.cands.is_empty() {
            continue;
        }
        for _ in 0..STARTS_PER_LAYOUT {
            let start = s.cands[rng.gen_range(0..s.cands.len())] as usize;
            let grid = &s.grid;
            bfs(|i| grid[i] != WALL, h, w, start, &mut s.dist, &mut s.queue);
            s.far.clear();
            let dist = &s.dist;
            s.far.extend(
                s.queue
                    .iter()
                    .copied()
                    .filter(|&c| dist[c as usize] as usize >= min_len),
            );
            if s.far.is_empty() || rng.gen_range(0..largest - 1) >= s.far.len() {
                continue;
            }
            let goal = s.far[rng.gen_range(0..s.far.len())] as usize;
            return finish_maze(s, h, w, start, goal);
        }
    }
}

/// Builds the pair and its facts once `start` and `goal` are fixed
/// (`s.dist`/`s.queue` hold the BFS from `start`).
fn finish_maze(s: &mut Scratch, h: usize, w: usize, start: usize, goal: usize) -> (Pair, GenInfo) {
    let mut question = s.grid.clone();
    question[start] = START;
    question[goal] = GOAL;
    let mut answer = question.clone();
    let path = backtrack(&s.dist, h, w, goal);
    for &c in &path[1..path.len() - 1] {
        answer[c] = PATH;
    }
    let info = GenInfo {
        path_len: s.dist[goal] as usize,
        n_shortest: count_from_layers(&s.dist, &s.queue, h, w, start, goal, &mut s.ways),
        walls: s.grid.iter().filter(|&&c| c == WALL).count(),
    };
    (Pair { question, answer }, info)
}

/// `count` mazes, deterministic from `seed` (ChaCha8).
pub fn generate_many(opts: &GenOptions, count: usize, seed: u64) -> Vec<Pair> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut scratch = Scratch::default();
    (0..count)
        .map(|_| generate_with(opts, &mut rng, &mut scratch).0)
        .collect()
}

/// Generation throughput in mazes per second (wall clock, one thread).
pub fn bench_generate(opts: &GenOptions, count: usize, seed: u64) -> f64 {
    let t0 = std::time::Instant::now();
    let mazes = generate_many(opts, count, seed);
    let secs = t0.elapsed().as_secs_f64();
    std::hint::black_box(&mazes);
    count as f64 / secs.max(1e-9)
}

// ------------------------------------------------------------- transforms --

/// The 8 symmetries of the square (REFERENCE.md "Augmentation: the 8
/// dihedral transforms"): `k % 4` quarter turns clockwise, then a
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

// ------------------------------------------------------------- validation --

/// Follows the predicted path from `S`: the `PATH` cells plus `S` and `G`
/// must form one simple 4-connected chain (S and G of degree 1, path cells of
/// degree 2, nothing left over). Returns its length in moves, or why not.
/// `pred` must already keep the question's walls/S/G (see [`copies_givens`]).
fn path_moves(pred: &[u8], h: usize, w: usize, s: usize, g: usize) -> Result<usize, String> {
    let on = |i: usize| i == s || i == g || pred[i] == PATH;
    let n_on = 2 + pred.iter().filter(|&&c| c == PATH).count();
    let degree = |i: usize| {
        let mut d = 0;
        for_neighbours(i, h, w, |n| d += on(n) as usize);
        d
    };
    let at = |i: usize| format!("row {}, column {}", i / w, i % w);
    for (i, &code) in pred.iter().enumerate() {
        if code == PATH && degree(i) != 2 {
            return Err(format!(
                "path cell at {} has {} path neighbours (expected 2)",
                at(i),
                degree(i)
            ));
        }
    }
    for (i, name) in [(s, "start"), (g, "goal")] {
        if degree(i) != 1 {
            return Err(format!(
                "{name} at {} has {} path neighbours (expected 1)",
                at(i),
                degree(i)
            ));
        }
    }
    // Degrees are right, so the walk from S is forced and ends at G.
    let (mut prev, mut cur, mut visited) = (usize::MAX, s, 1);
    while cur != g {
        let mut next = usize::MAX;
        for_neighbours(cur, h, w, |n| {
            if on(n) && n != prev {
                next = n;
            }
        });
        if next == usize::MAX || visited > n_on {
            return Err("path from S does not reach G".into());
        }
        (prev, cur, visited) = (cur, next, visited + 1);
    }
    if visited != n_on {
        return Err(format!(
            "{} path cells are not on the S-G path (disconnected or a separate loop)",
            n_on - visited
        ));
    }
    Ok(visited - 1)
}

/// Checks that `pred` keeps every wall, `S` and `G` of `question` and turns
/// open cells only into `OPEN` or `PATH`.
fn copies_givens(question: &[u8], pred: &[u8], w: usize) -> Result<(), String> {
    for (i, (&q, &p)) in question.iter().zip(pred).enumerate() {
        let ok = if q == OPEN {
            p == OPEN || p == PATH
        } else {
            p == q
        };
        if !ok {
            return Err(format!(
                "row {}, column {}: question has {:?}, answer has {:?}",
                i / w.max(1),
                i % w.max(1),
                code_char(q),
                code_char(p)
            ));
        }
    }
    Ok(())
}

/// Checks a question/answer pair of H x W cell codes.
///
/// Always: sizes (`WrongLength`), codes in range and no `o` in the question
/// (`UnknownChar`), exactly one `S` and one `G` (`BadEndpoints`), the answer
/// keeps walls/S/G and only marks open cells (`ContradictsGivens`), the
/// answer's `o` cells form one simple S-G path (`InvalidAnswer`). With
/// `verify` also: a path exists (`NoPath`) and the answer is a shortest path
/// (`NotShortest`; REFERENCE.md: Maze-Hard labels are shortest paths).
pub fn check_pair(q: &[u8], a: &[u8], h: usize, w: usize, verify: bool) -> Result<(), Problem> {
    use ProblemKind::*;
    for (grid, name) in [(q, "question"), (a, "answer")] {
        if grid.len() != h * w {
            let msg = format!(
                "{name} has {} cells, expected {} ({h}x{w})",
                grid.len(),
                h * w
            );
            return Err(Problem::new(WrongLength, msg));
        }
        if let Some(i) = grid.iter().position(|&c| c >= N_CODES) {
            return Err(Problem::new(
                UnknownChar,
                format!("{name} has invalid code {} at index {i}", grid[i]),
            ));
        }
    }
    if let Some(i) = q.iter().position(|&c| c == PATH) {
        let msg = format!(
            "path mark 'o' in the question at row {}, column {}",
            i / w,
            i % w
        );
        return Err(Problem::new(UnknownChar, msg));
    }
    let (s, g) = endpoints(q).map_err(|e| Problem::new(BadEndpoints, format!("question: {e}")))?;
    copies_givens(q, a, w).map_err(|e| Problem::new(ContradictsGivens, e))?;
    let shortest = if verify {
        let len = shortest_len(q, h, w);
        Some(len.ok_or_else(|| Problem::new(NoPath, "the goal cannot be reached from the start"))?)
    } else {
        None
    };
    let moves = path_moves(a, h, w, s, g).map_err(|e| Problem::new(InvalidAnswer, e))?;
    if let Some(best) = shortest {
        if moves != best {
            let msg = format!("answer path has {moves} moves, the shortest has {best}");
            return Err(Problem::new(NotShortest, msg));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- metrics --

/// The paper's maze metrics (Sec. 9, Tables 1 and 5) for one prediction.
///
/// * `exact`: `pred == answer`.
/// * `valid`: `pred` keeps the question's walls/S/G, turns open cells only
///   into open or path, and its path cells with S and G form one simple
///   4-connected S-G path (as `ref_trldm.py`'s `maze_metrics`).
/// * `optimal`: valid and as short as a shortest path of the *question*
///   (BFS, not the label: shortest paths are not unique).
/// * `len_ratio`: predicted moves / shortest moves when valid, else 0.
///
/// Malformed inputs (wrong sizes, out-of-range codes, no unique S/G, no
/// path) give an invalid score, never a panic.
pub fn score(question: &[u8], pred: &[u8], answer: &[u8], h: usize, w: usize) -> Score {
    let moves = valid_moves(question, pred, h, w);
    let best = moves.and_then(|_| shortest_len(question, h, w));
    let (optimal, len_ratio) = match (moves, best) {
        (Some(m), Some(b)) if b > 0 => (m == b, m as f64 / b as f64),
        _ => (false, 0.0),
    };
    Score {
        exact: pred == answer,
        valid: moves.is_some() && best.is_some(),
        optimal: Some(optimal),
        len_ratio: Some(len_ratio),
    }
}

/// The predicted path length in moves if `pred` is a valid answer to `question`.
fn valid_moves(question: &[u8], pred: &[u8], h: usize, w: usize) -> Option<usize> {
    if question.len() != h * w || pred.len() != h * w || w == 0 {
        return None;
    }
    if question.iter().any(|&c| c >= N_CODES || c == PATH) {
        return None;
    }
    let (s, g) = endpoints(question).ok()?;
    copies_givens(question, pred, w).ok()?;
    path_moves(pred, h, w, s, g).ok()
}

// ------------------------------------------------------------------- files --

/// Parses one CSV row into a checked pair ([`check_pair`] with `verify`).
pub fn parse_row(row: &CsvRow, h: usize, w: usize, verify: bool) -> Result<Pair, Problem> {
    let question = parse_grid(&row.question, h, w, false).map_err(|p| in_field("question", p))?;
    let answer = match row.answer.as_deref() {
        None | Some("") => return Err(Problem::new(ProblemKind::MissingAnswer, "empty answer")),
        Some(a) => parse_grid(a, h, w, true).map_err(|p| in_field("answer", p))?,
    };
    check_pair(&question, &answer, h, w, verify)?;
    Ok(Pair { question, answer })
}

/// Prefixes a problem's detail with the CSV column it comes from.
fn in_field(field: &str, p: Problem) -> Problem {
    Problem::new(p.kind, format!("{field}: {}", p.detail))
}

/// Loads a Maze-Hard CSV (answers required). The grid size is `hw`, or
/// inferred as square from the first row whose question length is a square
/// number. Every bad row is reported as `file:line: kind: detail` (or
/// skipped and counted with `skip_invalid`); `verify` adds the shortest-path
/// checks of [`check_pair`].
pub fn load_csv(path: &Path, hw: Option<(usize, usize)>, opts: LoadOptions) -> Result<Loaded> {
    let rows = csvio::read_rows(path, true)?;
    let (h, w) = match hw {
        Some(hw) => hw,
        None => infer_size(&rows, path)?,
    };
    let mut loaded = Loaded::default();
    for row in &rows {
        let pair = parse_row(row, h, w, opts.verify);
        loaded.push(opts, path, row.line, &row.source, pair)?;
    }
    Ok(loaded)
}

/// The (h, w) of a file's square grids, from the first row that has one.
fn infer_size(rows: &[CsvRow], path: &Path) -> Result<(usize, usize)> {
    for row in rows {
        if let Some(side) = infer_square(row.question.chars().count()) {
            return Ok((side, side));
        }
    }
    let first = rows.first().map(|r| (r.line, r.question.chars().count()));
    let (line, len) = first.unwrap_or((1, 0));
    bail!(
        "{}:{line}: cannot infer the maze size: question has {len} cells, not a square; give the size (e.g. 30x30)",
        path.display()
    )
}

/// A CSV row for a pair (`line` 0; set by the reader).
pub fn to_row(pair: &Pair, source: &str, rating: &str) -> CsvRow {
    CsvRow {
        line: 0,
        source: source.to_string(),
        question: format_grid(&pair.question),
        answer: Some(format_grid(&pair.answer)),
        rating: rating.to_string(),
    }
}

// ------------------------------------------------------------------- stats --

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
