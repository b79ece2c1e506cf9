//! Data parallelism across processes (one per GPU, or several CPU ranks), the
//! way TRM trains with torchrun (docs/FACTS.md, "Tiny Recursive Models"):
//! parameters broadcast from rank 0, every gradient all-reduced (averaged)
//! after backward, data sharded by rank. tch has no process groups, so this
//! module brings its own:
//!
//! - [`cpu`]: MPI collectives (rsmpi over OpenMPI) on CPU tensors;
//! - [`threads`]: threads of one process on the CPU (`train.workers`),
//!   through shared memory;
//! - [`nccl`]: NCCL collectives (cudarc, loaded at run time) on CUDA tensors,
//!   with the 128-byte NCCL id broadcast from rank 0 over MPI or, without
//!   MPI, through a rendezvous file in the run folder.
//!
//! Rank discovery ([`Dist::discover`]): `mpirun` (OMPI_COMM_WORLD_*), `srun
//! --mpi=pmix` (PMIX_RANK, SLURM_*), plain `srun` (SLURM_PROCID /
//! SLURM_STEP_NUM_TASKS / SLURM_LOCALID, NCCL only), or one process. MPI is
//! initialised only when the process was started by a launcher, so a plain
//! `trldm train` (and the test suite) never touches MPI.
//!
//! Environment knobs:
//! - `TRLDM_DIST=auto|off|nccl`: `off` ignores launchers (every process trains
//!   alone); `nccl` forces the NCCL path even with one process (the GPU check).
//! - `TRLDM_DIST_CHECK=1`: after every update all ranks compare a bit-exact
//!   hash of their parameters and fail loudly when they differ.
#[cfg(feature = "mpi")]
pub mod cpu;
#[cfg(not(feature = "mpi"))]
#[path = "cpu_none.rs"]
pub mod cpu;
pub mod nccl;
pub mod threads;

use anyhow::{bail, Context, Result};
use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// How the ranks talk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One process: every collective is a no-op.
    Single,
    /// MPI on CPU tensors.
    Mpi,
    /// NCCL on CUDA tensors (MPI, when present, only for the id and CPU tensors).
    Nccl,
    /// Threads of one process on the CPU (`train.workers`).
    Threads,
}

/// This process's place in a data-parallel run.
pub struct Dist {
    pub rank: usize,
    pub world: usize,
    /// Rank among the processes of this node (selects the GPU).
    pub local_rank: usize,
    pub backend: Backend,
    /// `TRLDM_DIST_CHECK=1`: verify that all ranks hold identical parameters after every update.
    pub check: bool,
    mpi: Option<cpu::Mpi>,
    nccl: Option<nccl::Nccl>,
    threads: Option<Arc<threads::Group>>,
    /// Seconds spent in gradient all-reduces (including waiting for the slowest rank).
    comm_secs: Cell<f64>,
}

