//! Real processes over real shared memory: streaming with checksums, drop accounting, SIGKILL of
//! either side, and a hostile process scribbling over the segment. The peers are the `shm-peer`
//! binary of this crate (`src/bin/shm-peer.rs`).
#![cfg(not(loom))]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shm_transport::{ChannelConfig, OverflowPolicy, Publisher, ReceiveError, Subscriber};

const PEER: &str = env!("CARGO_BIN_EXE_shm-peer");

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "mp{}_{}_{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn seg_path(name: &str) -> String {
    format!("/dev/shm/rtfuse.{name}")
}

struct Peer {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(args: &[&str], linger: bool) -> Peer {
        let mut cmd = Command::new(PEER);
        cmd.args(args).stdout(Stdio::piped()).stdin(Stdio::piped());
        if linger {
            cmd.env("SHM_PEER_LINGER", "1");
        }
        let mut child = cmd.spawn().expect("spawn shm-peer");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Peer { child, out }
    }

    /// Next stdout line (the peers print progress lines).
    fn line(&mut self) -> String {
        let mut s = String::new();
        self.out.read_line(&mut s).expect("read peer output");
        s.trim().to_string()
    }

    /// Reads lines until one starts with `prefix`.
    fn until(&mut self, prefix: &str) -> String {
        for _ in 0..100 {
            let l = self.line();
            if l.starts_with(prefix) {
                return l;
            }
            assert!(!l.is_empty(), "peer ended before printing {prefix:?}");
        }
        panic!("no {prefix:?} line");
    }

