//! Reads a sweep folder: every run's config, outcome, final metrics and
//! training curve, and groups the runs by their config without the seed.
//!
//! A run counts as successful when its state is `done` (or it has no
//! status.json) and its `eval.csv` has a row. Everything else — failed,
//! diverged, still queued/running, no or unreadable eval.csv, or listed in
//! runs.csv without a folder — stays in its group as a failure with a reason.
//! A folder whose config cannot be read at all is reported as skipped.
use super::spec::SweepSpec;
use super::value::{self, default_config, Flat};
use crate::run::{read_status, State};
use anyhow::{anyhow, bail, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Keys that never separate groups.
pub const IGNORED_KEYS: &[&str] = &["seed", "name"];

/// Metrics computed from train.csv rather than read from eval.csv.
pub const DERIVED_METRICS: &[&str] = &["final_loss"];

/// Why a run is not successful.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// `failed`, `diverged`, `queued`, `running`, `no eval.csv`, `missing`, ...
    pub state: String,
    pub reason: String,
}

/// One run folder.
#[derive(Debug, Clone)]
pub struct Run {
    /// Folder name (or runs.csv `run_id`).
    pub id: String,
    pub dir: PathBuf,
    /// The config flattened to dotted keys, defaults filled in, without
    /// `seed` and `name` (shared between the seeds of a configuration).
    pub config: Arc<Flat>,
    pub seed: Option<i64>,
    /// `None` = successful.
    pub failure: Option<Failure>,
    /// eval.csv's row (empty cells left out) plus derived metrics.
    pub metrics: BTreeMap<String, f64>,
    /// Requested train.csv columns as `(step, value)`, empty cells left out.
    pub curves: BTreeMap<String, Vec<(u64, f64)>>,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// Runs with the same config except the seed.
#[derive(Debug, Clone)]
pub struct Group {
    /// The shared config (seed and name removed).
    pub config: Flat,
    /// Indices into [`Sweep::runs`], sorted by seed.
    pub runs: Vec<usize>,
}

/// Everything read from `results/<sweep>/`.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub dir: PathBuf,
    pub name: String,
    pub spec: SweepSpec,
    pub runs: Vec<Run>,
    pub groups: Vec<Group>,
    /// Keys that label groups: the grid keys, then any other key that varies.
    pub label_keys: Vec<String>,
    /// Metrics found in at least one eval.csv (plus derived ones that appear).
    pub metrics: BTreeSet<String>,
    /// Columns found in at least one train.csv header.
    pub train_columns: BTreeSet<String>,
    /// Folders that could not be read as runs (not counted anywhere).
    pub skipped: Vec<String>,
    /// Non-fatal problems (unreadable train.csv, ...).
    pub warnings: Vec<String>,
}

impl Sweep {
    /// The successful and the failed runs of a group.
    pub fn split(&self, g: &Group) -> (Vec<&Run>, Vec<&Run>) {
        g.runs.iter().map(|&i| &self.runs[i]).partition(|r| r.ok())
    }

    /// Every config key seen (for "did you mean" hints and key checks).
    pub fn known_keys(&self) -> Vec<String> {
        let mut keys: BTreeSet<String> = crate::config::known_keys().into_iter().collect();
        if let Some(r) = self.runs.first() {
            keys.extend(r.config.keys().cloned());
        }
        keys.into_iter().collect()
    }

    /// Checks that `key` is a config key; the error says where it came from
    /// and suggests the closest one.
    pub fn check_key(&self, key: &str, origin: &str) -> Result<()> {
        let known = self.known_keys();
        if known.iter().any(|k| k == key) {
            return Ok(());
        }
        let hint = crate::util::did_you_mean(key, &known);
        bail!("{origin}: unknown config key `{key}`{hint}")
    }

