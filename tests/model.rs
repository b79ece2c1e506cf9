//! The recursive denoiser (Algorithms 1-2) and the sampler (Algorithm 4)
//! on real libtorch, CPU.
mod common;
use tch::{nn, Device, Kind, Tensor};
use trldm::config::{BlockKind, ModelConfig, NormPlace, PosEncoding, Variant};
use trldm::data::{FIRST_CELL, MASK, PAD};
use trldm::model::{rms, DataShape, Model, State};
use trldm::sample::{remaining_after, sample, Remask, SampleOptions, Schedule};

const SHAPE: DataShape = DataShape {
    vocab: 7,
    seq_len: 16,
    height: 4,
    width: 4,
};

fn cfg(f: impl FnOnce(&mut ModelConfig)) -> ModelConfig {
    let mut c = ModelConfig {
        d: 16,
        heads: 2,
        layers: 1,
        ..Default::default()
    };
    f(&mut c);
    c
}

fn build(c: &ModelConfig) -> (nn::VarStore, Model) {
    let vs = nn::VarStore::new(Device::Cpu);
    let m = trldm::seed::seeded(0, || Model::new(&vs.root(), c, SHAPE)).unwrap();
    (vs, m)
}

fn tokens(b: i64) -> Tensor {
    Tensor::randint_low(2, 7, [b, 16], (Kind::Int64, Device::Cpu))
}

#[test]
fn output_shapes_for_every_option() {
    let mut n = 0;
    for &variant in Variant::ALL {
        for &block in BlockKind::ALL {
            for &norm in NormPlace::ALL {
                for &pos in PosEncoding::ALL {
                    if block == BlockKind::Mixer && pos == PosEncoding::Rope {
                        continue;
                    }
                    for (use_y, use_z, kernel) in [
                        (true, true, "sdpa"),
                        (true, true, "math"),
                        (false, true, "auto"),
                        (true, false, "auto"),
                    ] {
                        if !(variant.recursive() || (use_y && use_z)) {
                            continue;
                        }
                        let c = cfg(|c| {
                            c.attn_kernel = kernel.parse().unwrap();
                            c.variant = variant;
                            c.block = block;
                            c.norm = norm;
                            c.pos = pos;
                            c.use_y = use_y;
                            c.use_z = use_z;
                            c.t_cycles = 2;
                        });
                        let (_vs, m) = build(&c);
                        let out = m.forward(&tokens(3), None);
                        assert_eq!(out.logits.size(), vec![3, 16, 7], "{c:?}");
                        assert_eq!(out.halt_logit.size(), vec![3], "{c:?}");
                        assert_eq!(out.state.y.size(), vec![3, 16, 16]);
                        assert_eq!(out.state.z.size(), vec![3, 16, 16]);
                        assert!(bool::try_from(out.logits.isfinite().all()).unwrap());
                        n += 1;
                    }
                }
            }
        }
    }
    assert!(n >= 60, "{n} combinations");
}

