//! A bridge with its own payload codec (`Gateway::start_with_codecs`) against the independent
//! Cyclone DDS peer: the codec decides the channel layout (payload, user header, user word,
//! sensor time) in both directions, and header stamps map through the gateway's clock map.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ros2_plugin::codec::{ClockMap, CodecError, IngestMsg, PayloadCodec};
use ros2_plugin::gateway::{BridgeConfig, Direction, Gateway, GatewayConfig};
use ros2_plugin::qos::QosConfig;
use ros2_plugin::raw::RawCdr;
use rtfuse_msgs::builtin_interfaces::Time;
use rtfuse_msgs::cdr;
use rtfuse_msgs::geometry_msgs::Vector3;
use rtfuse_msgs::sensor_msgs::Imu;
use rtfuse_msgs::std_msgs::Header;
use shm_transport::{ChannelConfig, Publisher, Sample, SampleMut};

const LONG: Duration = Duration::from_secs(30);
const MAGIC: &[u8; 4] = b"TIMU";
const USER: u64 = 0xC0DEC;
const HEADER: usize = 16;
const PAYLOAD: usize = 48;

/// A layout of our own: angular velocity and linear acceleration as six f64 LE, a 16-byte user
/// header ("TIMU" + the message counter), user word `USER`, sensor time from the header stamp.
struct ImuVectors {
    count: std::sync::atomic::AtomicU64,
}

fn f64s(v: [&Vector3; 2]) -> [f64; 6] {
    [v[0].x, v[0].y, v[0].z, v[1].x, v[1].y, v[1].z]
}

impl PayloadCodec for ImuVectors {
    fn name(&self) -> &str {
        "imu-vectors"
    }

    fn user_header_size(&self) -> usize {
        HEADER
    }

    fn ingest(&self, msg: &IngestMsg<'_>, chunk: &mut SampleMut<'_>) -> Result<usize, CodecError> {
        let imu: Imu = cdr::decode(msg.cdr).map_err(|e| CodecError::Malformed(e.to_string()))?;
        let t = msg
            .clock
            .to_monotonic(imu.header.stamp.as_nanos())
            .ok_or_else(|| CodecError::Unconvertible("stamp before boot".into()))?;
        let values = f64s([&imu.angular_velocity, &imu.linear_acceleration]);
        for (dst, v) in chunk.payload_mut().chunks_exact_mut(8).zip(values) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
        let n = self
            .count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let hdr = chunk.user_header_mut();
        hdr[..4].copy_from_slice(MAGIC);
        hdr[8..16].copy_from_slice(&n.to_le_bytes());
        chunk.set_len(PAYLOAD);
        chunk.set_user(USER);
        chunk.set_sensor_time(t);
        Ok(PAYLOAD)
    }

    fn egress(&self, sample: &Sample, clock: ClockMap) -> Result<RawCdr, CodecError> {
        let p = sample.payload();
        if sample.user() != USER || p.len() != PAYLOAD || !sample.user_header().starts_with(MAGIC) {
            return Err(CodecError::Malformed(format!(
                "not an imu-vectors sample ({} bytes, user {:#x})",
                p.len(),
                sample.user()
            )));
        }
        let v: Vec<f64> = p
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let imu = Imu {
            header: header(clock.to_system(sample.sensor_time())),
            angular_velocity: Vector3 {
                x: v[0],
                y: v[1],
                z: v[2],
            },
            linear_acceleration: Vector3 {
                x: v[3],
                y: v[4],
                z: v[5],
            },
            ..Imu::default()
        };
        RawCdr::encode(&imu).map_err(|e| CodecError::Unconvertible(e.to_string()))
    }
}

fn header(stamp_ns: i64) -> Header {
    Header {
        stamp: Time::from_nanos(stamp_ns),
        frame_id: "imu_vectors".into(),
    }
}

fn publish(p: &mut Publisher, values: [f64; 6], t: u64, user: u64) {
    let mut s = p.loan().expect("free chunk");
    for (dst, v) in s.payload_mut().chunks_exact_mut(8).zip(values) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
    s.user_header_mut()[..4].copy_from_slice(MAGIC);
    s.set_len(PAYLOAD);
    s.set_user(user);
    s.set_sensor_time(t);
    s.publish().map_err(|e| e.to_string()).expect("publish");
}

fn bridge(direction: Direction, topic: &str, channel: &str) -> BridgeConfig {
    BridgeConfig {
        direction,
        ros_topic: topic.into(),
        ros_type: "sensor_msgs/msg/Imu".into(),
        channel: channel.into(),
        qos: QosConfig::ros_default(),
        chunk_size: 4096,
        chunk_count: 16,
        geometry: None,
    }
}

fn stamp_of(value: &serde_json::Value) -> i64 {
    let s = &value["header"]["stamp"];
    s["sec"].as_i64().unwrap() * 1_000_000_000 + s["nanosec"].as_i64().unwrap()
}

