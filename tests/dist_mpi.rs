//! Data parallelism with real OpenMPI on the CPU (src/dist): `mpirun -n 2`
//! training for K steps at global batch B ends with the same parameters as
//! one process at batch B (max |diff| <= 1e-5), and with TRLDM_DIST_CHECK=1
//! every rank verifies after every update that all ranks hold bit-identical
//! parameters (the run fails otherwise). The same under SLURM with
//! `srun -n 2 --mpi=pmix` when a cluster is configured, and for two
//! training threads of one process (`train.workers = 2`, no MPI).
//!
//! Skipped, with the reason printed, when `mpirun` (resp. SLURM) is absent;
//! CI installs OpenMPI (scripts/setup.sh --system), so they run there.
mod common;
use common::{first_row, missing, mpi_built};
use std::path::Path;
use std::process::Command;
use trldm::checkpoint;
use trldm::run::RunDir;

const BIN: &str = env!("CARGO_BIN_EXE_trldm");

/// The tiny config of the brief: 5x5 mazes, d=32, 2 heads, 1 layer, batch 8,
/// 10 steps, one thread per rank, a checkpoint at the end.
fn tiny_args(extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "task.height=5",
        "task.width=5",
        "task.min_path_len=4",
        "task.n_train=64",
        "task.n_test=16",
        "model.d=32",
        "model.heads=2",
        "model.layers=1",
        "train.batch=8",
        "train.steps=10",
        "train.warmup=2",
        "train.threads=1",
        "train.ckpt_every=10",
        "train.log_every=5",
        "sample.steps=4",
    ]
    .iter()
    .chain(extra)
    .flat_map(|kv| ["--set".to_string(), kv.to_string()])
    .collect();
    v.push("--quiet".into());
    v
}

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn on_path(prog: &str) -> bool {
    trldm::util::on_path(prog).is_some()
}

