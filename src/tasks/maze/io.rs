//! Loading and writing maze CSV files.
use super::*;
use crate::tasks::csvio::{self, CsvRow};
use crate::tasks::{LoadOptions, Loaded, Pair, Problem, ProblemKind};
use anyhow::{bail, Result};
use std::path::Path;

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
