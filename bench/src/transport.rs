//! The `transport` command: runs every (system, payload) pair of peers in turn, then the one-way
//! streams, and reports.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use crate::control::Control;
use crate::peer::{PeerReport, Role, System};
use crate::report::{self, Measured};

/// Default measured iterations per (system, payload); the whole default run stays well under
/// two minutes on a 2-core VM.
pub const DEFAULT_ITERS: u64 = 100_000;
/// Payload of the one-way throughput stream.
pub const STREAM_PAYLOAD: usize = 64;

/// Arguments of `transport`.
#[derive(clap::Args, Debug, Clone)]
pub struct TransportArgs {
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Measured round trips per system and payload (uds-copy runs fewer at large payloads; the
    /// throughput stream sends ten times as many messages).
    #[arg(long, default_value_t = DEFAULT_ITERS, value_parser = clap::value_parser!(u64).range(1..))]
    pub iters: u64,
    /// Payload sizes in bytes, comma-separated; KiB and MiB suffixes allowed (e.g. 2.5MiB).
    #[arg(long, value_delimiter = ',', value_parser = parse_size,
          default_value = "64,4096,2621440,16777216")]
    pub payloads: Vec<usize>,
    /// Systems to run, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        value_enum,
        default_value = "floor,floor-touch,rtfuse,iceoryx2,uds-copy"
    )]
    pub systems: Vec<System>,
    /// Give up on a pair of peers after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub pair_timeout_s: u64,
    /// Do not ask for SCHED_FIFO (for hosts where RT throttling is off and spinning real-time
    /// peers could starve everything else, this program's parent included).
    #[arg(long)]
    pub no_fifo: bool,
}

/// How every pair is started.
struct Plan {
    /// This binary, re-executed as the peers.
    exe: std::path::PathBuf,
    /// Give up on a pair after this long.
    timeout: Duration,
    /// Ask the peers for SCHED_FIFO.
    fifo: bool,
    /// Cores of the first and second peer.
    cores: [usize; 2],
}

/// Parses `64`, `4096`, `4KiB`, `2.5MiB`, `16MiB` into bytes (at least 1).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use B, KiB or MiB)"
            ))
        }
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a size"))?;
    let bytes = (value * scale).round();
    if !(1.0..=(1u64 << 32) as f64).contains(&bytes) {
        return Err(format!("{text:?}: payload must be 1 B .. 4 GiB"));
    }
    Ok(bytes as usize)
}

/// Round trips uds-copy runs at `payload`: each copy of a large payload costs milliseconds, so
/// the count shrinks with size, but never below 200 (or `iters` if that is smaller).
fn uds_iters(iters: u64, payload: usize) -> u64 {
    let scaled = iters.saturating_mul(16 * 1024) / payload.max(1) as u64;
    scaled.clamp(iters.min(200), iters)
}

/// Unmeasured warm-up before `iters` measured iterations.
fn warmup(iters: u64) -> u64 {
    (iters / 10).clamp(1, 10_000)
}

/// Entry point of `transport`.
pub fn run(args: &TransportArgs) -> Result<()> {
    let plan = Plan {
        exe: std::env::current_exe().context("locating this binary to re-execute it")?,
        timeout: Duration::from_secs(args.pair_timeout_s),
        fifo: !args.no_fifo,
        cores: crate::rt::pick_cores()?,
    };
    let mut measured = Measured::default();
    for &payload in &args.payloads {
        for &system in &args.systems {
            let iters = match system {
                System::UdsCopy => uds_iters(args.iters, payload),
                _ => args.iters,
            };
            eprintln!(
                "transport: {} {} x{iters} ...",
                system.name(),
                report::size(payload)
            );
            let [ping, pong] = run_pair(&plan, system, [Role::Ping, Role::Pong], payload, iters)?;
            measured.add_latency(system, payload, &ping, &pong)?;
        }
    }
    for system in [System::Rtfuse, System::Iceoryx2] {
        if !args.systems.contains(&system) {
            continue;
        }
        let messages = args.iters.saturating_mul(10);
        eprintln!(
            "transport: {} stream of {messages} x 64 B ...",
            system.name()
        );
        let roles = [Role::StreamPub, Role::StreamSub];
        let [publ, sub] = run_pair(&plan, system, roles, STREAM_PAYLOAD, messages)?;
        measured.add_stream(system, STREAM_PAYLOAD, &publ, &sub)?;
    }
    let out = measured.finish(plan.cores);
    if args.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        print!("{}", report::table(&out));
    }
    Ok(())
}

