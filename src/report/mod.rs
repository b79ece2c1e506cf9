//! `trldm report results/<sweep>`: tables and plots from a sweep's run folders.
//!
//! It reads every run folder (`config.toml`, `status.json`, `eval.csv`,
//! `train.csv`; see `docs/RUNS.md`), groups the runs by their config without
//! `seed` (and `name`), and summarises each group as **mean ± sample std
//! (ddof = 1) over seeds**, with `n` (successful seeds) and the failures
//! shown. A run that failed, diverged, did not finish, has no (or a bad)
//! eval.csv, or is listed in runs.csv without a folder stays in its group as
//! a failure: `67.2 ± 1.3 (n=2, 1 failed)`. Nothing is dropped silently:
//! tables.md lists every unsuccessful run with its reason, and folders that
//! cannot be read at all are listed as skipped.
//!
//! Outputs (in the sweep folder, or `--out`), all written atomically:
//! `tables.md`, `tables.tex` (booktabs; best mean per column in bold),
//! `tables.csv` (long format `table,row,metric,mean,std,n,failed,ci95,p_vs_ref`, in
//! eval.csv's units), and `<plot>.png` / `<plot>.svg` (1000×700).
//!
//! Percent metrics (`exact`, `valid`, `optimal`, `token_acc`, fractions in
//! eval.csv) are shown ×100 with one decimal like the paper, `len_ratio`
//! with three decimals. `final_loss` (last `loss` of train.csv) is a derived
//! metric usable as a column.
//!
//! # Specs in sweep.toml
//!
//! ```toml
//! [grid]                     # dotted keys -> lists; these label the groups
//! "model.n_rec" = [2, 4, 8]
//! "train.lr" = [1e-4, 3e-4]
//!
//! [[report.table]]
//! name = "table1"            # CSV `table` column, LaTeX \label{tab:table1}
//! caption = "20x20 Maze results (20K training steps)."
//! where = { "task.kind" = "maze" }          # optional filter for all rows
//! columns = ["exact", "valid", "optimal"]   # eval.csv metrics (or final_loss;
//!                                           # "exact@n4" reads <run>/eval_n4.csv)
//! column_labels = ["EM (%)", "Valid (%)", "Optimal (%)"]  # optional
//! row_header = "Model"                      # optional, header of the label column
//! rows = [                                  # explicit rows, each one configuration
//!   { label = "Vanilla Transformer", where = { "model.variant" = "vanilla" } },
//!   { label = "TR-LDM ($n_{\\text{rec}}=2$)", where = { "model.variant" = "trldm", "model.n_rec" = 2 } },
//! ]
//! bold = { exact = "max" }   # per metric: "max" | "min" | "none" (defaults by metric)
//! lower_is_better = []       # shorthand for bold = "min"
//!
//! [[report.table]]
//! name = "table5"
//! row_key = ["model.n_rec", "model.d", "train.lr"]   # one row per combination ...
//! row_label = "TR-LDM ($n_{rec}$={model.n_rec}, d={model.d}, lr={train.lr})" # ... optional label template
//! # or, with one row_key: row_labels = { "2" = "Baseline", "4" = "Deeper" }
//! columns = ["valid", "optimal", "len_ratio"]
//!
//! [[report.plot]]
//! kind = "metric"            # final metric vs a hyperparameter, error bars
//! x = "train.lr"             # log x automatic when the key contains `lr` (or log_x = true)
//! y = "exact"
//! series = "model.n_rec"     # optional; default: every other key that varies
//!
//! [[report.plot]]
//! kind = "curve"             # train.csv column vs step, mean ± std band
//! y = "loss"                 # or eval_exact, eval_valid, ...
//! where = { "model.d" = 256 }
//! max_series = 10            # the best lines kept (default 10), noted on the plot
//! ```
//!
//! A `where` value may be a list ("any of"); numbers match numerically
//! (`1e-4` = `0.0001`). Each row must pick exactly one configuration: a row
//! matching none or several is an error naming the values found or the keys
//! that differ. Without `[[report.table]]` one table lists every group with
//! the label keys as leading columns; without `[[report.plot]]` the report
//! draws the loss curves and, per numeric label key, `exact` against it.
//! Label keys are the `[grid]` keys, then any other key whose value differs
//! across runs (all varying keys when sweep.toml has no grid).
pub mod collect;
pub mod fixture;
pub mod format;
pub mod plot;
pub mod spec;
pub mod stats;
pub mod table;
pub mod value;

