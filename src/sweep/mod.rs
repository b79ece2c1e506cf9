//! Hyperparameter sweeps: expand a grid up front, run it locally or as a
//! SLURM job array, and track every run through its folder.
//!
//! * `spec.rs`   — the sweep TOML (`[base]`, `[grid]`, `seeds`, `[[include]]`,
//!   `[[exclude]]`, `[slurm]`, `[local]`; `[report]` is left to `trldm report`).
//! * `grid.rs`   — expansion to runs with stable ids (sha256 of the config).
//! * `folder.rs` — `results/<name>/`: sweep copy, runs.csv, array.txt, run folders.
//! * `estimate.rs` — GPU-hours from 6·N·D.
//! * `exec.rs`   — one run = `trldm train --resume` + `trldm eval` as children,
//!   with stop signals forwarded; `exec-run` requeues under SLURM.
//! * `local.rs`  — `sweep run`: N workers on this machine.
//! * `slurm.rs`  — sbatch script, submission, squeue, scancel.
//! * `status.rs` — per-run state from the folders (+ squeue).
//!
//! How a SLURM run survives preemption: the batch script `exec`s
//! `trldm sweep exec-run`, which spawns `trldm train` and forwards
//! USR1/TERM to it; the trainer checkpoints and exits 3; exec-run calls
//! `scontrol requeue $SLURM_JOB_ID` (capped by `slurm.max_requeues`, counted
//! in status.json) and the restarted task resumes; then it runs `trldm eval`.
pub mod estimate;
pub mod exec;
pub mod folder;
pub mod grid;
pub mod local;
pub mod slurm;
pub mod spec;
pub mod status;

use anyhow::{bail, Result};
use folder::SweepFolder;
use grid::PlannedRun;
use spec::SweepSpec;
use status::{RunView, View};
use std::path::{Path, PathBuf};

/// A sweep file, expanded, with its results folder.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub spec: SweepSpec,
    pub runs: Vec<PlannedRun>,
    pub folder: SweepFolder,
}

impl Sweep {
    /// Reads, checks and expands a sweep file. `results` overrides the
    /// sweep's folder (default `results/<name>`).
    pub fn load(file: &Path, results: Option<&Path>) -> Result<Sweep> {
        let spec = SweepSpec::load(file)?;
        Self::from_spec(spec, results)
    }

    pub fn from_spec(spec: SweepSpec, results: Option<&Path>) -> Result<Sweep> {
        let runs = grid::expand(&spec)?;
        let folder = SweepFolder::locate(&spec, results);
        Ok(Sweep { spec, runs, folder })
    }

    /// Total GPU-hours at `tflops`.
    pub fn gpu_hours(&self, tflops: f64) -> f64 {
        self.runs
            .iter()
            .map(|r| estimate::gpu_hours(&r.config, tflops))
            .sum::<f64>()
    }

    /// The plan as a text table (at most `max_rows` rows; 0 = all).
    pub fn plan_table(&self, tflops: f64, max_rows: usize) -> String {
        let keys = folder::varied_keys(&self.runs);
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut header = vec!["#".to_string(), "run_id".to_string()];
        header.extend(keys.iter().cloned());
        header.push("gpu_h".into());
        rows.push(header);
        let shown = if max_rows == 0 {
            self.runs.len()
        } else {
            max_rows.min(self.runs.len())
        };
        for (i, r) in self.runs.iter().take(shown).enumerate() {
            let value = toml::Value::try_from(&r.config).unwrap_or(toml::Value::Boolean(false));
            let mut row = vec![i.to_string(), r.id.clone()];
            for k in &keys {
                row.push(
                    crate::dotted::get(&value, k)
                        .map(folder::cell)
                        .unwrap_or_default(),
                );
            }
            row.push(format!("{:.3}", estimate::gpu_hours(&r.config, tflops)));
            rows.push(row);
        }
        let mut out = render_table(&rows);
        if shown < self.runs.len() {
            out.push_str(&format!(
                "... {} more runs (`--rows 0` shows all; every run is in runs.csv)\n",
                self.runs.len() - shown
            ));
        }
        out.push_str(&format!(
            "sweep {}: {} runs ({} grid keys, {} seeds), results in {}\n",
            self.spec.name,
            self.runs.len(),
            self.spec.grid.len(),
            self.spec.seeds.as_ref().map(|s| s.len()).unwrap_or(1),
            self.folder.root.display()
        ));
        out.push_str(&format!(
            "GPU-hours: {:.2} total, {:.3} per run on average\n{}\n",
            self.gpu_hours(tflops),
            self.gpu_hours(tflops) / self.runs.len().max(1) as f64,
            estimate::assumptions(tflops)
        ));
        out
    }