/// Which launcher started this process, read from the environment.
#[derive(Debug, Clone, PartialEq)]
pub enum Launcher {
    None,
    /// mpirun / srun --mpi=pmix: MPI can be initialised.
    Mpi,
    /// srun without an MPI plugin: rank and world from SLURM's variables.
    Slurm {
        rank: usize,
        world: usize,
        local_rank: usize,
    },
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Detects the launcher from the environment (`get` reads a variable).
pub fn detect_launcher(get: &dyn Fn(&str) -> Option<String>) -> Launcher {
    let num = |n: &str| get(n).and_then(|v| v.trim().parse::<usize>().ok());
    // mpirun always means MPI (a binary without the `mpi` feature then says
    // how to get it); under `srun --mpi=pmix` such a binary uses SLURM's
    // variables instead (NCCL needs no MPI).
    if get("OMPI_COMM_WORLD_SIZE").is_some()
        || (get("PMIX_RANK").is_some() && cfg!(feature = "mpi"))
    {
        return Launcher::Mpi;
    }
    // Inside an srun step (not the batch script, which has SLURM_NTASKS but
    // is one process): SLURM_STEP_NUM_TASKS is set by srun.
    let world = num("SLURM_STEP_NUM_TASKS").or_else(|| {
        get("SLURM_STEP_ID")
            .is_some()
            .then(|| num("SLURM_NTASKS"))
            .flatten()
    });
    match (world, num("SLURM_PROCID")) {
        (Some(w), Some(r)) if w > 1 => Launcher::Slurm {
            rank: r,
            world: w,
            local_rank: num("SLURM_LOCALID").unwrap_or(0),
        },
        _ => Launcher::None,
    }
}

/// The launcher of this process ([`detect_launcher`] on the environment),
/// or none when `TRLDM_DIST=off` says to ignore launchers.
fn env_launcher() -> Launcher {
    if std::env::var("TRLDM_DIST").is_ok_and(|m| m == "off" || m == "none") {
        return Launcher::None;
    }
    detect_launcher(&|n| std::env::var(n).ok())
}

/// This process's rank as its launcher set it (OMPI_COMM_WORLD_RANK,
/// PMIX_RANK, SLURM_PROCID inside an srun step; 0 otherwise), without
/// initialising anything: for code outside the trainer that must act once
/// per run, such as requeueing a SLURM job or writing status.
pub fn env_rank() -> usize {
    match env_launcher() {
        Launcher::None => 0,
        Launcher::Slurm { rank, .. } => rank,
        Launcher::Mpi => env_usize("OMPI_COMM_WORLD_RANK")
            .or_else(|| env_usize("PMIX_RANK"))
            .or_else(|| env_usize("SLURM_PROCID"))
            .unwrap_or(0),
    }
}

impl Dist {
    /// One process, no communication.
    pub fn single() -> Dist {
        Dist {
            rank: 0,
            world: 1,
            local_rank: 0,
            backend: Backend::Single,
            check: false,
            mpi: None,
            nccl: None,
            threads: None,
            comm_secs: Cell::new(0.0),
        }
    }

    /// Rank `rank` of the training threads of `group` (on the CPU).
    pub fn thread_rank(rank: usize, group: Arc<threads::Group>) -> Dist {
        let mut d = Dist::single();
        d.rank = rank;
        d.world = group.world();
        d.local_rank = rank;
        d.backend = Backend::Threads;
        d.threads = Some(group);
        d
    }

    /// Whether this process was started as one of several ranks by a
    /// launcher (mpirun, srun), read from the environment only.
    pub fn launched_as_ranks() -> bool {
        match env_launcher() {
            Launcher::None => false,
            Launcher::Slurm { world, .. } => world > 1,
            Launcher::Mpi => env_usize("OMPI_COMM_WORLD_SIZE")
                .or_else(|| env_usize("SLURM_STEP_NUM_TASKS"))
                .is_none_or(|w| w > 1),
        }
    }

    /// Finds this process's rank and world (see the module doc) and sets up
    /// the backend for the device that `device_pref` (`train.device`)
    /// resolves to. Returns the [`Dist`] and the device this rank must use
    /// (the local rank's GPU on CUDA).
    pub fn discover(run_dir: &Path, device_pref: &str) -> Result<(Dist, Device)> {
        let mode = std::env::var("TRLDM_DIST").unwrap_or_else(|_| "auto".into());
        let force_nccl = match mode.as_str() {
            "" | "auto" => false,
            "nccl" => true,
            "off" | "none" => {
                return Ok((Dist::single(), crate::device::resolve_device(device_pref)?))
            }
            m => bail!("TRLDM_DIST = \"{m}\" is not one of auto, off, nccl"),
        };
        let check = std::env::var("TRLDM_DIST_CHECK").is_ok_and(|v| v == "1");
        let launcher = detect_launcher(&|n| std::env::var(n).ok());
        let mut d = Dist::single();
        d.check = check;
        match &launcher {
            Launcher::None => {}
            Launcher::Mpi => {
                let m = cpu::Mpi::init()?;
                d.rank = m.rank();
                d.world = m.world();
                d.local_rank = env_usize("OMPI_COMM_WORLD_LOCAL_RANK")
                    .or_else(|| env_usize("SLURM_LOCALID"))
                    .or_else(|| env_usize("PMIX_LOCAL_RANK"))
                    .unwrap_or(0);
                d.mpi = Some(m);
            }
            Launcher::Slurm {
                rank,
                world,
                local_rank,
            } => {
                d.rank = *rank;
                d.world = *world;
                d.local_rank = *local_rank;
            }
        }
        let mut device = crate::device::resolve_device(device_pref)?;
        if d.world == 1 && !force_nccl {
            // A launcher with one process: plain training (MPI stays unused).
            return Ok((d, device));
        }
        // resolve_device has refused a CUDA device that libtorch cannot see.
        if let Device::Cuda(i) = device {
            // One GPU per rank: the local rank's, or the only one visible
            // (srun --gpus-per-task=1 sets CUDA_VISIBLE_DEVICES per task).
            let n = tch::Cuda::device_count().max(1) as usize;
            let dev = if d.world > 1 { d.local_rank % n } else { i };
            device = Device::Cuda(dev);
            d.nccl = Some(nccl::Nccl::new(
                dev,
                d.rank,
                d.world,
                d.mpi.as_ref(),
                run_dir,
            )?);
            d.backend = Backend::Nccl;
        } else {
            if force_nccl {
                bail!(
                    "TRLDM_DIST=nccl needs train.device = cuda (or auto on a machine with a GPU); device is {device:?}"
                );
            }
            if d.mpi.is_none() {
                bail!(
                    "data parallelism on the CPU needs MPI: this process was started by srun without \
                     an MPI plugin (rank {} of {}); launch with `srun --mpi=pmix` or `mpirun`",
                    d.rank,
                    d.world
                );
            }
            d.backend = Backend::Mpi;
        }
        Ok((d, device))
    }

