//! Helpers shared by the sweep integration tests (run folders, status, polling).
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Polls `f` every 100 ms until it holds; fails after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs in `state` according to `trldm sweep status --json`.
pub fn count(v: &serde_json::Value, state: &str) -> u64 {
    v["counts"][state].as_u64().unwrap_or(0)
}

/// A run folder's status.json (Null when absent or unreadable).
pub fn state_of(run: &Path) -> serde_json::Value {
    std::fs::read(run.join("status.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// The run folders of a sweep's results folder, sorted.
pub fn run_dirs(results: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(results)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("config.toml").exists())
        .collect();
    v.sort();
    v
}
