//! ROS 2 message types whose CDR wire format matches standard ROS 2 exactly.
//!
//! Covered: `builtin_interfaces/Time`, `std_msgs/Header`, `geometry_msgs` (Vector3, Quaternion,
//! Point, Pose, PoseWithCovariance, Twist, TwistWithCovariance), `sensor_msgs` (Image,
//! CameraInfo, RegionOfInterest, PointCloud2, PointField, Imu) and `nav_msgs/Odometry`.
//! Field order is the `.msg` order; `uint8[]` data fields are byte strings (serde_bytes), so a
//! 2.5 MB image is one `memcpy`, not 2.5 million serde calls.
//!
//! Every type implements [`RosMessage`]: its ROS type name, its DDS type name and its `.msg`
//! definition (also the complete rosbag2 `ros2msg` text with dependencies, for MCAP schemas).
//! [`cdr`] encodes and decodes complete payloads (with the 4-byte encapsulation header) and is
//! hardened against hostile input.
//!
//! This crate does not depend on any DDS implementation. The `ros2` feature implements
//! `ros2_client::Message` for every type.
//!
//! # Examples
//! ```
//! use rtfuse_msgs::{cdr, sensor_msgs::Imu, RosMessage};
//! let imu = Imu::default();
//! let bytes = cdr::encode(&imu).unwrap();
//! assert_eq!(&bytes[..4], &cdr::CDR_LE_HEADER);
//! assert_eq!(cdr::decode::<Imu>(&bytes).unwrap(), imu);
//! assert_eq!(Imu::ROS_TYPE, "sensor_msgs/msg/Imu");
//! assert_eq!(Imu::DDS_TYPE, "sensor_msgs::msg::dds_::Imu_");
//! ```

pub mod builtin_interfaces;
pub mod cdr;
pub mod definition;
pub mod fixed;
pub mod geometry_msgs;
pub mod nav_msgs;
pub mod sensor_msgs;
pub mod std_msgs;

#[cfg(feature = "ros2")]
mod ros2;

pub use cdr::{DecodeError, EncodeError};

/// A ROS 2 message type: names and definition. The wire format is the type's serde
/// implementation under CDR (see [`cdr`]).
pub trait RosMessage: serde::Serialize + serde::de::DeserializeOwned {
    /// ROS type name, e.g. `"sensor_msgs/msg/Imu"`.
    const ROS_TYPE: &'static str;
    /// DDS type name as ROS 2 registers it, e.g. `"sensor_msgs::msg::dds_::Imu_"`.
    const DDS_TYPE: &'static str;
    /// This type's own `.msg` text (without dependencies).
    const MSG_DEFINITION: &'static str;

    /// The complete rosbag2 `ros2msg` definition: this type's `.msg` followed by every
    /// dependency behind a separator line and `MSG: pkg/Type` (what an MCAP schema holds).
    fn full_definition() -> String {
        // Every type of this crate has all its dependencies in the table (tested).
        definition::full_text(Self::ROS_TYPE).unwrap_or_else(|| Self::MSG_DEFINITION.to_owned())
    }
}

/// Implements [`RosMessage`] from a package and a type name literal.
macro_rules! ros_message {
    ($ty:ty, $pkg:literal, $name:literal) => {
        impl $crate::RosMessage for $ty {
            const ROS_TYPE: &'static str = concat!($pkg, "/msg/", $name);
            const DDS_TYPE: &'static str = concat!($pkg, "::msg::dds_::", $name, "_");
            const MSG_DEFINITION: &'static str =
                match $crate::definition::msg_text_const(concat!($pkg, "/", $name)) {
                    Some(text) => text,
                    None => panic!(concat!("no .msg text for ", $pkg, "/", $name)),
                };
        }
    };
}
pub(crate) use ros_message;

/// The ROS type names of every message type in this crate.
pub const ALL_TYPES: &[&str] = &[
    "builtin_interfaces/msg/Time",
    "std_msgs/msg/Header",
    "geometry_msgs/msg/Vector3",
    "geometry_msgs/msg/Quaternion",
    "geometry_msgs/msg/Point",
    "geometry_msgs/msg/Pose",
    "geometry_msgs/msg/PoseWithCovariance",
    "geometry_msgs/msg/Twist",
    "geometry_msgs/msg/TwistWithCovariance",
    "sensor_msgs/msg/Image",
    "sensor_msgs/msg/RegionOfInterest",
    "sensor_msgs/msg/CameraInfo",
    "sensor_msgs/msg/PointField",
    "sensor_msgs/msg/PointCloud2",
    "sensor_msgs/msg/Imu",
    "nav_msgs/msg/Odometry",
];