#[test]
fn a_bridge_codec_writes_and_reads_its_own_channel_layout() {
    let _w = watchdog(Duration::from_secs(120), "codec");
    let domain = unique_domain();
    let (in_ch, out_ch, raw_ch) = (
        unique_channel("vin"),
        unique_channel("vout"),
        unique_channel("raw"),
    );
    let cfg = ChannelConfig {
        chunk_size: 4096,
        chunk_count: 8,
        user_header_size: HEADER,
        ..ChannelConfig::default()
    };
    let mut out_pub = Publisher::create(&out_ch, &cfg).expect("channel");
    let codec: Arc<dyn PayloadCodec> = Arc::new(ImuVectors {
        count: Default::default(),
    });
    let gw = Gateway::start_with_codecs(
        &GatewayConfig {
            domain_id: Some(domain),
            bridges: vec![
                bridge(Direction::Ingest, "/imu", &in_ch),
                bridge(Direction::Egress, "/imu_out", &out_ch),
                bridge(Direction::Ingest, "/imu_raw", &raw_ch),
            ],
        },
        // The third bridge keeps the default.
        |i, _| (i < 2).then(|| codec.clone()),
    )
    .expect("gateway starts");
    let names: Vec<String> = gw.stats().bridges.into_iter().map(|b| b.codec).collect();
    assert_eq!(names, ["imu-vectors", "imu-vectors", "raw-cdr"]);

    // Ingest: Cyclone's IMUs, stamped now, in our layout with their stamps on the monotonic clock.
    let mut in_sub = open_channel(&in_ch, LONG);
    let mut imu_peer = Peer::cyclone(
        "pub",
        domain,
        "rt/imu",
        "sensor_msgs/msg/Imu",
        &["--count", "3", "--stamp", "now", "--wait-go"],
    );
    imu_peer.wait_matched(LONG);
    go_when_matched(&gw, 0, &mut imu_peer, LONG);
    let sent = imu_peer.records(3, LONG);
    assert_eq!(sent.len(), 3, "the Cyclone IMU publisher did not finish");
    for (i, rec) in sent.iter().enumerate() {
        let s = in_sub
            .receive_timeout(LONG)
            .expect("receive")
            .unwrap_or_else(|| panic!("IMU {i} never reached the channel"));
        let v = &rec["value"];
        let want: Imu = serde_json::from_value(v.clone()).unwrap();
        let got: Vec<f64> = s
            .payload()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(
            got,
            f64s([&want.angular_velocity, &want.linear_acceleration]),
            "IMU {i}"
        );
        assert_eq!(s.user(), USER);
        assert_eq!(&s.user_header()[..4], MAGIC);
        assert_eq!(s.user_header()[8..16], (i as u64).to_le_bytes());
        assert_eq!(
            Some(s.sensor_time()),
            gw.clock().to_monotonic(stamp_of(v)),
            "IMU {i}: the header stamp moved onto the monotonic clock by the gateway's offset"
        );
    }

    // Egress: our layout out as Imu, stamps back on the system clock; a foreign sample is
    // counted, not sent.
    let sub = Peer::cyclone(
        "sub",
        domain,
        "rt/imu_out",
        "sensor_msgs/msg/Imu",
        &["--count", "2", "--timeout", "60"],
    );
    sub.wait_matched(LONG);
    wait_for(LONG, || {
        (out_pub.subscriber_count() >= 1 && gw.stats().bridges[1].matched >= 1).then_some(())
    })
    .expect("egress bridge not ready");
    let t0 = shm_transport::now_ns();
    publish(&mut out_pub, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], t0, USER);
    publish(&mut out_pub, [0.0; 6], t0 + 5, 7);
    publish(
        &mut out_pub,
        [-1.0, -2.0, -3.0, 0.5, 0.25, 9.81],
        t0 + 10,
        USER,
    );
    let got = sub.records(2, LONG);
    assert_eq!(got.len(), 2, "Cyclone received {} of 2", got.len());
    let expected = [
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], t0),
        ([-1.0, -2.0, -3.0, 0.5, 0.25, 9.81], t0 + 10),
    ];
    for (rec, (values, t)) in got.iter().zip(expected) {
        let imu: Imu = serde_json::from_value(rec["value"].clone()).unwrap();
        assert_eq!(
            f64s([&imu.angular_velocity, &imu.linear_acceleration]),
            values
        );
        assert_eq!(imu.header, header(gw.clock().to_system(t)));
    }
    let stats = gw.stop().expect("clean stop");
    assert_eq!(stats.bridges[0].forwarded, 3, "{stats:?}");
    assert_eq!(stats.bridges[1].forwarded, 2, "{stats:?}");
    assert_eq!(stats.bridges[1].malformed, 1, "{stats:?}");
    assert!(stats.bridges[1]
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("not an imu-vectors sample")));
}
