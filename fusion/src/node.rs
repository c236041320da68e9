//! The fusion node: one real-time thread that serves every input channel, synchronises camera and
//! LiDAR, fuses them, and hands results and measurements to non-real-time workers.
//!
//! ```text
//!  channels ──► fusion thread (SCHED_FIFO, pinned, mlockall'd, no allocation after warm-up)
//!               receive ► validate ► stamp dequeue ► sync (ExactTime / ApproximateTime)
//!               ► fuse (LiDAR → camera depth image, in slices with the other inputs served
//!                 between two; IMU / odometry decoded for the EKF)
//!               ► release ── records ──► ArrayQueue ──► stats worker (HDR histograms, snapshots)
//!                                    └─► ArrayQueue ──► trace writer (rtfuse-trace file)
//!               ── depth image, coloured cloud and EKF odometry written in place into loaned
//!                  chunks of their output channels (see [`outputs`])
//! ```
//! Channels that do not exist yet are opened when they appear; a channel whose publisher went away
//! (a driver restarted) is reopened when the new publisher creates it ([`crate::stats::StreamCounters::reconnects`]).
//!
//! # Example
//! ```no_run
//! use fusion::node::{FusionNode, NodeConfig};
//! let node = FusionNode::new(NodeConfig::demo())?;
//! let handle = node.start()?;
//! std::thread::sleep(std::time::Duration::from_secs(2));
//! println!("{}", handle.snapshot());
//! let report = handle.stop()?;
//! println!("fused {} sets", report.stats.sets_fused);
//! # Ok::<(), fusion::node::NodeError>(())
//! ```

pub mod driver_process;
mod fusion_loop;
pub mod latency;
mod mcap_worker;
pub mod outputs;

pub use outputs::{OdometryRecord, CLOUD_XYZRGB};

use crossbeam_queue::ArrayQueue;
use nalgebra::Isometry3;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::driver::synthetic::CameraConfig;
use crate::driver::StreamKind;
use crate::projection::{CameraInfo, ImageModel};
use crate::rt::{RtConfig, RtStatus};
use crate::stats::{
    NodeCounters, NodeStatsSources, RecordSink, SnapshotReader, StatsCollector, StatsSnapshot,
    StatsWorker, StreamCounters,
};
use crate::trace_out::{host_header, TraceOutput, TraceSummary};

/// Most input streams one node serves.
pub const MAX_STREAMS: usize = 8;
/// Capacity of each synchroniser queue (queue sizes up to `SYNC_CAPACITY - 1`).
pub const SYNC_CAPACITY: usize = 16;

/// One input channel.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSpec {
    /// Channel name.
    pub channel: String,
    /// What it carries.
    pub kind: StreamKind,
    /// Nominal rate (Hz), for the trace header and the synchroniser's inter-message bound.
    pub rate_hz: f64,
}

/// How camera and LiDAR are paired (ROS 2 message_filters semantics, see [`crate::sync`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SyncPolicy {
    /// Identical sensor stamps only.
    ExactTime {
        /// Incomplete stamps kept.
        queue_size: usize,
    },
    /// Nearest stamps.
    ApproximateTime {
        /// Messages kept per stream.
        queue_size: usize,
        /// Age penalty (the C++ default is 0.1).
        age_penalty: f64,
        /// Largest allowed spread of a set (ns), if any.
        max_interval_ns: Option<i64>,
    },
}

/// How the fusion thread waits for data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeup {
    /// Busy-poll every channel (lowest latency, one core at 100 %).
    Spin,
    /// Sleep until any channel has data (`shm_transport::wait_any`), at most `max_wait` at a time.
    Sleep {
        /// Longest single wait (bounds the reaction time to stop and reconnects).
        max_wait: Duration,
    },
}

/// LiDAR → camera projection parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionSpec {
    /// The camera's calibration (its size must match the camera stream).
    pub camera: CameraInfo,
    /// LiDAR frame → camera optical frame.
    pub extrinsic: Isometry3<f64>,
    /// Raw (K, D) or rectified (R, P) image.
    pub model: ImageModel,
}