    /// Writes the results folder (sweep copy, runs.csv, array.txt, run
    /// folders); returns each run's array index.
    pub fn prepare(&self) -> Result<Vec<usize>> {
        self.folder.prepare(&self.spec, &self.runs)
    }

    /// Reads the state of every run (asking squeue when jobs are recorded).
    pub fn status(&self) -> Result<StatusReport> {
        let (_, indices) = self.folder.array_lines(&self.runs)?;
        let jobs = slurm::JobsFile::load(&self.folder.jobs_json())?;
        let queue = slurm::query_queue(&jobs.jobs);
        let runs = status::collect(&self.folder, &self.runs, &indices, queue.as_ref());
        Ok(StatusReport {
            sweep: self.spec.name.clone(),
            counts: status::count(&runs)
                .into_iter()
                .map(|(v, n)| (v.name().to_string(), n))
                .collect(),
            total: runs.len(),
            squeue: queue.is_some(),
            jobs: jobs.jobs.iter().map(|j| j.job_id.clone()).collect(),
            runs,
        })
    }

    /// Writes the sbatch script and submits the given runs (all when
    /// `only` is `None`). With `dry_run`, prints the script and the sbatch
    /// commands and changes nothing.
    pub fn submit(
        &self,
        opts: &SubmitOptions,
        only: Option<&[String]>,
        kind: &str,
    ) -> Result<Vec<String>> {
        let results_abs = folder::absolute(&self.folder.root)?;
        let (lines, indices) = self.folder.array_lines(&self.runs)?;
        let selected: Vec<usize> = match only {
            None => indices.clone(),
            Some(ids) => self
                .runs
                .iter()
                .zip(&indices)
                .filter(|(r, _)| ids.contains(&r.id))
                .map(|(_, i)| *i)
                .collect(),
        };
        if selected.is_empty() {
            println!("sweep {}: nothing to submit", self.spec.name);
            return Ok(Vec::new());
        }
        let s = &self.spec.slurm;
        let chunks = slurm::chunks(&selected, s.max_array_size, s.throttle);
        let bin = folder::absolute(&opts.bin)?;
        slurm::check_sbatch_value("the results folder", &results_abs.display().to_string())?;
        let script = slurm::sbatch_script(
            &slurm::ScriptInput {
                name: &self.spec.name,
                results: &results_abs,
                bin: &bin,
                array: &chunks[0].array,
                runs: selected.len(),
            },
            s,
        );
        let script_path = opts.script_dir.join(format!("{}.sbatch", self.spec.name));
        if opts.dry_run {
            print!("{script}");
            println!(
                "# would write {} ({} lines)",
                self.folder.array_txt().display(),
                lines.len()
            );
            for c in &chunks {
                println!("# sbatch {}", slurm::sbatch_args(c, &script_path).join(" "));
            }
            return Ok(Vec::new());
        }
        slurm::require_sbatch()?;
        self.prepare()?;
        let _ = std::fs::remove_file(self.folder.cancel_flag());
        crate::util::write_atomic(&script_path, script.as_bytes())?;
        let mut jobs = slurm::JobsFile::load(&self.folder.jobs_json())?;
        jobs.sweep = self.spec.name.clone();
        let mut ids = Vec::new();
        for c in &chunks {
            let id = slurm::sbatch(c, &script_path)?;
            println!(
                "submitted job {id}: {} runs, --array={}{}",
                c.runs,
                c.array,
                if c.offset > 0 {
                    format!(" (offset {})", c.offset)
                } else {
                    String::new()
                }
            );
            jobs.jobs.push(slurm::JobRecord {
                job_id: id.clone(),
                offset: c.offset,
                array: c.array.clone(),
                runs: c.runs,
                kind: kind.to_string(),
                submitted: crate::run::now_secs(),
                script: script_path.display().to_string(),
            });
            jobs.save(&self.folder.jobs_json())?;
            ids.push(id);
        }
        println!(
            "script {}; logs {}/slurm-<job>_<task>.out; follow with `trldm sweep status {}`",
            script_path.display(),
            self.folder.root.display(),
            self.spec.origin
        );
        Ok(ids)
    }

