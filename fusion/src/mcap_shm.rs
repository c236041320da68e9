//! MCAP replay into shared-memory channels: a [`ReplaySink`] that publishes each replayed message
//! in the channel layouts of [`crate::driver::meta`], so the fusion node consumes a recording
//! exactly as it consumes live drivers.
//!
//! | ROS type | channel payload | user header |
//! |---|---|---|
//! | `Image` rgb8 / bgr8 / mono8 | rows without padding | [`FrameMeta::camera`] |
//! | `PointCloud2` with float32 x, y, z | x, y, z, intensity float32 (intensity 0 if absent) | [`FrameMeta::lidar`] |
//! | `Imu` | [`meta::encode_imu`] | [`FrameMeta::fixed`] (IMU) |
//! | `Odometry` | [`meta::encode_odometry`] | [`FrameMeta::fixed`] (odometry) |
//! | `CameraInfo` | the raw CDR message (decode with `rtfuse_msgs::cdr`) | none; user word 0 |
//!
//! Sensor time: the header stamp moved onto `CLOCK_MONOTONIC` by one offset fixed at the first
//! message (so rates and relative times are kept and the stamps are comparable with live
//! drivers). Channels are created up front from a first pass over the file ([`plan_channels`])
//! with chunks sized for the largest message of each topic. A message that cannot be converted
//! (another image encoding, a cloud without float32 x, y, z, no free chunk) is an error the
//! replay counts and reports.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::AtomicBool;

use shm_transport::{ChannelConfig, CreateError, Publisher, SampleMut};

use crate::driver::meta::{self, FrameMeta, StreamKind, META_LEN};
use crate::driver::synthetic::ChannelParams;
use crate::mcap_msgs::{datatype_size, MessageType, RosMsg};
use crate::mcap_replay::{
    replay_bytes_with, Pace, ReplayError, ReplayOptions, ReplaySink, ReplayedMessage,
};
use crate::rt::now_ns;
use crate::synth::{ImuSample, OdometrySample, PixelEncoding};

/// A channel to create for one topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelPlan {
    /// The MCAP topic.
    pub topic: String,
    /// Its message type.
    pub ty: MessageType,
    /// Largest payload the channel must carry, in bytes.
    pub max_payload: usize,
    /// Messages on the topic.
    pub messages: u64,
    /// Log time of its first message (ns).
    pub first_log_time: u64,
    /// Log time of its last message (ns).
    pub last_log_time: u64,
}

impl ChannelPlan {
    /// Mean message rate over the topic's span (None with fewer than two messages).
    pub fn rate_hz(&self) -> Option<f64> {
        let span = self.last_log_time.saturating_sub(self.first_log_time);
        (self.messages >= 2 && span > 0).then(|| (self.messages - 1) as f64 * 1e9 / span as f64)
    }
}

#[derive(Default)]
struct Sizing(HashMap<String, ChannelPlan>);

impl ReplaySink for Sizing {
    type Error = std::convert::Infallible;
    fn deliver(&mut self, m: &ReplayedMessage<'_>) -> Result<(), Self::Error> {
        let len = payload_len(m.msg, m.cdr.len());
        let ty = m.msg.message_type();
        let plan = self
            .0
            .entry(m.topic.to_owned())
            .or_insert_with(|| ChannelPlan {
                topic: m.topic.to_owned(),
                ty,
                max_payload: 0,
                messages: 0,
                first_log_time: m.log_time,
                last_log_time: m.log_time,
            });
        plan.max_payload = plan.max_payload.max(len);
        plan.messages += 1;
        plan.first_log_time = plan.first_log_time.min(m.log_time);
        plan.last_log_time = plan.last_log_time.max(m.log_time);
        Ok(())
    }
}

/// Channel payload bytes of `msg` in its layout (what [`write_converted`] writes); `cdr_len`
/// is the length of its serialized form (the payload of `CameraInfo`). `msg` must have passed
/// [`RosMsg::validate`].
///
/// # Examples
/// ```
/// use fusion::mcap_msgs::RosMsg;
/// use rtfuse_msgs::sensor_msgs::Imu;
/// let len = fusion::mcap_shm::payload_len(&RosMsg::Imu(Imu::default()), 300);
/// assert_eq!(len, fusion::driver::meta::IMU_PAYLOAD_LEN);
/// ```
pub fn payload_len(msg: &RosMsg, cdr_len: usize) -> usize {
    match msg {
        RosMsg::Image(i) => i.data.len(),
        RosMsg::PointCloud2(c) => (c.width as usize)
            .saturating_mul(c.height as usize)
            .saturating_mul(16),
        RosMsg::Imu(_) => meta::IMU_PAYLOAD_LEN,
        RosMsg::Odometry(_) => meta::ODOM_PAYLOAD_LEN,
        RosMsg::CameraInfo(_) => cdr_len,
    }
}

