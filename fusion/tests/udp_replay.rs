//! Replays the real VLP-16 recording over loopback UDP and checks that the `recvmmsg` pipeline
//! produces exactly the clouds that decoding the file directly gives, with malformed datagrams
//! interleaved, counted and harmless.

use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use fusion::udp::{PacketReceiver, PipelineStats, UdpConfig, VecSink, Vlp16Pipeline};
use fusion::vlp16::{decode_stream, CloudInfo, DecoderConfig, RotationAssembler, PACKET_SIZE};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vlp16/");
const CLOUD_CAPACITY: usize = 1 << 20;

fn recording() -> Vec<u8> {
    let path = format!("{DATA}recording.bin");
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!("the real VLP-16 test data is missing: cannot read {path} ({e})")
    })
}

/// The malformed datagrams sent after every 100th packet, one of each kind.
fn malformed(round: u64) -> Vec<Vec<u8>> {
    let mut lcg = 0x2545_F491_4F6C_DD1Du64 ^ round;
    let mut garbage = vec![0u8; PACKET_SIZE];
    for b in &mut garbage {
        lcg = lcg
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *b = (lcg >> 56) as u8;
    }
    garbage[0] = 0x12; // never a valid block flag
    let rec = recording();
    let mut bad_flag = rec[..PACKET_SIZE].to_vec();
    bad_flag[700] = 0; // block 7 flag
    let mut bad_product = rec[..PACKET_SIZE].to_vec();
    bad_product[1205] = 0x24;
    vec![
        vec![0xFF; 100],  // short
        bad_flag,         // bad block flag
        garbage,          // random bytes
        bad_product,      // VLP-16 Hi-Res product byte: not ours
        vec![0xEE; 1400], // oversized, fits a slot
        vec![0xEE; 2000], // oversized, cut by the kernel (MSG_TRUNC)
    ]
}

/// Sends the recording (and malformed datagrams) to `to`, one packet every `period`.
fn send(to: SocketAddr, period: Duration) -> u64 {
    let rec = recording();
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind sender");
    let start = Instant::now();
    let mut bad = 0;
    for (i, pkt) in rec.chunks(PACKET_SIZE).enumerate() {
        let due = start + period * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        tx.send_to(pkt, to).expect("send packet");
        if i % 100 == 50 {
            for d in malformed(i as u64) {
                tx.send_to(&d, to).expect("send malformed");
                bad += 1;
            }
        }
    }
    bad
}

fn replay(period: Duration) -> (Vec<(Vec<u8>, CloudInfo)>, PipelineStats, u64) {
    let cfg = UdpConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        batch: 16,
        read_timeout: Duration::from_millis(20),
        ..UdpConfig::default()
    };
    let mut rx = PacketReceiver::bind(&cfg).expect("bind receiver on loopback");
    let to = rx.local_addr().unwrap();
    let sender = thread::spawn(move || send(to, period));
    let mut pipe = Vlp16Pipeline::new(
        RotationAssembler::new(DecoderConfig::default()),
        VecSink::new(CLOUD_CAPACITY),
    );
    // Watchdog: the loop ends by itself at the deadline even if datagrams were lost.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut idle_after_send = 0;
    while Instant::now() < deadline && idle_after_send < 5 {
        let n = pipe.poll(&mut rx).expect("recvmmsg");
        if n == 0 && sender.is_finished() {
            idle_after_send += 1;
        }
    }
    let bad = sender.join().expect("sender thread");
    pipe.flush();
    let stats = pipe.stats();
    let clouds = std::mem::take(&mut pipe.sink_mut().clouds);
    (clouds, stats, bad)
}

fn check(period: Duration) {
    let rec = recording();
    let mut want = Vec::new();
    decode_stream(&rec, DecoderConfig::default(), CLOUD_CAPACITY, |b, i| {
        want.push((b.to_vec(), *i))
    });
    let (got, stats, bad) = replay(period);
    eprintln!("replay every {period:?}: {stats:?}");
    assert_eq!(stats.packets, 1000, "valid packets lost: {stats:?}");
    assert_eq!(stats.malformed(), bad);
    assert_eq!(stats.datagrams, 1000 + bad);
    // Per round: short, 1400 and cut 2000 are wrong sizes; bad flag and garbage bad flags.
    let rounds = bad / 6;
    assert_eq!(stats.wrong_size, 3 * rounds);
    assert_eq!(stats.bad_flag, 2 * rounds);
    assert_eq!(stats.bad_product_or_mode, rounds);
    assert_eq!(stats.no_buffer + stats.publish_errors, 0);
    assert_eq!(got.len(), want.len());
    assert_eq!(stats.clouds, want.len() as u64);
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.1, w.1, "cloud {k} facts");
        assert!(g.0 == w.0, "cloud {k} points differ");
    }
}

#[test]
fn replay_at_the_real_packet_rate() {
    // 1000 packets at 754 packets/s: 1.33 s.
    check(Duration::from_micros(1327));
}

#[test]
fn replay_twenty_times_faster() {
    check(Duration::from_nanos(66_350));
}

#[test]
fn bad_batch_size_is_refused() {
    for batch in [0, 65] {
        let cfg = UdpConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            batch,
            ..UdpConfig::default()
        };
        let err = PacketReceiver::bind(&cfg).err().expect("refused");
        assert!(err.to_string().contains("batch"), "{err}");
    }
}