    /// True on rank 0, the rank that writes files.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// True when collectives actually run (several ranks, or forced NCCL).
    pub fn is_active(&self) -> bool {
        self.backend != Backend::Single
    }

    /// The rows `[lo, lo + n)` of a global batch of `b` rows that this rank
    /// trains on. `b` must be divisible by the world size.
    pub fn shard(&self, b: usize) -> Result<(usize, usize)> {
        if !b.is_multiple_of(self.world) {
            bail!(
                "train.batch = {b} is not divisible by the {} data-parallel ranks; \
                 the global batch is split evenly across ranks",
                self.world
            );
        }
        let n = b / self.world;
        Ok((self.rank * n, n))
    }

    /// The contiguous share `[lo, hi)` of `n` items (evaluation puzzles) of this rank.
    pub fn split(&self, n: usize) -> (usize, usize) {
        (self.rank * n / self.world, (self.rank + 1) * n / self.world)
    }

    /// Sums `t` (contiguous float32/float64/int64) over all ranks, in place.
    pub fn allreduce_sum_(&self, t: &mut Tensor) -> Result<()> {
        if !self.is_active() || t.numel() == 0 {
            return Ok(());
        }
        check_contiguous(t)?;
        if let Some(g) = &self.threads {
            return g.all_reduce_sum(self.rank, t);
        }
        match (t.device(), &self.nccl, &self.mpi) {
            (Device::Cuda(_), Some(n), _) => n.all_reduce_sum(t),
            (Device::Cpu, _, Some(m)) => m.all_reduce_sum(t),
            (Device::Cpu, Some(_), None) if self.world == 1 => Ok(()),
            (dev, _, _) => bail!(
                "no collective backend for a tensor on {dev:?} (backend {:?})",
                self.backend
            ),
        }
    }

    /// Averages `flat` over all ranks, in place (the gradient all-reduce):
    /// a sum followed by a division by the world size.
    pub fn allreduce_mean_(&self, flat: &mut Tensor) -> Result<()> {
        let t0 = Instant::now();
        self.allreduce_sum_(flat)?;
        if self.world > 1 {
            let _ = flat.g_div_scalar_(self.world as f64);
        }
        if let Device::Cuda(i) = flat.device() {
            tch::Cuda::synchronize(i as i64);
        }
        self.comm_secs
            .set(self.comm_secs.get() + t0.elapsed().as_secs_f64());
        Ok(())
    }

    /// Overwrites `t` on every rank with rank `root`'s values.
    pub fn broadcast_(&self, t: &mut Tensor, root: usize) -> Result<()> {
        if !self.is_active() || t.numel() == 0 {
            return Ok(());
        }
        check_contiguous(t)?;
        if let Some(g) = &self.threads {
            return g.broadcast(self.rank, t, root);
        }
        match (t.device(), &self.nccl, &self.mpi) {
            (Device::Cuda(_), Some(n), _) => n.broadcast(t, root),
            (Device::Cpu, _, Some(m)) => m.broadcast(t, root),
            (Device::Cpu, Some(_), None) if self.world == 1 => Ok(()),
            (dev, _, _) => bail!(
                "no collective backend for a tensor on {dev:?} (backend {:?})",
                self.backend
            ),
        }
    }

