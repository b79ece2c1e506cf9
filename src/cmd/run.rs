//! `trldm train`, `trldm eval`, `trldm solve`, `trldm export`.
use crate::config::RunConfig;
use crate::data::TaskInfo;
use crate::eval;
use crate::run::{RunDir, State};
use crate::train::{self, Outcome, TrainOptions};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(
    about = "Train one run (TR-LDM or a baseline) and evaluate it",
    long_about = "Trains the model of a run config (Eq. 3 one-step training, Algorithm 3 deep supervision, \
or a baseline, by model.variant), writes checkpoints, train.csv and status.json into the run folder, \
and evaluates the EMA weights on the test split at the end (eval.csv).",
    after_help = "Example:\n  trldm train --config sweeps/cpu/maze9.toml --run-dir runs/maze9 --set train.steps=500\n  trldm train --config runs/maze9/config.toml --run-dir runs/maze9 --resume"
)]
pub struct TrainArgs {
    /// Run config (TOML: [task] [model] [train] [sample] [eval]); defaults for what it omits.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run folder (config.toml, status.json, train.csv, eval.csv, ckpt/).
    #[arg(long, default_value = "runs/default")]
    pub run_dir: PathBuf,
    /// Continue from the run folder's last checkpoint (if any).
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Start afresh in a folder that holds a run: its contents are moved
    /// aside to `<run-dir>.replaced-<unix time>` (never deleted).
    #[arg(long)]
    pub force: bool,
    /// Override a config key, e.g. --set model.n_rec=4 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Skip the final evaluation.
    #[arg(long)]
    pub no_eval: bool,
    /// Testing aid: make the loss NaN at this step.
    #[arg(long, hide = true)]
    pub inject_nan_at: Option<u64>,
    /// Print only errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Exit code of a run stopped by a signal after checkpointing (docs/RUNS.md).
pub const EXIT_STOPPED: i32 = crate::signals::EXIT_PREEMPTED;
/// Requeues of a directly launched `trldm train` under SLURM (`sweep exec-run`
/// requeues its own children with the sweep's `[slurm] max_requeues`).
const DEFAULT_MAX_REQUEUES: u32 = 3;
/// Exit code of a diverged run.
pub const EXIT_DIVERGED: i32 = 4;

/// Reads the config (or the defaults) with `--set` overrides applied to it
/// ([`RunConfig::load_with_overrides`]).
pub fn load_config(path: Option<&PathBuf>, sets: &[String]) -> Result<RunConfig> {
    RunConfig::load_with_overrides(path.map(|p| p.as_path()), sets)
}

/// Returns the process exit code.
pub fn train(a: TrainArgs, should_stop: Option<train::StopCheck>) -> Result<i32> {
    let mut cfg = load_config(a.config.as_ref(), &a.sets)?;
    if cfg.name.is_empty() {
        cfg.name = a
            .run_dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
    }
    let run = RunDir::new(&a.run_dir);
    // A SLURM job requeued after preemption reruns its command: it resumes.
    let requeued = std::env::var("SLURM_RESTART_COUNT")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .is_some_and(|n| n > 0);
    let resume = a.resume || requeued;
    // Only one rank of a data-parallel run locks and claims (or moves) the
    // folder; the lock keeps a second trainer (or a --force) off a live run.
    let _lock = if crate::dist::env_rank() == 0 {
        let lock = crate::util::lock_folder(&run.root, "training")?;
        if !resume && claim_fresh_folder(&run, a.force)? {
            drop(lock);
            Some(crate::util::lock_folder(&run.root, "training")?)
        } else {
            Some(lock)
        }
    } else {
        None
    };
    if resume {
        if let Some(ck) =
            crate::checkpoint::load(&run.ckpt_dir())?.filter(|ck| !ck.meta.config.is_empty())
        {
            let saved = RunConfig::from_resolved_toml_str(&ck.meta.config, "checkpoint config")?;
            if saved.model != cfg.model || saved.task != cfg.task || saved.seed != cfg.seed {
                bail!(
                    "{}: the checkpoint was written by a different model/task/seed than --config; resume with the run's own config.toml",
                    run.ckpt_dir().display()
                );
            }
            // Other settings may change on resume (a longer schedule, a new
            // eval); config.toml then holds the new ones, so the change and
            // its step are recorded beside it.
            let changes = cfg.changes_from(&saved);
            if !changes.is_empty() && crate::dist::env_rank() == 0 {
                record_changes(&run, ck.meta.step, &changes)?;
            }
        }
    }
    let opts = TrainOptions {
        resume,
        final_eval: !a.no_eval,
        inject_nan_at: a.inject_nan_at,
        should_stop,
        quiet: a.quiet,
    };
    // A panic (a bug, or libtorch failing) still marks the run failed.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train::train(&cfg, &run, opts)
    }))
    .unwrap_or_else(|panic| {
        Err(anyhow::anyhow!(
            "internal error: {}",
            crate::util::panic_text(&*panic)
        ))
    });
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            // Data parallelism: only rank 0 writes the run's files.
            if crate::dist::env_rank() == 0 {
                let _ = run.set_status(State::Failed, 0, &format!("{e:#}"));
            }
            return Err(e);
        }
    };
    Ok(match outcome {
        Outcome::Finished { .. } => 0,
        Outcome::Stopped { .. } => {
            let max = std::env::var("TRLDM_MAX_REQUEUES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_MAX_REQUEUES);
            // Once per job: rank 0 requeues (every rank stopped at the same step).
            if crate::dist::env_rank() == 0 && crate::signals::requeue_if_slurm(&run, max)? {
                crate::say!("trldm train: requeued SLURM job; it resumes from the checkpoint");
            }
            EXIT_STOPPED
        }
        Outcome::Diverged { .. } => EXIT_DIVERGED,
    })
}