    /// Runs to resubmit: failed, interrupted, never started, or missing —
    /// never done, diverged, pending or running ones.
    pub fn retry_candidates(&self, report: &StatusReport) -> Vec<String> {
        report
            .runs
            .iter()
            .filter(|r| {
                matches!(
                    r.view,
                    View::Failed | View::Interrupted | View::Queued | View::Missing
                )
            })
            .map(|r| r.id.clone())
            .collect()
    }

    /// `sweep retry`: resets the candidates to `queued` (fresh requeue budget,
    /// checkpoints kept) and submits only them.
    pub fn retry(&self, opts: &SubmitOptions) -> Result<Vec<String>> {
        let report = self.status()?;
        let ids = self.retry_candidates(&report);
        if ids.is_empty() {
            println!(
                "sweep {}: no failed or missing runs to retry",
                self.spec.name
            );
            return Ok(Vec::new());
        }
        println!(
            "sweep {}: retrying {} runs: {}",
            self.spec.name,
            ids.len(),
            ids.join(" ")
        );
        if !opts.dry_run {
            slurm::require_sbatch()?;
            self.prepare()?;
            for id in &ids {
                let dir = self.folder.run_dir(id);
                let step = dir.status().ok().flatten().map(|s| s.step).unwrap_or(0);
                dir.write_status(&crate::run::Status::new(
                    crate::run::State::Queued,
                    step,
                    "",
                ))?;
            }
        }
        self.submit(opts, Some(&ids), "retry")
    }

    /// `sweep cancel`: marks the sweep cancelled (so preempted runs do not
    /// requeue themselves) and scancels every recorded job.
    pub fn cancel(&self) -> Result<usize> {
        let jobs = slurm::JobsFile::load(&self.folder.jobs_json())?;
        if jobs.jobs.is_empty() {
            bail!(
                "sweep {}: no SLURM jobs recorded in {} (a local `trldm sweep run` stops with Ctrl-C)",
                self.spec.name,
                self.folder.jobs_json().display()
            );
        }
        crate::util::write_atomic(
            &self.folder.cancel_flag(),
            b"cancelled by `trldm sweep cancel`\n",
        )?;
        slurm::scancel(&jobs.jobs)?;
        Ok(jobs.jobs.len())
    }

