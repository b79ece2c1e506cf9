//! NCCL collectives on CUDA tensors through cudarc (`nccl` module, loaded at
//! run time with `fallback-dynamic-loading`, so the build needs no CUDA).
//!
//! Pitfalls handled here (docs/FACTS.md, "MPI, NCCL and plots from Rust"):
//! cudarc panics when it cannot load `libnccl.so`, so the library is probed
//! first ([`require_library`]) and a missing one is a clear error; it looks
//! for `libnccl.so` / `libnccl.so.12`, not the `libnccl.so.2` that the pip
//! package `nvidia-nccl-*` ships, so a symlink is needed (scripts/gpu_check.sh
//! makes one); `NcclError` is not `std::error::Error`; torch's memory is
//! wrapped with `upgrade_device_ptr` and `leak`ed afterwards so cudarc never
//! frees it; libtorch and the comm use the CUDA null stream and we
//! synchronize around every collective.
use super::cpu::Mpi;
use anyhow::{anyhow, bail, Context, Result};
use cudarc::driver::{CudaContext, CudaStream};
use cudarc::nccl::{Comm, Id, ReduceOp};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};

/// True when `libnccl` can be loaded (no panic either way).
pub fn library_present() -> bool {
    // SAFETY: only tries dlopen on cudarc's candidate names.
    unsafe { cudarc::nccl::sys::is_culib_present() }
}

/// Fails with an actionable message when NCCL or the CUDA driver cannot be loaded.
pub fn require_library() -> Result<()> {
    if !library_present() {
        bail!(
            "NCCL not found (libnccl.so); install nvidia-nccl or set LD_LIBRARY_PATH. \
             cudarc loads libnccl.so or libnccl.so.12: the pip package ships only \
             libnccl.so.2, so link it, e.g. `ln -s .../nvidia/nccl/lib/libnccl.so.2 <dir>/libnccl.so` \
             and put <dir> on LD_LIBRARY_PATH (scripts/gpu_check.sh does this)"
        );
    }
    // SAFETY: as above.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        bail!("CUDA driver library (libcuda.so) not found; NCCL needs a GPU machine");
    }
    Ok(())
}

fn nccl_err(what: &str) -> impl Fn(cudarc::nccl::result::NcclError) -> anyhow::Error + '_ {
    move |e| anyhow!("NCCL {what} failed: {e:?}")
}

/// One NCCL communicator bound to this rank's GPU.
pub struct Nccl {
    comm: Comm,
    stream: Arc<CudaStream>,
    ordinal: usize,
}

impl Nccl {
    /// Creates the communicator: rank 0 makes the NCCL id and hands it to the
    /// others over MPI when present, else through `<run_dir>/.nccl_id`.
    pub fn new(
        ordinal: usize,
        rank: usize,
        world: usize,
        mpi: Option<&Mpi>,
        run_dir: &Path,
    ) -> Result<Nccl> {
        require_library()?;
        let ctx = CudaContext::new(ordinal)
            .map_err(|e| anyhow!("CUDA context on GPU {ordinal}: {e:?}"))?;
        // SAFETY: we synchronize around every collective ourselves.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.default_stream();
        let mut bytes = [0u8; 128];
        if rank == 0 {
            let id = Id::new().map_err(nccl_err("ncclGetUniqueId"))?;
            for (b, c) in bytes.iter_mut().zip(id.internal()) {
                *b = *c as u8;
            }
        }
        if world > 1 {
            match mpi {
                Some(m) => m.broadcast_bytes(&mut bytes, 0),
                None => rendezvous(run_dir, rank, &mut bytes)?,
            }
        }
        let mut internal = [0 as std::ffi::c_char; 128];
        for (c, b) in internal.iter_mut().zip(bytes) {
            *c = b as std::ffi::c_char;
        }
        let comm = Comm::from_rank(stream.clone(), rank, world, Id::uninit(internal))
            .map_err(nccl_err("ncclCommInitRank"))?;
        Ok(Nccl {
            comm,
            stream,
            ordinal,
        })
    }

