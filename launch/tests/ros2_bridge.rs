//! ROS 2 bridges of a deployment's layout channels against an independent ROS 2 peer (Eclipse
//! Cyclone DDS from Python, ros2-plugin's `tests/peer/cyclone_peer.py`): ingest into node streams
//! in the fusion node's frame layouts, egress of a driver's IMU channel and of the node's typed
//! odometry output, and `examples/ros2-bridge.toml` run by `rtfuse run` with a ROS 2 subscriber.
//! Each test has its own DDS domain and segment names, so they run in parallel.

mod common;
#[path = "../../ros2-plugin/tests/common/mod.rs"]
mod dds;

use std::time::Duration;

use dds::{go_when_matched, open_channel, unique_domain, watchdog, Peer};
use fusion::driver::meta::{self, FrameMeta, StreamKind, META_LEN};
use fusion::layout::{odometry_record_to_ros, sample_to_ros};
use fusion::mcap_msgs::RosMsg;
use fusion::node::outputs::{odometry_output_config, OdometryRecord};
use fusion::synth::{ImuSample, PixelEncoding};
use launch::config::Config;
use launch::ros2_bridge::{codec_chooser, gateway_config};
use ros2_plugin::codec::PayloadCodec;
use ros2_plugin::gateway::Gateway;
use serde_json::Value;
use shm_transport::{ChannelConfig, Publisher, Sample, Subscriber};

const LONG: Duration = Duration::from_secs(30);

/// A checked config from `text`.
fn config(text: &str) -> Config {
    let deployment = Config::parse(text, "test.toml").unwrap_or_else(|e| panic!("{e}"));
    Config {
        deployment,
        path: None,
        text: text.into(),
    }
}

/// The gateway `rtfuse ros2-gateway` runs for `cfg`, with segment prefix `prefix`.
fn start(cfg: &Config, prefix: &str) -> Gateway {
    Gateway::start_with_codecs(&gateway_config(cfg, prefix), codec_chooser(cfg))
        .expect("gateway starts")
}

fn stamp_ns(stamp: &Value) -> i64 {
    stamp["sec"].as_i64().expect("sec") * 1_000_000_000
        + stamp["nanosec"].as_i64().expect("nanosec")
}

fn vector(v: &Value) -> [f64; 3] {
    ["x", "y", "z"].map(|k| v[k].as_f64().expect("float"))
}

fn quaternion(v: &Value) -> [f64; 4] {
    ["x", "y", "z", "w"].map(|k| v[k].as_f64().expect("float"))
}

/// The next sample of a node stream, checked as the node checks it (user word, frame metadata,
/// payload size); `i` names it in failures.
fn next_frame(sub: &mut Subscriber, kind: StreamKind, i: usize) -> (Sample, FrameMeta) {
    let s = sub
        .receive_timeout(LONG)
        .expect("receive")
        .unwrap_or_else(|| panic!("{kind} sample {i} never reached the channel"));
    assert_eq!(s.user(), kind.user_word(), "{kind} sample {i}");
    let fm = FrameMeta::decode(s.user_header(), kind).expect("frame metadata");
    fm.check_payload(s.payload().len())
        .unwrap_or_else(|e| panic!("{kind} sample {i}: {e}"));
    (s, fm)
}

const INGEST: &str = r#"
[[channel]]
name = "camera"
chunk_size = "2 MiB"
chunk_count = 8
ring_depth = 4
[[channel]]
name = "imu"
chunk_size = 4096
chunk_count = 16
ring_depth = 8
[node]
streams = ["camera", "imu"]
[ros2]
domain_id = DOMAIN
[[ros2.bridge]]
direction = "ingest"
topic = "/imu"
channel = "imu"
type = "sensor_msgs/msg/Imu"
reliability = "reliable"
depth = 10
[[ros2.bridge]]
direction = "ingest"
topic = "/camera/image_raw"
channel = "camera"
type = "sensor_msgs/msg/Image"
reliability = "reliable"
depth = 10
"#;

