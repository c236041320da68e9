//! Offline and auxiliary commands: record, replay, calibrate, bound, report, bench, ros2-gateway.

use super::{failure, load};
use crate::analysis;
use crate::cli::{
    BenchArgs, BoundArgs, CalibrateArgs, Cli, DurationConfig, RecordArgs, ReplayArgs, ReportArgs,
    EXIT_OK, EXIT_RUNTIME, EXIT_USAGE,
};
use crate::config::Config;
use anyhow::Context;
use rtfuse_trace::TraceReader;
use std::path::PathBuf;

/// `rtfuse record`: channels into an MCAP file until Ctrl-C, SIGTERM or `--duration`.
pub fn record(cli: &Cli, a: &RecordArgs) -> anyhow::Result<u8> {
    use fusion::mcap_record::Recorder;
    let cfg = load(&a.config)?;
    let channels: Vec<String> = if a.channels.is_empty() {
        cfg.deployment
            .channels
            .iter()
            .map(|c| c.name.get_ref().clone())
            .collect()
    } else {
        a.channels.clone()
    };
    let stop = crate::signals::install()?;
    if let Some(d) = super::run::duration_arg(a.duration)? {
        std::thread::spawn(move || {
            std::thread::sleep(d);
            crate::signals::request_stop();
        });
    }
    let mut rec = Recorder::create(&a.out, &cli.prefix, &channels).map_err(|e| {
        failure(
            EXIT_RUNTIME,
            format!("cannot create {}: {e}", a.out.display()),
        )
    })?;
    println!(
        "recording {} channel(s) into {} (Ctrl-C to stop): {}",
        channels.len(),
        a.out.display(),
        channels.join(", ")
    );
    let mut last_note = std::time::Instant::now();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let n = rec
            .poll()
            .map_err(|e| failure(EXIT_RUNTIME, format!("writing {}: {e}", a.out.display())))?;
        if last_note.elapsed() >= std::time::Duration::from_secs(5) {
            let waiting = rec.waiting();
            if !waiting.is_empty() {
                tracing::info!("waiting for channel(s): {}", waiting.join(", "));
            }
            last_note = std::time::Instant::now();
        }
        if n == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    let summary = rec
        .finish()
        .map_err(|e| failure(EXIT_RUNTIME, format!("closing {}: {e}", a.out.display())))?;
    let mut total = 0;
    for c in &summary {
        total += c.written;
        println!(
            "{} -> {}: {} written, {} skipped{}{}",
            c.channel,
            c.topic,
            c.written,
            c.skipped,
            if c.opened == 0 { " (never found)" } else { "" },
            c.first_error
                .as_ref()
                .map_or(String::new(), |e| format!(", first problem: {e}"))
        );
    }
    println!("{total} messages in {}", a.out.display());
    Ok(EXIT_OK)
}

/// `rtfuse replay FILE`: every topic of a rosbag2 MCAP file into its own channel
/// (`/camera/image_raw` → `<prefix>camera.image_raw`), at the recorded rate or as fast as possible.
pub fn replay(cli: &Cli, a: &ReplayArgs) -> anyhow::Result<u8> {
    use fusion::mcap_replay::{replay_bytes, Pace};
    use fusion::mcap_shm::{channel_name, plan_channels, ShmSink};
    let bytes = std::fs::read(&a.file)
        .map_err(|e| failure(EXIT_USAGE, format!("cannot read {}: {e}", a.file.display())))?;
    let plans = plan_channels(&bytes)
        .map_err(|e| failure(EXIT_USAGE, format!("{}: {e}", a.file.display())))?;
    for p in &plans {
        println!(
            "{} ({:?}, {} messages) -> channel {}",
            p.topic,
            p.ty,
            p.messages,
            channel_name(&cli.prefix, &p.topic)
        );
    }
    let pace = if a.speed > 0.0 {
        Pace::Recorded { speed: a.speed }
    } else {
        Pace::AsFastAsPossible
    };
    let mut sink = ShmSink::create(
        &plans,
        &cli.prefix,
        fusion::driver::synthetic::ChannelParams::frames(),
    )
    .map_err(|e| failure(EXIT_RUNTIME, format!("cannot create the channels: {e}")))?;
    let stop = crate::signals::install()?;
    let report = replay_bytes(&bytes, pace, &mut sink, stop)
        .map_err(|e| failure(EXIT_RUNTIME, format!("{e}")))?;
    println!(
        "{} messages read, {} published, {} corrupt, {} of unknown type{}",
        report.stats.messages,
        report.stats.delivered,
        report.stats.corrupt,
        report.stats.unknown_type,
        if report.stopped {
            " (stopped early)"
        } else {
            ""
        }
    );
    for p in report.problems.iter().take(20) {
        println!("problem: {p:?}");
    }
    Ok(EXIT_OK)
}

