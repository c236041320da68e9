//! The deployment file as serde reads it: every table rejects unknown keys, and the values a later
//! check may complain about carry their position in the file (`Spanned`).

use super::size::ByteSize;
use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;
use std::collections::BTreeMap;

/// A whole deployment: channels, drivers, the fusion node, GPU, ROS 2, trace and report settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// Name of the deployment (shown in `rtfuse run` and in reports).
    #[serde(default = "default_deployment_name")]
    pub name: String,
    /// Shared-memory channels (`[[channel]]`).
    #[serde(default, rename = "channel")]
    pub channels: Vec<Channel>,
    /// Sensor drivers (`[[driver]]`).
    #[serde(default, rename = "driver")]
    pub drivers: Vec<Driver>,
    /// The fusion node (`[node]`).
    pub node: Node,
    /// GPU bridge policy (`[gpu]`).
    #[serde(default)]
    pub gpu: Gpu,
    /// ROS 2 bridges (`[ros2]`, `[[ros2.bridge]]`).
    #[serde(default)]
    pub ros2: Ros2,
    /// Trace settings (`[trace]`).
    #[serde(default)]
    pub trace: Trace,
    /// Report settings (`[report]`).
    #[serde(default)]
    pub report: Report,
}

fn default_deployment_name() -> String {
    "rtfuse".into()
}

/// What a full ring does with a new sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Overflow {
    /// Drop the oldest unread sample (counted as a drop).
    #[default]
    KeepLast,
    /// Refuse the new sample; the driver sees the error.
    Reject,
}

/// How a waiting reader learns of new data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Wakeup {
    /// Busy-poll (lowest latency, burns a core).
    Spin,
    /// Sleep on a futex in shared memory.
    Futex,
    /// Spin for `spin_us`, then sleep on the futex.
    #[default]
    SpinThenFutex,
}

/// Whether the channel's memory must be locked in RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryLock {
    /// Fail if `mlock` fails.
    Required,
    /// Try `mlock`; warn and go on without it.
    #[default]
    BestEffort,
    /// Do not lock (pages may be swapped; not for real-time use).
    Off,
}

/// One shared-memory channel (`[[channel]]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// Channel name; the segment is `/dev/shm/rtfuse.<prefix><name>`.
    pub name: Spanned<String>,
    /// Bytes per chunk (one sample): an integer or `"6 MiB"`.
    pub chunk_size: Spanned<ByteSize>,
    /// Chunks in the slab.
    pub chunk_count: Spanned<u32>,
    /// Descriptor ring depth, a power of two.
    pub ring_depth: Spanned<u32>,
    /// Subscribers the channel serves (1..=32).
    #[serde(default = "default_max_subscribers")]
    pub max_subscribers: Spanned<u32>,
    /// What a full ring does with a new sample.
    #[serde(default)]
    pub overflow: Overflow,
    /// How a waiting reader is woken.
    #[serde(default)]
    pub wakeup: Wakeup,
    /// Spin time before sleeping, for `wakeup = "spin-then-futex"`.
    #[serde(default = "default_spin_us")]
    pub spin_us: u32,
    /// Chunk alignment in bytes, a power of two of at least 64.
    #[serde(default = "default_alignment")]
    pub alignment: Spanned<ByteSize>,
    /// Whether the memory is locked in RAM.
    #[serde(default)]
    pub memory_lock: MemoryLock,
    /// Bytes of user header per chunk.
    #[serde(default)]
    pub user_header_size: ByteSize,
}

fn default_max_subscribers() -> Spanned<u32> {
    Spanned::new(0..0, 4)
}
fn default_spin_us() -> u32 {
    20
}
fn default_alignment() -> Spanned<ByteSize> {
    Spanned::new(0..0, ByteSize(4096))
}

/// Which driver implementation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriverKind {
    /// Synthetic camera frames.
    SyntheticCamera,
    /// Synthetic LiDAR scans (PointCloud2 x, y, z, intensity as float32).
    SyntheticLidar,
    /// Synthetic IMU samples.
    SyntheticImu,
    /// Synthetic wheel odometry.
    SyntheticOdometry,
    /// Velodyne VLP-16 packets over UDP.
    Vlp16Udp,
    /// Replay of one topic of a rosbag2 MCAP file.
    McapReplay,
}

impl DriverKind {
    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            DriverKind::SyntheticCamera => "synthetic-camera",
            DriverKind::SyntheticLidar => "synthetic-lidar",
            DriverKind::SyntheticImu => "synthetic-imu",
            DriverKind::SyntheticOdometry => "synthetic-odometry",
            DriverKind::Vlp16Udp => "vlp16-udp",
            DriverKind::McapReplay => "mcap-replay",
        }
    }
}

