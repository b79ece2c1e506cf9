//! `scripts/gpu_check.sh`'s Table 5 row (SECTIONS=row, issue 15 item 5),
//! run here on the CPU with the model and data shrunk through ROW_SETS: the
//! same script that one call on the GPU machine runs, down to the updates
//! that fit in the budget and the run folder's files in $OUT.
mod common;
use std::path::Path;
use std::process::{Command, Output};

/// What shrinks the row to a CPU smoke test (the config's device is cuda).
const SMALL: &str = "--set train.device=cpu --set train.bf16=false --set train.threads=1 \
     --set task.height=5 --set task.width=5 --set task.min_path_len=4 \
     --set task.n_train=64 --set task.n_test=8 --set model.d=16 --set model.heads=2 \
     --set model.layers=1 --set model.n_rec=2 --set train.batch=8 --set train.warmup=2 \
     --set train.ckpt_every=1000 --set train.eval_every=0 --set eval.n_during=4 \
     --set sample.steps=8";

fn gpu_check(out: &Path, budget_s: &str, sets: &str) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv_py = root.join(".venv/bin/python");
    let py = if venv_py.exists() {
        venv_py.display().to_string()
    } else {
        "python3".into()
    };
    Command::new("bash")
        .arg(root.join("scripts/gpu_check.sh"))
        .current_dir(root)
        .env("TRLDM_BIN", env!("CARGO_BIN_EXE_trldm"))
        .env("PYTHON", py)
        .env("SECTIONS", "row")
        .env("ROW_BUDGET_S", budget_s)
        .env("ROW_BENCH_STEPS", "5")
        .env("ROW_SETS", sets)
        .env("OUT", out)
        .env("CUDA_VISIBLE_DEVICES", "")
        .output()
        .expect("run scripts/gpu_check.sh")
}

#[test]
fn the_table5_row_trains_what_fits_in_its_budget_and_keeps_the_run_files() {
    let tmp = tempfile::tempdir().unwrap();
    let o = gpu_check(tmp.path(), "3", SMALL);
    let log = common::text(&o);
    assert!(o.status.success(), "{log}");
    // "table5-row: N updates fit in 3 s (the paper: 20,000)"
    let n: u64 = log
        .lines()
        .find(|l| l.contains("updates fit in 3 s"))
        .and_then(|l| l.trim().strip_prefix("table5-row: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'updates fit' line:\n{log}"));
    assert!((1..=20_000).contains(&n), "{n} updates\n{log}");
    // "table5-row-bench: ... tokens/s, S steps/s, ...": N = ⌊3 s · S⌋.
    let sps: f64 = log
        .lines()
        .find_map(|l| l.strip_prefix("table5-row-bench: "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|l| l.strip_suffix(" steps/s"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no bench line:\n{log}"));
    let want = (3.0 * sps).min(20_000.0);
    assert!(
        (n as f64 - want).abs() <= 1.1,
        "{n} updates, {sps} steps/s\n{log}"
    );
    let row = tmp.path().join("table5-row");
    let config = std::fs::read_to_string(row.join("config.toml")).unwrap();
    assert!(config.contains(&format!("steps = {n}\n")), "{config}");
    assert!(
        config.contains("n_rec = 2"),
        "ROW_SETS reached train: {config}"
    );
    let eval = common::first_row(&row.join("eval.csv"));
    assert_eq!(eval[0], "8", "all 8 test mazes evaluated: {eval:?}");
    let trained = std::fs::read_to_string(row.join("train.csv")).unwrap();
    assert!(trained.lines().count() > 1, "{trained}");
    assert!(log.contains("the paper (Table 5"), "{log}");
}

#[test]
fn a_failing_row_fails_the_script_without_claiming_updates() {
    let tmp = tempfile::tempdir().unwrap();
    let o = gpu_check(tmp.path(), "3", &format!("{SMALL} --set model.n_recc=2"));
    let log = common::text(&o);
    assert!(!o.status.success(), "{log}");
    assert!(log.contains("model.n_recc"), "the bad key is named:\n{log}");
    assert!(!log.contains("updates fit"), "{log}");
    assert!(!tmp.path().join("table5-row").exists(), "{log}");
}