/// Appends `step,key,old,new` rows to `<run>/config_changes.csv` and says so.
fn record_changes(run: &RunDir, step: u64, changes: &[(String, String, String)]) -> Result<()> {
    let path = run.root.join("config_changes.csv");
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|_| "step,key,old,new\n".into());
    let quote = |v: &str| format!("\"{}\"", v.replace('"', "\"\""));
    for (key, old, new) in changes {
        let row = format!("{step},{key},{},{}\n", quote(old), quote(new));
        // A requeued job repeats its resume: record each change once.
        if !text.contains(&row) {
            text += &row;
        }
    }
    crate::util::write_atomic(&path, text.as_bytes())?;
    let list: Vec<String> = changes
        .iter()
        .map(|(k, o, n)| format!("{k} {o} -> {n}"))
        .collect();
    crate::say!(
        "trldm train: resuming at step {step} with changed settings: {} (recorded in {})",
        list.join(", "),
        path.display()
    );
    Ok(())
}

/// What in a run folder is a researcher's work: checkpoints, the learning
/// curve, the metrics.
fn run_results(run: &RunDir) -> Vec<String> {
    let mut found = Vec::new();
    if std::fs::read_dir(run.ckpt_dir()).is_ok_and(|mut d| d.next().is_some()) {
        found.push("ckpt/".to_string());
    }
    for f in [run.train_csv(), run.eval_csv()] {
        if f.exists() {
            found.push(
                f.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string(),
            );
        }
    }
    found
}

/// `trldm train` without `--resume`: refuses a folder that holds results,
/// or with `--force` moves it aside (never deletes it).
/// Refuses a folder that holds results, or with `force` moves it aside
/// (returns whether it did).
fn claim_fresh_folder(run: &RunDir, force: bool) -> Result<bool> {
    let found = run_results(run);
    if found.is_empty() {
        return Ok(false);
    }
    if !force {
        bail!(
            "{} already holds a run ({}): continue it with --resume, or start afresh with \
             --force (which moves the old folder aside, deleting nothing)",
            run.root.display(),
            found.join(", ")
        );
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // From the folder's own name (`runs/x/` and `runs/x` alike).
    let name = run
        .root
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "run".into());
    let aside = run
        .root
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join(format!("{name}.replaced-{stamp}"));
    std::fs::rename(&run.root, &aside).with_context(|| {
        format!(
            "{}: cannot move it aside to {}",
            run.root.display(),
            aside.display()
        )
    })?;
    crate::say!(
        "trldm train: --force: moved the old run to {}",
        aside.display()
    );
    Ok(true)
}

