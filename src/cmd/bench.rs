//! `trldm bench`: throughput numbers printed as one JSON line each (speed
//! targets live here, never in tests). The training and sampling defaults
//! are the configuration of `ref_trldm.py` (docs/FACTS.md, "The eager-PyTorch
//! reference"): 9x9 mazes (30%
//! walls, shortest path >= 8), d=128, 4 heads, 2 layers, n=2, T=1, batch 64,
//! 2 threads, path weight 10, 16 sampling steps.
use crate::cmd::run::load_config;
use crate::config::RunConfig;
use crate::data::{Dataset, TaskInfo};
use crate::dist::Dist;
use crate::tasks::{maze, sudoku, LoadOptions};
use crate::train::Trainer;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Training throughput (steps/s, tokens/s) and peak memory.
    #[command(
        after_help = "Example:\n  trldm bench train --steps 30\n  trldm bench train --set model.T=4 --steps 10"
    )]
    Train(BenchArgs),
    /// Sampling throughput (puzzles/s) of Algorithm 4 with an untrained model.
    #[command(after_help = "Example:\n  trldm bench sample --puzzles 500")]
    Sample(BenchArgs),
    /// Data throughput: Sudoku solver and generator, maze generator.
    #[command(
        after_help = "Example:\n  trldm bench data --sudoku ../shared/data/sudoku/forum_hardest_1106.csv"
    )]
    Data(DataBenchArgs),
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Base config (default: the reference configuration).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override keys, e.g. --set model.T=4.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Timed training steps (after 2 warm-up steps).
    #[arg(long, default_value_t = 30)]
    pub steps: usize,
    /// Puzzles to sample.
    #[arg(long, default_value_t = 500)]
    pub puzzles: usize,
    #[command(flatten)]
    pub record: RecordArgs,
}

/// `--record`: keep the printed lines as evidence.
#[derive(Args, Debug, Default)]
pub struct RecordArgs {
    /// Also append each JSON line, with the machine, commit, date and exact
    /// command added, to `<record-dir>/<machine>.jsonl`.
    #[arg(long)]
    pub record: bool,
    /// Where `--record` appends.
    #[arg(long, value_name = "DIR", default_value = "results/bench")]
    pub record_dir: PathBuf,
    /// The machine's name in the record (default: $TRLDM_MACHINE, else the
    /// CPU model and core count, or the GPU's name when it ran on CUDA).
    #[arg(long)]
    pub machine: Option<String>,
}

/// Prints one benchmark line and, with `--record`, appends it (with
/// machine, commit, date and command) to the machine's JSONL file.
fn emit(rec: &RecordArgs, line: serde_json::Value, cuda: bool) -> Result<()> {
    println!("{line}");
    if !rec.record {
        return Ok(());
    }
    let machine = rec
        .machine
        .clone()
        .or_else(|| std::env::var("TRLDM_MACHINE").ok())
        .unwrap_or_else(|| machine_name(cuda));
    let machine = slug(&machine);
    let mut entry = line;
    if let Some(obj) = entry.as_object_mut() {
        obj.insert("machine".into(), machine.clone().into());
        obj.insert("commit".into(), git_commit().into());
        obj.insert(
            "date".into(),
            crate::util::utc_iso(crate::run::now_secs()).into(),
        );
        let args: Vec<String> = std::env::args().collect();
        obj.insert("command".into(), args.join(" ").into());
    }
    let path = rec.record_dir.join(format!("{machine}.jsonl"));
    let mut text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("{entry}\n"));
    crate::util::write_atomic(&path, text.as_bytes())?;
    eprintln!("recorded in {}", path.display());
    Ok(())
}

/// Lower-case letters, digits and single dashes.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "unknown".into()
    } else {
        out
    }
}

/// The GPU's name (nvidia-smi) when the benchmark ran on CUDA, else the
/// CPU model with the core count, e.g. `intel-xeon-cpu-2c`.
fn machine_name(cuda: bool) -> String {
    let run = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .filter(|s| !s.is_empty())
    };
    if cuda {
        if let Some(gpu) = run("nvidia-smi", &["--query-gpu=name", "--format=csv,noheader"]) {
            return gpu;
        }
    }
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{model}-{cores}c")
}

