//! Same-host zero-copy path: [`ZcPublisher`] and [`ZcSubscription`] for Rust ROS 2 nodes.
//!
//! A `ZcPublisher` owns an ordinary DDS writer on `rt/<topic>` *and* an rtfuse shared-memory
//! channel (see [`crate::registry`] for its name). Every message is serialized once, straight
//! into a loaned chunk, when a same-host [`ZcSubscription`] is attached; the DDS copy is written
//! whenever at least one matched DDS reader is *not* an attached plugin peer (a remote node, an
//! rclcpp/rclpy node, a Cyclone or Fast DDS application), and skipped when every matched reader
//! is a plugin peer — then nothing at all goes over DDS.
//!
//! # No duplicates, no loss
//! The descriptor's `user` word of each shared-memory sample carries the RTPS sequence number
//! its DDS copy got (0 when no DDS copy was written). The publisher always publishes to shared
//! memory *before* writing to DDS, so when a subscription takes a DDS sample from a writer it is
//! attached to, it first drains that writer's channel: if the DDS sample's sequence number was
//! already delivered by shared memory it is dropped (counted as a suppressed duplicate),
//! otherwise (published before we attached, or the chunk was dropped / did not fit) it is
//! delivered. A peer appearing or vanishing therefore neither loses nor duplicates a sample.
//!
//! # Examples
//! ```no_run
//! use ros2_plugin::zc::{ZcOptions, ZcPublisher, ZcSubscription};
//! use rtfuse_msgs::sensor_msgs::Image;
//! let ctx = ros2_plugin::context::new_context(None)?;
//! let mut publisher = ZcPublisher::<Image>::new(&ctx, "/camera/image", &ZcOptions::default())?;
//! let mut sub = ZcSubscription::<Image>::new(&ctx, "/camera/image", &ZcOptions::default())?;
//! publisher.publish(&Image::default())?;
//! if let Some((img, info)) = sub.take_timeout(std::time::Duration::from_secs(1))? {
//!     println!("{} bytes via shm: {}", img.data.len(), info.via_shm);
//! }
//! # Ok::<(), ros2_plugin::PluginError>(())
//! ```

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use ros2_client::dds::rustdds::GUID;
use rtfuse_msgs::{cdr, RosMessage};
use shm_transport::{ChannelConfig, OverflowPolicy, Publisher, ReceiveError, Subscriber};

use crate::error::PluginError;
use crate::qos::{DurabilityKind, QosConfig};
use crate::raw::{RawCdr, RawReader, RawWriter};
use crate::registry::{self, AttachMarker};

/// How often peers are looked for in `/dev/shm`.
const SCAN_PERIOD: Duration = Duration::from_millis(10);

/// Options of both ends.
#[derive(Debug, Clone, PartialEq)]
pub struct ZcOptions {
    /// DDS QoS (also the shared-memory overflow policy: keep last).
    pub qos: QosConfig,
    /// Largest message that goes by shared memory (publisher); larger ones go by DDS only.
    pub chunk_size: usize,
    /// Chunks in the publisher's slab.
    pub chunk_count: u32,
}

impl Default for ZcOptions {
    fn default() -> Self {
        ZcOptions {
            qos: QosConfig::ros_default(),
            chunk_size: 4 << 20,
            chunk_count: 8,
        }
    }
}

/// Counters of a [`ZcPublisher`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZcPublisherStats {
    /// Calls to `publish`.
    pub published: u64,
    /// Messages that went into the shared-memory channel.
    pub via_shm: u64,
    /// Messages written to DDS.
    pub via_dds: u64,
    /// Messages for which the DDS copy was skipped (every matched reader a plugin peer).
    pub dds_skipped: u64,
    /// Messages too large for a chunk (sent by DDS only).
    pub oversize: u64,
    /// Messages for which no chunk was free (sent by DDS only).
    pub no_chunk: u64,
    /// DDS sequence numbers that differed from the prediction (should stay 0).
    pub seq_mispredicted: u64,
}

