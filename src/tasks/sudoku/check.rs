//! Validity of answers and question/answer pairs.
use super::*;
use crate::tasks::{Problem, ProblemKind};
use anyhow::Result;

/// Cells of unit `u` of a grid of box size `n`: rows, then columns, then boxes.
fn unit_cells(n: usize, u: usize) -> impl Iterator<Item = usize> {
    let side = n * n;
    let (kind, k) = (u / side, u % side);
    (0..side).map(move |j| match kind {
        0 => k * side + j,
        1 => j * side + k,
        _ => (k / n * n + j / n) * side + k % n * n + j % n,
    })
}

/// The name of unit `u` for messages (`row 3`, `column 5`, `box 2`, 1-based).
fn unit_name(n: usize, u: usize) -> String {
    let side = n * n;
    let kind = ["row", "column", "box"][(u / side).min(2)];
    format!("{kind} {}", u % side + 1)
}

/// `row R, column C` (1-based) of a cell.
fn cell_name(n: usize, cell: usize) -> String {
    let side = (n * n).max(1);
    format!("row {}, column {}", cell / side + 1, cell % side + 1)
}

/// The first reason `answer` is not a solution of `question`, if any.
fn violation(question: &[u8], answer: &[u8], n: usize) -> Option<Problem> {
    let side = n * n;
    let cells = side * side;
    if question.len() != cells || answer.len() != cells {
        return Some(Problem::new(
            ProblemKind::WrongLength,
            format!(
                "question has {} cells, answer {}, expected {cells}",
                question.len(),
                answer.len()
            ),
        ));
    }
    if let Some(i) =
        (0..cells).find(|&i| question[i] != 0 && answer[i] != 0 && answer[i] != question[i])
    {
        return Some(Problem::new(
            ProblemKind::ContradictsGivens,
            format!(
                "{}: given {} but answer {}",
                cell_name(n, i),
                code_char(question[i]),
                code_char(answer[i])
            ),
        ));
    }
    if let Some(i) = (0..cells).find(|&i| answer[i] == 0 || usize::from(answer[i]) > side) {
        let what = if answer[i] == 0 {
            "blank"
        } else {
            "out of range"
        };
        return Some(Problem::new(
            ProblemKind::InvalidAnswer,
            format!("{}: {what} cell in the answer", cell_name(n, i)),
        ));
    }
    if side > 64 {
        return Some(Problem::new(ProblemKind::InvalidAnswer, "grid too large"));
    }
    for u in 0..3 * side {
        let mut seen = 0u64;
        for i in unit_cells(n, u) {
            let b = 1u64 << (answer[i] - 1);
            if seen & b != 0 {
                return Some(Problem::new(
                    ProblemKind::InvalidAnswer,
                    format!("{} has {} twice", unit_name(n, u), code_char(answer[i])),
                ));
            }
            seen |= b;
        }
    }
    None
}

/// Whether `answer` is a legal solution of `question`: every row, column and
/// box is a permutation of `1..=N` and every given is kept (the paper's
/// "Valid"). Wrong lengths, blanks or codes out of range give false.
pub fn is_valid_solution(question: &[u8], answer: &[u8], n: usize) -> bool {
    violation(question, answer, n).is_none()
}

/// Checks a question/answer pair: `ContradictsGivens` when the answer changes
/// a given, `InvalidAnswer` when it has blanks or breaks a constraint. With
/// `verify`, the question is also solved: `Unsolvable` (no solution) or
/// `MultipleSolutions` (two or more).
pub fn check_pair(q: &[u8], a: &[u8], n: usize, verify: bool) -> Result<(), Problem> {
    if let Some(problem) = violation(q, a, n) {
        return Err(problem);
    }
    if verify {
        unique_solution(q, n)?;
    }
    Ok(())
}

/// The unique solution of `q`, or `Unsolvable` / `MultipleSolutions`.
pub fn unique_solution(q: &[u8], n: usize) -> Result<Vec<u8>, Problem> {
    let sol = solve(q, n, 2);
    match (sol.count, sol.first) {
        (1, Some(first)) => Ok(first),
        (0, _) => Err(Problem::new(
            ProblemKind::Unsolvable,
            "the question has no solution",
        )),
        _ => Err(Problem::new(
            ProblemKind::MultipleSolutions,
            "the question has more than one solution",
        )),
    }
}