/// `git rev-parse HEAD` of the working folder, `+dirty` when tracked files
/// differ from it; `unknown` outside a git checkout.
fn git_commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]) {
        None => "unknown".into(),
        Some(head) => match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(s) if !s.is_empty() => format!("{head}+dirty"),
            _ => head,
        },
    }
}

#[derive(Args, Debug)]
pub struct DataBenchArgs {
    /// Sudoku CSV to solve.
    #[arg(long)]
    pub sudoku: Option<PathBuf>,
    /// Puzzles to generate per generator.
    #[arg(long, default_value_t = 500)]
    pub count: usize,
    #[command(flatten)]
    pub record: RecordArgs,
}

/// The reference configuration of ref_trldm.py.
pub fn reference_config() -> RunConfig {
    let mut c = RunConfig::default();
    c.task.n_train = 5000;
    c.task.n_test = 500;
    c.train.batch = 64;
    c.train.threads = 2;
    c.train.path_weight = 10.0;
    c.train.ema = 0.0;
    c.sample.steps = 16;
    // The device's own sampling batch (eval::batch_size: 8 here on the CPU).
    c.eval.batch = 0;
    c
}

fn bench_config(a: &BenchArgs) -> Result<RunConfig> {
    match &a.config {
        Some(_) => load_config(a.config.as_ref(), &a.sets),
        None => reference_config().with_overrides(&a.sets),
    }
}

/// Peak resident memory of this process (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

pub fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Train(a) => bench_train(&a),
        BenchCmd::Sample(a) => bench_sample(&a),
        BenchCmd::Data(a) => bench_data(&a),
    }
}

/// Under mpirun/srun (or TRLDM_DIST=nccl) this benchmarks data-parallel
/// training: every rank runs its shard of the global batch, rank 0 prints,
/// and `allreduce_share` is the fraction of the step spent in the gradient
/// all-reduce (including waiting for the slowest rank). With
/// `train.workers` > 1 the ranks are training threads of this process.
fn bench_train(a: &BenchArgs) -> Result<()> {
    let mut cfg = bench_config(a)?;
    cfg.train.steps = a.steps + 2;
    cfg.train.warmup = cfg.train.warmup.min(cfg.train.steps);
    let rendezvous = std::env::temp_dir().join("trldm-bench");
    crate::train::on_ranks(&cfg, &rendezvous, |dist, device| {
        bench_train_as(a, &cfg, dist, device)
    })
}

/// [`bench_train`] as rank `dist` on `device`.
fn bench_train_as(a: &BenchArgs, cfg: &RunConfig, dist: Dist, device: Device) -> Result<()> {
    let mut tr = Trainer::with_dist(cfg, dist, device)?;
    let rss_before = peak_rss_mib();
    tr.bench_steps(2)?;
    tr.dist.barrier()?;
    let comm0 = tr.dist.comm_secs();
    let t0 = Instant::now();
    tr.bench_steps(a.steps)?;
    tr.dist.barrier()?;
    let dt = t0.elapsed().as_secs_f64();
    let comm = tr.dist.comm_secs() - comm0;
    let tokens = (a.steps * cfg.train.batch * tr.info.seq_len() * cfg.train.unroll) as f64;
    let (n_all, n_net) = crate::model::count_params(&tr.vs);
    // The all-reduce alone: the gradient buffer's size, ranks aligned by a
    // barrier first (the in-step figure also counts waiting for the slower rank).
    let mut alone = 0.0;
    if tr.dist.is_active() {
        let mut buf = Tensor::ones([n_all + 1], (Kind::Float, tr.device));
        for _ in 0..10 {
            tr.dist.barrier()?;
            let t = Instant::now();
            tr.dist.allreduce_mean_(&mut buf)?;
            alone += t.elapsed().as_secs_f64() / 10.0;
        }
    }
    let fpt = crate::flops::train_flops_per_token(cfg);
    if !tr.dist.is_root() {
        return Ok(());
    }
    emit(
        &a.record,
        serde_json::json!({
            "bench": "train",
            "variant": cfg.model.variant,
            "steps_per_s": a.steps as f64 / dt,
            "tokens_per_s": tokens / dt,
            "s_per_step": dt / a.steps as f64,
            "batch": cfg.train.batch,
            "seq_len": tr.info.seq_len(),
            "d": cfg.model.d,
            "n_rec": cfg.model.n_rec,
            "T": cfg.model.t_cycles,
            "unroll": cfg.train.unroll,
            "bf16": crate::amp::enabled(&cfg.train, tr.device),
            "params": n_all,
            "params_non_emb": n_net,
            "flops_per_token": fpt,
            "achieved_flops": fpt * tokens / dt,
            "world": tr.dist.world,
            "workers": cfg.train.workers,
            "backend": format!("{:?}", tr.dist.backend),
            "allreduce_s_per_step": comm / a.steps as f64,
            "allreduce_share": comm / dt,
            "allreduce_alone_s": alone,
            "threads": tch::get_num_threads(),
            "device": format!("{:?}", tr.device),
            "peak_rss_mib": peak_rss_mib(),
            "rss_before_training_mib": rss_before,
        }),
        tr.device.is_cuda(),
    )
}

