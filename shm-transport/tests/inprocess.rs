//! In-process behaviour of channels: delivery, overflow policies, several subscribers, typed
//! payloads, disconnect, stale segments and refusals.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use shm_transport::*;

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}_{}_{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn cfg(chunks: u32, depth: u32, overflow: OverflowPolicy) -> ChannelConfig {
    ChannelConfig {
        chunk_size: 256,
        chunk_count: chunks,
        ring_depth: depth,
        overflow,
        alignment: 64,
        ..ChannelConfig::default()
    }
}

fn send(p: &mut Publisher, v: u8) -> u64 {
    let mut s = p.loan().expect("chunk");
    s.payload_mut()[0] = v;
    s.set_len(1);
    s.set_dma_time(now_ns());
    s.publish().expect("publish").seq
}

#[test]
fn delivers_in_order_and_returns_chunks() {
    let name = unique("order");
    let mut p = Publisher::create(&name, &cfg(4, 4, OverflowPolicy::Reject)).unwrap();
    let mut s = Subscriber::open(&name).unwrap();
    assert_eq!(p.subscriber_count(), 1);
    for round in 0..50u8 {
        for i in 0..3u8 {
            send(&mut p, round.wrapping_mul(3).wrapping_add(i));
        }
        for i in 0..3u8 {
            let smp = s.receive().unwrap().unwrap();
            assert_eq!(smp.payload(), &[round.wrapping_mul(3).wrapping_add(i)]);
            assert!(smp.enqueue_time() >= smp.dma_time());
        }
        assert!(s.receive().unwrap().is_none());
    }
    p.maintain();
    assert_eq!(p.stats().free_chunks, 4, "every chunk came back");
    assert_eq!(s.stats().received, 150);
    assert_eq!(s.stats().gaps, 0);
}

#[test]
fn reject_hands_the_sample_back_when_full() {
    let name = unique("reject");
    let mut p = Publisher::create(&name, &cfg(8, 2, OverflowPolicy::Reject)).unwrap();
    let mut s = Subscriber::open(&name).unwrap();
    send(&mut p, 1);
    send(&mut p, 2);
    let mut smp = p.loan().unwrap();
    smp.set_len(0);
    let back = match smp.publish() {
        Err(PublishError::Full(back)) => back,
        Ok(_) => panic!("ring of depth 2 accepted a third sample"),
        Err(e) => panic!("unexpected {e}"),
    };
    drop(back);
    assert_eq!(p.stats().rejected, 1);
    assert_eq!(s.receive().unwrap().unwrap().payload(), &[1]);
    assert_eq!(s.receive().unwrap().unwrap().payload(), &[2]);
    assert!(s.receive().unwrap().is_none());
    assert_eq!(s.stats().gaps, 0);
}

#[test]
fn keep_last_drops_oldest_with_exact_accounting() {
    let name = unique("keeplast");
    let mut p = Publisher::create(&name, &cfg(16, 4, OverflowPolicy::KeepLast)).unwrap();
    let mut s = Subscriber::open(&name).unwrap();
    for v in 1..=10u8 {
        send(&mut p, v);
    }
    let got: Vec<u8> = std::iter::from_fn(|| s.receive().unwrap())
        .map(|x| x.payload()[0])
        .collect();
    assert_eq!(
        got,
        vec![7, 8, 9, 10],
        "the newest ring_depth samples survive"
    );
    assert_eq!(p.stats().dropped, 6);
    assert_eq!(s.stats().dropped_by_publisher, 6);
    p.maintain();
    assert_eq!(p.stats().free_chunks, 16, "dropped chunks were reclaimed");
}

#[test]
fn several_subscribers_each_get_everything_and_chunks_free_after_all() {
    let name = unique("multi");
    let mut p = Publisher::create(&name, &cfg(8, 4, OverflowPolicy::Reject)).unwrap();
    let mut a = Subscriber::open(&name).unwrap();
    let mut b = Subscriber::open(&name).unwrap();
    send(&mut p, 5);
    let sa = a.receive().unwrap().unwrap();
    p.maintain();
    assert_eq!(p.stats().free_chunks, 7, "b still holds it in its ring");
    let sb = b.receive().unwrap().unwrap();
    assert_eq!(sa.payload(), sb.payload());
    drop(sa);
    p.maintain();
    assert_eq!(p.stats().free_chunks, 7, "b still holds it as a sample");
    drop(sb);
    p.maintain();
    assert_eq!(p.stats().free_chunks, 8);
}

#[test]
fn subscriber_close_reclaims_its_queued_chunks() {
    let name = unique("close");
    let mut p = Publisher::create(&name, &cfg(4, 4, OverflowPolicy::KeepLast)).unwrap();
    let s = Subscriber::open(&name).unwrap();
    assert_eq!(p.subscriber_count(), 1);
    send(&mut p, 1);
    send(&mut p, 2);
    assert_eq!(p.stats().free_chunks, 2);
    drop(s);
    p.maintain();
    assert_eq!(p.stats().free_chunks, 4);
    assert_eq!(p.subscriber_count(), 0);
    // The slot is reusable.
    let mut s2 = Subscriber::open(&name).unwrap();
    send(&mut p, 3);
    assert_eq!(s2.receive().unwrap().unwrap().payload(), &[3]);
}

#[test]
fn publisher_drop_drains_then_disconnects_and_unlinks() {
    let name = unique("disc");
    let mut p = Publisher::create(&name, &cfg(4, 4, OverflowPolicy::Reject)).unwrap();
    let mut s = Subscriber::open(&name).unwrap();
    send(&mut p, 1);
    send(&mut p, 2);
    drop(p);
    assert!(!std::path::Path::new(&format!("/dev/shm/rtfuse.{name}")).exists());
    assert_eq!(s.receive().unwrap().unwrap().payload(), &[1]);
    assert_eq!(s.receive().unwrap().unwrap().payload(), &[2]);
    assert_eq!(s.receive().err(), Some(ReceiveError::Disconnected));
    assert!(matches!(
        Subscriber::open(&name),
        Err(OpenError::NotFound(_))
    ));
}

#[test]
fn typed_channel_round_trip_and_type_check() {
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Imu {
        t: u64,
        gyro: [f32; 3],
        accel: [f32; 3],
    }
    // SAFETY: repr(C) of integers and floats, no padding, valid for any bits.
    unsafe impl ShmSafe for Imu {}
    let name = unique("typed");
    let mut p = Publisher::create_typed::<Imu>(&name, ChannelConfig::default()).unwrap();
    assert!(matches!(
        Subscriber::open_typed::<u64>(&name),
        Err(OpenError::TypeMismatch { .. })
    ));
    let mut s = Subscriber::open_typed::<Imu>(&name).unwrap();
    let v = Imu {
        t: 7,
        gyro: [1.0, 2.0, 3.0],
        accel: [0.0, 0.0, 9.81],
    };
    let mut m = p.loan().unwrap();
    m.write(&v);
    m.publish().unwrap();
    assert_eq!(s.receive().unwrap().unwrap().read::<Imu>().unwrap(), v);
    let f = p.footprint();
    assert!(
        f.pinned_bytes < 64 * 1024,
        "a small typed channel does not pin much: {f}"
    );
}

#[test]
fn blocking_receive_wakes_on_publish_and_times_out() {
    let name = unique("wake");
    let c = ChannelConfig {
        wakeup: WakeupPolicy::Futex,
        ..cfg(4, 4, OverflowPolicy::Reject)
    };
    let mut p = Publisher::create(&name, &c).unwrap();
    let mut s = Subscriber::open(&name).unwrap();
    assert!(s
        .receive_timeout(Duration::from_millis(20))
        .unwrap()
        .is_none());
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        send(&mut p, 9);
        p
    });
    let got = s
        .receive_timeout(Duration::from_secs(20))
        .unwrap()
        .expect("woken by the publish");
    assert_eq!(got.payload(), &[9]);
    drop(got);
    let p = t.join().unwrap();
    drop(p);
    assert_eq!(
        s.receive_timeout(Duration::from_secs(20)).err(),
        Some(ReceiveError::Disconnected)
    );
}

