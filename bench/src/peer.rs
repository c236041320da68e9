//! One side of a measured pair: the hidden `transport-peer` subcommand.
//!
//! The parent starts two of these (same binary, re-executed), one per core. Each pins itself,
//! asks for SCHED_FIFO, builds its end of the system under test, locks its memory, meets the other
//! on the control page's barrier and then runs its role. It prints one JSON line (a
//! [`PeerReport`]) on stdout when done; errors go to stderr with a non-zero exit status.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::control::Control;
use crate::rt::{self, RtState};
use crate::stats::{self, LatencyStats};
use crate::systems;

/// How long a peer waits for the other one at set-up (resources, barrier).
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The systems under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// Bare atomic cache-line ping-pong: the physical limit.
    Floor,
    /// The floor plus a payload byte on a second line: the least a payload-touching hand-off costs.
    FloorTouch,
    /// The rtfuse shared-memory transport.
    Rtfuse,
    /// iceoryx2 0.10 publish-subscribe.
    Iceoryx2,
    /// Payload copied through a Unix domain stream socket.
    UdsCopy,
}

impl System {
    /// The name used on the command line, in tables and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Floor => "floor",
            Self::FloorTouch => "floor-touch",
            Self::Rtfuse => "rtfuse",
            Self::Iceoryx2 => "iceoryx2",
            Self::UdsCopy => "uds-copy",
        }
    }
}

/// What a peer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Sends, waits for the echo, records the round trip (first core).
    Ping,
    /// Waits for a message and echoes one back (second core).
    Pong,
    /// Streams messages one way as fast as the channel accepts them (first core).
    StreamPub,
    /// Receives the stream and times it (second core).
    StreamSub,
}

/// Arguments of `transport-peer`.
#[derive(clap::Args, Debug, Clone)]
pub struct PeerArgs {
    /// System under test.
    #[arg(long, value_enum)]
    pub system: System,
    /// This peer's role.
    #[arg(long, value_enum)]
    pub role: Role,
    /// Payload size in bytes.
    #[arg(long)]
    pub payload: usize,
    /// Measured iterations (ping-pong) or messages (stream).
    #[arg(long)]
    pub iters: u64,
    /// Unmeasured warm-up iterations before them.
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
    /// Name of the control page (POSIX shm object).
    #[arg(long)]
    pub control: String,
    /// Unique base name for the system's own resources (channels, services).
    #[arg(long)]
    pub channel: String,
    /// Core to pin to.
    #[arg(long)]
    pub core: usize,
    /// Inherited socket file descriptor (uds-copy only).
    #[arg(long)]
    pub fd: Option<i32>,
    /// Do not ask for SCHED_FIFO.
    #[arg(long)]
    pub no_fifo: bool,
}

/// Result of a one-way stream.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct StreamStats {
    /// Messages counted (after the first, which starts the clock).
    pub messages: u64,
    /// Time from the first to the last message.
    pub elapsed_ns: u64,
}

/// What a peer prints on stdout when it is done.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerReport {
    /// The role it played.
    pub role: Role,
    /// Pinning, SCHED_FIFO, mlockall.
    pub rt: RtState,
    /// Whether `mlockall(MCL_CURRENT)` after set-up succeeded.
    pub locked_after_setup: bool,
    /// Median cost of one clock read (`Instant::now`), ns.
    pub clock_read_ns: u64,
    /// Latency (ping role).
    pub latency: Option<LatencyStats>,
    /// Stream timing (stream-sub role).
    pub stream: Option<StreamStats>,
}

/// One end of a connection, as the measurement loops see it. Every message carries the run's
/// payload size; the sender writes the first payload byte (the low byte of `seq`), the receiver
/// reads it and checks it.
pub trait Endpoint {
    /// Sends message `seq`, waiting (spinning) for room if the channel is full: never drops.
    fn send(&mut self, seq: u64) -> Result<()>;
    /// Waits (spinning, or blocking for sockets) for message `seq` and checks its tag.
    fn recv(&mut self, seq: u64) -> Result<()>;
}

