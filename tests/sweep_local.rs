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

/// SIGTERM to `sweep run` stops the trainer with a checkpoint (the run stays
/// `running`, "stopped; resumable", and the runner exits non-zero saying how
/// to resume); running the sweep again resumes from that step and finishes.
///
/// Deterministic: the trainer is frozen (SIGSTOP) as soon as it has written
/// a checkpoint, so it cannot finish before the runner forwards the stop;
/// it is let go (SIGCONT) once that signal is pending on it. Rejects a
/// runner that does not forward the stop, a trainer that stops without a
/// checkpoint or marks the run failed or done, and a rerun that starts over
/// instead of resuming.
#[test]
fn sigterm_to_the_runner_checkpoints_and_rerun_resumes() {
    let steps = 150;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("local_term.toml");
    std::fs::write(
        &file,
        sweep_text("local_term", steps).replace("seeds = [0, 1, 2]", "seeds = [5]"),
    )
    .unwrap();
    let results = tmp.path().join("results");
    let runner = spawn_runner(&results, &file, Stdio::piped);
    let (run, pid) = checkpointed_trainer(&results);
    // Should an assertion fail before the runner exits, end it and its trainer.
    let mut stray = KillOnPanic(vec![runner.id(), pid]);
    let frozen = Frozen::stop(pid);
    let at_freeze = checkpoint_step(&run);
    let st = state_of(&run);
    assert!(
        at_freeze < steps as u64 && st["state"] == "running" && st["reason"] == "",
        "the trainer finished before it could be stopped (raise train.steps): \
         checkpoint at step {at_freeze} of {steps}, status {st}"
    );
    unsafe { libc_kill(runner.id() as i32, 15) };
    wait_until(
        "the runner to forward the stop to the trainer",
        Duration::from_secs(30),
        || signal_pending(pid, 10),
    );
    drop(frozen);
    let out = runner.wait_with_output().unwrap();
    stray.0.clear();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("interrupted") && stderr.contains("again to resume"),
        "{stderr}"
    );
    assert!(stdout.contains("stopped with a checkpoint"), "{stdout}");
    let st = state_of(&run);
    assert_eq!(st["state"], "running", "a preempted run is resumable: {st}");
    assert_eq!(st["reason"], "stopped; resumable", "{st}");
    let stopped = checkpoint_step(&run);
    assert_eq!(st["step"], stopped, "{st}");
    assert!(
        at_freeze <= stopped && stopped < steps as u64,
        "stopped at {stopped}, frozen after {at_freeze}"
    );
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert!(log.contains(&format!("stopped at step {stopped}")), "{log}");
    assert!(!run.join("eval.csv").exists());

    let log = rerun_resumes(&results, &file, &run, stopped);
    assert_eq!(state_of(&run)["step"], steps);
    assert!(run.join("eval.csv").exists());
    assert_eq!(log.matches(" train --config ").count(), 2, "{log}");
}

/// Starts `trldm sweep run --results RESULTS FILE` in the background, its
/// output going where `out` says.
fn spawn_runner(results: &Path, file: &Path, out: fn() -> Stdio) -> std::process::Child {
    Command::new(BIN)
        .args(["sweep", "run", "--results"])
        .arg(results)
        .arg(file)
        .stdout(out())
        .stderr(out())
        .spawn()
        .unwrap()
}

/// Waits for a run of the sweep in `results` to have a checkpoint and a
/// live trainer; returns the run folder and the trainer's pid.
fn checkpointed_trainer(results: &Path) -> (PathBuf, u32) {
    let mut trainer: Option<(PathBuf, u32)> = None;
    wait_until("a checkpoint", Duration::from_secs(120), || {
        trainer = results
            .exists()
            .then(|| run_dirs(results))
            .into_iter()
            .flatten()
            .filter(|d| d.join("ckpt/last.json").exists())
            .find_map(|d| trainer_pid(&d).map(|pid| (d, pid)));
        trainer.is_some()
    });
    trainer.unwrap()
}

/// Runs the sweep again to the end and checks that `run` resumed from
/// `stopped` and is done; returns its train.log.
fn rerun_resumes(results: &Path, file: &Path, run: &Path, stopped: u64) -> String {
    let out = Command::new(BIN)
        .args(["sweep", "run", "--results"])
        .arg(results)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(state_of(run)["state"], "done");
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert!(log.contains(&format!("resumed at step {stopped}")), "{log}");
    log
}