impl ProjectionSpec {
    /// The projection for a synthetic camera on the synthetic vehicle.
    pub fn synthetic(camera: &CameraConfig) -> ProjectionSpec {
        ProjectionSpec {
            camera: CameraInfo::from_model(&camera.model()),
            extrinsic: crate::truth::lidar_to_camera_optical(),
            model: ImageModel::Raw,
        }
    }
}

/// EKF parameters (robot_localization-style, see [`crate::ekf`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EkfSpec {
    /// IMU standard deviations: orientation (rad), angular rate (rad/s), acceleration (m/s²).
    pub imu_std: [f64; 3],
    /// Odometry standard deviations: position (m), yaw (rad), velocity (m/s), yaw rate (rad/s).
    pub odom_std: [f64; 4],
    /// Mahalanobis gate in standard deviations (`f64::INFINITY` disables it).
    pub mahalanobis_threshold: f64,
    /// How far back a measurement that arrives after later ones is still fused at its stamp
    /// (robot_localization's `smooth_lagged_data` / `history_length`); older ones are dropped and
    /// counted ([`crate::stats::StatsSnapshot::ekf_too_late`]).
    pub lag: crate::ekf::LagWindow,
}

impl Default for EkfSpec {
    /// Matched to the synthetic sensors' default noise, gate at 5 σ, half a second of history.
    fn default() -> Self {
        EkfSpec {
            imu_std: [0.01, 0.01, 0.1],
            odom_std: [0.05, 0.02, 0.05, 0.01],
            mahalanobis_threshold: 5.0,
            lag: crate::ekf::LagWindow::default(),
        }
    }
}

/// One EKF estimate, as the fusion thread hands it out after each accepted measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The filter time as a sensor stamp (CLOCK_MONOTONIC ns): the newest stamp fused so far (a
    /// late measurement updates the estimate at this time, not at its own stamp).
    pub t_sensor_ns: u64,
    /// The state (see [`crate::ekf::idx`]).
    pub state: [f64; crate::ekf::STATE_SIZE],
}

/// Estimates kept for [`NodeHandle::drain_estimates`] (oldest overwritten).
pub const ESTIMATE_CAPACITY: usize = 4096;

/// Default [`NodeConfig::fuse_slice_points`]: 8192 points of a scan projected per slice, about
/// 0.3 ms on the 2-vCPU CI VM (`fusion/BENCHMARKS.md`), so an IMU sample at 400 Hz waits well under
/// a millisecond for a pair being fused.
pub const DEFAULT_FUSE_SLICE_POINTS: usize = 8192;

/// Everything the node needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// Node name (thread names, trace header).
    pub name: String,
    /// Input channels (at most [`MAX_STREAMS`]; at most one camera and one LiDAR are synchronised).
    pub streams: Vec<StreamSpec>,
    /// Camera–LiDAR synchronisation.
    pub sync: SyncPolicy,
    /// Fusion thread real-time set-up.
    pub rt: RtConfig,
    /// Waiting strategy.
    pub wakeup: Wakeup,
    /// LiDAR → camera projection; `None` pairs the frames without projecting.
    pub projection: Option<ProjectionSpec>,
    /// Points of a LiDAR scan projected in one slice of a pair's fusion (at least 1; bulk memory
    /// work is counted at [`crate::projection::BULK_BYTES_PER_POINT`] bytes a point). Between two
    /// slices the fusion thread serves the inputs that are not synchronised (IMU, odometry, …);
    /// `usize::MAX` fuses each pair in one piece.
    pub fuse_slice_points: usize,
    /// EKF over IMU and odometry; `None` only validates those streams.
    pub ekf: Option<EkfSpec>,
    /// Channel to publish depth images on (float32 metres, NaN = no return), if any.
    pub depth_output: Option<String>,
    /// Channel to publish coloured clouds on (x, y, z, rgb; see [`outputs::CLOUD_XYZRGB`]), if any;
    /// needs `projection`.
    pub cloud_output: Option<String>,
    /// Most points of a LiDAR scan the coloured cloud channel and the MCAP output's cloud buffers
    /// hold; a larger scan is counted as a fuse error and its cloud is not published.
    pub cloud_output_points: usize,
    /// Channel to publish EKF odometry on ([`OdometryRecord`], typed), if any; needs `ekf`.
    pub odometry_output: Option<String>,
    /// Geometry of output channels the deployment declares (by channel name); an output not
    /// listed gets the node's default ([`outputs::depth_output_config`] and its siblings).
    pub output_geometry: Vec<(String, shm_transport::ChannelConfig)>,
    /// message_filters' inter-message lower bound of a synchronised channel (by channel name, ns);
    /// a channel not listed gets 90 % of its period.
    pub sync_lower_bound_ns: Vec<(String, i64)>,
    /// Trace file, if any.
    pub trace_path: Option<PathBuf>,
    /// MCAP file for fused results (depth images, coloured clouds, EKF odometry), if any; written
    /// off the RT thread.
    pub mcap_path: Option<PathBuf>,
    /// Records the trace queue holds (pre-allocated).
    pub trace_capacity: usize,
    /// Records the stats queue holds (pre-allocated).
    pub stats_capacity: usize,
    /// How often the stats worker publishes a snapshot.
    pub stats_period: Duration,
    /// How long after start the steady-state self-check (allocations, faults) begins.
    pub warmup: Duration,
    /// How often a missing channel is looked for.
    pub reconnect_period: Duration,
}

