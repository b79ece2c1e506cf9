//! `RunConfig`: everything one run needs (task, model, training, sampling,
//! evaluation), read from TOML with clear errors.
//!
//! Every field has a default, so a config file names only what it changes.
//! Unknown keys are refused with the closest valid key suggested, wrong types
//! name the key, the expected type and the value found, and `validate` checks
//! the combinations (e.g. `d` divisible by `heads`). Defaults follow the
//! paper's recipe (Sec. 9.6, App. C) scaled to the CPU reference config
//! (`ref_trldm.py`, docs/FACTS.md, "The eager-PyTorch reference").
use crate::dotted::{flatten, join};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

mod choices;
pub use choices::{
    AttnKernelChoice, BlockKind, CpuKernels, DsBatches, DsStart, Layout, NormPlace, PosEncoding,
    Puzzle, Remask, Schedule, StateInit, StateNorm, Variant,
};

/// One run: `[task] [model] [train] [sample] [eval]` plus a name and a seed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Free-form label (shown in logs and reports).
    pub name: String,
    /// Seed of every random choice of the run (init, masking, batches, sampling).
    pub seed: u64,
    pub task: TaskConfig,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub sample: SampleConfig,
    pub eval: EvalConfig,
}

/// The data: loaded from CSV files or generated deterministically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskConfig {
    /// `maze` or `sudoku`.
    pub kind: Puzzle,
    /// Training CSV (`source,question,answer,rating`); empty = generate `n_train`.
    pub train_csv: String,
    /// Test CSV; empty = generate `n_test` (with a seed disjoint from training).
    pub test_csv: String,
    /// Maze height and width (generated data, or the size expected in the CSV).
    pub height: usize,
    pub width: usize,
    /// Maze generation: wall fraction drawn from [wall_min, wall_max].
    pub wall_min: f64,
    pub wall_max: f64,
    /// Maze generation: minimum shortest-path length.
    pub min_path_len: usize,
    /// Sudoku box size (3 = 9x9).
    pub box_size: usize,
    /// Sudoku generation: target clue count.
    pub clues: usize,
    /// Number of generated (or, when > 0 with a CSV, at most loaded) puzzles.
    pub n_train: usize,
    pub n_test: usize,
    /// Sudoku-Extreme protocol: subsample K training puzzles (0 = all) ...
    pub subsample: usize,
    /// ... times A augmentations each (1 = originals only).
    pub augment: usize,
    /// Augment every training batch on the fly (dihedral for mazes, HRM/TRM for Sudoku).
    pub augment_online: bool,
    /// Seed of data generation and subsampling.
    pub data_seed: u64,
    /// Token layout: `inplace` (one token per cell) or `concat` ([p | r]); see `data`.
    pub layout: Layout,
}

/// Net_θ and the recursion (Sec. 5.2, App. A.1, Alg. 1-2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// `trldm` (one-step, Eq. 3), `trldm-ds` (Alg. 3), `mdm` (no recursion),
    /// `vanilla` (one pass, no masking), `trm` (TRM supervised, no diffusion).
    pub variant: Variant,
    pub d: usize,
    pub heads: usize,
    /// Transformer blocks in Net_θ.
    pub layers: usize,
    /// SwiGLU hidden width; 0 = 4·d.
    pub ffn: usize,
    /// `attention` or `mixer` (SwiGLU across positions, App. A.1).
    pub block: BlockKind,
    /// Attention kernel: `sdpa` (tch's scaled_dot_product_attention), `math`
    /// (explicit softmax(q kᵀ/√d_h) v, faster on the CPU for short grids) or
    /// `auto` (math on the CPU up to 256 tokens, sdpa otherwise).
    pub attn_kernel: AttnKernelChoice,
    /// CPU kernels for the norms, RoPE and the SwiGLU gate: `aten` (the
    /// default) or `fused` (csrc/fused.cpp, opt-in); the same function,
    /// equal to fp32 rounding (tests in src/model/fused.rs).
    pub cpu_kernels: CpuKernels,
    /// `pre` (App. A.1) or `post` (TRM).
    pub norm: NormPlace,
    /// `rope`, `learned2d` (row + column embeddings, Sec. 9.5) or `none`.
    pub pos: PosEncoding,
    /// Inner latent updates n (Alg. 1).
    pub n_rec: usize,
    /// Deep recursion cycles T (Alg. 2).
    #[serde(rename = "T")]
    pub t_cycles: usize,
    /// Ablations (Sec. 9.4): without y (decode from z) / without z.
    pub use_y: bool,
    pub use_z: bool,
    /// Bounding of the recursive states (y, z) after every Net_θ update of
    /// Algorithm 1; see [`StateNorm`].
    pub state_norm: StateNorm,
    /// Where (y, z) start: `embed` (Sec. 7.2) or `fixed` (TRM); see [`StateInit`].
    pub state_init: StateInit,
}

