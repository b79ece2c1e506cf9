//! The Searchformer-style maze generator.
use super::*;
use crate::tasks::Pair;
use anyhow::{bail, Result};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

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
