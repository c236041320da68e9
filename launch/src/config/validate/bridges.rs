//! What a bridged channel carries, and the checks of `[[ros2.bridge]]` against it.
//!
//! A channel a driver publishes, one of the fusion node's streams and the node's outputs hold
//! samples in rtfuse's frame layouts (`fusion::driver::meta`, `fusion::node::outputs`); a bridge
//! of such a channel converts between them and the ROS 2 message, so its type must be the one
//! the layout stands for. Any other channel carries complete CDR messages (ros2-plugin's
//! gateway format) of whatever type the bridge names.

use super::{channel_ref, node_outputs, Checker};
use crate::config::schema::{BridgeDirection, Channel, Deployment, DriverKind, Ros2Bridge};
use fusion::driver::meta::{StreamKind, IMU_PAYLOAD_LEN, ODOM_PAYLOAD_LEN};
use serde_spanned::Spanned;
use std::collections::BTreeMap;

/// The ROS 2 types a bridge may name.
pub const BRIDGE_TYPES: [&str; 5] = [
    "sensor_msgs/msg/Image",
    "sensor_msgs/msg/PointCloud2",
    "sensor_msgs/msg/Imu",
    "sensor_msgs/msg/CameraInfo",
    "nav_msgs/msg/Odometry",
];

/// What a channel carries, as far as the deployment tells.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelLayout {
    /// Samples in the frame layout of `kind`, for the reason `role` (e.g. "driver `imu`",
    /// "node.projection.output").
    Frames {
        /// The stream kind.
        kind: StreamKind,
        /// Who writes or reads it in that layout, for messages.
        role: String,
    },
    /// Samples in a frame layout whose kind only the replayed file tells (an `mcap-replay`
    /// driver; `CameraInfo` it publishes as complete CDR).
    FramesOfFile {
        /// The driver, for messages.
        driver: String,
    },
    /// The node's EKF estimates: a typed channel of `fusion::node::outputs::OdometryRecord`.
    OdometryRecord,
    /// Nothing in the deployment gives it a layout: complete CDR messages.
    RawCdr,
}

/// The stream kind a ROS 2 type becomes in a node stream (`None`: not a stream type).
pub fn stream_kind_of_type(ros_type: &str) -> Option<StreamKind> {
    match ros_type {
        "sensor_msgs/msg/Image" => Some(StreamKind::Camera),
        "sensor_msgs/msg/PointCloud2" => Some(StreamKind::Lidar),
        "sensor_msgs/msg/Imu" => Some(StreamKind::Imu),
        "nav_msgs/msg/Odometry" => Some(StreamKind::Odometry),
        _ => None,
    }
}

/// The ROS 2 type of a stream kind (depth images are `Image` too).
pub fn ros_type_of_kind(kind: StreamKind) -> &'static str {
    match kind {
        StreamKind::Camera | StreamKind::Depth => "sensor_msgs/msg/Image",
        StreamKind::Lidar => "sensor_msgs/msg/PointCloud2",
        StreamKind::Imu => "sensor_msgs/msg/Imu",
        _ => "nav_msgs/msg/Odometry",
    }
}

/// The kind a node stream must have for the role the node gives it (projection camera, …).
fn stream_role(dep: &Deployment, channel: &str) -> Option<(StreamKind, &'static str)> {
    let n = &dep.node;
    let is = |s: &Spanned<String>| s.get_ref() == channel;
    if let Some(p) = &n.projection {
        if is(&p.camera) {
            return Some((StreamKind::Camera, "node.projection.camera"));
        }
        if is(&p.lidar) {
            return Some((StreamKind::Lidar, "node.projection.lidar"));
        }
    }
    if let Some(e) = &n.ekf {
        if is(&e.imu) {
            return Some((StreamKind::Imu, "node.ekf.imu"));
        }
        if is(&e.odometry) {
            return Some((StreamKind::Odometry, "node.ekf.odometry"));
        }
    }
    None
}

/// What `channel` carries in `dep` (see [`ChannelLayout`]).
pub fn channel_layout(dep: &Deployment, channel: &str) -> ChannelLayout {
    let frames = |kind, role: String| ChannelLayout::Frames { kind, role };
    if let Some(d) = dep.drivers.iter().find(|d| d.channel.get_ref() == channel) {
        let role = format!("driver `{}`", d.name.get_ref());
        return match *d.kind.get_ref() {
            DriverKind::SyntheticCamera => frames(StreamKind::Camera, role),
            DriverKind::SyntheticLidar | DriverKind::Vlp16Udp => frames(StreamKind::Lidar, role),
            DriverKind::SyntheticImu => frames(StreamKind::Imu, role),
            DriverKind::SyntheticOdometry => frames(StreamKind::Odometry, role),
            DriverKind::McapReplay => ChannelLayout::FramesOfFile {
                driver: d.name.get_ref().clone(),
            },
        };
    }
    let n = &dep.node;
    let is = |o: &Option<Spanned<String>>| o.as_ref().is_some_and(|o| o.get_ref() == channel);
    if let Some(p) = &n.projection {
        if is(&p.output) {
            return frames(StreamKind::Depth, "node.projection.output".into());
        }
        if is(&p.cloud_output) {
            return frames(StreamKind::Lidar, "node.projection.cloud_output".into());
        }
    }
    if n.ekf.as_ref().is_some_and(|e| is(&e.output)) {
        return ChannelLayout::OdometryRecord;
    }
    if n.streams.iter().any(|s| s.get_ref() == channel) {
        if let Some((kind, role)) = stream_role(dep, channel) {
            return frames(kind, role.into());
        }
        // A stream without a role: the ingest bridge that feeds it says what it is.
        let fed = dep
            .ros2
            .bridges
            .iter()
            .find(|b| b.direction == BridgeDirection::Ingest && b.channel.get_ref() == channel);
        if let Some(kind) = fed.and_then(|b| stream_kind_of_type(b.msg_type.get_ref())) {
            return frames(kind, "node.streams".into());
        }
    }
    ChannelLayout::RawCdr
}

