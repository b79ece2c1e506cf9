//! Process-wide stop flag for graceful preemption.
//!
//! [`install`] makes SIGUSR1 (SLURM's `--signal=B:USR1@N` warning before the
//! time limit), SIGTERM (preemption, `scancel`, `kill`) and SIGINT (Ctrl-C)
//! set a flag instead of killing the process. Long loops poll
//! [`stop_requested`] between steps, write a checkpoint and exit with
//! [`EXIT_PREEMPTED`]. A second SIGTERM or SIGINT while the flag is already set
//! exits at once (code 130), so a stuck process can still be stopped.
//!
//! Under SLURM, [`requeue_if_slurm`] then puts the job back in the queue with
//! `scontrol requeue $SLURM_JOB_ID` (at most `max_requeues` times per run,
//! counted in the run's `status.json`), and the restarted job resumes from
//! the checkpoint. `trldm sweep exec-run` does this for the trainer it
//! launches and sets `TRLDM_NO_REQUEUE=1` in the trainer's environment, so a
//! run is never requeued twice for one signal.
use crate::run::RunDir;
use anyhow::{bail, Context, Result};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Exit code of a trainer that stopped on a signal after writing a checkpoint.
pub const EXIT_PREEMPTED: i32 = 3;

/// Environment variable that tells a trainer not to requeue itself (its parent does).
pub const NO_REQUEUE_ENV: &str = "TRLDM_NO_REQUEUE";

struct Flags {
    stop: Arc<AtomicBool>,
    last: Arc<AtomicUsize>,
}

static FLAGS: OnceLock<Flags> = OnceLock::new();

fn flags() -> &'static Flags {
    FLAGS.get_or_init(|| Flags {
        stop: Arc::new(AtomicBool::new(false)),
        last: Arc::new(AtomicUsize::new(0)),
    })
}

/// The signals that request a graceful stop.
pub const STOP_SIGNALS: [i32; 3] = [
    signal_hook::consts::SIGUSR1,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGINT,
];

/// Installs the handlers (idempotent). After this, SIGUSR1/SIGTERM/SIGINT
/// only set the stop flag; the program must poll [`stop_requested`].
pub fn install() -> Result<()> {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    let f = flags();
    for sig in STOP_SIGNALS {
        if sig != signal_hook::consts::SIGUSR1 {
            // Registered first, so it sees the flag as it was before this
            // delivery: the second TERM/INT exits at once.
            signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&f.stop))
                .with_context(|| format!("cannot install a handler for signal {sig}"))?;
        }
        signal_hook::flag::register(sig, Arc::clone(&f.stop))
            .with_context(|| format!("cannot install a handler for signal {sig}"))?;
        signal_hook::flag::register_usize(sig, Arc::clone(&f.last), sig as usize)
            .with_context(|| format!("cannot install a handler for signal {sig}"))?;
    }
    let _ = INSTALLED.set(());
    Ok(())
}

/// True once SIGUSR1, SIGTERM or SIGINT arrived (or [`request_stop`] was called).
pub fn stop_requested() -> bool {
    flags().stop.load(Ordering::SeqCst)
}

/// The last stop signal received, if any (e.g. to forward it to a child).
pub fn last_signal() -> Option<i32> {
    match flags().last.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s as i32),
    }
}

/// Sets the stop flag from code (tests, or a supervisor thread).
pub fn request_stop() {
    flags().stop.store(true, Ordering::SeqCst);
}

/// The SLURM job id when running inside a SLURM job.
pub fn slurm_job_id() -> Option<String> {
    std::env::var("SLURM_JOB_ID")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// Under SLURM (`SLURM_JOB_ID` set, `TRLDM_NO_REQUEUE` unset), and when the
/// run has been requeued fewer than `max_requeues` times: increments
/// `requeues` in the run's `status.json` and calls
/// `scontrol requeue $SLURM_JOB_ID`. Returns `Ok(true)` when the job was
/// requeued, `Ok(false)` when it is not a SLURM job or the cap is reached.
pub fn requeue_if_slurm(run: &RunDir, max_requeues: u32) -> Result<bool> {
    if std::env::var_os(NO_REQUEUE_ENV).is_some() {
        return Ok(false);
    }
    let Some(job) = slurm_job_id() else {
        return Ok(false);
    };
    let before = run.status()?;
    let mut status = before
        .clone()
        .unwrap_or_else(|| crate::run::Status::new(crate::run::State::Running, 0, ""));
    if status.requeues >= max_requeues {
        return Ok(false);
    }
    // Count first: `scontrol requeue` ends this job soon after it returns.
    status.requeues += 1;
    status.updated = crate::run::now_secs();
    run.write_status(&status)?;
    let out = std::process::Command::new("scontrol")
        .args(["requeue", &job])
        .output();
    let failure = match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`scontrol requeue {job}` failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run `scontrol requeue {job}`: {e}")),
    };
    if let Some(msg) = failure {
        // Undo the count so the run is not charged for a requeue that did not happen.
        status.requeues -= 1;
        run.write_status(&status)?;
        bail!(
            "{msg}; the checkpoint in {} is kept, resubmit with `trldm sweep retry`",
            run.root.display()
        );
    }
    Ok(true)
}

/// Sends `sig` to process `pid` (used to forward stop signals to children).
pub fn send_signal(pid: u32, sig: i32) -> Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    if rc != 0 {
        bail!(
            "cannot send signal {sig} to process {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}
