//! Unit tests of the sweep runner that need neither a trainer nor SLURM:
//! grid expansion, ids, errors, the sbatch text, status counting, folders.
use std::collections::HashMap;
use std::path::Path;
use trldm::config::Variant;
use trldm::run::{RunDir, State, Status};
use trldm::sweep::grid::{expand, hex10};
use trldm::sweep::slurm::{
    array_ranges, chunks, parse_squeue, sbatch_script, JobRecord, ScriptInput,
};
use trldm::sweep::spec::SweepSpec;
use trldm::sweep::status::{combine, QueueState, View};
use trldm::sweep::Sweep;

fn spec(text: &str) -> anyhow::Result<SweepSpec> {
    SweepSpec::parse(text, "s.toml", "s")
}

fn err(text: &str) -> String {
    match spec(text).and_then(|s| expand(&s)) {
        Ok(runs) => panic!("expected an error, got {} runs", runs.len()),
        Err(e) => format!("{e:#}"),
    }
}

const BASE: &str = "[base]\nmodel.d = 32\nmodel.heads = 2\ntrain.steps = 10\n";

#[test]
fn product_sizes_and_seeds() {
    let s = spec(&format!(
        "{BASE}[grid]\n\"model.n_rec\" = [1, 2, 4]\n\"model.T\" = [1, 2]\n"
    ))
    .unwrap();
    assert_eq!(expand(&s).unwrap().len(), 6);
    let s = spec(&format!(
        "seeds = 3\n{BASE}[grid]\n\"model.n_rec\" = [1, 2, 4]\n\"model.T\" = [1, 2]\n"
    ))
    .unwrap();
    let runs = expand(&s).unwrap();
    assert_eq!(runs.len(), 18);
    let seeds: Vec<u64> = runs.iter().take(3).map(|r| r.config.seed).collect();
    assert_eq!(seeds, vec![0, 1, 2], "seeds vary innermost");
    let s = spec(&format!(
        "seeds = [7, 9]\n{BASE}[grid]\nmodel.d = [32, 64]\n"
    ))
    .unwrap();
    let runs = expand(&s).unwrap();
    assert_eq!(runs.len(), 4);
    assert!(runs
        .iter()
        .any(|r| r.config.seed == 9 && r.config.model.d == 64));
    // Seeds give different ids.
    assert_ne!(runs[0].id, runs[1].id);
    // Nested-table grid keys work like quoted dotted ones.
    let s = spec(&format!("{BASE}[grid.model]\nn_rec = [1, 2]\n")).unwrap();
    assert_eq!(s.grid.keys().collect::<Vec<_>>(), vec!["model.n_rec"]);
}

#[test]
fn include_and_exclude() {
    let text = format!(
        "{BASE}[grid]\n\"model.n_rec\" = [1, 2, 4]\n\"model.T\" = [1, 2]\n\
         [[exclude]]\n\"model.n_rec\" = 4\n\"model.T\" = 2\n\
         [[exclude]]\n\"model.n_rec\" = [1]\n\"model.T\" = 1\n\
         [[include]]\n\"model.variant\" = \"vanilla\"\n\"model.n_rec\" = 1\n"
    );
    let runs = expand(&spec(&text).unwrap()).unwrap();
    assert_eq!(runs.len(), 6 - 2 + 1);
    assert!(!runs
        .iter()
        .any(|r| r.config.model.n_rec == 4 && r.config.model.t_cycles == 2));
    assert!(!runs.iter().any(|r| r.config.model.n_rec == 1
        && r.config.model.t_cycles == 1
        && r.config.model.variant == Variant::Trldm));
    assert_eq!(runs.last().unwrap().config.model.variant, Variant::Vanilla);
    // An exclude on a base key (not in the grid) compares the resolved value.
    let text = format!("{BASE}[grid]\n\"model.n_rec\" = [1, 2]\n[[exclude]]\n\"model.d\" = 32\n\"model.n_rec\" = 2\n");
    assert_eq!(expand(&spec(&text).unwrap()).unwrap().len(), 1);
    // The one equality of config values (as in the report's `where`):
    // 0.0001 excludes a grid value written 1e-4, and 2.0 excludes 2.
    let text = format!("{BASE}[grid]\n\"train.lr\" = [1e-4, 1e-3]\n\"model.n_rec\" = [1, 2]\n[[exclude]]\n\"train.lr\" = 0.0001\n\"model.n_rec\" = 2.0\n");
    let runs = expand(&spec(&text).unwrap()).unwrap();
    assert_eq!(runs.len(), 3);
    assert!(!runs
        .iter()
        .any(|r| r.config.train.lr == 1e-4 && r.config.model.n_rec == 2));
    // Include lists expand as a product, and get every seed.
    let text = format!("seeds = 2\n{BASE}[[include]]\n\"model.n_rec\" = [3, 5]\n");
    assert_eq!(expand(&spec(&text).unwrap()).unwrap().len(), 4);
    let e = err(&format!(
        "{BASE}[grid]\n\"model.n_rec\" = [1]\n[[exclude]]\n\"model.n_rec\" = 1\n"
    ));
    assert!(
        e.contains("every one of the 1 grid points is excluded"),
        "{e}"
    );
}

