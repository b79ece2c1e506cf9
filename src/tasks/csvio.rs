//! The HRM/TRM puzzle CSV layout: a header naming at least `question`
//! (and usually `source`, `answer`, `rating`), one puzzle per row.
//! Reading checks the header and names the file and line of every problem;
//! writing is atomic (temp file + rename).
use anyhow::{bail, Context, Result};
use std::path::Path;

/// One data row; `line` is the 1-based line number in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRow {
    pub line: usize,
    pub source: String,
    pub question: String,
    pub answer: Option<String>,
    pub rating: String,
}

/// Reads every row. Fails with `file: ...` on an empty file, a header without
/// a `question` column (or without `answer` when `need_answer`), or a row
/// that is not valid CSV (`file:line: ...`).
pub fn read_rows(path: &Path, need_answer: bool) -> Result<Vec<CsvRow>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    parse_rows(&text, path, need_answer)
}

/// As [`read_rows`], from text already in memory (`path` names it in errors).
pub fn parse_rows(text: &str, path: &Path, need_answer: bool) -> Result<Vec<CsvRow>> {
    let file = path.display();
    if text.trim().is_empty() {
        bail!("{file}: empty file (expected a header `source,question,answer,rating` and rows)");
    }
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::None)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .with_context(|| format!("{file}:1: cannot read the CSV header"))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let Some(q) = col("question") else {
        bail!(
            "{file}:1: missing column `question` (header is `{}`; expected `source,question,answer,rating`)",
            headers.iter().collect::<Vec<_>>().join(",")
        );
    };
    let a = col("answer");
    if need_answer && a.is_none() {
        bail!(
            "{file}:1: missing column `answer` (header is `{}`)",
            headers.iter().collect::<Vec<_>>().join(",")
        );
    }
    let (s, r) = (col("source"), col("rating"));
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            anyhow::anyhow!("{file}:{line}: malformed CSV row: {e}")
        })?;
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
        let get = |i: Option<usize>| i.and_then(|i| rec.get(i)).unwrap_or("").to_string();
        rows.push(CsvRow {
            line,
            source: get(s),
            question: get(Some(q)),
            answer: a.map(|i| rec.get(i).unwrap_or("").to_string()),
            rating: get(r),
        });
    }
    if rows.is_empty() {
        bail!("{file}: no data rows after the header");
    }
    Ok(rows)
}

/// Writes rows with the header `source,question,answer,rating`, atomically.
pub fn write_rows(path: &Path, rows: &[CsvRow]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["source", "question", "answer", "rating"])?;
    for r in rows {
        w.write_record([
            r.source.as_str(),
            r.question.as_str(),
            r.answer.as_deref().unwrap_or(""),
            r.rating.as_str(),
        ])?;
    }
    let bytes = w.into_inner().context("flushing CSV")?;
    crate::util::write_atomic(path, &bytes)
}
