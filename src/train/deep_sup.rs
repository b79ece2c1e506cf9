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
//! Data parallelism: each rank runs its shard of the minibatch. Rows that
//! halt leave on their own rank, so the ranks agree on the number of rows
//! still in the loop (one scalar all-reduce per step when halting is on),
//! stop together, and scale their row-mean loss by `n_rank · W / n_all` so
//! that the averaged gradient is the one of the mean over all rows. A rank
//! whose rows have all halted keeps one row with loss weight 0 so that it
//! still joins every gradient all-reduce.
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
    let mut target = batch.target.shallow_clone();
    let mut resp = batch.resp.shallow_clone();
    let mut weight = batch.weight.shallow_clone();
    // The schedule spreads the commits over the positions masked at the start.
    let mut n = tokens
        .eq(MASK)
        .logical_and(&resp)
        .sum_dim_intlist(1, false, Kind::Int64);
    let mut state: Option<State> = None;
    let mut norms = Vec::new();
    let mut last_loss = f64::NAN;
    // Data parallelism: rows of all ranks still in the loop, and whether
    // this rank only holds a zero-weight placeholder row.
    let dp = tr.dist.is_active();
    let world = tr.dist.world as f64;
    let mut n_all = tr.cfg.train.batch as f64;
    let mut placeholder = false;
    for s in 1..=cfg.n_sup {
        if tr.step >= max_steps {
            break;
        }
        let lr = super::optim::lr_at(&cfg, tr.step as usize);
        let out = tr.forward(&tokens, state.take());
        let masked = tokens.eq(MASK).logical_and(&resp);
        let l_r = resp.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0);
        let t = masked.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0) / &l_r;
        let main = if diffusion {
            loss::mdm_loss(&out.logits, &target, &masked, &t, &l_r, &weight)
        } else {
            loss::response_ce(&out.logits, &target, &resp, &weight)
        };
        // Line 10: optional distillation on the positions masked now.
        let main = main + tr.kd_term(&tokens, &out.logits, &masked, &t, &l_r);
        let correct = loss::exact_match(&out.logits.detach(), &target, &resp);
        let mut total = main + loss::halt_loss(&out.halt_logit, &correct) * cfg.lambda_halt;
        if dp && cfg.halting {
            let n_here = if placeholder {
                0.0
            } else {
                resp.size()[0] as f64
            };
            total *= n_here * world / n_all;
        }
        last_loss = f64::try_from(&total).unwrap_or(f64::NAN);
        match tr.update(&total, lr) {
            Ok(g) => norms.push(g),
            Err(reason) => return (last_loss, Err(reason)),
        }
        if dp {
            last_loss = tr.synced_loss;
        }
        if s == cfg.n_sup {
            break;
        }
        // Line 13: halted samples leave the loop.
        let stay = if cfg.halting && s >= cfg.min_sup_steps {
            out.halt_logit.detach().sigmoid().le(cfg.halt_tau)
        } else {
            out.halt_logit.ones_like().to_kind(Kind::Bool)
        };
        let mut keep_rows = stay.nonzero().squeeze_dim(1);
        if dp && cfg.halting {
            let here = if placeholder {
                0.0
            } else {
                keep_rows.numel() as f64
            };
            match tr.dist.sum_f64(&[here]) {
                Ok(v) if v[0] == 0.0 => break,
                Ok(v) => n_all = v[0],
                Err(e) => return (last_loss, Err(Diverged(format!("{e:#}")))),
            }
            if here == 0.0 {
                placeholder = true;
                keep_rows = Tensor::zeros([1], (Kind::Int64, keep_rows.device()));
            }
        } else if keep_rows.numel() == 0 {
            break;
        }
        // Line 14: low-confidence remask to the next ratio (diffusion only).
        if diffusion {
            let keep = remaining_after(schedule, &n, s, cfg.n_sup);
            tokens = if cfg.ds_reveal_truth {
                // Teacher forcing: reveal the truth at random masked
                // positions, drawn from the step's own random stream.
                let mut rng = super::step_rng(tr.cfg.seed, tr.step, 3);
                let size = target.size();
                let u: Vec<f32> = (0..size.iter().product::<i64>())
                    .map(|_| rand::Rng::gen::<f32>(&mut rng))
                    .collect();
                let conf = Tensor::from_slice(&u)
                    .view(size.as_slice())
                    .to_device(target.device());
                commit(&tokens, &target, &conf, &resp, &keep)
            } else {
                let (pred, conf) = predict(&out.logits.detach(), 0.0);
                commit(&tokens, &pred, &conf, &resp, &keep)
            };
        }
        // Line 15: detach, and keep only the rows still in the loop.
        let sel = |t: &Tensor| t.index_select(0, &keep_rows);
        let st = out.state.detach();
        state = Some(State {
            y: sel(&st.y),
            z: sel(&st.z),
        });
        tokens = sel(&tokens);
        target = sel(&target);
        resp = sel(&resp);
        weight = sel(&weight);
        n = sel(&n);
    }
    (last_loss, Ok(norms))
}
