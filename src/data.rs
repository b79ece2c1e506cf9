//! Tokenised data sets (Sec. 4, 7.1): the fixed-length token layout of each
//! task, the response-position mask, loading or generating the splits of a
//! run, and batching.
//!
//! Vocabulary: `PAD = 0`, `MASK = 1`, and cell code `c` of the task is token
//! `c + 2` (Sudoku: 2 = blank, 3.. = digits 1..N; maze: 2 wall, 3 open,
//! 4 start, 5 goal, 6 path). Two layouts:
//! - `inplace` (default, as TRM/HRM and the paper's "length 81" / "H×W"):
//!   one token per cell; prompt positions hold the givens (Sudoku clues;
//!   maze walls, S and G), response positions are the cells to fill (Sudoku
//!   blanks; maze open cells), which the input shows as `MASK`.
//! - `concat`: `[p | r]`, the whole question grid then the whole answer grid
//!   (2 × cells tokens); every answer cell is a response position.
pub use crate::config::Layout;
use crate::config::{Puzzle, RunConfig};
use crate::tasks::{maze, sudoku, LoadOptions, Pair, Score};
use anyhow::{bail, Context, Result};
use rand::Rng;
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub const PAD: i64 = 0;
pub const MASK: i64 = 1;
/// Token of cell code 0.
pub const FIRST_CELL: i64 = 2;

/// The puzzle family and its grid size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    Sudoku { box_size: usize },
    Maze { height: usize, width: usize },
}

/// One puzzle as model inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The prompt with every response position set to `MASK`.
    pub input: Vec<i64>,
    /// The clean sequence x0 = [p, r0].
    pub target: Vec<i64>,
    /// Response positions (the only ones masked and scored).
    pub resp: Vec<bool>,
}

/// Task + layout: everything needed to encode, decode and score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskInfo {
    pub kind: TaskKind,
    pub layout: Layout,
    /// Loss weight of maze path tokens (Sec. 9.5).
    pub path_weight: f64,
}

impl TaskInfo {
    pub fn from_config(cfg: &RunConfig) -> TaskInfo {
        let kind = match cfg.task.kind {
            Puzzle::Sudoku => TaskKind::Sudoku {
                box_size: cfg.task.box_size,
            },
            Puzzle::Maze => TaskKind::Maze {
                height: cfg.task.height,
                width: cfg.task.width,
            },
        };
        TaskInfo {
            kind,
            layout: cfg.task.layout,
            path_weight: cfg.train.path_weight,
        }
    }

    pub fn cells(&self) -> usize {
        match self.kind {
            TaskKind::Sudoku { box_size } => box_size.pow(4),
            TaskKind::Maze { height, width } => height * width,
        }
    }

    pub fn seq_len(&self) -> usize {
        match self.layout {
            Layout::InPlace => self.cells(),
            Layout::Concat => 2 * self.cells(),
        }
    }

    /// Number of cell codes (Sudoku: blank + N digits; maze: 5).
    pub fn codes(&self) -> usize {
        match self.kind {
            TaskKind::Sudoku { box_size } => box_size * box_size + 1,
            TaskKind::Maze { .. } => 5,
        }
    }

    pub fn vocab(&self) -> usize {
        FIRST_CELL as usize + self.codes()
    }

    /// (height, width) of the grid.
    pub fn grid(&self) -> (usize, usize) {
        match self.kind {
            TaskKind::Sudoku { box_size } => (box_size * box_size, box_size * box_size),
            TaskKind::Maze { height, width } => (height, width),
        }
    }

    /// Is a question cell one the model must fill (in-place layout)?
    fn is_response_cell(&self, code: u8) -> bool {
        match self.kind {
            TaskKind::Sudoku { .. } => code == 0,
            TaskKind::Maze { .. } => code == maze::OPEN,
        }
    }

