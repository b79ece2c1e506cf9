//! Compute estimate of a run: the 6·N·D rule adapted to recursion.
//!
//! * N = non-embedding parameters ≈ layers · (4·d² + 3·d·ffn), ffn =
//!   `model.ffn` or 4·d (attention q,k,v,o + SwiGLU's three matrices).
//! * D per step = batch · cells · unroll tokens.
//! * Recursive variants (`trldm`, `trldm-ds`, `trm`) apply the network
//!   (n_rec + 1) times per cycle: one cycle with gradients (6·N per token
//!   and application) and T − 1 without (2·N, forward only). Other variants
//!   apply it once with gradients.
//! * GPU-hours = FLOPs / (achieved TFLOP/s · 10¹² · 3600).
use crate::config::RunConfig;

/// Non-embedding parameter count.
pub fn params(c: &RunConfig) -> f64 {
    let d = c.model.d as f64;
    let ffn = if c.model.ffn == 0 {
        4.0 * d
    } else {
        c.model.ffn as f64
    };
    c.model.layers as f64 * (4.0 * d * d + 3.0 * d * ffn)
}

/// Training FLOPs of one run.
pub fn train_flops(c: &RunConfig) -> f64 {
    let n = params(c);
    let tokens = (c.train.batch * c.cells() * c.train.unroll) as f64 * c.train.steps as f64;
    let recursive = matches!(c.model.variant.as_str(), "trldm" | "trldm-ds" | "trm");
    if recursive {
        let apps = (c.model.n_rec + 1) as f64;
        let t = c.model.t_cycles as f64;
        6.0 * n * tokens * apps + 2.0 * n * tokens * apps * (t - 1.0)
    } else {
        6.0 * n * tokens
    }
}

/// GPU-hours of one run at `tflops` achieved TFLOP/s.
pub fn gpu_hours(c: &RunConfig, tflops: f64) -> f64 {
    train_flops(c) / (tflops.max(1e-9) * 1e12 * 3600.0)
}

/// The assumptions, printed under the plan.
pub fn assumptions(tflops: f64) -> String {
    format!(
        "estimate: FLOPs = 6·N·D·(n_rec+1) + 2·N·D·(n_rec+1)·(T−1) for recursive variants (6·N·D otherwise), \
         N = layers·(4·d² + 3·d·ffn) non-embedding params (ffn = 4·d when 0), D = batch·cells·unroll·steps tokens; \
         evaluation and data loading not counted; GPU-hours at {tflops} TFLOP/s achieved (`--tflops`)"
    )
}
