//! An independent producer process: Python (standard library only) maps the same /dev/shm
//! segment, writes frames derived from SHAKE-128 and prints each frame's CRC-32 (zlib). The
//! bridge moves the frames over every path the host can carry; what arrives must match
//! Python's CRCs.

mod common;

use std::time::Duration;

use common::{with_watchdog, ShmSlab};
use gpu_bridge::{BridgeOptions, GpuBridge, Path, RegisterMode, Source, StreamSpec};

const PRODUCER: &str = r#"
import hashlib, mmap, os, sys, zlib
name, chunk, frames = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open("/dev/shm/" + name.lstrip("/"), os.O_RDWR)
m = mmap.mmap(fd, chunk * frames)
for i in range(frames):
    data = hashlib.shake_128(b"frame %d" % i).digest(chunk)
    m[i * chunk:(i + 1) * chunk] = data
    print(zlib.crc32(data))
m.flush()
"#;

#[test]
fn frames_from_a_python_producer_arrive_intact_on_every_path() {
    with_watchdog(Duration::from_secs(120), || {
        let (chunk, frames) = (300_001usize, 6usize);
        let shm = ShmSlab::new(chunk * frames);
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                PRODUCER,
                shm.name(),
                &chunk.to_string(),
                &frames.to_string(),
            ])
            .output()
            .expect("python3 must be installed");
        assert!(
            out.status.success(),
            "python producer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let crcs: Vec<u32> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().parse().expect("a CRC per line"))
            .collect();
        assert_eq!(crcs.len(), frames);

        let mut bridge = GpuBridge::open(&BridgeOptions {
            calibrate: false,
            ..Default::default()
        })
        .unwrap();
        eprintln!("{}", bridge.describe());
        if let Some(why) = bridge.fallback_reason() {
            eprintln!(
                "NO GPU: skipped the CUDA part of this test ({why}); host backend checks the bytes"
            );
        }
        // SAFETY: `shm` outlives the registration (unregistered below).
        let slab =
            unsafe { bridge.register_slab(shm.consumer_ptr(), shm.len(), RegisterMode::Pin) }
                .unwrap();
        for path in [Path::PeerDma, Path::PeerZeroCopy, Path::Bounce] {
            let (s, choice) = bridge
                .add_stream(&StreamSpec {
                    name: format!("python-{path}"),
                    frame_bytes: chunk,
                    slab,
                    source: Source::HostSlab,
                    forced: Some(path),
                })
                .unwrap();
            assert_eq!(choice.path(), path);
            for (i, &crc) in crcs.iter().enumerate() {
                let r = bridge.send(s, i * chunk, chunk, i as u64).unwrap();
                let mut released = Vec::new();
                bridge.drain(s, |t| released.push(t)).unwrap();
                let mut back = vec![0; chunk];
                bridge
                    .backend_mut()
                    .read_device(r.dst, 0, &mut back)
                    .unwrap();
                assert_eq!(crc32fast::hash(&back), crc, "{path} frame {i}");
                assert_eq!(released.is_empty(), r.chunk_released_now);
            }
        }
        bridge.unregister_slab(slab).unwrap();
    });
}