#[test]
fn ids_are_stable_under_key_order() {
    let a = spec("[base]\nmodel.d = 32\nmodel.heads = 2\n[grid]\n\"model.n_rec\" = [1, 2]\n\"train.lr\" = [1e-3]\n").unwrap();
    let b = spec("[grid]\n\"train.lr\" = [1e-3]\n\"model.n_rec\" = [1, 2]\n[base.model]\nheads = 2\nd = 32\n").unwrap();
    let ia: Vec<String> = expand(&a).unwrap().into_iter().map(|r| r.id).collect();
    let mut ib: Vec<String> = expand(&b).unwrap().into_iter().map(|r| r.id).collect();
    let mut sa = ia.clone();
    sa.sort();
    ib.sort();
    assert_eq!(sa, ib);
    assert_eq!(ia[0].len(), 10);
    assert!(ia[0].chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(hex10("x"), hex10("x"));
    assert_ne!(hex10("x"), hex10("y"));
}

#[test]
fn unknown_keys_suggest_the_closest() {
    let e = err(&format!("{BASE}[grid]\n\"model.nrec\" = [1, 2]\n"));
    assert!(
        e.contains("s.toml: grid: unknown key `model.nrec`; did you mean `model.n_rec`?"),
        "{e}"
    );
    let e = err(&format!(
        "{BASE}[grid]\n\"model.n_rec\" = [1]\n[[include]]\n\"train.lrr\" = 1e-3\n"
    ));
    assert!(
        e.contains("include #1: unknown key `train.lrr`; did you mean `train.lr`?"),
        "{e}"
    );
    let e = err(&format!(
        "{BASE}[grid]\n\"model.n_rec\" = [1]\n[[exclude]]\n\"model.TT\" = 1\n"
    ));
    assert!(e.contains("exclude #1: unknown key `model.TT`"), "{e}");
    let e = err("[base]\nmodel.dd = 3\n[grid]\n\"model.n_rec\" = [1]\n");
    assert!(
        e.contains("unknown key `model.dd`; did you mean `model.d`?"),
        "{e}"
    );
    let e = err("[bsae]\nx = 1\n");
    assert!(
        e.contains("unknown top-level key `bsae`; did you mean `base`?"),
        "{e}"
    );
    let e = err(&format!(
        "{BASE}[grid]\n\"model.n_rec\" = [1]\n[slurm]\nthrotle = 2\n"
    ));
    assert!(e.contains("[slurm]") && e.contains("throtle"), "{e}");
}

#[test]
fn wrong_types_name_the_key_and_point() {
    let e = err(&format!("{BASE}[grid]\n\"model.n_rec\" = [1, \"two\"]\n"));
    assert!(e.contains("point #2 (model.n_rec=\"two\")"), "{e}");
    assert!(
        e.contains("`model.n_rec` must be an integer, found a string"),
        "{e}"
    );
    let e = err(&format!("{BASE}[grid]\n\"model.n_rec\" = 2\n"));
    assert!(e.contains("grid key `model.n_rec` must be a list"), "{e}");
    let e = err(&format!(
        "seeds = \"x\"\n{BASE}[grid]\n\"model.n_rec\" = [1]\n"
    ));
    assert!(e.contains("`seeds` must be a count"), "{e}");
    // Validation errors (d not divisible by heads) also name the point.
    let e = err(&format!("{BASE}[grid]\n\"model.d\" = [31]\n"));
    assert!(
        e.contains("point #1 (model.d=31)") && e.contains("not divisible"),
        "{e}"
    );
}

#[test]
fn empty_grids_are_refused() {
    let e = err(BASE);
    assert!(e.contains("the sweep is empty"), "{e}");
    let e = err(&format!("{BASE}[grid]\n"));
    assert!(e.contains("the sweep is empty"), "{e}");
    let e = err(&format!("{BASE}[grid]\n\"model.n_rec\" = []\n"));
    assert!(
        e.contains("grid key `model.n_rec` has an empty list"),
        "{e}"
    );
}

#[test]
fn duplicate_runs_name_both_points() {
    // model.d = 32 is the base's value already, and the include repeats it.
    let e = err(&format!(
        "{BASE}[grid]\n\"model.d\" = [32, 64]\n[[include]]\n\"model.heads\" = 2\n"
    ));
    assert!(e.contains("duplicate run"), "{e}");
    assert!(
        e.contains("point #1 (model.d=32)") && e.contains("point #3 (model.heads=2)"),
        "{e}"
    );
    let e = err(&format!("{BASE}[grid]\n\"model.n_rec\" = [2, 2]\n"));
    assert!(e.contains("duplicate run"), "{e}");
}

#[test]
fn malformed_toml_has_line_and_column() {
    let e = format!("{:#}", spec("[base]\nmodel.d = = 3\n").unwrap_err());
    assert!(e.starts_with("s.toml: invalid TOML"), "{e}");
    assert!(e.contains("line 2") && e.contains("column"), "{e}");
}

#[test]
fn array_ranges_and_chunks() {
    assert_eq!(array_ranges(&[0, 1, 2, 3]), "0-3");
    assert_eq!(array_ranges(&[5, 0, 1, 9, 10, 12]), "0-1,5,9-10,12");
    let c = chunks(&(0..4).collect::<Vec<_>>(), 1001, 2);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].array, "0-3%2");
    let c = chunks(&(0..2500).collect::<Vec<_>>(), 1000, 0);
    assert_eq!(c.len(), 3);
    assert_eq!(
        (c[2].offset, c[2].array.as_str(), c[2].runs),
        (2000, "0-499", 500)
    );
    let c = chunks(&[3, 1004], 1000, 4);
    assert_eq!(c[0].array, "3%4");
    assert_eq!((c[1].offset, c[1].array.as_str()), (1000, "4%4"));
}

