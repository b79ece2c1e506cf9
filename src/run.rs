//! A run folder and its state file (see `docs/RUNS.md`).
//!
//! ```text
//! <run>/config.toml   resolved RunConfig
//! <run>/status.json   {"state", "step", "reason", "updated", "requeues"}
//! <run>/train.csv     step,loss,lr,grad_norm,tokens_per_s,elapsed_s,eval_*
//! <run>/eval.csv      one row of final metrics (header = metric names)
//! <run>/ckpt/         step-N.safetensors + last.json (docs/CHECKPOINTS.md)
//! ```
//! Every file is written atomically, so a reader never sees half a file.
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Queued,
    Running,
    Done,
    Failed,
    Diverged,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
            State::Diverged => "diverged",
        }
    }
}

/// Contents of `<run>/status.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub state: State,
    /// Last optimizer step reached.
    #[serde(default)]
    pub step: u64,
    /// Why the run failed or diverged (empty otherwise).
    #[serde(default)]
    pub reason: String,
    /// Unix seconds of the last update.
    #[serde(default)]
    pub updated: u64,
    /// SLURM requeues so far.
    #[serde(default)]
    pub requeues: u32,
}

impl Status {
    pub fn new(state: State, step: u64, reason: impl Into<String>) -> Self {
        Status {
            state,
            step,
            reason: reason.into(),
            updated: now_secs(),
            requeues: 0,
        }
    }
}

/// Paths inside one run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn status_path(&self) -> PathBuf {
        self.root.join("status.json")
    }
    pub fn train_csv(&self) -> PathBuf {
        self.root.join("train.csv")
    }
    pub fn eval_csv(&self) -> PathBuf {
        self.root.join("eval.csv")
    }
    pub fn ckpt_dir(&self) -> PathBuf {
        self.root.join("ckpt")
    }

    /// The state file, or `None` when the run has not written one yet.
    pub fn status(&self) -> Result<Option<Status>> {
        read_status(&self.status_path())
    }

    /// Writes the state file atomically, keeping the requeue count.
    pub fn set_status(&self, state: State, step: u64, reason: &str) -> Result<()> {
        let requeues = self
            .status()
            .ok()
            .flatten()
            .map(|s| s.requeues)
            .unwrap_or(0);
        let mut s = Status::new(state, step, reason);
        s.requeues = requeues;
        self.write_status(&s)
    }

    pub fn write_status(&self, s: &Status) -> Result<()> {
        let json = serde_json::to_vec_pretty(s)?;
        crate::util::write_atomic(&self.status_path(), &json)
    }
}

/// Reads a `status.json`; `Ok(None)` when it does not exist.
pub fn read_status(path: &Path) -> Result<Option<Status>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{}: not a valid status file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("{}: cannot read", path.display())),
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
