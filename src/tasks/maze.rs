//! Maze(-Hard): grid format, Searchformer-style generator, BFS shortest
//! paths, dihedral augmentation, data checks and the paper's metrics.
//!
//! * Format (docs/FACTS.md, "Data formats", Maze-Hard CSV): a grid is H x W
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
/// Marks a wall in the generator's distance buffer.
const BLOCKED: u32 = u32::MAX - 1;

// ---------------------------------------------------------------- format --

/// The cell code of a Maze-Hard character (docs/FACTS.md, "Data formats").
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
    (side.checked_mul(side) == Some(len)).then_some(side)
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
/// programming over BFS layers; 0 when there is none (shortest paths are
/// often not unique: docs/FACTS.md, "Maze generation in the Searchformer style").
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

/// Generator settings (docs/FACTS.md, "Maze generation in the Searchformer
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
    /// * `9x9-ref`: 30% walls, path >= 8 moves (docs/FACTS.md,
    ///   "The eager-PyTorch reference").
    /// * `30x30-hard`: Maze-Hard (docs/FACTS.md, "Data formats": only mazes whose shortest
    ///   path is longer than 110), 30-50% walls, `min_path_len` 111 moves.
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

/// Rejection-sampling tries for the start on one layout before falling back
/// to exact weights (both give the same distribution).
const START_TRIES: usize = 64;

/// Reusable buffers of the generator, so the hot loop does not allocate.
#[derive(Default)]
struct Scratch {
    /// The current wall layout, padded with a border of walls.
    grid: Vec<u8>,
    /// The layout with the cells visited by the labelling turned into walls.
    unseen: Vec<u8>,
    /// Per component with more than `min_len` cells: the cell farthest from
    /// its labelling root (first end of the double sweep) and the size.
    big: Vec<(u32, u32)>,
    /// Start candidates and their number of far-enough cells (fallback only).
    cands: Vec<u32>,
    weights: Vec<u32>,
    dist_a: Vec<u32>,
    dist: Vec<u32>,
    queue: Vec<u32>,
    ways: Vec<u128>,
}

impl Scratch {
    /// Draws a wall layout into the padded grid (`(h + 2) x (w + 2)`, a
    /// border of walls so that neighbours need no bounds checks): each cell a
    /// wall with probability `p` (one 32-bit draw per cell).
    fn draw_walls<R: RngCore + ?Sized>(&mut self, h: usize, w: usize, p: f64, rng: &mut R) {
        let threshold = (p * 4_294_967_296.0) as u64;
        let pw = w + 2;
        self.grid.clear();
        self.grid.resize((h + 2) * pw, WALL);
        for r in 1..=h {
            for cell in &mut self.grid[r * pw + 1..r * pw + 1 + w] {
                *cell = if (rng.next_u32() as u64) < threshold {
                    WALL
                } else {
                    OPEN
                };
            }
        }
    }

    /// Labels the open components; records in `big` each component with more
    /// than `min_len` cells (smaller ones cannot hold a path of `min_len`
    /// moves) with the cell its labelling BFS reached last.
    fn find_big_components(&mut self, pw: usize, min_len: usize) {
        let n = self.grid.len();
        // Visited open cells are turned into walls in this copy: one load per neighbour.
        self.unseen.clear();
        self.unseen.extend_from_slice(&self.grid);
        self.big.clear();
        let offsets = padded_offsets(pw);
        for root in 0..n {
            if self.unseen[root] == WALL {
                continue;
            }
            self.unseen[root] = WALL;
            self.queue.clear();
            self.queue.push(root as u32);
            let mut head = 0;
            while head < self.queue.len() {
                let cell = self.queue[head] as usize;
                head += 1;
                for off in offsets {
                    let nb = cell.wrapping_add_signed(off);
                    if self.unseen[nb] != WALL {
                        self.unseen[nb] = WALL;
                        self.queue.push(nb as u32);
                    }
                }
            }
            if self.queue.len() > min_len {
                let last = self.queue[self.queue.len() - 1];
                self.big.push((last, self.queue.len() as u32));
            }
        }
    }

