//! Deep supervision (Algorithm 3), halting, distillation (Eq. 8) and every
//! baseline of the paper's tables, on real libtorch (CPU).
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Device, Kind, Tensor};
use trldm::config::{RunConfig, Variant};
use trldm::train::{loss, Trainer};

fn tiny() -> RunConfig {
    let mut c = RunConfig::default();
    c.task.height = 5;
    c.task.width = 5;
    c.task.min_path_len = 4;
    c.task.n_train = 64;
    c.task.n_test = 8;
    c.model.d = 32;
    c.model.heads = 2;
    c.model.layers = 1;
    c.train.batch = 16;
    c.train.steps = 1000;
    c.train.warmup = 5;
    c.train.lr = 2e-3;
    c.train.threads = 1;
    c.train.n_sup = 3;
    c.sample.steps = 4;
    c
}

#[test]
fn deep_sup_without_halting_makes_exactly_n_sup_updates() {
    let mut c = tiny();
    c.model.variant = "trldm-ds".parse().unwrap();
    c.train.halting = false;
    c.train.n_sup = 3;
    let mut tr = Trainer::new(&c).unwrap();
    for k in 1..=3u64 {
        let (_, norms) = tr.train_step().unwrap();
        assert_eq!(norms.len(), 3);
        assert_eq!(tr.step, 3 * k);
        assert_eq!(tr.opt.t, 3 * k as i64);
    }
}

#[test]
fn deep_sup_with_tau_zero_makes_the_minimum_steps() {
    for variant in ["trldm-ds", "trm"] {
        let mut c = tiny();
        c.model.variant = variant.parse().unwrap();
        c.train.n_sup = 5;
        c.train.min_sup_steps = 2;
        // τ = 0 is refused in a config file; set it here to test the loop.
        c.train.halt_tau = 0.0;
        let mut tr = Trainer::new(&c).unwrap();
        let (_, norms) = tr.train_step().unwrap();
        assert_eq!(norms.len(), 2, "{variant}");
        c.train.min_sup_steps = 1;
        let mut tr = Trainer::new(&c).unwrap();
        assert_eq!(tr.train_step().unwrap().1.len(), 1, "{variant}");
    }
}

/// The halting target is the exact-match indicator of the decoded response.
#[test]
fn halting_targets_are_the_exact_match_indicator() {
    tch::manual_seed(3);
    let (b, l, v) = (64, 6, 3);
    let target = Tensor::randint(v, [b, l], (Kind::Int64, Device::Cpu));
    let resp = Tensor::rand([b, l], (Kind::Float, Device::Cpu)).lt(0.5);
    // Logits that decode to the target except where a coin says otherwise.
    let noise = Tensor::rand([b, l], (Kind::Float, Device::Cpu)).lt(0.08);
    let decoded = target.where_self(&noise.logical_not(), &((&target + 1).remainder(v)));
    let logits = decoded.one_hot(v).to_kind(Kind::Float) * 5.0;
    let got = Vec::<bool>::try_from(loss::exact_match(&logits, &target, &resp)).unwrap();
    let dec = Vec::<i64>::try_from(decoded.flatten(0, -1)).unwrap();
    let tgt = Vec::<i64>::try_from(target.flatten(0, -1)).unwrap();
    let rsp = Vec::<bool>::try_from(resp.flatten(0, -1)).unwrap();
    let mut both = [0, 0];
    for i in 0..b as usize {
        let want = (0..l as usize).all(|j| {
            !rsp[i * l as usize + j] || dec[i * l as usize + j] == tgt[i * l as usize + j]
        });
        assert_eq!(got[i], want, "row {i}");
        both[want as usize] += 1;
    }
    assert!(both[0] > 0 && both[1] > 0, "{both:?}");
}

fn python() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    venv.exists().then_some(venv)
}

fn make_teacher(dir: &Path, vocab: usize) -> PathBuf {
    let out = dir.join(format!("teacher{vocab}.pt"));
    let py = python()
        .expect(".venv/bin/python (created by scripts/setup.sh) writes the TorchScript teacher");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make_teacher.py");
    let st = Command::new(py)
        .arg(&script)
        .arg(&out)
        .arg(vocab.to_string())
        .arg("16")
        .status()
        .unwrap();
    assert!(st.success());
    out
}

