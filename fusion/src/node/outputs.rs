//! The node's output channels and what they carry: depth images, coloured clouds and EKF odometry.
//! Each is written in place into a loaned chunk on the fusion thread (no allocation, no copy).
//!
//! | output           | payload                                                   | user header / user word |
//! |------------------|-----------------------------------------------------------|-------------------------|
//! | depth            | `width × height` float32 LE metres, NaN = no return       | [`FrameMeta::depth`], [`StreamKind::Depth`] |
//! | coloured cloud   | `n` points × [`COLOURED_POINT_STEP`]: x, y, z f32, rgb u32 | [`FrameMeta`] kind LiDAR, encoding [`CLOUD_XYZRGB`] |
//! | odometry         | one [`OdometryRecord`] (typed channel)                    | none                    |

use shm_transport::{ChannelConfig, CreateError, Publisher, ShmSafe, WakeupPolicy};

use crate::driver::meta::{FrameMeta, StreamKind, META_LEN};
use crate::ekf::{idx, Covariance, State};
use crate::projection::{CameraInfo, COLOURED_POINT_STEP};

/// [`FrameMeta::encoding`] of a coloured cloud: x, y, z float32 at 0, 4, 8 and `rgb` (0x00RRGGBB as a
/// little-endian u32, PCL's packing) at 12, [`COLOURED_POINT_STEP`] bytes a point, LiDAR frame. The
/// kind is [`StreamKind::Lidar`] (a PointCloud2); plain LiDAR scans use encoding 1 (x, y, z, intensity).
pub const CLOUD_XYZRGB: u32 = 2;

/// Default [`super::NodeConfig::cloud_output_points`]: the synthetic LiDAR's default scan.
pub const DEFAULT_CLOUD_OUTPUT_POINTS: usize = 120_000;

/// One EKF estimate as published on the odometry output channel (`nav_msgs/Odometry`-like).
///
/// All `f64`, no padding: every bit pattern is a value, so a peer can read it with
/// [`shm_transport::Sample::read`] after [`shm_transport::Subscriber::open_typed`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OdometryRecord {
    /// The filter time of the estimate as a sensor stamp (CLOCK_MONOTONIC ns): the newest stamp
    /// fused (a late measurement updates the estimate at this time, not at its own stamp).
    pub stamp_ns: u64,
    /// Position in the world frame (m).
    pub position: [f64; 3],
    /// Orientation, world ← body, as a unit quaternion `[x, y, z, w]`.
    pub orientation: [f64; 4],
    /// Linear velocity in the body frame (m/s).
    pub linear_velocity: [f64; 3],
    /// Angular velocity in the body frame (rad/s).
    pub angular_velocity: [f64; 3],
    /// Variances of x, y, z (m²), roll, pitch, yaw (rad²).
    pub pose_variance: [f64; 6],
    /// Variances of vx, vy, vz ((m/s)²), roll, pitch, yaw rates ((rad/s)²).
    pub twist_variance: [f64; 6],
}

// SAFETY: #[repr(C)], a u64 followed by f64 arrays (all 8-byte aligned: no padding), no pointers,
// no Drop; every bit pattern is a valid u64 / f64.
unsafe impl ShmSafe for OdometryRecord {}

impl OdometryRecord {
    /// The record of an EKF state and covariance (see [`crate::ekf::idx`]).
    pub fn from_state(stamp_ns: u64, x: &State, p: &Covariance) -> OdometryRecord {
        let q =
            nalgebra::UnitQuaternion::from_euler_angles(x[idx::ROLL], x[idx::PITCH], x[idx::YAW]);
        let mut pose_variance = [0.0; 6];
        let mut twist_variance = [0.0; 6];
        for (i, v) in pose_variance.iter_mut().enumerate() {
            *v = p[(idx::X + i, idx::X + i)];
        }
        for (i, v) in twist_variance.iter_mut().enumerate() {
            *v = p[(idx::VX + i, idx::VX + i)];
        }
        OdometryRecord {
            stamp_ns,
            position: [x[idx::X], x[idx::Y], x[idx::Z]],
            orientation: [q.i, q.j, q.k, q.w],
            linear_velocity: [x[idx::VX], x[idx::VY], x[idx::VZ]],
            angular_velocity: [x[idx::VROLL], x[idx::VPITCH], x[idx::VYAW]],
            pose_variance,
            twist_variance,
        }
    }

    /// Yaw (rad) of [`Self::orientation`].
    pub fn yaw(&self) -> f64 {
        let [x, y, z, w] = self.orientation;
        (2.0 * (w * z + x * y)).atan2(1.0 - 2.0 * (y * y + z * z))
    }
}

fn frame_channel(chunk_size: usize) -> ChannelConfig {
    ChannelConfig {
        chunk_size,
        chunk_count: 4,
        ring_depth: 2,
        user_header_size: META_LEN,
        wakeup: WakeupPolicy::Futex,
        ..ChannelConfig::default()
    }
}