    /// BFS over the open cells of the padded layout into `dist`/`queue`.
    fn bfs_from(&mut self, pw: usize, src: usize) {
        let (grid, dist, queue) = (&self.grid, &mut self.dist, &mut self.queue);
        // Walls get a distance no BFS step can match: one load per neighbour.
        dist.clear();
        dist.extend(
            grid.iter()
                .map(|&c| if c == WALL { BLOCKED } else { UNSEEN }),
        );
        queue.clear();
        dist[src] = 0;
        queue.push(src as u32);
        let offsets = padded_offsets(pw);
        let mut head = 0;
        while head < queue.len() {
            let cell = queue[head] as usize;
            head += 1;
            let d = dist[cell] + 1;
            for off in offsets {
                let nb = cell.wrapping_add_signed(off);
                if dist[nb] == UNSEEN {
                    dist[nb] = d;
                    queue.push(nb as u32);
                }
            }
        }
    }

    /// Number of cells at `>= min_len` moves in the last BFS.
    fn n_far(&self, min_len: usize) -> usize {
        let dist = &self.dist;
        self.queue
            .iter()
            .filter(|&&c| dist[c as usize] as usize >= min_len)
            .count()
    }

    /// Collects the start candidates of the layout by a double sweep per big
    /// component: BFS from `a` finds `b`; when `d(a, b) >= min_len`, every
    /// cell `v` with `max(d(v, a), d(v, b)) >= min_len` certainly has a cell
    /// far enough and becomes a candidate. Returns the largest size of a
    /// component with candidates (bounds any cell's number of far cells + 1).
    fn collect_candidates(&mut self, pw: usize, min_len: usize) -> usize {
        self.cands.clear();
        let mut largest = 0;
        for k in 0..self.big.len() {
            let (a, size) = self.big[k];
            self.bfs_from(pw, a as usize);
            let b = self.queue[self.queue.len() - 1] as usize;
            if (self.dist[b] as usize) < min_len {
                continue;
            }
            std::mem::swap(&mut self.dist, &mut self.dist_a);
            self.bfs_from(pw, b);
            let (da, db) = (&self.dist_a, &self.dist);
            self.cands.extend(
                self.queue
                    .iter()
                    .filter(|&&c| da[c as usize].max(db[c as usize]) as usize >= min_len),
            );
            largest = largest.max(size as usize);
        }
        largest
    }

    /// Picks a start among the candidates with probability proportional to
    /// its number of far cells (so that (S, G) is uniform over qualifying
    /// pairs): first by rejection (accept with |F| / (largest - 1)), then,
    /// if that keeps failing, by exact weights. Leaves the BFS from the
    /// chosen start in `dist`/`queue`.
    fn pick_start<R: Rng + ?Sized>(
        &mut self,
        pw: usize,
        min_len: usize,
        largest: usize,
        rng: &mut R,
    ) -> usize {
        for _ in 0..START_TRIES.min(self.cands.len()) {
            let v = self.cands[rng.gen_range(0..self.cands.len())] as usize;
            self.bfs_from(pw, v);
            if rng.gen_range(0..largest - 1) < self.n_far(min_len) {
                return v;
            }
        }
        self.weights.clear();
        for k in 0..self.cands.len() {
            self.bfs_from(pw, self.cands[k] as usize);
            let n_far = self.n_far(min_len) as u32;
            self.weights.push(n_far);
        }
        let total: u64 = self.weights.iter().map(|&x| x as u64).sum();
        let mut r = rng.gen_range(0..total.max(1));
        let mut chosen = self.cands[0] as usize;
        for (k, &wt) in self.weights.iter().enumerate() {
            if r < wt as u64 {
                chosen = self.cands[k] as usize;
                break;
            }
            r -= wt as u64;
        }
        self.bfs_from(pw, chosen);
        chosen
    }

    /// A goal uniform among the cells `>= min_len` moves from the last BFS source.
    fn pick_goal<R: Rng + ?Sized>(&self, min_len: usize, rng: &mut R) -> usize {
        let n_far = self.n_far(min_len);
        let k = rng.gen_range(0..n_far.max(1));
        let dist = &self.dist;
        let mut far = self
            .queue
            .iter()
            .filter(|&&c| dist[c as usize] as usize >= min_len);
        far.nth(k).map(|&c| c as usize).unwrap_or(0)
    }
}

