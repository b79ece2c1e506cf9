//! Plots: a final metric against a hyperparameter (error bars = sample std
//! over seeds, log x for learning rates, one line per other setting) and
//! learning curves (a train.csv column against the step, mean ± std band
//! over seeds, one line per group). Rendered with plotters to PNG and SVG
//! using the bundled DejaVu Sans, so no system font is needed.
use super::collect::{Group, Sweep};
use super::format::{metric_info, Better};
use super::spec::{PlotKind, PlotSpec};
use super::stats::{mean_curve, Summary};
use super::table::{check_metric, default_metrics, filter_groups};
use super::value::{self, flatten_table};
use anyhow::{anyhow, bail, Result};
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Plot size in pixels (PNG) and user units (SVG).
pub const SIZE: (u32, u32) = (1000, 700);
/// Lines drawn when a spec does not say `max_series`.
pub const DEFAULT_MAX_SERIES: usize = 10;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Registers the bundled font once (plotters' ab_glyph backend has no system fonts).
pub fn register_font() -> Result<()> {
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *ONCE
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        bail!("assets/fonts/DejaVuSans.ttf: the bundled font could not be loaded")
    }
}

/// One point: y with its error (sample std), when there are two seeds or more.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub err: Option<f64>,
}

/// One line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<Point>,
}

/// A plot ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotData {
    /// File stem.
    pub name: String,
    pub kind: PlotKind,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
    /// Shown under the chart: the error measure, lines left out, points without data.
    pub notes: Vec<String>,
}

/// Builds every plot of the spec, or the default ones: the loss curve of all
/// groups, and `exact` (or the first default metric) against each numeric
/// label key with two or more values.
pub fn build_all(sweep: &Sweep) -> Result<Vec<PlotData>> {
    let mut specs = sweep.spec.plots.clone();
    if specs.is_empty() {
        specs = default_specs(sweep);
    }
    let mut out = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let p = build(sweep, spec, i)?;
        if out.iter().any(|q: &PlotData| q.name == p.name) {
            bail!(
                "[[report.plot]] #{}: two plots are named `{}`; set `name`",
                i + 1,
                p.name
            );
        }
        out.push(p);
    }
    Ok(out)
}

/// The plots drawn when sweep.toml has no `[[report.plot]]`.
pub fn default_specs(sweep: &Sweep) -> Vec<PlotSpec> {
    let mut specs = Vec::new();
    if sweep.train_columns.contains("loss") {
        specs.push(PlotSpec::new(PlotKind::Curve, None, "loss"));
    }
    if let Some(metric) = default_metrics(sweep).into_iter().next() {
        let all: Vec<&Group> = sweep.groups.iter().collect();
        for key in sweep.varying_keys(&all) {
            let numeric = sweep
                .groups
                .iter()
                .all(|g| g.config.get(&key).and_then(value::number).is_some());
            if numeric {
                specs.push(PlotSpec::new(PlotKind::Metric, Some(key), &metric));
            }
        }
    }
    specs
}

