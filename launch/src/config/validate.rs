//! Checks that serde cannot make: references between tables, sizes against payloads, value ranges.

pub(super) mod bridges;

use super::error::Diagnostic;
use super::schema::*;
use serde_spanned::Spanned;
use std::collections::{BTreeMap, BTreeSet};

/// Bytes per LiDAR point: x, y, z, intensity as float32 (PointCloud2).
pub const LIDAR_POINT_BYTES: u64 = 16;
/// Points in one VLP-16 rotation at 600 rpm: 754 packets/s × 384 points / 10 Hz, rounded up.
pub const VLP16_POINTS_PER_ROTATION: u64 = 29_000;

/// Collects diagnostics.
#[derive(Default)]
struct Checker {
    diags: Vec<Diagnostic>,
}

impl Checker {
    fn at<T>(&mut self, value: &Spanned<T>, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            span: Some(value.span()),
            message: message.into(),
        });
    }
    fn nowhere(&mut self, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            span: None,
            message: message.into(),
        });
    }
}

/// Bytes per pixel of a camera encoding, `None` when unknown.
pub fn bytes_per_pixel(encoding: &str) -> Option<u64> {
    match encoding {
        "rgb8" | "bgr8" => Some(3),
        "mono8" => Some(1),
        _ => None,
    }
}

/// The payload one sample of this driver needs, in bytes, when it can be known from the config.
pub fn payload_bytes(d: &Driver) -> Option<(u64, String)> {
    let p = &d.params;
    match *d.kind.get_ref() {
        DriverKind::SyntheticCamera => {
            let w = u64::from(*p.width.as_ref()?.get_ref());
            let h = u64::from(*p.height.as_ref()?.get_ref());
            let enc = p
                .encoding
                .as_ref()
                .map_or("rgb8", |e| e.get_ref().as_str());
            let bpp = bytes_per_pixel(enc)?;
            Some((w * h * bpp, format!("a {w}x{h} {enc} frame")))
        }
        DriverKind::SyntheticLidar => {
            let n = u64::from(*p.points_per_scan.as_ref()?.get_ref());
            Some((
                n * LIDAR_POINT_BYTES,
                format!("a scan of {n} points x {LIDAR_POINT_BYTES} bytes"),
            ))
        }
        DriverKind::Vlp16Udp => Some((
            VLP16_POINTS_PER_ROTATION * LIDAR_POINT_BYTES,
            format!("one VLP-16 rotation (~{VLP16_POINTS_PER_ROTATION} points x {LIDAR_POINT_BYTES} bytes)"),
        )),
        _ => None,
    }
}

/// The parameters a driver kind accepts, and those it requires.
fn params_for(kind: DriverKind) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        DriverKind::SyntheticCamera => (
            &["rate_hz", "width", "height", "encoding", "seed"],
            &["rate_hz", "width", "height"],
        ),
        DriverKind::SyntheticLidar => (
            &["rate_hz", "points_per_scan", "seed"],
            &["rate_hz", "points_per_scan"],
        ),
        DriverKind::SyntheticImu => (&["rate_hz", "noise", "bias", "seed"], &["rate_hz"]),
        DriverKind::SyntheticOdometry => (&["rate_hz", "noise", "seed"], &["rate_hz"]),
        DriverKind::Vlp16Udp => (&["bind", "batch"], &[]),
        DriverKind::McapReplay => (&["file", "topic", "speed", "looped"], &["file", "topic"]),
    }
}

/// The parameters that are set, with their spans.
fn set_params(p: &DriverParams) -> Vec<(&'static str, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    macro_rules! each {
        ($($f:ident),*) => { $( if let Some(v) = &p.$f { out.push((stringify!($f), v.span())); } )* };
    }
    each!(
        rate_hz,
        width,
        height,
        encoding,
        points_per_scan,
        noise,
        bias,
        bind,
        batch,
        file,
        topic,
        speed,
        looped,
        seed
    );
    out
}

fn check_name(c: &mut Checker, what: &str, name: &Spanned<String>) {
    let n = name.get_ref();
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
    if !ok {
        c.at(
            name,
            format!("expected a {what} name of 1 to 64 characters from [A-Za-z0-9_-], found `{n}`"),
        );
    }
}

fn unique<'a>(c: &mut Checker, what: &str, names: impl Iterator<Item = &'a Spanned<String>>) {
    let mut seen = BTreeSet::new();
    for n in names {
        if !seen.insert(n.get_ref().as_str()) {
            c.at(n, format!("duplicate {what} name `{}`", n.get_ref()));
        }
    }
}

