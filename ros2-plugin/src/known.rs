//! The message types this build understands, for validation of payloads by type name.

use rtfuse_msgs::{builtin_interfaces, cdr, geometry_msgs, nav_msgs, sensor_msgs, std_msgs};

/// Checks that `payload` (encapsulation header + CDR) is a well-formed message of a known type.
pub type Validator = fn(&[u8]) -> Result<(), cdr::DecodeError>;

fn check<M: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<(), cdr::DecodeError> {
    cdr::decode::<M>(payload).map(drop)
}

/// The validator for `ros_type` (`pkg/msg/Type` or `pkg/Type`), or `None` for a type this
/// build does not know.
pub fn validator(ros_type: &str) -> Option<Validator> {
    let (pkg, name) = crate::names::split_type_name(ros_type).ok()?;
    let v: Validator = match (pkg, name) {
        ("builtin_interfaces", "Time") => check::<builtin_interfaces::Time>,
        ("std_msgs", "Header") => check::<std_msgs::Header>,
        ("geometry_msgs", "Vector3") => check::<geometry_msgs::Vector3>,
        ("geometry_msgs", "Point") => check::<geometry_msgs::Point>,
        ("geometry_msgs", "Quaternion") => check::<geometry_msgs::Quaternion>,
        ("geometry_msgs", "Pose") => check::<geometry_msgs::Pose>,
        ("geometry_msgs", "PoseWithCovariance") => check::<geometry_msgs::PoseWithCovariance>,
        ("geometry_msgs", "Twist") => check::<geometry_msgs::Twist>,
        ("geometry_msgs", "TwistWithCovariance") => check::<geometry_msgs::TwistWithCovariance>,
        ("sensor_msgs", "Image") => check::<sensor_msgs::Image>,
        ("sensor_msgs", "RegionOfInterest") => check::<sensor_msgs::RegionOfInterest>,
        ("sensor_msgs", "CameraInfo") => check::<sensor_msgs::CameraInfo>,
        ("sensor_msgs", "PointField") => check::<sensor_msgs::PointField>,
        ("sensor_msgs", "PointCloud2") => check::<sensor_msgs::PointCloud2>,
        ("sensor_msgs", "Imu") => check::<sensor_msgs::Imu>,
        ("nav_msgs", "Odometry") => check::<nav_msgs::Odometry>,
        _ => return None,
    };
    Some(v)
}

/// `rtfuse_msgs::ALL_TYPES` joined for error messages.
pub fn known_list() -> String {
    rtfuse_msgs::ALL_TYPES.join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_listed_type_has_a_validator() {
        for t in rtfuse_msgs::ALL_TYPES {
            assert!(super::validator(t).is_some(), "{t}");
        }
        assert!(super::validator("std_msgs/msg/String").is_none());
    }
}
