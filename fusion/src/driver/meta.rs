//! What a sensor sample looks like in a channel: the per-chunk user header ([`FrameMeta`]), the
//! descriptor's user word, and the fixed little-endian layouts of IMU and odometry payloads.
//!
//! # User header (`META_LEN` = 64 bytes at the start of the chunk's user header, little-endian)
//! ```text
//! 0   magic      u32  META_MAGIC ("RTFM")
//! 4   version    u16  META_VERSION (1)
//! 6   kind       u16  StreamKind code (1 camera, 2 lidar, 3 imu, 4 odometry)
//! 8   width      u32  camera: pixels per row; lidar: points in the cloud; imu/odometry: 1
//! 12  height     u32  camera: rows; otherwise 1
//! 16  step       u32  camera: bytes per row; lidar: bytes per point (16)
//! 20  encoding   u32  camera: 1 rgb8, 2 bgr8, 3 mono8; lidar: 1 = x,y,z,intensity f32; depth: 4 = 32FC1
//!                     (kind 5, width × height float32 metres); otherwise 0
//! 24  frame      u64  the driver's frame counter (survives sequence-number resets of a new channel)
//! 32  reserved   32 bytes, zero
//! ```
//! The descriptor's user word carries `META_MAGIC << 32 | kind` so a reader can reject a wrong
//! stream without touching the header. Payloads: camera rows without padding; LiDAR points as
//! PointCloud2 `x, y, z, intensity` float32 at offsets 0, 4, 8, 12 (`point_step` 16); IMU and odometry
//! as [`IMU_PAYLOAD_LEN`] / [`ODOM_PAYLOAD_LEN`] bytes of f64 (see [`encode_imu`], [`encode_odometry`]).
//!
//! Everything read back is checked ([`FrameMeta::decode`], [`FrameMeta::check_payload`],
//! [`decode_imu`], [`decode_odometry`]): a malformed sample is an error, never a panic.

use crate::synth::{ImuSample, OdometrySample, PixelEncoding, LIDAR_POINT_STEP};
use std::fmt;

/// Magic of the user header ("RTFM" little-endian).
pub const META_MAGIC: u32 = u32::from_le_bytes(*b"RTFM");
/// Version of the user-header layout.
pub const META_VERSION: u16 = 1;
/// Bytes of the user header this layout uses (channels must have `user_header_size >= META_LEN`).
pub const META_LEN: usize = 64;
/// Bytes of an IMU payload: t, angular velocity xyz, linear acceleration xyz, orientation xyzw (f64).
pub const IMU_PAYLOAD_LEN: usize = 11 * 8;
/// Bytes of an odometry payload: t, position xyz, yaw, orientation xyzw, linear velocity xyz,
/// angular velocity xyz (f64).
pub const ODOM_PAYLOAD_LEN: usize = 15 * 8;

/// Encoding code of depth images: one float32 per pixel (ROS `32FC1`).
pub const DEPTH_32FC1: u32 = 4;

/// The kind of sensor a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StreamKind {
    /// Images (`sensor_msgs/Image`).
    Camera,
    /// Point clouds (`sensor_msgs/PointCloud2`).
    Lidar,
    /// Inertial samples (`sensor_msgs/Imu`).
    Imu,
    /// Wheel odometry (`nav_msgs/Odometry`).
    Odometry,
    /// Depth images the fusion node publishes (`sensor_msgs/Image` 32FC1, metres, NaN = no return).
    Depth,
}

impl StreamKind {
    /// Wire code.
    pub fn code(self) -> u16 {
        match self {
            StreamKind::Camera => 1,
            StreamKind::Lidar => 2,
            StreamKind::Imu => 3,
            StreamKind::Odometry => 4,
            StreamKind::Depth => 5,
        }
    }

    /// From a wire code.
    pub fn from_code(c: u16) -> Option<StreamKind> {
        Some(match c {
            1 => StreamKind::Camera,
            2 => StreamKind::Lidar,
            3 => StreamKind::Imu,
            4 => StreamKind::Odometry,
            5 => StreamKind::Depth,
            _ => return None,
        })
    }

    /// Lower-case name ("camera", …), as trace headers and configs spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Camera => "camera",
            StreamKind::Lidar => "lidar",
            StreamKind::Imu => "imu",
            StreamKind::Odometry => "odometry",
            StreamKind::Depth => "depth",
        }
    }

    /// The descriptor user word for this kind.
    pub fn user_word(self) -> u64 {
        (u64::from(META_MAGIC) << 32) | u64::from(self.code())
    }
}

impl fmt::Display for StreamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Camera encoding wire code.
pub fn encoding_code(e: PixelEncoding) -> u32 {
    match e {
        PixelEncoding::Rgb8 => 1,
        PixelEncoding::Bgr8 => 2,
        PixelEncoding::Mono8 => 3,
    }
}