/// Optimisation (Eq. 3, 9; App. C).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    /// Cosine decay floor.
    pub lr_min: f64,
    pub warmup: usize,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Gradient-norm clip (0 = off).
    pub grad_clip: f64,
    /// EMA decay of the weights (0 = off); evaluation uses the EMA.
    pub ema: f64,
    /// t ~ U(eps, 1] (Eq. 3).
    pub eps: f64,
    /// Loss weight of maze path tokens (Sec. 9.5: 10).
    pub path_weight: f64,
    /// Denoising steps unrolled per minibatch with (y, z) carried and
    /// detached between steps (Tables 4-5: 2). 1 = plain one-step training.
    pub unroll: usize,
    /// TR-LDM-DS (Alg. 3): supervision steps, early halting on/off,
    /// halting threshold τ and loss weight λ_halt.
    pub n_sup: usize,
    pub halting: bool,
    pub halt_tau: f64,
    pub lambda_halt: f64,
    /// Minimum supervision steps before halting may stop a sample.
    pub min_sup_steps: usize,
    /// Algorithm 3, line 14 with teacher forcing: commit the ground-truth
    /// tokens (at random masked positions, as many as the schedule commits)
    /// instead of the model's low-confidence-remasked predictions, so that
    /// early in training the later supervision steps see right inputs.
    pub ds_reveal_truth: bool,
    /// Algorithm 3, line 3: where each minibatch's trajectory starts
    /// (`masked`, as written, or `random`: Eq. 3's corruption); see [`DsStart`].
    pub ds_start: DsStart,
    /// Deep supervision: N_sup updates per minibatch (`minibatch`,
    /// Algorithm 3) or TRM's carry batches (`carry`); see [`DsBatches`].
    pub ds_batches: DsBatches,
    /// Halting exploration (TRM: 0.1): with this probability a sample gets
    /// a minimum number of supervision steps drawn uniformly from
    /// [2, N_sup] before halting may stop it (0 = off).
    pub halt_explore: f64,
    /// Weight λ of Eq. 3's one-step loss (random t, the model's initial
    /// state, a fresh masking of the same minibatch) added to the loss of
    /// every supervision step of Algorithm 3 (0 = off; `trldm-ds` only).
    /// Each update then also learns what one-step TR-LDM learns, at the
    /// cost of a second forward/backward pass per update.
    pub ds_one_step: f64,
    /// Distillation (Eq. 8): a teacher run folder or TorchScript file; weight; temperature.
    pub kd_teacher: String,
    pub lambda_kd: f64,
    pub kd_temp: f64,
    /// Checkpoint every K steps (and at the end).
    pub ckpt_every: usize,
    /// Checkpoints kept (the newest ones): a resume falls back to an older
    /// one when the newest cannot be read.
    pub keep_ckpts: usize,
    pub log_every: usize,
    /// Evaluate on `eval.n_during` test puzzles every K steps (0 = only at the end).
    pub eval_every: usize,
    /// A gradient norm above this stops the run as diverged.
    pub max_grad_norm: f64,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// CPU threads (0 = libtorch's default).
    pub threads: usize,
    /// Training threads on the CPU: data parallelism inside the process.
    /// Each of `workers` threads holds a model replica, runs one libtorch
    /// thread and trains on its share of every minibatch (`train.batch /
    /// workers` rows); the gradients are averaged as across MPI ranks
    /// (src/dist/threads.rs). Small ops spread badly over cores, whole
    /// half-batches do (docs/FACTS.md, "Training threads"). 1 = one thread
    /// running libtorch's `train.threads`. Not on CUDA nor under a launcher.
    /// Runs repeat bit for bit, in fp32 and under `cpu_bf16` (each thread
    /// turns libtorch's process-wide cast cache off for itself:
    /// `amp::set_cast_cache_in_this_thread`).
    pub workers: usize,
    /// bf16 autocast on CUDA (training and sampling).
    pub bf16: bool,
    /// bf16 autocast on the CPU (off by default: fp32 is the CPU's reference
    /// precision; on AVX512-BF16/AMX CPUs bf16 matrix products are 2-3x faster).
    pub cpu_bf16: bool,
}

/// Algorithm 4 (sampling with low-confidence remasking).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SampleConfig {
    /// N denoising steps.
    pub steps: usize,
    /// Mask-ratio schedule: `linear` or `cosine` (MaskGIT).
    pub schedule: Schedule,
    /// `low_confidence` (Alg. 4) or `random` (random-remask baseline).
    pub remask: Remask,
    /// Gumbel-noise temperature on the logits (0 = argmax).
    pub temperature: f64,
    /// Re-initialise y (resp. z) every k steps (0 = carry, Alg. 4 as written).
    pub reset_y_every: usize,
    pub reset_z_every: usize,
    /// Stop a sample when the halting head says h(y) > tau.
    pub halt: bool,
    pub halt_tau: f64,
    /// Logit adjustment (Menon et al. 2021, "Long-tail learning via logit
    /// adjustment"): subtract ln w_c, the training loss weight of class c
    /// (`train.path_weight` for maze path cells, 1 elsewhere), from the logits
    /// before the argmax and the confidences. A model trained with Eq. 3
    /// weighted by w_c fits p_w(c) ∝ w_c · p(c); the adjusted argmax is the
    /// argmax of p(c). No effect when every weight is 1. Sampling only:
    /// training (and deep supervision's commits) is unchanged.
    pub logit_adjust: bool,
}

impl SampleConfig {
    /// Whether sampling draws nothing at random: argmax decoding
    /// (temperature 0) with low-confidence remasking (Algorithm 4).
    pub fn deterministic(&self) -> bool {
        self.temperature == 0.0 && self.remask == Remask::LowConfidence
    }
}

/// `trldm eval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Test puzzles to evaluate (0 = all).
    pub n: usize,
    /// Test puzzles used by evaluations during training.
    pub n_during: usize,
    /// Sampling batch; 0 = auto: on the CPU a small batch that keeps a
    /// block's activations in the caches (`eval::batch_size`: 8 for 9x9
    /// grids at d = 128, 4 at d = 256), 1024 on CUDA.
    /// The default stays 256 so that earlier sweeps keep their run ids.
    pub batch: usize,
    /// Evaluate the EMA weights (else the raw weights).
    pub use_ema: bool,
    /// Test-time augmentation: sample every test puzzle under this many of
    /// its symmetries (mazes: the first `tta` of the 8 dihedral transforms
    /// of `tasks::maze::augment`, identity first; at most 4 for non-square
    /// grids), map each answer back and keep the one most copies give (ties
    /// to the earliest copy; `eval::choose`). 1 = the puzzle as given.
    /// Costs `tta` times the sampling. Applies to the final evaluation and
    /// `trldm eval`; evaluations during training use the puzzle as given.
    pub tta: usize,
    /// Sampling threads on the CPU, each sampling its own batches with one
    /// libtorch thread (`eval::workers`); 0 = auto: as many as libtorch's
    /// threads when the sampling is deterministic (argmax, low-confidence
    /// remasking), else 1. Small ops parallelise badly over cores; whole
    /// batches do (docs/FACTS.md, "Sampling threads"). One on CUDA.
    pub workers: usize,
}

