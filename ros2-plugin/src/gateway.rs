//! The gateway: ROS 2 topics into rtfuse channels (ingest) and rtfuse channels out to ROS 2
//! topics (egress).
//!
//! # Payload format in a channel
//! By default ([`RawCdrCodec`]) one chunk holds one **complete serialized ROS 2 message: the
//! 4-byte CDR encapsulation header followed by the CDR body**, byte for byte as it crossed the
//! wire (ingest) or as it will (egress). The descriptor's `user` word carries the DDS sequence
//! number of the sample (ingest) and `sensor_time` the time the gateway received it
//! (`CLOCK_MONOTONIC` ns). A consumer decodes with `rtfuse_msgs::cdr::decode::<T>(sample.payload())`,
//! or hands the bytes on unchanged (MCAP `cdr` message encoding is the same format). Keeping CDR
//! rather than a Rust layout means no re-encoding on either side and no unsafe casts of shared
//! memory.
//!
//! A bridge whose channel uses another layout gets its own [`PayloadCodec`] through
//! [`Gateway::start_with_codecs`] (rtfuse's launcher does this for the fusion node's streams and
//! outputs and for driver channels); header stamps then map onto sensor times by the gateway's
//! [`ClockMap`] (see [`crate::codec`]).
//!
//! Every payload is validated before it is forwarded (both directions): malformed CDR, samples
//! the codec cannot convert, oversize messages, a channel publisher that vanishes and QoS
//! mismatches are counted in [`BridgeStats`] and logged, never a panic.
//!
//! One thread per bridge; [`run`] returns when `stop` is set.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ros2_client::dds::rustdds::DomainParticipant;
use serde::{Deserialize, Serialize};
use shm_transport::{ChannelConfig, OverflowPolicy, Publisher, ReceiveError, Subscriber};

use crate::codec::{ClockMap, CodecError, IngestMsg, PayloadCodec, RawCdrCodec};
use crate::error::PluginError;
use crate::known;
use crate::names;
use crate::qos::QosConfig;
use crate::raw::{RawReader, RawWriter};

/// Direction of a bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// ROS 2 topic → rtfuse channel.
    Ingest,
    /// rtfuse channel → ROS 2 topic.
    Egress,
}

/// One topic ↔ channel bridge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    /// Ingest or egress.
    pub direction: Direction,
    /// ROS 2 topic name (`/camera/image_raw`).
    pub ros_topic: String,
    /// ROS 2 type (`sensor_msgs/msg/Image`); must be one of `rtfuse_msgs::ALL_TYPES`.
    pub ros_type: String,
    /// rtfuse channel name (created by ingest, opened by egress).
    pub channel: String,
    /// DDS QoS of the ROS 2 side (default: sensor data).
    #[serde(default)]
    pub qos: QosConfig,
    /// Ingest: chunk size of the created channel in bytes, the largest message it carries
    /// (default 4 MiB).
    #[serde(default = "default_chunk_size")]
    pub chunk_size: usize,
    /// Ingest: number of chunks (default 8).
    #[serde(default = "default_chunk_count")]
    pub chunk_count: u32,
    /// Ingest: the created channel's whole geometry where the caller declares one (a launcher's
    /// `[[channel]]`: ring depth, overflow, wake-up, memory lock, …); it overrides `chunk_size` and
    /// `chunk_count`, and its user header is raised to what the codec writes. `None`: a channel of
    /// `chunk_count` chunks of `chunk_size` with a ring of [`ring_depth_for`] and keep-last.
    #[serde(skip)]
    pub geometry: Option<ChannelConfig>,
}

/// Descriptor-ring depth for a slab of `chunk_count` chunks: the largest power of two not above
/// half of them, so that a full ring (keep-last drops the oldest) still leaves chunks to loan.
pub fn ring_depth_for(chunk_count: u32) -> u32 {
    let half = (chunk_count / 2).max(1);
    1 << (31 - half.leading_zeros())
}

fn default_chunk_size() -> usize {
    4 << 20
}

fn default_chunk_count() -> u32 {
    8
}

