//! Public-API tests of the backends on real shared memory. Every check runs on the host
//! backend; the same checks run on the CUDA backend when a GPU is present, and say loudly
//! when it is not.

mod common;

use std::time::Duration;

use common::{frame, with_watchdog, ShmSlab};
use gpu_bridge::{
    probe, Backend, BackendKind, BridgeError, CudaBackend, HostBackend, Path, Profile,
    RegisterMode, SlabRegion, TransferRequest,
};

const LIMIT: Duration = Duration::from_secs(120);

/// Sends distinct frames over every path and checks that the device bytes match.
fn exercise_paths(b: &mut dyn Backend) {
    let len = 256 << 10;
    let shm = ShmSlab::new(4 * len);
    // SAFETY: `shm` outlives the registrations (unregistered at the end of this function).
    let region = unsafe { SlabRegion::from_raw(shm.consumer_ptr(), shm.len()) }.unwrap();
    let pinned = b.register_slab(region, RegisterMode::Pin).unwrap();
    let shm2 = ShmSlab::new(4 * len);
    // SAFETY: as above.
    let region2 = unsafe { SlabRegion::from_raw(shm2.consumer_ptr(), shm2.len()) }.unwrap();
    let tracked = b.register_slab(region2, RegisterMode::TrackOnly).unwrap();
    assert!(pinned.registered && !tracked.registered);
    b.ensure_staging(2, len).unwrap();
    let dst = b.alloc_device(len + 32).unwrap();
    for (n, path) in [
        Path::PeerDma,
        Path::PeerZeroCopy,
        Path::Bounce,
        Path::Pageable,
    ]
    .into_iter()
    .enumerate()
    {
        // Odd sizes and offsets exercise the kernels' tails and unaligned copies.
        for (k, (off, size, dst_off)) in [(0, len, 0), (len + 3, len - 7, 5), (2 * len, 1, 31)]
            .into_iter()
            .enumerate()
        {
            let (slab, src) = if path == Path::Pageable {
                (tracked.id, &shm2)
            } else {
                (pinned.id, &shm)
            };
            let bytes = frame((n * 10 + k) as u64, size);
            src.write(off, &bytes);
            let req = TransferRequest {
                path,
                slab,
                offset: off,
                len: size,
                dst,
                dst_offset: dst_off,
            };
            let t = b.submit(&req).unwrap();
            let rep = b.wait(t).unwrap();
            assert_eq!((rep.path, rep.bytes), (path, size));
            if path != Path::Bounce {
                assert_eq!(rep.cpu_copy_ns, 0, "{path} reported a CPU copy");
            }
            let mut back = vec![0; size];
            b.read_device(dst, dst_off, &mut back).unwrap();
            assert!(
                back == bytes,
                "{path} offset {off} len {size}: bytes differ"
            );
        }
    }
    // Peer paths refuse an unregistered slab, pageable refuses a registered one.
    let bad = |path, slab| TransferRequest {
        path,
        slab,
        offset: 0,
        len: 64,
        dst,
        dst_offset: 0,
    };
    for (path, slab) in [
        (Path::PeerDma, tracked.id),
        (Path::PeerZeroCopy, tracked.id),
        (Path::Pageable, pinned.id),
        (Path::ThirdPartyPeer, pinned.id),
    ] {
        assert!(
            matches!(
                b.submit(&bad(path, slab)),
                Err(BridgeError::PathUnavailable { .. })
            ),
            "{path}"
        );
    }
    // Out-of-bounds ranges are errors, never reads past the slab or the device buffer.
    let mut r = bad(Path::PeerDma, pinned.id);
    r.offset = shm.len() - 8;
    assert!(matches!(
        b.submit(&r),
        Err(BridgeError::OutOfBounds { what: "slab", .. })
    ));
    r.offset = usize::MAX - 2;
    assert!(matches!(b.submit(&r), Err(BridgeError::OutOfBounds { .. })));
    let mut r = bad(Path::Bounce, pinned.id);
    r.dst_offset = len;
    assert!(matches!(
        b.submit(&r),
        Err(BridgeError::OutOfBounds {
            what: "device buffer",
            ..
        })
    ));
    r.dst_offset = 0;
    r.len = len + 1;
    assert!(matches!(b.submit(&r), Err(BridgeError::OutOfBounds { .. })));
    r.len = 0;
    assert!(b.submit(&r).is_err());
    b.unregister_slab(pinned.id).unwrap();
    b.unregister_slab(tracked.id).unwrap();
    assert!(matches!(
        b.unregister_slab(pinned.id),
        Err(BridgeError::UnknownId { kind: "slab", .. })
    ));
}