#[test]
fn wait_any_over_two_channels() {
    let (n1, n2) = (unique("any1"), unique("any2"));
    let c = ChannelConfig {
        wakeup: WakeupPolicy::Futex,
        ..cfg(4, 4, OverflowPolicy::Reject)
    };
    let mut p1 = Publisher::create(&n1, &c).unwrap();
    let mut p2 = Publisher::create(&n2, &c).unwrap();
    let s1 = Subscriber::open(&n1).unwrap();
    let mut s2 = Subscriber::open(&n2).unwrap();
    p1.maintain();
    assert!(!wait_any(&[&s1, &s2], Duration::from_millis(10)));
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        send(&mut p2, 4);
        p2
    });
    assert!(wait_any(&[&s1, &s2], Duration::from_secs(20)));
    assert_eq!(s2.receive().unwrap().unwrap().payload(), &[4]);
    drop(t.join().unwrap());
}

#[test]
fn refusals_are_clear() {
    assert!(matches!(
        Publisher::create("bad/name", &ChannelConfig::default()),
        Err(CreateError::InvalidName(_))
    ));
    let bad = ChannelConfig {
        ring_depth: 3,
        ..ChannelConfig::default()
    };
    let e = Publisher::create(&unique("cfg"), &bad).err().unwrap();
    assert!(e.to_string().contains("power of two"), "{e}");
    let name = unique("dup");
    let _p = Publisher::create(&name, &ChannelConfig::default()).unwrap();
    let e = Publisher::create(&name, &ChannelConfig::default())
        .err()
        .unwrap();
    assert!(
        matches!(e, CreateError::AlreadyExists { pid, .. } if pid == std::process::id() || pid == 0),
        "{e}"
    );
    assert!(matches!(
        Subscriber::open(&unique("none")),
        Err(OpenError::NotFound(_))
    ));
    let full = unique("full");
    let _q = Publisher::create(
        &full,
        &ChannelConfig {
            max_subscribers: 1,
            ..ChannelConfig::default()
        },
    )
    .unwrap();
    let _s = Subscriber::open(&full).unwrap();
    assert!(matches!(
        Subscriber::open(&full),
        Err(OpenError::NoFreeSlot(_))
    ));
}

