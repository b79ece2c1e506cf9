//! Optimisation (App. C): AdamW (β = 0.9/0.95, decoupled weight decay on
//! matrices), linear warmup then cosine decay to a floor, gradient-norm
//! clipping, and an EMA of the weights.
//!
//! AdamW is written out over tensors (rather than libtorch's optimizer) so
//! that its moments live in our checkpoints and a resumed run continues
//! bit-exactly.
use crate::config::TrainConfig;
use tch::{nn::VarStore, Tensor};

/// The learning rate at `step` (0-based): linear warmup over `warmup`
/// steps to `lr`, then cosine decay to `lr_min` at `steps`.
pub fn lr_at(cfg: &TrainConfig, step: usize) -> f64 {
    if cfg.warmup > 0 && step < cfg.warmup {
        return cfg.lr * (step + 1) as f64 / cfg.warmup as f64;
    }
    let span = cfg.steps.saturating_sub(cfg.warmup).max(1) as f64;
    let p = ((step - cfg.warmup.min(step)) as f64 / span).min(1.0);
    cfg.lr_min + (cfg.lr - cfg.lr_min) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
}

/// A model's trainable parameters in a fixed (name-sorted) order.
pub fn named_params(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// AdamW over named parameters.
pub struct AdamW {
    pub params: Vec<(String, Tensor)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Updates applied so far (Adam's bias-correction step).
    pub t: i64,
    beta1: f64,
    beta2: f64,
    wd: f64,
    eps: f64,
}

impl AdamW {
    pub fn new(vs: &VarStore, cfg: &TrainConfig) -> AdamW {
        let params = named_params(vs);
        let zeros = || {
            params
                .iter()
                .map(|(_, p)| p.zeros_like())
                .collect::<Vec<_>>()
        };
        AdamW {
            m: zeros(),
            v: zeros(),
            params,
            t: 0,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            wd: cfg.weight_decay,
            eps: 1e-8,
        }
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }

    /// Global L2 norm of all gradients.
    pub fn grad_norm(&self) -> f64 {
        let norms: Vec<Tensor> = self
            .params
            .iter()
            .filter_map(|(_, p)| {
                let g = p.grad();
                g.defined().then(|| g.to_kind(tch::Kind::Float).norm())
            })
            .collect();
        if norms.is_empty() {
            return 0.0;
        }
        f64::try_from(Tensor::stack(&norms, 0).norm()).unwrap_or(f64::NAN)
    }

    /// Scales gradients so that their global norm is at most `max` (given the current `norm`).
    pub fn clip(&mut self, norm: f64, max: f64) {
        if max > 0.0 && norm > max {
            let s = max / (norm + 1e-6);
            for (_, p) in &mut self.params {
                let mut g = p.grad();
                if g.defined() {
                    let _ = g.g_mul_scalar_(s);
                }
            }
        }
    }

    /// One AdamW update at learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        self.t += 1;
        let bc1 = 1.0 - self.beta1.powi(self.t as i32);
        let bc2 = 1.0 - self.beta2.powi(self.t as i32);
        tch::no_grad(|| {
            for (i, (_, p)) in self.params.iter_mut().enumerate() {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                if p.dim() >= 2 && self.wd > 0.0 {
                    let _ = p.g_mul_scalar_(1.0 - lr * self.wd);
                }
                let _ = self.m[i].lerp_(&g, 1.0 - self.beta1);
                let _ = self.v[i].g_mul_scalar_(self.beta2);
                let _ = self.v[i].addcmul_(&(&g * (1.0 - self.beta2)), &g);
                let denom = (self.v[i].sqrt() / bc2.sqrt()) + self.eps;
                let upd = (&self.m[i] / denom) * (lr / bc1);
                let _ = p.g_sub_(&upd);
            }
        });
    }

    /// The moments as named tensors (for checkpoints).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.push((format!("adam_m/{name}"), self.m[i].shallow_clone()));
            out.push((format!("adam_v/{name}"), self.v[i].shallow_clone()));
        }
        out
    }

    /// Restores the moments written by [`AdamW::state`].
    pub fn load_state(
        &mut self,
        get: &dyn Fn(&str) -> Option<Tensor>,
        t: i64,
    ) -> anyhow::Result<()> {
        for (i, (name, _)) in self.params.iter().enumerate() {
            for (prefix, dst) in [("adam_m", &mut self.m[i]), ("adam_v", &mut self.v[i])] {
                let src = get(&format!("{prefix}/{name}"))
                    .ok_or_else(|| anyhow::anyhow!("checkpoint lacks {prefix}/{name}"))?;
                tch::no_grad(|| dst.copy_(&src));
            }
        }
        self.t = t;
        Ok(())
    }
}

