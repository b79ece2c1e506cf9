//! Tables: picks the groups of each `[[report.table]]` row, summarises the
//! metric columns (mean ± sample std over seeds, n, failures) and renders
//! Markdown, LaTeX (booktabs) and long-format CSV.
use super::collect::{Group, Sweep, DERIVED_METRICS};
use super::format::{self, metric_info, Better, MetricInfo};
use super::spec::TableSpec;
use super::stats::{self, Summary};
use super::value::{self, flatten_table, Flat};
use anyhow::{bail, Result};

/// Metrics of the default table, when present.
pub const DEFAULT_METRICS: &[&str] = &["exact", "valid", "optimal", "token_acc", "len_ratio"];

/// One metric column.
#[derive(Debug, Clone)]
pub struct Column {
    pub metric: String,
    pub header: String,
    pub info: MetricInfo,
    pub better: Better,
}

/// One row: its label cells, and one summary per column.
#[derive(Debug, Clone)]
pub struct Row {
    /// Cells of the leading (label) columns.
    pub lead: Vec<String>,
    /// The row's name in the CSV (`label` or `key=value, ...`).
    pub id: String,
    pub cells: Vec<Summary>,
    /// Per column, the seeds' values behind the summary.
    pub values: Vec<Vec<f64>>,
    /// Per column, the 95 % CI half-width (with `ci = true`).
    pub ci95: Vec<Option<f64>>,
    /// Per column, the permutation-test p-value against the `compare_to` row.
    pub p: Vec<Option<f64>>,
    /// Successful and unsuccessful runs of the row's group.
    pub ok: usize,
    pub failed: usize,
}

/// A built table, ready to render.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub caption: String,
    pub label: String,
    pub lead_headers: Vec<String>,
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    /// `ci = true`: intervals shown in Markdown (and in tables.csv).
    pub show_ci: bool,
    /// `compare_to`: the reference row's label.
    pub compare_to: Option<String>,
}

/// Builds every table of the sweep spec, or the default one.
pub fn build_all(sweep: &Sweep) -> Result<Vec<Table>> {
    if sweep.spec.tables.is_empty() {
        let spec = TableSpec {
            name: Some("results".into()),
            ..Default::default()
        };
        return Ok(vec![build(sweep, &spec)?]);
    }
    sweep.spec.tables.iter().map(|t| build(sweep, t)).collect()
}

/// The metrics a spec-less table or plot shows: the default ones present.
pub fn default_metrics(sweep: &Sweep) -> Vec<String> {
    DEFAULT_METRICS
        .iter()
        .filter(|m| sweep.metrics.contains(**m))
        .map(|m| m.to_string())
        .collect()
}

/// Checks that some eval.csv has `metric` (or that it is derived and present).
pub fn check_metric(sweep: &Sweep, metric: &str, origin: &str) -> Result<()> {
    if sweep.metrics.contains(metric) {
        return Ok(());
    }
    let known: Vec<String> = sweep.metrics.iter().cloned().collect();
    let hint = crate::util::did_you_mean(metric, &known);
    let derived = if DERIVED_METRICS.contains(&metric) {
        " (it is computed from train.csv's `loss` of successful runs, and none has one)"
    } else {
        ""
    };
    bail!(
        "{origin}: metric `{metric}` is in no eval.csv{derived} (known: {}){hint}",
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )
}

/// The groups matching a `where` filter (keys checked first).
pub fn filter_groups<'a>(
    sweep: &'a Sweep,
    groups: impl IntoIterator<Item = &'a Group>,
    filter: &Flat,
    origin: &str,
) -> Result<Vec<&'a Group>> {
    for k in filter.keys() {
        sweep.check_key(k, origin)?;
    }
    Ok(groups
        .into_iter()
        .filter(|g| {
            filter.iter().all(|(k, want)| {
                g.config
                    .get(k)
                    .is_some_and(|have| value::matches(have, want))
            })
        })
        .collect())
}

/// Explains why a filter matched nothing: the values each key has.
fn no_match(pool: &[&Group], filter: &Flat, origin: &str) -> anyhow::Error {
    let detail: Vec<String> = filter
        .iter()
        .map(|(k, want)| {
            let mut vals: Vec<String> = pool
                .iter()
                .filter_map(|g| g.config.get(k).map(value::display))
                .collect();
            vals.sort();
            vals.dedup();
            format!(
                "{k} = {} (runs have: {})",
                value::display(want),
                vals.join(", ")
            )
        })
        .collect();
    anyhow::anyhow!("{origin}: no run matches {}", detail.join("; "))
}

