//! Fitting link costs to calibration samples.
//!
//! [`fit_link`] fits one straight line `t = setup + bytes / bandwidth`.
//! [`fit_link_segmented`] keeps that line when it explains every sample to within
//! [`LINEAR_TOLERANCE`] and otherwise fits a continuous two-segment line (a hinge: a linear
//! regression on the basis `1, min(bytes, k), max(bytes − k, 0)`) with its knee `k` at each
//! calibrated size in turn, keeping the knee whose worst relative error is smallest. Both fits
//! are weighted least squares with weights `1/t²` (relative error), so 4 KiB and 16 MiB count
//! alike. A knee is only placed at a calibrated size: between two sizes the model interpolates
//! linearly, which is why the device check also measures sizes it did not fit on.

use crate::model::{Knee, LinkCost, Provenance};

/// Largest relative error of a one-segment fit that is accepted without trying a knee.
pub const LINEAR_TOLERANCE: f64 = 0.10;

/// Fits `t = setup + bytes / bandwidth` to (bytes, ns) samples by least squares on the
/// samples' relative error, so small and large sizes both count. Returns `None` with fewer than
/// two distinct sizes or a non-positive slope.
pub fn fit_link(samples: &[(u64, f64)], provenance: Provenance) -> Option<LinkCost> {
    let usable = usable(samples);
    let rows: Vec<([f64; 2], f64)> = usable.iter().map(|&(b, t)| ([1.0, b], t)).collect();
    let [intercept, slope] = weighted_least_squares(&rows)?;
    if !(slope.is_finite() && slope > 0.0) {
        return None;
    }
    Some(LinkCost {
        bandwidth_gbps: 1.0 / slope,
        setup_ns: intercept.max(0.0),
        knee: None,
        provenance,
    })
}

/// Fits a one- or two-segment link (see the module doc): the straight line of [`fit_link`]
/// when its worst relative error is at most [`LINEAR_TOLERANCE`], else the two-segment fit
/// with the smallest worst relative error, if that is smaller than the line's. Returns `None`
/// when not even a line can be fitted.
pub fn fit_link_segmented(samples: &[(u64, f64)], provenance: Provenance) -> Option<LinkCost> {
    let line = fit_link(samples, provenance)?;
    let line_err = max_relative_error(&line, samples);
    if line_err <= LINEAR_TOLERANCE {
        return Some(line);
    }
    let mut sizes: Vec<u64> = usable(samples).iter().map(|&(b, _)| b as u64).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut best = (line, line_err);
    // A knee needs two distinct sizes on each side (the knee's own size counts for both).
    for &k in sizes.iter().skip(1).take(sizes.len().saturating_sub(2)) {
        if let Some(l) = fit_hinge(samples, k, provenance) {
            let e = max_relative_error(&l, samples);
            if e < best.1 {
                best = (l, e);
            }
        }
    }
    Some(best.0)
}

/// The worst `|predicted − measured| / measured` of `link` over the usable samples.
pub fn max_relative_error(link: &LinkCost, samples: &[(u64, f64)]) -> f64 {
    usable(samples)
        .iter()
        .map(|&(b, t)| (link.transfer_ns(b as u64) - t).abs() / t)
        .fold(0.0, f64::max)
}

/// Two-segment fit with the knee at `knee` bytes; `None` if either slope is not positive.
fn fit_hinge(samples: &[(u64, f64)], knee: u64, provenance: Provenance) -> Option<LinkCost> {
    let k = knee as f64;
    let rows: Vec<([f64; 3], f64)> = usable(samples)
        .iter()
        .map(|&(b, t)| ([1.0, b.min(k), (b - k).max(0.0)], t))
        .collect();
    let [intercept, head_slope, tail_slope] = weighted_least_squares(&rows)?;
    let positive = |s: f64| s.is_finite() && s > 0.0;
    if !(positive(head_slope) && positive(tail_slope)) {
        return None;
    }
    Some(LinkCost {
        bandwidth_gbps: 1.0 / tail_slope,
        setup_ns: intercept.max(0.0),
        knee: Some(Knee {
            bytes: knee,
            head_bandwidth_gbps: 1.0 / head_slope,
        }),
        provenance,
    })
}

/// Samples with a finite, positive time, as (bytes, ns) in f64.
fn usable(samples: &[(u64, f64)]) -> Vec<(f64, f64)> {
    samples
        .iter()
        .filter(|&&(_, t)| t.is_finite() && t > 0.0)
        .map(|&(b, t)| (b as f64, t))
        .collect()
}

