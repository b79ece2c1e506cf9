//! Seeding libtorch's default random generator safely across threads.

/// Runs `f` with libtorch's default random generator seeded with `seed`,
/// holding a process-wide lock. libtorch has one default generator per
/// process (per device), so two threads that each seed it and then draw
/// (the tests of one binary run in parallel; the sweep runner starts one
/// process per run, so runs never share it) could otherwise interleave: one thread's `manual_seed` lands
/// between the other's seeding and its draws, and a run's initial weights
/// or sampling noise would depend on timing instead of on its seed. Every
/// draw from the default generator in this crate happens inside `seeded`.
pub fn seeded<T>(seed: i64, f: impl FnOnce() -> T) -> T {
    static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A panic inside `f` poisons the lock but leaves nothing half-done: the
    // next user seeds the generator again.
    let _guard = TORCH_RNG
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    tch::manual_seed(seed);
    f()
}

/// [`seeded`] for work that draws from the default generator only when
/// `draws` is true; otherwise `f` runs without seeding and without the
/// lock. An evaluation with deterministic sampling (argmax, low-confidence
/// remasking) draws nothing, so the evaluations of training threads
/// (`train.workers`), one per rank and each on its share of the test
/// puzzles, run side by side instead of one after the other.
pub fn seeded_if<T>(draws: bool, seed: i64, f: impl FnOnce() -> T) -> T {
    if draws {
        seeded(seed, f)
    } else {
        f()
    }
}
