//! The one FLOP model of trldm: used by `trldm bench train` (achieved
//! FLOP/s, MFU), by `trldm sweep plan` (GPU-hours) and, for its parameter
//! count, by the memory check before a model is built.
//!
//! Counted the usual way (Kaplan et al. 2020): a matrix product with N
//! parameters costs 2·N per token forward and 4·N backward; attention's
//! scores and weighted sum add 4·L·d per layer and token forward (twice that
//! backward). N = layers · (4·d² + 3·d·ffn) (q, k, v, o and SwiGLU's three
//! matrices; ffn = 4·d when 0); the MLP-mixer block's token-mixing SwiGLU
//! has 12·L² weights applied to each of the d channels (24·L·d FLOPs per
//! token forward). Embeddings and the output and halting heads are
//! left out (they run once per forward, under 2 % at d ≥ 64).
//!
//! Net_θ applications per denoising step: the recursive variants (Algorithms
//! 1-2) run T cycles of n_rec + 1 calls, T − 1 of them without gradients
//! (forward only) and one with (forward + backward); `mdm` and `vanilla`
//! run one call with gradients. One update of Algorithm 3 (`trldm-ds`,
//! `trm`) is one such denoising step, like a one-step update; `train.unroll`
//! multiplies the tokens of an update, and `train.ds_one_step > 0` adds a
//! second (one-step) denoising step to each update of Algorithm 3.
use crate::config::{BlockKind, RunConfig};

/// Non-embedding parameters of Net_θ.
pub fn params(c: &RunConfig) -> f64 {
    let d = c.model.d as f64;
    let ffn = if c.model.ffn == 0 {
        4.0 * d
    } else {
        c.model.ffn as f64
    };
    let l = c.seq_len() as f64;
    let mixer = if c.model.block == BlockKind::Mixer {
        3.0 * l * 4.0 * l
    } else {
        4.0 * d * d
    };
    c.model.layers as f64 * (mixer + 3.0 * d * ffn)
}

/// Forward FLOPs of one Net_θ call per token.
fn forward_per_call(c: &RunConfig) -> f64 {
    let (d, l) = (c.model.d as f64, c.seq_len() as f64);
    let ffn = if c.model.ffn == 0 {
        4.0 * d
    } else {
        c.model.ffn as f64
    };
    // The token mixer per token: attention's four d×d matrices plus its
    // scores and weighted sum (4·L·d), or the mixer's SwiGLU across
    // positions, whose 12·L² weights act on each of the d channels: 24·L·d.
    let mixer = if c.model.block == BlockKind::Mixer {
        24.0 * l * d
    } else {
        2.0 * 4.0 * d * d + 4.0 * l * d
    };
    c.model.layers as f64 * (2.0 * 3.0 * d * ffn + mixer)
}

/// (calls without gradients, calls with gradients) per denoising step.
pub fn net_calls(c: &RunConfig) -> (f64, f64) {
    if c.model.variant.recursive() {
        let calls = (c.model.n_rec + 1) as f64;
        (calls * (c.model.t_cycles as f64 - 1.0), calls)
    } else {
        (0.0, 1.0)
    }
}

/// Training FLOPs per token of one update (forward + backward).
pub fn train_flops_per_token(c: &RunConfig) -> f64 {
    let (no_grad, grad) = net_calls(c);
    forward_per_call(c) * (no_grad + 3.0 * grad)
}

/// Tokens of one update: batch · sequence length · denoising steps per
/// update (`train.unroll`, plus one with `train.ds_one_step > 0`).
pub fn tokens_per_update(c: &RunConfig) -> f64 {
    let extra = usize::from(c.train.ds_one_step > 0.0);
    (c.train.batch * c.seq_len() * (c.train.unroll + extra)) as f64
}

/// Training FLOPs of a whole run (`train.steps` updates).
pub fn train_flops(c: &RunConfig) -> f64 {
    train_flops_per_token(c) * tokens_per_update(c) * c.train.steps as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(sets: &[&str]) -> RunConfig {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        RunConfig::default().with_overrides(&sets).unwrap()
    }

    /// Hand-computed: d = 64, 2 layers, ffn 256: N = 2·(4·64² + 3·64·256) =
    /// 131,072; 9x9 grid, L = 81: attention 4·81·64·2 = 41,472 per call;
    /// one call forward = 2N + 41,472 = 303,616.
    #[test]
    fn per_variant_counts_match_hand_computed_numbers() {
        let base = ["model.d=64", "model.layers=2", "model.n_rec=2", "model.T=1"];
        let with = |extra: &[&str]| {
            let mut v: Vec<&str> = base.to_vec();
            v.extend_from_slice(extra);
            train_flops_per_token(&cfg(&v))
        };
        assert_eq!(params(&cfg(&base)), 131_072.0);
        let one = 303_616.0;
        // mdm and vanilla: one call, forward + backward.
        assert_eq!(with(&["model.variant=mdm"]), 3.0 * one);
        assert_eq!(with(&["model.variant=vanilla"]), 3.0 * one);
        // TR-LDM, n = 2, T = 1: three calls with gradients: 3x mdm.
        assert_eq!(with(&["model.variant=trldm"]), 9.0 * one);
        assert_eq!(with(&["model.variant=trldm-ds"]), 9.0 * one);
        assert_eq!(with(&["model.variant=trm"]), 9.0 * one);
        // T = 3: two more cycles of three calls, forward only.
        assert_eq!(
            with(&["model.variant=trldm", "model.T=3"]),
            9.0 * one + 6.0 * one
        );
        // The concat layout doubles L (and attention's share per token).
        let concat = with(&["model.variant=mdm", "task.layout=concat"]);
        assert_eq!(concat, 3.0 * (2.0 * 131_072.0 + 4.0 * 162.0 * 64.0 * 2.0));
        let mut sets = base.to_vec();
        sets.extend_from_slice(&[
            "model.variant=mdm",
            "task.layout=concat",
            "train.batch=4",
            "train.steps=10",
        ]);
        let c = cfg(&sets);
        assert_eq!(tokens_per_update(&c), 4.0 * 162.0);
        // Deep supervision with the one-step loss added: two denoising
        // steps' tokens per update.
        let ds = cfg(&["model.variant=trldm-ds", "train.batch=4"]);
        let ds1 = cfg(&[
            "model.variant=trldm-ds",
            "train.batch=4",
            "train.ds_one_step=1",
        ]);
        assert_eq!(tokens_per_update(&ds), 4.0 * 81.0);
        assert_eq!(tokens_per_update(&ds1), 2.0 * 4.0 * 81.0);
        assert_eq!(train_flops(&c), concat * 4.0 * 162.0 * 10.0);
        // The mixer: SwiGLU 3·d·4d plus 24·L·d per layer and token, forward.
        let mixer = with(&["model.variant=mdm", "model.block=mixer", "model.pos=none"]);
        assert_eq!(
            mixer,
            3.0 * 2.0 * (2.0 * 3.0 * 64.0 * 256.0 + 24.0 * 81.0 * 64.0)
        );
    }
}
