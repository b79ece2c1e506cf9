//! Puzzle tasks of the paper (Sec. 4, 7.1, 9.2): Sudoku(-Extreme) and Maze(-Hard).
//!
//! Each task module owns its grid format, generator, solver or shortest path,
//! augmentations and metrics. A grid is a `Vec<u8>` of *cell codes* in
//! row-major order (the codes are documented in each module); `tokens` maps
//! cell codes to model tokens. Files use the HRM/TRM CSV layout
//! `source,question,answer,rating` (see `csvio`).
pub mod csvio;
pub mod maze;
pub mod sudoku;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A question grid and its answer grid, both in cell codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub question: Vec<u8>,
    pub answer: Vec<u8>,
}

/// What is wrong with one row of a data file (counted by kind by `data check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemKind {
    WrongLength,
    UnknownChar,
    ContradictsGivens,
    InvalidAnswer,
    Unsolvable,
    MultipleSolutions,
    BadEndpoints,
    NoPath,
    NotShortest,
    MissingAnswer,
}

impl ProblemKind {
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::WrongLength => "wrong length",
            ProblemKind::UnknownChar => "unknown character",
            ProblemKind::ContradictsGivens => "answer contradicts givens",
            ProblemKind::InvalidAnswer => "invalid answer",
            ProblemKind::Unsolvable => "unsolvable",
            ProblemKind::MultipleSolutions => "multiple solutions",
            ProblemKind::BadEndpoints => "bad start/goal",
            ProblemKind::NoPath => "no path",
            ProblemKind::NotShortest => "path not shortest",
            ProblemKind::MissingAnswer => "missing answer",
        }
    }
}

/// One problem of one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub detail: String,
}

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Problem {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.detail)
    }
}

/// A problem located in a file: `file:line: kind: detail`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}:{line}: {problem}", file.display())]
pub struct RowError {
    pub file: PathBuf,
    pub line: usize,
    pub problem: Problem,
}

/// How strictly rows are loaded.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Skip bad rows (and count them) instead of failing on the first.
    pub skip_invalid: bool,
    /// Run the full check (solver / shortest path) on every row, not only the format.
    pub verify: bool,
}

/// Rows loaded from a file, with what was skipped.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub pairs: Vec<Pair>,
    /// Source column of each kept row (same order as `pairs`).
    pub sources: Vec<String>,
    /// Skipped rows by kind (only with `skip_invalid`).
    pub skipped: BTreeMap<ProblemKind, usize>,
    /// The first few skipped rows, for the report.
    pub examples: Vec<RowError>,
}

impl Loaded {
    pub fn n_skipped(&self) -> usize {
        self.skipped.values().sum()
    }

    /// Keep a good row or record a bad one; fails on a bad one unless `skip_invalid`.
    pub fn push(
        &mut self,
        opts: LoadOptions,
        file: &Path,
        line: usize,
        source: &str,
        row: Result<Pair, Problem>,
    ) -> Result<(), RowError> {
        match row {
            Ok(pair) => {
                self.pairs.push(pair);
                self.sources.push(source.to_string());
                Ok(())
            }
            Err(problem) => {
                let err = RowError {
                    file: file.to_path_buf(),
                    line,
                    problem,
                };
                if !opts.skip_invalid {
                    return Err(err);
                }
                *self.skipped.entry(err.problem.kind).or_default() += 1;
                if self.examples.len() < 10 {
                    self.examples.push(err);
                }
                Ok(())
            }
        }
    }
}

/// The paper's per-puzzle metrics (Sec. 9, Tables 1-5).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Score {
    /// The whole response equals the target.
    pub exact: bool,
    /// A legal solution (Sudoku: all constraints hold and givens kept;
    /// maze: one simple S->G path over open cells, walls/S/G unchanged).
    pub valid: bool,
    /// Maze only: valid and as short as a shortest path.
    pub optimal: Option<bool>,
    /// Maze only: predicted path length / optimal length, 0 when invalid.
    pub len_ratio: Option<f64>,
}
