//! Algorithm 3 (TR-LDM-DS): deep supervision over denoising iterations, and
//! the TRM baseline (the same loop without diffusion: the input stays fully
//! masked and every response position is supervised at every step).
//!
//! Per minibatch: r = all [MASK] (or, with `train.ds_start = "random"`,
//! Eq. 3's corruption of the answer), y = e([p, r]), z = 0; for s = 1..N_sup:
//! deep recursion (line 6), loss on the positions masked now (Eq. 3, line 9)
//! plus λ_halt · BCE(h_θ(y), 1[r̂ = r_0]) (line 11), one optimizer update
//! (line 12); samples with h_θ(y) > τ leave (line 13, after at least
//! `min_sup_steps`); low-confidence remask to the next ratio t_{s+1}
//! (line 14); detach y, z (line 15).
//!
//! The batch keeps its shape: a sample that halts stays in the tensors with
//! its loss masked out (as TRM's `reset_carry` / `torch.where` does), and
//! the loss is the mean over the samples still in the loop. Data
//! parallelism therefore needs no special rows: each rank scales its masked
//! row mean by `b · W / n_active` (b rows here, W ranks, n_active samples
//! still in the loop on all ranks, one scalar all-reduce per step when
//! halting is on), so that the averaged gradient is the one of the mean
//! over the active samples; the loop ends when none is left anywhere.
use super::{loss, Diverged, Trainer};
use crate::config::DsStart;
use crate::data::{Batch, MASK};
use crate::model::{State, Variant};
use crate::sample::{commit, predict, remaining_after};
use tch::{Kind, Tensor};

/// Runs Algorithm 3 on one minibatch. Returns the last loss and, per
/// update, the gradient norm — or why training must stop. Stops early when
/// the run reaches `max_steps` updates.
pub fn minibatch(
    tr: &mut Trainer,
    batch: &Batch,
    max_steps: u64,
) -> (f64, Result<Vec<f64>, Diverged>) {
    let cfg = tr.cfg.train.clone();
    let diffusion = tr.model.variant == Variant::TrldmDs;
    let schedule = tr.cfg.sample.schedule;
    // Line 3: r = all [MASK] (as written), or Eq. 3's corruption.
    let mut tokens = if diffusion && cfg.ds_start == DsStart::Random {
        tr.random_mask(batch).0
    } else {
        batch.input.shallow_clone()
    };
    let (target, resp, weight) = (&batch.target, &batch.resp, &batch.weight);
    // The schedule spreads the commits over the positions masked at the start.
    let n = tokens
        .eq(MASK)
        .logical_and(resp)
        .sum_dim_intlist(1, false, Kind::Int64);
    let l_r = resp.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0);
    let b = resp.size()[0];
    let mut active = Tensor::ones([b], (Kind::Bool, resp.device()));
    let mut n_active = tr.cfg.train.batch as f64;
    let world = tr.dist.world as f64;
    let mut state: Option<State> = None;
    let mut norms = Vec::new();
    let mut last_loss = f64::NAN;
    for s in 1..=cfg.n_sup {
        if tr.step >= max_steps {
            break;
        }
        let lr = super::optim::lr_at(&cfg, tr.step as usize);
        let out = tr.forward(&tokens, state.take());
        // Only the samples still in the loop are supervised.
        let rows = active.unsqueeze(1);
        let live_resp = resp.logical_and(&rows);
        let masked = tokens.eq(MASK).logical_and(&live_resp);
        let t = masked.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0) / &l_r;
        let main = if diffusion {
            loss::mdm_loss(&out.logits, target, &masked, &t, &l_r, weight)
        } else {
            loss::response_ce(&out.logits, target, &live_resp, weight)
        };
        // Line 10: optional distillation on the positions masked now.
        let main = main + tr.kd_term(&tokens, &out.logits, &masked, &t, &l_r);
        let correct = loss::exact_match(&out.logits.detach(), target, resp);
        let halt = loss::halt_loss(&out.halt_logit, &correct, Some(&active));
        // Row means over all b rows -> the mean over the active samples of
        // all ranks (the gradient all-reduce averages over the W ranks).
        let total = (main + halt * cfg.lambda_halt) * (b as f64 * world / n_active);
        last_loss = f64::try_from(&total).unwrap_or(f64::NAN);
        match tr.update(&total, lr) {
            Ok(g) => norms.push(g),
            Err(reason) => return (last_loss, Err(reason)),
        }
        if tr.dist.is_active() {
            last_loss = tr.synced_loss;
        }
        if s == cfg.n_sup {
            break;
        }
        // Line 13: halted samples leave the loop.
        if cfg.halting && s >= cfg.min_sup_steps {
            let stay = out.halt_logit.detach().sigmoid().le(cfg.halt_tau);
            active = active.logical_and(&stay);
            let here = active.sum(Kind::Int64).int64_value(&[]) as f64;
            n_active = match tr.dist.sum_f64(&[here]) {
                Ok(v) => v[0],
                Err(e) => return (last_loss, Err(Diverged(format!("{e:#}")))),
            };
            if n_active == 0.0 {
                break;
            }
        }
        // Line 14: low-confidence remask to the next ratio (diffusion only).
        if diffusion {
            let keep = remaining_after(schedule, &n, s, cfg.n_sup);
            tokens = if cfg.ds_reveal_truth {
                // Teacher forcing: reveal the truth at random masked
                // positions, drawn from the step's own random stream for
                // the global batch (each rank keeps its rows' draws).
                let mut rng = super::step_rng(tr.cfg.seed, tr.step, 3);
                let (b, l) = target.size2().expect("[B, L]");
                let lo = if tr.dist.is_active() { tr.shard().0 } else { 0 };
                let all = tr.cfg.train.batch.max(lo + b as usize) * l as usize;
                let u: Vec<f32> = (0..all).map(|_| rand::Rng::gen::<f32>(&mut rng)).collect();
                let mine = &u[lo * l as usize..(lo + b as usize) * l as usize];
                let conf = Tensor::from_slice(mine)
                    .view([b, l])
                    .to_device(target.device());
                commit(&tokens, target, &conf, resp, &keep)
            } else {
                let (pred, conf) = predict(&out.logits.detach(), 0.0);
                commit(&tokens, &pred, &conf, resp, &keep)
            };
        }
        // Line 15: detach.
        state = Some(out.state.detach());
    }
    (last_loss, Ok(norms))
}