#[test]
fn data_parallel_runs_launch_ranks_with_srun() {
    let s = spec(&format!(
        "{BASE}[grid]\n\"model.n_rec\" = [1]\n[slurm]\ngpus = 1\nranks_per_node = 4\nnodes = 2\n"
    ))
    .unwrap();
    let text = sbatch_script(
        &ScriptInput {
            name: "dp",
            results: Path::new("/r/dp"),
            bin: Path::new("/opt/trldm"),
            array: "0",
            runs: 1,
        },
        &s.slurm,
    );
    for want in [
        "#SBATCH --nodes=2\n",
        "#SBATCH --ntasks-per-node=4\n",
        "#SBATCH --gpus-per-task=1\n",
        "--launcher srun --nodes 2 --ranks-per-node 4 --gpu-per-rank\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(!text.contains("--gres"), "{text}");
    let l = trldm::sweep::exec::Launcher::srun(2, 4, true);
    assert_eq!(
        l.prefix.join(" "),
        "srun --nodes=2 --ntasks-per-node=4 --mpi=pmix --kill-on-bad-exit=1 --gpus-per-task=1"
    );
}

#[test]
fn sbatch_text_has_the_essentials() {
    let s = spec(&format!(
        "{BASE}[grid]\n\"model.n_rec\" = [1]\n[slurm]\npartition = \"gpu\"\ngpus = 1\ntime = \"01:00:00\"\nthrottle = 2\nmax_requeues = 5\nsignal_seconds = 90\nextra = [\"#SBATCH --constraint=h100\", \"--exclusive\"]\nsetup = [\"module load cuda\"]\n"
    ))
    .unwrap();
    let text = sbatch_script(
        &ScriptInput {
            name: "t3",
            results: Path::new("/r/t3"),
            bin: Path::new("/opt/trldm"),
            array: "0-3%2",
            runs: 4,
        },
        &s.slurm,
    );
    for want in [
        "#!/bin/bash\n",
        "#SBATCH --array=0-3%2\n",
        "#SBATCH --signal=B:USR1@90\n",
        "#SBATCH --requeue\n",
        "#SBATCH --open-mode=append\n",
        "#SBATCH --output=/r/t3/slurm-%A_%a.out\n",
        "#SBATCH --job-name=trldm-t3\n",
        "#SBATCH --partition=gpu\n",
        "#SBATCH --gres=gpu:1\n",
        "#SBATCH --time=01:00:00\n",
        "#SBATCH --constraint=h100\n",
        "#SBATCH --exclusive\n",
        "module load cuda\n",
        "INDEX_FILE='/r/t3/array.txt'",
        "exec '/opt/trldm' sweep exec-run --run-dir \"$RUN_DIR\" --max-requeues 5\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(!text.contains("--account"), "unset options are left out");
    assert!(!text.contains("--mem"), "unset options are left out");
}

#[test]
fn squeue_lines_map_to_indices() {
    let jobs = vec![
        JobRecord {
            job_id: "5".into(),
            offset: 0,
            array: "0-3%2".into(),
            runs: 4,
            kind: "submit".into(),
            submitted: 0,
            script: String::new(),
        },
        JobRecord {
            job_id: "9".into(),
            offset: 1000,
            array: "0".into(),
            runs: 1,
            kind: "submit".into(),
            submitted: 0,
            script: String::new(),
        },
    ];
    let q = parse_squeue("5 2 PD\n5 0 R\n77 1 R\n9 0 CG\ngarbage\n", &jobs);
    assert_eq!(q.get(&2), Some(&QueueState::Pending));
    assert_eq!(q.get(&0), Some(&QueueState::Running));
    assert_eq!(q.get(&1000), Some(&QueueState::Running));
    assert_eq!(q.len(), 3, "job 77 is not ours");
}

#[test]
fn status_combines_files_and_queue() {
    assert_eq!(
        combine(View::Queued, Some(QueueState::Pending), true),
        View::Pending
    );
    assert_eq!(
        combine(View::Running, Some(QueueState::Pending), true),
        View::Pending
    ); // requeued
    assert_eq!(
        combine(View::Queued, Some(QueueState::Running), true),
        View::Running
    );
    assert_eq!(combine(View::Running, None, true), View::Interrupted);
    assert_eq!(combine(View::Running, None, false), View::Running);
    assert_eq!(
        combine(View::Done, Some(QueueState::Running), true),
        View::Done
    );
    assert_eq!(combine(View::Failed, None, true), View::Failed);
}

#[test]
fn status_counts_run_folders_and_folders_are_owned() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("tiny.toml");
    std::fs::write(
        &file,
        format!("seeds = 2\n{BASE}[grid]\n\"model.n_rec\" = [1, 2]\n"),
    )
    .unwrap();
    let results = tmp.path().join("out");
    let sweep = Sweep::load(&file, Some(&results)).unwrap();
    assert_eq!(sweep.spec.name, "tiny");
    sweep.prepare().unwrap();
    let ids: Vec<String> = sweep.runs.iter().map(|r| r.id.clone()).collect();
    // done, failed, running, queued.
    let d0 = RunDir::new(results.join(&ids[0]));
    d0.write_status(&Status::new(State::Done, 10, "")).unwrap();
    std::fs::write(d0.eval_csv(), "n\n1\n").unwrap();
    RunDir::new(results.join(&ids[1]))
        .write_status(&Status::new(State::Failed, 3, "boom"))
        .unwrap();
    RunDir::new(results.join(&ids[2]))
        .write_status(&Status::new(State::Running, 5, ""))
        .unwrap();
    let r = sweep.status().unwrap();
    assert_eq!(
        (
            r.count(View::Done),
            r.count(View::Failed),
            r.count(View::Running),
            r.count(View::Queued)
        ),
        (1, 1, 1, 1)
    );
    assert!(r.render(false).contains("boom"));
    // Done without eval.csv is not done.
    std::fs::remove_file(d0.eval_csv()).unwrap();
    assert_eq!(sweep.status().unwrap().count(View::Done), 0);
    // runs.csv, sweep copy with the name, array.txt.
    let csv = std::fs::read_to_string(results.join("runs.csv")).unwrap();
    assert!(csv.starts_with("run_id,model.n_rec,seed\n"), "{csv}");
    assert_eq!(csv.lines().count(), 5);
    let copy = std::fs::read_to_string(results.join("sweep.toml")).unwrap();
    assert!(copy.starts_with("name = \"tiny\""), "{copy}");
    let array = std::fs::read_to_string(results.join("array.txt")).unwrap();
    assert_eq!(array.lines().count(), 4);
    // Retry picks failed and never-run runs, not done or running ones.
    d0.write_status(&Status::new(State::Done, 10, "")).unwrap();
    std::fs::write(d0.eval_csv(), "n\n1\n").unwrap();
    let mut cand = sweep.retry_candidates(&sweep.status().unwrap());
    cand.sort();
    let mut want = vec![ids[1].clone(), ids[3].clone()];
    want.sort();
    assert_eq!(cand, want);
    // Another sweep may not use the folder.
    let other = tmp.path().join("other.toml");
    std::fs::write(&other, format!("{BASE}[grid]\n\"model.n_rec\" = [3]\n")).unwrap();
    let e = format!(
        "{:#}",
        Sweep::load(&other, Some(&results))
            .unwrap()
            .prepare()
            .unwrap_err()
    );
    assert!(
        e.contains("belongs to sweep `tiny`, not `other`") && e.contains("refusing to mix"),
        "{e}"
    );
    // A grown grid keeps the old array indices and appends.
    std::fs::write(
        &file,
        format!("seeds = 2\n{BASE}[grid]\n\"model.n_rec\" = [1, 2, 3]\n"),
    )
    .unwrap();
    let grown = Sweep::load(&file, Some(&results)).unwrap();
    let idx = grown.prepare().unwrap();
    let old: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    for (r, i) in grown.runs.iter().zip(&idx) {
        if let Some(o) = old.get(r.id.as_str()) {
            assert_eq!(o, i);
        } else {
            assert!(*i >= 4);
        }
    }
}

#[test]
fn gpu_hour_estimate_follows_6nd() {
    let s = spec("[base]\nmodel.d = 512\nmodel.heads = 8\nmodel.layers = 2\nmodel.ffn = 2048\nmodel.n_rec = 4\nmodel.T = 2\ntrain.steps = 1000\ntrain.batch = 64\ntask.height = 20\ntask.width = 20\n[grid]\n\"seed\" = [1]\n");
    // `seed` belongs in `seeds`.
    assert!(format!("{:#}", s.unwrap_err()).contains("seeds"));
    let s = spec("seeds = 1\n[base]\nmodel.d = 512\nmodel.heads = 8\nmodel.layers = 2\nmodel.ffn = 2048\nmodel.n_rec = 4\nmodel.T = 2\ntrain.steps = 1000\ntrain.batch = 64\ntask.height = 20\ntask.width = 20\n").unwrap();
    let c = &expand(&s).unwrap()[0].config;
    let n = 2.0 * (4.0 * 512.0 * 512.0 + 3.0 * 512.0 * 2048.0);
    assert_eq!(trldm::sweep::estimate::params(c), n);
    // Hand-computed: L = 400 tokens, 5 calls per cycle, T = 2 (one cycle
    // forward only), attention 4·L·d·layers per call and token.
    let d = 64.0 * 400.0 * 1000.0;
    let per_call = 2.0 * n + 4.0 * 400.0 * 512.0 * 2.0;
    let want = (5.0 * 1.0 + 3.0 * 5.0) * per_call * d;
    let got = trldm::sweep::estimate::train_flops(c);
    assert!((got - want).abs() / want < 1e-12, "{got} vs {want}");
}

#[test]
fn sbatch_missing_suggests_the_local_runner() {
    let saved = std::env::var_os("PATH");
    // Safe here: this test binary's other tests do not read PATH concurrently
    // for sbatch (they never submit).
    std::env::set_var("PATH", "/nonexistent");
    let e = trldm::sweep::slurm::require_sbatch()
        .unwrap_err()
        .to_string();
    if let Some(p) = saved {
        std::env::set_var("PATH", p);
    }
    assert!(
        e.contains("sbatch not found on PATH") && e.contains("trldm sweep run"),
        "{e}"
    );
}

/// Run ids hash the resolved config, so a new config key must not change
/// them while it is at its default: the committed CPU sweeps still find
/// every one of their run folders.
#[test]
fn committed_sweeps_keep_their_run_ids() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["mini", "table1", "table3", "table4", "table5"] {
        let file = root.join(format!("sweeps/cpu/{name}.toml"));
        let results = root.join(format!("results/cpu-{name}"));
        let sweep = Sweep::load(&file, Some(&results)).unwrap();
        assert!(!sweep.runs.is_empty());
        for r in &sweep.runs {
            assert!(
                results.join(&r.id).join("config.toml").is_file(),
                "{name}: planned run {} has no folder in {}",
                r.id,
                results.display()
            );
        }
    }
}

