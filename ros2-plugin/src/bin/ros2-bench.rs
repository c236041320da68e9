//! Same-host latency and throughput: the plugin's shared-memory path against plain ros2-client
//! (RustDDS) publishing the same `sensor_msgs/Image`, measured in one run, with ratios.
//!
//! ```text
//! cargo run --release -p ros2-plugin --bin ros2-bench -- [--iters 20] [--burst 40] [--domain 150]
//! ```
//! One-way latency: the publisher stamps `header.stamp` with `CLOCK_MONOTONIC` just before
//! `publish`; the receiving thread subtracts it from the clock once it holds the decoded message
//! (`plugin-shm` decodes an owned copy; `plugin-view` reads the message in place in the
//! shared-memory chunk through `ImageView`, the zero-copy receive; `plugin-inplace` also
//! publishes with `publish_with`, the producer writing the message into the chunk as a camera
//! DMA would, so the pixels are never copied by the CPU). Messages are
//! spaced so that nothing queues. Throughput: a back-to-back burst, counted at the receiver.
//! Where `ddsperf` (Debian `cyclonedds-tools`) is installed, Cyclone DDS's own ping/pong
//! round trip (halved) for the same payload sizes is printed as a further reference.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use ros2_client::dds::rustdds::mio1::{Events, Interest, Poll, Token};
use ros2_client::{MessageTypeName, Name, NodeName, NodeOptions};
use ros2_plugin::context::new_context;
use ros2_plugin::zc::{ZcOptions, ZcPublisher, ZcSubscription};
use ros2_plugin::QosConfig;
use rtfuse_msgs::builtin_interfaces::Time;
use rtfuse_msgs::cdr;
use rtfuse_msgs::sensor_msgs::{Image, ImageView};
use rtfuse_msgs::std_msgs::Header;
use shm_transport::now_ns;

const WARMUP_SEC: i32 = -1;

fn image(size: usize, sec: i32) -> Image {
    Image {
        header: Header {
            stamp: Time { sec, nanosec: 0 },
            frame_id: "bench".into(),
        },
        height: 1,
        width: size as u32,
        encoding: "mono8".into(),
        is_bigendian: 0,
        step: size as u32,
        data: (0..size).map(|k| k as u8).collect(),
    }
}

/// Marks `msg` as message `index` and writes the send time (`CLOCK_MONOTONIC` ns) into its
/// first 8 data bytes; the receiver reads it back from the decoded message.
fn stamp_now(msg: &mut Image, index: i32) {
    msg.header.stamp = Time {
        sec: index,
        nanosec: 0,
    };
    msg.data[..8].copy_from_slice(&now_ns().to_le_bytes());
}

