//! How a gateway bridge puts a ROS 2 message into its channel (ingest) and takes one out
//! (egress): the [`PayloadCodec`] of the bridge.
//!
//! The default, [`RawCdrCodec`], carries the complete serialized message (see
//! [`crate::gateway`]'s module doc): what ros2-plugin users exchanging CDR through shared memory
//! expect. A deployment whose channels use another layout (rtfuse's frame layouts: a frame
//! header in the chunk's user header, the sample in a fixed payload layout) gives those bridges
//! its own codec through [`crate::gateway::Gateway::start_with_codecs`]; ros2-plugin itself knows
//! nothing of those layouts.
//!
//! # Time
//! ROS 2 header stamps are system time (`CLOCK_REALTIME`); rtfuse sensor times are
//! `CLOCK_MONOTONIC`. A gateway fixes one [`ClockMap`] (system − monotonic) when it starts and
//! hands it to every codec call, so stamps that were equal stay equal, rates are kept, and a stamp
//! that goes out through egress and comes back through ingest is the same sensor time. A step of
//! the system clock while the gateway runs (NTP, an operator) is not followed: restart the
//! gateway.

use std::time::{SystemTime, UNIX_EPOCH};

use shm_transport::{OpenError, Sample, SampleMut, Subscriber};

use crate::known::{self, Validator};
use crate::raw::RawCdr;

/// System time minus `CLOCK_MONOTONIC`, fixed once: maps ROS header stamps onto rtfuse sensor
/// times and back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockMap {
    /// `CLOCK_REALTIME − CLOCK_MONOTONIC` in ns.
    offset_ns: i128,
}

impl ClockMap {
    /// The offset between the clocks now (the monotonic clock read on both sides of the system
    /// clock, the mean taken).
    ///
    /// # Examples
    /// ```
    /// use ros2_plugin::codec::ClockMap;
    /// let clock = ClockMap::now();
    /// let t = shm_transport::now_ns();
    /// assert_eq!(clock.to_monotonic(clock.to_system(t)), Some(t));
    /// ```
    pub fn now() -> ClockMap {
        let before = i128::from(shm_transport::now_ns());
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let after = i128::from(shm_transport::now_ns());
        ClockMap {
            offset_ns: system - (before + after) / 2,
        }
    }

    /// A map with a given offset (system − monotonic, ns): for tests and for tools that must
    /// agree with a recorded offset.
    pub fn from_offset_ns(offset_ns: i64) -> ClockMap {
        ClockMap {
            offset_ns: i128::from(offset_ns),
        }
    }

    /// System time − monotonic time, ns.
    pub fn offset_ns(&self) -> i64 {
        i64::try_from(self.offset_ns).unwrap_or(i64::MAX)
    }

    /// The monotonic time of system time `system_ns` (a ROS stamp), or `None` when it falls
    /// before the monotonic clock's zero (a stamp from before this host booted, e.g. an old bag
    /// played without `--clock`).
    pub fn to_monotonic(&self, system_ns: i64) -> Option<u64> {
        u64::try_from(i128::from(system_ns) - self.offset_ns).ok()
    }

    /// The system time (a ROS stamp) of monotonic time `monotonic_ns` (saturated to `i64`).
    pub fn to_system(&self, monotonic_ns: u64) -> i64 {
        let t = i128::from(monotonic_ns) + self.offset_ns;
        i64::try_from(t.max(0)).unwrap_or(i64::MAX)
    }
}

/// A message an ingest bridge took from DDS, for [`PayloadCodec::ingest`].
#[derive(Debug, Clone, Copy)]
pub struct IngestMsg<'a> {
    /// The complete serialized message (encapsulation header + CDR body) as it crossed the wire.
    /// Not validated yet: it comes from the network.
    pub cdr: &'a [u8],
    /// Its DDS sequence number.
    pub sequence_number: i64,
    /// When the bridge took it (`CLOCK_MONOTONIC` ns).
    pub received_ns: u64,
    /// The gateway's clock map.
    pub clock: ClockMap,
}

/// Why a codec refused a message or a sample.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Not a well-formed message of the bridge's type (bad CDR, a sample that is not what the
    /// channel's layout says). Counted in `BridgeStats::malformed`.
    #[error("malformed: {0}")]
    Malformed(String),
    /// Well formed, but it cannot be carried in the channel's layout (an image encoding the
    /// layout has no code for, a stamp before boot, a sample of another kind). Counted in
    /// `BridgeStats::unconvertible`.
    #[error("cannot convert: {0}")]
    Unconvertible(String),
    /// Larger than the channel's chunks (ingest). Counted in `BridgeStats::oversize`.
    #[error("{need}-byte payload does not fit the {have}-byte chunks")]
    Oversize {
        /// Bytes the payload needs.
        need: usize,
        /// Chunk size of the channel.
        have: usize,
    },
}

