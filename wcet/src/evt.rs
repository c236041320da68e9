//! Extreme-value statistics for probabilistic WCET (pWCET).
//!
//! * **Block maxima + GEV.** The samples are cut into blocks of `b` consecutive activations; the
//!   block maxima are fitted with a generalised extreme-value distribution by maximum likelihood
//!   (Nelder–Mead on (μ, ln σ, ξ) over standardised data). Shape ξ > 0 is heavy-tailed (Fréchet),
//!   ξ = 0 Gumbel, ξ < 0 bounded (Weibull). SciPy's `genextreme` uses c = −ξ.
//! * **Peaks over threshold + GPD.** Exceedances over a high threshold u (default the 0.95
//!   quantile) fitted with a generalised Pareto distribution (SciPy's `genpareto` c = ξ).
//! * **Per-activation probabilities.** A block exceeds x when any of its b activations does, so
//!   for a per-activation exceedance probability p (activations assumed independent):
//!   `p_block = 1 − (1 − p)^b` (computed as `−expm1(b·ln1p(−p))`), and the pWCET at p is the GEV
//!   quantile at non-exceedance `1 − p_block`. For POT: P(X > x) = (n_u/n)·(1 − G(x − u)).
//! * **Independence.** Ljung–Box portmanteau test (χ² p-value) on the autocorrelations up to lag
//!   h, and the Wald–Wolfowitz runs test above/below the median (normal approximation); each
//!   gives a verdict at α = 0.05. EVT's i.i.d. assumption is only as good as these verdicts.

use crate::numeric::{chi2_sf, nelder_mead, normal_two_sided_p};
use serde::{Deserialize, Serialize};

/// Fewest block maxima (and fewest exceedances) a fit accepts.
pub const MIN_POINTS: usize = 30;
/// Significance level of the independence tests.
pub const ALPHA: f64 = 0.05;

/// Errors of the EVT analysis.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EvtError {
    /// Not enough data for a fit.
    #[error("too few samples: {have} {what}, at least {need} needed for an extreme-value fit")]
    TooFew {
        /// What was counted.
        what: &'static str,
        /// How many there were.
        have: usize,
        /// How many are needed.
        need: usize,
    },
    /// A sample is NaN or infinite.
    #[error("sample {index} is not a finite number")]
    NotFinite {
        /// Its index.
        index: usize,
    },
    /// All samples are equal: no distribution to fit.
    #[error("all {0} values are identical; no extreme-value fit is possible")]
    Degenerate(usize),
    /// The optimiser found no valid parameters.
    #[error("the maximum-likelihood fit did not converge")]
    NoFit,
}

/// Generalised extreme-value distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Gev {
    /// Location μ.
    pub mu: f64,
    /// Scale σ > 0.
    pub sigma: f64,
    /// Shape ξ (SciPy's c = −ξ).
    pub xi: f64,
}

const XI_ZERO: f64 = 1e-9;

impl Gev {
    /// CDF.
    pub fn cdf(&self, x: f64) -> f64 {
        let z = (x - self.mu) / self.sigma;
        if self.xi.abs() < XI_ZERO {
            return (-(-z).exp()).exp();
        }
        let t = 1.0 + self.xi * z;
        if t <= 0.0 {
            return if self.xi > 0.0 { 0.0 } else { 1.0 };
        }
        (-t.powf(-1.0 / self.xi)).exp()
    }

    /// Quantile at non-exceedance probability `p` ∈ (0, 1).
    pub fn quantile(&self, p: f64) -> f64 {
        let y = -p.ln();
        if self.xi.abs() < XI_ZERO {
            self.mu - self.sigma * y.ln()
        } else {
            self.mu + self.sigma / self.xi * (y.powf(-self.xi) - 1.0)
        }
    }

    /// Quantile at a small exceedance probability `q` = 1 − p, accurate for tiny `q`.
    pub fn quantile_exceed(&self, q: f64) -> f64 {
        let y = -(-q).ln_1p(); // −ln(1 − q)
        if self.xi.abs() < XI_ZERO {
            self.mu - self.sigma * y.ln()
        } else {
            self.mu + self.sigma / self.xi * (y.powf(-self.xi) - 1.0)
        }
    }