fn sent_time(data: &[u8]) -> u64 {
    data.get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

struct Run {
    latencies_ns: Vec<u64>,
    burst_received: u64,
    burst_sent: u64,
    burst_secs: f64,
}

/// Receiver side shared by both paths: collects latencies and burst arrivals.
struct Rx {
    ready: AtomicBool,
    received: AtomicU64,
    last_ns: AtomicU64,
}

fn measure<P>(
    size: usize,
    iters: usize,
    burst: usize,
    period: Duration,
    mut publish: P,
    rx: Arc<Rx>,
    lat_rx: mpsc::Receiver<u64>,
) -> Run
where
    P: FnMut(&Image),
{
    let mut msg = image(size, WARMUP_SEC);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !rx.ready.load(Ordering::Acquire) {
        assert!(
            Instant::now() < deadline,
            "receiver never got a warm-up message"
        );
        stamp_now(&mut msg, WARMUP_SEC);
        publish(&msg);
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(period);
    while lat_rx.try_recv().is_ok() {}
    let mut latencies_ns = Vec::with_capacity(iters);
    for i in 0..iters {
        stamp_now(&mut msg, i as i32);
        publish(&msg);
        if let Ok(l) = lat_rx.recv_timeout(Duration::from_secs(5)) {
            latencies_ns.push(l);
        }
        std::thread::sleep(period);
    }
    // Burst.
    let before = rx.received.load(Ordering::Acquire);
    let t0 = now_ns();
    for i in 0..burst {
        stamp_now(&mut msg, (iters + i) as i32);
        publish(&msg);
    }
    let mut last = before;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = rx.received.load(Ordering::Acquire);
        if now == last || now - before >= burst as u64 {
            break;
        }
        last = now;
    }
    let received = rx.received.load(Ordering::Acquire) - before;
    let secs = (rx.last_ns.load(Ordering::Acquire).saturating_sub(t0)) as f64 / 1e9;
    Run {
        latencies_ns,
        burst_received: received,
        burst_sent: burst as u64,
        burst_secs: secs,
    }
}

fn on_message(rx: &Rx, lat_tx: &mpsc::Sender<u64>, index: i32, data: &[u8]) {
    let now = now_ns();
    if index == WARMUP_SEC {
        rx.ready.store(true, Ordering::Release);
        return;
    }
    let _ = lat_tx.send(now.saturating_sub(sent_time(data)));
    rx.received.fetch_add(1, Ordering::AcqRel);
    rx.last_ns.store(now, Ordering::Release);
}

fn new_rx() -> Arc<Rx> {
    Arc::new(Rx {
        ready: AtomicBool::new(false),
        received: AtomicU64::new(0),
        last_ns: AtomicU64::new(0),
    })
}

/// Serializes `m` into `buf` as a camera driver with DMA would: the CDR header fields are
/// written, the pixel bytes are assumed to be in place already (only the 8-byte send time that
/// the benchmark needs is written). Returns the payload length.
fn write_in_place(m: &Image, buf: &mut [u8]) -> Result<usize, rtfuse_msgs::EncodeError> {
    let view = ImageView {
        header: m.header.clone(),
        height: m.height,
        width: m.width,
        encoding: m.encoding.clone(),
        is_bigendian: m.is_bigendian,
        step: m.step,
        data: &[],
    };
    let prefix = cdr::encode_to_slice(&view, buf)?;
    let total = prefix + m.data.len();
    if total > buf.len() {
        return Err(rtfuse_msgs::EncodeError::BufferTooSmall(buf.len()));
    }
    // The data field is last: patch its length, then the "DMA" content.
    buf[prefix - 4..prefix].copy_from_slice(&(m.data.len() as u32).to_le_bytes());
    buf[prefix..prefix + 8].copy_from_slice(&m.data[..8]);
    Ok(total)
}

/// How the plugin benchmark's ends handle the message.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// `publish(&Image)` / `take_timeout` (owned decode).
    Copy,
    /// `publish(&Image)` / `take_loaned_timeout` + `ImageView` (no receive copy).
    View,
    /// `publish_with` writing in place (pixels "DMA'd" into the chunk) / `ImageView`.
    InPlace,
}

/// The plugin path in one of its [`Mode`]s.
fn run_plugin(
    domain: u16,
    size: usize,
    iters: usize,
    burst: usize,
    period: Duration,
    mode: Mode,
) -> Run {
    let loaned = mode != Mode::Copy;
    let topic = format!("/bench_zc_{}_{size}", std::process::id());
    let rx = new_rx();
    let (lat_tx, lat_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let opts = ZcOptions {
        qos: QosConfig::ros_default(),
        chunk_size: (size + 4096).next_power_of_two(),
        chunk_count: 16,
    };
    let ctx = new_context(Some(domain)).expect("context");
    let mut publisher = ZcPublisher::<Image>::new(&ctx, &topic, &opts).expect("zc publisher");
    let receiver = {
        let (rx, stop, topic, opts) = (rx.clone(), stop.clone(), topic.clone(), opts.clone());
        std::thread::spawn(move || {
            let ctx = new_context(Some(domain)).expect("context");
            let mut sub = ZcSubscription::<Image>::new(&ctx, &topic, &opts).expect("zc sub");
            while !stop.load(Ordering::Relaxed) {
                let wait = Duration::from_millis(50);
                if loaned {
                    if let Ok(Some((payload, _))) = sub.take_loaned_timeout(wait) {
                        if let Ok(view) = cdr::decode_borrowed::<ImageView<'_>>(payload.bytes()) {
                            on_message(&rx, &lat_tx, view.header.stamp.sec, view.data);
                        }
                    }
                } else if let Ok(Some((img, _))) = sub.take_timeout(wait) {
                    on_message(&rx, &lat_tx, img.header.stamp.sec, &img.data);
                }
            }
            sub.stats()
        })
    };
    // Wait until the peers know each other, so the run measures the shared-memory path.
    let deadline = Instant::now() + Duration::from_secs(30);
    while publisher.peers() != (1, 1) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = measure(
        size,
        iters,
        burst,
        period,
        |m| {
            if mode == Mode::InPlace {
                let len = m.data.len() + 4096;
                publisher
                    .publish_with(len, |buf| write_in_place(m, buf))
                    .expect("publish")
            } else {
                publisher.publish(m).expect("publish")
            }
        },
        rx,
        lat_rx,
    );
    stop.store(true, Ordering::Relaxed);
    let sub_stats = receiver.join().expect("receiver");
    eprintln!("  plugin: publisher {:?}", publisher.stats());
    eprintln!("  plugin: subscription {sub_stats:?}");
    run
}