impl Default for TaskConfig {
    fn default() -> Self {
        TaskConfig {
            kind: Puzzle::Maze,
            train_csv: String::new(),
            test_csv: String::new(),
            height: 9,
            width: 9,
            wall_min: 0.3,
            wall_max: 0.3,
            min_path_len: 8,
            box_size: 3,
            clues: 30,
            n_train: 5000,
            n_test: 200,
            subsample: 0,
            augment: 1,
            augment_online: false,
            data_seed: 0,
            layout: Layout::InPlace,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            variant: Variant::Trldm,
            d: 128,
            heads: 4,
            layers: 2,
            ffn: 0,
            block: BlockKind::Attention,
            attn_kernel: AttnKernelChoice::Auto,
            cpu_kernels: CpuKernels::Aten,
            norm: NormPlace::Pre,
            pos: PosEncoding::Rope,
            n_rec: 2,
            t_cycles: 1,
            use_y: true,
            use_z: true,
            state_norm: StateNorm::Step,
            state_init: StateInit::Embed,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            steps: 2000,
            batch: 64,
            lr: 1e-3,
            lr_min: 1e-4,
            warmup: 200,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            grad_clip: 1.0,
            ema: 0.999,
            eps: 1e-3,
            path_weight: 1.0,
            unroll: 1,
            n_sup: 8,
            halting: true,
            halt_tau: 0.9,
            lambda_halt: 0.5,
            min_sup_steps: 2,
            ds_reveal_truth: false,
            ds_start: DsStart::Masked,
            ds_batches: DsBatches::Minibatch,
            halt_explore: 0.0,
            ds_one_step: 0.0,
            kd_teacher: String::new(),
            lambda_kd: 0.0,
            kd_temp: 1.0,
            ckpt_every: 500,
            keep_ckpts: 2,
            log_every: 50,
            eval_every: 0,
            max_grad_norm: 1e4,
            device: "auto".into(),
            threads: 0,
            workers: 1,
            bf16: true,
            cpu_bf16: false,
        }
    }
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            steps: 16,
            schedule: Schedule::Linear,
            remask: Remask::LowConfidence,
            temperature: 0.0,
            reset_y_every: 0,
            reset_z_every: 0,
            halt: false,
            halt_tau: 0.9,
            logit_adjust: false,
        }
    }
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            n: 0,
            n_during: 200,
            batch: 256,
            use_ema: true,
            tta: 1,
            workers: 0,
        }
    }
}

impl RunConfig {
    /// Reads and validates a config file: a file a user wrote (missing keys
    /// take the variant's defaults, then the global ones) or a run folder's
    /// `config.toml` (read as written; see [`RunConfig::load_with_overrides`]).
    pub fn load(path: &Path) -> Result<RunConfig> {
        Self::load_with_overrides(Some(path), &[])
    }

    /// Reads a config file (or none: every key at its default), applies
    /// `--set key=value` overrides to what the file says, and resolves. The
    /// overrides act as lines of the file, so `--set model.variant=trm` gives
    /// TRM's settings ([`TRM_DEFAULTS`]) for the keys that neither sets.
    ///
    /// A run folder's `config.toml` (beside `status.json` or `ckpt/`) was
    /// written by trldm with every key it knew: a key missing there was added
    /// later, and the run computed its global default, so no variant default
    /// is applied to it (an old `trm` run is evaluated and resumed as it was
    /// trained).
    pub fn load_with_overrides(path: Option<&Path>, sets: &[String]) -> Result<RunConfig> {
        let mut value = toml::Value::Table(Default::default());
        if let Some(p) = path {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read", p.display()))?;
            let origin = p.display().to_string();
            value = parse_toml(&text, &origin)?;
            check_keys(&value, &defaults_value(), "", &origin)?;
        }
        apply_sets(&mut value, sets)?;
        let origin = match (path, sets.is_empty()) {
            (Some(p), true) => p.display().to_string(),
            (Some(p), false) => format!("{} with --set", p.display()),
            (None, _) => "--set".into(),
        };
        if path.is_some_and(in_run_folder) {
            Self::from_resolved_value(value, &origin)
        } else {
            Self::from_value(value, &origin)
        }
    }

    /// Parses TOML text that a user wrote (`origin` names it in errors),
    /// checks keys and types, and validates; see [`RunConfig::from_value`].
    pub fn from_toml_str(text: &str, origin: &str) -> Result<RunConfig> {
        Self::from_value(parse_toml(text, origin)?, origin)
    }

    /// Parses a config that trldm wrote (a checkpoint's, a run folder's):
    /// missing keys take their global defaults, never a variant's.
    pub fn from_resolved_toml_str(text: &str, origin: &str) -> Result<RunConfig> {
        Self::from_resolved_value(parse_toml(text, origin)?, origin)
    }

    /// Builds a config from a TOML value that a user wrote (e.g. a sweep's
    /// base with grid overrides applied): keys it does not set take the
    /// variant's defaults ([`TRM_DEFAULTS`] for `trm`), then the global
    /// ones; then the checks of [`RunConfig::from_resolved_value`].
    pub fn from_value(value: toml::Value, origin: &str) -> Result<RunConfig> {
        Self::from_resolved_value(with_variant_defaults(value), origin)
    }

    /// Builds a config from a TOML value in which a missing key means its
    /// global default; refuses unknown keys and wrong types, and validates.
    pub fn from_resolved_value(value: toml::Value, origin: &str) -> Result<RunConfig> {
        check_keys(&value, &defaults_value(), "", origin)?;
        let cfg: RunConfig = value.try_into().map_err(|e| anyhow!("{origin}: {e}"))?;
        cfg.validate().map_err(|e| anyhow!("{origin}: {e}"))?;
        Ok(cfg)
    }

    /// The resolved config as TOML (what is written to `<run>/config.toml`).
    pub fn to_toml_string(&self) -> String {
        toml::to_string(self).expect("config serializes")
    }

    /// The run's identity: every setting that differs from its default, as
    /// sorted `key = value` lines (the run id hashes this text). A key added
    /// later with a default therefore changes no existing id, and every key
    /// is still written to `config.toml`. `name` is a label, not a setting
    /// (`trldm train` fills it with the folder name), so it is left out.
    pub fn identity(&self) -> String {
        let settings = RunConfig {
            name: String::new(),
            ..self.clone()
        };
        identity_text(
            &toml::Value::try_from(settings).expect("config serializes"),
            &defaults_value(),
        )
    }

    /// The settings that differ from `old`, as (key, old value, new value),
    /// sorted by key (e.g. what a resume with other `train.*` values changes).
    pub fn changes_from(&self, old: &RunConfig) -> Vec<(String, String, String)> {
        let new = flatten(&toml::Value::try_from(self).expect("config serializes"));
        let old = flatten(&toml::Value::try_from(old).expect("config serializes"));
        new.iter()
            .filter(|(k, v)| old.get(*k) != Some(v) && k.as_str() != "name")
            .map(|(k, v)| {
                let before = old.get(k).map(|o| o.to_string()).unwrap_or_default();
                (k.clone(), before, v.to_string())
            })
            .collect()
    }

    /// Applies `key=value` overrides (dotted keys, TOML values; a bare word
    /// is taken as a string) to this resolved config and re-validates. Every
    /// key is already explicit here, so no variant default applies; the
    /// command line goes through [`RunConfig::load_with_overrides`] instead.
    pub fn with_overrides(&self, sets: &[String]) -> Result<RunConfig> {
        if sets.is_empty() {
            return Ok(self.clone());
        }
        let mut value = toml::Value::try_from(self).expect("config serializes");
        apply_sets(&mut value, sets)?;
        Self::from_resolved_value(value, "--set")
    }