    /// Waits with a watchdog: a hung peer is killed and the test fails instead of hanging CI.
    fn wait(mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        // A lingering peer exits when its stdin closes.
        drop(self.child.stdin.take());
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                let mut rest = String::new();
                for l in self.out.lines().map_while(Result::ok) {
                    rest.push_str(&l);
                    rest.push('\n');
                }
                return (st, rest);
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("peer exceeded its watchdog of {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

fn field(line: &str, key: &str) -> u64 {
    let mut it = line.split_whitespace();
    while let Some(w) = it.next() {
        if w == key {
            return it
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("bad {key} in {line}"));
        }
    }
    panic!("no {key} in {line:?}");
}

fn stream(count: u64, size: usize, chunks: &str, depth: &str) {
    let name = unique("stream");
    let sub = Peer::spawn(&["sub", &name, &count.to_string()], false);
    let publ = Peer::spawn(
        &[
            "pub",
            &name,
            &count.to_string(),
            &size.to_string(),
            "reject",
            "1",
            chunks,
            depth,
        ],
        false,
    );
    let (pst, pout) = publ.wait(Duration::from_secs(600));
    let (sst, sout) = sub.wait(Duration::from_secs(600));
    assert!(
        pst.success() && sst.success(),
        "pub {pst:?} {pout} / sub {sst:?} {sout}"
    );
    let summary = sout
        .lines()
        .find(|l| l.starts_with("received"))
        .expect("summary");
    assert_eq!(field(summary, "received"), count, "{summary}");
    assert_eq!(
        field(summary, "bad"),
        0,
        "checksum, order or duplicate failures: {summary}"
    );
    assert_eq!(field(summary, "last"), count, "{summary}");
    assert_eq!(field(summary, "gaps"), 0, "{summary}");
    assert!(
        !std::path::Path::new(&seg_path(&name)).exists(),
        "segment leaked"
    );
}

#[test]
fn one_million_small_samples_none_lost_none_duplicated_in_order() {
    stream(1_000_000, 64, "64", "32");
}

#[test]
fn ten_thousand_4mib_samples_none_lost_none_duplicated_in_order() {
    stream(10_000, 4 << 20, "8", "4");
}

#[test]
fn keep_last_drop_accounting_is_exact_across_processes() {
    let name = unique("kl");
    let n = 20_000u64;
    // A slow subscriber (sleeps 20 µs per sample) behind a ring of 8: many drops.
    let sub = Peer::spawn(&["sub", &name, &n.to_string(), "0", "20"], false);
    let publ = Peer::spawn(
        &[
            "pub",
            &name,
            &n.to_string(),
            "64",
            "keep-last",
            "1",
            "32",
            "8",
        ],
        false,
    );
    let (pst, pout) = publ.wait(Duration::from_secs(300));
    let (sst, sout) = sub.wait(Duration::from_secs(300));
    assert!(pst.success() && sst.success(), "{pout} / {sout}");
    let p = pout
        .lines()
        .find(|l| l.starts_with("published"))
        .expect("pub summary");
    let s = sout
        .lines()
        .find(|l| l.starts_with("received"))
        .expect("sub summary");
    let (received, last, dropped) = (field(s, "received"), field(s, "last"), field(s, "dropped"));
    assert_eq!(field(s, "bad"), 0, "{s}");
    assert_eq!(last, n, "keep-last always keeps the newest sample: {s}");
    assert_eq!(
        received + dropped,
        n,
        "every sample was either received or counted as dropped: {s}"
    );
    assert_eq!(
        field(p, "dropped"),
        dropped,
        "both sides count the same drops: {p} / {s}"
    );
    assert_eq!(
        field(s, "gaps"),
        dropped - (field(s, "last") - received - field(s, "gaps")),
        "{s}"
    );
    assert!(dropped > 0, "the test must actually exercise drops: {s}");
}

#[test]
fn sigkill_subscriber_all_its_chunks_come_back() {
    let name = unique("killsub");
    let cfg = ChannelConfig {
        chunk_size: 4096,
        chunk_count: 16,
        ring_depth: 8,
        overflow: OverflowPolicy::KeepLast,
        ..ChannelConfig::default()
    };
    let mut p = Publisher::create(&name, &cfg).unwrap();
    let mut sub = Peer::spawn(&["sub", &name, "1000000", "6"], false);
    assert_eq!(sub.line(), "attached");
    let publish_one = |p: &mut Publisher| {
        if let Ok(mut s) = p.loan() {
            s.set_len(8);
            let _ = s.publish();
        }
    };
    // Until it holds 6 samples as `Sample`s, then fill its ring too.
    let waiter = std::thread::spawn(move || {
        sub.until("holding");
        sub
    });
    let start = Instant::now();
    while !waiter.is_finished() {
        publish_one(&mut p);
        std::thread::sleep(Duration::from_micros(200));
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "subscriber never held its samples"
        );
    }
    let mut sub = waiter.join().unwrap();
    for _ in 0..8 {
        publish_one(&mut p);
    }
    p.maintain();
    let held = 16 - p.stats().free_chunks;
    assert!(
        held >= 6,
        "the subscriber holds chunks before it dies (held {held})"
    );
    sub.sigkill();
    let killed = Instant::now();
    while p.stats().free_chunks < 16 {
        p.maintain();
        std::thread::sleep(Duration::from_micros(100));
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "chunks never came back: {:?}",
            p.stats()
        );
    }
    eprintln!(
        "reclaimed {held} chunks {:?} after SIGKILL (liveness period 1 ms)",
        killed.elapsed()
    );
    let st = p.stats();
    assert_eq!(st.dead_subscribers, 1);
    assert!(st.reclaimed >= held as u64, "{st:?}");
    assert_eq!(st.subscribers, 0);
    // The channel still works for a new subscriber in the freed slot.
    let mut s2 = Subscriber::open(&name).unwrap();
    publish_one(&mut p);
    assert!(s2.receive().unwrap().is_some());
    drop(s2);
    drop(p);
    assert!(
        !std::path::Path::new(&seg_path(&name)).exists(),
        "segment leaked"
    );
}

