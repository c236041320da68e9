//! VLP-16 decode throughput on one core against the sensor's real packet rate (754 packets/s).
//!
//! Run: `cargo bench -p fusion --bench vlp16_decode`. Decodes the 1000 real packets of
//! `fusion/tests/data/vlp16/recording.bin` through the rotation assembler (validation, geometry,
//! ring and time fields, one cloud per rotation) 41 times and prints the median rate, its ratio
//! to 754 packets/s (target ≥ 100×) and, as a same-run baseline, the rate of merely copying the
//! packets' bytes.

use std::hint::black_box;
use std::time::Instant;

use fusion::vlp16::{DecoderConfig, PointLayout, Push, RotationAssembler, PACKET_SIZE};

const REAL_RATE: f64 = 754.0;
const RUNS: usize = 41;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn pin_to_one_core() {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write only into the local set, and
    // sched_setaffinity reads it for the calling thread (pid 0). Failure only loses the pinning.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn decode_all(rec: &[u8], cfg: DecoderConfig, buf: &mut [u8]) -> u64 {
    let mut asm = RotationAssembler::new(cfg);
    let start = Instant::now();
    for chunk in rec.chunks(PACKET_SIZE) {
        let Ok(pkt) = asm.parse(chunk) else { continue };
        let mut from = 0;
        while let Push::Rotation { resume_block, info } = asm.push(&pkt, from, buf) {
            black_box(&buf[..info.bytes]);
            from = resume_block;
        }
    }
    black_box(asm.stats());
    start.elapsed().as_nanos() as u64
}

fn main() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/vlp16/recording.bin"
    );
    let rec = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let packets = (rec.len() / PACKET_SIZE) as f64;
    pin_to_one_core();
    let mut buf = vec![0u8; 2 << 20];
    let mut copy = vec![0u8; rec.len()];
    let copy_rate = median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                copy.copy_from_slice(black_box(&rec));
                black_box(&copy);
                packets / t.elapsed().as_secs_f64()
            })
            .collect(),
    );
    println!("VLP-16 decode, {packets} real packets per run, median of {RUNS} runs, one core");
    println!(
        "baseline memcpy of the packets:       {:>12.0} packets/s",
        copy_rate
    );
    for (name, layout, keep) in [
        (
            "x,y,z,intensity,ring,time, dense",
            PointLayout::XyzIRingTime,
            false,
        ),
        (
            "x,y,z,intensity,ring,time, organised",
            PointLayout::XyzIRingTime,
            true,
        ),
        ("x,y,z,intensity, dense", PointLayout::XyzI, false),
    ] {
        let cfg = DecoderConfig {
            layout,
            keep_no_return: keep,
            cut_azimuth: 0,
        };
        let _warm = decode_all(&rec, cfg, &mut buf);
        let rate = median(
            (0..RUNS)
                .map(|_| packets / (decode_all(&rec, cfg, &mut buf) as f64 * 1e-9))
                .collect(),
        );
        println!(
            "{name:<37} {rate:>12.0} packets/s = {:>7.1}x the real rate 754/s (target >= 100x), {:.2}x memcpy time",
            rate / REAL_RATE,
            copy_rate / rate
        );
    }
}
