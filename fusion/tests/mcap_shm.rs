//! MCAP replay into shared-memory channels: a file written by PyPI `mcap-ros2-support` is
//! replayed into real shm channels and read back by subscribers in the drivers' layouts.

mod mcap_common;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use fusion::driver::meta::{decode_imu, decode_odometry, FrameMeta, StreamKind};
use fusion::driver::synthetic::ChannelParams;
use fusion::mcap_msgs::MessageType;
use fusion::mcap_replay::{replay_bytes, Pace};
use fusion::mcap_shm::{channel_name, plan_channels, ShmSink};
use rtfuse_msgs::cdr;
use rtfuse_msgs::sensor_msgs::CameraInfo;
use shm_transport::{Subscriber, WakeupPolicy};

fn f32_at(b: &[u8], at: usize) -> f64 {
    f64::from(f32::from_le_bytes(b[at..at + 4].try_into().unwrap()))
}

#[test]
fn replayed_messages_arrive_in_shm_channels_in_driver_layouts() {
    let (buf, manifest) = mcap_common::python_file(&[]);
    let plans = plan_channels(&buf).expect("first pass");
    let topics: Vec<_> = plans.iter().map(|p| (p.topic.as_str(), p.ty)).collect();
    assert_eq!(
        topics,
        [
            ("/camera/camera_info", MessageType::CameraInfo),
            ("/camera/image_raw", MessageType::Image),
            ("/imu", MessageType::Imu),
            ("/lidar/points", MessageType::PointCloud2),
            ("/odom", MessageType::Odometry),
        ]
    );
    let prefix = format!("mcapshm{}.", std::process::id());
    let params = ChannelParams {
        chunk_count: 80,
        ring_depth: 64,
        max_subscribers: 2,
        wakeup: WakeupPolicy::Futex,
    };
    let mut sink = ShmSink::create(&plans, &prefix, params).expect("create channels");
    let mut subs: HashMap<&str, Subscriber> = plans
        .iter()
        .map(|p| {
            (
                p.topic.as_str(),
                Subscriber::open(&channel_name(&prefix, &p.topic)).expect("open"),
            )
        })
        .collect();
    let report = replay_bytes(
        &buf,
        Pace::AsFastAsPossible,
        &mut sink,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.stats.delivered as usize, manifest.len());

    let entries = |topic: &str| {
        manifest
            .iter()
            .filter(|m| m["topic"] == topic)
            .collect::<Vec<_>>()
    };
    let mut drain = |topic: &str| {
        let sub = subs.get_mut(topic).unwrap();
        let mut v = Vec::new();
        while let Some(s) = sub.receive().expect("receive") {
            v.push((
                s.payload().to_vec(),
                s.user_header().to_vec(),
                s.sensor_time(),
                s.user(),
            ));
        }
        v
    };

    let imu = drain("/imu");
    let want = entries("/imu");
    assert_eq!(imu.len(), want.len());
    let s0 = want[0]["stamp_ns"].as_i64().unwrap();
    for ((payload, hdr, t, user), e) in imu.iter().zip(&want) {
        FrameMeta::decode(hdr, StreamKind::Imu).expect("imu metadata");
        assert_eq!(*user, StreamKind::Imu.user_word());
        let s = decode_imu(payload).expect("imu payload");
        let g = e["expect"]["gyro"].as_array().unwrap();
        assert!((s.angular_velocity[1] - g[1].as_f64().unwrap()).abs() < 1e-12);
        assert!((s.linear_acceleration[2] - 9.81).abs() < 1e-12);
        // One offset maps header stamps onto CLOCK_MONOTONIC: relative times are kept.
        let rel = e["stamp_ns"].as_i64().unwrap() - s0;
        assert_eq!(*t as i64 - imu[0].2 as i64, rel);
    }

    let clouds = drain("/lidar/points");
    let want = entries("/lidar/points");
    assert_eq!(clouds.len(), want.len());
    for ((payload, hdr, _, _), e) in clouds.iter().zip(&want) {
        let m = FrameMeta::decode(hdr, StreamKind::Lidar).expect("lidar metadata");
        m.check_payload(payload.len()).expect("lidar payload");
        let pts = e["expect"]["points"].as_array().unwrap();
        assert_eq!(m.width as usize, pts.len());
        for (i, p) in pts.iter().enumerate() {
            for k in 0..4 {
                assert_eq!(
                    f32_at(payload, i * 16 + 4 * k),
                    p[k].as_f64().unwrap(),
                    "point {i}"
                );
            }
        }
    }

    let images = drain("/camera/image_raw");
    let want = entries("/camera/image_raw");
    assert_eq!(images.len(), want.len());
    for ((payload, hdr, _, _), e) in images.iter().zip(&want) {
        let m = FrameMeta::decode(hdr, StreamKind::Camera).expect("camera metadata");
        m.check_payload(payload.len()).expect("camera payload");
        assert_eq!((m.width, m.height), (8, 6));
        let sum: u64 = payload.iter().map(|b| u64::from(*b)).sum();
        assert_eq!(sum, e["expect"]["data_sum"].as_u64().unwrap());
    }

    let odom = drain("/odom");
    let want = entries("/odom");
    assert_eq!(odom.len(), want.len());
    for ((payload, hdr, _, _), e) in odom.iter().zip(&want) {
        FrameMeta::decode(hdr, StreamKind::Odometry).expect("odometry metadata");
        let s = decode_odometry(payload).expect("odometry payload");
        let p = e["expect"]["position"].as_array().unwrap();
        assert!((s.position[0] - p[0].as_f64().unwrap()).abs() < 1e-12);
        assert!(s.yaw.abs() < 1e-12, "identity orientation has yaw 0");
        assert!((s.angular_velocity[2] - e["expect"]["yaw_rate"].as_f64().unwrap()).abs() < 1e-12);
    }

    let info = drain("/camera/camera_info");
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].3, 0, "raw CDR: no kind in the user word");
    let ci: CameraInfo = cdr::decode(&info[0].0).expect("CameraInfo CDR");
    assert_eq!(ci.k[0], 500.0);
    assert_eq!(ci.distortion_model, "plumb_bob");
}