    /// "model.n_rec=2, train.lr=1e-4" over the label keys that vary in `groups`.
    pub fn group_label(&self, g: &Group, keys: &[String]) -> String {
        keys.iter()
            .map(|k| {
                let v = g
                    .config
                    .get(k)
                    .map(value::display)
                    .unwrap_or_else(|| "-".into());
                format!("{}={v}", short_key(k, keys))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The label keys whose value differs among `groups`.
    pub fn varying_keys(&self, groups: &[&Group]) -> Vec<String> {
        self.label_keys
            .iter()
            .filter(|k| {
                let mut vals = groups
                    .iter()
                    .map(|g| g.config.get(*k).map(value::canonical).unwrap_or_default());
                let first = vals.next();
                vals.any(|v| Some(v) != first)
            })
            .cloned()
            .collect()
    }
}

/// `model.n_rec` → `n_rec` unless another key in `keys` has the same leaf.
pub fn short_key<'a>(key: &'a str, keys: &[String]) -> &'a str {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let clashes = keys
        .iter()
        .filter(|k| k.rsplit('.').next() == Some(leaf))
        .count();
    if clashes > 1 {
        key
    } else {
        leaf
    }
}

/// Reads the sweep folder. `curve_columns` are the train.csv columns to keep
/// per run (`loss` is always read, for `final_loss`).
pub fn load(dir: &Path, spec: SweepSpec, curve_columns: &[String]) -> Result<Sweep> {
    if !dir.is_dir() {
        bail!(
            "{}: not a folder (expected results/<sweep>/)",
            dir.display()
        );
    }
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    let mut wanted: Vec<String> = curve_columns.to_vec();
    if !wanted.iter().any(|c| c == "loss") {
        wanted.push("loss".into());
    }
    let folders = discover(dir)?;
    let runs_csv = read_runs_csv(&dir.join("runs.csv"))?;
    let defaults = default_config();
    // A run known only from runs.csv: the sweep's base, then its row.
    let mut with_base = defaults.clone();
    with_base.extend(spec.base());
    let ctx = ReadCtx {
        defaults: &defaults,
        with_base: &with_base,
        wanted: &wanted,
    };
    let results = read_parallel(&folders, &ctx, &runs_csv);
    let mut runs = Vec::with_capacity(results.len());
    let mut skipped = Vec::new();
    let mut warnings = Vec::new();
    let mut train_columns = BTreeSet::new();
    for r in results {
        match r {
            Ok((run, cols, warn)) => {
                train_columns.extend(cols);
                warnings.extend(warn);
                runs.push(run);
            }
            Err(e) => skipped.push(e),
        }
    }
    // Runs that runs.csv lists but no folder holds: failures of their cell.
    let found: BTreeSet<&str> = folders.iter().map(|(id, _)| id.as_str()).collect();
    let mut missing = Vec::new();
    for (id, row) in &runs_csv {
        if found.contains(id.as_str()) {
            continue;
        }
        let mut config = with_base.clone();
        apply_row(&mut config, row);
        let seed = config.get("seed").and_then(|v| v.as_integer());
        for k in IGNORED_KEYS {
            config.remove(*k);
        }
        missing.push(Run {
            id: id.clone(),
            dir: dir.join(id),
            seed,
            config: Arc::new(config),
            failure: Some(Failure {
                state: "missing".into(),
                reason: "listed in runs.csv but has no run folder with config.toml".into(),
            }),
            metrics: BTreeMap::new(),
            curves: BTreeMap::new(),
        });
    }
    runs.extend(missing);
    if runs.is_empty() {
        let extra = if skipped.is_empty() {
            String::new()
        } else {
            format!(" ({} unreadable: {})", skipped.len(), skipped[0])
        };
        bail!(
            "{}: no run folders found (a run folder holds config.toml and status.json){extra}",
            dir.display()
        );
    }
    let metrics = runs
        .iter()
        .flat_map(|r| r.metrics.keys().cloned())
        .collect::<BTreeSet<_>>();
    let groups = group_runs(&runs);
    let label_keys = label_keys(&spec.grid_keys(), &groups);
    let mut sweep = Sweep {
        dir: dir.to_path_buf(),
        name,
        spec,
        runs,
        groups,
        label_keys,
        metrics,
        train_columns,
        skipped,
        warnings,
    };
    sort_groups(&mut sweep);
    Ok(sweep)
}

/// Run folders: direct sub-folders holding config.toml, status.json or
/// eval.csv, or such folders one level further down (e.g. `runs/<id>/`).
fn discover(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let is_run = |p: &Path| {
        p.join("config.toml").is_file()
            || p.join("status.json").is_file()
            || p.join("eval.csv").is_file()
    };
    let mut out = Vec::new();
    for sub in sorted_subdirs(dir)? {
        if is_run(&sub) {
            out.push(sub);
        } else {
            out.extend(sorted_subdirs(&sub)?.into_iter().filter(|p| is_run(p)));
        }
    }
    Ok(out
        .into_iter()
        .map(|p| {
            let id = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (id, p)
        })
        .collect())
}

fn sorted_subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| anyhow!("{}: cannot list: {e}", dir.display()))?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .map(|n| n.to_string_lossy().starts_with('.'))
                .unwrap_or(true)
        })
        .collect();
    v.sort();
    Ok(v)
}