#[test]
fn cyclone_imu_and_image_arrive_in_the_node_streams_frame_layouts() {
    let _w = watchdog(Duration::from_secs(120), "ingest into node streams");
    let domain = unique_domain();
    let cfg = config(&INGEST.replace("DOMAIN", &domain.to_string()));
    let prefix = common::unique_prefix("ingest");
    let gw = start(&cfg, &prefix);
    let mut imu_sub = open_channel(&format!("{prefix}imu"), LONG);
    let mut cam_sub = open_channel(&format!("{prefix}camera"), LONG);
    let mut imu_peer = Peer::cyclone(
        "pub",
        domain,
        "rt/imu",
        "sensor_msgs/msg/Imu",
        &["--count", "5", "--stamp", "now", "--wait-go"],
    );
    const SIZE: usize = 1_000_000;
    let size = SIZE.to_string();
    let mut cam_peer = Peer::cyclone(
        "pub",
        domain,
        "rt/camera/image_raw",
        "sensor_msgs/msg/Image",
        &[
            "--count",
            "2",
            "--size",
            &size,
            "--encoding",
            "rgb8",
            "--stamp",
            "now",
            "--period",
            "0.1",
            "--wait-go",
        ],
    );
    imu_peer.wait_matched(LONG);
    cam_peer.wait_matched(LONG);
    go_when_matched(&gw, 0, &mut imu_peer, LONG);
    go_when_matched(&gw, 1, &mut cam_peer, LONG);
    let clock = gw.clock();

    // IMU: what an IMU driver writes — user word, frame metadata, the fixed f64 payload — with the
    // header stamp on the monotonic clock as the sensor time.
    let sent = imu_peer.records(5, LONG);
    assert_eq!(sent.len(), 5, "the Cyclone IMU publisher did not finish");
    for (i, rec) in sent.iter().enumerate() {
        let (s, fm) = next_frame(&mut imu_sub, StreamKind::Imu, i);
        assert_eq!(fm, FrameMeta::fixed(StreamKind::Imu, i as u64));
        let imu = meta::decode_imu(s.payload()).expect("IMU payload");
        let v = &rec["value"];
        let t = clock
            .to_monotonic(stamp_ns(&v["header"]["stamp"]))
            .expect("a stamp of now is after boot");
        assert_eq!(s.sensor_time(), t, "IMU {i}: header stamp → sensor time");
        let want = ImuSample {
            t: t as f64 * 1e-9,
            angular_velocity: vector(&v["angular_velocity"]),
            linear_acceleration: vector(&v["linear_acceleration"]),
            orientation: quaternion(&v["orientation"]),
        };
        assert_eq!(imu, want, "IMU {i}");
    }

    // Images: rgb8 rows without padding, FrameMeta::camera.
    let sent = cam_peer.records(2, LONG);
    assert_eq!(sent.len(), 2, "the Cyclone image publisher did not finish");
    for (i, rec) in sent.iter().enumerate() {
        let (s, fm) = next_frame(&mut cam_sub, StreamKind::Camera, i);
        let (width, height, data) = dds::peer_image_bytes_with(i, SIZE, 3);
        assert_eq!(
            fm,
            FrameMeta::camera(width, height, PixelEncoding::Rgb8, i as u64)
        );
        assert!(s.payload() == data.as_slice(), "image {i} content differs");
        assert_eq!(
            Some(s.sensor_time()),
            clock.to_monotonic(stamp_ns(&rec["stamp"])),
            "image {i}: header stamp → sensor time"
        );
    }
    let stats = gw.stop().expect("clean stop");
    for b in &stats.bridges {
        assert_eq!(b.codec, "layout", "{b:?}");
        assert_eq!(b.malformed + b.unconvertible + b.oversize, 0, "{b:?}");
    }
    assert_eq!(stats.bridges[0].forwarded, 5);
    assert_eq!(stats.bridges[1].forwarded, 2);
}

/// Appended to `common::SMALL` (IMU and odometry drivers, the EKF), whose estimates go to
/// `fused_odometry`: both bridged out.
const EGRESS: &str = r#"
[[channel]]
name = "fused_odometry"
chunk_size = 4096
chunk_count = 16
ring_depth = 8
[ros2]
domain_id = DOMAIN
[[ros2.bridge]]
direction = "egress"
topic = "/rtfuse/odom"
channel = "fused_odometry"
type = "nav_msgs/msg/Odometry"
reliability = "reliable"
depth = 10
[[ros2.bridge]]
direction = "egress"
topic = "/rtfuse/imu"
channel = "imu"
type = "sensor_msgs/msg/Imu"
reliability = "reliable"
depth = 10
"#;

