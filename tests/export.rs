//! Checkpoints that travel (docs/CHECKPOINTS.md): `trldm export` writes the
//! weights with `__metadata__`, `trldm eval --dump-logits` writes one batch of
//! logits, and the Python loader of docs/CHECKPOINTS.md (run with the venv's
//! torch) recomputes those logits from the exported weights to 1e-4.
mod common;
use common::{text, trldm};
use std::path::{Path, PathBuf};
use std::process::Command;
use trldm::checkpoint::{read_metadata, FORMAT};

/// Trains a tiny run on the CPU with extra `--set` values.
fn tiny_run(dir: &Path, extra: &[&str]) {
    let mut args: Vec<String> = ["train", "--run-dir", dir.to_str().unwrap(), "-q"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for kv in [
        "task.height=5",
        "task.width=5",
        "task.min_path_len=4",
        "task.n_train=64",
        "task.n_test=8",
        "model.d=16",
        "model.heads=2",
        "model.layers=2",
        "train.steps=20",
        "train.batch=8",
        "train.lr=3e-3",
        "train.threads=1",
        "train.device=cpu",
        "sample.steps=3",
    ]
    .iter()
    .chain(extra)
    {
        args.push("--set".into());
        args.push(kv.to_string());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = trldm(&refs);
    assert!(o.status.success(), "{}", text(&o));
}

/// The Python block of docs/CHECKPOINTS.md, written to `dir/load.py`.
fn python_snippet(dir: &Path) -> PathBuf {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CHECKPOINTS.md"))
        .unwrap();
    let start = doc.find("```python\n").expect("a python block") + "```python\n".len();
    let len = doc[start..].find("```").expect("end of the python block");
    let path = dir.join("load.py");
    std::fs::write(&path, &doc[start..start + len]).unwrap();
    path
}

fn venv_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

#[test]
fn exported_weights_reproduce_the_dumped_logits_in_python() {
    let py = venv_python();
    assert!(
        py.is_file(),
        "{} missing: run scripts/setup.sh (the venv is what tch builds against)",
        py.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let script = python_snippet(tmp.path());
    // Pre-norm with RoPE and T = 2, post-norm with learned 2D positions, a
    // baseline without recursion, per-update state norms, and RoPE with 2D
    // positions, and TRM's post-norm with fixed initial states: each path
    // of the snippet once.
    let cases: [(&str, &[&str]); 6] = [
        ("pre-rope", &["model.T=2", "model.n_rec=2"]),
        (
            "post-2d",
            &["model.norm=post", "model.pos=learned2d", "model.n_rec=3"],
        ),
        ("mdm", &["model.variant=mdm"]),
        ("update-norm", &["model.state_norm=update", "model.T=2"]),
        ("rope-and-2d", &["model.pos=rope+learned2d"]),
        // TRM's defaults: post-norm, fixed start, n = 6, T = 3.
        ("trm-fixed", &["model.variant=trm"]),
    ];
    for (name, extra) in cases {
        let run = tmp.path().join(name);
        tiny_run(&run, extra);
        if name == "trm-fixed" {
            // `--set model.variant=trm` alone gives TRM's settings.
            let c = trldm::config::RunConfig::load(&run.join("config.toml")).unwrap();
            assert_eq!((c.model.n_rec, c.model.t_cycles), (6, 3), "{c:?}");
            assert_eq!(c.model.norm, trldm::config::NormPlace::Post);
            assert_eq!(c.model.state_init, trldm::config::StateInit::Fixed);
        }
        let model = tmp.path().join(format!("{name}.safetensors"));
        let dump = tmp.path().join(format!("{name}-logits.safetensors"));
        let o = trldm(&[
            "export",
            "--run",
            run.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let o = trldm(&[
            "eval",
            "--run",
            run.to_str().unwrap(),
            "--dump-logits",
            dump.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));

        let meta = read_metadata(&model).unwrap();
        assert_eq!(meta["format"], FORMAT);
        assert_eq!(meta["contents"], "export");
        assert_eq!(meta["weights"], "ema");
        assert_eq!(meta["step"], "20");
        assert_eq!(meta["seq_len"], "25");
        assert_eq!(meta["vocab"], "7");
        assert!(meta["token_map"].starts_with("PAD = 0, MASK = 1, cell code c -> token c + 2"));
        assert!(meta["config_toml"].contains("[model]"));
        // The checkpoint itself carries the same header.
        let ckpt = run.join("ckpt/step-20.safetensors");
        assert_eq!(read_metadata(&ckpt).unwrap()["contents"], "checkpoint");

        let o = Command::new(&py)
            .arg(&script)
            .arg(&model)
            .arg(&dump)
            .output()
            .unwrap();
        let out = text(&o);
        assert!(o.status.success(), "{name}: {out}");
        let diff: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix("max_abs_diff "))
            .unwrap_or_else(|| panic!("{name}: no max_abs_diff line in {out}"))
            .trim()
            .parse()
            .unwrap();
        eprintln!("{name}: max |python - trldm| = {diff:.3e}");
        assert!(diff < 1e-4, "{name}: max abs diff {diff}");
    }
}

#[test]
fn export_and_dump_refuse_bad_paths_with_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    // A folder without a checkpoint.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("config.toml"), "").unwrap();
    let out = tmp.path().join("m.safetensors");
    let o = trldm(&[
        "export",
        "--run",
        empty.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("no checkpoint (train the run first)"),
        "{}",
        text(&o)
    );
    assert!(!out.exists());

    // --dump-logits into a folder that does not exist.
    let run = tmp.path().join("run");
    tiny_run(&run, &[]);
    let missing = tmp.path().join("no/such/folder/d.safetensors");
    let o = trldm(&[
        "eval",
        "--run",
        run.to_str().unwrap(),
        "--dump-logits",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("does not exist (create it first)"),
        "{}",
        text(&o)
    );
    assert!(!tmp.path().join("no").exists());
}
