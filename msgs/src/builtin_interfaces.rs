//! `builtin_interfaces` messages.

use serde::{Deserialize, Serialize};

/// `builtin_interfaces/msg/Time`: seconds and nanoseconds (ROS time).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Time {
    /// Seconds, valid over all `int32` values.
    pub sec: i32,
    /// Nanoseconds in `[0, 1e9)`, added to `sec`.
    pub nanosec: u32,
}

impl Time {
    /// Builds a time from nanoseconds since the epoch of the clock (negative allowed).
    ///
    /// Times outside the `int32` seconds range saturate.
    pub fn from_nanos(nanos: i64) -> Self {
        let sec = nanos.div_euclid(1_000_000_000);
        let nanosec = nanos.rem_euclid(1_000_000_000) as u32;
        Time {
            sec: sec.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
            nanosec,
        }
    }

    /// Nanoseconds since the clock's epoch.
    pub fn as_nanos(&self) -> i64 {
        i64::from(self.sec) * 1_000_000_000 + i64::from(self.nanosec)
    }
}

crate::ros_message!(Time, "builtin_interfaces", "Time");
