//! Algorithm 4: sampling with low-confidence remasking.
//!
//! Start with every response position masked and y = e([p, r]), z = 0
//! (Sec. 7.2). Each of N steps runs the deep recursion, fills the masked
//! positions with the argmax, scores each filled position by its confidence
//! (max softmax probability), and remasks the lowest-confidence ones so that
//! exactly the schedule's number stays masked. The prompt and tokens already
//! committed are copied through (App. A.2). The number committed per step is
//! spread evenly as LLaDA does (linear), or follows MaskGIT's cosine.
use crate::config::{Puzzle, RunConfig, SampleConfig};
pub use crate::config::{Remask, Schedule};
use crate::data::{class_weights, MASK, PAD};
use crate::model::{rms, Model, State};
use tch::{Kind, Tensor};

/// Sampling options (a parsed `[sample]`).
#[derive(Debug, Clone, PartialEq)]
pub struct SampleOptions {
    pub steps: usize,
    pub schedule: Schedule,
    pub remask: Remask,
    pub temperature: f64,
    pub reset_y_every: usize,
    pub reset_z_every: usize,
    /// Stop a sample once h_θ(y) > τ.
    pub halt_tau: Option<f64>,
    /// `sample.logit_adjust`: (token, ln w) pairs subtracted from the logits
    /// before [`predict`]; empty = none.
    pub logit_bias: Vec<(i64, f64)>,
}

impl SampleOptions {
    /// The options of `[sample]` alone (no logit adjustment: that needs the
    /// run's class weights, see [`SampleOptions::for_run`]).
    pub fn from_config(c: &SampleConfig) -> SampleOptions {
        SampleOptions {
            steps: c.steps,
            schedule: c.schedule,
            remask: c.remask,
            temperature: c.temperature,
            reset_y_every: c.reset_y_every,
            reset_z_every: c.reset_z_every,
            halt_tau: c.halt.then_some(c.halt_tau),
            logit_bias: Vec::new(),
        }
    }

    /// The options a run samples with: `[sample]`, and with
    /// `sample.logit_adjust` the log of the run's class loss weights.
    pub fn for_run(cfg: &RunConfig) -> SampleOptions {
        let mut o = SampleOptions::from_config(&cfg.sample);
        if cfg.sample.logit_adjust {
            let maze = cfg.task.kind == Puzzle::Maze;
            o.logit_bias = class_weights(maze, cfg.train.path_weight)
                .into_iter()
                .map(|(token, w)| (token, w.ln()))
                .collect();
        }
        o
    }

    /// The logits the decision is taken on: `logits` minus the logit bias.
    pub fn adjust(&self, logits: &Tensor) -> Tensor {
        if self.logit_bias.is_empty() {
            return logits.shallow_clone();
        }
        let v = logits.size()[2];
        let mut bias = vec![0f32; v as usize];
        for &(token, b) in &self.logit_bias {
            if let Some(x) = bias.get_mut(token as usize) {
                *x = b as f32;
            }
        }
        logits.to_kind(Kind::Float) - Tensor::from_slice(&bias).to_device(logits.device())
    }
}

/// How many response positions stay masked after step `s` (1-based) of `n_steps`,
/// for rows with `n` response positions each ([B] int64).
///
/// Every step commits at least one token while any is masked (MaskGIT
/// clamps its cosine schedule the same way): the raw cosine count
/// floor(n · cos(π/2 · s/N)) repeats itself at the start when N is large
/// (81 cells, N = 64: 10 steps would commit nothing).
pub fn remaining_after(schedule: Schedule, n: &Tensor, s: usize, n_steps: usize) -> Tensor {
    left_after(schedule, n, &n.full_like(s as i64), s, n_steps)
}

/// [`remaining_after`] with a step count per row (`s` [B] int64): the rows
/// of a TRM carry batch (`train.ds_batches = "carry"`) are each at their own
/// supervision step.
pub fn remaining_after_rows(schedule: Schedule, n: &Tensor, s: &Tensor, n_steps: usize) -> Tensor {
    let s_max = s.max().int64_value(&[]).max(0) as usize;
    left_after(schedule, n, s, s_max, n_steps)
}

