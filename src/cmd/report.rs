//! `trldm report`: tables (Markdown, LaTeX, CSV) and plots (PNG, SVG) of a sweep.
use crate::report::{self, PlotFormat, ReportOptions, TableFormat};
use anyhow::Result;
use std::path::PathBuf;

/// Tables and plots of a sweep: mean ± sample std over seeds per configuration.
#[derive(Debug, clap::Args)]
#[command(
    about = "Tables and plots of a sweep: mean ± sample std over seeds per configuration",
    long_about = "Reads every run folder of results/<sweep>/ (config.toml, status.json, eval.csv, \
train.csv), groups the runs by their config without the seed, and writes tables (mean ± sample \
std, ddof = 1, with n and failed seeds shown) as tables.md, tables.tex (booktabs, best in bold) \
and tables.csv, plus plots (metric vs hyperparameter with error bars, learning curves with a \
±std band) as PNG and SVG. Failed, diverged and unfinished runs are counted in their cell, never \
dropped. Table and plot layouts come from [[report.table]] / [[report.plot]] in the sweep's \
sweep.toml (see docs/REPORT.md).",
    after_help = "Examples:\n  trldm report results/maze_lr\n  trldm report results/maze_lr --out paper/ --format tex --plots svg\n  trldm report results/maze_lr --plots none"
)]
pub struct ReportArgs {
    /// The sweep folder (results/<sweep>/).
    #[arg(required_unless_present_any = ["bench", "trace"])]
    pub dir: Option<PathBuf>,
    /// Where to write (default: the sweep folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Table formats, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "md,tex,csv")]
    pub format: Vec<TableFormat>,
    /// Plot formats, comma-separated, or `none`.
    #[arg(long, value_delimiter = ',', default_value = "png,svg", value_parser = parse_plot_format)]
    pub plots: Vec<Option<PlotFormat>>,
    /// Plot a `trldm eval --trace` CSV instead (next to it, or into --out).
    #[arg(long, value_name = "FILE", conflicts_with = "dir")]
    pub trace: Option<PathBuf>,
    /// Benchmark: time the report over N synthetic runs and print JSON.
    #[arg(long, hide = true, value_name = "N")]
    pub bench: Option<usize>,
}

fn parse_plot_format(s: &str) -> std::result::Result<Option<PlotFormat>, String> {
    match s {
        "png" => Ok(Some(PlotFormat::Png)),
        "svg" => Ok(Some(PlotFormat::Svg)),
        "none" => Ok(None),
        _ => Err(format!("`{s}`: expected png, svg or none")),
    }
}

/// Runs `trldm report`.
pub fn run(args: ReportArgs) -> Result<()> {
    if let Some(n) = args.bench {
        let r = report::bench(n)?;
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    if let Some(file) = &args.trace {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "trace".into());
        let out = match &args.out {
            Some(o) => o.clone(),
            None => file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".")),
        };
        let (png, svg) = (
            args.plots.contains(&Some(PlotFormat::Png)),
            args.plots.contains(&Some(PlotFormat::Svg)),
        );
        for plot in crate::report::plot::trace_plots(file, &stem)? {
            for p in crate::report::plot::render_files(&plot, &out, png, svg)? {
                println!("wrote {}", p.display());
            }
        }
        return Ok(());
    }
    let Some(dir) = args.dir else {
        anyhow::bail!("trldm report: give the sweep folder, e.g. `trldm report results/maze_lr`");
    };
    let opts = ReportOptions {
        out: args.out,
        tables: args.format,
        plots: args.plots.into_iter().flatten().collect(),
    };
    let s = report::report(&dir, &opts)?;
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    for k in &s.skipped {
        eprintln!("skipped: {k}");
    }
    println!(
        "{}: {} runs in {} configurations, {} counted as failed, {} folders skipped",
        dir.display(),
        s.runs,
        s.groups,
        s.failed,
        s.skipped.len()
    );
    for p in &s.written {
        println!("wrote {}", p.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ReportArgs,
    }

    #[test]
    fn parses_formats_and_requires_dir() {
        let c = Cli::try_parse_from([
            "trldm",
            "results/x",
            "--format",
            "tex,csv",
            "--plots",
            "none",
        ])
        .unwrap();
        assert_eq!(c.args.format, vec![TableFormat::Tex, TableFormat::Csv]);
        assert_eq!(c.args.plots, vec![None]);
        assert!(Cli::try_parse_from(["trldm"]).is_err());
        assert!(Cli::try_parse_from(["trldm", "--bench", "10"]).is_ok());
        assert!(Cli::try_parse_from(["trldm", "x", "--plots", "gif"]).is_err());
    }
}
