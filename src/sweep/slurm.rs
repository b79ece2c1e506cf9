//! SLURM: the sbatch script, submission, the queue, cancellation.
//!
//! One job array per submission. Array task i runs line i+1 (plus
//! `TRLDM_ARRAY_OFFSET` for sweeps larger than `MaxArraySize`) of
//! `results/<name>/array.txt`; the script ends with
//! `exec trldm sweep exec-run --run-dir DIR --max-requeues K`, so the batch
//! shell becomes the runner and `--signal=B:USR1@N` reaches it. The runner
//! forwards the signal to the trainer, which checkpoints and exits 3; the
//! runner then calls `scontrol requeue` (capped) and the restarted task
//! resumes from the checkpoint (`--open-mode=append` keeps one log).
//!
//! Submissions are recorded in `results/<name>/jobs.json`; `sweep status`
//! asks `squeue` about those job ids only (never `sacct`).
use super::spec::SlurmSpec;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::status::QueueState;

/// Compresses sorted indices into SLURM's array syntax: `0-3,7,9-12`.
pub fn array_ranges(indices: &[usize]) -> String {
    let mut v: Vec<usize> = indices.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            i += 1;
            end = v[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// One `sbatch` call: array indices relative to `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub offset: usize,
    /// `--array=` value, throttle included.
    pub array: String,
    pub runs: usize,
}

/// Splits array.txt indices into arrays that fit `max_array_size`.
pub fn chunks(indices: &[usize], max_array_size: usize, throttle: u32) -> Vec<Chunk> {
    let mut v: Vec<usize> = indices.to_vec();
    v.sort_unstable();
    v.dedup();
    let size = max_array_size.max(1);
    let mut out: Vec<Chunk> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let offset = (v[i] / size) * size;
        let mut local = Vec::new();
        while i < v.len() && v[i] < offset + size {
            local.push(v[i] - offset);
            i += 1;
        }
        let mut array = array_ranges(&local);
        if throttle > 0 {
            array.push_str(&format!("%{throttle}"));
        }
        out.push(Chunk {
            offset,
            array,
            runs: local.len(),
        });
    }
    out
}

/// Refuses a value for an `#SBATCH` line that holds a control character
/// (a newline would end the comment and make the rest a shell command).
pub fn check_sbatch_value(key: &str, v: &str) -> anyhow::Result<()> {
    if let Some(c) = v.chars().find(|c| c.is_control()) {
        anyhow::bail!(
            "{key} = {v:?} contains the control character {c:?}; #SBATCH values must be one plain line"
        );
    }
    Ok(())
}

/// An `#SBATCH` option value: double-quoted (sbatch strips the quotes) when
/// it holds white space or a quote, so a path with spaces stays one value.
fn sbatch_value(v: &str) -> String {
    if v.chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\'')
    {
        format!("\"{}\"", v.replace('"', "\\\""))
    } else {
        v.to_string()
    }
}

/// Quotes a string for bash (single quotes).
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r#"'\''"#))
}

/// Everything the script needs besides `[slurm]`.
#[derive(Debug, Clone)]
pub struct ScriptInput<'a> {
    pub name: &'a str,
    /// Absolute results folder of the sweep.
    pub results: &'a Path,
    /// Absolute path of the trldm binary on the compute nodes.
    pub bin: &'a Path,
    /// `--array=` of the first submission (written into the script).
    pub array: &'a str,
    pub runs: usize,
}

/// The sbatch script.
pub fn sbatch_script(inp: &ScriptInput, s: &SlurmSpec) -> String {
    let results = inp.results.display().to_string();
    let mut o = String::with_capacity(2048);
    o.push_str("#!/bin/bash\n");
    o.push_str(&format!(
        "# Written by `trldm sweep submit` for sweep `{}` ({} runs); regenerated on every submit.\n",
        inp.name, inp.runs
    ));
    let mut sb = |line: String| {
        o.push_str("#SBATCH ");
        o.push_str(&line);
        o.push('\n');
    };
    sb(format!("--job-name=trldm-{}", inp.name));
    sb(format!("--array={}", inp.array));
    sb(format!(
        "--output={}",
        sbatch_value(&format!("{results}/slurm-%A_%a.out"))
    ));
    sb("--open-mode=append".into());
    sb("--requeue".into());
    sb(format!("--signal=B:USR1@{}", s.signal_seconds));
    if !s.partition.is_empty() {
        sb(format!("--partition={}", s.partition));
    }
    if !s.account.is_empty() {
        sb(format!("--account={}", s.account));
    }
    if !s.qos.is_empty() {
        sb(format!("--qos={}", s.qos));
    }
    if !s.time.is_empty() {
        sb(format!("--time={}", s.time));
    }
    if s.cpus > 0 {
        sb(format!("--cpus-per-task={}", s.cpus));
    }
    if !s.mem.is_empty() {
        sb(format!("--mem={}", s.mem));
    }
    let parallel = s.ranks_per_node > 1 || s.nodes > 1;
    if parallel {
        sb(format!("--nodes={}", s.nodes.max(1)));
        sb(format!("--ntasks-per-node={}", s.ranks_per_node.max(1)));
        if s.gpus > 0 {
            sb("--gpus-per-task=1".into());
        }
    } else if s.gpus > 0 {
        sb(format!("--gres=gpu:{}", s.gpus));
    }
    for e in &s.extra {
        let e = e.trim();
        sb(e.strip_prefix("#SBATCH")
            .map(str::trim)
            .unwrap_or(e)
            .to_string());
    }
    o.push_str("\nset -eo pipefail\n");
    if !s.setup.is_empty() {
        o.push_str("# [slurm] setup\n");
        for l in &s.setup {
            o.push_str(l);
            o.push('\n');
        }
    }
    o.push_str(&format!(
        r#"
INDEX_FILE={index}
LINE=$(( ${{TRLDM_ARRAY_OFFSET:-0}} + SLURM_ARRAY_TASK_ID + 1 ))
RUN_DIR=$(sed -n "${{LINE}}p" "$INDEX_FILE")
if [ -z "$RUN_DIR" ]; then
  echo "trldm: array task $SLURM_ARRAY_TASK_ID has no line $LINE in $INDEX_FILE" >&2
  exit 1
fi
echo "trldm: job ${{SLURM_JOB_ID}} task ${{SLURM_ARRAY_TASK_ID}} -> $RUN_DIR (restart ${{SLURM_RESTART_COUNT:-0}}) on $(hostname)"
# exec: this shell becomes the runner, so USR1 from --signal=B: reaches it.
exec {bin} sweep exec-run --run-dir "$RUN_DIR" --max-requeues {max}{launch}
"#,
        index = sh_quote(&format!("{results}/array.txt")),
        bin = sh_quote(&inp.bin.display().to_string()),
        max = s.max_requeues,
        launch = if parallel {
            format!(" --launcher srun --nodes {} --ranks-per-node {}{}", s.nodes.max(1), s.ranks_per_node.max(1), if s.gpus > 0 { " --gpu-per-rank" } else { "" })
        } else {
            String::new()
        },
    ));
    o
}