#[test]
fn a_torchscript_teacher_loads_and_distils() {
    let tmp = tempfile::tempdir().unwrap();
    let good = make_teacher(tmp.path(), 7);
    let mut c = tiny();
    c.train.lambda_kd = 1.0;
    c.train.kd_teacher = good.display().to_string();
    c.train.kd_temp = 2.0;
    let mut tr = Trainer::new(&c).unwrap();
    let t = tr.teacher.as_ref().unwrap();
    let logits = t
        .logits(&Tensor::ones([2, 25], (Kind::Int64, Device::Cpu)))
        .unwrap();
    assert_eq!(logits.size(), vec![2, 25, 7]);
    let (l0, _) = tr.train_step().unwrap();
    // The KD term adds to Eq. 3: the same step without a teacher has a lower loss.
    let mut c0 = c.clone();
    c0.train.lambda_kd = 0.0;
    let mut tr0 = Trainer::new(&c0).unwrap();
    let (l1, _) = tr0.train_step().unwrap();
    assert!(l0 > l1 + 1e-4, "with KD {l0}, without {l1}");

    // A teacher with another vocabulary is refused.
    let bad = make_teacher(tmp.path(), 9);
    c.train.kd_teacher = bad.display().to_string();
    let err = format!("{:#}", Trainer::new(&c).err().unwrap());
    assert!(
        err.contains("train.kd_teacher") && err.contains("vocabulary 7"),
        "{err}"
    );
}

#[test]
fn a_run_folder_teacher_loads_and_a_self_teacher_adds_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = tiny();
    c.train.steps = 5;
    c.train.ema = 0.0;
    let run = trldm::run::RunDir::new(tmp.path().join("teacher"));
    let o = trldm::train::TrainOptions {
        quiet: true,
        ..Default::default()
    };
    trldm::train::train(&c, &run, o).unwrap();
    // Student = the teacher's own weights: KL(p ‖ p) = 0 at every masked position.
    let mut s = c.clone();
    s.train.lambda_kd = 1.0;
    s.train.kd_teacher = run.root.display().to_string();
    let mut tr = Trainer::new(&s).unwrap();
    assert!(tr.restore(&run).unwrap());
    let batch_tokens = tr.train.input.narrow(0, 0, 8);
    let resp = tr.train.resp.narrow(0, 0, 8);
    let out = tr.forward(&batch_tokens, None);
    let l_r = resp.sum_dim_intlist(1, false, Kind::Float);
    let kd = f64::try_from(tr.kd_term(&batch_tokens, &out.logits, &resp, &l_r.ones_like(), &l_r))
        .unwrap();
    assert!(kd.abs() < 1e-6, "{kd}");
    // A teacher for a different grid is refused.
    let mut other = tiny();
    other.task.height = 6;
    other.task.width = 6;
    other.train.lambda_kd = 1.0;
    other.train.kd_teacher = run.root.display().to_string();
    let err = format!("{:#}", Trainer::new(&other).err().unwrap());
    assert!(err.contains("differs from the student's"), "{err}");
}

/// Every variant of Tables 1-5 (and the no-y / no-z ablations) learns more
/// than token frequencies: after 300 minibatches on 16 tiny mazes, Algorithm
/// 4 gets at least 5 points more of the answer cells right than the best
/// frequency-only model (the most frequent answer token everywhere, 72.7 %
/// here). The check this replaces (loss down 20 % in 60 minibatches, on 64
/// mazes at d = 32) passed models that had learned next to nothing beyond
/// the frequencies: measured there, the 11 configurations got 71.5-77.1 %
/// of the answer cells right against 73.3 % for frequencies alone, none of
/// them 5 points above it. Measured here at 300 minibatches (main
/// configurations): 80.9 % (mdm) to 100 % (TR-LDM).
#[test]
fn every_variant_learns_more_than_token_frequencies() {
    for &variant in Variant::ALL {
        for (use_y, use_z) in [(true, true), (false, true), (true, false)] {
            if !(variant.recursive() || (use_y && use_z)) {
                continue;
            }
            let mut c = tiny();
            c.model.variant = variant;
            c.model.use_y = use_y;
            c.model.use_z = use_z;
            c.train.unroll = if variant == Variant::Trldm { 2 } else { 1 };
            c.task.n_train = 16;
            c.model.d = 64;
            c.model.heads = 4;
            c.train.lr = 3e-3;
            c.sample.reset_y_every = 1;
            c.sample.reset_z_every = 1;
            learns_beyond_frequencies(&c, 300, &format!("{variant} y={use_y} z={use_z}"));
        }
    }
}