    /// Renames run folders made under an older run-id rule to the id their
    /// `config.toml` has now ([`grid::run_id`]), then rewrites `runs.csv` and
    /// `array.txt`. Folders whose config cannot be read, and renames whose
    /// target exists, are left alone and reported. Returns (old, new) pairs.
    pub fn migrate(&self) -> Result<Vec<(String, String)>> {
        self.folder.check_owner()?;
        let root = &self.folder.root;
        let entries = std::fs::read_dir(root)
            .map_err(|e| anyhow::anyhow!("{}: cannot list: {e}", root.display()))?;
        let mut renamed = Vec::new();
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("config.toml").is_file())
            .filter_map(|e| e.file_name().to_str().map(String::from))
            .collect();
        names.sort();
        for old in names {
            let cfg_path = root.join(&old).join("config.toml");
            let cfg = match load_for_migration(&cfg_path) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("migrate: left alone: {e:#}");
                    continue;
                }
            };
            let new = grid::run_id(&cfg);
            if new == old {
                continue;
            }
            if root.join(&new).exists() {
                eprintln!(
                    "migrate: left alone: {} would become {}, which exists",
                    root.join(&old).display(),
                    root.join(&new).display()
                );
                continue;
            }
            std::fs::rename(root.join(&old), root.join(&new)).map_err(|e| {
                anyhow::anyhow!("{}: cannot rename to {new}: {e}", root.join(&old).display())
            })?;
            renamed.push((old, new));
        }
        if self.folder.runs_csv().exists() {
            crate::util::write_atomic(&self.folder.runs_csv(), &folder::runs_csv(&self.runs)?)?;
        }
        if let Ok(text) = std::fs::read_to_string(self.folder.array_txt()) {
            let mut out = String::new();
            for line in text.lines().filter(|l| !l.is_empty()) {
                let path = Path::new(line);
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                match renamed.iter().find(|(o, _)| o == name) {
                    Some((_, new)) => out.push_str(&path.with_file_name(new).display().to_string()),
                    None => out.push_str(line),
                }
                out.push('\n');
            }
            crate::util::write_atomic(&self.folder.array_txt(), out.as_bytes())?;
        }
        Ok(renamed)
    }
}

/// A run folder's config for `sweep migrate`. trldm writes every key since
/// 2026-12, so a config.toml without `model.state_norm` was written before
/// bounded states existed: its run computed `state_norm = "none"`, which is
/// recorded in the file (rewritten with every key) rather than read as
/// today's default.
fn load_for_migration(path: &Path) -> Result<crate::config::RunConfig> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mut value: toml::Value = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: invalid TOML: {e}", path.display()))?;
    let recorded = value
        .get("model")
        .and_then(|m| m.get("state_norm"))
        .is_some();
    if recorded {
        return crate::config::RunConfig::from_resolved_toml_str(
            &text,
            &path.display().to_string(),
        );
    }
    crate::dotted::set(
        &mut value,
        "model.state_norm",
        toml::Value::String("none".into()),
    )
    .map_err(anyhow::Error::msg)?;
    let cfg = crate::config::RunConfig::from_resolved_value(value, &path.display().to_string())?;
    crate::util::write_atomic(path, cfg.to_toml_string().as_bytes())?;
    eprintln!(
        "migrate: {}: model.state_norm = \"none\" recorded (written before bounded states)",
        path.display()
    );
    Ok(cfg)
}

/// Options of `submit` / `retry`.
#[derive(Debug, Clone)]
pub struct SubmitOptions {
    pub bin: PathBuf,
    /// Where `<name>.sbatch` goes (default `slurm/`).
    pub script_dir: PathBuf,
    pub dry_run: bool,
}

/// What `sweep status` reports (also as JSON).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusReport {
    pub sweep: String,
    pub total: usize,
    /// Runs per state name (every state, zeros included).
    pub counts: std::collections::BTreeMap<String, usize>,
    /// Whether squeue was asked.
    pub squeue: bool,
    pub jobs: Vec<String>,
    pub runs: Vec<RunView>,
}

impl StatusReport {
    pub fn count(&self, v: View) -> usize {
        self.counts.get(v.name()).copied().unwrap_or(0)
    }