/// One sensor driver (`[[driver]]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Driver {
    /// Driver name (what `rtfuse driver NAME` takes).
    pub name: Spanned<String>,
    /// Implementation.
    pub kind: Spanned<DriverKind>,
    /// Channel it publishes into.
    pub channel: Spanned<String>,
    /// Run as its own process (`true`) or as a thread inside the node process (`false`).
    #[serde(default = "default_true")]
    pub process: bool,
    /// SCHED_FIFO priority of the driver thread (none: SCHED_OTHER).
    pub priority: Option<Spanned<i32>>,
    /// Kind-specific parameters (`[driver.params]`).
    #[serde(default)]
    pub params: DriverParams,
    /// What the supervisor does when the driver process dies (`[driver.restart]`).
    #[serde(default)]
    pub restart: Restart,
}

fn default_true() -> bool {
    true
}

/// Driver parameters. Which keys apply depends on the kind; the check says which ones do.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DriverParams {
    /// Output rate in Hz (synthetic sensors).
    pub rate_hz: Option<Spanned<f64>>,
    /// Image width in pixels (camera).
    pub width: Option<Spanned<u32>>,
    /// Image height in pixels (camera).
    pub height: Option<Spanned<u32>>,
    /// Pixel encoding (camera): rgb8, bgr8 or mono8.
    pub encoding: Option<Spanned<String>>,
    /// Points per scan (LiDAR).
    pub points_per_scan: Option<Spanned<u32>>,
    /// Scale of the default noise model (IMU, odometry): 0 noiseless, 1 the default MEMS IMU /
    /// wheel odometry noise, 2 twice as noisy.
    pub noise: Option<Spanned<f64>>,
    /// Scale of the default IMU bias (0 none, 1 default).
    pub bias: Option<Spanned<f64>>,
    /// UDP address to bind (VLP-16), e.g. "0.0.0.0:2368".
    pub bind: Option<Spanned<String>>,
    /// Packets per `recvmmsg` batch (VLP-16).
    pub batch: Option<Spanned<u32>>,
    /// MCAP file to replay.
    pub file: Option<Spanned<String>>,
    /// Topic in the MCAP file.
    pub topic: Option<Spanned<String>>,
    /// Replay speed: 1.0 is the recorded rate, 0 means as fast as possible.
    pub speed: Option<Spanned<f64>>,
    /// Start again at the end of the file (MCAP replay).
    pub looped: Option<Spanned<bool>>,
    /// Seed of the synthetic scene and noise.
    pub seed: Option<Spanned<u64>>,
}

/// When a crashed driver process is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Restart whenever it exits before shutdown.
    Always,
    /// Restart when it exits with an error or a signal.
    #[default]
    OnFailure,
    /// Never restart; the deployment stops when it dies.
    Never,
}

/// Restart policy with exponential back-off (`[driver.restart]`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Restart {
    /// When to restart.
    pub policy: RestartPolicy,
    /// Restarts allowed before the supervisor gives up and stops the deployment.
    pub max_restarts: u32,
    /// First back-off delay in milliseconds.
    pub backoff_initial_ms: u64,
    /// Largest back-off delay in milliseconds.
    pub backoff_max_ms: u64,
    /// Factor applied to the delay after each restart.
    pub backoff_multiplier: f64,
}

impl Default for Restart {
    fn default() -> Self {
        Restart {
            policy: RestartPolicy::OnFailure,
            max_restarts: 5,
            backoff_initial_ms: 100,
            backoff_max_ms: 5_000,
            backoff_multiplier: 2.0,
        }
    }
}

/// The fusion node (`[node]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Channels the fusion thread subscribes to.
    pub streams: Vec<Spanned<String>>,
    /// Time synchronisation (`[node.sync]`).
    #[serde(default)]
    pub sync: Option<Sync>,
    /// LiDAR → camera projection (`[node.projection]`).
    #[serde(default)]
    pub projection: Option<Projection>,
    /// EKF over IMU and odometry (`[node.ekf]`).
    #[serde(default)]
    pub ekf: Option<Ekf>,
    /// The fusion thread (`[node.thread]`).
    #[serde(default)]
    pub thread: FusionThread,
    /// Files the node writes (`[node.outputs]`).
    #[serde(default)]
    pub outputs: Outputs,
    /// Timing of each stream for the latency bound (`[node.timing.<stream>]`).
    #[serde(default)]
    pub timing: BTreeMap<String, Spanned<StreamTiming>>,
}

