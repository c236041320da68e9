//! VLP-16 decoder against the facts of the real packets in `tests/data/vlp16/` (a copy of the
//! workplace's `shared/data/vlp16/`, MIT-licensed, LICENSE beside it).

use fusion::vlp16::{
    decode_stream, ring_of_laser, CloudInfo, DecoderConfig, Packet, PointLayout, Push, ReturnMode,
    RotationAssembler, Vlp16Error, ELEVATION_DEG, PACKET_SIZE, POINTS_PER_PACKET,
};
use proptest::prelude::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vlp16/");

fn data(name: &str) -> Vec<u8> {
    let path = format!("{DATA}{name}");
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "the real VLP-16 test data is missing: cannot read {path} ({e}); \
             it lives in fusion/tests/data/vlp16/"
        )
    })
}

fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn organised(layout: PointLayout) -> DecoderConfig {
    DecoderConfig {
        layout,
        keep_no_return: true,
        cut_azimuth: 0,
    }
}

/// Decodes one packet alone into a fresh buffer (organised: 384 points, NaN for no return).
fn decode_one(bytes: &[u8], layout: PointLayout) -> (Vec<u8>, CloudInfo) {
    let mut asm = RotationAssembler::new(organised(layout));
    let pkt = asm.parse(bytes).expect("valid packet");
    let mut buf = vec![0u8; POINTS_PER_PACKET * layout.point_step()];
    assert_eq!(asm.push(&pkt, 0, &mut buf), Push::Consumed);
    let info = asm.flush().expect("one partial cloud");
    (buf, info)
}

#[test]
fn packet_facts_from_the_readme() {
    let raw = data("packet.bin");
    let pkt = Packet::parse(&raw).expect("packet.bin is a valid VLP-16 packet");
    assert_eq!(pkt.return_mode(), ReturnMode::Strongest);
    assert_eq!(pkt.block_azimuth(0), Some(0x2866));
    assert_eq!(
        pkt.block_azimuth(0).map(|a| f32::from(a) / 100.0),
        Some(103.42)
    );
    assert_eq!(pkt.channel(0, 1), Some((0x2FF, 3)));
    assert_eq!(pkt.block_azimuth(1), Some(0x288E));
    assert_eq!(pkt.block_azimuth(12), None);
    assert_eq!(pkt.channel(0, 32), None);
}

#[test]
fn channel_1_of_block_0_is_decoded_with_velodyne_geometry() {
    let raw = data("packet.bin");
    let (buf, info) = decode_one(&raw, PointLayout::XyzIRingTime);
    assert_eq!(info.points, POINTS_PER_PACKET);
    assert_eq!(info.bytes, POINTS_PER_PACKET * 24);
    let p = 24; // point 1 = block 0, channel 1 (laser 1, +1°)
    let (x, y, z, i) = (
        f32_at(&buf, p),
        f32_at(&buf, p + 4),
        f32_at(&buf, p + 8),
        f32_at(&buf, p + 12),
    );
    // Precision azimuth: 103.42° + gap (0x288E − 0x2866 = 0.40°) × 2.304 µs / 110.592 µs.
    let alpha = (103.42f64 + 0.40 * 2.304 / 110.592).to_radians();
    let omega = 1f64.to_radians();
    let r = 1.534f64;
    let ex = r * omega.cos() * alpha.sin();
    let ey = r * omega.cos() * alpha.cos();
    let ez = r * omega.sin();
    let tol = 1e-3; // the 0.01° azimuth table: 1.5 m × 1.7e-4 rad = 0.3 mm
    assert!((f64::from(x) - ex).abs() < tol, "x {x} vs {ex}");
    assert!((f64::from(y) - ey).abs() < tol, "y {y} vs {ey}");
    assert!((f64::from(z) - ez).abs() < 1e-5, "z {z} vs {ez}");
    let range = (f64::from(x).powi(2) + f64::from(y).powi(2) + f64::from(z).powi(2)).sqrt();
    assert!((range - 1.534).abs() < 1e-5, "range {range}");
    assert_eq!(i, 3.0);
    assert_eq!(
        u16::from_le_bytes([buf[p + 16], buf[p + 17]]),
        ring_of_laser(1)
    );
    assert_eq!(ring_of_laser(1), 8);
    // Laser 1 fires 2.304 µs after laser 0; the cloud clock is µs-granular.
    let t = f32_at(&buf, p + 20);
    assert!((0.0..=3.0e-6).contains(&t), "time {t}");
    // Point 16 + 5 = second firing, laser 5: 55.296 + 5 × 2.304 µs after the first firing.
    let t2 = f32_at(&buf, 21 * 24 + 20);
    assert!(
        (t2 - 66.816e-6).abs() < 1.1e-6,
        "time of second firing {t2}"
    );
    // Block 11 firing 1 laser 15: 23 sequences + 15 lasers.
    let t_last = f32_at(&buf, 383 * 24 + 20);
    assert!(
        (t_last - (23.0 * 55.296 + 15.0 * 2.304) * 1e-6).abs() < 1.1e-6,
        "{t_last}"
    );
}

