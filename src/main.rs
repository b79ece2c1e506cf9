//! The `trldm` command line: parses arguments and dispatches to the library.
use clap::{Parser, Subcommand};
use trldm::cmd;

#[derive(Parser, Debug)]
#[command(
    name = "trldm",
    version,
    about = "Tiny Recursive Language Diffusion Models: data, training, sampling, evaluation",
    after_help = "Start with:\n  trldm doctor\n  trldm data gen maze --size 9 --count 1000 --out data/maze9/train.csv\n  trldm train --config sweeps/cpu/maze9.toml --run-dir runs/maze9"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print libtorch/CUDA/thread facts and which cluster tools are on PATH.
    #[command(after_help = "Example:\n  trldm doctor")]
    Doctor,
    /// Generate, check, describe and convert puzzle data sets.
    #[command(subcommand)]
    Data(cmd::data::DataCmd),
    Train(cmd::run::TrainArgs),
    Eval(cmd::run::EvalArgs),
    Solve(cmd::run::SolveArgs),
    Export(cmd::run::ExportArgs),
    /// Hyperparameter sweeps: TOML grids run locally or as SLURM job arrays.
    #[command(subcommand)]
    Sweep(cmd::sweep::SweepCmd),
    Report(cmd::report::ReportArgs),
    /// The paper's theory measured on a trained run (Prop. 1, Thm. 1).
    #[command(subcommand)]
    Theory(cmd::theory::TheoryCmd),
    /// Throughput benchmarks (one JSON line each).
    #[command(subcommand)]
    Bench(cmd::bench::BenchCmd),
}

fn main() {
    let cli = Cli::parse();
    // A closed stdout (`trldm data stats F | head -1`) ends the command
    // quietly, as for any Unix tool; a trainer keeps SIGPIPE ignored and
    // goes on training when its terminal or pipe goes away (it logs to files).
    if !matches!(cli.cmd, Command::Train(_)) {
        // SAFETY: restoring the default disposition of one signal at start-up.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    if std::env::var_os("TRLDM_NO_MALLOPT").is_none() {
        trldm::util::keep_freed_memory();
    }
    let result = match cli.cmd {
        Command::Doctor => cmd::doctor::run().map(|_| 0),
        Command::Data(c) => cmd::data::run(c),
        Command::Train(a) => trldm::signals::install().and_then(|_| {
            cmd::run::train(
                a,
                Some(std::sync::Arc::new(|_| trldm::signals::stop_requested())),
            )
        }),
        Command::Eval(a) => cmd::run::eval(a).map(|_| 0),
        Command::Solve(a) => cmd::run::solve(a).map(|_| 0),
        Command::Export(a) => cmd::run::export(a).map(|_| 0),
        Command::Sweep(c) => cmd::sweep::run(c).map(|_| 0),
        Command::Report(a) => cmd::report::run(a).map(|_| 0),
        Command::Bench(c) => cmd::bench::run(c).map(|_| 0),
        Command::Theory(c) => cmd::theory::run(c).map(|_| 0),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            trldm::say!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
