//! The paper's theory measured on a trained model (Sec. 8):
//!
//! * Prop. 1 assumes the latent update F(z) = Net_θ(x + y + z) of Algorithm 1
//!   is an α-contraction in z. [`contraction`] estimates α at each inner step
//!   of the first denoising step: ‖F(z + δ) − F(z)‖ / ‖δ‖ for small random δ
//!   (median and maximum over perturbations and puzzles).
//! * Thm. 1: the Eq. 3 objective upper-bounds the negative log-likelihood.
//!   [`eq3_bound`] is its Monte-Carlo estimate on the test split, in nats per
//!   response token (t drawn uniformly in (eps, 1], the prompt kept, every
//!   loss weight 1), from the model's initial state (`model.state_init`).
//!
//! * Prop. 2: detaching (y, z) between denoising steps (Algorithm 3, line
//!   15) biases the gradient by at most a geometric tail in the inter-step
//!   contraction α. [`gradient_bias`] compares, on test puzzles, the
//!   gradient of Σ_{s≤k} ℓ_s with the states detached between steps against
//!   full backpropagation through the k steps (the token sequences of the
//!   steps fixed, as in the proof of App. E), for k = 1..N, and estimates
//!   the inter-step α: ‖u_{s+1}(u_s + δ) − u_{s+1}(u_s)‖ / ‖δ‖ for the
//!   stacked state u = (y, z).
use crate::config::RunConfig;
use crate::data::{Dataset, MASK};
use crate::model::{Model, State};
use crate::sample::{commit, predict, remaining_after};
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
    crate::seed::seeded(0, || {
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
                    ratios
                        .extend(Vec::<f64>::try_from(r.to_kind(Kind::Double)).unwrap_or_default());
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

/// Prop. 2 at a horizon of k denoising steps.
#[derive(Debug, Clone, PartialEq)]
pub struct GradBias {
    /// Denoising steps k in the objective Σ_{s≤k} ℓ_s.
    pub steps: usize,
    /// cos(∇ full, ∇ detached) over all parameters.
    pub cosine: f64,
    /// ‖∇ full − ∇ detached‖ / ‖∇ full‖.
    pub rel_diff: f64,
    pub norm_full: f64,
    pub norm_detached: f64,
    /// Median α of step k's state map u_k ↦ u_{k+1} (the state entering
    /// step k to the one it hands on); NaN at k = 1, which starts from e(x).
    pub alpha_step: f64,
}

/// Measures Prop. 2 on the first `batch` test puzzles over `steps`
/// denoising steps from the all-masked start (committed with the sampler's
/// schedule and low-confidence remasking, without gradients, then held
/// fixed). `vars` are the parameters the gradients are taken of. With
/// T > 1 the incoming state only enters Algorithm 2's gradient-free cycles,
/// so both gradients coincide by construction (`cfg.model.T` is checked).
pub fn gradient_bias(
    model: &Model,
    vars: &[Tensor],
    cfg: &RunConfig,
    ds: &Dataset,
    batch: usize,
    steps: usize,
) -> Result<Vec<GradBias>> {
    if !model.variant.recursive() || !model.variant.diffusion() {
        bail!(
            "model.variant = {} carries no (y, z) across denoising steps to measure",
            model.variant
        );
    }
    if cfg.model.t_cycles > 1 {
        bail!(
            "model.T = {}: the carried state enters only the gradient-free cycles of Algorithm 2, so detached and full gradients are equal by construction",
            cfg.model.t_cycles
        );
    }
    if batch == 0 || steps == 0 || ds.is_empty() || vars.is_empty() {
        bail!("need at least one test puzzle, one step and one parameter (--puzzles, --steps)");
    }
    let dev = model.device();
    let b = batch.min(ds.len()) as i64;
    let rows = |t: &Tensor| t.narrow(0, 0, b).to_device(dev);
    let (target, resp) = (rows(&ds.target), rows(&ds.resp));
    let l_r = resp.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0);
    let ones = target.ones_like().to_kind(Kind::Float);
    // The token sequence of each step, and the state entering it.
    let mut tokens = vec![rows(&ds.input)];
    let mut states: Vec<Option<State>> = vec![None];
    let n = tokens[0]
        .eq(MASK)
        .logical_and(&resp)
        .sum_dim_intlist(1, false, Kind::Int64);
    tch::no_grad(|| {
        for s in 1..steps {
            let out = model.forward(&tokens[s - 1], states[s - 1].as_ref().map(State::detach));
            let keep = remaining_after(cfg.sample.schedule, &n, s, steps);
            let (pred, conf) = predict(&out.logits, 0.0);
            tokens.push(commit(&tokens[s - 1], &pred, &conf, &resp, &keep));
            states.push(Some(out.state.detach()));
        }
    });
    let step_loss = |s: usize, logits: &Tensor| {
        let masked = tokens[s].eq(MASK).logical_and(&resp);
        let t = masked.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0) / &l_r;
        loss::mdm_loss(logits, &target, &masked, &t, &l_r, &ones)
    };
    let grads = |k: usize, detach: bool| -> Vec<Tensor> {
        let mut state: Option<State> = None;
        let mut total = Tensor::zeros([], (Kind::Float, dev));
        for (s, toks) in tokens.iter().enumerate().take(k) {
            let out = model.forward(toks, state.take());
            total += step_loss(s, &out.logits);
            state = Some(if detach {
                out.state.detach()
            } else {
                out.state
            });
        }
        Tensor::run_backward(&[total], vars, false, false)
    };
    // Parameters the losses do not reach (the halting head) get no gradient.
    let flat = |g: &[Tensor]| {
        Tensor::cat(
            &g.iter()
                .zip(vars)
                .map(|(g, v)| {
                    let g = if g.defined() {
                        g.shallow_clone()
                    } else {
                        v.zeros_like()
                    };
                    g.to_kind(Kind::Double).flatten(0, -1)
                })
                .collect::<Vec<_>>(),
            0,
        )
    };
    // The map from the state entering step s (0-based) to the state it hands on.
    let alpha = |s: usize| -> f64 {
        let Some(u) = states.get(s).and_then(|u| u.as_ref()) else {
            return f64::NAN;
        };
        crate::seed::seeded(s as i64, || {
            tch::no_grad(|| {
                let size = |t: &Tensor| t.flatten(1, -1).norm_scalaropt_dim(2, [1], false);
                let (dy, dz) = (u.y.randn_like(), u.z.randn_like());
                let scale = (size(&u.y).square() + size(&u.z).square()).sqrt()
                    / (size(&dy).square() + size(&dz).square()).sqrt()
                    * 1e-3;
                let sc = scale.view([-1, 1, 1]);
                let pert = State {
                    y: &u.y + &dy * &sc,
                    z: &u.z + &dz * &sc,
                };
                let a = model.forward(&tokens[s], Some(u.detach())).state;
                let p = model.forward(&tokens[s], Some(pert)).state;
                let num = ((&p.y - &a.y)
                    .flatten(1, -1)
                    .norm_scalaropt_dim(2, [1], false)
                    .square()
                    + (&p.z - &a.z)
                        .flatten(1, -1)
                        .norm_scalaropt_dim(2, [1], false)
                        .square())
                .sqrt();
                let den = ((&dy * &sc)
                    .flatten(1, -1)
                    .norm_scalaropt_dim(2, [1], false)
                    .square()
                    + (&dz * &sc)
                        .flatten(1, -1)
                        .norm_scalaropt_dim(2, [1], false)
                        .square())
                .sqrt();
                let mut r =
                    Vec::<f64>::try_from((num / den).to_kind(Kind::Double)).unwrap_or_default();
                r.sort_by(f64::total_cmp);
                r.get(r.len() / 2).copied().unwrap_or(f64::NAN)
            })
        })
    };
    let mut out = Vec::new();
    for k in 1..=steps {
        let (full, det) = (flat(&grads(k, false)), flat(&grads(k, true)));
        let nf = full.norm().double_value(&[]);
        let nd = det.norm().double_value(&[]);
        let dot = (&full * &det).sum(Kind::Double).double_value(&[]);
        let diff = (&full - &det).norm().double_value(&[]);
        out.push(GradBias {
            steps: k,
            cosine: dot / (nf * nd).max(f64::MIN_POSITIVE),
            rel_diff: diff / nf.max(f64::MIN_POSITIVE),
            norm_full: nf,
            norm_detached: nd,
            alpha_step: alpha(k - 1),
        });
    }
    Ok(out)
}
