//! One run = `trldm train --resume` (which evaluates at the end), and
//! `trldm eval` only when training left no `eval.csv`, as child processes.
//!
//! Used by the local runner (one call per worker and run) and by the hidden
//! `trldm sweep exec-run`, which the SLURM batch script `exec`s so that the
//! batch shell *is* this process and `--signal=B:USR1@N` reaches it.
//!
//! Signals: while a child runs, a stop request (SIGUSR1/SIGTERM/SIGINT on
//! this process, see `signals.rs`) is forwarded to the child once, always as
//! SIGUSR1: the trainer treats USR1 like TERM (checkpoint, exit 3), and USR1
//! never triggers its "second signal exits at once" rule when the child got
//! the original TERM/INT directly as well (Ctrl-C on a terminal, `scancel`).
//! Children get `TRLDM_NO_REQUEUE=1`: requeueing is this side's job.
use crate::run::{RunDir, State};
use crate::signals::{self, EXIT_PREEMPTED, NO_REQUEUE_ENV};
use anyhow::{Context, Result};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How a run ended this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Trained, evaluated, `eval.csv` written, status `done`.
    Done,
    /// Stopped on a signal with a checkpoint: resumable.
    Preempted,
    /// The trainer stopped the run as diverged (a result, not retried).
    Diverged(String),
    /// Failed; the reason is also in status.json.
    Failed(String),
}

/// Where the trainer binary is: `--trldm PATH`, else `$TRLDM_BIN`, else this executable.
pub fn trainer_bin(flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("TRLDM_BIN").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    std::env::current_exe().context("cannot find the trldm executable; pass `--trldm PATH`")
}

/// True when the run finished: status `done` and `eval.csv` present.
pub fn is_done(run: &RunDir) -> bool {
    matches!(run.status(), Ok(Some(s)) if s.state == State::Done) && run.eval_csv().exists()
}

/// Runs train (resuming) and eval of one run folder. `env` is added to the
/// children's environment; their output is appended to `<run>/train.log`.
/// How the trainer process is started: directly, or as `k` data-parallel
/// ranks under `srun` (SLURM) or `mpirun` (local), see `src/dist`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Launcher {
    /// The command put in front of `trldm train ...` (empty = none).
    pub prefix: Vec<String>,
}

impl Launcher {
    /// `srun --nodes=N --ntasks-per-node=k --mpi=pmix --kill-on-bad-exit=1 [--gpus-per-task=1]`.
    pub fn srun(nodes: u32, ranks_per_node: u32, gpu_per_rank: bool) -> Launcher {
        let mut prefix = vec![
            "srun".to_string(),
            format!("--nodes={nodes}"),
            format!("--ntasks-per-node={ranks_per_node}"),
            "--mpi=pmix".into(),
            "--kill-on-bad-exit=1".into(),
        ];
        if gpu_per_rank {
            prefix.push("--gpus-per-task=1".into());
        }
        Launcher { prefix }
    }

    /// `mpirun -n k --oversubscribe --bind-to none [--allow-run-as-root]` (local runs).
    pub fn mpirun(ranks: usize) -> Launcher {
        let mut prefix = vec![
            "mpirun".to_string(),
            "-n".into(),
            ranks.to_string(),
            "--oversubscribe".into(),
            "--bind-to".into(),
            "none".into(),
        ];
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            prefix.push("--allow-run-as-root".into());
        }
        Launcher { prefix }
    }
}

pub fn run_one(
    bin: &Path,
    run: &RunDir,
    env: &[(String, String)],
    launch: &Launcher,
) -> Result<Outcome> {
    if is_done(run) {
        return Ok(Outcome::Done);
    }
    let log_path = run.root.join("train.log");
    let config = run.config();
    let train_args = [
        "train".to_string(),
        "--config".into(),
        config.display().to_string(),
        "--run-dir".into(),
        run.root.display().to_string(),
        "--resume".into(),
    ];
    match child(bin, &train_args, env, &log_path, launch)? {
        Exit::Code(0) => {}
        Exit::Code(EXIT_PREEMPTED) => return Ok(Outcome::Preempted),
        _ if signals::stop_requested() => return Ok(Outcome::Preempted),
        other => return Ok(failure(run, "train", other, &log_path)),
    }
    if is_done(run) {
        // `trldm train` evaluates at the end by default.
        return Ok(Outcome::Done);
    }
    if signals::stop_requested() {
        // Trained; evaluation runs on the next start (train returns at once).
        return Ok(Outcome::Preempted);
    }
    let eval_args = [
        "eval".to_string(),
        "--run".into(),
        run.root.display().to_string(),
    ];
    match child(bin, &eval_args, env, &log_path, launch)? {
        Exit::Code(0) => {}
        _ if signals::stop_requested() => return Ok(Outcome::Preempted),
        other => return Ok(failure(run, "eval", other, &log_path)),
    }
    if !run.eval_csv().exists() {
        let reason = format!(
            "eval exited 0 but wrote no {}; see {}",
            run.eval_csv().display(),
            log_path.display()
        );
        mark_failed(run, &reason);
        return Ok(Outcome::Failed(reason));
    }
    let status = run.status()?;
    if status.as_ref().map(|s| s.state) != Some(State::Done) {
        let step = status.map(|s| s.step).unwrap_or(0);
        run.set_status(State::Done, step, "")?;
    }
    Ok(Outcome::Done)
}

enum Exit {
    Code(i32),
    Signal(i32),
}

