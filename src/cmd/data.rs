//! `trldm data gen|check|stats|convert`: puzzle data sets (Sec. 9.2).
use crate::tasks::{maze, sudoku, LoadOptions, Loaded};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum DataCmd {
    /// Generate puzzles with their solutions into a CSV (source,question,answer,rating).
    #[command(subcommand)]
    Gen(GenCmd),
    /// Verify every row of a data file and count problems by kind (exit 1 if any).
    #[command(
        after_help = "Example:\n  trldm data check ../shared/data/sudoku/forum_hardest_1106.csv\n  trldm data check data/maze30/test.csv --task maze"
    )]
    Check(FileArgs),
    /// Describe a data file: sizes and clue-count or path-length histograms.
    #[command(after_help = "Example:\n  trldm data stats ../shared/data/sudoku/17clue_1000.csv")]
    Stats(FileArgs),
    /// Convert a plain Sudoku list (one puzzle per line, # comments) to CSV with solutions.
    #[command(after_help = "Example:\n  trldm data convert puzzles.txt puzzles.csv")]
    Convert(ConvertArgs),
}

#[derive(Subcommand, Debug)]
pub enum GenCmd {
    /// Sudoku puzzles with a unique solution (seeded; target clue count or difficulty band).
    #[command(
        after_help = "Example:\n  trldm data gen sudoku --count 1000 --clues 25 --out data/sudoku/train.csv"
    )]
    Sudoku(GenSudoku),
    /// Searchformer-style mazes labelled with a shortest path (seeded).
    #[command(
        after_help = "Example:\n  trldm data gen maze --preset 30x30-hard --count 1000 --out data/maze30/train.csv\n  trldm data gen maze --size 9 --min-path-len 8 --count 5000 --out data/maze9/train.csv"
    )]
    Maze(GenMaze),
}

#[derive(Args, Debug)]
pub struct GenSudoku {
    /// Box size (2 = 4x4, 3 = 9x9, 4 = 16x16).
    #[arg(long = "box", default_value_t = 3)]
    pub box_size: usize,
    /// Target number of clues.
    #[arg(long, default_value_t = 25)]
    pub clues: usize,
    /// Keep only puzzles whose solver needs at least this many guesses.
    #[arg(long)]
    pub min_guesses: Option<u64>,
    /// Keep only puzzles whose solver needs at most this many guesses.
    #[arg(long)]
    pub max_guesses: Option<u64>,
    #[command(flatten)]
    pub common: GenCommon,
}

#[derive(Args, Debug)]
pub struct GenMaze {
    /// A named preset: 9x9, 20x20, 30x30-hard (other flags then override it).
    #[arg(long)]
    pub preset: Option<String>,
    /// Square size (sets height and width).
    #[arg(long)]
    pub size: Option<usize>,
    #[arg(long)]
    pub height: Option<usize>,
    #[arg(long)]
    pub width: Option<usize>,
    /// Wall fraction range [wall_min, wall_max].
    #[arg(long)]
    pub wall_min: Option<f64>,
    #[arg(long)]
    pub wall_max: Option<f64>,
    /// Minimum shortest-path length.
    #[arg(long)]
    pub min_path_len: Option<usize>,
    #[command(flatten)]
    pub common: GenCommon,
}

/// What every generator takes: how many, the seed, where to write.
#[derive(Args, Debug)]
pub struct GenCommon {
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output CSV.
    #[arg(long)]
    pub out: PathBuf,
}

/// Which task a file holds.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskArg {
    Auto,
    Sudoku,
    Maze,
}

#[derive(Args, Debug)]
pub struct FileArgs {
    /// A CSV (source,question,answer,rating) or, for Sudoku, a plain puzzle list.
    pub file: PathBuf,
    #[arg(long, value_enum, default_value_t = TaskArg::Auto)]
    pub task: TaskArg,
    /// Continue past bad rows and report how many were skipped (stats only; check always continues).
    #[arg(long)]
    pub skip_invalid: bool,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Plain Sudoku list (or CSV without answers).
    pub input: PathBuf,
    /// Output CSV with solved answers.
    pub output: PathBuf,
    /// Continue past bad rows and report how many were skipped.
    #[arg(long)]
    pub skip_invalid: bool,
}

pub fn run(cmd: DataCmd) -> Result<i32> {
    match cmd {
        DataCmd::Gen(GenCmd::Sudoku(g)) => gen_sudoku(&g).map(|_| 0),
        DataCmd::Gen(GenCmd::Maze(g)) => gen_maze(&g).map(|_| 0),
        DataCmd::Check(a) => check(&a),
        DataCmd::Stats(a) => stats(&a).map(|_| 0),
        DataCmd::Convert(a) => convert(&a).map(|_| 0),
    }
}

