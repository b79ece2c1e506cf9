//! Training a run: one-step masked-diffusion training (Eq. 3, with an
//! optional k-step unroll), the direct-prediction baseline, and the
//! deep-supervised loop of Algorithm 3 (`deep_sup`); checkpoints, resume,
//! divergence detection, logging and periodic evaluation.
pub mod deep_sup;
pub mod kd;
pub mod loss;
pub mod optim;

use crate::checkpoint;
use crate::config::{DsBatches, RunConfig};
use crate::data::{self, Batch, Dataset, TaskInfo, MASK};
use crate::dist::Dist;
use crate::eval;
use crate::model::{count_params, Model, Variant};
use crate::run::{RunDir, State as RunState};
use crate::sample::{commit, predict};
use anyhow::{Context, Result};
use optim::{lr_at, AdamW, Ema};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::time::Instant;
use tch::{nn::VarStore, Device, Kind, Tensor};

/// How a training call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// All steps done (and, unless disabled, evaluated).
    Finished { step: u64 },
    /// A NaN/inf loss or an exploding gradient stopped the run; the last
    /// good checkpoint is kept.
    Diverged { step: u64, reason: String },
    /// Stopped on request (signal) after writing a checkpoint.
    Stopped { step: u64 },
}

/// Why training must stop: a non-finite loss, an exploding gradient, or
/// ranks that no longer agree (data parallelism). The last good checkpoint
/// is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Diverged(pub String);

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Diverged {}

/// Asked before every update whether to stop (shared by training threads).
pub type StopCheck = std::sync::Arc<dyn Fn(u64) -> bool + Send + Sync>;

/// Knobs of one `train` call that are not part of the run's config.
#[derive(Default, Clone)]
pub struct TrainOptions {
    /// Continue from `<run>/ckpt` when a checkpoint exists.
    pub resume: bool,
    /// Evaluate on the test split at the end and write `eval.csv`.
    pub final_eval: bool,
    /// Testing aid: replace the loss at this step with NaN.
    pub inject_nan_at: Option<u64>,
    /// Polled every step; when true, checkpoint and return `Stopped`.
    pub should_stop: Option<StopCheck>,
    /// Print nothing but errors.
    pub quiet: bool,
}

/// The random stream of training step `step` (and purpose `stream`): every
/// random choice of a step comes from it, so resuming at a step repeats
/// exactly what an uninterrupted run does.
pub fn step_rng(seed: u64, step: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(step.wrapping_mul(4).wrapping_add(stream));
    r
}

/// Minibatch row indices of a step (uniform, with replacement).
fn batch_indices(rng: &mut ChaCha8Rng, n: usize, b: usize) -> Vec<usize> {
    (0..b).map(|_| rng.gen_range(0..n)).collect()
}

/// Everything a training run holds.
pub struct Trainer {
    pub cfg: RunConfig,
    pub info: TaskInfo,
    pub device: Device,
    pub vs: VarStore,
    pub model: Model,
    pub opt: AdamW,
    pub ema: Option<Ema>,
    pub train: Dataset,
    pub test: Dataset,
    pub step: u64,
    /// The distillation teacher (Eq. 8), when `train.lambda_kd > 0`.
    pub teacher: Option<kd::Teacher>,
    /// Data parallelism (src/dist): this rank's place; `Dist::single()` for one process.
    pub dist: Dist,
    /// The loss of the last update averaged over the ranks (data parallelism).
    pub synced_loss: f64,
    /// The sampler's options: the unrolled training trajectory follows its
    /// state resets.
    pub sample_opts: crate::sample::SampleOptions,
    /// Testing aid: the loss of this update (1-based) becomes NaN.
    pub inject_nan_at: Option<u64>,
    /// The rows in flight of TRM's carry batches (`train.ds_batches =
    /// "carry"`); None before the first step.
    pub carry: Option<deep_sup::Carry>,
}

impl Trainer {
    /// Loads the data and builds a fresh model and optimizer.
    pub fn new(cfg: &RunConfig) -> Result<Trainer> {
        let device = crate::device::resolve_device(&cfg.train.device)?;
        Trainer::with_dist(cfg, Dist::single(), device)
    }

