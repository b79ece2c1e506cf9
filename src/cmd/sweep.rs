//! `trldm sweep ...`: plan, run locally, submit to SLURM, follow, retry, cancel.
use crate::run::RunDir;
use crate::sweep::exec::{exec_run, trainer_bin, Launcher};
use crate::sweep::local::{run_local, LocalOptions};
use crate::sweep::{bench, SubmitOptions, Sweep};
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Options shared by the commands that read a sweep file.
#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    /// The sweep TOML (`[base]`, `[grid]`, `seeds`, `[[include]]`, `[[exclude]]`, `[slurm]`, `[local]`).
    pub file: PathBuf,
    /// The sweep's results folder (default: results/<name>).
    #[arg(long, value_name = "DIR")]
    pub results: Option<PathBuf>,
}

/// Options of the commands that write and submit an sbatch script.
#[derive(Debug, Clone, clap::Args)]
pub struct SubmitArgs {
    /// Print the script and the sbatch command; submit nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Folder of the sbatch script.
    #[arg(long, default_value = "slurm", value_name = "DIR")]
    pub script_dir: PathBuf,
    /// The trldm binary the jobs run (default: $TRLDM_BIN or this one).
    #[arg(long, value_name = "PATH")]
    pub trldm: Option<PathBuf>,
}

