//! Where each run of a sweep stands, from its folder (and squeue when known).
//!
//! The run folders are the truth (`status.json` + `eval.csv`); SLURM only
//! adds what the folders cannot know: whether a task is pending or running
//! right now. Never uses `sacct`, so it works without slurmdbd.
use super::folder::SweepFolder;
use super::grid::PlannedRun;
use crate::run::{read_status, State, Status};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The state shown for one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    /// status.json says done and eval.csv exists.
    Done,
    Failed,
    Diverged,
    /// Training now (status.json `running`, or squeue `R`).
    Running,
    /// In the SLURM queue, waiting.
    Pending,
    /// Planned, never started.
    Queued,
    /// Started, not done, and no longer in the SLURM queue (killed or
    /// preempted without requeue): resumable with `sweep retry` / `sweep run`.
    Interrupted,
    /// No run folder / status file (not planned into this folder yet).
    Missing,
}

impl View {
    pub fn name(self) -> &'static str {
        match self {
            View::Done => "done",
            View::Failed => "failed",
            View::Diverged => "diverged",
            View::Running => "running",
            View::Pending => "pending",
            View::Queued => "queued",
            View::Interrupted => "interrupted",
            View::Missing => "missing",
        }
    }
    pub const ALL: [View; 8] = [
        View::Done,
        View::Running,
        View::Pending,
        View::Queued,
        View::Interrupted,
        View::Failed,
        View::Diverged,
        View::Missing,
    ];
}

/// What SLURM says about one array task right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueState {
    Pending,
    Running,
}

/// One run's row in `sweep status`.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    pub id: String,
    pub view: View,
    pub step: u64,
    pub requeues: u32,
    pub reason: String,
}

/// The file-only view of a run (`status.json` + `eval.csv`).
pub fn file_view(status: Option<&Status>, eval_exists: bool) -> View {
    match status {
        None => View::Missing,
        Some(s) => match s.state {
            State::Done if eval_exists => View::Done,
            State::Done => View::Running, // trained, evaluation pending
            State::Failed => View::Failed,
            State::Diverged => View::Diverged,
            State::Running => View::Running,
            State::Queued => View::Queued,
        },
    }
}

/// Combines the file view with the queue. `tracked` = the sweep has SLURM
/// jobs recorded and squeue answered, so absence from the queue means
/// "not in SLURM any more".
pub fn combine(file: View, queue: Option<QueueState>, tracked: bool) -> View {
    match (file, queue) {
        (View::Done | View::Failed | View::Diverged, _) => file,
        (_, Some(QueueState::Running)) => View::Running,
        (_, Some(QueueState::Pending)) => View::Pending,
        (View::Running, None) if tracked => View::Interrupted,
        _ => file,
    }
}

/// Reads every planned run's folder; `queue` maps array index -> state.
pub fn collect(
    folder: &SweepFolder,
    runs: &[PlannedRun],
    indices: &[usize],
    queue: Option<&HashMap<usize, QueueState>>,
) -> Vec<RunView> {
    runs.iter()
        .zip(indices)
        .map(|(r, idx)| {
            let dir = folder.run_dir(&r.id);
            let (status, reason) = match read_status(&dir.status_path()) {
                Ok(s) => (s, String::new()),
                Err(e) => (None, format!("{e:#}")),
            };
            let eval =
                status.as_ref().is_some_and(|s| s.state == State::Done) && dir.eval_csv().exists();
            let fv = file_view(status.as_ref(), eval);
            let q = queue.and_then(|m| m.get(idx).copied());
            let view = combine(fv, q, queue.is_some());
            RunView {
                id: r.id.clone(),
                view,
                step: status.as_ref().map(|s| s.step).unwrap_or(0),
                requeues: status.as_ref().map(|s| s.requeues).unwrap_or(0),
                reason: status
                    .map(|s| s.reason)
                    .filter(|r| !r.is_empty())
                    .unwrap_or(reason),
            }
        })
        .collect()
}

/// Runs per state (every state present, zeros included).
pub fn count(views: &[RunView]) -> BTreeMap<View, usize> {
    let mut out: BTreeMap<View, usize> = View::ALL.iter().map(|v| (*v, 0)).collect();
    for v in views {
        *out.entry(v.view).or_default() += 1;
    }
    out
}
