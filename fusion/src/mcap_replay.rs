//! Replay of rosbag2-style MCAP files (`cdr` messages; `sensor_msgs/msg/Image`, `PointCloud2`,
//! `Imu`, `CameraInfo`, `nav_msgs/msg/Odometry`) at the recorded rate or as fast as possible,
//! into a [`ReplaySink`] (shared-memory channels: [`crate::mcap_shm::ShmSink`]).
//!
//! # Robustness
//! The file is walked record by record (the `mcap` crate parses each record and decompresses
//! chunks), so damage stays local:
//! - a chunk that fails to decompress or whose CRC does not match is skipped whole (none of its
//!   messages can be trusted) and counted; the next record is read normally;
//! - a record whose length runs past the end (a truncated file, or a damaged length field) stops
//!   the linear walk; if the footer and summary are intact, the chunks the summary indexes beyond
//!   that point are still replayed, otherwise the file is reported as truncated;
//! - messages of unknown types or encodings, undecodable CDR, and images or point clouds with
//!   inconsistent layouts ([`crate::mcap_msgs::RosMsg::validate`]) are counted and skipped;
//! - a header stamp older than the previous one on the same channel is counted and the message is
//!   still delivered (it is valid; the consumer decides).
//!
//! Every problem is counted in [`ReplayStats`], the first [`MAX_PROBLEMS_KEPT`] are kept in
//! [`ReplayReport::problems`] with a clear message, and the first of each kind is logged. Replay
//! never panics on file contents. The file is read into memory whole (replay is not on the
//! real-time path; use files that fit in RAM).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ::mcap::read::{parse_record, ChunkReader};
use ::mcap::records::{ChunkHeader, Record};
use ::mcap::{Summary, MAGIC};

use crate::mcap_msgs::{MessageType, RosMsg};

/// Problems kept verbatim in a report (all are counted).
pub const MAX_PROBLEMS_KEPT: usize = 64;

/// How fast to replay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// Deliver each message as soon as the previous one is delivered.
    AsFastAsPossible,
    /// Deliver at the recorded log times, scaled: `speed` 1.0 is real time, 2.0 twice as fast.
    Recorded {
        /// Speed factor, > 0.
        speed: f64,
    },
}

/// How a replay runs: pace, which topic, and (for replays that must line up across processes)
/// where the file's time starts on the wall clock.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// How fast.
    pub pace: Pace,
    /// Deliver only this topic (others are skipped before decoding and counted as filtered).
    pub topic: Option<String>,
    /// Under [`Pace::Recorded`]: the log time that plays at the given instant. Default: the first
    /// delivered message plays at once.
    pub anchor: Option<(u64, Instant)>,
    /// Under [`Pace::Recorded`]: a message whose playing time is more than this far in the past
    /// is skipped and counted as late (a restarted driver catches up with the file's clock
    /// instead of bursting). Default: never skipped.
    pub skip_late: Option<Duration>,
}

impl ReplayOptions {
    /// Every topic at `pace`, anchored at the first message, nothing skipped.
    pub fn new(pace: Pace) -> Self {
        ReplayOptions {
            pace,
            topic: None,
            anchor: None,
            skip_late: None,
        }
    }
}

/// One message handed to a sink.
#[derive(Debug)]
pub struct ReplayedMessage<'a> {
    /// The channel's topic.
    pub topic: &'a str,
    /// The MCAP channel id.
    pub channel_id: u16,
    /// The message's sequence number in the file.
    pub sequence: u32,
    /// Log time (ns since the epoch).
    pub log_time: u64,
    /// Publish time (ns since the epoch).
    pub publish_time: u64,
    /// The raw CDR payload (with its 4-byte encapsulation header).
    pub cdr: &'a [u8],
    /// The decoded, validated message.
    pub msg: &'a RosMsg,
}

