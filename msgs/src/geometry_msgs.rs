//! `geometry_msgs` messages.

use serde::{Deserialize, Serialize};

/// `geometry_msgs/msg/Vector3`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Vector3 {
    /// X component.
    pub x: f64,
    /// Y component.
    pub y: f64,
    /// Z component.
    pub z: f64,
}

/// `geometry_msgs/msg/Point`: a position in free space.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// X coordinate.
    pub x: f64,
    /// Y coordinate.
    pub y: f64,
    /// Z coordinate.
    pub z: f64,
}

/// `geometry_msgs/msg/Quaternion`: an orientation (defaults to the identity, `w = 1`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quaternion {
    /// X component.
    pub x: f64,
    /// Y component.
    pub y: f64,
    /// Z component.
    pub z: f64,
    /// W (scalar) component.
    pub w: f64,
}

impl Default for Quaternion {
    fn default() -> Self {
        Quaternion {
            x: 0.0,
            y: 0.0,
            z: 0.0,
            w: 1.0,
        }
    }
}

/// `geometry_msgs/msg/Pose`: position and orientation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Pose {
    /// Position.
    pub position: Point,
    /// Orientation.
    pub orientation: Quaternion,
}

/// `geometry_msgs/msg/PoseWithCovariance`: a pose with its 6×6 row-major covariance
/// (x, y, z, rotation about X, Y, Z).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PoseWithCovariance {
    /// The pose.
    pub pose: Pose,
    /// Row-major 6×6 covariance.
    #[serde(with = "crate::fixed")]
    pub covariance: [f64; 36],
}

impl Default for PoseWithCovariance {
    fn default() -> Self {
        PoseWithCovariance {
            pose: Pose::default(),
            covariance: [0.0; 36],
        }
    }
}

/// `geometry_msgs/msg/Twist`: linear and angular velocity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Twist {
    /// Linear velocity.
    pub linear: Vector3,
    /// Angular velocity.
    pub angular: Vector3,
}

/// `geometry_msgs/msg/TwistWithCovariance`: a twist with its 6×6 row-major covariance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TwistWithCovariance {
    /// The twist.
    pub twist: Twist,
    /// Row-major 6×6 covariance.
    #[serde(with = "crate::fixed")]
    pub covariance: [f64; 36],
}

impl Default for TwistWithCovariance {
    fn default() -> Self {
        TwistWithCovariance {
            twist: Twist::default(),
            covariance: [0.0; 36],
        }
    }
}

crate::ros_message!(Vector3, "geometry_msgs", "Vector3");
crate::ros_message!(Point, "geometry_msgs", "Point");
crate::ros_message!(Quaternion, "geometry_msgs", "Quaternion");
crate::ros_message!(Pose, "geometry_msgs", "Pose");
crate::ros_message!(PoseWithCovariance, "geometry_msgs", "PoseWithCovariance");
crate::ros_message!(Twist, "geometry_msgs", "Twist");
crate::ros_message!(TwistWithCovariance, "geometry_msgs", "TwistWithCovariance");
