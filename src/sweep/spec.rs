//! The sweep file: parsing and key checks (no expansion; see `grid.rs`).
//!
//! ```toml
//! name = "table3"              # optional; default: the file stem
//! seeds = [0, 1, 2]            # or `seeds = 3` (= 0, 1, 2); default: base's seed
//!
//! [base]                       # a full run config (src/config/mod.rs)
//! task.kind = "maze"
//! model.d = 128
//!
//! [grid]                       # dotted keys -> lists; cartesian product
//! "model.n_rec" = [1, 2, 4]
//! model.T = [1, 2]             # nested tables work too
//!
//! [[exclude]]                  # drop grid points that match every key
//! "model.n_rec" = 4
//! "model.T" = 2
//!
//! [[include]]                  # extra points on top of base (lists = product)
//! "model.variant" = "vanilla"
//!
//! [slurm]                      # see SlurmSpec
//! [local]                      # see LocalSpec
//! [report]                     # read by `trldm report`, ignored here
//! ```
use crate::config::known_keys;
use crate::util::{closest, did_you_mean};
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top-level keys of a sweep file.
const TOP_KEYS: &[&str] = &[
    "name", "seeds", "base", "grid", "include", "exclude", "slurm", "local", "report",
];

/// A parsed sweep file (keys checked, grid not yet expanded).
#[derive(Debug, Clone)]
pub struct SweepSpec {
    /// Sweep name: `name = ...` or the file stem.
    pub name: String,
    /// Where the spec was read from (for messages).
    pub origin: String,
    /// The sweep file's text (copied to `results/<name>/sweep.toml`).
    pub text: String,
    /// `[base]` as a TOML table (a run config, possibly partial).
    pub base: toml::Value,
    /// `[grid]` flattened to dotted keys, each with its list of values.
    pub grid: BTreeMap<String, Vec<toml::Value>>,
    /// Seeds; `None` = the base config's own seed.
    pub seeds: Option<Vec<u64>>,
    /// `[[include]]` entries: dotted key -> values (one value or a list).
    pub include: Vec<BTreeMap<String, Vec<toml::Value>>>,
    /// `[[exclude]]` entries: dotted key -> accepted values.
    pub exclude: Vec<BTreeMap<String, Vec<toml::Value>>>,
    pub slurm: SlurmSpec,
    pub local: LocalSpec,
    /// `[report]` as written: read by `trldm report` (src/report/spec.rs).
    pub report: toml::Table,
}

/// `[slurm]`: how `sweep submit` writes the sbatch script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlurmSpec {
    pub partition: String,
    pub account: String,
    pub qos: String,
    /// GPUs per run (`--gres=gpu:N`; 0 = none requested). With data
    /// parallelism (`ranks_per_node` or `nodes` > 1) each rank gets one
    /// GPU (`--gpus-per-task=1`) when this is > 0.
    pub gpus: u32,
    /// Data-parallel ranks per node of one run (issue: NCCL/MPI data
    /// parallel); > 1 launches the trainer with
    /// `srun --ntasks-per-node=k --mpi=pmix`.
    pub ranks_per_node: u32,
    /// Nodes per run (data parallel across nodes).
    pub nodes: u32,
    /// CPUs per run (`--cpus-per-task`; 0 = cluster default).
    pub cpus: u32,
    /// Memory per run, e.g. "16G" (`--mem`; empty = cluster default).
    pub mem: String,
    /// Time limit, e.g. "04:00:00" (`--time`; empty = partition default).
    pub time: String,
    /// At most this many array tasks run at once (`%throttle`; 0 = no cap).
    pub throttle: u32,
    /// Requeues per run after USR1/SIGTERM before the run is marked failed.
    pub max_requeues: u32,
    /// USR1 is sent this many seconds before the time limit (`--signal=B:USR1@N`).
    pub signal_seconds: u32,
    /// Largest array index the cluster accepts + 1 (SLURM's `MaxArraySize`);
    /// bigger sweeps are submitted as several arrays.
    pub max_array_size: usize,
    /// Extra `#SBATCH` lines (with or without the `#SBATCH ` prefix).
    pub extra: Vec<String>,
    /// Shell lines run before the trainer (module loads, venv activation).
    pub setup: Vec<String>,
}