/// Explains why a row picks several groups: the keys that tell them apart.
fn ambiguous(sweep: &Sweep, found: &[&Group], origin: &str) -> anyhow::Error {
    let keys = sweep.varying_keys(found);
    let detail: Vec<String> = keys
        .iter()
        .map(|k| {
            let mut vals: Vec<String> = found
                .iter()
                .filter_map(|g| g.config.get(k).map(value::display))
                .collect();
            vals.sort();
            vals.dedup();
            format!("{k} ({})", vals.join(", "))
        })
        .collect();
    anyhow::anyhow!(
        "{origin}: matches {} configurations that differ in {}; add those keys to `where`",
        found.len(),
        detail.join(", ")
    )
}

/// Builds one table from its spec.
pub fn build(sweep: &Sweep, spec: &TableSpec) -> Result<Table> {
    let name = spec.name.clone().unwrap_or_else(|| "table".into());
    let origin = format!("table `{name}`");
    // Columns.
    let metrics = if spec.columns.is_empty() {
        let m = default_metrics(sweep);
        if m.is_empty() {
            bail!(
                "{origin}: no `columns` given and no eval.csv has any of {} (known: {})",
                DEFAULT_METRICS.join(", "),
                sweep.metrics.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        m
    } else {
        spec.columns.clone()
    };
    for m in &metrics {
        check_metric(sweep, m, &origin)?;
    }
    if !spec.column_labels.is_empty() && spec.column_labels.len() != metrics.len() {
        bail!(
            "{origin}: {} column_labels for {} columns",
            spec.column_labels.len(),
            metrics.len()
        );
    }
    for m in spec.bold.keys().chain(&spec.lower_is_better) {
        if !metrics.contains(m) {
            bail!("{origin}: `bold` / `lower_is_better` names `{m}`, which is not one of its columns ({})", metrics.join(", "));
        }
    }
    let mut columns = Vec::new();
    for (i, m) in metrics.iter().enumerate() {
        let info = metric_info(m);
        let better = match spec.bold.get(m) {
            Some(b) => Better::parse(b).ok_or_else(|| {
                anyhow::anyhow!(
                    "{origin}: bold.{m} = \"{b}\": expected \"max\", \"min\" or \"none\""
                )
            })?,
            None if spec.lower_is_better.contains(m) => Better::Min,
            None => info.better,
        };
        let header = spec
            .column_labels
            .get(i)
            .cloned()
            .unwrap_or_else(|| info.header.clone());
        columns.push(Column {
            metric: m.clone(),
            header,
            info,
            better,
        });
    }

    // Rows.
    let table_filter = spec.filter.as_ref().map(flatten_table).unwrap_or_default();
    let pool = filter_groups(
        sweep,
        &sweep.groups,
        &table_filter,
        &format!("{origin}: `where`"),
    )?;
    if pool.is_empty() {
        return Err(no_match(
            &sweep.groups.iter().collect::<Vec<_>>(),
            &table_filter,
            &format!("{origin}: `where`"),
        ));
    }
    let mut rows = Vec::new();
    let lead_headers;
    if !spec.rows.is_empty() {
        if spec.row_key.is_some() {
            bail!("{origin}: give either `rows` or `row_key`, not both");
        }
        lead_headers = vec![spec.row_header.clone().unwrap_or_else(|| "Model".into())];
        for row in &spec.rows {
            let ro = format!("{origin}, row `{}`", row.label);
            let filter = flatten_table(&row.filter);
            let found = filter_groups(sweep, pool.iter().copied(), &filter, &ro)?;
            match found.len() {
                0 => return Err(no_match(&pool, &filter, &ro)),
                1 => rows.push(make_row(
                    sweep,
                    found[0],
                    vec![row.label.clone()],
                    row.label.clone(),
                    &columns,
                )),
                _ => return Err(ambiguous(sweep, &found, &ro)),
            }
        }
    } else if let Some(rk) = &spec.row_key {
        let keys = rk.to_vec();
        for k in &keys {
            sweep.check_key(k, &format!("{origin}: `row_key`"))?;
        }
        let mut by_value: Vec<(Vec<String>, Vec<&Group>)> = Vec::new();
        for g in &pool {
            let vals: Vec<String> = keys
                .iter()
                .map(|k| g.config.get(k).map(value::display).unwrap_or_default())
                .collect();
            match by_value.iter_mut().find(|(v, _)| *v == vals) {
                Some((_, gs)) => gs.push(g),
                None => by_value.push((vals, vec![g])),
            }
        }
        let templated = spec.row_label.is_some() || (spec.row_labels.is_some() && keys.len() == 1);
        lead_headers = if templated {
            vec![spec
                .row_header
                .clone()
                .unwrap_or_else(|| "Configuration".into())]
        } else {
            keys.clone()
        };
        for (vals, gs) in by_value {
            let id = keys
                .iter()
                .zip(&vals)
                .map(|(k, v)| format!("{}={v}", super::collect::short_key(k, &keys)))
                .collect::<Vec<_>>()
                .join(", ");
            if gs.len() > 1 {
                return Err(ambiguous(sweep, &gs, &format!("{origin}, row `{id}`")));
            }
            let label = row_label(spec, &keys, &vals, &id);
            let lead = if templated {
                vec![label.clone()]
            } else {
                vals.clone()
            };
            rows.push(make_row(sweep, gs[0], lead, label, &columns));
        }
    } else {
        let keys = if pool.len() > 1 {
            sweep.varying_keys(&pool)
        } else {
            Vec::new()
        };
        lead_headers = if keys.is_empty() {
            vec!["Configuration".into()]
        } else {
            keys.clone()
        };
        for g in &pool {
            let lead: Vec<String> = if keys.is_empty() {
                vec![sweep.name.clone()]
            } else {
                keys.iter()
                    .map(|k| g.config.get(k).map(value::display).unwrap_or_default())
                    .collect()
            };
            let id = if keys.is_empty() {
                sweep.name.clone()
            } else {
                sweep.group_label(g, &keys)
            };
            rows.push(make_row(sweep, g, lead, id, &columns));
        }
    }
    for r in &mut rows {
        r.ci95 = r
            .cells
            .iter()
            .map(|c| {
                if spec.ci {
                    stats::ci95_half_width(c.std, c.n)
                } else {
                    None
                }
            })
            .collect();
    }
    if let Some(reference) = &spec.compare_to {
        let Some(ri) = rows
            .iter()
            .position(|r| &r.id == reference || r.lead.first() == Some(reference))
        else {
            bail!(
                "{origin}: compare_to = \"{reference}\" is not a row label (rows: {})",
                rows.iter()
                    .map(|r| r.id.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        let ref_values = rows[ri].values.clone();
        for (i, r) in rows.iter_mut().enumerate() {
            r.p = if i == ri {
                vec![None; ref_values.len()]
            } else {
                r.values
                    .iter()
                    .zip(&ref_values)
                    .map(|(a, b)| stats::permutation_p(a, b))
                    .collect()
            };
        }
    }
    let caption = spec.caption.clone().unwrap_or_else(|| {
        format!(
            "Sweep {}: {} configurations, {} runs.",
            sweep.name,
            sweep.groups.len(),
            sweep.runs.len()
        )
    });
    Ok(Table {
        label: spec.label.clone().unwrap_or_else(|| format!("tab:{name}")),
        name,
        caption,
        lead_headers,
        columns,
        rows,
        show_ci: spec.ci,
        compare_to: spec.compare_to.clone(),
    })
}

fn row_label(spec: &TableSpec, keys: &[String], vals: &[String], id: &str) -> String {
    if let Some(t) = &spec.row_label {
        let mut s = t.clone();
        for (k, v) in keys.iter().zip(vals) {
            s = s.replace(&format!("{{{k}}}"), v);
        }
        return s;
    }
    if let (Some(map), [v]) = (&spec.row_labels, vals) {
        if let Some(l) = map.get(v).and_then(|l| l.as_str()) {
            return l.to_string();
        }
    }
    id.to_string()
}

fn make_row(sweep: &Sweep, g: &Group, lead: Vec<String>, id: String, columns: &[Column]) -> Row {
    let (ok, failed) = sweep.split(g);
    let values: Vec<Vec<f64>> = columns
        .iter()
        .map(|c| {
            ok.iter()
                .filter_map(|r| r.metrics.get(&c.metric).copied())
                .collect()
        })
        .collect();
    let cells = values
        .iter()
        .map(|v| Summary::of(v, failed.len()))
        .collect();
    Row {
        lead,
        id,
        cells,
        ci95: vec![None; values.len()],
        p: vec![None; values.len()],
        values,
        ok: ok.len(),
        failed: failed.len(),
    }
}

/// Per column, the best displayed mean (`None` when no row has one or the
/// column is not bolded). Compared after rounding, so ties are all bold.
pub fn best(table: &Table) -> Vec<Option<String>> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(ci, c)| {
            if c.better == Better::None {
                return None;
            }
            let shown = table
                .rows
                .iter()
                .filter_map(|r| r.cells[ci].mean)
                .map(|m| (c.info.show(m).parse::<f64>().unwrap_or(f64::NAN), m));
            let pick = match c.better {
                Better::Max => shown.max_by(|a, b| a.0.total_cmp(&b.0)),
                _ => shown.min_by(|a, b| a.0.total_cmp(&b.0)),
            };
            pick.map(|(_, m)| c.info.show(m))
        })
        .collect()
}

/// "(n=2, 1 failed)".
pub fn n_note(n: usize, failed: usize) -> String {
    if failed > 0 {
        format!("(n={n}, {failed} failed)")
    } else {
        format!("(n={n})")
    }
}

/// The error measure, said once under each table.
pub const ERROR_NOTE: &str = "mean ± sample std (ddof = 1) over seeds; n = successful seeds; failed = runs that failed, diverged, did not finish or have no eval.csv";

/// Markdown: one section per table; each cell `67.2 ± 1.3 (n=2, 1 failed)`,
/// the best mean in bold.
pub fn markdown(tables: &[Table]) -> String {
    let mut s = String::new();
    for t in tables {
        let best = best(t);
        s.push_str(&format!(
            "## {}\n\n{}\n\n",
            t.name,
            format::markdown(&t.caption)
        ));
        let headers: Vec<String> = t
            .lead_headers
            .iter()
            .chain(t.columns.iter().map(|c| &c.header))
            .map(|h| format::markdown(h))
            .collect();
        s.push_str(&format!("| {} |\n", headers.join(" | ")));
        let align: Vec<&str> = t
            .lead_headers
            .iter()
            .map(|_| "---")
            .chain(t.columns.iter().map(|_| "---:"))
            .collect();
        s.push_str(&format!("|{}|\n", align.join("|")));
        for r in &t.rows {
            let mut cells: Vec<String> = r.lead.iter().map(|l| format::markdown(l)).collect();
            for (ci, (c, cell)) in t.columns.iter().zip(&r.cells).enumerate() {
                let mean = match cell.mean {
                    Some(m) => {
                        let v = c.info.show(m);
                        if best[ci].as_deref() == Some(v.as_str()) {
                            format!("**{v}**")
                        } else {
                            v
                        }
                    }
                    None => "—".to_string(),
                };
                let std = cell
                    .std
                    .map(|d| format!(" ± {}", c.info.show(d)))
                    .unwrap_or_default();
                let interval = match (r.ci95[ci], cell.mean) {
                    (Some(h), Some(m)) => {
                        format!(" [{}, {}]", c.info.show(m - h), c.info.show(m + h))
                    }
                    _ => String::new(),
                };
                let mark = if r.p[ci].is_some_and(|p| p < 0.05) {
                    " †"
                } else {
                    ""
                };
                cells.push(format!(
                    "{mean}{std}{interval} {}{mark}",
                    n_note(cell.n, cell.failed)
                ));
            }
            s.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        s.push_str(&format!("\n_{ERROR_NOTE}._\n"));
        if t.show_ci {
            s.push_str(
                "_[lo, hi]: 95 % confidence interval of the mean (Student t over seeds)._\n",
            );
        }
        if let Some(reference) = &t.compare_to {
            s.push_str(&format!(
                "_†: differs from \"{}\" at p < 0.05 (two-sided exact permutation test over seeds; p-values in tables.csv)._\n",
                format::markdown(reference)
            ));
        }
        s.push('\n');
    }
    s
}

/// LaTeX: one `table` environment per table (needs `\usepackage{booktabs}`);
/// cells `67.2 $\pm$ 1.3` (with the 95 % interval and a dagger for
/// p < 0.05 against the reference row when the table asks), the best mean
/// per column in `\textbf{}`, and an `$n$` column with the successful seeds
/// and the failures.
pub fn latex(tables: &[Table]) -> String {
    let mut s = String::from(
        "% Generated by `trldm report`. Needs \\usepackage{booktabs}.\n% Cells: mean $\\pm$ sample std (ddof = 1) over seeds.\n",
    );
    for t in tables {
        let best = best(t);
        let spec: String = "l".repeat(t.lead_headers.len()) + &"c".repeat(t.columns.len()) + "r";
        s.push_str("\n\\begin{table}[t]\n\\centering\n");
        let mut notes = String::new();
        if t.show_ci {
            notes.push_str(
                " [lo, hi]: 95\\,\\% confidence interval of the mean (Student $t$ over seeds).",
            );
        }
        if let Some(reference) = &t.compare_to {
            notes.push_str(&format!(
                " $^\\dagger$: differs from ``{}'' at $p < 0.05$ (two-sided exact permutation test over seeds).",
                format::latex(reference)
            ));
        }
        s.push_str(&format!(
            "\\caption{{{} Mean $\\pm$ sample std (ddof = 1) over $n$ seeds; failed, diverged and unfinished runs are counted.{notes}}}\n",
            format::latex(t.caption.trim())
        ));
        s.push_str(&format!(
            "\\label{{{}}}\n",
            t.label.replace(['{', '}', '\\'], "")
        ));
        s.push_str(&format!("\\begin{{tabular}}{{{spec}}}\n\\toprule\n"));
        let headers: Vec<String> = t
            .lead_headers
            .iter()
            .chain(t.columns.iter().map(|c| &c.header))
            .map(|h| format::latex(h))
            .chain(std::iter::once("$n$".to_string()))
            .collect();
        s.push_str(&format!("{} \\\\\n\\midrule\n", headers.join(" & ")));
        for r in &t.rows {
            let mut cells: Vec<String> = r.lead.iter().map(|l| format::latex(l)).collect();
            for (ci, (c, cell)) in t.columns.iter().zip(&r.cells).enumerate() {
                let text = match cell.mean {
                    Some(m) => {
                        let v = c.info.show(m);
                        let mean = if best[ci].as_deref() == Some(v.as_str()) {
                            format!("\\textbf{{{v}}}")
                        } else {
                            v
                        };
                        let std = cell
                            .std
                            .map(|d| format!(" $\\pm$ {}", c.info.show(d)))
                            .unwrap_or_default();
                        let n = if cell.n != r.ok {
                            format!(" ($n$={})", cell.n)
                        } else {
                            String::new()
                        };
                        let interval = r.ci95[ci]
                            .map(|h| {
                                format!(
                                    " {{\\scriptsize [{}, {}]}}",
                                    c.info.show(m - h),
                                    c.info.show(m + h)
                                )
                            })
                            .unwrap_or_default();
                        let mark = if r.p[ci].is_some_and(|p| p < 0.05) {
                            "$^\\dagger$"
                        } else {
                            ""
                        };
                        format!("{mean}{std}{interval}{mark}{n}")
                    }
                    None => "--".to_string(),
                };
                cells.push(text);
            }
            cells.push(if r.failed > 0 {
                format!("{} ({} failed)", r.ok, r.failed)
            } else {
                r.ok.to_string()
            });
            s.push_str(&format!("{} \\\\\n", cells.join(" & ")));
        }
        s.push_str("\\bottomrule\n\\end{tabular}\n\\end{table}\n");
    }
    s
}

/// Long-format CSV: `table,row,metric,mean,std,n,failed,ci95,p_vs_ref`,
/// means, stds and CI half-widths in eval.csv's units (fractions, not
/// percent), full precision; the last two empty unless asked for.
pub fn csv(tables: &[Table]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "table", "row", "metric", "mean", "std", "n", "failed", "ci95", "p_vs_ref",
    ])?;
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for t in tables {
        for r in &t.rows {
            for (ci, (c, cell)) in t.columns.iter().zip(&r.cells).enumerate() {
                w.write_record([
                    t.name.clone(),
                    r.id.clone(),
                    c.metric.clone(),
                    opt(cell.mean),
                    opt(cell.std),
                    cell.n.to_string(),
                    cell.failed.to_string(),
                    opt(r.ci95[ci]),
                    opt(r.p[ci]),
                ])?;
            }
        }
    }
    Ok(String::from_utf8(
        w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?,
    )?)
}
