//! A [`SensorDriver`] that replays one topic of a rosbag2 MCAP file into its channel, so a
//! recording runs through a deployment exactly like live drivers (one driver per topic, each in
//! its own process if the deployment says so).
//!
//! # Time
//! Drivers of one file must line up although they run in different processes. They share an
//! *epoch* on `CLOCK_MONOTONIC` (the supervisor hands it to every driver in [`EPOCH_ENV`]): the
//! file's first log time plays at the epoch, and log time `L` plays at `epoch + (L − start) / speed`.
//! Header stamps become sensor times by one file-wide offset (`epoch − start`), so stamps that
//! were equal in the file are equal in the channels (ExactTime still pairs them). Where a topic's
//! stamps are not in the log-time clock (simulated time, say: more than [`SAME_CLOCK_NS`] apart),
//! its first stamp is mapped to its first playing time instead, keeping its relative times.
//! `speed` scales the pace, not the stamps (as `ros2 bag play --rate` does).
//!
//! A driver that starts after the epoch (a restart after a crash) skips the messages whose playing
//! time has passed by more than [`LATE_TOLERANCE`] and counts them as lost, so it rejoins the
//! file's clock instead of bursting. With `looped`, pass `k` plays `k` loop periods later (the
//! file's span plus one period of its slowest topic), with stamps moved by as much.
//!
//! Decoding allocates (CDR into owned messages): the hand-off itself (loan, fill, publish) is the
//! transport's, but this driver is not allocation-free like the synthetic ones.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use shm_transport::{ChannelConfig, Publisher};

use crate::driver::meta::META_LEN;
use crate::driver::{DriverError, DriverStats, SensorDriver, StreamKind};
use crate::mcap_msgs::{MessageType, RosMsg};
use crate::mcap_replay::{replay_bytes_with, Pace, ReplayOptions, ReplaySink, ReplayedMessage};
use crate::mcap_shm::{
    payload_len, plan_topic, publish_converted, stream_kind, ChannelPlan, ShmSinkError,
};
use crate::rt::now_ns;

/// Environment variable with the shared replay epoch (`CLOCK_MONOTONIC` ns).
pub const EPOCH_ENV: &str = "RTFUSE_EPOCH_NS";
/// How far in the past a message may be due and still be played.
pub const LATE_TOLERANCE: Duration = Duration::from_millis(100);
/// Stamps within this of the log time are taken to be on the log-time clock.
pub const SAME_CLOCK_NS: i64 = 10_000_000_000;

/// What to replay and how.
#[derive(Clone, Debug)]
pub struct McapReplayConfig {
    /// Driver name.
    pub name: String,
    /// The MCAP file.
    pub file: std::path::PathBuf,
    /// The topic to replay.
    pub topic: String,
    /// 1.0 plays at the recorded rate; 0 as fast as possible.
    pub speed: f64,
    /// Start again at the end of the file.
    pub looped: bool,
    /// The shared epoch (`CLOCK_MONOTONIC` ns); `None`: when `run` starts.
    pub epoch_ns: Option<u64>,
    /// Chunks in the channel.
    pub chunk_count: u32,
    /// Ring depth of the channel.
    pub ring_depth: u32,
}

impl McapReplayConfig {
    /// Replays `topic` of `file` at the recorded rate, once, with the epoch from [`EPOCH_ENV`]
    /// if set.
    pub fn new(name: &str, file: impl Into<std::path::PathBuf>, topic: &str) -> Self {
        McapReplayConfig {
            name: name.into(),
            file: file.into(),
            topic: topic.into(),
            speed: 1.0,
            looped: false,
            epoch_ns: std::env::var(EPOCH_ENV).ok().and_then(|v| v.parse().ok()),
            chunk_count: 8,
            ring_depth: 8,
        }
    }
}

/// The file's clock: where it starts, how long one loop lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileClock {
    /// First log time of the file (every topic), ns.
    pub start_log: u64,
    /// Loop period: the file's span plus one period of its slowest topic, ns.
    pub loop_period_ns: u64,
}