/// `rtfuse calibrate`.
pub fn calibrate(a: &CalibrateArgs) -> anyhow::Result<u8> {
    let cfg = load(&a.config)?;
    let cal = analysis::calibration(&cfg, None, a.seconds)?;
    std::fs::write(&a.out, serde_json::to_string_pretty(&cal)?)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    println!(
        "calibrated {} ({}) under {}: t_cc max {} ns, t_enq max {} ns, timer wake-up max {} ns, futex wake-up max {} ns",
        cal.host.hostname,
        cal.host.kernel,
        cal.policy,
        cal.cache_line_transfer.max_ns,
        cal.enqueue.max_ns,
        cal.fifo_wakeup.max_ns,
        cal.futex_wakeup.max_ns
    );
    for n in &cal.notes {
        println!("note: {n}");
    }
    println!("saved to {}", a.out.display());
    Ok(EXIT_OK)
}

fn calibration_file(cfg: &Config, arg: &Option<PathBuf>) -> Option<PathBuf> {
    arg.clone().or_else(|| {
        cfg.deployment
            .report
            .calibration
            .as_ref()
            .map(PathBuf::from)
    })
}

fn default_traces(cfg: &Config, given: &[PathBuf]) -> Vec<PathBuf> {
    if !given.is_empty() {
        return given.to_vec();
    }
    cfg.deployment
        .node
        .outputs
        .trace
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect()
}

/// The analysis input of `cfg` and `traces` with the host's calibration (the file given, the
/// config's, or measured now for `seconds`), and the bound per stream: what `bound` and `report`
/// share.
fn analyze(
    cli: &Cli,
    cfg: &Config,
    traces: &[TraceReader],
    calibration: &Option<PathBuf>,
    seconds: f64,
) -> anyhow::Result<(wcet::bound::AnalysisInput, wcet::bound::BoundReport)> {
    let mut input = analysis::input(cfg, traces, &cli.prefix)
        .map_err(|e| failure(EXIT_USAGE, format!("{e:#}")))?;
    input.host =
        analysis::calibration(cfg, calibration_file(cfg, calibration).as_deref(), seconds)?;
    let bounds = wcet::bound::analyze(&input)
        .map_err(|e| failure(EXIT_RUNTIME, format!("no bound: {e}")))?;
    Ok((input, bounds))
}

/// `rtfuse bound`.
pub fn bound(cli: &Cli, a: &BoundArgs) -> anyhow::Result<u8> {
    let cfg = load(&a.config)?;
    let traces = analysis::read_traces(&default_traces(&cfg, &a.traces))?;
    let (_, report) = analyze(cli, &cfg, &traces, &a.calibration, a.seconds)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(EXIT_OK);
    }
    println!(
        "fusion core utilisation {:.1} %",
        report.utilisation * 100.0
    );
    println!(
        "{:<12} {:>12}  {:<90} {:>9} {:>10}",
        "STREAM", "BOUND µs", "TERMS (µs)", "MIN RING", "MAX RATE"
    );
    for s in &report.streams {
        let terms: Vec<String> = s
            .terms
            .named()
            .iter()
            .map(|(n, v)| format!("{n} {:.1}", *v as f64 / 1e3))
            .collect();
        println!(
            "{:<12} {:>12.1}  {:<90} {:>9} {:>8.1}Hz",
            s.name,
            s.bound_ns as f64 / 1e3,
            terms.join(" + "),
            s.min_ring_depth,
            s.max_rate_hz
        );
        for n in &s.notes {
            println!("  note: {n}");
        }
    }
    Ok(EXIT_OK)
}

