//! The results folder of one sweep:
//!
//! ```text
//! results/<name>/sweep.toml     copy of the sweep file (with its `name`)
//! results/<name>/runs.csv       run_id, grid/include keys, seed (one row per run)
//! results/<name>/array.txt      run folders, one per line; line i = array task i
//! results/<name>/jobs.json      SLURM submissions (see slurm.rs)
//! results/<name>/<run-id>/      config.toml, status.json, ... (docs/RUNS.md)
//! ```
//! A folder belongs to one sweep: its `sweep.toml` names it, and a sweep
//! with another name is refused rather than mixed in.
use super::grid::PlannedRun;
use super::spec::SweepSpec;
use crate::run::{RunDir, State, Status};
use crate::util::write_atomic;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// A sweep's results folder.
#[derive(Debug, Clone)]
pub struct SweepFolder {
    pub root: PathBuf,
    pub name: String,
}

impl SweepFolder {
    /// `results/<name>` unless `results` overrides the folder itself.
    pub fn locate(spec: &SweepSpec, results: Option<&Path>) -> SweepFolder {
        let root = match results {
            Some(p) => p.to_path_buf(),
            None => PathBuf::from("results").join(&spec.name),
        };
        SweepFolder {
            root,
            name: spec.name.clone(),
        }
    }

    pub fn run_dir(&self, id: &str) -> RunDir {
        RunDir::new(self.root.join(id))
    }
    pub fn sweep_copy(&self) -> PathBuf {
        self.root.join("sweep.toml")
    }
    pub fn runs_csv(&self) -> PathBuf {
        self.root.join("runs.csv")
    }
    pub fn array_txt(&self) -> PathBuf {
        self.root.join("array.txt")
    }
    pub fn jobs_json(&self) -> PathBuf {
        self.root.join("jobs.json")
    }
    /// Written by `sweep cancel`: preempted runs must not requeue themselves.
    pub fn cancel_flag(&self) -> PathBuf {
        self.root.join("cancelled")
    }

    /// Refuses a folder that holds another sweep (or unrelated files).
    pub fn check_owner(&self) -> Result<()> {
        let copy = self.sweep_copy();
        match std::fs::read_to_string(&copy) {
            Ok(text) => {
                let owner = toml::from_str::<toml::Table>(&text)
                    .ok()
                    .and_then(|t| t.get("name").and_then(|v| v.as_str().map(String::from)));
                match owner {
                    Some(o) if o == self.name => Ok(()),
                    Some(o) => bail!(
                        "{} belongs to sweep `{o}`, not `{}`: refusing to mix two sweeps in one folder; pick another folder with `--results DIR` or rename the sweep (`name = \"...\"`)",
                        self.root.display(),
                        self.name
                    ),
                    None => bail!(
                        "{}: cannot tell which sweep owns {} (no `name`); move it away or use `--results DIR`",
                        copy.display(),
                        self.root.display()
                    ),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // (A `.lock` alone is a runner's, taken before the copy exists.)
                let non_empty = std::fs::read_dir(&self.root)
                    .map(|d| d.flatten().any(|e| e.file_name() != ".lock"))
                    .unwrap_or(false);
                if non_empty {
                    bail!(
                        "{} exists and is not a sweep folder (no sweep.toml): refusing to mix a sweep into it; pick another folder with `--results DIR`",
                        self.root.display()
                    );
                }
                Ok(())
            }
            Err(e) => Err(e).with_context(|| format!("{}: cannot read", copy.display())),
        }
    }

    /// Creates the folder: the sweep copy, runs.csv, array.txt and every run
    /// folder that does not exist yet (config.toml + status.json `queued`).
    /// Returns each planned run's array index.
    pub fn prepare(&self, spec: &SweepSpec, runs: &[PlannedRun]) -> Result<Vec<usize>> {
        self.check_owner()?;
        std::fs::create_dir_all(&self.root).with_context(|| {
            format!("{}: cannot create the results folder", self.root.display())
        })?;
        write_atomic(&self.sweep_copy(), sweep_copy_text(spec).as_bytes())?;
        write_atomic(&self.runs_csv(), &runs_csv(runs)?)?;
        for r in runs {
            self.materialize(r)?;
        }
        let (lines, idx) = self.array_lines(runs)?;
        let mut text = lines.join("\n");
        text.push('\n');
        write_atomic(&self.array_txt(), text.as_bytes())?;
        Ok(idx)
    }

    /// Writes a run's folder when missing; an existing one is left alone.
    pub fn materialize(&self, r: &PlannedRun) -> Result<()> {
        let dir = self.run_dir(&r.id);
        if dir.config().exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&dir.root)
            .with_context(|| format!("{}: cannot create the run folder", dir.root.display()))?;
        write_atomic(&dir.config(), r.toml.as_bytes())?;
        if dir.status()?.is_none() {
            dir.write_status(&Status::new(State::Queued, 0, ""))?;
        }
        Ok(())
    }

