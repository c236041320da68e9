//! The ROS 2 messages that MCAP replay and output handle, their CDR decoding (through
//! `rtfuse-msgs`) and the consistency checks a decoded message must pass before it is used.
//!
//! CDR decoding alone accepts an image whose `data` is shorter than `step × height` or a point
//! cloud whose fields run past `point_step`; using such a message would read out of bounds or
//! mix points. [`RosMsg::validate`] rejects those with a [`LayoutError`] that says what is wrong.

use std::fmt;

use rtfuse_msgs::nav_msgs::Odometry;
use rtfuse_msgs::sensor_msgs::{CameraInfo, Image, Imu, PointCloud2, PointField};
use rtfuse_msgs::{cdr, DecodeError, RosMessage};

/// A message type that replay understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// `sensor_msgs/msg/Image`.
    Image,
    /// `sensor_msgs/msg/PointCloud2`.
    PointCloud2,
    /// `sensor_msgs/msg/Imu`.
    Imu,
    /// `sensor_msgs/msg/CameraInfo`.
    CameraInfo,
    /// `nav_msgs/msg/Odometry`.
    Odometry,
}

impl MessageType {
    /// All types, in a fixed order.
    pub const ALL: [MessageType; 5] = [
        Self::Image,
        Self::PointCloud2,
        Self::Imu,
        Self::CameraInfo,
        Self::Odometry,
    ];

    /// The ROS 2 type name (`sensor_msgs/msg/Image`, …).
    pub fn ros_type(self) -> &'static str {
        match self {
            Self::Image => Image::ROS_TYPE,
            Self::PointCloud2 => PointCloud2::ROS_TYPE,
            Self::Imu => Imu::ROS_TYPE,
            Self::CameraInfo => CameraInfo::ROS_TYPE,
            Self::Odometry => Odometry::ROS_TYPE,
        }
    }

    /// The type of an MCAP schema name: `pkg/msg/Type`, or the `pkg/Type` short form.
    pub fn from_schema_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| {
            let full = t.ros_type();
            name == full || name == full.replacen("/msg/", "/", 1)
        })
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ros_type())
    }
}

/// A decoded message.
#[derive(Clone, Debug, PartialEq)]
pub enum RosMsg {
    /// An image.
    Image(Image),
    /// A point cloud.
    PointCloud2(PointCloud2),
    /// An IMU sample.
    Imu(Imu),
    /// Camera calibration.
    CameraInfo(CameraInfo),
    /// Odometry.
    Odometry(Box<Odometry>),
}

/// Why a decoded message is unusable.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayoutError {
    /// Sizes that overflow or disagree (`what` says which).
    Size {
        /// The inconsistency, in words with the numbers.
        what: String,
    },
    /// A PointCloud2 field does not fit the point or has an unknown datatype.
    Field {
        /// Field name.
        name: String,
        /// What is wrong with it.
        what: String,
    },
    /// An image encoding this code cannot size.
    UnknownEncoding(String),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Size { what } => write!(f, "inconsistent sizes: {what}"),
            Self::Field { name, what } => write!(f, "field {name:?}: {what}"),
            Self::UnknownEncoding(e) => write!(f, "unknown image encoding {e:?}"),
        }
    }
}

impl std::error::Error for LayoutError {}

/// Bytes per pixel of a ROS image encoding (`sensor_msgs/image_encodings.hpp`), if known.
pub fn bytes_per_pixel(encoding: &str) -> Option<u32> {
    Some(match encoding {
        "mono8" | "8UC1" | "8SC1" | "bayer_rggb8" | "bayer_bggr8" | "bayer_gbrg8"
        | "bayer_grbg8" => 1,
        "mono16" | "16UC1" | "16SC1" | "8UC2" | "yuv422" | "uyvy" | "yuyv" => 2,
        "rgb8" | "bgr8" | "8UC3" => 3,
        "rgba8" | "bgra8" | "8UC4" | "32FC1" | "32SC1" | "16UC2" => 4,
        "rgb16" | "bgr16" | "16UC3" => 6,
        "rgba16" | "bgra16" | "16UC4" | "32FC2" | "64FC1" => 8,
        "32FC3" => 12,
        "32FC4" | "64FC2" => 16,
        "64FC3" => 24,
        "64FC4" => 32,
        _ => return None,
    })
}