/// Overwrites the object in place. (`fs::write` would truncate it first, and the live publisher's
/// mapping — read by its liveness monitor thread — would fault on the vanished pages.)
fn overwrite(path: &str, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, 0).unwrap();
}

#[test]
fn wrong_layout_version_and_garbage_are_refused_and_stale_replaced() {
    let name = unique("ver");
    let p = Publisher::create(&name, &ChannelConfig::default()).unwrap();
    let path = format!("/dev/shm/rtfuse.{name}");
    // Bump the layout version in place (offset 8, u32).
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&99u32.to_le_bytes());
    overwrite(&path, &bytes);
    let e = Subscriber::open(&name).err().unwrap();
    assert!(
        matches!(&e, OpenError::Incompatible { reason, .. } if reason.contains("99")),
        "{e}"
    );
    // Scribble the geometry: refused, never mapped out of bounds.
    bytes[8..12].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
    bytes[56..64].copy_from_slice(&u64::MAX.to_le_bytes());
    overwrite(&path, &bytes);
    assert!(matches!(
        Subscriber::open(&name),
        Err(OpenError::Incompatible { .. })
    ));
    // A segment whose publisher is alive (its lock still held) is never replaced.
    std::mem::forget(p); // keeps its lock: still "alive"
    assert!(matches!(
        Publisher::create(&name, &ChannelConfig::default()),
        Err(CreateError::AlreadyExists { .. })
    ));
    // The forgotten publisher never unlinks: leave nothing behind in /dev/shm.
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn footprint_reports_pinned_memory_and_waste() {
    let c = ChannelConfig {
        chunk_size: 300,
        chunk_count: 64,
        alignment: 64,
        ..ChannelConfig::default()
    };
    let f = c.footprint().unwrap();
    assert_eq!(f.payload_bytes, 300 * 64);
    assert!(f.pinned_bytes >= f.payload_bytes && f.waste_bytes == f.pinned_bytes - f.payload_bytes);
    let page = ChannelConfig {
        alignment: 4096,
        ..c
    };
    assert!(
        page.footprint().unwrap().pinned_bytes > f.pinned_bytes,
        "page alignment pins more for small samples"
    );
    assert!(f.to_string().contains("pinned"));
}