/// First pass: the topics of a file that replay can deliver, with their largest payloads.
///
/// # Errors
/// See [`crate::mcap_replay::replay_bytes`].
pub fn plan_channels(buf: &[u8]) -> Result<Vec<ChannelPlan>, ReplayError> {
    plan_topic(buf, None)
}

/// First pass over one topic (every topic with `None`); the others are not decoded.
///
/// # Errors
/// See [`crate::mcap_replay::replay_bytes`].
pub fn plan_topic(buf: &[u8], topic: Option<&str>) -> Result<Vec<ChannelPlan>, ReplayError> {
    let mut s = Sizing::default();
    let opts = ReplayOptions {
        topic: topic.map(str::to_owned),
        ..ReplayOptions::new(Pace::AsFastAsPossible)
    };
    replay_bytes_with(buf, &opts, &mut s, &AtomicBool::new(false))?;
    let mut v: Vec<_> = s.0.into_values().collect();
    v.sort_by(|a, b| a.topic.cmp(&b.topic));
    Ok(v)
}

/// The channel name of a topic: `prefix` + the topic with `/` turned into `.`
/// (`/camera/image_raw` → `<prefix>camera.image_raw`).
pub fn channel_name(prefix: &str, topic: &str) -> String {
    format!("{prefix}{}", topic.trim_matches('/').replace('/', "."))
}

/// Why a message was not published.
#[derive(Debug)]
#[non_exhaustive]
pub enum ShmSinkError {
    /// The topic has no channel (it was not in the plan).
    NoChannel(String),
    /// The message cannot be put in the channel layout.
    Unconvertible(String),
    /// No free chunk, or the message does not fit one.
    Loan(String),
    /// The frame metadata could not be written.
    Meta(meta::MetaError),
}

impl std::error::Error for ShmSinkError {}

impl fmt::Display for ShmSinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoChannel(t) => write!(f, "no shm channel for topic {t}"),
            Self::Unconvertible(w) => write!(f, "cannot publish into the channel layout: {w}"),
            Self::Loan(w) => write!(f, "shm channel: {w}"),
            Self::Meta(e) => write!(f, "frame metadata: {e}"),
        }
    }
}

/// Publishes replayed messages into shared-memory channels.
pub struct ShmSink {
    publishers: HashMap<String, (Publisher, MessageType, u64)>,
    offset_ns: Option<i128>,
}

impl ShmSink {
    /// Creates one channel per planned topic, named by [`channel_name`], with chunks of at least
    /// `max_payload` bytes and the shape `params`.
    ///
    /// # Errors
    /// A channel could not be created (name taken, no shared memory, …).
    pub fn create(
        plans: &[ChannelPlan],
        prefix: &str,
        params: ChannelParams,
    ) -> Result<Self, CreateError> {
        let mut publishers = HashMap::new();
        for p in plans {
            let cfg = ChannelConfig {
                chunk_size: p.max_payload.max(64),
                chunk_count: params.chunk_count,
                ring_depth: params.ring_depth,
                max_subscribers: params.max_subscribers,
                user_header_size: META_LEN,
                wakeup: params.wakeup,
                ..ChannelConfig::default()
            };
            let publisher = Publisher::create(&channel_name(prefix, &p.topic), &cfg)?;
            publishers.insert(p.topic.clone(), (publisher, p.ty, 0));
        }
        Ok(Self {
            publishers,
            offset_ns: None,
        })
    }
}

