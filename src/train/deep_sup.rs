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
//!
//! With `train.ds_batches = "carry"` the same steps run as TRM runs them
//! ([`carry_step`]): one update per training step on a batch whose rows are
//! each at their own supervision step, a finished row replaced by a new
//! puzzle. With `train.halt_explore = p`, a sample gets, with probability
//! p, a minimum of U{2..N_sup} supervision steps before it may halt (TRM's
//! exploration). With `train.ds_one_step = λ`, every supervision step's
//! loss also has λ times Eq. 3's one-step loss on a fresh masking of the
//! same puzzles (random t, the model's initial state).
use super::{loss, Diverged, Trainer};
use crate::config::{DsStart, TrainConfig};
use crate::data::{Batch, MASK};
use crate::model::{Output, State, Variant};
use crate::sample::{commit, predict, remaining_after, remaining_after_rows};
use rand::Rng;
use tch::{Kind, Tensor};

/// Line 3: the response a supervision trajectory starts from, all [MASK]
/// (as written) or, with `train.ds_start = "random"`, Eq. 3's corruption.
fn start_tokens(tr: &Trainer, batch: &Batch) -> Tensor {
    let diffusion = tr.model.variant == Variant::TrldmDs;
    if diffusion && tr.cfg.train.ds_start == DsStart::Random {
        tr.random_mask(batch).0
    } else {
        batch.input.shallow_clone()
    }
}

/// Per sample, the supervision steps before halting may stop it:
/// `train.min_sup_steps`, raised (halting exploration, TRM) with probability
/// `train.halt_explore` to a draw from U{2..N_sup}. Drawn for the global
/// batch from the step's own random stream; this rank keeps its rows.
fn halt_floor(tr: &Trainer, b: i64) -> Tensor {
    let cfg = &tr.cfg.train;
    let base = cfg.min_sup_steps as i64;
    let floor: Vec<i64> = if cfg.halt_explore > 0.0 && cfg.n_sup >= 2 {
        // A stream of its own (a different seed), so that the streams of
        // runs without exploration are unchanged.
        let mut rng = super::step_rng(tr.cfg.seed ^ 0x5851_f42d_4c95_7f2d, tr.step, 0);
        tr.global_draws(b as usize, 1, || {
            let explore = rng.gen::<f64>() < cfg.halt_explore;
            let k = rng.gen_range(2..=cfg.n_sup as i64);
            if explore {
                k.max(base)
            } else {
                base
            }
        })
    } else {
        vec![base; b as usize]
    };
    Tensor::from_slice(&floor).to_device(tr.device)
}

/// Line 13: which samples halt after supervision step(s) `s` [B]: those past
/// their `floor` whose h_θ(y) > τ (never when halting is off).
fn halts(cfg: &TrainConfig, halt_logit: &Tensor, s: &Tensor, floor: &Tensor) -> Tensor {
    let q = halt_logit.detach().sigmoid().gt(cfg.halt_tau);
    if cfg.halting {
        q.logical_and(&s.ge_tensor(floor))
    } else {
        q.zeros_like().to_kind(Kind::Bool)
    }
}

/// Lines 9-11 of one supervision step: Eq. 3 on the positions masked now
/// (cross-entropy on every response position for TRM, which does not
/// diffuse), the optional distillation term (line 10) and λ_halt · Eq. 6-7.
/// Rows outside `active` (halted samples) count as 0 in every row mean.
fn step_loss(
    tr: &Trainer,
    out: &Output,
    tokens: &Tensor,
    data: &Batch,
    l_r: &Tensor,
    active: Option<&Tensor>,
) -> Tensor {
    let live_resp = match active {
        Some(a) => data.resp.logical_and(&a.unsqueeze(1)),
        None => data.resp.shallow_clone(),
    };
    let masked = tokens.eq(MASK).logical_and(&live_resp);
    let t = masked.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0) / l_r;
    let main = if tr.model.variant == Variant::TrldmDs {
        loss::mdm_loss(&out.logits, &data.target, &masked, &t, l_r, &data.weight)
    } else {
        loss::response_ce(&out.logits, &data.target, &live_resp, &data.weight)
    };
    let main = main + tr.kd_term(tokens, &out.logits, &masked, &t, l_r);
    let correct = loss::exact_match(&out.logits.detach(), &data.target, &data.resp);
    main + loss::halt_loss(&out.halt_logit, &correct, active) * tr.cfg.train.lambda_halt
}