fn channel_ref(
    c: &mut Checker,
    channels: &BTreeMap<&str, &Channel>,
    r: &Spanned<String>,
    role: &str,
) {
    if !channels.contains_key(r.get_ref().as_str()) {
        let known: Vec<&str> = channels.keys().copied().collect();
        c.at(
            r,
            format!(
                "{role} refers to unknown channel `{}`; expected one of: {}",
                r.get_ref(),
                if known.is_empty() {
                    "(no [[channel]] defined)".to_string()
                } else {
                    known.join(", ")
                }
            ),
        );
    }
}

fn check_channel(c: &mut Checker, ch: &Channel) {
    let before = c.diags.len();
    check_name(c, "channel", &ch.name);
    if ch.chunk_size.get_ref().bytes() == 0 {
        c.at(
            &ch.chunk_size,
            "expected a chunk_size of at least 1 byte, found 0",
        );
    }
    if *ch.chunk_count.get_ref() == 0 {
        c.at(
            &ch.chunk_count,
            "expected a chunk_count of at least 1, found 0",
        );
    }
    let depth = *ch.ring_depth.get_ref();
    if !depth.is_power_of_two() || !(2..=65_536).contains(&depth) {
        c.at(
            &ch.ring_depth,
            format!("expected ring_depth to be a power of two from 2 to 65536, found {depth}"),
        );
    }
    let subs = *ch.max_subscribers.get_ref();
    if !(1..=32).contains(&subs) {
        c.at(
            &ch.max_subscribers,
            format!("expected max_subscribers from 1 to 32, found {subs}"),
        );
    }
    let align = ch.alignment.get_ref().bytes();
    if !align.is_power_of_two() || align < 64 {
        c.at(
            &ch.alignment,
            format!("expected alignment to be a power of two of at least 64, found {align}"),
        );
    }
    if c.diags.len() == before {
        // Whatever else shm-transport's layout refuses (e.g. more than 65536 chunks).
        if let Err(e) = super::memory::channel_footprint(ch) {
            c.at(&ch.name, format!("channel `{}`: {e}", ch.name.get_ref()));
        }
    }
}

fn check_driver(c: &mut Checker, d: &Driver, channels: &BTreeMap<&str, &Channel>) {
    check_name(c, "driver", &d.name);
    channel_ref(
        c,
        channels,
        &d.channel,
        &format!("driver `{}`", d.name.get_ref()),
    );
    let kind = *d.kind.get_ref();
    let (allowed, required) = params_for(kind);
    let set = set_params(&d.params);
    for (name, span) in &set {
        if !allowed.contains(name) {
            c.diags.push(Diagnostic {
                span: Some(span.clone()),
                message: format!(
                    "parameter `{name}` does not apply to a {} driver; expected one of: {}",
                    kind.as_str(),
                    allowed.join(", ")
                ),
            });
        }
    }
    for req in required {
        if !set.iter().any(|(n, _)| n == req) {
            c.at(
                &d.kind,
                format!("a {} driver needs params.{req}", kind.as_str()),
            );
        }
    }
    if let Some(r) = &d.params.rate_hz {
        let v = *r.get_ref();
        if !(v.is_finite() && v > 0.0 && v <= 100_000.0) {
            c.at(
                r,
                format!("expected rate_hz greater than 0 and at most 100000, found {v}"),
            );
        }
    }
    if let Some(e) = &d.params.encoding {
        if bytes_per_pixel(e.get_ref()).is_none() {
            c.at(
                e,
                format!(
                    "expected encoding rgb8, bgr8 or mono8, found `{}`",
                    e.get_ref()
                ),
            );
        }
    }
    for dim in [
        &d.params.width,
        &d.params.height,
        &d.params.points_per_scan,
        &d.params.batch,
    ]
    .into_iter()
    .flatten()
    {
        if *dim.get_ref() == 0 {
            c.at(dim, "expected a value of at least 1, found 0");
        }
    }
    if let Some(b) = &d.params.bind {
        if b.get_ref().parse::<std::net::SocketAddr>().is_err() {
            c.at(
                b,
                format!(
                    "expected a socket address such as \"0.0.0.0:2368\", found `{}`",
                    b.get_ref()
                ),
            );
        }
    }
    if let Some(s) = &d.params.speed {
        let v = *s.get_ref();
        if !(v.is_finite() && v >= 0.0) {
            c.at(
                s,
                format!("expected speed >= 0 (0 = as fast as possible), found {v}"),
            );
        }
    }
    if let Some(p) = &d.priority {
        if !(1..=99).contains(p.get_ref()) {
            c.at(
                p,
                format!(
                    "expected a SCHED_FIFO priority from 1 to 99, found {}",
                    p.get_ref()
                ),
            );
        }
    }
    for scale in [&d.params.noise, &d.params.bias].into_iter().flatten() {
        if !(scale.get_ref().is_finite() && *scale.get_ref() >= 0.0) {
            c.at(
                scale,
                format!(
                    "expected a scale >= 0 (1 = the default model), found {}",
                    scale.get_ref()
                ),
            );
        }
    }
    let r = &d.restart;
    if !(r.backoff_multiplier.is_finite() && r.backoff_multiplier >= 1.0) {
        c.nowhere(format!(
            "driver `{}`: expected restart.backoff_multiplier >= 1, found {}",
            d.name.get_ref(),
            r.backoff_multiplier
        ));
    }
    if r.backoff_initial_ms > r.backoff_max_ms {
        c.nowhere(format!(
            "driver `{}`: restart.backoff_initial_ms ({}) is larger than backoff_max_ms ({})",
            d.name.get_ref(),
            r.backoff_initial_ms,
            r.backoff_max_ms
        ));
    }
    if let (Some(ch), Some((need, what))) =
        (channels.get(d.channel.get_ref().as_str()), payload_bytes(d))
    {
        let have = ch.chunk_size.get_ref().bytes();
        if have < need {
            c.at(
                &ch.chunk_size,
                format!(
                    "chunk_size {} of channel `{}` is too small for {what} from driver `{}`: expected at least {need} bytes",
                    ch.chunk_size.get_ref(),
                    ch.name.get_ref(),
                    d.name.get_ref()
                ),
            );
        }
    }
}