fn bench_sample(a: &BenchArgs) -> Result<()> {
    let mut cfg = bench_config(a)?;
    cfg.task.n_test = a.puzzles;
    cfg.task.n_train = 1;
    let device = crate::device::start(&cfg)?;
    let info = TaskInfo::from_config(&cfg);
    let (_, test) = crate::data::load_splits(&cfg)?;
    let ds = Dataset::new(info, test)?;
    let (_vs, model) = crate::model::build(&cfg, &info, device)?;
    // Warm-up on a few puzzles, then time the whole set.
    crate::eval::evaluate(&model, &cfg, &ds, 8, device)?;
    let res = crate::eval::evaluate(&model, &cfg, &ds, 0, device)?;
    emit(
        &a.record,
        serde_json::json!({
            "bench": "sample",
            "puzzles_per_s": res.puzzles_per_s,
            "sample_steps": cfg.sample.steps,
            "puzzles": res.n,
            "batch": crate::eval::batch_size(&cfg, device),
            "bf16": crate::amp::enabled(&cfg.train, device),
            "wall_s": res.wall_s,
            "threads": tch::get_num_threads(),
            "device": format!("{device:?}"),
        }),
        device.is_cuda(),
    )
}

fn bench_data(a: &DataBenchArgs) -> Result<()> {
    if let Some(path) = &a.sudoku {
        let loaded = sudoku::load_csv(path, None, LoadOptions::default())
            .with_context(|| format!("{}: cannot load", path.display()))?;
        let n = loaded
            .pairs
            .first()
            .and_then(|p| sudoku::infer_box(p.question.len()))
            .unwrap_or(3);
        let mut guesses = 0;
        let rate = per_second(loaded.pairs.len(), || {
            for p in &loaded.pairs {
                guesses += std::hint::black_box(sudoku::solve(&p.question, n, 1)).guesses;
            }
        });
        emit(
            &a.record,
            serde_json::json!({"bench": "sudoku_solver", "file": path.display().to_string(), "puzzles": loaded.pairs.len(), "puzzles_per_s": rate, "guesses": guesses}),
            false,
        )?;
    }
    let opts = sudoku::GenOptions {
        n: 3,
        clues: 25,
        min_guesses: None,
        max_guesses: None,
    };
    let rate = per_second(a.count, || {
        std::hint::black_box(sudoku::generate_many(&opts, a.count, 0));
    });
    emit(
        &a.record,
        serde_json::json!({"bench": "sudoku_generate", "clues": 25, "count": a.count, "puzzles_per_s": rate}),
        false,
    )?;
    for preset in ["9x9", "30x30-hard"] {
        let opts = maze::GenOptions::preset(preset).context("maze preset")?;
        let mut made = Ok(Vec::new());
        let rate = per_second(a.count, || made = maze::generate_many(&opts, a.count, 0));
        std::hint::black_box(made?);
        emit(
            &a.record,
            serde_json::json!({"bench": "maze_generate", "preset": preset, "min_path_len": opts.min_path_len, "count": a.count, "mazes_per_s": rate}),
            false,
        )?;
    }
    Ok(())
}

/// Items per second of `f`, which handles `count` items.
fn per_second(count: usize, f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    count as f64 / start.elapsed().as_secs_f64().max(1e-9)
}

impl Trainer {
    /// Runs `n` training updates without logging or checkpoints (benchmarks).
    pub fn bench_steps(&mut self, n: usize) -> Result<()> {
        for _ in 0..n {
            self.train_step()?;
        }
        Ok(())
    }
}