/// `exact_vs_train_lr`: letters, digits, `_` and `-` only.
fn file_stem(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Builds one plot's data (`index` numbers it in errors).
pub fn build(sweep: &Sweep, spec: &PlotSpec, index: usize) -> Result<PlotData> {
    let origin = match &spec.name {
        Some(n) => format!("plot `{n}`"),
        None => format!("[[report.plot]] #{}", index + 1),
    };
    let filter = spec.filter.as_ref().map(flatten_table).unwrap_or_default();
    let pool = filter_groups(sweep, &sweep.groups, &filter, &format!("{origin}: `where`"))?;
    if pool.is_empty() {
        bail!("{origin}: `where` matches no run");
    }
    match spec.kind {
        PlotKind::Metric => metric_plot(sweep, spec, &pool, &origin),
        PlotKind::Curve => curve_plot(sweep, spec, &pool, &origin),
    }
}

fn metric_plot(sweep: &Sweep, spec: &PlotSpec, pool: &[&Group], origin: &str) -> Result<PlotData> {
    let x_key = spec.x.clone().ok_or_else(|| {
        anyhow!("{origin}: kind = \"metric\" needs `x` (a config key such as \"train.lr\")")
    })?;
    sweep.check_key(&x_key, &format!("{origin}: `x`"))?;
    check_metric(sweep, &spec.y, origin)?;
    for g in pool {
        let v = g.config.get(&x_key);
        if v.and_then(value::number).is_none() {
            bail!(
                "{origin}: x = `{x_key}` must be numeric, but a configuration has {}",
                v.map(value::display).unwrap_or_else(|| "no value".into())
            );
        }
    }
    let series_keys: Vec<String> = match &spec.series {
        Some(s) => {
            let keys = s.to_vec();
            for k in &keys {
                sweep.check_key(k, &format!("{origin}: `series`"))?;
            }
            keys
        }
        None => sweep
            .varying_keys(pool)
            .into_iter()
            .filter(|k| *k != x_key)
            .collect(),
    };
    let info = metric_info(&spec.y);
    // Partition by series values, keeping the groups' order.
    let mut parts: Vec<(Vec<String>, Vec<&Group>)> = Vec::new();
    for g in pool {
        let vals: Vec<String> = series_keys
            .iter()
            .map(|k| g.config.get(k).map(value::display).unwrap_or_default())
            .collect();
        match parts.iter_mut().find(|(v, _)| *v == vals) {
            Some((_, gs)) => gs.push(g),
            None => parts.push((vals, vec![g])),
        }
    }
    let mut series = Vec::new();
    let mut omitted = 0;
    for (vals, mut gs) in parts {
        gs.sort_by(|a, b| value::compare(&a.config[&x_key], &b.config[&x_key]));
        for w in gs.windows(2) {
            if value::matches(&w[0].config[&x_key], &w[1].config[&x_key]) {
                let extra: Vec<String> = sweep
                    .varying_keys(&[w[0], w[1]])
                    .into_iter()
                    .filter(|k| !series_keys.contains(k))
                    .collect();
                bail!(
                    "{origin}: two configurations share {x_key} = {} on one line; they differ in {} — add it to `series` or fix it in `where`",
                    value::display(&w[0].config[&x_key]),
                    extra.join(", ")
                );
            }
        }
        let mut points = Vec::new();
        let mut failed = 0;
        for g in &gs {
            let (ok, bad) = sweep.split(g);
            failed += bad.len();
            let vals: Vec<f64> = ok
                .iter()
                .filter_map(|r| r.metrics.get(&spec.y).copied())
                .collect();
            let s = Summary::of(&vals, bad.len());
            match s.mean {
                Some(m) => points.push(Point {
                    x: value::number(&g.config[&x_key]).unwrap_or(f64::NAN),
                    y: m * info.scale,
                    err: s.std.map(|d| d * info.scale),
                }),
                None => omitted += 1,
            }
        }
        let mut label = if series_keys.is_empty() {
            "all runs".to_string()
        } else {
            series_keys
                .iter()
                .zip(&vals)
                .map(|(k, v)| format!("{}={v}", super::collect::short_key(k, &series_keys)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if failed > 0 {
            label.push_str(&format!(" ({failed} failed)"));
        }
        if !points.is_empty() {
            series.push(Series { label, points });
        }
    }
    let mut notes = vec!["error bars: mean ± sample std (ddof = 1) over seeds".to_string()];
    if omitted > 0 {
        notes.push(format!(
            "{omitted} configuration(s) without a successful seed not drawn"
        ));
    }
    let better = info.better;
    let series = cap_series(series, spec.max_series, better, &spec.y, &mut notes, |s| {
        s.points
            .iter()
            .map(|p| p.y)
            .fold(f64::NAN, |a, b| pick(a, b, better))
    });
    let log_x = spec
        .log_x
        .unwrap_or_else(|| x_key.rsplit('.').next().unwrap_or("").contains("lr"));
    Ok(PlotData {
        name: file_stem(
            &spec
                .name
                .clone()
                .unwrap_or_else(|| format!("{}_vs_{}", spec.y, x_key)),
        ),
        kind: PlotKind::Metric,
        title: spec
            .title
            .clone()
            .unwrap_or_else(|| format!("{} vs {x_key} ({})", info.header, sweep.name)),
        x_label: x_key,
        y_label: format!("{} — mean ± sample std over seeds", info.header),
        log_x,
        log_y: spec.log_y,
        series,
        notes,
    })
}

fn curve_plot(sweep: &Sweep, spec: &PlotSpec, pool: &[&Group], origin: &str) -> Result<PlotData> {
    if !sweep.train_columns.contains(&spec.y) {
        let known: Vec<String> = sweep.train_columns.iter().cloned().collect();
        let hint = crate::util::did_you_mean(&spec.y, &known);
        bail!(
            "{origin}: column `{}` is in no train.csv (known: {}){hint}",
            spec.y,
            if known.is_empty() {
                "no train.csv found".into()
            } else {
                known.join(", ")
            }
        );
    }
    if spec.x.as_deref().is_some_and(|x| x != "step") {
        bail!("{origin}: kind = \"curve\" always has the step on x; drop `x` or use kind = \"metric\"");
    }
    let info = metric_info(&spec.y);
    let keys = if pool.len() > 1 {
        sweep.varying_keys(pool)
    } else {
        Vec::new()
    };
    let mut series = Vec::new();
    let mut no_curve = 0;
    for g in pool {
        let (ok, bad) = sweep.split(g);
        let curves: Vec<&[(u64, f64)]> = ok
            .iter()
            .filter_map(|r| r.curves.get(&spec.y).map(|c| c.as_slice()))
            .filter(|c| !c.is_empty())
            .collect();
        if curves.is_empty() {
            no_curve += 1;
            continue;
        }
        let n = curves.len();
        let points = mean_curve(curves)
            .into_iter()
            .map(|p| Point {
                x: p.step as f64,
                y: p.mean * info.scale,
                err: p.std.map(|d| d * info.scale),
            })
            .collect();
        let mut label = if keys.is_empty() {
            sweep.name.clone()
        } else {
            sweep.group_label(g, &keys)
        };
        label.push_str(&if bad.is_empty() {
            format!(" (n={n})")
        } else {
            format!(" (n={n}, {} failed)", bad.len())
        });
        series.push(Series { label, points });
    }
    let mut notes = vec![
        "line: mean over seeds; band: ± sample std (ddof = 1); failed runs not averaged"
            .to_string(),
    ];
    if no_curve > 0 {
        notes.push(format!(
            "{no_curve} configuration(s) without a successful seed logging `{}` not drawn",
            spec.y
        ));
    }
    let better = info.better;
    let series = cap_series(
        series,
        spec.max_series,
        better,
        &format!("final {}", spec.y),
        &mut notes,
        |s| s.points.last().map(|p| p.y).unwrap_or(f64::NAN),
    );
    Ok(PlotData {
        name: file_stem(
            &spec
                .name
                .clone()
                .unwrap_or_else(|| format!("curve_{}", spec.y)),
        ),
        kind: PlotKind::Curve,
        title: spec
            .title
            .clone()
            .unwrap_or_else(|| format!("{} during training ({})", info.header, sweep.name)),
        x_label: "step".into(),
        y_label: format!("{} — mean ± sample std over seeds", info.header),
        log_x: spec.log_x.unwrap_or(false),
        log_y: spec.log_y,
        series,
        notes,
    })
}

fn pick(a: f64, b: f64, better: Better) -> f64 {
    if a.is_nan() {
        return b;
    }
    match better {
        Better::Min => a.min(b),
        _ => a.max(b),
    }
}

/// Keeps the `max` best lines (by `score`, in `better`'s direction) and says
/// so in the notes; the kept lines stay in their original order.
fn cap_series(
    series: Vec<Series>,
    max: Option<usize>,
    better: Better,
    by: &str,
    notes: &mut Vec<String>,
    score: impl Fn(&Series) -> f64,
) -> Vec<Series> {
    let max = max.unwrap_or(DEFAULT_MAX_SERIES).max(1);
    if series.len() <= max {
        return series;
    }
    let mut order: Vec<(usize, f64)> = series.iter().map(&score).enumerate().collect();
    order.sort_by(|a, b| match better {
        Better::Min => a.1.total_cmp(&b.1),
        _ => b.1.total_cmp(&a.1),
    });
    let mut keep: Vec<usize> = order.iter().take(max).map(|(i, _)| *i).collect();
    keep.sort_unstable();
    notes.push(format!(
        "showing the {max} best of {} lines (by {} {by})",
        series.len(),
        if better == Better::Min {
            "lowest"
        } else {
            "highest"
        }
    ));
    series
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, s)| s)
        .collect()
}

/// The two plots of a `trldm eval --trace` CSV (columns of
/// `eval::TRACE_HEADER`): the state sizes RMS(y), RMS(z) per denoising step
/// (log y), and per step the fill's token accuracy, the mean confidence of
/// the committed tokens and the mean halting probability. `stem` names them.
pub fn trace_plots(path: &Path, stem: &str) -> Result<Vec<PlotData>> {
    let mut rd = csv::Reader::from_path(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let header: Vec<String> = rd
        .headers()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?
        .iter()
        .map(String::from)
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| anyhow!("{}: no column `{name}` (not a trace file?)", path.display()))
    };
    let names = [
        "rms_y",
        "rms_z",
        "fill_token_acc",
        "conf_committed",
        "halt_p",
    ];
    let idx = names.iter().map(|n| col(n)).collect::<Result<Vec<_>>>()?;
    let step = col("step")?;
    let mut series: Vec<Series> = names
        .iter()
        .map(|n| Series {
            label: n.to_string(),
            points: Vec::new(),
        })
        .collect();
    for (line, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|e| anyhow!("{}: line {}: {e}", path.display(), line + 2))?;
        let num = |i: usize| -> Result<f64> {
            rec.get(i)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .ok_or_else(|| anyhow!("{}: line {}: not a number", path.display(), line + 2))
        };
        let x = num(step)?;
        for (s, &i) in series.iter_mut().zip(&idx) {
            let y = num(i)?;
            if y.is_finite() {
                s.points.push(Point { x, y, err: None });
            }
        }
    }
    let rest = series.split_off(2);
    let plot =
        |name: &str, title: &str, y_label: &str, log_y: bool, series: Vec<Series>| PlotData {
            name: format!("{stem}-{name}"),
            kind: PlotKind::Curve,
            title: title.into(),
            x_label: "denoising step".into(),
            y_label: y_label.into(),
            log_x: false,
            log_y,
            series,
            notes: vec![format!("from {}", path.display())],
        };
    Ok(vec![
        plot(
            "states",
            "Recursive states over the trajectory",
            "RMS",
            true,
            series,
        ),
        plot(
            "steps",
            "Denoising steps: fill accuracy, confidence, halting",
            "fraction",
            false,
            rest,
        ),
    ])
}

