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
