//! Recording channels into a rosbag2-style MCAP file (`cdr` messages), what `rtfuse record` runs.
//!
//! Each channel becomes one topic (`camera` → `/camera`, `camera.image_raw` →
//! `/camera/image_raw`: the inverse of [`crate::mcap_shm::channel_name`]) and each sample the ROS 2
//! message of its layout ([`crate::layout`]). Header stamps and log times are the samples' sensor
//! times moved from `CLOCK_MONOTONIC` onto the system clock by one offset taken when recording
//! starts (ROS stamps are system time), so stamps that were equal stay equal and
//! [`crate::mcap_driver`] plays the file back in step.
//!
//! The recorder is an ordinary subscriber (not on the real-time path): it waits for channels that
//! do not exist yet, reopens a channel whose publisher restarted, and counts every sample it could
//! not convert (with the first reason) instead of stopping.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::{Duration, Instant};

use shm_transport::{OpenError, Subscriber};

use crate::layout::{odometry_record_to_ros, sample_to_ros};
use crate::mcap_msgs::RosMsg;
use crate::mcap_out::{McapOutError, McapOutput};
use crate::node::outputs::OdometryRecord;
use crate::rt::now_ns;

/// How often a missing channel is looked for.
const REOPEN_PERIOD: Duration = Duration::from_millis(100);

/// The topic a channel is recorded on: `/` + the name with `.` turned into `/`.
pub fn topic_of_channel(channel: &str) -> String {
    format!("/{}", channel.replace('.', "/"))
}

/// What happened to one channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelRecord {
    /// Channel name (without the segment prefix).
    pub channel: String,
    /// Topic written.
    pub topic: String,
    /// Messages written.
    pub written: u64,
    /// Samples that could not be converted (see `first_error`).
    pub skipped: u64,
    /// Times the channel was (re)opened.
    pub opened: u64,
    /// The first conversion or open error, if any.
    pub first_error: Option<String>,
}

struct Source {
    full_name: String,
    frame_id: String,
    sub: Option<Subscriber>,
    typed_odometry: bool,
    next_try: Instant,
    rec: ChannelRecord,
}

/// Records channels into an MCAP file.
pub struct Recorder {
    out: McapOutput<BufWriter<File>>,
    sources: Vec<Source>,
    realtime_offset_ns: i128,
}

fn realtime_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

impl Recorder {
    /// Creates `path` and records `channels` (names without the prefix; segments are
    /// `prefix + name`).
    ///
    /// # Errors
    /// The file cannot be created.
    pub fn create(path: &Path, prefix: &str, channels: &[String]) -> Result<Self, McapOutError> {
        let out = McapOutput::create(path)?;
        let now = Instant::now();
        let sources = channels
            .iter()
            .map(|c| Source {
                full_name: format!("{prefix}{c}"),
                frame_id: c.clone(),
                sub: None,
                typed_odometry: false,
                next_try: now,
                rec: ChannelRecord {
                    channel: c.clone(),
                    topic: topic_of_channel(c),
                    ..ChannelRecord::default()
                },
            })
            .collect();
        Ok(Recorder {
            out,
            sources,
            realtime_offset_ns: realtime_ns() - i128::from(now_ns()),
        })
    }

    /// Opens missing channels and writes every sample waiting; returns the messages written.
    ///
    /// # Errors
    /// Writing the file failed (conversion problems are counted, not errors).
    pub fn poll(&mut self) -> Result<u64, McapOutError> {
        let mut written = 0;
        let offset = self.realtime_offset_ns;
        for s in &mut self.sources {
            if s.sub.is_none() && Instant::now() >= s.next_try {
                s.next_try = Instant::now() + REOPEN_PERIOD;
                s.open();
            }
            while let Some(sub) = &mut s.sub {
                let sample = match sub.receive() {
                    Ok(Some(x)) => x,
                    Ok(None) => break,
                    Err(_) => {
                        // Publisher gone and drained: look for its successor.
                        s.sub = None;
                        break;
                    }
                };
                let stamp = (i128::from(sample.sensor_time()) + offset).max(0);
                let stamp_i64 = i64::try_from(stamp).unwrap_or(i64::MAX);
                let msg = if s.typed_odometry {
                    match sample.read::<OdometryRecord>() {
                        Ok(r) => Ok(RosMsg::Odometry(Box::new(odometry_record_to_ros(
                            &r, stamp_i64,
                        )))),
                        Err(e) => Err(e.to_string()),
                    }
                } else {
                    sample_to_ros(
                        sample.payload(),
                        sample.user_header(),
                        sample.user(),
                        stamp_i64,
                        &s.frame_id,
                    )
                    .map_err(|e| e.to_string())
                };
                drop(sample);
                match msg {
                    Ok(m) => {
                        write_ros(&mut self.out, &s.rec.topic, stamp_i64 as u64, &m)?;
                        s.rec.written += 1;
                        written += 1;
                    }
                    Err(e) => {
                        s.rec.skipped += 1;
                        s.rec.first_error.get_or_insert(e);
                    }
                }
            }
        }
        Ok(written)
    }

    /// Channels not open at the moment (missing, or between publishers).
    pub fn waiting(&self) -> Vec<&str> {
        self.sources
            .iter()
            .filter(|s| s.sub.is_none())
            .map(|s| s.rec.channel.as_str())
            .collect()
    }

    /// Writes the summary and closes the file.
    ///
    /// # Errors
    /// Writing the end of the file failed.
    pub fn finish(self) -> Result<Vec<ChannelRecord>, McapOutError> {
        self.out.finish()?;
        Ok(self.sources.into_iter().map(|s| s.rec).collect())
    }
}

impl Source {
    fn open(&mut self) {
        let typed = Subscriber::open_typed::<OdometryRecord>(&self.full_name);
        let got = match typed {
            Ok(sub) => Ok((sub, true)),
            Err(OpenError::TypeMismatch { .. }) => {
                Subscriber::open(&self.full_name).map(|sub| (sub, false))
            }
            Err(e) => Err(e),
        };
        match got {
            Ok((sub, typed)) => {
                self.sub = Some(sub);
                self.typed_odometry = typed;
                self.rec.opened += 1;
            }
            // Not there yet, or its publisher is still setting it up: try again later.
            Err(OpenError::NotFound(_) | OpenError::NotReady(_)) => {}
            Err(e) => {
                self.rec.first_error.get_or_insert(e.to_string());
            }
        }
    }
}

/// Writes any message replay and recording handle.
///
/// # Errors
/// Encoding or writing failed.
pub fn write_ros<W: std::io::Write + std::io::Seek>(
    out: &mut McapOutput<W>,
    topic: &str,
    log_time_ns: u64,
    m: &RosMsg,
) -> Result<(), McapOutError> {
    match m {
        RosMsg::Image(x) => out.write(topic, log_time_ns, x),
        RosMsg::PointCloud2(x) => out.write(topic, log_time_ns, x),
        RosMsg::Imu(x) => out.write(topic, log_time_ns, x),
        RosMsg::CameraInfo(x) => out.write(topic, log_time_ns, x),
        RosMsg::Odometry(x) => out.write(topic, log_time_ns, x.as_ref()),
    }
}
