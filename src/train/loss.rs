//! The training losses: Eq. 3 (masked diffusion), Eq. 6-7 (halting BCE),
//! Eq. 8 (distillation KL) and plain cross-entropy for the non-diffusion
//! baselines. All are per-sample sums normalised as the paper writes them,
//! averaged over the batch.
use tch::{Kind, Reduction, Tensor};

/// −log p(target) per position, [B, L] (float32 whatever the logits' dtype).
pub fn token_nll(logits: &Tensor, target: &Tensor) -> Tensor {
    let logp = logits.log_softmax(-1, Kind::Float);
    -logp.gather(2, &target.unsqueeze(-1), false).squeeze_dim(-1)
}

/// Eq. 3: −(1/(t·L_r)) Σ_i 1[r_t^i = MASK] · w_i · log p_θ(r_0^i | p, r_t),
/// averaged over the batch. `masked` [B, L] bool, `t` [B] mask ratio,
/// `l_r` [B] response lengths, `weight` [B, L] per-token class weights
/// (1 everywhere, or the path weight of Sec. 9.5).
pub fn mdm_loss(
    logits: &Tensor,
    target: &Tensor,
    masked: &Tensor,
    t: &Tensor,
    l_r: &Tensor,
    weight: &Tensor,
) -> Tensor {
    let nll = token_nll(logits, target) * weight * masked.to_kind(Kind::Float);
    (nll.sum_dim_intlist(1, false, Kind::Float) / (t * l_r)).mean(Kind::Float)
}

/// Cross-entropy over all response positions, mean per sample then over the
/// batch (the `vanilla` and `trm` baselines, Sec. 9.3).
pub fn response_ce(logits: &Tensor, target: &Tensor, resp: &Tensor, weight: &Tensor) -> Tensor {
    let r = resp.to_kind(Kind::Float);
    let nll = token_nll(logits, target) * weight * &r;
    (nll.sum_dim_intlist(1, false, Kind::Float)
        / r.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0))
    .mean(Kind::Float)
}

/// Eq. 6-7: BCE of h_θ(y) against corr = 1[decoded response = r_0],
/// averaged over the batch; `rows` [B] bool masks samples out (their terms
/// count as 0 in the mean, like every loss of a masked row).
pub fn halt_loss(halt_logit: &Tensor, correct: &Tensor, rows: Option<&Tensor>) -> Tensor {
    let weight = rows.map(|r| r.to_kind(Kind::Float));
    halt_logit
        .to_kind(Kind::Float)
        .binary_cross_entropy_with_logits::<Tensor>(
            &correct.to_kind(Kind::Float),
            weight,
            None,
            Reduction::Mean,
        )
}

/// Eq. 8: (1/(t·L_r)) Σ_i 1[masked] · KL(p_teacher ‖ p_student) at
/// temperature τ (scaled by τ² as Hinton et al.), averaged over the batch.
pub fn kd_loss(
    student: &Tensor,
    teacher: &Tensor,
    masked: &Tensor,
    t: &Tensor,
    l_r: &Tensor,
    temp: f64,
) -> Tensor {
    let ls = (student.to_kind(Kind::Float) / temp).log_softmax(-1, Kind::Float);
    let lt = (teacher.to_kind(Kind::Float) / temp).log_softmax(-1, Kind::Float);
    let kl = (lt.exp() * (&lt - ls)).sum_dim_intlist(-1, false, Kind::Float)
        * masked.to_kind(Kind::Float);
    (kl.sum_dim_intlist(1, false, Kind::Float) / (t * l_r)).mean(Kind::Float) * (temp * temp)
}

