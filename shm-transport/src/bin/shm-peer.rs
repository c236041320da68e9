//! `shm-peer`: a small command-line peer for rtfuse channels, used by the multi-process tests and
//! handy for trying a channel by hand.
//!
//! ```text
//! shm-peer pub NAME COUNT SIZE [reject|keep-last] [WAIT_SUBS] [CHUNKS] [DEPTH] [PERIOD_US]
//! shm-peer sub NAME COUNT [HOLD] [SLEEP_US]   # receive COUNT samples, verify, print a summary
//! shm-peer scribble NAME MILLIS SEED         # hostile: write random bytes over the rings
//! ```
//! Payload pattern: word `k` of sample `seq` is `seq * 0x9E37_79B9_7F4A_7C15 ^ k` at every 8th word
//! (one per cache line) and in the first and last line; the user word carries an FNV-1a checksum of
//! those words, so a subscriber detects corruption, loss, duplication and reordering.

#[cfg(loom)]
fn main() {}

#[cfg(not(loom))]
fn main() {
    peer::main()
}

#[cfg(not(loom))]
mod peer {
    use std::io::Write;
    use std::time::Duration;

    use shm_transport::{
        ChannelConfig, OverflowPolicy, PublishError, Publisher, ReceiveError, Subscriber,
        WakeupPolicy,
    };

    fn word(seq: u64, k: usize) -> u64 {
        seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k as u64
    }

    fn sampled(len_words: usize) -> impl Iterator<Item = usize> {
        let last_line = len_words.saturating_sub(8);
        (0..len_words).filter(move |&k| k % 8 == 0 || k < 8 || k >= last_line)
    }

    fn fnv(acc: u64, v: u64) -> u64 {
        (acc ^ v).wrapping_mul(0x0000_0100_0000_01B3)
    }

    fn fill(buf: &mut [u8], seq: u64) -> u64 {
        let n = buf.len() / 8;
        let mut sum = 0xcbf2_9ce4_8422_2325;
        for k in sampled(n) {
            let v = word(seq, k);
            buf[8 * k..8 * k + 8].copy_from_slice(&v.to_le_bytes());
            sum = fnv(sum, v);
        }
        sum
    }

    fn verify(buf: &[u8], seq: u64, user: u64) -> bool {
        let n = buf.len() / 8;
        let mut sum = 0xcbf2_9ce4_8422_2325;
        for k in sampled(n) {
            let v = u64::from_le_bytes(buf[8 * k..8 * k + 8].try_into().expect("8 bytes"));
            if v != word(seq, k) {
                return false;
            }
            sum = fnv(sum, v);
        }
        sum == user
    }

    fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
        args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().collect();
        let code = match args.get(1).map(String::as_str) {
            Some("pub") => publish(&args),
            Some("sub") => subscribe(&args),
            Some("scribble") => scribble(&args),
            _ => {
                eprintln!("usage: shm-peer pub|sub|scribble NAME ... (see the source header)");
                2
            }
        };
        std::process::exit(code);
    }

    fn publish(args: &[String]) -> i32 {
        let name = &args[2];
        let count: u64 = arg(args, 3, 1000);
        let size: usize = arg(args, 4, 64);
        let overflow = if args.get(5).map(String::as_str) == Some("keep-last") {
            OverflowPolicy::KeepLast
        } else {
            OverflowPolicy::Reject
        };
        let wait_subs: u32 = arg(args, 6, 1);
        let period_us: u64 = arg(args, 9, 0);
        let cfg = ChannelConfig {
            chunk_size: size,
            chunk_count: arg(args, 7, 16),
            ring_depth: arg(args, 8, 8),
            overflow,
            wakeup: WakeupPolicy::SpinThenFutex { spin_ns: 20_000 },
            alignment: if size < 4096 { 64 } else { 4096 },
            ..ChannelConfig::default()
        };
        let mut p = match Publisher::create(name, &cfg) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("shm-peer pub: {e}");
                return 1;
            }
        };
        println!("created");
        let _ = std::io::stdout().flush();
        while p.subscriber_count() < wait_subs {
            std::thread::sleep(Duration::from_micros(200));
        }
        let mut seq = 0;
        let mut starved_since: Option<u64> = None;
        while seq < count {
            let mut s = match p.loan() {
                Ok(s) => {
                    starved_since = None;
                    s
                }
                Err(_) => {
                    // Only a misbehaving peer keeps every chunk for seconds: give up loudly.
                    let now = shm_transport::now_ns();
                    if now - *starved_since.get_or_insert(now) > 2_000_000_000 {
                        break;
                    }
                    std::thread::yield_now();
                    continue;
                }
            };
            let sum = fill(&mut s.payload_mut()[..size], seq + 1);
            s.set_len(size);
            s.set_user(sum);
            s.set_dma_time(shm_transport::now_ns());
            match s.publish() {
                Ok(info) => {
                    debug_assert_eq!(info.seq, seq + 1);
                    seq += 1;
                    if period_us > 0 {
                        std::thread::sleep(Duration::from_micros(period_us));
                    }
                }
                Err(PublishError::Full(back)) => {
                    drop(back);
                    std::thread::yield_now();
                }
                Err(e) => {
                    eprintln!("shm-peer pub: {e}");
                    return 1;
                }
            }
        }
        let st = p.stats();
        if seq < count {
            println!("starved after {seq} samples: {st:?}");
            return 3;
        }
        println!(
            "published {} dropped {} errors {} resynced {} free {}",
            st.published, st.dropped, st.errors, st.resynced, st.free_chunks
        );
        let _ = std::io::stdout().flush();
        // Linger until told (stdin closes) so a test can kill us mid-life or let us close.
        if std::env::var_os("SHM_PEER_LINGER").is_some() {
            let _ = std::io::stdin().read_line(&mut String::new());
        }
        0
    }

    fn subscribe(args: &[String]) -> i32 {
        let name = &args[2];
        let count: u64 = arg(args, 3, 1000);
        let hold: usize = arg(args, 4, 0);
        let sleep_us: u64 = arg(args, 5, 0);
        let mut sub = loop {
            match Subscriber::open(name) {
                Ok(s) => break s,
                Err(
                    shm_transport::OpenError::NotFound(_) | shm_transport::OpenError::NotReady(_),
                ) => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => {
                    eprintln!("shm-peer sub: {e}");
                    return 1;
                }
            }
        };
        println!("attached");
        let _ = std::io::stdout().flush();
        let mut held = Vec::with_capacity(hold);
        let (mut got, mut bad, mut last) = (0u64, 0u64, 0u64);
        let mut disconnected = false;
        while got < count {
            match sub.receive_timeout(Duration::from_secs(30)) {
                Ok(Some(s)) => {
                    if !verify(s.payload(), s.seq(), s.user()) {
                        bad += 1;
                    }
                    if s.seq() <= last {
                        bad += 1;
                    }
                    last = s.seq();
                    got += 1;
                    if held.len() < hold {
                        held.push(s);
                        if held.len() == hold {
                            println!("holding {hold}");
                            let _ = std::io::stdout().flush();
                        }
                    }
                    if sleep_us > 0 {
                        std::thread::sleep(Duration::from_micros(sleep_us));
                    }
                }
                Ok(None) => break,
                Err(ReceiveError::Disconnected) => {
                    disconnected = true;
                    break;
                }
                Err(e) => {
                    eprintln!("shm-peer sub: {e}");
                    return 1;
                }
            }
        }
        if hold > 0 {
            // Keep the held samples until killed.
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        let st = sub.stats();
        println!(
            "received {got} bad {bad} last {last} gaps {} dropped {} invalid {} resyncs {} disconnected {disconnected}",
            st.gaps, st.dropped_by_publisher, st.invalid, st.resyncs
        );
        i32::from(bad > 0)
    }

    fn scribble(args: &[String]) -> i32 {
        let name = &args[2];
        let millis: u64 = arg(args, 3, 500);
        let mut seed: u64 = arg(args, 4, 1);
        let path = format!("/dev/shm/{}{name}", shm_transport::SHM_PREFIX);
        // The publisher may still be starting: wait up to 10 s for the segment.
        let mut tries = 0;
        let file = loop {
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
            {
                Ok(f) => break f,
                Err(_) if tries < 1000 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    eprintln!("shm-peer scribble: {path}: {e}");
                    return 1;
                }
            }
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0) as usize;
        // A hostile peer: map it raw and write garbage over everything after the header page
        // (rings, control words, user headers, payloads).
        let map = match memmap2::MmapOptions::new().len(len).map_raw(&file) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("shm-peer scribble: map: {e}");
                return 1;
            }
        };
        let base = map.as_mut_ptr();
        let mut writes = 0u64;
        let end = shm_transport::now_ns() + millis * 1_000_000;
        while shm_transport::now_ns() < end {
            for _ in 0..64 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let off = 4096 + (seed as usize % (len.saturating_sub(4096 + 8) / 8)) * 8;
                // SAFETY: `off + 8 <= len` inside our own mapping; we are deliberately the hostile
                // process, writing an aligned u64 with a volatile store.
                unsafe {
                    core::ptr::write_volatile(base.add(off) as *mut u64, seed.rotate_left(17))
                };
                writes += 1;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        println!("scribbled {writes}");
        0
    }
}
