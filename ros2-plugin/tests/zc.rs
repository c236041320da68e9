//! The same-host zero-copy path: plugin peers use shared memory, ordinary ROS 2 peers (Cyclone
//! DDS) still get DDS, and peers coming and going neither lose nor duplicate a message.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use ros2_plugin::context::new_context;
use ros2_plugin::zc::{ZcOptions, ZcPayload, ZcPublisher, ZcPublisherStats, ZcSubscription};
use ros2_plugin::QosConfig;
use rtfuse_msgs::builtin_interfaces::Time;
use rtfuse_msgs::cdr;
use rtfuse_msgs::sensor_msgs::Image;
use rtfuse_msgs::sensor_msgs::ImageView;
use rtfuse_msgs::std_msgs::Header;

const LONG: Duration = Duration::from_secs(30);

fn image(i: u32, size: usize) -> Image {
    Image {
        header: Header {
            stamp: Time {
                sec: i as i32,
                nanosec: 0,
            },
            frame_id: "cam".into(),
        },
        height: 1,
        width: size as u32,
        encoding: "mono8".into(),
        is_bigendian: 0,
        step: size as u32,
        data: (0..size).map(|k| (k as u32 ^ i) as u8).collect(),
    }
}

#[test]
fn two_plugin_peers_use_shared_memory_and_skip_dds() {
    let _w = watchdog(Duration::from_secs(90), "zc pair");
    let domain = unique_domain();
    let topic = format!("/zc_pair_{}", std::process::id());
    let (c1, c2) = (
        new_context(Some(domain)).unwrap(),
        new_context(Some(domain)).unwrap(),
    );
    let opts = ZcOptions::default();
    let mut publisher = ZcPublisher::<Image>::new(&c1, &topic, &opts).expect("publisher");
    let mut sub = ZcSubscription::<Image>::new(&c2, &topic, &opts).expect("subscription");
    wait_for(LONG, || (sub.attached_publishers() == 1).then_some(())).expect("never attached");
    wait_for(LONG, || (publisher.peers() == (1, 1)).then_some(()))
        .expect("publisher never saw its matched reader as a plugin peer");
    for i in 0..20 {
        publisher.publish(&image(i, 1 << 20)).expect("publish");
        if i % 2 == 0 {
            let (img, info) = sub
                .take_timeout(LONG)
                .expect("take")
                .expect("message arrives");
            assert!(info.via_shm, "message {i} came by DDS");
            assert_eq!(img, image(i, 1 << 20));
        } else {
            // Zero-copy: the pixels are read where the publisher wrote them.
            let (payload, info) = sub
                .take_loaned_timeout(LONG)
                .expect("take")
                .expect("arrives");
            assert!(info.via_shm && matches!(payload, ZcPayload::Shm(_)));
            let view: ImageView<'_> = cdr::decode_borrowed(payload.bytes()).expect("view");
            assert_eq!(view.to_owned(), image(i, 1 << 20));
        }
    }
    // In-place publishing: the producer serializes straight into the chunk.
    let img = image(99, 1000);
    publisher
        .publish_with(2000, |buf| cdr::encode_to_slice(&img, buf))
        .expect("publish_with");
    let (got, info) = sub.take_timeout(LONG).expect("take").expect("arrives");
    assert!(info.via_shm);
    assert_eq!(got, img);
    let ps = publisher.stats();
    assert_eq!(
        (ps.via_shm, ps.dds_skipped, ps.via_dds),
        (21, 21, 0),
        "{ps:?}"
    );
    let ss = sub.stats();
    assert_eq!(
        (ss.via_shm, ss.via_dds, ss.duplicates_suppressed),
        (21, 0, 0),
        "{ss:?}"
    );
}

