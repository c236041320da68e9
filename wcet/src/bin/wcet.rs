//! `wcet`: response-time analysis, extreme-value statistics, host calibration, latency bounds and
//! the latency-bound report. Run `wcet --help`.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;
use wcet::bound::AnalysisInput;
use wcet::calibrate::{CalibrateOptions, Calibration};

#[derive(Parser)]
#[command(
    name = "wcet",
    version,
    about = "rtfuse latency-bound analyzer and report"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Response-time analysis of a task set (TOML or JSON: tasks with c, t, j, priority, b, d).
    Rta {
        /// The task-set file.
        file: PathBuf,
    },
    /// Extreme-value fit of samples (one number per line).
    Evt {
        /// The samples file.
        file: PathBuf,
        /// Activations per block (default n/200, 10 … 1000).
        #[arg(long)]
        block_size: Option<usize>,
        /// Per-activation exceedance probabilities (repeatable).
        #[arg(long = "p", default_values_t = vec![1e-6, 1e-9])]
        probabilities: Vec<f64>,
    },
    /// Measure t_cc, t_enq and wake-up latencies on this host.
    Calibrate {
        /// Output file (JSON); stdout when absent.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Total measuring time in seconds.
        #[arg(long, default_value_t = 4.0)]
        duration: f64,
        /// SCHED_FIFO priority of the measuring threads.
        #[arg(long, default_value_t = 80)]
        priority: i32,
        /// Two CPUs, e.g. `0,1` (producer/waker, consumer/sleeper).
        #[arg(long, value_parser = parse_cpus)]
        cpus: Option<(usize, usize)>,
    },
    /// Per-stream latency bounds of an analysis input (JSON).
    Bound {
        /// The analysis input.
        input: PathBuf,
        /// Calibration file replacing the input's `host`.
        #[arg(long)]
        calibration: Option<PathBuf>,
    },
    /// Bounds checked against traces: report.html, report.md and report.json.
    Report {
        /// The analysis input.
        #[arg(long)]
        input: PathBuf,
        /// Calibration file replacing the input's `host`.
        #[arg(long)]
        calibration: Option<PathBuf>,
        /// Trace files written by the fusion node.
        #[arg(long = "trace", required = true, num_args = 1..)]
        traces: Vec<PathBuf>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Samples per stream a verdict should rest on; fewer is flagged with the time the
        /// target would take at the stream's rate.
        #[arg(long, default_value_t = wcet::report::DEFAULT_SAMPLE_TARGET)]
        sample_target: u64,
    },
}

fn parse_cpus(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s.split_once(',').ok_or("expected two CPUs, e.g. 0,1")?;
    Ok((
        a.trim().parse().map_err(|e| format!("{e}"))?,
        b.trim().parse().map_err(|e| format!("{e}"))?,
    ))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn load_input(path: &Path, calibration: Option<&Path>) -> Result<AnalysisInput> {
    let mut input: AnalysisInput = serde_json::from_str(&read(path)?)
        .with_context(|| format!("{}: not a valid analysis input", path.display()))?;
    if let Some(c) = calibration {
        input.host = serde_json::from_str::<Calibration>(&read(c)?)
            .with_context(|| format!("{}: not a calibration file", c.display()))?;
    }
    Ok(input)
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("wcet: error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    match cli.cmd {
        Cmd::Rta { file } => {
            let spec = wcet::rta::TaskSetSpec::parse(&read(&file)?)
                .with_context(|| file.display().to_string())?;
            let tasks = spec
                .validate()
                .with_context(|| file.display().to_string())?;
            let r = wcet::rta::analyze_set(&tasks, spec.horizon)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            if !r.schedulable {
                for t in &r.tasks {
                    match (&t.status, t.response_ns) {
                        (wcet::rta::TaskStatus::Schedulable, _) => {}
                        (wcet::rta::TaskStatus::DeadlineMiss, Some(resp)) => eprintln!(
                            "wcet: DEADLINE MISS: task `{}`: R = {resp} > D = {}",
                            t.name, t.deadline_ns
                        ),
                        (status, _) => eprintln!(
                            "wcet: UNSCHEDULABLE (no bound exists): task `{}`: {status:?}",
                            t.name
                        ),
                    }
                }
                return Ok(2);
            }
        }
        Cmd::Evt {
            file,
            block_size,
            probabilities,
        } => {
            let xs = wcet::evt::parse_samples(&read(&file)?)
                .map_err(anyhow::Error::msg)
                .with_context(|| file.display().to_string())?;
            let opts = wcet::evt::EvtOptions {
                block_size,
                probabilities,
                ..Default::default()
            };
            let r = wcet::evt::analyze(&xs, &opts).with_context(|| file.display().to_string())?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        Cmd::Calibrate {
            output,
            duration,
            priority,
            cpus,
        } => {
            if !(duration.is_finite() && duration > 0.0 && duration <= 3600.0) {
                bail!("--duration must be between 0 and 3600 seconds");
            }
            let cal = wcet::calibrate::run(&CalibrateOptions {
                duration: Duration::from_secs_f64(duration),
                priority,
                cpus,
            });
            for n in &cal.notes {
                eprintln!("wcet: note: {n}");
            }
            let json = serde_json::to_string_pretty(&cal)?;
            match output {
                Some(p) => {
                    std::fs::write(&p, json).with_context(|| format!("writing {}", p.display()))?
                }
                None => println!("{json}"),
            }
        }
        Cmd::Bound { input, calibration } => {
            let input = load_input(&input, calibration.as_deref())?;
            let r = wcet::bound::analyze(&input)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        Cmd::Report {
            input,
            calibration,
            traces,
            out,
            sample_target,
        } => {
            let input = load_input(&input, calibration.as_deref())?;
            let bounds = wcet::bound::analyze(&input)?;
            let readers = traces
                .iter()
                .map(|t| {
                    rtfuse_trace::TraceReader::open(t)
                        .with_context(|| format!("reading trace {}", t.display()))
                })
                .collect::<Result<Vec<_>>>()?;
            let options = wcet::report::ReportOptions { sample_target };
            let report = wcet::report::build_with(&input, &bounds, &readers, &options);
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            for (name, text) in [
                ("report.html", report.to_html()),
                ("report.md", report.to_markdown()),
                ("report.json", report.to_json()),
            ] {
                let p = out.join(name);
                std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
            }
            eprintln!("wcet: wrote {}/report.{{html,md,json}}", out.display());
            if !report.certified {
                for r in &report.not_certified_because {
                    eprintln!("wcet: NOT CERTIFIED: {r}");
                }
            }
            if !report.all_hold {
                for s in report
                    .streams
                    .iter()
                    .filter(|s| s.verdict != wcet::report::Verdict::Holds)
                {
                    eprintln!(
                        "wcet: VIOLATION: stream `{}`: {:?}, {} samples above the bound",
                        s.name, s.verdict, s.violation_count
                    );
                }
                return Ok(3);
            }
            if !report.certified {
                return Ok(4);
            }
        }
    }
    Ok(0)
}