/// Same-host aware publisher of `M` on a ROS 2 topic.
pub struct ZcPublisher<M> {
    writer: RawWriter,
    shm: Publisher,
    transient_local: bool,
    attached: HashSet<String>,
    last_scan: Option<Instant>,
    next_dds_seq: i64,
    stats: ZcPublisherStats,
    _m: PhantomData<fn(&M)>,
}

impl<M: RosMessage> ZcPublisher<M> {
    /// Creates the DDS writer on `rt/<topic>` and the shared-memory channel.
    ///
    /// # Errors
    /// Invalid names, DDS or shared-memory creation failures.
    pub fn new(
        ctx: &ros2_client::Context,
        topic: &str,
        opts: &ZcOptions,
    ) -> Result<ZcPublisher<M>, PluginError> {
        let writer = RawWriter::new(&ctx.domain_participant(), topic, M::ROS_TYPE, &opts.qos)?;
        let channel = registry::channel_name(writer.topic(), writer.guid());
        let cfg = ChannelConfig {
            chunk_size: opts.chunk_size,
            chunk_count: opts.chunk_count,
            // Rings as deep as the slab: a slow subscriber makes `loan` fail before its ring
            // would drop anything, and the message then goes by DDS instead (no loss).
            ring_depth: opts.chunk_count.next_power_of_two(),
            max_subscribers: 8,
            overflow: OverflowPolicy::KeepLast,
            ..ChannelConfig::default()
        };
        let shm = Publisher::create(&channel, &cfg)
            .map_err(|e| PluginError::Shm(channel.clone(), e.to_string()))?;
        Ok(ZcPublisher {
            writer,
            shm,
            transient_local: opts.qos.durability == DurabilityKind::TransientLocal,
            attached: HashSet::new(),
            last_scan: None,
            next_dds_seq: 1,
            stats: ZcPublisherStats::default(),
            _m: PhantomData,
        })
    }

    /// The DDS writer's GUID.
    pub fn guid(&self) -> GUID {
        self.writer.guid()
    }

    /// Counters.
    pub fn stats(&self) -> ZcPublisherStats {
        self.stats
    }

    /// DDS readers matched now and how many of them are attached plugin peers.
    pub fn peers(&mut self) -> (usize, usize) {
        self.refresh(true);
        let matched = self.writer.poll_events();
        let local = matched
            .iter()
            .filter(|g| self.attached.contains(&registry::guid_hex(**g)))
            .count();
        (matched.len(), local)
    }

    fn refresh(&mut self, force: bool) {
        if force || self.last_scan.is_none_or(|t| t.elapsed() >= SCAN_PERIOD) {
            self.attached = registry::attached_readers(self.writer.guid());
            self.last_scan = Some(Instant::now());
        }
    }

    /// Publishes `msg`: by shared memory to attached same-host peers, by DDS to everyone else.
    ///
    /// # Errors
    /// Encoding failures and DDS write failures (the shared-memory copy, if any, is out).
    pub fn publish(&mut self, msg: &M) -> Result<(), PluginError> {
        self.publish_inner(&mut |buf| cdr::encode_to_slice(msg, buf), &mut || {
            Ok(RawCdr::encode(msg)?)
        })
    }

    /// Publishes a message that `write` serializes straight into the shared-memory chunk
    /// (complete payload: encapsulation header + CDR), returning its length: a camera driver
    /// can let its DMA fill the pixel bytes in place. `len` is the payload length, used for a
    /// heap buffer when the message must go by DDS instead (no subscriber attached, no free
    /// chunk); when it goes by both, the DDS copy is taken from the chunk.
    ///
    /// # Errors
    /// What `write` returns, and DDS write failures.
    pub fn publish_with(
        &mut self,
        len: usize,
        write: impl FnMut(&mut [u8]) -> Result<usize, cdr::EncodeError>,
    ) -> Result<(), PluginError> {
        let write = std::cell::RefCell::new(write);
        self.publish_inner(&mut |buf| (write.borrow_mut())(buf), &mut || {
            let mut v = vec![0; len];
            let n = (write.borrow_mut())(&mut v)?;
            RawCdr::from_payload(&v[..n])
                .map_err(|e| PluginError::Write("heap".into(), e.to_string()))
        })
    }