/// Spawns one child and waits for it, forwarding a stop request once.
fn child(
    bin: &Path,
    args: &[String],
    env: &[(String, String)],
    log: &Path,
    launch: &Launcher,
) -> Result<Exit> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("{}: cannot open the run log", log.display()))?;
    let _ = writeln!(
        f,
        "== trldm sweep: {}{} {} (unix {})",
        launch
            .prefix
            .iter()
            .map(|p| format!("{p} "))
            .collect::<String>(),
        bin.display(),
        args.join(" "),
        crate::run::now_secs()
    );
    let err = f.try_clone()?;
    let mut cmd = match launch.prefix.split_first() {
        Some((prog, rest)) => {
            let mut c = Command::new(prog);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(f))
        .stderr(Stdio::from(err))
        .env(NO_REQUEUE_ENV, "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Should this runner die (even by SIGKILL), the trainer gets the stop
    // signal: it checkpoints and exits instead of training on unwatched.
    // The thread that spawns it waits for it, so only the runner's death
    // (not a thread's end) sends the signal.
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches only the child.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR1) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut ch = cmd.spawn().with_context(|| {
        format!(
            "cannot start `{}`; set the trainer with `--trldm PATH` or TRLDM_BIN",
            bin.display()
        )
    })?;
    let mut forwarded = false;
    loop {
        if let Some(st) = ch.try_wait()? {
            use std::os::unix::process::ExitStatusExt;
            return Ok(match (st.code(), st.signal()) {
                (Some(c), _) => Exit::Code(c),
                (None, Some(s)) => Exit::Signal(s),
                (None, None) => Exit::Code(-1),
            });
        }
        if !forwarded && signals::stop_requested() {
            forwarded = true;
            let _ = signals::send_signal(ch.id(), signal_hook::consts::SIGUSR1);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Records a failure (keeping the trainer's own reason when it gave one).
fn failure(run: &RunDir, what: &str, exit: Exit, log: &Path) -> Outcome {
    if let Ok(Some(s)) = run.status() {
        match s.state {
            State::Diverged => return Outcome::Diverged(s.reason),
            State::Failed if !s.reason.is_empty() => return Outcome::Failed(s.reason),
            _ => {}
        }
    }
    let how = match exit {
        Exit::Code(c) => format!("exited with code {c}"),
        Exit::Signal(s) => format!("was killed by signal {s}"),
    };
    let reason = format!(
        "{what} {how}; see {} (the checkpoint is kept: rerunning resumes)",
        log.display()
    );
    mark_failed(run, &reason);
    Outcome::Failed(reason)
}

fn mark_failed(run: &RunDir, reason: &str) {
    let step = run.status().ok().flatten().map(|s| s.step).unwrap_or(0);
    let _ = run.set_status(State::Failed, step, reason);
}

/// After `scontrol requeue`, SLURM ends this instance itself (the job is
/// "cancelled due to requeue"). Exiting first races with that: slurmctld
/// can record our exit after the requeue and mark the requeued job FAILED.
/// So wait (bounded) to be killed; the signal handler exits on the kill.
fn wait_for_requeue_kill() {
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `trldm sweep exec-run`: one run inside a SLURM array task (or by hand).
/// Returns the process exit code: 0 done or requeued, 1 failed/diverged,
/// 3 preempted without a requeue.
pub fn exec_run(bin: &Path, run: &RunDir, max_requeues: u32, launch: &Launcher) -> Result<i32> {
    signals::install()?;
    if !run.config().exists() {
        anyhow::bail!(
            "{}: no config.toml; plan the sweep first (`trldm sweep submit` writes every run folder)",
            run.root.display()
        );
    }
    let outcome = run_one(bin, run, &[], launch)?;
    let restart = std::env::var("SLURM_RESTART_COUNT").unwrap_or_else(|_| "0".into());
    match outcome {
        Outcome::Done => {
            println!("trldm: {} done", run.root.display());
            Ok(0)
        }
        Outcome::Diverged(r) | Outcome::Failed(r) => {
            eprintln!("trldm: {} failed: {r}", run.root.display());
            Ok(1)
        }
        Outcome::Preempted => {
            let cancelled = run
                .root
                .parent()
                .map(|p| p.join("cancelled").exists())
                .unwrap_or(false);
            if signals::slurm_job_id().is_none() {
                println!(
                    "trldm: {} stopped with a checkpoint; rerun to resume",
                    run.root.display()
                );
                return Ok(EXIT_PREEMPTED);
            }
            if cancelled {
                println!(
                    "trldm: {} stopped (sweep cancelled): not requeued",
                    run.root.display()
                );
                return Ok(EXIT_PREEMPTED);
            }
            match signals::requeue_if_slurm(run, max_requeues) {
                Ok(true) => {
                    println!(
                        "trldm: {} checkpointed and requeued (restart count was {restart})",
                        run.root.display()
                    );
                    wait_for_requeue_kill();
                    Ok(0)
                }
                Ok(false) => {
                    let n = run.status().ok().flatten().map(|s| s.requeues).unwrap_or(0);
                    let reason = format!(
                        "preempted after {n} requeues (slurm.max_requeues = {max_requeues}); `trldm sweep retry` resumes it from its checkpoint"
                    );
                    mark_failed(run, &reason);
                    eprintln!("trldm: {}: {reason}", run.root.display());
                    Ok(EXIT_PREEMPTED)
                }
                Err(e) => {
                    let reason = format!("{e:#}");
                    mark_failed(run, &reason);
                    eprintln!("trldm: {}: {reason}", run.root.display());
                    Ok(EXIT_PREEMPTED)
                }
            }
        }
    }
}