/// Generates one maze and its label (docs/FACTS.md, "Maze generation in the
/// Searchformer style"; paper Sec. 9.2 "Maze-Hard").
///
/// Per maze a wall fraction `p ~ U[wall_min, wall_max]` is drawn and each cell
/// becomes a wall with probability `p`. Start and goal are distinct open
/// cells whose shortest path has `>= min_path_len` moves (and >= 1). The
/// label is one shortest path: BFS from `S` with the fixed neighbour order,
/// walked back from `G`.
///
/// The reference draws a layout and one (S, G) pair and redraws everything
/// on failure; for 30x30 with paths > 110 only ~1e-5 of pairs qualify, far
/// too slow. Here, per layout: components with more than `min_path_len`
/// cells get a double-sweep BFS (a = last cell of the labelling BFS, b = the
/// farthest from a); layouts where no `d(a, b)` reaches `min_path_len` are
/// redrawn. Start candidates are the cells `v` with `max(d(v,a), d(v,b)) >=
/// min_path_len` (exactly the cells with a far-enough cell when the component
/// is tree-like, a subset otherwise). (S, G) is then drawn uniformly over
/// the qualifying ordered pairs with S a candidate. Differences from pure
/// rejection: each accepted layout yields one maze (the reference weights
/// layouts by their number of qualifying pairs), and starts outside the
/// candidates are never used. Measured (1 core, release): ~290 mazes/s for
/// `30x30-hard`, ~28k/s for `20x20`, ~170k/s for `9x9`.
///
/// Fails when `opts` fails [`GenOptions::validate`], or when
/// [`MAX_LAYOUTS`] wall layouts in a row hold no qualifying maze (the
/// options are impossible or nearly so), saying which option to relax.
pub fn generate<R: Rng + ?Sized>(opts: &GenOptions, rng: &mut R) -> Result<(Pair, GenInfo)> {
    generate_with(opts, rng, &mut Scratch::default())
}

/// Wall layouts drawn for one maze before the generator gives up.
pub const MAX_LAYOUTS: usize = 200_000;

fn generate_with<R: Rng + ?Sized>(
    opts: &GenOptions,
    rng: &mut R,
    s: &mut Scratch,
) -> Result<(Pair, GenInfo)> {
    opts.validate()?;
    let (h, w) = (opts.h, opts.w);
    let pw = w + 2;
    let min_len = opts.min_path_len.max(1);
    for _ in 0..MAX_LAYOUTS {
        let p = rng.gen_range(opts.wall_min..=opts.wall_max);
        s.draw_walls(h, w, p, rng);
        s.find_big_components(pw, min_len);
        if s.big.is_empty() {
            continue;
        }
        let largest = s.collect_candidates(pw, min_len);
        if s.cands.is_empty() {
            continue;
        }
        let start = s.pick_start(pw, min_len, largest, rng);
        let goal = s.pick_goal(min_len, rng);
        let unpad = |i: usize| (i / pw - 1) * w + (i % pw - 1);
        return Ok(finish_maze(s, h, w, unpad(start), unpad(goal)));
    }
    bail!(
        "no {h}x{w} maze with a shortest path of at least {} moves in {MAX_LAYOUTS} wall layouts \
         (walls {}..{}): lower min_path_len, or change the wall fractions",
        opts.min_path_len,
        opts.wall_min,
        opts.wall_max
    )
}

/// Neighbour offsets in a padded grid of width `pw`, in [`DIRS`] order.
fn padded_offsets(pw: usize) -> [isize; 4] {
    [pw as isize, -(pw as isize), 1, -1]
}

/// Builds the pair and its facts once `start` and `goal` (unpadded) are fixed.
fn finish_maze(s: &mut Scratch, h: usize, w: usize, start: usize, goal: usize) -> (Pair, GenInfo) {
    let pw = w + 2;
    let mut question: Vec<u8> = (1..=h)
        .flat_map(|r| s.grid[r * pw + 1..r * pw + 1 + w].iter().copied())
        .collect();
    question[start] = START;
    question[goal] = GOAL;
    let q = &question;
    bfs(|i| q[i] != WALL, h, w, start, &mut s.dist, &mut s.queue);
    let mut answer = question.clone();
    let path = backtrack(&s.dist, h, w, goal);
    for &c in &path[1..path.len() - 1] {
        answer[c] = PATH;
    }
    let info = GenInfo {
        path_len: s.dist[goal] as usize,
        n_shortest: count_from_layers(&s.dist, &s.queue, h, w, start, goal, &mut s.ways),
        walls: question.iter().filter(|&&c| c == WALL).count(),
    };
    (Pair { question, answer }, info)
}