/// `[node.timing.<stream>]`: what `rtfuse bound` and `rtfuse report` need to know about a stream
/// that the rest of the config does not say.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StreamTiming {
    /// Worst-case fusion-thread work per sample in µs (default: the largest observed in the traces).
    pub service_us: Option<f64>,
    /// Release jitter of "DMA complete" in µs.
    #[serde(default)]
    pub jitter_us: f64,
    /// Interrupt coalescing of the device in µs (a NIC's rx-usecs; 0 for synthetic drivers).
    #[serde(default)]
    pub delta_irq_us: f64,
    /// Rate in Hz, where the driver's parameters do not give it (MCAP replay).
    pub rate_hz: Option<f64>,
}

/// Synchronisation policy (message_filters semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncPolicy {
    /// Sets of messages with identical stamps.
    Exact,
    /// ApproximateTime: sets of minimal spread.
    Approximate,
}

/// `[node.sync]`: which streams are synchronised and how.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sync {
    /// Policy.
    pub policy: SyncPolicy,
    /// Streams synchronised together (2..=9, all in `node.streams`).
    pub streams: Vec<Spanned<String>>,
    /// Messages kept per stream.
    #[serde(default = "default_queue_size")]
    pub queue_size: Spanned<u32>,
    /// Largest spread of a set in milliseconds (approximate only).
    pub max_interval_ms: Option<Spanned<f64>>,
    /// Age penalty (approximate only; message_filters' C++ default is 0.1).
    pub age_penalty: Option<Spanned<f64>>,
    /// Inter-message lower bound per stream in milliseconds (approximate only; message_filters'
    /// `setInterMessageLowerBound`): `{ camera = 30.0, lidar = 90.0 }`. A stream not listed gets
    /// 90 % of its period.
    #[serde(default)]
    pub inter_message_lower_bound_ms: BTreeMap<String, Spanned<f64>>,
}

fn default_queue_size() -> Spanned<u32> {
    Spanned::new(0..0, 10)
}

/// `[node.projection]`: LiDAR points projected into the camera image.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Projection {
    /// Camera stream.
    pub camera: Spanned<String>,
    /// LiDAR stream.
    pub lidar: Spanned<String>,
    /// Intrinsics fx, fy, cx, cy in pixels; default: derived from the camera size with a 90° field of view.
    pub intrinsics: Option<[f64; 4]>,
    /// plumb_bob distortion k1, k2, p1, p2, k3 (with `intrinsics`).
    #[serde(default)]
    pub distortion: [f64; 5],
    /// LiDAR → camera-optical translation in metres; default: the synthetic vehicle's mounts.
    pub translation: Option<[f64; 3]>,
    /// LiDAR → camera-optical rotation as roll, pitch, yaw in radians; default: the synthetic
    /// vehicle's mounts.
    pub rotation_rpy: Option<[f64; 3]>,
    /// Output channel for the depth image (float32 metres; optional). The node creates it, with
    /// the geometry of a `[[channel]]` of that name if there is one.
    pub output: Option<Spanned<String>>,
    /// Output channel for the coloured cloud (x, y, z float32, rgb packed; optional). The node
    /// creates it, like `output`.
    pub cloud_output: Option<Spanned<String>>,
    /// Most points of a scan the coloured cloud channel holds (default: the LiDAR driver's
    /// `points_per_scan`, a VLP-16 rotation, else 120000); larger scans are counted, not published.
    pub cloud_output_points: Option<Spanned<u32>>,
    /// Points projected in one slice of a pair's fusion; between slices the fusion thread serves
    /// the other streams (IMU, odometry). Smaller: lower latency for them, a little more overhead.
    /// Default 8192 (well under a millisecond here).
    pub slice_points: Option<Spanned<u32>>,
}

/// `[node.ekf]`: EKF over IMU and odometry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ekf {
    /// IMU stream.
    pub imu: Spanned<String>,
    /// Odometry stream.
    pub odometry: Spanned<String>,
    /// Mahalanobis gate in standard deviations above which a measurement is rejected.
    #[serde(default = "default_gate")]
    pub mahalanobis_threshold: f64,
    /// Output channel for the estimates (typed `OdometryRecord`; optional). The node creates it,
    /// with the geometry of a `[[channel]]` of that name if there is one.
    pub output: Option<Spanned<String>>,
}

fn default_gate() -> f64 {
    5.0
}

/// Scheduling policy of the fusion thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SchedPolicy {
    /// SCHED_FIFO at `priority` (falls back to SCHED_OTHER with a warning where refused).
    #[default]
    Fifo,
    /// SCHED_OTHER (no real-time guarantees).
    Other,
}

/// `[node.thread]`: the fusion thread.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FusionThread {
    /// Scheduling policy.
    pub policy: SchedPolicy,
    /// SCHED_FIFO priority, 1..=99.
    pub priority: Spanned<i32>,
    /// CPU to pin to (none: any).
    pub cpu: Option<Spanned<usize>>,
    /// How the thread waits for data.
    pub wakeup: Wakeup,
    /// `mlockall(MCL_CURRENT | MCL_FUTURE)` before starting.
    pub mlockall: bool,
    /// Poll period in µs when `wakeup = "spin"` (T_sched of the bound).
    pub poll_period_us: f64,
}