impl FileClock {
    /// From the file's summary statistics, or (no intact summary) from a pass over every topic.
    ///
    /// # Errors
    /// The file is not MCAP.
    pub fn of(buf: &[u8]) -> Result<FileClock, DriverError> {
        let stats = ::mcap::Summary::read(buf)
            .ok()
            .flatten()
            .and_then(|s| s.stats)
            .filter(|s| s.message_count > 0);
        let (start, end, slowest) = match stats {
            Some(s) => {
                let span = s.message_end_time.saturating_sub(s.message_start_time);
                let fewest = s
                    .channel_message_counts
                    .values()
                    .copied()
                    .min()
                    .unwrap_or(1);
                (
                    s.message_start_time,
                    s.message_end_time,
                    span / fewest.max(1),
                )
            }
            None => {
                let plans =
                    plan_topic(buf, None).map_err(|e| DriverError::Config(e.to_string()))?;
                let start = plans.iter().map(|p| p.first_log_time).min().unwrap_or(0);
                let end = plans.iter().map(|p| p.last_log_time).max().unwrap_or(0);
                let slowest = plans
                    .iter()
                    .filter_map(ChannelPlan::rate_hz)
                    .map(|r| (1e9 / r) as u64)
                    .max()
                    .unwrap_or(0);
                (start, end, slowest)
            }
        };
        let gap = slowest.clamp(1_000_000, 1_000_000_000);
        Ok(FileClock {
            start_log: start,
            loop_period_ns: end.saturating_sub(start) + gap,
        })
    }
}

/// Replays one topic of an MCAP file into a channel.
pub struct McapReplayDriver {
    cfg: McapReplayConfig,
    bytes: FileBytes,
    info: TopicInfo,
    clock: FileClock,
}

impl McapReplayDriver {
    /// Maps the file and reads the topic's first message (the rest is decoded as it plays).
    ///
    /// # Errors
    /// The file cannot be read or is not MCAP; the topic is not in it (the error lists those that
    /// are); the topic's type is not a node stream (CameraInfo); a bad speed.
    pub fn new(cfg: McapReplayConfig) -> Result<Self, DriverError> {
        if !(cfg.speed.is_finite() && cfg.speed >= 0.0) {
            return Err(DriverError::Config(format!(
                "replay speed {} must be ≥ 0 (0: as fast as possible)",
                cfg.speed
            )));
        }
        let bytes = FileBytes::open(&cfg.file)?;
        let info = probe(&bytes, &cfg.file, &cfg.topic)?;
        let clock = FileClock::of(&bytes)?;
        Ok(McapReplayDriver {
            cfg,
            bytes,
            info,
            clock,
        })
    }

    /// What the topic's first message and the summary say.
    pub fn info(&self) -> &TopicInfo {
        &self.info
    }

    /// The file's clock.
    pub fn clock(&self) -> FileClock {
        self.clock
    }

    /// The offset from header stamps to sensor times for pass 0 at `epoch_ns`.
    fn stamp_offset(&self, epoch_ns: u64) -> i128 {
        let p = &self.info;
        let start = i128::from(self.clock.start_log);
        let first_log = i128::from(p.first_log_time);
        let first_stamp = i128::from(p.first_stamp_ns);
        if (first_stamp - first_log).abs() <= i128::from(SAME_CLOCK_NS) {
            i128::from(epoch_ns) - start
        } else {
            i128::from(epoch_ns) + (first_log - start) - first_stamp
        }
    }
}

struct TopicSink<'p> {
    publisher: &'p mut Publisher,
    offset_ns: i128,
    frame: u64,
    loan_failures: u64,
}

impl ReplaySink for TopicSink<'_> {
    type Error = ShmSinkError;
    fn deliver(&mut self, m: &ReplayedMessage<'_>) -> Result<(), ShmSinkError> {
        let t = i128::from(m.msg.stamp_ns()) + self.offset_ns;
        let t_sensor = u64::try_from(t.max(0)).unwrap_or(0);
        match publish_converted(self.publisher, self.frame, m, t_sensor) {
            Ok(()) => {
                self.frame += 1;
                Ok(())
            }
            Err(e) => {
                if matches!(e, ShmSinkError::Loan(_)) {
                    self.loan_failures += 1;
                }
                Err(e)
            }
        }
    }
}

