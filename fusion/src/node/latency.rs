//! The end-to-end latency benchmark ("DMA complete → fusion start" per stream, SCHED_OTHER against
//! SCHED_FIFO under a CPU stress load, in one run). The `fusion-latency` binary and `rtfuse bench
//! fusion` call [`run_latency_bench`].
//!
//! # Example
//! ```no_run
//! use fusion::node::latency::{run_latency_bench, LatencyBenchConfig};
//! let report = run_latency_bench(&LatencyBenchConfig { seconds: 5.0, ..LatencyBenchConfig::default() })?;
//! println!("{report}");
//! assert!(report.max_ratio() > 0.0);
//! # Ok::<(), fusion::node::NodeError>(())
//! ```

use crate::driver::synthetic::{
    CameraConfig, ImuConfig, LidarConfig, OdometryConfig, SyntheticCamera, SyntheticImu,
    SyntheticLidar, SyntheticOdometry,
};
use crate::driver::{spawn_driver_thread, DriverError, SensorDriver, StreamKind};
use crate::node::{
    FusionNode, NodeConfig, NodeError, ProjectionSpec, StreamSpec, SyncPolicy, Wakeup,
};
use crate::rt::RtConfig;
use crate::stats::StatsSnapshot;
use std::fmt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
}

impl Default for LatencyBenchConfig {
    /// The demo load, 10 s per phase, one stress worker per CPU.
    fn default() -> Self {
        LatencyBenchConfig {
            seconds: 10.0,
            stress: std::thread::available_parallelism().map_or(2, |n| n.get()),
            cpu: None,
            width: 1920,
            height: 1080,
            points: 120_000,
            imu_rate: 400.0,
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

fn cfg_err(e: DriverError) -> NodeError {
    NodeError::Config(e.to_string())
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

fn phase(
    a: &LatencyBenchConfig,
    fifo: bool,
    run: usize,
) -> Result<(StatsSnapshot, u64), NodeError> {
    let stop = Arc::new(AtomicBool::new(false));
    let rt = |prio: i32, cpu: Option<usize>| RtConfig {
        fifo_priority: fifo.then_some(prio),
        cpu,
        lock_memory: true,
        prefault_stack_kib: 512,
    };
    let cam = CameraConfig {
        width: a.width,
        height: a.height,
        ..CameraConfig::default()
    };
    let tag = format!("lat{}_{run}", std::process::id());
    let drivers: Vec<(Box<dyn SensorDriver>, &str)> = vec![
        (
            Box::new(SyntheticCamera::new(cam).map_err(cfg_err)?),
            "camera",
        ),
        (
            Box::new(
                SyntheticLidar::new(LidarConfig {
                    points_per_scan: a.points,
                    ..LidarConfig::default()
                })
                .map_err(cfg_err)?,
            ),
            "lidar",
        ),
        (
            Box::new(
                SyntheticImu::new(ImuConfig {
                    rate_hz: a.imu_rate,
                    ..ImuConfig::default()
                })
                .map_err(cfg_err)?,
            ),
            "imu",
        ),
        (
            Box::new(SyntheticOdometry::new(OdometryConfig::default()).map_err(cfg_err)?),
            "odom",
        ),
    ];
    let mut streams = Vec::new();
    let mut threads = Vec::new();
    for (d, n) in drivers {
        let ch = format!("{tag}_{n}");
        streams.push(StreamSpec {
            channel: ch.clone(),
            kind: d.kind(),
            rate_hz: d.rate_hz(),
        });
        // Drivers below the fusion thread; the IMU highest of them (small, frequent).
        let prio = if d.kind() == StreamKind::Imu { 70 } else { 60 };
        threads.push(spawn_driver_thread(d, &ch, rt(prio, None), stop.clone()).map_err(cfg_err)?);
    }
    let cfg = NodeConfig {
        name: format!("bench-{}", if fifo { "fifo" } else { "other" }),
        streams,
        sync: SyncPolicy::ApproximateTime {
            queue_size: 4,
            age_penalty: 0.1,
            max_interval_ns: Some(20_000_000),
        },
        rt: rt(80, a.cpu),
        wakeup: Wakeup::Sleep {
            max_wait: Duration::from_millis(20),
        },
        projection: Some(ProjectionSpec::synthetic(&cam)),
        warmup: Duration::from_secs(1),
        ..NodeConfig::demo()
    };
    let handle = FusionNode::new(cfg)?.start()?;
    tracing::info!(
        "latency bench phase {}: fusion thread {}",
        if fifo { "FIFO" } else { "OTHER" },
        handle.rt_status()
    );
    std::thread::sleep(Duration::from_secs_f64(a.seconds));
    let report = handle.stop()?;
    stop.store(true, Ordering::Release);
    let mut overruns = 0;
    for t in threads {
        match t.join() {
            Ok((st, _)) => overruns += st.overruns + st.loan_failures,
            Err(e) => tracing::warn!("latency bench driver: {e}"),
        }
    }
    Ok((report.stats, overruns))
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
        "  sets fused {}, stats lost {}",
        s.sets_fused, s.stats_lost
    )
}

impl fmt::Display for LatencyBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "camera {}x{} rgb8 @30 Hz, LiDAR {} points @10 Hz, IMU @{} Hz, odometry @50 Hz; {} s per phase; load: {}",
            c.width, c.height, c.points, c.imu_rate, c.seconds, self.load
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