    /// The lines of array.txt (absolute run folders) and the plan's indices.
    /// Lines already there keep their place, so a running array job keeps
    /// mapping its task ids to the same runs; new runs are appended.
    pub fn array_lines(&self, runs: &[PlannedRun]) -> Result<(Vec<String>, Vec<usize>)> {
        let abs_root = absolute(&self.root)?;
        let mut lines: Vec<String> = match std::fs::read_to_string(self.array_txt()) {
            Ok(t) => t
                .lines()
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
            Err(_) => Vec::new(),
        };
        let mut pos: HashMap<String, usize> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i))
            .collect();
        let mut idx = Vec::with_capacity(runs.len());
        for r in runs {
            let line = abs_root.join(&r.id).display().to_string();
            let i = match pos.get(&line) {
                Some(i) => *i,
                None => {
                    lines.push(line.clone());
                    pos.insert(line, lines.len() - 1);
                    lines.len() - 1
                }
            };
            idx.push(i);
        }
        Ok((lines, idx))
    }
}

/// The sweep file's text, with a `name = ...` line first when it has none.
pub fn sweep_copy_text(spec: &SweepSpec) -> String {
    let has_name = toml::from_str::<toml::Table>(&spec.text)
        .map(|t| t.contains_key("name"))
        .unwrap_or(false);
    if has_name {
        spec.text.clone()
    } else {
        format!(
            "name = {:?}  # added by trldm sweep (the file stem)\n{}",
            spec.name, spec.text
        )
    }
}

/// The columns of runs.csv after `run_id`: every varied key, then `seed`.
pub fn varied_keys(runs: &[PlannedRun]) -> Vec<String> {
    let mut keys: BTreeSet<String> = BTreeSet::new();
    for r in runs {
        keys.extend(r.point.keys().filter(|k| *k != "seed").cloned());
    }
    let mut out: Vec<String> = keys.into_iter().collect();
    out.push("seed".into());
    out
}

/// A value as a CSV cell (strings unquoted).
pub fn cell(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// runs.csv: `run_id,<varied keys>,seed`.
pub fn runs_csv(runs: &[PlannedRun]) -> Result<Vec<u8>> {
    let keys = varied_keys(runs);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["run_id".to_string()];
    header.extend(keys.iter().cloned());
    w.write_record(&header)?;
    for r in runs {
        let value = toml::Value::try_from(&r.config)
            .map_err(|e| anyhow!("run {}: cannot serialize config: {e}", r.id))?;
        let mut row = vec![r.id.clone()];
        for k in &keys {
            row.push(crate::dotted::get(&value, k).map(cell).unwrap_or_default());
        }
        w.write_record(&row)?;
    }
    w.into_inner().map_err(|e| anyhow!("runs.csv: {e}"))
}

/// `path` made absolute against the current directory (without resolving links).
pub fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(cwd.join(path))
}