/// A plugin publisher streams; a plugin subscription joins mid-stream; an ordinary ROS 2 node
/// (Cyclone) joins and leaves; the subscription must see every message from its first one on,
/// exactly once, in order, while the publisher switches between "shared memory only" and
/// "shared memory + DDS".
#[test]
fn peers_appearing_and_leaving_lose_and_duplicate_nothing() {
    let _w = watchdog(Duration::from_secs(150), "zc handoff");
    require_cyclonedds();
    let domain = unique_domain();
    let topic = format!("zc_handoff_{}", std::process::id());
    let dds_topic = format!("rt/{topic}");
    // Deep enough that a consumer hiccup loses nothing on either path, so that any gap is the
    // hand-over's fault.
    let opts = ZcOptions {
        qos: QosConfig {
            depth: 1000,
            ..QosConfig::ros_default()
        },
        chunk_size: 8192,
        chunk_count: 256,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let pub_stats = Arc::new(Mutex::new(None::<ZcPublisherStats>));
    let pub_thread = {
        let (topic, stop, pub_stats, opts) =
            (topic.clone(), stop.clone(), pub_stats.clone(), opts.clone());
        std::thread::spawn(move || {
            let ctx = new_context(Some(domain)).unwrap();
            let mut p = ZcPublisher::<Image>::new(&ctx, &topic, &opts).unwrap();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                p.publish(&image(i, 4096)).expect("publish");
                *pub_stats.lock().unwrap() = Some(p.stats());
                i += 1;
                std::thread::sleep(Duration::from_millis(4));
            }
            (i, p.stats())
        })
    };
    let stats = || pub_stats.lock().unwrap().unwrap_or_default();
    wait_for(LONG, || (stats().published > 0).then_some(())).expect("publisher runs");
    std::thread::sleep(Duration::from_millis(200));
    let ctx = new_context(Some(domain)).unwrap();
    let mut sub = ZcSubscription::<Image>::new(&ctx, &topic, &opts).unwrap();
    let mut seen = Vec::new();
    let mut phase = 0;
    let mut peer_thread = None;
    let mut skipped_before_peer = 0;
    let mut dds_before_peer = 0;
    let mut dds_with_peer = 0;
    let deadline = Instant::now() + Duration::from_secs(100);
    while phase < 4 {
        assert!(
            Instant::now() < deadline,
            "stuck in phase {phase}: {:?}",
            stats()
        );
        if let Some((img, _)) = sub.take_timeout(Duration::from_millis(20)).expect("take") {
            let i = img.header.stamp.sec as u32;
            assert_eq!(img, image(i, 4096));
            seen.push(i);
        }
        let s = stats();
        match phase {
            // 0: wait until the publisher runs on shared memory alone.
            0 if s.dds_skipped > 20 => {
                skipped_before_peer = s.dds_skipped;
                dds_before_peer = s.via_dds;
                let t = dds_topic.clone();
                // An ordinary ROS 2 node joins (started on another thread: no consumer stall).
                peer_thread = Some(std::thread::spawn(move || {
                    let peer = Peer::cyclone(
                        "sub",
                        domain,
                        &t,
                        "sensor_msgs/msg/Image",
                        &["--count", "40", "--timeout", "60", "--depth", "1000"],
                    );
                    peer.wait_matched(LONG);
                    peer.records(40, LONG).len()
                }));
                phase = 1;
            }
            // 1: the ordinary node got its 40 messages by DDS and left.
            1 if peer_thread.as_ref().is_some_and(|t| t.is_finished()) => {
                let got = peer_thread.take().unwrap().join().expect("peer thread");
                assert_eq!(
                    got, 40,
                    "the ordinary ROS 2 node did not get its messages by DDS"
                );
                dds_with_peer = s.via_dds;
                phase = 2;
            }
            // 2: with the node gone, the publisher skips DDS again.
            2 if s.dds_skipped > skipped_before_peer + 20 => {
                stop.store(true, Ordering::Relaxed);
                phase = 3;
            }
            // 3: drain everything the publisher sent.
            3 if pub_thread.is_finished() => phase = 4,
            _ => {}
        }
    }
    let (n, ps) = pub_thread.join().expect("publisher thread");
    while let Some((img, _)) = sub.take_timeout(Duration::from_millis(500)).expect("take") {
        seen.push(img.header.stamp.sec as u32);
    }
    let ss = sub.stats();
    eprintln!("publisher {ps:?}\nsubscription {ss:?}");
    let first = seen[0];
    let expected: Vec<u32> = (first..n).collect();
    assert!(
        seen == expected,
        "gaps or duplicates: saw {} of {first}..{n}: {seen:?}",
        seen.len()
    );
    assert!(
        dds_with_peer > dds_before_peer,
        "no DDS while the ordinary node was there: {ps:?}"
    );
    assert!(ss.via_shm > 0 && ss.duplicates_suppressed > 0, "{ss:?}");
    assert_eq!(ps.seq_mispredicted, 0, "{ps:?}");
}

#[test]
fn publisher_going_away_detaches_and_a_new_one_is_found() {
    let _w = watchdog(Duration::from_secs(90), "zc restart");
    let domain = unique_domain();
    let topic = format!("/zc_restart_{}", std::process::id());
    let ctx = new_context(Some(domain)).unwrap();
    let mut sub = ZcSubscription::<Image>::new(&ctx, &topic, &ZcOptions::default()).unwrap();
    for round in 0..2u32 {
        let pctx = new_context(Some(domain)).unwrap();
        let mut p = ZcPublisher::<Image>::new(&pctx, &topic, &ZcOptions::default()).unwrap();
        wait_for(LONG, || (sub.attached_publishers() >= 1).then_some(())).expect("attach");
        wait_for(LONG, || (p.peers() == (1, 1)).then_some(())).expect("peer");
        for i in 0..5 {
            p.publish(&image(round * 10 + i, 100)).unwrap();
        }
        for i in 0..5 {
            let (img, info) = sub.take_timeout(LONG).unwrap().expect("message");
            assert_eq!(img.header.stamp.sec as u32, round * 10 + i);
            assert!(info.via_shm);
        }
        drop(p);
        wait_for(LONG, || {
            let _ = sub.take().unwrap();
            (sub.attached_publishers() == 0).then_some(())
        })
        .expect("the vanished publisher was not detached");
    }
    assert_eq!(sub.stats().detached, 2);
}