/// A slab with a peer transfer in flight cannot be unregistered; tickets complete in order;
/// the bounce path frees the chunk at submit, so rewriting it then is harmless.
fn exercise_ordering(b: &mut dyn Backend) {
    let len = 1 << 20;
    let shm = ShmSlab::new(len * 4);
    // SAFETY: `shm` outlives the registration.
    let region = unsafe { SlabRegion::from_raw(shm.consumer_ptr(), shm.len()) }.unwrap();
    let slab = b.register_slab(region, RegisterMode::Pin).unwrap().id;
    b.ensure_staging(2, len).unwrap();
    let dsts: Vec<_> = (0..4).map(|_| b.alloc_device(len).unwrap()).collect();
    let mut tickets = Vec::new();
    for (i, &dst) in dsts.iter().enumerate() {
        let bytes = frame(100 + i as u64, len);
        shm.write(i * len, &bytes);
        let path = if i % 2 == 0 {
            Path::Bounce
        } else {
            Path::PeerDma
        };
        let t = b
            .submit(&TransferRequest {
                path,
                slab,
                offset: i * len,
                len,
                dst,
                dst_offset: 0,
            })
            .unwrap();
        if path == Path::Bounce {
            // The chunk may be reused at once: the bytes are in the staging slot.
            shm.write(i * len, &frame(999, len));
        }
        tickets.push((t, bytes));
    }
    // Tickets are ordered; waiting for the last completes the rest.
    assert!(tickets.windows(2).all(|w| w[0].0 < w[1].0));
    let last = tickets.last().unwrap().0;
    b.wait(last).unwrap();
    for (t, _) in &tickets[..3] {
        assert!(b.poll(*t).unwrap().is_some(), "ticket {t:?} not complete");
    }
    assert!(matches!(b.poll(last), Err(BridgeError::UnknownId { .. })));
    for ((_, bytes), &dst) in tickets.iter().zip(&dsts) {
        let mut back = vec![0; len];
        b.read_device(dst, 0, &mut back).unwrap();
        assert!(&back == bytes);
    }
    // In flight: unregister refuses until the events completed.
    let ts: Vec<_> = (0..4)
        .map(|i| {
            b.submit(&TransferRequest {
                path: Path::PeerDma,
                slab,
                offset: i * len,
                len,
                dst: dsts[i],
                dst_offset: 0,
            })
            .unwrap()
        })
        .collect();
    match b.unregister_slab(slab) {
        Err(BridgeError::SlabBusy(_)) => {
            b.wait(ts[3]).unwrap();
            b.unregister_slab(slab).unwrap();
        }
        Ok(()) => {
            // Only legal if every transfer had completed (a fast GPU).
            for t in ts {
                assert!(
                    b.poll(t).unwrap().is_some(),
                    "unregistered with {t:?} in flight"
                );
            }
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn host_backend_moves_every_path_intact() {
    with_watchdog(LIMIT, || {
        let mut h = HostBackend::new(Profile::pcie4_x16_default());
        assert_eq!(h.kind(), BackendKind::Host);
        exercise_paths(&mut h);
        exercise_ordering(&mut h);
    });
}

/// The host backend performs the device write when the modeled event fires, from the slab:
/// rewriting a peer-path chunk before its event completed is caught as an integrity error.
#[test]
fn host_backend_detects_a_chunk_reused_before_its_event() {
    with_watchdog(LIMIT, || {
        // A slow modeled link (2 s) so the transfer is surely still in flight when the
        // chunk is rewritten, even on a loaded machine.
        let mut p = Profile::pcie4_x16_default();
        p.peer_dma.setup_ns = 2e9;
        let mut h = HostBackend::new(p);
        let shm = ShmSlab::new(1 << 16);
        // SAFETY: `shm` outlives the registration.
        let region = unsafe { SlabRegion::from_raw(shm.consumer_ptr(), shm.len()) }.unwrap();
        let slab = h.register_slab(region, RegisterMode::Pin).unwrap().id;
        let dst = h.alloc_device(1 << 16).unwrap();
        shm.write(0, &frame(1, 1 << 16));
        let t = h
            .submit(&TransferRequest {
                path: Path::PeerDma,
                slab,
                offset: 0,
                len: 1 << 16,
                dst,
                dst_offset: 0,
            })
            .unwrap();
        assert_eq!(
            h.poll(t).unwrap(),
            None,
            "completed before its modeled time"
        );
        shm.write(0, &frame(2, 1 << 16)); // the bug: reuse before the event
        match h.wait(t) {
            Err(BridgeError::Integrity { seq, sent, arrived }) => {
                assert_eq!(seq, t.0);
                assert_ne!(sent, arrived);
            }
            other => panic!("expected an integrity error, got {other:?}"),
        }
    });
}

#[test]
fn cuda_backend_moves_every_path_intact_or_says_no_gpu() {
    with_watchdog(LIMIT, || match probe(0) {
        Ok(info) => {
            eprintln!(
                "GPU present: {} (driver {})",
                info.name, info.driver_version
            );
            let mut c = CudaBackend::new(0).expect("CUDA backend");
            assert!(c.kernels_error().is_none(), "{:?}", c.kernels_error());
            exercise_paths(&mut c);
            exercise_ordering(&mut c);
        }
        Err(e) => {
            eprintln!("NO GPU: skipped the CUDA part of this test ({e}); running the host backend");
            assert!(matches!(e, BridgeError::CudaUnavailable(_)), "{e}");
            assert!(matches!(
                CudaBackend::new(0),
                Err(BridgeError::CudaUnavailable(_))
            ));
            let mut h = HostBackend::new(Profile::pcie4_x16_default());
            exercise_paths(&mut h);
        }
    });
}

#[test]
fn slab_regions_reject_null_and_empty() {
    // SAFETY: invalid inputs are rejected before any access.
    let null = unsafe { SlabRegion::from_raw(std::ptr::null(), 10) };
    assert!(matches!(null, Err(BridgeError::InvalidRegion(_))));
    static BYTES: [u8; 4] = [1, 2, 3, 4];
    assert!(SlabRegion::from_static(&BYTES[..0]).is_err());
    let r = SlabRegion::from_static(&BYTES).unwrap();
    assert_eq!(r.len(), 4);
    assert!(r.check(2, 2).is_ok() && r.check(3, 2).is_err() && r.check(0, 0).is_err());
}
