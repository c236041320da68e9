//! `std_msgs` messages.

use serde::{Deserialize, Serialize};

use crate::builtin_interfaces::Time;

/// `std_msgs/msg/Header`: time stamp and coordinate frame of stamped data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Header {
    /// Acquisition time of the data.
    pub stamp: Time,
    /// Coordinate frame the data is expressed in.
    pub frame_id: String,
}

crate::ros_message!(Header, "std_msgs", "Header");