    /// Checks combinations and ranges; the message names the key and value.
    pub fn validate(&self) -> Result<()> {
        let m = &self.model;
        let t = &self.train;
        let s = &self.sample;
        let k = &self.task;
        let values = flatten(&toml::Value::try_from(self).expect("config serializes"));
        for (key, v) in &values {
            if let toml::Value::Float(f) = v {
                if !f.is_finite() {
                    bail!("{key} = {f}: must be a finite number");
                }
            }
        }
        for (key, v, lo, hi) in [
            ("train.beta1", t.beta1, 0.0, 1.0),
            ("train.beta2", t.beta2, 0.0, 1.0),
        ] {
            if !(lo..hi).contains(&v) {
                bail!("{key} = {v}: must be in [{lo}, {hi})");
            }
        }
        for (key, v) in [
            ("train.weight_decay", t.weight_decay),
            ("train.grad_clip", t.grad_clip),
            ("train.lambda_halt", t.lambda_halt),
            ("train.lambda_kd", t.lambda_kd),
            ("sample.temperature", s.temperature),
        ] {
            if v < 0.0 {
                bail!("{key} = {v}: must be >= 0");
            }
        }
        if t.max_grad_norm <= 0.0 {
            bail!("train.max_grad_norm = {}: must be > 0", t.max_grad_norm);
        }
        positive("train.steps", t.steps)?;
        positive("model.d", m.d)?;
        positive("model.heads", m.heads)?;
        positive("model.layers", m.layers)?;
        positive("model.n_rec", m.n_rec)?;
        positive("model.T", m.t_cycles)?;
        if !m.d.is_multiple_of(m.heads) {
            bail!(
                "model.d = {} is not divisible by model.heads = {} (the head width must be whole)",
                m.d,
                m.heads
            );
        }
        if m.pos.rope() && !(m.d / m.heads).is_multiple_of(2) {
            bail!(
                "model.pos = \"{}\" (RoPE) needs an even head width, but model.d / model.heads = {}",
                m.pos,
                m.d / m.heads
            );
        }
        if !m.use_y && !m.use_z {
            bail!("model.use_y = false and model.use_z = false: at least one state must stay");
        }
        if k.kind == Puzzle::Maze {
            positive("task.height", k.height)?;
            positive("task.width", k.width)?;
            if !(0.0..1.0).contains(&k.wall_min) || k.wall_max < k.wall_min || k.wall_max >= 1.0 {
                bail!(
                    "task.wall_min = {} / task.wall_max = {}: need 0 <= wall_min <= wall_max < 1",
                    k.wall_min,
                    k.wall_max
                );
            }
        } else if !(2..=5).contains(&k.box_size) {
            bail!(
                "task.box_size = {}: supported are 2..=5 (4x4 to 25x25)",
                k.box_size
            );
        }
        if k.kind == Puzzle::Maze && (k.train_csv.is_empty() || k.test_csv.is_empty()) {
            // Generated mazes: the generator's own checks, in one place.
            crate::tasks::maze::GenOptions {
                h: k.height,
                w: k.width,
                wall_min: k.wall_min,
                wall_max: k.wall_max,
                min_path_len: k.min_path_len,
            }
            .validate()
            .map_err(|e| anyhow!("task (height, width, wall_min, wall_max, min_path_len): {e}"))?;
        }
        positive("task.augment", k.augment)?;
        // Diffusion sampling commits at least one response cell per step.
        if m.variant.diffusion() && s.steps > self.cells() {
            bail!(
                "sample.steps = {} is more than the {} cells of a puzzle (the most a response \
                 can have): some steps would commit nothing",
                s.steps,
                self.cells()
            );
        }
        if self.eval.workers > 1 && !s.deterministic() {
            bail!(
                "eval.workers = {}: sampling with sample.temperature > 0 or sample.remask = \
                 \"random\" draws from one random generator, which several threads would share \
                 in no fixed order; use eval.workers = 1 (or 0, auto)",
                self.eval.workers
            );
        }
        positive("eval.tta", self.eval.tta)?;
        if self.eval.tta > 1 {
            // The copies `data::TaskInfo::symmetric` can make.
            let most = match k.kind {
                Puzzle::Maze => crate::tasks::maze::shape_preserving(k.height, k.width).len(),
                Puzzle::Sudoku => 1,
            };
            if self.eval.tta > most {
                bail!(
                    "eval.tta = {}: a {} task has {most} symmetr{} to sample under{}",
                    self.eval.tta,
                    if k.kind == Puzzle::Maze && k.height != k.width {
                        "non-square maze"
                    } else {
                        k.kind.as_str()
                    },
                    if most == 1 { "y" } else { "ies" },
                    if k.kind == Puzzle::Sudoku {
                        " (test-time augmentation is implemented for mazes)"
                    } else {
                        ""
                    }
                );
            }
        }
        positive("train.batch", t.batch)?;
        positive("train.workers", t.workers)?;
        if !t.batch.is_multiple_of(t.workers) {
            bail!(
                "train.batch = {} is not divisible by train.workers = {}: every training thread \
                 trains on an equal share of the minibatch",
                t.batch,
                t.workers
            );
        }
        if t.workers > 1 && !s.deterministic() {
            bail!(
                "train.workers = {}: the evaluations of training threads sample with \
                 sample.temperature > 0 or sample.remask = \"random\" from one random generator, \
                 which the threads would share in no fixed order; use train.workers = 1",
                t.workers
            );
        }
        positive("train.unroll", t.unroll)?;
        positive("train.n_sup", t.n_sup)?;
        positive("train.keep_ckpts", t.keep_ckpts)?;
        positive("sample.steps", s.steps)?;
        if t.lr.is_nan() || t.lr <= 0.0 || !t.lr.is_finite() {
            bail!("train.lr = {}: must be a positive number", t.lr);
        }
        if t.lr_min < 0.0 || t.lr_min > t.lr {
            bail!(
                "train.lr_min = {}: must be in [0, train.lr = {}]",
                t.lr_min,
                t.lr
            );
        }
        if !(0.0..1.0).contains(&t.ema) {
            bail!("train.ema = {}: must be in [0, 1) (0 = off)", t.ema);
        }
        if !(t.eps > 0.0 && t.eps < 1.0) {
            bail!("train.eps = {}: must be in (0, 1)", t.eps);
        }
        for (key, tau) in [
            ("train.halt_tau", t.halt_tau),
            ("sample.halt_tau", s.halt_tau),
        ] {
            if !(tau > 0.0 && tau < 1.0) {
                bail!("{key} = {tau}: the halting threshold must be in (0, 1)");
            }
        }
        if t.lambda_kd > 0.0 && t.kd_teacher.is_empty() {
            bail!(
                "train.lambda_kd = {} but train.kd_teacher is empty: distillation needs a teacher (a run folder or a TorchScript file)",
                t.lambda_kd
            );
        }
        if t.kd_temp.is_nan() || t.kd_temp <= 0.0 {
            bail!("train.kd_temp = {}: must be positive", t.kd_temp);
        }
        if !t.path_weight.is_finite() || t.path_weight <= 0.0 {
            bail!("train.path_weight = {}: must be positive", t.path_weight);
        }
        if !m.variant.recursive() && (!m.use_y || !m.use_z) {
            bail!(
                "model.variant = \"{}\" has no (y, z) recursion, so model.use_y / model.use_z ablations make no sense",
                m.variant
            );
        }
        if !m.variant.diffusion() && t.unroll > 1 {
            bail!(
                "model.variant = \"{}\" is not a diffusion model; train.unroll = {} needs one",
                m.variant,
                t.unroll
            );
        }
        if t.ds_start == DsStart::Random && m.variant != Variant::TrldmDs {
            bail!(
                "train.ds_start = \"random\" starts Algorithm 3 from a partly masked response, which only model.variant = \"trldm-ds\" trains on, not \"{}\"",
                m.variant
            );
        }
        if !(0.0..=1.0).contains(&t.halt_explore) {
            bail!(
                "train.halt_explore = {}: a probability, in [0, 1] (0 = off)",
                t.halt_explore
            );
        }
        if !t.ds_one_step.is_finite() || t.ds_one_step < 0.0 {
            bail!(
                "train.ds_one_step = {}: a loss weight, 0 or positive (0 = off)",
                t.ds_one_step
            );
        }
        if t.ds_one_step > 0.0 && m.variant != Variant::TrldmDs {
            bail!(
                "train.ds_one_step = {} adds Eq. 3's one-step loss to the supervision steps of model.variant = \"trldm-ds\"; \"{}\" has no such steps or does not diffuse",
                t.ds_one_step,
                m.variant
            );
        }
        if t.ds_batches == DsBatches::Carry && !m.variant.deep_supervised() {
            bail!(
                "train.ds_batches = \"carry\" is a way of running deep supervision, which model.variant = \"{}\" does not use (only \"trldm-ds\" and \"trm\")",
                m.variant
            );
        }
        if t.ds_batches == DsBatches::Carry && t.ds_reveal_truth {
            bail!(
                "train.ds_reveal_truth = true is implemented for train.ds_batches = \"minibatch\" only, not \"carry\""
            );
        }
        if s.halt && !m.variant.deep_supervised() {
            bail!(
                "sample.halt = true needs a trained halting head, which only deep supervision trains (model.variant = \"trldm-ds\" or \"trm\"), not model.variant = \"{}\"",
                m.variant
            );
        }
        if m.block == BlockKind::Mixer && m.pos.rope() {
            bail!("model.block = \"mixer\" mixes positions with fixed weights; use model.pos = \"none\" or \"learned2d\" (RoPE acts inside attention only)");
        }
        Ok(())
    }

