//! The VLP-16 driver end to end: real packets over loopback UDP → recvmmsg → decode into loaned
//! shared-memory chunks → a subscriber receives one cloud per rotation, equal to decoding the
//! recording directly.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use fusion::driver::meta::{FrameMeta, StreamKind};
use fusion::driver::{spawn_driver_thread, SensorDriver};
use fusion::rt::RtConfig;
use fusion::udp::UdpConfig;
use fusion::vlp16::{decode_stream, DecoderConfig, PointLayout, PACKET_SIZE};
use fusion::vlp16_driver::{Vlp16Driver, Vlp16DriverConfig};
use shm_transport::Subscriber;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vlp16/");

#[test]
fn driver_publishes_one_cloud_per_rotation_into_shared_memory() {
    let path = format!("{DATA}recording.bin");
    let rec = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("the real VLP-16 test data is missing: {path}: {e}"));
    let cfg = Vlp16DriverConfig {
        udp: UdpConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            read_timeout: Duration::from_millis(20),
            ..UdpConfig::default()
        },
        ..Vlp16DriverConfig::default()
    };
    let driver = Vlp16Driver::new(cfg).expect("bind on loopback");
    assert_eq!(driver.kind(), StreamKind::Lidar);
    assert_eq!(driver.rate_hz(), 10.0);
    let to = driver.local_addr().unwrap();
    let channel = format!("vlp16drv.{}", std::process::id());
    let stop = Arc::new(AtomicBool::new(false));
    let rt = RtConfig {
        fifo_priority: None,
        lock_memory: false,
        ..RtConfig::default()
    };
    let handle = spawn_driver_thread(Box::new(driver), &channel, rt, stop.clone()).expect("spawn");
    let mut sub = Subscriber::open(&channel).expect("open channel");

    // Sender: the recording at 10× the real rate, with malformed datagrams in between.
    let sender = thread::spawn(move || {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let start = Instant::now();
        for (i, pkt) in rec.chunks(PACKET_SIZE).enumerate() {
            if let Some(w) = (start + Duration::from_micros(133) * i as u32)
                .checked_duration_since(Instant::now())
            {
                thread::sleep(w);
            }
            tx.send_to(pkt, to).unwrap();
            if i % 97 == 3 {
                tx.send_to(&[0u8; 512], to).unwrap();
                tx.send_to(&pkt[..1204], to).unwrap();
            }
        }
    });

    let mut want = Vec::new();
    let rec = std::fs::read(&path).unwrap();
    let cfg = DecoderConfig {
        layout: PointLayout::XyzI,
        ..DecoderConfig::default()
    };
    decode_stream(&rec, cfg, 1 << 20, |b, i| want.push((b.to_vec(), *i)));
    // Published: the complete rotations (not the partial head, not the unfinished tail).
    let want: Vec<_> = want
        .into_iter()
        .filter(|(_, i)| i.complete)
        .take(12)
        .collect();
    assert_eq!(want.len(), 12);

    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30); // watchdog
    while got.len() < want.len() && Instant::now() < deadline {
        if let Some(s) = sub
            .receive_timeout(Duration::from_millis(100))
            .expect("receive")
        {
            let meta =
                FrameMeta::decode(s.user_header(), StreamKind::Lidar).expect("frame metadata");
            meta.check_payload(s.payload().len())
                .expect("payload matches metadata");
            assert_eq!(s.user(), StreamKind::Lidar.user_word());
            assert!(s.dma_time() >= s.sensor_time());
            got.push((s.payload().to_vec(), meta, s.sensor_time()));
        }
    }
    sender.join().unwrap();
    stop.store(true, Ordering::Release);
    let (stats, _) = handle.join().expect("driver ends cleanly");
    assert_eq!(got.len(), want.len(), "clouds received before the watchdog");
    for (k, ((bytes, meta, _), (wbytes, winfo))) in got.iter().zip(&want).enumerate() {
        assert_eq!(meta.width as usize, winfo.points, "cloud {k}");
        assert_eq!(meta.frame, k as u64);
        assert!(
            bytes == wbytes,
            "cloud {k} points differ from decoding the file"
        );
    }
    assert!(
        got.windows(2).all(|w| w[0].2 < w[1].2),
        "sensor times increase"
    );
    assert_eq!(stats.published, 12);
    assert_eq!(stats.loan_failures, 0);
}