/// Where replayed messages go.
pub trait ReplaySink {
    /// Error of a delivery (counted; replay goes on).
    type Error: fmt::Display;
    /// Takes one message.
    ///
    /// # Errors
    /// The message could not be delivered; replay counts it and continues.
    fn deliver(&mut self, msg: &ReplayedMessage<'_>) -> Result<(), Self::Error>;
}

/// A sink that keeps every message (for tests and tools).
#[derive(Debug, Default)]
pub struct CollectSink {
    /// `(topic, log_time, message)` in delivery order.
    pub messages: Vec<(String, u64, RosMsg)>,
}

impl ReplaySink for CollectSink {
    type Error = std::convert::Infallible;
    fn deliver(&mut self, m: &ReplayedMessage<'_>) -> Result<(), Self::Error> {
        self.messages
            .push((m.topic.to_owned(), m.log_time, m.msg.clone()));
        Ok(())
    }
}

/// What went wrong with part of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayProblem {
    /// The file ends (or a record length runs) past the end at this offset.
    Truncated {
        /// Offset of the record that does not fit.
        offset: u64,
        /// What was found.
        detail: String,
    },
    /// A record could not be parsed, or a chunk could not be decompressed or failed its CRC.
    Corrupt {
        /// Offset of the record.
        offset: u64,
        /// The reader's error.
        detail: String,
    },
    /// Messages on a channel whose schema or encoding replay does not handle.
    UnknownType {
        /// Topic.
        topic: String,
        /// Schema name and encodings.
        detail: String,
    },
    /// A message for a channel id never defined.
    UnknownChannel {
        /// The channel id.
        channel_id: u16,
    },
    /// CDR that does not decode as the channel's type.
    Cdr {
        /// Topic.
        topic: String,
        /// Message sequence number.
        sequence: u32,
        /// Decoder error.
        detail: String,
    },
    /// An image or point cloud with inconsistent sizes or fields.
    Layout {
        /// Topic.
        topic: String,
        /// Message sequence number.
        sequence: u32,
        /// What is inconsistent.
        detail: String,
    },
    /// A header stamp earlier than the previous one on the channel (message still delivered).
    NonMonotonic {
        /// Topic.
        topic: String,
        /// Previous stamp (ns).
        previous_ns: i64,
        /// This stamp (ns).
        stamp_ns: i64,
    },
    /// The sink refused a message.
    Sink {
        /// Topic.
        topic: String,
        /// Sink error.
        detail: String,
    },
}

impl fmt::Display for ReplayProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { offset, detail } => {
                write!(f, "truncated MCAP at byte {offset}: {detail}")
            }
            Self::Corrupt { offset, detail } => {
                write!(f, "corrupt MCAP record at byte {offset}, skipped: {detail}")
            }
            Self::UnknownType { topic, detail } => {
                write!(
                    f,
                    "topic {topic}: unsupported type, messages skipped ({detail})"
                )
            }
            Self::UnknownChannel { channel_id } => {
                write!(f, "message on undefined channel id {channel_id}, skipped")
            }
            Self::Cdr {
                topic,
                sequence,
                detail,
            } => {
                write!(
                    f,
                    "topic {topic} message {sequence}: bad CDR, skipped: {detail}"
                )
            }
            Self::Layout {
                topic,
                sequence,
                detail,
            } => {
                write!(f, "topic {topic} message {sequence}: {detail}; skipped")
            }
            Self::NonMonotonic {
                topic,
                previous_ns,
                stamp_ns,
            } => write!(
                f,
                "topic {topic}: header stamp {stamp_ns} ns is {} ns before the previous one \
                 (delivered anyway)",
                previous_ns - stamp_ns
            ),
            Self::Sink { topic, detail } => {
                write!(f, "topic {topic}: sink refused message: {detail}")
            }
        }
    }
}

