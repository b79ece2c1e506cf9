//! End-to-end tests on fixture sweep folders built in temp dirs.
use super::fixture::{curve, maze_eval, write_run, FixtureRun};
use super::*;
use crate::config::RunConfig;
use crate::run::State;
use std::path::Path;

fn cfg(variant: &str, n_rec: usize, lr: f64, seed: u64) -> RunConfig {
    let mut c = RunConfig::default();
    c.model.variant = variant.parse().unwrap();
    c.model.n_rec = n_rec;
    c.train.lr = lr;
    c.seed = seed;
    c.name = format!("{variant}-{n_rec}-{seed}");
    c
}

/// One run with `exact` (and the derived maze metrics), or a failure.
fn run(dir: &Path, id: &str, c: &RunConfig, state: State, exact: f64) {
    let eval = maze_eval(exact);
    let train = curve(10, 0.3 + exact / 10.0, exact);
    write_run(
        dir,
        &FixtureRun {
            id,
            config: c,
            state,
            eval: (state == State::Done).then_some(&eval[..]),
            train: &train,
        },
    )
    .unwrap();
}

/// Two TR-LDM configurations (n_rec 2 and 4) and a vanilla baseline, three
/// seeds each; n_rec = 4 has one failed seed.
fn fixture_sweep(sweep_toml: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("sweep.toml"), sweep_toml).unwrap();
    for (s, ex) in [0.6, 0.7, 0.8].iter().enumerate() {
        run(
            d,
            &format!("a{s}"),
            &cfg("trldm", 2, 1e-3, s as u64),
            State::Done,
            *ex,
        );
    }
    run(d, "b0", &cfg("trldm", 4, 1e-3, 0), State::Done, 0.5);
    run(d, "b1", &cfg("trldm", 4, 1e-3, 1), State::Failed, 0.0);
    run(d, "b2", &cfg("trldm", 4, 1e-3, 2), State::Done, 0.6);
    for (s, ex) in [0.3, 0.35, 0.4].iter().enumerate() {
        run(
            d,
            &format!("v{s}"),
            &cfg("vanilla", 2, 1e-3, s as u64),
            State::Done,
            *ex,
        );
    }
    tmp
}

const TABLES: &str = r#"
seeds = [0, 1, 2]
[grid]
"model.variant" = ["trldm", "vanilla"]
"model.n_rec" = [2, 4]

[[report.table]]
name = "table1"
caption = "20×20 Maze results (20K training steps). EM: exact match & 100% of path_tokens."
columns = ["exact", "valid", "optimal"]
rows = [
  { label = "Vanilla Transformer", where = { "model.variant" = "vanilla" } },
  { label = "TR-LDM ($n_{\\text{rec}}=4$)", where = { "model.variant" = "trldm", "model.n_rec" = 4 } },
  { label = "TR-LDM (Baseline; $n_{\\text{rec}}=2$)", where = { model.variant = "trldm", model.n_rec = 2 } },
]

[[report.table]]
name = "nrec"
where = { "model.variant" = "trldm" }
row_key = "model.n_rec"
row_label = "TR-LDM (n_rec={model.n_rec})"
columns = ["valid", "len_ratio", "final_loss"]
"#;