#[derive(Args, Debug)]
#[command(
    about = "Evaluate a trained run on its test split (writes eval.csv)",
    after_help = "Example:\n  trldm eval --run runs/maze9\n  trldm eval --run runs/maze9 --set sample.steps=32 --set sample.reset_z_every=1 --out runs/maze9/eval_n32.csv"
)]
pub struct EvalArgs {
    /// Run folder with config.toml and ckpt/.
    #[arg(long)]
    pub run: PathBuf,
    /// Override sampling/eval keys, e.g. --set sample.steps=32.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Evaluate the raw weights instead of the EMA.
    #[arg(long)]
    pub raw: bool,
    /// Where to write the metrics (default <run>/eval.csv).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Instead of evaluating: run one forward pass (from the model's initial
    /// state, `model.state_init`; fp32, no autocast) on the first
    /// `eval.batch` test puzzles with every response position masked, and
    /// write `tokens` [B, L] (i64) and `logits` [B, L, V] (f32) to this
    /// safetensors file (docs/CHECKPOINTS.md), so another implementation can
    /// be checked against trldm.
    #[arg(long, value_name = "FILE")]
    pub dump_logits: Option<PathBuf>,
    /// Instead of evaluating: sample the first `eval.n` test puzzles (0 =
    /// all) and write, per denoising step, RMS(y), RMS(z), tokens committed,
    /// their mean confidence, the token accuracy of the step's fill and the
    /// mean halting probability as CSV (`trldm report --trace FILE` plots it).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
}

/// Fails unless the folder that `path` goes into exists (output files are
/// never written into a folder a typo made up).
fn require_parent(path: &std::path::Path, what: &str) -> Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = parent {
        if !dir.is_dir() {
            bail!(
                "{what} {}: the folder {} does not exist (create it first)",
                path.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

/// Keys that `eval` and `solve` may override: how to sample and evaluate,
/// and where and with which kernels; never what was trained (model, task,
/// training).
const EVAL_KEYS: &[&str] = &[
    "sample.",
    "eval.",
    "train.device",
    "train.threads",
    "train.bf16",
    "train.cpu_bf16",
    "model.attn_kernel",
    "model.cpu_kernels",
];

/// Refuses `--set` keys that would change the trained model or its data.
fn check_eval_sets(sets: &[String]) -> Result<()> {
    for s in sets {
        let key = s.split_once('=').map_or(s.as_str(), |(k, _)| k).trim();
        if !EVAL_KEYS
            .iter()
            .any(|k| key == *k || (k.ends_with('.') && key.starts_with(k)))
        {
            bail!(
                "--set {s}: `{key}` describes the trained run; eval and solve may only change \
                 sample.*, eval.*, train.device, train.threads, train.bf16, train.cpu_bf16, \
                 model.attn_kernel and model.cpu_kernels"
            );
        }
    }
    Ok(())
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let run = RunDir::new(&a.run);
    check_eval_sets(&a.sets)?;
    let cfg = load_config(Some(&run.config()), &a.sets)?;
    let device = crate::device::start(&cfg)?;
    let info = TaskInfo::from_config(&cfg);
    let (_, test) = crate::data::load_splits(&cfg)?;
    let ds = crate::data::Dataset::new(info, test).context("test split")?;
    for (path, what) in [(&a.dump_logits, "--dump-logits"), (&a.trace, "--trace")] {
        if let Some(path) = path {
            require_parent(path, what)?;
        }
    }
    if let Some(w) = cfg.trajectory_warning() {
        crate::say!("trldm eval: warning: {w}");
    }
    let trained = eval::load_model(&cfg, &run.ckpt_dir(), cfg.eval.use_ema && !a.raw, device)?;
    let model = &trained.model;
    if let Some(path) = &a.dump_logits {
        let b = eval::batch_size(&cfg, device).min(ds.len()) as i64;
        let tokens = ds.input.narrow(0, 0, b).to_device(device);
        let logits = tch::no_grad(|| model.forward(&tokens, None).logits);
        crate::checkpoint::write_tensors(
            path,
            &[("tokens".into(), tokens), ("logits".into(), logits)],
            &crate::checkpoint::metadata(&cfg, trained.step, "logits")?,
        )?;
        println!(
            "wrote {} (tokens [{b}, {}], logits)",
            path.display(),
            ds.input.size()[1]
        );
        return Ok(());
    }
    if let Some(path) = &a.trace {
        let rows = eval::trace(model, &cfg, &ds, cfg.eval.n, device)?;
        eval::write_trace_csv(path, &rows)?;
        println!("wrote {} ({} steps)", path.display(), rows.len());
        return Ok(());
    }
    let res = eval::evaluate(model, &cfg, &ds, cfg.eval.n, device)?;
    let out = a.out.unwrap_or_else(|| run.eval_csv());
    eval::write_csv(&out, &res)?;
    println!("{}", res.summary());
    println!("wrote {}", out.display());
    if out == run.eval_csv() {
        let step = run.status()?.map(|s| s.step).unwrap_or(0);
        run.set_status(State::Done, step, "")?;
    }
    Ok(())
}

#[derive(Args, Debug)]
#[command(
    about = "Solve one puzzle with a trained run and print the grid",
    after_help = "Example:\n  trldm solve --run runs/sudoku --puzzle '4...3.......6..8..........1....5..9..8....6...7.2........1.27..5.3....4.9........' --steps"
)]
pub struct SolveArgs {
    /// Run folder with config.toml and ckpt/.
    #[arg(long)]
    pub run: PathBuf,
    /// The question in the task's CSV format (Sudoku: 81 chars, '.' blank; maze: '#', ' ', 'S', 'G').
    #[arg(long)]
    pub puzzle: String,
    /// Print the grid after every denoising step.
    #[arg(long)]
    pub steps: bool,
    /// Override sampling keys, e.g. --set sample.steps=32.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

pub fn solve(a: SolveArgs) -> Result<()> {
    let run = RunDir::new(&a.run);
    check_eval_sets(&a.sets)?;
    let cfg = load_config(Some(&run.config()), &a.sets)?;
    let device = crate::device::start(&cfg)?;
    let info = TaskInfo::from_config(&cfg);
    let question = info.parse_question(&a.puzzle)?;
    let model = eval::load_model(&cfg, &run.ckpt_dir(), cfg.eval.use_ema, device)?.model;
    let (input, resp) = eval::masked_input(&info, &question);
    let out = crate::seed::seeded(cfg.seed as i64, || {
        eval::predict_batch(
            &model,
            &cfg,
            &input.to_device(device),
            &resp.to_device(device),
            a.steps,
        )
    })?;
    if a.steps {
        for (i, t) in out.trace.iter().enumerate() {
            let toks = Vec::<i64>::try_from(t.to_device(tch::Device::Cpu).view([-1]))?;
            println!("step {}:\n{}\n", i + 1, info.pretty(&info.decode(&toks)));
        }
    }
    let toks = Vec::<i64>::try_from(out.tokens.to_device(tch::Device::Cpu).view([-1]))?;
    let pred = info.decode(&toks);
    println!("{}", info.pretty(&pred));
    let check = crate::tasks::Pair {
        question: question.clone(),
        answer: pred.clone(),
    };
    let valid = info.score(&check, &pred).valid;
    println!(
        "valid: {}  (steps used: {})",
        if valid { "yes" } else { "no" },
        out.steps_used[0]
    );
    Ok(())
}

#[derive(Args, Debug)]
#[command(
    about = "Export a run's weights (EMA by default) with their metadata to one safetensors file",
    long_about = "Writes the run's model weights, named as in the model (e.g. net.0.attn.qkv.weight), \
with a __metadata__ header: format version, resolved config TOML, token map, variant, layout, \
sequence length, step (docs/CHECKPOINTS.md lists every tensor and how to load it in Python).",
    after_help = "Example:\n  trldm export --run runs/maze9 --out maze9.safetensors"
)]
pub struct ExportArgs {
    /// Run folder with config.toml and ckpt/.
    #[arg(long)]
    pub run: PathBuf,
    /// The safetensors file to write (its folder must exist).
    #[arg(long)]
    pub out: PathBuf,
    /// Export the raw weights instead of the EMA.
    #[arg(long)]
    pub raw: bool,
}