    pub fn device(&self) -> Device {
        Device::Cuda(self.ordinal)
    }

    fn sync(&self, t: &Tensor) -> Result<()> {
        if let Device::Cuda(i) = t.device() {
            if i != self.ordinal {
                bail!(
                    "tensor on GPU {i}, NCCL communicator on GPU {}",
                    self.ordinal
                );
            }
            tch::Cuda::synchronize(i as i64);
            Ok(())
        } else {
            bail!("NCCL collectives need CUDA tensors")
        }
    }

    /// ncclAllReduce(SUM) in place on a contiguous CUDA tensor.
    pub fn all_reduce_sum(&self, t: &mut Tensor) -> Result<()> {
        self.sync(t)?;
        macro_rules! run {
            ($ty:ty) => {{
                // SAFETY: `t` is a contiguous CUDA allocation of numel items of
                // this type; the slice is leaked so cudarc never frees it.
                let mut s = unsafe {
                    self.stream
                        .upgrade_device_ptr::<$ty>(t.data_ptr() as u64, t.numel())
                };
                let r = self.comm.all_reduce_in_place(&mut s, &ReduceOp::Sum);
                s.leak();
                r.map_err(nccl_err("ncclAllReduce"))?;
            }};
        }
        match t.kind() {
            Kind::Float => run!(f32),
            Kind::Double => run!(f64),
            Kind::Int64 => run!(i64),
            k => bail!("NCCL all-reduce: unsupported tensor kind {k:?}"),
        }
        self.stream
            .synchronize()
            .map_err(|e| anyhow!("CUDA synchronize: {e:?}"))
    }

    /// ncclBroadcast from `root`, in place.
    pub fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<()> {
        self.sync(t)?;
        macro_rules! run {
            ($ty:ty) => {{
                // SAFETY: as in `all_reduce_sum`.
                let mut s = unsafe {
                    self.stream
                        .upgrade_device_ptr::<$ty>(t.data_ptr() as u64, t.numel())
                };
                let r = self.comm.broadcast_in_place(&mut s, root as i32);
                s.leak();
                r.map_err(nccl_err("ncclBroadcast"))?;
            }};
        }
        match t.kind() {
            Kind::Float => run!(f32),
            Kind::Double => run!(f64),
            Kind::Int64 => run!(i64),
            k => bail!("NCCL broadcast: unsupported tensor kind {k:?}"),
        }
        self.stream
            .synchronize()
            .map_err(|e| anyhow!("CUDA synchronize: {e:?}"))
    }
}

/// The tag that tells this launch's rendezvous file from a stale one.
fn launch_tag() -> String {
    let v = |n: &str| std::env::var(n).unwrap_or_default();
    format!("{}.{}", v("SLURM_JOB_ID"), v("SLURM_STEP_ID"))
}

/// Hands rank 0's NCCL id to the other ranks through a file in the (shared)
/// run folder: rank 0 writes `<run>/.nccl_id` atomically, the others poll
/// for a file with this launch's tag (SLURM job and step id), for at most 300 s.
fn rendezvous(run_dir: &Path, rank: usize, bytes: &mut [u8; 128]) -> Result<()> {
    let path = run_dir.join(".nccl_id");
    let tag = launch_tag();
    if rank == 0 {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::create_dir_all(run_dir)?;
        crate::util::write_atomic(&path, format!("{tag} {hex}\n").as_bytes())
            .context("writing the NCCL rendezvous file")?;
        return Ok(());
    }
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let mut it = text.split_whitespace();
            if let (Some(t), Some(hex)) = (it.next(), it.next()) {
                if t == tag && hex.len() == 256 {
                    for (i, b) in bytes.iter_mut().enumerate() {
                        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                            .context("corrupt NCCL rendezvous file")?;
                    }
                    return Ok(());
                }
            }
        }
        if start.elapsed() > Duration::from_secs(300) {
            bail!(
                "rank {rank}: no NCCL id from rank 0 in {} after 300 s (is the run folder shared by all nodes?)",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
