//! The end-to-end latency benchmark ("DMA complete → fusion start" per stream, SCHED_OTHER against
//! SCHED_FIFO under a CPU stress load, in one run). The `fusion-latency` binary calls
//! [`run_latency_bench`].
//!
//! Each phase starts the four synthetic drivers as separate processes
//! ([`super::driver_process`]: the benchmark binary re-executed in its `--driver` mode, ended by
//! `PR_SET_PDEATHSIG` if the benchmark dies), then the node in this process, waits until every stream
//! delivers, measures for the configured time, and stops node and drivers. Under SCHED_FIFO the
//! drivers run at priority 60 (the IMU at 70) and the fusion thread at 80; under SCHED_OTHER all run
//! at the default policy. `stress-ng` (or burner threads where it is missing) runs beside both
//! phases.
//!
//! # Example
//! ```no_run
//! use fusion::node::latency::{run_latency_bench, LatencyBenchConfig};
//! // The binary's `main` must hand `--driver …` arguments to `driver_process::driver_main`.
//! let report = run_latency_bench(&LatencyBenchConfig { seconds: 5.0, ..LatencyBenchConfig::default() })?;
//! println!("{report}");
//! assert!(report.max_ratio() > 0.0);
//! # Ok::<(), fusion::node::NodeError>(())
//! ```

use super::driver_process::{DriverArgs, DriverProcess, SynthKind};
use crate::driver::StreamKind;
use crate::node::{
    FusionNode, NodeConfig, NodeError, ProjectionSpec, StreamSpec, SyncPolicy, Wakeup,
};
use crate::rt::RtConfig;
use crate::stats::StatsSnapshot;
use std::fmt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyBenchConfig {
    /// Seconds per phase.
    pub seconds: f64,
    /// CPU stress workers beside the measurement (0 = none).
    pub stress: usize,
    /// CPU to pin the fusion thread to.
    pub cpu: Option<usize>,
    /// Camera width.
    pub width: u32,
    /// Camera height.
    pub height: u32,
    /// LiDAR points per scan.
    pub points: usize,
    /// IMU rate (Hz).
    pub imu_rate: f64,
    /// Points per slice of a pair's fusion ([`NodeConfig::fuse_slice_points`]).
    pub fuse_slice_points: usize,
    /// The binary that runs a driver process, and the arguments before the driver's own
    /// (`fusion-latency --driver`): it must hand the rest to
    /// [`super::driver_process::driver_main`].
    pub driver_command: (PathBuf, Vec<String>),
}

impl Default for LatencyBenchConfig {
    /// The demo load, 10 s per phase, one stress worker per CPU, drivers run by this binary's
    /// `--driver` mode.
    fn default() -> Self {
        LatencyBenchConfig {
            seconds: 10.0,
            stress: std::thread::available_parallelism().map_or(2, |n| n.get()),
            cpu: None,
            width: 1920,
            height: 1080,
            points: 120_000,
            imu_rate: 400.0,
            fuse_slice_points: crate::node::DEFAULT_FUSE_SLICE_POINTS,
            driver_command: (
                std::env::current_exe().unwrap_or_default(),
                vec!["--driver".into()],
            ),
        }
    }
}

/// Both phases' statistics.
#[derive(Debug, Clone)]
pub struct LatencyBenchReport {
    /// The configuration run.
    pub config: LatencyBenchConfig,
    /// The CPU load that ran beside it.
    pub load: String,
    /// SCHED_OTHER phase.
    pub other: StatsSnapshot,
    /// SCHED_FIFO phase (SCHED_OTHER again where the host refused).
    pub fifo: StatsSnapshot,
    /// Driver ticks missed (overruns and loan failures) in the OTHER and FIFO phases.
    pub missed_ticks: (u64, u64),
}

impl LatencyBenchReport {
    /// Largest FIFO "DMA → fusion start" over all streams divided by the largest OTHER one
    /// (target ≤ 0.2).
    pub fn max_ratio(&self) -> f64 {
        let max = |s: &StatsSnapshot| {
            s.streams
                .iter()
                .map(|x| x.dma_to_fuse_start.max_ns)
                .max()
                .unwrap_or(0)
        };
        max(&self.fifo) as f64 / max(&self.other).max(1) as f64
    }
}