fn opts(out: &Path) -> ReportOptions {
    ReportOptions {
        out: Some(out.to_path_buf()),
        ..Default::default()
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn means_and_stds_equal_hand_computed_values() {
    let tmp = fixture_sweep(TABLES);
    let sweep = load(tmp.path()).unwrap();
    assert_eq!((sweep.runs.len(), sweep.groups.len()), (9, 3));
    let tables = table::build_all(&sweep).unwrap();
    let t1 = &tables[0];
    assert_eq!(t1.rows.len(), 3);
    // Baseline exact: 0.6 0.7 0.8 -> mean 0.7, sample std 0.1.
    let base = &t1.rows[2].cells[0];
    assert!((base.mean.unwrap() - 0.7).abs() < 1e-12);
    assert!((base.std.unwrap() - 0.1).abs() < 1e-12);
    assert_eq!((base.n, base.failed), (3, 0));
    // Vanilla valid: exact + 0.1 = 0.4 0.45 0.5 -> mean 0.45, std 0.05.
    let van = &t1.rows[0].cells[1];
    assert!((van.mean.unwrap() - 0.45).abs() < 1e-12);
    assert!((van.std.unwrap() - 0.05).abs() < 1e-12);
    // n_rec = 4: 0.5, 0.6 and a failed seed -> mean 0.55, std sqrt(0.005).
    let b = &t1.rows[1].cells[0];
    assert!((b.mean.unwrap() - 0.55).abs() < 1e-12);
    assert!((b.std.unwrap() - 0.005f64.sqrt()).abs() < 1e-12);
    assert_eq!((b.n, b.failed), (2, 1));
    // row_key table: len_ratio = 0.98 * exact, final_loss from train.csv.
    let t2 = &tables[1];
    assert_eq!(t2.rows[0].lead, vec!["TR-LDM (n_rec=2)".to_string()]);
    assert!((t2.rows[0].cells[1].mean.unwrap() - 0.98 * 0.7).abs() < 1e-12);
    assert!((t2.rows[0].cells[2].mean.unwrap() - (0.3 + 0.07)).abs() < 1e-9);
}

#[test]
fn failed_seed_shows_n2_and_one_failure_in_every_format() {
    let tmp = fixture_sweep(TABLES);
    let out = tmp.path().join("out");
    let s = report(
        tmp.path(),
        &ReportOptions {
            plots: vec![],
            ..opts(&out)
        },
    )
    .unwrap();
    assert_eq!((s.runs, s.groups, s.failed), (9, 3, 1));
    let md = read(&out.join("tables.md"));
    // 55.0 ± 7.1 (sqrt(0.005) * 100 = 7.07).
    assert!(
        md.contains("| TR-LDM ($n_{\\text{rec}}=4$) | 55.0 ± 7.1 (n=2, 1 failed) |"),
        "{md}"
    );
    assert!(md.contains("| **70.0** ± 10.0 (n=3) |"), "{md}");
    assert!(
        md.contains("| b1 | 1 | failed | CUDA error: out of memory"),
        "{md}"
    );
    assert!(md.contains("mean ± sample std (ddof = 1)"), "{md}");
    let tex = read(&out.join("tables.tex"));
    assert!(
        tex.contains("55.0 $\\pm$ 7.1 & 65.0 $\\pm$ 7.1 & 60.0 $\\pm$ 7.1 & 2 (1 failed) \\\\"),
        "{tex}"
    );
    assert!(tex.contains("\\textbf{70.0} $\\pm$ 10.0"), "{tex}");
    let csv = read(&out.join("tables.csv"));
    assert!(
        csv.starts_with("table,row,metric,mean,std,n,failed,ci95,p_vs_ref\n"),
        "{csv}"
    );
    let line = csv
        .lines()
        .find(|l| l.starts_with("table1,TR-LDM ($n_{\\text{rec}}=4$),exact,"))
        .unwrap_or_else(|| panic!("{csv}"));
    // ..., mean, std, n, failed, ci95 (empty: not asked), p_vs_ref (empty).
    let f: Vec<&str> = line.rsplit(',').take(6).collect();
    assert_eq!((f[0], f[1], f[2], f[3]), ("", "", "1", "2"), "{line}");
    assert!(
        (f[5].parse::<f64>().unwrap() - 0.55).abs() < 1e-12,
        "{line}"
    );
}

#[test]
fn missing_metric_column_names_table_and_known_metrics() {
    let tmp = fixture_sweep(&TABLES.replace(
        "columns = [\"exact\", \"valid\", \"optimal\"]",
        "columns = [\"exact\", \"optimall\"]",
    ));
    let e = report(tmp.path(), &opts(&tmp.path().join("o")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("table `table1`: metric `optimall` is in no eval.csv (known: exact, final_loss, len_ratio"), "{e}");
    assert!(e.contains("did you mean `optimal`?"), "{e}");
    // Nothing was written.
    assert!(!tmp.path().join("o").join("tables.md").exists());
}

#[test]
fn bad_rows_and_keys_are_explained() {
    let bad_value = TABLES.replace(
        "\"model.variant\" = \"vanilla\" }",
        "\"model.variant\" = \"vanila\" }",
    );
    let e = report(fixture_sweep(&bad_value).path(), &ReportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("table `table1`, row `Vanilla Transformer`: no run matches model.variant = vanila (runs have: trldm, vanilla)"), "{e}");
    let ambiguous = TABLES.replace(", \"model.n_rec\" = 4 }", " }");
    let e = report(fixture_sweep(&ambiguous).path(), &ReportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("matches 2 configurations that differ in model.n_rec (2, 4)"),
        "{e}"
    );
    let bad_key = TABLES.replace("row_key = \"model.n_rec\"", "row_key = \"model.nrec\"");
    let e = report(fixture_sweep(&bad_key).path(), &ReportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "table `nrec`: `row_key`: unknown config key `model.nrec`; did you mean `model.n_rec`?"
        ),
        "{e}"
    );
}

#[test]
fn unsuccessful_runs_of_every_kind_are_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("sweep.toml"), "[grid]\n\"train.lr\" = [1e-3]\n").unwrap();
    run(d, "ok", &cfg("trldm", 2, 1e-3, 0), State::Done, 0.5);
    run(d, "div", &cfg("trldm", 2, 1e-3, 1), State::Diverged, 0.0);
    run(d, "live", &cfg("trldm", 2, 1e-3, 2), State::Running, 0.0);
    // done, but eval.csv is missing
    run(d, "noeval", &cfg("trldm", 2, 1e-3, 3), State::Done, 0.5);
    std::fs::remove_file(d.join("noeval/eval.csv")).unwrap();
    // done, but eval.csv is cut short, holds NaN, or a fraction above 1
    run(d, "cut", &cfg("trldm", 2, 1e-3, 5), State::Done, 0.5);
    std::fs::write(d.join("cut/eval.csv"), "n,exact,valid\n200,0.5\n").unwrap();
    run(d, "nan", &cfg("trldm", 2, 1e-3, 6), State::Done, 0.5);
    std::fs::write(d.join("nan/eval.csv"), "n,exact,valid\n200,NaN,0.5\n").unwrap();
    run(d, "big", &cfg("trldm", 2, 1e-3, 7), State::Done, 0.5);
    std::fs::write(d.join("big/eval.csv"), "n,exact,valid\n200,1.5,0.5\n").unwrap();
    // a folder without a readable config, not in runs.csv
    std::fs::create_dir_all(d.join("junk")).unwrap();
    std::fs::write(d.join("junk/config.toml"), "[model\n").unwrap();
    // runs.csv lists a run whose folder never appeared
    std::fs::write(
        d.join("runs.csv"),
        "run_id,train.lr,seed\nok,0.001,0\ngone,0.001,4\n",
    )
    .unwrap();
    let sweep = load(d).unwrap();
    assert_eq!(sweep.groups.len(), 1, "{:?}", sweep.label_keys);
    let t = &table::build_all(&sweep).unwrap()[0];
    let c = &t.rows[0].cells[0];
    assert_eq!((c.n, c.failed), (1, 7));
    assert_eq!(sweep.skipped.len(), 1);
    assert!(
        sweep.skipped[0].contains("junk/config.toml: invalid TOML"),
        "{:?}",
        sweep.skipped
    );
    let md = markdown_document(&sweep, std::slice::from_ref(t));
    for want in [
        "| div | 1 | diverged |",
        "| live | 2 | running | unfinished",
        "| noeval | 3 | no eval.csv |",
        "| gone | 4 | missing |",
        "| cut | 5 | bad eval.csv |",
        "cells for 3 columns (truncated?)",
        "`NaN` is not finite",
        "`1.5` is outside [0, 1]",
        "junk/config.toml",
    ] {
        assert!(md.contains(want), "{want}: {md}");
    }
}

