//! Synthetic sensor drivers as child processes: what the latency benchmark runs beside the node, so
//! that drivers and node meet as in a deployment (separate processes and address spaces, shared
//! memory between them, each scheduled on its own).
//!
//! A parent starts a child with [`DriverProcess::spawn`], which re-executes a binary that hands its
//! arguments to [`driver_main`] (`fusion-latency --driver …`; `synth-driver …` is the same grammar).
//! The child runs one synthetic driver ([`crate::driver::run_standalone`]) until SIGTERM or SIGINT,
//! then prints its counters on one stdout line that [`DriverProcess::stop`] reads back. A spawned
//! child gets `PR_SET_PDEATHSIG(SIGTERM)` before it executes, so it also ends when the thread that
//! spawned it dies: a parent that panics or is killed leaves no driver behind.
//!
//! # Example
//! ```no_run
//! use fusion::node::driver_process::{DriverArgs, DriverProcess, SynthKind};
//! let args = DriverArgs::new(SynthKind::Imu, "imu");
//! // This binary's `main` calls `driver_main` when its first argument is `--driver`.
//! let exe = std::env::current_exe()?;
//! let child = DriverProcess::spawn(&exe, &["--driver"], &args)?;
//! std::thread::sleep(std::time::Duration::from_secs(1));
//! let stats = child.stop().map_err(std::io::Error::other)?;
//! println!("published {}", stats.published);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::driver::synthetic::{
    CameraConfig, ImuConfig, LidarConfig, OdometryConfig, SyntheticCamera, SyntheticImu,
    SyntheticLidar, SyntheticOdometry,
};
use crate::driver::{run_standalone, DriverError, DriverStats, SensorDriver};
use crate::rt::RtConfig;

/// Which synthetic sensor a child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthKind {
    /// [`SyntheticCamera`] (rgb8).
    Camera,
    /// [`SyntheticLidar`].
    Lidar,
    /// [`SyntheticImu`].
    Imu,
    /// [`SyntheticOdometry`].
    Odometry,
}