    fn publish_inner(
        &mut self,
        write: &mut dyn FnMut(&mut [u8]) -> Result<usize, cdr::EncodeError>,
        fallback: &mut dyn FnMut() -> Result<RawCdr, PluginError>,
    ) -> Result<(), PluginError> {
        self.refresh(false);
        self.stats.published += 1;
        let matched = self.writer.poll_events();
        let all_local = !matched.is_empty()
            && matched
                .iter()
                .all(|g| self.attached.contains(&registry::guid_hex(*g)));
        let mut dds_needed = self.transient_local || !all_local;
        let mut dds_payload = None;
        if self.shm.subscriber_count() > 0 {
            match self.shm.loan() {
                Ok(mut chunk) => match write(chunk.payload_mut()) {
                    Ok(n) => {
                        chunk.set_len(n);
                        chunk.set_sensor_time(shm_transport::now_ns());
                        if dds_needed {
                            chunk.set_user(self.next_dds_seq as u64);
                            dds_payload = Some(
                                RawCdr::from_payload(&chunk.payload_mut()[..n])
                                    .map_err(|e| PluginError::Write("shm".into(), e.to_string()))?,
                            );
                        } else {
                            chunk.set_user(0);
                        }
                        if chunk.publish().is_ok() {
                            self.stats.via_shm += 1;
                        } else {
                            dds_needed = true;
                        }
                    }
                    Err(cdr::EncodeError::BufferTooSmall(_)) => {
                        self.stats.oversize += 1;
                        dds_needed = true;
                    }
                    Err(e) => return Err(e.into()),
                },
                Err(_) => {
                    self.stats.no_chunk += 1;
                    dds_needed = true;
                }
            }
        } else {
            dds_needed = true;
        }
        if !dds_needed {
            self.stats.dds_skipped += 1;
            return Ok(());
        }
        let payload = match dds_payload {
            Some(p) => p,
            None => fallback()?,
        };
        let seq = self.writer.write(payload)?;
        if seq != self.next_dds_seq {
            self.stats.seq_mispredicted += 1;
        }
        self.next_dds_seq = seq + 1;
        self.stats.via_dds += 1;
        Ok(())
    }
}

/// How a message reached a [`ZcSubscription`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZcInfo {
    /// By the shared-memory channel (else by DDS).
    pub via_shm: bool,
    /// DDS sequence number (0 for a shared-memory-only message).
    pub dds_seq: i64,
    /// `CLOCK_MONOTONIC` ns when the publisher wrote it (shared memory only, else 0).
    pub sent_ns: u64,
}

/// Counters of a [`ZcSubscription`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZcSubscriptionStats {
    /// Messages delivered from shared memory.
    pub via_shm: u64,
    /// Messages delivered from DDS.
    pub via_dds: u64,
    /// DDS copies dropped because shared memory delivered them.
    pub duplicates_suppressed: u64,
    /// Payloads that did not decode (dropped, counted).
    pub malformed: u64,
    /// Plugin publishers attached so far.
    pub attached: u64,
    /// Plugin publishers that went away.
    pub detached: u64,
}

struct Attached {
    sub: Subscriber,
    _marker: AttachMarker,
    /// DDS sequence numbers delivered by shared memory whose DDS copy has not arrived yet.
    shm_seqs: BTreeSet<i64>,
}

/// Upper bound on remembered sequence numbers per publisher (DDS copies lost on a best-effort
/// link never arrive to clear them).
const MAX_REMEMBERED: usize = 4096;

/// Same-host aware subscription to `M` on a ROS 2 topic.
pub struct ZcSubscription<M> {
    reader: RawReader,
    channels: HashMap<String, Attached>,
    pending: VecDeque<(ZcPayload, ZcInfo)>,
    /// Last DDS sequence number taken from DDS, per writer (GUID hex).
    last_dds: HashMap<String, i64>,
    last_scan: Option<Instant>,
    stats: ZcSubscriptionStats,
    _m: PhantomData<fn() -> M>,
}