#[test]
fn default_table_uses_grid_keys_as_leading_columns() {
    let tmp = fixture_sweep(
        "[grid]\n\"model.n_rec\" = [2, 4]\n\"model.variant\" = [\"trldm\", \"vanilla\"]\n",
    );
    let sweep = load(tmp.path()).unwrap();
    assert_eq!(sweep.label_keys, vec!["model.n_rec", "model.variant"]);
    let t = &table::build_all(&sweep).unwrap()[0];
    assert_eq!(t.lead_headers, vec!["model.n_rec", "model.variant"]);
    let metrics: Vec<&str> = t.columns.iter().map(|c| c.metric.as_str()).collect();
    assert_eq!(
        metrics,
        vec!["exact", "valid", "optimal", "token_acc", "len_ratio"]
    );
    let leads: Vec<Vec<String>> = t.rows.iter().map(|r| r.lead.clone()).collect();
    assert_eq!(
        leads,
        vec![vec!["2", "trldm"], vec!["2", "vanilla"], vec!["4", "trldm"]]
    );
}

#[test]
fn without_grid_the_varying_keys_label_groups() {
    let tmp = fixture_sweep("");
    let sweep = load(tmp.path()).unwrap();
    assert_eq!(sweep.label_keys, vec!["model.n_rec", "model.variant"]);
}

