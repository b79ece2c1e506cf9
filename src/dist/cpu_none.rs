//! Stand-in for [`super::cpu`] in a binary built without the `mpi` feature
//! (the default, so that the main job builds without OpenMPI and libclang).
//! `Mpi` has no values: `init` always fails with how to get MPI, and every
//! other method is unreachable, so the callers compile unchanged.
use anyhow::{bail, Result};
use tch::Tensor;

/// No MPI in this binary (uninhabited).
pub enum Mpi {}

/// What a user must do to get MPI (also shown by `trldm doctor`).
pub const HOW_TO_ENABLE: &str = "this trldm was built without MPI; install OpenMPI and libclang \
(`scripts/setup.sh --system`) and rebuild with `cargo build --release --features mpi` \
(`make build FEATURES=mpi`)";

impl Mpi {
    pub fn init() -> Result<Mpi> {
        bail!("data parallelism over MPI: {HOW_TO_ENABLE}")
    }

    pub fn rank(&self) -> usize {
        match *self {}
    }

    pub fn world(&self) -> usize {
        match *self {}
    }

    pub fn abort(&self, _code: i32) -> ! {
        match *self {}
    }

    pub fn barrier(&self) {
        match *self {}
    }

    pub fn broadcast_bytes(&self, _buf: &mut [u8], _root: usize) {
        match *self {}
    }

    pub fn all_reduce_sum(&self, _t: &mut Tensor) -> Result<()> {
        match *self {}
    }

    pub fn broadcast(&self, _t: &mut Tensor, _root: usize) -> Result<()> {
        match *self {}
    }
}
