//! MPI collectives on CPU tensors (rsmpi over OpenMPI): the CPU backend of
//! data parallelism, and the channel over which rank 0 hands out the NCCL id.
use anyhow::{bail, Result};
use mpi::collective::SystemOperation;
use mpi::environment::{Threading, Universe};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;
use tch::{Kind, Tensor};

/// What `trldm doctor` prints about MPI in a binary built with it.
pub const HOW_TO_ENABLE: &str = "built in";

/// An initialised MPI world; MPI is finalised when this is dropped.
pub struct Mpi {
    world: SimpleCommunicator,
    // Dropped last (after `world`): finalises MPI.
    _universe: Universe,
}

impl Mpi {
    /// `MPI_Init_thread(FUNNELED)`: libtorch has worker threads but only the
    /// main thread calls MPI.
    pub fn init() -> Result<Mpi> {
        if mpi::environment::is_initialized() {
            bail!("MPI is already initialised in this process (one data-parallel run per process)");
        }
        let Some((universe, _)) = mpi::initialize_with_threading(Threading::Funneled) else {
            bail!("MPI_Init failed (under srun, Debian's OpenMPI needs --mpi=pmix)");
        };
        Ok(Mpi {
            world: universe.world(),
            _universe: universe,
        })
    }

    pub fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    pub fn world(&self) -> usize {
        self.world.size() as usize
    }

    /// MPI_Abort on the world: ends every rank of the job.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    pub fn barrier(&self) {
        self.world.barrier();
    }

    /// Broadcasts raw bytes from `root` (the NCCL id).
    pub fn broadcast_bytes(&self, buf: &mut [u8], root: usize) {
        self.world.process_at_rank(root as i32).broadcast_into(buf);
    }

    /// MPI_Allreduce(SUM) on a contiguous CPU tensor, in place.
    pub fn all_reduce_sum(&self, t: &mut Tensor) -> Result<()> {
        macro_rules! reduce {
            ($ty:ty) => {{
                // SAFETY: `t` is a contiguous CPU tensor of this element type
                // (checked by the caller and the match below) holding numel items.
                let dst =
                    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut $ty, t.numel()) };
                let src = dst.to_vec();
                self.world
                    .all_reduce_into(&src[..], dst, SystemOperation::sum());
            }};
        }
        match t.kind() {
            Kind::Float => reduce!(f32),
            Kind::Double => reduce!(f64),
            Kind::Int64 => reduce!(i64),
            k => bail!("MPI all-reduce: unsupported tensor kind {k:?}"),
        }
        Ok(())
    }

    /// MPI_Bcast from `root` on a contiguous CPU tensor, in place.
    pub fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<()> {
        macro_rules! bcast {
            ($ty:ty) => {{
                // SAFETY: as in `all_reduce_sum`.
                let buf =
                    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut $ty, t.numel()) };
                self.world.process_at_rank(root as i32).broadcast_into(buf);
            }};
        }
        match t.kind() {
            Kind::Float => bcast!(f32),
            Kind::Double => bcast!(f64),
            Kind::Int64 => bcast!(i64),
            k => bail!("MPI broadcast: unsupported tensor kind {k:?}"),
        }
        Ok(())
    }
}
