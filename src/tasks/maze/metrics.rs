//! The paper's metrics (exact, valid, optimal, length ratio).
use super::*;
use crate::tasks::Score;

/// The paper's maze metrics (Sec. 9, Tables 1 and 5) for one prediction.
///
/// * `exact`: `pred == answer`.
/// * `valid`: `pred` keeps the question's walls/S/G, turns open cells only
///   into open or path, and its path cells with S and G form one simple
///   4-connected S-G path (as `ref_trldm.py`'s `maze_metrics`).
/// * `optimal`: valid and as short as a shortest path of the *question*
///   (BFS, not the label: shortest paths are not unique).
/// * `len_ratio`: predicted moves / shortest moves when valid, else 0.
///
/// Malformed inputs (wrong sizes, out-of-range codes, no unique S/G, no
/// path) give an invalid score, never a panic.
pub fn score(question: &[u8], pred: &[u8], answer: &[u8], h: usize, w: usize) -> Score {
    let moves = valid_moves(question, pred, h, w);
    let best = moves.and_then(|_| shortest_len(question, h, w));
    let (optimal, len_ratio) = match (moves, best) {
        (Some(m), Some(b)) if b > 0 => (m == b, m as f64 / b as f64),
        _ => (false, 0.0),
    };
    Score {
        exact: pred == answer,
        valid: moves.is_some() && best.is_some(),
        optimal: Some(optimal),
        len_ratio: Some(len_ratio),
    }
}

/// The predicted path length in moves if `pred` is a valid answer to `question`.
fn valid_moves(question: &[u8], pred: &[u8], h: usize, w: usize) -> Option<usize> {
    if question.len() != h * w || pred.len() != h * w || w == 0 {
        return None;
    }
    if question.iter().any(|&c| c >= N_CODES || c == PATH) {
        return None;
    }
    let (s, g) = endpoints(question).ok()?;
    copies_givens(question, pred, w).ok()?;
    path_moves(pred, h, w, s, g).ok()
}
