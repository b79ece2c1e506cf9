//! Training on real libtorch (CPU): resume is bit-exact, a tiny model
//! memorises puzzles, divergence keeps the checkpoint, bad configs and data
//! are refused clearly.
mod common;
use std::path::Path;
use trldm::config::{DsBatches, RunConfig};
use trldm::run::{RunDir, State};
use trldm::tasks::{csvio, maze};
use trldm::train::{self, Outcome, TrainOptions, Trainer};

/// A tiny 5x5 maze run that trains in seconds on a CPU.
fn tiny(dir: &Path) -> RunConfig {
    let mut c = RunConfig::default();
    c.task.height = 5;
    c.task.width = 5;
    c.task.min_path_len = 4;
    c.task.n_train = 64;
    c.task.n_test = 16;
    c.model.d = 32;
    c.model.heads = 2;
    c.model.layers = 1;
    c.train.batch = 16;
    c.train.steps = 20;
    c.train.warmup = 5;
    c.train.ckpt_every = 10;
    c.train.log_every = 5;
    c.train.threads = 1;
    c.train.device = "cpu".into();
    c.sample.steps = 4;
    c.name = dir.display().to_string();
    c
}

fn opts(resume: bool) -> TrainOptions {
    TrainOptions {
        resume,
        quiet: true,
        ..Default::default()
    }
}