/// Writes `msg` into `payload`; returns its length and metadata (None: raw CDR, no metadata).
fn convert(
    msg: &RosMsg,
    cdr: &[u8],
    t_s: f64,
    frame: u64,
    payload: &mut [u8],
) -> Result<(usize, Option<FrameMeta>), ShmSinkError> {
    let fits = |n: usize| {
        if n <= payload.len() {
            Ok(())
        } else {
            Err(ShmSinkError::Loan(format!(
                "{n} bytes do not fit a {}-byte chunk",
                payload.len()
            )))
        }
    };
    match msg {
        RosMsg::Image(img) => {
            let enc = match img.encoding.as_str() {
                "rgb8" => PixelEncoding::Rgb8,
                "bgr8" => PixelEncoding::Bgr8,
                "mono8" => PixelEncoding::Mono8,
                e => return Err(ShmSinkError::Unconvertible(format!("image encoding {e}"))),
            };
            let row = img.width as usize * enc.bytes_per_pixel();
            fits(row * img.height as usize)?;
            if row > 0 {
                let rows = payload.chunks_exact_mut(row).take(img.height as usize);
                for (r, dst) in rows.enumerate() {
                    let src = r * img.step as usize;
                    let line = img.data.get(src..src + row).ok_or_else(|| {
                        ShmSinkError::Unconvertible(format!("image row {r} past the data"))
                    })?;
                    dst.copy_from_slice(line);
                }
            }
            Ok((
                row * img.height as usize,
                Some(FrameMeta::camera(img.width, img.height, enc, frame)),
            ))
        }
        RosMsg::PointCloud2(pc) => {
            let field = |n: &str| pc.fields.iter().find(|f| f.name == n);
            let mut xyz = [0usize; 3];
            for (o, n) in xyz.iter_mut().zip(["x", "y", "z"]) {
                match field(n) {
                    Some(f) if f.datatype == 7 => *o = f.offset as usize,
                    _ => {
                        return Err(ShmSinkError::Unconvertible(format!(
                            "cloud without float32 {n}"
                        )))
                    }
                }
            }
            let intensity = field("intensity").filter(|f| datatype_size(f.datatype).is_some());
            let n = pc.width as usize * pc.height as usize;
            fits(n * 16)?;
            let (ps, rs, w) = (
                pc.point_step as usize,
                pc.row_step as usize,
                pc.width.max(1) as usize,
            );
            for (i, dst) in payload.chunks_exact_mut(16).take(n).enumerate() {
                let base = (i / w) * rs + (i % w) * ps;
                for (k, off) in xyz.iter().enumerate() {
                    let v = read_f32(&pc.data, base + off, 7, pc.is_bigendian);
                    dst[4 * k..4 * k + 4].copy_from_slice(&v.to_le_bytes());
                }
                let inten = intensity.map_or(0.0, |f| {
                    read_f32(
                        &pc.data,
                        base + f.offset as usize,
                        f.datatype,
                        pc.is_bigendian,
                    )
                });
                dst[12..16].copy_from_slice(&inten.to_le_bytes());
            }
            let points = u32::try_from(n).unwrap_or(u32::MAX);
            Ok((n * 16, Some(FrameMeta::lidar(points, frame))))
        }
        RosMsg::Imu(m) => {
            let (w, a, q) = (&m.angular_velocity, &m.linear_acceleration, &m.orientation);
            let s = ImuSample {
                t: t_s,
                angular_velocity: [w.x, w.y, w.z],
                linear_acceleration: [a.x, a.y, a.z],
                orientation: [q.x, q.y, q.z, q.w],
            };
            let len = meta::encode_imu(&s, payload).map_err(ShmSinkError::Meta)?;
            Ok((len, Some(FrameMeta::fixed(StreamKind::Imu, frame))))
        }
        RosMsg::Odometry(m) => {
            let (p, q) = (&m.pose.pose.position, &m.pose.pose.orientation);
            let (v, w) = (&m.twist.twist.linear, &m.twist.twist.angular);
            let yaw = (2.0 * (q.w * q.z + q.x * q.y)).atan2(1.0 - 2.0 * (q.y * q.y + q.z * q.z));
            let s = OdometrySample {
                t: t_s,
                position: [p.x, p.y, p.z],
                yaw,
                orientation: [q.x, q.y, q.z, q.w],
                linear_velocity: [v.x, v.y, v.z],
                angular_velocity: [w.x, w.y, w.z],
            };
            let len = meta::encode_odometry(&s, payload).map_err(ShmSinkError::Meta)?;
            Ok((len, Some(FrameMeta::fixed(StreamKind::Odometry, frame))))
        }
        RosMsg::CameraInfo(_) => {
            fits(cdr.len())?;
            payload[..cdr.len()].copy_from_slice(cdr);
            Ok((cdr.len(), None))
        }
    }
}

/// Reads one element of a validated cloud as f32 (0 if out of range; the layout was checked).
fn read_f32(data: &[u8], at: usize, datatype: u8, big_endian: bool) -> f32 {
    let size = datatype_size(datatype).unwrap_or(4) as usize;
    let Some(b) = data.get(at..at + size) else {
        return 0.0;
    };
    let mut a = [0u8; 8];
    a[..size].copy_from_slice(b);
    if big_endian {
        a[..size].reverse();
    }
    match datatype {
        1 => f32::from(a[0] as i8),
        2 => f32::from(a[0]),
        3 => f32::from(i16::from_le_bytes([a[0], a[1]])),
        4 => f32::from(u16::from_le_bytes([a[0], a[1]])),
        5 => i32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f32,
        6 => u32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f32,
        8 => f64::from_le_bytes(a) as f32,
        _ => f32::from_le_bytes([a[0], a[1], a[2], a[3]]),
    }
}

