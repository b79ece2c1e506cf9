//! The text form of a maze: cell codes, parsing, formatting.
use super::*;
use crate::tasks::{Problem, ProblemKind};
use anyhow::Result;

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