/// Per-sample exact match of the argmax decode on response positions.
pub fn exact_match(logits: &Tensor, target: &Tensor, resp: &Tensor) -> Tensor {
    let wrong = logits.argmax(-1, false).ne_tensor(target).logical_and(resp);
    wrong.any_dim(1, false).logical_not()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t1(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
    }

    /// B = 2, L = 3, V = 2, chosen so that the log-probabilities are simple:
    /// (0, 0) everywhere except (0, ln 3) at [0, 1] and (ln 3, 0) at [1, 1].
    fn simple_logits() -> Tensor {
        let l3 = (3.0f32).ln();
        Tensor::from_slice(&[0.0f32, 0.0, 0.0, l3, 0.0, 0.0, 0.0, 0.0, l3, 0.0, 0.0, 0.0])
            .view([2, 3, 2])
    }

    #[test]
    fn eq3_weighting_matches_a_hand_computed_example() {
        let logits = simple_logits();
        let target = Tensor::from_slice(&[0i64, 1, 0, 0, 0, 1]).view([2, 3]);
        let masked = Tensor::from_slice(&[true, true, false, true, false, true]).view([2, 3]);
        let t = t1(&[0.5, 0.25]);
        let l_r = t1(&[3.0, 2.0]);
        let w = Tensor::from_slice(&[1.0f32, 2.0, 1.0, 1.0, 1.0, 10.0]).view([2, 3]);
        let got = f64::try_from(mdm_loss(&logits, &target, &masked, &t, &l_r, &w)).unwrap();
        // Sample 0 (t = 0.5, L_r = 3): pos0 logits (0, 0), p = 1/2, w 1;
        // pos1 logits (0, ln 3), target 1: p = 3/4, w 2; pos2 not masked.
        let s0 = ((2f64).ln() - 2.0 * (0.75f64).ln()) / (0.5 * 3.0);
        // Sample 1 (t = 0.25, L_r = 2): pos0 p = 1/2, w 1; pos1 not masked;
        // pos2 logits (0, 0), target 1: p = 1/2, w 10.
        let s1 = ((2f64).ln() + 10.0 * (2f64).ln()) / (0.25 * 2.0);
        let want = (s0 + s1) / 2.0;
        assert!((got - want).abs() < 1e-5, "got {got}, want {want}");
    }

    /// The logits of the Eq. 3 example: the per-sample mean over the
    /// response positions (weighted), then the batch mean.
    #[test]
    fn response_ce_matches_a_hand_computed_example() {
        let logits = simple_logits();
        let target = Tensor::from_slice(&[0i64, 1, 1, 0, 0, 1]).view([2, 3]);
        let resp = Tensor::from_slice(&[true, true, false, true, true, false]).view([2, 3]);
        let w = Tensor::from_slice(&[1.0f32, 2.0, 7.0, 1.0, 3.0, 1.0]).view([2, 3]);
        let got = f64::try_from(response_ce(&logits, &target, &resp, &w)).unwrap();
        // Sample 0: -ln 1/2 (w 1) - 2 ln 3/4, over 2 response positions.
        let s0 = ((2f64).ln() - 2.0 * (0.75f64).ln()) / 2.0;
        // Sample 1: pos0 -ln 1/2; pos1 logits (ln 3, 0), target 0: -3 ln 3/4.
        let s1 = ((2f64).ln() - 3.0 * (0.75f64).ln()) / 2.0;
        let want = (s0 + s1) / 2.0;
        assert!((got - want).abs() < 1e-5, "got {got}, want {want}");
    }

    /// BCE of h(y) against exact match, a mean over all rows in which masked
    /// rows count 0 (Algorithm 3 keeps halted samples in the batch).
    #[test]
    fn halt_loss_is_bce_and_masked_rows_count_zero() {
        let logit = t1(&[0.0, (3.0f32).ln(), -(3.0f32).ln()]);
        let correct = Tensor::from_slice(&[true, false, false]);
        // sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4.
        let bce = [(2f64).ln(), -(0.25f64).ln(), -(0.75f64).ln()];
        let all = f64::try_from(halt_loss(&logit, &correct, None)).unwrap();
        assert!((all - bce.iter().sum::<f64>() / 3.0).abs() < 1e-6, "{all}");
        let rows = Tensor::from_slice(&[true, false, true]);
        let masked = f64::try_from(halt_loss(&logit, &correct, Some(&rows))).unwrap();
        assert!((masked - (bce[0] + bce[2]) / 3.0).abs() < 1e-6, "{masked}");
    }

    #[test]
    fn kd_is_zero_for_identical_logits_and_positive_otherwise() {
        let a = Tensor::randn([2, 4, 5], (Kind::Float, tch::Device::Cpu));
        let b = Tensor::randn([2, 4, 5], (Kind::Float, tch::Device::Cpu));
        let m = Tensor::ones([2, 4], (Kind::Bool, tch::Device::Cpu));
        let (t, l) = (t1(&[0.5, 1.0]), t1(&[4.0, 4.0]));
        let same = f64::try_from(kd_loss(&a, &a, &m, &t, &l, 2.0)).unwrap();
        let diff = f64::try_from(kd_loss(&a, &b, &m, &t, &l, 2.0)).unwrap();
        assert!(same.abs() < 1e-6, "{same}");
        assert!(diff > 1e-3, "{diff}");
    }

    /// Eq. 8 on a hand-computed example: KL(teacher ‖ student) (not the
    /// reverse), at temperature τ, times τ², only at masked positions,
    /// weighted 1/(t·L_r) per sample, averaged over the batch.
    #[test]
    fn kd_matches_a_hand_computed_example() {
        // One sample, two positions, vocabulary 2; position 1 unmasked.
        let student = Tensor::from_slice(&[0.0f32, 0.0, 5.0, -5.0]).view([1, 2, 2]);
        let teacher = Tensor::from_slice(&[2.0f32, 0.0, -5.0, 5.0]).view([1, 2, 2]);
        let masked = Tensor::from_slice(&[true, false]).view([1, 2]);
        let (t, l) = (t1(&[0.5]), t1(&[4.0]));
        // τ = 4 (τ² = 16 differs from 2τ = 8, unlike at τ = 2).
        let tau = 4.0f64;
        // Position 0 at τ = 4: teacher logits (0.5, 0), student (0, 0).
        let z = 0.5f64.exp() + 1.0;
        let (pt0, pt1) = (0.5f64.exp() / z, 1.0 / z);
        let kl = pt0 * (pt0 / 0.5).ln() + pt1 * (pt1 / 0.5).ln();
        let want = kl * tau * tau / (0.5 * 4.0);
        let got = f64::try_from(kd_loss(&student, &teacher, &masked, &t, &l, tau)).unwrap();
        assert!((got - want).abs() < 1e-6, "got {got}, want {want}");
        // The reverse direction KL(student ‖ teacher) is a different number.
        let reverse = 0.5 * (0.5 / pt0).ln() + 0.5 * (0.5 / pt1).ln();
        assert!((reverse * tau * tau / 2.0 - want).abs() > 1e-3);
    }

    #[test]
    fn exact_match_only_looks_at_response_positions() {
        let logits =
            Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0]).view([2, 2, 2]);
        let target = Tensor::from_slice(&[0i64, 1, 0, 1]).view([2, 2]);
        let resp = Tensor::from_slice(&[true, true, true, true]).view([2, 2]);
        let em = Vec::<bool>::try_from(exact_match(&logits, &target, &resp)).unwrap();
        assert_eq!(em, vec![true, false]);
        let resp0 = Tensor::from_slice(&[true, true, true, false]).view([2, 2]);
        let em = Vec::<bool>::try_from(exact_match(&logits, &target, &resp0)).unwrap();
        assert_eq!(em, vec![true, true]);
        // L = 3 ≠ V = 2: the decode is over the vocabulary axis.
        let logits = Tensor::from_slice(&[0.0f32, 1.0, 1.0, 0.0, 0.0, 1.0]).view([1, 3, 2]);
        let target = Tensor::from_slice(&[1i64, 0, 1]).view([1, 3]);
        let resp = Tensor::from_slice(&[true, true, true]).view([1, 3]);
        let em = Vec::<bool>::try_from(exact_match(&logits, &target, &resp)).unwrap();
        assert_eq!(em, vec![true]);
    }
}