    /// Waits until every rank reaches this point.
    pub fn barrier(&self) -> Result<()> {
        if !self.is_active() {
            return Ok(());
        }
        if let Some(m) = &self.mpi {
            m.barrier();
            return Ok(());
        }
        if let Some(g) = &self.threads {
            return g.wait();
        }
        let dev = self
            .nccl
            .as_ref()
            .map(|n| n.device())
            .unwrap_or(Device::Cpu);
        let mut one = Tensor::ones([1], (Kind::Float, dev));
        self.allreduce_sum_(&mut one)
    }

    /// A tensor for small reductions on the device that collectives use.
    pub fn scratch_device(&self) -> Device {
        self.nccl
            .as_ref()
            .map(|n| n.device())
            .unwrap_or(Device::Cpu)
    }

    /// Sums a few f64 values over all ranks.
    pub fn sum_f64(&self, v: &[f64]) -> Result<Vec<f64>> {
        if !self.is_active() {
            return Ok(v.to_vec());
        }
        let mut t = Tensor::from_slice(v).to_device(self.scratch_device());
        self.allreduce_sum_(&mut t)?;
        Ok(Vec::<f64>::try_from(t.to_device(Device::Cpu))?)
    }

    /// Called when this rank fails: with other ranks alive, print the error
    /// and end the whole job (MPI_Abort; without MPI, exit so that srun's
    /// `--kill-on-bad-exit=1` stops the others) instead of leaving them
    /// blocked in a collective. Training threads instead release the other
    /// threads, whose collectives then fail, and return. Returns only for
    /// one process and for threads.
    pub fn abort_others(&self, err: &anyhow::Error) {
        if self.world <= 1 {
            return;
        }
        if let Some(g) = &self.threads {
            g.fail();
            return;
        }
        eprintln!(
            "error (rank {} of {}): {err:#}; aborting all ranks",
            self.rank, self.world
        );
        match &self.mpi {
            Some(m) => m.abort(1),
            None => std::process::exit(1),
        }
    }

    /// Seconds spent in [`Dist::allreduce_mean_`] so far.
    pub fn comm_secs(&self) -> f64 {
        self.comm_secs.get()
    }