pub fn export(a: ExportArgs) -> Result<()> {
    let run = RunDir::new(&a.run);
    require_parent(&a.out, "--out")?;
    let cfg = load_config(Some(&run.config()), &[])?;
    let trained = eval::load_model(
        &cfg,
        &run.ckpt_dir(),
        cfg.eval.use_ema && !a.raw,
        tch::Device::Cpu,
    )?;
    let mut tensors: Vec<(String, tch::Tensor)> = trained.vs.variables().into_iter().collect();
    // TRM's fixed initial states are part of the model, though not variables.
    if let Some((y0, z0)) = trained.model.fixed_start() {
        tensors.push(("init/y".into(), y0.shallow_clone()));
        tensors.push(("init/z".into(), z0.shallow_clone()));
    }
    tensors.sort_by(|x, y| x.0.cmp(&y.0));
    let mut meta = crate::checkpoint::metadata(&cfg, trained.step, "export")?;
    meta.insert(
        "weights".into(),
        if trained.ema { "ema" } else { "raw" }.into(),
    );
    crate::checkpoint::write_tensors(&a.out, &tensors, &meta)?;
    println!(
        "wrote {} ({} tensors, {} weights, step {})",
        a.out.display(),
        tensors.len(),
        if trained.ema { "EMA" } else { "raw" },
        trained.step
    );
    Ok(())
}
