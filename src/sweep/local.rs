//! `trldm sweep run`: the sweep on this machine with N worker threads, each
//! running one run at a time as child processes (see `exec.rs`).
//!
//! Worker i gets `CUDA_VISIBLE_DEVICES=devices[i % len]` when devices are
//! given, else `OMP_NUM_THREADS` = threads per worker. Runs that are done
//! are skipped; every other run is (re)started with `--resume`, so running
//! the command again after Ctrl-C, a crash or a killed trainer finishes only
//! what is missing. A failed run does not stop the others.
use super::exec::{is_done, run_one, Launcher, Outcome};
use super::folder::SweepFolder;
use super::grid::PlannedRun;
use crate::signals;
use anyhow::Result;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

/// Options of a local run.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub bin: PathBuf,
    pub workers: usize,
    pub devices: Vec<String>,
    /// CPU threads per worker (0 = cores / workers).
    pub threads: usize,
    /// Data-parallel ranks per run (> 1: `mpirun -n ranks`).
    pub ranks: usize,
}

/// What happened to the runs of one `sweep run`.
#[derive(Debug, Default, Clone)]
pub struct LocalSummary {
    pub skipped: usize,
    pub done: Vec<String>,
    pub preempted: Vec<String>,
    pub failed: Vec<(String, String)>,
    pub diverged: Vec<(String, String)>,
}

/// The environment of worker `i`.
pub fn worker_env(opts: &LocalOptions, i: usize) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if !opts.devices.is_empty() {
        env.push((
            "CUDA_VISIBLE_DEVICES".to_string(),
            opts.devices[i % opts.devices.len()].clone(),
        ));
    }
    let threads = if opts.threads > 0 {
        opts.threads
    } else {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        (cores / opts.workers.max(1)).max(1)
    };
    env.push(("OMP_NUM_THREADS".into(), threads.to_string()));
    env.push(("MKL_NUM_THREADS".into(), threads.to_string()));
    env
}

/// Runs every run that is not done; returns when all finished or a stop
/// signal arrived (running runs checkpoint and stay resumable).
pub fn run_local(
    folder: &SweepFolder,
    runs: &[PlannedRun],
    opts: &LocalOptions,
) -> Result<LocalSummary> {
    signals::install()?;
    let mut summary = LocalSummary::default();
    let mut todo = VecDeque::new();
    for r in runs {
        if is_done(&folder.run_dir(&r.id)) {
            summary.skipped += 1;
        } else {
            todo.push_back(r.id.clone());
        }
    }
    let total = todo.len();
    let workers = opts.workers.max(1).min(total.max(1));
    println!(
        "sweep {}: {} runs, {} done already, {} to run on {} worker(s)",
        folder.name,
        runs.len(),
        summary.skipped,
        total,
        workers
    );
    let launcher = if opts.ranks > 1 {
        Launcher::mpirun(opts.ranks)
    } else {
        Launcher::default()
    };
    let launcher = &launcher;
    let queue = Mutex::new(todo);
    let result = Mutex::new(summary);
    let started = Mutex::new(0usize);
    std::thread::scope(|s| {
        for w in 0..workers {
            let env = worker_env(opts, w);
            let (queue, result, started) = (&queue, &result, &started);
            s.spawn(move || loop {
                if signals::stop_requested() {
                    break;
                }
                let Some(id) = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None) else {
                    break;
                };
                let k = {
                    let mut n = started.lock().unwrap_or_else(|e| e.into_inner());
                    *n += 1;
                    *n
                };
                let dir = folder.run_dir(&id);
                println!(
                    "[{k}/{total}] {id} started (worker {w}, log {}/train.log)",
                    dir.root.display()
                );
                let t0 = Instant::now();
                let outcome = run_one(&opts.bin, &dir, &env, launcher)
                    .unwrap_or_else(|e| Outcome::Failed(format!("{e:#}")));
                let secs = t0.elapsed().as_secs_f64();
                let mut res = result.lock().unwrap_or_else(|e| e.into_inner());
                match outcome {
                    Outcome::Done => {
                        println!("[{k}/{total}] {id} done ({secs:.1} s)");
                        res.done.push(id);
                    }
                    Outcome::Preempted => {
                        println!("[{k}/{total}] {id} stopped with a checkpoint ({secs:.1} s)");
                        res.preempted.push(id);
                    }
                    Outcome::Diverged(r) => {
                        println!("[{k}/{total}] {id} diverged: {r}");
                        res.diverged.push((id, r));
                    }
                    Outcome::Failed(r) => {
                        println!("[{k}/{total}] {id} FAILED: {r}");
                        res.failed.push((id, r));
                    }
                }
            });
        }
    });
    Ok(result.into_inner().unwrap_or_else(|e| e.into_inner()))
}
