//! The ROS 2 gateway of a deployment (`rtfuse ros2-gateway`, started by `rtfuse run` when the
//! config has `[[ros2.bridge]]` entries): the gateway configuration from `[ros2]`, and per bridge
//! the payload codec that matches what its channel carries ([`crate::config::channel_layout`]).
//!
//! | channel | codec | ingest (ROS → channel) | egress (channel → ROS) |
//! |---|---|---|---|
//! | a node stream, a driver's channel, the node's depth / cloud output | [`LayoutCodec`] | the message in its frame layout (`fusion::mcap_shm::write_converted`) | `fusion::layout::sample_to_ros` |
//! | the node's EKF output (typed `OdometryRecord`) | [`LayoutCodec`], opened typed | — (the node publishes it) | `fusion::layout::odometry_record_to_ros` |
//! | an `mcap-replay` driver's channel | [`LayoutCodec`] (raw CDR for `CameraInfo`, which replay stores as CDR) | — | as above |
//! | anything else | ros2-plugin's raw CDR | the complete CDR message | the complete CDR message |
//!
//! # Stamps
//! The node synchronises on sensor time (`CLOCK_MONOTONIC` ns); ROS header stamps are system
//! time. Ingest maps a header stamp onto sensor time by one offset, system − monotonic, taken
//! when the gateway starts (`ros2_plugin::codec::ClockMap`); egress maps back by the same offset.
//! Stamps keep their spacing and equal stamps stay equal; a message stamped zero (unset) gets the
//! time it was received; one stamped before this host booted is refused and counted as
//! unconvertible (an old bag played without `--clock`). The frame ids of egress messages are the
//! channel names (`fusion::layout`), "odom" / "base_link" for the EKF estimates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fusion::driver::meta::META_LEN;
use fusion::layout::{odometry_record_to_ros, sample_to_ros};
use fusion::mcap_msgs::{MessageType, RosMsg};
use fusion::mcap_shm::{payload_len, write_converted};
use fusion::node::outputs::OdometryRecord;
use ros2_plugin::codec::{ClockMap, CodecError, IngestMsg, PayloadCodec};
use ros2_plugin::gateway::{BridgeConfig, Direction, GatewayConfig};
use ros2_plugin::raw::RawCdr;
use shm_transport::{OpenError, Sample, SampleMut, Subscriber};

use crate::config::{channel_layout, BridgeDirection, ChannelLayout, Config, Ros2Bridge};

/// The gateway's configuration from `[ros2]`: QoS from each bridge, chunk geometry of ingest
/// channels from their `[[channel]]`, channel names with the segment prefix. Bridges keep their
/// order (what [`codec_chooser`] relies on).
pub fn gateway_config(cfg: &Config, prefix: &str) -> GatewayConfig {
    use crate::config::{Durability, Reliability};
    use ros2_plugin::qos::{DurabilityKind, QosConfig, ReliabilityKind};
    let r = &cfg.deployment.ros2;
    GatewayConfig {
        domain_id: r
            .domain_id
            .as_ref()
            .map(|d| u16::try_from(*d.get_ref()).unwrap_or(u16::MAX)),
        bridges: r
            .bridges
            .iter()
            .map(|b| {
                let ch = cfg.channel(b.channel.get_ref());
                BridgeConfig {
                    direction: match b.direction {
                        BridgeDirection::Ingest => Direction::Ingest,
                        BridgeDirection::Egress => Direction::Egress,
                    },
                    ros_topic: b.topic.get_ref().clone(),
                    ros_type: b.msg_type.get_ref().clone(),
                    channel: format!("{prefix}{}", b.channel.get_ref()),
                    qos: QosConfig {
                        reliability: match b.reliability {
                            Reliability::BestEffort => ReliabilityKind::BestEffort,
                            Reliability::Reliable => ReliabilityKind::Reliable,
                        },
                        durability: match b.durability {
                            Durability::Volatile => DurabilityKind::Volatile,
                            Durability::TransientLocal => DurabilityKind::TransientLocal,
                        },
                        depth: b.depth,
                    },
                    chunk_size: ch.map_or(4 << 20, |c| {
                        usize::try_from(c.chunk_size.get_ref().bytes()).unwrap_or(usize::MAX)
                    }),
                    chunk_count: ch.map_or(8, |c| *c.chunk_count.get_ref()),
                    // The declared channel as a whole: ring depth, overflow, wake-up, memory lock.
                    geometry: ch.map(crate::config::channel_config),
                }
            })
            .collect(),
    }
}

/// The codec of `bridge` (see the module doc): `None` where the channel carries complete CDR
/// (the gateway's default).
pub fn codec_for(cfg: &Config, bridge: &Ros2Bridge) -> Option<Arc<dyn PayloadCodec>> {
    let ty = MessageType::from_schema_name(bridge.msg_type.get_ref())?;
    let channel = bridge.channel.get_ref();
    let codec = match (bridge.direction, channel_layout(&cfg.deployment, channel)) {
        (_, ChannelLayout::Frames { .. }) => LayoutCodec::frames(ty, channel),
        (BridgeDirection::Egress, ChannelLayout::FramesOfFile { .. })
            if ty != MessageType::CameraInfo =>
        {
            LayoutCodec::frames(ty, channel)
        }
        (BridgeDirection::Egress, ChannelLayout::OdometryRecord) => LayoutCodec::odometry_record(),
        _ => return None,
    };
    Some(Arc::new(codec))
}