    pub fn encode(&self, pair: &Pair) -> Encoded {
        let tok = |c: u8| c as i64 + FIRST_CELL;
        match self.layout {
            Layout::InPlace => {
                let resp: Vec<bool> = pair
                    .question
                    .iter()
                    .map(|&c| self.is_response_cell(c))
                    .collect();
                let input = pair
                    .question
                    .iter()
                    .zip(&resp)
                    .map(|(&c, &r)| if r { MASK } else { tok(c) })
                    .collect();
                let target = pair.answer.iter().map(|&c| tok(c)).collect();
                Encoded {
                    input,
                    target,
                    resp,
                }
            }
            Layout::Concat => {
                let n = pair.question.len();
                let q: Vec<i64> = pair.question.iter().map(|&c| tok(c)).collect();
                let mut input = q.clone();
                input.extend(std::iter::repeat_n(MASK, n));
                let mut target = q;
                target.extend(pair.answer.iter().map(|&c| tok(c)));
                let mut resp = vec![false; n];
                resp.extend(std::iter::repeat_n(true, n));
                Encoded {
                    input,
                    target,
                    resp,
                }
            }
        }
    }

    /// The answer grid in cell codes from a full token sequence; tokens that
    /// are no cell (PAD, MASK, out of range) become 255, which every metric
    /// scores as wrong.
    pub fn decode(&self, tokens: &[i64]) -> Vec<u8> {
        let cells = self.cells();
        let part = match self.layout {
            Layout::InPlace => &tokens[..cells],
            Layout::Concat => &tokens[cells..2 * cells],
        };
        let codes = self.codes() as i64;
        part.iter()
            .map(|&t| {
                let c = t - FIRST_CELL;
                if (0..codes).contains(&c) {
                    c as u8
                } else {
                    255
                }
            })
            .collect()
    }

    /// The paper's metrics of one predicted answer grid.
    pub fn score(&self, pair: &Pair, pred: &[u8]) -> Score {
        match self.kind {
            TaskKind::Sudoku { box_size } => {
                sudoku::score(&pair.question, pred, &pair.answer, box_size)
            }
            TaskKind::Maze { height, width } => {
                maze::score(&pair.question, pred, &pair.answer, height, width)
            }
        }
    }

    /// Per-token loss weight of a target token (Sec. 9.5: path weight).
    pub fn token_weight(&self, target: i64) -> f32 {
        match self.kind {
            TaskKind::Maze { .. } if target == maze::PATH as i64 + FIRST_CELL => {
                self.path_weight as f32
            }
            _ => 1.0,
        }
    }

    /// A random symmetry of the task, applied to question and answer alike.
    pub fn augment(&self, pair: &Pair, rng: &mut impl Rng) -> Pair {
        match self.kind {
            TaskKind::Sudoku { box_size } => sudoku::augment(pair, box_size, rng),
            TaskKind::Maze { height, width } => maze::augment(pair, height, width, rng),
        }
    }

    /// How many symmetric copies of a puzzle test-time augmentation
    /// (`eval.tta`) can sample: the shape-preserving dihedral transforms of
    /// a maze (8 when square, else 4); 1 for Sudoku (the identity).
    pub fn n_symmetries(&self) -> usize {
        match self.kind {
            TaskKind::Sudoku { .. } => 1,
            TaskKind::Maze { height, width } => maze::shape_preserving(height, width).len(),
        }
    }

    /// The `k`-th symmetric copy of a puzzle (k = 0: the puzzle itself),
    /// question and answer transformed alike; `k < n_symmetries()`.
    pub fn symmetric(&self, pair: &Pair, k: usize) -> Pair {
        match self.kind {
            TaskKind::Sudoku { .. } => pair.clone(),
            TaskKind::Maze { height, width } => {
                let t = maze::shape_preserving(height, width)[k];
                Pair {
                    question: maze::transform(&pair.question, height, width, t).0,
                    answer: maze::transform(&pair.answer, height, width, t).0,
                }
            }
        }
    }

    /// An answer grid of the `k`-th symmetric copy, mapped back to the
    /// orientation of the original puzzle ([`TaskInfo::symmetric`] undone).
    pub fn unsymmetric(&self, grid: &[u8], k: usize) -> Vec<u8> {
        match self.kind {
            TaskKind::Sudoku { .. } => grid.to_vec(),
            TaskKind::Maze { height, width } => {
                // Shape-preserving transforms keep H x W.
                let t = maze::shape_preserving(height, width)[k];
                maze::transform(grid, height, width, maze::inverse(t)).0
            }
        }
    }

