//! The paper's theory measured on a trained model (Sec. 8):
//!
//! * Prop. 1 assumes the latent update F(z) = Net_θ(x + y + z) of Algorithm 1
//!   is an α-contraction in z. [`contraction`] estimates α at each inner step
//!   of the first denoising step: ‖F(z + δ) − F(z)‖ / ‖δ‖ for small random δ
//!   (median and maximum over perturbations and puzzles).
//! * Thm. 1: the Eq. 3 objective upper-bounds the negative log-likelihood.
//!   [`eq3_bound`] is its Monte-Carlo estimate on the test split, in nats per
//!   response token (t drawn uniformly in (eps, 1], the prompt kept, every
//!   loss weight 1), from the Sec. 7.2 initial state.
//!
//! Prop. 2 (gradient bias of detaching across denoising steps) is not
//! measured here.
use crate::config::RunConfig;
use crate::data::{Dataset, MASK};
use crate::model::Model;
use crate::train::loss;
use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use tch::{Device, Kind, Tensor};

/// α at one inner step of Algorithm 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Alpha {
    /// 1-based inner step i: F is applied to z_{i-1}.
    pub step: usize,
    pub median: f64,
    pub max: f64,
}

/// Estimates the contraction factor of F(z) = Net(x + y + z) at each of the
/// n inner steps of the first denoising step, on the first `batch` test
/// puzzles (every response position masked), with `k` random directions of
/// relative size `eps` (‖δ‖ = eps · ‖x‖ per puzzle).
pub fn contraction(
    model: &Model,
    ds: &Dataset,
    batch: usize,
    k: usize,
    eps: f64,
    n_rec: usize,
) -> Result<Vec<Alpha>> {
    if !model.variant.recursive() {
        bail!(
            "model.variant = {:?} has no latent recursion to measure",
            model.variant
        );
    }
    if batch == 0 || k == 0 || ds.is_empty() {
        bail!("need at least one test puzzle and one direction (--puzzles, --directions)");
    }
    if !(eps > 0.0 && eps.is_finite()) {
        bail!("--eps {eps}: must be a positive number");
    }
    let dev = model.device();
    let b = batch.min(ds.len()) as i64;
    tch::manual_seed(0);
    tch::no_grad(|| {
        let tokens = ds.input.narrow(0, 0, b).to_device(dev);
        let x = model.embed(&tokens);
        let s = model.init_state(&x);
        let norm = |t: &Tensor| {
            t.square()
                .sum_dim_intlist(&[1i64, 2][..], false, Kind::Float)
                .sqrt()
        };
        let x_norm = norm(&x);
        let f = |z: &Tensor| model.net(&(&x + &s.y + z));
        let mut z = s.z.shallow_clone();
        let mut out = Vec::new();
        for step in 1..=n_rec {
            let fz = f(&z);
            let mut ratios: Vec<f64> = Vec::new();
            for _ in 0..k {
                let d = z.randn_like();
                let d = &d * (&x_norm * eps / norm(&d)).view([b, 1, 1]);
                let r = norm(&(f(&(&z + &d)) - &fz)) / norm(&d);
                ratios.extend(Vec::<f64>::try_from(r.to_kind(Kind::Double)).unwrap_or_default());
            }
            ratios.sort_by(f64::total_cmp);
            out.push(Alpha {
                step,
                median: ratios[ratios.len() / 2],
                max: *ratios.last().unwrap_or(&f64::NAN),
            });
            z = fz;
        }
        Ok(out)
    })
}

/// Monte-Carlo estimate of the Eq. 3 objective on the first `limit` test
/// puzzles (0 = all), `draws` masks per puzzle, in nats per response token.
/// Returns (mean, standard error over puzzles).
pub fn eq3_bound(
    model: &Model,
    cfg: &RunConfig,
    ds: &Dataset,
    limit: usize,
    draws: usize,
    device: Device,
) -> Result<(f64, f64)> {
    let n = if limit == 0 {
        ds.len()
    } else {
        limit.min(ds.len())
    };
    if n == 0 || draws == 0 {
        bail!("need at least one test puzzle and one draw (--draws)");
    }
    let bs = crate::eval::batch_size(cfg, device);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut per_puzzle: Vec<f64> = vec![0.0; n];
    tch::no_grad(|| -> Result<()> {
        for lo in (0..n).step_by(bs) {
            let hi = (lo + bs).min(n);
            let rows = |t: &Tensor| t.narrow(0, lo as i64, (hi - lo) as i64).to_device(device);
            let (target, resp) = (rows(&ds.target), rows(&ds.resp));
            let (b, l) = target.size2()?;
            let l_r = resp.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0);
            let ones = target.ones_like().to_kind(Kind::Float);
            for _ in 0..draws {
                let t: Vec<f32> = (0..b)
                    .map(|_| (cfg.train.eps + (1.0 - cfg.train.eps) * rng.gen::<f64>()) as f32)
                    .collect();
                let u: Vec<f32> = (0..b * l).map(|_| rng.gen::<f32>()).collect();
                let t = Tensor::from_slice(&t).to_device(device);
                let u = Tensor::from_slice(&u).view([b, l]).to_device(device);
                let masked = u.lt_tensor(&t.unsqueeze(1)).logical_and(&resp);
                let tokens = target.masked_fill(&masked, MASK);
                let logits = model.forward(&tokens, None).logits;
                // Per puzzle: (1/(t·L_r)) Σ masked −log p.
                for (i, v) in
                    (lo..hi).zip(per_sample_eq3(&logits, &target, &masked, &t, &l_r, &ones)?)
                {
                    per_puzzle[i] += v / draws as f64;
                }
            }
        }
        Ok(())
    })?;
    let (mean, std, m) = crate::report::stats::mean_std(&per_puzzle);
    Ok((
        mean.unwrap_or(f64::NAN),
        std.unwrap_or(f64::NAN) / (m.max(1) as f64).sqrt(),
    ))
}

/// Eq. 3 per sample (the batch mean of [`loss::mdm_loss`] before averaging).
fn per_sample_eq3(
    logits: &Tensor,
    target: &Tensor,
    masked: &Tensor,
    t: &Tensor,
    l_r: &Tensor,
    w: &Tensor,
) -> Result<Vec<f64>> {
    let b = target.size()[0];
    let mut out = Vec::with_capacity(b as usize);
    for i in 0..b {
        let one = |x: &Tensor| x.narrow(0, i, 1);
        let v = loss::mdm_loss(
            &one(logits),
            &one(target),
            &one(masked),
            &one(t),
            &one(l_r),
            &one(w),
        );
        out.push(f64::try_from(v)?);
    }
    Ok(out)
}