/// `count` mazes, deterministic from `seed` (ChaCha8).
pub fn generate_many(opts: &GenOptions, count: usize, seed: u64) -> Result<Vec<Pair>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut scratch = Scratch::default();
    (0..count)
        .map(|_| generate_with(opts, &mut rng, &mut scratch).map(|(p, _)| p))
        .collect()
}

/// Generation throughput in mazes per second (wall clock, one thread).
pub fn bench_generate(opts: &GenOptions, count: usize, seed: u64) -> Result<f64> {
    let t0 = std::time::Instant::now();
    let mazes = generate_many(opts, count, seed)?;
    let secs = t0.elapsed().as_secs_f64();
    std::hint::black_box(&mazes);
    Ok(count as f64 / secs.max(1e-9))
}

// ------------------------------------------------------------- transforms --

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
/// (`NotShortest`; docs/FACTS.md, "Data formats": Maze-Hard labels are shortest paths).
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// Parses a grid written as rows (all of equal width).
    fn grid(rows: &[&str]) -> (Vec<u8>, usize, usize) {
        let (h, w) = (rows.len(), rows[0].len());
        (
            parse_grid(&rows.concat(), h, w, true).expect("test grid"),
            h,
            w,
        )
    }

    /// A 5x5 maze with a unique shortest path of 7 moves and a longer detour.
    const Q: [&str; 5] = ["S   #", "# # #", "#   #", "# ###", "#  G "];
    const A: [&str; 5] = ["So  #", "#o# #", "#o  #", "#o###", "#ooG "];
    /// `A` with the wall at row 0, column 4 erased.
    const A_NO_WALL: [&str; 5] = ["So   ", "#o# #", "#o  #", "#o###", "#ooG "];

    fn label() -> (Vec<u8>, Vec<u8>, usize, usize) {
        let (q, h, w) = grid(&["S    ", "# ## ", "#    ", "# ## ", "#   G"]);
        let (a, _, _) = grid(&["Soooo", "# ##o", "#   o", "# ##o", "#   G"]);
        (q, a, h, w)
    }

    fn scored(pred: &[&str]) -> Score {
        let (q, a, h, w) = label();
        score(&q, &grid(pred).0, &a, h, w)
    }

    #[test]
    fn parse_format_round_trip_and_errors() {
        let (q, h, w) = grid(&Q);
        assert_eq!((h, w), (5, 5));
        assert_eq!(format_grid(&q), Q.concat());
        assert_eq!(infer_square(900), Some(30));
        assert_eq!(infer_square(81), Some(9));
        assert_eq!(infer_square(899), None);
        assert_eq!(infer_square(0), None);
        let e = parse_grid("S G", 2, 2, false).unwrap_err();
        assert_eq!(e.kind, ProblemKind::WrongLength);
        let e = parse_grid("S.G#", 2, 2, false).unwrap_err();
        assert_eq!(e.kind, ProblemKind::UnknownChar);
        assert!(
            e.detail.contains("'.'") && e.detail.contains("row 0, column 1"),
            "{e}"
        );
        let e = parse_grid("SoG#", 2, 2, false).unwrap_err();
        assert_eq!(e.kind, ProblemKind::UnknownChar);
        assert!(parse_grid("SoG#", 2, 2, true).is_ok());
        let p = pretty(&q, w);
        assert_eq!(p.lines().count(), 7);
        assert!(p.contains("|S   #|"));
    }

    #[test]
    fn bfs_shortest_path_and_count() {
        let (q, a, h, w) = label();
        let path = shortest_path(&q, h, w).expect("path");
        assert_eq!(path.len() - 1, 8);
        assert_eq!(shortest_len(&q, h, w), Some(8));
        // Two corridors (top-right, bottom-left) and the middle row mixes them.
        assert_eq!(count_shortest_paths(&q, h, w), 3);
        let mut b = q.clone();
        for &c in &path[1..path.len() - 1] {
            b[c] = PATH;
        }
        assert!(check_pair(&q, &b, h, w, true).is_ok());
        assert!(check_pair(&q, &a, h, w, true).is_ok());
        let (blocked, h2, w2) = grid(&["S#", "#G"]);
        assert_eq!(shortest_path(&blocked, h2, w2), None);
        assert_eq!(count_shortest_paths(&blocked, h2, w2), 0);
        // Saturation: corner to corner of an open 70x70 grid has C(138, 69) > 2^128 paths.
        let mut open = vec![OPEN; 70 * 70];
        open[0] = START;
        open[70 * 70 - 1] = GOAL;
        assert_eq!(count_shortest_paths(&open, 70, 70), u128::MAX);
        open[69] = GOAL;
        open[70 * 70 - 1] = OPEN;
        assert_eq!(count_shortest_paths(&open, 70, 70), 1);
    }

    #[test]
    fn generated_mazes_are_checked_shortest_and_deterministic() {
        for (name, count) in [
            ("9x9", 300),
            ("9x9-ref", 100),
            ("20x20", 100),
            ("30x30-hard", 40),
        ] {
            let o = GenOptions::preset(name).expect("preset");
            let mazes = generate_many(&o, count, 11).unwrap();
            assert_eq!(
                mazes,
                generate_many(&o, count, 11).unwrap(),
                "{name} not deterministic"
            );
            assert_ne!(
                mazes,
                generate_many(&o, count, 12).unwrap(),
                "{name} ignores the seed"
            );
            for m in &mazes {
                check_pair(&m.question, &m.answer, o.h, o.w, true).expect("generated maze checks");
                let len = shortest_len(&m.question, o.h, o.w).expect("has a path");
                assert!(len >= o.min_path_len, "{name}: {len} < {}", o.min_path_len);
                let s = score(&m.question, &m.answer, &m.answer, o.h, o.w);
                assert_eq!(s.optimal, Some(true));
            }
        }
        let o = GenOptions::preset("30x30-hard").expect("preset");
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (pair, info) = generate(&o, &mut rng).unwrap();
        assert!(info.path_len > 110);
        assert_eq!(Some(info.path_len), shortest_len(&pair.question, 30, 30));
        assert_eq!(
            info.n_shortest,
            count_shortest_paths(&pair.question, 30, 30)
        );
        assert_eq!(
            info.walls,
            pair.question.iter().filter(|&&c| c == WALL).count()
        );
        assert_eq!(
            pair.answer.iter().filter(|&&c| c == PATH).count() + 1,
            info.path_len
        );
    }

    #[test]
    fn generator_options_are_validated() {
        assert!(GenOptions::preset("nope").is_none());
        for name in GenOptions::PRESETS {
            GenOptions::preset(name)
                .expect("preset")
                .validate()
                .expect("valid preset");
        }
        let bad = GenOptions {
            min_path_len: 81,
            ..GenOptions::searchformer(9, 9)
        };
        assert!(bad.validate().is_err());
        let bad = GenOptions {
            wall_min: 0.6,
            wall_max: 0.5,
            ..GenOptions::searchformer(9, 9)
        };
        assert!(bad.validate().is_err());
        let bad = GenOptions {
            wall_max: 1.0,
            ..GenOptions::searchformer(9, 9)
        };
        assert!(bad.validate().is_err());
        // Non-square mazes generate too.
        let o = GenOptions::searchformer(6, 11);
        for m in generate_many(&o, 50, 3).unwrap() {
            check_pair(&m.question, &m.answer, 6, 11, true).expect("6x11 maze checks");
        }
    }

    #[test]
    fn dihedral_transforms() {
        let (q, h, w) = grid(&Q);
        let (a, _, _) = grid(&A);
        let images: HashSet<Vec<u8>> = (0..8).map(|k| transform(&q, h, w, k).0).collect();
        assert_eq!(
            images.len(),
            8,
            "the 8 symmetries must differ on an asymmetric grid"
        );
        for k in 0..8 {
            let (t, th, tw) = transform(&q, h, w, k);
            let (ta, _, _) = transform(&a, h, w, k);
            assert_eq!(transform(&t, th, tw, inverse(k)).0, q, "inverse of {k}");
            check_pair(&t, &ta, th, tw, true).expect("transformed pair stays valid");
            assert_eq!(shortest_len(&t, th, tw), shortest_len(&q, h, w));
            assert_eq!(
                count_shortest_paths(&t, th, tw),
                count_shortest_paths(&q, h, w)
            );
        }
        // Quarter turns compose: 1 twice = 2, four times = identity.
        let r1 = transform(&q, h, w, 1).0;
        assert_eq!(transform(&r1, h, w, 1).0, transform(&q, h, w, 2).0);
        let mut g = q.clone();
        for _ in 0..4 {
            g = transform(&g, h, w, 1).0;
        }
        assert_eq!(g, q);
        // Mirror twice = identity; a mirror after a turn is another mirror.
        let m = transform(&q, h, w, 4).0;
        assert_eq!(transform(&m, h, w, 4).0, q);
        assert_eq!(transform(&r1, h, w, 4).0, transform(&q, h, w, 5).0);
    }

    #[test]
    fn non_square_transforms_and_augment() {
        let (q, h, w) = grid(&["S  #", "## G", "    "]);
        let (t, th, tw) = transform(&q, h, w, 1);
        assert_eq!((th, tw), (4, 3));
        assert_eq!(transform(&t, th, tw, 3).0, q);
        assert_eq!(transform(&q, h, w, 5).1, 4);
        let pair = Pair {
            question: q.clone(),
            answer: q.clone(),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let p = augment(&pair, h, w, &mut rng);
            assert_eq!(p.question, p.answer);
            assert_eq!(shortest_len(&p.question, h, w), shortest_len(&q, h, w));
            seen.insert(p.question);
        }
        assert_eq!(
            seen.len(),
            4,
            "non-square: the 4 shape-preserving transforms"
        );
        let o = GenOptions::preset("9x9").expect("preset");
        let m = &generate_many(&o, 1, 1).unwrap()[0];
        let seen: HashSet<_> = (0..400)
            .map(|_| augment(m, 9, 9, &mut rng))
            .map(|p| p.question)
            .collect();
        assert_eq!(seen.len(), 8);
    }

    #[test]
    fn metric_label_is_exact_valid_optimal() {
        let s = scored(&["Soooo", "# ##o", "#   o", "# ##o", "#   G"]);
        assert_eq!(
            s,
            Score {
                exact: true,
                valid: true,
                optimal: Some(true),
                len_ratio: Some(1.0)
            }
        );
        // Another shortest path: not exact but valid and optimal.
        let s = scored(&["So   ", "#o## ", "#o   ", "#o## ", "#oooG"]);
        assert_eq!(
            s,
            Score {
                exact: false,
                valid: true,
                optimal: Some(true),
                len_ratio: Some(1.0)
            }
        );
    }

    /// A valid 14-move path in the `label()` maze (shortest: 8).
    const LONGER: [&str; 5] = ["Soooo", "# ##o", "#oooo", "#o## ", "#oooG"];

    #[test]
    fn metric_longer_path_is_valid_not_optimal() {
        let s = scored(&LONGER);
        assert!(s.valid && !s.exact);
        assert_eq!(s.optimal, Some(false));
        assert!(s.len_ratio.expect("ratio") > 1.0, "{s:?}");
        assert_eq!(s.len_ratio, Some(14.0 / 8.0));
    }

    #[test]
    fn metric_invalid_predictions() {
        let invalid = |name: &str, pred: &[&str]| {
            let s = scored(pred);
            assert!(!s.valid && !s.exact, "{name}: {s:?}");
            assert_eq!(s.optimal, Some(false), "{name}");
            assert_eq!(s.len_ratio, Some(0.0), "{name}");
        };
        invalid("gap", &["Soo o", "# ##o", "#   o", "# ##o", "#   G"]);
        invalid(
            "through a wall",
            &["Soo  ", "# o# ", "# ooo", "# ##o", "#   G"],
        );
        invalid(
            "overwritten wall",
            &["Soooo", "  ##o", "#   o", "# ##o", "#   G"],
        );
        invalid(
            "overwritten start",
            &["ooooo", "# ##o", "#   o", "# ##o", "#   G"],
        );
        invalid(
            "extra disconnected cell",
            &["Soooo", "# ##o", "#   o", "# ##o", "#o  G"],
        );
        invalid(
            "branch (degree 3)",
            &["Soooo", "# ##o", "#  oo", "# ##o", "#   G"],
        );
        invalid(
            "empty prediction",
            &["S    ", "# ## ", "#    ", "# ## ", "#   G"],
        );
        let (q, h, w) = grid(&["S   G", "     ", "     ", "     ", "     "]);
        let (cycle, _, _) = grid(&["SoooG", "     ", "     ", " oo  ", " oo  "]);
        assert!(!score(&q, &cycle, &cycle, h, w).valid, "separate loop");
        let (ok, _, _) = grid(&["SoooG", "     ", "     ", "     ", "     "]);
        assert!(score(&q, &ok, &cycle, h, w).optimal == Some(true));
        let (q, a, h, w) = label();
        assert!(!score(&q, &[], &a, h, w).valid);
        assert!(!score(&q, &vec![9; h * w], &a, h, w).valid);
        let mut extra_goal = a.clone();
        extra_goal[4] = GOAL;
        assert!(!score(&q, &extra_goal, &a, h, w).valid);
    }

    #[test]
    fn check_pair_kinds() {
        use ProblemKind::*;
        let (q, a, h, w) = label();
        let kind = |q: &[u8], a: &[u8], verify| check_pair(q, a, h, w, verify).unwrap_err().kind;
        let (longer, _, _) = grid(&LONGER);
        assert_eq!(check_pair(&q, &longer, h, w, false), Ok(()));
        assert_eq!(kind(&q, &longer, true), NotShortest);
        let mut no_goal = q.clone();
        no_goal[24] = OPEN;
        assert_eq!(kind(&no_goal, &no_goal, false), BadEndpoints);
        let mut two_starts = q.clone();
        two_starts[1] = START;
        assert_eq!(kind(&two_starts, &two_starts, false), BadEndpoints);
        let mut wall_gone = a.clone();
        wall_gone[5] = OPEN;
        assert_eq!(kind(&q, &wall_gone, false), ContradictsGivens);
        assert_eq!(kind(&q, &q, false), InvalidAnswer);
        assert_eq!(kind(&q, &a[1..], false), WrongLength);
        let (walled, _, _) = grid(&["S  # ", "#  # ", "#  # ", "####G", "#   #"]);
        assert_eq!(kind(&walled, &walled, true), NoPath);
        assert_eq!(kind(&walled, &walled, false), InvalidAnswer);
    }

    const HDR: &str = "source,question,answer,rating\n";

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mazes.csv");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    fn row(q: &[&str], a: &[&str]) -> String {
        format!("t,{},{},0\n", q.concat(), a.concat())
    }

    fn load_err(text: &str, verify: bool) -> String {
        let (_dir, path) = write(text);
        let opts = LoadOptions {
            skip_invalid: false,
            verify,
        };
        format!("{:#}", load_csv(&path, None, opts).unwrap_err())
    }

    #[test]
    fn bad_files_name_file_and_line() {
        let good = row(&Q, &A);
        let cases: Vec<(String, bool, &str)> = vec![
            (
                format!("{HDR}{good}t,S  #,S  #,0\n"),
                false,
                "mazes.csv:3: wrong length",
            ),
            (
                format!(
                    "{HDR}{good}{}",
                    row(&["S  .#", "# # #", "#   #", "# ###", "#  G "], &A)
                ),
                false,
                "mazes.csv:3: unknown character",
            ),
            (
                "source,question,rating\nt,S,0\n".to_string(),
                false,
                "mazes.csv:1: missing column `answer`",
            ),
            (String::new(), false, "mazes.csv: empty file"),
            (
                format!("{HDR}{good}{}", row(&Q, &A_NO_WALL)),
                false,
                "mazes.csv:3: answer contradicts givens",
            ),
            (
                format!(
                    "{HDR}{good}{}",
                    row(
                        &["S   #", "# # #", "#   #", "#####", "#  G "],
                        &["S   #", "# # #", "#   #", "#####", "#  G "]
                    )
                ),
                true,
                "mazes.csv:3: no path",
            ),
            (
                format!(
                    "{HDR}{good}{}",
                    row(
                        &["S   G", "     ", "     ", "     ", "     "],
                        &["So  G", "     ", "     ", "     ", "     "]
                    )
                ),
                false,
                "mazes.csv:3: invalid answer",
            ),
            (
                format!("{HDR}{good}t,{},,0\n", Q.concat()),
                false,
                "mazes.csv:3: missing answer",
            ),
        ];
        for (text, verify, want) in cases {
            let msg = load_err(&text, verify);
            assert!(msg.contains(want), "expected {want:?} in {msg:?}");
        }
        // On an open 5x5 grid S -> G takes 8 moves; this detour takes 12.
        let detour = row(
            &["S    ", "     ", "     ", "     ", "    G"],
            &["S ooo", "o o o", "ooo o", "    o", "    G"],
        );
        let msg = load_err(&format!("{HDR}{good}{detour}"), true);
        assert!(msg.contains("mazes.csv:3: path not shortest"), "{msg}");
        assert!(msg.contains("12 moves, the shortest has 8"), "{msg}");
    }

    #[test]
    fn skip_invalid_counts_by_kind() {
        let good = row(&Q, &A);
        let text = format!(
            "{HDR}{good}t,S,S,0\n{good}{}t,{},,0\n{good}",
            row(&Q, &A_NO_WALL),
            Q.concat()
        );
        let (_dir, path) = write(&text);
        let opts = LoadOptions {
            skip_invalid: true,
            verify: true,
        };
        let loaded = load_csv(&path, Some((5, 5)), opts).expect("skips");
        assert_eq!(loaded.pairs.len(), 3);
        assert_eq!(loaded.sources, vec!["t"; 3]);
        assert_eq!(loaded.n_skipped(), 3);
        for kind in [
            ProblemKind::WrongLength,
            ProblemKind::ContradictsGivens,
            ProblemKind::MissingAnswer,
        ] {
            assert_eq!(loaded.skipped.get(&kind), Some(&1), "{kind:?}");
        }
        assert_eq!(loaded.examples[0].line, 3);
        let report = stats(&loaded, 5, 5);
        assert!(
            report.contains("mazes: 3 (5x5)") && report.contains("min 7, mean 7.0, max 7"),
            "{report}"
        );
    }

    #[test]
    fn csv_round_trip() {
        let o = GenOptions::preset("20x20").expect("preset");
        let mazes = generate_many(&o, 30, 4).unwrap();
        let rows: Vec<_> = mazes.iter().map(|m| to_row(m, "gen", "0")).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.csv");
        csvio::write_rows(&path, &rows).expect("write");
        let opts = LoadOptions {
            skip_invalid: false,
            verify: true,
        };
        let loaded = load_csv(&path, None, opts).expect("load");
        assert_eq!(loaded.pairs, mazes);
        assert_eq!(
            load_csv(&path, Some((20, 20)), opts).expect("load").pairs,
            mazes
        );
        let report = stats(&loaded, 20, 20);
        assert!(
            report.contains("mazes: 30 (20x20)") && report.contains("shortest paths per maze"),
            "{report}"
        );
        assert!(bench_generate(&o, 5, 1).unwrap() > 0.0);
    }

    #[test]
    fn size_inference_failure_names_file() {
        let msg = load_err(&format!("{HDR}t,S G,SoG,0\n"), false);
        assert!(
            msg.contains("mazes.csv:2: cannot infer the maze size"),
            "{msg}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn parse_and_score_never_panic(q in "[# SGo.x]{0,30}", a in "[# SGo]{0,30}", h in 0usize..7, w in 0usize..7) {
            let _ = parse_grid(&q, h, w, false);
            let qg: Vec<u8> = q.bytes().map(|b| b % 7).collect();
            let ag: Vec<u8> = a.bytes().map(|b| b % 7).collect();
            let _ = score(&qg, &ag, &ag, h, w);
            let _ = check_pair(&qg, &ag, h, w, true);
            let _ = shortest_path(&qg, h, w);
            let _ = count_shortest_paths(&qg, h, w);
            let _ = transform(&qg, h, w, h + w);
            let _ = pretty(&qg, w);
        }

        #[test]
        fn score_of_mutated_labels_never_panics(seed in 0u64..1000, flips in proptest::collection::vec((0usize..81, 0u8..6), 0..6)) {
            let o = GenOptions::preset("9x9").expect("preset");
            let m = &generate_many(&o, 1, seed).unwrap()[0];
            let mut pred = m.answer.clone();
            for (i, v) in flips {
                pred[i] = v;
            }
            let s = score(&m.question, &pred, &m.answer, 9, 9);
            prop_assert_eq!(s.valid, check_pair(&m.question, &pred, 9, 9, false).is_ok());
            if s.valid {
                prop_assert!(s.len_ratio.unwrap_or(0.0) >= 1.0);
            }
        }

        #[test]
        fn load_never_panics(rows in proptest::collection::vec(("[a-z]{0,3}", "[# SGo,\"]{0,12}", "[# SGo]{0,10}"), 0..5)) {
            let mut text = String::from(HDR);
            for (s, q, a) in &rows {
                text += &format!("{s},{q},{a},1\n");
            }
            let (_dir, path) = write(&text);
            for (skip_invalid, verify) in [(true, true), (false, false)] {
                let _ = load_csv(&path, None, LoadOptions { skip_invalid, verify });
                let _ = load_csv(&path, Some((3, 3)), LoadOptions { skip_invalid, verify });
            }
        }
    }
}
