//! Loading and writing puzzle files (CSV and plain text).
use super::*;
use crate::tasks::csvio::{self, CsvRow};
use crate::tasks::{LoadOptions, Loaded, Pair, Problem, ProblemKind};
use anyhow::Result;
use std::path::Path;

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
