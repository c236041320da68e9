//! `rtfuse`: the shm-transport channel, one per direction.
//!
//! Each side creates the publisher of its transmit channel and opens (retrying until the other
//! side has created it) the subscriber of its receive channel. Lossless like the iceoryx2 set-up:
//! `OverflowPolicy::Reject`, the sender retries a full ring or an empty slab. Every message loans a
//! chunk, writes its first byte, sets the length to the run's payload and publishes; the receiver
//! spin-polls `receive()` (no `PAUSE`) and reads the first byte. Chunks are pinned and prefaulted
//! by the transport itself.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use shm_transport::{
    ChannelConfig, HugePages, LoanError, MemoryLock, OpenError, OverflowPolicy, PublishError,
    Publisher, Subscriber, WakeupPolicy,
};

use crate::peer::{check_first, directions, tag, Endpoint, PeerArgs, Role, SETUP_TIMEOUT};

/// Ring depth of a ping-pong (one message in flight each way).
const PING_PONG_DEPTH: u32 = 2;
/// Ring depth of the one-way stream (the same as iceoryx2's subscriber buffer there).
const STREAM_DEPTH: u32 = crate::systems::ice::STREAM_DEPTH as u32;

/// One side: a publisher on the transmit channel and/or a subscriber on the receive channel.
pub struct Shm {
    // The subscriber first: it detaches before our publisher goes away.
    subscriber: Option<Subscriber>,
    publisher: Option<Publisher>,
    payload: usize,
}

impl Shm {
    /// Creates this role's publisher, then opens its subscriber.
    pub fn new(args: &PeerArgs) -> Result<Self> {
        let payload = args.payload.max(1);
        let depth = match args.role {
            Role::Ping | Role::Pong => PING_PONG_DEPTH,
            Role::StreamPub | Role::StreamSub => STREAM_DEPTH,
        };
        let cfg = ChannelConfig {
            chunk_size: payload,
            // Ring full + one held by the subscriber + one being filled, and one spare.
            chunk_count: depth + 3,
            ring_depth: depth,
            max_subscribers: 1,
            // Page-aligned chunks for large payloads (what DMA wants); a cache line for small ones.
            alignment: if payload >= 4096 { 4096 } else { 64 },
            overflow: OverflowPolicy::Reject,
            wakeup: WakeupPolicy::Spin,
            memory_lock: MemoryLock::BestEffort,
            huge_pages: HugePages::Off,
            ..ChannelConfig::default()
        };
        let (tx, rx) = directions(args.role);
        let publisher = match tx {
            Some(tx) => {
                let name = channel_name(&args.channel, tx);
                Some(Publisher::create(&name, &cfg).with_context(|| format!("create {name}"))?)
            }
            None => None,
        };
        let subscriber = match rx {
            Some(rx) => Some(open_when_ready(&channel_name(&args.channel, rx))?),
            None => None,
        };
        Ok(Self {
            subscriber,
            publisher,
            payload,
        })
    }
}

fn channel_name(channel: &str, direction: &str) -> String {
    format!("bench.{channel}.{direction}")
}

/// Removes the segments of pair `channel` whose publisher is dead (after a killed peer); returns
/// the channels removed.
pub fn clean_stale(channel: &str) -> Vec<String> {
    let prefix = channel_name(channel, "");
    shm_transport::admin::clean_stale_matching(|name| name.starts_with(&prefix))
}

/// Opens `name` as a subscriber, waiting for the other peer to create it.
fn open_when_ready(name: &str) -> Result<Subscriber> {
    let deadline = Instant::now() + SETUP_TIMEOUT;
    loop {
        match Subscriber::open(name) {
            Ok(sub) => return Ok(sub),
            Err(OpenError::NotFound(_) | OpenError::NotReady(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e).with_context(|| format!("open {name}")),
        }
    }
}

impl Endpoint for Shm {
    fn send(&mut self, seq: u64) -> Result<()> {
        let publisher = self.publisher.as_mut().context("this role does not send")?;
        let mut sample = loop {
            match publisher.loan() {
                Ok(sample) => break sample,
                // Every chunk is queued or held: wait for the subscriber to return one.
                Err(LoanError::OutOfChunks) => {}
                Err(e) => bail!("rtfuse loan: {e}"),
            }
        };
        sample.payload_mut()[0] = tag(seq);
        sample.set_len(self.payload);
        loop {
            match sample.publish() {
                Ok(_) => return Ok(()),
                // The subscriber's ring is full (reject policy): try again until it drains.
                Err(PublishError::Full(back)) => sample = back,
                Err(e) => bail!("rtfuse publish: {e}"),
            }
        }
    }

    fn recv(&mut self, seq: u64) -> Result<()> {
        let subscriber = self
            .subscriber
            .as_mut()
            .context("this role does not receive")?;
        loop {
            let polled = subscriber.receive();
            if let Some(sample) = polled.map_err(|e| anyhow!("rtfuse receive: {e}"))? {
                return check_first(sample.payload(), seq);
            }
        }
    }
}