/// The gateway's configuration (the launch config's `[ros2]` section maps onto it).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// DDS domain; `None` = `ROS_DOMAIN_ID` (0 when unset).
    #[serde(default)]
    pub domain_id: Option<u16>,
    /// The bridges.
    #[serde(default)]
    pub bridges: Vec<BridgeConfig>,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// A bridge's configuration is invalid (names, unknown type, duplicates).
    #[error("bridge {index} ({topic}): {source}")]
    Bridge {
        /// Position in `bridges`.
        index: usize,
        /// Its ROS topic.
        topic: String,
        /// The problem.
        source: PluginError,
    },
    /// Two bridges use the same channel or the same topic in the same direction.
    #[error("bridges {0} and {1} both use {2}")]
    Duplicate(usize, usize, String),
    /// DDS could not be started.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// A bridge thread panicked (a bug; reported, not propagated).
    #[error("bridge thread for {0} panicked")]
    ThreadPanicked(String),
}

/// Counters of one bridge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BridgeStats {
    /// The bridge's ROS topic.
    pub ros_topic: String,
    /// The bridge's channel.
    pub channel: String,
    /// Messages forwarded.
    pub forwarded: u64,
    /// Bytes forwarded (complete payloads).
    pub bytes: u64,
    /// The bridge's payload codec ([`PayloadCodec::name`]).
    pub codec: String,
    /// Payloads that failed validation (malformed CDR, wrong type, a channel sample that is not
    /// what its layout says).
    pub malformed: u64,
    /// Well-formed messages or samples the codec could not convert (see
    /// [`CodecError::Unconvertible`]).
    pub unconvertible: u64,
    /// Messages larger than the channel's chunks (ingest).
    pub oversize: u64,
    /// Messages dropped because no chunk was free (ingest: the consumer holds them all).
    pub no_chunk: u64,
    /// DDS write or read errors.
    pub dds_errors: u64,
    /// Times the channel's publisher vanished (egress) and the bridge waited for a new one.
    pub peer_lost: u64,
    /// Incompatible-QoS reports from DDS (with a description each).
    pub qos_mismatches: Vec<String>,
    /// Remote DDS endpoints matched at the last check.
    pub matched: usize,
    /// The last error, for the operator (malformed or refused payloads, DDS and channel errors).
    /// It stays after the bridge recovers; the counters say how often.
    pub last_error: Option<String>,
    /// What the bridge is waiting for now, if anything: an egress channel that does not exist
    /// (yet) or whose publisher went away. Cleared as soon as the channel is open again.
    pub waiting: Option<String>,
}

/// Counters of all bridges, in configuration order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GatewayStats {
    /// One entry per bridge.
    pub bridges: Vec<BridgeStats>,
}

/// A running gateway (see [`Gateway::start`]); [`run`] is the blocking form.
pub struct Gateway {
    stop: Arc<AtomicBool>,
    stats: Vec<Arc<Mutex<BridgeStats>>>,
    threads: Vec<(String, JoinHandle<()>)>,
    clock: ClockMap,
    // Keeps the DDS participant (and its discovery) alive as long as the gateway.
    _context: ros2_client::Context,
}

/// Runs the gateway until `stop` is set and returns the final counters.
///
/// # Errors
/// An invalid configuration or a DDS participant that cannot be created. Problems with
/// individual messages are counted, not returned.
///
/// # Examples
/// ```no_run
/// use std::sync::atomic::AtomicBool;
/// use ros2_plugin::gateway::{run, BridgeConfig, Direction, GatewayConfig};
/// let cfg = GatewayConfig {
///     domain_id: None,
///     bridges: vec![BridgeConfig {
///         direction: Direction::Ingest,
///         ros_topic: "/imu".into(),
///         ros_type: "sensor_msgs/msg/Imu".into(),
///         channel: "imu".into(),
///         qos: Default::default(),
///         chunk_size: 4096,
///         chunk_count: 16,
///         geometry: None,
///     }],
/// };
/// let stop = AtomicBool::new(false);
/// let stats = run(&cfg, &stop)?;
/// # Ok::<(), ros2_plugin::gateway::GatewayError>(())
/// ```
pub fn run(cfg: &GatewayConfig, stop: &AtomicBool) -> Result<GatewayStats, GatewayError> {
    run_with_codecs(cfg, stop, |_, _| None)
}

