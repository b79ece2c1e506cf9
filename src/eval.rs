//! Evaluation (Sec. 9): sample every test puzzle and score it with the
//! task's metrics — exact match, validity, optimality and length ratio
//! (mazes), token accuracy on response positions — plus the mean number of
//! denoising steps used and the throughput.
use crate::config::RunConfig;
use crate::data::{encode_all, Dataset, TaskInfo, MASK};
use crate::dist::Dist;
use crate::model::{Model, State, Variant};
use crate::sample::{self, predict, SampleOptions};
use crate::tasks::Pair;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Instant;
use tch::{nn::VarStore, Device, Kind, Tensor};

/// Aggregated metrics of one evaluation (fractions in [0, 1]).
#[derive(Debug, Clone, PartialEq)]
pub struct EvalResult {
    pub n: usize,
    pub exact: f64,
    pub valid: f64,
    /// Mazes only.
    pub optimal: Option<f64>,
    /// Mazes only: mean of predicted / shortest length, 0 for invalid paths.
    pub len_ratio: Option<f64>,
    pub token_acc: f64,
    pub mean_steps: f64,
    pub wall_s: f64,
    pub puzzles_per_s: f64,
}

impl EvalResult {
    pub fn summary(&self) -> String {
        let mut s = format!(
            "n={} exact={:.3} valid={:.3}",
            self.n, self.exact, self.valid
        );
        if let Some(o) = self.optimal {
            s += &format!(" optimal={o:.3}");
        }
        if let Some(r) = self.len_ratio {
            s += &format!(" len_ratio={r:.3}");
        }
        s += &format!(
            " token_acc={:.3} steps={:.1} ({:.1} puzzles/s)",
            self.token_acc, self.mean_steps, self.puzzles_per_s
        );
        s
    }
}

/// The CSV header of `eval.csv` (docs/RUNS.md).
pub const EVAL_HEADER: &str =
    "n,exact,valid,optimal,len_ratio,token_acc,mean_steps,wall_s,puzzles_per_s";

/// Writes `eval.csv` (header + one row) atomically.
pub fn write_csv(path: &Path, r: &EvalResult) -> Result<()> {
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
    let text = format!(
        "{EVAL_HEADER}\n{},{:.6},{:.6},{},{},{:.6},{:.3},{:.3},{:.2}\n",
        r.n,
        r.exact,
        r.valid,
        opt(r.optimal),
        opt(r.len_ratio),
        r.token_acc,
        r.mean_steps,
        r.wall_s,
        r.puzzles_per_s
    );
    crate::util::write_atomic(path, text.as_bytes())
}

/// The sampling batch: `eval.batch`, or for 0 the device's default: 1024
/// on CUDA; on the CPU the power of two nearest below [`CPU_BATCH_CELLS`] /
/// (L · d), at least 1 (8 for 9x9 grids at d = 128).
pub fn batch_size(cfg: &RunConfig, device: Device) -> usize {
    match (cfg.eval.batch, device) {
        (0, Device::Cpu) => {
            let l = TaskInfo::from_config(cfg).seq_len().max(1);
            let fit = CPU_BATCH_CELLS / (l * cfg.model.d.max(1));
            1 << fit.max(1).ilog2()
        }
        (0, _) => 1024,
        (b, _) => b,
    }
}

/// Activations per [B, L, d] tensor that the CPU's automatic sampling batch
/// aims at. Small batches keep a block's intermediates in the caches; on the
/// 2-core AMD EPYC machine (1 MB L2 per core), 9x9 mazes, d = 128, 16 steps,
/// 2 sampling threads, puzzles/s at batch 2 / 4 / 8 / 16 / 32 / 64: fp32
/// 30.0 / 32.2 / 29.6-30.9 / 28.0 / 25.9 / 23.7, bf16 - / 44.9 / 47.7 / 46.7
/// / 43.8 / -; at d = 256 (fp32) 8.0 / 8.9 / 8.4 / 8.3 / 8.4 (docs/FACTS.md,
/// "Sampling batch").
pub const CPU_BATCH_CELLS: usize = 96_000;

