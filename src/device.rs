//! Where a run computes: the device named by `train.device`, the CPU
//! threads of `train.threads`, and the capability checks that depend on
//! this build and machine (not on the config alone, so they run where a run
//! starts, not when a config is read).
use crate::config::RunConfig;
use anyhow::{bail, Result};
use tch::Device;

/// Prepares this process for the run `cfg`: checks that this build can do
/// what it asks (bf16 on the CPU), applies `train.threads` and resolves
/// `train.device`.
pub fn start(cfg: &RunConfig) -> Result<Device> {
    crate::amp::check(&cfg.train)?;
    apply_threads(cfg)?;
    resolve_device(&cfg.train.device)
}

/// `auto` = the first GPU when CUDA is available, else the CPU.
pub fn resolve_device(spec: &str) -> Result<Device> {
    let index = match spec {
        "auto" => return Ok(Device::cuda_if_available()),
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        s => match s.strip_prefix("cuda:").and_then(|i| i.parse().ok()) {
            Some(i) => i,
            None => bail!("train.device = \"{s}\" is not one of auto, cpu, cuda, cuda:N"),
        },
    };
    let count = tch::Cuda::device_count();
    if index >= count.max(0) as usize {
        bail!(
            "train.device = \"{spec}\" but libtorch sees {count} CUDA device(s) \
             (see `trldm doctor`; use train.device = \"cpu\" or \"auto\")"
        );
    }
    Ok(Device::Cuda(index))
}

/// Applies `train.threads` (0 leaves libtorch's default). More than 8 per
/// core is refused: it never helps, and libtorch hangs creating 100,000.
pub fn apply_threads(cfg: &RunConfig) -> Result<()> {
    let threads = cfg.train.threads;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads > 8 * cores {
        bail!(
            "train.threads = {threads}: this machine has {cores} cores; use at most {} (0 = libtorch's default)",
            8 * cores
        );
    }
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
    Ok(())
}

/// `f(i)` for i = 0..n, each on its own thread running one libtorch thread
/// (CPU data parallelism over whole batches: `eval.workers`,
/// `train.workers`); the results in order of i. A panic in `f` is passed on.
///
/// libtorch's `set_num_threads` also sets the count that threads started
/// later take, so the process's count is set back as soon as every thread
/// has set its own (other trainings of a test binary keep theirs).
pub fn on_single_threads<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let main_threads = tch::get_num_threads();
    let ready = std::sync::Barrier::new(n + 1);
    std::thread::scope(|scope| {
        let (f, ready) = (&f, &ready);
        let handles: Vec<_> = (0..n)
            .map(|i| {
                scope.spawn(move || {
                    // First use initialises this thread's libtorch threads
                    // (from the process-wide count); then one, for this thread.
                    tch::get_num_threads();
                    tch::set_num_threads(1);
                    ready.wait();
                    f(i)
                })
            })
            .collect();
        ready.wait();
        tch::set_num_threads(main_threads);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}