/// Camera encoding from its wire code.
pub fn encoding_from_code(c: u32) -> Option<PixelEncoding> {
    Some(match c {
        1 => PixelEncoding::Rgb8,
        2 => PixelEncoding::Bgr8,
        3 => PixelEncoding::Mono8,
        _ => return None,
    })
}

/// Why a sample's metadata or payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// The chunk's user header is shorter than [`META_LEN`].
    #[error("user header of {0} bytes is shorter than the {META_LEN}-byte frame metadata")]
    HeaderTooShort(usize),
    /// Magic or user word wrong: not written by an rtfuse driver.
    #[error("frame metadata magic {0:#010x} is not RTFM")]
    BadMagic(u32),
    /// Unknown layout version.
    #[error("frame metadata version {0}, this build reads {META_VERSION}")]
    Version(u16),
    /// Unknown or unexpected stream kind.
    #[error("stream kind code {found} where {expected} was expected")]
    WrongKind {
        /// Code found.
        found: u16,
        /// Kind expected.
        expected: StreamKind,
    },
    /// Unknown camera or point encoding.
    #[error("unknown encoding code {0}")]
    BadEncoding(u32),
    /// Sizes in the metadata do not match the payload.
    #[error("payload of {len} bytes does not match the metadata (expected {expected})")]
    SizeMismatch {
        /// Payload length.
        len: usize,
        /// Length the metadata implies (saturated on overflow).
        expected: u64,
    },
    /// A number in the payload is NaN or infinite.
    #[error("non-finite value in the payload")]
    NonFinite,
}

/// The metadata of one frame, as stored in the chunk's user header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameMeta {
    /// Kind code (see [`StreamKind::code`]).
    pub kind: u16,
    /// Camera: width; LiDAR: point count; else 1.
    pub width: u32,
    /// Camera: height; else 1.
    pub height: u32,
    /// Camera: bytes per row; LiDAR: bytes per point.
    pub step: u32,
    /// Encoding code.
    pub encoding: u32,
    /// The driver's frame counter.
    pub frame: u64,
}

impl FrameMeta {
    /// Metadata of a camera frame.
    pub fn camera(width: u32, height: u32, encoding: PixelEncoding, frame: u64) -> FrameMeta {
        FrameMeta {
            kind: StreamKind::Camera.code(),
            width,
            height,
            step: width.saturating_mul(encoding.bytes_per_pixel() as u32),
            encoding: encoding_code(encoding),
            frame,
        }
    }

    /// Metadata of a LiDAR scan of `points` points.
    pub fn lidar(points: u32, frame: u64) -> FrameMeta {
        FrameMeta {
            kind: StreamKind::Lidar.code(),
            width: points,
            height: 1,
            step: LIDAR_POINT_STEP as u32,
            encoding: 1,
            frame,
        }
    }

    /// Metadata of a depth image (32FC1).
    pub fn depth(width: u32, height: u32, frame: u64) -> FrameMeta {
        FrameMeta {
            kind: StreamKind::Depth.code(),
            width,
            height,
            step: width.saturating_mul(4),
            encoding: DEPTH_32FC1,
            frame,
        }
    }

    /// Metadata of a fixed-layout sample (IMU, odometry).
    pub fn fixed(kind: StreamKind, frame: u64) -> FrameMeta {
        FrameMeta {
            kind: kind.code(),
            width: 1,
            height: 1,
            step: 0,
            encoding: 0,
            frame,
        }
    }

    /// Writes the metadata into the first [`META_LEN`] bytes of `hdr`.
    ///
    /// # Errors
    /// [`MetaError::HeaderTooShort`] when `hdr` is shorter than [`META_LEN`].
    pub fn encode(&self, hdr: &mut [u8]) -> Result<(), MetaError> {
        let have = hdr.len();
        let b = hdr
            .get_mut(..META_LEN)
            .ok_or(MetaError::HeaderTooShort(have))?;
        b.fill(0);
        b[0..4].copy_from_slice(&META_MAGIC.to_le_bytes());
        b[4..6].copy_from_slice(&META_VERSION.to_le_bytes());
        b[6..8].copy_from_slice(&self.kind.to_le_bytes());
        b[8..12].copy_from_slice(&self.width.to_le_bytes());
        b[12..16].copy_from_slice(&self.height.to_le_bytes());
        b[16..20].copy_from_slice(&self.step.to_le_bytes());
        b[20..24].copy_from_slice(&self.encoding.to_le_bytes());
        b[24..32].copy_from_slice(&self.frame.to_le_bytes());
        Ok(())
    }