/// `runs.csv`: run_id → the other columns (grid keys, seed, ...).
fn read_runs_csv(path: &Path) -> Result<Vec<(String, BTreeMap<String, String>)>> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let headers = rdr
        .headers()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?
        .clone();
    let Some(id_col) = headers.iter().position(|h| h == "run_id" || h == "id") else {
        bail!(
            "{}: no `run_id` column (found: {})",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(", ")
        );
    };
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let Some(id) = rec.get(id_col) else { continue };
        let row = headers
            .iter()
            .zip(rec.iter())
            .enumerate()
            .filter(|(i, _)| *i != id_col)
            .map(|(_, (h, v))| (h.to_string(), v.to_string()))
            .collect();
        out.push((id.to_string(), row));
    }
    Ok(out)
}

fn apply_row(config: &mut Flat, row: &BTreeMap<String, String>) {
    for (k, v) in row {
        if config.contains_key(k) && !v.is_empty() {
            config.insert(k.clone(), crate::config::parse_scalar(v));
        }
    }
}

/// What every run reader needs.
struct ReadCtx<'a> {
    /// `RunConfig::default()`, filling keys a config.toml lacks.
    defaults: &'a Flat,
    /// Defaults plus sweep.toml's `[base]`, for runs known only from runs.csv.
    with_base: &'a Flat,
    /// train.csv columns to keep.
    wanted: &'a [String],
}

type ReadResult = std::result::Result<(Run, Vec<String>, Vec<String>), String>;

/// Reads the run folders on all cores, keeping their order.
fn read_parallel(
    folders: &[(String, PathBuf)],
    ctx: &ReadCtx,
    runs_csv: &[(String, BTreeMap<String, String>)],
) -> Vec<ReadResult> {
    let rows: BTreeMap<&str, &BTreeMap<String, String>> =
        runs_csv.iter().map(|(id, r)| (id.as_str(), r)).collect();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(16);
    let chunk = folders.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = folders
            .chunks(chunk)
            .map(|part| {
                let rows = &rows;
                s.spawn(move || {
                    let mut cache = ConfigCache::default();
                    part.iter()
                        .map(|(id, dir)| {
                            read_run(id, dir, ctx, rows.get(id.as_str()).copied(), &mut cache)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err("a reader thread panicked".to_string())])
            })
            .collect()
    })
}

/// Parsed configs by their text without the top-level `seed` / `name`
/// lines: the seeds of one configuration are parsed once.
type ConfigCache = std::collections::HashMap<String, Arc<Flat>>;

/// Splits a config.toml text into the text without its top-level `seed`
/// and `name` lines, and the seed written there.
fn split_seed(text: &str) -> (String, Option<i64>) {
    let mut rest = String::with_capacity(text.len());
    let mut seed = None;
    let mut top = true;
    for line in text.lines() {
        let t = line.trim_start();
        top &= !t.starts_with('[');
        if top {
            if let Some((k, v)) = t.split_once('=') {
                match k.trim() {
                    "seed" => {
                        seed = crate::config::parse_scalar(v.trim()).as_integer();
                        continue;
                    }
                    "name" => continue,
                    _ => {}
                }
            }
        }
        rest.push_str(line);
        rest.push('\n');
    }
    (rest, seed)
}

/// The run's config (without seed and name) and its seed.
fn read_config(
    id: &str,
    path: &Path,
    ctx: &ReadCtx,
    csv_row: Option<&BTreeMap<String, String>>,
    cache: &mut ConfigCache,
) -> std::result::Result<(Arc<Flat>, Option<i64>), String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let Some(row) = csv_row else {
                return Err(format!(
                    "{}: cannot read ({e}) and runs.csv does not list `{id}`",
                    path.display()
                ));
            };
            let mut config = ctx.with_base.clone();
            apply_row(&mut config, row);
            let seed = config.get("seed").and_then(|v| v.as_integer());
            for k in IGNORED_KEYS {
                config.remove(*k);
            }
            return Ok((Arc::new(config), seed));
        }
    };
    let (rest, seed) = split_seed(&text);
    if let Some(c) = cache.get(&rest) {
        return Ok((c.clone(), seed));
    }
    let mut config = Flat::new();
    value::flatten_toml_text(&rest, &mut config)
        .map_err(|e| format!("{}: invalid TOML: {e}", path.display()))?;
    // Keys an older config.toml lacks take today's defaults.
    for (k, v) in ctx.defaults {
        if !config.contains_key(k) && !IGNORED_KEYS.contains(&k.as_str()) {
            config.insert(k.clone(), v.clone());
        }
    }
    let config = Arc::new(config);
    cache.insert(rest, config.clone());
    Ok((config, seed))
}