/// The geometry the node gives an output channel: `declared` where the deployment declares the
/// channel, with its chunk size raised to at least `need` bytes and its user header to at least
/// the frame metadata (a launcher's check reports a declared chunk that is too small); else
/// `default`.
fn geometry(
    declared: Option<&ChannelConfig>,
    default: ChannelConfig,
    need: usize,
) -> ChannelConfig {
    match declared {
        Some(d) => ChannelConfig {
            chunk_size: d.chunk_size.max(need),
            user_header_size: d.user_header_size.max(default.user_header_size),
            ..d.clone()
        },
        None => default,
    }
}

/// The node's default geometry of the depth output for `width × height` images (float32).
pub fn depth_output_config(width: u32, height: u32) -> ChannelConfig {
    frame_channel(width as usize * height as usize * 4)
}

/// The node's default geometry of the coloured cloud output for scans of at most `points` points.
pub fn cloud_output_config(points: usize) -> ChannelConfig {
    frame_channel(points.max(1).saturating_mul(COLOURED_POINT_STEP))
}

/// The node's default geometry of the odometry output (typed: [`OdometryRecord`]).
pub fn odometry_output_config() -> ChannelConfig {
    ChannelConfig {
        chunk_size: std::mem::size_of::<OdometryRecord>(),
        chunk_count: 16,
        ring_depth: 8,
        wakeup: WakeupPolicy::Futex,
        ..ChannelConfig::default()
    }
}

/// Creates the depth output channel for images of `cam`'s size.
pub(crate) fn create_depth_output(
    channel: &str,
    cam: &CameraInfo,
    declared: Option<&ChannelConfig>,
) -> Result<Publisher, CreateError> {
    let d = depth_output_config(cam.width, cam.height);
    let need = d.chunk_size;
    Publisher::create(channel, &geometry(declared, d, need))
}

/// Creates the coloured cloud output channel for scans of at most `points` points.
pub(crate) fn create_cloud_output(
    channel: &str,
    points: usize,
    declared: Option<&ChannelConfig>,
) -> Result<Publisher, CreateError> {
    let d = cloud_output_config(points);
    let need = d.chunk_size;
    Publisher::create(channel, &geometry(declared, d, need))
}

/// Creates the odometry output channel (typed: [`OdometryRecord`]).
pub(crate) fn create_odometry_output(
    channel: &str,
    declared: Option<&ChannelConfig>,
) -> Result<Publisher, CreateError> {
    let cfg = geometry(declared, odometry_output_config(), 0);
    Publisher::create_typed::<OdometryRecord>(channel, cfg)
}

/// Metadata of a coloured cloud of `points` points.
pub fn cloud_meta(points: u32, frame: u64) -> FrameMeta {
    FrameMeta {
        kind: StreamKind::Lidar.code(),
        width: points,
        height: 1,
        step: COLOURED_POINT_STEP as u32,
        encoding: CLOUD_XYZRGB,
        frame,
    }
}

/// The publishers the fusion thread writes to (created before it starts).
#[derive(Default)]
pub(crate) struct Outputs {
    pub depth: Option<Publisher>,
    pub cloud: Option<Publisher>,
    pub odometry: Option<Publisher>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_output_geometry_is_used_and_never_smaller_than_a_sample() {
        let default = depth_output_config(4, 2);
        assert_eq!(default.chunk_size, 4 * 2 * 4);
        let declared = ChannelConfig {
            chunk_size: 8,
            chunk_count: 9,
            ring_depth: 16,
            user_header_size: 0,
            ..ChannelConfig::default()
        };
        let g = geometry(Some(&declared), default.clone(), 32);
        assert_eq!((g.chunk_count, g.ring_depth), (9, 16), "the declared shape");
        assert_eq!(g.chunk_size, 32, "raised to one sample");
        assert_eq!(g.user_header_size, META_LEN, "room for the frame metadata");
        assert_eq!(geometry(None, default.clone(), 32), default);
        assert_eq!(
            odometry_output_config().chunk_size,
            core::mem::size_of::<OdometryRecord>()
        );
    }

    #[test]
    fn odometry_record_has_no_padding_and_roundtrips_yaw() {
        assert_eq!(
            core::mem::size_of::<OdometryRecord>(),
            8 * (1 + 3 + 4 + 3 + 3 + 6 + 6)
        );
        let mut x = State::zeros();
        x[idx::X] = 1.0;
        x[idx::YAW] = 2.5;
        x[idx::VX] = 3.0;
        let p = Covariance::identity() * 0.5;
        let r = OdometryRecord::from_state(7, &x, &p);
        assert_eq!(r.stamp_ns, 7);
        assert_eq!(r.position, [1.0, 0.0, 0.0]);
        assert!((r.yaw() - 2.5).abs() < 1e-12);
        assert_eq!(r.linear_velocity, [3.0, 0.0, 0.0]);
        assert_eq!(r.pose_variance, [0.5; 6]);
        assert_eq!(r.twist_variance, [0.5; 6]);
    }
}