fn grads(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| {
            let g = t.grad();
            let g = if g.defined() { g.copy() } else { g };
            (n, g)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn zero_grads(vs: &nn::VarStore) {
    for (_, t) in vs.variables() {
        let mut g = t.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
}

/// Algorithm 2: with T = 2 the gradient equals that of one cycle started
/// from the detached states that the first cycle produced. (Without the
/// step-end state norm, which the manual readout below does not apply.)
#[test]
fn gradients_flow_only_through_the_last_cycle() {
    let (vs, m2) = build(&cfg(|c| {
        c.t_cycles = 2;
        c.state_norm = trldm::config::StateNorm::None;
    }));
    let toks = tokens(2);
    let out = m2.forward(&toks, None);
    out.logits.sum(Kind::Float).backward();
    let g_deep = grads(&vs);

    zero_grads(&vs);
    let x = m2.embed(&toks);
    let first = tch::no_grad(|| m2.core(&x, &m2.init_state(&x)));
    let s1 = State {
        y: first.y.detach(),
        z: first.z.detach(),
    };
    let last = m2.core(&x, &s1);
    let (logits, _) = m2.readout(&last.y);
    logits.sum(Kind::Float).backward();
    let g_manual = grads(&vs);

    let mut compared = 0;
    for ((n1, a), (n2, b)) in g_deep.iter().zip(&g_manual) {
        assert_eq!(n1, n2);
        if !a.defined() {
            assert!(!b.defined());
            continue;
        }
        let diff = f64::try_from((a - b).abs().max()).unwrap();
        assert!(diff < 1e-5, "{n1}: {diff}");
        compared += 1;
    }
    assert!(compared > 5);
    // And the first cycle matters for the value (it is not skipped).
    let (vs1, m1) = build(&cfg(|c| c.t_cycles = 1));
    let _ = vs1;
    let one = m1.forward(&toks, None).logits;
    assert!(f64::try_from((one - out.logits).abs().max()).unwrap() > 1e-6);
}

/// Ablations remove the state from what the forward pass computes.
#[test]
fn no_y_and_no_z_really_remove_the_state() {
    let toks = tokens(2);
    let rand_state = |like: &Tensor| State {
        y: like.randn_like(),
        z: like.randn_like(),
    };
    for (use_y, use_z) in [(false, true), (true, false), (true, true)] {
        let (_vs, m) = build(&cfg(|c| {
            c.use_y = use_y;
            c.use_z = use_z;
        }));
        let x = m.embed(&toks);
        let s = rand_state(&x);
        let base = m.core(&x, &s);
        // Change only y (resp. z) of the incoming state.
        let other_y = m.core(
            &x,
            &State {
                y: s.y.randn_like(),
                z: s.z.shallow_clone(),
            },
        );
        let other_z = m.core(
            &x,
            &State {
                y: s.y.shallow_clone(),
                z: s.z.randn_like(),
            },
        );
        // Relative to the output's scale: "unchanged" allows the float noise of
        // multi-threaded kernels (other tests run beside this one); "changed" is far above it.
        let scale = f64::try_from(base.y.abs().max()).unwrap().max(1e-12);
        let dy = f64::try_from((&base.y - other_y.y).abs().max()).unwrap() / scale;
        let dz = f64::try_from((&base.y - other_z.y).abs().max()).unwrap() / scale;
        let moved = |d: f64| {
            assert!(!(1e-5..1e-2).contains(&d), "ambiguous relative change {d}");
            d >= 1e-2
        };
        assert_eq!(
            moved(dy),
            use_y,
            "use_y={use_y}: output moved by {dy} when y changed"
        );
        assert_eq!(
            moved(dz),
            use_z,
            "use_z={use_z}: output moved by {dz} when z changed"
        );
    }
}

/// Algorithm 4: prompt and committed tokens never change, exactly the
/// scheduled number of positions stays masked after each step, every fill
/// of a masked position is a cell token (never PAD or MASK, even from a
/// model whose head prefers them), and what a step commits is its fill.
///
/// Rejects a sampler that lets PAD or MASK through the argmax (a MASK
/// "prediction" would look like a position left masked), one that commits
/// something other than its prediction, or one that remasks committed or
/// prompt positions.
#[test]
fn sampler_copies_through_and_follows_the_schedule() {
    for (schedule, remask, reset, prefer_banned) in [
        (Schedule::Linear, Remask::LowConfidence, 0, false),
        (Schedule::Cosine, Remask::LowConfidence, 1, false),
        (Schedule::Linear, Remask::Random, 2, false),
        (Schedule::Linear, Remask::LowConfidence, 0, true),
    ] {
        let (vs, m) = build(&cfg(|_| {}));
        if prefer_banned {
            // Rows PAD and MASK of W_o: ±50 u for a unit u, so at nearly
            // every position one of them has by far the largest logit.
            tch::no_grad(|| {
                let w = vs.variables()["head.weight"].shallow_clone();
                let u = Tensor::randn([16], (Kind::Float, Device::Cpu));
                let u = &u / u.norm();
                w.get(PAD).copy_(&(&u * 50.0));
                w.get(MASK).copy_(&(&u * -50.0));
            });
        }
        let target = tokens(5);
        let resp = Tensor::rand([5, 16], (Kind::Float, Device::Cpu)).lt(0.6);
        let input = target.masked_fill(&resp, MASK);
        if prefer_banned {
            let top = tch::no_grad(|| m.forward(&input, None).logits.argmax(-1, false));
            let share = f64::try_from(top.le(MASK).to_kind(Kind::Float).mean(Kind::Float)).unwrap();
            assert!(
                share > 0.9,
                "PAD or MASK tops the logits at {share} of the positions"
            );
        }
        let steps = 6;
        let opts = SampleOptions {
            steps,
            schedule,
            remask,
            temperature: if remask == Remask::Random { 1.0 } else { 0.0 },
            reset_y_every: reset,
            reset_z_every: reset,
            halt_tau: None,
            logit_bias: Vec::new(),
        };
        let out = sample(&m, &input, &resp, &opts, true);
        assert_eq!(out.trace.len(), steps);
        let n = resp.sum_dim_intlist(1, false, Kind::Int64);
        let mut prev = input.shallow_clone();
        for (s, cur) in out.trace.iter().enumerate() {
            // Prompt positions are the input's.
            let prompt_same = cur.eq_tensor(&input).logical_or(&resp).all();
            assert!(bool::try_from(prompt_same).unwrap());
            // Tokens committed before this step are unchanged.
            let committed = prev.ne(MASK);
            let kept = cur
                .eq_tensor(&prev)
                .logical_or(&committed.logical_not())
                .all();
            assert!(
                bool::try_from(kept).unwrap(),
                "step {s}: a committed token changed"
            );
            // The step's fill of every position masked before it is a cell
            // token: PAD and MASK are never predicted.
            let fill = &out.steps[s].fill;
            let was_masked = prev.eq(MASK);
            let is_cell = fill.ge(FIRST_CELL).logical_and(&fill.lt(SHAPE.vocab));
            assert!(
                bool::try_from(is_cell.logical_or(&was_masked.logical_not()).all()).unwrap(),
                "step {s}: a masked position was filled with PAD or MASK"
            );
            // Still-masked positions were masked before; every other position
            // holds the fill (committed now: the prediction, else unchanged).
            let still = cur.eq(MASK);
            let remasked = still.logical_and(&was_masked.logical_not()).any();
            assert!(
                !bool::try_from(remasked).unwrap(),
                "step {s}: a position not masked before is masked"
            );
            assert!(
                bool::try_from(cur.eq_tensor(fill).logical_or(&still).all()).unwrap(),
                "step {s}: a committed token is not the step's prediction"
            );
            let masked = cur.eq(MASK).sum_dim_intlist(1, false, Kind::Int64);
            let want = remaining_after(schedule, &n, s + 1, steps);
            assert_eq!(
                Vec::<i64>::try_from(&masked).unwrap(),
                Vec::<i64>::try_from(&want).unwrap(),
                "{schedule:?} step {}",
                s + 1
            );
            prev = cur.shallow_clone();
        }
        assert!(bool::try_from(out.tokens.ne(MASK).all()).unwrap());
    }
}

/// Carries (y, z) over `steps` denoising steps from the Sec. 7.2 start and
/// returns the largest and smallest RMS of y and z relative to RMS(x), and
/// the last state.
fn carried_rms_range(m: &Model, toks: &Tensor, steps: usize, bf16: bool) -> (f64, f64, State) {
    tch::no_grad(|| {
        trldm::amp::autocast(Device::Cpu, bf16, || {
            let x_rms = rms(&m.embed(toks));
            let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
            let mut state: Option<State> = None;
            for _ in 0..steps {
                let out = m.forward(toks, state.take());
                for t in [&out.state.y, &out.state.z] {
                    let r = rms(t) / x_rms;
                    lo = lo.min(r);
                    hi = hi.max(r);
                }
                state = Some(out.state);
            }
            (lo, hi, state.unwrap())
        })
    })
}

/// Recursive states stay bounded over 64 carried steps at n = 4, T = 3, in
/// fp32 and bf16 (model.state_norm = "step", the default, and "update"), and
/// the output still depends on the tokens after them; without the bound
/// (state_norm = "none", the earlier design) the same run grows past 10 x RMS(x).
#[test]
fn carried_states_stay_bounded_over_64_steps() {
    tch::manual_seed(1);
    let toks = tokens(4);
    let precisions: &[bool] = if trldm::amp::cpu_autocast_built() {
        &[false, true]
    } else {
        &[false]
    };
    for (norm, &bf16) in [
        trldm::config::StateNorm::Step,
        trldm::config::StateNorm::Update,
    ]
    .into_iter()
    .flat_map(|n| precisions.iter().map(move |p| (n, p)))
    {
        let c = cfg(|c| {
            c.n_rec = 4;
            c.t_cycles = 3;
            c.layers = 2;
            c.state_norm = norm;
        });
        let (_vs, m) = build(&c);
        let (lo, hi, state) = carried_rms_range(&m, &toks, 64, bf16);
        assert!(
            lo >= 0.1 && hi <= 10.0,
            "{norm:?} bf16={bf16}: RMS(y), RMS(z) / RMS(x) in [{lo:.3}, {hi:.3}]"
        );
        // A committed token changes: the next step's logits change.
        let other = toks.copy();
        let _ = other
            .get(0)
            .get(3)
            .fill_(if i64::try_from(toks.get(0).get(3)).unwrap() == 2 {
                3
            } else {
                2
            });
        let (a, b) = tch::no_grad(|| {
            let s2 = State {
                y: state.y.copy(),
                z: state.z.copy(),
            };
            (
                m.forward(&toks, Some(state)).logits,
                m.forward(&other, Some(s2)).logits,
            )
        });
        let diff = (a - b).abs().max().double_value(&[]);
        assert!(
            diff > 1e-3,
            "bf16={bf16}: a changed token moved the logits by {diff}"
        );
    }
    let unbounded = cfg(|c| {
        c.n_rec = 4;
        c.t_cycles = 3;
        c.layers = 2;
        c.state_norm = trldm::config::StateNorm::None;
    });
    let (_vs, m) = build(&unbounded);
    let (_, hi, _) = carried_rms_range(&m, &toks, 8, false);
    assert!(
        hi > 10.0,
        "without state_norm the states should grow: max RMS ratio {hi:.2}"
    );
}

/// Gradients under bf16 autocast with Algorithm 2's no-grad cycles: with
/// T = 3 the two cycles without gradients and the graded cycle run in one
/// autocast region, so the graded cycle reuses weight casts made under
/// `no_grad`, which some libtorch versions turn into silently missing
/// gradients (pytorch issues 65766, 112583, 142234). Reference: the same
/// computation with the no-grad cycles in their own autocast region (its
/// cast cache is cleared when it ends). Every parameter the loss depends on
/// must get a finite, non-zero gradient equal to the reference's within
/// bf16 rounding.
#[test]
fn autocast_with_no_grad_cycles_keeps_every_gradient() {
    assert!(
        trldm::amp::cpu_autocast_built(),
        "this build has no CPU autocast (csrc/amp.cpp)"
    );
    let c = cfg(|c| {
        c.d = 32;
        c.layers = 2;
        c.n_rec = 2;
        c.t_cycles = 3;
        c.state_norm = trldm::config::StateNorm::None;
    });
    let (vs, m) = build(&c);
    let tokens = Tensor::randint_low(
        FIRST_CELL,
        SHAPE.vocab,
        [4, SHAPE.seq_len],
        (Kind::Int64, Device::Cpu),
    );
    let target = Tensor::randint_low(
        FIRST_CELL,
        SHAPE.vocab,
        [4, SHAPE.seq_len],
        (Kind::Int64, Device::Cpu),
    );
    let loss_of = |logits: &Tensor| {
        logits
            .to_kind(Kind::Float)
            .view([-1, SHAPE.vocab])
            .cross_entropy_for_logits(&target.view([-1]))
    };
    let grads = |loss: Tensor| -> Vec<(String, Option<Tensor>)> {
        for (_, p) in vs.variables() {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        loss.backward();
        let mut v: Vec<(String, Option<Tensor>)> = vs
            .variables()
            .into_iter()
            .map(|(n, p)| {
                let g = p.grad();
                (n, g.defined().then(|| g.copy()))
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    // One region, as training runs it (Model::forward -> Algorithm 2).
    let one = grads(trldm::amp::autocast(Device::Cpu, true, || {
        loss_of(&m.forward(&tokens, None).logits)
    }));
    // The no-grad cycles in a region of their own.
    let x = m.embed(&tokens);
    let early = trldm::amp::autocast(Device::Cpu, true, || {
        tch::no_grad(|| {
            let mut s = m.init_state(&x);
            for _ in 0..2 {
                s = m.core(&x, &s);
            }
            s.detach()
        })
    });
    let two = grads(trldm::amp::autocast(Device::Cpu, true, || {
        let s = m.core(&x, &early);
        loss_of(&m.readout(&s.y).0)
    }));
    let mut checked = 0;
    for ((name, a), (_, b)) in one.iter().zip(&two) {
        match (a, b) {
            (None, None) => assert!(name.starts_with("halt"), "{name}: no gradient"),
            (Some(a), Some(b)) => {
                let (na, nb) = (a.norm().double_value(&[]), b.norm().double_value(&[]));
                assert!(na.is_finite() && na > 0.0, "{name}: gradient norm {na}");
                let diff = (a - b).norm().double_value(&[]);
                assert!(
                    diff <= 0.02 * nb + 1e-7,
                    "{name}: |g - g_ref| = {diff:.3e}, |g_ref| = {nb:.3e}"
                );
                checked += 1;
            }
            _ => panic!("{name}: a gradient in one computation only ({a:?} vs {b:?})"),
        }
    }
    assert!(checked >= 10, "{checked} parameters checked");
}

/// TRM's initial states (`model.state_init = "fixed"`): y and z start as
/// two different fixed vectors, the same at every position and in every
/// row whatever the tokens, with a standard deviation near 1 and no entry
/// beyond TRM's truncation (2 / 0.8796); they are not trained (no variable),
/// a seed draws the same ones, and the other weights of a seed are those of
/// `embed`. A forward pass without a state starts from them, and the
/// sampler's resets go back to them.
///
/// Rejects: y = e(x) or z = 0 left in place; vectors drawn per row or per
/// position; vectors made trainable; a draw that shifts the other weights;
/// resets that go back to Sec. 7.2's start instead.
#[test]
fn fixed_initial_states_are_trm_s_broadcast_vectors() {
    let d = 64;
    let fixed = cfg(|c| {
        c.d = d;
        c.state_init = trldm::config::StateInit::Fixed;
    });
    let embed = cfg(|c| c.d = d);
    let (vs, m) = build(&fixed);
    let (vs_e, m_e) = build(&embed);
    assert!(
        common::sorted_weights(&vs) == common::sorted_weights(&vs_e),
        "the other weights changed"
    );
    let toks = tokens(3);
    let x = m.embed(&toks);
    let s = m.init_state(&x);
    assert_eq!(s.y.size(), x.size());
    let (y0, z0) = m.fixed_start().expect("fixed start");
    for (t, v) in [(&s.y, y0), (&s.z, z0)] {
        let diff = f64::try_from((t - v).abs().max()).unwrap();
        assert_eq!(diff, 0.0, "not the broadcast vector");
        let std = f64::try_from(v.std(true)).unwrap();
        assert!((0.7..1.3).contains(&std), "std {std}");
        let max = f64::try_from(v.abs().max()).unwrap();
        assert!(max <= 2.0 / 0.879_626 + 1e-5, "max {max}");
    }
    assert!(f64::try_from((y0 - z0).abs().max()).unwrap() > 0.1);
    // Rescaled by 1 / 0.879626, the draws reach past 2 · 0.879626: without
    // the rescaling (or with it inverted) none could. Of 128 draws, some
    // fall in that band with probability 1 - 2e-5 (and this seed's do).
    let both = Tensor::cat(&[y0.flatten(0, -1), z0.flatten(0, -1)], 0);
    let max = f64::try_from(both.abs().max()).unwrap();
    assert!(max > 2.0 * 0.879_626, "max {max}: not rescaled to unit std");
    // Another seed draws other vectors; the same seed the same ones.
    let (_, again) = build(&fixed);
    let vs2 = nn::VarStore::new(Device::Cpu);
    let other = trldm::seed::seeded(5, || Model::new(&vs2.root(), &fixed, SHAPE)).unwrap();
    let (ya, _) = again.fixed_start().unwrap();
    let (yo, _) = other.fixed_start().unwrap();
    assert_eq!(f64::try_from((ya - y0).abs().max()).unwrap(), 0.0);
    assert!(f64::try_from((yo - y0).abs().max()).unwrap() > 0.1);
    // A forward pass without a state is one from the fixed start, not from Sec. 7.2's.
    let none = m.forward(&toks, None).logits;
    let from_fixed = m.forward(&toks, Some(m.init_state(&x))).logits;
    let from_embed = m.forward(&toks, Some(m_e.init_state(&x))).logits;
    assert_eq!(
        f64::try_from((&none - from_fixed).abs().max()).unwrap(),
        0.0
    );
    assert!(f64::try_from((&none - from_embed).abs().max()).unwrap() > 1e-4);
    // The sampler's resets return to the fixed start.
    let opts = SampleOptions {
        reset_y_every: 1,
        reset_z_every: 1,
        ..SampleOptions::from_config(&Default::default())
    };
    let carried = State {
        y: x.randn_like(),
        z: x.randn_like(),
    };
    let r = trldm::sample::next_state(&m, &toks, carried, 1, &opts);
    assert_eq!(f64::try_from((&r.y - y0).abs().max()).unwrap(), 0.0);
    assert_eq!(f64::try_from((&r.z - z0).abs().max()).unwrap(), 0.0);
}

/// Learned 2D positions (Sec. 9.5): x at position p = row·W + col of the
/// 4x4 grid is e(token) + row_emb[row] + col_emb[col], recomputed here from
/// the variables. Rejects positions subtracted or multiplied in, and rows
/// and columns swapped (the grid is square, so only the values tell).
#[test]
fn learned_2d_positions_add_the_row_and_column_embeddings() {
    let (vs, m) = build(&cfg(|c| c.pos = PosEncoding::Learned2d));
    let vars = vs.variables();
    let toks = tokens(2);
    let x = tch::no_grad(|| m.embed(&toks));
    let e = vars["emb.weight"]
        .index_select(0, &toks.view([-1]))
        .view([2, 16, 16]);
    let (row, col) = (&vars["pos2d.row"], &vars["pos2d.col"]);
    for p in 0..16i64 {
        let want = e.select(1, p) + row.get(p / 4) + col.get(p % 4);
        let diff = f64::try_from((x.select(1, p) - want).abs().max()).unwrap();
        assert!(diff < 1e-6, "position {p}: off by {diff}");
    }
}

/// `model.cpu_kernels`: the fused CPU kernels (csrc/fused.cpp) and ATen's
/// compositions compute the same model: same weights (same seed), same
/// tokens, logits and every parameter's gradient equal to fp32 rounding,
/// for pre-norm with RoPE, post-norm, and without positions.
#[test]
fn fused_cpu_kernels_compute_the_same_model_as_aten() {
    use trldm::config::CpuKernels;
    assert!(
        trldm::model::fused::available(),
        "the fused kernels are not built or this CPU lacks AVX2"
    );
    let toks = tokens(3);
    for (place, pos) in [
        (NormPlace::Pre, PosEncoding::Rope),
        (NormPlace::Post, PosEncoding::Rope),
        (NormPlace::Pre, PosEncoding::None),
    ] {
        let run = |kernels: CpuKernels| {
            let c = cfg(|c| {
                c.norm = place;
                c.pos = pos;
                c.cpu_kernels = kernels;
                c.n_rec = 2;
                c.t_cycles = 2;
            });
            let (vs, m) = build(&c);
            let out = m.forward(&toks, None);
            out.logits.sum(Kind::Float).backward();
            (out.logits.detach(), grads(&vs))
        };
        let (la, ga) = run(CpuKernels::Aten);
        let (lf, gf) = run(CpuKernels::Fused);
        let close = |a: &Tensor, b: &Tensor| {
            let scale = 1.0 + a.abs().max().double_value(&[]);
            (a - b).abs().max().double_value(&[]) / scale
        };
        assert!(close(&la, &lf) < 1e-5, "{place:?}/{pos:?} logits");
        assert_eq!(ga.len(), gf.len());
        let mut checked = 0;
        for ((na, a), (nf, f)) in ga.iter().zip(&gf) {
            assert_eq!(na, nf);
            if a.defined() {
                assert!(close(a, f) < 1e-4, "{place:?}/{pos:?} gradient of {na}");
                checked += 1;
            }
        }
        assert!(checked > 5, "only {checked} gradients compared");
    }
}