/// Exponential moving average of the weights (App. C: 0.999).
pub struct Ema {
    pub decay: f64,
    pub shadow: Vec<(String, Tensor)>,
}

impl Ema {
    pub fn new(params: &[(String, Tensor)], decay: f64) -> Ema {
        let shadow = params
            .iter()
            .map(|(n, p)| (n.clone(), p.detach().copy()))
            .collect();
        Ema { decay, shadow }
    }

    /// The decay used at update `t` (1-based): min(decay, (1 + t) / (10 + t)),
    /// the usual EMA warm-up, so the random initial weights are forgotten
    /// early (a flat 0.999 keeps 13.5 % of them after 2,000 updates).
    pub fn decay_at(&self, t: u64) -> f64 {
        self.decay.min((1.0 + t as f64) / (10.0 + t as f64))
    }

    /// Folds the parameters after update `t` (1-based) into the average.
    pub fn update(&mut self, params: &[(String, Tensor)], t: u64) {
        let w = 1.0 - self.decay_at(t);
        tch::no_grad(|| {
            for ((_, s), (_, p)) in self.shadow.iter_mut().zip(params) {
                let _ = s.lerp_(p, w);
            }
        });
    }

    /// Copies the averaged weights into another var store of the same model.
    pub fn copy_into(&self, vs: &VarStore) {
        let vars = vs.variables();
        tch::no_grad(|| {
            for (name, s) in &self.shadow {
                if let Some(mut dst) = vars.get(name).map(|t| t.shallow_clone()) {
                    dst.copy_(s);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_floor() {
        let cfg = TrainConfig {
            steps: 1000,
            warmup: 100,
            lr: 1e-3,
            lr_min: 1e-4,
            ..Default::default()
        };
        assert!((lr_at(&cfg, 0) - 1e-5).abs() < 1e-12);
        assert!((lr_at(&cfg, 99) - 1e-3).abs() < 1e-12);
        assert!((lr_at(&cfg, 100) - 1e-3).abs() < 1e-12);
        assert!((lr_at(&cfg, 550) - 5.5e-4).abs() < 1e-9);
        assert!((lr_at(&cfg, 1000) - 1e-4).abs() < 1e-12);
        assert!((lr_at(&cfg, 5000) - 1e-4).abs() < 1e-12);
        // A quarter into the decay the cosine and a linear decay disagree:
        // lr_min + (lr - lr_min)·(1 + cos(π/4))/2 = 8.682e-4, linear 7.75e-4.
        let want = 1e-4 + 9e-4 * 0.5 * (1.0 + std::f64::consts::FRAC_PI_4.cos());
        assert!(
            (lr_at(&cfg, 325) - want).abs() < 1e-12,
            "{}",
            lr_at(&cfg, 325)
        );
        assert!(
            (lr_at(&cfg, 775) - (1e-4 + 9e-4 * 0.5 * (1.0 + (0.75 * std::f64::consts::PI).cos())))
                .abs()
                < 1e-12
        );
    }

    /// shadow ← decay_t · shadow + (1 − decay_t) · param, with the warm-up
    /// decay: a swapped lerp weight or a missing warm-up gives other numbers.
    #[test]
    fn ema_update_follows_the_warmed_up_decay() {
        let p = vec![("w".to_string(), Tensor::from_slice(&[10.0f32]))];
        let mut ema = Ema::new(&[("w".to_string(), Tensor::from_slice(&[0.0f32]))], 0.99);
        assert!((ema.decay_at(1) - 2.0 / 11.0).abs() < 1e-12);
        assert_eq!(ema.decay_at(100_000), 0.99);
        ema.update(&p, 1);
        let v = f64::try_from(&ema.shadow[0].1.get(0)).unwrap();
        assert!((v - 10.0 * (1.0 - 2.0 / 11.0)).abs() < 1e-4, "{v}");
        ema.update(&p, 1000);
        let v2 = f64::try_from(&ema.shadow[0].1.get(0)).unwrap();
        assert!((v2 - (0.99 * v + 0.01 * 10.0)).abs() < 1e-4, "{v2}");
    }

    #[test]
    fn adamw_two_steps_match_hand_computation() {
        let vs = VarStore::new(tch::Device::Cpu);
        let w = vs
            .root()
            .var_copy("w", &Tensor::from_slice(&[1.0f32, -2.0]).view([1, 2]));
        let b = vs.root().var_copy("b", &Tensor::from_slice(&[0.5f32]));
        let cfg = TrainConfig {
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            ..Default::default()
        };
        let mut opt = AdamW::new(&vs, &cfg);
        let (lr, gw, gb) = (0.01, [[3.0, -0.5], [1.0, 2.0]], [4.0, -1.0]);
        // Reference: per element, m/v updated, p ← p·(1 − lr·wd) for matrices,
        // then p ← p − lr/bc1 · m / (sqrt(v)/sqrt(bc2) + 1e-8).
        let adam = |p0: f64, grads: [f64; 2], decay: bool| {
            let (mut p, mut m, mut v) = (p0, 0.0, 0.0);
            for (t, g) in grads.iter().enumerate() {
                let t = (t + 1) as i32;
                if decay {
                    p *= 1.0 - lr * 0.1;
                }
                m = 0.9 * m + 0.1 * g;
                v = 0.95 * v + 0.05 * g * g;
                let (bc1, bc2) = (1.0 - 0.9f64.powi(t), 1.0 - 0.95f64.powi(t));
                p -= lr / bc1 * m / (v.sqrt() / bc2.sqrt() + 1e-8);
            }
            p
        };
        for step in 0..2 {
            opt.zero_grad();
            let gw_t = Tensor::from_slice(&[gw[step][0] as f32, gw[step][1] as f32]).view([1, 2]);
            let loss = (&w * gw_t).sum(tch::Kind::Float) + (&b * gb[step]).sum(tch::Kind::Float);
            loss.backward();
            opt.step(lr);
        }
        let got_w = Vec::<f32>::try_from(w.flatten(0, -1)).unwrap();
        let got_b = Vec::<f32>::try_from(&b).unwrap();
        let want = [
            adam(1.0, [gw[0][0], gw[1][0]], true),
            adam(-2.0, [gw[0][1], gw[1][1]], true),
            adam(0.5, gb, false),
        ];
        for (g, w) in got_w.iter().chain(&got_b).zip(want) {
            assert!(
                (*g as f64 - w).abs() < 1e-6,
                "{got_w:?} {got_b:?} vs {want:?}"
            );
        }
    }

    /// A store with w = [1, -2] (a [1, 2] matrix) and b = [0.5], and the
    /// gradients of (w · [3, 4]).sum() + 12 · b: [3, 4] and [12], norm 13.
    fn store_with_grads() -> (VarStore, Tensor, Tensor) {
        let vs = VarStore::new(tch::Device::Cpu);
        let w = vs
            .root()
            .var_copy("w", &Tensor::from_slice(&[1.0f32, -2.0]).view([1, 2]));
        let b = vs.root().var_copy("b", &Tensor::from_slice(&[0.5f32]));
        let loss = (&w * Tensor::from_slice(&[3.0f32, 4.0]).view([1, 2])).sum(tch::Kind::Float)
            + (&b * 12.0).sum(tch::Kind::Float);
        loss.backward();
        (vs, w, b)
    }

    fn grads(opt: &AdamW) -> Vec<f32> {
        opt.params
            .iter()
            .flat_map(|(_, p)| Vec::<f32>::try_from(p.grad().flatten(0, -1)).unwrap())
            .collect()
    }

    /// Global norm sqrt(3² + 4² + 12²) = 13; clipping to 6.5 halves every
    /// gradient, clipping to 13 or more (or 0 = off) leaves them;
    /// `zero_grad` zeroes them. `named_params` sorts by name: b before w.
    #[test]
    fn grad_norm_clip_and_zero_grad_follow_their_definitions() {
        let (vs, _w, _b) = store_with_grads();
        let mut opt = AdamW::new(&vs, &TrainConfig::default());
        let names: Vec<&str> = opt.params.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["b", "w"]);
        assert!((opt.grad_norm() - 13.0).abs() < 1e-5, "{}", opt.grad_norm());
        for max in [0.0, 13.0, 20.0] {
            opt.clip(13.0, max);
            assert_eq!(grads(&opt), [12.0, 3.0, 4.0], "clip to {max}");
        }
        opt.clip(13.0, 6.5);
        for (g, want) in grads(&opt).iter().zip([6.0f32, 1.5, 2.0]) {
            assert!((g - want).abs() < 1e-5, "{:?}", grads(&opt));
        }
        opt.zero_grad();
        assert_eq!(grads(&opt), [0.0, 0.0, 0.0]);
        assert_eq!(opt.grad_norm(), 0.0);
    }

    /// The moments written by `state` and read back by `load_state` make a
    /// fresh optimizer take exactly the update the original takes next; a
    /// missing moment is an error naming it.
    #[test]
    fn adamw_state_round_trips_through_a_checkpoint() {
        let cfg = TrainConfig {
            weight_decay: 0.1,
            ..Default::default()
        };
        let (vs, w, _b) = store_with_grads();
        let mut opt = AdamW::new(&vs, &cfg);
        opt.step(0.01);
        opt.step(0.01);
        let state: std::collections::HashMap<String, Tensor> = opt.state().into_iter().collect();
        let mut names: Vec<&String> = state.keys().collect();
        names.sort();
        assert_eq!(names, ["adam_m/b", "adam_m/w", "adam_v/b", "adam_v/w"]);

        // Two copies of the stepped weights with the same gradients: one
        // restores the moments, the other starts from zero moments.
        let copy = || {
            let (vs2, w2, _b2) = store_with_grads();
            tch::no_grad(|| {
                for ((_, dst), (_, src)) in named_params(&vs2).iter_mut().zip(named_params(&vs)) {
                    dst.copy_(&src);
                }
            });
            (vs2, w2)
        };
        let (vs2, w2) = copy();
        let (vs3, w3) = copy();
        let mut restored = AdamW::new(&vs2, &cfg);
        restored
            .load_state(&|n| state.get(n).map(|t| t.copy()), opt.t)
            .unwrap();
        assert_eq!(restored.t, 2);
        let mut blank = AdamW::new(&vs3, &cfg);
        // New gradients (2p, from Σ p²): with the constant gradients so far
        // Adam's bias-corrected update would not depend on the moments.
        for o in [&mut opt, &mut restored, &mut blank] {
            o.zero_grad();
            let loss = o
                .params
                .iter()
                .map(|(_, p)| (p * p).sum(tch::Kind::Float))
                .fold(Tensor::from(0.0f32), |a, b| a + b);
            loss.backward();
            o.step(0.01);
        }
        assert!(w.equal(&w2), "{w} vs {w2}");
        assert!(
            !w.equal(&w3),
            "the moments make no difference: the test shows nothing"
        );
        let err = AdamW::new(&vs3, &cfg)
            .load_state(&|n| (n != "adam_v/w").then(|| state[n].copy()), 2)
            .unwrap_err();
        assert!(
            err.to_string().contains("checkpoint lacks adam_v/w"),
            "{err}"
        );
    }

    /// `copy_into` writes the averaged weights into another store's variables.
    #[test]
    fn ema_copy_into_writes_the_average() {
        let ema = Ema::new(
            &[("w".to_string(), Tensor::from_slice(&[10.0f32, -3.0]))],
            0.9,
        );
        let vs = VarStore::new(tch::Device::Cpu);
        let w = vs.root().zeros("w", &[2]);
        ema.copy_into(&vs);
        assert_eq!(Vec::<f32>::try_from(&w).unwrap(), [10.0, -3.0]);
    }

    #[test]
    fn adamw_first_step_moves_each_weight_by_lr() {
        // With bias correction, Adam's first update is lr * g/|g| (+ decay).
        let vs = VarStore::new(tch::Device::Cpu);
        let w = vs
            .root()
            .var_copy("w", &Tensor::from_slice(&[1.0f32, -2.0]).view([1, 2]));
        let cfg = TrainConfig {
            weight_decay: 0.0,
            ..Default::default()
        };
        let mut opt = AdamW::new(&vs, &cfg);
        let loss = (&w * Tensor::from_slice(&[3.0f32, -0.5]).view([1, 2])).sum(tch::Kind::Float);
        loss.backward();
        opt.step(0.1);
        let got = Vec::<f32>::try_from(w.flatten(0, -1)).unwrap();
        assert!(
            (got[0] - 0.9).abs() < 1e-5 && (got[1] + 1.9).abs() < 1e-5,
            "{got:?}"
        );
    }
}