    /// Reads and checks metadata: magic, version, and that the kind is `expected`.
    ///
    /// # Errors
    /// Any [`MetaError`] except the payload ones.
    pub fn decode(hdr: &[u8], expected: StreamKind) -> Result<FrameMeta, MetaError> {
        let b = hdr
            .get(..META_LEN)
            .ok_or(MetaError::HeaderTooShort(hdr.len()))?;
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let magic = u32_at(0);
        if magic != META_MAGIC {
            return Err(MetaError::BadMagic(magic));
        }
        let version = u16_at(4);
        if version != META_VERSION {
            return Err(MetaError::Version(version));
        }
        let kind = u16_at(6);
        if kind != expected.code() {
            return Err(MetaError::WrongKind {
                found: kind,
                expected,
            });
        }
        let mut frame = [0u8; 8];
        frame.copy_from_slice(&b[24..32]);
        Ok(FrameMeta {
            kind,
            width: u32_at(8),
            height: u32_at(12),
            step: u32_at(16),
            encoding: u32_at(20),
            frame: u64::from_le_bytes(frame),
        })
    }

    /// Checks that a payload of `len` bytes is what this metadata describes.
    ///
    /// # Errors
    /// [`MetaError::BadEncoding`], [`MetaError::SizeMismatch`].
    pub fn check_payload(&self, len: usize) -> Result<(), MetaError> {
        let expected: u64 = match StreamKind::from_code(self.kind) {
            Some(StreamKind::Camera) => {
                let enc = encoding_from_code(self.encoding)
                    .ok_or(MetaError::BadEncoding(self.encoding))?;
                let row = u64::from(self.width) * enc.bytes_per_pixel() as u64;
                let total = row.saturating_mul(u64::from(self.height));
                if u64::from(self.step) != row {
                    return Err(MetaError::SizeMismatch {
                        len,
                        expected: total,
                    });
                }
                total
            }
            Some(StreamKind::Lidar) => {
                if self.encoding != 1 {
                    return Err(MetaError::BadEncoding(self.encoding));
                }
                if self.step as usize != LIDAR_POINT_STEP {
                    return Err(MetaError::SizeMismatch {
                        len,
                        expected: u64::from(self.width) * 16,
                    });
                }
                u64::from(self.width) * LIDAR_POINT_STEP as u64
            }
            Some(StreamKind::Depth) => {
                if self.encoding != DEPTH_32FC1 || u64::from(self.step) != u64::from(self.width) * 4
                {
                    return Err(MetaError::BadEncoding(self.encoding));
                }
                u64::from(self.step).saturating_mul(u64::from(self.height))
            }
            Some(StreamKind::Imu) => IMU_PAYLOAD_LEN as u64,
            Some(StreamKind::Odometry) => ODOM_PAYLOAD_LEN as u64,
            None => {
                return Err(MetaError::WrongKind {
                    found: self.kind,
                    expected: StreamKind::Camera,
                })
            }
        };
        if len as u64 != expected {
            return Err(MetaError::SizeMismatch { len, expected });
        }
        Ok(())
    }

    /// The camera encoding (camera frames only).
    pub fn pixel_encoding(&self) -> Option<PixelEncoding> {
        encoding_from_code(self.encoding)
    }
}

fn put_f64s(out: &mut [u8], vals: &[f64]) {
    for (chunk, v) in out.chunks_exact_mut(8).zip(vals) {
        chunk.copy_from_slice(&v.to_le_bytes());
    }
}

fn get_f64s<const K: usize>(b: &[u8]) -> Result<[f64; K], MetaError> {
    if b.len() != K * 8 {
        return Err(MetaError::SizeMismatch {
            len: b.len(),
            expected: (K * 8) as u64,
        });
    }
    let mut v = [0f64; K];
    for (x, c) in v.iter_mut().zip(b.chunks_exact(8)) {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        *x = f64::from_le_bytes(w);
        if !x.is_finite() {
            return Err(MetaError::NonFinite);
        }
    }
    Ok(v)
}

/// Writes an IMU sample in its payload layout; returns the bytes written ([`IMU_PAYLOAD_LEN`]).
///
/// # Errors
/// [`MetaError::SizeMismatch`] when `out` is too short.
pub fn encode_imu(s: &ImuSample, out: &mut [u8]) -> Result<usize, MetaError> {
    let have = out.len();
    let out = out
        .get_mut(..IMU_PAYLOAD_LEN)
        .ok_or(MetaError::SizeMismatch {
            len: have,
            expected: IMU_PAYLOAD_LEN as u64,
        })?;
    let w = s.angular_velocity;
    let a = s.linear_acceleration;
    let q = s.orientation;
    put_f64s(
        out,
        &[
            s.t, w[0], w[1], w[2], a[0], a[1], a[2], q[0], q[1], q[2], q[3],
        ],
    );
    Ok(IMU_PAYLOAD_LEN)
}

