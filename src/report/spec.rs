//! `sweep.toml` as the report reads it: the sweep (parsed by the sweep
//! runner's parser) and its `[[report.table]]` / `[[report.plot]]` specs (schema in `super` docs and
//! `docs/REPORT.md`). Unknown fields are refused with serde's list of the
//! expected ones, and the message names the entry (`[[report.table]] #2`).
use super::value::Flat;
use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use std::path::Path;

/// One key or several (`row_key = "model.n_rec"` or `["model.n_rec", "model.d"]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// One explicit row: a label and the config values that pick its group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowSpec {
    pub label: String,
    #[serde(rename = "where", default)]
    pub filter: toml::Table,
}

/// `[[report.table]]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// Identifier (CSV `table` column, LaTeX label `tab:<name>`); default `table<i>`.
    pub name: Option<String>,
    pub caption: Option<String>,
    /// LaTeX `\label` (default `tab:<name>`).
    pub label: Option<String>,
    /// Filter applied to every row.
    #[serde(rename = "where")]
    pub filter: Option<toml::Table>,
    /// Explicit rows, in order.
    #[serde(default)]
    pub rows: Vec<RowSpec>,
    /// Or: one row per value (combination) of these keys.
    pub row_key: Option<OneOrMany>,
    /// With `row_key`: a label template, `{model.n_rec}` replaced by the value.
    pub row_label: Option<String>,
    /// With a single `row_key`: labels per value (`{ "2" = "Baseline" }`).
    pub row_labels: Option<toml::Table>,
    /// Header of the label column (default "Model" for `rows`, "Configuration" for `row_label`).
    pub row_header: Option<String>,
    /// Metrics (eval.csv columns, or `final_loss`), in order.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Headers of the metric columns (default per metric, e.g. "EM (%)").
    #[serde(default)]
    pub column_labels: Vec<String>,
    /// Per metric: `"max"`, `"min"` or `"none"` (default: max, min for losses/times).
    #[serde(default)]
    pub bold: std::collections::BTreeMap<String, String>,
    /// Shorthand: metrics where lower is better.
    #[serde(default)]
    pub lower_is_better: Vec<String>,
    /// Show the 95 % confidence interval of each mean (Student t over seeds).
    #[serde(default)]
    pub ci: bool,
    /// The label of a row to compare every other row with: cells whose mean
    /// differs from it at p < 0.05 (two-sided exact permutation test over
    /// the seeds) are marked †, and the p-values go to the CSV.
    pub compare_to: Option<String>,
}

/// What a plot shows.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PlotKind {
    /// A final metric against a hyperparameter, error bars, one line per other setting.
    Metric,
    /// A train.csv column against the step, mean ± std band, one line per group.
    Curve,
}

/// `[[report.plot]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlotSpec {
    /// File stem (default `<y>_vs_<x>` or `curve_<y>`).
    pub name: Option<String>,
    pub kind: PlotKind,
    /// Metric plots: the hyperparameter on the x axis (a numeric config key).
    pub x: Option<String>,
    /// A metric (metric plots) or a train.csv column (curve plots).
    pub y: String,
    /// Metric plots: keys whose values make the lines (default: every other varying key).
    pub series: Option<OneOrMany>,
    #[serde(rename = "where")]
    pub filter: Option<toml::Table>,
    /// Default: true when `x` contains `lr`.
    pub log_x: Option<bool>,
    #[serde(default)]
    pub log_y: bool,
    pub title: Option<String>,
    /// At most this many lines (the best by the plotted value); default 10.
    pub max_series: Option<usize>,
}

impl PlotSpec {
    /// A plot of `y` with every option at its default (the default plots).
    pub fn new(kind: PlotKind, x: Option<String>, y: &str) -> PlotSpec {
        PlotSpec {
            name: None,
            kind,
            x,
            y: y.to_string(),
            series: None,
            filter: None,
            log_x: None,
            log_y: false,
            title: None,
            max_series: None,
        }
    }
}

/// A sweep file as the report reads it: the sweep itself, parsed once by
/// the sweep runner's own parser ([`crate::sweep::spec::SweepSpec`]: base,
/// grid, seeds, with the same checks), extended by its `[report]` part.
#[derive(Debug, Clone, Default)]
pub struct SweepSpec {
    pub sweep: crate::sweep::spec::SweepSpec,
    pub tables: Vec<TableSpec>,
    pub plots: Vec<PlotSpec>,
}