/// The paper sweeps sample every TR-LDM model on the state trajectory it
/// was trained on (docs/RECURSION.md): no run draws a trajectory warning.
#[test]
fn paper_sweeps_sample_on_the_trajectory_they_train() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for t in 1..=5 {
        let file = root.join(format!("sweeps/paper/table{t}.toml"));
        let sweep = Sweep::load(&file, Some(Path::new("/nonexistent"))).unwrap();
        for r in &sweep.runs {
            assert_eq!(
                r.config.trajectory_warning(),
                None,
                "table{t}: {:?}",
                r.point
            );
            checked += usize::from(r.config.model.variant == Variant::Trldm);
        }
    }
    assert!(checked > 100, "{checked} TR-LDM runs checked");
}

/// Hostile `[slurm]` values: a newline in any value that becomes an
/// `#SBATCH` line is refused at load, naming the key; a results path with
/// spaces and quotes stays one `--output` value, and the script is valid bash
/// whose header runs (as sbatch would not: it only sets variables) without
/// executing anything smuggled in.
#[test]
fn hostile_slurm_values_cannot_reach_the_job_shell() {
    for key in ["account", "partition", "qos", "mem", "time"] {
        let e = err(&format!(
            "{BASE}[grid]\n\"model.n_rec\" = [1]\n[slurm]\n{key} = \"x\\ntouch /tmp/pwned\"\n"
        ));
        assert!(
            e.contains(&format!("slurm.{key} = ")) && e.contains("control character"),
            "{e}"
        );
    }
    let e = err(&format!(
        "{BASE}[grid]\n\"model.n_rec\" = [1]\n[slurm]\nextra = [\"--exclusive\", \"--x\\rrm -rf /\"]\n"
    ));
    assert!(e.contains("slurm.extra[1]"), "{e}");

    let s = spec(&format!(
        "{BASE}[grid]\n\"model.n_rec\" = [1]\n[slurm]\naccount = \"a b\"\n"
    ))
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("my results \"x\"");
    let text = sbatch_script(
        &ScriptInput {
            name: "hostile",
            results: &results,
            bin: Path::new("/opt/trldm dir/trldm"),
            array: "0",
            runs: 1,
        },
        &s.slurm,
    );
    let out_line = text
        .lines()
        .find(|l| l.starts_with("#SBATCH --output="))
        .unwrap();
    assert!(
        out_line.starts_with("#SBATCH --output=\"") && out_line.ends_with("slurm-%A_%a.out\""),
        "{out_line}"
    );
    let script = tmp.path().join("s.sbatch");
    std::fs::write(&script, &text).unwrap();
    let o = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Every line before `set -eo pipefail` is a comment (the #SBATCH header).
    let header: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("set -eo"))
        .collect();
    assert!(
        header.iter().all(|l| l.is_empty() || l.starts_with('#')),
        "{header:?}"
    );
}