#[test]
fn every_point_lies_on_its_laser_cone_and_ring() {
    let raw = data("packet.bin");
    let (buf, _) = decode_one(&raw, PointLayout::XyzIRingTime);
    for k in 0..POINTS_PER_PACKET {
        let p = k * 24;
        let (x, y, z) = (f32_at(&buf, p), f32_at(&buf, p + 4), f32_at(&buf, p + 8));
        let laser = k % 16;
        let ring = u16::from_le_bytes([buf[p + 16], buf[p + 17]]);
        assert_eq!(ring, ring_of_laser(laser));
        if x.is_nan() {
            assert!(y.is_nan() && z.is_nan());
            continue;
        }
        let r = (x * x + y * y + z * z).sqrt();
        let elev = (z / r).asin().to_degrees();
        assert!(
            (elev - ELEVATION_DEG[laser]).abs() < 1e-3,
            "point {k}: {elev}"
        );
    }
    // Rings sort the lasers by elevation.
    let mut by_ring = [0f32; 16];
    for (laser, e) in ELEVATION_DEG.iter().enumerate() {
        by_ring[usize::from(ring_of_laser(laser))] = *e;
    }
    assert!(by_ring.windows(2).all(|w| w[0] < w[1]), "{by_ring:?}");
}

/// Independent count of non-zero distances in the raw recording.
fn valid_returns(rec: &[u8]) -> usize {
    rec.chunks(PACKET_SIZE)
        .flat_map(|p| {
            (0..12)
                .flat_map(move |b| (0..32).map(move |c| b * 100 + 4 + 3 * c))
                .map(move |at| [p[at], p[at + 1]])
        })
        .filter(|d| *d != [0, 0])
        .count()
}