#[test]
fn sudoku_without_optimal_shows_a_dash() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let mut c = RunConfig::default();
    c.task.kind = crate::config::Puzzle::Sudoku;
    let eval = [
        ("exact", Some(0.07)),
        ("valid", Some(0.5)),
        ("optimal", None),
    ];
    let maze = maze_eval(0.5);
    write_run(
        d,
        &FixtureRun {
            id: "s",
            config: &c,
            state: State::Done,
            eval: Some(&eval),
            train: &[],
        },
    )
    .unwrap();
    c.task.kind = crate::config::Puzzle::Maze;
    write_run(
        d,
        &FixtureRun {
            id: "m",
            config: &c,
            state: State::Done,
            eval: Some(&maze),
            train: &[],
        },
    )
    .unwrap();
    let sweep = load(d).unwrap();
    let t = &table::build_all(&sweep).unwrap()[0];
    let md = table::markdown(std::slice::from_ref(t));
    assert!(
        md.contains("| sudoku | 7.0 (n=1) | 50.0 (n=1) | — (n=0) |"),
        "{md}"
    );
}

/// Structural checks of a LaTeX table file; with pdflatex on PATH (always
/// under CI), also compiles it.
fn check_latex(tex: &str, dir: &Path) {
    let mut depth = 0i64;
    let mut prev = ' ';
    for c in tex.chars() {
        if prev != '\\' {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            assert!(depth >= 0, "unbalanced braces");
        }
        prev = c;
    }
    assert_eq!(depth, 0, "unbalanced braces");
    for rule in [
        "\\toprule",
        "\\midrule",
        "\\bottomrule",
        "\\caption{",
        "\\label{tab:",
    ] {
        assert!(tex.contains(rule), "{rule} missing:\n{tex}");
    }
    // Equal column counts per tabular row (unescaped `&`).
    for block in tex.split("\\begin{tabular}{").skip(1) {
        let spec_len = block.split('}').next().unwrap().len();
        let body = block.split("\\end{tabular}").next().unwrap();
        for line in body.lines().filter(|l| l.ends_with("\\\\")) {
            let amps = line.matches('&').count() - line.matches("\\&").count();
            assert_eq!(amps + 1, spec_len, "column count of `{line}`");
        }
    }
    let has_pdflatex = std::process::Command::new("pdflatex")
        .arg("--version")
        .output()
        .is_ok();
    if !has_pdflatex {
        // CI installs it (scripts/setup.sh --system): never skip there.
        let required = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
            || std::env::var("TRLDM_REQUIRE_ALL").is_ok_and(|v| v == "1");
        assert!(!required, "pdflatex not on PATH, but CI / TRLDM_REQUIRE_ALL=1 requires it (scripts/setup.sh --system)");
        eprintln!("skipped: pdflatex not on PATH: structural LaTeX checks only");
        return;
    }
    std::fs::write(
        dir.join("doc.tex"),
        format!("\\documentclass{{article}}\n\\usepackage{{booktabs}}\n\\usepackage{{amsmath}}\n\\usepackage[utf8]{{inputenc}}\n\\begin{{document}}\n{tex}\n\\end{{document}}\n"),
    )
    .unwrap();
    let out = std::process::Command::new("pdflatex")
        .args(["-interaction=nonstopmode", "-halt-on-error", "doc.tex"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success() && dir.join("doc.pdf").exists(),
        "pdflatex failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn latex_is_well_formed_and_compiles() {
    let tmp = fixture_sweep(TABLES);
    let out = tmp.path().join("out");
    report(
        tmp.path(),
        &ReportOptions {
            plots: vec![],
            ..opts(&out)
        },
    )
    .unwrap();
    let tex = read(&out.join("tables.tex"));
    assert!(
        tex.contains("exact match \\& 100\\% of path\\_tokens"),
        "{tex}"
    );
    assert!(tex.contains("$\\times$"), "{tex}");
    check_latex(&tex, &out);
    // The default table too (keys with underscores as headers).
    let tmp = fixture_sweep("[grid]\n\"model.n_rec\" = [2, 4]\n");
    let out = tmp.path().join("out");
    report(
        tmp.path(),
        &ReportOptions {
            plots: vec![],
            ..opts(&out)
        },
    )
    .unwrap();
    let tex = read(&out.join("tables.tex"));
    assert!(tex.contains("model.n\\_rec"), "{tex}");
    check_latex(&tex, &out);
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

#[test]
fn default_plots_are_valid_png_and_svg() {
    let tmp = fixture_sweep(
        "[grid]\n\"model.n_rec\" = [2, 4]\n\"model.variant\" = [\"trldm\", \"vanilla\"]\n",
    );
    let out = tmp.path().join("out");
    let s = report(tmp.path(), &opts(&out)).unwrap();
    let names: Vec<String> = s
        .written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "curve_loss.png",
        "curve_loss.svg",
        "exact_vs_model_n_rec.png",
        "exact_vs_model_n_rec.svg",
    ] {
        assert!(names.contains(&want.to_string()), "{names:?}");
    }
    for p in &s.written {
        let bytes = std::fs::read(p).unwrap();
        match p.extension().and_then(|e| e.to_str()) {
            Some("png") => assert_eq!(png_size(&bytes), plot::SIZE, "{}", p.display()),
            Some("svg") => {
                let svg = String::from_utf8(bytes).unwrap();
                assert!(
                    svg.trim_start().starts_with("<svg") || svg.trim_start().starts_with("<?xml"),
                    "{svg:.200}"
                );
                assert!(
                    svg.contains("width=\"1000\"") && svg.contains("height=\"700\""),
                    "{svg:.300}"
                );
                assert!(svg.trim_end().ends_with("</svg>"));
                assert!(svg.contains("mean ± sample std over seeds"), "y label");
                assert!(svg.contains("sample std (ddof = 1)"), "error measure note");
                if p.ends_with("curve_loss.svg") {
                    assert!(svg.lines().any(|l| l.trim() == "step"), "x label");
                    assert!(svg.contains("Loss"), "y label");
                } else {
                    assert!(svg.lines().any(|l| l.trim() == "model.n_rec"), "x label");
                    assert!(svg.contains("EM (%)"), "y label");
                }
            }
            _ => {}
        }
    }
}

#[test]
fn metric_plot_spec_log_x_and_series() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("sweep.toml"),
        r#"
[[report.plot]]
name = "lr_sweep"
kind = "metric"
x = "train.lr"
y = "exact"
series = "model.n_rec"
[[report.plot]]
kind = "curve"
y = "eval_exact"
"#,
    )
    .unwrap();
    for (i, lr) in [1e-4, 3e-4, 1e-3].iter().enumerate() {
        for n_rec in [2, 4] {
            for seed in 0..2 {
                let ex = 0.2 * i as f64 + 0.05 * n_rec as f64 + 0.01 * seed as f64;
                run(
                    d,
                    &format!("r{i}_{n_rec}_{seed}"),
                    &cfg("trldm", n_rec, *lr, seed),
                    State::Done,
                    ex,
                );
            }
        }
    }
    let sweep = load(d).unwrap();
    let plots = plot::build_all(&sweep).unwrap();
    let p = &plots[0];
    assert!(p.log_x);
    assert_eq!(p.series.len(), 2);
    assert_eq!(p.series[0].label, "n_rec=2");
    // lr 1e-4, n_rec 2: exact 0.1, 0.11 -> 10.5 ± 0.707 (percent).
    let pt = p.series[0].points[0];
    assert!(
        (pt.x - 1e-4).abs() < 1e-12 && (pt.y - 10.5).abs() < 1e-9,
        "{pt:?}"
    );
    assert!((pt.err.unwrap() - 0.5f64.sqrt()).abs() < 1e-9, "{pt:?}");
    assert_eq!(plots[1].name, "curve_eval_exact");
    assert_eq!(plots[1].series.len(), 6);
    let out = d.join("out");
    let s = report(d, &opts(&out)).unwrap();
    assert!(
        out.join("lr_sweep.png").exists() && out.join("curve_eval_exact.svg").exists(),
        "{:?}",
        s.written
    );
    // A y column that no train.csv has is named with the known ones.
    std::fs::write(
        d.join("sweep.toml"),
        "[[report.plot]]\nkind = \"curve\"\ny = \"eval_exat\"\n",
    )
    .unwrap();
    let e = report(d, &opts(&out)).unwrap_err().to_string();
    assert!(
        e.contains("column `eval_exat` is in no train.csv")
            && e.contains("did you mean `eval_exact`"),
        "{e}"
    );
    // A series that leaves two configurations on one x is refused.
    std::fs::write(
        d.join("sweep.toml"),
        "[[report.plot]]\nkind = \"metric\"\nx = \"train.lr\"\ny = \"exact\"\nseries = []\n",
    )
    .unwrap();
    let e = report(d, &opts(&out)).unwrap_err().to_string();
    assert!(
        e.contains("two configurations share train.lr = 1e-4") && e.contains("model.n_rec"),
        "{e}"
    );
}

