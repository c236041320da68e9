//! `iceoryx2`: iceoryx2 0.10 inter-process publish-subscribe with `[u8]` slices.
//!
//! Configured for a lossless hand-off like rtfuse's reject policy: no safe overflow, the
//! publisher retries until delivered, no history. Every message loans a slice of the run's
//! payload size, writes its first byte and sends it; the receiver spin-polls `receive()` (no
//! `PAUSE`, as iceoryx2's own benchmark does) and reads the first byte.

use std::mem::MaybeUninit;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::LoanError;
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory;

use crate::peer::{check_first, directions, tag, Endpoint, PeerArgs, Role, SETUP_TIMEOUT};

/// Queue depth of a ping-pong (one message in flight each way).
const PING_PONG_DEPTH: usize = 2;
/// Queue depth of the one-way stream.
pub const STREAM_DEPTH: usize = 256;

type Factory = PortFactory<ipc::Service, [u8], ()>;

/// One side: a publisher on the transmit service and/or a subscriber on the receive service.
pub struct Ice {
    publisher: Option<Publisher<ipc::Service, [u8], ()>>,
    subscriber: Option<Subscriber<ipc::Service, [u8], ()>>,
    payload: usize,
    // Ports first: fields drop in declaration order.
    _services: Vec<Factory>,
    _node: Node<ipc::Service>,
}

impl Ice {
    /// Opens (or creates) the services of this role and its ports.
    pub fn new(args: &PeerArgs) -> Result<Self> {
        set_log_level(LogLevel::Error);
        let depth = match args.role {
            Role::Ping | Role::Pong => PING_PONG_DEPTH,
            Role::StreamPub | Role::StreamSub => STREAM_DEPTH,
        };
        let node = NodeBuilder::new()
            .create::<ipc::Service>()
            .map_err(|e| anyhow!("iceoryx2 node: {e:?}"))?;
        let (tx, rx) = directions(args.role);
        let mut services = Vec::new();
        let mut publisher = None;
        let mut subscriber = None;
        if let Some(tx) = tx {
            let service = open_service(&node, &args.channel, tx, depth)?;
            publisher = Some(
                service
                    .publisher_builder()
                    .initial_max_slice_len(args.payload.max(1))
                    .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                    .create()
                    .map_err(|e| anyhow!("iceoryx2 publisher on {tx}: {e:?}"))?,
            );
            services.push(service);
        }
        if let Some(rx) = rx {
            let service = open_service(&node, &args.channel, rx, depth)?;
            subscriber = Some(
                service
                    .subscriber_builder()
                    .buffer_size(depth)
                    .create()
                    .map_err(|e| anyhow!("iceoryx2 subscriber on {rx}: {e:?}"))?,
            );
            services.push(service);
        }
        Ok(Self {
            publisher,
            subscriber,
            payload: args.payload.max(1),
            _services: services,
            _node: node,
        })
    }
}

/// Opens or creates service `<channel>/<direction>`; the other peer does the same at the same
/// time, so transient "being created" failures are retried until [`SETUP_TIMEOUT`].
fn open_service(
    node: &Node<ipc::Service>,
    channel: &str,
    direction: &str,
    depth: usize,
) -> Result<Factory> {
    let name = format!("rtfuse-bench/{channel}/{direction}");
    let service_name: ServiceName = name
        .as_str()
        .try_into()
        .map_err(|e| anyhow!("iceoryx2 service name {name}: {e:?}"))?;
    let deadline = Instant::now() + SETUP_TIMEOUT;
    loop {
        let attempt = node
            .service_builder(&service_name)
            .publish_subscribe::<[u8]>()
            .max_publishers(1)
            .max_subscribers(1)
            .history_size(0)
            .subscriber_max_buffer_size(depth)
            .enable_safe_overflow(false)
            .open_or_create();
        match attempt {
            Ok(service) => return Ok(service),
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => bail!("iceoryx2 service {name}: {e:?}"),
        }
    }
}

impl Endpoint for Ice {
    fn send(&mut self, seq: u64) -> Result<()> {
        let publisher = self.publisher.as_ref().context("this role does not send")?;
        let mut gave_up_at = None;
        loop {
            let mut sample = loop {
                match publisher.loan_slice_uninit(self.payload) {
                    Ok(sample) => break sample,
                    // All samples are lent out or queued: wait for the subscriber to release one.
                    Err(LoanError::OutOfMemory | LoanError::ExceedsMaxLoans) => {}
                    Err(e) => bail!("iceoryx2 loan: {e:?}"),
                }
            };
            sample.payload_mut()[0] = MaybeUninit::new(tag(seq));
            // SAFETY: the slice lies in a shared-memory mapping whose bytes are always initialised
            // (zero-filled by the kernel, or earlier payloads); only the first byte carries
            // meaning, and the receiver reads only that byte, which was just written.
            let sample = unsafe { sample.assume_init() };
            let delivered = sample.send().map_err(|e| anyhow!("iceoryx2 send: {e:?}"))?;
            if delivered > 0 {
                return Ok(());
            }
            // 0.10's RetryUntilDelivered still drops a sample when the subscriber's used-chunk
            // list is full (it happens in the stream); send it again, as a lossless sender must.
            let deadline = *gave_up_at.get_or_insert_with(|| Instant::now() + SETUP_TIMEOUT);
            if Instant::now() > deadline {
                bail!("iceoryx2 send {seq}: not delivered to any subscriber for {SETUP_TIMEOUT:?}");
            }
        }
    }

    fn recv(&mut self, seq: u64) -> Result<()> {
        let subscriber = self
            .subscriber
            .as_ref()
            .context("this role does not receive")?;
        loop {
            let polled = subscriber.receive();
            if let Some(sample) = polled.map_err(|e| anyhow!("iceoryx2 receive: {e:?}"))? {
                return check_first(sample.payload(), seq);
            }
        }
    }
}