/// The step of a run's newest checkpoint (`ckpt/last.json`).
fn checkpoint_step(run: &Path) -> u64 {
    let text = std::fs::read_to_string(run.join("ckpt/last.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["step"].as_u64().unwrap()
}

/// Whether signal `sig` is pending on process `pid` (/proc/PID/status).
fn signal_pending(pid: u32, sig: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().any(|l| {
        (l.starts_with("ShdPnd:") || l.starts_with("SigPnd:"))
            && u64::from_str_radix(l[7..].trim(), 16).is_ok_and(|m| m & (1 << (sig - 1)) != 0)
    })
}

/// Processes SIGKILLed when this is dropped during a panic.
struct KillOnPanic(Vec<u32>);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for &pid in &self.0 {
                unsafe { libc_kill(pid as i32, 9) };
            }
        }
    }
}

/// A process stopped with SIGSTOP until this is dropped (SIGCONT).
struct Frozen(u32);

impl Frozen {
    fn stop(pid: u32) -> Frozen {
        assert_eq!(unsafe { libc_kill(pid as i32, 19) }, 0, "SIGSTOP {pid}");
        // Stopped once /proc says so (state T).
        wait_until("the trainer to stop", Duration::from_secs(10), || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('T')
                })
                .unwrap_or(true)
        });
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        unsafe { libc_kill(self.0 as i32, 18) };
    }
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

/// A runner killed outright (SIGKILL, no chance to forward anything) does
/// not leave its trainer training unwatched: the trainer receives the stop
/// signal from the kernel (parent-death signal), checkpoints and exits, and
/// a rerun resumes from that checkpoint.
#[test]
fn a_killed_runner_stops_its_trainer_with_a_checkpoint() {
    let steps = 150;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("local_kill.toml");
    std::fs::write(
        &file,
        sweep_text("local_kill", steps).replace("seeds = [0, 1, 2]", "seeds = [6]"),
    )
    .unwrap();
    let results = tmp.path().join("results");
    let mut runner = spawn_runner(&results, &file, Stdio::null);
    let (run, pid) = checkpointed_trainer(&results);
    let mut stray = KillOnPanic(vec![runner.id(), pid]);
    let frozen = Frozen::stop(pid);
    let at_freeze = checkpoint_step(&run);
    assert!(at_freeze < steps as u64, "finished before the kill");
    runner.kill().unwrap();
    runner.wait().unwrap();
    wait_until(
        "the parent-death signal to reach the trainer",
        Duration::from_secs(30),
        || signal_pending(pid, 10),
    );
    drop(frozen);
    wait_until("the trainer to exit", Duration::from_secs(60), || {
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/status"))
                .is_ok_and(|s| s.contains("State:\tZ"))
    });
    stray.0.clear();
    let st = state_of(&run);
    assert_eq!(st["state"], "running", "{st}");
    assert_eq!(st["reason"], "stopped; resumable", "{st}");
    let stopped = checkpoint_step(&run);
    assert!(at_freeze <= stopped && stopped < steps as u64, "{st}");
    rerun_resumes(&results, &file, &run, stopped);
}

/// A second `sweep run` on a sweep folder that a live runner holds is
/// refused before it writes anything there (not even its plan), naming the
/// holder.
#[test]
fn a_second_runner_on_a_live_sweep_is_refused_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("local_twice.toml");
    std::fs::write(
        &file,
        sweep_text("local_twice", 400).replace("seeds = [0, 1, 2]", "seeds = [7]"),
    )
    .unwrap();
    let results = tmp.path().join("results");
    let runner = spawn_runner(&results, &file, Stdio::null);
    let mut stray = KillOnPanic(vec![runner.id()]);
    wait_until("the first runner's plan", Duration::from_secs(60), || {
        results.join("runs.csv").exists()
    });
    let plan = std::fs::read_to_string(results.join("sweep.toml")).unwrap();
    // The same sweep name with another plan: it must not replace the live one.
    std::fs::write(
        &file,
        sweep_text("local_twice", 400).replace("seeds = [0, 1, 2]", "seeds = [8]"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["sweep", "run", "--results"])
        .arg(&results)
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("is in use: another trldm process (pid"),
        "{text}"
    );
    assert!(text.contains(&runner.id().to_string()), "{text}");
    assert_eq!(
        std::fs::read_to_string(results.join("sweep.toml")).unwrap(),
        plan
    );
    assert_eq!(
        run_dirs(&results).len(),
        1,
        "the second plan made run folders"
    );
    stray.0.clear();
    unsafe { libc_kill(runner.id() as i32, 9) };
    let _ = runner.wait_with_output();
}
