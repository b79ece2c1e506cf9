//! Validity of predicted paths and of question/answer pairs.
use super::*;
use crate::tasks::{Problem, ProblemKind};
use anyhow::Result;

/// Follows the predicted path from `S`: the `PATH` cells plus `S` and `G`
/// must form one simple 4-connected chain (S and G of degree 1, path cells of
/// degree 2, nothing left over). Returns its length in moves, or why not.
/// `pred` must already keep the question's walls/S/G (see [`copies_givens`]).
pub(super) fn path_moves(
    pred: &[u8],
    h: usize,
    w: usize,
    s: usize,
    g: usize,
) -> Result<usize, String> {
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
pub(super) fn copies_givens(question: &[u8], pred: &[u8], w: usize) -> Result<(), String> {
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