/// `common::SMALL` with the EKF output on `fused_odometry` and [`EGRESS`] on `domain`.
fn egress_config(domain: u16) -> Config {
    let ekf = "odometry = \"odometry\"\n[node.thread]";
    assert!(common::SMALL.contains(ekf), "SMALL has an EKF");
    let small = common::SMALL.replacen(
        ekf,
        "odometry = \"odometry\"\noutput = \"fused_odometry\"\n[node.thread]",
        1,
    );
    config(&(small + &EGRESS.replace("DOMAIN", &domain.to_string())))
}

fn record(i: u32, t: u64) -> OdometryRecord {
    let f = f64::from(i);
    let (s, c) = (0.1 * f).sin_cos();
    OdometryRecord {
        stamp_ns: t,
        position: [1.0 + f, -2.5, 0.125],
        orientation: [0.0, 0.0, s, c],
        linear_velocity: [0.5, 0.0, 0.0],
        angular_velocity: [0.0, 0.0, -0.1 * f],
        pose_variance: std::array::from_fn(|k| 0.01 * (k as f64 + 1.0)),
        twist_variance: std::array::from_fn(|k| 0.5 + k as f64),
    }
}

fn imu(i: u32, t: u64) -> ImuSample {
    let f = f64::from(i);
    ImuSample {
        t: t as f64 * 1e-9,
        angular_velocity: [0.1 * f, -0.2, 0.3],
        linear_acceleration: [0.0, 0.25, 9.81],
        orientation: [0.0, 0.0, 0.0, 1.0],
    }
}

/// Publishes a fixed-layout sample as a driver does; returns (payload, user header) written.
fn publish_fixed(
    p: &mut Publisher,
    kind: StreamKind,
    frame: u64,
    t: u64,
    write: impl FnOnce(&mut [u8]) -> usize,
) -> (Vec<u8>, Vec<u8>) {
    let mut s = p.loan().expect("free chunk");
    let n = write(s.payload_mut());
    FrameMeta::fixed(kind, frame)
        .encode(s.user_header_mut())
        .expect("room for the frame metadata");
    let written = (s.payload_mut()[..n].to_vec(), s.user_header_mut().to_vec());
    s.set_len(n);
    s.set_user(kind.user_word());
    s.set_sensor_time(t);
    s.publish().map_err(|e| e.to_string()).expect("publish");
    written
}