/// Reads one run folder: `(run, train.csv header, warnings)`, or why it
/// cannot be used at all.
fn read_run(
    id: &str,
    dir: &Path,
    ctx: &ReadCtx,
    csv_row: Option<&BTreeMap<String, String>>,
    cache: &mut ConfigCache,
) -> ReadResult {
    let (config, seed) = read_config(id, &dir.join("config.toml"), ctx, csv_row, cache)?;
    let mut warnings = Vec::new();
    let mut failure = outcome(dir);
    let mut metrics = BTreeMap::new();
    if failure.is_none() {
        match read_eval(&dir.join("eval.csv")) {
            Ok(m) => metrics = m,
            Err(f) => failure = Some(f),
        }
    }
    // Further evaluations of the same weights (`trldm eval --out
    // <run>/eval_<tag>.csv`, e.g. other sampling settings) as `<metric>@<tag>`.
    if failure.is_none() {
        for (tag, path) in extra_evals(dir) {
            match read_eval(&path) {
                Ok(m) => metrics.extend(m.into_iter().map(|(k, v)| (format!("{k}@{tag}"), v))),
                Err(f) => warnings.push(format!("{}: {} ({})", path.display(), f.state, f.reason)),
            }
        }
    }
    let (header, curves) = match read_train(&dir.join("train.csv"), ctx.wanted) {
        Ok(x) => x,
        Err(e) => {
            warnings.push(e);
            Default::default()
        }
    };
    if failure.is_none() {
        if let Some(last) = curves.get("loss").and_then(|c| c.last()) {
            metrics.insert("final_loss".to_string(), last.1);
        }
    }
    let run = Run {
        id: id.to_string(),
        dir: dir.to_path_buf(),
        config,
        seed,
        failure,
        metrics,
        curves,
    };
    Ok((run, header, warnings))
}

/// The failure recorded in status.json, if any.
fn outcome(dir: &Path) -> Option<Failure> {
    match read_status(&dir.join("status.json")) {
        Ok(None) => None,
        Ok(Some(s)) => match s.state {
            State::Done => None,
            State::Failed | State::Diverged => Some(Failure {
                state: s.state.name().into(),
                reason: if s.reason.is_empty() {
                    format!("at step {}", s.step)
                } else {
                    format!("{} (step {})", s.reason, s.step)
                },
            }),
            State::Queued | State::Running => Some(Failure {
                state: s.state.name().into(),
                reason: format!("unfinished: {} at step {}", s.state.name(), s.step),
            }),
        },
        Err(e) => Some(Failure {
            state: "unreadable".into(),
            reason: format!("{e:#}"),
        }),
    }
}

