//! QoS per bridge / topic, in the three knobs ROS 2 users set (reliability, durability, depth).

use ros2_client::dds::rustdds::QosPolicies;
use ros2_client::qos::{Durability, History, QosProfile, Reliability, WhenFull};
use serde::{Deserialize, Serialize};

/// Delivery guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReliabilityKind {
    /// Samples may be dropped (sensor data).
    BestEffort,
    /// Lost samples are retransmitted.
    Reliable,
}

/// Whether late joiners get earlier samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DurabilityKind {
    /// Only samples published while the reader exists.
    Volatile,
    /// Late joiners get the last `depth` samples (latched).
    TransientLocal,
}

/// A ROS 2 QoS profile reduced to what a bridge configures. The default is ROS 2's
/// `rmw_qos_profile_sensor_data`: best effort, volatile, keep last 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QosConfig {
    /// Reliability.
    pub reliability: ReliabilityKind,
    /// Durability.
    pub durability: DurabilityKind,
    /// History depth (keep last `depth`), at least 1.
    pub depth: u32,
}

impl Default for QosConfig {
    fn default() -> Self {
        Self::sensor_data()
    }
}

impl QosConfig {
    /// ROS 2 `rmw_qos_profile_sensor_data`: best effort, volatile, depth 5.
    pub const fn sensor_data() -> Self {
        QosConfig {
            reliability: ReliabilityKind::BestEffort,
            durability: DurabilityKind::Volatile,
            depth: 5,
        }
    }

    /// ROS 2 `rmw_qos_profile_default`: reliable, volatile, depth 10.
    pub const fn ros_default() -> Self {
        QosConfig {
            reliability: ReliabilityKind::Reliable,
            durability: DurabilityKind::Volatile,
            depth: 10,
        }
    }

    /// As a ros2-client profile.
    pub fn to_profile(&self) -> QosProfile {
        QosProfile::subscription_default()
            .reliability(match self.reliability {
                ReliabilityKind::BestEffort => Reliability::BestEffort,
                ReliabilityKind::Reliable => Reliability::Reliable {
                    when_full: WhenFull::DEFAULT,
                },
            })
            .durability(match self.durability {
                DurabilityKind::Volatile => Durability::Volatile,
                DurabilityKind::TransientLocal => Durability::TransientLocal,
            })
            .history(History::KeepLast {
                depth: self.depth.max(1) as usize,
            })
    }

    /// As RustDDS policies.
    pub fn to_dds(&self) -> QosPolicies {
        QosPolicies::from(self.to_profile())
    }
}
