//! Data parallelism between threads of one process on the CPU
//! (`train.workers`): every thread is a rank with its own model replica and
//! one libtorch thread, and the collectives of [`super::Dist`] go through
//! shared memory instead of MPI.
//!
//! Why threads: on 2 cores the small ops of one training step spread badly
//! over both cores (OpenMP barriers between ops), while two ranks that each
//! run a whole half-batch on one core do not (docs/FACTS.md, "Training
//! threads"; the same finding for sampling is "Sampling threads").
use anyhow::{bail, Result};
use std::sync::{Condvar, Mutex};
use tch::Tensor;

/// Returned by a collective when another rank of the group has failed.
#[derive(Debug)]
pub struct Aborted;

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "another training thread of this run failed")
    }
}

impl std::error::Error for Aborted {}

/// The ranks (threads) of one data-parallel run and what they share.
pub struct Group {
    world: usize,
    state: Mutex<State>,
    turn: Condvar,
}

struct State {
    /// Ranks waiting at the current barrier.
    arrived: usize,
    /// Barriers passed so far (a waiting rank leaves when it changes).
    generation: u64,
    /// Set by [`Group::fail`]: every wait, now and later, returns [`Aborted`].
    failed: bool,
    /// One tensor per rank: what a collective deposits for the others to read.
    slots: Vec<Option<Tensor>>,
}

impl Group {
    pub fn new(world: usize) -> Group {
        Group {
            world,
            state: Mutex::new(State {
                arrived: 0,
                generation: 0,
                failed: false,
                slots: (0..world).map(|_| None).collect(),
            }),
            turn: Condvar::new(),
        }
    }

    pub fn world(&self) -> usize {
        self.world
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking rank fails the group (`spawn`); the data stays usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until every rank arrives, or fails with [`Aborted`] once any
    /// rank has failed.
    pub fn wait(&self) -> Result<()> {
        let mut s = self.lock();
        if s.failed {
            bail!(Aborted);
        }
        s.arrived += 1;
        if s.arrived == self.world {
            s.arrived = 0;
            s.generation += 1;
            self.turn.notify_all();
            return Ok(());
        }
        let generation = s.generation;
        while s.generation == generation && !s.failed {
            s = self
                .turn
                .wait(s)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        if s.generation == generation {
            bail!(Aborted);
        }
        Ok(())
    }

    /// Marks the group failed and wakes every waiting rank.
    pub fn fail(&self) {
        self.lock().failed = true;
        self.turn.notify_all();
    }

    /// Every rank's deposit, read after all ranks deposited; a second
    /// barrier keeps the slots until every rank has its handles.
    fn exchange(&self, rank: usize, mine: Option<Tensor>) -> Result<Vec<Option<Tensor>>> {
        self.lock().slots[rank] = mine;
        self.wait()?;
        let all = self
            .lock()
            .slots
            .iter()
            .map(|t| t.as_ref().map(Tensor::shallow_clone))
            .collect();
        self.wait()?;
        Ok(all)
    }

    /// Sums `t` over the ranks, in place. Every rank adds the deposits in
    /// rank order, so all ranks hold the same bits.
    pub fn all_reduce_sum(&self, rank: usize, t: &mut Tensor) -> Result<()> {
        let all = self.exchange(rank, Some(t.copy()))?;
        tch::no_grad(|| {
            let mut parts = all.iter().flatten();
            let mut sum = parts.next().expect("one deposit per rank").copy();
            for p in parts {
                sum += p;
            }
            t.copy_(&sum);
        });
        Ok(())
    }

    /// Overwrites `t` with rank `root`'s values.
    pub fn broadcast(&self, rank: usize, t: &mut Tensor, root: usize) -> Result<()> {
        let mine = (rank == root).then(|| t.copy());
        let all = self.exchange(rank, mine)?;
        if rank != root {
            let src = all[root].as_ref().expect("the root deposited");
            tch::no_grad(|| t.copy_(src));
        }
        Ok(())
    }
}

/// Runs `rank(r, group)` for r = 0..world, each on its own thread with one
/// libtorch thread, and returns rank 0's result. When a rank fails (an
/// error or a panic) the group is failed, so that the others leave their
/// collectives with [`Aborted`]; the error returned is the first one that
/// is not [`Aborted`] (the cause), in rank order.
pub fn spawn<T: Send>(
    world: usize,
    rank: impl Fn(usize, std::sync::Arc<Group>) -> Result<T> + Sync,
) -> Result<T> {
    let group = std::sync::Arc::new(Group::new(world));
    // The process-wide count stays at one until the ranks finish: a count
    // set back to two while they run slowed two fp32 ranks to the speed of
    // one two-thread process (docs/FACTS.md, "Training threads"); this
    // thread only waits meanwhile.
    let main_threads = tch::get_num_threads();
    tch::set_num_threads(1);
    let results = crate::device::on_single_threads(world, |r| {
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rank(r, group.clone())))
            .unwrap_or_else(|p| {
                Err(anyhow::anyhow!(
                    "internal error: {}",
                    crate::util::panic_text(&*p)
                ))
            });
        if res.is_err() {
            group.fail();
        }
        res
    });
    tch::set_num_threads(main_threads);
    let (mut first, mut cause, mut aborted) = (None, None, None);
    for (r, res) in results.into_iter().enumerate() {
        match res {
            Ok(v) if r == 0 => first = Some(v),
            Ok(_) => {}
            Err(e) if e.downcast_ref::<Aborted>().is_some() => {
                aborted.get_or_insert(e);
            }
            Err(e) => {
                if cause.is_none() {
                    cause = Some(e.context(format!("training thread {r} of {world}")));
                }
            }
        }
    }
    match (cause.or(aborted), first) {
        (Some(e), _) => Err(e),
        (None, Some(v)) => Ok(v),
        (None, None) => unreachable!("rank 0 returned neither a value nor an error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_sum_and_broadcast_like_one_process_would() {
        let out = spawn(3, |r, g| {
            let mut t = Tensor::from_slice(&[r as f32, 10.0 * r as f32]);
            g.all_reduce_sum(r, &mut t)?;
            let mut b = Tensor::from_slice(&[r as f64 + 0.5]);
            g.broadcast(r, &mut b, 2)?;
            g.wait()?;
            Ok((Vec::<f32>::try_from(&t)?, Vec::<f64>::try_from(&b)?))
        })
        .unwrap();
        assert_eq!(out.0, vec![3.0, 30.0]);
        assert_eq!(out.1, vec![2.5]);
    }

    #[test]
    fn a_failing_rank_releases_the_others_and_its_error_is_returned() {
        let err = spawn(3, |r, g| {
            if r == 1 {
                bail!("rank one broke");
            }
            // Ranks 0 and 2 wait for rank 1, which never comes.
            g.wait()?;
            Ok(())
        })
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("rank one broke"), "{text}");
        assert!(text.contains("training thread 1 of 3"), "{text}");

        let err = spawn(2, |r, g| {
            if r == 0 {
                panic!("a bug on rank zero");
            }
            g.wait()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("a bug on rank zero"), "{err:#}");
    }
}