    /// Log-likelihood of `data`.
    pub fn log_likelihood(&self, data: &[f64]) -> f64 {
        if self.sigma <= 0.0 {
            return f64::NEG_INFINITY;
        }
        let n = data.len() as f64;
        let mut ll = -n * self.sigma.ln();
        for &x in data {
            let z = (x - self.mu) / self.sigma;
            if self.xi.abs() < XI_ZERO {
                ll -= z + (-z).exp();
            } else {
                let t = 1.0 + self.xi * z;
                if t <= 0.0 {
                    return f64::NEG_INFINITY;
                }
                ll -= (1.0 + 1.0 / self.xi) * t.ln() + t.powf(-1.0 / self.xi);
            }
        }
        ll
    }

    /// Maximum-likelihood fit.
    ///
    /// # Errors
    /// Fewer than [`MIN_POINTS`] values, non-finite or identical values, no convergence.
    pub fn fit(data: &[f64]) -> Result<Gev, EvtError> {
        let (m, s) = standardise(data, "block maxima")?;
        let z: Vec<f64> = data.iter().map(|x| (x - m) / s).collect();
        let nll = |p: &[f64]| {
            -Gev {
                mu: p[0],
                sigma: p[1].exp(),
                xi: p[2],
            }
            .log_likelihood(&z)
        };
        let sigma0 = 6f64.sqrt() / std::f64::consts::PI;
        let mu0 = -0.577_215_664_901_532_9 * sigma0;
        let best = [-0.2, 0.0, 0.2]
            .iter()
            .map(|&xi0| {
                let (p, _) = nelder_mead(&nll, &[mu0, sigma0.ln(), xi0], 0.1, 4000);
                nelder_mead(&nll, &p, 0.02, 4000)
            })
            .filter(|(_, v)| v.is_finite())
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .ok_or(EvtError::NoFit)?;
        let p = best.0;
        Ok(Gev {
            mu: m + s * p[0],
            sigma: s * p[1].exp(),
            xi: p[2],
        })
    }
}

/// Generalised Pareto distribution of excesses over a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Gpd {
    /// Scale σ > 0.
    pub sigma: f64,
    /// Shape ξ (SciPy's `genpareto` c = ξ).
    pub xi: f64,
}

impl Gpd {
    /// CDF of the excess y ≥ 0.
    pub fn cdf(&self, y: f64) -> f64 {
        if y <= 0.0 {
            return 0.0;
        }
        if self.xi.abs() < XI_ZERO {
            return 1.0 - (-y / self.sigma).exp();
        }
        let t = 1.0 + self.xi * y / self.sigma;
        if t <= 0.0 {
            return 1.0;
        }
        1.0 - t.powf(-1.0 / self.xi)
    }

    /// Excess at exceedance probability `q` (non-exceedance 1 − q).
    pub fn quantile_exceed(&self, q: f64) -> f64 {
        if self.xi.abs() < XI_ZERO {
            -self.sigma * q.ln()
        } else {
            self.sigma / self.xi * (q.powf(-self.xi) - 1.0)
        }
    }

    /// Log-likelihood of excesses.
    pub fn log_likelihood(&self, ys: &[f64]) -> f64 {
        if self.sigma <= 0.0 {
            return f64::NEG_INFINITY;
        }
        let mut ll = -(ys.len() as f64) * self.sigma.ln();
        for &y in ys {
            if y < 0.0 {
                return f64::NEG_INFINITY;
            }
            if self.xi.abs() < XI_ZERO {
                ll -= y / self.sigma;
            } else {
                let t = 1.0 + self.xi * y / self.sigma;
                if t <= 0.0 {
                    return f64::NEG_INFINITY;
                }
                ll -= (1.0 + 1.0 / self.xi) * t.ln();
            }
        }
        ll
    }