/// Predicts a batch the way the variant is meant to be decoded: Algorithm 4
/// for the diffusion models, one pass for `vanilla`, N_sup recursion steps on
/// the unchanged input for `trm` (halting optional), under the run's bf16
/// autocast (src/amp.rs). Returns the tokens and the steps used per sample.
pub fn predict_batch(
    model: &Model,
    cfg: &RunConfig,
    input: &Tensor,
    resp: &Tensor,
    trace: bool,
) -> Result<sample::Sampled> {
    let opts = SampleOptions::for_run(cfg);
    let dev = model.device();
    let amp = crate::amp::enabled(&cfg.train, dev);
    Ok(crate::amp::autocast(dev, amp, || match model.variant {
        Variant::Trldm | Variant::TrldmDs | Variant::Mdm => {
            sample::sample(model, input, resp, &opts, trace)
        }
        Variant::Vanilla => sample::sample(
            model,
            input,
            resp,
            &SampleOptions {
                steps: 1,
                halt_tau: None,
                ..opts
            },
            trace,
        ),
        Variant::Trm => trm_predict(model, input, resp, cfg.train.n_sup, &opts, trace),
    }))
}

/// TRM inference: the input never changes; (y, z) are refined for N_sup
/// steps (all of them unless halting is on) and the answer is the argmax.
fn trm_predict(
    model: &Model,
    input: &Tensor,
    resp: &Tensor,
    n_sup: usize,
    opts: &SampleOptions,
    keep_trace: bool,
) -> sample::Sampled {
    tch::no_grad(|| {
        let b = input.size()[0] as usize;
        let mut state: Option<State> = None;
        let mut tokens = input.shallow_clone();
        let mut done = Tensor::zeros([b as i64], (Kind::Bool, input.device()));
        let mut steps_used = vec![n_sup; b];
        let mut trace = Vec::new();
        for s in 1..=n_sup {
            let out = model.forward(input, state.take());
            let (pred, _) = predict(&opts.adjust(&out.logits), 0.0);
            let fresh = input.where_self(&resp.logical_not(), &pred);
            tokens = tokens.where_self(&done.unsqueeze(1), &fresh);
            if let Some(tau) = opts.halt_tau {
                let h = out
                    .halt_logit
                    .sigmoid()
                    .gt(tau)
                    .logical_and(&done.logical_not());
                for (i, x) in Vec::<bool>::try_from(&h)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    if *x {
                        steps_used[i] = s;
                    }
                }
                done = done.logical_or(&h);
            }
            if keep_trace {
                trace.push(tokens.copy());
            }
            state = Some(out.state);
        }
        sample::Sampled {
            tokens,
            steps_used,
            trace,
            steps: Vec::new(),
        }
    })
}

/// Test-time augmentation (`eval.tta`): samples the first `tta` symmetric
/// copies of each puzzle ([`TaskInfo::symmetric`], the identity first),
/// maps every answer back to the puzzle's orientation and keeps one per
/// puzzle by majority ([`choose`]). Returns the kept answers as
/// token rows of the original puzzles, with the steps of all copies summed
/// (the sampling spent on each puzzle).
fn predict_symmetric(
    model: &Model,
    cfg: &RunConfig,
    info: &TaskInfo,
    pairs: &[Pair],
    tta: usize,
    device: Device,
) -> Result<sample::Sampled> {
    let mut answers: Vec<Vec<Vec<u8>>> = vec![Vec::with_capacity(tta); pairs.len()];
    let mut steps_used = vec![0usize; pairs.len()];
    for k in 0..tta {
        let copies: Vec<Pair> = pairs.iter().map(|p| info.symmetric(p, k)).collect();
        let (input, _, resp) = encode_all(info, &copies)?;
        let out = predict_batch(
            model,
            cfg,
            &input.to_device(device),
            &resp.to_device(device),
            false,
        )?;
        let rows = out.tokens.to_device(Device::Cpu);
        for (i, a) in answers.iter_mut().enumerate() {
            let toks = Vec::<i64>::try_from(rows.get(i as i64))?;
            a.push(info.unsymmetric(&info.decode(&toks), k));
            steps_used[i] += out.steps_used[i];
        }
    }
    let kept: Vec<Pair> = pairs
        .iter()
        .zip(&answers)
        .map(|(p, a)| Pair {
            question: p.question.clone(),
            answer: a[choose(a)].clone(),
        })
        .collect();
    // Unreadable cells (255) encode to no cell token and stay wrong.
    let (_, tokens, _) = encode_all(info, &kept)?;
    Ok(sample::Sampled {
        tokens: tokens.to_device(device),
        steps_used,
        trace: Vec::new(),
        steps: Vec::new(),
    })
}