/// `rtfuse report`.
pub fn report(cli: &Cli, a: &ReportArgs) -> anyhow::Result<u8> {
    let cfg = load(&a.config)?;
    let paths = default_traces(&cfg, &a.traces);
    if paths.is_empty() {
        return Err(failure(
            EXIT_USAGE,
            "no traces: give --trace FILE, or run the deployment with node.outputs.trace set first",
        ));
    }
    let traces = analysis::read_traces(&paths)?;
    let (input, bounds) = analyze(cli, &cfg, &traces, &a.calibration, a.seconds)?;
    let options = wcet::report::ReportOptions {
        sample_target: cfg.deployment.report.sample_target,
    };
    let report = wcet::report::build_with(&input, &bounds, &traces, &options);
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(&cfg.deployment.report.dir));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    for f in &cfg.deployment.report.formats {
        let (name, text) = match f.get_ref().as_str() {
            "html" => ("report.html", report.to_html()),
            "markdown" => ("report.md", report.to_markdown()),
            _ => ("report.json", report.to_json()),
        };
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    for s in &report.streams {
        println!("stream {:<12} {:?}", s.name, s.verdict);
    }
    if !report.certified {
        for r in &report.not_certified_because {
            println!("not certified: {r}");
        }
    }
    if !report.all_hold {
        return Err(failure(
            EXIT_RUNTIME,
            "a bound was violated: see the report",
        ));
    }
    Ok(EXIT_OK)
}

/// `rtfuse bench`: runs the `rtfuse-bench` program that sits beside this binary (same build), or
/// the one on PATH.
pub fn bench(a: &BenchArgs) -> anyhow::Result<u8> {
    let beside = std::env::current_exe()?.with_file_name("rtfuse-bench");
    let program = if beside.exists() {
        beside
    } else {
        "rtfuse-bench".into()
    };
    let status = std::process::Command::new(&program).args(&a.args).status().map_err(|e| {
        failure(
            EXIT_USAGE,
            format!(
                "cannot run {}: {e}; build it with `cargo build --release -p rtfuse-bench` (it lands beside rtfuse)",
                program.display()
            ),
        )
    })?;
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(EXIT_RUNTIME))
}

/// `rtfuse ros2-gateway`.
pub fn ros2_gateway(cli: &Cli, a: &DurationConfig) -> anyhow::Result<u8> {
    let cfg = load(&a.config)?;
    if cfg.deployment.ros2.bridges.is_empty() {
        return Err(failure(
            EXIT_USAGE,
            format!("{} has no [[ros2.bridge]]", cfg.display_name()),
        ));
    }
    let gw = crate::ros2_bridge::gateway_config(&cfg, &cli.prefix);
    let stop = crate::signals::install()?;
    if let Some(d) = super::run::duration_arg(a.duration)? {
        std::thread::spawn(move || {
            std::thread::sleep(d);
            crate::signals::request_stop();
        });
    }
    let codecs = crate::ros2_bridge::codec_chooser(&cfg);
    let stats = ros2_plugin::gateway::run_with_codecs(&gw, stop, codecs)
        .map_err(|e| failure(EXIT_RUNTIME, format!("ros2 gateway: {e}")))?;
    for b in &stats.bridges {
        println!(
            "{} <-> {} ({}): {} forwarded, {} malformed, {} unconvertible, {} oversize, {} dds errors{}{}",
            b.ros_topic,
            b.channel,
            b.codec,
            b.forwarded,
            b.malformed,
            b.unconvertible,
            b.oversize,
            b.dds_errors,
            b.waiting
                .as_ref()
                .map_or(String::new(), |w| format!(", still {w}")),
            b.last_error
                .as_ref()
                .map_or(String::new(), |e| format!(", last error: {e}"))
        );
    }
    Ok(EXIT_OK)
}