/// Counters of one replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Message records found (in chunks and outside).
    pub messages: u64,
    /// Messages delivered to the sink.
    pub delivered: u64,
    /// Chunks replayed.
    pub chunks: u64,
    /// Chunks recovered through the summary after the linear walk stopped.
    pub recovered_chunks: u64,
    /// Corrupt records or chunks skipped.
    pub corrupt: u64,
    /// Whether the file was truncated (or a record length was damaged).
    pub truncated: bool,
    /// Messages of unsupported types or encodings.
    pub unknown_type: u64,
    /// Messages on undefined channels.
    pub unknown_channel: u64,
    /// Messages whose CDR did not decode.
    pub cdr_errors: u64,
    /// Images or point clouds with inconsistent layouts.
    pub bad_layout: u64,
    /// Header stamps that went backwards (delivered anyway).
    pub non_monotonic: u64,
    /// Deliveries the sink refused.
    pub sink_errors: u64,
    /// Messages on other topics than [`ReplayOptions::topic`] (not decoded).
    pub filtered: u64,
    /// Messages skipped because their playing time had passed ([`ReplayOptions::skip_late`]).
    pub late: u64,
}

/// The result of a replay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Counters.
    pub stats: ReplayStats,
    /// The first [`MAX_PROBLEMS_KEPT`] problems.
    pub problems: Vec<ReplayProblem>,
    /// Whether replay was stopped early by the stop flag.
    pub stopped: bool,
}

/// Why a replay could not start at all.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReplayError {
    /// The file could not be read.
    Io(std::io::Error),
    /// The bytes do not start with the MCAP magic.
    NotMcap,
    /// A speed that is not finite and positive.
    BadSpeed(f64),
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read MCAP file: {e}"),
            Self::NotMcap => f.write_str("not an MCAP file (no MCAP magic at the start)"),
            Self::BadSpeed(s) => write!(f, "replay speed {s} must be finite and > 0"),
        }
    }
}

impl std::error::Error for ReplayError {}

struct ChannelInfo {
    topic: String,
    ty: Option<MessageType>,
    last_stamp: Option<i64>,
}

struct Replayer<'s, S> {
    buf: &'s [u8],
    /// Whether the summary has been read (done once, on demand).
    summary_read: bool,
    /// Chunk indexes of the summary, once read.
    chunk_indexes: Vec<::mcap::records::ChunkIndex>,
    sink: &'s mut S,
    pace: Pace,
    topic: Option<String>,
    skip_late: Option<Duration>,
    stop: &'s AtomicBool,
    schemas: HashMap<u16, (String, String)>,
    channels: HashMap<u16, ChannelInfo>,
    report: ReplayReport,
    clock: Option<(u64, Instant)>,
    logged: [bool; 8],
}

/// Replays the MCAP file at `path` into `sink`; stops early when `stop` becomes true.
///
/// # Errors
/// The file cannot be read, is not MCAP, or `pace` is invalid. Damage inside the file is not an
/// error: it is counted in the report.
///
/// # Examples
/// ```no_run
/// use fusion::mcap_replay::{replay_file, CollectSink, Pace};
/// use std::sync::atomic::AtomicBool;
/// let mut sink = CollectSink::default();
/// let report = replay_file("run.mcap", Pace::AsFastAsPossible, &mut sink, &AtomicBool::new(false))?;
/// println!("{} delivered, problems: {:?}", report.stats.delivered, report.problems);
/// # Ok::<(), fusion::mcap_replay::ReplayError>(())
/// ```
pub fn replay_file<S: ReplaySink>(
    path: impl AsRef<Path>,
    pace: Pace,
    sink: &mut S,
    stop: &AtomicBool,
) -> Result<ReplayReport, ReplayError> {
    let bytes = std::fs::read(path).map_err(ReplayError::Io)?;
    replay_bytes(&bytes, pace, sink, stop)
}

/// Replays an MCAP file held in memory. See [`replay_file`].
///
/// # Errors
/// See [`replay_file`].
pub fn replay_bytes<S: ReplaySink>(
    buf: &[u8],
    pace: Pace,
    sink: &mut S,
    stop: &AtomicBool,
) -> Result<ReplayReport, ReplayError> {
    replay_bytes_with(buf, &ReplayOptions::new(pace), sink, stop)
}