    /// [`Trainer::new`] for one rank of a data-parallel run on `device`
    /// (from [`Dist::discover`]); the parameters are broadcast from rank 0.
    pub fn with_dist(cfg: &RunConfig, dist: Dist, device: Device) -> Result<Trainer> {
        crate::amp::check(&cfg.train)?;
        if dist.backend != crate::dist::Backend::Threads {
            // A training thread keeps its one libtorch thread (dist::threads::spawn).
            crate::device::apply_threads(cfg)?;
        }
        dist.shard(cfg.train.batch)?;
        let info = TaskInfo::from_config(cfg);
        let (train_pairs, test_pairs) = data::load_splits(cfg)?;
        let train = Dataset::new(info, train_pairs).context("training split")?;
        let test = Dataset::new(info, test_pairs).context("test split")?;
        crate::model::check_memory(
            cfg,
            &info,
            device,
            5,
            "weights, gradients, AdamW moments, EMA",
        )?;
        let (vs, model) = crate::model::build(cfg, &info, device)?;
        let opt = AdamW::new(&vs, &cfg.train);
        let ema = (cfg.train.ema > 0.0).then(|| Ema::new(&opt.params, cfg.train.ema));
        let teacher = if cfg.train.lambda_kd > 0.0 {
            Some(kd::Teacher::load(&cfg.train.kd_teacher, &info, device)?)
        } else {
            None
        };
        Ok(Trainer {
            teacher,
            cfg: cfg.clone(),
            info,
            device,
            vs,
            model,
            opt,
            ema,
            train,
            test,
            step: 0,
            dist,
            synced_loss: f64::NAN,
            sample_opts: crate::sample::SampleOptions::from_config(&cfg.sample),
            inject_nan_at: None,
            carry: None,
        })
        .and_then(|mut tr| {
            tr.sync_from_root()?;
            Ok(tr)
        })
    }

    /// Evaluates the model on the first `limit` puzzles of its test split,
    /// each sampled under `tta` symmetries (`eval.tta` at the end, 1 during
    /// training), with the EMA weights when `eval.use_ema` (the default) and
    /// the run keeps an EMA.
    pub fn evaluate(&self, limit: usize, tta: usize) -> Result<eval::EvalResult> {
        let ema_model = match (&self.ema, self.cfg.eval.use_ema) {
            (Some(ema), true) => {
                let (vs, model) = crate::model::build(&self.cfg, &self.info, self.device)?;
                ema.copy_into(&vs);
                Some(model)
            }
            _ => None,
        };
        eval::evaluate_dist(
            ema_model.as_ref().unwrap_or(&self.model),
            &self.cfg,
            &self.test,
            limit,
            self.device,
            &self.dist,
            tta,
        )
    }

    /// Data parallelism: overwrites every rank's model, EMA, AdamW moments and
    /// step with rank 0's (after building, and after restoring a checkpoint).
    pub fn sync_from_root(&mut self) -> Result<()> {
        if !self.dist.is_active() {
            return Ok(());
        }
        let dev = self.dist.scratch_device();
        let mut tensors: Vec<Tensor> = self
            .checkpoint_tensors()
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        let mut flat = crate::dist::flatten(&tensors, dev);
        self.dist.broadcast_(&mut flat, 0)?;
        crate::dist::unflatten_into(&flat, &mut tensors)?;
        let mut counters =
            Tensor::from_slice(&[self.step as f64, self.opt.t as f64]).to_device(dev);
        self.dist.broadcast_(&mut counters, 0)?;
        let c = Vec::<f64>::try_from(counters.to_device(Device::Cpu))?;
        self.step = c[0] as u64;
        self.opt.t = c[1] as i64;
        Ok(())
    }

