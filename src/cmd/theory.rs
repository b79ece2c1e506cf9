//! `trldm theory`: the paper's theory (Sec. 8) measured on a trained run.
use crate::cmd::run::load_config;
use crate::data::{Dataset, TaskInfo};
use crate::run::RunDir;
use crate::{eval, theory};
use anyhow::{Context, Result};
use std::path::PathBuf;

/// Options shared by the theory commands.
#[derive(Debug, Clone, clap::Args)]
pub struct TheoryArgs {
    /// Run folder with config.toml and ckpt/.
    #[arg(long)]
    pub run: PathBuf,
    /// Write the numbers as CSV here (its folder must exist).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Use the raw weights instead of the EMA.
    #[arg(long)]
    pub raw: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum TheoryCmd {
    /// Prop. 1: the contraction factor α of F(z) = Net(x + y + z) at each
    /// inner step of the first denoising step (median and max of
    /// ‖F(z+δ) − F(z)‖ / ‖δ‖ over random small δ and test puzzles).
    ///
    /// Example: trldm theory contraction --run runs/maze9 --out runs/maze9/alpha.csv
    Contraction {
        #[command(flatten)]
        args: TheoryArgs,
        /// Test puzzles.
        #[arg(long, default_value_t = 64)]
        puzzles: usize,
        /// Random directions per puzzle.
        #[arg(long, default_value_t = 16)]
        directions: usize,
        /// Size of δ relative to ‖x‖.
        #[arg(long, default_value_t = 1e-3)]
        eps: f64,
    },
    /// Prop. 2: the gradient of the first k denoising steps' losses with
    /// (y, z) detached between steps (Algorithm 3) against full
    /// backpropagation through the steps, for k = 1..N (cosine, relative
    /// difference), and the inter-step contraction α of each step's state map.
    ///
    /// Example: trldm theory gradient --run runs/maze9-ds --steps 4
    Gradient {
        #[command(flatten)]
        args: TheoryArgs,
        /// Test puzzles.
        #[arg(long, default_value_t = 64)]
        puzzles: usize,
        /// Denoising steps N (the cost grows as N²: every k = 1..N runs
        /// both objectives from the start).
        #[arg(long, default_value_t = 4)]
        steps: usize,
    },
    /// Thm. 1: Monte-Carlo estimate of the Eq. 3 bound on the test split, in
    /// nats per response token (with its standard error over puzzles).
    ///
    /// Example: trldm theory bound --run runs/maze9 --draws 4
    Bound {
        #[command(flatten)]
        args: TheoryArgs,
        /// Masks drawn per puzzle.
        #[arg(long, default_value_t = 4)]
        draws: usize,
    },
}

pub fn run(cmd: TheoryCmd) -> Result<()> {
    let args = match &cmd {
        TheoryCmd::Contraction { args, .. }
        | TheoryCmd::Bound { args, .. }
        | TheoryCmd::Gradient { args, .. } => args.clone(),
    };
    let run = RunDir::new(&args.run);
    let cfg = load_config(Some(&run.config()), &[])?;
    let device = crate::device::start(&cfg)?;
    let info = TaskInfo::from_config(&cfg);
    let (_, test) = crate::data::load_splits(&cfg)?;
    let ds = Dataset::new(info, test).context("test split")?;
    let trained = eval::load_model(&cfg, &run.ckpt_dir(), cfg.eval.use_ema && !args.raw, device)?;
    let model = &trained.model;
    let text = match cmd {
        TheoryCmd::Contraction {
            puzzles,
            directions,
            eps,
            ..
        } => {
            // F must be the map the model computes: Net(x + y + z), no
            // per-update norm, both states present.
            if cfg.model.state_norm == crate::config::StateNorm::Update
                || !cfg.model.use_y
                || !cfg.model.use_z
            {
                anyhow::bail!(
                    "theory contraction measures F(z) = Net(x + y + z); this run has \
                     model.state_norm = update or an ablated state, whose latent update differs"
                );
            }
            let rows = theory::contraction(model, &ds, puzzles, directions, eps, cfg.model.n_rec)?;
            let mut t = "inner_step,alpha_median,alpha_max\n".to_string();
            for r in &rows {
                t += &format!("{},{:.6},{:.6}\n", r.step, r.median, r.max);
                println!(
                    "inner step {}: alpha median {:.4}, max {:.4}",
                    r.step, r.median, r.max
                );
            }
            t
        }
        TheoryCmd::Gradient { puzzles, steps, .. } => {
            let vars = trained.vs.trainable_variables();
            let rows = theory::gradient_bias(model, &vars, &cfg, &ds, puzzles, steps)?;
            let mut t = "steps,cosine,rel_diff,norm_full,norm_detached,alpha_step\n".to_string();
            for r in &rows {
                t += &format!(
                    "{},{:.6},{:.6},{:.6e},{:.6e},{:.6}\n",
                    r.steps, r.cosine, r.rel_diff, r.norm_full, r.norm_detached, r.alpha_step
                );
                println!(
                    "k = {:>2}: cos(full, detached) {:.4}, |full - detached| / |full| {:.4}, alpha of step k {:.4}",
                    r.steps, r.cosine, r.rel_diff, r.alpha_step
                );
            }
            t
        }
        TheoryCmd::Bound { draws, .. } => {
            let n = if cfg.eval.n == 0 {
                ds.len()
            } else {
                cfg.eval.n.min(ds.len())
            };
            let (mean, se) = theory::eq3_bound(model, &cfg, &ds, n, draws, device)?;
            println!(
                "Eq. 3 bound: {mean:.5} ± {se:.5} nats per response token ({n} puzzles, {draws} draws each)"
            );
            format!("nats_per_token,stderr,puzzles,draws\n{mean:.6},{se:.6},{n},{draws}\n")
        }
    };
    if let Some(out) = &args.out {
        crate::util::write_atomic(out, text.as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