/// [`run`] with a codec per bridge (see [`Gateway::start_with_codecs`]).
///
/// # Errors
/// As [`run`].
///
/// # Examples
/// ```no_run
/// use std::sync::atomic::AtomicBool;
/// use std::sync::Arc;
/// use ros2_plugin::codec::{PayloadCodec, RawCdrCodec};
/// use ros2_plugin::gateway::{run_with_codecs, GatewayConfig};
/// let cfg: GatewayConfig = Default::default();
/// // Every bridge on the default codec, spelled out.
/// let stats = run_with_codecs(&cfg, &AtomicBool::new(false), |_, b| {
///     RawCdrCodec::for_type(&b.ros_type).map(|c| Arc::new(c) as Arc<dyn PayloadCodec>)
/// })?;
/// # Ok::<(), ros2_plugin::gateway::GatewayError>(())
/// ```
pub fn run_with_codecs(
    cfg: &GatewayConfig,
    stop: &AtomicBool,
    codec_for: impl FnMut(usize, &BridgeConfig) -> Option<Arc<dyn PayloadCodec>>,
) -> Result<GatewayStats, GatewayError> {
    let gateway = Gateway::start_with_codecs(cfg, codec_for)?;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
    gateway.stop()
}

fn validate(cfg: &GatewayConfig) -> Result<Vec<RawCdrCodec>, GatewayError> {
    let mut codecs = Vec::new();
    for (index, b) in cfg.bridges.iter().enumerate() {
        let err = |source| GatewayError::Bridge {
            index,
            topic: b.ros_topic.clone(),
            source,
        };
        names::dds_topic_name(&b.ros_topic).map_err(|e| err(e.into()))?;
        names::dds_type_name(&b.ros_type).map_err(|e| err(e.into()))?;
        shm_transport::validate_name(&b.channel)
            .map_err(|e| err(PluginError::Shm(b.channel.clone(), e.to_string())))?;
        let codec = RawCdrCodec::for_type(&b.ros_type).ok_or_else(|| {
            err(PluginError::UnknownType(
                b.ros_type.clone(),
                known::known_list(),
            ))
        })?;
        codecs.push(codec);
        for (j, other) in cfg.bridges[..index].iter().enumerate() {
            if other.channel == b.channel {
                return Err(GatewayError::Duplicate(
                    j,
                    index,
                    format!("channel {}", b.channel),
                ));
            }
            if other.direction == b.direction && other.ros_topic == b.ros_topic {
                return Err(GatewayError::Duplicate(
                    j,
                    index,
                    format!("topic {}", b.ros_topic),
                ));
            }
        }
    }
    Ok(codecs)
}

impl Gateway {
    /// Validates `cfg`, joins the DDS domain and starts one thread per bridge.
    ///
    /// # Errors
    /// As [`run`]. A bridge whose endpoints cannot be created reports it in its
    /// [`BridgeStats::last_error`] and stops; the others keep running.
    pub fn start(cfg: &GatewayConfig) -> Result<Gateway, GatewayError> {
        Self::start_with_codecs(cfg, |_, _| None)
    }

    /// As [`Gateway::start`], with the codec of each bridge chosen by `codec_for(index, bridge)`
    /// (called once per bridge, after the configuration was validated): `Some` for a channel in
    /// another layout than raw CDR, `None` for the default [`RawCdrCodec`]. The codec lives
    /// beside the configuration, not in it: [`GatewayConfig`] stays plain data that serializes.
    ///
    /// # Errors
    /// As [`run`].
    ///
    /// # Examples
    /// ```no_run
    /// use std::sync::Arc;
    /// use ros2_plugin::codec::{PayloadCodec, RawCdrCodec};
    /// use ros2_plugin::gateway::{Gateway, GatewayConfig};
    /// let cfg: GatewayConfig = Default::default();
    /// let raw = RawCdrCodec::for_type("sensor_msgs/msg/Imu").unwrap();
    /// let gw = Gateway::start_with_codecs(&cfg, |_, b| {
    ///     (b.channel == "imu").then(|| Arc::new(raw) as Arc<dyn PayloadCodec>)
    /// })?;
    /// let stats = gw.stop()?;
    /// # Ok::<(), ros2_plugin::gateway::GatewayError>(())
    /// ```
    pub fn start_with_codecs(
        cfg: &GatewayConfig,
        mut codec_for: impl FnMut(usize, &BridgeConfig) -> Option<Arc<dyn PayloadCodec>>,
    ) -> Result<Gateway, GatewayError> {
        let raw = validate(cfg)?;
        let codecs: Vec<Arc<dyn PayloadCodec>> = cfg
            .bridges
            .iter()
            .zip(raw)
            .enumerate()
            .map(|(i, (b, raw))| codec_for(i, b).unwrap_or_else(|| Arc::new(raw)))
            .collect();
        let clock = ClockMap::now();
        let context = crate::context::new_context(cfg.domain_id)?;
        let participant = context.domain_participant();
        let stop = Arc::new(AtomicBool::new(false));
        let mut stats = Vec::new();
        let mut threads = Vec::new();
        for (b, codec) in cfg.bridges.iter().zip(codecs) {
            let s = Arc::new(Mutex::new(BridgeStats {
                ros_topic: b.ros_topic.clone(),
                channel: b.channel.clone(),
                codec: codec.name().to_owned(),
                ..BridgeStats::default()
            }));
            let bridge = Bridge {
                cfg: b.clone(),
                codec,
                clock,
                stats: s.clone(),
                stop: stop.clone(),
            };
            let p = participant.clone();
            let handle = std::thread::Builder::new()
                .name(format!("ros2-gw-{}", b.channel))
                .spawn(move || bridge.run(&p))
                .map_err(|e| PluginError::Io(b.channel.clone(), e))?;
            stats.push(s);
            threads.push((b.ros_topic.clone(), handle));
        }
        Ok(Gateway {
            stop,
            stats,
            threads,
            clock,
            _context: context,
        })
    }

