//! Algorithms 1 and 2 (latent and deep recursion) reconstructed step by
//! step from `Model::net`, and halting in Algorithm 4 and in TRM inference,
//! on a tiny model on real libtorch (CPU).
//!
//! libtorch's random generator is global: every test takes [`LOCK`] and
//! seeds it before drawing weights and inputs, so each test sees the same
//! model and puzzles on every run, whatever else runs beside it.
use std::sync::{Mutex, MutexGuard};
use tch::{nn, Device, Kind, Tensor};
use trldm::config::{ModelConfig, RunConfig};
use trldm::data::MASK;
use trldm::model::{DataShape, Model, State};
use trldm::sample::{remaining_after, sample, SampleOptions, Schedule};

static LOCK: Mutex<()> = Mutex::new(());

/// Serialises the tests of this file (a failed one does not poison the rest).
fn lock() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const SHAPE: DataShape = DataShape {
    vocab: 7,
    seq_len: 16,
    height: 4,
    width: 4,
};

/// The model of `c`, with weights drawn after seeding libtorch with `seed`.
fn build(c: &ModelConfig, seed: i64) -> (nn::VarStore, Model) {
    let vs = nn::VarStore::new(Device::Cpu);
    let m = trldm::seed::seeded(seed, || Model::new(&vs.root(), c, SHAPE)).unwrap();
    (vs, m)
}

/// Random cell tokens (2..7), [b, 16].
fn tokens(b: i64) -> Tensor {
    Tensor::randint_low(2, 7, [b, 16], (Kind::Int64, Device::Cpu))
}