/// A plain ros2-client node on `domain` and its `sensor_msgs/Image` topic (ROS default QoS).
fn image_node(
    domain: u16,
    node_name: &str,
    topic_name: &str,
) -> (
    ros2_client::Context,
    ros2_client::Node,
    ros2_client::dds::rustdds::Topic,
) {
    let ctx = new_context(Some(domain)).expect("context");
    let node = ctx
        .new_node(
            NodeName::new("/", node_name).unwrap(),
            NodeOptions::new().enable_rosout(false),
        )
        .expect("node");
    let topic = node
        .create_topic(
            &Name::new("/", topic_name).unwrap(),
            MessageTypeName::new("sensor_msgs", "Image"),
            &QosConfig::ros_default().to_profile(),
        )
        .expect("topic");
    (ctx, node, topic)
}

fn run_ros2_client(domain: u16, size: usize, iters: usize, burst: usize, period: Duration) -> Run {
    let topic_name = format!("bench_dds_{}_{size}", std::process::id());
    let rx = new_rx();
    let (lat_tx, lat_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let (_ctx, mut node, topic) = image_node(domain, "bench_pub", &topic_name);
    let publisher = node
        .create_publisher::<Image>(&topic, None)
        .expect("publisher");
    let receiver = {
        let (rx, stop) = (rx.clone(), stop.clone());
        std::thread::spawn(move || {
            let (_ctx, mut node, topic) = image_node(domain, "bench_sub", &topic_name);
            let mut sub = node
                .create_subscription::<Image>(&topic, None)
                .expect("subscription");
            let mut poll = Poll::new().expect("poll");
            poll.registry()
                .register(&mut sub, Token(1), Interest::READABLE)
                .expect("register");
            let mut events = Events::with_capacity(8);
            while !stop.load(Ordering::Relaxed) {
                let _ = poll.poll(&mut events, Some(Duration::from_millis(50)));
                while let Ok(Some((img, _))) = sub.take() {
                    on_message(&rx, &lat_tx, img.header.stamp.sec, &img.data);
                }
            }
        })
    };
    let run = measure(
        size,
        iters,
        burst,
        period,
        |m| {
            let _ = publisher.publish(m.clone());
        },
        rx,
        lat_rx,
    );
    stop.store(true, Ordering::Relaxed);
    receiver.join().expect("receiver");
    run
}

/// Cyclone DDS's own `ddsperf` (Debian `cyclonedds-tools`) ping/pong between two processes for
/// `size` bytes: median of its per-second p50 round-trip reports, halved (one way), in µs.
/// `None` (with a note) when ddsperf is not installed or reports nothing.
fn run_ddsperf(domain: u16, size: usize) -> Option<f64> {
    use std::process::{Command, Stdio};
    let uri = format!("<CycloneDDS><Domain id=\"any\"><Id>{domain}</Id></Domain></CycloneDDS>");
    let mut pong = match Command::new("ddsperf")
        .args(["-D", "8", "pong"])
        .env("CYCLONEDDS_URI", &uri)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(p) => p,
        Err(_) => {
            eprintln!(
                "  ddsperf not found: `apt install cyclonedds-tools` for the Cyclone baseline"
            );
            return None;
        }
    };
    std::thread::sleep(Duration::from_millis(500));
    let rate = if size > 4096 { "20Hz" } else { "200Hz" };
    let out = Command::new("ddsperf")
        .args(["-D", "5", "ping", rate, "size", &size.to_string()])
        .env("CYCLONEDDS_URI", &uri)
        .output();
    let _ = pong.kill();
    let _ = pong.wait();
    let out = out.ok()?;
    // Lines like "... size 1048576 mean 5776.651us min 1759.098us 50% 6168.244us 90% ...".
    let mut p50s: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("size {size} mean")))
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let i = words.iter().position(|w| *w == "50%")?;
            words.get(i + 1)?.strip_suffix("us")?.parse::<f64>().ok()
        })
        .collect();
    if p50s.is_empty() {
        eprintln!("  ddsperf reported no round trips for {size} B");
        return None;
    }
    p50s.sort_by(f64::total_cmp);
    Some(p50s[p50s.len() / 2] / 2.0)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn report(label: &str, size: usize, run: &mut Run) -> f64 {
    run.latencies_ns.sort_unstable();
    let p50 = percentile(&run.latencies_ns, 0.5);
    let mbs = run.burst_received as f64 * size as f64 / run.burst_secs.max(1e-9) / 1e6;
    println!(
        "{label:<14} {size:>9} B  n={:<4} p50 {p50:>10.1} us  p90 {:>10.1} us  p99 {:>10.1} us  \
         burst {}/{} in {:.3} s = {:>8.1} msg/s {:>9.1} MB/s",
        run.latencies_ns.len(),
        percentile(&run.latencies_ns, 0.9),
        percentile(&run.latencies_ns, 0.99),
        run.burst_received,
        run.burst_sent,
        run.burst_secs,
        run.burst_received as f64 / run.burst_secs.max(1e-9),
        mbs,
    );
    p50
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

fn main() {
    let iters = arg("--iters", 20);
    let burst = arg("--burst", 40);
    let domain = arg("--domain", 100 + (std::process::id() % 100) as usize) as u16;
    println!("ros2-bench: same-host sensor_msgs/Image, domain {domain}, {iters} latency samples per case");
    let mut ratios = Vec::new();
    for size in [64usize, 1 << 20, 5 << 19] {
        // Space messages so that even the slow path does not queue.
        let period = if size <= 4096 {
            Duration::from_millis(5)
        } else {
            Duration::from_millis(300)
        };
        let mut zc = run_plugin(domain, size, iters, burst, period, Mode::Copy);
        let mut view = run_plugin(domain, size, iters, burst, period, Mode::View);
        let mut inplace = run_plugin(domain, size, iters, burst, period, Mode::InPlace);
        let mut dds = run_ros2_client(domain, size, iters, burst, period);
        let a = report("plugin-shm", size, &mut zc);
        let v = report("plugin-view", size, &mut view);
        let ip = report("plugin-inplace", size, &mut inplace);
        let b = report("ros2-client", size, &mut dds);
        println!(
            "{:<14} {size:>9} B  p50 ratio ros2-client / plugin = {:.1}x",
            "RATIO",
            b / a
        );
        let cyclone = run_ddsperf(domain + 1, size);
        if let Some(c) = cyclone {
            println!(
                "{:<14} {size:>9} B  p50 {c:>10.1} us (ddsperf ping/pong RTT/2, its own KS type) \
                 ratio cyclone / plugin = {:.1}x",
                "cyclone-ddsperf",
                c / a
            );
        }
        println!(
            "{:<14} {size:>9} B  p50 ratio ros2-client / plugin-view = {:.1}x",
            "RATIO",
            b / v
        );
        println!(
            "{:<14} {size:>9} B  p50 ratio ros2-client / plugin-inplace = {:.1}x",
            "RATIO",
            b / ip
        );
        ratios.push((size, b / a, b / v, b / ip, cyclone.map(|c| c / a)));
    }
    println!("summary (p50 one-way latency ratios, higher = plugin faster):");
    for (size, r, rv, rip, c) in ratios {
        let c = c.map_or("n/a".to_owned(), |c| format!("{c:.1}x"));
        println!(
            "  {size:>9} B: ros2-client / plugin {r:.1}x, / plugin-view {rv:.1}x, \
             / plugin-inplace {rip:.1}x;  cyclone(ddsperf) / plugin {c}"
        );
    }
}