    /// A human-readable grid (for `trldm solve`).
    pub fn pretty(&self, grid: &[u8]) -> String {
        match self.kind {
            TaskKind::Sudoku { box_size } => sudoku::pretty(grid, box_size),
            TaskKind::Maze { width, .. } => maze::pretty(grid, width),
        }
    }

    /// Parses one question string of the task's CSV format.
    pub fn parse_question(&self, s: &str) -> Result<Vec<u8>> {
        let g = match self.kind {
            TaskKind::Sudoku { box_size } => sudoku::parse_grid(s, box_size),
            TaskKind::Maze { height, width } => maze::parse_grid(s, height, width, false),
        };
        g.map_err(|p| anyhow::anyhow!("puzzle: {p}"))
    }
}

/// A split as tensors, plus the pairs for scoring.
pub struct Dataset {
    pub info: TaskInfo,
    pub pairs: Vec<Pair>,
    /// [N, L] int64 inputs (response positions = MASK).
    pub input: Tensor,
    /// [N, L] int64 clean targets.
    pub target: Tensor,
    /// [N, L] bool response positions.
    pub resp: Tensor,
}

/// One minibatch on the training device.
pub struct Batch {
    pub input: Tensor,
    pub target: Tensor,
    pub resp: Tensor,
    /// [B, L] float per-token loss weights (path weight).
    pub weight: Tensor,
}