/// Reads an IMU payload.
///
/// # Errors
/// Wrong length or a non-finite value.
pub fn decode_imu(b: &[u8]) -> Result<ImuSample, MetaError> {
    let v = get_f64s::<11>(b)?;
    Ok(ImuSample {
        t: v[0],
        angular_velocity: [v[1], v[2], v[3]],
        linear_acceleration: [v[4], v[5], v[6]],
        orientation: [v[7], v[8], v[9], v[10]],
    })
}

/// Writes an odometry sample in its payload layout; returns the bytes written ([`ODOM_PAYLOAD_LEN`]).
///
/// # Errors
/// [`MetaError::SizeMismatch`] when `out` is too short.
pub fn encode_odometry(s: &OdometrySample, out: &mut [u8]) -> Result<usize, MetaError> {
    let have = out.len();
    let out = out
        .get_mut(..ODOM_PAYLOAD_LEN)
        .ok_or(MetaError::SizeMismatch {
            len: have,
            expected: ODOM_PAYLOAD_LEN as u64,
        })?;
    let (p, q, v, w) = (
        s.position,
        s.orientation,
        s.linear_velocity,
        s.angular_velocity,
    );
    put_f64s(
        out,
        &[
            s.t, p[0], p[1], p[2], s.yaw, q[0], q[1], q[2], q[3], v[0], v[1], v[2], w[0], w[1],
            w[2],
        ],
    );
    Ok(ODOM_PAYLOAD_LEN)
}

/// Reads an odometry payload.
///
/// # Errors
/// Wrong length or a non-finite value.
pub fn decode_odometry(b: &[u8]) -> Result<OdometrySample, MetaError> {
    let v = get_f64s::<15>(b)?;
    Ok(OdometrySample {
        t: v[0],
        position: [v[1], v[2], v[3]],
        yaw: v[4],
        orientation: [v[5], v[6], v[7], v[8]],
        linear_velocity: [v[9], v[10], v[11]],
        angular_velocity: [v[12], v[13], v[14]],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_roundtrip_and_refusals() {
        let mut hdr = [0u8; 64];
        let m = FrameMeta::camera(640, 480, PixelEncoding::Bgr8, 7);
        m.encode(&mut hdr).unwrap();
        let d = FrameMeta::decode(&hdr, StreamKind::Camera).unwrap();
        assert_eq!(d, m);
        d.check_payload(640 * 480 * 3).unwrap();
        assert!(matches!(
            d.check_payload(10),
            Err(MetaError::SizeMismatch { .. })
        ));
        assert!(matches!(
            FrameMeta::decode(&hdr, StreamKind::Lidar),
            Err(MetaError::WrongKind { .. })
        ));
        assert!(matches!(
            FrameMeta::decode(&hdr[..10], StreamKind::Camera),
            Err(MetaError::HeaderTooShort(10))
        ));
        hdr[0] = 0;
        assert!(matches!(
            FrameMeta::decode(&hdr, StreamKind::Camera),
            Err(MetaError::BadMagic(_))
        ));
        // Hostile sizes cannot overflow.
        let huge = FrameMeta {
            width: u32::MAX,
            height: u32::MAX,
            step: u32::MAX,
            ..FrameMeta::camera(1, 1, PixelEncoding::Rgb8, 0)
        };
        assert!(huge.check_payload(3).is_err());
        let l = FrameMeta::lidar(100, 1);
        l.check_payload(1600).unwrap();
        assert!(l.check_payload(1601).is_err());
    }

    #[test]
    fn imu_and_odometry_roundtrip_and_reject_nan() {
        let imu = ImuSample {
            t: 1.5,
            angular_velocity: [1.0, 2.0, 3.0],
            linear_acceleration: [4.0, 5.0, 6.0],
            orientation: [0.0, 0.0, 0.0, 1.0],
        };
        let mut b = [0u8; IMU_PAYLOAD_LEN];
        encode_imu(&imu, &mut b).unwrap();
        assert_eq!(decode_imu(&b).unwrap(), imu);
        b[8..16].copy_from_slice(&f64::NAN.to_le_bytes());
        assert_eq!(decode_imu(&b), Err(MetaError::NonFinite));
        assert!(decode_imu(&b[..80]).is_err());
        let odo = OdometrySample {
            t: 2.0,
            position: [1.0, 2.0, 0.0],
            yaw: 0.5,
            orientation: [0.0, 0.0, 0.2, 0.98],
            linear_velocity: [1.0, 0.0, 0.0],
            angular_velocity: [0.0, 0.0, 0.1],
        };
        let mut b = [0u8; ODOM_PAYLOAD_LEN];
        encode_odometry(&odo, &mut b).unwrap();
        assert_eq!(decode_odometry(&b).unwrap(), odo);
        assert!(encode_odometry(&odo, &mut [0u8; 8]).is_err());
    }
}