/// Replays an MCAP file held in memory with [`ReplayOptions`] (one topic, an anchored clock).
///
/// # Errors
/// See [`replay_file`].
pub fn replay_bytes_with<S: ReplaySink>(
    buf: &[u8],
    opts: &ReplayOptions,
    sink: &mut S,
    stop: &AtomicBool,
) -> Result<ReplayReport, ReplayError> {
    let pace = opts.pace;
    if let Pace::Recorded { speed } = pace {
        if !(speed.is_finite() && speed > 0.0) {
            return Err(ReplayError::BadSpeed(speed));
        }
    }
    if !buf.starts_with(MAGIC) {
        return Err(ReplayError::NotMcap);
    }
    let mut r = Replayer {
        buf,
        summary_read: false,
        chunk_indexes: Vec::new(),
        sink,
        pace,
        topic: opts.topic.clone(),
        skip_late: opts.skip_late,
        stop,
        schemas: HashMap::new(),
        channels: HashMap::new(),
        report: ReplayReport::default(),
        clock: opts.anchor,
        logged: [false; 8],
    };
    if let Some(stopped_at) = r.walk() {
        r.recover(stopped_at);
    }
    Ok(r.report)
}

/// A raw record: opcode, body, offset just past it.
type RawRecord<'a> = (u8, &'a [u8], usize);

/// Reads the record at `pos`: `Ok(None)` at the end of the bytes, `Err` if it does not fit.
fn record_at(buf: &[u8], pos: usize) -> Result<Option<RawRecord<'_>>, String> {
    if pos == buf.len() {
        return Ok(None);
    }
    let Some(head) = pos.checked_add(9).and_then(|end| buf.get(pos..end)) else {
        let left = buf.len().saturating_sub(pos);
        return Err(format!(
            "{left} bytes left at byte {pos}, a record header needs 9"
        ));
    };
    let op = head[0];
    let len = u64::from_le_bytes(head[1..9].try_into().unwrap_or_default());
    let end = (pos as u64 + 9)
        .checked_add(len)
        .filter(|e| *e <= buf.len() as u64);
    match end {
        Some(end) => Ok(Some((op, &buf[pos + 9..end as usize], end as usize))),
        None => Err(format!(
            "record opcode {op:#04x} claims {len} bytes, only {} remain",
            buf.len() - pos - 9
        )),
    }
}