/// Solves the weighted normal equations `(XᵀWX) β = XᵀWy` with weights `1/y²` by Gaussian
/// elimination with partial pivoting; `None` when the system is singular (too few distinct
/// sizes for the basis).
fn weighted_least_squares<const N: usize>(rows: &[([f64; N], f64)]) -> Option<[f64; N]> {
    let mut a = [[0.0f64; N]; N];
    let mut rhs = [0.0f64; N];
    for (x, y) in rows {
        let w = 1.0 / (y * y);
        for i in 0..N {
            rhs[i] += w * x[i] * y;
            for j in 0..N {
                a[i][j] += w * x[i] * x[j];
            }
        }
    }
    // Scale columns so that bytes (up to 10⁷) and the constant column are comparable.
    let scale: [f64; N] = std::array::from_fn(|j| a[j][j].sqrt().max(f64::MIN_POSITIVE));
    for (i, row) in a.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v /= scale[i] * scale[j];
        }
        rhs[i] /= scale[i];
    }
    for col in 0..N {
        let pivot = (col..N).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
        if a[pivot][col].abs() < 1e-9 {
            return None;
        }
        a.swap(col, pivot);
        rhs.swap(col, pivot);
        let (pivot_row, pivot_rhs) = (a[col], rhs[col]);
        for (row, r) in a.iter_mut().zip(rhs.iter_mut()).skip(col + 1) {
            let f = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            *r -= f * pivot_rhs;
        }
    }
    let mut beta = [0.0f64; N];
    for i in (0..N).rev() {
        let s: f64 = (i + 1..N).map(|j| a[i][j] * beta[j]).sum();
        beta[i] = (rhs[i] - s) / a[i][i];
    }
    for (b, s) in beta.iter_mut().zip(scale) {
        *b /= s;
    }
    beta.iter().all(|b| b.is_finite()).then_some(beta)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Noise-free (bytes, ns) samples of `link`.
    fn exact_samples(link: &LinkCost, sizes: &[u64]) -> Vec<(u64, f64)> {
        sizes.iter().map(|&b| (b, link.transfer_ns(b))).collect()
    }

    #[test]
    fn fit_recovers_a_line() {
        let link = LinkCost::modeled(12.5, 3_000.0);
        let samples = exact_samples(&link, &[4096, 65536, 1 << 20, 16 << 20]);
        let fit = fit_link(&samples, Provenance::Measured).expect("fit");
        assert!((fit.bandwidth_gbps - 12.5).abs() < 1e-6, "{fit:?}");
        assert!((fit.setup_ns - 3_000.0).abs() < 1e-3, "{fit:?}");
        assert_eq!(fit.provenance, Provenance::Measured);
    }

    #[test]
    fn fit_rejects_degenerate_input() {
        assert!(fit_link(&[(4096, 10.0)], Provenance::Measured).is_none());
        assert!(fit_link(&[(4096, 10.0), (8192, 5.0)], Provenance::Measured).is_none());
    }

    #[test]
    fn segmented_fit_keeps_a_line_that_fits() {
        let link = LinkCost::modeled(25.0, 6_000.0);
        let samples = exact_samples(&link, &[4096, 65536, 1 << 20, 16 << 20]);
        let fit = fit_link_segmented(&samples, Provenance::Measured).expect("fit");
        assert_eq!(fit.knee, None);
        assert!((fit.bandwidth_gbps - 25.0).abs() < 1e-6, "{fit:?}");
    }

    #[test]
    fn segmented_fit_recovers_a_knee() {
        let link = LinkCost {
            bandwidth_gbps: 16.0,
            setup_ns: 3_000.0,
            knee: Some(Knee {
                bytes: 65536,
                head_bandwidth_gbps: 4.0,
            }),
            provenance: Provenance::Modeled,
        };
        let samples = exact_samples(&link, &[4096, 16384, 65536, 1 << 20, 5 << 19, 16 << 20]);
        let line = fit_link(&samples, Provenance::Measured).expect("line");
        assert!(max_relative_error(&line, &samples) > LINEAR_TOLERANCE);
        let fit = fit_link_segmented(&samples, Provenance::Measured).expect("fit");
        let knee = fit.knee.expect("a knee");
        assert_eq!(knee.bytes, 65536);
        assert!((knee.head_bandwidth_gbps - 4.0).abs() < 1e-6, "{fit:?}");
        assert!((fit.bandwidth_gbps - 16.0).abs() < 1e-6, "{fit:?}");
        assert!((fit.setup_ns - 3_000.0).abs() < 1e-3, "{fit:?}");
        assert!(max_relative_error(&fit, &samples) < 1e-9);
    }
}
