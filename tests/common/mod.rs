//! Helpers shared by the integration tests (run folders, status, polling, weights).
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
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

/// A test whose dependency is missing: under CI (`CI` set) or with
/// `TRLDM_REQUIRE_ALL=1` that is a failure, so a green CI run means the test
/// ran; elsewhere it prints why it skips. The caller returns afterwards.
pub fn missing(what: &str) {
    let required = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
        || std::env::var("TRLDM_REQUIRE_ALL").is_ok_and(|v| v == "1");
    if required {
        panic!("{what}; CI or TRLDM_REQUIRE_ALL=1 requires every dependency (scripts/setup.sh --system)");
    }
    eprintln!("skipped: {what}");
}

/// Whether this test binary was built with the `mpi` feature (`make test`).
pub fn mpi_built() -> bool {
    cfg!(feature = "mpi")
}

/// Runs the trldm binary with `args` and waits for it.
pub fn trldm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trldm"))
        .args(args)
        .output()
        .expect("run trldm")
}

/// A finished command's stdout and stderr, for messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The fields of the first data row of a CSV file with a header
/// (`eval.csv`).
pub fn first_row(path: &Path) -> Vec<String> {
    let t = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let row = t
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("{}: no data row", path.display()));
    row.split(',').map(String::from).collect()
}

/// The shared folder (`TRLDM_SHARED`, else ../shared): real puzzles under data/.
pub fn shared_dir() -> PathBuf {
    std::env::var("TRLDM_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

/// Every variable of a var store as (name, values), sorted by name: two
/// models have the same weights when these are equal.
pub fn sorted_weights(vs: &tch::nn::VarStore) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<(String, Vec<f32>)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}