    /// All tensors of a checkpoint: model, EMA, AdamW moments.
    fn checkpoint_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .opt
            .params
            .iter()
            .map(|(n, p)| (format!("model/{n}"), p.shallow_clone()))
            .collect();
        if let Some(ema) = &self.ema {
            out.extend(
                ema.shadow
                    .iter()
                    .map(|(n, t)| (format!("ema/{n}"), t.shallow_clone())),
            );
        }
        out.extend(self.opt.state());
        out
    }

    /// Writes a checkpoint. A single process also saves the rows in flight
    /// of a carry batch, so that its resume is bit-exact; under data
    /// parallelism (rank 0 writes) each rank's carry restarts on resume.
    pub fn save(&self, run: &RunDir) -> Result<()> {
        let mut tensors = self.checkpoint_tensors();
        if let (Some(c), false) = (&self.carry, self.dist.is_active()) {
            tensors.extend(c.tensors());
        }
        checkpoint::save(
            &run.ckpt_dir(),
            self.step,
            self.opt.t,
            &self.cfg,
            &tensors,
            self.cfg.train.keep_ckpts,
        )
    }

    /// Restores model, EMA and optimizer from `<run>/ckpt`; false when there is none.
    pub fn restore(&mut self, run: &RunDir) -> Result<bool> {
        let Some(ck) = checkpoint::load(&run.ckpt_dir())? else {
            return Ok(false);
        };
        ck.load_into("model", &mut self.opt.params)?;
        if let Some(ema) = &mut self.ema {
            if ck.has_group("ema") {
                ck.load_into("ema", &mut ema.shadow)?;
            }
        }
        self.opt.load_state(&|n| ck.get(n), ck.meta.adam_t)?;
        self.step = ck.meta.step;
        self.carry = match self.cfg.train.ds_batches {
            DsBatches::Carry if !self.dist.is_active() => {
                deep_sup::Carry::from_tensors(&|n| ck.get(n), self.device)
            }
            _ => None,
        };
        self.sync_from_root()?;
        Ok(true)
    }

    /// One optimizer update from a loss: backward, gradient norm, clip, AdamW, EMA.
    /// Returns the gradient norm before clipping, or the reason to stop.
    fn update(&mut self, loss: &Tensor, lr: f64) -> std::result::Result<f64, Diverged> {
        let nan = self.inject_nan_at == Some(self.step + 1);
        let loss = &if nan {
            loss * f64::NAN
        } else {
            loss.shallow_clone()
        };
        let stop = |reason: String| Err(Diverged(reason));
        if self.dist.is_active() {
            // Data parallelism: backward first, then average gradients (and
            // the loss) over the ranks, so that every rank takes the same
            // decision (finite loss, gradient norm) and the same step.
            self.opt.zero_grad();
            loss.backward();
            let lv = self
                .sync_grads(loss)
                .map_err(|e| Diverged(format!("{e:#}")))?;
            self.synced_loss = lv;
            if !lv.is_finite() {
                return stop(format!("loss is {lv} at step {}", self.step + 1));
            }
        } else {
            let lv = f64::try_from(loss).unwrap_or(f64::NAN);
            if !lv.is_finite() {
                return stop(format!("loss is {lv} at step {}", self.step + 1));
            }
            self.opt.zero_grad();
            loss.backward();
        }
        let gn = self.opt.grad_norm();
        if !gn.is_finite() || gn > self.cfg.train.max_grad_norm {
            return stop(format!(
                "gradient norm {gn:.3e} at step {} (limit train.max_grad_norm = {:.1e})",
                self.step + 1,
                self.cfg.train.max_grad_norm
            ));
        }
        self.opt.clip(gn, self.cfg.train.grad_clip);
        self.opt.step(lr);
        if let Some(ema) = &mut self.ema {
            ema.update(&self.opt.params, self.step + 1);
        }
        self.step += 1;
        if self.dist.check {
            self.dist
                .check_identical(&self.opt.params, self.step)
                .map_err(|e| Diverged(format!("{e:#}")))?;
        }
        Ok(gn)
    }

    /// The gradient all-reduce: all gradients (name-sorted, as
    /// `optim::named_params`) and the loss are flattened into one float32
    /// buffer, averaged over the ranks and copied back. Undefined gradients
    /// (parameters outside the graph) are undefined on every rank and skipped.
    /// Returns the loss averaged over the ranks.
    fn sync_grads(&mut self, loss: &Tensor) -> Result<f64> {
        let mut grads: Vec<Tensor> = self
            .opt
            .params
            .iter()
            .map(|(_, p)| p.grad())
            .filter(|g| g.defined())
            .collect();
        let mut parts: Vec<Tensor> = grads.iter().map(|g| g.shallow_clone()).collect();
        parts.push(loss.detach().reshape([1]));
        let mut flat = crate::dist::flatten(&parts, self.device);
        self.dist.allreduce_mean_(&mut flat)?;
        crate::dist::unflatten_into(&flat, &mut grads)?;
        Ok(f64::try_from(flat.get(flat.numel() as i64 - 1))?)
    }

    /// One minibatch of training: one update (one-step and vanilla) or up to
    /// N_sup updates (Algorithm 3). Returns the loss and the gradient norms,
    /// or why the run diverged.
    pub fn train_step(&mut self) -> std::result::Result<(f64, Vec<f64>), Diverged> {
        let lr = lr_at(&self.cfg.train, self.step as usize);
        let batch = self.minibatch();
        let loss = match self.model.variant {
            Variant::Trldm | Variant::Mdm => self.one_step_loss(&batch),
            Variant::Vanilla => self.vanilla_loss(&batch),
            Variant::TrldmDs | Variant::Trm if self.cfg.train.ds_batches == DsBatches::Carry => {
                let (lv, res) = deep_sup::carry_step(self, &batch);
                return res.map(|g| (lv, g));
            }
            Variant::TrldmDs | Variant::Trm => {
                let max = self.cfg.train.steps as u64;
                let (lv, res) = deep_sup::minibatch(self, &batch, max);
                return res.map(|g| (lv, g));
            }
        };
        let lv = f64::try_from(&loss).unwrap_or(f64::NAN);
        let g = self.update(&loss, lr)?;
        let lv = if self.dist.is_active() {
            self.synced_loss
        } else {
            lv
        };
        Ok((lv, vec![g]))
    }

    /// The minibatch of the current step. With data parallelism the global
    /// batch (rows and augmentations) is drawn exactly as by one process and
    /// this rank keeps its rows `[r·B/W, (r+1)·B/W)`.
    fn minibatch(&self) -> Batch {
        let mut rng = step_rng(self.cfg.seed, self.step, 0);
        let idx = batch_indices(&mut rng, self.train.len(), self.cfg.train.batch);
        let mut aug = step_rng(self.cfg.seed, self.step, 2);
        let aug = self.cfg.task.augment_online.then_some(&mut aug);
        if !self.dist.is_active() {
            return self.train.batch(&idx, self.device, aug);
        }
        let (lo, n) = self.shard();
        let b = self.train.batch(&idx, Device::Cpu, aug);
        let rows = |t: &Tensor| t.narrow(0, lo as i64, n as i64).to_device(self.device);
        Batch {
            input: rows(&b.input),
            target: rows(&b.target),
            resp: rows(&b.resp),
            weight: rows(&b.weight),
        }
    }

    /// This rank's rows `(first, count)` of the global batch (checked divisible at start).
    fn shard(&self) -> (usize, usize) {
        self.dist
            .shard(self.cfg.train.batch)
            .expect("train.batch divisible by the world size (checked in Trainer::with_dist)")
    }

    /// `per_row` values from `draw` for every row of the global batch (under
    /// data parallelism B = b · world; in one process its own `b` rows), of
    /// which this rank keeps its `b` rows, row-major: W ranks draw what one
    /// process with the whole batch draws.
    pub(crate) fn global_draws<T: Copy>(
        &self,
        b: usize,
        per_row: usize,
        draw: impl FnMut() -> T,
    ) -> Vec<T> {
        let (lo, rows) = if self.dist.is_active() {
            (self.shard().0, self.cfg.train.batch)
        } else {
            (0, b)
        };
        let all: Vec<T> = std::iter::repeat_with(draw).take(rows * per_row).collect();
        all[lo * per_row..(lo + b) * per_row].to_vec()
    }

    /// Eq. 3's corruption of a minibatch: t ~ U(eps, 1] per row, each
    /// response position masked with probability t (drawn from the step's
    /// random stream 1). Returns the tokens and t [B].
    pub(crate) fn random_mask(&self, batch: &Batch) -> (Tensor, Tensor) {
        self.random_mask_from(batch, 1)
    }

    /// [`Trainer::random_mask`] drawn from the step's random stream `stream`.
    fn random_mask_from(&self, batch: &Batch, stream: u64) -> (Tensor, Tensor) {
        let mut rng = step_rng(self.cfg.seed, self.step, stream);
        let (b, l) = batch.target.size2().expect("[B, L]");
        let eps = self.cfg.train.eps;
        let t = self.global_draws(b as usize, 1, || {
            (eps + (1.0 - eps) * rng.gen::<f64>()) as f32
        });
        let u = self.global_draws(b as usize, l as usize, || rng.gen::<f32>());
        let t = Tensor::from_slice(&t).to_device(self.device);
        let u = Tensor::from_slice(&u).view([b, l]).to_device(self.device);
        let mask = u.lt_tensor(&t.unsqueeze(1)).logical_and(&batch.resp);
        (batch.target.masked_fill(&mask, MASK), t)
    }

    /// Eq. 3 on one minibatch, with `train.unroll` denoising steps whose
    /// (y, z) are carried and detached between steps (Tables 4-5).
    fn one_step_loss(&self, batch: &Batch) -> Tensor {
        self.one_step_loss_from(batch, 1)
    }

    /// [`Trainer::one_step_loss`] with the masking drawn from the step's
    /// random stream `stream` (deep supervision's added one-step loss uses
    /// its own, so that it never repeats the masking of `ds_start = "random"`).
    pub(crate) fn one_step_loss_from(&self, batch: &Batch, stream: u64) -> Tensor {
        let (mut tokens, t) = self.random_mask_from(batch, stream);
        let l_r = batch
            .resp
            .sum_dim_intlist(1, false, Kind::Float)
            .clamp_min(1.0);
        let k = self.cfg.train.unroll;
        let mut t_cur = t;
        let mut state = None;
        let mut total = Tensor::zeros([], (Kind::Float, self.device));
        for j in 0..k {
            let out = self.forward(&tokens, state);
            let masked = tokens.eq(MASK).logical_and(&batch.resp);
            total += loss::mdm_loss(
                &out.logits,
                &batch.target,
                &masked,
                &t_cur,
                &l_r,
                &batch.weight,
            );
            total += self.kd_term(&tokens, &out.logits, &masked, &t_cur, &l_r);
            if j + 1 < k {
                // Low-confidence remask down to the next ratio, as sampling does.
                let n_masked = masked.sum_dim_intlist(1, false, Kind::Int64);
                let keep =
                    (n_masked * (k - j - 1) as i64).divide_scalar_mode((k - j) as i64, "floor");
                let (pred, conf) = predict(&out.logits.detach(), 0.0);
                tokens = commit(&tokens, &pred, &conf, &batch.resp, &keep);
                t_cur = keep.to_kind(Kind::Float).clamp_min(1.0) / &l_r;
                // (y, z) follow the sampler's reset policy (Algorithm 4).
                state = Some(crate::sample::next_state(
                    &self.model,
                    &tokens,
                    out.state.detach(),
                    j + 1,
                    &self.sample_opts,
                ));
            } else {
                state = None;
            }
        }
        drop(state);
        total / k as f64
    }

    /// λ_KD · Eq. 8 against the teacher on the same masked input (0 without a teacher).
    pub fn kd_term(
        &self,
        tokens: &Tensor,
        logits: &Tensor,
        masked: &Tensor,
        t: &Tensor,
        l_r: &Tensor,
    ) -> Tensor {
        match &self.teacher {
            None => Tensor::zeros([], (Kind::Float, self.device)),
            Some(teacher) => {
                let tl = teacher
                    .logits(tokens)
                    .expect("teacher forward (its shape was checked at load)");
                loss::kd_loss(logits, &tl, masked, t, l_r, self.cfg.train.kd_temp)
                    * self.cfg.train.lambda_kd
            }
        }
    }

    /// The direct-prediction baseline: cross-entropy on every response
    /// position from the fully masked input, in one pass.
    fn vanilla_loss(&self, batch: &Batch) -> Tensor {
        let out = self.forward(&batch.input, None);
        let l_r = batch
            .resp
            .sum_dim_intlist(1, false, Kind::Float)
            .clamp_min(1.0);
        let t = l_r.ones_like();
        loss::response_ce(&out.logits, &batch.target, &batch.resp, &batch.weight)
            + self.kd_term(&batch.input, &out.logits, &batch.resp, &t, &l_r)
    }

    /// A forward pass under the run's bf16 autocast (src/amp.rs).
    pub fn forward(
        &self,
        tokens: &Tensor,
        state: Option<crate::model::State>,
    ) -> crate::model::Output {
        let amp = crate::amp::enabled(&self.cfg.train, self.device);
        crate::amp::autocast(self.device, amp, || self.model.forward(tokens, state))
    }
}