impl SubmitArgs {
    /// Checks sbatch (unless a dry run) and resolves the options.
    fn options(self) -> Result<SubmitOptions> {
        if !self.dry_run {
            crate::sweep::slurm::require_sbatch()?;
        }
        Ok(SubmitOptions {
            bin: trainer_bin(self.trldm.as_deref())?,
            script_dir: self.script_dir,
            dry_run: self.dry_run,
        })
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum SweepCmd {
    /// Expand the grid and print every run, the run count and a GPU-hour
    /// estimate (6·N·D). Reads only, unless `--write` (then it also lays out
    /// the results folder: run configs, runs.csv).
    ///
    /// Example: trldm sweep plan sweeps/examples/table3.toml --tflops 300
    Plan {
        #[command(flatten)]
        args: SweepArgs,
        /// Achieved TFLOP/s assumed per GPU for the estimate.
        #[arg(long, default_value_t = 200.0)]
        tflops: f64,
        /// Rows to print (0 = all).
        #[arg(long, default_value_t = 100)]
        rows: usize,
        /// Also write the results folder (run folders with config.toml, runs.csv).
        #[arg(long)]
        write: bool,
    },
    /// Run the sweep on this machine: N workers, each running one run at a
    /// time (`trldm train --resume` then `trldm eval`) with CPU threads or
    /// one GPU (CUDA_VISIBLE_DEVICES). Done runs are skipped, a failed run
    /// does not stop the others, Ctrl-C checkpoints and running the command
    /// again resumes.
    ///
    /// Example: trldm sweep run sweeps/cpu/mini.toml --workers 2
    ///          trldm sweep run table3.toml --devices 0,1,2,3
    Run {
        #[command(flatten)]
        args: SweepArgs,
        /// Runs at once (default: [local] workers, or one per device, or 1).
        #[arg(long)]
        workers: Option<usize>,
        /// GPU ids, comma-separated; worker i uses devices[i % len].
        #[arg(long, value_delimiter = ',')]
        devices: Option<Vec<String>>,
        /// CPU threads per worker (default: [local] threads, or cores / workers).
        #[arg(long)]
        threads: Option<usize>,
        /// The trldm binary that trains and evaluates (default: $TRLDM_BIN or this one).
        #[arg(long, value_name = "PATH")]
        trldm: Option<PathBuf>,
    },
    /// Write slurm/<name>.sbatch (a job array, `%throttle`, `--signal=B:USR1@N`,
    /// `--requeue`) and submit it with `sbatch --parsable`; records the job id
    /// in results/<name>/jobs.json. Returns at once.
    ///
    /// Example: trldm sweep submit sweeps/examples/table3.toml --dry-run
    Submit {
        #[command(flatten)]
        args: SweepArgs,
        #[command(flatten)]
        submit: SubmitArgs,
    },
    /// Count runs by state from the run folders (done, running, pending,
    /// queued, interrupted, failed, diverged), asking squeue about recorded
    /// jobs when it is installed. Never uses sacct.
    ///
    /// Example: trldm sweep status sweeps/examples/table3.toml --all
    Status {
        #[command(flatten)]
        args: SweepArgs,
        /// List every run (default: only failed, diverged and interrupted ones).
        #[arg(long)]
        all: bool,
        /// Print JSON (counts and every run).
        #[arg(long)]
        json: bool,
    },
    /// Resubmit only the runs that failed, were interrupted or never ran
    /// (they resume from their checkpoints); done, running and pending runs
    /// are left alone.
    ///
    /// Example: trldm sweep retry sweeps/examples/table3.toml
    Retry {
        #[command(flatten)]
        args: SweepArgs,
        #[command(flatten)]
        submit: SubmitArgs,
    },
    /// Cancel every SLURM job of the sweep (scancel); runs keep their
    /// checkpoints and are not requeued; `sweep retry` continues them.
    ///
    /// Example: trldm sweep cancel sweeps/examples/table3.toml
    Cancel {
        #[command(flatten)]
        args: SweepArgs,
    },
    /// Rename run folders made by an older trldm (whose run ids hashed the
    /// whole config) to the ids of today's rule (the settings that differ
    /// from the defaults), and rewrite runs.csv and array.txt. Safe to repeat.
    ///
    /// Example: trldm sweep migrate sweeps/cpu/table1.toml --results results/cpu-table1
    Migrate {
        #[command(flatten)]
        args: SweepArgs,
    },
    /// Inside a SLURM array task: train + eval one run, forwarding USR1/TERM
    /// to the trainer and requeueing on preemption (the sbatch script execs this).
    #[command(hide = true)]
    ExecRun {
        #[arg(long, value_name = "DIR")]
        run_dir: PathBuf,
        #[arg(long, default_value_t = 3)]
        max_requeues: u32,
        #[arg(long, value_name = "PATH")]
        trldm: Option<PathBuf>,
        /// Launch the trainer as data-parallel ranks: `srun` (in the job).
        #[arg(long, value_name = "srun")]
        launcher: Option<String>,
        #[arg(long, default_value_t = 1)]
        nodes: u32,
        #[arg(long, default_value_t = 1)]
        ranks_per_node: u32,
        #[arg(long)]
        gpu_per_rank: bool,
    },
    /// Time plan + sbatch generation and status on a synthetic grid; prints JSON.
    #[command(hide = true)]
    Bench {
        #[arg(long, default_value_t = 10_000)]
        runs: usize,
        /// Scratch folder (default: a new folder under the system temp dir, removed after).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Runs one `trldm sweep` command.
pub fn run(cmd: SweepCmd) -> Result<()> {
    match cmd {
        SweepCmd::Plan {
            args,
            tflops,
            rows,
            write,
        } => {
            let sweep = Sweep::load(&args.file, args.results.as_deref())?;
            print!("{}", sweep.plan_table(tflops, rows));
            if write {
                sweep.prepare()?;
                println!(
                    "wrote {} (runs.csv, run folders)",
                    sweep.folder.root.display()
                );
            }
            Ok(())
        }
        SweepCmd::Run {
            args,
            workers,
            devices,
            threads,
            trldm,
        } => {
            let sweep = Sweep::load(&args.file, args.results.as_deref())?;
            // One runner per sweep folder, locked before anything in it is
            // written: a second one would rewrite the plan and train the
            // same runs.
            sweep.folder.check_owner()?;
            let _lock = crate::util::lock_folder(&sweep.folder.root, "running this sweep")?;
            sweep.prepare()?;
            let local = &sweep.spec.local;
            let devices = devices.unwrap_or_else(|| local.devices.clone());
            let workers = workers
                .filter(|w| *w > 0)
                .or((local.workers > 0).then_some(local.workers))
                .unwrap_or(devices.len().max(1));
            let opts = LocalOptions {
                bin: trainer_bin(trldm.as_deref())?,
                workers,
                devices,
                threads: threads.unwrap_or(local.threads),
                ranks: local.ranks,
            };
            let s = run_local(&sweep.folder, &sweep.runs, &opts)?;
            println!(
                "sweep {}: {} done now, {} done before, {} stopped, {} diverged, {} failed",
                sweep.spec.name,
                s.done.len(),
                s.skipped,
                s.preempted.len(),
                s.diverged.len(),
                s.failed.len()
            );
            let file = args.file.display();
            if !s.preempted.is_empty() || crate::signals::stop_requested() {
                bail!("interrupted: {} runs checkpointed; run `trldm sweep run {file}` again to resume", s.preempted.len());
            }
            if !s.failed.is_empty() {
                let ids: Vec<&str> = s.failed.iter().map(|(i, _)| i.as_str()).collect();
                bail!(
                    "{} runs failed ({}); see <run>/train.log under {}; `trldm sweep run {file}` retries them",
                    s.failed.len(),
                    ids.join(" "),
                    sweep.folder.root.display()
                );
            }
            Ok(())
        }
        SweepCmd::Submit { args, submit } => {
            let sweep = Sweep::load(&args.file, args.results.as_deref())?;
            let opts = submit.options()?;
            sweep.submit(&opts, None, "submit")?;
            Ok(())
        }
        SweepCmd::Status { args, all, json } => {
            let sweep = Sweep::load(&args.file, args.results.as_deref())?;
            sweep.folder.check_owner()?;
            let report = sweep.status()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render(all));
            }
            Ok(())
        }
        SweepCmd::Retry { args, submit } => {
            let sweep = Sweep::load(&args.file, args.results.as_deref())?;
            sweep.folder.check_owner()?;
            let opts = submit.options()?;
            sweep.retry(&opts)?;
            Ok(())
        }
        SweepCmd::Cancel { args } => {
            let sweep = Sweep::load(&args.file, args.results.as_deref())?;
            sweep.folder.check_owner()?;
            let n = sweep.cancel()?;
            println!(
                "sweep {}: cancelled {n} SLURM job(s); checkpoints are kept, `trldm sweep retry {}` continues",
                sweep.spec.name,
                args.file.display()
            );
            Ok(())
        }
        SweepCmd::Migrate { args } => {
            let sweep = Sweep::load(&args.file, args.results.as_deref())?;
            let renamed = sweep.migrate()?;
            for (old, new) in &renamed {
                println!("{old} -> {new}");
            }
            println!(
                "sweep {}: {} run folders renamed in {}",
                sweep.spec.name,
                renamed.len(),
                sweep.folder.root.display()
            );
            Ok(())
        }
        SweepCmd::ExecRun {
            run_dir,
            max_requeues,
            trldm,
            launcher,
            nodes,
            ranks_per_node,
            gpu_per_rank,
        } => {
            let bin = trainer_bin(trldm.as_deref())?;
            let launch = match launcher.as_deref() {
                None => Launcher::default(),
                Some("srun") => Launcher::srun(nodes, ranks_per_node, gpu_per_rank),
                Some(other) => anyhow::bail!("--launcher {other}: only `srun` is supported"),
            };
            let code = exec_run(&bin, &RunDir::new(run_dir), max_requeues, &launch)?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        SweepCmd::Bench { runs, dir } => {
            let (dir, cleanup) = match dir {
                Some(d) => (d, false),
                None => (
                    std::env::temp_dir().join(format!("trldm-sweep-bench-{}", std::process::id())),
                    true,
                ),
            };
            let report = bench(runs, &dir);
            if cleanup {
                let _ = std::fs::remove_dir_all(&dir);
            }
            println!("{}", serde_json::to_string_pretty(&report?)?);
            Ok(())
        }
    }
}