/// The index of the answer test-time augmentation keeps among the answers
/// of a puzzle's copies (mapped back to its orientation): the answer given
/// by the most copies; a tie goes to the earliest copy (the identity
/// first). Measured alternative, left out: the copy with the highest sum of
/// log-confidences, which prefers answers with fewer path cells, the
/// model's least sure class (docs/FACTS.md, "Test-time augmentation").
pub fn choose(answers: &[Vec<u8>]) -> usize {
    let votes = |i: usize| answers.iter().filter(|a| **a == answers[i]).count();
    let mut best = 0;
    for i in 1..answers.len() {
        if votes(i) > votes(best) {
            best = i;
        }
    }
    best
}

/// Samples and scores the first `limit` puzzles (0 = all) of `ds`, each
/// under `eval.tta` symmetries.
pub fn evaluate(
    model: &Model,
    cfg: &RunConfig,
    ds: &Dataset,
    limit: usize,
    device: Device,
) -> Result<EvalResult> {
    evaluate_dist(model, cfg, ds, limit, device, &Dist::single(), cfg.eval.tta)
}

/// [`evaluate`] sharded over the ranks of a data-parallel run: rank r
/// samples its contiguous share of the puzzles and the counts are summed
/// over the ranks, so every rank returns the metrics of all `limit` puzzles.
/// (With Gumbel noise, `sample.temperature > 0`, the noise of a puzzle
/// depends on the sharding; argmax decoding does not.)
pub fn evaluate_dist(
    model: &Model,
    cfg: &RunConfig,
    ds: &Dataset,
    limit: usize,
    device: Device,
    dist: &Dist,
    tta: usize,
) -> Result<EvalResult> {
    let n = if limit == 0 {
        ds.len()
    } else {
        limit.min(ds.len())
    };
    let (first, last) = dist.split(n);
    let start = Instant::now();
    let bs = batch_size(cfg, device);
    let batches: Vec<(usize, usize)> = (first..last)
        .step_by(bs)
        .map(|lo| (lo, (lo + bs).min(last)))
        .collect();
    // One batch: sampled and scored on its own, so that the batches can go
    // to any thread and their tallies still add up in batch order.
    let one = |(lo, hi): (usize, usize)| -> Result<Tally> {
        let rows = |t: &Tensor| t.narrow(0, lo as i64, (hi - lo) as i64).to_device(device);
        let (resp, target) = (rows(&ds.resp), rows(&ds.target));
        let out = if tta > 1 {
            predict_symmetric(model, cfg, &ds.info, &ds.pairs[lo..hi], tta, device)?
        } else {
            predict_batch(model, cfg, &rows(&ds.input), &resp, false)?
        };
        let mut tally = Tally::default();
        tally.add(
            &ds.info,
            &ds.pairs[lo..hi],
            &out.tokens,
            &target,
            &resp,
            &out.steps_used,
        )?;
        Ok(tally)
    };
    let workers = workers(cfg, device);
    let all = || -> Result<Tally> {
        let mut tally = Tally::default();
        for t in on_threads(workers, &batches, &one) {
            tally.merge(&t?);
        }
        Ok(tally)
    };
    let tally = crate::seed::seeded_if(!cfg.sample.deterministic(), cfg.seed as i64, all)?;
    let tally = tally.sum_over(dist)?;
    Ok(tally.result(n, start.elapsed().as_secs_f64()))
}