/// Appends rows to `train.csv`, keeping (on resume) only rows up to the
/// checkpoint's step so the curve has no duplicates.
struct TrainLog {
    file: std::fs::File,
}

const TRAIN_HEADER: &str = "step,loss,lr,grad_norm,tokens_per_s,elapsed_s,eval_exact,eval_valid,eval_optimal,eval_token_acc";

impl TrainLog {
    fn open(run: &RunDir, keep_until: u64) -> Result<TrainLog> {
        let path = run.train_csv();
        let mut text = format!("{TRAIN_HEADER}\n");
        if keep_until > 0 {
            if let Ok(old) = std::fs::read_to_string(&path) {
                for line in old.lines().skip(1) {
                    let step = line.split(',').next().and_then(|s| s.parse::<u64>().ok());
                    if matches!(step, Some(s) if s <= keep_until) && line.split(',').count() == 10 {
                        text.push_str(line);
                        text.push('\n');
                    }
                }
            }
        }
        crate::util::write_atomic(&path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        Ok(TrainLog { file })
    }

    fn row(&mut self, r: &LogRow) -> Result<()> {
        let e = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
        writeln!(
            self.file,
            "{},{:.6},{:.6e},{:.6},{:.1},{:.2},{},{},{},{}",
            r.step,
            r.loss,
            r.lr,
            r.grad_norm,
            r.tokens_per_s,
            r.elapsed_s,
            e(r.eval.as_ref().map(|m| m.exact)),
            e(r.eval.as_ref().map(|m| m.valid)),
            e(r.eval.as_ref().and_then(|m| m.optimal)),
            e(r.eval.as_ref().map(|m| m.token_acc)),
        )?;
        self.file.flush()?;
        Ok(())
    }
}

struct LogRow {
    step: u64,
    loss: f64,
    lr: f64,
    grad_norm: f64,
    tokens_per_s: f64,
    elapsed_s: f64,
    eval: Option<eval::EvalResult>,
}

/// Trains the run in `run` (creating it), following `opts`.
///
/// Under a launcher (mpirun, srun) this is one rank of a data-parallel run
/// ([`Dist::discover`]): every rank trains on its shard and joins the
/// collectives; only rank 0 writes config, status, train.csv, checkpoints
/// and eval.csv, and prints.
///
/// With `train.workers` > 1 the ranks are threads of this process instead
/// (src/dist/threads.rs), with the same division of work.
pub fn train(cfg: &RunConfig, run: &RunDir, opts: TrainOptions) -> Result<Outcome> {
    std::fs::create_dir_all(&run.root)
        .with_context(|| format!("{}: cannot create run folder", run.root.display()))?;
    on_ranks(cfg, &run.root, |dist, device| {
        train_as(cfg, run, opts.clone(), dist, device)
    })
}

/// Runs `rank(dist, device)` as every rank of `cfg` that this process
/// holds: its `train.workers` training threads (src/dist/threads.rs; rank
/// 0's result is returned), or else the one rank that its launcher gave it
/// ([`Dist::discover`], which may rendezvous through `rendezvous`).
pub fn on_ranks<T: Send>(
    cfg: &RunConfig,
    rendezvous: &std::path::Path,
    rank: impl Fn(Dist, Device) -> Result<T> + Sync,
) -> Result<T> {
    if cfg.train.workers > 1 {
        let device = threads_device(cfg)?;
        return crate::dist::threads::spawn(cfg.train.workers, |r, group| {
            // Each thread's autocast regions would clear the others' cast
            // cache mid-step (crate::amp::set_cast_cache_in_this_thread).
            crate::amp::set_cast_cache_in_this_thread(false);
            rank(Dist::thread_rank(r, group), device)
        });
    }
    let (dist, device) = Dist::discover(rendezvous, &cfg.train.device)?;
    rank(dist, device)
}

/// The device of a run on training threads (`train.workers` > 1): the CPU,
/// in a process that no launcher started as one of several ranks.
fn threads_device(cfg: &RunConfig) -> Result<Device> {
    let w = cfg.train.workers;
    if Dist::launched_as_ranks() {
        anyhow::bail!(
            "train.workers = {w}: this process is one rank of a launcher (mpirun, srun); \
             use launcher ranks or training threads, not both (train.workers = 1)"
        );
    }
    match crate::device::resolve_device(&cfg.train.device)? {
        Device::Cpu => Ok(Device::Cpu),
        d => anyhow::bail!(
            "train.workers = {w}: training threads are for the CPU, and train.device = \"{}\" \
             is {d:?}; use train.workers = 1 there",
            cfg.train.device
        ),
    }
}

/// [`train`] as rank `dist` on `device`.
fn train_as(
    cfg: &RunConfig,
    run: &RunDir,
    mut opts: TrainOptions,
    dist: Dist,
    device: Device,
) -> Result<Outcome> {
    let root = dist.is_root();
    opts.quiet |= !root;
    if root {
        crate::util::write_atomic(&run.config(), cfg.to_toml_string().as_bytes())?;
    }
    if root && !opts.quiet {
        if let Some(w) = cfg.trajectory_warning() {
            crate::say!("trldm train: warning: {w}");
        }
    }
    let mut tr = Trainer::with_dist(cfg, dist, device)?;
    tr.inject_nan_at = opts.inject_nan_at;
    // A panic (a bug, or libtorch failing) is an error like any other: the
    // other ranks are told, instead of waiting in a collective.
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train_rank(&mut tr, cfg, run, &opts)
    }))
    .unwrap_or_else(|p| {
        Err(anyhow::anyhow!(
            "internal error: {}",
            crate::util::panic_text(&*p)
        ))
    });
    if let Err(e) = &res {
        // An error on one rank would leave the others waiting in a collective.
        tr.dist.abort_others(e);
    }
    res
}