/// Converts `m` into `publisher`'s channel layout and publishes it with sensor time `t_sensor`.
pub(crate) fn publish_converted(
    publisher: &mut Publisher,
    frame: u64,
    m: &ReplayedMessage<'_>,
    t_sensor: u64,
) -> Result<(), ShmSinkError> {
    let mut sample = publisher
        .loan()
        .map_err(|e| ShmSinkError::Loan(e.to_string()))?;
    write_converted(&mut sample, m.msg, m.cdr, frame, t_sensor)?;
    sample
        .publish()
        .map(drop)
        .map_err(|e| ShmSinkError::Loan(e.to_string()))
}

/// Writes `msg` into a loaned chunk in the channel layout of its type (see the module doc):
/// payload, [`FrameMeta`] in the user header (with the driver frame counter `frame`), length,
/// user word ([`StreamKind::user_word`]; 0 for raw CDR), sensor time `t_sensor`
/// (`CLOCK_MONOTONIC` ns) and DMA time now. `cdr` is the serialized message (kept as is for
/// `CameraInfo`). Returns the payload length; the caller publishes the chunk. This is what MCAP
/// replay publishes and what a ROS 2 ingest bridge into a node stream writes.
///
/// `msg` must have passed [`RosMsg::validate`] (a message that did not is refused or read as
/// zeros, never out of bounds).
///
/// # Errors
/// [`ShmSinkError::Unconvertible`] (an image encoding other than rgb8, bgr8, mono8; a cloud
/// without float32 x, y, z), [`ShmSinkError::Loan`] when it does not fit the chunk,
/// [`ShmSinkError::Meta`] when the chunk's user header is shorter than
/// [`META_LEN`].
///
/// # Examples
/// ```no_run
/// use fusion::driver::meta::META_LEN;
/// use fusion::mcap_msgs::RosMsg;
/// use fusion::mcap_shm::write_converted;
/// use rtfuse_msgs::sensor_msgs::Imu;
/// use shm_transport::{ChannelConfig, Publisher};
/// let cfg = ChannelConfig { chunk_size: 4096, user_header_size: META_LEN, ..Default::default() };
/// let mut publisher = Publisher::create("imu", &cfg)?;
/// let mut chunk = publisher.loan()?;
/// let imu = RosMsg::Imu(Imu::default());
/// let len = write_converted(&mut chunk, &imu, &[], 0, shm_transport::now_ns())?;
/// assert_eq!(len, fusion::driver::meta::IMU_PAYLOAD_LEN);
/// chunk.publish().map_err(|e| e.to_string())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_converted(
    sample: &mut SampleMut<'_>,
    msg: &RosMsg,
    cdr: &[u8],
    frame: u64,
    t_sensor: u64,
) -> Result<usize, ShmSinkError> {
    let (len, fm) = convert(
        msg,
        cdr,
        t_sensor as f64 * 1e-9,
        frame,
        sample.payload_mut(),
    )?;
    let user = match fm {
        Some(fm) => {
            fm.encode(sample.user_header_mut())
                .map_err(ShmSinkError::Meta)?;
            stream_kind(msg.message_type()).map_or(0, StreamKind::user_word)
        }
        None => 0,
    };
    sample.set_len(len);
    sample.set_sensor_time(t_sensor);
    sample.set_dma_time(now_ns());
    sample.set_user(user);
    Ok(len)
}

/// The node stream a message type becomes (`CameraInfo` is not a stream).
pub fn stream_kind(ty: MessageType) -> Option<StreamKind> {
    match ty {
        MessageType::Image => Some(StreamKind::Camera),
        MessageType::PointCloud2 => Some(StreamKind::Lidar),
        MessageType::Imu => Some(StreamKind::Imu),
        MessageType::Odometry => Some(StreamKind::Odometry),
        MessageType::CameraInfo => None,
    }
}

impl ReplaySink for ShmSink {
    type Error = ShmSinkError;

    fn deliver(&mut self, m: &ReplayedMessage<'_>) -> Result<(), ShmSinkError> {
        let stamp = i128::from(m.msg.stamp_ns());
        let offset = *self.offset_ns.get_or_insert(i128::from(now_ns()) - stamp);
        let t_sensor = u64::try_from((stamp + offset).max(0)).unwrap_or(0);
        let (publisher, _, frame) = self
            .publishers
            .get_mut(m.topic)
            .ok_or_else(|| ShmSinkError::NoChannel(m.topic.to_owned()))?;
        publish_converted(publisher, *frame, m, t_sensor)?;
        *frame += 1;
        Ok(())
    }
}