    /// Maximum-likelihood fit of excesses (all ≥ 0).
    ///
    /// # Errors
    /// Too few or degenerate excesses, no convergence.
    pub fn fit(ys: &[f64]) -> Result<Gpd, EvtError> {
        let (_, s) = standardise(ys, "exceedances")?;
        let z: Vec<f64> = ys.iter().map(|y| y / s).collect();
        let mean = z.iter().sum::<f64>() / z.len() as f64;
        let nll = |p: &[f64]| {
            -Gpd {
                sigma: p[0].exp(),
                xi: p[1],
            }
            .log_likelihood(&z)
        };
        let best = [-0.2, 0.0, 0.2]
            .iter()
            .map(|&xi0| {
                let (p, _) = nelder_mead(&nll, &[mean.max(1e-6).ln(), xi0], 0.1, 4000);
                nelder_mead(&nll, &p, 0.02, 4000)
            })
            .filter(|(_, v)| v.is_finite())
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .ok_or(EvtError::NoFit)?;
        Ok(Gpd {
            sigma: s * best.0[0].exp(),
            xi: best.0[1],
        })
    }
}

fn standardise(data: &[f64], what: &'static str) -> Result<(f64, f64), EvtError> {
    if data.len() < MIN_POINTS {
        return Err(EvtError::TooFew {
            what,
            have: data.len(),
            need: MIN_POINTS,
        });
    }
    if let Some(index) = data.iter().position(|x| !x.is_finite()) {
        return Err(EvtError::NotFinite { index });
    }
    let n = data.len() as f64;
    let m = data.iter().sum::<f64>() / n;
    let s = (data.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt();
    if s <= 0.0 || !s.is_finite() {
        return Err(EvtError::Degenerate(data.len()));
    }
    Ok((m, s))
}

/// Result of one hypothesis test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// Test name.
    pub test: String,
    /// Statistic (Q for Ljung–Box, z for the runs test).
    pub statistic: f64,
    /// p-value.
    pub p_value: f64,
    /// True when independence is not rejected at [`ALPHA`].
    pub independent: bool,
    /// The verdict in words.
    pub verdict: String,
}

fn verdict(test: &str, statistic: f64, p_value: f64) -> TestResult {
    let independent = p_value >= ALPHA;
    TestResult {
        test: test.into(),
        statistic,
        p_value,
        independent,
        verdict: if independent {
            format!("no evidence against independence (p = {p_value:.3} ≥ {ALPHA})")
        } else {
            format!("DEPENDENCE detected (p = {p_value:.3e} < {ALPHA}): the i.i.d. assumption of EVT is doubtful")
        },
    }
}

/// Ljung–Box test on lags 1..=h: Q = n(n+2) Σ ρ_k²/(n−k), p = P(χ²_h ≥ Q).
pub fn ljung_box(x: &[f64], h: usize) -> TestResult {
    let n = x.len();
    let h = h.min(n.saturating_sub(1)).max(1);
    let mean = x.iter().sum::<f64>() / n as f64;
    let c0: f64 = x.iter().map(|v| (v - mean).powi(2)).sum();
    let mut q = 0.0;
    for k in 1..=h {
        let ck: f64 = (k..n).map(|i| (x[i] - mean) * (x[i - k] - mean)).sum();
        let rho = if c0 > 0.0 { ck / c0 } else { 0.0 };
        q += rho * rho / (n - k) as f64;
    }
    let q = q * n as f64 * (n as f64 + 2.0);
    verdict(&format!("Ljung-Box (h = {h})"), q, chi2_sf(q, h as f64))
}

/// Wald–Wolfowitz runs test above/below the median (values equal to the median are dropped).
pub fn runs_test(x: &[f64]) -> TestResult {
    let mut sorted = x.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = if sorted.is_empty() {
        0.0
    } else if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        0.5 * (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2])
    };
    let signs: Vec<bool> = x
        .iter()
        .filter(|&&v| v != median)
        .map(|&v| v > median)
        .collect();
    let n1 = signs.iter().filter(|&&s| s).count() as f64;
    let n2 = signs.len() as f64 - n1;
    if n1 == 0.0 || n2 == 0.0 {
        return verdict("runs (Wald-Wolfowitz)", 0.0, 1.0);
    }
    let runs = 1 + signs.windows(2).filter(|w| w[0] != w[1]).count();
    let n = n1 + n2;
    let mean = 2.0 * n1 * n2 / n + 1.0;
    let var = 2.0 * n1 * n2 * (2.0 * n1 * n2 - n) / (n * n * (n - 1.0));
    let z = (runs as f64 - mean) / var.sqrt();
    verdict("runs (Wald-Wolfowitz)", z, normal_two_sided_p(z))
}