/// The same grid key written quoted and dotted would silently lose a list.
#[test]
fn a_grid_key_given_twice_in_two_spellings_is_refused() {
    let e = err(&format!(
        "{BASE}[grid]\n\"model.d\" = [32, 64]\nmodel.d = [16]\n"
    ));
    assert!(e.contains("grid key `model.d` is given twice"), "{e}");
}

/// A grid of 10^8 points (or 10^12 seeds) is refused at once, naming the
/// sizes, instead of planning for minutes in gigabytes; 100,000 runs pass.
#[test]
fn runaway_grids_are_refused_before_expanding() {
    let list = |n: usize| {
        let v: Vec<String> = (1..=n).map(|i| (2 * i).to_string()).collect();
        format!("[{}]", v.join(", "))
    };
    let text = format!(
        "{BASE}[grid]\n\"model.d\" = {0}\n\"model.n_rec\" = {0}\n\"train.lr\" = {1}\n\"train.steps\" = {0}\n",
        list(100),
        "[1e-3, 2e-3]"
    );
    let start = std::time::Instant::now();
    let e = err(&text);
    assert!(
        start.elapsed().as_secs_f64() < 5.0,
        "took {:?}",
        start.elapsed()
    );
    assert!(e.contains("expands to 2000000 runs"), "{e}");
    assert!(
        e.contains("model.d: 100") && e.contains("more than the 100000"),
        "{e}"
    );
    let e = err(&format!("seeds = 1000000000000\n{BASE}"));
    assert!(
        e.contains("`seeds = 1000000000000` asks for more than 100000 runs"),
        "{e}"
    );
    // At the limit: counted, not refused (100 x 1000 = 100,000 points).
    let ok = spec(&format!(
        "{BASE}[grid]\n\"model.n_rec\" = {}\n\"train.steps\" = {}\n",
        list(100),
        list(1000)
    ))
    .unwrap();
    assert_eq!(trldm::sweep::grid::count_upper_bound(&ok), 100_000);
}