#[test]
fn bench_runs_small() {
    let r = bench(60).unwrap();
    assert_eq!((r.runs, r.groups), (60, 12));
    assert!(r.files_written >= 5);
}

/// The `[[report.table]]` block of docs/REPORT.md that gives Tables 1-5.
fn paper_spec() -> String {
    let doc = include_str!("../../docs/REPORT.md");
    let start = doc
        .find("<!-- paper-tables -->\n```toml\n")
        .expect("marker")
        + 30;
    let len = doc[start..].find("```").expect("end of block");
    doc[start..start + len].to_string()
}

#[test]
fn paper_tables_1_to_5_layouts() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("sweep.toml"), paper_spec()).unwrap();
    let mut id = 0;
    let mut add = |c: RunConfig, exact: f64| {
        for seed in 0..2 {
            let mut c = c.clone();
            c.seed = seed;
            run(
                d,
                &format!("r{id:03}"),
                &c,
                State::Done,
                exact + 0.01 * seed as f64,
            );
            id += 1;
        }
    };
    let maze20 = |variant: &str, n_rec: usize, t: usize, y: bool, z: bool| {
        let mut c = cfg(variant, n_rec, 1e-3, 0);
        c.task.height = 20;
        c.task.width = 20;
        c.model.t_cycles = t;
        c.model.use_y = y;
        c.model.use_z = z;
        c
    };
    add(maze20("vanilla", 2, 1, true, true), 0.334);
    add(maze20("trm", 2, 1, true, true), 0.26);
    add(maze20("mdm", 2, 1, true, true), 0.494);
    add(maze20("trldm", 2, 1, true, true), 0.672);
    add(maze20("trldm", 2, 1, true, false), 0.0);
    add(maze20("trldm", 2, 1, false, true), 0.31);
    add(maze20("trldm", 4, 1, true, true), 0.0);
    add(maze20("trldm", 6, 1, true, true), 0.0);
    add(maze20("trldm", 2, 2, true, true), 0.0);
    add(maze20("trldm", 2, 3, true, true), 0.0);
    for (variant, reset, ex) in [("vanilla", 0, 0.0), ("trm", 0, 0.04), ("trldm", 1, 0.074)] {
        let mut c = cfg(variant, 2, 1e-3, 0);
        c.task.kind = crate::config::Puzzle::Sudoku;
        c.sample.reset_z_every = reset;
        add(c, ex);
    }
    for (variant, n_rec, dm, lr, ex) in [
        ("vanilla", 2, 128, 1e-3, 0.7),
        ("trldm", 8, 256, 1e-4, 0.8),
        ("trldm", 4, 256, 3e-4, 0.75),
        ("trldm", 8, 128, 3e-4, 0.4),
    ] {
        let mut c = cfg(variant, n_rec, lr, 0);
        c.model.d = dm;
        add(c, ex);
    }
    let out = d.join("out");
    let s = report(d, &opts(&out)).unwrap();
    assert_eq!((s.runs, s.failed), (34, 0));
    let md = read(&out.join("tables.md"));
    let rows_of = |name: &str| -> Vec<String> {
        let sec = md.split(&format!("## {name}\n")).nth(1).unwrap();
        sec.lines()
            .skip_while(|l| !l.starts_with("|---"))
            .skip(1)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                l.split(" | ")
                    .next()
                    .unwrap()
                    .trim_start_matches("| ")
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        rows_of("table1"),
        [
            "Vanilla Transformer",
            "TRM (No Diffusion)",
            "Random Remask (no recursion)",
            "TR-LDM (Baseline; $n_{\\text{rec}}=2$, $T_{\\text{deep}}=1$)"
        ]
    );
    assert_eq!(rows_of("table2").len(), 3);
    assert_eq!(rows_of("table3").len(), 5);
    assert_eq!(rows_of("table4")[2], "TR-LDM(fixed; reset_z_every=1)");
    assert_eq!(rows_of("table5").len(), 3);
    assert_eq!(rows_of("table5_sweep").len(), 3);
    assert!(md.contains("| Model | Valid (%) | Exact Fit (%) |"), "{md}");
    assert!(
        md.contains("| Model / Setting | Valid (%) | Optimal (%) | Mean Len. Ratio |"),
        "{md}"
    );
    // Table 1: the TR-LDM row (67.2, 68.2 -> 67.7 ± 0.7) is bold in every column.
    assert!(
        md.contains("| **67.7** ± 0.7 (n=2) | **77.7** ± 0.7 (n=2) | **72.7** ± 0.7 (n=2) |"),
        "{md}"
    );
    let tex = read(&out.join("tables.tex"));
    assert_eq!(tex.matches("\\begin{table}").count(), 6);
    assert!(tex.contains("TR-LDM(fixed; reset\\_z\\_every=1)"), "{tex}");
    check_latex(&tex, &out);
    for f in [
        "valid_vs_lr.png",
        "loss_curves.svg",
        "eval_exact_curves.png",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
}

