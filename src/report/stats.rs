//! Mean ± sample standard deviation over seeds, and learning curves
//! averaged over seeds step by step.
//!
//! The std is the *sample* std (ddof = 1, as pandas' default): with one
//! value it is undefined (`None`), never 0.
use std::collections::BTreeMap;

/// One table cell: a metric summarised over the seeds of one group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Mean over the successful seeds that report this metric (`None` when n = 0).
    pub mean: Option<f64>,
    /// Sample std (ddof = 1); `None` when n < 2.
    pub std: Option<f64>,
    /// Successful seeds that report a finite value of this metric.
    pub n: usize,
    /// Runs of the group that failed, diverged, never finished or lack eval.csv.
    pub failed: usize,
}

impl Summary {
    /// Summarises `values` (non-finite values are ignored) with `failed`
    /// unsuccessful runs alongside.
    pub fn of(values: &[f64], failed: usize) -> Summary {
        let (mean, std, n) = mean_std(values);
        Summary {
            mean,
            std,
            n,
            failed,
        }
    }
}

/// Mean, sample std (ddof = 1) and count of the finite values.
pub fn mean_std(values: &[f64]) -> (Option<f64>, Option<f64>, usize) {
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let n = finite.clone().count();
    if n == 0 {
        return (None, None, 0);
    }
    let mean = finite.clone().sum::<f64>() / n as f64;
    let std = (n >= 2).then(|| {
        let ss: f64 = finite.map(|v| (v - mean) * (v - mean)).sum();
        (ss / (n - 1) as f64).sqrt()
    });
    (Some(mean), std, n)
}

/// Two-sided 97.5 % quantiles of Student's t for 1..=30 degrees of freedom.
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// Half-width of the 95 % confidence interval of the mean of `n` values with
/// sample std `std`: t(0.975, n − 1) · std / √n (1.96 beyond 30 degrees of
/// freedom); `None` for fewer than 2 values.
pub fn ci95_half_width(std: Option<f64>, n: usize) -> Option<f64> {
    let std = std?;
    if n < 2 {
        return None;
    }
    let t = T975.get(n - 2).copied().unwrap_or(1.96);
    Some(t * std / (n as f64).sqrt())
}

/// Two-sided exact permutation test of a difference in means between `a`
/// and `b` (non-finite values dropped): the share of the C(n_a + n_b, n_a)
/// relabellings whose |mean difference| is at least the observed one.
/// `None` when a side has no value or there are more than 20 values (then
/// the enumeration is too long for a report).
pub fn permutation_p(a: &[f64], b: &[f64]) -> Option<f64> {
    let a: Vec<f64> = a.iter().copied().filter(|v| v.is_finite()).collect();
    let b: Vec<f64> = b.iter().copied().filter(|v| v.is_finite()).collect();
    let (na, nb) = (a.len(), b.len());
    if na == 0 || nb == 0 || na + nb > 20 {
        return None;
    }
    let all: Vec<f64> = a.iter().chain(&b).copied().collect();
    let total: f64 = all.iter().sum();
    let diff = |sum_a: f64| (sum_a / na as f64 - (total - sum_a) / nb as f64).abs();
    let observed = diff(a.iter().sum()) - 1e-12;
    let (mut hits, mut count) = (0u64, 0u64);
    for mask in 0u32..(1 << all.len()) {
        if mask.count_ones() as usize != na {
            continue;
        }
        let sum_a: f64 = (0..all.len())
            .filter(|i| mask >> i & 1 == 1)
            .map(|i| all[i])
            .sum();
        count += 1;
        if diff(sum_a) >= observed {
            hits += 1;
        }
    }
    Some(hits as f64 / count as f64)
}

/// One point of a curve averaged over seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    pub step: u64,
    pub mean: f64,
    /// Sample std over the seeds that logged this step (`None` with one seed).
    pub std: Option<f64>,
    pub n: usize,
}

/// Averages several seeds' curves (`(step, value)` pairs) step by step; a
/// step logged by only some seeds is averaged over those.
pub fn mean_curve<'a>(curves: impl IntoIterator<Item = &'a [(u64, f64)]>) -> Vec<CurvePoint> {
    let mut by_step: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for curve in curves {
        for &(step, v) in curve {
            if v.is_finite() {
                by_step.entry(step).or_default().push(v);
            }
        }
    }
    by_step
        .into_iter()
        .filter_map(|(step, vals)| {
            let (mean, std, n) = mean_std(&vals);
            Some(CurvePoint {
                step,
                mean: mean?,
                std,
                n,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_std_matches_hand_computation() {
        // mean 2, deviations -1 0 1 -> ss = 2, / (3-1) = 1.
        let s = Summary::of(&[1.0, 2.0, 3.0], 0);
        assert_eq!(s.mean, Some(2.0));
        assert!((s.std.unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(s.n, 3);
        // 0.6, 0.7: mean 0.65, ss = 0.005, std = sqrt(0.005) = 0.0707107.
        let s = Summary::of(&[0.6, 0.7], 1);
        assert!((s.mean.unwrap() - 0.65).abs() < 1e-12);
        assert!((s.std.unwrap() - 0.005f64.sqrt()).abs() < 1e-12);
        assert_eq!((s.n, s.failed), (2, 1));
    }

    #[test]
    fn one_value_has_no_std_and_nan_is_ignored() {
        let s = Summary::of(&[0.5, f64::NAN], 0);
        assert_eq!((s.mean, s.std, s.n), (Some(0.5), None, 1));
        let s = Summary::of(&[], 3);
        assert_eq!((s.mean, s.std, s.n, s.failed), (None, None, 0, 3));
    }

    #[test]
    fn confidence_interval_uses_student_t() {
        // n = 5, std 2: 2.776 · 2 / √5.
        let h = ci95_half_width(Some(2.0), 5).unwrap();
        assert!((h - 2.776 * 2.0 / 5f64.sqrt()).abs() < 1e-12);
        assert_eq!(ci95_half_width(None, 1), None);
        assert!((ci95_half_width(Some(1.0), 100).unwrap() - 0.196).abs() < 1e-12);
    }

    #[test]
    fn permutation_test_is_exact() {
        // Fully separated 3 vs 3: only the observed split and its mirror are
        // as extreme: 2 of C(6, 3) = 20.
        let p = permutation_p(&[1.0, 2.0, 3.0], &[10.0, 11.0, 12.0]).unwrap();
        assert!((p - 0.1).abs() < 1e-12, "{p}");
        // 5 vs 5 separated: 2 / 252.
        let p = permutation_p(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]).unwrap();
        assert!((p - 2.0 / 252.0).abs() < 1e-12, "{p}");
        // Identical samples: every relabelling is as extreme.
        assert_eq!(permutation_p(&[1.0, 1.0], &[1.0, 1.0]), Some(1.0));
        assert_eq!(permutation_p(&[], &[1.0]), None);
    }

    #[test]
    fn curves_average_by_step() {
        let a = [(0, 4.0), (10, 2.0), (20, 1.0)];
        let b = [(0, 2.0), (10, 2.0)];
        let c = mean_curve([&a[..], &b[..]]);
        assert_eq!(c.len(), 3);
        assert_eq!((c[0].step, c[0].mean, c[0].n), (0, 3.0, 2));
        assert!((c[0].std.unwrap() - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!((c[1].mean, c[1].std), (2.0, Some(0.0)));
        assert_eq!((c[2].mean, c[2].std, c[2].n), (1.0, None, 1));
    }
}
