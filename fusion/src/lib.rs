//! Placeholder; see the crate README.
/// Velodyne VLP-16 packet decoder and rotation assembler.
pub mod vlp16;
/// UDP reception (`recvmmsg`) and the VLP-16 UDP pipeline.
pub mod udp;
/// The VLP-16 UDP driver (`SensorDriver`): one cloud per rotation into a shm channel.
pub mod vlp16_driver;
/// ROS 2 messages handled by MCAP replay and output: decoding and layout checks.
pub mod mcap_msgs;
/// Replay of rosbag2-style MCAP files into sinks (shared-memory channels).
pub mod mcap_replay;
/// Non-real-time MCAP writer for fused results (depth image, coloured cloud, odometry).
pub mod mcap_out;
/// MCAP replay into shared-memory channels in the drivers' layouts.
pub mod mcap_shm;
/// Real-time set-up of a thread (SCHED_FIFO, affinity, mlockall, stack prefault) and clocks.
pub mod rt;
/// Per-stream counters and HDR latency histograms, and the stats worker.
pub mod stats;
/// Trace output: a pre-allocated queue drained by a writer thread into an `rtfuse_trace` file.
pub mod trace_out;
/// A per-thread counting global allocator for steady-state tests.
pub mod alloc_check;
/// Sensor drivers (synthetic camera, LiDAR, IMU, odometry) publishing into shm channels.
pub mod driver;
/// The fusion node: the SCHED_FIFO fusion thread, its inputs, synchronisation, fusion and outputs.
pub mod node;
/// Ground truth for the synthetic sensors: one trajectory, one scene, the sensor mounts.
pub mod truth;
/// Synthetic camera, LiDAR, IMU and odometry that observe the ground truth.
pub mod synth;
/// Time synchronisation with the semantics of ROS 2 message_filters (ExactTime, ApproximateTime).
pub mod sync;
/// LiDAR → camera projection: depth image and coloured point cloud.
pub mod projection;
/// Extended Kalman filter over IMU and odometry in the manner of robot_localization.
pub mod ekf;