/// The schedule for rows at steps `s` [B] (at most `s_max`); a row at or
/// past `n_steps` keeps nothing masked.
fn left_after(schedule: Schedule, n: &Tensor, s: &Tensor, s_max: usize, n_steps: usize) -> Tensor {
    let s = s.clamp(0, n_steps as i64);
    let left = match schedule {
        Schedule::Linear => {
            let base = n.divide_scalar_mode(n_steps as i64, "floor");
            let extra = n.remainder(n_steps as i64).minimum(&s);
            n - (base * &s + extra)
        }
        Schedule::Cosine => {
            let mut left = n.shallow_clone();
            for k in 1..=s_max.min(n_steps) {
                let ratio = (std::f64::consts::FRAC_PI_2 * k as f64 / n_steps as f64).cos();
                let raw = (n.to_kind(Kind::Double) * ratio)
                    .floor()
                    .to_kind(Kind::Int64);
                let next = raw.minimum(&(&left - 1)).clamp_min(0);
                left = next.where_self(&s.ge(k as i64), &left);
            }
            left
        }
    };
    left.masked_fill(&s.ge(n_steps as i64), 0)
}

/// Fills the masked positions of `tokens` with `pred` and remasks the
/// lowest-`conf` ones so that `keep` [B] positions per row stay masked.
/// Positions not masked in `tokens` are copied through unchanged.
pub fn commit(
    tokens: &Tensor,
    pred: &Tensor,
    conf: &Tensor,
    resp: &Tensor,
    keep: &Tensor,
) -> Tensor {
    let masked = tokens.eq(MASK).logical_and(resp);
    let filled = tokens.where_self(&masked.logical_not(), pred);
    // Unmasked positions rank last: they are never remasked.
    let score = conf
        .to_kind(Kind::Float)
        .masked_fill(&masked.logical_not(), f64::INFINITY);
    let order = score.argsort(1, false);
    let (b, l) = tokens.size2().expect("[B, L]");
    let ranks = Tensor::arange(l, (Kind::Int64, tokens.device())).expand([b, l], false);
    let rank = order.zeros_like().scatter(1, &order, &ranks);
    let stay = rank.lt_tensor(&keep.unsqueeze(1)).logical_and(&masked);
    filled.masked_fill(&stay, MASK)
}

/// Argmax predictions and their confidences from logits; PAD and MASK are
/// never predicted. With `temperature > 0`, Gumbel noise picks the token
/// (LLaDA), and the confidence stays the model's softmax probability of it.
pub fn predict(logits: &Tensor, temperature: f64) -> (Tensor, Tensor) {
    let logits = logits.to_kind(Kind::Float);
    let v = logits.size()[2];
    let banned = Tensor::from_slice(&[PAD, MASK]).to_device(logits.device());
    let mut forbid = Tensor::zeros([v], (Kind::Bool, logits.device()));
    let _ = forbid.index_fill_(0, &banned, 1);
    let logits = logits.masked_fill(&forbid, f64::NEG_INFINITY);
    let probs = logits.softmax(-1, Kind::Float);
    let pred = if temperature > 0.0 {
        let u = logits.rand_like().clamp(1e-10, 1.0 - 1e-10);
        let gumbel = -(-u.log()).log();
        (&logits / temperature + gumbel).argmax(-1, false)
    } else {
        logits.argmax(-1, false)
    };
    let conf = probs.gather(2, &pred.unsqueeze(-1), false).squeeze_dim(-1);
    (pred, conf)
}

/// The result of sampling a batch.
pub struct Sampled {
    /// [B, L] final tokens.
    pub tokens: Tensor,
    /// Denoising steps used per sample (N, or fewer with halting).
    pub steps_used: Vec<usize>,
    /// The tokens after each step (when asked for).
    pub trace: Vec<Tensor>,
    /// What happened at each step (when asked for): `eval --trace`.
    pub steps: Vec<StepTrace>,
}

/// One denoising step of a batch, for `trldm eval --trace` (diagnostics of
/// Algorithm 4 over a carried state trajectory).
pub struct StepTrace {
    /// RMS of y and z after the step's deep recursion (over the batch).
    pub rms_y: f64,
    pub rms_z: f64,
    /// Tokens committed at this step, summed over the batch.
    pub committed: f64,
    /// Sum of the confidences of those tokens.
    pub conf_committed: f64,
    /// [B, L] the step's fill: every still-masked position set to its argmax.
    pub fill: Tensor,
    /// Mean halting probability h_θ(y) over the batch.
    pub halt_p: f64,
}