impl SensorDriver for McapReplayDriver {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn kind(&self) -> StreamKind {
        self.info.kind
    }

    fn rate_hz(&self) -> f64 {
        self.info.rate_hz.unwrap_or(1.0)
    }

    fn channel_config(&self) -> ChannelConfig {
        ChannelConfig {
            // The first message's size: a later, larger one that does not fit the deployment's
            // chunk is counted as a loan failure, not fatal.
            chunk_size: self.info.first_payload.max(64),
            chunk_count: self.cfg.chunk_count,
            ring_depth: self.cfg.ring_depth,
            user_header_size: META_LEN,
            ..ChannelConfig::default()
        }
    }

    fn run(
        &mut self,
        publisher: &mut Publisher,
        stop: &AtomicBool,
    ) -> Result<DriverStats, DriverError> {
        let now = now_ns();
        let epoch_ns = self.cfg.epoch_ns.unwrap_or(now);
        let period = self.clock.loop_period_ns.max(1);
        let paced = self.cfg.speed > 0.0;
        // A driver (re)started after the epoch joins the pass that is playing now.
        let mut pass = if self.cfg.looped && paced {
            now.saturating_sub(epoch_ns) / (period as f64 / self.cfg.speed) as u64
        } else {
            0
        };
        let mut sink = TopicSink {
            publisher,
            offset_ns: 0,
            frame: 0,
            loan_failures: 0,
        };
        let mut st = DriverStats::default();
        loop {
            let shift = pass.saturating_mul(period);
            let pass_epoch = epoch_ns + (shift as f64 / self.cfg.speed.max(1e-9)) as u64;
            sink.offset_ns = self.stamp_offset(epoch_ns) + i128::from(shift);
            let opts = ReplayOptions {
                pace: if paced {
                    Pace::Recorded {
                        speed: self.cfg.speed,
                    }
                } else {
                    Pace::AsFastAsPossible
                },
                topic: Some(self.cfg.topic.clone()),
                anchor: paced.then(|| (self.clock.start_log, instant_at(pass_epoch))),
                skip_late: paced.then_some(LATE_TOLERANCE),
            };
            let report = replay_bytes_with(&self.bytes, &opts, &mut sink, stop)
                .map_err(|e| DriverError::Config(e.to_string()))?;
            st.published += report.stats.delivered;
            st.overruns += report.stats.late;
            if report.stopped || !self.cfg.looped {
                break;
            }
            pass += 1;
        }
        st.loan_failures = sink.loan_failures;
        Ok(st)
    }
}

/// A recording mapped read-only: drivers of one file share its pages through the page cache
/// instead of each holding a copy.
struct FileBytes(memmap2::Mmap);

impl FileBytes {
    fn open(path: &std::path::Path) -> Result<FileBytes, DriverError> {
        let fail =
            |e: std::io::Error| DriverError::Config(format!("cannot read {}: {e}", path.display()));
        let file = std::fs::File::open(path).map_err(fail)?;
        // SAFETY: the map is read-only and private to this process; replay treats every byte as
        // untrusted input. A writer truncating the file under us would raise SIGBUS: recordings
        // are finished files (`rtfuse record` writes them whole before it exits).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(fail)?;
        Ok(FileBytes(map))
    }
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// What a deployment needs to know about a topic before its driver runs: the stream it feeds,
/// its rate and image size, from the file's summary and its first message (nothing else is
/// decoded).
#[derive(Clone, Debug, PartialEq)]
pub struct TopicInfo {
    /// The node stream.
    pub kind: StreamKind,
    /// Mean rate over the file (None: fewer than two messages, or no summary).
    pub rate_hz: Option<f64>,
    /// Width and height of the first image (images only).
    pub image_size: Option<(u32, u32)>,
    /// Channel payload bytes of the first message.
    pub first_payload: usize,
    /// Log time of the first message (ns).
    pub first_log_time: u64,
    /// Header stamp of the first message (ns).
    pub first_stamp_ns: i64,
}

/// A sink that keeps the first message's facts, then stops the replay.
struct FirstMessage<'s> {
    stop: &'s AtomicBool,
    found: Option<(MessageType, TopicInfo)>,
}