/// `train.ds_one_step` · Eq. 3 on a fresh masking of `batch` (random t,
/// the model's initial state), or nothing when the weight is 0. The
/// masking comes from the current update's stream 4: every supervision
/// step draws its own, independent of the start's (stream 1).
fn one_step_term(tr: &Trainer, batch: &Batch) -> Tensor {
    let w = tr.cfg.train.ds_one_step;
    if w == 0.0 {
        return Tensor::zeros([], (Kind::Float, tr.device));
    }
    tr.one_step_loss_from(batch, 4) * w
}

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
    let mut tokens = start_tokens(tr, batch);
    let (target, resp) = (&batch.target, &batch.resp);
    // The schedule spreads the commits over the positions masked at the start.
    let n = tokens
        .eq(MASK)
        .logical_and(resp)
        .sum_dim_intlist(1, false, Kind::Int64);
    let l_r = resp.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0);
    let b = resp.size()[0];
    let mut active = Tensor::ones([b], (Kind::Bool, resp.device()));
    let floor = halt_floor(tr, b);
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
        // Only the samples still in the loop are supervised. Row means
        // over all b rows -> the mean over the active samples of all ranks
        // (the gradient all-reduce averages over the W ranks).
        let total = step_loss(tr, &out, &tokens, batch, &l_r, Some(&active))
            * (b as f64 * world / n_active)
            + one_step_term(tr, batch);
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
            let done = halts(&cfg, &out.halt_logit, &floor.full_like(s as i64), &floor);
            active = active.logical_and(&done.logical_not());
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
                let u = tr.global_draws(b as usize, l as usize, || rng.gen::<f32>());
                let conf = Tensor::from_slice(&u)
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

/// The rows in flight of TRM's carry batches (`train.ds_batches = "carry"`):
/// each row's puzzle, its partly committed response, its (y, z), how many
/// supervision steps it has had, how many positions were masked when it
/// started, its halting floor, and whether it is finished.
pub struct Carry {
    /// Each row's puzzle.
    pub data: Batch,
    /// The response as committed so far (the next step's input).
    pub tokens: Tensor,
    /// The detached (y, z) handed to the next step.
    pub state: State,
    /// Supervision steps done [B] int64.
    pub s: Tensor,
    /// Response positions masked when the row started [B] int64.
    pub n: Tensor,
    /// Supervision steps before halting may stop the row [B] int64.
    pub floor: Tensor,
    /// Finished rows [B] bool: replaced by new puzzles at the next step.
    pub halted: Tensor,
}

/// The names under which a carry is checkpointed (`carry/<name>`).
const CARRY_NAMES: [&str; 11] = [
    "input", "target", "resp", "weight", "tokens", "y", "z", "s", "n", "floor", "halted",
];

impl Carry {
    /// Its tensors, named as in a checkpoint.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        let t = [
            &self.data.input,
            &self.data.target,
            &self.data.resp,
            &self.data.weight,
            &self.tokens,
            &self.state.y,
            &self.state.z,
            &self.s,
            &self.n,
            &self.floor,
            &self.halted,
        ];
        CARRY_NAMES
            .iter()
            .zip(t)
            .map(|(n, t)| (format!("carry/{n}"), t.shallow_clone()))
            .collect()
    }

    /// A carry read back from checkpoint tensors (`get("carry/<name>")`);
    /// None when any is missing.
    pub fn from_tensors(
        get: &dyn Fn(&str) -> Option<Tensor>,
        device: tch::Device,
    ) -> Option<Carry> {
        let mut t: Vec<Tensor> = Vec::new();
        for n in CARRY_NAMES {
            t.push(get(&format!("carry/{n}"))?.to_device(device));
        }
        let mut t = t.into_iter();
        let mut next = || t.next().expect("CARRY_NAMES has 11 entries");
        Some(Carry {
            data: Batch {
                input: next(),
                target: next(),
                resp: next(),
                weight: next(),
            },
            tokens: next(),
            state: State {
                y: next(),
                z: next(),
            },
            s: next(),
            n: next(),
            floor: next(),
            halted: next(),
        })
    }
}