#[test]
fn recording_splits_into_rotations_of_plausible_size() {
    let rec = data("recording.bin");
    assert_eq!(rec.len(), 1000 * PACKET_SIZE);
    let mut clouds = Vec::new();
    let stats = decode_stream(
        &rec,
        organised(PointLayout::XyzIRingTime),
        40 << 20,
        |b, i| clouds.push((b.to_vec(), *i)),
    );
    assert_eq!(stats.packets, 1000);
    assert_eq!(stats.malformed, 0);
    assert_eq!(stats.overflow_blocks, 0);
    // 13 azimuth wraps in 1000 packets (1.33 s at 10 rotations/s): 12 full rotations between a
    // partial head and a partial tail.
    assert_eq!(clouds.len(), 14);
    assert_eq!(stats.rotations, 14);
    assert!(!clouds[0].1.complete);
    let total: usize = clouds.iter().map(|c| c.1.points).sum();
    assert_eq!(total, 1000 * POINTS_PER_PACKET);
    // 754 packets/s ÷ 10 rotations/s = 75.4 packets × 384 slots = 28 953 slots per rotation.
    for (k, (buf, info)) in clouds.iter().enumerate().take(13).skip(1) {
        assert!(info.complete);
        assert_eq!(info.seq, k as u64);
        assert!(
            (28_500..=29_400).contains(&info.points),
            "rotation {k}: {} points",
            info.points
        );
        assert_eq!(info.points % 32, 0);
        let span = info.last_time_us - info.first_time_us;
        assert!(
            (95_000..=105_000).contains(&span),
            "rotation {k} lasts {span} µs"
        );
        let max_t = (0..info.points)
            .map(|i| f32_at(buf, i * 24 + 20))
            .fold(0f32, f32::max);
        assert!(
            (max_t - span as f32 * 1e-6).abs() < 2e-6,
            "time field {max_t} vs span {span}"
        );
        // Valid returns come from (nearly) all around: one 10° sector of this recording has
        // no return at all, so ask for 33 of 36.
        let mut bins = [false; 36];
        for i in 0..info.points {
            let (x, y) = (f32_at(buf, i * 24), f32_at(buf, i * 24 + 4));
            if !x.is_nan() {
                let a = x.atan2(y).to_degrees().rem_euclid(360.0);
                bins[(a / 10.0) as usize % 36] = true;
            }
        }
        let covered = bins.iter().filter(|b| **b).count();
        assert!(
            covered >= 33,
            "rotation {k} covers {covered} of 36 sectors: {bins:?}"
        );
    }
    for w in clouds.windows(2) {
        assert!(w[0].1.last_time_us < w[1].1.first_time_us);
    }

    // Dense clouds drop the "no return" slots: exactly the non-zero distances remain.
    let mut dense_points = 0;
    let dense = decode_stream(&rec, DecoderConfig::default(), 40 << 20, |b, i| {
        assert_eq!(b.len(), i.points * 24);
        assert!((0..i.points).all(|k| !f32_at(b, k * 24).is_nan()));
        dense_points += i.points;
    });
    assert_eq!(dense_points, valid_returns(&rec));
    assert_eq!(dense.points as usize, dense_points);
    eprintln!(
        "recording: {} rotations, {} slots/rotation, {:.1}% no-return slots",
        clouds.len(),
        clouds[5].1.points,
        100.0 * (1.0 - dense_points as f64 / (1000 * POINTS_PER_PACKET) as f64)
    );
}

#[test]
fn xyzi_layout_matches_xyzirt() {
    let raw = data("packet.bin");
    let (a, _) = decode_one(&raw, PointLayout::XyzI);
    let (b, _) = decode_one(&raw, PointLayout::XyzIRingTime);
    for k in 0..POINTS_PER_PACKET {
        assert_eq!(a[k * 16..k * 16 + 16], b[k * 24..k * 24 + 16]);
    }
    assert_eq!(PointLayout::XyzI.fields().len(), 4);
    assert_eq!(PointLayout::XyzIRingTime.fields()[5], ("time", 20, 7));
}

#[test]
fn malformed_packets_get_clear_errors() {
    let good = data("packet.bin");
    let cases: Vec<(Vec<u8>, Vlp16Error, &str)> = vec![
        (
            good[..1205].to_vec(),
            Vlp16Error::WrongSize { len: 1205 },
            "1205 bytes",
        ),
        (
            [&good[..], &[0]].concat(),
            Vlp16Error::WrongSize { len: 1207 },
            "expected 1206",
        ),
        (vec![], Vlp16Error::WrongSize { len: 0 }, "0 bytes"),
        (
            patch(&good, 500, &[0x00, 0xEE]),
            Vlp16Error::BadBlockFlag {
                block: 5,
                flag: 0xEE00,
            },
            "block 5",
        ),
        (
            patch(&good, 302, &[0xA0, 0x8C]),
            Vlp16Error::BadAzimuth {
                block: 3,
                azimuth: 36000,
            },
            "36000",
        ),
        (
            patch(&good, 1205, &[0x21]),
            Vlp16Error::UnknownProduct(0x21),
            "product ID 0x21",
        ),
        (
            patch(&good, 1204, &[0x40]),
            Vlp16Error::UnknownReturnMode(0x40),
            "return mode 0x40",
        ),
    ];
    let mut asm = RotationAssembler::new(DecoderConfig::default());
    for (bytes, want, text) in &cases {
        let err = asm.parse(bytes).unwrap_err();
        assert_eq!(err, *want);
        assert!(err.to_string().contains(text), "{err} lacks {text}");
    }
    assert_eq!(asm.stats().malformed, cases.len() as u64);
    assert_eq!(asm.stats().packets, 0);
    assert!(Packet::parse(&patch(&good, 1204, &[0x38])).is_ok());
}

