//! Recording real shm channels into MCAP (`fusion::mcap_record`), read back by the independent
//! Python reader (PyPI `mcap` + `mcap-ros2-support`), and played back through the MCAP replay
//! driver (`fusion::mcap_driver`) into fresh channels: what a user does with `rtfuse record` and
//! a `kind = "mcap-replay"` driver.

mod mcap_common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use fusion::driver::meta::{
    decode_imu, decode_odometry, encode_imu, encode_odometry, FrameMeta, StreamKind, META_LEN,
};
use fusion::driver::SensorDriver;
use fusion::mcap_driver::{McapReplayConfig, McapReplayDriver};
use fusion::mcap_record::{topic_of_channel, Recorder};
use fusion::rt::now_ns;
use fusion::synth::{ImuSample, OdometrySample, PixelEncoding};
use serde_json::Value;
use shm_transport::{ChannelConfig, Publisher, Subscriber};

const N: u64 = 5;
const PERIOD_NS: u64 = 10_000_000;
const W: u32 = 8;
const H: u32 = 6;
const POINTS: u32 = 10;

fn channel(chunk_size: usize) -> ChannelConfig {
    ChannelConfig {
        chunk_size,
        chunk_count: 16,
        ring_depth: 16,
        user_header_size: META_LEN,
        ..ChannelConfig::default()
    }
}

fn publish(
    p: &mut Publisher,
    t: u64,
    meta: FrameMeta,
    kind: StreamKind,
    fill: &dyn Fn(&mut [u8]) -> usize,
) {
    let mut s = p.loan().expect("loan");
    meta.encode(s.user_header_mut()).expect("meta");
    let len = fill(s.payload_mut());
    s.set_len(len);
    s.set_sensor_time(t);
    s.set_dma_time(now_ns());
    s.set_user(kind.user_word());
    s.publish().expect("publish");
}

fn pixel(k: u64, i: usize) -> u8 {
    ((k as usize * 31 + i * 7) % 251) as u8
}

fn point(k: u64, i: usize) -> [f32; 4] {
    let f = (k * 100 + i as u64) as f32;
    [f * 0.5, -f * 0.25, 1.0 + f * 0.01, f]
}

fn imu_sample(k: u64, t: u64) -> ImuSample {
    ImuSample {
        t: t as f64 * 1e-9,
        angular_velocity: [0.01 * k as f64, -0.02, 0.03],
        linear_acceleration: [0.1, 0.2 * k as f64, 9.81],
        orientation: [0.0, 0.0, 0.0, 1.0],
    }
}

fn odom_sample(k: u64, t: u64) -> OdometrySample {
    OdometrySample {
        t: t as f64 * 1e-9,
        position: [k as f64, 2.0 * k as f64, 0.0],
        yaw: 0.0,
        orientation: [0.0, 0.0, 0.0, 1.0],
        linear_velocity: [1.0, 0.0, 0.0],
        angular_velocity: [0.0, 0.0, 0.1 * k as f64],
    }
}

struct Channels {
    prefix: String,
    names: [String; 4],
    pubs: Vec<Publisher>,
}

/// Four channels in the drivers' layouts: camera, LiDAR, IMU, odometry.
fn channels(tag: &str) -> Channels {
    let prefix = format!("rec{}{tag}.", std::process::id());
    let names = ["cam", "lidar", "imu", "odom"].map(String::from);
    let sizes = [(W * H * 3) as usize, (POINTS * 16) as usize, 4096, 4096];
    let pubs = names
        .iter()
        .zip(sizes)
        .map(|(n, size)| {
            Publisher::create(&format!("{prefix}{n}"), &channel(size)).expect("create")
        })
        .collect();
    Channels {
        prefix,
        names,
        pubs,
    }
}

