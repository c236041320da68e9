//! Helpers of the interop tests: unique domains and channel names, the Cyclone DDS peer, and a
//! watchdog.
#![allow(dead_code)]

use std::io::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ros2_plugin::gateway::Gateway;
use shm_transport::Subscriber;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A DDS domain id no other test (thread or process) of this run uses: derived from the pid and
/// a counter, within ROS 2's 0..=232 (we use 20..=219).
pub fn unique_domain() -> u16 {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    (20 + (std::process::id().wrapping_mul(37).wrapping_add(n * 11)) % 200) as u16
}

/// A channel name unique to this process and call.
pub fn unique_channel(what: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("t{}-{n}-{what}", std::process::id())
}

/// Kills the whole test process if a test hangs (tests only; a hang is a bug we want loud).
pub fn watchdog(limit: Duration, name: &'static str) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("WATCHDOG: test {name} still running after {limit:?}; aborting");
            std::process::exit(101);
        }
    });
    tx
}

/// The peer script, found from any crate of the workspace (launch's tests include this module).
fn peer_script() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ros2-plugin/tests/peer/cyclone_peer.py"
    )
    .to_owned()
}

/// Fails with the exact install line if the Cyclone DDS Python package is missing.
pub fn require_cyclonedds() {
    let out = Command::new("python3")
        .args(["-c", "import cyclonedds.domain, cyclonedds.idl"])
        .output()
        .expect("python3 must be installed for the ROS 2 interop tests");
    assert!(
        out.status.success(),
        "the ROS 2 interop tests need Eclipse Cyclone DDS for Python: `pip install cyclonedds` \
         ({})",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running Cyclone DDS peer (tests/peer/cyclone_peer.py); killed on drop.
pub struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Peer {
    /// Starts the peer with `args` (see the script's doc string).
    pub fn start(args: &[&str]) -> Peer {
        require_cyclonedds();
        let mut child = Command::new("python3")
            .arg(peer_script())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cyclone peer");
        let stdin = child.stdin.take();
        let stdout: ChildStdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer {
            child,
            stdin,
            lines,
        }
    }

    /// Starts the peer in `mode` (`pub`, `sub`, `bogus`) on `domain`, DDS topic `topic` (with
    /// its `rt/` prefix), ROS type `ty`, plus `extra` options.
    pub fn cyclone(mode: &str, domain: u16, topic: &str, ty: &str, extra: &[&str]) -> Peer {
        let d = domain.to_string();
        let mut args = vec![mode, "--domain", &d, "--topic", topic, "--type", ty];
        args.extend_from_slice(extra);
        Peer::start(&args)
    }

    /// The next output line, or `None` after `timeout` / at the end.
    pub fn line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Lets a `--wait-go` publisher start (once our side has matched too).
    pub fn go(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "GO").expect("write GO");
        stdin.flush().expect("flush GO");
    }

    /// Waits for the `MATCHED n` line; panics with context when it does not come.
    pub fn wait_matched(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while let Some(l) = self.line(deadline.saturating_duration_since(Instant::now())) {
            if let Some(n) = l.strip_prefix("MATCHED ") {
                assert_ne!(n, "0", "the Cyclone peer never matched our endpoint");
                return;
            }
        }
        panic!("the Cyclone peer did not report MATCHED within {timeout:?}");
    }

    /// Reads JSON lines until `DONE`/`TIMEOUT` or `n` records.
    pub fn records(&self, n: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n {
            let Some(l) = self.line(deadline.saturating_duration_since(Instant::now())) else {
                break;
            };
            if l.starts_with('{') {
                out.push(serde_json::from_str(&l).expect("peer JSON"));
            } else if l == "DONE" || l == "TIMEOUT" {
                break;
            }
        }
        out
    }

    /// Kills the peer now (a peer vanishing mid-stream).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Lets a `--wait-go` Cyclone publisher start once the gateway's reader (bridge `index`) has
/// matched it too: under volatile durability a sample written before both sides matched is
/// legitimately lost.
pub fn go_when_matched(gw: &Gateway, index: usize, peer: &mut Peer, timeout: Duration) {
    wait_for(timeout, || {
        (gw.stats().bridges[index].matched >= 1).then_some(())
    })
    .expect("the gateway's reader never matched the Cyclone writer");
    // The remote writer may be a newcomer beside a stale (killed) one: give its matching the
    // few milliseconds it takes on our side.
    std::thread::sleep(Duration::from_millis(300));
    peer.go();
}

/// Opens channel `name` once the gateway has created it.
pub fn open_channel(name: &str, timeout: Duration) -> Subscriber {
    wait_for(timeout, || Subscriber::open(name).ok())
        .unwrap_or_else(|| panic!("the gateway never created channel {name}"))
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The data bytes the peer generates for message `i` of a mono16 image of `size` bytes
/// (mirrors `make_message` in cyclone_peer.py).
pub fn peer_image_bytes(i: usize, size: usize) -> (u32, u32, Vec<u8>) {
    peer_image_bytes_with(i, size, 2)
}

/// As [`peer_image_bytes`] for `bytes_per_pixel` (1 mono8, 2 mono16, 3 rgb8: `--encoding`).
pub fn peer_image_bytes_with(i: usize, size: usize, bytes_per_pixel: usize) -> (u32, u32, Vec<u8>) {
    let width = 1280usize;
    let height = (size / (width * bytes_per_pixel)).max(1);
    let n = width * bytes_per_pixel * height;
    let data = (0..n).map(|k| (((k % 256) * 7 + i) & 0xff) as u8).collect();
    (width as u32, height as u32, data)
}