    /// A warning when sampling meets recursive states that training never
    /// produced: (y, z) carried over more consecutive denoising steps than
    /// training carried them, or reset where training did not. Training
    /// carries them over `train.unroll` steps with the sampler's resets
    /// (one-step), or N_sup steps without resets (Algorithm 3).
    pub fn trajectory_warning(&self) -> Option<String> {
        let (s, t) = (&self.sample, &self.train);
        let span = |steps: usize, reset: usize| if reset > 0 { steps.min(reset) } else { steps };
        let (sampled_y, sampled_z) = (
            span(s.steps, s.reset_y_every),
            span(s.steps, s.reset_z_every),
        );
        let (trained_y, trained_z, how) = match self.model.variant {
            Variant::Trldm => (
                span(t.unroll, s.reset_y_every),
                span(t.unroll, s.reset_z_every),
                format!("train.unroll = {}", t.unroll),
            ),
            Variant::TrldmDs => {
                if (s.reset_y_every > 0 && s.reset_y_every < s.steps)
                    || (s.reset_z_every > 0 && s.reset_z_every < s.steps)
                {
                    return Some(format!(
                        "sampling resets the states (sample.reset_y_every = {}, sample.reset_z_every = {}) \
                         but deep supervision (Algorithm 3) trained them carried over train.n_sup = {} steps",
                        s.reset_y_every, s.reset_z_every, t.n_sup
                    ));
                }
                (t.n_sup, t.n_sup, format!("train.n_sup = {}", t.n_sup))
            }
            _ => return None,
        };
        let longest = |a: usize, b: usize| if self.model.use_z { a.max(b) } else { a };
        let (sampled, trained) = (longest(sampled_y, sampled_z), longest(trained_y, trained_z));
        (sampled > trained).then(|| {
            format!(
                "sampling carries (y, z) over up to {sampled} consecutive denoising steps \
                 (sample.steps = {}, sample.reset_y_every = {}, sample.reset_z_every = {}) but training \
                 carried them over at most {trained} ({how}): the model meets states it was never \
                 trained on (docs/RECURSION.md)",
                s.steps, s.reset_y_every, s.reset_z_every
            )
        })
    }

    /// The model's sequence length: the cells (in-place layout) or twice
    /// the cells (`concat`: prompt then response).
    pub fn seq_len(&self) -> usize {
        match self.task.layout {
            Layout::Concat => 2 * self.cells(),
            Layout::InPlace => self.cells(),
        }
    }

    /// Grid cells of one puzzle (the sequence length of the in-place layout).
    pub fn cells(&self) -> usize {
        match self.task.kind {
            Puzzle::Maze => self.task.height * self.task.width,
            Puzzle::Sudoku => self.task.box_size.pow(4),
        }
    }
}