/// The body of [`train`] for one rank (every rank runs it; rank 0 writes).
fn train_rank(
    tr: &mut Trainer,
    cfg: &RunConfig,
    run: &RunDir,
    opts: &TrainOptions,
) -> Result<Outcome> {
    let root = tr.dist.is_root();
    let world = tr.dist.world;
    let resumed = opts.resume && tr.restore(run)?;
    let (n_all, n_net) = count_params(&tr.vs);
    if !opts.quiet {
        crate::say!(
            "trldm train: {} | {} params ({} without embeddings) | {} train / {} test puzzles | device {:?}{}{}",
            cfg.model.variant,
            n_all,
            n_net,
            tr.train.len(),
            tr.test.len(),
            tr.device,
            if world > 1 {
                format!(" | {world} ranks ({:?})", tr.dist.backend)
            } else {
                String::new()
            },
            if resumed {
                format!(" | resumed at step {}", tr.step)
            } else {
                String::new()
            }
        );
    }
    let status = |state: RunState, step: u64, msg: &str| -> Result<()> {
        if root {
            run.set_status(state, step, msg)?;
        }
        Ok(())
    };
    status(RunState::Running, tr.step, "")?;
    let mut log = if root {
        Some(TrainLog::open(run, tr.step)?)
    } else {
        None
    };
    let outcome = train_loop(tr, run, opts, log.as_mut())?;
    let save = |tr: &Trainer| if root { tr.save(run) } else { Ok(()) };
    match &outcome {
        Outcome::Finished { step } => {
            save(tr)?;
            if opts.final_eval {
                let res = tr.evaluate(cfg.eval.n, cfg.eval.tta)?;
                if root {
                    eval::write_csv(&run.eval_csv(), &res)?;
                }
                if !opts.quiet {
                    crate::say!("trldm train: final eval {}", res.summary());
                }
                status(RunState::Done, *step, "")?;
            } else {
                status(RunState::Running, *step, "trained; evaluation pending")?;
            }
        }
        Outcome::Diverged { step, reason } => {
            status(RunState::Diverged, *step, reason)?;
            if root {
                crate::say!(
                    "trldm train: diverged: {reason}; the last good checkpoint is kept in {}",
                    run.ckpt_dir().display()
                );
            }
        }
        Outcome::Stopped { step } => {
            save(tr)?;
            status(RunState::Running, *step, "stopped; resumable")?;
            if !opts.quiet {
                crate::say!(
                    "trldm train: stopped at step {step}; checkpoint written, resume with --resume"
                );
            }
        }
    }
    Ok(outcome)
}