#[cfg(test)]
mod tests;

use anyhow::{Context, Result};
use collect::Sweep;
use serde::Serialize;
use spec::{PlotKind, SweepSpec};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A table output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableFormat {
    Md,
    Tex,
    Csv,
}

/// A plot output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlotFormat {
    Png,
    Svg,
}

/// What to write, and where.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Output folder (default: the sweep folder).
    pub out: Option<PathBuf>,
    pub tables: Vec<TableFormat>,
    /// Empty = no plots.
    pub plots: Vec<PlotFormat>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            out: None,
            tables: vec![TableFormat::Md, TableFormat::Tex, TableFormat::Csv],
            plots: vec![PlotFormat::Png, PlotFormat::Svg],
        }
    }
}

/// What a report found and wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ReportSummary {
    pub runs: usize,
    pub groups: usize,
    /// Runs counted as failures in their cell.
    pub failed: usize,
    /// Folders that could not be read as runs, with the reason.
    pub skipped: Vec<String>,
    pub warnings: Vec<String>,
    pub written: Vec<PathBuf>,
    /// Seconds spent reading runs, building tables and drawing plots.
    pub seconds: Timing,
}

/// Wall time per phase.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Timing {
    pub collect: f64,
    pub tables: f64,
    pub plots: f64,
    pub total: f64,
}

/// Reads `sweep.toml` (if any) and every run of a sweep folder.
pub fn load(dir: &Path) -> Result<Sweep> {
    let spec = SweepSpec::load(&dir.join("sweep.toml"))?;
    let mut curve_cols: Vec<String> = spec
        .plots
        .iter()
        .filter(|p| p.kind == PlotKind::Curve)
        .map(|p| p.y.clone())
        .collect();
    curve_cols.push("loss".into());
    curve_cols.sort();
    curve_cols.dedup();
    collect::load(dir, spec, &curve_cols)
}

/// Writes the tables and plots of `dir` (see the module docs). Every table
/// and plot is built (and checked) before anything is written.
pub fn report(dir: &Path, opts: &ReportOptions) -> Result<ReportSummary> {
    let t0 = Instant::now();
    let sweep = load(dir)?;
    let t1 = Instant::now();
    let tables = table::build_all(&sweep)?;
    let plots = if opts.plots.is_empty() {
        Vec::new()
    } else {
        plot::build_all(&sweep)?
    };
    let out = opts.out.clone().unwrap_or_else(|| dir.to_path_buf());
    std::fs::create_dir_all(&out).with_context(|| format!("{}: cannot create", out.display()))?;
    let mut written = Vec::new();
    for f in &opts.tables {
        let (file, text) = match f {
            TableFormat::Md => ("tables.md", markdown_document(&sweep, &tables)),
            TableFormat::Tex => ("tables.tex", table::latex(&tables)),
            TableFormat::Csv => ("tables.csv", table::csv(&tables)?),
        };
        let path = out.join(file);
        crate::util::write_atomic(&path, text.as_bytes())?;
        written.push(path);
    }
    let t2 = Instant::now();
    let png = opts.plots.contains(&PlotFormat::Png);
    let svg = opts.plots.contains(&PlotFormat::Svg);
    for p in &plots {
        written.extend(plot::render_files(p, &out, png, svg)?);
    }
    let t3 = Instant::now();
    Ok(ReportSummary {
        runs: sweep.runs.len(),
        groups: sweep.groups.len(),
        failed: sweep.runs.iter().filter(|r| !r.ok()).count(),
        skipped: sweep.skipped.clone(),
        warnings: sweep.warnings.clone(),
        written,
        seconds: Timing {
            collect: (t1 - t0).as_secs_f64(),
            tables: (t2 - t1).as_secs_f64(),
            plots: (t3 - t2).as_secs_f64(),
            total: (t3 - t0).as_secs_f64(),
        },
    })
}

/// Unsuccessful runs listed in tables.md (more are counted, not listed).
const MAX_LISTED: usize = 200;