/// The codec chooser for `ros2_plugin::gateway::Gateway::start_with_codecs` over
/// [`gateway_config`]`(cfg, …)`: bridge `i` of the gateway is bridge `i` of the config.
///
/// # Examples
/// ```no_run
/// use launch::config::Config;
/// use launch::ros2_bridge::{codec_chooser, gateway_config};
/// let cfg = Config::load(Some(std::path::Path::new("examples/ros2-bridge.toml")))?;
/// let gw = ros2_plugin::gateway::Gateway::start_with_codecs(
///     &gateway_config(&cfg, ""),
///     codec_chooser(&cfg),
/// )?;
/// println!("{:?}", gw.stop()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn codec_chooser(
    cfg: &Config,
) -> impl FnMut(usize, &BridgeConfig) -> Option<Arc<dyn PayloadCodec>> + '_ {
    move |i, _| {
        cfg.deployment
            .ros2
            .bridges
            .get(i)
            .and_then(|b| codec_for(cfg, b))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `fusion::driver::meta` frames (with `FrameMeta` in the user header).
    Frames,
    /// A typed channel of `OdometryRecord`.
    OdometryRecord,
}

/// The codec of a bridge whose channel holds rtfuse's layouts rather than CDR.
#[derive(Debug)]
pub struct LayoutCodec {
    ty: MessageType,
    target: Target,
    frame_id: String,
    /// Ingest: the frame counter written into each `FrameMeta` (what a driver's counter is).
    frames: AtomicU64,
}

impl LayoutCodec {
    /// A codec between messages of type `ty` and frames in `fusion::driver::meta` layouts on
    /// channel `channel` (the frame id of egress messages).
    pub fn frames(ty: MessageType, channel: &str) -> LayoutCodec {
        LayoutCodec {
            ty,
            target: Target::Frames,
            frame_id: channel.to_owned(),
            frames: AtomicU64::new(0),
        }
    }

    /// A codec from the node's typed `OdometryRecord` channel to `nav_msgs/msg/Odometry`
    /// (egress only).
    pub fn odometry_record() -> LayoutCodec {
        LayoutCodec {
            ty: MessageType::Odometry,
            target: Target::OdometryRecord,
            frame_id: "odom".into(),
            frames: AtomicU64::new(0),
        }
    }
}

fn malformed(e: impl std::fmt::Display) -> CodecError {
    CodecError::Malformed(e.to_string())
}

/// The serialized form of a decoded message.
fn to_raw(m: &RosMsg) -> Result<RawCdr, CodecError> {
    match m {
        RosMsg::Image(x) => RawCdr::encode(x),
        RosMsg::PointCloud2(x) => RawCdr::encode(x),
        RosMsg::Imu(x) => RawCdr::encode(x),
        RosMsg::CameraInfo(x) => RawCdr::encode(x),
        RosMsg::Odometry(x) => RawCdr::encode(x.as_ref()),
    }
    .map_err(|e| CodecError::Unconvertible(e.to_string()))
}

impl PayloadCodec for LayoutCodec {
    fn name(&self) -> &str {
        match self.target {
            Target::Frames => "layout",
            Target::OdometryRecord => "odometry-record",
        }
    }

    fn user_header_size(&self) -> usize {
        META_LEN
    }

    fn ingest(&self, msg: &IngestMsg<'_>, chunk: &mut SampleMut<'_>) -> Result<usize, CodecError> {
        if self.target != Target::Frames {
            return Err(CodecError::Unconvertible(
                "the node's odometry output takes no ingest".into(),
            ));
        }
        let m = RosMsg::decode(self.ty, msg.cdr).map_err(malformed)?;
        m.validate().map_err(malformed)?;
        let need = payload_len(&m, msg.cdr.len());
        let have = chunk.payload_mut().len();
        if need > have {
            return Err(CodecError::Oversize { need, have });
        }
        let stamp = m.stamp_ns();
        let t_sensor = if stamp == 0 {
            msg.received_ns
        } else {
            msg.clock.to_monotonic(stamp).ok_or_else(|| {
                CodecError::Unconvertible(format!(
                    "header stamp {stamp} ns is before this host booted (system − monotonic = {} ns)",
                    msg.clock.offset_ns()
                ))
            })?
        };
        let frame = self.frames.fetch_add(1, Ordering::Relaxed);
        write_converted(chunk, &m, msg.cdr, frame, t_sensor)
            .map_err(|e| CodecError::Unconvertible(e.to_string()))
    }

    fn open(&self, channel: &str) -> Result<Subscriber, OpenError> {
        match self.target {
            Target::Frames => Subscriber::open(channel),
            Target::OdometryRecord => Subscriber::open_typed::<OdometryRecord>(channel),
        }
    }

    fn egress(&self, sample: &Sample, clock: ClockMap) -> Result<RawCdr, CodecError> {
        let stamp = clock.to_system(sample.sensor_time());
        let m = match self.target {
            Target::OdometryRecord => {
                let r = sample.read::<OdometryRecord>().map_err(malformed)?;
                RosMsg::Odometry(Box::new(odometry_record_to_ros(&r, stamp)))
            }
            Target::Frames => sample_to_ros(
                sample.payload(),
                sample.user_header(),
                sample.user(),
                stamp,
                &self.frame_id,
            )
            .map_err(malformed)?,
        };
        if m.message_type() != self.ty {
            return Err(CodecError::Unconvertible(format!(
                "a {} sample cannot go out as {}",
                m.message_type(),
                self.ty
            )));
        }
        to_raw(&m)
    }
}