/// Renders `plot` to `<dir>/<name>.png` and/or `.svg` (atomically); returns the paths.
pub fn render_files(plot: &PlotData, dir: &Path, png: bool, svg: bool) -> Result<Vec<PathBuf>> {
    register_font()?;
    let mut out = Vec::new();
    if png {
        let path = dir.join(format!("{}.png", plot.name));
        // BitMapBackend picks the encoder from the extension: keep `.png` last.
        let tmp = dir.join(format!(".{}.{}.tmp.png", plot.name, std::process::id()));
        {
            let root = BitMapBackend::new(&tmp, SIZE).into_drawing_area();
            draw(&root, plot).map_err(|e| anyhow!("{}: {e}", path.display()))?;
            root.present()
                .map_err(|e| anyhow!("{}: cannot write PNG: {e}", path.display()))?;
        }
        std::fs::rename(&tmp, &path)
            .map_err(|e| anyhow!("{}: cannot rename into place: {e}", path.display()))?;
        out.push(path);
    }
    if svg {
        let path = dir.join(format!("{}.svg", plot.name));
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
            draw(&root, plot).map_err(|e| anyhow!("{}: {e}", path.display()))?;
            root.present()
                .map_err(|e| anyhow!("{}: cannot render SVG: {e}", path.display()))?;
        }
        crate::util::write_atomic(&path, text.as_bytes())?;
        out.push(path);
    }
    Ok(out)
}