#[test]
fn a_driver_imu_channel_and_the_typed_odometry_output_reach_cyclone_field_by_field() {
    let _w = watchdog(Duration::from_secs(120), "egress of layout channels");
    let domain = unique_domain();
    let cfg = egress_config(domain);
    let prefix = common::unique_prefix("egress");
    // The test plays the IMU driver and the node.
    let mut imu_pub = Publisher::create(
        &format!("{prefix}imu"),
        &ChannelConfig {
            chunk_size: 4096,
            chunk_count: 16,
            ring_depth: 8,
            user_header_size: META_LEN,
            ..ChannelConfig::default()
        },
    )
    .expect("imu channel");
    let mut odom_pub = Publisher::create_typed::<OdometryRecord>(
        &format!("{prefix}fused_odometry"),
        odometry_output_config(),
    )
    .expect("typed odometry channel");
    let gw = start(&cfg, &prefix);
    let odom_peer = Peer::cyclone(
        "sub",
        domain,
        "rt/rtfuse/odom",
        "nav_msgs/msg/Odometry",
        &["--count", "3", "--timeout", "60"],
    );
    let imu_peer = Peer::cyclone(
        "sub",
        domain,
        "rt/rtfuse/imu",
        "sensor_msgs/msg/Imu",
        &["--count", "2", "--timeout", "60"],
    );
    odom_peer.wait_matched(LONG);
    imu_peer.wait_matched(LONG);
    dds::wait_for(LONG, || {
        gw.stats()
            .bridges
            .iter()
            .all(|b| b.matched >= 1)
            .then_some(())
    })
    .expect("the gateway's writers never matched the Cyclone readers");
    dds::wait_for(LONG, || {
        (odom_pub.subscriber_count() >= 1 && imu_pub.subscriber_count() >= 1).then_some(())
    })
    .expect("the bridges never opened their channels (the odometry one must open it typed)");
    let clock = gw.clock();

    let t0 = shm_transport::now_ns();
    let times: Vec<u64> = (0..3).map(|i| t0 + i * 20_000_000).collect();
    for (i, &t) in times.iter().enumerate() {
        let mut s = odom_pub.loan().expect("free chunk");
        s.write(&record(i as u32, t));
        s.set_sensor_time(t);
        s.publish().map_err(|e| e.to_string()).expect("publish");
    }
    let mut imu_sent = Vec::new();
    for (i, &t) in times[..2].iter().enumerate() {
        imu_sent.push(publish_fixed(
            &mut imu_pub,
            StreamKind::Imu,
            i as u64,
            t,
            |b| meta::encode_imu(&imu(i as u32, t), b).expect("encode"),
        ));
        if i == 0 {
            // An odometry sample where IMU samples belong: counted, not sent.
            publish_fixed(&mut imu_pub, StreamKind::Odometry, 99, t, |b| {
                let o = fusion::synth::OdometrySample {
                    t: 0.0,
                    position: [0.0; 3],
                    yaw: 0.0,
                    orientation: [0.0, 0.0, 0.0, 1.0],
                    linear_velocity: [0.0; 3],
                    angular_velocity: [0.0; 3],
                };
                meta::encode_odometry(&o, b).expect("encode")
            });
        }
    }

    let got = odom_peer.records(3, LONG);
    assert_eq!(
        got.len(),
        3,
        "Cyclone received {} of 3 estimates",
        got.len()
    );
    for (i, (rec, &t)) in got.iter().zip(&times).enumerate() {
        let v = &rec["value"];
        let r = record(i as u32, t);
        assert_eq!(
            stamp_ns(&v["header"]["stamp"]),
            clock.to_system(t),
            "odom {i}"
        );
        assert_eq!(v["header"]["frame_id"], "odom");
        assert_eq!(v["child_frame_id"], "base_link");
        let pose = &v["pose"]["pose"];
        assert_eq!(vector(&pose["position"]), r.position, "odom {i}");
        assert_eq!(quaternion(&pose["orientation"]), r.orientation, "odom {i}");
        let twist = &v["twist"]["twist"];
        assert_eq!(vector(&twist["linear"]), r.linear_velocity);
        assert_eq!(vector(&twist["angular"]), r.angular_velocity);
        for k in 0..6 {
            assert_eq!(v["pose"]["covariance"][k * 7], r.pose_variance[k]);
            assert_eq!(v["twist"]["covariance"][k * 7], r.twist_variance[k]);
        }
        let want = odometry_record_to_ros(&r, clock.to_system(t));
        assert_eq!(v, &serde_json::to_value(want).unwrap(), "odom {i}");
    }

    let got = imu_peer.records(2, LONG);
    assert_eq!(
        got.len(),
        2,
        "Cyclone received {} of 2 IMU samples",
        got.len()
    );
    for (i, ((rec, &t), (payload, header))) in got.iter().zip(&times).zip(&imu_sent).enumerate() {
        let v = &rec["value"];
        let s = imu(i as u32, t);
        assert_eq!(
            stamp_ns(&v["header"]["stamp"]),
            clock.to_system(t),
            "imu {i}"
        );
        assert_eq!(
            v["header"]["frame_id"], "imu",
            "the channel name is the frame id"
        );
        assert_eq!(vector(&v["angular_velocity"]), s.angular_velocity);
        assert_eq!(vector(&v["linear_acceleration"]), s.linear_acceleration);
        assert_eq!(quaternion(&v["orientation"]), s.orientation);
        let Ok(RosMsg::Imu(want)) = sample_to_ros(
            payload,
            header,
            StreamKind::Imu.user_word(),
            clock.to_system(t),
            "imu",
        ) else {
            panic!("our own IMU sample does not convert");
        };
        assert_eq!(v, &serde_json::to_value(want).unwrap(), "imu {i}");
    }
    let stats = gw.stop().expect("clean stop");
    let (odom, imu_b) = (&stats.bridges[0], &stats.bridges[1]);
    assert_eq!(
        (odom.codec.as_str(), odom.forwarded, odom.malformed),
        ("odometry-record", 3, 0),
        "{odom:?}"
    );
    assert_eq!(
        (imu_b.codec.as_str(), imu_b.forwarded, imu_b.unconvertible),
        ("layout", 2, 1),
        "{imu_b:?}"
    );
}

