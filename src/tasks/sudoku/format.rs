//! The text form of a grid: cell codes, parsing, formatting.
use super::*;
use crate::tasks::{Problem, ProblemKind};
use anyhow::Result;

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
pub(super) fn code_char(code: u8) -> char {
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