/// Algorithm 4 on a batch: `input` [B, L] has MASK at response positions
/// (`resp` [B, L] bool). Runs without gradients.
pub fn sample(
    model: &Model,
    input: &Tensor,
    resp: &Tensor,
    opts: &SampleOptions,
    keep_trace: bool,
) -> Sampled {
    tch::no_grad(|| {
        let b = input.size()[0] as usize;
        let n = input
            .eq(MASK)
            .logical_and(resp)
            .sum_dim_intlist(1, false, Kind::Int64);
        let mut tokens = input.shallow_clone();
        let mut state: Option<State> = None;
        let mut done = Tensor::zeros([b as i64], (Kind::Bool, input.device()));
        let mut steps_used = vec![opts.steps; b];
        let mut trace = Vec::new();
        let mut step_trace = Vec::new();
        for s in 1..=opts.steps {
            let out = model.forward(&tokens, state.take());
            let (pred, model_conf) = predict(&opts.adjust(&out.logits), opts.temperature);
            let was_masked = tokens.eq(MASK).logical_and(resp);
            let conf = match opts.remask {
                Remask::LowConfidence => model_conf.shallow_clone(),
                Remask::Random => model_conf.rand_like(),
            };
            let keep = remaining_after(opts.schedule, &n, s, opts.steps);
            let halting = match opts.halt_tau {
                Some(tau) => out
                    .halt_logit
                    .sigmoid()
                    .gt(tau)
                    .logical_and(&done.logical_not()),
                None => done.zeros_like(),
            };
            // A halting sample commits everything now.
            let keep = keep.masked_fill(&halting, 0);
            let next = commit(&tokens, &pred, &conf, resp, &keep);
            let next = next.where_self(&done.logical_not().unsqueeze(1), &tokens);
            for (i, h) in Vec::<bool>::try_from(&halting)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                if *h {
                    steps_used[i] = s;
                }
            }
            done = done.logical_or(&halting);
            if keep_trace {
                let committed = was_masked.logical_and(&next.ne(MASK));
                step_trace.push(StepTrace {
                    rms_y: rms(&out.state.y),
                    rms_z: rms(&out.state.z),
                    committed: committed.sum(Kind::Float).double_value(&[]),
                    conf_committed: (&model_conf * committed.to_kind(Kind::Float))
                        .sum(Kind::Float)
                        .double_value(&[]),
                    fill: tokens.where_self(&was_masked.logical_not(), &pred),
                    halt_p: out.halt_logit.sigmoid().mean(Kind::Float).double_value(&[]),
                });
            }
            tokens = next;
            if keep_trace {
                trace.push(tokens.copy());
            }
            state = Some(next_state(model, &tokens, out.state, s, opts));
            if opts.halt_tau.is_some() && bool::try_from(done.all()).unwrap_or(false) {
                break;
            }
        }
        Sampled {
            tokens,
            steps_used,
            trace,
            steps: step_trace,
        }
    })
}