impl<M: RosMessage> ZcSubscription<M> {
    /// Creates the DDS reader on `rt/<topic>`; plugin publishers are found automatically.
    ///
    /// # Errors
    /// Invalid names or DDS failures.
    pub fn new(
        ctx: &ros2_client::Context,
        topic: &str,
        opts: &ZcOptions,
    ) -> Result<ZcSubscription<M>, PluginError> {
        let reader = RawReader::new(&ctx.domain_participant(), topic, M::ROS_TYPE, &opts.qos)?;
        Ok(ZcSubscription {
            reader,
            channels: HashMap::new(),
            pending: VecDeque::new(),
            last_dds: HashMap::new(),
            last_scan: None,
            stats: ZcSubscriptionStats::default(),
            _m: PhantomData,
        })
    }

    /// Counters.
    pub fn stats(&self) -> ZcSubscriptionStats {
        self.stats
    }

    /// Plugin publishers currently attached.
    pub fn attached_publishers(&mut self) -> usize {
        self.scan(true);
        self.channels.len()
    }

    /// DDS writers matched now.
    pub fn matched_publishers(&mut self) -> usize {
        self.reader.poll_events().len()
    }

    fn scan(&mut self, force: bool) {
        if !force && self.last_scan.is_some_and(|t| t.elapsed() < SCAN_PERIOD) {
            return;
        }
        self.last_scan = Some(Instant::now());
        for (hex, channel) in registry::publishers_of(self.reader.topic()) {
            if self.channels.contains_key(&hex) {
                continue;
            }
            // NotFound / NotReady (a publisher mid-creation or gone) are retried next scan.
            let Ok(sub) = Subscriber::open(&channel) else {
                continue;
            };
            let Ok(marker) = AttachMarker::create(&hex, self.reader.guid()) else {
                continue;
            };
            self.stats.attached += 1;
            self.channels.insert(
                hex,
                Attached {
                    sub,
                    _marker: marker,
                    shm_seqs: BTreeSet::new(),
                },
            );
        }
    }

    fn drain(&mut self, hex: &str) {
        let Some(att) = self.channels.get_mut(hex) else {
            return;
        };
        let mut gone = false;
        loop {
            match att.sub.receive() {
                Ok(Some(sample)) => {
                    let dds_seq = sample.user() as i64;
                    if dds_seq != 0 && self.last_dds.get(hex).is_some_and(|&l| dds_seq <= l) {
                        // Already delivered by DDS (a sample from before we attached).
                        self.stats.duplicates_suppressed += 1;
                        continue;
                    }
                    if dds_seq != 0 {
                        att.shm_seqs.insert(dds_seq);
                        if att.shm_seqs.len() > MAX_REMEMBERED {
                            att.shm_seqs.pop_first();
                        }
                    }
                    self.stats.via_shm += 1;
                    let info = ZcInfo {
                        via_shm: true,
                        dds_seq,
                        sent_ns: sample.sensor_time(),
                    };
                    self.pending.push_back((ZcPayload::Shm(sample), info));
                }
                Ok(None) => break,
                Err(ReceiveError::Disconnected) => {
                    gone = true;
                    break;
                }
                Err(e) => {
                    tracing::warn!(channel = hex, "shared-memory receive: {e}");
                    break;
                }
            }
        }
        if gone {
            self.channels.remove(hex);
            self.stats.detached += 1;
        }
    }

