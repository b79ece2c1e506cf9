//! Compute estimate of a run: GPU-hours = FLOPs / (achieved TFLOP/s · 10¹²
//! · 3600), with the FLOPs of [`crate::flops`] (the 6·N·D rule adapted to
//! recursion, attention included).
use crate::config::RunConfig;
pub use crate::flops::{params, train_flops};

/// GPU-hours of one run at `tflops` achieved TFLOP/s.
pub fn gpu_hours(c: &RunConfig, tflops: f64) -> f64 {
    train_flops(c) / (tflops.max(1e-9) * 1e12 * 3600.0)
}

/// The assumptions, printed under the plan.
pub fn assumptions(tflops: f64) -> String {
    format!(
        "estimate: FLOPs per token = (2·N + 4·L·d·layers)·((n_rec+1)·(T−1) + 3·(n_rec+1)) for recursive variants \
         (3·(2·N + 4·L·d·layers) otherwise), N = layers·(4·d² + 3·d·ffn) non-embedding params (ffn = 4·d when 0), \
         times batch·L·unroll·steps tokens (L = sequence length); evaluation and data loading not counted; \
         GPU-hours at {tflops} TFLOP/s achieved (`--tflops`)"
    )
}