/// Runs `launcher... trldm train <args> --run-dir dir`, panicking with its output on failure.
fn run(launcher: &[&str], dir: &Path, args: &[String], env: &[(&str, &str)]) {
    let (prog, pre) = match launcher.split_first() {
        Some((p, rest)) => (*p, rest.to_vec()),
        None => (BIN, vec![]),
    };
    let mut c = Command::new(prog);
    c.args(&pre);
    if !launcher.is_empty() {
        c.arg(BIN);
    }
    c.arg("train").args(args).arg("--run-dir").arg(dir);
    // A plain process must not look launched even if the test itself runs under a launcher.
    for v in [
        "OMPI_COMM_WORLD_SIZE",
        "PMIX_RANK",
        "SLURM_STEP_NUM_TASKS",
        "SLURM_STEP_ID",
    ] {
        if launcher.is_empty() {
            c.env_remove(v);
        }
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("start the trainer");
    assert!(
        out.status.success(),
        "{launcher:?} trldm train failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mpirun(n: usize) -> Vec<String> {
    vec![
        "mpirun".into(),
        "--allow-run-as-root".into(),
        "--oversubscribe".into(),
        "-n".into(),
        n.to_string(),
    ]
}

/// Max |a - b| over every tensor of two runs' final checkpoints (model, EMA, AdamW moments).
fn max_diff(a: &Path, b: &Path) -> f64 {
    let ca = checkpoint::load(&RunDir::new(a).ckpt_dir())
        .unwrap()
        .expect("checkpoint of the one-process run");
    let cb = checkpoint::load(&RunDir::new(b).ckpt_dir())
        .unwrap()
        .expect("checkpoint of the data-parallel run");
    assert_eq!(ca.meta.step, cb.meta.step);
    let mut names: Vec<&String> = ca.tensors.keys().collect();
    names.sort();
    let nb: Vec<&String> = {
        let mut v: Vec<&String> = cb.tensors.keys().collect();
        v.sort();
        v
    };
    assert_eq!(names, nb, "the checkpoints hold different tensors");
    let mut worst = 0.0f64;
    for n in names {
        let d = (&ca.tensors[n] - &cb.tensors[n])
            .abs()
            .max()
            .double_value(&[]);
        worst = worst.max(d);
    }
    worst
}

/// Trains the tiny run with one process (`extra`) and data-parallel under
/// `launcher` (`extra` and `ranks_extra`, e.g. `train.workers=2`, with
/// TRLDM_DIST_CHECK=1 and `env`), then compares checkpoints, logs and eval.
fn check_ranks(launcher: &[&str], extra: &[&str], ranks_extra: &[&str], env: &[(&str, &str)]) {
    let tmp = tempfile::tempdir().unwrap();
    let args = tiny_args(extra);
    let both: Vec<&str> = extra.iter().chain(ranks_extra).copied().collect();
    let one = tmp.path().join("one");
    let two = tmp.path().join("two");
    run(&[], &one, &args, &[]);
    let mut env = env.to_vec();
    env.push(("TRLDM_DIST_CHECK", "1"));
    run(launcher, &two, &tiny_args(&both), &env);
    let d = max_diff(&one, &two);
    eprintln!("{launcher:?} {both:?}: max |diff| of the checkpoints = {d:.3e}");
    assert!(d <= 1e-5, "2 ranks vs 1 process differ by {d:.3e} (> 1e-5)");
    // Only rank 0 writes train.csv: the same rows as one process, with the
    // loss averaged over the ranks equal to the one-process loss.
    let rows = |p: &Path| -> Vec<(String, f64, String)> {
        std::fs::read_to_string(p.join("train.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_string(), f[1].parse().unwrap(), f[3].to_string())
            })
            .collect()
    };
    let (r1, r2) = (rows(&one), rows(&two));
    assert!(!r1.is_empty());
    assert_eq!(r1.len(), r2.len(), "{r1:?} vs {r2:?}");
    for (a, b) in r1.iter().zip(&r2) {
        assert_eq!(a.0, b.0, "steps");
        assert!((a.1 - b.1).abs() < 1e-4, "loss {a:?} vs {b:?}");
    }
    assert!(two.join("eval.csv").exists());
    // Sharded evaluation reduced over the ranks gives the same metrics.
    let eval = |p: &Path| {
        let row = first_row(&p.join("eval.csv"));
        row[..7].to_vec()
    };
    assert_eq!(eval(&one), eval(&two));
}

#[test]
fn mpirun_two_ranks_match_one_process() {
    if !have("mpirun") || !mpi_built() {
        missing("mpirun not found or trldm built without the mpi feature (make test builds it)");
        return;
    }
    let l = mpirun(2);
    let l: Vec<&str> = l.iter().map(|s| s.as_str()).collect();
    three_trainings(&l, &[]);
}

/// [`check_ranks`] on three trainings, data-parallel under `launcher` with
/// `ranks_extra`.
fn three_trainings(launcher: &[&str], ranks_extra: &[&str]) {
    // Eq. 3 one-step training with a 2-step unroll (remasking between steps).
    check_ranks(launcher, &["train.unroll=2"], ranks_extra, &[]);
    // Algorithm 3 with halting: rows leave per rank and the loss is
    // reweighted. These thresholds (near the halting head's initial
    // sigmoid(-5) = 0.0067) make some rows halt: with 0.0057 the ranks keep
    // 3 and 2 rows; with 0.0053 one rank keeps 0 rows (a zero-weight
    // placeholder row) while the other keeps 2.
    for tau in ["train.halt_tau=0.0057", "train.halt_tau=0.0053"] {
        check_ranks(
            launcher,
            &[
                "model.variant=trldm-ds",
                "train.n_sup=4",
                "train.halting=true",
                "train.min_sup_steps=1",
                "train.lr=3e-3",
                tau,
            ],
            ranks_extra,
            &[],
        );
    }
}

/// Training threads (`train.workers = 2`, src/dist/threads.rs) in one
/// process: the same equivalence as two MPI ranks (no MPI needed, so this
/// never skips), on the same three trainings.
#[test]
fn training_threads_match_one_process() {
    three_trainings(&[], &["train.workers=2"]);
}

/// Training threads stop together on a NaN loss and resume exactly; a
/// batch they cannot share evenly and a GPU device are refused by name.
/// Training threads under bf16 autocast repeat bit for bit, run to run.
/// libtorch's cast cache is one map for the process and each thread's
/// autocast region clears it when it ends, so with the cache on, whether a
/// weight's uses shared one bf16 cast (gradient summed in bf16) or not
/// depended on the other thread's timing (trldm::amp::set_cast_cache_in_this_thread).
#[test]
fn training_threads_in_bf16_repeat_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let args = tiny_args(&[
        "train.workers=2",
        "train.cpu_bf16=true",
        "model.layers=2",
        "model.n_rec=3",
        "train.steps=30",
        "train.ckpt_every=30",
    ]);
    let dirs: Vec<_> = (0..3).map(|i| tmp.path().join(format!("run{i}"))).collect();
    for d in &dirs {
        run(&[], d, &args, &[]);
    }
    for d in &dirs[1..] {
        let diff = max_diff(&dirs[0], d);
        assert_eq!(
            diff,
            0.0,
            "{} differs from {}",
            d.display(),
            dirs[0].display()
        );
    }
}

#[test]
fn training_threads_diverge_together_resume_and_refuse_what_they_cannot_do() {
    diverge_then_resume(&[], &["train.workers=2"]);
    let tmp = tempfile::tempdir().unwrap();
    for (set, want) in [
        (
            "train.batch=7",
            "train.batch = 7 is not divisible by train.workers = 2",
        ),
        (
            "train.device=cuda",
            "train.device = \"cuda\"", // no GPU here: refused by the device check
        ),
    ] {
        let out = Command::new(BIN)
            .arg("train")
            .args(tiny_args(&["train.workers=2", set]))
            .arg("--run-dir")
            .arg(tmp.path().join(set))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{set}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{set}: {err}");
    }
}

/// Divergence is decided on all-reduced values (every rank stops at the same
/// step), and a resumed 2-rank run (checkpoint read, then broadcast from rank
/// 0) ends where one uninterrupted process ends.
#[test]
fn mpirun_diverges_together_and_resumes_exactly() {
    if !have("mpirun") || !mpi_built() {
        missing("mpirun not found or trldm built without the mpi feature");
        return;
    }
    let l = mpirun(2);
    let l: Vec<&str> = l.iter().map(|s| s.as_str()).collect();
    diverge_then_resume(&l, &[]);
}

/// A NaN loss injected at update 7 under `launcher` with `ranks_extra`:
/// every rank stops (exit code 4, status diverged, the checkpoint of step
/// 5 kept); resumed, the run ends where one uninterrupted process ends.
fn diverge_then_resume(launcher: &[&str], ranks_extra: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let args = tiny_args(&["train.ckpt_every=5"]);
    let one = tmp.path().join("one");
    let two = tmp.path().join("two");
    run(&[], &one, &args, &[]);
    let ranks: Vec<&str> = ["train.ckpt_every=5"]
        .into_iter()
        .chain(ranks_extra.iter().copied())
        .collect();
    let ranks = tiny_args(&ranks);
    let (prog, pre): (&str, &[&str]) = match launcher.split_first() {
        Some((p, rest)) => (p, rest),
        None => (BIN, &[]),
    };
    let mut c = Command::new(prog);
    c.args(pre);
    if !launcher.is_empty() {
        c.arg(BIN);
    }
    let out = c
        .arg("train")
        .args(&ranks)
        .args(["--inject-nan-at", "7", "--run-dir"])
        .arg(&two)
        .env("TRLDM_DIST_CHECK", "1")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = std::fs::read_to_string(two.join("status.json")).unwrap();
    assert!(st.contains("diverged"), "{st}");
    let mut resume = ranks.clone();
    resume.push("--resume".into());
    run(launcher, &two, &resume, &[("TRLDM_DIST_CHECK", "1")]);
    let d = max_diff(&one, &two);
    eprintln!("{launcher:?} {ranks_extra:?}: resumed vs 1 process: max |diff| = {d:.3e}");
    assert!(d <= 1e-5, "{d:.3e}");
}

#[test]
fn mpirun_refuses_a_batch_not_divisible_by_the_ranks() {
    if !have("mpirun") || !mpi_built() {
        missing("mpirun not found or trldm built without the mpi feature");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("mpirun")
        .args([
            "--allow-run-as-root",
            "--oversubscribe",
            "-n",
            "2",
            BIN,
            "train",
        ])
        .args(tiny_args(&["train.batch=7"]))
        .arg("--run-dir")
        .arg(tmp.path().join("r"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not divisible"), "{err}");
}

/// Stops a cluster started by scripts/slurm-cluster.sh when dropped.
struct Cluster(std::path::PathBuf, std::path::PathBuf);

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.0)
            .arg("stop")
            .arg(&self.1)
            .output();
    }
}

/// The same equivalence under SLURM with `srun -n 2 --mpi=pmix`. Uses the
/// cluster of SLURM_CONF when set; else starts a single-node cluster with
/// scripts/slurm-cluster.sh (root, slurm-wlm, munge, libpmix2) in a
/// temporary folder; else skips, saying why.
#[test]
fn srun_two_ranks_match_one_process() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-cluster.sh");
    let tmp = tempfile::tempdir().unwrap();
    let mut _cluster = None;
    let mut env: Vec<(&str, String)> = vec![];
    if std::env::var_os("SLURM_CONF").is_none() {
        if !script.exists() {
            missing(&format!(
                "SLURM_CONF is not set and {} is absent",
                script.display()
            ));
            return;
        }
        if !on_path("slurmctld") {
            missing(
                "SLURM_CONF is not set and slurmctld is not installed \
                 (apt-get install slurm-wlm munge libpmix2)",
            );
            return;
        }
        let dir = tmp.path().join("cluster");
        let out = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} start failed:\n{}{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        _cluster = Some(Cluster(script.clone(), dir.clone()));
        env.push(("SLURM_CONF", dir.join("slurm.conf").display().to_string()));
    }
    if !on_path("srun") || !mpi_built() {
        missing("srun is not installed or trldm built without the mpi feature");
        return;
    }
    let l = ["srun", "-n", "2", "--mpi=pmix", "--export=ALL", "--time=5"];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    check_ranks(&l, &["train.unroll=2"], &[], &env);
}
