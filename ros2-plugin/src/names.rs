//! ROS 2 ↔ DDS name mapping and the names of our shared-memory objects.

use std::fmt::Write as _;

/// Why a ROS name could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Not `pkg/msg/Type` (or `pkg/Type`).
    #[error("ROS type name {0:?} is not of the form pkg/msg/Type")]
    BadTypeName(String),
    /// Empty, relative with `~`, or with characters ROS 2 does not allow.
    #[error("ROS topic name {0:?} is not a valid absolute or relative topic name")]
    BadTopicName(String),
}

/// The DDS topic name ROS 2 uses for `topic`: `rt/` followed by the absolute name without its
/// leading slash (`/camera/image` and `camera/image` both give `rt/camera/image`).
///
/// # Errors
/// [`NameError::BadTopicName`] for an empty name or characters outside `[A-Za-z0-9_/]`.
///
/// # Examples
/// ```
/// assert_eq!(ros2_plugin::names::dds_topic_name("/imu").unwrap(), "rt/imu");
/// ```
pub fn dds_topic_name(topic: &str) -> Result<String, NameError> {
    let trimmed = topic.trim_start_matches('/');
    let valid = !trimmed.is_empty()
        && !trimmed.ends_with('/')
        && !trimmed.contains("//")
        && trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/')
        && !trimmed.starts_with(|c: char| c.is_ascii_digit());
    if valid {
        Ok(format!("rt/{trimmed}"))
    } else {
        Err(NameError::BadTopicName(topic.to_owned()))
    }
}

/// Splits `pkg/msg/Type` or `pkg/Type` into `(pkg, Type)`.
///
/// # Errors
/// [`NameError::BadTypeName`] for anything else.
pub fn split_type_name(ros_type: &str) -> Result<(&str, &str), NameError> {
    let parts: Vec<&str> = ros_type.split('/').collect();
    let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match parts.as_slice() {
        [pkg, "msg", name] | [pkg, name] if ok(pkg) && ok(name) => Ok((pkg, name)),
        _ => Err(NameError::BadTypeName(ros_type.to_owned())),
    }
}

/// The DDS type name ROS 2 registers for `ros_type`: `pkg::msg::dds_::Type_`.
///
/// # Errors
/// [`NameError::BadTypeName`] if `ros_type` is not `pkg/msg/Type`.
///
/// # Examples
/// ```
/// assert_eq!(
///     ros2_plugin::names::dds_type_name("sensor_msgs/msg/Imu").unwrap(),
///     "sensor_msgs::msg::dds_::Imu_"
/// );
/// ```
pub fn dds_type_name(ros_type: &str) -> Result<String, NameError> {
    let (pkg, name) = split_type_name(ros_type)?;
    Ok(format!("{pkg}::msg::dds_::{name}_"))
}

/// A short stable hash (FNV-1a, 64 bit) of a topic name, used in shared-memory object names so
/// that any topic, however long, gives a short valid POSIX name.
pub fn topic_hash(dds_topic: &str) -> u64 {
    dds_topic.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Lower-case hex of a byte string (GUIDs in object names).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_map_like_ros2() {
        assert_eq!(dds_topic_name("/a/b_c").unwrap(), "rt/a/b_c");
        assert_eq!(dds_topic_name("odom").unwrap(), "rt/odom");
        for bad in ["", "/", "a//b", "a/", "1abc", "a b", "~/x"] {
            assert!(dds_topic_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn type_names_map_like_rosidl() {
        assert_eq!(
            dds_type_name("nav_msgs/Odometry").unwrap(),
            "nav_msgs::msg::dds_::Odometry_"
        );
        for bad in ["Imu", "a/srv/b/c", "a//b", "a/msg/"] {
            assert!(dds_type_name(bad).is_err(), "{bad:?}");
        }
        assert_ne!(topic_hash("rt/a"), topic_hash("rt/b"));
    }
}