fn is_node_output(dep: &Deployment, channel: &str) -> bool {
    node_outputs(dep)
        .iter()
        .any(|(o, _)| o.get_ref() == channel)
}

/// Checks every `[[ros2.bridge]]`: references, names, types against what the channel carries,
/// one publisher per channel, one bridge per channel.
pub(super) fn check_bridges(
    c: &mut Checker,
    dep: &Deployment,
    channels: &BTreeMap<&str, &Channel>,
    publisher: &BTreeMap<&str, &str>,
) {
    for (i, b) in dep.ros2.bridges.iter().enumerate() {
        channel_ref(c, channels, &b.channel, "ros2 bridge");
        if !b.topic.get_ref().starts_with('/') {
            c.at(
                &b.topic,
                format!(
                    "expected a ROS 2 topic starting with '/', found `{}`",
                    b.topic.get_ref()
                ),
            );
        }
        if !BRIDGE_TYPES.contains(&b.msg_type.get_ref().as_str()) {
            c.at(
                &b.msg_type,
                format!(
                    "expected one of {}, found `{}`",
                    BRIDGE_TYPES.join(", "),
                    b.msg_type.get_ref()
                ),
            );
            continue;
        }
        for other in &dep.ros2.bridges[..i] {
            if other.channel.get_ref() == b.channel.get_ref() {
                c.at(
                    &b.channel,
                    format!(
                        "channel `{}` is already bridged (to {}); a channel has one bridge",
                        b.channel.get_ref(),
                        other.topic.get_ref()
                    ),
                );
            } else if other.direction == b.direction && other.topic.get_ref() == b.topic.get_ref() {
                c.at(
                    &b.topic,
                    format!(
                        "topic {} is already bridged in this direction (channel `{}`)",
                        b.topic.get_ref(),
                        other.channel.get_ref()
                    ),
                );
            }
        }
        match b.direction {
            BridgeDirection::Ingest => check_ingest(c, dep, channels, publisher, b),
            BridgeDirection::Egress => check_egress(c, dep, b),
        }
    }
}

fn check_ingest(
    c: &mut Checker,
    dep: &Deployment,
    channels: &BTreeMap<&str, &Channel>,
    publisher: &BTreeMap<&str, &str>,
    b: &Ros2Bridge,
) {
    let ch = b.channel.get_ref().as_str();
    if let Some(d) = publisher.get(ch) {
        c.at(
            &b.channel,
            format!("ingest channel `{ch}` is already published by driver `{d}`"),
        );
        return;
    }
    if is_node_output(dep, ch) {
        c.at(
            &b.channel,
            format!("ingest channel `{ch}` is a node output, published by the node; a channel has one publisher"),
        );
        return;
    }
    let ty = b.msg_type.get_ref().as_str();
    if !dep.node.streams.iter().any(|s| s.get_ref() == ch) {
        return; // Complete CDR for whoever reads it.
    }
    let Some(kind) = stream_kind_of_type(ty) else {
        c.at(
            &b.msg_type,
            format!(
                "ingest into node stream `{ch}` needs a sensor type (sensor_msgs/msg/Image, \
                 sensor_msgs/msg/PointCloud2, sensor_msgs/msg/Imu or nav_msgs/msg/Odometry), found `{ty}`"
            ),
        );
        return;
    };
    if let Some((want, role)) = stream_role(dep, ch) {
        if want != kind {
            c.at(
                &b.msg_type,
                format!(
                    "node stream `{ch}` is {role} ({want} samples): expected type {}, found `{ty}`",
                    ros_type_of_kind(want)
                ),
            );
            return;
        }
    }
    let need = match kind {
        StreamKind::Imu => Some((IMU_PAYLOAD_LEN, "an IMU sample")),
        StreamKind::Odometry => Some((ODOM_PAYLOAD_LEN, "an odometry sample")),
        _ => None,
    };
    if let (Some((need, what)), Some(channel)) = (need, channels.get(ch)) {
        let have = channel.chunk_size.get_ref().bytes();
        if have < need as u64 {
            c.at(
                &channel.chunk_size,
                format!(
                    "chunk_size {} of channel `{ch}` is too small for {what} from ros2 bridge {}: expected at least {need} bytes",
                    channel.chunk_size.get_ref(),
                    b.topic.get_ref()
                ),
            );
        }
    }
}

fn check_egress(c: &mut Checker, dep: &Deployment, b: &Ros2Bridge) {
    let ch = b.channel.get_ref().as_str();
    let ty = b.msg_type.get_ref().as_str();
    let (want, what) = match channel_layout(dep, ch) {
        ChannelLayout::Frames { kind, role } => {
            (ros_type_of_kind(kind), format!("{kind} samples of {role}"))
        }
        ChannelLayout::OdometryRecord => (
            "nav_msgs/msg/Odometry",
            "the EKF estimates of node.ekf.output".to_string(),
        ),
        // The file decides; the gateway counts samples of another type as unconvertible.
        ChannelLayout::FramesOfFile { .. } | ChannelLayout::RawCdr => return,
    };
    if ty != want {
        c.at(
            &b.msg_type,
            format!("channel `{ch}` carries {what}: expected type {want}, found `{ty}`"),
        );
    }
}