impl NodeConfig {
    /// The demo node: camera, LiDAR, IMU and odometry from the synthetic drivers' default channels,
    /// ApproximateTime pairing, SCHED_FIFO 80, sleeping wake-up.
    pub fn demo() -> NodeConfig {
        let cam = CameraConfig::default();
        NodeConfig {
            name: "fusion".into(),
            streams: vec![
                StreamSpec {
                    channel: "camera".into(),
                    kind: StreamKind::Camera,
                    rate_hz: cam.rate_hz,
                },
                StreamSpec {
                    channel: "lidar".into(),
                    kind: StreamKind::Lidar,
                    rate_hz: 10.0,
                },
                StreamSpec {
                    channel: "imu".into(),
                    kind: StreamKind::Imu,
                    rate_hz: 400.0,
                },
                StreamSpec {
                    channel: "odom".into(),
                    kind: StreamKind::Odometry,
                    rate_hz: 50.0,
                },
            ],
            sync: SyncPolicy::ApproximateTime {
                queue_size: 4,
                age_penalty: 0.1,
                max_interval_ns: Some(20_000_000),
            },
            rt: RtConfig::default(),
            wakeup: Wakeup::Sleep {
                max_wait: Duration::from_millis(20),
            },
            projection: Some(ProjectionSpec::synthetic(&cam)),
            fuse_slice_points: DEFAULT_FUSE_SLICE_POINTS,
            ekf: Some(EkfSpec::default()),
            depth_output: None,
            cloud_output: None,
            cloud_output_points: outputs::DEFAULT_CLOUD_OUTPUT_POINTS,
            odometry_output: None,
            output_geometry: Vec::new(),
            sync_lower_bound_ns: Vec::new(),
            trace_path: None,
            mcap_path: None,
            trace_capacity: 1 << 16,
            stats_capacity: 1 << 14,
            stats_period: Duration::from_millis(500),
            warmup: Duration::from_millis(500),
            reconnect_period: Duration::from_millis(20),
        }
    }

    /// Points per slice of a pair's fusion when pairs are projected (a camera, a LiDAR and a
    /// projection are configured), else `None`.
    pub fn fuse_slicing(&self) -> Option<usize> {
        let has = |k: StreamKind| self.streams.iter().any(|s| s.kind == k);
        (self.projection.is_some() && has(StreamKind::Camera) && has(StreamKind::Lidar))
            .then_some(self.fuse_slice_points)
    }

