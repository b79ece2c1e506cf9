//! The local runner against the real `trldm train` / `trldm eval`:
//! a killed trainer leaves its run resumable, a second `sweep run` finishes
//! only the missing runs, and SIGTERM to the runner checkpoints.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{count, run_dirs, state_of, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_trldm");

/// The tiny config every sweep test uses; `steps` long enough to interrupt.
fn sweep_text(name: &str, steps: u32) -> String {
    format!(
        "name = \"{name}\"\nseeds = [0, 1, 2]\n\n[base]\nmodel.d = 16\nmodel.heads = 2\nmodel.layers = 1\n\
         train.steps = {steps}\ntrain.ckpt_every = 10\ntrain.device = \"cpu\"\ntask.n_train = 64\ntask.n_test = 16\n\
         task.height = 5\ntask.width = 5\ntask.min_path_len = 3\nsample.steps = 4\n"
    )
}

fn status_json(file: &Path, results: &Path) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["sweep", "status", "--json", "--results"])
        .arg(results)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Pid of the `trldm train` process of `run`, from /proc.
fn trainer_pid(run: &Path) -> Option<u32> {
    let needle = format!("--run-dir\0{}\0", run.display());
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.contains("\0train\0") && cmd.contains(&needle) {
                return Some(pid);
            }
        }
    }
    None
}

fn has_checkpoint(run: &Path) -> bool {
    std::fs::read_dir(run.join("ckpt"))
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}

#[test]
fn killed_trainer_is_resumable_and_rerun_finishes_only_missing_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("local_kill.toml");
    std::fs::write(&file, sweep_text("local_kill", 300)).unwrap();
    let results = tmp.path().join("results");
    let runner = Command::new(BIN)
        .args(["sweep", "run", "--workers", "1", "--results"])
        .arg(&results)
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first run to reach a checkpoint gets its trainer SIGKILLed.
    let mut victim: Option<(PathBuf, u32)> = None;
    wait_until("a run with a checkpoint", Duration::from_secs(120), || {
        if !results.exists() {
            return false;
        }
        for d in run_dirs(&results) {
            if has_checkpoint(&d) && state_of(&d)["state"] == "running" {
                if let Some(pid) = trainer_pid(&d) {
                    victim = Some((d, pid));
                    return true;
                }
            }
        }
        false
    });
    let (victim, pid) = victim.unwrap();
    let rc = unsafe { libc_kill(pid as i32, 9) };
    assert_eq!(rc, 0);
    let out = runner.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "a failed run makes `sweep run` exit non-zero:\n{stdout}"
    );
    assert!(
        stdout.contains("FAILED") && stdout.contains("killed by signal 9"),
        "{stdout}"
    );
    let st = status_json(&file, &results);
    assert_eq!(count(&st, "done"), 2, "the other runs still ran: {st}");
    assert_eq!(count(&st, "failed"), 1, "{st}");
    assert!(
        has_checkpoint(&victim),
        "the killed run kept its checkpoint"
    );
    let mtimes: Vec<_> = run_dirs(&results)
        .iter()
        .filter(|d| **d != victim)
        .map(|d| {
            std::fs::metadata(d.join("eval.csv"))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();

    // Second run: only the killed run is run again, resuming.
    let out = Command::new(BIN)
        .args(["sweep", "run", "--workers", "2", "--results"])
        .arg(&results)
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 done already, 1 to run"), "{stdout}");
    let st = status_json(&file, &results);
    assert_eq!(count(&st, "done"), 3, "{st}");
    let after: Vec<_> = run_dirs(&results)
        .iter()
        .filter(|d| **d != victim)
        .map(|d| {
            std::fs::metadata(d.join("eval.csv"))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();
    assert_eq!(mtimes, after, "done runs were not rerun");
    let log = std::fs::read_to_string(victim.join("train.log")).unwrap();
    assert_eq!(
        log.matches(" train --config ").count(),
        2,
        "trained twice (killed, resumed):\n{log}"
    );
}

#[test]
fn sigterm_to_the_runner_checkpoints_and_rerun_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("local_term.toml");
    std::fs::write(
        &file,
        sweep_text("local_term", 300).replace("seeds = [0, 1, 2]", "seeds = [5]"),
    )
    .unwrap();
    let results = tmp.path().join("results");
    let runner = Command::new(BIN)
        .args(["sweep", "run", "--results"])
        .arg(&results)
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("a checkpoint", Duration::from_secs(120), || {
        results.exists()
            && run_dirs(&results)
                .iter()
                .any(|d| has_checkpoint(d) && trainer_pid(d).is_some())
    });
    let run = run_dirs(&results).remove(0);
    unsafe { libc_kill(runner.id() as i32, 15) };
    let out = runner.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Training may have just finished; otherwise the run stopped with a checkpoint.
    if !out.status.success() {
        assert!(
            stderr.contains("interrupted") && stderr.contains("again to resume"),
            "{stderr}"
        );
        assert_ne!(
            state_of(&run)["state"],
            "failed",
            "a preempted run is not failed"
        );
    }
    let out = Command::new(BIN)
        .args(["sweep", "run", "--results"])
        .arg(&results)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(state_of(&run)["state"], "done");
    assert!(run.join("eval.csv").exists());
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// `[local] ranks = 2` trains each run as 2 MPI ranks (`mpirun -n 2`); the
/// metrics equal those of the same run in one process (src/dist shards the
/// global batch, so both compute the same updates).
#[test]
fn data_parallel_local_runs_match_one_process() {
    if Command::new("mpirun").arg("--version").output().is_err() || !common::mpi_built() {
        common::missing(
            "mpirun is not installed or trldm built without the mpi feature \
             (scripts/setup.sh --system, make test)",
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut evals = Vec::new();
    for ranks in [1, 2] {
        let file = tmp.path().join(format!("dp{ranks}.toml"));
        let text = sweep_text(&format!("dp{ranks}"), 30)
            .replace("seeds = [0, 1, 2]", "seeds = [4]")
            + &format!("train.threads = 1\ntrain.batch = 8\n[local]\nranks = {ranks}\n");
        std::fs::write(&file, text).unwrap();
        let results = tmp.path().join(format!("results{ranks}"));
        let out = Command::new(BIN)
            .args([
                "sweep",
                "run",
                "--results",
                results.to_str().unwrap(),
                file.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{log}");
        let dirs = run_dirs(&results);
        assert_eq!(dirs.len(), 1);
        let train_log = std::fs::read_to_string(dirs[0].join("train.log")).unwrap();
        if ranks == 2 {
            assert!(train_log.contains("mpirun -n 2"), "{train_log}");
        }
        let eval = std::fs::read_to_string(dirs[0].join("eval.csv")).unwrap();
        // n, exact, valid, optimal, len_ratio, token_acc (timing columns differ).
        let row: Vec<String> = eval
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .take(6)
            .map(String::from)
            .collect();
        evals.push(row);
    }
    assert_eq!(evals[0], evals[1], "1 process vs 2 ranks");
}