/// Runs the SCHED_OTHER phase, then the SCHED_FIFO phase, with the stress load beside both.
///
/// # Errors
/// A driver or the node could not start.
pub fn run_latency_bench(cfg: &LatencyBenchConfig) -> Result<LatencyBenchReport, NodeError> {
    let (stress, load) = Stress::start(cfg.stress);
    std::thread::sleep(Duration::from_millis(500));
    let both = phase(cfg, false, 0).and_then(|o| Ok((o, phase(cfg, true, 1)?)));
    stress.stop();
    let ((other, o_missed), (fifo, f_missed)) = both?;
    Ok(LatencyBenchReport {
        config: cfg.clone(),
        load,
        other,
        fifo,
        missed_ticks: (o_missed, f_missed),
    })
}

/// The CPU load beside the measurement.
enum Stress {
    Process(Child),
    Threads(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>),
    None,
}

impl Stress {
    fn start(n: usize) -> (Stress, String) {
        if n == 0 {
            return (Stress::None, "none".into());
        }
        match Command::new("stress-ng")
            .args([
                "--cpu",
                &n.to_string(),
                "--cpu-method",
                "matrixprod",
                "--quiet",
            ])
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(c) => (
                Stress::Process(c),
                format!("stress-ng --cpu {n} --cpu-method matrixprod"),
            ),
            Err(e) => {
                tracing::warn!(
                    "stress-ng not available ({e}); install it with `apt-get install stress-ng`. \
                     Using {n} in-process CPU burner threads instead."
                );
                let stop = Arc::new(AtomicBool::new(false));
                let threads = (0..n)
                    .map(|_| {
                        let s = stop.clone();
                        std::thread::spawn(move || {
                            let mut x = 1u64;
                            while !s.load(Ordering::Relaxed) {
                                x = std::hint::black_box(
                                    x.wrapping_mul(6364136223846793005).wrapping_add(1),
                                );
                            }
                        })
                    })
                    .collect();
                (
                    Stress::Threads(stop, threads),
                    format!("{n} in-process burner threads (stress-ng missing)"),
                )
            }
        }
    }

    fn stop(self) {
        match self {
            Stress::Process(mut c) => {
                // SAFETY: plain kill(2) of our own child; SIGTERM lets stress-ng reap its workers.
                unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
                let _ = c.wait();
            }
            Stress::Threads(s, t) => {
                s.store(true, Ordering::Relaxed);
                t.into_iter().for_each(|t| {
                    let _ = t.join();
                });
            }
            Stress::None => {}
        }
    }
}

/// How long the drivers may take to deliver their first samples.
const FIRST_SAMPLES_WITHIN: Duration = Duration::from_secs(30);