impl Dataset {
    pub fn new(info: TaskInfo, pairs: Vec<Pair>) -> Result<Dataset> {
        if pairs.is_empty() {
            bail!("empty data set");
        }
        let (input, target, resp) = encode_all(&info, &pairs)?;
        Ok(Dataset {
            info,
            pairs,
            input,
            target,
            resp,
        })
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The rows `idx` as a batch on `device`; with `rng`, each row gets a
    /// fresh random symmetry (online augmentation).
    pub fn batch(
        &self,
        idx: &[usize],
        device: Device,
        rng: Option<&mut rand_chacha::ChaCha8Rng>,
    ) -> Batch {
        let (input, target, resp) = match rng {
            Some(rng) => {
                let pairs: Vec<Pair> = idx
                    .iter()
                    .map(|&i| self.info.augment(&self.pairs[i], rng))
                    .collect();
                encode_all(&self.info, &pairs).expect("augmented pairs keep their size")
            }
            None => {
                let ix = Tensor::from_slice(&idx.iter().map(|&i| i as i64).collect::<Vec<_>>());
                (
                    self.input.index_select(0, &ix),
                    self.target.index_select(0, &ix),
                    self.resp.index_select(0, &ix),
                )
            }
        };
        let weight = weights(&self.info, &target);
        Batch {
            input: input.to_device(device),
            target: target.to_device(device),
            resp: resp.to_device(device),
            weight: weight.to_device(device),
        }
    }
}

fn weights(info: &TaskInfo, target: &Tensor) -> Tensor {
    let mut w = target.ones_like().to_kind(Kind::Float);
    let maze = matches!(info.kind, TaskKind::Maze { .. });
    for (token, weight) in class_weights(maze, info.path_weight) {
        let cls = target.eq(token).to_kind(Kind::Float);
        w += cls * (weight - 1.0);
    }
    w
}

/// The tokens whose Eq. 3 loss term is weighted by something other than 1,
/// with their weights: maze path cells get `train.path_weight` (Sec. 9.5).
pub fn class_weights(maze: bool, path_weight: f64) -> Vec<(i64, f64)> {
    if maze && path_weight != 1.0 {
        vec![(maze::PATH as i64 + FIRST_CELL, path_weight)]
    } else {
        Vec::new()
    }
}

/// Encodes puzzles as `[N, L]` (input, target, response mask) tensors; a
/// puzzle of the wrong size is an error.
pub fn encode_all(info: &TaskInfo, pairs: &[Pair]) -> Result<(Tensor, Tensor, Tensor)> {
    let l = info.seq_len();
    let mut input = Vec::with_capacity(pairs.len() * l);
    let mut target = Vec::with_capacity(pairs.len() * l);
    let mut resp = Vec::with_capacity(pairs.len() * l);
    for (i, p) in pairs.iter().enumerate() {
        if p.question.len() != info.cells() || p.answer.len() != info.cells() {
            bail!(
                "puzzle {i} has {} cells but the model is built for {} (task size in the config)",
                p.question.len(),
                info.cells()
            );
        }
        let e = info.encode(p);
        input.extend(e.input);
        target.extend(e.target);
        resp.extend(e.resp);
    }
    let n = pairs.len() as i64;
    let shape = [n, l as i64];
    Ok((
        Tensor::from_slice(&input).view(shape),
        Tensor::from_slice(&target).view(shape),
        Tensor::from_slice(&resp).view(shape),
    ))
}

/// Loads (or generates) the training and test pairs of a run.
pub fn load_splits(cfg: &RunConfig) -> Result<(Vec<Pair>, Vec<Pair>)> {
    let t = &cfg.task;
    let train = split(cfg, &t.train_csv, t.n_train, t.data_seed, "task.train_csv")?;
    // Disjoint stream for the test split.
    let test = split(
        cfg,
        &t.test_csv,
        t.n_test,
        t.data_seed ^ 0x7E57_7E57_7E57_7E57,
        "task.test_csv",
    )?;
    // The augmented set is held in memory: refuse one that cannot fit. Per
    // puzzle: its two grids, then the encoded int64 input and target and
    // the bool response mask (17 bytes a token), once as vectors and once
    // as tensors.
    let base = if t.subsample == 0 || cfg.task.kind != Puzzle::Sudoku {
        train.len()
    } else {
        t.subsample.min(train.len())
    };
    let per_puzzle = 2.0 * cfg.cells() as f64 + 2.0 * 17.0 * cfg.seq_len() as f64;
    let bytes = base as f64 * t.augment as f64 * per_puzzle;
    if let Some(avail) = crate::util::mem_available() {
        if bytes > avail as f64 / 2.0 {
            bail!(
                "task.augment = {}: {} puzzles x {} copies need about {:.1} GiB, more than half the {:.1} GiB this machine has available",
                t.augment,
                base,
                t.augment,
                bytes / (1u64 << 30) as f64,
                avail as f64 / (1u64 << 30) as f64
            );
        }
    }
    let train = if cfg.task.kind == Puzzle::Sudoku && (t.subsample > 0 || t.augment > 1) {
        let k = if t.subsample == 0 {
            train.len()
        } else {
            t.subsample
        };
        sudoku::subsample_augment(&train, k, t.augment, t.data_seed)
    } else if t.augment > 1 {
        augment_copies(cfg, &train, t.augment, t.data_seed)?
    } else {
        train
    };
    Ok((train, test))
}

/// K puzzles × A augmentations for mazes (dihedral), A = 1 = originals.
fn augment_copies(cfg: &RunConfig, pairs: &[Pair], a: usize, seed: u64) -> Result<Vec<Pair>> {
    use rand::SeedableRng;
    let info = TaskInfo::from_config(cfg);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(pairs.len() * a);
    for p in pairs {
        out.push(p.clone());
        for _ in 1..a {
            out.push(info.augment(p, &mut rng));
        }
    }
    Ok(out)
}

fn split(cfg: &RunConfig, csv: &str, n: usize, seed: u64, key: &str) -> Result<Vec<Pair>> {
    let t = &cfg.task;
    let opts = LoadOptions::default();
    let mut pairs = if !csv.is_empty() {
        let path = Path::new(csv);
        let loaded = if t.kind == Puzzle::Sudoku {
            sudoku::load_csv(path, Some(t.box_size), opts)
        } else {
            maze::load_csv(path, Some((t.height, t.width)), opts)
        }
        .with_context(|| format!("{key} = \"{csv}\""))?;
        loaded.pairs
    } else if t.kind == Puzzle::Sudoku {
        let opts = sudoku::GenOptions {
            n: t.box_size,
            clues: t.clues,
            min_guesses: None,
            max_guesses: None,
        };
        sudoku::generate_many(&opts, n, seed)
    } else {
        let opts = maze::GenOptions {
            h: t.height,
            w: t.width,
            wall_min: t.wall_min,
            wall_max: t.wall_max,
            min_path_len: t.min_path_len,
        };
        maze::generate_many(&opts, n, seed).map_err(|e| anyhow::anyhow!("task: {e:#}"))?
    };
    if !csv.is_empty() && n > 0 && pairs.len() > n {
        pairs.truncate(n);
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: TaskKind, layout: Layout) -> TaskInfo {
        TaskInfo {
            kind,
            layout,
            path_weight: 1.0,
        }
    }

    /// Test-time augmentation's copies (`eval.tta`): each copy is a maze
    /// its transformed answer solves, the copies are distinct, and
    /// `unsymmetric` maps a copy's grids back to the original's.
    #[test]
    fn symmetric_copies_are_solved_by_their_answer_and_map_back() {
        for (h, w, n) in [(7, 7, 8), (5, 7, 4)] {
            let info = info(
                TaskKind::Maze {
                    height: h,
                    width: w,
                },
                Layout::InPlace,
            );
            assert_eq!(info.n_symmetries(), n);
            let opts = maze::GenOptions {
                h,
                w,
                wall_min: 0.2,
                wall_max: 0.3,
                min_path_len: 4,
            };
            let mut distinct = 0;
            for p in maze::generate_many(&opts, 5, 3).unwrap() {
                let mut seen = std::collections::HashSet::new();
                for k in 0..n {
                    let c = info.symmetric(&p, k);
                    let sc = info.score(&c, &c.answer);
                    assert!(sc.exact && sc.valid && sc.optimal == Some(true), "k = {k}");
                    assert_eq!(info.unsymmetric(&c.answer, k), p.answer, "k = {k}");
                    assert_eq!(info.unsymmetric(&c.question, k), p.question, "k = {k}");
                    seen.insert(c.question);
                }
                distinct = distinct.max(seen.len());
            }
            assert_eq!(distinct, n, "{h}x{w}: the copies of some maze all differ");
        }
        let sudoku = info(TaskKind::Sudoku { box_size: 2 }, Layout::InPlace);
        assert_eq!(sudoku.n_symmetries(), 1);
    }

    #[test]
    fn encode_decode_round_trip_both_layouts() {
        let maze_pair = Pair {
            question: vec![2, 1, 1, 0, 1, 3, 0, 0, 1],
            answer: vec![2, 4, 4, 0, 4, 3, 0, 0, 1],
        };
        let sudoku_pair = Pair {
            question: vec![1, 0, 0, 4, 0, 4, 1, 0, 0, 1, 4, 0, 4, 0, 0, 1],
            answer: vec![1, 2, 3, 4, 3, 4, 1, 2, 2, 1, 4, 3, 4, 3, 2, 1],
        };
        for layout in [Layout::InPlace, Layout::Concat] {
            let m = info(
                TaskKind::Maze {
                    height: 3,
                    width: 3,
                },
                layout,
            );
            let s = info(TaskKind::Sudoku { box_size: 2 }, layout);
            for (ti, p) in [(m, &maze_pair), (s, &sudoku_pair)] {
                let e = ti.encode(p);
                assert_eq!(e.input.len(), ti.seq_len());
                assert_eq!(ti.decode(&e.target), p.answer, "{layout:?}");
                // The input shows MASK exactly at response positions.
                for (i, r) in e.resp.iter().enumerate() {
                    assert_eq!(e.input[i] == MASK, *r);
                    assert!(*r || e.input[i] == e.target[i]);
                }
            }
        }
    }

    #[test]
    fn inplace_response_positions_are_the_cells_to_fill() {
        let m = info(
            TaskKind::Maze {
                height: 1,
                width: 4,
            },
            Layout::InPlace,
        );
        let e = m.encode(&Pair {
            question: vec![2, 1, 0, 3],
            answer: vec![2, 4, 0, 3],
        });
        assert_eq!(e.resp, vec![false, true, false, false]);
        assert_eq!(e.input, vec![4, MASK, 2, 5]);
        assert_eq!(m.decode(&[4, MASK, 2, 99]), vec![2, 255, 0, 255]);
    }
}