/// `ci = true` and `compare_to`: the 95 % interval (Student t over seeds)
/// and the dagger of the exact permutation test appear with hand-computed
/// values in Markdown, LaTeX (which compiles) and the CSV.
#[test]
fn confidence_intervals_and_significance_marks_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("sweep.toml"),
        r#"
seeds = [0, 1, 2, 3, 4]
[grid]
"model.variant" = ["trldm", "vanilla"]

[[report.table]]
name = "sig"
caption = "Significance."
columns = ["exact"]
ci = true
compare_to = "TR-LDM"
rows = [
  { label = "TR-LDM", where = { "model.variant" = "trldm" } },
  { label = "Vanilla", where = { "model.variant" = "vanilla" } },
]
"#,
    )
    .unwrap();
    for s in 0..5u64 {
        let a = 0.60 + 0.02 * s as f64;
        run(
            d,
            &format!("a{s}"),
            &cfg("trldm", 2, 1e-3, s),
            State::Done,
            a,
        );
        run(
            d,
            &format!("v{s}"),
            &cfg("vanilla", 2, 1e-3, s),
            State::Done,
            a - 0.3,
        );
    }
    let out = d.join("out");
    report(
        d,
        &ReportOptions {
            plots: vec![],
            ..opts(&out)
        },
    )
    .unwrap();
    // Mean 0.64, sample std sqrt(0.001) = 0.031623, t(0.975, 4) = 2.776445:
    // half width 0.039264 -> [0.6007, 0.6793]; the vanilla row 0.3 lower.
    // Permutation test, 5 vs 5, the most extreme split: p = 2 / 252.
    let md = read(&out.join("tables.md"));
    assert!(md.contains("**64.0** ± 3.2 [60.1, 67.9] (n=5)"), "{md}");
    assert!(md.contains("34.0 ± 3.2 [30.1, 37.9] (n=5) †"), "{md}");
    let vanilla_row = md.lines().find(|l| l.contains("| Vanilla")).unwrap();
    assert!(vanilla_row.contains('†'), "{vanilla_row}");
    let ref_row = md.lines().find(|l| l.contains("| TR-LDM")).unwrap();
    assert!(!ref_row.contains('†'), "{ref_row}");
    let csv = read(&out.join("tables.csv"));
    let v = csv.lines().find(|l| l.contains("Vanilla")).unwrap();
    let p: f64 = v.rsplit(',').next().unwrap().parse().unwrap();
    assert!((p - 2.0 / 252.0).abs() < 1e-9, "{v}");
    let tex = read(&out.join("tables.tex"));
    assert!(tex.contains("{\\scriptsize [60.1, 67.9]}"), "{tex}");
    assert!(
        tex.contains("34.0 $\\pm$ 3.2 {\\scriptsize [30.1, 37.9]}$^\\dagger$"),
        "{tex}"
    );
    assert!(tex.contains("95\\,\\% confidence interval"), "{tex}");
    check_latex(&tex, &out);
}