#[test]
fn sigkill_publisher_subscriber_reads_everything_then_disconnects() {
    let name = unique("killpub");
    // The publisher streams 1,000,000 samples through a ring of 64 with reject: it is blocked
    // mid-stream whenever we stop reading.
    let mut publ = Peer::spawn(
        &["pub", &name, "1000000", "64", "reject", "1", "128", "64"],
        true,
    );
    assert_eq!(publ.line(), "created");
    let mut sub = Subscriber::open(&name).unwrap();
    let mut last = 0;
    let mut got = 0u64;
    while got < 5_000 {
        if let Some(s) = sub.receive_timeout(Duration::from_secs(30)).unwrap() {
            assert_eq!(s.seq(), last + 1);
            last = s.seq();
            got += 1;
        }
    }
    // Let the publisher fill the ring (64 descriptors) and block on it, then kill it mid-stream.
    std::thread::sleep(Duration::from_millis(500));
    publ.sigkill();
    let mut disconnected = false;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        match sub.receive_timeout(Duration::from_secs(1)) {
            Ok(Some(s)) => {
                assert_eq!(s.seq(), last + 1, "no gap, no duplicate after the kill");
                last = s.seq();
                got += 1;
            }
            Ok(None) => {}
            Err(ReceiveError::Disconnected) => {
                disconnected = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(disconnected, "the subscriber must see the disconnect");
    assert!(
        got > 5_000,
        "samples queued at the kill were still delivered ({got})"
    );
    assert_eq!(sub.stats().gaps, 0);
    drop(sub);
    assert!(
        !std::path::Path::new(&seg_path(&name)).exists(),
        "the crashed publisher's segment must be removed"
    );
}

/// Runs a subscriber (`sub_count` samples), a publisher (`pub_args` after NAME) and a scribbler
/// (`scribble_ms`, `seed`) in three processes; returns the publisher's and the subscriber's output
/// after checking that neither died of a signal (a segfault or abort would show here).
fn scribbled_run(
    name: &str,
    sub_count: &str,
    pub_args: &[&str],
    linger: bool,
    scribble_ms: &str,
    seed: &str,
) -> (String, String) {
    let sub = Peer::spawn(&["sub", name, sub_count], false);
    let mut args = vec!["pub", name];
    args.extend_from_slice(pub_args);
    let mut publ = Peer::spawn(&args, linger);
    assert_eq!(publ.line(), "created");
    let scr = Peer::spawn(&["scribble", name, scribble_ms, seed], false);
    let (xst, xout) = scr.wait(Duration::from_secs(60));
    assert!(xst.success(), "{xout}");
    let (pst, pout) = publ.wait(Duration::from_secs(300));
    let (sst, sout) = sub.wait(Duration::from_secs(300));
    use std::os::unix::process::ExitStatusExt;
    assert!(
        pst.signal().is_none() && sst.signal().is_none(),
        "pub {pst:?} / sub {sst:?}"
    );
    assert!(pst.code().is_some() && sst.code().is_some());
    (pout, sout)
}

/// The subscriber's summary line.
fn sub_summary(sout: &str) -> &str {
    sout.lines()
        .find(|l| l.starts_with("received"))
        .unwrap_or_else(|| panic!("sub summary missing: {sout}"))
}

#[test]
fn hostile_scribbler_causes_counted_errors_never_a_crash() {
    let name = unique("scribble");
    // The publisher lingers after its last sample until we close its stdin, so the segment is
    // alive for the whole scribbling. Each side may report bad data; neither may crash.
    let (pout, sout) = scribbled_run(
        &name,
        "3000000",
        &["3000000", "256", "keep-last", "1", "32", "16"],
        true,
        "700",
        "12345",
    );
    let s = sub_summary(&sout);
    let p = pout
        .lines()
        .find(|l| l.starts_with("published") || l.starts_with("starved"))
        .unwrap_or("");
    let detected = field(s, "bad")
        + field(s, "invalid")
        + if p.starts_with("published") {
            field(p, "errors")
        } else {
            1
        };
    assert!(
        detected > 0,
        "the scribbling was detected and counted: {p} / {s}"
    );
    eprintln!("after scribbling: {p} / {s}");
    let _ = shm_transport::admin::clean_stale_matching(|c| c == name);
    assert!(!std::path::Path::new(&seg_path(&name)).exists());
}

#[test]
fn scribbled_channel_heals_once_the_scribbler_stops() {
    // A paced publisher (one sample per 100 µs, ≥ 2 s in all) and a subscriber in two processes;
    // a third process writes random words over everything after the header page for the first
    // 500 ms. Damaged slots are set aside and the subscriber re-attaches, so the stream goes on:
    // the last sample arrives, and the publisher never runs out of chunks (no return leaks).
    const N: u64 = 20_000;
    let name = unique("heal");
    let n = N.to_string();
    let (pout, sout) = scribbled_run(
        &name,
        "1000000000",
        &[&n, "256", "keep-last", "1", "32", "16", "100"],
        false,
        "500",
        "777",
    );
    let p = pout
        .lines()
        .find(|l| l.starts_with("published"))
        .unwrap_or_else(|| panic!("the publisher starved (chunks leaked): {pout}"));
    let s = sub_summary(&sout);
    eprintln!("after scribbling: {p} / {s}");
    assert_eq!(
        field(s, "last"),
        N,
        "the stream went on after the scribbling: {p} / {s}"
    );
    assert!(
        field(p, "resynced") + field(s, "resyncs") >= 1,
        "the damage was noticed and healed: {p} / {s}"
    );
    assert!(!std::path::Path::new(&seg_path(&name)).exists());
}