/// Sampling threads of an evaluation on `device` (`eval.workers`): on the
/// CPU the configured number, or for 0 one per libtorch thread when the
/// sampling draws nothing at random (each thread then runs one libtorch
/// thread); one on CUDA and for random sampling.
pub fn workers(cfg: &RunConfig, device: Device) -> usize {
    match (device, cfg.eval.workers) {
        (Device::Cpu, 0) if cfg.sample.deterministic() => tch::get_num_threads().max(1) as usize,
        (Device::Cpu, 0) => 1,
        (Device::Cpu, w) => w,
        _ => 1,
    }
}

/// `job` applied to every item, on `threads` threads (item i on thread
/// i mod threads, each thread with one libtorch thread and a share of at
/// most ceil(items / threads)); the results in item order. With one thread
/// it runs here, on libtorch's threads.
///
/// A 2-core measurement (Algorithm 4 on 9x9 mazes, batch 32): small ops
/// split over both cores spend a fifth of their time in OpenMP's barriers
/// in bf16, while two threads that each sample whole batches do not
/// (docs/FACTS.md, "Sampling threads").
fn on_threads<T: Send>(
    threads: usize,
    items: &[(usize, usize)],
    job: &dyn Fn((usize, usize)) -> T,
) -> Vec<T> {
    if threads <= 1 || items.len() <= 1 {
        return items.iter().map(|&it| job(it)).collect();
    }
    let job = ReadOnly(job);
    let spawned = threads.min(items.len());
    let done = crate::device::on_single_threads(spawned, |w| {
        (w..items.len())
            .step_by(threads)
            .map(|i| (i, job.call(items[i])))
            .collect::<Vec<_>>()
    });
    let mut out: Vec<Option<T>> = (0..items.len()).map(|_| None).collect();
    for (i, t) in done.into_iter().flatten() {
        out[i] = Some(t);
    }
    out.into_iter()
        .map(|t| t.expect("every item ran on a thread"))
        .collect()
}

/// A job shared by the sampling threads of one evaluation. tch's tensors
/// are `Send` but not `Sync`, so a closure that reads the model and the
/// test set cannot be shared by threads in safe Rust.
struct ReadOnly<'a, T>(&'a (dyn Fn((usize, usize)) -> T + 'a));

// SAFETY: the job only reads the tensors it shares (the model's weights and
// the test set) and runs without gradients (`tch::no_grad` in
// `sample::sample` and `trm_predict`), so no autograd state is written; the
// libtorch state it changes (grad mode, autocast and its cast cache, the
// thread's OpenMP and MKL thread counts) is per thread, and every tensor it
// creates stays on its thread until returned. libtorch supports concurrent
// reads of one tensor from several threads.
unsafe impl<T> Sync for ReadOnly<'_, T> {}

impl<T> ReadOnly<'_, T> {
    fn call(&self, item: (usize, usize)) -> T {
        (self.0)(item)
    }
}

/// Per-puzzle scores summed over the puzzles of an evaluation (and over the
/// ranks of a data-parallel one); [`Tally::result`] turns them into the
/// fractions of an [`EvalResult`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub exact: f64,
    pub valid: f64,
    pub optimal: f64,
    /// Sum of the per-puzzle length ratios (0 for an invalid path).
    pub len_ratio: f64,
    /// Response positions predicted right, and all response positions:
    /// token accuracy pools the positions of every puzzle.
    pub tok_right: f64,
    pub tok_total: f64,
    /// Denoising steps used, summed over puzzles.
    pub steps: f64,
    /// Some puzzle was a maze (then optimality and length ratio are reported).
    pub maze: bool,
}

