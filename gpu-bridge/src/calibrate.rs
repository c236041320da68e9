//! Start-up calibration helpers: the real CPU copy measurement every backend uses, timing of
//! one path on a backend, and the fit of those timings into a [`Profile`].

use std::time::Instant;

use crate::backend::{Backend, TransferRequest};
use crate::error::BridgeError;
use crate::fit::fit_link_segmented;
use crate::hostmem::{copy_bytes, PageBuffer};
use crate::model::{LinkCost, Path, Profile, Provenance};

/// Median of `v` (sorts it); NaN for an empty slice.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median ns of `reps` runs of `f` (after one warm-up run).
pub fn time_median_ns(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_nanos() as f64
        })
        .collect();
    median(&mut t)
}

/// Measures the CPU copy slab → staging buffer (the bounce path's first leg) for real, on
/// page-aligned buffers, and fits bandwidth and setup.
///
/// # Errors
/// [`BridgeError::HostMemory`] if the buffers cannot be mapped.
pub fn measure_host_copy(sizes: &[usize], reps: usize) -> Result<LinkCost, BridgeError> {
    let max = sizes.iter().copied().max().unwrap_or(1 << 20).max(4096);
    let mut src = PageBuffer::new(max, false)?;
    let mut dst = PageBuffer::new(max, false)?;
    src.as_mut_slice()
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = i as u8);
    let mut samples = Vec::new();
    // Always include a small size so the setup term is pinned down.
    let mut all: Vec<usize> = sizes.to_vec();
    all.push(4096);
    for &n in &all {
        let n = n.clamp(1, max);
        let t = time_median_ns(reps, || {
            copy_bytes(&mut dst.as_mut_slice()[..n], &src.as_slice()[..n]);
            std::hint::black_box(dst.as_slice());
        });
        samples.push((n as u64, t));
    }
    Ok(
        fit_link_segmented(&samples, Provenance::Measured).unwrap_or_else(|| {
            // Degenerate timings (e.g. all equal): bandwidth from the largest size alone.
            let (b, t) = samples
                .iter()
                .copied()
                .max_by_key(|s| s.0)
                .unwrap_or((1, 1.0));
            LinkCost {
                bandwidth_gbps: b as f64 / t.max(1.0),
                setup_ns: 0.0,
                knee: None,
                provenance: Provenance::Measured,
            }
        }),
    )
}

/// Timings of one path at one size.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PathTiming {
    /// The path.
    pub path: Path,
    /// Bytes per transfer.
    pub bytes: usize,
    /// Median wall time from `submit` to the completed event, ns.
    pub median_ns: f64,
    /// Fastest run, ns.
    pub min_ns: f64,
    /// Median of the CPU copy part (bounce), ns.
    pub cpu_copy_median_ns: f64,
    /// Median of the device-link part reported by the backend, ns.
    pub link_median_ns: f64,
    /// Runs.
    pub reps: usize,
}

impl PathTiming {
    /// Effective bandwidth in GB/s of the median run.
    pub fn gbps(&self) -> f64 {
        self.bytes as f64 / self.median_ns
    }
}

/// Times `reps` transfers of `req` one at a time (submit, then wait), after one warm-up.
///
/// # Errors
/// Whatever the backend returns.
pub fn time_path(
    backend: &mut dyn Backend,
    req: &TransferRequest,
    reps: usize,
) -> Result<PathTiming, BridgeError> {
    let t = backend.submit(req)?;
    backend.wait(t)?;
    let (mut wall, mut cpu, mut link) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        let t0 = Instant::now();
        let t = backend.submit(req)?;
        let r = backend.wait(t)?;
        wall.push(t0.elapsed().as_nanos() as f64);
        cpu.push(r.cpu_copy_ns as f64);
        link.push(r.link_ns as f64);
    }
    let min_ns = wall.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(PathTiming {
        path: req.path,
        bytes: req.len,
        median_ns: median(&mut wall),
        min_ns,
        cpu_copy_median_ns: median(&mut cpu),
        link_median_ns: median(&mut link),
        reps: reps.max(1),
    })
}

