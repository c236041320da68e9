//! `rtfuse-bench`: benchmarks of rtfuse against the physical floor and its peers.
//!
//! `rtfuse-bench transport [--json] [--iters N] [--payloads 64,4096,...]` measures one-way
//! latency by ping-pong between two pinned processes for each system (floor, rtfuse, iceoryx2,
//! uds-copy) and payload, then one-way streaming throughput, and prints percentiles and the
//! ratios against the baselines measured in the same run. The two processes of each
//! measurement are this binary re-executed with the hidden `transport-peer` subcommand.

mod control;
mod peer;
mod report;
mod rt;
mod stats;
mod systems;
mod transport;

use clap::{Parser, Subcommand};

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "rtfuse-bench",
    about = "Benchmarks of rtfuse against its baselines and peers"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Latency and throughput of the shared-memory transport against floor, iceoryx2, uds-copy.
    Transport(transport::TransportArgs),
    /// One side of a measured pair (started by `transport`).
    #[command(hide = true)]
    TransportPeer(peer::PeerArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Cmd::Transport(args) => transport::run(args),
        Cmd::TransportPeer(args) => peer::run(args),
    }
}