/// The node's output channels with the bytes one sample needs (None: not known from the config).
fn node_outputs(dep: &Deployment) -> Vec<(&Spanned<String>, Option<u64>)> {
    let n = &dep.node;
    let driver_of = |ch: &Spanned<String>| {
        dep.drivers
            .iter()
            .find(|d| d.channel.get_ref() == ch.get_ref())
    };
    let mut out = Vec::new();
    if let Some(p) = &n.projection {
        if let Some(o) = &p.output {
            let cam =
                driver_of(&p.camera).filter(|d| *d.kind.get_ref() == DriverKind::SyntheticCamera);
            let size = cam.and_then(|d| {
                let w = d.params.width.as_ref()?;
                let h = d.params.height.as_ref()?;
                Some(u64::from(*w.get_ref()) * u64::from(*h.get_ref()) * 4)
            });
            out.push((o, size));
        }
        if let Some(o) = &p.cloud_output {
            out.push((o, Some(cloud_output_points(dep, p) as u64 * 16)));
        }
    }
    if let Some(o) = n.ekf.as_ref().and_then(|e| e.output.as_ref()) {
        let size = std::mem::size_of::<fusion::node::outputs::OdometryRecord>() as u64;
        out.push((o, Some(size)));
    }
    out
}

/// Points per scan the coloured cloud output holds: the setting, else the LiDAR driver's scan.
pub fn cloud_output_points(dep: &Deployment, p: &super::schema::Projection) -> usize {
    if let Some(n) = &p.cloud_output_points {
        return *n.get_ref() as usize;
    }
    let lidar = dep
        .drivers
        .iter()
        .find(|d| d.channel.get_ref() == p.lidar.get_ref());
    match lidar.map(|d| (*d.kind.get_ref(), &d.params)) {
        Some((DriverKind::SyntheticLidar, params)) => params
            .points_per_scan
            .as_ref()
            .map_or(fusion::node::outputs::DEFAULT_CLOUD_OUTPUT_POINTS, |n| {
                *n.get_ref() as usize
            }),
        Some((DriverKind::Vlp16Udp, _)) => VLP16_POINTS_PER_ROTATION as usize,
        _ => fusion::node::outputs::DEFAULT_CLOUD_OUTPUT_POINTS,
    }
}