impl SlurmSpec {
    /// Values that become `#SBATCH` lines must be one line each: a newline
    /// (or any control character) would end the comment and run the rest
    /// as shell commands in the job script.
    pub fn check_sbatch_values(&self) -> Result<()> {
        let mut fields: Vec<(String, &str)> = vec![
            ("slurm.partition".into(), self.partition.as_str()),
            ("slurm.account".into(), self.account.as_str()),
            ("slurm.qos".into(), self.qos.as_str()),
            ("slurm.mem".into(), self.mem.as_str()),
            ("slurm.time".into(), self.time.as_str()),
        ];
        for (i, e) in self.extra.iter().enumerate() {
            fields.push((format!("slurm.extra[{i}]"), e.as_str()));
        }
        for (key, v) in fields {
            crate::sweep::slurm::check_sbatch_value(&key, v)?;
        }
        Ok(())
    }
}

impl Default for SlurmSpec {
    fn default() -> Self {
        SlurmSpec {
            partition: String::new(),
            account: String::new(),
            qos: String::new(),
            gpus: 0,
            ranks_per_node: 1,
            nodes: 1,
            cpus: 0,
            mem: String::new(),
            time: String::new(),
            throttle: 0,
            max_requeues: 3,
            signal_seconds: 120,
            max_array_size: 1001,
            extra: Vec::new(),
            setup: Vec::new(),
        }
    }
}

/// `[local]`: how `sweep run` runs the sweep on this machine.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalSpec {
    /// Runs at once (0 = one per device, or 1 without devices).
    pub workers: usize,
    /// GPU ids; worker i gets `CUDA_VISIBLE_DEVICES=devices[i % len]`.
    pub devices: Vec<String>,
    /// CPU threads per worker (`OMP_NUM_THREADS`; 0 = cores / workers).
    pub threads: usize,
    /// Data-parallel ranks per run (> 1 launches the trainer with `mpirun -n k`).
    pub ranks: usize,
}

impl SweepSpec {
    /// Reads and checks a sweep file.
    pub fn load(path: &Path) -> Result<SweepSpec> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("{}: cannot read the sweep file: {e}", path.display()))?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "sweep".into());
        Self::parse(&text, &path.display().to_string(), &stem)
    }

    /// Parses sweep text; `origin` names it in errors, `stem` is the default name.
    pub fn parse(text: &str, origin: &str, stem: &str) -> Result<SweepSpec> {
        let root: toml::Table = toml::from_str(text)
            .map_err(|e| anyhow!("{origin}: invalid TOML: {}", e.to_string().trim_end()))?;
        for k in root.keys() {
            if !TOP_KEYS.contains(&k.as_str()) {
                let hint = did_you_mean(k, TOP_KEYS);
                bail!(
                    "{origin}: unknown top-level key `{k}`{hint} (allowed: {})",
                    TOP_KEYS.join(", ")
                );
            }
        }
        let name = match root.get("name") {
            None => stem.to_string(),
            Some(toml::Value::String(s)) => s.clone(),
            Some(v) => bail!("{origin}: `name` must be a string, found `{v}`"),
        };
        check_name(&name).map_err(|e| anyhow!("{origin}: {e}"))?;
        let base = match root.get("base") {
            None => toml::Value::Table(Default::default()),
            Some(v @ toml::Value::Table(_)) => v.clone(),
            Some(v) => bail!("{origin}: `base` must be a table (`[base]`), found `{v}`"),
        };
        let known = known_keys();
        let grid = match root.get("grid") {
            None => BTreeMap::new(),
            Some(toml::Value::Table(t)) => {
                let flat = crate::dotted::leaves(t);
                let mut out = BTreeMap::new();
                for (key, v) in flat {
                    check_key(&key, &known, origin, "grid")?;
                    let list = match v {
                        toml::Value::Array(a) => a,
                        other => bail!(
                            "{origin}: grid key `{key}` must be a list of values, e.g. `\"{key}\" = [{other}]`"
                        ),
                    };
                    if list.is_empty() {
                        bail!("{origin}: grid key `{key}` has an empty list, so the grid has no points; give at least one value or remove the key");
                    }
                    if out.insert(key.clone(), list).is_some() {
                        bail!(
                            "{origin}: grid key `{key}` is given twice (once quoted, \"{key}\", once as a dotted or nested key); keep one list"
                        );
                    }
                }
                out
            }
            Some(v) => bail!("{origin}: `grid` must be a table (`[grid]`), found `{v}`"),
        };
        if grid.contains_key("seed") {
            bail!("{origin}: put seeds in the top-level `seeds = [...]`, not in `[grid]`");
        }
        let seeds = match root.get("seeds") {
            None => None,
            Some(toml::Value::Integer(n)) if *n > super::grid::MAX_RUNS as i64 => bail!(
                "{origin}: `seeds = {n}` asks for more than {} runs (the most one sweep may hold)",
                super::grid::MAX_RUNS
            ),
            Some(toml::Value::Integer(n)) if *n >= 1 => Some((0..*n as u64).collect()),
            Some(toml::Value::Array(a)) if !a.is_empty() => {
                let mut out = Vec::new();
                for v in a {
                    match v.as_integer() {
                        Some(i) if i >= 0 => out.push(i as u64),
                        _ => bail!("{origin}: `seeds` must hold non-negative integers, found `{v}`"),
                    }
                }
                let mut sorted = out.clone();
                sorted.sort_unstable();
                sorted.dedup();
                if sorted.len() != out.len() {
                    bail!("{origin}: `seeds` lists a seed twice: {out:?}");
                }
                Some(out)
            }
            Some(v) => bail!(
                "{origin}: `seeds` must be a count (e.g. `seeds = 3` for 0, 1, 2) or a non-empty list of integers, found `{v}`"
            ),
        };
        let include = point_list(&root, "include", &known, origin)?;
        let exclude = point_list(&root, "exclude", &known, origin)?;
        let slurm: SlurmSpec = section(&root, "slurm", origin)?;
        if slurm.max_array_size == 0 {
            bail!("{origin}: slurm.max_array_size must be at least 1");
        }
        slurm
            .check_sbatch_values()
            .map_err(|e| anyhow!("{origin}: {e}"))?;
        let local: LocalSpec = section(&root, "local", origin)?;
        let report = match root.get("report") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t.clone(),
            Some(_) => bail!(
                "{origin}: `report` must be a table with [[report.table]] / [[report.plot]] entries"
            ),
        };
        Ok(SweepSpec {
            name,
            origin: origin.to_string(),
            text: text.to_string(),
            base,
            grid,
            seeds,
            include,
            exclude,
            slurm,
            local,
            report,
        })
    }
}