    /// Human summary: counts, then runs that need attention.
    pub fn render(&self, all: bool) -> String {
        let mut o = format!("sweep {}: {} runs", self.sweep, self.total);
        for v in View::ALL {
            let n = self.count(v);
            if n > 0 {
                o.push_str(&format!(", {n} {}", v.name()));
            }
        }
        o.push('\n');
        if !self.jobs.is_empty() {
            o.push_str(&format!(
                "SLURM jobs: {}{}\n",
                self.jobs.join(" "),
                if self.squeue {
                    ""
                } else {
                    " (squeue not available: states from the run folders only)"
                }
            ));
        }
        let mut rows = vec![vec![
            "run_id".to_string(),
            "state".into(),
            "step".into(),
            "requeues".into(),
            "reason".into(),
        ]];
        for r in &self.runs {
            if all || matches!(r.view, View::Failed | View::Diverged | View::Interrupted) {
                rows.push(vec![
                    r.id.clone(),
                    r.view.name().into(),
                    r.step.to_string(),
                    r.requeues.to_string(),
                    r.reason.clone(),
                ]);
            }
        }
        if rows.len() > 1 {
            o.push_str(&render_table(&rows));
        }
        o
    }
}

/// Left-aligned columns separated by two spaces.
pub fn render_table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut width = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Timings of the hot paths on a synthetic grid (`trldm sweep bench`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub runs: usize,
    /// Parse + expand + validate + ids.
    pub plan_s: f64,
    /// sbatch script + array.txt lines + array chunks.
    pub sbatch_s: f64,
    pub plan_and_sbatch_s: f64,
    /// Writing every run folder (one-time cost, not part of the target).
    pub materialize_s: f64,
    /// `sweep status` over every run folder (squeue not asked).
    pub status_s: f64,
    /// What `trldm sweep status FILE` costs: plan + status.
    pub status_with_plan_s: f64,
}

/// A sweep text with `n` runs (n = 10 · 10 · 10 · ... × seeds).
pub fn bench_sweep_text(n: usize) -> String {
    // 10 d values x 10 lr values x (n / 100) steps values, 1 seed.
    let steps: Vec<String> = (0..n.div_ceil(100))
        .map(|i| (100 + i).to_string())
        .collect();
    format!(
        "name = \"bench\"\n[base]\nmodel.d = 64\nmodel.heads = 4\n[grid]\n\"model.d\" = [16, 32, 48, 64, 80, 96, 112, 128, 144, 160]\n\"train.lr\" = [1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 7e-4, 8e-4, 9e-4, 1e-3]\n\"train.steps\" = [{}]\n[slurm]\nthrottle = 50\nmax_array_size = 100000\n",
        steps.join(", ")
    )
}

/// Measures plan + sbatch generation and status over `n` run folders under `dir`.
pub fn bench(n: usize, dir: &Path) -> Result<BenchReport> {
    use std::time::Instant;
    let text = bench_sweep_text(n);
    let t0 = Instant::now();
    let spec = SweepSpec::parse(&text, "bench.toml", "bench")?;
    let sweep = Sweep::from_spec(spec, Some(&dir.join("bench")))?;
    let plan_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let (lines, idx) = sweep.folder.array_lines(&sweep.runs)?;
    let chunks = slurm::chunks(
        &idx,
        sweep.spec.slurm.max_array_size,
        sweep.spec.slurm.throttle,
    );
    let script = slurm::sbatch_script(
        &slurm::ScriptInput {
            name: &sweep.spec.name,
            results: &sweep.folder.root,
            bin: Path::new("/usr/local/bin/trldm"),
            array: &chunks[0].array,
            runs: sweep.runs.len(),
        },
        &sweep.spec.slurm,
    );
    let array_txt = lines.join("\n");
    std::hint::black_box((&script, &array_txt));
    let sbatch_s = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    sweep.prepare()?;
    let materialize_s = t2.elapsed().as_secs_f64();
    let t3 = Instant::now();
    let report = sweep.status()?;
    let status_s = t3.elapsed().as_secs_f64();
    if report.count(View::Queued) != sweep.runs.len() {
        bail!(
            "bench: expected {} queued runs, status says {:?}",
            sweep.runs.len(),
            report.counts
        );
    }
    Ok(BenchReport {
        runs: sweep.runs.len(),
        plan_s,
        sbatch_s,
        plan_and_sbatch_s: plan_s + sbatch_s,
        materialize_s,
        status_s,
        status_with_plan_s: plan_s + status_s,
    })
}