impl SynthKind {
    /// The command-line name: `camera`, `lidar`, `imu`, `odom`.
    pub fn as_str(self) -> &'static str {
        match self {
            SynthKind::Camera => "camera",
            SynthKind::Lidar => "lidar",
            SynthKind::Imu => "imu",
            SynthKind::Odometry => "odom",
        }
    }

    fn parse(s: &str) -> Option<SynthKind> {
        [
            SynthKind::Camera,
            SynthKind::Lidar,
            SynthKind::Imu,
            SynthKind::Odometry,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One driver process's parameters, as its command line carries them:
/// `KIND CHANNEL [--rate HZ] [--width W] [--height H] [--points N] [--fifo PRIO]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverArgs {
    /// The sensor.
    pub kind: SynthKind,
    /// Channel to create and publish on.
    pub channel: String,
    /// Rate (Hz); `None` for the sensor's default (camera 30, LiDAR 10, IMU 400, odometry 50).
    pub rate_hz: Option<f64>,
    /// Camera width.
    pub width: u32,
    /// Camera height.
    pub height: u32,
    /// LiDAR points per scan.
    pub points: usize,
    /// `SCHED_FIFO` priority of the driver thread; `None` runs it under `SCHED_OTHER`.
    pub fifo: Option<i32>,
}

/// The usage line of [`driver_main`]'s grammar.
pub const USAGE: &str = "camera|lidar|imu|odom CHANNEL [--rate HZ] [--width W] [--height H] \
                         [--points N] [--fifo PRIO]";

impl DriverArgs {
    /// The demo sensor of `kind` (camera 1920×1080, LiDAR 120 000 points) on `channel`, default rate,
    /// `SCHED_OTHER`.
    pub fn new(kind: SynthKind, channel: &str) -> DriverArgs {
        let cam = CameraConfig::default();
        DriverArgs {
            kind,
            channel: channel.into(),
            rate_hz: None,
            width: cam.width,
            height: cam.height,
            points: LidarConfig::default().points_per_scan,
            fifo: None,
        }
    }

    /// Parses `KIND CHANNEL [--option NUMBER]…` ([`USAGE`]).
    ///
    /// # Errors
    /// A message naming the unknown kind or option, or the value that is not a number.
    pub fn parse(args: &[String]) -> Result<DriverArgs, String> {
        let [kind, channel, opts @ ..] = args else {
            return Err(format!("expected {USAGE}"));
        };
        let kind = SynthKind::parse(kind)
            .ok_or_else(|| format!("unknown sensor {kind:?}; expected {USAGE}"))?;
        if opts.len() % 2 != 0 {
            return Err(format!("every option takes a number; expected {USAGE}"));
        }
        let mut a = DriverArgs::new(kind, channel);
        for kv in opts.chunks(2) {
            let v: f64 = kv[1]
                .parse()
                .map_err(|_| format!("{} needs a number, got {:?}", kv[0], kv[1]))?;
            match kv[0].as_str() {
                "--rate" => a.rate_hz = Some(v),
                "--width" => a.width = v as u32,
                "--height" => a.height = v as u32,
                "--points" => a.points = v as usize,
                "--fifo" => a.fifo = Some(v as i32),
                other => return Err(format!("unknown option {other}; expected {USAGE}")),
            }
        }
        Ok(a)
    }

    /// The command line [`Self::parse`] reads back.
    pub fn to_args(&self) -> Vec<String> {
        let mut v = vec![self.kind.as_str().to_string(), self.channel.clone()];
        let mut opt = |k: &str, x: String| {
            v.push(k.into());
            v.push(x);
        };
        if let Some(r) = self.rate_hz {
            opt("--rate", r.to_string());
        }
        opt("--width", self.width.to_string());
        opt("--height", self.height.to_string());
        opt("--points", self.points.to_string());
        if let Some(p) = self.fifo {
            opt("--fifo", p.to_string());
        }
        v
    }

    /// The driver.
    ///
    /// # Errors
    /// [`DriverError::Config`] for unusable parameters.
    pub fn driver(&self) -> Result<Box<dyn SensorDriver>, DriverError> {
        Ok(match self.kind {
            SynthKind::Camera => {
                let d = CameraConfig::default();
                Box::new(SyntheticCamera::new(CameraConfig {
                    width: self.width,
                    height: self.height,
                    rate_hz: self.rate_hz.unwrap_or(d.rate_hz),
                    ..d
                })?)
            }
            SynthKind::Lidar => {
                let d = LidarConfig::default();
                Box::new(SyntheticLidar::new(LidarConfig {
                    points_per_scan: self.points,
                    rate_hz: self.rate_hz.unwrap_or(d.rate_hz),
                    ..d
                })?)
            }
            SynthKind::Imu => {
                let d = ImuConfig::default();
                Box::new(SyntheticImu::new(ImuConfig {
                    rate_hz: self.rate_hz.unwrap_or(d.rate_hz),
                    ..d
                })?)
            }
            SynthKind::Odometry => {
                let d = OdometryConfig::default();
                Box::new(SyntheticOdometry::new(OdometryConfig {
                    rate_hz: self.rate_hz.unwrap_or(d.rate_hz),
                    ..d
                })?)
            }
        })
    }
}

/// Set by SIGTERM / SIGINT in a driver process.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // SYNC: Release pairs with the driver loop's Acquire load of its stop flag (nothing else is
    // published by it).
    STOP.store(true, Ordering::Release);
}

/// Prefix of the counters line a driver process prints when it ends.
const STATS_PREFIX: &str = "rtfuse-driver-stats";

/// The driver-process mode of a binary: parses `args` ([`USAGE`]), runs the driver until SIGTERM or
/// SIGINT, prints its counters on stdout and returns the exit code (0, 1 when the driver failed, 2
/// for bad arguments). Errors go to stderr, prefixed with `prog`.
pub fn driver_main(prog: &str, args: &[String]) -> i32 {
    let a = match DriverArgs::parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{prog}: {e}");
            return 2;
        }
    };
    let mut driver = match a.driver() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{prog}: {e}");
            return 2;
        }
    };
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe); `signal` with a valid
        // handler address has no other preconditions.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
    let rt = RtConfig {
        fifo_priority: a.fifo,
        prefault_stack_kib: 512,
        ..RtConfig::default()
    };
    match run_standalone(driver.as_mut(), &a.channel, &rt, &STOP) {
        Ok(st) => {
            println!(
                "{STATS_PREFIX} published={} overruns={} loan_failures={} rejected={} max_fill_ns={}",
                st.published, st.overruns, st.loan_failures, st.rejected, st.max_fill_ns
            );
            0
        }
        Err(e) => {
            eprintln!("{prog} {} {}: {e}", a.kind.as_str(), a.channel);
            1
        }
    }
}