/// The `eval_<tag>.csv` files of a run folder as (tag, path), by tag.
fn extra_evals(dir: &Path) -> Vec<(String, std::path::PathBuf)> {
    let mut out: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    let tag = name
                        .strip_prefix("eval_")?
                        .strip_suffix(".csv")?
                        .to_string();
                    (!tag.is_empty()).then(|| (tag, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// eval.csv columns that are fractions of puzzles or tokens.
const FRACTIONS: &[&str] = &["exact", "valid", "optimal", "token_acc"];

/// eval.csv's first row as metric → value (empty cells left out). A row
/// shorter than the header, a non-finite value or a fraction outside [0, 1]
/// makes the run count as failed, with the reason.
fn read_eval(path: &Path) -> std::result::Result<BTreeMap<String, f64>, Failure> {
    let fail = |state: &str, reason: String| Failure {
        state: state.into(),
        reason,
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail("no eval.csv", "finished without eval.csv".into()))
        }
        Err(e) => return Err(fail("no eval.csv", format!("{}: {e}", path.display()))),
    };
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(&bytes[..]);
    let headers = rdr
        .headers()
        .map_err(|e| fail("bad eval.csv", format!("{}: {e}", path.display())))?
        .clone();
    let rec = match rdr.records().next() {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Err(fail("bad eval.csv", format!("{}: {e}", path.display()))),
        None => {
            return Err(fail(
                "bad eval.csv",
                format!("{}: header only, no row", path.display()),
            ))
        }
    };
    if rec.len() != headers.len() {
        return Err(fail(
            "bad eval.csv",
            format!(
                "{}: the row has {} cells for {} columns (truncated?)",
                path.display(),
                rec.len(),
                headers.len()
            ),
        ));
    }
    let mut out = BTreeMap::new();
    for (h, cell) in headers.iter().zip(rec.iter()) {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        let bad = |why: &str| {
            fail(
                "bad eval.csv",
                format!("{}: column `{h}`: `{cell}` {why}", path.display()),
            )
        };
        let v: f64 = cell.parse().map_err(|_| bad("is not a number"))?;
        if !v.is_finite() {
            return Err(bad("is not finite"));
        }
        if FRACTIONS.contains(&h.trim()) && !(0.0..=1.0).contains(&v) {
            return Err(bad("is outside [0, 1]"));
        }
        out.insert(h.trim().to_string(), v);
    }
    Ok(out)
}

type TrainCurves = (Vec<String>, BTreeMap<String, Vec<(u64, f64)>>);

/// train.csv: its header and the `wanted` columns as `(step, value)`.
fn read_train(path: &Path, wanted: &[String]) -> std::result::Result<TrainCurves, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(&bytes[..]);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let Some(step_col) = headers.iter().position(|h| h == "step") else {
        return Err(format!("{}: no `step` column", path.display()));
    };
    let cols: Vec<(usize, &String)> = wanted
        .iter()
        .filter_map(|w| headers.iter().position(|h| h == w).map(|i| (i, w)))
        .collect();
    let mut curves: BTreeMap<String, Vec<(u64, f64)>> = BTreeMap::new();
    let mut rec = csv::StringRecord::new();
    let mut line = 1;
    while rdr
        .read_record(&mut rec)
        .map_err(|e| format!("{}: {e}", path.display()))?
    {
        line += 1;
        let Some(step) = rec.get(step_col).and_then(|s| s.trim().parse::<f64>().ok()) else {
            return Err(format!(
                "{}: line {line}: `step` is not a number",
                path.display()
            ));
        };
        for &(i, name) in &cols {
            if let Some(v) = rec.get(i).map(str::trim).filter(|s| !s.is_empty()) {
                if let Ok(v) = v.parse::<f64>() {
                    curves
                        .entry(name.clone())
                        .or_default()
                        .push((step as u64, v));
                }
            }
        }
    }
    Ok((headers, curves))
}

/// Groups runs by their config without seed and name.
pub fn group_runs(runs: &[Run]) -> Vec<Group> {
    let mut index: std::collections::HashMap<String, usize> = Default::default();
    // Seeds read by one thread share their parsed config: skip the key then.
    let mut by_ptr: std::collections::HashMap<*const Flat, usize> = Default::default();
    let mut groups: Vec<Group> = Vec::new();
    let mut key = String::new();
    for (i, r) in runs.iter().enumerate() {
        if let Some(&g) = by_ptr.get(&Arc::as_ptr(&r.config)) {
            groups[g].runs.push(i);
            continue;
        }
        key.clear();
        for (k, v) in r.config.iter() {
            if !IGNORED_KEYS.contains(&k.as_str()) {
                key.push_str(k);
                key.push('\u{1f}');
                value::push_canonical(v, &mut key);
                key.push('\u{1e}');
            }
        }
        let g = match index.get(&key) {
            Some(&g) => {
                groups[g].runs.push(i);
                g
            }
            None => {
                index.insert(key.clone(), groups.len());
                groups.push(Group {
                    config: (*r.config).clone(),
                    runs: vec![i],
                });
                groups.len() - 1
            }
        };
        by_ptr.insert(Arc::as_ptr(&r.config), g);
    }
    for g in &mut groups {
        g.runs.sort_by_key(|&i| (runs[i].seed, runs[i].id.clone()));
    }
    groups
}

/// The grid keys (those present), then every other key that varies across groups.
fn label_keys(grid_keys: &[String], groups: &[Group]) -> Vec<String> {
    let mut keys: Vec<String> = grid_keys
        .iter()
        .filter(|k| groups.iter().any(|g| g.config.contains_key(*k)))
        .cloned()
        .collect();
    if let Some(first) = groups.first() {
        let mut all: BTreeSet<&String> = BTreeSet::new();
        for g in groups {
            all.extend(g.config.keys());
        }
        for k in all {
            if keys.contains(k) {
                continue;
            }
            let v0 = first.config.get(k);
            if groups.iter().any(|g| g.config.get(k) != v0) {
                keys.push(k.clone());
            }
        }
    }
    keys
}

/// Orders groups by their label values (numbers numerically).
fn sort_groups(s: &mut Sweep) {
    let keys = s.label_keys.clone();
    s.groups.sort_by(|a, b| {
        for k in &keys {
            let o = match (a.config.get(k), b.config.get(k)) {
                (Some(x), Some(y)) => value::compare(x, y),
                (x, y) => x.is_some().cmp(&y.is_some()),
            };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
}