/// Publishes `N` samples on each channel; camera and LiDAR share their stamps.
fn publish_all(c: &mut Channels, t0: u64) {
    for k in 0..N {
        let t = t0 + k * PERIOD_NS;
        let [cam, lidar, imu, odom] = &mut c.pubs[..] else {
            unreachable!("four publishers")
        };
        publish(
            cam,
            t,
            FrameMeta::camera(W, H, PixelEncoding::Rgb8, k),
            StreamKind::Camera,
            &|b| {
                for (i, px) in b[..(W * H * 3) as usize].iter_mut().enumerate() {
                    *px = pixel(k, i);
                }
                (W * H * 3) as usize
            },
        );
        publish(
            lidar,
            t,
            FrameMeta::lidar(POINTS, k),
            StreamKind::Lidar,
            &|b| {
                for (i, p) in b.chunks_exact_mut(16).take(POINTS as usize).enumerate() {
                    for (j, v) in point(k, i).iter().enumerate() {
                        p[4 * j..4 * j + 4].copy_from_slice(&v.to_le_bytes());
                    }
                }
                (POINTS * 16) as usize
            },
        );
        publish(
            imu,
            t + 1,
            FrameMeta::fixed(StreamKind::Imu, k),
            StreamKind::Imu,
            &|b| encode_imu(&imu_sample(k, t + 1), b).unwrap(),
        );
        publish(
            odom,
            t + 2,
            FrameMeta::fixed(StreamKind::Odometry, k),
            StreamKind::Odometry,
            &|b| encode_odometry(&odom_sample(k, t + 2), b).unwrap(),
        );
    }
}

/// A recorder of `c`'s channels and `extra` ones, subscribed before anything is published.
fn record(c: &Channels, path: &std::path::Path, extra: &[&str]) -> Recorder {
    let mut names: Vec<String> = c.names.to_vec();
    names.extend(extra.iter().map(|s| s.to_string()));
    let mut rec = Recorder::create(path, &c.prefix, &names).expect("create recording");
    rec.poll().expect("open the channels");
    rec
}