    fn validate(&self) -> Result<(), NodeError> {
        let bad = |m: String| Err(NodeError::Config(m));
        if self.streams.is_empty() || self.streams.len() > MAX_STREAMS {
            return bad(format!(
                "{} streams: a node serves 1 to {MAX_STREAMS}",
                self.streams.len()
            ));
        }
        for kind in [StreamKind::Camera, StreamKind::Lidar] {
            if self.streams.iter().filter(|s| s.kind == kind).count() > 1 {
                return bad(format!(
                    "more than one {kind} stream: one camera and one LiDAR are paired"
                ));
            }
        }
        for (i, s) in self.streams.iter().enumerate() {
            if shm_transport::validate_name(&s.channel).is_err() {
                return bad(format!(
                    "stream {i}: {:?} is not a valid channel name",
                    s.channel
                ));
            }
            if self.streams[..i].iter().any(|o| o.channel == s.channel) {
                return bad(format!("channel {:?} listed twice", s.channel));
            }
            if !(s.rate_hz.is_finite() && s.rate_hz > 0.0) {
                return bad(format!(
                    "stream {:?}: rate {} Hz must be positive",
                    s.channel, s.rate_hz
                ));
            }
        }
        let qs = match self.sync {
            SyncPolicy::ExactTime { queue_size } => queue_size,
            SyncPolicy::ApproximateTime {
                queue_size,
                age_penalty,
                max_interval_ns,
            } => {
                if !(age_penalty.is_finite() && age_penalty >= 0.0)
                    || max_interval_ns.is_some_and(|m| m < 0)
                {
                    return bad("age penalty and max interval must be >= 0".into());
                }
                queue_size
            }
        };
        if qs == 0 || qs >= SYNC_CAPACITY {
            return bad(format!(
                "sync queue size {qs} must be in 1..={}",
                SYNC_CAPACITY - 1
            ));
        }
        if self.trace_capacity == 0 || self.stats_capacity == 0 {
            return bad("trace and stats queue capacities must be > 0".into());
        }
        if self.fuse_slice_points == 0 {
            return bad("fuse_slice_points must be > 0".into());
        }
        if self.cloud_output.is_some() && self.cloud_output_points == 0 {
            return bad("cloud_output_points must be > 0".into());
        }
        if let Some(p) = &self.projection {
            if p.camera.width == 0 || p.camera.height == 0 {
                return bad("projection camera has zero size".into());
            }
        }
        Ok(())
    }
}

/// Why the node could not start or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The configuration is unusable.
    #[error("node configuration: {0}")]
    Config(String),
    /// The trace file could not be written.
    #[error("trace: {0}")]
    Trace(#[from] rtfuse_trace::TraceError),
    /// An output channel (depth, coloured cloud, odometry) could not be created.
    #[error("output channel {channel:?}: {source}")]
    Output {
        /// Channel name.
        channel: String,
        /// Cause.
        source: shm_transport::CreateError,
    },
    /// The MCAP output failed.
    #[error("MCAP output: {0}")]
    Mcap(String),
    /// A thread could not be spawned, or the fusion thread panicked.
    #[error("thread: {0}")]
    Thread(String),
    /// A driver process could not start or stopped early (the latency benchmark's drivers).
    #[error("driver: {0}")]
    Driver(String),
}

/// The fusion node, configured and not yet running.
pub struct FusionNode {
    cfg: NodeConfig,
}

impl FusionNode {
    /// Checks the configuration.
    ///
    /// # Errors
    /// [`NodeError::Config`] naming what is wrong.
    pub fn new(cfg: NodeConfig) -> Result<FusionNode, NodeError> {
        cfg.validate()?;
        Ok(FusionNode { cfg })
    }