/// Bytes of one element of a PointField datatype.
pub fn datatype_size(datatype: u8) -> Option<u32> {
    Some(match datatype {
        PointField::INT8 | PointField::UINT8 => 1,
        PointField::INT16 | PointField::UINT16 => 2,
        PointField::INT32 | PointField::UINT32 | PointField::FLOAT32 => 4,
        PointField::FLOAT64 => 8,
        _ => return None,
    })
}

fn size(what: String) -> LayoutError {
    LayoutError::Size { what }
}

/// Checks an image: known encoding, `step ≥ width × bpp`, `data.len() == step × height`.
///
/// # Errors
/// The first inconsistency found.
pub fn check_image(img: &Image) -> Result<(), LayoutError> {
    let bpp = bytes_per_pixel(&img.encoding)
        .ok_or_else(|| LayoutError::UnknownEncoding(img.encoding.clone()))?;
    let row = u64::from(img.width) * u64::from(bpp);
    if u64::from(img.step) < row {
        return Err(size(format!(
            "step {} < width {} × {bpp} bytes per pixel",
            img.step, img.width
        )));
    }
    let want = u64::from(img.step) * u64::from(img.height);
    if img.data.len() as u64 != want {
        return Err(size(format!(
            "image data has {} bytes, step {} × height {} = {want}",
            img.data.len(),
            img.step,
            img.height
        )));
    }
    Ok(())
}

/// Checks a point cloud: every field inside `point_step` with a known datatype,
/// `row_step ≥ width × point_step`, `data.len() == row_step × height`.
///
/// # Errors
/// The first inconsistency found.
pub fn check_cloud(pc: &PointCloud2) -> Result<(), LayoutError> {
    for f in &pc.fields {
        let field = |what: String| LayoutError::Field {
            name: f.name.clone(),
            what,
        };
        let sz = datatype_size(f.datatype)
            .ok_or_else(|| field(format!("unknown datatype {}", f.datatype)))?;
        let end = u64::from(f.offset) + u64::from(sz) * u64::from(f.count.max(1));
        if end > u64::from(pc.point_step) {
            return Err(field(format!(
                "ends at byte {end}, past point_step {}",
                pc.point_step
            )));
        }
    }
    let row = u64::from(pc.width) * u64::from(pc.point_step);
    if u64::from(pc.row_step) < row {
        return Err(size(format!(
            "row_step {} < width {} × point_step {}",
            pc.row_step, pc.width, pc.point_step
        )));
    }
    let want = u64::from(pc.row_step) * u64::from(pc.height);
    if pc.data.len() as u64 != want {
        return Err(size(format!(
            "cloud data has {} bytes, row_step {} × height {} = {want}",
            pc.data.len(),
            pc.row_step,
            pc.height
        )));
    }
    Ok(())
}

impl RosMsg {
    /// Decodes a CDR payload (with its encapsulation header) as `ty`.
    ///
    /// # Errors
    /// The CDR decoder's error; never panics on hostile bytes.
    pub fn decode(ty: MessageType, bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(match ty {
            MessageType::Image => Self::Image(cdr::decode(bytes)?),
            MessageType::PointCloud2 => Self::PointCloud2(cdr::decode(bytes)?),
            MessageType::Imu => Self::Imu(cdr::decode(bytes)?),
            MessageType::CameraInfo => Self::CameraInfo(cdr::decode(bytes)?),
            MessageType::Odometry => Self::Odometry(Box::new(cdr::decode(bytes)?)),
        })
    }

    /// The message's type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::Image(_) => MessageType::Image,
            Self::PointCloud2(_) => MessageType::PointCloud2,
            Self::Imu(_) => MessageType::Imu,
            Self::CameraInfo(_) => MessageType::CameraInfo,
            Self::Odometry(_) => MessageType::Odometry,
        }
    }

    /// `header.stamp` in ns since the epoch.
    pub fn stamp_ns(&self) -> i64 {
        match self {
            Self::Image(m) => m.header.stamp.as_nanos(),
            Self::PointCloud2(m) => m.header.stamp.as_nanos(),
            Self::Imu(m) => m.header.stamp.as_nanos(),
            Self::CameraInfo(m) => m.header.stamp.as_nanos(),
            Self::Odometry(m) => m.header.stamp.as_nanos(),
        }
    }

    /// Checks sizes and layouts (images and point clouds; the fixed-size types always pass).
    ///
    /// # Errors
    /// See [`check_image`] and [`check_cloud`].
    pub fn validate(&self) -> Result<(), LayoutError> {
        match self {
            Self::Image(m) => check_image(m),
            Self::PointCloud2(m) => check_cloud(m),
            _ => Ok(()),
        }
    }
}
