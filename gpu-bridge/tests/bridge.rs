//! The bridge front on real shared memory: backend fallback, per-stream choices, chunk
//! release only after the transfer's event, in order, nothing lost or released twice.

mod common;

use std::collections::VecDeque;
use std::time::Duration;

use common::{frame, with_watchdog, ShmSlab};
use gpu_bridge::{
    BackendKind, BridgeOptions, GpuBridge, Path, Profile, RegisterMode, Source, StreamSpec,
};

#[test]
fn open_falls_back_to_the_host_backend_with_a_reason_when_there_is_no_gpu() {
    let b = GpuBridge::open(&BridgeOptions {
        calibrate: true,
        ..Default::default()
    })
    .expect("open never fails for lack of a GPU");
    match b.backend_kind() {
        BackendKind::Cuda => eprintln!("GPU present: {}", b.describe()),
        BackendKind::Host => {
            let why = b.fallback_reason().expect("a reason");
            eprintln!("NO GPU: skipped the CUDA part of this test ({why}); host backend in use");
            assert!(why.contains("CUDA unavailable"), "{why}");
            // The calibrated profile measured the CPU copy and modeled the rest.
            let p = b.policy().profile();
            assert_eq!(p.host_copy.provenance, gpu_bridge::Provenance::Measured);
            assert_eq!(p.peer_dma.provenance, gpu_bridge::Provenance::Modeled);
            assert!(p.host_copy.bandwidth_gbps > 0.0);
        }
    }
}

#[test]
fn open_uses_a_saved_profile_and_reports_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.json");
    let mut p = Profile::pcie4_x16_default();
    p.label = "saved for the test".into();
    p.save(&path).unwrap();
    let opts = BridgeOptions {
        profile_path: Some(path.clone()),
        force_host: true,
        ..Default::default()
    };
    let b = GpuBridge::open(&opts).unwrap();
    assert_eq!(b.policy().profile().label, "saved for the test");
    std::fs::write(&path, b"{ not json").unwrap();
    let e = GpuBridge::open(&opts)
        .err()
        .expect("a broken profile is an error");
    assert!(e.to_string().contains("profile"), "{e}");
}

/// A producer with a pool of slab chunks: a chunk goes back to the pool only when the bridge
/// releases its token. Two streams, one on a peer path and one forced to bounce.
#[test]
fn chunks_come_back_in_order_once_each_and_frames_arrive_intact() {
    with_watchdog(Duration::from_secs(120), || {
        let chunk = 2_500_000usize;
        let chunks = 4;
        let shm = ShmSlab::new(chunk * chunks * 2);
        let mut bridge = GpuBridge::open(&BridgeOptions {
            force_host: true,
            calibrate: false,
            ..Default::default()
        })
        .unwrap();
        // SAFETY: `shm` outlives the bridge's use of it (unregistered at the end).
        let slab =
            unsafe { bridge.register_slab(shm.consumer_ptr(), shm.len(), RegisterMode::Pin) }
                .unwrap();
        let (cam, cam_choice) = bridge
            .add_stream(&StreamSpec {
                name: "camera".into(),
                frame_bytes: chunk,
                slab,
                source: Source::HostSlab,
                forced: None,
            })
            .unwrap();
        // 2.5 MB on the default PCIe 4.0 x16 profile: peer DMA, ≥ 100 µs.
        assert_eq!(cam_choice.path(), Path::PeerDma);
        assert!(cam_choice.delta_l_ns() >= 100_000);
        assert!(cam_choice.registration_once_ns.is_some());
        let (lidar, lidar_choice) = bridge
            .add_stream(&StreamSpec {
                name: "lidar".into(),
                frame_bytes: chunk,
                slab,
                source: Source::HostSlab,
                forced: Some(Path::Bounce),
            })
            .unwrap();
        assert_eq!(lidar_choice.path(), Path::Bounce);
        assert!(lidar_choice.explain().contains("forced by config"));
        // The slab's registration was charged once, for the camera.
        assert_eq!(lidar_choice.registration_once_ns, None);
        assert!(bridge.registration_charged().0 > 0.0);

        for (stream, base) in [(cam, 0usize), (lidar, chunks)] {
            let mut free: VecDeque<u64> = (0..chunks as u64).collect();
            let mut released = Vec::new();
            let mut sent = Vec::new();
            let mut last = Vec::new();
            for n in 0..24u64 {
                let token = loop {
                    if let Some(t) = free.pop_front() {
                        break t;
                    }
                    bridge
                        .poll_releases(stream, |t| {
                            released.push(t);
                            free.push_back(t);
                        })
                        .unwrap();
                };
                let off = (base + token as usize) * chunk;
                let bytes = frame(n, chunk);
                shm.write(off, &bytes);
                let r = bridge.send(stream, off, chunk, token).unwrap();
                sent.push(token);
                if r.chunk_released_now {
                    released.push(token);
                    free.push_back(token);
                    // Reusing a released chunk at once must not corrupt the frame in flight.
                    shm.write(off, &frame(1000 + n, chunk));
                }
                last = vec![(r.dst, bytes)];
            }
            bridge
                .drain(stream, |t| {
                    released.push(t);
                    free.push_back(t);
                })
                .unwrap();
            // Every chunk came back exactly once per send, in submission order.
            assert_eq!(released, sent);
            assert_eq!(free.len(), chunks);
            let (dst, bytes) = &last[0];
            let mut back = vec![0; chunk];
            bridge
                .backend_mut()
                .read_device(*dst, 0, &mut back)
                .unwrap();
            assert!(&back == bytes, "last frame differs on the device");
            let rep = bridge.last_report(stream).unwrap().expect("a report");
            assert_eq!(rep.link_provenance, gpu_bridge::Provenance::Modeled);
        }
        bridge.unregister_slab(slab).unwrap();
    });
}
