//! Placeholder; see the crate README.
/// Ground truth for the synthetic sensors: one trajectory, one scene, the sensor mounts.
pub mod truth;
/// Synthetic camera, LiDAR, IMU and odometry that observe the ground truth.
pub mod synth;