fn check_outputs(c: &mut Checker, dep: &Deployment, channels: &BTreeMap<&str, &Channel>) {
    let outputs = node_outputs(dep);
    unique(c, "node output channel", outputs.iter().map(|(o, _)| *o));
    for (o, need) in outputs {
        channel_ref(c, channels, o, "node output");
        if dep
            .drivers
            .iter()
            .any(|d| d.channel.get_ref() == o.get_ref())
        {
            c.at(o, format!("node output channel `{}` is already published by a driver; a channel has one publisher", o.get_ref()));
        }
        if dep.node.streams.iter().any(|x| x.get_ref() == o.get_ref()) {
            c.at(
                o,
                format!(
                    "node output channel `{}` is also one of node.streams",
                    o.get_ref()
                ),
            );
        }
        if let (Some(ch), Some(need)) = (channels.get(o.get_ref().as_str()), need) {
            let have = ch.chunk_size.get_ref().bytes();
            if have < need {
                c.at(
                    &ch.chunk_size,
                    format!(
                        "expected chunk_size of at least {need} bytes for node output `{}`, found {have}",
                        o.get_ref()
                    ),
                );
            }
        }
    }
}

fn check_node(c: &mut Checker, dep: &Deployment, channels: &BTreeMap<&str, &Channel>) {
    let n = &dep.node;
    if n.streams.is_empty() || n.streams.len() > fusion::node::MAX_STREAMS {
        c.nowhere(format!(
            "[node] expected 1 to {} streams for the fusion thread, found {}",
            fusion::node::MAX_STREAMS,
            n.streams.len()
        ));
    }
    unique(c, "node stream", n.streams.iter());
    for s in &n.streams {
        channel_ref(c, channels, s, "node.streams");
    }
    let in_node = |s: &Spanned<String>| n.streams.iter().any(|x| x.get_ref() == s.get_ref());
    let need_in_node = |c: &mut Checker, s: &Spanned<String>, role: &str| {
        if !in_node(s) {
            c.at(
                s,
                format!("{role} `{}` is not one of node.streams", s.get_ref()),
            );
        }
    };
    if let Some(sync) = &n.sync {
        if !(2..=9).contains(&sync.streams.len()) {
            c.nowhere(format!(
                "[node.sync] expected 2 to 9 streams to synchronise, found {}",
                sync.streams.len()
            ));
        }
        unique(c, "sync stream", sync.streams.iter());
        for s in &sync.streams {
            need_in_node(c, s, "node.sync stream");
        }
        let max_queue = fusion::node::SYNC_CAPACITY - 1;
        let queue = *sync.queue_size.get_ref() as usize;
        if queue == 0 || queue > max_queue {
            c.at(
                &sync.queue_size,
                format!("expected queue_size from 1 to {max_queue}, found {queue}"),
            );
        }
        if sync.policy == SyncPolicy::Exact {
            if let Some(m) = &sync.max_interval_ms {
                c.at(m, "max_interval_ms applies to policy \"approximate\" only; found it with policy \"exact\"");
            }
            if let Some(a) = &sync.age_penalty {
                c.at(a, "age_penalty applies to policy \"approximate\" only; found it with policy \"exact\"");
            }
            for b in sync.inter_message_lower_bound_ms.values() {
                c.at(b, "inter_message_lower_bound_ms applies to policy \"approximate\" only; found it with policy \"exact\"");
            }
        }
        for (stream, b) in &sync.inter_message_lower_bound_ms {
            if !sync.streams.iter().any(|s| s.get_ref() == stream) {
                c.at(
                    b,
                    format!("inter_message_lower_bound_ms.{stream}: `{stream}` is not one of node.sync.streams"),
                );
            }
        }
        for v in [&sync.max_interval_ms, &sync.age_penalty]
            .into_iter()
            .flatten()
            .chain(sync.inter_message_lower_bound_ms.values())
        {
            if !(v.get_ref().is_finite() && *v.get_ref() >= 0.0) {
                c.at(v, format!("expected a number >= 0, found {}", v.get_ref()));
            }
        }
    }
    let kind_of = |s: &Spanned<String>| {
        dep.drivers
            .iter()
            .find(|d| d.channel.get_ref() == s.get_ref())
            .map(|d| *d.kind.get_ref())
    };
    if let Some(p) = &n.projection {
        if let Some(sp) = p.slice_points.as_ref().filter(|s| *s.get_ref() == 0) {
            c.at(sp, "expected slice_points of at least 1, found 0");
        }
        need_in_node(c, &p.camera, "node.projection.camera");
        need_in_node(c, &p.lidar, "node.projection.lidar");
        if matches!(kind_of(&p.camera), Some(k) if k != DriverKind::SyntheticCamera && k != DriverKind::McapReplay)
        {
            c.at(
                &p.camera,
                format!(
                    "node.projection.camera `{}` is not fed by a camera driver",
                    p.camera.get_ref()
                ),
            );
        }
        if matches!(
            kind_of(&p.lidar),
            Some(
                DriverKind::SyntheticCamera
                    | DriverKind::SyntheticImu
                    | DriverKind::SyntheticOdometry
            )
        ) {
            c.at(
                &p.lidar,
                format!(
                    "node.projection.lidar `{}` is not fed by a LiDAR driver",
                    p.lidar.get_ref()
                ),
            );
        }
    }
    if let Some(e) = &n.ekf {
        need_in_node(c, &e.imu, "node.ekf.imu");
        need_in_node(c, &e.odometry, "node.ekf.odometry");
        if !(e.mahalanobis_threshold.is_finite() && e.mahalanobis_threshold > 0.0) {
            c.nowhere(format!(
                "[node.ekf] expected mahalanobis_threshold > 0, found {}",
                e.mahalanobis_threshold
            ));
        }
    }
    check_outputs(c, dep, channels);
    for (stream, timing) in &n.timing {
        if !n.streams.iter().any(|s| s.get_ref() == stream) {
            c.at(
                timing,
                format!("node.timing.{stream}: `{stream}` is not one of node.streams"),
            );
        }
        let t = timing.get_ref();
        let values = [
            t.service_us,
            Some(t.jitter_us),
            Some(t.delta_irq_us),
            t.rate_hz,
        ];
        if values
            .into_iter()
            .flatten()
            .any(|v| !(v.is_finite() && v >= 0.0))
            || t.rate_hz == Some(0.0)
            || t.service_us == Some(0.0)
        {
            c.at(timing, format!("node.timing.{stream}: expected finite numbers >= 0 (rate_hz and service_us > 0)"));
        }
    }
    let t = &n.thread;
    if !(t.poll_period_us.is_finite() && t.poll_period_us > 0.0) {
        c.nowhere(format!(
            "[node.thread] expected poll_period_us > 0, found {}",
            t.poll_period_us
        ));
    }
    let prio = *t.priority.get_ref();
    if t.policy == SchedPolicy::Fifo && !(1..=99).contains(&prio) {
        c.at(
            &t.priority,
            format!("expected a SCHED_FIFO priority from 1 to 99, found {prio}"),
        );
    }
}