    /// The configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.cfg
    }

    /// Starts the fusion thread, the stats worker and (if configured) the trace writer.
    ///
    /// # Errors
    /// Output channel or trace file creation, thread spawn.
    pub fn start(self) -> Result<NodeHandle, NodeError> {
        let cfg = self.cfg;
        let stop = Arc::new(AtomicBool::new(false));
        let node = Arc::new(NodeCounters::default());
        let streams: Vec<Arc<StreamCounters>> = cfg
            .streams
            .iter()
            .map(|_| Arc::new(StreamCounters::default()))
            .collect();
        let infos: Vec<rtfuse_trace::StreamInfo> = cfg
            .streams
            .iter()
            .enumerate()
            .map(|(i, s)| rtfuse_trace::StreamInfo {
                id: i as u16,
                name: s.channel.clone(),
                kind: s.kind.as_str().into(),
                rate_hz: s.rate_hz,
                payload_bytes: 0,
            })
            .collect();
        let stats_sink = RecordSink::with_capacity(cfg.stats_capacity);
        let trace_sink = cfg
            .trace_path
            .as_ref()
            .map(|_| RecordSink::with_capacity(cfg.trace_capacity));
        let out_err = |ch: &String| {
            let channel = ch.clone();
            move |source| NodeError::Output { channel, source }
        };
        let declared = |ch: &String| {
            cfg.output_geometry
                .iter()
                .find(|(n, _)| n == ch)
                .map(|(_, g)| g)
        };
        let mut outs = outputs::Outputs::default();
        if let (Some(ch), Some(p)) = (&cfg.depth_output, &cfg.projection) {
            let publisher = outputs::create_depth_output(ch, &p.camera, declared(ch));
            outs.depth = Some(publisher.map_err(out_err(ch))?);
        }
        if let (Some(ch), Some(_)) = (&cfg.cloud_output, &cfg.projection) {
            let points = cfg.cloud_output_points;
            let publisher = outputs::create_cloud_output(ch, points, declared(ch));
            outs.cloud = Some(publisher.map_err(out_err(ch))?);
        }
        if let (Some(ch), Some(_)) = (&cfg.odometry_output, &cfg.ekf) {
            let publisher = outputs::create_odometry_output(ch, declared(ch));
            outs.odometry = Some(publisher.map_err(out_err(ch))?);
        }
        let rt_slot = Arc::new(Mutex::new(None));
        let collector =
            StatsCollector::new(infos.iter().cloned().zip(streams.iter().cloned()).collect());
        let sources = NodeStatsSources {
            node: node.clone(),
            trace: trace_sink.clone(),
            rt: rt_slot.clone(),
        };
        let stats = StatsWorker::spawn(collector, stats_sink.clone(), sources, cfg.stats_period)
            .map_err(|e| NodeError::Thread(e.to_string()))?;

        let (mcap_tap, mcap) = match &cfg.mcap_path {
            Some(path) => {
                let (w, h) = cfg
                    .projection
                    .as_ref()
                    .map_or((0, 0), |p| (p.camera.width, p.camera.height));
                let cloud_points = cfg
                    .projection
                    .as_ref()
                    .map_or(0, |_| cfg.cloud_output_points);
                let tap = mcap_worker::McapTap::new(w as usize * h as usize, cloud_points);
                let worker = mcap_worker::McapWorker::spawn(path, tap.clone(), w, h)
                    .map_err(|e| NodeError::Mcap(format!("{}: {e}", path.display())))?;
                (Some(tap), Some(worker))
            }
            None => (None, None),
        };
        let (tx, rx) = mpsc::channel::<RtStatus>();
        let estimates = Arc::new(ArrayQueue::new(ESTIMATE_CAPACITY));
        let shared = fusion_loop::Shared {
            mcap: mcap_tap,
            estimates: estimates.clone(),
            stop: stop.clone(),
            node: node.clone(),
            streams: streams.clone(),
            stats: stats_sink,
            trace: trace_sink.clone(),
        };
        let loop_cfg = cfg.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{}-rt", cfg.name))
            .spawn(move || fusion_loop::run(loop_cfg, shared, outs, tx))
            .map_err(|e| NodeError::Thread(e.to_string()))?;
        // The thread reports its real-time status first thing (after set-up, before its loop).
        let rt = rx
            .recv()
            .map_err(|_| NodeError::Thread("fusion thread died during set-up".into()))?;
        if let Ok(mut g) = rt_slot.lock() {
            *g = Some(rt.clone());
        }
        let trace = match (&cfg.trace_path, trace_sink) {
            (Some(path), Some(sink)) => {
                let mut header = host_header(infos, Some(&rt), &cfg.name);
                header.fuse_slice_points = cfg.fuse_slicing().map(|n| n as u64);
                match TraceOutput::start(path, &header, sink) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        stop.store(true, Ordering::Release);
                        let _ = thread.join();
                        return Err(e.into());
                    }
                }
            }
            _ => None,
        };
        Ok(NodeHandle {
            stop,
            thread: Some(thread),
            stats: Some(stats),
            trace,
            rt,
            node,
            streams,
            estimates,
            mcap,
        })
    }

    /// Runs until `stop` is set, then stops and returns the final report (what `rtfuse node` calls).
    ///
    /// # Errors
    /// As [`FusionNode::start`] and [`NodeHandle::stop`].
    pub fn run(self, stop: &AtomicBool) -> Result<NodeReport, NodeError> {
        let handle = self.start()?;
        while !stop.load(Ordering::Acquire) && handle.is_running() {
            std::thread::sleep(Duration::from_millis(20));
        }
        handle.stop()
    }
}