/// Tableau-10 colours.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

type DrawResult = std::result::Result<(), String>;

/// Draws the whole figure: chart, then the notes strip below it.
fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, p: &PlotData) -> DrawResult {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let note_h = 14 + 20 * p.notes.len() as u32;
    let (chart_area, note_area) = root.split_vertically(SIZE.1 - note_h);
    for (i, n) in p.notes.iter().enumerate() {
        note_area
            .draw_text(
                n,
                &(FAMILY, 16)
                    .into_font()
                    .color(&BLACK.mix(0.75))
                    .into_text_style(&note_area),
                (20, 4 + 20 * i as i32),
            )
            .map_err(err)?;
    }
    let pts = || p.series.iter().flat_map(|s| s.points.iter());
    if pts().next().is_none() {
        chart_area
            .draw_text(
                "no data to plot",
                &(FAMILY, 24).into_text_style(&chart_area),
                (40, 40),
            )
            .map_err(err)?;
        return chart_area
            .titled(&p.title, (FAMILY, 24))
            .map(|_| ())
            .map_err(err);
    }
    let (xs, ys) = (
        span(pts().map(|q| (q.x, q.x)), p.log_x, 0.04),
        span(
            pts().map(|q| (q.y - q.err.unwrap_or(0.0), q.y + q.err.unwrap_or(0.0))),
            p.log_y,
            0.06,
        ),
    );
    // Head room above the data for the legend box (upper right).
    let plot_px = (SIZE.1 - note_h).saturating_sub(130).max(100) as f64;
    let legend_px = (22 * p.series.len() + 16) as f64;
    let f = (legend_px / plot_px).min(0.6);
    let grow = f / (1.0 - f);
    let top = if p.log_y {
        ys.1 * (ys.1 / ys.0).powf(grow)
    } else {
        ys.1 + (ys.1 - ys.0) * grow
    };
    let (xs, ys) = (xs.0..xs.1, ys.0..top);
    match (p.log_x, p.log_y) {
        (false, false) => chart(&chart_area, p, xs, ys),
        (true, false) => chart(&chart_area, p, xs.log_scale(), ys),
        (false, true) => chart(&chart_area, p, xs, ys.log_scale()),
        (true, true) => chart(&chart_area, p, xs.log_scale(), ys.log_scale()),
    }
}