impl Default for FusionThread {
    fn default() -> Self {
        FusionThread {
            policy: SchedPolicy::Fifo,
            priority: Spanned::new(0..0, 80),
            cpu: None,
            wakeup: Wakeup::SpinThenFutex,
            mlockall: true,
            poll_period_us: 1.0,
        }
    }
}

/// `[node.outputs]`: files the node writes.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Outputs {
    /// Latency trace file for `rtfuse report` (none: no trace).
    pub trace: Option<String>,
    /// MCAP file with the fused outputs (none: no MCAP).
    pub mcap: Option<String>,
    /// Stats (JSON) written at shutdown (none: printed only).
    pub stats: Option<String>,
}

/// GPU transfer policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum GpuPolicy {
    /// No GPU transfers.
    #[default]
    Off,
    /// Cost model picks peer-to-peer or bounce per stream.
    Auto,
    /// Peer-to-peer only.
    P2p,
    /// Pinned bounce buffer only.
    Bounce,
    /// The host backend (no GPU; for testing the path).
    Host,
}

/// `[gpu]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    /// Policy.
    #[serde(default)]
    pub policy: GpuPolicy,
    /// CUDA device ordinal.
    #[serde(default)]
    pub device: u32,
    /// Streams whose frames go to the GPU.
    #[serde(default)]
    pub streams: Vec<Spanned<String>>,
}

/// `[ros2]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ros2 {
    /// ROS_DOMAIN_ID (default: the environment's, else 0).
    pub domain_id: Option<Spanned<u32>>,
    /// Bridges (`[[ros2.bridge]]`).
    #[serde(default, rename = "bridge")]
    pub bridges: Vec<Ros2Bridge>,
}

/// Direction of a ROS 2 bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BridgeDirection {
    /// ROS 2 topic → rtfuse channel.
    Ingest,
    /// rtfuse channel → ROS 2 topic.
    Egress,
}

/// ROS 2 reliability QoS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Reliability {
    /// Best effort (ROS 2 sensor-data default).
    #[default]
    BestEffort,
    /// Reliable.
    Reliable,
}

/// ROS 2 durability QoS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// Volatile.
    #[default]
    Volatile,
    /// Transient local.
    TransientLocal,
}

/// One `[[ros2.bridge]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ros2Bridge {
    /// Direction.
    pub direction: BridgeDirection,
    /// ROS 2 topic, e.g. "/camera/image_raw".
    pub topic: Spanned<String>,
    /// rtfuse channel.
    pub channel: Spanned<String>,
    /// ROS 2 type, e.g. "sensor_msgs/msg/Image".
    #[serde(rename = "type")]
    pub msg_type: Spanned<String>,
    /// Reliability QoS.
    #[serde(default)]
    pub reliability: Reliability,
    /// Durability QoS.
    #[serde(default)]
    pub durability: Durability,
    /// History depth.
    #[serde(default = "default_depth")]
    pub depth: u32,
}

fn default_depth() -> u32 {
    5
}

/// `[trace]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Trace {
    /// Capacity of the queue between the fusion thread and the trace writer (records).
    pub queue_capacity: Spanned<u32>,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            queue_capacity: Spanned::new(0..0, 65_536),
        }
    }
}

/// `[report]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Report {
    /// Directory the report is written to.
    pub dir: String,
    /// Formats: html, markdown, json.
    pub formats: Vec<Spanned<String>>,
    /// Calibration file from `rtfuse bound --calibrate` (none: calibrate on the spot).
    pub calibration: Option<String>,
    /// Samples per stream a verdict should rest on; the report says, per stream with fewer, how
    /// long the target would take at its rate.
    pub sample_target: u64,
    /// `"charge"`: every stream's bound is charged the kernel's RT-throttle window
    /// (`sched_rt_period_us − sched_rt_runtime_us`, from the calibration) once per period its busy
    /// window spans. `"ignore"` (the default): not charged, unless the fusion thread spins on a
    /// shared core; the report then says the bound does not cover it.
    pub rt_throttling: wcet::bound::RtThrottling,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            dir: "rtfuse-report".into(),
            formats: ["html", "markdown", "json"]
                .into_iter()
                .map(|s| Spanned::new(0..0, s.to_string()))
                .collect(),
            calibration: None,
            sample_target: wcet::report::DEFAULT_SAMPLE_TARGET,
            rt_throttling: wcet::bound::RtThrottling::Ignore,
        }
    }
}