/// TRM's own settings (docs/FACTS.md, "Tiny Recursive Models"): post-norm
/// blocks, `n = 6` inner updates, `T = 3` cycles, fixed random initial
/// states, 16 supervision steps on carry batches, halting when the Q logit
/// is positive (τ = 0.5, from the first step) with 10 % exploration. A config
/// with `model.variant = "trm"` gets these for the keys it does not set;
/// setting a key keeps a difference TR-LDM needs (e.g. `model.norm = "pre"`).
pub const TRM_DEFAULTS: &[(&str, &str)] = &[
    ("model.norm", "post"),
    ("model.n_rec", "6"),
    ("model.T", "3"),
    ("model.state_init", "fixed"),
    ("train.n_sup", "16"),
    ("train.ds_batches", "carry"),
    ("train.halt_tau", "0.5"),
    ("train.min_sup_steps", "1"),
    ("train.halt_explore", "0.1"),
];

/// Fills the keys a user's config leaves out with its variant's defaults.
fn with_variant_defaults(mut value: toml::Value) -> toml::Value {
    let trm = crate::dotted::get(&value, "model.variant").and_then(|v| v.as_str())
        == Some(Variant::Trm.as_str());
    if trm {
        for (key, raw) in TRM_DEFAULTS {
            if crate::dotted::get(&value, key).is_none() {
                // Fails only where the user's `model` or `train` is not a
                // table, which the key check that follows reports.
                let _ = crate::dotted::set(&mut value, key, parse_scalar(raw));
            }
        }
    }
    value
}

/// Whether `path` is a run folder's `config.toml` (written by trldm).
fn in_run_folder(path: &Path) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    path.file_name().is_some_and(|n| n == "config.toml")
        && (dir.join("status.json").is_file() || dir.join("ckpt").is_dir())
}

fn parse_toml(text: &str, origin: &str) -> Result<toml::Value> {
    toml::from_str(text).map_err(|e| anyhow!("{origin}: invalid TOML: {e}"))
}

fn defaults_value() -> toml::Value {
    toml::Value::try_from(RunConfig::default()).expect("defaults serialize")
}

/// Applies `key=value` overrides to a TOML table.
fn apply_sets(value: &mut toml::Value, sets: &[String]) -> Result<()> {
    for s in sets {
        let (key, raw) = s
            .split_once('=')
            .ok_or_else(|| anyhow!("--set {s}: expected key=value, e.g. model.d=64"))?;
        crate::dotted::set(value, key.trim(), parse_scalar(raw.trim()))
            .map_err(|e| anyhow!("--set {s}: {e}"))?;
    }
    Ok(())
}

fn positive(key: &str, v: usize) -> Result<()> {
    if v == 0 {
        bail!("{key} = 0: must be at least 1");
    }
    Ok(())
}

/// All dotted keys that a config accepts (e.g. `model.n_rec`): every field
/// of the config types, since every field is always serialized.
pub fn known_keys() -> Vec<String> {
    let defaults = defaults_value();
    flatten(&defaults).into_keys().collect()
}

/// The leaves of `config` that differ from `defaults`, as sorted
/// `key = value` lines ([`RunConfig::identity`]).
pub fn identity_text(config: &toml::Value, defaults: &toml::Value) -> String {
    let defaults = flatten(defaults);
    flatten(config)
        .into_iter()
        .filter(|(k, v)| defaults.get(k).is_none_or(|d| d != v))
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect()
}

/// Refuses unknown keys (suggesting the closest) and values of the wrong type.
fn check_keys(v: &toml::Value, defaults: &toml::Value, prefix: &str, origin: &str) -> Result<()> {
    let (toml::Value::Table(t), toml::Value::Table(d)) = (v, defaults) else {
        return Ok(());
    };
    for (k, child) in t {
        let key = join(prefix, k);
        let Some(def) = d.get(k) else {
            // Siblings first (a section name or a key of this section), then any key.
            let siblings: Vec<String> = d.keys().map(|s| join(prefix, s)).collect();
            let hint = crate::util::closest(&key, &siblings)
                .or_else(|| crate::util::closest(&key, &known_keys()))
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            bail!("{origin}: unknown key `{key}`{hint}");
        };
        let ok = match (def, child) {
            (toml::Value::Float(_), toml::Value::Integer(_)) => true,
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        };
        if !ok {
            bail!(
                "{origin}: `{key}` must be {}, found {} `{}`",
                type_name(def),
                type_name(child),
                child
            );
        }
        check_keys(child, def, &key, origin)?;
    }
    Ok(())
}

fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// Parses a command-line value as TOML (`64`, `1e-3`, `true`, `"x"`), or a bare string.
pub fn parse_scalar(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = RunConfig::default();
        c.validate().unwrap();
        let back = RunConfig::from_toml_str(&c.to_toml_string(), "x").unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn unknown_key_suggests_closest() {
        let e = RunConfig::from_toml_str("[model]\nn_recc = 3\n", "run.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("run.toml: unknown key `model.n_recc`"), "{e}");
        assert!(e.contains("did you mean `model.n_rec`"), "{e}");
        let e = RunConfig::from_toml_str("[trian]\nsteps = 3\n", "r.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key `trian`"), "{e}");
    }

    #[test]
    fn wrong_type_names_key_and_value() {
        let e = RunConfig::from_toml_str("[model]\nd = \"big\"\n", "r.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`model.d` must be an integer, found a string `\"big\"`"),
            "{e}"
        );
        // An integer where a number is expected is fine.
        let c = RunConfig::from_toml_str("[train]\nlr = 1\n", "r.toml").unwrap();
        assert_eq!(c.train.lr, 1.0);
    }

    #[test]
    fn invalid_combinations_are_named() {
        let cases = [
            (
                "[model]\nd = 130\nheads = 4\n",
                "model.d = 130 is not divisible by model.heads = 4",
            ),
            ("[model]\nn_rec = 0\n", "model.n_rec = 0"),
            ("[train]\nhalt_tau = 1.5\n", "train.halt_tau = 1.5"),
            (
                "[train]\nbeta1 = 2.0\n",
                "train.beta1 = 2: must be in [0, 1)",
            ),
            (
                "[train]\ngrad_clip = -1.0\n",
                "train.grad_clip = -1: must be >= 0",
            ),
            (
                "[train]\nsteps = 0\n",
                "train.steps = 0: must be at least 1",
            ),
            (
                "[sample]\nsteps = 500\n",
                "sample.steps = 500 is more than the 81 cells",
            ),
            ("[train]\nlambda_kd = 1.0\n", "kd_teacher is empty"),
            (
                "[model]\nuse_y = false\nuse_z = false\n",
                "at least one state",
            ),
            (
                "[train]\nds_one_step = 1.0\n",
                "train.ds_one_step = 1 adds Eq. 3's one-step loss",
            ),
            (
                "[model]\nvariant = \"trldm-ds\"\n[train]\nds_one_step = -0.5\n",
                "train.ds_one_step = -0.5: a loss weight",
            ),
            ("[eval]\ntta = 0\n", "eval.tta = 0: must be at least 1"),
            (
                "[eval]\nworkers = 2\n[sample]\ntemperature = 0.5\n",
                "eval.workers = 2: sampling with sample.temperature > 0",
            ),
            (
                "[eval]\nworkers = 2\n[sample]\nremask = \"random\"\n",
                "eval.workers = 2: sampling with sample.temperature > 0",
            ),
            ("[train]\nworkers = 0\n", "train.workers = 0"),
            (
                "[train]\nbatch = 64\nworkers = 3\n",
                "train.batch = 64 is not divisible by train.workers = 3",
            ),
            (
                "[train]\nworkers = 2\n[sample]\ntemperature = 0.5\n",
                "train.workers = 2: the evaluations of training threads",
            ),
            (
                "[eval]\ntta = 9\n",
                "eval.tta = 9: a maze task has 8 symmetries",
            ),
            (
                "[task]\nwidth = 11\n[eval]\ntta = 5\n",
                "eval.tta = 5: a non-square maze task has 4 symmetries",
            ),
            (
                "[task]\nkind = \"sudoku\"\n[eval]\ntta = 2\n",
                "eval.tta = 2: a sudoku task has 1 symmetry",
            ),
        ];
        for (text, want) in cases {
            let e = RunConfig::from_toml_str(text, "r.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    /// NaN and infinity are refused in every float key, naming it.
    #[test]
    fn nan_and_inf_are_refused_in_every_number() {
        let defaults = flatten(&toml::Value::try_from(RunConfig::default()).unwrap());
        let floats: Vec<&String> = defaults
            .iter()
            .filter(|(_, v)| v.is_float())
            .map(|(k, _)| k)
            .collect();
        assert!(floats.len() >= 15, "{floats:?}");
        for key in floats {
            for bad in ["nan", "inf", "-inf"] {
                let e = RunConfig::default()
                    .with_overrides(&[format!("{key}={bad}")])
                    .unwrap_err()
                    .to_string();
                assert!(e.contains(&format!("{key} = ")), "{key}={bad}: {e}");
            }
        }
    }

    /// A value outside a closed set is refused when the config is read,
    /// naming the key and the allowed values.
    #[test]
    fn every_choice_key_refuses_unknown_values() {
        for (key, allowed) in [
            ("task.kind", &["maze", "sudoku"][..]),
            ("task.layout", &["inplace", "concat"][..]),
            (
                "model.variant",
                &["trldm", "trldm-ds", "mdm", "vanilla", "trm"][..],
            ),
            ("model.block", &["attention", "mixer"][..]),
            ("model.attn_kernel", &["auto", "sdpa", "math"][..]),
            ("model.cpu_kernels", &["fused", "aten"][..]),
            ("model.norm", &["pre", "post"][..]),
            (
                "model.pos",
                &["rope", "learned2d", "rope+learned2d", "none"][..],
            ),
            ("model.state_norm", &["none", "step", "update"][..]),
            ("model.state_init", &["embed", "fixed"][..]),
            ("train.ds_start", &["masked", "random"][..]),
            ("train.ds_batches", &["minibatch", "carry"][..]),
            ("sample.schedule", &["linear", "cosine"][..]),
            ("sample.remask", &["low_confidence", "random"][..]),
        ] {
            let (section, name) = key.split_once('.').unwrap();
            let e = RunConfig::from_toml_str(&format!("[{section}]\n{name} = \"foo\"\n"), "r.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains("r.toml: unknown variant `foo`"), "{key}: {e}");
            for name in allowed {
                assert!(e.contains(&format!("`{name}`")), "{key}: {e}");
            }
            assert!(e.contains(&format!("`{key}`")), "{key}: {e}");
            let e = RunConfig::default()
                .with_overrides(&[format!("{key}=foo")])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("unknown variant `foo`") && e.contains(key),
                "{key}: {e}"
            );
        }
    }

    #[test]
    fn malformed_toml_has_position() {
        let e = RunConfig::from_toml_str("[model\nd = 3\n", "r.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.toml: invalid TOML"), "{e}");
        assert!(e.contains("line 1"), "{e}");
    }

    /// Every key of every section is accepted from a file and from `--set`
    /// (value = its default), including keys added after the first release.
    #[test]
    fn every_key_is_settable_from_a_file_and_from_set() {
        let defaults = flatten(&toml::Value::try_from(RunConfig::default()).unwrap());
        assert_eq!(known_keys().len(), defaults.len());
        for key in [
            "train.cpu_bf16",
            "model.attn_kernel",
            "eval.batch",
            "model.T",
            "seed",
        ] {
            assert!(
                defaults.contains_key(key),
                "{key} missing from the known keys"
            );
        }
        for (key, value) in &defaults {
            let c = RunConfig::default()
                .with_overrides(&[format!("{key}={value}")])
                .unwrap_or_else(|e| panic!("--set {key}={value}: {e:#}"));
            assert_eq!(c, RunConfig::default(), "--set {key}={value}");
            let text = match key.split_once('.') {
                Some((section, leaf)) => format!("[{section}]\n{leaf} = {value}\n"),
                None => format!("{key} = {value}\n"),
            };
            let c = RunConfig::from_toml_str(&text, "k.toml")
                .unwrap_or_else(|e| panic!("{text:?}: {e:#}"));
            assert_eq!(c, RunConfig::default(), "{text:?}");
        }
        // The two keys that were refused before, at a non-default value.
        let c = RunConfig::default()
            .with_overrides(&[
                "train.cpu_bf16=true".into(),
                "model.attn_kernel=math".into(),
            ])
            .unwrap();
        assert!(c.train.cpu_bf16);
        assert_eq!(c.model.attn_kernel, AttnKernelChoice::Math);
    }

    /// The identity lists only non-default settings, so a key added later
    /// with a default (present in both the config and the defaults) changes
    /// no identity, while a changed value does.
    #[test]
    fn a_new_key_with_a_default_changes_no_identity() {
        let cfg = RunConfig::default()
            .with_overrides(&["model.d=64".into(), "seed=3".into()])
            .unwrap();
        assert_eq!(cfg.identity(), "model.d = 64\nseed = 3\n");
        let labelled = RunConfig {
            name: "a label".into(),
            ..cfg.clone()
        };
        assert_eq!(labelled.identity(), cfg.identity());
        assert_eq!(RunConfig::default().identity(), "");
        let mut mine = toml::Value::try_from(&cfg).unwrap();
        let mut defaults = toml::Value::try_from(RunConfig::default()).unwrap();
        let before = identity_text(&mine, &defaults);
        crate::dotted::set(&mut mine, "model.new_knob", toml::Value::Integer(7)).unwrap();
        crate::dotted::set(&mut defaults, "model.new_knob", toml::Value::Integer(7)).unwrap();
        assert_eq!(identity_text(&mine, &defaults), before);
        crate::dotted::set(&mut mine, "model.new_knob", toml::Value::Integer(8)).unwrap();
        assert_ne!(identity_text(&mine, &defaults), before);
    }

    /// The default config with `sets` applied.
    fn with_sets(sets: &[&str]) -> RunConfig {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        RunConfig::default().with_overrides(&sets).unwrap()
    }

    #[test]
    fn trajectory_warning_names_both_settings() {
        let c = |sets: &[&str]| with_sets(sets).trajectory_warning();
        // Fresh states at every step: nothing carried, nothing to warn about.
        assert_eq!(
            c(&["sample.reset_y_every=1", "sample.reset_z_every=1"]),
            None
        );
        // Carried over 16 steps, trained one-step: warned, naming both.
        let w = c(&["sample.steps=16"]).unwrap();
        assert!(
            w.contains("sample.steps = 16") && w.contains("train.unroll = 1"),
            "{w}"
        );
        // Trained on the whole trajectory: fine.
        assert_eq!(c(&["sample.steps=8", "train.unroll=8"]), None);
        // Carried within blocks of 4, trained over 4: fine; over 2: warned.
        assert_eq!(
            c(&[
                "sample.reset_y_every=4",
                "sample.reset_z_every=4",
                "train.unroll=4"
            ]),
            None
        );
        assert!(c(&[
            "sample.reset_y_every=4",
            "sample.reset_z_every=4",
            "train.unroll=2"
        ])
        .is_some());
        // Deep supervision sampled with resets it never saw.
        let w = c(&["model.variant=trldm-ds", "sample.reset_z_every=1"]).unwrap();
        assert!(w.contains("train.n_sup = 8"), "{w}");
        assert_eq!(c(&["model.variant=trldm-ds", "sample.steps=8"]), None);
        assert_eq!(c(&["model.variant=mdm"]), None);
    }

    #[test]
    fn overrides_apply_and_validate() {
        let c = RunConfig::default()
            .with_overrides(&["model.d=64".into(), "sample.schedule=cosine".into()])
            .unwrap();
        assert_eq!(c.model.d, 64);
        assert_eq!(c.sample.schedule, Schedule::Cosine);
        let e = RunConfig::default()
            .with_overrides(&["model.dd=64".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `model.d`"), "{e}");
    }

    /// Rejects: `trm` without TRM's settings, a variant default that
    /// overrides a key the user set, or one that leaks into another variant.
    #[test]
    fn trm_gets_trm_s_settings_for_the_keys_it_does_not_set() {
        let trm = RunConfig::from_toml_str("[model]\nvariant = \"trm\"\n", "t.toml").unwrap();
        assert_eq!(trm.model.norm, NormPlace::Post);
        assert_eq!((trm.model.n_rec, trm.model.t_cycles), (6, 3));
        assert_eq!(trm.model.state_init, StateInit::Fixed);
        assert_eq!(trm.train.n_sup, 16);
        assert_eq!(trm.train.ds_batches, DsBatches::Carry);
        assert_eq!(trm.train.halt_tau, 0.5);
        assert_eq!(trm.train.min_sup_steps, 1);
        assert_eq!(trm.train.halt_explore, 0.1);
        let kept = RunConfig::from_toml_str(
            "[model]\nvariant = \"trm\"\nnorm = \"pre\"\nn_rec = 2\n[train]\nhalt_explore = 0.0\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!((kept.model.norm, kept.model.n_rec), (NormPlace::Pre, 2));
        assert_eq!(kept.train.halt_explore, 0.0);
        assert_eq!((kept.model.t_cycles, kept.train.n_sup), (3, 16));
        // The other variants keep the global defaults.
        let ds = RunConfig::from_toml_str("[model]\nvariant = \"trldm-ds\"\n", "t.toml").unwrap();
        let mut want = RunConfig::default();
        want.model.variant = Variant::TrldmDs;
        assert_eq!(ds, want);
        // --set acts as a line of the file, with or without one ...
        let set = |path: Option<&Path>| {
            RunConfig::load_with_overrides(path, &["model.variant=trm".into()]).unwrap()
        };
        assert_eq!(set(None).model, trm.model);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("user.toml");
        std::fs::write(&file, "[model]\nvariant = \"trldm\"\nd = 32\n").unwrap();
        let from_file = set(Some(&file));
        assert_eq!((from_file.model.d, from_file.model.n_rec), (32, 6));
        // ... while a resolved config (every key explicit) keeps its values.
        let resolved = RunConfig::default()
            .with_overrides(&["model.variant=trm".into()])
            .unwrap();
        assert_eq!(
            (resolved.model.n_rec, resolved.model.norm),
            (2, NormPlace::Pre)
        );
    }

    /// A run folder's config.toml written before a key existed: the run
    /// computed that key's global default, so reading it back must not apply
    /// the variant's. Rejects: an old `trm` run evaluated or resumed with
    /// TRM's fixed start, post-norm or n = 6 that it never trained with.
    #[test]
    fn a_run_folder_s_config_is_read_as_trldm_wrote_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        // An old `trm` run: written before state_init, ds_batches and
        // halt_explore existed (and sparse here, to show every TRM key).
        std::fs::write(&file, "[model]\nvariant = \"trm\"\n").unwrap();
        let user = RunConfig::load(&file).unwrap();
        assert_eq!(
            user.model.state_init,
            StateInit::Fixed,
            "not yet a run folder"
        );
        std::fs::write(dir.path().join("status.json"), "{}").unwrap();
        let old = RunConfig::load(&file).unwrap();
        let mut want = RunConfig::default();
        want.model.variant = Variant::Trm;
        assert_eq!(old, want);
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            RunConfig::from_resolved_toml_str(&text, "checkpoint config").unwrap(),
            want
        );
        // Overrides still apply to it, as lines of the file.
        let more = RunConfig::load_with_overrides(Some(&file), &["train.steps=7".into()]).unwrap();
        assert_eq!((more.train.steps, more.model.n_rec), (7, 2));
    }
}