/// Did the update count pass a multiple of `k` going from `before` to `after`?
pub fn crossed(before: u64, after: u64, k: u64) -> bool {
    k > 0 && after / k > before / k
}

fn train_loop(
    tr: &mut Trainer,
    run: &RunDir,
    opts: &TrainOptions,
    mut log: Option<&mut TrainLog>,
) -> Result<Outcome> {
    let cfg = tr.cfg.clone();
    let steps = cfg.train.steps as u64;
    let tokens_per_step = crate::flops::tokens_per_update(&cfg);
    let progress = crate::progress::Progress::new(steps, tr.step, opts.quiet);
    let start = Instant::now();
    let mut window = (Instant::now(), tr.step);
    let mut last_gn = 0.0;
    while tr.step < steps {
        if let Some(stop) = &opts.should_stop {
            // Ranks may see a signal at different steps: stop when any rank asks.
            let want = stop(tr.step) as u8 as f64;
            if tr.dist.sum_f64(&[want])?[0] > 0.0 {
                return Ok(Outcome::Stopped { step: tr.step });
            }
        }
        let lr = lr_at(&cfg.train, tr.step as usize);
        let before = tr.step;
        let (loss_v, gns) = match tr.train_step() {
            Ok(r) => r,
            Err(Diverged(reason)) => {
                return Ok(Outcome::Diverged {
                    step: tr.step,
                    reason,
                })
            }
        };
        last_gn = gns.last().copied().unwrap_or(last_gn);
        progress.set(tr.step, loss_v);
        // One train step may advance several updates (deep supervision):
        // fire when a multiple of k was crossed, not only when hit.
        let every = |k: usize| k > 0 && (crossed(before, tr.step, k as u64) || tr.step == steps);
        let do_eval = every(cfg.train.eval_every);
        if every(cfg.train.log_every) || do_eval || tr.step == steps {
            let secs = window.0.elapsed().as_secs_f64().max(1e-9);
            let rate = (tr.step - window.1) as f64 * tokens_per_step / secs;
            window = (Instant::now(), tr.step);
            let ev = if do_eval {
                Some(tr.evaluate(cfg.eval.n_during, 1)?)
            } else {
                None
            };
            let row = LogRow {
                step: tr.step,
                loss: loss_v,
                lr,
                grad_norm: last_gn,
                tokens_per_s: rate,
                elapsed_s: start.elapsed().as_secs_f64(),
                eval: ev,
            };
            progress.log(&format!(
                "step {} loss {:.4} lr {:.2e} gnorm {:.3} {:.0} tok/s{}",
                row.step,
                row.loss,
                row.lr,
                row.grad_norm,
                row.tokens_per_s,
                row.eval
                    .as_ref()
                    .map(|e| format!(" | eval {}", e.summary()))
                    .unwrap_or_default()
            ));
            if let Some(log) = log.as_mut() {
                log.row(&row)?;
            }
        }
        if every(cfg.train.ckpt_every) && tr.step < steps && tr.dist.is_root() {
            tr.save(run)?;
            run.set_status(RunState::Running, tr.step, "")?;
        }
    }
    progress.finish();
    Ok(Outcome::Finished { step: tr.step })
}