/// Folds measured timings into `base`: every path with at least two sizes gets a measured
/// [`LinkCost`] fitted to `median - sync` (and, for bounce, minus the CPU copy, which is fitted
/// into `host_copy`) by [`fit_link_segmented`]: a straight line where one explains every size,
/// else two segments (the pageable path, staged by the driver, needs them). Paths without
/// timings keep their values from `base`.
pub fn fit_profile(base: &Profile, timings: &[PathTiming], sync_ns: f64) -> Profile {
    let mut p = base.clone();
    for path in [
        Path::PeerDma,
        Path::PeerZeroCopy,
        Path::Bounce,
        Path::Pageable,
    ] {
        let of_path: Vec<&PathTiming> = timings.iter().filter(|t| t.path == path).collect();
        let samples: Vec<(u64, f64)> = of_path
            .iter()
            .map(|t| {
                let cpu = if path == Path::Bounce {
                    t.cpu_copy_median_ns
                } else {
                    0.0
                };
                (t.bytes as u64, (t.median_ns - cpu - sync_ns).max(1.0))
            })
            .collect();
        if let Some(l) = fit_link_segmented(&samples, Provenance::Measured) {
            *p.link_mut(path) = l;
        }
        if path == Path::Bounce {
            let cpu: Vec<(u64, f64)> = of_path
                .iter()
                .map(|t| (t.bytes as u64, t.cpu_copy_median_ns.max(1.0)))
                .collect();
            if let Some(l) = fit_link_segmented(&cpu, Provenance::Measured) {
                p.host_copy = l;
            }
        }
    }
    p
}

/// One row of the policy-versus-measurement check.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChoiceCheck {
    /// Frame size.
    pub bytes: usize,
    /// Whether the slab was registered (peer paths available) in this row.
    pub slab_registered: bool,
    /// The policy's choice.
    pub chosen: Path,
    /// Its predicted ΔL, ns.
    pub predicted_ns: f64,
    /// The measured fastest path among the same candidates.
    pub fastest: Path,
    /// Measured median of the fastest path, ns.
    pub fastest_ns: f64,
    /// Measured median of the chosen path, ns.
    pub chosen_measured_ns: f64,
    /// `chosen == fastest`.
    pub exact: bool,
    /// The chosen path is within 5% (or 1 µs) of the fastest: a choice between paths that
    /// the measurement cannot tell apart.
    pub within_noise: bool,
}

/// Compares the policy's choice (over `profile`) with the measured fastest path for every
/// size in `timings`, once with a registered slab and once without.
pub fn check_choices(profile: &Profile, timings: &[PathTiming]) -> Vec<ChoiceCheck> {
    use crate::policy::{Policy, Source, StreamConfig};
    let policy = Policy::new(profile.clone());
    let mut sizes: Vec<usize> = timings.iter().map(|t| t.bytes).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut rows = Vec::new();
    for registered in [true, false] {
        for &bytes in &sizes {
            let cfg = StreamConfig {
                name: format!("{bytes} B"),
                frame_bytes: bytes as u64,
                slab_bytes: bytes as u64,
                slab_registered: registered,
                source: Source::HostSlab,
                forced: None,
            };
            let cands = policy.candidates(&cfg);
            let measured: Vec<&PathTiming> = timings
                .iter()
                .filter(|t| t.bytes == bytes && cands.contains(&t.path))
                .collect();
            let Some(fastest) = measured
                .iter()
                .min_by(|a, b| a.median_ns.total_cmp(&b.median_ns))
            else {
                continue;
            };
            // Only choose among paths that were actually measured.
            let Ok(choice) = policy.choose(&cfg) else {
                continue;
            };
            let chosen = choice
                .ranking
                .iter()
                .find(|e| measured.iter().any(|t| t.path == e.path))
                .copied()
                .unwrap_or(choice.estimate);
            let chosen_measured_ns = measured
                .iter()
                .find(|t| t.path == chosen.path)
                .map_or(f64::NAN, |t| t.median_ns);
            let slack = (fastest.median_ns * 0.05).max(1_000.0);
            rows.push(ChoiceCheck {
                bytes,
                slab_registered: registered,
                chosen: chosen.path,
                predicted_ns: chosen.total_ns(),
                fastest: fastest.path,
                fastest_ns: fastest.median_ns,
                chosen_measured_ns,
                exact: chosen.path == fastest.path,
                within_noise: chosen_measured_ns <= fastest.median_ns + slack,
            });
        }
    }
    rows
}

/// Pipelined throughput: `frames` transfers of `req` submitted back to back (the bounce ring
/// makes the CPU copy of frame n+1 overlap the DMA of frame n), then all collected. Returns
/// the mean ns per frame.
///
/// # Errors
/// Whatever the backend returns.
pub fn time_pipeline(
    backend: &mut dyn Backend,
    req: &TransferRequest,
    frames: usize,
) -> Result<f64, BridgeError> {
    let t = backend.submit(req)?;
    backend.wait(t)?;
    let t0 = Instant::now();
    let mut tickets = Vec::with_capacity(frames);
    for _ in 0..frames.max(1) {
        tickets.push(backend.submit(req)?);
    }
    for t in tickets {
        backend.wait(t)?;
    }
    Ok(t0.elapsed().as_nanos() as f64 / frames.max(1) as f64)
}