impl SweepSpec {
    /// Reads `sweep.toml`; a missing file gives an empty spec.
    pub fn load(path: &Path) -> Result<SweepSpec> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SweepSpec::default()),
            Err(e) => Err(anyhow!("{}: cannot read: {e}", path.display())),
        }
    }

    /// Parses sweep TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<SweepSpec> {
        let sweep = crate::sweep::spec::SweepSpec::parse(text, origin, "sweep")?;
        let mut spec = SweepSpec {
            sweep,
            ..Default::default()
        };
        let report = spec.sweep.report.clone();
        for key in report.keys() {
            if key != "table" && key != "plot" {
                bail!("{origin}: unknown key `report.{key}` (expected [[report.table]] or [[report.plot]])");
            }
        }
        spec.tables = entries(report.get("table"), origin, "table")?;
        spec.plots = entries(report.get("plot"), origin, "plot")?;
        for (i, t) in spec.tables.iter_mut().enumerate() {
            if t.name.is_none() {
                t.name = Some(format!("table{}", i + 1));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for t in &spec.tables {
            let name = t.name.clone().unwrap_or_default();
            if !names.insert(name.clone()) {
                bail!("{origin}: two [[report.table]] entries are named `{name}`");
            }
        }
        Ok(spec)
    }

    /// `[base]`, flattened (for runs that runs.csv lists without a folder).
    pub fn base(&self) -> Flat {
        crate::dotted::flatten(&self.sweep.base)
    }

    /// Dotted keys of `[grid]`, sorted (seed excluded).
    pub fn grid_keys(&self) -> Vec<String> {
        self.sweep
            .grid
            .keys()
            .filter(|k| *k != "seed")
            .cloned()
            .collect()
    }
}

/// The `[[report.<what>]]` entries, each read as a `T`; a message names
/// the entry (`[[report.table]] #2 (`nrec`)`) and serde's problem.
fn entries<T: serde::de::DeserializeOwned>(
    v: Option<&toml::Value>,
    origin: &str,
    what: &str,
) -> Result<Vec<T>> {
    let list = match v {
        None => return Ok(Vec::new()),
        Some(toml::Value::Array(a)) => a,
        Some(_) => bail!("{origin}: `report.{what}` must be written as [[report.{what}]] entries"),
    };
    list.iter()
        .enumerate()
        .map(|(i, e)| {
            e.clone().try_into().map_err(|err| {
                anyhow!(
                    "{origin}: [[report.{what}]] #{}{}: {err}",
                    i + 1,
                    entry_name(e)
                )
            })
        })
        .collect()
}

fn entry_name(v: &toml::Value) -> String {
    v.get("name")
        .and_then(|n| n.as_str())
        .map(|n| format!(" (`{n}`)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grid_tables_and_plots() {
        let s = SweepSpec::parse(
            r#"
seeds = [0, 1, 2]
[base]
model.d = 128
[grid]
"train.lr" = [1e-4, 3e-4]
model.n_rec = [2, 4]
[[report.table]]
name = "t5"
row_key = "model.n_rec"
columns = ["valid", "optimal", "len_ratio"]
[[report.plot]]
kind = "metric"
x = "train.lr"
y = "exact"
"#,
            "sweep.toml",
        )
        .unwrap();
        assert_eq!(s.grid_keys(), vec!["model.n_rec", "train.lr"]);
        assert_eq!(s.sweep.seeds, Some(vec![0, 1, 2]));
        assert_eq!(s.base()["model.d"], toml::Value::Integer(128));
        assert_eq!(
            s.tables[0].row_key,
            Some(OneOrMany::One("model.n_rec".into()))
        );
        assert_eq!(s.plots[0].kind, PlotKind::Metric);
    }

    #[test]
    fn typos_name_the_entry() {
        let e = SweepSpec::parse(
            "[[report.table]]\nname = \"t1\"\ncolums = [\"exact\"]\n",
            "sweep.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sweep.toml: [[report.table]] #1 (`t1`)"), "{e}");
        assert!(e.contains("colums"), "{e}");
        let e = SweepSpec::parse("[[report.plot]]\nkind = \"metrc\"\ny = \"exact\"\n", "s")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[[report.plot]] #1") && e.contains("metric"),
            "{e}"
        );
        let e = SweepSpec::parse("[[report.tabel]]\n", "s")
            .unwrap_err()
            .to_string();
        assert!(e.contains("report.tabel"), "{e}");
    }
}