impl Default for SweepSpec {
    /// The empty sweep (no runs; what `trldm report` reads from a folder without sweep.toml).
    fn default() -> Self {
        SweepSpec {
            name: String::new(),
            origin: String::new(),
            text: String::new(),
            base: toml::Value::Table(Default::default()),
            grid: BTreeMap::new(),
            seeds: None,
            include: Vec::new(),
            exclude: Vec::new(),
            slurm: SlurmSpec::default(),
            local: LocalSpec::default(),
            report: toml::Table::new(),
        }
    }
}

/// A sweep name must be a plain folder name.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if !ok {
        bail!("sweep name `{name}` must be non-empty and use only letters, digits, `-`, `_` and `.` (it names a folder)");
    }
    Ok(())
}

fn section<T: serde::de::DeserializeOwned + Default>(
    root: &toml::Table,
    key: &str,
    origin: &str,
) -> Result<T> {
    match root.get(key) {
        None => Ok(T::default()),
        Some(v) => v
            .clone()
            .try_into()
            .map_err(|e| anyhow!("{origin}: [{key}]: {}", e.to_string().trim_end())),
    }
}

/// `[[include]]` / `[[exclude]]`: arrays of tables of dotted keys.
fn point_list(
    root: &toml::Table,
    what: &str,
    known: &[String],
    origin: &str,
) -> Result<Vec<BTreeMap<String, Vec<toml::Value>>>> {
    let Some(v) = root.get(what) else {
        return Ok(Vec::new());
    };
    let toml::Value::Array(items) = v else {
        bail!("{origin}: `{what}` must be an array of tables (`[[{what}]]`)");
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let toml::Value::Table(t) = item else {
            bail!(
                "{origin}: {what} #{}: must be a table of dotted keys",
                i + 1
            );
        };
        let mut entry = BTreeMap::new();
        for (key, v) in crate::dotted::leaves(t) {
            check_key(&key, known, origin, &format!("{what} #{}", i + 1))?;
            let vals = match v {
                toml::Value::Array(a) if a.is_empty() => {
                    bail!("{origin}: {what} #{}: `{key}` has an empty list", i + 1)
                }
                toml::Value::Array(a) => a,
                other => vec![other],
            };
            entry.insert(key, vals);
        }
        if entry.is_empty() {
            bail!("{origin}: {what} #{} is empty", i + 1);
        }
        out.push(entry);
    }
    Ok(out)
}

/// Refuses a key that is not a run-config key, suggesting the closest.
fn check_key(key: &str, known: &[String], origin: &str, place: &str) -> Result<()> {
    if known.iter().any(|k| k == key) {
        return Ok(());
    }
    let hint = closest(key, known)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_else(|| "; see `[base]` keys in docs/RUNS.md / src/config/mod.rs".into());
    bail!("{origin}: {place}: unknown key `{key}`{hint}")
}

/// The results folder of a sweep: `<results_root>/<name>`.
pub fn sweep_dir(results_root: &Path, name: &str) -> PathBuf {
    results_root.join(name)
}