/// One training step of deep supervision with TRM's carry batches: the
/// rows that finished (all of them at the first step) take the rows of
/// `fresh` (the step's minibatch) and start a supervision trajectory
/// (line 3: all [MASK] or Eq. 3's corruption; y = e([p, r]), z = 0); then
/// one supervision step for every row: deep recursion, the loss of line 9
/// (plus KD and λ_halt · Eq. 6-7) and one update (line 12); a row halts
/// after N_sup steps or when h_θ(y) > τ past its floor (line 13); the
/// others are remasked to their next ratio (line 14) and keep their
/// detached (y, z) (line 15).
pub fn carry_step(tr: &mut Trainer, fresh: &Batch) -> (f64, Result<Vec<f64>, Diverged>) {
    let cfg = tr.cfg.train.clone();
    let diffusion = tr.model.variant == Variant::TrldmDs;
    let (b, _) = fresh.target.size2().expect("[B, L]");
    let start = start_tokens(tr, fresh);
    let n_start = start
        .eq(MASK)
        .logical_and(&fresh.resp)
        .sum_dim_intlist(1, false, Kind::Int64);
    let floor_new = halt_floor(tr, b);
    let (reset, old) = match tr.carry.take() {
        None => (Tensor::ones([b], (Kind::Bool, tr.device)), None),
        Some(c) => (c.halted.shallow_clone(), Some(c)),
    };
    let r2 = reset.unsqueeze(1);
    let pick = |new: &Tensor, old: Option<&Tensor>| match old {
        None => new.shallow_clone(),
        Some(o) => new.where_self(if new.dim() == 1 { &reset } else { &r2 }, o),
    };
    let data = Batch {
        input: pick(&fresh.input, old.as_ref().map(|c| &c.data.input)),
        target: pick(&fresh.target, old.as_ref().map(|c| &c.data.target)),
        resp: pick(&fresh.resp, old.as_ref().map(|c| &c.data.resp)),
        weight: pick(&fresh.weight, old.as_ref().map(|c| &c.data.weight)),
    };
    let tokens = pick(&start, old.as_ref().map(|c| &c.tokens));
    let n = pick(&n_start, old.as_ref().map(|c| &c.n));
    let floor = pick(&floor_new, old.as_ref().map(|c| &c.floor));
    let s = pick(&n_start.zeros_like(), old.as_ref().map(|c| &c.s));
    let state = old.map(|c| tr.model.reset_rows(&tokens, c.state, &reset));

    let lr = super::optim::lr_at(&cfg, tr.step as usize);
    let out = tr.forward(&tokens, state);
    let l_r = data
        .resp
        .sum_dim_intlist(1, false, Kind::Float)
        .clamp_min(1.0);
    let total = step_loss(tr, &out, &tokens, &data, &l_r, None) + one_step_term(tr, fresh);
    let mut last_loss = f64::try_from(&total).unwrap_or(f64::NAN);
    let g = match tr.update(&total, lr) {
        Ok(g) => g,
        Err(reason) => return (last_loss, Err(reason)),
    };
    if tr.dist.is_active() {
        last_loss = tr.synced_loss;
    }
    let s = s + 1;
    let halted = s
        .ge(cfg.n_sup as i64)
        .logical_or(&halts(&cfg, &out.halt_logit, &s, &floor));
    let tokens = if diffusion {
        let keep = remaining_after_rows(tr.cfg.sample.schedule, &n, &s, cfg.n_sup);
        let (pred, conf) = predict(&out.logits.detach(), 0.0);
        commit(&tokens, &pred, &conf, &data.resp, &keep)
    } else {
        tokens
    };
    tr.carry = Some(Carry {
        data,
        tokens,
        state: out.state.detach(),
        s,
        n,
        floor,
        halted,
    });
    (last_loss, Ok(vec![g]))
}