impl Tally {
    /// Scores the predicted token rows `pred` [B, L] of the puzzles `pairs`
    /// (B of them, in order) with the task's metrics, and their response
    /// positions (`resp` [B, L]) against `target` [B, L]; `steps_used` has
    /// the denoising steps of each row.
    pub fn add(
        &mut self,
        info: &TaskInfo,
        pairs: &[Pair],
        pred: &Tensor,
        target: &Tensor,
        resp: &Tensor,
        steps_used: &[usize],
    ) -> Result<()> {
        let b = pred.size()[0];
        if b != pairs.len() as i64 || b != steps_used.len() as i64 {
            bail!(
                "{b} predicted rows for {} puzzles and {} step counts",
                pairs.len(),
                steps_used.len()
            );
        }
        let right = pred.eq_tensor(target).logical_and(resp);
        self.tok_right += i64::try_from(right.sum(Kind::Int64))? as f64;
        self.tok_total += i64::try_from(resp.sum(Kind::Int64))? as f64;
        self.steps += steps_used.iter().sum::<usize>() as f64;
        let rows = pred.to_device(Device::Cpu);
        for (k, pair) in pairs.iter().enumerate() {
            let toks = Vec::<i64>::try_from(rows.get(k as i64))?;
            let sc = info.score(pair, &info.decode(&toks));
            self.exact += sc.exact as u8 as f64;
            self.valid += sc.valid as u8 as f64;
            if let Some(o) = sc.optimal {
                self.maze = true;
                self.optimal += o as u8 as f64;
            }
            self.len_ratio += sc.len_ratio.unwrap_or(0.0);
        }
        Ok(())
    }

    /// Adds the counts of `other` (more puzzles of the same evaluation).
    pub fn merge(&mut self, other: &Tally) {
        let (a, b) = (self.counts(), other.counts());
        *self = Tally::from_counts(&std::array::from_fn::<f64, 8, _>(|k| a[k] + b[k]));
    }

    /// The sums over every rank of `dist` (itself on one process).
    pub fn sum_over(&self, dist: &Dist) -> Result<Tally> {
        Ok(Tally::from_counts(&dist.sum_f64(&self.counts())?))
    }

    /// The counts as numbers, in the order [`Tally::from_counts`] reads
    /// them (`maze` as 0 or 1).
    fn counts(&self) -> [f64; 8] {
        [
            self.exact,
            self.valid,
            self.optimal,
            self.len_ratio,
            self.tok_right,
            self.tok_total,
            self.steps,
            self.maze as u8 as f64,
        ]
    }

    fn from_counts(s: &[f64]) -> Tally {
        Tally {
            exact: s[0],
            valid: s[1],
            optimal: s[2],
            len_ratio: s[3],
            tok_right: s[4],
            tok_total: s[5],
            steps: s[6],
            maze: s[7] > 0.0,
        }
    }

    /// The metrics of `n` puzzles evaluated in `wall_s` seconds.
    pub fn result(&self, n: usize, wall_s: f64) -> EvalResult {
        let nf = n.max(1) as f64;
        EvalResult {
            n,
            exact: self.exact / nf,
            valid: self.valid / nf,
            optimal: self.maze.then(|| self.optimal / nf),
            len_ratio: self.maze.then(|| self.len_ratio / nf),
            token_acc: self.tok_right / self.tok_total.max(1.0),
            mean_steps: self.steps / nf,
            wall_s,
            puzzles_per_s: n as f64 / wall_s.max(1e-9),
        }
    }
}

/// One row of `trldm eval --trace`: a denoising step averaged over puzzles.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRow {
    pub step: usize,
    pub rms_y: f64,
    pub rms_z: f64,
    /// Tokens committed at this step, per puzzle.
    pub committed: f64,
    /// Mean confidence of the tokens committed at this step.
    pub conf_committed: f64,
    /// Token accuracy (response positions) of the step's fill.
    pub fill_token_acc: f64,
    /// Mean halting probability h_θ(y).
    pub halt_p: f64,
}