/// Reads the counters line of a driver process's stdout.
fn parse_stats(out: &str) -> Option<DriverStats> {
    let line = out.lines().find(|l| l.starts_with(STATS_PREFIX))?;
    let mut st = DriverStats::default();
    for kv in line.split_whitespace().skip(1) {
        let (k, v) = kv.split_once('=')?;
        let v: u64 = v.parse().ok()?;
        match k {
            "published" => st.published = v,
            "overruns" => st.overruns = v,
            "loan_failures" => st.loan_failures = v,
            "rejected" => st.rejected = v,
            "max_fill_ns" => st.max_fill_ns = v,
            _ => {}
        }
    }
    Some(st)
}

/// A running driver process; dropping it kills it.
pub struct DriverProcess {
    child: Option<Child>,
    /// What it runs.
    pub args: DriverArgs,
}

impl DriverProcess {
    /// Starts `exe prefix… args…` (for example `fusion-latency --driver imu CHANNEL …`) with its
    /// stdout piped to us and `PR_SET_PDEATHSIG(SIGTERM)` set in the child before it executes. The
    /// signal comes when the *thread* that called this ends (Linux semantics): call it from the
    /// thread that outlives the child.
    ///
    /// # Errors
    /// The process could not be started.
    pub fn spawn(exe: &Path, prefix: &[&str], args: &DriverArgs) -> std::io::Result<DriverProcess> {
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        let mut cmd = Command::new(exe);
        cmd.args(prefix)
            .args(args.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        // SAFETY: the closure runs in the forked child before exec and calls only prctl, getppid
        // and raise, which are async-signal-safe and allocate nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl: then no signal would come.
                if libc::getppid() != parent {
                    libc::raise(libc::SIGTERM);
                }
                Ok(())
            })
        };
        Ok(DriverProcess {
            child: Some(cmd.spawn()?),
            args: args.clone(),
        })
    }

    /// The child's exit status if it has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends SIGTERM, waits for the child and returns the counters it printed.
    ///
    /// # Errors
    /// A message if the child could not be signalled or waited for, or ended without its counters
    /// (it failed or was killed).
    pub fn stop(mut self) -> Result<DriverStats, String> {
        let what = format!("driver {} {}", self.args.kind.as_str(), self.args.channel);
        let mut child = self
            .child
            .take()
            .ok_or_else(|| format!("{what}: already stopped"))?;
        if child
            .try_wait()
            .map_err(|e| format!("{what}: {e}"))?
            .is_none()
        {
            // SAFETY: kill(2) of our own child, which has not been reaped (try_wait said so).
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
        let mut out = String::new();
        if let Some(mut o) = child.stdout.take() {
            o.read_to_string(&mut out)
                .map_err(|e| format!("{what}: reading its output: {e}"))?;
        }
        let status = child.wait().map_err(|e| format!("{what}: {e}"))?;
        parse_stats(&out).ok_or_else(|| format!("{what} ended ({status}) without its counters"))
    }
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip_and_bad_ones_are_named() {
        let mut a = DriverArgs::new(SynthKind::Lidar, "lid");
        a.rate_hz = Some(20.0);
        a.points = 3200;
        a.fifo = Some(60);
        assert_eq!(DriverArgs::parse(&a.to_args()), Ok(a));
        let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let err = |s: &str| DriverArgs::parse(&args(s)).unwrap_err();
        assert!(err("sonar x").contains("unknown sensor \"sonar\""));
        assert!(err("imu x --rate fast").contains("--rate needs a number"));
        assert!(err("imu x --speed 3").contains("unknown option --speed"));
        assert!(err("imu").contains("expected"));
        let st = parse_stats("noise\nrtfuse-driver-stats published=7 overruns=2 loan_failures=1 rejected=0 max_fill_ns=9\n")
            .unwrap();
        assert_eq!((st.published, st.overruns, st.loan_failures), (7, 2, 1));
        assert_eq!(parse_stats("published=7"), None);
    }
}
