//! `nav_msgs` messages.

use serde::{Deserialize, Serialize};

use crate::geometry_msgs::{PoseWithCovariance, TwistWithCovariance};
use crate::std_msgs::Header;

/// `nav_msgs/msg/Odometry`: pose in `header.frame_id`, twist in `child_frame_id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Odometry {
    /// Stamp and the frame of `pose`.
    pub header: Header,
    /// Frame of `twist`.
    pub child_frame_id: String,
    /// Estimated pose.
    pub pose: PoseWithCovariance,
    /// Estimated velocity.
    pub twist: TwistWithCovariance,
}

crate::ros_message!(Odometry, "nav_msgs", "Odometry");
