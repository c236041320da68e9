//! Bounce CPU-copy throughput: slab → pinned staging slot through the host backend's copy
//! (`hostmem::copy_bytes` into a page-locked slot), against plain `memcpy` between two
//! ordinary heap buffers of the same size, measured in the same run. Prints medians in GB/s
//! and the ratio (target ≥ 0.9).
//!
//! Run: `cargo bench -p gpu-bridge --bench bounce_copy`

use std::time::Instant;

use gpu_bridge::calibrate::median;
use gpu_bridge::hostmem::copy_bytes;
use gpu_bridge::PageBuffer;

fn gbps_median(bytes: usize, reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            f();
            bytes as f64 / t0.elapsed().as_nanos().max(1) as f64
        })
        .collect();
    median(&mut v)
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    println!("bounce CPU copy (slab -> pinned staging) vs plain memcpy, same size, same run");
    println!(
        "{:>10} {:>14} {:>14} {:>8}",
        "size", "bounce GB/s", "memcpy GB/s", "ratio"
    );
    let mut worst = f64::INFINITY;
    for &size in &[64usize << 10, 5 << 19, 16 << 20] {
        let reps = if size <= 1 << 20 { 2001 } else { 101 };
        let mut slab = PageBuffer::new(size, true)
            .or_else(|_| PageBuffer::new(size, false))
            .expect("map slab");
        let mut staging = PageBuffer::new(size, true)
            .or_else(|_| PageBuffer::new(size, false))
            .expect("map staging");
        for (i, b) in slab.as_mut_slice().iter_mut().enumerate() {
            *b = (i * 31) as u8;
        }
        let src_heap: Vec<u8> = slab.as_slice().to_vec();
        let mut dst_heap: Vec<u8> = vec![0; size];
        // Interleave the two measurements in rounds so frequency drift hits both alike.
        let (mut b, mut m) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            b.push(gbps_median(size, reps / 5, || {
                copy_bytes(staging.as_mut_slice(), slab.as_slice());
                std::hint::black_box(staging.as_slice());
            }));
            m.push(gbps_median(size, reps / 5, || {
                dst_heap.copy_from_slice(&src_heap);
                std::hint::black_box(&dst_heap);
            }));
        }
        let (bm, mm) = (median(&mut b), median(&mut m));
        let ratio = bm / mm;
        worst = worst.min(ratio);
        println!("{:>10} {:>14.2} {:>14.2} {:>8.3}", size, bm, mm, ratio);
        assert_eq!(
            staging.as_slice(),
            slab.as_slice(),
            "bounce copy corrupted data"
        );
    }
    println!("worst ratio {worst:.3} (target >= 0.9)");
}