/// (y, z) carried to the next step, re-initialised every k steps when asked
/// (`reset_y_every`, `reset_z_every`; Tables 4-5 use reset_z_every = 1).
/// Training with `train.unroll > 1` applies the same policy, so a model is
/// trained on the state trajectory it is sampled with.
pub fn next_state(
    model: &Model,
    tokens: &Tensor,
    s: State,
    step: usize,
    opts: &SampleOptions,
) -> State {
    let due = |k: usize| k > 0 && step.is_multiple_of(k);
    let (reset_y, reset_z) = (due(opts.reset_y_every), due(opts.reset_z_every));
    if !reset_y && !reset_z {
        return s;
    }
    let fresh = model.init_state(&model.embed(tokens));
    State {
        y: if reset_y { fresh.y } else { s.y },
        z: if reset_z { fresh.z } else { s.z },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_schedule_spreads_commits_evenly_like_llada() {
        let n = Tensor::from_slice(&[10i64, 3, 0]);
        let rem: Vec<Vec<i64>> = (1..=4)
            .map(|s| Vec::<i64>::try_from(remaining_after(Schedule::Linear, &n, s, 4)).unwrap())
            .collect();
        // 10 over 4 steps: 3, 3, 2, 2 committed; 3 over 4: 1, 1, 1, 0.
        assert_eq!(
            rem,
            vec![vec![7, 2, 0], vec![4, 1, 0], vec![2, 0, 0], vec![0, 0, 0]]
        );
    }

    /// MaskGIT's cosine schedule: floor(81 · cos(π/2 · s/8)) masked after
    /// step s, computed by hand (the clamp to one commit per step does not
    /// bind here). Rejects any other angle, e.g. π/2 / s / 8.
    #[test]
    fn cosine_schedule_follows_the_cosine() {
        let n = Tensor::from_slice(&[81i64]);
        let got: Vec<i64> = (1..=8)
            .map(|s| i64::try_from(remaining_after(Schedule::Cosine, &n, s, 8).get(0)).unwrap())
            .collect();
        assert_eq!(got, [79, 74, 67, 57, 45, 30, 15, 0]);
    }

    /// Both schedules commit at least one token at every step until none
    /// is masked, and end at zero.
    #[test]
    fn every_schedule_strictly_decreases_until_nothing_is_masked() {
        for schedule in [Schedule::Linear, Schedule::Cosine] {
            for n_resp in [16i64, 81, 400] {
                for n_steps in [8usize, 16, 32, 64] {
                    let n = Tensor::from_slice(&[n_resp]);
                    let mut prev = n_resp;
                    for s in 1..=n_steps {
                        let r = i64::try_from(remaining_after(schedule, &n, s, n_steps).get(0))
                            .unwrap();
                        assert!(r >= 0);
                        if prev > 0 {
                            assert!(
                                r < prev,
                                "{schedule:?} L_r={n_resp} N={n_steps}: step {s} leaves {r}, as many as before"
                            );
                        } else {
                            assert_eq!(r, 0);
                        }
                        prev = r;
                    }
                    assert_eq!(prev, 0, "{schedule:?} L_r={n_resp} N={n_steps}");
                }
            }
        }
        // The cosine shape is kept where it already commits: floor(81·cos(π/16)) = 79.
        let n = Tensor::from_slice(&[81i64]);
        assert_eq!(
            i64::try_from(remaining_after(Schedule::Cosine, &n, 1, 8).get(0)).unwrap(),
            79
        );
    }

    /// Rows at different steps (a carry batch) get what each would get on
    /// its own: checked against the one-step-count version, which the test
    /// above pins to hand-computed counts, for every step up to past N.
    #[test]
    fn per_row_steps_match_the_schedule_of_each_row() {
        for schedule in [Schedule::Linear, Schedule::Cosine] {
            let n_steps = 6;
            let lens = [81i64, 17, 5, 40, 81, 3, 64, 9];
            let steps = [0i64, 1, 2, 3, 4, 5, 6, 7];
            let n = Tensor::from_slice(&lens);
            let got = Vec::<i64>::try_from(remaining_after_rows(
                schedule,
                &n,
                &Tensor::from_slice(&steps),
                n_steps,
            ))
            .unwrap();
            for (i, (&len, &s)) in lens.iter().zip(&steps).enumerate() {
                let one = Tensor::from_slice(&[len]);
                let want =
                    i64::try_from(remaining_after(schedule, &one, s as usize, n_steps).get(0))
                        .unwrap();
                assert_eq!(got[i], want, "{schedule:?}: row {i} (L_r {len}, step {s})");
            }
            // Step 0 keeps all, steps at or past N keep none.
            assert_eq!((got[0], got[6], got[7]), (81, 0, 0));
        }
    }

    /// Gumbel sampling at temperature T picks token k with probability
    /// softmax(logits / T)_k (LLaDA) and reports the model's own
    /// (untempered) probability as the confidence; T = 0 is the argmax,
    /// even when every allowed logit is negative.
    ///
    /// Three allowed tokens, because with two the Gumbel-max trick and its
    /// sign-flipped variant (argmax of logits/T - G, which picks a, b, c
    /// with 0.06, 0.31, 0.63 here) give the same probabilities.
    #[test]
    fn temperature_draws_from_the_tempered_softmax() {
        let n = 20_000i64;
        // Vocabulary PAD, MASK, a, b, c with logits 2 ln p for p = 0.1,
        // 0.3, 0.6, so that softmax(logits / 2) = p (PAD and MASK would win
        // if they were not banned).
        let p = [0.1f64, 0.3, 0.6];
        let mut row = vec![50.0f32, 50.0];
        row.extend(p.iter().map(|q| (2.0 * q.ln()) as f32));
        let logits = Tensor::from_slice(&row)
            .view([1, 1, 5])
            .expand([1, n, 5], false);
        let (pred, conf) = crate::seed::seeded(0, || predict(&logits, 2.0));
        assert_eq!(pred.lt(2).sum(Kind::Int64).int64_value(&[]), 0);
        // The model's own probabilities: p² / Σ p².
        let sq: f64 = p.iter().map(|q| q * q).sum();
        for (k, q) in p.iter().enumerate() {
            let tok = 2 + k as i64;
            let share = pred
                .eq(tok)
                .to_kind(Kind::Float)
                .mean(Kind::Float)
                .double_value(&[]);
            assert!(
                (share - q).abs() < 0.015,
                "share of token {tok}: {share}, not {q}"
            );
            let c = conf
                .masked_select(&pred.eq(tok))
                .mean(Kind::Float)
                .double_value(&[]);
            assert!(
                (c - q * q / sq).abs() < 1e-5,
                "confidence of token {tok}: {c}"
            );
        }
        let neg = Tensor::from_slice(&[0.0f32, 0.0, -3.0, -1.0]).view([1, 1, 4]);
        let (pred, conf) = predict(&neg, 0.0);
        assert_eq!(pred.int64_value(&[0, 0]), 3);
        assert!((conf.double_value(&[0, 0]) - 1.0 / (1.0 + (-2f64).exp())).abs() < 1e-6);
    }

    /// `sample.logit_adjust` subtracts ln(train.path_weight) from the maze
    /// path token's logit and nothing else, so a path cell the weighted model
    /// prefers by less than the weight's odds becomes "open"; without the key,
    /// with weight 1 or on Sudoku it changes nothing.
    #[test]
    fn logit_adjustment_undoes_the_path_weight() {
        let mut cfg = crate::config::RunConfig::default();
        cfg.train.path_weight = 10.0;
        let path = crate::tasks::maze::PATH as i64 + crate::data::FIRST_CELL;
        let open = crate::tasks::maze::OPEN as i64 + crate::data::FIRST_CELL;
        let v = 8;
        // Path 5x likelier than open under the weighted model: p_w(path)/p_w(open) = 5 < 10.
        let mut row = vec![-10f32; v];
        row[open as usize] = 0.0;
        row[path as usize] = 5f32.ln();
        let logits = Tensor::from_slice(&row).view([1, 1, v as i64]);
        assert!(
            SampleOptions::for_run(&cfg).logit_bias.is_empty(),
            "off by default"
        );
        let (plain, _) = predict(&SampleOptions::for_run(&cfg).adjust(&logits), 0.0);
        assert_eq!(plain.int64_value(&[0, 0]), path);
        cfg.sample.logit_adjust = true;
        let opts = SampleOptions::for_run(&cfg);
        assert_eq!(opts.logit_bias, vec![(path, 10f64.ln())]);
        let adjusted = opts.adjust(&logits);
        let diff = (&logits - &adjusted).squeeze();
        for t in 0..v as i64 {
            let want = if t == path { 10f64.ln() } else { 0.0 };
            assert!((diff.double_value(&[t]) - want).abs() < 1e-6, "token {t}");
        }
        let (pred, conf) = predict(&adjusted, 0.0);
        assert_eq!(pred.int64_value(&[0, 0]), open);
        // The confidence is the adjusted probability of "open": 1 / (1 + 5/10).
        assert!((conf.double_value(&[0, 0]) - 1.0 / 1.5).abs() < 1e-4);
        cfg.train.path_weight = 1.0;
        assert!(SampleOptions::for_run(&cfg).logit_bias.is_empty());
        cfg.train.path_weight = 10.0;
        cfg.task.kind = crate::config::Puzzle::Sudoku;
        assert!(SampleOptions::for_run(&cfg).logit_bias.is_empty());
    }

    /// A 5x5-maze model with d = 16, one block, and its config.
    fn tiny_model() -> (crate::config::RunConfig, tch::nn::VarStore, Model) {
        let mut cfg = crate::config::RunConfig::default();
        cfg.task.height = 5;
        cfg.task.width = 5;
        cfg.model.d = 16;
        cfg.model.heads = 2;
        cfg.model.layers = 1;
        let info = crate::data::TaskInfo::from_config(&cfg);
        let (vs, model) = crate::model::build(&cfg, &info, tch::Device::Cpu).unwrap();
        (cfg, vs, model)
    }

    /// `next_state` resets y to e(tokens) every `reset_y_every` steps and z
    /// to 0 every `reset_z_every` steps (0 = never); otherwise both carry.
    #[test]
    fn states_reset_exactly_on_their_schedule() {
        let (cfg, _vs, model) = tiny_model();
        let l = model.shape.seq_len;
        let tokens = Tensor::full([1, l], MASK, (Kind::Int64, tch::Device::Cpu));
        let carried = || State {
            y: Tensor::full([1, l, 16], 5.0, (Kind::Float, tch::Device::Cpu)),
            z: Tensor::full([1, l, 16], 7.0, (Kind::Float, tch::Device::Cpu)),
        };
        let e = tch::no_grad(|| model.embed(&tokens));
        let mut opts = SampleOptions::from_config(&cfg.sample);
        for (y_every, z_every) in [(0usize, 0usize), (2, 3), (1, 1)] {
            opts.reset_y_every = y_every;
            opts.reset_z_every = z_every;
            for step in 1..=6usize {
                let s = tch::no_grad(|| next_state(&model, &tokens, carried(), step, &opts));
                let y_reset = y_every > 0 && step % y_every == 0;
                let z_reset = z_every > 0 && step % z_every == 0;
                let want_y = if y_reset {
                    e.shallow_clone()
                } else {
                    carried().y
                };
                let want_z = if z_reset {
                    carried().z.zeros_like()
                } else {
                    carried().z
                };
                assert!(s.y.equal(&want_y), "y at step {step} (every {y_every})");
                assert!(s.z.equal(&want_z), "z at step {step} (every {z_every})");
            }
        }
    }

    /// The per-step trace of Algorithm 4 (`trldm trace`, `solve --steps`):
    /// step 1's committed count, the model's confidence summed over the
    /// committed positions, and the fill, recomputed from the model's own
    /// first step. Rejects a confidence sum that adds or divides by the
    /// committed indicator instead of weighting by it.
    #[test]
    fn the_trace_records_what_each_step_committed() {
        let (mut cfg, _vs, model) = tiny_model();
        cfg.sample.steps = 4;
        let l = model.shape.seq_len;
        let input = Tensor::full([2, l], MASK, (Kind::Int64, tch::Device::Cpu));
        let resp = input.eq(MASK);
        let opts = SampleOptions::from_config(&cfg.sample);
        let out = sample(&model, &input, &resp, &opts, true);
        assert_eq!(out.steps.len(), 4);
        let first = tch::no_grad(|| model.forward(&input, None));
        let (pred, conf) = predict(&first.logits, 0.0);
        let committed = out.trace[0].ne(MASK);
        let count = committed.sum(Kind::Float).double_value(&[]);
        // Linear schedule: 2 rows x 25 cells / 4 steps, 7 cells per row first.
        assert_eq!(count, 14.0);
        assert_eq!(out.steps[0].committed, count);
        let want = (&conf * committed.to_kind(Kind::Float))
            .sum(Kind::Float)
            .double_value(&[]);
        let got = out.steps[0].conf_committed;
        assert!((got - want).abs() < 1e-5 * want.max(1.0), "{got} vs {want}");
        assert!(out.steps[0].fill.equal(&pred));
    }

    #[test]
    fn commit_keeps_lowest_confidence_masked_and_copies_the_rest() {
        let tokens = Tensor::from_slice(&[5i64, MASK, MASK, MASK, 7]).view([1, 5]);
        let resp = Tensor::from_slice(&[false, true, true, true, true]).view([1, 5]);
        let pred = Tensor::from_slice(&[9i64, 2, 3, 4, 9]).view([1, 5]);
        let conf = Tensor::from_slice(&[0.0f32, 0.9, 0.1, 0.5, 0.0]).view([1, 5]);
        let out = commit(&tokens, &pred, &conf, &resp, &Tensor::from_slice(&[1i64]));
        assert_eq!(
            Vec::<i64>::try_from(out.view([-1])).unwrap(),
            vec![5, 2, MASK, 4, 7]
        );
    }
}