/// The tag byte a message with sequence number `seq` carries.
pub fn tag(seq: u64) -> u8 {
    seq as u8
}

/// Error for a received tag that is not the expected one.
pub fn check_tag(got: u8, seq: u64) -> Result<()> {
    if got != tag(seq) {
        bail!(
            "message {seq}: first payload byte is {got}, expected {}",
            tag(seq)
        );
    }
    Ok(())
}

/// Checks the first byte of a received payload against message `seq`.
pub fn check_first(payload: &[u8], seq: u64) -> Result<()> {
    match payload.first() {
        Some(&first) => check_tag(first, seq),
        None => bail!("message {seq} is empty"),
    }
}

/// Channel names of the two directions: this role's (transmit, receive).
pub fn directions(role: Role) -> (Option<&'static str>, Option<&'static str>) {
    match role {
        Role::Ping => (Some("a2b"), Some("b2a")),
        Role::Pong => (Some("b2a"), Some("a2b")),
        Role::StreamPub => (Some("a2b"), None),
        Role::StreamSub => (None, Some("a2b")),
    }
}

/// Entry point of `transport-peer`.
pub fn run(args: &PeerArgs) -> Result<()> {
    let rt = rt::setup(args.core, !args.no_fifo)?;
    let control = Control::open(&args.control)?;
    let report = match args.system {
        System::Floor | System::FloorTouch => {
            let floor = systems::floor::Floor::new(&control, args)?;
            drive(args, rt, &control, floor)?
        }
        System::UdsCopy => drive(args, rt, &control, systems::uds::Uds::new(args)?)?,
        System::Iceoryx2 => drive(args, rt, &control, systems::ice::Ice::new(args)?)?,
        System::Rtfuse => drive(args, rt, &control, systems::shm::Shm::new(args)?)?,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Locks memory, meets the other peer and runs the role over `ep`.
fn drive<E: Endpoint>(
    args: &PeerArgs,
    rt: RtState,
    control: &Control,
    mut ep: E,
) -> Result<PeerReport> {
    let locked_after_setup = rt::lock_current();
    let clock_read_ns = clock_read_cost();
    control.barrier(1, SETUP_TIMEOUT)?;
    let total = args.warmup + args.iters;
    let mut report = PeerReport {
        role: args.role,
        rt,
        locked_after_setup,
        clock_read_ns,
        latency: None,
        stream: None,
    };
    match args.role {
        Role::Ping => {
            let mut rtt = Vec::with_capacity(args.iters as usize);
            for seq in 0..total {
                let t0 = Instant::now();
                ep.send(seq)?;
                ep.recv(seq)?;
                let dt = t0.elapsed().as_nanos() as u64;
                if seq >= args.warmup {
                    rtt.push(dt);
                }
            }
            report.latency = LatencyStats::from_round_trips(&mut rtt);
        }
        Role::Pong => {
            for seq in 0..total {
                ep.recv(seq)?;
                ep.send(seq)?;
            }
        }
        Role::StreamPub => {
            for seq in 0..=total {
                ep.send(seq)?;
            }
        }
        Role::StreamSub => {
            // The warm-up messages are received untimed; the clock starts at the next one.
            for seq in 0..=args.warmup {
                ep.recv(seq)?;
            }
            let t0 = Instant::now();
            for seq in args.warmup + 1..=total {
                ep.recv(seq)?;
            }
            report.stream = Some(StreamStats {
                messages: args.iters,
                elapsed_ns: t0.elapsed().as_nanos() as u64,
            });
        }
    }
    Ok(report)
}

/// Median cost of reading the monotonic clock, so readers can judge the smallest figures.
fn clock_read_cost() -> u64 {
    let mut samples: Vec<u64> = (0..1001)
        .map(|_| {
            let t0 = Instant::now();
            let t1 = Instant::now();
            (t1 - t0).as_nanos() as u64
        })
        .collect();
    stats::median(&mut samples)
}