fn gen_sudoku(g: &GenSudoku) -> Result<()> {
    if !sudoku::BOX_SIZES.contains(&g.box_size) {
        bail!(
            "--box {}: supported box sizes are {:?}",
            g.box_size,
            sudoku::BOX_SIZES
        );
    }
    let opts = sudoku::GenOptions {
        n: g.box_size,
        clues: g.clues,
        min_guesses: g.min_guesses,
        max_guesses: g.max_guesses,
    };
    let t0 = std::time::Instant::now();
    let pairs = sudoku::generate_many(&opts, g.common.count, g.common.seed);
    if pairs.len() < g.common.count {
        eprintln!(
            "warning: only {} of {} puzzles fall in the difficulty band; widen --min-guesses/--max-guesses",
            pairs.len(),
            g.common.count
        );
    }
    sudoku::save_csv(
        &g.common.out,
        &pairs,
        g.box_size,
        &format!("trldm-gen-sudoku-seed{}", g.common.seed),
    )?;
    println!(
        "wrote {} puzzles to {} in {:.2} s",
        pairs.len(),
        g.common.out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn gen_maze(g: &GenMaze) -> Result<()> {
    let mut opts = match &g.preset {
        Some(p) => maze::GenOptions::preset(p)
            .with_context(|| format!("--preset {p}: known presets are 9x9, 20x20, 30x30-hard"))?,
        None => maze::GenOptions::searchformer(g.size.unwrap_or(9), g.size.unwrap_or(9)),
    };
    if let Some(s) = g.size {
        opts.h = s;
        opts.w = s;
    }
    opts.h = g.height.unwrap_or(opts.h);
    opts.w = g.width.unwrap_or(opts.w);
    opts.wall_min = g.wall_min.unwrap_or(opts.wall_min);
    opts.wall_max = g.wall_max.unwrap_or(opts.wall_max.max(opts.wall_min));
    opts.min_path_len = g.min_path_len.unwrap_or(opts.min_path_len);
    opts.validate()?;
    let t0 = std::time::Instant::now();
    let pairs = maze::generate_many(&opts, g.common.count, g.common.seed)?;
    let rows: Vec<_> = pairs
        .iter()
        .map(|p| {
            let len = maze::shortest_len(&p.question, opts.h, opts.w).unwrap_or(0);
            maze::to_row(
                p,
                &format!("trldm-gen-maze-seed{}", g.common.seed),
                &len.to_string(),
            )
        })
        .collect();
    crate::tasks::csvio::write_rows(&g.common.out, &rows)?;
    println!(
        "wrote {} mazes to {} in {:.2} s",
        pairs.len(),
        g.common.out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Sudoku or maze, from the flag or from the file's first question.
fn detect(path: &Path, task: TaskArg) -> Result<TaskArg> {
    if task != TaskArg::Auto {
        return Ok(task);
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mazey = text
        .lines()
        .filter(|l| !l.starts_with('#') || l.contains(','))
        .nth(1)
        .is_some_and(|row| row.contains('#') || row.contains('S') && row.contains('G'));
    Ok(if mazey {
        TaskArg::Maze
    } else {
        TaskArg::Sudoku
    })
}

fn load(path: &Path, task: TaskArg, opts: LoadOptions) -> Result<(TaskArg, Loaded)> {
    let task = detect(path, task)?;
    let loaded = match task {
        TaskArg::Maze => maze::load_csv(path, None, opts)?,
        _ => sudoku::load_any(path, None, opts)?,
    };
    Ok((task, loaded))
}

fn report_skipped(l: &Loaded) {
    if l.n_skipped() == 0 {
        return;
    }
    eprintln!("skipped {} invalid rows:", l.n_skipped());
    for (kind, n) in &l.skipped {
        eprintln!("  {}: {n}", kind.name());
    }
    for e in &l.examples {
        eprintln!("  e.g. {e}");
    }
}

fn check(a: &FileArgs) -> Result<i32> {
    let opts = LoadOptions {
        skip_invalid: true,
        verify: true,
    };
    let t0 = std::time::Instant::now();
    let (task, loaded) = load(&a.file, a.task, opts)?;
    let total = loaded.pairs.len() + loaded.n_skipped();
    println!(
        "{}: {} rows ({:?}), {} ok, {} with problems ({:.2} s)",
        a.file.display(),
        total,
        task,
        loaded.pairs.len(),
        loaded.n_skipped(),
        t0.elapsed().as_secs_f64()
    );
    for (kind, n) in &loaded.skipped {
        println!("  {}: {n}", kind.name());
    }
    for e in &loaded.examples {
        println!("  {e}");
    }
    Ok(if loaded.n_skipped() == 0 { 0 } else { 1 })
}

fn stats(a: &FileArgs) -> Result<()> {
    let opts = LoadOptions {
        skip_invalid: a.skip_invalid,
        verify: false,
    };
    let (task, loaded) = load(&a.file, a.task, opts)?;
    report_skipped(&loaded);
    let Some(first) = loaded.pairs.first() else {
        bail!("{}: no valid rows", a.file.display());
    };
    let text = match task {
        TaskArg::Maze => {
            let side = maze::infer_square(first.question.len()).unwrap_or(0);
            maze::stats(&loaded, side, side)
        }
        _ => sudoku::stats(
            &loaded,
            sudoku::infer_box(first.question.len()).unwrap_or(3),
        ),
    };
    println!("{}\n{text}", a.file.display());
    Ok(())
}

fn convert(a: &ConvertArgs) -> Result<()> {
    let opts = LoadOptions {
        skip_invalid: a.skip_invalid,
        verify: true,
    };
    let loaded = sudoku::load_any(&a.input, None, opts)?;
    report_skipped(&loaded);
    let Some(first) = loaded.pairs.first() else {
        bail!("{}: no valid puzzles", a.input.display());
    };
    let n = sudoku::infer_box(first.question.len()).unwrap_or(3);
    let rows: Vec<_> = loaded
        .pairs
        .iter()
        .zip(&loaded.sources)
        .map(|(p, s)| sudoku::to_row(p, n, s, ""))
        .collect();
    crate::tasks::csvio::write_rows(&a.output, &rows)?;
    println!(
        "wrote {} puzzles with solutions to {}",
        rows.len(),
        a.output.display()
    );
    Ok(())
}