/// One phase: drivers as processes, the node here, `seconds` of measurement. Returns the node's
/// statistics and the driver ticks missed.
fn phase(
    a: &LatencyBenchConfig,
    fifo: bool,
    run: usize,
) -> Result<(StatsSnapshot, u64), NodeError> {
    let tag = format!("lat{}_{run}", std::process::id());
    let drivers = [
        (SynthKind::Camera, StreamKind::Camera, 30.0),
        (SynthKind::Lidar, StreamKind::Lidar, 10.0),
        (SynthKind::Imu, StreamKind::Imu, a.imu_rate),
        (SynthKind::Odometry, StreamKind::Odometry, 50.0),
    ];
    let (exe, prefix) = &a.driver_command;
    let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let mut streams = Vec::new();
    let mut children = Vec::new();
    for (synth, kind, rate_hz) in drivers {
        let channel = format!("{tag}_{}", synth.as_str());
        // Drivers below the fusion thread; the IMU highest of them (small, frequent).
        let prio = if kind == StreamKind::Imu { 70 } else { 60 };
        let args = DriverArgs {
            rate_hz: Some(rate_hz),
            width: a.width,
            height: a.height,
            points: a.points,
            fifo: fifo.then_some(prio),
            ..DriverArgs::new(synth, &channel)
        };
        let child = DriverProcess::spawn(exe, &prefix, &args).map_err(|e| {
            NodeError::Driver(format!(
                "starting {} {:?}: {e}",
                exe.display(),
                args.to_args()
            ))
        })?;
        children.push(child);
        streams.push(StreamSpec {
            channel,
            kind,
            rate_hz,
        });
    }
    let cam = crate::driver::synthetic::CameraConfig {
        width: a.width,
        height: a.height,
        ..Default::default()
    };
    let cfg = NodeConfig {
        name: format!("bench-{}", if fifo { "fifo" } else { "other" }),
        streams,
        sync: SyncPolicy::ApproximateTime {
            queue_size: 4,
            age_penalty: 0.1,
            max_interval_ns: Some(20_000_000),
        },
        rt: RtConfig {
            fifo_priority: fifo.then_some(80),
            cpu: a.cpu,
            lock_memory: true,
            prefault_stack_kib: 512,
        },
        wakeup: Wakeup::Sleep {
            max_wait: Duration::from_millis(20),
        },
        projection: Some(ProjectionSpec::synthetic(&cam)),
        fuse_slice_points: a.fuse_slice_points,
        warmup: Duration::from_secs(1),
        ..NodeConfig::demo()
    };
    // The node opens each channel when its driver has created it.
    let handle = FusionNode::new(cfg)?.start()?;
    tracing::info!(
        "latency bench phase {}: fusion thread {}",
        if fifo { "FIFO" } else { "OTHER" },
        handle.rt_status()
    );
    let deadline = Instant::now() + FIRST_SAMPLES_WITHIN;
    let n = children.len();
    while (0..n).any(|i| {
        handle
            .stream_counters(i)
            .is_some_and(|c| c.received.get() == 0)
    }) {
        for c in &mut children {
            if let Some(status) = c.exited() {
                return Err(NodeError::Driver(format!(
                    "driver {} {} exited ({status}) before publishing",
                    c.args.kind.as_str(),
                    c.args.channel
                )));
            }
        }
        if Instant::now() > deadline {
            return Err(NodeError::Driver(format!(
                "no samples from every driver within {FIRST_SAMPLES_WITHIN:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs_f64(a.seconds));
    let report = handle.stop()?;
    let mut missed = 0;
    for c in children {
        match c.stop() {
            Ok(st) => missed += st.overruns + st.loan_failures,
            Err(e) => tracing::warn!("latency bench: {e}"),
        }
    }
    Ok((report.stats, missed))
}

pub(crate) fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn table(f: &mut fmt::Formatter<'_>, s: &StatsSnapshot, label: &str) -> fmt::Result {
    writeln!(f, "{label}: DMA complete → fusion start (ms)")?;
    writeln!(
        f,
        "  {:<10} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "stream", "samples", "p50", "p99", "p99.9", "max"
    )?;
    for st in &s.streams {
        let l = &st.dma_to_fuse_start;
        let name = st.name.rsplit('_').next().unwrap_or(&st.name);
        writeln!(
            f,
            "  {:<10} {:>8} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            name,
            l.count,
            ms(l.p50_ns),
            ms(l.p99_ns),
            ms(l.p999_ns),
            ms(l.max_ns)
        )?;
    }
    writeln!(
        f,
        "  sets fused {} in {} slices (longest {:.3} ms), stats lost {}",
        s.sets_fused,
        s.fuse_slices,
        ms(s.fuse_slice_max_ns),
        s.stats_lost
    )
}

impl fmt::Display for LatencyBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "camera {}x{} rgb8 @30 Hz, LiDAR {} points @10 Hz, IMU @{} Hz, odometry @50 Hz, each driver \
             its own process; {} s per phase; load: {}",
            c.width, c.height, c.points, c.imu_rate, c.seconds, self.load
        )?;
        writeln!(
            f,
            "pairs fused in slices of {} points, the other inputs served between two",
            c.fuse_slice_points
        )?;
        table(f, &self.other, "SCHED_OTHER")?;
        table(f, &self.fifo, "SCHED_FIFO")?;
        if self.fifo.rt.as_ref().is_some_and(|r| !r.is_fifo()) {
            writeln!(
                f,
                "NOTE: the host refused SCHED_FIFO; both phases ran under SCHED_OTHER"
            )?;
        }
        writeln!(f, "ratio FIFO max / OTHER max (target ≤ 0.20):")?;
        for (o, x) in self.other.streams.iter().zip(&self.fifo.streams) {
            let (om, fm) = (o.dma_to_fuse_start.max_ns, x.dma_to_fuse_start.max_ns);
            let name = o.name.rsplit('_').next().unwrap_or(&o.name);
            let p99 = x.dma_to_fuse_start.p99_ns as f64 / o.dma_to_fuse_start.p99_ns.max(1) as f64;
            writeln!(
                f,
                "  {:<10} max {:.3}  (p99 ratio {:.3})",
                name,
                fm as f64 / om.max(1) as f64,
                p99
            )?;
        }
        writeln!(f, "  all streams max {:.3}", self.max_ratio())?;
        write!(
            f,
            "driver ticks missed (overruns, no free chunk): OTHER {}, FIFO {}",
            self.missed_ticks.0, self.missed_ticks.1
        )
    }
}
