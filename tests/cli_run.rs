//! `trldm train`, `eval` and `solve` through the real binary.
mod common;
use common::{first_row, text, trldm as run};
use std::process::Command;

const TINY: &[&str] = &[
    "--set",
    "task.height=5",
    "--set",
    "task.width=5",
    "--set",
    "task.min_path_len=4",
    "--set",
    "task.n_train=64",
    "--set",
    "task.n_test=8",
    "--set",
    "model.d=16",
    "--set",
    "model.heads=2",
    "--set",
    "model.layers=1",
    "--set",
    "train.steps=12",
    "--set",
    "train.batch=8",
    "--set",
    "train.ckpt_every=5",
    "--set",
    "train.threads=1",
    "--set",
    "sample.steps=3",
];

#[test]
fn train_eval_solve_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let rd = run_dir.to_str().unwrap();
    let mut args = vec!["train", "--run-dir", rd, "-q"];
    args.extend_from_slice(TINY);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o));
    for f in [
        "config.toml",
        "status.json",
        "train.csv",
        "eval.csv",
        "ckpt/last.json",
    ] {
        assert!(run_dir.join(f).exists(), "{f} missing");
    }
    let status = std::fs::read_to_string(run_dir.join("status.json")).unwrap();
    assert!(status.contains("\"done\""), "{status}");
    let header = std::fs::read_to_string(run_dir.join("eval.csv")).unwrap();
    assert!(
        header.starts_with(
            "n,exact,valid,optimal,len_ratio,token_acc,mean_steps,wall_s,puzzles_per_s\n8,"
        ),
        "{header}"
    );

    // Re-evaluate with other settings into another file: (n, mean_steps).
    let eval_with = |set: &str| {
        let out = tmp.path().join("eval_set.csv");
        let o = run(&[
            "eval",
            "--run",
            rd,
            "--set",
            set,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("n=8 exact="), "{}", text(&o));
        let cols = first_row(&out);
        (
            cols[0].parse::<usize>().unwrap(),
            cols[6].parse::<f64>().unwrap(),
        )
    };
    // mean_steps is exactly the override: 6, not the config's 3.
    assert_eq!(eval_with("sample.steps=6"), (8, 6.0));
    // Test-time augmentation: the 8 dihedral copies of each maze are all
    // sampled (8 x 3 steps per maze); 9 copies do not exist.
    assert_eq!(eval_with("eval.tta=8"), (8, 24.0));
    let o = run(&["eval", "--run", rd, "--set", "eval.tta=9"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("eval.tta = 9: a maze task has 8 symmetries"),
        "{}",
        text(&o)
    );

    // A trace of the carried trajectory, one row per step, and its plots.
    let trace = tmp.path().join("trace.csv");
    let o = run(&["eval", "--run", rd, "--trace", trace.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let t = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(
        lines[0],
        "step,rms_y,rms_z,committed,conf_committed,fill_token_acc,halt_p"
    );
    assert_eq!(lines.len(), 1 + 3, "{t}");
    // Every response cell is committed over the 3 steps (5x5 mazes: at most 23 per maze).
    let committed: f64 = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(3).unwrap().parse::<f64>().unwrap())
        .sum();
    assert!((1.0..=23.0).contains(&committed), "{t}");
    let o = run(&[
        "report",
        "--trace",
        trace.to_str().unwrap(),
        "--plots",
        "png",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for f in ["trace-states.png", "trace-steps.png"] {
        assert!(tmp.path().join(f).is_file(), "{f} missing: {}", text(&o));
    }

    // Solve one maze and print each denoising step.
    let maze = "S  # #   #   ## #  #   G";
    let o = run(&[
        "solve",
        "--run",
        rd,
        "--puzzle",
        &format!("{maze} "),
        "--steps",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("step 1:") && t.contains("step 3:") && t.contains("valid:"),
        "{t}"
    );

    // The theory, measured: α per inner step (n_rec = 2 by default) and
    // the Eq. 3 bound, finite and positive.
    let alpha = tmp.path().join("alpha.csv");
    let o = run(&[
        "theory",
        "contraction",
        "--run",
        rd,
        "--puzzles",
        "4",
        "--out",
        alpha.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let a = std::fs::read_to_string(&alpha).unwrap();
    let rows: Vec<Vec<f64>> = a
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 2, "{a}");
    assert!(
        rows.iter()
            .all(|r| r[1] > 0.0 && r[1].is_finite() && r[2] >= r[1]),
        "{a}"
    );
    let o = run(&["theory", "bound", "--run", rd, "--draws", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    let v: f64 = t
        .split("Eq. 3 bound: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("{t}"));
    assert!(v > 0.0 && v.is_finite(), "{t}");

    // eval may not change what was trained.
    let o = run(&["eval", "--run", rd, "--set", "model.d=32"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("`model.d` describes the trained run"),
        "{}",
        text(&o)
    );

    // A wrong puzzle length is a clear error.
    let o = run(&["solve", "--run", rd, "--puzzle", "S  G"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("wrong length"), "{}", text(&o));
}

#[test]
fn config_errors_name_key_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    let rd = tmp.path().join("r");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--set", "model.nrec=3"],
            "unknown key `model.nrec`; did you mean `model.n_rec`?",
        ),
        (
            &["--set", "model.d=abc"],
            "`model.d` must be an integer, found a string `\"abc\"`",
        ),
        (
            &["--set", "model.d=30", "--set", "model.heads=4"],
            "model.d = 30 is not divisible by model.heads = 4",
        ),
        (
            &["--set", "model.n_rec=0"],
            "model.n_rec = 0: must be at least 1",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["train", "--run-dir", rd.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert!(!o.status.success());
        assert!(text(&o).contains(want), "{extra:?}: {}", text(&o));
    }
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(&cfg, "[model]\nd = 64\n[trian]\nsteps = 3\n").unwrap();
    let o = run(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--run-dir",
        rd.to_str().unwrap(),
    ]);
    assert!(
        text(&o).contains("bad.toml: unknown key `trian`; did you mean `train`?"),
        "{}",
        text(&o)
    );
}

/// Run folders are owned (docs/RUNS.md): `train` without `--resume` refuses
/// a folder holding a run, `--force` moves it aside, and `--resume` recovers
/// from a missing `last.json` and from a truncated newest checkpoint.
#[test]
fn finished_runs_are_kept_and_damaged_checkpoints_are_survived() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let rd = run_dir.to_str().unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--run-dir", rd];
        args.extend_from_slice(TINY);
        args.extend_from_slice(&["--set", "train.device=cpu"]);
        args.extend_from_slice(extra);
        run(&args)
    };
    let o = train(&[]);
    assert!(o.status.success(), "{}", text(&o));
    let ckpt = run_dir.join("ckpt");
    let mut files: Vec<String> = std::fs::read_dir(&ckpt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    // ckpt_every = 5 over 12 steps: 5, 10, 12 written, the newest 2 kept.
    assert_eq!(
        files,
        ["last.json", "step-10.safetensors", "step-12.safetensors"]
    );
    let eval_before = std::fs::read(run_dir.join("eval.csv")).unwrap();
    let curve_before = std::fs::read(run_dir.join("train.csv")).unwrap();

    // Training again into the finished run is refused, and nothing changes.
    let o = train(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("already holds a run (ckpt/, train.csv, eval.csv)"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read(run_dir.join("eval.csv")).unwrap(),
        eval_before
    );
    assert_eq!(
        std::fs::read(run_dir.join("train.csv")).unwrap(),
        curve_before
    );
    assert!(ckpt.join("step-12.safetensors").exists());

    // --force moves the old run aside, whole.
    let o = train(&["--force"]);
    assert!(o.status.success(), "{}", text(&o));
    let aside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("run.replaced-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read(aside[0].join("eval.csv")).unwrap(),
        eval_before
    );
    assert!(aside[0].join("ckpt/step-12.safetensors").exists());

    // --resume without last.json: recovered from the newest step file.
    std::fs::remove_file(ckpt.join("last.json")).unwrap();
    let o = train(&["--resume", "--set", "train.steps=14"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resumed at step 12"), "{}", text(&o));

    // A truncated newest checkpoint: said, and the previous one is used.
    let newest = ckpt.join("step-14.safetensors");
    let len = std::fs::metadata(&newest).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap();
    f.set_len(len / 2).unwrap();
    let o = train(&["--resume", "--set", "train.steps=16"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("step-14.safetensors unreadable"), "{t}");
    assert!(t.contains("resumed at step 12"), "{t}");
}

/// A closed pipe: `data stats F | head -1` ends quietly (no panic message),
/// and a trainer whose stderr reader went away keeps training to the end.
#[test]
fn closed_pipes_end_quietly_and_training_goes_on() {
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("m.csv");
    let o = run(&[
        "data",
        "gen",
        "maze",
        "--size",
        "7",
        "--count",
        "2000",
        "--seed",
        "1",
        "--out",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let mut child = Command::new(env!("CARGO_BIN_EXE_trldm"))
        .args(["data", "stats", data.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away at once
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");

    let run_dir = tmp.path().join("run");
    let mut args = vec!["train", "--run-dir", run_dir.to_str().unwrap()];
    args.extend_from_slice(TINY);
    let mut child = Command::new(env!("CARGO_BIN_EXE_trldm"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let st = std::fs::read_to_string(run_dir.join("status.json")).unwrap();
    assert!(st.contains("\"done\""), "{st}");
}

/// Requests that would exhaust the machine end with an error that names the
/// key (never a libtorch panic or an abort), and the run is marked failed.
#[test]
fn runaway_requests_are_refused_not_panicked_on() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, (set, want)) in [
        ("model.d=1000000000", "is beyond any machine"),
        ("model.d=65536", "GiB available"),
        (
            "train.threads=100000",
            "train.threads = 100000: this machine has",
        ),
        (
            "task.augment=100000000",
            "task.augment = 100000000: 64 puzzles x 100000000 copies",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let rd = tmp.path().join(format!("r{i}"));
        let mut args = vec!["train", "--run-dir", rd.to_str().unwrap(), "-q"];
        args.extend_from_slice(TINY);
        args.extend_from_slice(&["--set", set]);
        let o = run(&args);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{set}: {out}");
        assert!(out.contains(want), "{set}: {out}");
        assert!(!out.contains("panicked"), "{set}: {out}");
        if rd.join("status.json").exists() {
            let status = std::fs::read_to_string(rd.join("status.json")).unwrap();
            assert!(status.contains("\"failed\""), "{set}: {status}");
        }
    }
}

/// A second trainer on a folder that a live trainer holds is refused (and
/// so is --force, which would move the live run aside).
#[test]
fn a_live_run_folder_is_locked_against_a_second_trainer() {
    let tmp = tempfile::tempdir().unwrap();
    let rd = tmp.path().join("run");
    let rds = rd.to_str().unwrap();
    let mut args = vec!["train", "--run-dir", rds, "-q"];
    args.extend_from_slice(TINY);
    args.extend_from_slice(&["--set", "train.steps=100000"]);
    /// Kills the live trainer however the test ends.
    struct Live(std::process::Child);
    impl Drop for Live {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let live = Live(
        Command::new(env!("CARGO_BIN_EXE_trldm"))
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    common::wait_until(
        "the first trainer writes train.csv",
        std::time::Duration::from_secs(60),
        || rd.join("train.csv").exists(),
    );
    for extra in [&["--resume"][..], &["--force"][..]] {
        let mut second = vec!["train", "--run-dir", rds, "-q"];
        second.extend_from_slice(TINY);
        second.extend_from_slice(extra);
        let o = run(&second);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {out}");
        assert!(
            out.contains("is in use: another trldm process (pid"),
            "{extra:?}: {out}"
        );
        assert!(out.contains(&live.0.id().to_string()), "{extra:?}: {out}");
    }
    assert!(
        rd.join("train.csv").exists(),
        "the live run was moved or deleted"
    );
    drop(live);
    // Once it is gone, the folder can be resumed.
    let mut again = vec!["train", "--run-dir", rds, "-q", "--resume"];
    again.extend_from_slice(TINY);
    let o = run(&again);
    assert!(o.status.success(), "{}", text(&o));
}

/// A resume with other settings records what changed, and from which step,
/// beside config.toml (which then holds the new settings).
#[test]
fn a_resume_with_changed_settings_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let rd = tmp.path().join("run");
    let rds = rd.to_str().unwrap();
    let mut args = vec!["train", "--run-dir", rds, "-q", "--no-eval"];
    args.extend_from_slice(TINY);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!rd.join("config_changes.csv").exists());
    let mut again = args.clone();
    again.extend_from_slice(&[
        "--resume",
        "--set",
        "train.steps=15",
        "--set",
        "train.lr=5e-4",
    ]);
    let o = run(&again);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("with changed settings: train.lr 0.001 -> 0.0005, train.steps 12 -> 15"),
        "{out}"
    );
    let csv = std::fs::read_to_string(rd.join("config_changes.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "step,key,old,new");
    assert!(
        lines[1].ends_with(",train.lr,\"0.001\",\"0.0005\""),
        "{csv}"
    );
    assert!(lines[2].ends_with(",train.steps,\"12\",\"15\""), "{csv}");
    assert_eq!(lines.len(), 3, "{csv}");
    let step: u64 = lines[1].split(',').next().unwrap().parse().unwrap();
    assert!(step > 0 && step <= 12, "{csv}");
    let cfg = std::fs::read_to_string(rd.join("config.toml")).unwrap();
    assert!(cfg.contains("steps = 15"), "{cfg}");
}

/// `trldm bench ... --record` appends each printed line, with the machine,
/// commit, date and command added, to `<dir>/<machine>.jsonl`; a second
/// run appends instead of overwriting.
#[test]
fn bench_record_appends_evidence_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bench");
    let d = dir.to_str().unwrap();
    let mut args = vec!["bench", "sample", "--puzzles", "4"];
    args.extend_from_slice(TINY);
    args.extend(["--record", "--record-dir", d, "--machine", "Test Box #1"]);
    for _ in 0..2 {
        let o = run(&args);
        assert!(o.status.success(), "{}", text(&o));
    }
    let file = dir.join("test-box-1.jsonl");
    let body = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{body}");
    for v in &lines {
        assert_eq!(v["bench"], "sample");
        assert_eq!(v["puzzles"], 4);
        assert_eq!(v["machine"], "test-box-1");
        assert!(v["puzzles_per_s"].as_f64().unwrap() > 0.0);
        let date = v["date"].as_str().unwrap();
        assert!(
            date.len() == 20 && date.starts_with("20") && date.ends_with('Z'),
            "{date}"
        );
        let commit = v["commit"].as_str().unwrap();
        let hex = commit.trim_end_matches("+dirty");
        assert!(
            commit == "unknown" || (hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit())),
            "{commit}"
        );
        let cmd = v["command"].as_str().unwrap();
        assert!(
            cmd.contains("bench sample --puzzles 4") && cmd.contains("--record"),
            "{cmd}"
        );
    }
}
