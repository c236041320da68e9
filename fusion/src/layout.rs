//! From a channel sample in rtfuse's layouts (see [`crate::driver::meta`] and
//! [`crate::node::outputs`]) back to the ROS 2 message it stands for: what `rtfuse record` writes
//! into MCAP, and the inverse of what MCAP replay publishes ([`crate::mcap_shm`]).
//!
//! | layout (user word / header) | ROS 2 message |
//! |---|---|
//! | camera frame | `sensor_msgs/msg/Image` (rgb8, bgr8, mono8) |
//! | LiDAR scan (x, y, z, intensity f32) | `sensor_msgs/msg/PointCloud2` |
//! | coloured cloud ([`CLOUD_XYZRGB`]) | `sensor_msgs/msg/PointCloud2` (x, y, z, rgb) |
//! | depth image | `sensor_msgs/msg/Image` 32FC1 |
//! | IMU sample | `sensor_msgs/msg/Imu` |
//! | odometry sample, [`OdometryRecord`] | `nav_msgs/msg/Odometry` |
//!
//! Everything read from the sample is checked first (metadata magic, version, kind, and that the
//! payload length is what the metadata says): a hostile or corrupt sample gives an error, never a
//! panic or an out-of-bounds read.

use rtfuse_msgs::builtin_interfaces::Time;
use rtfuse_msgs::geometry_msgs::{
    Point, Pose, PoseWithCovariance, Quaternion, Twist, TwistWithCovariance, Vector3,
};
use rtfuse_msgs::nav_msgs::Odometry;
use rtfuse_msgs::sensor_msgs::{Image, Imu, PointCloud2, PointField};
use rtfuse_msgs::std_msgs::Header;

use crate::driver::meta::{
    decode_imu, decode_odometry, FrameMeta, MetaError, StreamKind, META_MAGIC,
};
use crate::mcap_msgs::RosMsg;
use crate::mcap_out::{colored_cloud_fields, float32_fields};
use crate::node::outputs::{OdometryRecord, CLOUD_XYZRGB};
use crate::synth::PixelEncoding;

/// Why a sample cannot be turned into a ROS message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// The descriptor's user word is not a frame-metadata word.
    #[error("user word {0:#018x} does not name an rtfuse frame layout")]
    UnknownUserWord(u64),
    /// The metadata or payload does not check.
    #[error("{0}")]
    Meta(#[from] MetaError),
    /// A coloured cloud whose payload is not `points × 16` bytes.
    #[error("coloured cloud of {points} points has {len} payload bytes, expected {expected}")]
    CloudSize {
        /// Points the metadata claims.
        points: u32,
        /// Payload length.
        len: usize,
        /// Expected length.
        expected: u64,
    },
}

/// A ROS header with `stamp_ns` (ns, any clock) and `frame_id`.
pub fn header(stamp_ns: i64, frame_id: &str) -> Header {
    Header {
        stamp: Time::from_nanos(stamp_ns),
        frame_id: frame_id.into(),
    }
}

/// The stream kind a descriptor user word names (drivers set `StreamKind::user_word`).
pub fn kind_of_user_word(user: u64) -> Option<StreamKind> {
    if (user >> 32) as u32 != META_MAGIC {
        return None;
    }
    StreamKind::from_code(user as u16)
}