    /// Bit-exact check that all ranks hold the same `params` (TRLDM_DIST_CHECK):
    /// every rank hashes its parameter bytes, rank 0's hash is broadcast, and
    /// the mismatch count is summed so that all ranks fail together.
    pub fn check_identical(&self, params: &[(String, Tensor)], step: u64) -> Result<()> {
        if !self.is_active() {
            return Ok(());
        }
        let mine = hash_params(params);
        // Split into two exact f64 halves (32 bits each).
        let mut h = Tensor::from_slice(&[(mine >> 32) as f64, (mine & 0xffff_ffff) as f64])
            .to_device(self.scratch_device());
        self.broadcast_(&mut h, 0)?;
        let root = Vec::<f64>::try_from(h.to_device(Device::Cpu))?;
        let root = ((root[0] as u64) << 32) | root[1] as u64;
        let bad = self.sum_f64(&[(root != mine) as u8 as f64])?[0];
        if bad > 0.0 {
            bail!(
                "TRLDM_DIST_CHECK: after update {step} the parameters of {bad} rank(s) differ from \
                 rank 0's (rank {} hash {mine:016x}, rank 0 {root:016x})",
                self.rank
            );
        }
        Ok(())
    }
}

fn check_contiguous(t: &Tensor) -> Result<()> {
    if !t.is_contiguous() {
        bail!("collectives need contiguous tensors");
    }
    Ok(())
}

/// FNV-1a over the bytes of every parameter (float32 on the CPU), in order.
pub fn hash_params(params: &[(String, Tensor)]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, p) in params {
        for b in name.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        let v = Vec::<f32>::try_from(
            p.detach()
                .to_device(Device::Cpu)
                .to_kind(Kind::Float)
                .flatten(0, -1),
        )
        .unwrap_or_default();
        for x in v {
            for b in x.to_bits().to_le_bytes() {
                h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    h
}

/// Flattens `tensors` (any float kind) into one contiguous float32 buffer on `device`.
pub fn flatten(tensors: &[Tensor], device: Device) -> Tensor {
    let parts: Vec<Tensor> = tensors
        .iter()
        .map(|t| t.detach().to_kind(Kind::Float).reshape([-1]))
        .collect();
    if parts.is_empty() {
        return Tensor::zeros([0], (Kind::Float, device));
    }
    Tensor::cat(&parts, 0).to_device(device).contiguous()
}

/// Copies consecutive slices of `flat` back into `tensors` (inverse of [`flatten`]).
pub fn unflatten_into(flat: &Tensor, tensors: &mut [Tensor]) -> Result<()> {
    let mut off = 0i64;
    tch::no_grad(|| -> Result<()> {
        for t in tensors.iter_mut() {
            let n = t.numel() as i64;
            if off + n > flat.numel() as i64 {
                bail!("flat buffer too short");
            }
            let src = flat.narrow(0, off, n).reshape(t.size()).to_kind(t.kind());
            t.copy_(&src);
            off += n;
        }
        Ok(())
    })
    .context("copying the reduced buffer back")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        move |n: &str| v.iter().find(|(a, _)| a == n).map(|(_, b)| b.clone())
    }

    #[test]
    fn launchers_are_told_apart() {
        assert_eq!(detect_launcher(&env(&[])), Launcher::None);
        assert_eq!(
            detect_launcher(&env(&[("OMPI_COMM_WORLD_SIZE", "2")])),
            Launcher::Mpi
        );
        if cfg!(feature = "mpi") {
            assert_eq!(detect_launcher(&env(&[("PMIX_RANK", "1")])), Launcher::Mpi);
        } else {
            assert_eq!(detect_launcher(&env(&[("PMIX_RANK", "1")])), Launcher::None);
        }
        // The batch script itself: SLURM_NTASKS but no step.
        assert_eq!(
            detect_launcher(&env(&[("SLURM_NTASKS", "4"), ("SLURM_PROCID", "0")])),
            Launcher::None
        );
        assert_eq!(
            detect_launcher(&env(&[
                ("SLURM_NTASKS", "4"),
                ("SLURM_STEP_NUM_TASKS", "4"),
                ("SLURM_PROCID", "3"),
                ("SLURM_LOCALID", "1")
            ])),
            Launcher::Slurm {
                rank: 3,
                world: 4,
                local_rank: 1
            }
        );
        assert_eq!(
            detect_launcher(&env(&[
                ("SLURM_STEP_NUM_TASKS", "1"),
                ("SLURM_PROCID", "0")
            ])),
            Launcher::None
        );
    }

    #[test]
    fn single_process_collectives_are_no_ops_and_shards_cover_the_batch() {
        let d = Dist::single();
        let mut t = Tensor::from_slice(&[1.0f32, 2.0]);
        d.allreduce_mean_(&mut t).unwrap();
        d.broadcast_(&mut t, 0).unwrap();
        d.barrier().unwrap();
        assert_eq!(Vec::<f32>::try_from(&t).unwrap(), vec![1.0, 2.0]);
        assert_eq!(d.shard(8).unwrap(), (0, 8));
        let mut d2 = Dist::single();
        d2.world = 2;
        d2.rank = 1;
        assert_eq!(d2.shard(8).unwrap(), (4, 4));
        assert!(d2.shard(7).unwrap_err().to_string().contains("divisible"));
        assert_eq!(d2.split(5), (2, 5));
    }

    #[test]
    fn flatten_round_trips() {
        let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([2, 2]);
        let b = Tensor::from_slice(&[5.0f32]);
        let flat = flatten(&[a.shallow_clone(), b.shallow_clone()], Device::Cpu);
        assert_eq!(flat.size(), vec![5]);
        let mut outs = vec![a.zeros_like(), b.zeros_like()];
        unflatten_into(&(flat * 2.0), &mut outs).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(outs[0].flatten(0, -1)).unwrap(),
            vec![2.0, 4.0, 6.0, 8.0]
        );
        assert_eq!(Vec::<f32>::try_from(&outs[1]).unwrap(), vec![10.0]);
    }

    #[test]
    fn missing_nccl_is_an_error_not_a_panic() {
        // On machines without libnccl the NCCL path must say so clearly.
        if nccl::library_present() {
            eprintln!("skipped: libnccl is present here");
            return;
        }
        let err = nccl::require_library().unwrap_err().to_string();
        assert!(err.contains("NCCL not found"), "{err}");
    }
}
