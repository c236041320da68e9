//! # fusion: drivers and the real-time fusion node
//!
//! - Drivers ([`driver`]): synthetic camera, LiDAR, IMU and odometry that follow one ground truth
//!   ([`truth`], [`synth`]); a Velodyne VLP-16 over UDP ([`vlp16`], [`udp`], [`vlp16_driver`]);
//!   rosbag2 MCAP replay ([`mcap_replay`], [`mcap_shm`], [`mcap_driver`]). Each loans a chunk of
//!   its shared-memory channel, fills it in place, stamps "DMA complete" and publishes. Channels
//!   go back into MCAP with [`mcap_record`] ([`layout`] turns samples into ROS 2 messages).
//! - The node ([`node`]): a SCHED_FIFO fusion thread ([`rt`]) that receives, validates, pairs the
//!   streams by time with message_filters semantics ([`sync`]), projects LiDAR into the camera
//!   ([`projection`]), runs an EKF over IMU and odometry ([`ekf`]), and hands statistics ([`stats`]),
//!   traces ([`trace_out`]) and MCAP output ([`mcap_out`]) to non-real-time workers through bounded
//!   queues. Steady state allocates nothing and takes no page fault ([`alloc_check`] proves it).
/// A per-thread counting global allocator for steady-state tests.
pub mod alloc_check;
/// Sensor drivers (synthetic camera, LiDAR, IMU, odometry) publishing into shm channels.
pub mod driver;
/// Extended Kalman filter over IMU and odometry in the manner of robot_localization.
pub mod ekf;
/// From channel samples in rtfuse's layouts back to the ROS 2 messages they stand for.
pub mod layout;
/// A driver that replays one topic of an MCAP file into its channel, in step with its siblings.
pub mod mcap_driver;
/// ROS 2 messages handled by MCAP replay and output: decoding and layout checks.
pub mod mcap_msgs;
/// Non-real-time MCAP writer for fused results (depth image, coloured cloud, odometry).
pub mod mcap_out;
/// Recording channels into an MCAP file (`rtfuse record`).
pub mod mcap_record;
/// Replay of rosbag2-style MCAP files into sinks (shared-memory channels).
pub mod mcap_replay;
/// MCAP replay into shared-memory channels in the drivers' layouts.
pub mod mcap_shm;
/// The fusion node: the SCHED_FIFO fusion thread, its inputs, synchronisation, fusion and outputs.
pub mod node;
/// LiDAR → camera projection: depth image and coloured point cloud.
pub mod projection;
/// Real-time set-up of a thread (SCHED_FIFO, affinity, mlockall, stack prefault) and clocks.
pub mod rt;
/// Per-stream counters and HDR latency histograms, and the stats worker.
pub mod stats;
/// Time synchronisation with the semantics of ROS 2 message_filters (ExactTime, ApproximateTime).
pub mod sync;
/// Synthetic camera, LiDAR, IMU and odometry that observe the ground truth.
pub mod synth;
/// Trace output: a pre-allocated queue drained by a writer thread into an `rtfuse_trace` file.
pub mod trace_out;
/// Ground truth for the synthetic sensors: one trajectory, one scene, the sensor mounts.
pub mod truth;
/// UDP reception (`recvmmsg`) and the VLP-16 UDP pipeline.
pub mod udp;
/// Velodyne VLP-16 packet decoder and rotation assembler.
pub mod vlp16;
/// The VLP-16 UDP driver (`SensorDriver`): one cloud per rotation into a shm channel.
pub mod vlp16_driver;