    /// The clock map every bridge of this gateway uses (fixed at start).
    pub fn clock(&self) -> ClockMap {
        self.clock
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> GatewayStats {
        GatewayStats {
            bridges: self
                .stats
                .iter()
                .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone())
                .collect(),
        }
    }

    /// Stops every bridge and returns the final counters.
    ///
    /// # Errors
    /// [`GatewayError::ThreadPanicked`] if a bridge thread panicked.
    pub fn stop(self) -> Result<GatewayStats, GatewayError> {
        self.stop.store(true, Ordering::Relaxed);
        let mut panicked = None;
        for (topic, t) in self.threads {
            if t.join().is_err() {
                panicked = Some(topic);
            }
        }
        let stats = GatewayStats {
            bridges: self
                .stats
                .iter()
                .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone())
                .collect(),
        };
        match panicked {
            Some(topic) => Err(GatewayError::ThreadPanicked(topic)),
            None => Ok(stats),
        }
    }
}

struct Bridge {
    cfg: BridgeConfig,
    codec: Arc<dyn PayloadCodec>,
    clock: ClockMap,
    stats: Arc<Mutex<BridgeStats>>,
    stop: Arc<AtomicBool>,
}

/// How often a bridge looks at DDS status events (matching, QoS).
const EVENT_PERIOD: Duration = Duration::from_millis(50);
/// How long one wait for data lasts before the stop flag is checked again.
const WAIT: Duration = Duration::from_millis(20);