#[test]
fn the_ros2_bridge_example_runs_and_a_ros2_node_receives_the_fused_odometry() {
    let _w = watchdog(Duration::from_secs(240), "ros2-bridge example");
    let domain = unique_domain();
    let dir = tempfile::tempdir().unwrap();
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ros2-bridge.toml");
    let prefix = common::unique_prefix("ros2ex");
    let child = common::rtfuse(&prefix, dir.path())
        .env("ROS_DOMAIN_ID", domain.to_string())
        .args(["run", "--status", "plain", "--no-preflight"])
        .arg(&example)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let peer = Peer::cyclone(
        "sub",
        domain,
        "rt/rtfuse/odom",
        "nav_msgs/msg/Odometry",
        &["--count", "3", "--timeout", "180"],
    );
    let got = peer.records(3, Duration::from_secs(200));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let (code, stdout, stderr) = common::wait_output(child, Duration::from_secs(120));
    assert_eq!(
        got.len(),
        3,
        "the ROS 2 node received {} estimates\nstdout:\n{stdout}\nstderr:\n{stderr}",
        got.len()
    );
    assert_eq!(
        code,
        i32::from(launch::cli::EXIT_INTERRUPTED),
        "stopped by SIGINT\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let mut last = 0;
    for rec in &got {
        let v = &rec["value"];
        assert_eq!(v["header"]["frame_id"], "odom");
        assert_eq!(v["child_frame_id"], "base_link");
        let stamp = stamp_ns(&v["header"]["stamp"]);
        assert!(stamp >= last, "stamps go forward: {got:?}");
        last = stamp;
        let q = quaternion(&v["pose"]["pose"]["orientation"]);
        let norm = q.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-9, "unit quaternion: {q:?}");
        for k in 0..6 {
            let var = v["pose"]["covariance"][k * 7].as_f64().unwrap();
            assert!(var >= 0.0 && var.is_finite(), "variance {k}: {var}");
        }
    }
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("/rtfuse/odom <-> {prefix}fused_odometry")))
        .unwrap_or_else(|| panic!("no gateway summary:\n{stdout}\n{stderr}"));
    assert!(
        line.contains("(odometry-record)") && line.contains(" 0 malformed, 0 unconvertible"),
        "{line}"
    );
    common::assert_no_segments(&prefix);
}

#[test]
fn bridged_channels_get_the_codec_of_what_they_carry() {
    let cfg = Config::load(Some(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ros2-bridge.toml"),
    ))
    .expect("the example is valid");
    let names: Vec<Option<String>> = cfg
        .deployment
        .ros2
        .bridges
        .iter()
        .map(|b| launch::ros2_bridge::codec_for(&cfg, b).map(|c| c.name().to_owned()))
        .collect();
    assert_eq!(
        names,
        [Some("odometry-record".into()), Some("layout".into())],
        "fused_odometry, imu"
    );
    // Every bridged channel the config declares carries its whole geometry to the gateway.
    let gw = launch::ros2_bridge::gateway_config(&cfg, "");
    for (b, want) in gw.bridges.iter().zip(&cfg.deployment.ros2.bridges) {
        let declared = cfg.channel(want.channel.get_ref()).expect("declared");
        assert_eq!(
            b.geometry,
            Some(launch::config::channel_config(declared)),
            "{}",
            b.channel
        );
    }
    // A channel nothing in the deployment writes in a layout keeps complete CDR.
    let raw = config(
        "[[channel]]\nname = \"info\"\nchunk_size = 4096\nchunk_count = 4\nring_depth = 4\n\
         [[channel]]\nname = \"imu\"\nchunk_size = 4096\nchunk_count = 4\nring_depth = 4\n\
         [[driver]]\nname = \"imu\"\nkind = \"synthetic-imu\"\nchannel = \"imu\"\nparams = { rate_hz = 10.0 }\n\
         [node]\nstreams = [\"imu\"]\n\
         [[ros2.bridge]]\ndirection = \"ingest\"\ntopic = \"/info\"\nchannel = \"info\"\ntype = \"sensor_msgs/msg/CameraInfo\"\n",
    );
    let b = &raw.deployment.ros2.bridges[0];
    assert!(launch::ros2_bridge::codec_for(&raw, b).is_none());
    // The typed odometry codec refuses an untyped channel (and so never misreads one).
    let untyped = format!("{}-untyped", common::unique_prefix("open"));
    let _p = Publisher::create(&untyped, &ChannelConfig::default()).expect("channel");
    let err = launch::ros2_bridge::LayoutCodec::odometry_record()
        .open(&untyped)
        .err()
        .expect("refused");
    assert!(
        matches!(err, shm_transport::OpenError::TypeMismatch { .. }),
        "{err}"
    );
}