/// The CSV header of a trace file.
pub const TRACE_HEADER: &str = "step,rms_y,rms_z,committed,conf_committed,fill_token_acc,halt_p";

/// Samples the first `limit` puzzles (0 = all) of `ds` with Algorithm 4 and
/// records, per denoising step, the state sizes, what was committed and how
/// right the fill is (diagnostics of a carried trajectory).
pub fn trace(
    model: &Model,
    cfg: &RunConfig,
    ds: &Dataset,
    limit: usize,
    device: Device,
) -> Result<Vec<TraceRow>> {
    let n = if limit == 0 {
        ds.len()
    } else {
        limit.min(ds.len())
    };
    let bs = batch_size(cfg, device);
    // Per step: sums of rms_y·b, rms_z·b, committed, conf, right, total, halt·b, and b.
    let mut acc: Vec<[f64; 8]> = Vec::new();
    crate::seed::seeded(cfg.seed as i64, || -> Result<()> {
        for lo in (0..n).step_by(bs) {
            let hi = (lo + bs).min(n);
            let rows = |t: &Tensor| t.narrow(0, lo as i64, (hi - lo) as i64).to_device(device);
            let (input, resp, target) = (rows(&ds.input), rows(&ds.resp), rows(&ds.target));
            let out = predict_batch(model, cfg, &input, &resp, true)?;
            let b = (hi - lo) as f64;
            for (i, st) in out.steps.iter().enumerate() {
                if acc.len() <= i {
                    acc.push([0.0; 8]);
                }
                let right = st.fill.eq_tensor(&target).logical_and(&resp);
                let a = &mut acc[i];
                a[0] += st.rms_y * b;
                a[1] += st.rms_z * b;
                a[2] += st.committed;
                a[3] += st.conf_committed;
                a[4] += right.sum(Kind::Float).double_value(&[]);
                a[5] += resp.sum(Kind::Float).double_value(&[]);
                a[6] += st.halt_p * b;
                a[7] += b;
            }
        }
        Ok(())
    })?;
    Ok(acc
        .iter()
        .enumerate()
        .map(|(i, a)| TraceRow {
            step: i + 1,
            rms_y: a[0] / a[7],
            rms_z: a[1] / a[7],
            committed: a[2] / a[7],
            conf_committed: if a[2] > 0.0 { a[3] / a[2] } else { f64::NAN },
            fill_token_acc: a[4] / a[5].max(1.0),
            halt_p: a[6] / a[7],
        })
        .collect())
}

/// Writes a trace as CSV (atomically).
pub fn write_trace_csv(path: &Path, rows: &[TraceRow]) -> Result<()> {
    let mut text = format!("{TRACE_HEADER}\n");
    for r in rows {
        text += &format!(
            "{},{:.6e},{:.6e},{:.4},{:.6},{:.6},{:.6}\n",
            r.step, r.rms_y, r.rms_z, r.committed, r.conf_committed, r.fill_token_acc, r.halt_p
        );
    }
    crate::util::write_atomic(path, text.as_bytes())
}

/// A trained model loaded from a run's checkpoint.
pub struct Trained {
    pub vs: VarStore,
    pub model: Model,
    /// The checkpoint's step.
    pub step: u64,
    /// Whether the EMA weights were loaded (else the raw ones).
    pub ema: bool,
}

/// Loads a trained run's weights (EMA when asked for and present) into a
/// fresh model, reading the checkpoint once.
pub fn load_model(
    cfg: &RunConfig,
    run_ckpt: &Path,
    use_ema: bool,
    device: Device,
) -> Result<Trained> {
    let info = crate::data::TaskInfo::from_config(cfg);
    let (vs, model) = crate::model::build(cfg, &info, device)?;
    let ck = crate::checkpoint::load(run_ckpt)?.ok_or_else(|| {
        anyhow::anyhow!(
            "{}: no checkpoint (train the run first)",
            run_ckpt.display()
        )
    })?;
    let ema = use_ema && ck.has_group("ema");
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    ck.load_into(if ema { "ema" } else { "model" }, &mut vars)
        .with_context(|| format!("{}", run_ckpt.display()))?;
    Ok(Trained {
        vs,
        model,
        step: ck.meta.step,
        ema,
    })
}