/// The axis range covering `(lo, hi)` pairs, padded by `pad` of its width
/// (multiplicatively on a log axis, where values <= 0 are left out).
fn span(vals: impl Iterator<Item = (f64, f64)>, log: bool, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (a, b) in vals {
        for v in [a, b] {
            if v.is_finite() && (!log || v > 0.0) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    if !lo.is_finite() {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        let f = (hi / lo).powf(pad).max(1.3);
        (lo / f, hi * f)
    } else {
        let w = (hi - lo).max(hi.abs().max(1.0) * 1e-3);
        (lo - w * pad, hi + w * pad)
    }
}

fn chart<DB, X, Y>(area: &DrawingArea<DB, Shift>, p: &PlotData, xr: X, yr: Y) -> DrawResult
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut c = ChartBuilder::on(area)
        .caption(&p.title, (FAMILY, 26))
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(84)
        .build_cartesian_2d(xr, yr)
        .map_err(err)?;
    let fmt_x = |v: &f64| tick_label(*v, p.log_x);
    let fmt_y = |v: &f64| tick_label(*v, p.log_y);
    c.configure_mesh()
        .x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&fmt_y)
        .axis_desc_style((FAMILY, 20))
        .label_style((FAMILY, 16))
        .light_line_style(BLACK.mix(0.05))
        .bold_line_style(BLACK.mix(0.12))
        .draw()
        .map_err(err)?;
    for (i, s) in p.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let xy: Vec<(f64, f64)> = s.points.iter().map(|q| (q.x, q.y)).collect();
        if p.kind == PlotKind::Curve {
            let upper = s.points.iter().map(|q| (q.x, q.y + q.err.unwrap_or(0.0)));
            let lower = s.points.iter().rev().map(|q| {
                let lo = q.y - q.err.unwrap_or(0.0);
                (q.x, if p.log_y { lo.max(q.y * 1e-3) } else { lo })
            });
            let band: Vec<(f64, f64)> = upper.chain(lower).collect();
            if s.points.iter().any(|q| q.err.is_some()) {
                c.draw_series(std::iter::once(Polygon::new(
                    band,
                    color.mix(0.18).filled(),
                )))
                .map_err(err)?;
            }
        } else {
            c.draw_series(s.points.iter().filter_map(|q| {
                let e = q.err?;
                let lo = if p.log_y {
                    (q.y - e).max(q.y * 1e-3)
                } else {
                    q.y - e
                };
                Some(ErrorBar::new_vertical(
                    q.x,
                    lo,
                    q.y,
                    q.y + e,
                    color.stroke_width(2),
                    12,
                ))
            }))
            .map_err(err)?;
            c.draw_series(
                xy.iter()
                    .map(|&(x, y)| Circle::new((x, y), 4, color.filled())),
            )
            .map_err(err)?;
        }
        c.draw_series(LineSeries::new(xy, color.stroke_width(2)))
            .map_err(err)?
            .label(s.label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// A tick label; on a log axis only 1, 2 and 5 × 10^k are labelled (the
/// other ticks stay as marks), so labels do not collide.
fn tick_label(v: f64, log: bool) -> String {
    let r = round_sig(v);
    if log && r > 0.0 {
        let m = r / 10f64.powf(r.log10().floor());
        let lead = m.round();
        if (m - lead).abs() > 1e-6 || ![1.0, 2.0, 5.0].contains(&lead) {
            return String::new();
        }
    }
    value::format_float(r)
}

/// Rounds to 6 significant digits (tick labels such as 0.30000000000000004).
fn round_sig(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let mag = 10f64.powi(5 - v.abs().log10().floor() as i32);
    (v * mag).round() / mag
}