/// What a stopped node reports.
#[derive(Debug, Clone)]
pub struct NodeReport {
    /// Final statistics (rates over the whole run).
    pub stats: StatsSnapshot,
    /// The trace written, if any.
    pub trace: Option<TraceSummary>,
    /// The fusion thread's real-time status.
    pub rt: RtStatus,
    /// Messages written to the MCAP file, if one was configured.
    pub mcap_written: Option<u64>,
}

/// A running node: live statistics, and the way to stop it.
pub struct NodeHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Option<StatsWorker>,
    trace: Option<TraceOutput>,
    rt: RtStatus,
    node: Arc<NodeCounters>,
    streams: Vec<Arc<StreamCounters>>,
    estimates: Arc<ArrayQueue<Estimate>>,
    mcap: Option<mcap_worker::McapWorker>,
}

impl NodeHandle {
    /// Moves the EKF estimates produced since the last call into `out` (at most
    /// [`ESTIMATE_CAPACITY`] are kept; older ones are overwritten).
    pub fn drain_estimates(&self, out: &mut Vec<Estimate>) {
        while let Some(e) = self.estimates.pop() {
            out.push(e);
        }
    }

    /// The latest stats snapshot (published every `stats_period`).
    pub fn snapshot(&self) -> StatsSnapshot {
        self.stats
            .as_ref()
            .map(StatsWorker::latest)
            .unwrap_or_default()
    }

    /// A cloneable reader of snapshots (for a status display on another thread).
    pub fn snapshot_reader(&self) -> Option<SnapshotReader> {
        self.stats.as_ref().map(StatsWorker::reader)
    }

    /// Live node counters.
    pub fn counters(&self) -> &NodeCounters {
        &self.node
    }

    /// Live counters of input stream `i` (config order).
    pub fn stream_counters(&self, i: usize) -> Option<&StreamCounters> {
        self.streams.get(i).map(|c| &**c)
    }

    /// The fusion thread's real-time status.
    pub fn rt_status(&self) -> &RtStatus {
        &self.rt
    }

    /// Whether the fusion thread still runs.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the fusion thread (every held sample is released), drains the stats and trace queues,
    /// closes the trace (with its trailer) and returns the final report.
    ///
    /// # Errors
    /// The fusion thread panicked, or the trace could not be finished.
    pub fn stop(mut self) -> Result<NodeReport, NodeError> {
        let panicked = self.shutdown_thread();
        let stats = self
            .stats
            .take()
            .map(StatsWorker::finish)
            .unwrap_or_default();
        let trace = self.trace.take().map(TraceOutput::finish).transpose()?;
        let mcap_written = self
            .mcap
            .take()
            .map(|m| m.finish().map_err(|e| NodeError::Mcap(e.to_string())))
            .transpose()?;
        if panicked {
            return Err(NodeError::Thread("the fusion thread panicked".into()));
        }
        Ok(NodeReport {
            stats,
            trace,
            rt: self.rt.clone(),
            mcap_written,
        })
    }

    fn shutdown_thread(&mut self) -> bool {
        // SYNC: Release pairs with the fusion loop's Acquire load of `stop`.
        self.stop.store(true, Ordering::Release);
        self.thread.take().is_some_and(|t| t.join().is_err())
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        self.shutdown_thread();
    }
}