    fn poll_dds(&mut self) -> Result<(), PluginError> {
        while let Some(sample) = self.reader.take()? {
            let hex = registry::guid_hex(sample.writer);
            let seq = sample.sequence_number;
            // A writer's samples come in sequence order; anything at or below the last one seen
            // is a re-delivery.
            if self.last_dds.get(&hex).is_some_and(|&last| seq <= last) {
                self.stats.duplicates_suppressed += 1;
                continue;
            }
            if self.channels.contains_key(&hex) {
                // The shared-memory copy, if any, was published before this DDS sample.
                self.drain(&hex);
            }
            self.last_dds.insert(hex.clone(), seq);
            if let Some(att) = self.channels.get_mut(&hex) {
                let dup = att.shm_seqs.remove(&seq);
                // Older entries never get a DDS copy any more.
                att.shm_seqs = att.shm_seqs.split_off(&seq);
                if dup {
                    self.stats.duplicates_suppressed += 1;
                    continue;
                }
            }
            self.stats.via_dds += 1;
            let info = ZcInfo {
                via_shm: false,
                dds_seq: seq,
                sent_ns: 0,
            };
            self.pending
                .push_back((ZcPayload::Dds(sample.data.to_payload()), info));
        }
        Ok(())
    }

    /// The next message in serialized form, if one is there (non-blocking).
    fn next_payload(&mut self) -> Result<Option<(ZcPayload, ZcInfo)>, PluginError> {
        if let Some(m) = self.pending.pop_front() {
            return Ok(Some(m));
        }
        self.scan(false);
        let keys: Vec<String> = self.channels.keys().cloned().collect();
        for hex in &keys {
            self.drain(hex);
        }
        self.poll_dds()?;
        Ok(self.pending.pop_front())
    }

    /// Waits up to `timeout` for the next message in serialized form.
    fn next_payload_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<(ZcPayload, ZcInfo)>, PluginError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.next_payload()? {
                return Ok(Some(m));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let slice = (deadline - now).min(Duration::from_millis(2));
            if self.channels.is_empty() {
                self.reader.wait(slice);
            } else {
                let subs: Vec<&Subscriber> = self.channels.values().map(|a| &a.sub).collect();
                shm_transport::wait_any(&subs, slice.min(Duration::from_millis(1)));
            }
        }
    }

    fn decode(&mut self, next: Option<(ZcPayload, ZcInfo)>) -> Option<(M, ZcInfo)> {
        let (payload, info) = next?;
        match cdr::decode::<M>(payload.bytes()) {
            Ok(msg) => Some((msg, info)),
            Err(e) => {
                self.stats.malformed += 1;
                tracing::warn!(via_shm = info.via_shm, "malformed sample dropped: {e}");
                None
            }
        }
    }

    /// Takes the next message if one is there (non-blocking), decoded.
    ///
    /// # Errors
    /// DDS read failures.
    pub fn take(&mut self) -> Result<Option<(M, ZcInfo)>, PluginError> {
        while let Some(next) = self.next_payload()? {
            if let Some(m) = self.decode(Some(next)) {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// Waits up to `timeout` for the next message, decoded.
    ///
    /// # Errors
    /// DDS read failures.
    pub fn take_timeout(&mut self, timeout: Duration) -> Result<Option<(M, ZcInfo)>, PluginError> {
        let deadline = Instant::now() + timeout;
        while let Some(next) =
            self.next_payload_timeout(deadline.saturating_duration_since(Instant::now()))?
        {
            if let Some(m) = self.decode(Some(next)) {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// Waits up to `timeout` for the next message *without decoding or copying it*: a
    /// shared-memory message stays in its chunk (returned to the publisher when the
    /// [`ZcPayload`] drops). Decode what you need with [`cdr::decode_borrowed`], e.g. into
    /// `rtfuse_msgs::sensor_msgs::ImageView`.
    ///
    /// # Errors
    /// DDS read failures.
    pub fn take_loaned_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<(ZcPayload, ZcInfo)>, PluginError> {
        self.next_payload_timeout(timeout)
    }
}

/// A received message in serialized form (encapsulation header + CDR): still in the
/// publisher's shared-memory chunk, or the bytes DDS delivered.
pub enum ZcPayload {
    /// In shared memory; the chunk goes back to the publisher when this drops.
    Shm(shm_transport::Sample),
    /// From DDS.
    Dds(Vec<u8>),
}

impl ZcPayload {
    /// The complete serialized message.
    pub fn bytes(&self) -> &[u8] {
        match self {
            ZcPayload::Shm(s) => s.payload(),
            ZcPayload::Dds(v) => v,
        }
    }
}