/// The ROS message of one sample in a frame layout: `payload`, `user_header` and `user` word as
/// received, stamped `stamp_ns` with `frame_id`.
///
/// # Errors
/// [`LayoutError`]: unknown layout, metadata or payload that does not check.
pub fn sample_to_ros(
    payload: &[u8],
    user_header: &[u8],
    user: u64,
    stamp_ns: i64,
    frame_id: &str,
) -> Result<RosMsg, LayoutError> {
    let kind = kind_of_user_word(user).ok_or(LayoutError::UnknownUserWord(user))?;
    let h = header(stamp_ns, frame_id);
    let meta = FrameMeta::decode(user_header, kind)?;
    if kind == StreamKind::Lidar && meta.encoding == CLOUD_XYZRGB {
        let expected = u64::from(meta.width) * 16;
        if payload.len() as u64 != expected || meta.step != 16 {
            return Err(LayoutError::CloudSize {
                points: meta.width,
                len: payload.len(),
                expected,
            });
        }
        return Ok(RosMsg::PointCloud2(cloud(
            h,
            meta.width,
            colored_cloud_fields(),
            payload,
        )));
    }
    meta.check_payload(payload.len())?;
    Ok(match kind {
        StreamKind::Camera => {
            let enc = meta
                .pixel_encoding()
                .ok_or(MetaError::BadEncoding(meta.encoding))?;
            RosMsg::Image(Image {
                header: h,
                height: meta.height,
                width: meta.width,
                encoding: encoding_name(enc).into(),
                is_bigendian: 0,
                step: meta.step,
                data: payload.to_vec(),
            })
        }
        StreamKind::Depth => RosMsg::Image(Image {
            header: h,
            height: meta.height,
            width: meta.width,
            encoding: "32FC1".into(),
            is_bigendian: 0,
            step: meta.step,
            data: payload.to_vec(),
        }),
        StreamKind::Lidar => {
            let fields = float32_fields(&["x", "y", "z", "intensity"]);
            RosMsg::PointCloud2(cloud(h, meta.width, fields, payload))
        }
        StreamKind::Imu => {
            let s = decode_imu(payload)?;
            let [qx, qy, qz, qw] = s.orientation;
            RosMsg::Imu(Imu {
                header: h,
                orientation: Quaternion {
                    x: qx,
                    y: qy,
                    z: qz,
                    w: qw,
                },
                angular_velocity: vector(s.angular_velocity),
                linear_acceleration: vector(s.linear_acceleration),
                ..Imu::default()
            })
        }
        StreamKind::Odometry => {
            let s = decode_odometry(payload)?;
            RosMsg::Odometry(Box::new(odometry(
                h,
                s.position,
                s.orientation,
                s.linear_velocity,
                s.angular_velocity,
                [0.0; 6],
                [0.0; 6],
            )))
        }
    })
}

/// The `nav_msgs/Odometry` of an EKF estimate on the node's odometry output (frame "odom", child
/// "base_link"; diagonal covariances).
pub fn odometry_record_to_ros(r: &OdometryRecord, stamp_ns: i64) -> Odometry {
    odometry(
        header(stamp_ns, "odom"),
        r.position,
        r.orientation,
        r.linear_velocity,
        r.angular_velocity,
        r.pose_variance,
        r.twist_variance,
    )
}

fn encoding_name(e: PixelEncoding) -> &'static str {
    match e {
        PixelEncoding::Rgb8 => "rgb8",
        PixelEncoding::Bgr8 => "bgr8",
        PixelEncoding::Mono8 => "mono8",
    }
}

fn vector([x, y, z]: [f64; 3]) -> Vector3 {
    Vector3 { x, y, z }
}

fn cloud(header: Header, points: u32, fields: Vec<PointField>, payload: &[u8]) -> PointCloud2 {
    let is_dense = payload.chunks_exact(16).all(|p| {
        p[..12]
            .chunks_exact(4)
            .all(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite())
    });
    PointCloud2 {
        header,
        height: 1,
        width: points,
        fields,
        is_bigendian: false,
        point_step: 16,
        row_step: points.saturating_mul(16),
        data: payload.to_vec(),
        is_dense,
    }
}

fn diagonal(v: [f64; 6]) -> [f64; 36] {
    let mut c = [0.0; 36];
    for (i, x) in v.iter().enumerate() {
        c[i * 7] = *x;
    }
    c
}

/// A `nav_msgs/Odometry` (child frame "base_link"; frame "odom" unless `header` names one) with
/// diagonal covariances from the variances given.
pub(crate) fn odometry(
    mut header: Header,
    p: [f64; 3],
    q: [f64; 4],
    v: [f64; 3],
    w: [f64; 3],
    pose_var: [f64; 6],
    twist_var: [f64; 6],
) -> Odometry {
    if header.frame_id.is_empty() {
        header.frame_id = "odom".into();
    }
    Odometry {
        header,
        child_frame_id: "base_link".into(),
        pose: PoseWithCovariance {
            pose: Pose {
                position: Point {
                    x: p[0],
                    y: p[1],
                    z: p[2],
                },
                orientation: Quaternion {
                    x: q[0],
                    y: q[1],
                    z: q[2],
                    w: q[3],
                },
            },
            covariance: diagonal(pose_var),
        },
        twist: TwistWithCovariance {
            twist: Twist {
                linear: vector(v),
                angular: vector(w),
            },
            covariance: diagonal(twist_var),
        },
    }
}