impl ReplaySink for FirstMessage<'_> {
    type Error = std::convert::Infallible;
    fn deliver(&mut self, m: &ReplayedMessage<'_>) -> Result<(), Self::Error> {
        let ty = m.msg.message_type();
        let info = TopicInfo {
            kind: stream_kind(ty).unwrap_or(StreamKind::Camera),
            rate_hz: None,
            image_size: match m.msg {
                RosMsg::Image(i) => Some((i.width, i.height)),
                _ => None,
            },
            first_payload: payload_len(m.msg, m.cdr.len()),
            first_log_time: m.log_time,
            first_stamp_ns: m.msg.stamp_ns(),
        };
        self.found = Some((ty, info));
        // SYNC: Release pairs with the replay loop's Acquire load: stop after this message.
        self.stop.store(true, Ordering::Release);
        Ok(())
    }
}

/// [`TopicInfo`] of `topic` in the MCAP file at `path`.
///
/// # Errors
/// As [`McapReplayDriver::new`].
pub fn topic_info(path: &std::path::Path, topic: &str) -> Result<TopicInfo, DriverError> {
    probe(&FileBytes::open(path)?, path, topic)
}

fn probe(bytes: &[u8], path: &std::path::Path, topic: &str) -> Result<TopicInfo, DriverError> {
    let stop = AtomicBool::new(false);
    let mut first = FirstMessage {
        stop: &stop,
        found: None,
    };
    let opts = ReplayOptions {
        topic: Some(topic.to_owned()),
        ..ReplayOptions::new(Pace::AsFastAsPossible)
    };
    replay_bytes_with(bytes, &opts, &mut first, &stop)
        .map_err(|e| DriverError::Config(format!("{}: {e}", path.display())))?;
    let Some((ty, mut info)) = first.found else {
        return Err(no_topic(bytes, path, topic));
    };
    info.kind = stream_kind(ty).ok_or_else(|| not_a_stream(path, topic, ty))?;
    info.rate_hz = ::mcap::Summary::read(bytes).ok().flatten().and_then(|s| {
        let stats = s.stats?;
        let id = s.channels.values().find(|c| c.topic == topic)?.id;
        let n = *stats.channel_message_counts.get(&id)?;
        let span = stats
            .message_end_time
            .saturating_sub(stats.message_start_time);
        (n >= 2 && span > 0).then(|| (n - 1) as f64 * 1e9 / span as f64)
    });
    Ok(info)
}

/// The error for a topic with nothing to replay, naming the topics the file has.
fn no_topic(bytes: &[u8], path: &std::path::Path, topic: &str) -> DriverError {
    let topics = plan_topic(bytes, None).map_or_else(
        |e| e.to_string(),
        |all| {
            let v: Vec<String> = all
                .iter()
                .map(|p| format!("{} ({})", p.topic, p.ty.ros_type()))
                .collect();
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        },
    );
    DriverError::Config(format!(
        "{}: no replayable messages on topic {topic}; the file has: {topics}",
        path.display()
    ))
}

fn not_a_stream(path: &std::path::Path, topic: &str, ty: MessageType) -> DriverError {
    DriverError::Config(format!(
        "{}: topic {topic} carries {}, which is not a node stream (Image, PointCloud2, Imu, \
         Odometry)",
        path.display(),
        ty.ros_type()
    ))
}

/// The `Instant` of a `CLOCK_MONOTONIC` time (both are that clock on Linux).
fn instant_at(mono_ns: u64) -> Instant {
    let (now_i, now_n) = (Instant::now(), now_ns());
    if mono_ns >= now_n {
        now_i + Duration::from_nanos(mono_ns - now_n)
    } else {
        now_i
            .checked_sub(Duration::from_nanos(now_n - mono_ns))
            .unwrap_or(now_i)
    }
}