/// Masks every response position of an encoded question (for `trldm solve`).
pub fn masked_input(info: &crate::data::TaskInfo, question: &[u8]) -> (Tensor, Tensor) {
    let pair = crate::tasks::Pair {
        question: question.to_vec(),
        answer: question.to_vec(),
    };
    let e = info.encode(&pair);
    debug_assert!(e.input.iter().zip(&e.resp).all(|(t, r)| !*r || *t == MASK));
    let l = e.input.len() as i64;
    (
        Tensor::from_slice(&e.input).view([1, l]),
        Tensor::from_slice(&e.resp).view([1, l]),
    )
}

#[cfg(test)]
mod tests {
    use super::{batch_size, choose, workers, Device, RunConfig};

    /// Auto (0) gives one sampling thread per libtorch thread on the CPU
    /// when sampling is deterministic, else one; a set number is kept on
    /// the CPU; CUDA samples on one thread.
    #[test]
    fn workers_follow_the_threads_when_sampling_is_deterministic() {
        let cpu = Device::Cpu;
        let auto = RunConfig::default();
        assert_eq!(workers(&auto, cpu), tch::get_num_threads().max(1) as usize);
        let gumbel = auto
            .with_overrides(&["sample.temperature=0.5".into()])
            .unwrap();
        assert_eq!(workers(&gumbel, cpu), 1);
        let three = auto.with_overrides(&["eval.workers=3".into()]).unwrap();
        assert_eq!(workers(&three, cpu), 3);
        assert_eq!(workers(&three, Device::Cuda(0)), 1);
    }

    /// Auto (0): 1024 on CUDA; on the CPU a power of two that shrinks as
    /// the grid or the width grows, never below 1; a set batch is kept.
    #[test]
    fn the_automatic_cpu_batch_shrinks_with_grid_and_width() {
        let cpu = Device::Cpu;
        let cfg = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            RunConfig::default().with_overrides(&sets).unwrap()
        };
        let at = |sets: &[&str]| batch_size(&cfg(&[&["eval.batch=0"], sets].concat()), cpu);
        // 9x9 mazes (81 cells): 96,000 / (81 · 128) = 9.3 -> 8.
        assert_eq!(at(&["model.d=128"]), 8);
        assert_eq!(at(&["model.d=256"]), 4);
        assert_eq!(at(&["model.d=512"]), 2);
        assert_eq!(at(&["model.d=64"]), 16);
        // 30x30 mazes (900 cells) at d = 128: 0.8 -> 1.
        assert_eq!(at(&["task.height=30", "task.width=30", "model.d=128"]), 1);
        // The concatenated layout doubles the sequence.
        assert_eq!(at(&["task.layout=concat", "model.d=128"]), 4);
        assert_eq!(batch_size(&cfg(&["eval.batch=0"]), Device::Cuda(0)), 1024);
        assert_eq!(batch_size(&cfg(&["eval.batch=48"]), cpu), 48);
    }

    #[test]
    fn tta_keeps_the_majority_answer_and_ties_go_to_the_earliest_copy() {
        let (a, b, c) = (vec![1u8, 2], vec![2u8, 1], vec![0u8, 0]);
        assert_eq!(choose(std::slice::from_ref(&a)), 0);
        assert_eq!(choose(&[a.clone(), b.clone(), b.clone(), c.clone()]), 1);
        assert_eq!(choose(&[c.clone(), a.clone(), b.clone(), a.clone()]), 1);
        // Ties: the earliest of the most-voted answers.
        assert_eq!(choose(&[a.clone(), b.clone(), c.clone()]), 0);
        assert_eq!(choose(&[c.clone(), b.clone(), a.clone(), b.clone(), a]), 1);
    }
}