/// How one bridge moves messages between DDS and its channel. Called on the bridge's own thread
/// (not a real-time path); must never panic on what it reads from the network or from shared
/// memory.
pub trait PayloadCodec: Send + Sync {
    /// A short name for logs and stats (`"raw-cdr"`).
    fn name(&self) -> &str;

    /// Bytes of user header the channel's chunks need; an ingest bridge creates its channel with
    /// at least this many (default 0).
    fn user_header_size(&self) -> usize {
        0
    }

    /// Ingest: writes `msg` into the loaned `chunk` (payload, user header, length, user word,
    /// sensor time and whatever else the layout needs) and returns the payload length. The
    /// bridge publishes the chunk on `Ok` and gives it back unpublished on `Err`.
    ///
    /// # Errors
    /// A [`CodecError`]; the bridge counts it and goes on.
    fn ingest(&self, msg: &IngestMsg<'_>, chunk: &mut SampleMut<'_>) -> Result<usize, CodecError>;

    /// Egress: opens the channel (default [`Subscriber::open`]; a typed channel needs
    /// [`Subscriber::open_typed`], which refuses an untyped one and vice versa).
    ///
    /// # Errors
    /// The channel is not there (yet), or not of the kind the codec reads.
    fn open(&self, channel: &str) -> Result<Subscriber, OpenError> {
        Subscriber::open(channel)
    }

    /// Egress: the serialized ROS 2 message of `sample`.
    ///
    /// # Errors
    /// A [`CodecError`]; the bridge counts it and goes on.
    fn egress(&self, sample: &Sample, clock: ClockMap) -> Result<RawCdr, CodecError>;
}

/// The default codec: a chunk holds the complete serialized message, byte for byte (see
/// [`crate::gateway`]). Every payload is validated against the bridge's type in both directions.
/// Ingest sets the user word to the DDS sequence number and the sensor time to the time of
/// reception.
#[derive(Debug, Clone, Copy)]
pub struct RawCdrCodec {
    validator: Validator,
}

impl RawCdrCodec {
    /// The codec for `ros_type`, `None` for a type this build does not know
    /// (see [`known::validator`]).
    ///
    /// # Examples
    /// ```
    /// use ros2_plugin::codec::{PayloadCodec, RawCdrCodec};
    /// let codec = RawCdrCodec::for_type("sensor_msgs/msg/Imu").unwrap();
    /// assert_eq!(codec.name(), "raw-cdr");
    /// assert!(RawCdrCodec::for_type("std_msgs/msg/String").is_none());
    /// ```
    pub fn for_type(ros_type: &str) -> Option<RawCdrCodec> {
        known::validator(ros_type).map(|validator| RawCdrCodec { validator })
    }
}

impl PayloadCodec for RawCdrCodec {
    fn name(&self) -> &str {
        "raw-cdr"
    }

    fn ingest(&self, msg: &IngestMsg<'_>, chunk: &mut SampleMut<'_>) -> Result<usize, CodecError> {
        (self.validator)(msg.cdr).map_err(|e| CodecError::Malformed(e.to_string()))?;
        let n = msg.cdr.len();
        let have = chunk.payload_mut().len();
        let dst = chunk
            .payload_mut()
            .get_mut(..n)
            .ok_or(CodecError::Oversize { need: n, have })?;
        dst.copy_from_slice(msg.cdr);
        chunk.set_len(n);
        chunk.set_sensor_time(msg.received_ns);
        chunk.set_user(msg.sequence_number as u64);
        Ok(n)
    }

    fn egress(&self, sample: &Sample, _clock: ClockMap) -> Result<RawCdr, CodecError> {
        let payload = sample.payload();
        (self.validator)(payload)
            .and_then(|()| RawCdr::from_payload(payload))
            .map_err(|e| CodecError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_map_round_trips_and_refuses_stamps_before_boot() {
        let c = ClockMap::from_offset_ns(1_700_000_000_000_000_000);
        assert_eq!(c.to_monotonic(1_700_000_000_000_000_123), Some(123));
        assert_eq!(c.to_system(123), 1_700_000_000_000_000_123);
        assert_eq!(
            c.to_monotonic(1_000_000_000_000),
            None,
            "1970 is before boot"
        );
        let now = ClockMap::now();
        let t = shm_transport::now_ns();
        assert_eq!(now.to_monotonic(now.to_system(t)), Some(t));
        assert!(now.offset_ns() > 0, "the system clock is past 1970");
    }
}