/// Every tensor of a run's last checkpoint (model, EMA, AdamW moments), sorted by name.
fn final_state(run: &RunDir) -> Vec<(String, Vec<f32>)> {
    let ck = trldm::checkpoint::load(&run.ckpt_dir())
        .unwrap()
        .expect("checkpoint");
    let mut v: Vec<(String, Vec<f32>)> = ck
        .tensors
        .iter()
        .map(|(n, t)| {
            let t = t.flatten(0, -1).to_kind(tch::Kind::Float);
            (n.clone(), Vec::<f32>::try_from(t).unwrap())
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Held by the trainings that must not overlap with a bf16 one in this
/// process. Measured on the 2-core Intel Xeon (AVX-512, AMX): an fp32 run
/// beside a `train.cpu_bf16` run on another thread of the same process does
/// not repeat its own arithmetic. `resume_is_bit_exact_on_cpu` failed in 2
/// of 2 runs next to `a_tiny_model_memorises_16_puzzles_in_bf16` (every
/// tensor off by up to 1e-3 after 20 updates) and in 0 of 2 next to each
/// other test of this file; the fresh-clone CI hit it twice. A shared
/// state found later (docs/FACTS.md, "Training threads"): autocast's
/// switches are thread-local, but its cast cache is one map for the
/// process, cleared when any thread's autocast region ends, which changes
/// how a bf16 run sums its gradients (that test's bf16 case); whether it
/// accounts for the fp32 cases was not checked. trldm runs one training
/// per process (the sweep runner starts a process per run), and its
/// training threads turn the cache off, so only these tests meet this.
static NO_BF16_BESIDE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    NO_BF16_BESIDE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn resume_is_bit_exact_on_cpu() {
    let _one_at_a_time = exclusive();
    // The carry-batch runs (TRM's loop) stop with rows in flight at
    // different supervision steps, which the checkpoint must keep.
    for (variant, bf16, carry) in [
        ("trldm", false, false),
        ("trldm-ds", false, false),
        ("trldm", true, false),
        ("trldm-ds", false, true),
        ("trm", false, true),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = tiny(tmp.path());
        cfg.model.variant = variant.parse().unwrap();
        cfg.train.cpu_bf16 = bf16;
        if carry {
            cfg.train.ds_batches = DsBatches::Carry;
            cfg.train.n_sup = 3;
            cfg.train.halting = true;
            cfg.train.halt_tau = 0.5;
            cfg.train.min_sup_steps = 1;
            cfg.train.halt_explore = 0.5;
        }
        if variant == "trm" {
            // TRM's fixed initial states, redrawn from the seed on resume.
            cfg.model.state_init = trldm::config::StateInit::Fixed;
        }
        cfg.train.unroll = if variant == "trldm" { 2 } else { 1 };
        if !carry {
            cfg.train.n_sup = 2;
        }
        cfg.train.ckpt_every = 4;
        let straight = RunDir::new(tmp.path().join("straight"));
        assert_eq!(
            train::train(&cfg, &straight, opts(false)).unwrap(),
            Outcome::Finished { step: 20 }
        );

        // Stop after 10 steps (as a signal would), then resume to the end.
        let split = RunDir::new(tmp.path().join("split"));
        let mut o = opts(false);
        o.should_stop = Some(std::sync::Arc::new(|step| step >= 10));
        assert!(matches!(
            train::train(&cfg, &split, o).unwrap(),
            Outcome::Stopped { step: 10 }
        ));
        assert_eq!(split.status().unwrap().unwrap().state, State::Running);
        assert_eq!(
            train::train(&cfg, &split, opts(true)).unwrap(),
            Outcome::Finished { step: 20 }
        );

        let a = final_state(&straight);
        let b = final_state(&split);
        assert_eq!(a.len(), b.len());
        assert!(
            a.iter().any(|(n, _)| n.starts_with("ema/"))
                && a.iter().any(|(n, _)| n.starts_with("adam_v/"))
        );
        assert_eq!(a.iter().any(|(n, _)| n.starts_with("carry/")), carry);
        for ((na, va), (nb, vb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert!(va == vb, "{variant}: {na} differs after resume");
        }
        // The resumed curve has each step once.
        let log = std::fs::read_to_string(split.train_csv()).unwrap();
        let steps: Vec<u64> = log
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        let mut sorted = steps.clone();
        sorted.dedup();
        assert_eq!(steps, sorted, "{log}");
    }
}

#[test]
fn a_nan_loss_marks_the_run_diverged_and_keeps_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny(tmp.path());
    let run = RunDir::new(tmp.path().join("r"));
    let mut o = opts(false);
    o.inject_nan_at = Some(13);
    let out = train::train(&cfg, &run, o).unwrap();
    match out {
        Outcome::Diverged { step, reason } => {
            assert_eq!(step, 12);
            assert!(reason.contains("loss is NaN at step 13"), "{reason}");
        }
        other => panic!("expected divergence, got {other:?}"),
    }
    let st = run.status().unwrap().unwrap();
    assert_eq!(st.state, State::Diverged);
    assert!(st.reason.contains("NaN"), "{}", st.reason);
    let ck = trldm::checkpoint::load(&run.ckpt_dir())
        .unwrap()
        .expect("checkpoint kept");
    assert_eq!(ck.meta.step, 10);
    assert!(ck
        .tensors
        .values()
        .all(|t| bool::try_from(t.isfinite().all()).unwrap()));
    assert!(!run.eval_csv().exists());
}

#[test]
fn an_exploding_gradient_stops_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = tiny(tmp.path());
    cfg.train.max_grad_norm = 1e-6;
    let run = RunDir::new(tmp.path().join("r"));
    match train::train(&cfg, &run, opts(false)).unwrap() {
        Outcome::Diverged { step, reason } => {
            assert_eq!(step, 0);
            assert!(reason.contains("gradient norm"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(run.status().unwrap().unwrap().state, State::Diverged);
}

/// A tiny model memorises 16 puzzles to 100% exact match.
#[test]
fn a_tiny_model_memorises_16_puzzles() {
    memorises_16_puzzles(false);
}

/// The same under bf16 autocast on the CPU (train.cpu_bf16; training and sampling).
#[test]
fn a_tiny_model_memorises_16_puzzles_in_bf16() {
    memorises_16_puzzles(true);
}

fn memorises_16_puzzles(bf16: bool) {
    let _one_at_a_time = exclusive();
    let tmp = tempfile::tempdir().unwrap();
    let opts_g = maze::GenOptions {
        h: 5,
        w: 5,
        wall_min: 0.3,
        wall_max: 0.3,
        min_path_len: 4,
    };
    let pairs = maze::generate_many(&opts_g, 16, 7).unwrap();
    let rows: Vec<_> = pairs.iter().map(|p| maze::to_row(p, "mem", "")).collect();
    let csv = tmp.path().join("mem.csv");
    csvio::write_rows(&csv, &rows).unwrap();
    let mut cfg = tiny(tmp.path());
    cfg.task.train_csv = csv.display().to_string();
    cfg.task.test_csv = csv.display().to_string();
    cfg.model.d = 64;
    cfg.model.heads = 4;
    cfg.model.n_rec = 1;
    cfg.train.steps = 1000;
    cfg.train.warmup = 20;
    cfg.train.lr = 3e-3;
    cfg.train.lr_min = 3e-4;
    cfg.train.ema = 0.9;
    cfg.train.ckpt_every = 1000;
    cfg.sample.steps = 8;
    cfg.train.cpu_bf16 = bf16;
    // One-step training never sees carried states, so sample from fresh ones
    // (docs/FACTS.md, "Measured here").
    cfg.sample.reset_y_every = 1;
    cfg.sample.reset_z_every = 1;
    let run = RunDir::new(tmp.path().join("r"));
    let mut o = opts(false);
    o.final_eval = true;
    train::train(&cfg, &run, o).unwrap();
    let eval = std::fs::read_to_string(run.eval_csv()).unwrap();
    let row: Vec<&str> = eval.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(row[0], "16");
    let exact: f64 = row[1].parse().unwrap();
    assert_eq!(
        exact,
        1.0,
        "bf16 {bf16}: eval.csv:\n{eval}\ntrain.csv:\n{}",
        std::fs::read_to_string(run.train_csv()).unwrap()
    );
}

#[test]
fn data_that_does_not_fit_the_model_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs = maze::generate_many(&maze::GenOptions::searchformer(9, 9), 4, 1).unwrap();
    let rows: Vec<_> = pairs.iter().map(|p| maze::to_row(p, "x", "")).collect();
    let csv = tmp.path().join("m9.csv");
    csvio::write_rows(&csv, &rows).unwrap();
    let mut cfg = tiny(tmp.path());
    cfg.task.train_csv = csv.display().to_string();
    let err = format!("{:#}", Trainer::new(&cfg).err().expect("must fail"));
    assert!(err.contains("task.train_csv"), "{err}");
    assert!(err.contains("m9.csv"), "{err}");
}

/// Deep supervision advances several updates per minibatch (N_sup = 4,
/// halting off): logging, evaluation and checkpoints fire whenever a
/// multiple of their period is crossed, not only when it is hit.
#[test]
fn cadence_fires_on_every_crossed_multiple_under_deep_supervision() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = tiny(tmp.path());
    cfg.model.variant = "trldm-ds".parse().unwrap();
    cfg.train.n_sup = 4;
    cfg.train.halting = false;
    cfg.train.steps = 22;
    cfg.train.log_every = 5;
    cfg.train.ckpt_every = 7;
    cfg.train.keep_ckpts = 10;
    let run = RunDir::new(tmp.path().join("ds"));
    let out = train::train(&cfg, &run, opts(false)).unwrap();
    assert!(matches!(out, Outcome::Finished { step: 22 }), "{out:?}");
    let csv = std::fs::read_to_string(run.train_csv()).unwrap();
    let steps: Vec<u64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    // Updates come in fours (4, 8, 12, ...): the first at or after each
    // multiple of 5 logs, and the last step always does.
    assert_eq!(steps, vec![8, 12, 16, 20, 22], "{csv}");
    let mut ckpts: Vec<u64> = trldm::checkpoint::step_files(&run.ckpt_dir())
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    ckpts.sort();
    // Multiples of 7 are crossed at 8, 16 and 22 (21); the last is the final save.
    assert_eq!(ckpts, vec![8, 16, 22]);
}

/// `train.ds_one_step`: each supervision step's loss gets λ times Eq. 3's
/// one-step loss, in minibatches and in carry batches. From the same
/// weights and minibatch, the first update's loss with λ = 1 exceeds the
/// plain one by a one-step loss (about ln 7 nats per masked token at
/// initialisation), and λ = 2 adds twice as much.
#[test]
fn the_one_step_loss_is_added_to_every_supervision_step() {
    let tmp = tempfile::tempdir().unwrap();
    let first_loss = |lambda: f64, batches: DsBatches| {
        let mut c = tiny(tmp.path());
        c.model.variant = trldm::config::Variant::TrldmDs;
        c.train.n_sup = 1;
        c.train.halting = false;
        c.train.ds_batches = batches;
        c.train.ds_one_step = lambda;
        let mut tr = Trainer::new(&c).unwrap();
        let (loss, norms) = tr.train_step().unwrap();
        assert_eq!(norms.len(), 1);
        loss
    };
    for batches in [DsBatches::Minibatch, DsBatches::Carry] {
        let (l0, l1, l2) = (
            first_loss(0.0, batches),
            first_loss(1.0, batches),
            first_loss(2.0, batches),
        );
        let one_step = l1 - l0;
        assert!(one_step > 0.5, "{batches:?}: {l0} {l1}");
        assert!(
            ((l2 - l0) - 2.0 * one_step).abs() < 1e-4 * l2,
            "{batches:?}: {l0} {l1} {l2}"
        );
    }
}

/// Prop. 2 measured (`trldm theory gradient`): with one step there is no
/// carried state, so detached and full gradients agree exactly; over three
/// steps full backpropagation through the carried (y, z) adds a part the
/// detached rule leaves out; the inter-step α is a finite positive number;
/// settings where the comparison is empty by construction are refused.
#[test]
fn detached_and_full_gradients_agree_only_without_a_carried_state() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = tiny(tmp.path());
    c.model.variant = trldm::config::Variant::TrldmDs;
    let tr = Trainer::new(&c).unwrap();
    let vars = tr.vs.trainable_variables();
    let rows = trldm::theory::gradient_bias(&tr.model, &vars, &c, &tr.test, 8, 3).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(
        (rows[0].cosine - 1.0).abs() < 1e-9 && rows[0].rel_diff < 1e-9,
        "{:?}",
        rows[0]
    );
    assert!(rows[0].alpha_step.is_nan());
    for r in &rows[1..] {
        assert!(r.rel_diff > 1e-4 && r.cosine < 1.0 - 1e-9, "{r:?}");
        assert!(r.alpha_step.is_finite() && r.alpha_step > 0.0, "{r:?}");
        assert!(r.norm_full > 0.0 && r.norm_detached > 0.0, "{r:?}");
    }
    let mut t2 = c.clone();
    t2.model.t_cycles = 2;
    let e = trldm::theory::gradient_bias(&tr.model, &vars, &t2, &tr.test, 8, 3)
        .unwrap_err()
        .to_string();
    assert!(e.contains("equal by construction"), "{e}");
}

/// TRM's carry batches (`train.ds_batches = "carry"`): one update per
/// training step; every row is at its own supervision step, with exactly the
/// schedule's number of positions still masked for that step; a row keeps
/// its puzzle until it finishes (N_sup steps, or halting past its floor) and
/// then starts a new one; halting exploration raises a share of the floors
/// from `min_sup_steps` to U{2..N_sup}.
#[test]
fn carry_batches_keep_each_row_on_its_own_trajectory() {
    use tch::{Kind, Tensor};
    use trldm::data::MASK;
    use trldm::sample::remaining_after_rows;
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = tiny(tmp.path());
    cfg.model.variant = "trldm-ds".parse().unwrap();
    cfg.train.ds_batches = DsBatches::Carry;
    cfg.train.n_sup = 4;
    cfg.train.batch = 64;
    cfg.train.halting = true;
    // The untrained head says h = sigmoid(-5) = 0.0067 everywhere, far above
    // this τ (logit -6.9) after 12 small updates, so a row halts as soon as
    // its floor allows.
    cfg.train.halt_tau = 0.001;
    cfg.train.min_sup_steps = 2;
    cfg.train.halt_explore = 0.5;
    let mut tr = Trainer::new(&cfg).unwrap();
    let ints = |t: &Tensor| Vec::<i64>::try_from(t.to_kind(Kind::Int64)).unwrap();
    let mut prev: Option<(Vec<i64>, Vec<i64>, Tensor)> = None;
    let (mut early, mut full, mut explored, mut plain, mut new_puzzles) = (0, 0, 0, 0, 0);
    for step in 1..=12u64 {
        let (_, norms) = tr.train_step().unwrap();
        assert_eq!((norms.len(), tr.step), (1, step), "one update per step");
        let c = tr.carry.as_ref().expect("a carry after the first step");
        let (s, halted, floor) = (ints(&c.s), ints(&c.halted), ints(&c.floor));
        // Each row has exactly as many masked positions as its own step leaves.
        let masked =
            c.tokens
                .eq(MASK)
                .logical_and(&c.data.resp)
                .sum_dim_intlist(1, false, Kind::Int64);
        let want = remaining_after_rows(cfg.sample.schedule, &c.n, &c.s, 4);
        assert_eq!(ints(&masked), ints(&want), "step {step}");
        // All-masked start: n is the response length.
        assert_eq!(
            ints(&c.n),
            ints(&c.data.resp.sum_dim_intlist(1, false, Kind::Int64))
        );
        for i in 0..64 {
            assert!(
                (1..=4).contains(&s[i]) && (2..=4).contains(&floor[i]),
                "row {i}"
            );
            if s[i] == 4 || s[i] >= floor[i] {
                assert_eq!(
                    halted[i], 1,
                    "row {i} at step {} of floor {}",
                    s[i], floor[i]
                );
            } else {
                assert_eq!(halted[i], 0, "row {i} halted below its floor");
            }
            early += (halted[i] == 1 && s[i] < 4) as usize;
            full += (s[i] == 4) as usize;
            if s[i] == 1 {
                explored += (floor[i] > 2) as usize;
                plain += (floor[i] == 2) as usize;
            }
        }
        if let Some((ps, ph, pt)) = &prev {
            for i in 0..64 {
                let same = pt.get(i as i64).equal(&c.data.target.get(i as i64));
                if ph[i] == 1 {
                    assert_eq!(s[i], 1, "a finished row starts again");
                    new_puzzles += (!same) as usize;
                } else {
                    assert_eq!(s[i], ps[i] + 1, "row {i} goes on");
                    assert!(same, "row {i} changed puzzle mid-trajectory");
                }
            }
        }
        prev = Some((s, halted, c.data.target.shallow_clone()));
    }
    assert!(early > 0 && full > 0, "early {early}, full {full}");
    assert!(new_puzzles > 0);
    // P(floor > 2) = 0.5 · 2/3 per new row.
    let share = explored as f64 / (explored + plain) as f64;
    assert!((0.2..0.5).contains(&share), "explored share {share}");
}

/// libtorch has one default random generator per process, and tests (like
/// a sweep's runs in one process) build models on several threads at once.
/// A run's initial weights must depend on its seed alone: building the same
/// config on two threads at once, many times, gives the weights of a build
/// made alone. (Without the lock in `seed::seeded`, one thread's
/// `manual_seed` landed between the other's seeding and its draws.)
#[test]
fn initial_weights_do_not_depend_on_other_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny(tmp.path());
    let info = trldm::data::TaskInfo::from_config(&cfg);
    let weights = |cfg: &RunConfig| {
        common::sorted_weights(&trldm::model::build(cfg, &info, tch::Device::Cpu).unwrap().0)
    };
    let alone = weights(&cfg);
    let mut other = cfg.clone();
    other.seed = 1;
    assert!(weights(&other) != alone, "the seed must matter");
    std::thread::scope(|s| {
        let a = s.spawn(|| (0..200).all(|_| weights(&cfg) == alone));
        let b = s.spawn(|| (0..200).all(|_| weights(&other) != alone));
        assert!(
            a.join().unwrap(),
            "a build changed while another thread built a model"
        );
        assert!(b.join().unwrap());
    });
}
