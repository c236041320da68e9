//! Placeholder; see the crate README.
/// Ground truth for the synthetic sensors: one trajectory, one scene, the sensor mounts.
pub mod truth;
/// Synthetic camera, LiDAR, IMU and odometry that observe the ground truth.
pub mod synth;
/// Time synchronisation with the semantics of ROS 2 message_filters (ExactTime, ApproximateTime).
pub mod sync;
/// LiDAR → camera projection: depth image and coloured point cloud.
pub mod projection;