/// A run config from `key=value` overrides (TOML values) of the defaults,
/// with the tiny model of these tests (d = 16, 2 heads, 1 layer).
fn run_cfg(sets: &[&str]) -> RunConfig {
    let mut all: Vec<String> = ["model.d=16", "model.heads=2", "model.layers=1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    all.extend(sets.iter().map(|s| s.to_string()));
    RunConfig::default().with_overrides(&all).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    f64::try_from((a - b).abs().max()).unwrap()
}

/// Response positions: random, plus the first four of every row.
fn response_mask(b: i64) -> Tensor {
    let first = Tensor::arange(16, (Kind::Int64, Device::Cpu))
        .lt(4)
        .unsqueeze(0);
    Tensor::rand([b, 16], (Kind::Float, Device::Cpu))
        .lt(0.5)
        .logical_or(&first)
}

/// Sets the halting head: h(y) = sigmoid(w · mean over positions of the
/// normed y + b); with w = 0 it says sigmoid(b) whatever y is.
fn set_halt_head(vs: &nn::VarStore, w: &Tensor, b: f64) {
    let vars = vs.variables();
    tch::no_grad(|| {
        vars["halt.weight"].shallow_clone().copy_(&w.view([1, -1]));
        let _ = vars["halt.bias"].shallow_clone().fill_(b);
    });
}

fn rows_vec(t: &Tensor) -> Vec<Vec<i64>> {
    Vec::<Vec<i64>>::try_from(t).unwrap()
}

/// Algorithm 4 with halting (`sample.halt`, `sample.halt_tau`; the rule of
/// Alg. 3, line 13: stop once h(y) > τ): a halting head forced to say "halt" stops every
/// sample after its first step with everything committed (the tokens are
/// exactly the first step's argmax fill: the N = 1 sample), one forced to
/// say "never" uses all N steps and samples as without halting, and
/// h(y) = τ exactly does not halt (the test is strict).
///
/// Rejects: `sample.halt` ignored (or `halt_tau` not passed on by
/// `SampleOptions::from_config`); halting that stops but leaves the
/// schedule's masks in place; a loop that keeps running after every sample
/// halted; steps_used not recording the halting step; h ≥ τ instead of h > τ.
#[test]
fn halting_head_stops_samples_early_and_never_halting_uses_every_step() {
    let _serial = lock();
    let cfg = run_cfg(&[
        "model.variant=trldm-ds",
        "sample.halt=true",
        "sample.halt_tau=0.5",
        "sample.steps=6",
    ]);
    let opts = SampleOptions::from_config(&cfg.sample);
    assert_eq!(opts.halt_tau, Some(0.5));
    let no_halt = SampleOptions {
        halt_tau: None,
        ..opts
    };
    assert_eq!(
        SampleOptions::from_config(&run_cfg(&["sample.halt=false"]).sample).halt_tau,
        None
    );
    let (vs, m) = build(&cfg.model, 0);
    let resp = response_mask(4);
    let input = tokens(4).masked_fill(&resp, MASK);
    let zero_w = Tensor::zeros([16], (Kind::Float, Device::Cpu));

    // "Halt" (h = sigmoid(30)): one step, everything committed.
    set_halt_head(&vs, &zero_w, 30.0);
    let out = trldm::eval::predict_batch(&m, &cfg, &input, &resp, true).unwrap();
    assert_eq!(out.steps_used, vec![1; 4]);
    assert_eq!(
        out.trace.len(),
        1,
        "the sampler ran on after every sample halted"
    );
    let one_step = sample(
        &m,
        &input,
        &resp,
        &SampleOptions {
            steps: 1,
            ..no_halt.clone()
        },
        false,
    );
    assert_eq!(rows_vec(&out.tokens), rows_vec(&one_step.tokens));
    assert!(bool::try_from(out.tokens.ne(MASK).all()).unwrap());
    // Without halting the same model commits over 6 steps and ends elsewhere.
    let six = sample(&m, &input, &resp, &no_halt, false);
    assert_ne!(
        rows_vec(&six.tokens),
        rows_vec(&one_step.tokens),
        "1 and 6 steps must differ for this check to mean anything"
    );

    // "Never" (h = sigmoid(-30)) and h = τ exactly: all 6 steps, as without halting.
    for bias in [-30.0, 0.0] {
        set_halt_head(&vs, &zero_w, bias);
        let out = trldm::eval::predict_batch(&m, &cfg, &input, &resp, true).unwrap();
        assert_eq!(out.steps_used, vec![6; 4], "bias {bias}");
        assert_eq!(out.trace.len(), 6, "bias {bias}");
        assert_eq!(rows_vec(&out.tokens), rows_vec(&six.tokens), "bias {bias}");
    }
}

/// Halting is per sample: rows whose head says "halt" at step 1 commit
/// everything then and keep those tokens; the others follow the schedule
/// (step 1 leaves exactly the scheduled number masked) and run on.
///
/// Rejects: a batch that stops (or commits everything) when any one sample
/// halts; a halted sample whose tokens change afterwards; steps_used shared
/// by the batch.
#[test]
fn halting_stops_only_the_samples_whose_head_says_halt() {
    let _serial = lock();
    let cfg = run_cfg(&["model.variant=trldm-ds", "sample.steps=6"]);
    let (vs, m) = build(&cfg.model, 0);
    let resp = response_mask(4);
    let input = tokens(4).masked_fill(&resp, MASK);
    // A halting direction that separates the rows at step 1 (whose halting
    // logit is the model's on the input from the Sec. 7.2 start), with the
    // threshold half-way between the second and third row.
    tch::manual_seed(3);
    set_halt_head(&vs, &Tensor::randn([16], (Kind::Float, Device::Cpu)), 0.0);
    let logit = tch::no_grad(|| m.forward(&input, None).halt_logit);
    let scale = 20.0 / f64::try_from(logit.std(true)).unwrap();
    let mut l = Vec::<f64>::try_from(&logit * scale).unwrap();
    let w = vs.variables()["halt.weight"].detach().view([-1]) * scale;
    let mut sorted = l.clone();
    sorted.sort_by(f64::total_cmp);
    let cut = (sorted[1] + sorted[2]) / 2.0;
    assert!(sorted[2] - sorted[1] > 1.0, "rows too close: {sorted:?}");
    set_halt_head(&vs, &w, -cut);
    for x in &mut l {
        *x -= cut;
    }
    let halts: Vec<bool> = l.iter().map(|&x| x > 0.0).collect();
    assert_eq!(halts.iter().filter(|&&h| h).count(), 2);

    let opts = SampleOptions {
        halt_tau: Some(0.5),
        ..SampleOptions::from_config(&cfg.sample)
    };
    let out = sample(&m, &input, &resp, &opts, true);
    let n = resp.sum_dim_intlist(1, false, Kind::Int64);
    let scheduled = Vec::<i64>::try_from(remaining_after(Schedule::Linear, &n, 1, 6)).unwrap();
    let first = rows_vec(&out.trace[0]);
    let last = rows_vec(&out.tokens);
    for (i, &h) in halts.iter().enumerate() {
        let masked_at_1 = first[i].iter().filter(|&&t| t == MASK).count() as i64;
        if h {
            assert_eq!(out.steps_used[i], 1, "row {i} halted at step 1");
            assert_eq!(masked_at_1, 0, "row {i} halted: everything committed");
            assert_eq!(last[i], first[i], "row {i} changed after halting");
        } else {
            assert!(out.steps_used[i] >= 2, "row {i} did not halt at step 1");
            assert_eq!(masked_at_1, scheduled[i], "row {i} follows the schedule");
            assert!(!last[i].contains(&MASK));
        }
    }
}

/// TRM inference (src/eval.rs) halts the same way: a head forced to say
/// "halt" keeps the first step's answer, although further refinement of
/// (y, z) would change it.
///
/// Rejects: TRM decoding that ignores `sample.halt`, or keeps overwriting
/// the answer of a halted sample.
#[test]
fn trm_inference_keeps_the_answer_of_the_step_it_halted_at() {
    let _serial = lock();
    let cfg = run_cfg(&[
        "model.variant=trm",
        "sample.halt=true",
        "sample.halt_tau=0.5",
        "train.n_sup=6",
        "model.n_rec=3",
    ]);
    let (vs, m) = build(&cfg.model, 0);
    let resp = response_mask(4);
    let input = tokens(4).masked_fill(&resp, MASK);
    let zero_w = Tensor::zeros([16], (Kind::Float, Device::Cpu));
    let predict = |sets: &[&str]| {
        let c = cfg.with_overrides(&sets.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        trldm::eval::predict_batch(&m, &c.unwrap(), &input, &resp, false).unwrap()
    };
    let first = predict(&["sample.halt=false", "train.n_sup=1"]);
    let all = predict(&["sample.halt=false"]);
    assert_ne!(
        rows_vec(&first.tokens),
        rows_vec(&all.tokens),
        "1 and 6 refinement steps must differ for this check to mean anything"
    );
    set_halt_head(&vs, &zero_w, 30.0);
    let halted = predict(&[]);
    assert_eq!(halted.steps_used, vec![1; 4]);
    assert_eq!(rows_vec(&halted.tokens), rows_vec(&first.tokens));
    set_halt_head(&vs, &zero_w, -30.0);
    let never = predict(&[]);
    assert_eq!(never.steps_used, vec![6; 4]);
    assert_eq!(rows_vec(&never.tokens), rows_vec(&all.tokens));
}

/// The ablations of Sec. 9.4 step by step from `Model::net` (n = 3):
/// without z, one latent update z ← Net(x + y) (its n repeats would see no
/// previous z and compute the same value) and y ← Net(y + z); without y,
/// n updates z ← Net(x + z) and the answer decoded through y ← Net(z).
///
/// Rejects any other combination of the inputs (x - y, x · z, ...), x left
/// out of the latent update, or the previous z fed to the no-z update.
#[test]
fn the_ablations_compute_sec_9_4_s_updates() {
    let _serial = lock();
    let toks = tokens(2);
    for (use_y, use_z) in [(true, false), (false, true)] {
        let cfg = run_cfg(&[
            "model.n_rec=3",
            &format!("model.use_y={use_y}"),
            &format!("model.use_z={use_z}"),
        ]);
        let (_vs, m) = build(&cfg.model, 0);
        tch::no_grad(|| {
            let x = m.embed(&toks);
            let s = trldm::seed::seeded(4, || State {
                y: x.randn_like(),
                z: x.randn_like(),
            });
            let (y, z) = if use_z {
                let mut z = s.z.shallow_clone();
                for _ in 0..3 {
                    z = m.net(&(&x + &z));
                }
                (m.net(&z), z)
            } else {
                let z = m.net(&(&x + &s.y));
                (m.net(&(&s.y + &z)), z)
            };
            let got = m.core(&x, &s);
            let scale = f64::try_from(y.abs().max()).unwrap();
            let what = format!("use_y={use_y} use_z={use_z}");
            assert!(max_abs_diff(&got.z, &z) < 1e-5 * scale, "{what}: z");
            assert!(max_abs_diff(&got.y, &y) < 1e-5 * scale, "{what}: y");
        });
    }
}

/// Algorithm 1 step by step from `Model::net`: n latent updates
/// z ← Net(x + y + z) (Eq. 4), then one answer update y ← Net(y + z)
/// (Eq. 5) that does not see x, for n = 1, 2, 3 (and with the per-update
/// state norm of `model.state_norm = "update"`).
///
/// Rejects: n - 1 or n + 1 latent updates; a latent update without x or
/// without y; x in the answer update (y ← Net(x + y + z)); the answer
/// update from the z before the latent updates; the updates in the other
/// order.
#[test]
fn latent_recursion_is_n_z_updates_from_x_y_z_then_one_y_update_without_x() {
    let _serial = lock();
    tch::manual_seed(0);
    let toks = tokens(2);
    for norm in ["step", "update"] {
        let mut outputs = Vec::new();
        for n in [1, 2, 3] {
            let cfg = run_cfg(&[
                &format!("model.n_rec={n}"),
                &format!("model.state_norm={norm}"),
            ]);
            let (_vs, m) = build(&cfg.model, 0);
            let update = |h: &Tensor| {
                let out = m.net(h);
                if norm == "update" {
                    out.rms_norm([16], None::<&Tensor>, trldm::model::block::NORM_EPS)
                } else {
                    out
                }
            };
            tch::no_grad(|| {
                let x = m.embed(&toks);
                let s = State {
                    y: x.randn_like(),
                    z: x.randn_like(),
                };
                let mut z = s.z.shallow_clone();
                for _ in 0..n {
                    z = update(&(&x + &s.y + &z));
                }
                let y = update(&(&s.y + &z));
                let got = m.core(&x, &s);
                let scale = f64::try_from(y.abs().max()).unwrap();
                assert!(max_abs_diff(&got.z, &z) < 1e-5 * scale, "{norm} n={n}: z");
                assert!(max_abs_diff(&got.y, &y) < 1e-5 * scale, "{norm} n={n}: y");
                // Another x changes z, and y only through it: y is Net(y + z)
                // of the new z, whatever x was.
                let x2 = x.randn_like();
                let other = m.core(&x2, &s);
                assert!(max_abs_diff(&other.z, &got.z) > 1e-3, "{norm} n={n}");
                let y2 = update(&(&s.y + &other.z));
                assert!(max_abs_diff(&other.y, &y2) < 1e-5 * scale, "{norm} n={n}");
                outputs.push(got.y);
            });
        }
        // Same weights (same seed): n itself changes the answer state.
        assert!(max_abs_diff(&outputs[0], &outputs[1]) > 1e-3, "{norm}");
        assert!(max_abs_diff(&outputs[1], &outputs[2]) > 1e-3, "{norm}");
    }
}

/// Algorithm 2: T cycles of Algorithm 1, the first T - 1 without gradient.
/// The value is that of T applications of `core`; a loss on the result
/// has no gradient with respect to the incoming state (y, z) for T = 2, 3,
/// only through x and the parameters of the last cycle, while for T = 1 it
/// has one (so the check can see a gradient when there is one).
///
/// Rejects: T - 1 or T + 1 cycles; early cycles that keep their graph (no
/// `no_grad`/detach), which back-propagates into the incoming state; a
/// last cycle run without gradient too (no gradient to x).
#[test]
fn deep_recursion_runs_t_cycles_and_only_the_last_carries_gradient() {
    let _serial = lock();
    tch::manual_seed(0);
    let toks = tokens(2);
    for t in [1usize, 2, 3] {
        let cfg = run_cfg(&[&format!("model.T={t}"), "model.n_rec=2"]);
        let (vs, m) = build(&cfg.model, 0);
        let x = m.embed(&toks).detach().set_requires_grad(true);
        let y0 = x.randn_like().set_requires_grad(true);
        let z0 = x.randn_like().set_requires_grad(true);
        let out = m.deep_recursion(
            &x,
            State {
                y: y0.shallow_clone(),
                z: z0.shallow_clone(),
            },
        );
        assert!(
            out.y.requires_grad(),
            "T={t}: the last cycle has no gradient"
        );
        // The value: T applications of core.
        let want = tch::no_grad(|| {
            let mut s = State {
                y: y0.detach(),
                z: z0.detach(),
            };
            for _ in 0..t {
                s = m.core(&x.detach(), &s);
            }
            s
        });
        let scale = f64::try_from(want.y.abs().max()).unwrap();
        assert!(max_abs_diff(&out.y, &want.y) < 1e-5 * scale, "T={t}: y");
        assert!(max_abs_diff(&out.z, &want.z) < 1e-5 * scale, "T={t}: z");
        (out.y.square().sum(Kind::Float) + out.z.square().sum(Kind::Float)).backward();
        let norm = |g: Tensor| {
            if g.defined() {
                f64::try_from(g.abs().sum(Kind::Float)).unwrap()
            } else {
                0.0
            }
        };
        let (gy, gz, gx) = (norm(y0.grad()), norm(z0.grad()), norm(x.grad()));
        let g_params: f64 = vs
            .trainable_variables()
            .into_iter()
            .map(|p| norm(p.grad()))
            .sum();
        assert!(
            gx > 0.0 && g_params > 0.0,
            "T={t}: the last cycle has gradients"
        );
        if t == 1 {
            assert!(
                gy > 0.0 && gz > 0.0,
                "T=1: gradient reaches the incoming state"
            );
        } else {
            assert_eq!(
                (gy, gz),
                (0.0, 0.0),
                "T={t}: gradient through a no-grad cycle"
            );
        }
        assert_eq!(m.net_calls(), 3 * t);
    }
}