fn patch(b: &[u8], at: usize, with: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    v[at..at + with.len()].copy_from_slice(with);
    v
}

#[test]
fn dual_return_blocks_share_firing_times() {
    let mut raw = data("packet.bin");
    raw[1204] = 0x39;
    for b in (1..12).step_by(2) {
        let az = [raw[(b - 1) * 100 + 2], raw[(b - 1) * 100 + 3]];
        raw[b * 100 + 2..b * 100 + 4].copy_from_slice(&az);
    }
    let (buf, info) = decode_one(&raw, PointLayout::XyzIRingTime);
    assert_eq!(info.points, POINTS_PER_PACKET);
    for k in 0..32 {
        let t0 = f32_at(&buf, k * 24 + 20); // block 0 (strongest)
        let t1 = f32_at(&buf, (32 + k) * 24 + 20); // block 1 (last), same firings
        assert_eq!(t0, t1);
    }
    // Block pair 5 (blocks 10, 11) is the sixth pair of sequences: 10 sequences in.
    let t = f32_at(&buf, 11 * 32 * 24 + 20);
    assert!((t - 10.0 * 55.296e-6).abs() < 1.1e-6, "{t}");
}

#[test]
fn small_buffer_drops_whole_blocks_and_counts_them() {
    let raw = data("packet.bin");
    let mut asm = RotationAssembler::new(organised(PointLayout::XyzI));
    let pkt = asm.parse(&raw).unwrap();
    let mut buf = vec![0u8; 32 * 16 * 3 + 100];
    assert_eq!(asm.push(&pkt, 0, &mut buf), Push::Consumed);
    assert_eq!(asm.current().points, 96);
    assert_eq!(asm.stats().overflow_blocks, 9);
}

#[test]
fn timestamps_unwrap_across_the_top_of_the_hour() {
    let mut a = data("packet.bin");
    a[1200..1204].copy_from_slice(&3_599_999_000u32.to_le_bytes());
    let mut b = a.clone();
    b[1200..1204].copy_from_slice(&328u32.to_le_bytes());
    // Second packet continues the azimuth (no wrap): +4.8°.
    for blk in 0..12 {
        let az = u16::from_le_bytes([b[blk * 100 + 2], b[blk * 100 + 3]]) + 480;
        b[blk * 100 + 2..blk * 100 + 4].copy_from_slice(&az.to_le_bytes());
    }
    let mut asm = RotationAssembler::new(DecoderConfig::default());
    let mut buf = vec![0u8; 1 << 20];
    for bytes in [&a, &b] {
        let pkt = asm.parse(bytes).unwrap();
        assert_eq!(asm.push(&pkt, 0, &mut buf), Push::Consumed);
    }
    let info = asm.flush().unwrap();
    assert_eq!(info.first_time_us, 3_599_999_000);
    assert!(info.last_time_us > 3_600_000_328, "{}", info.last_time_us);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1400)) {
        let mut asm = RotationAssembler::new(DecoderConfig::default());
        let mut buf = vec![0u8; 4096];
        if let Ok(pkt) = asm.parse(&bytes) {
            let _ = asm.push(&pkt, 0, &mut buf);
        }
        prop_assert_eq!(asm.stats().packets + asm.stats().malformed, 1);
    }

    #[test]
    fn corrupted_real_packets_never_panic(
        edits in proptest::collection::vec((0usize..PACKET_SIZE, any::<u8>()), 1..40),
        keep in any::<bool>(),
    ) {
        let mut raw = data("packet.bin");
        for (at, v) in edits { raw[at] = v; }
        let cfg = DecoderConfig { layout: PointLayout::XyzIRingTime, keep_no_return: keep, cut_azimuth: 0 };
        let mut asm = RotationAssembler::new(cfg);
        let mut buf = vec![0u8; POINTS_PER_PACKET * 24];
        for _ in 0..3 {
            if let Ok(pkt) = asm.parse(&raw) {
                let mut from = 0;
                while let Push::Rotation { resume_block, .. } = asm.push(&pkt, from, &mut buf) {
                    prop_assert!(resume_block >= from);
                    from = resume_block;
                }
            }
        }
        let s = asm.stats();
        prop_assert_eq!(s.packets + s.malformed, 3);
    }
}