impl Bridge {
    fn update(&self, f: impl FnOnce(&mut BridgeStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn fail(&self, what: String) {
        tracing::warn!(topic = %self.cfg.ros_topic, channel = %self.cfg.channel, "{what}");
        self.update(|s| s.last_error = Some(what));
    }

    /// Records a state the bridge waits out (not an error); `None` when it is over.
    fn wait_for(&self, what: Option<String>) {
        if let Some(w) = &what {
            tracing::info!(topic = %self.cfg.ros_topic, channel = %self.cfg.channel, "{w}");
        }
        self.update(|s| s.waiting = what);
    }

    fn run(self, participant: &DomainParticipant) {
        match self.cfg.direction {
            Direction::Ingest => self.ingest(participant),
            Direction::Egress => self.egress(participant),
        }
    }

    fn ingest(&self, participant: &DomainParticipant) {
        let c = &self.cfg;
        let channel_cfg = match &c.geometry {
            Some(g) => ChannelConfig {
                user_header_size: g.user_header_size.max(self.codec.user_header_size()),
                ..g.clone()
            },
            None => ChannelConfig {
                chunk_size: c.chunk_size,
                chunk_count: c.chunk_count,
                ring_depth: ring_depth_for(c.chunk_count),
                overflow: OverflowPolicy::KeepLast,
                user_header_size: self.codec.user_header_size(),
                ..ChannelConfig::default()
            },
        };
        let mut publisher = match Publisher::create(&c.channel, &channel_cfg) {
            Ok(p) => p,
            Err(e) => return self.fail(format!("cannot create channel {}: {e}", c.channel)),
        };
        let mut reader = match RawReader::new(participant, &c.ros_topic, &c.ros_type, &c.qos) {
            Ok(r) => r,
            Err(e) => return self.fail(e.to_string()),
        };
        let mut last_events = Instant::now();
        let mut scratch = Vec::new();
        while !self.stop.load(Ordering::Relaxed) {
            if last_events.elapsed() >= EVENT_PERIOD {
                self.note_events(reader.take_events());
                last_events = Instant::now();
            }
            let sample = match reader.take_timeout(WAIT) {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => {
                    self.update(|s| s.dds_errors += 1);
                    self.fail(e.to_string());
                    continue;
                }
            };
            let n = sample.data.payload_len();
            scratch.resize(n, 0);
            let _ = sample.data.write_payload(&mut scratch);
            let mut chunk = match publisher.loan() {
                Ok(chunk) => chunk,
                Err(e) => {
                    self.update(|s| s.no_chunk += 1);
                    self.fail(format!("no free chunk in {}: {e}", c.channel));
                    continue;
                }
            };
            let msg = IngestMsg {
                cdr: &scratch,
                sequence_number: sample.sequence_number,
                received_ns: shm_transport::now_ns(),
                clock: self.clock,
            };
            let len = match self.codec.ingest(&msg, &mut chunk) {
                Ok(len) => len,
                Err(e) => {
                    // The chunk goes back unpublished when it drops.
                    drop(chunk);
                    self.refused(&e, &format!("{} from {:?}", c.ros_type, sample.writer));
                    continue;
                }
            };
            match chunk.publish() {
                Ok(_) => self.update(|s| {
                    s.forwarded += 1;
                    s.bytes += len as u64;
                }),
                Err(e) => {
                    let msg = format!("publish to {} failed: {e}", c.channel);
                    self.update(|s| s.no_chunk += 1);
                    self.fail(msg);
                }
            }
        }
    }

    fn egress(&self, participant: &DomainParticipant) {
        let c = &self.cfg;
        let mut writer = match RawWriter::new(participant, &c.ros_topic, &c.ros_type, &c.qos) {
            Ok(w) => w,
            Err(e) => return self.fail(e.to_string()),
        };
        let mut subscriber: Option<Subscriber> = None;
        let mut last_events = Instant::now() - EVENT_PERIOD;
        let mut reported_missing = false;
        while !self.stop.load(Ordering::Relaxed) {
            if last_events.elapsed() >= EVENT_PERIOD {
                self.note_events(writer.take_events());
                last_events = Instant::now();
            }
            let Some(sub) = subscriber.as_mut() else {
                match self.codec.open(&c.channel) {
                    Ok(s) => {
                        subscriber = Some(s);
                        reported_missing = false;
                        self.wait_for(None);
                    }
                    Err(e) => {
                        if !reported_missing {
                            self.wait_for(Some(format!("waiting for channel {}: {e}", c.channel)));
                            reported_missing = true;
                        }
                        std::thread::sleep(WAIT);
                    }
                }
                continue;
            };
            let sample = match sub.receive_timeout(WAIT) {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(ReceiveError::Disconnected) => {
                    self.update(|s| s.peer_lost += 1);
                    self.wait_for(Some(format!(
                        "publisher of channel {} went away; waiting for a new one",
                        c.channel
                    )));
                    reported_missing = true;
                    subscriber = None;
                    continue;
                }
                Err(e) => {
                    self.fail(format!("receive from {}: {e}", c.channel));
                    continue;
                }
            };
            let raw = match self.codec.egress(&sample, self.clock) {
                Ok(raw) => raw,
                Err(e) => {
                    drop(sample);
                    self.refused(&e, &format!("{} in {}", c.ros_type, c.channel));
                    continue;
                }
            };
            let n = raw.payload_len() as u64;
            drop(sample);
            match writer.write(raw) {
                Ok(_) => self.update(|s| {
                    s.forwarded += 1;
                    s.bytes += n;
                }),
                Err(e) => {
                    self.update(|s| s.dds_errors += 1);
                    self.fail(e.to_string());
                }
            }
        }
    }

    /// Counts and logs a message or sample the codec refused (`what`: which and where from).
    fn refused(&self, e: &CodecError, what: &str) {
        self.update(|s| match e {
            CodecError::Oversize { .. } => s.oversize += 1,
            CodecError::Unconvertible(_) => s.unconvertible += 1,
            _ => s.malformed += 1,
        });
        self.fail(format!("{what}: {e} ({} codec)", self.codec.name()));
    }

    fn note_events(&self, events: crate::raw::EndpointEvents) {
        for m in &events.incompatible_qos {
            tracing::warn!("{m}");
        }
        self.update(|s| {
            s.matched = events.matched;
            s.qos_mismatches.extend(events.incompatible_qos);
        });
    }
}