impl<S: ReplaySink> Replayer<'_, S> {
    fn problem(&mut self, kind: usize, p: ReplayProblem) {
        if !self.logged[kind] {
            self.logged[kind] = true;
            tracing::warn!("MCAP replay: {p} (further problems of this kind are counted)");
        }
        if self.report.problems.len() < MAX_PROBLEMS_KEPT {
            self.report.problems.push(p);
        }
    }

    fn stopped(&mut self) -> bool {
        // SYNC: Acquire pairs with the Release store of whoever asks replay to stop.
        let s = self.stop.load(Ordering::Acquire);
        self.report.stopped |= s;
        s
    }

    /// Walks the data section; returns the offset where it had to stop early, if it did.
    fn walk(&mut self) -> Option<usize> {
        let buf = self.buf;
        let mut pos = MAGIC.len();
        loop {
            if self.stopped() {
                return None;
            }
            let (op, body, end) = match record_at(buf, pos) {
                Ok(Some(r)) => r,
                Ok(None) => {
                    self.report.stats.truncated = true;
                    let detail = "file ends without a data-end record and footer".to_owned();
                    self.problem(
                        0,
                        ReplayProblem::Truncated {
                            offset: pos as u64,
                            detail,
                        },
                    );
                    return None;
                }
                Err(detail) => {
                    self.report.stats.truncated = true;
                    self.problem(
                        0,
                        ReplayProblem::Truncated {
                            offset: pos as u64,
                            detail,
                        },
                    );
                    return Some(pos);
                }
            };
            match parse_record(op, body) {
                Ok(Record::DataEnd(_)) | Ok(Record::Footer(_)) => return None,
                Ok(Record::Chunk { header, data }) => self.chunk(pos, header, &data),
                Ok(rec) => self.record(rec),
                Err(e) => self.corrupt(pos, e.to_string()),
            }
            pos = end;
        }
    }

    /// After the walk stopped at `from`, replays the chunks that the summary indexes beyond it.
    fn recover(&mut self, from: usize) {
        let buf = self.buf;
        self.load_summary();
        let mut chunks: Vec<_> = std::mem::take(&mut self.chunk_indexes)
            .into_iter()
            .filter(|c| c.chunk_start_offset > from as u64)
            .collect();
        chunks.sort_by_key(|c| c.chunk_start_offset);
        for ci in chunks {
            if self.stopped() {
                return;
            }
            let at = ci.chunk_start_offset as usize;
            match record_at(buf, at).map(|r| r.map(|(op, body, _)| parse_record(op, body))) {
                Ok(Some(Ok(Record::Chunk { header, data }))) => {
                    self.report.stats.recovered_chunks += 1;
                    self.chunk(at, header, &data);
                }
                Ok(Some(Ok(_))) => {
                    self.corrupt(at, "summary points at a record that is not a chunk".into())
                }
                Ok(Some(Err(e))) => self.corrupt(at, e.to_string()),
                Ok(None) => {}
                Err(detail) => self.corrupt(at, detail),
            }
        }
    }

    /// Reads the summary (if the file has an intact one) and adds its schemas and channels to
    /// those seen so far: definitions lost with a corrupt chunk or a damaged record are
    /// recovered this way. Done at most once.
    fn load_summary(&mut self) {
        if std::mem::replace(&mut self.summary_read, true) {
            return;
        }
        let Some(summary) = Summary::read(self.buf).ok().flatten() else {
            return;
        };
        for s in summary.schemas.values() {
            self.schemas
                .entry(s.id)
                .or_insert_with(|| (s.name.clone(), s.encoding.clone()));
        }
        for c in summary.channels.values() {
            if !self.channels.contains_key(&c.id) {
                let (schema, enc) = c
                    .schema
                    .as_ref()
                    .map_or((String::new(), String::new()), |s| {
                        (s.name.clone(), s.encoding.clone())
                    });
                self.add_channel(c.id, c.topic.clone(), &schema, &enc, &c.message_encoding);
            }
        }
        self.chunk_indexes = summary.chunk_indexes;
    }

    fn corrupt(&mut self, offset: usize, detail: String) {
        self.report.stats.corrupt += 1;
        self.problem(
            1,
            ReplayProblem::Corrupt {
                offset: offset as u64,
                detail,
            },
        );
    }

    fn chunk(&mut self, offset: usize, header: ChunkHeader, data: &[u8]) {
        // Read the whole chunk first: a CRC mismatch shows only at its end, and none of its
        // messages can be trusted then.
        let records: Result<Vec<_>, _> = ChunkReader::new(header, data).and_then(|r| r.collect());
        match records {
            Ok(records) => {
                self.report.stats.chunks += 1;
                for rec in records {
                    if self.stopped() {
                        return;
                    }
                    self.record(rec);
                }
            }
            Err(e) => self.corrupt(offset, format!("chunk skipped: {e}")),
        }
    }

    fn add_channel(
        &mut self,
        id: u16,
        topic: String,
        schema: &str,
        schema_enc: &str,
        msg_enc: &str,
    ) {
        let ty = MessageType::from_schema_name(schema)
            .filter(|_| matches!(schema_enc, "ros2msg" | "ros2idl") && msg_enc == "cdr");
        if ty.is_none() {
            let detail = format!(
                "schema {schema:?} (encoding {schema_enc:?}), message encoding {msg_enc:?}; \
                 replay handles cdr messages of {:?}",
                MessageType::ALL.map(MessageType::ros_type)
            );
            self.problem(
                2,
                ReplayProblem::UnknownType {
                    topic: topic.clone(),
                    detail,
                },
            );
        }
        self.channels.insert(
            id,
            ChannelInfo {
                topic,
                ty,
                last_stamp: None,
            },
        );
    }

    fn record(&mut self, rec: Record<'_>) {
        match rec {
            Record::Schema { header, .. } => {
                self.schemas
                    .insert(header.id, (header.name, header.encoding));
            }
            Record::Channel(c) => {
                let (schema, enc) = self.schemas.get(&c.schema_id).cloned().unwrap_or_default();
                self.add_channel(c.id, c.topic, &schema, &enc, &c.message_encoding);
            }
            Record::Message { header, data } => self.message(
                header.channel_id,
                header.sequence,
                header.log_time,
                header.publish_time,
                &data,
            ),
            _ => {}
        }
    }

    fn message(
        &mut self,
        channel_id: u16,
        sequence: u32,
        log_time: u64,
        publish_time: u64,
        cdr: &[u8],
    ) {
        self.report.stats.messages += 1;
        if !self.channels.contains_key(&channel_id) {
            // Its definition may have been in a corrupt chunk: the summary repeats it.
            self.load_summary();
        }
        let st = &mut self.report.stats;
        let Some(chan) = self.channels.get(&channel_id) else {
            st.unknown_channel += 1;
            return self.problem(3, ReplayProblem::UnknownChannel { channel_id });
        };
        if self.topic.as_ref().is_some_and(|t| *t != chan.topic) {
            st.filtered += 1;
            return;
        }
        let Some(ty) = chan.ty else {
            st.unknown_type += 1;
            return;
        };
        let topic = chan.topic.clone();
        let msg = match RosMsg::decode(ty, cdr) {
            Ok(m) => m,
            Err(e) => {
                st.cdr_errors += 1;
                let detail = e.to_string();
                return self.problem(
                    4,
                    ReplayProblem::Cdr {
                        topic,
                        sequence,
                        detail,
                    },
                );
            }
        };
        if let Err(e) = msg.validate() {
            st.bad_layout += 1;
            let detail = format!("{ty}: {e}");
            return self.problem(
                5,
                ReplayProblem::Layout {
                    topic,
                    sequence,
                    detail,
                },
            );
        }
        let stamp = msg.stamp_ns();
        let previous = self
            .channels
            .get_mut(&channel_id)
            .and_then(|c| c.last_stamp.replace(stamp));
        if let Some(previous_ns) = previous.filter(|p| stamp < *p) {
            self.report.stats.non_monotonic += 1;
            let p = ReplayProblem::NonMonotonic {
                topic: topic.clone(),
                previous_ns,
                stamp_ns: stamp,
            };
            self.problem(6, p);
        }
        if !self.wait_for(log_time) {
            self.report.stats.late += 1;
            return;
        }
        let m = ReplayedMessage {
            topic: &topic,
            channel_id,
            sequence,
            log_time,
            publish_time,
            cdr,
            msg: &msg,
        };
        match self.sink.deliver(&m) {
            Ok(()) => self.report.stats.delivered += 1,
            Err(e) => {
                self.report.stats.sink_errors += 1;
                let detail = e.to_string();
                self.problem(7, ReplayProblem::Sink { topic, detail });
            }
        }
    }

    /// Sleeps until the wall-clock time of `log_time` under the pace (never for a log time
    /// earlier than the anchor). False: the message is late by more than `skip_late`; skip it.
    fn wait_for(&mut self, log_time: u64) -> bool {
        let Pace::Recorded { speed } = self.pace else {
            return true;
        };
        let (t0, w0) = *self.clock.get_or_insert((log_time, Instant::now()));
        let dt = log_time.saturating_sub(t0) as f64 / speed;
        let due = w0 + Duration::from_secs_f64(dt * 1e-9);
        if let Some(tolerance) = self.skip_late {
            if Instant::now().saturating_duration_since(due) > tolerance {
                return false;
            }
        }
        while !self.stopped() {
            let now = Instant::now();
            let Some(left) = due.checked_duration_since(now) else {
                return true;
            };
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
        true
    }
}