/// `results/<name>/jobs.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JobsFile {
    pub sweep: String,
    pub jobs: Vec<JobRecord>,
}

/// One `sbatch` submission.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    pub offset: usize,
    pub array: String,
    pub runs: usize,
    /// `submit` or `retry`.
    pub kind: String,
    pub submitted: u64,
    pub script: String,
}

impl JobsFile {
    pub fn load(path: &Path) -> Result<JobsFile> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("{}: not a valid jobs file", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(JobsFile::default()),
            Err(e) => Err(e).with_context(|| format!("{}: cannot read", path.display())),
        }
    }
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::util::write_atomic(path, &serde_json::to_vec_pretty(self)?)
    }
}

/// Error when sbatch is missing.
pub fn require_sbatch() -> Result<PathBuf> {
    crate::util::on_path("sbatch").ok_or_else(|| {
        anyhow!("sbatch not found on PATH: this machine has no SLURM client; run the sweep locally with `trldm sweep run <file>`")
    })
}

/// `sbatch --parsable [--array=..] [--export=ALL,TRLDM_ARRAY_OFFSET=..] SCRIPT` arguments.
pub fn sbatch_args(chunk: &Chunk, script: &Path) -> Vec<String> {
    let mut a = vec!["--parsable".to_string(), format!("--array={}", chunk.array)];
    if chunk.offset > 0 {
        a.push(format!("--export=ALL,TRLDM_ARRAY_OFFSET={}", chunk.offset));
    }
    a.push(script.display().to_string());
    a
}

/// Submits one chunk; returns the job id (`--parsable` prints `id[;cluster]`).
pub fn sbatch(chunk: &Chunk, script: &Path) -> Result<String> {
    let sbatch = require_sbatch()?;
    let out = Command::new(&sbatch)
        .args(sbatch_args(chunk, script))
        .output()
        .with_context(|| format!("cannot run {}", sbatch.display()))?;
    if !out.status.success() {
        bail!(
            "sbatch {} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch printed no job id (got {:?})", text.trim());
    }
    Ok(id)
}

/// Maps squeue's compact state codes.
pub fn queue_state(code: &str) -> Option<QueueState> {
    match code {
        "PD" | "RQ" | "RH" | "RF" | "RD" | "RS" | "SE" | "S" | "ST" => Some(QueueState::Pending),
        "R" | "CF" | "CG" | "SO" | "SI" => Some(QueueState::Running),
        _ => None,
    }
}

/// Parses `squeue -h -r -o "%F %K %t"` lines into array index -> state,
/// keeping only the recorded jobs (offset added).
pub fn parse_squeue(text: &str, jobs: &[JobRecord]) -> HashMap<usize, QueueState> {
    let offsets: HashMap<&str, usize> =
        jobs.iter().map(|j| (j.job_id.as_str(), j.offset)).collect();
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(job), Some(task), Some(code)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let (Some(offset), Ok(task)) = (offsets.get(job), task.parse::<usize>()) else {
            continue;
        };
        if let Some(q) = queue_state(code) {
            // A task listed twice (e.g. by two submissions): running wins.
            let e = out.entry(offset + task).or_insert(q);
            if q == QueueState::Running {
                *e = q;
            }
        }
    }
    out
}

/// Asks squeue about the recorded jobs; `None` when squeue is absent or
/// fails (then the folders alone decide).
pub fn query_queue(jobs: &[JobRecord]) -> Option<HashMap<usize, QueueState>> {
    if jobs.is_empty() {
        return None;
    }
    let squeue = crate::util::on_path("squeue")?;
    let out = Command::new(squeue)
        .args(["-h", "-r", "--me", "-o", "%F %K %t"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(parse_squeue(&String::from_utf8_lossy(&out.stdout), jobs))
}

/// `scancel` of every recorded job of the sweep.
pub fn scancel(jobs: &[JobRecord]) -> Result<()> {
    let scancel = crate::util::on_path("scancel").ok_or_else(|| {
        anyhow!("scancel not found on PATH: no SLURM client here (a local `sweep run` stops with Ctrl-C)")
    })?;
    let ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
    let out = Command::new(scancel)
        .args(&ids)
        .output()
        .context("cannot run scancel")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // Finished jobs are not an error worth stopping for.
        if !err.contains("Invalid job id") {
            bail!("scancel {} failed: {}", ids.join(" "), err.trim());
        }
    }
    Ok(())
}