/// `sweep migrate` renames a folder made under the old id rule, and records
/// `model.state_norm = "none"` in a config.toml written before the key existed
/// (that run computed no bounding), instead of reading today's default.
#[test]
fn migrate_renames_and_records_what_old_runs_computed() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!("name = \"mig\"\nseeds = [0]\n{BASE}model.state_norm = \"none\"\n[grid]\n\"model.n_rec\" = [3]\n");
    let file = tmp.path().join("mig.toml");
    std::fs::write(&file, &text).unwrap();
    let results = tmp.path().join("results");
    let sweep = Sweep::load(&file, Some(&results)).unwrap();
    let want_id = sweep.runs[0].id.clone();
    // An old folder: an old id, a config without model.state_norm.
    let old = results.join("0123456789");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(results.join("sweep.toml"), &text).unwrap();
    let cfg = sweep.runs[0].toml.replace("state_norm = \"none\"\n", "");
    assert!(!cfg.contains("state_norm"));
    std::fs::write(old.join("config.toml"), cfg).unwrap();
    let renamed = sweep.migrate().unwrap();
    assert_eq!(renamed, vec![("0123456789".to_string(), want_id.clone())]);
    let now = std::fs::read_to_string(results.join(&want_id).join("config.toml")).unwrap();
    assert!(now.contains("state_norm = \"none\""), "{now}");
    // Idempotent.
    assert!(sweep.migrate().unwrap().is_empty());
}