/// Both independence tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Independence {
    /// Ljung–Box.
    pub ljung_box: TestResult,
    /// Runs test.
    pub runs: TestResult,
}

/// Runs both tests (Ljung–Box with h = min(20, n/5)).
pub fn independence(x: &[f64]) -> Independence {
    Independence {
        ljung_box: ljung_box(x, (x.len() / 5).clamp(1, 20)),
        runs: runs_test(x),
    }
}

/// Options of [`analyze`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvtOptions {
    /// Activations per block; `None` picks n/200 clamped to 10 … 1000.
    pub block_size: Option<usize>,
    /// POT threshold quantile.
    pub pot_quantile: f64,
    /// Per-activation exceedance probabilities for the pWCET.
    pub probabilities: Vec<f64>,
}

impl Default for EvtOptions {
    fn default() -> Self {
        EvtOptions {
            block_size: None,
            pot_quantile: 0.95,
            probabilities: vec![1e-3, 1e-6, 1e-9],
        }
    }
}

/// POT part of the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PotFit {
    /// Threshold u.
    pub threshold: f64,
    /// Exceedances n_u.
    pub exceedances: usize,
    /// The fitted GPD.
    pub gpd: Gpd,
}

/// pWCET at one per-activation exceedance probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pwcet {
    /// Per-activation exceedance probability p.
    pub p: f64,
    /// The block-level probability 1 − (1 − p)^b used with the GEV.
    pub p_block: f64,
    /// GEV estimate.
    pub gev: f64,
    /// GPD estimate, where the POT fit exists.
    pub gpd: Option<f64>,
}

/// Full EVT result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvtResult {
    /// Samples.
    pub n: usize,
    /// Observed maximum.
    pub max: f64,
    /// Activations per block.
    pub block_size: usize,
    /// Blocks.
    pub blocks: usize,
    /// GEV fit of the block maxima.
    pub gev: Gev,
    /// SciPy's `genextreme` shape, c = −ξ, for cross-checking.
    pub scipy_c: f64,
    /// POT/GPD fit (absent when too few exceedances).
    pub pot: Option<PotFit>,
    /// Independence of the samples.
    pub samples_independence: Independence,
    /// Independence of the block maxima.
    pub maxima_independence: Independence,
    /// pWCET estimates.
    pub pwcet: Vec<Pwcet>,
    /// Per-activation exceedance curve from the GEV: (x, P(X > x)).
    pub exceedance_curve: Vec<(f64, f64)>,
}

/// Per-activation exceedance probability of `x` under the block-maxima model (inverse of
/// `p_block = 1 − (1 − p)^b`).
pub fn per_activation_exceedance(gev: &Gev, b: usize, x: f64) -> f64 {
    let f_block = gev.cdf(x);
    if f_block <= 0.0 {
        return 1.0;
    }
    // (1 − p)^b = F  ⇒  p = 1 − F^(1/b) = −expm1(ln F / b)
    -(f_block.ln() / b as f64).exp_m1()
}