/// Every semantic problem of a deployment that parsed.
pub fn check(dep: &Deployment) -> Vec<Diagnostic> {
    let mut c = Checker::default();
    for ch in &dep.channels {
        check_channel(&mut c, ch);
    }
    unique(&mut c, "channel", dep.channels.iter().map(|ch| &ch.name));
    let channels: BTreeMap<&str, &Channel> = dep
        .channels
        .iter()
        .map(|ch| (ch.name.get_ref().as_str(), ch))
        .collect();
    for d in &dep.drivers {
        check_driver(&mut c, d, &channels);
    }
    unique(&mut c, "driver", dep.drivers.iter().map(|d| &d.name));
    let mut publisher: BTreeMap<&str, &str> = BTreeMap::new();
    for d in &dep.drivers {
        if let Some(first) = publisher.insert(d.channel.get_ref(), d.name.get_ref()) {
            c.at(
                &d.channel,
                format!(
                    "channel `{}` is already published by driver `{first}`; a channel has exactly one publisher",
                    d.channel.get_ref()
                ),
            );
        }
    }
    check_node(&mut c, dep, &channels);
    for s in &dep.gpu.streams {
        if !dep.node.streams.iter().any(|n| n.get_ref() == s.get_ref()) {
            c.at(
                s,
                format!("gpu stream `{}` is not one of node.streams", s.get_ref()),
            );
        }
    }
    bridges::check_bridges(&mut c, dep, &channels, &publisher);
    if *dep.trace.queue_capacity.get_ref() == 0 {
        c.at(
            &dep.trace.queue_capacity,
            "expected queue_capacity of at least 1, found 0",
        );
    }
    for f in &dep.report.formats {
        if !["html", "markdown", "json"].contains(&f.get_ref().as_str()) {
            c.at(
                f,
                format!(
                    "expected report format html, markdown or json, found `{}`",
                    f.get_ref()
                ),
            );
        }
    }
    c.diags
}