#[test]
fn recorded_channels_read_back_with_the_python_reader_and_replay_in_driver_layouts() {
    let mut c = channels("a");
    let path = mcap_common::scratch("record");
    let mut rec = record(&c, &path, &["never_published"]);
    let t0 = now_ns();
    publish_all(&mut c, t0);
    let mut written = 0;
    while written < 4 * N {
        written += rec.poll().expect("write");
    }
    let summary = rec.finish().expect("finish");
    for s in &summary[..4] {
        assert_eq!((s.written, s.skipped), (N, 0), "{s:?}");
        assert_eq!(s.topic, topic_of_channel(&s.channel));
    }
    assert_eq!(
        summary[4].opened, 0,
        "a channel nobody creates is never opened"
    );

    // The independent reader decodes every message with the schema stored in the file.
    let read = mcap_common::python_read(&path);
    let msgs = read["messages"].as_array().unwrap();
    assert_eq!(read["profile"], "ros2");
    assert_eq!(msgs.len() as u64, 4 * N);
    let on = |topic: &str| {
        msgs.iter()
            .filter(|m| m["topic"] == topic)
            .collect::<Vec<&Value>>()
    };
    let (cams, clouds, imus, odoms) = (on("/cam"), on("/lidar"), on("/imu"), on("/odom"));
    assert_eq!(cams[0]["schema"], "sensor_msgs/msg/Image");
    assert_eq!(clouds[0]["schema"], "sensor_msgs/msg/PointCloud2");
    assert_eq!(imus[0]["schema"], "sensor_msgs/msg/Imu");
    assert_eq!(odoms[0]["schema"], "nav_msgs/msg/Odometry");
    for k in 0..N as usize {
        let (cam, cloud) = (cams[k], clouds[k]);
        assert_eq!(cam["encoding"], "rgb8");
        assert_eq!(
            (cam["width"].as_u64(), cam["height"].as_u64()),
            (Some(W.into()), Some(H.into()))
        );
        let px: Vec<u64> = cam["pixels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert!(px
            .iter()
            .enumerate()
            .all(|(i, v)| *v == u64::from(pixel(k as u64, i))));
        assert_eq!(cloud["width"].as_u64(), Some(POINTS.into()));
        for (i, p) in cloud["points"].as_array().unwrap().iter().enumerate() {
            let want = point(k as u64, i);
            for j in 0..4 {
                // JSON carries the float32 as a decimal: compare at float32 precision.
                assert_eq!(p[j].as_f64().unwrap() as f32, want[j], "point {i}");
            }
        }
        // One offset moves every stamp onto the system clock: equal stays equal, spacing is kept.
        assert_eq!(cam["stamp_ns"], cloud["stamp_ns"]);
        assert_eq!(cam["stamp_ns"], cam["log_time"]);
        let dt = |a: &Value, b: &Value| {
            a["stamp_ns"].as_i64().unwrap() - b["stamp_ns"].as_i64().unwrap()
        };
        assert_eq!(dt(imus[k], cam), 1);
        assert_eq!(dt(odoms[k], cam), 2);
        if k > 0 {
            assert_eq!(dt(cam, cams[k - 1]), PERIOD_NS as i64);
        }
        let g = imus[k]["angular_velocity"].as_array().unwrap();
        assert_eq!(g[0].as_f64().unwrap(), 0.01 * k as f64);
        let pos = odoms[k]["position"].as_array().unwrap();
        assert_eq!(pos[1].as_f64().unwrap(), 2.0 * k as f64);
    }

    // Back through the replay driver, as fast as possible, into channels in the driver layouts.
    let replay_prefix = format!("{}re.", c.prefix);
    for (topic, ch) in [
        ("/cam", "cam"),
        ("/lidar", "lidar"),
        ("/imu", "imu"),
        ("/odom", "odom"),
    ] {
        let mut cfg = McapReplayConfig::new(ch, &path, topic);
        cfg.speed = 0.0;
        cfg.epoch_ns = None;
        let mut drv = McapReplayDriver::new(cfg).expect("probe the topic");
        assert_eq!(drv.info().kind.as_str(), ch_kind(ch));
        let name = format!("{replay_prefix}{ch}");
        let mut publisher = Publisher::create(&name, &drv.channel_config()).expect("channel");
        let mut sub = Subscriber::open(&name).expect("subscribe");
        let stats = drv
            .run(&mut publisher, &AtomicBool::new(false))
            .expect("replay");
        assert_eq!(stats.published, N);
        let mut got = Vec::new();
        while let Some(s) = sub.receive().expect("receive") {
            got.push((
                s.payload().to_vec(),
                s.user_header().to_vec(),
                s.sensor_time(),
                s.user(),
            ));
        }
        assert_eq!(got.len() as u64, N, "{topic}");
        let kind = drv.kind();
        for (k, (payload, hdr, t, user)) in got.iter().enumerate() {
            let k = k as u64;
            assert_eq!(*user, kind.user_word());
            let meta = FrameMeta::decode(hdr, kind).expect("metadata");
            meta.check_payload(payload.len())
                .expect("payload matches metadata");
            assert_eq!(*t - got[0].2, k * PERIOD_NS, "{topic}: spacing kept");
            match kind {
                StreamKind::Camera => {
                    assert!(payload.iter().enumerate().all(|(i, v)| *v == pixel(k, i)));
                }
                StreamKind::Lidar => {
                    let want: Vec<u8> = (0..POINTS as usize)
                        .flat_map(|i| point(k, i).into_iter().flat_map(f32::to_le_bytes))
                        .collect();
                    assert_eq!(payload, &want);
                }
                StreamKind::Imu => {
                    let s = decode_imu(payload).unwrap();
                    assert_eq!(s.angular_velocity, imu_sample(k, 0).angular_velocity);
                    assert_eq!(s.linear_acceleration, imu_sample(k, 0).linear_acceleration);
                }
                StreamKind::Odometry => {
                    let s = decode_odometry(payload).unwrap();
                    assert_eq!(s.position, odom_sample(k, 0).position);
                    assert_eq!(s.angular_velocity, odom_sample(k, 0).angular_velocity);
                }
                other => panic!("unexpected kind {other}"),
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

fn ch_kind(ch: &str) -> &'static str {
    match ch {
        "cam" => "camera",
        "odom" => "odometry",
        "lidar" => "lidar",
        _ => "imu",
    }
}

#[test]
fn a_hostile_sample_is_counted_and_the_rest_is_recorded() {
    let mut c = channels("b");
    let path = mcap_common::scratch("hostile");
    let mut rec = record(&c, &path, &[]);
    // Garbage metadata under a valid user word, then a sample whose length disagrees with it.
    let cam = &mut c.pubs[0];
    publish(
        cam,
        now_ns(),
        FrameMeta::camera(W, H, PixelEncoding::Rgb8, 0),
        StreamKind::Camera,
        &|b| b.len().min(7),
    );
    {
        let mut s = cam.loan().unwrap();
        s.user_header_mut()[..8].copy_from_slice(b"garbage!");
        s.set_len(16);
        s.set_user(StreamKind::Camera.user_word());
        s.publish().unwrap();
    }
    publish_all(&mut c, now_ns());
    let mut written = 0;
    while written < 4 * N {
        written += rec.poll().expect("write");
    }
    let summary = rec.finish().unwrap();
    assert_eq!((summary[0].written, summary[0].skipped), (N, 2));
    let why = summary[0].first_error.as_deref().unwrap_or_default();
    assert!(why.contains("7"), "the reason names the bad length: {why}");
    let read = mcap_common::python_read(&path);
    assert_eq!(read["messages"].as_array().unwrap().len() as u64, 4 * N);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn replay_drivers_of_one_file_share_the_epoch_and_name_what_is_missing() {
    let (buf, manifest) = mcap_common::python_file(&[]);
    let path = mcap_common::scratch("epoch");
    std::fs::write(&path, &buf).unwrap();

    let missing = McapReplayDriver::new(McapReplayConfig::new("x", &path, "/nope"))
        .err()
        .unwrap();
    let text = missing.to_string();
    assert!(
        text.contains("/nope") && text.contains("/imu (sensor_msgs/msg/Imu)"),
        "{text}"
    );
    let info = McapReplayDriver::new(McapReplayConfig::new("x", &path, "/camera/camera_info"))
        .err()
        .unwrap();
    assert!(info.to_string().contains("not a node stream"), "{info}");

    // Two drivers in two threads, paced at 4× on one epoch: stamps map by one file-wide offset.
    let epoch = now_ns() + 200_000_000;
    let start_log = manifest
        .iter()
        .map(|m| m["log_time"].as_u64().unwrap())
        .min()
        .unwrap();
    let prefix = format!("epoch{}.", std::process::id());
    let stop = Arc::new(AtomicBool::new(false));
    let runs: Vec<_> = ["/imu", "/odom"]
        .into_iter()
        .map(|topic| {
            let mut cfg = McapReplayConfig::new(topic, &path, topic);
            cfg.speed = 4.0;
            cfg.epoch_ns = Some(epoch);
            cfg.chunk_count = 128;
            cfg.ring_depth = 128;
            let mut drv = McapReplayDriver::new(cfg).unwrap();
            let name = format!("{prefix}{}", topic.trim_matches('/'));
            let mut publisher = Publisher::create(&name, &drv.channel_config()).unwrap();
            let sub = Subscriber::open(&name).unwrap();
            let stop = stop.clone();
            let h = std::thread::spawn(move || drv.run(&mut publisher, &stop).unwrap());
            (topic, sub, h)
        })
        .collect();
    for (topic, mut sub, h) in runs {
        let stats = h.join().unwrap();
        let want: Vec<&Value> = manifest
            .iter()
            .filter(|m| m["topic"] == topic && m["problem"].is_null())
            .collect();
        assert_eq!(stats.published as usize, want.len(), "{topic}");
        for m in want {
            let s = sub.receive().unwrap().expect("every message arrives");
            let stamp = m["stamp_ns"].as_u64().unwrap();
            let log = m["log_time"].as_u64().unwrap();
            assert_eq!(s.sensor_time(), stamp - start_log + epoch, "{topic}");
            // Paced: never played before its time on the shared clock.
            assert!(s.dma_time() >= epoch + (log - start_log) / 4, "{topic}");
        }
    }
    let _ = std::fs::remove_file(&path);
}