/// Trains `c` for `steps` training steps, then requires Algorithm 4 to get
/// at least 5 points more answer cells right than token frequencies alone,
/// and the mean loss of the last thirtieth of the steps to be below 0.8 x
/// that of the first.
fn learns_beyond_frequencies(c: &RunConfig, steps: usize, label: &str) {
    let mut tr = Trainer::new(c).unwrap();
    let mut losses = Vec::new();
    while losses.len() < steps {
        losses.push(tr.train_step().unwrap().0);
    }
    let k = steps / 30;
    let first: f64 = losses[..k].iter().sum::<f64>() / k as f64;
    let last: f64 = losses[steps - k..].iter().sum::<f64>() / k as f64;
    let (acc, prior) = accuracy_and_prior(&tr);
    let what = format!(
        "{label}: answer cells right {acc:.4}, frequencies alone {prior:.4}, loss {first:.4} -> {last:.4}"
    );
    eprintln!("{what}");
    assert!(acc >= prior + 0.05, "{what}");
    assert!(last < 0.8 * first, "{what}");
}

/// TRM configured as TRM (post-norm, fixed initial states, carry batches,
/// Q-halting at logit > 0 with 10 % exploration; n = 2, T = 1 to stay
/// small) learns more than token frequencies on the memorisation task.
/// Carry batches make one update per training step, so it gets N_sup times
/// the steps of the minibatch runs above: the same number of updates.
#[test]
fn trm_configured_as_trm_learns_more_than_token_frequencies() {
    let mut c = tiny();
    c.model.variant = Variant::Trm;
    c.model.norm = trldm::config::NormPlace::Post;
    c.model.state_init = trldm::config::StateInit::Fixed;
    c.train.ds_batches = trldm::config::DsBatches::Carry;
    c.train.halting = true;
    c.train.halt_tau = 0.5;
    c.train.halt_explore = 0.1;
    c.task.n_train = 16;
    c.model.d = 64;
    c.model.heads = 4;
    c.train.lr = 3e-3;
    learns_beyond_frequencies(&c, 300 * c.train.n_sup, "TRM as TRM");
}

#[test]
fn senseless_combinations_are_refused() {
    let cases = [
        (
            "[model]\nvariant = \"vanilla\"\n[train]\nunroll = 2\n",
            "not a diffusion model",
        ),
        (
            "[model]\nvariant = \"trldm\"\n[sample]\nhalt = true\n",
            "needs a trained halting head",
        ),
        (
            "[model]\nvariant = \"mdm\"\nuse_z = false\n",
            "no (y, z) recursion",
        ),
        ("[train]\nlambda_kd = 0.5\n", "distillation needs a teacher"),
        ("[train]\nhalt_tau = 0.0\n", "must be in (0, 1)"),
        ("[sample]\nhalt_tau = 1.0\n", "must be in (0, 1)"),
    ];
    for (text, want) in cases {
        let e = RunConfig::from_toml_str(text, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{text}: {e}");
    }
}

/// Algorithm 4 (the run's sampling settings) over all training puzzles: the
/// share of response positions the model gets right, and the share that the
/// best model of token frequencies alone gets right (the most frequent
/// answer token at every position).
fn accuracy_and_prior(tr: &Trainer) -> (f64, f64) {
    let idx: Vec<usize> = (0..tr.train.len()).collect();
    let b = tr.train.batch(&idx, Device::Cpu, None);
    let opts = trldm::sample::SampleOptions::from_config(&tr.cfg.sample);
    let pred = trldm::sample::sample(&tr.model, &b.input, &b.resp, &opts, false).tokens;
    let n = b.resp.sum(Kind::Float).double_value(&[]);
    let right = pred.eq_tensor(&b.target).logical_and(&b.resp);
    let acc = right.sum(Kind::Float).double_value(&[]) / n;
    let answers = b.target.masked_select(&b.resp);
    let counts = answers.bincount::<Tensor>(None, 0);
    let prior = counts.max().to_kind(Kind::Float).double_value(&[]) / n;
    (acc, prior)
}