/// Further evaluations of a run's weights (`trldm eval --out
/// <run>/eval_<tag>.csv`) are metrics `<metric>@<tag>`, headed
/// `EM (%) [tag]`; a run without the file leaves the cell to its other
/// seeds.
#[test]
fn further_evaluations_are_columns_of_their_own() {
    let tmp = fixture_sweep(&TABLES.replace(
        "columns = [\"exact\", \"valid\", \"optimal\"]",
        "columns = [\"exact\", \"exact@n4\"]",
    ));
    // n_rec = 2 seeds: 0.1, 0.2, 0.3 with 4 steps; seed a2 has no file.
    for (id, ex) in [("a0", "0.1"), ("a1", "0.3")] {
        std::fs::write(
            tmp.path().join(id).join("eval_n4.csv"),
            format!("n,exact,valid\n200,{ex},{ex}\n"),
        )
        .unwrap();
    }
    let sweep = load(tmp.path()).unwrap();
    let tables = table::build_all(&sweep).unwrap();
    let base = &tables[0].rows[2];
    assert!((base.cells[0].mean.unwrap() - 0.7).abs() < 1e-12);
    assert!((base.cells[1].mean.unwrap() - 0.2).abs() < 1e-12);
    assert_eq!(base.cells[1].n, 2);
    report(tmp.path(), &opts(&tmp.path().join("o"))).unwrap();
    let md = read(&tmp.path().join("o").join("tables.md"));
    assert!(md.contains("| EM (%) | EM (%) [n4] |"), "{md}");
    assert!(md.contains("**20.0** ± 14.1 (n=2)"), "{md}");
}