static NEXT_PAIR: AtomicU32 = AtomicU32::new(0);

/// The peers of one pair; any still running when this drops are killed and reaped.
struct Peers(Vec<Child>);

impl Drop for Peers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Removes the control page's name when dropped.
struct Unlink(String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = Control::unlink(&self.0);
    }
}

/// Starts `roles[0]` on the first core and `roles[1]` on the second, waits for both, returns
/// their reports.
fn run_pair(
    plan: &Plan,
    system: System,
    roles: [Role; 2],
    payload: usize,
    iters: u64,
) -> Result<[PeerReport; 2]> {
    let exe = &plan.exe;
    let id = format!(
        "{}.{}",
        std::process::id(),
        NEXT_PAIR.fetch_add(1, Ordering::Relaxed)
    );
    let control_name = format!("/rtfuse-bench.{id}");
    let control = Control::create(&control_name)?;
    let _unlink = Unlink(control_name.clone());
    // Both ends are inherited by both peers (no CLOEXEC); each uses the one named by --fd.
    let sockets: Option<(OwnedFd, OwnedFd)> = match system {
        System::UdsCopy => Some(
            socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::empty(),
            )
            .context("socketpair")?,
        ),
        _ => None,
    };
    let mut peers = Peers(Vec::new());
    for (core, role) in roles.into_iter().enumerate() {
        let mut cmd = Command::new(exe);
        cmd.arg("transport-peer")
            .args(["--system", &value_name(system)])
            .args(["--role", &value_name(role)])
            .args(["--payload", &payload.to_string()])
            .args(["--iters", &iters.to_string()])
            .args(["--warmup", &warmup(iters).to_string()])
            .args(["--control", &control_name])
            .args(["--channel", &id])
            .args(["--core", &plan.cores[core].to_string()]);
        if !plan.fifo {
            cmd.arg("--no-fifo");
        }
        if let Some((a, b)) = &sockets {
            let fd = if core == 0 { a } else { b };
            cmd.args(["--fd", &fd.as_raw_fd().to_string()]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        peers.0.push(
            cmd.spawn()
                .with_context(|| format!("starting {}", exe.display()))?,
        );
    }
    drop(sockets);
    if let Err(e) = wait_all(&mut peers, plan.timeout, system) {
        // Kill and reap both peers now, then remove what a killed peer could not.
        drop(peers);
        let removed = crate::systems::shm::clean_stale(&id);
        if !removed.is_empty() {
            eprintln!("transport: removed stale channels {removed:?}");
        }
        return Err(e);
    }
    drop(control);
    let mut reports = Vec::with_capacity(2);
    for child in &mut peers.0 {
        let mut text = String::new();
        if let Some(mut out) = child.stdout.take() {
            out.read_to_string(&mut text)?;
        }
        let line = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let report: PeerReport = serde_json::from_str(line)
            .with_context(|| format!("{} peer printed no report: {text:?}", system.name()))?;
        reports.push(report);
    }
    let [a, b]: [PeerReport; 2] = reports
        .try_into()
        .map_err(|_| anyhow::anyhow!("expected two peer reports"))?;
    Ok([a, b])
}

/// Waits until both peers have exited successfully; an early failure or the timeout ends the
/// wait with an error (and `Peers` kills the survivor).
fn wait_all(peers: &mut Peers, timeout: Duration, system: System) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut running = 0;
        for child in &mut peers.0 {
            match child.try_wait()? {
                Some(status) if !status.success() => {
                    bail!("a {} peer failed: {status}", system.name())
                }
                Some(_) => {}
                None => running += 1,
            }
        }
        if running == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} peers still running after {timeout:?}; killed",
                system.name()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The command-line spelling of a value-enum value.
fn value_name<T: ValueEnum>(value: T) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64"), Ok(64));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("2.5MiB"), Ok(2_621_440));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn uds_iterations_shrink_with_size_but_not_below_200() {
        assert_eq!(uds_iters(100_000, 64), 100_000);
        assert_eq!(uds_iters(100_000, 2_621_440), 625);
        assert_eq!(uds_iters(100_000, 16 << 20), 200);
        assert_eq!(uds_iters(50, 16 << 20), 50);
        assert_eq!(warmup(200), 20);
        assert_eq!(warmup(5), 1);
    }
}