/// Fits, tests and estimates.
///
/// # Errors
/// Too few samples (fewer than [`MIN_POINTS`] blocks), non-finite or constant samples, no fit.
///
/// # Examples
/// ```
/// let xs: Vec<f64> = (0..3000u64).map(|i| 1000.0 + ((i * 7919) % 1000) as f64).collect();
/// let r = wcet::evt::analyze(&xs, &Default::default()).unwrap();
/// assert!(r.pwcet.iter().all(|p| p.gev.is_finite()));
/// assert!(wcet::evt::analyze(&xs[..50], &Default::default()).is_err());
/// ```
pub fn analyze(samples: &[f64], opts: &EvtOptions) -> Result<EvtResult, EvtError> {
    if let Some(index) = samples.iter().position(|x| !x.is_finite()) {
        return Err(EvtError::NotFinite { index });
    }
    let n = samples.len();
    let b = opts.block_size.unwrap_or((n / 200).clamp(10, 1000)).max(1);
    let blocks = n / b;
    if blocks < MIN_POINTS {
        return Err(EvtError::TooFew {
            what: "samples",
            have: n,
            need: MIN_POINTS * b,
        });
    }
    let maxima: Vec<f64> = samples
        .chunks_exact(b)
        .map(|c| c.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        .collect();
    let gev = Gev::fit(&maxima)?;
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let threshold = sorted[((n - 1) as f64 * opts.pot_quantile.clamp(0.0, 1.0)) as usize];
    let excess: Vec<f64> = samples
        .iter()
        .filter(|&&x| x > threshold)
        .map(|x| x - threshold)
        .collect();
    let pot = Gpd::fit(&excess).ok().map(|gpd| PotFit {
        threshold,
        exceedances: excess.len(),
        gpd,
    });
    let pwcet = opts
        .probabilities
        .iter()
        .map(|&p| {
            let p_block = -(b as f64 * (-p).ln_1p()).exp_m1();
            let gpd = pot.as_ref().and_then(|f| {
                let rate = f.exceedances as f64 / n as f64;
                (p < rate).then(|| f.threshold + f.gpd.quantile_exceed(p / rate))
            });
            Pwcet {
                p,
                p_block,
                gev: gev.quantile_exceed(p_block),
                gpd,
            }
        })
        .collect();
    let max = sorted[n - 1];
    let top = gev
        .quantile_exceed(-(b as f64 * (-1e-12f64).ln_1p()).exp_m1())
        .max(max);
    let lo = sorted[n / 2];
    let exceedance_curve = (0..=64)
        .map(|i| {
            let x = lo + (top - lo) * i as f64 / 64.0;
            (x, per_activation_exceedance(&gev, b, x))
        })
        .collect();
    Ok(EvtResult {
        n,
        max,
        block_size: b,
        blocks,
        gev,
        scipy_c: -gev.xi,
        pot,
        samples_independence: independence(samples),
        maxima_independence: independence(&maxima),
        pwcet,
        exceedance_curve,
    })
}

/// Parses "one number per line" text (blank lines and `#` comments skipped).
///
/// # Errors
/// The line number and text of the first value that is not a finite number.
pub fn parse_samples(text: &str) -> Result<Vec<f64>, String> {
    let mut v = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        match t.parse::<f64>() {
            Ok(x) if x.is_finite() => v.push(x),
            _ => return Err(format!("line {}: `{t}` is not a finite number", i + 1)),
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gev_quantile_inverts_cdf() {
        for xi in [-0.3, 0.0, 0.25] {
            let g = Gev {
                mu: 10.0,
                sigma: 2.0,
                xi,
            };
            for p in [0.01, 0.5, 0.999] {
                assert!((g.cdf(g.quantile(p)) - p).abs() < 1e-9);
            }
            assert!((g.quantile_exceed(0.25) - g.quantile(0.75)).abs() < 1e-9);
        }
    }

    #[test]
    fn too_few_and_constant_inputs_are_refused() {
        assert!(matches!(
            analyze(&[1.0; 100], &EvtOptions::default()),
            Err(EvtError::TooFew { .. })
        ));
        assert!(matches!(
            analyze(&[1.0; 400], &EvtOptions::default()),
            Err(EvtError::Degenerate(_))
        ));
        assert!(parse_samples("1\n2\nx\n").unwrap_err().contains("line 3"));
    }

    #[test]
    fn alternating_series_fails_the_runs_test() {
        let x: Vec<f64> = (0..200).map(|i| (i % 2) as f64).collect();
        assert!(!runs_test(&x).independent);
        assert!(!ljung_box(&x, 5).independent);
    }
}