#[test]
fn driver_brings_its_own_memory_region() {
    // A driver-provided region: here a file in /dev/shm standing in for an exported DMA buffer.
    let region = format!("/dev/shm/rtfuse-test-region-{}", std::process::id());
    let chunk = 8192usize;
    std::fs::write(&region, vec![0u8; 4096 + 4 * chunk]).unwrap();
    let name = unique("ext");
    let c = ChannelConfig {
        chunk_size: chunk,
        chunk_count: 4,
        external_slab: Some(ExternalSlab {
            path: region.clone().into(),
            offset: 4096,
        }),
        ..ChannelConfig::default()
    };
    let mut p = Publisher::create(&name, &c).unwrap();
    let mut s = Subscriber::open(&name).unwrap();
    let (base, len, stride) = p.slab();
    assert_eq!((len, stride), (4 * chunk, chunk));
    let mut m = p.loan().unwrap();
    let idx = m.chunk_index() as usize;
    m.payload_mut()[..4].copy_from_slice(b"dma!");
    m.set_len(4);
    m.publish().unwrap();
    // The bytes really live in the driver's file, at the chunk's offset.
    let file = std::fs::read(&region).unwrap();
    assert_eq!(&file[4096 + idx * chunk..4096 + idx * chunk + 4], b"dma!");
    assert!(!base.is_null());
    assert_eq!(s.receive().unwrap().unwrap().payload(), b"dma!");
    // Too small a region is refused with the sizes.
    let small = ChannelConfig {
        chunk_count: 64,
        ..c
    };
    let e = Publisher::create(&unique("ext2"), &small).err().unwrap();
    assert!(e.to_string().contains("needs"), "{e}");
    std::fs::remove_file(&region).unwrap();
}

#[test]
fn huge_pages_if_available_or_a_clear_refusal() {
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
        .unwrap_or_default();
    let allowed = ["[always]", "[within_size]", "[advise]", "[force]"]
        .iter()
        .any(|m| thp.contains(m));
    let base = ChannelConfig {
        chunk_size: 1 << 20,
        chunk_count: 4,
        ..ChannelConfig::default()
    };
    // IfAvailable always works; with huge pages allowed the segment is rounded to 2 MiB.
    let c = ChannelConfig {
        huge_pages: HugePages::IfAvailable,
        ..base.clone()
    };
    let f = c.footprint().unwrap();
    assert_eq!(
        f.pinned_bytes % (2 << 20) == 0,
        allowed,
        "{f} with shmem_enabled = {thp}"
    );
    let _p = Publisher::create(&unique("huge1"), &c).unwrap();
    let r = Publisher::create(
        &unique("huge2"),
        &ChannelConfig {
            huge_pages: HugePages::Required,
            ..base
        },
    );
    if allowed {
        assert!(r.is_ok());
    } else {
        let e = r.err().unwrap();
        assert!(matches!(e, CreateError::HugePagesUnavailable), "{e}");
        assert!(e.to_string().contains("shmem_enabled"));
    }
}
