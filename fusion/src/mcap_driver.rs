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

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use shm_transport::{ChannelConfig, Publisher};

use crate::driver::meta::META_LEN;
use crate::driver::{DriverError, DriverStats, SensorDriver, StreamKind};
use crate::mcap_replay::{replay_bytes_with, Pace, ReplayOptions, ReplaySink, ReplayedMessage};
use crate::mcap_shm::{plan_topic, publish_converted, stream_kind, ChannelPlan, ShmSinkError};
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
    bytes: Vec<u8>,
    plan: ChannelPlan,
    kind: StreamKind,
    clock: FileClock,
}

impl McapReplayDriver {
    /// Reads the file and plans the topic's channel.
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
        let bytes = std::fs::read(&cfg.file)
            .map_err(|e| DriverError::Config(format!("cannot read {}: {e}", cfg.file.display())))?;
        let bad =
            |e: &dyn std::fmt::Display| DriverError::Config(format!("{}: {e}", cfg.file.display()));
        let plan = plan_topic(&bytes, Some(&cfg.topic))
            .map_err(|e| bad(&e))?
            .into_iter()
            .next();
        let Some(plan) = plan else {
            let all = plan_topic(&bytes, None).map_err(|e| bad(&e))?;
            let topics: Vec<String> = all
                .iter()
                .map(|p| format!("{} ({})", p.topic, p.ty.ros_type()))
                .collect();
            return Err(bad(&format_args!(
                "no replayable messages on topic {}; the file has: {}",
                cfg.topic,
                if topics.is_empty() {
                    "none".to_string()
                } else {
                    topics.join(", ")
                }
            )));
        };
        let kind = stream_kind(plan.ty).ok_or_else(|| {
            bad(&format_args!(
                "topic {} carries {}, which is not a node stream (Image, PointCloud2, Imu, Odometry)",
                cfg.topic,
                plan.ty.ros_type()
            ))
        })?;
        let clock = FileClock::of(&bytes)?;
        Ok(McapReplayDriver {
            cfg,
            bytes,
            plan,
            kind,
            clock,
        })
    }

    /// What the first pass found on the topic.
    pub fn plan(&self) -> &ChannelPlan {
        &self.plan
    }

    /// The file's clock.
    pub fn clock(&self) -> FileClock {
        self.clock
    }

    /// The offset from header stamps to sensor times for pass 0 at `epoch_ns`.
    fn stamp_offset(&self, epoch_ns: u64) -> i128 {
        let p = &self.plan;
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
        self.kind
    }

    fn rate_hz(&self) -> f64 {
        self.plan.rate_hz().unwrap_or(1.0)
    }

    fn channel_config(&self) -> ChannelConfig {
        ChannelConfig {
            chunk_size: self.plan.max_payload.max(64),
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