/// tables.md: a summary line, every table, then the unsuccessful runs and
/// the skipped folders with their reasons.
pub fn markdown_document(sweep: &Sweep, tables: &[table::Table]) -> String {
    let failed: Vec<&collect::Run> = sweep.runs.iter().filter(|r| !r.ok()).collect();
    let mut s = format!(
        "# Report: {}\n\n{} runs in {} configurations; {} not successful; {} folders skipped.\n\n",
        sweep.name,
        sweep.runs.len(),
        sweep.groups.len(),
        failed.len(),
        sweep.skipped.len()
    );
    s.push_str(&table::markdown(tables));
    if !failed.is_empty() {
        s.push_str(
            "## Runs counted as failed\n\n| run | seed | state | reason |\n|---|---:|---|---|\n",
        );
        for r in failed.iter().take(MAX_LISTED) {
            let f = r
                .failure
                .as_ref()
                .map(|f| (f.state.as_str(), f.reason.as_str()))
                .unwrap_or_default();
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                format::markdown(&r.id),
                r.seed.map(|x| x.to_string()).unwrap_or_default(),
                f.0,
                format::markdown(f.1)
            ));
        }
        if failed.len() > MAX_LISTED {
            s.push_str(&format!("\n… and {} more.\n", failed.len() - MAX_LISTED));
        }
        s.push('\n');
    }
    if !sweep.skipped.is_empty() {
        s.push_str("## Folders skipped (not counted anywhere)\n\n");
        for k in &sweep.skipped {
            s.push_str(&format!("- {}\n", format::markdown(k)));
        }
        s.push('\n');
    }
    s
}

/// Result of [`bench`].
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub runs: usize,
    pub groups: usize,
    pub train_rows_per_run: usize,
    /// Seconds of the report itself (reading, tables, plots, writing).
    pub report_s: f64,
    /// CPU seconds (user + system, all threads) the report used; with idle
    /// cores, report_s is about this divided by the cores used.
    pub report_cpu_s: Option<f64>,
    pub phases_s: Timing,
    pub files_written: usize,
    pub fixture_s: f64,
}

/// Creates `n` synthetic runs (5 seeds per configuration over a grid of lr,
/// n_rec, d and steps; 2 % failed or diverged) in a temp folder and times
/// `report` over them with the default outputs.
pub fn bench(n: usize) -> Result<BenchResult> {
    use crate::config::RunConfig;
    use crate::run::State;
    let tmp = std::env::temp_dir().join(format!("trldm-report-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let t0 = Instant::now();
    let seeds = 5;
    let rows = 20;
    let lrs = [1e-4, 3e-4, 1e-3, 3e-3];
    let n_recs = [2, 4, 8, 16];
    let ds = [64, 128, 256];
    std::fs::write(
        tmp.join("sweep.toml"),
        "seeds = [0, 1, 2, 3, 4]\n[grid]\n\"train.lr\" = [1e-4, 3e-4, 1e-3, 3e-3]\n\"model.n_rec\" = [2, 4, 8, 16]\n\"model.d\" = [64, 128, 256]\n\"train.steps\" = [1000]\n",
    )?;
    let mut cfg = RunConfig::default();
    for i in 0..n {
        let g = i / seeds;
        cfg.seed = (i % seeds) as u64;
        cfg.train.lr = lrs[g % 4];
        cfg.model.n_rec = n_recs[(g / 4) % 4];
        cfg.model.d = ds[(g / 16) % 3];
        cfg.train.steps = 1000 * (1 + g / 48);
        let exact = 0.3 + 0.05 * (g % 7) as f64 + 0.01 * (i % seeds) as f64;
        let state = match i % 50 {
            7 => State::Failed,
            31 => State::Diverged,
            _ => State::Done,
        };
        let eval = fixture::maze_eval(exact);
        let train = fixture::curve(rows, 0.2 + 0.01 * (g % 5) as f64, exact);
        fixture::write_run(
            &tmp,
            &fixture::FixtureRun {
                id: &format!("run{i:05}"),
                config: &cfg,
                state,
                eval: (state == State::Done).then_some(&eval[..]),
                train: &train,
            },
        )?;
    }
    let fixture_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let cpu0 = cpu_seconds();
    let summary = report(&tmp, &ReportOptions::default());
    let report_s = t1.elapsed().as_secs_f64();
    let report_cpu_s = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    let _ = std::fs::remove_dir_all(&tmp);
    let summary = summary?;
    Ok(BenchResult {
        runs: summary.runs,
        groups: summary.groups,
        train_rows_per_run: rows,
        report_s,
        report_cpu_s,
        phases_s: summary.seconds,
        files_written: summary.written.len(),
        fixture_s,
    })
}

/// User + system CPU seconds of this process (Linux `/proc/self/stat`).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the `(comm)`; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
