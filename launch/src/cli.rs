//! Command-line interface (clap derive): every command with its help and examples.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: a runtime failure (a process died for good, an I/O error).
pub const EXIT_RUNTIME: u8 = 1;
/// Exit status: bad usage or an invalid config.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: the host failed a preflight check.
pub const EXIT_PREFLIGHT: u8 = 3;
/// Exit status: stopped by Ctrl-C or SIGTERM before `--duration` ran out (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

const AFTER_HELP: &str = "\
Exit codes: 0 ok, 1 runtime failure, 2 usage or config error, 3 preflight failure, 130 interrupted.
Environment: RTFUSE_PREFIX prefixes every segment name (same as --prefix); RUST_LOG overrides -v/-q.

Examples:
  rtfuse run                              # the built-in demo: 4 sensors, 1 fusion node
  rtfuse run examples/vlp16-udp.toml --duration 10
  rtfuse check                            # is this host ready for real-time?
  rtfuse config check examples/*.toml";

/// rtfuse: real-time sensor fusion over zero-copy shared memory.
#[derive(Debug, Parser)]
#[command(name = "rtfuse", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less log output (-q warnings only, -qq errors only).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
    /// Prefix for every shared-memory segment name (`/dev/shm/rtfuse.<PREFIX><channel>`), so that
    /// several deployments can run side by side.
    #[arg(long, global = true, env = "RTFUSE_PREFIX", default_value = "")]
    pub prefix: String,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// A config file argument; the built-in demo when absent.
#[derive(Debug, Args, Clone)]
pub struct ConfigArg {
    /// Deployment file (TOML). Default: the built-in demo (examples/demo.toml).
    pub config: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a deployment: preflight, start drivers and the fusion node, show live status, stop cleanly.
    #[command(after_help = "\
Starts every driver with `process = true` as its own process (`rtfuse driver NAME`), then the fusion
node (`rtfuse node`), restarts crashed drivers with back-off, and on Ctrl-C or SIGTERM stops them in
reverse order and removes their segments.

Examples:
  rtfuse run
  rtfuse run examples/demo.toml --duration 5
  rtfuse run my-robot.toml --no-preflight --status plain")]
    Run(RunArgs),
    /// Check this host for real-time operation (memlock, SCHED_FIFO, RT throttling, CPUs, /dev/shm).
    #[command(after_help = "\
Each check prints PASS, WARN or FAIL and how to fix it. Exit status 3 when any check fails.

Examples:
  rtfuse check
  rtfuse check examples/vlp16-udp.toml --json")]
    Check(CheckArgs),
    /// Run the fusion node alone (what `run` starts).
    #[command(after_help = "\
Subscribes to node.streams (waiting for their drivers), runs the SCHED_FIFO fusion thread and runs
the drivers with `process = false` as threads.

Examples:
  rtfuse node
  rtfuse node examples/demo.toml --duration 10")]
    Node(NodeArgs),
    /// Run one driver alone (what `run` starts for each driver process).
    #[command(after_help = "\
Examples:
  rtfuse driver camera
  rtfuse driver lidar examples/vlp16-udp.toml")]
    Driver(DriverArgs),
    /// List rtfuse shared-memory segments, their owners and whether those are alive.
    #[command(after_help = "Examples:\n  rtfuse ls\n  rtfuse ls --json")]
    Ls(LsArgs),
    /// Remove stale segments whose owners are dead (never live ones).
    #[command(after_help = "Examples:\n  rtfuse clean\n  rtfuse clean --dry-run")]
    Clean(CleanArgs),
    /// Record channels into an MCAP file.
    #[command(
        after_help = "Examples:\n  rtfuse record --out run.mcap --duration 10\n  rtfuse record my.toml --channel imu --channel odometry --out imu.mcap"
    )]
    Record(RecordArgs),
    /// Replay an MCAP file into channels (see the mcap-replay driver kind).
    #[command(
        after_help = "Every topic goes into its own channel (/camera/image_raw -> camera.image_raw).\n\nExamples:\n  rtfuse replay recording.mcap\n  rtfuse replay recording.mcap --speed 0   # as fast as possible"
    )]
    Replay(ReplayArgs),
    /// Write the latency-bound (WCET) report from traces.
    #[command(
        after_help = "Examples:\n  rtfuse report --trace rtfuse-trace.bin\n  rtfuse report my.toml --trace a.bin --trace b.bin --out report/"
    )]
    Report(ReportArgs),
    /// Print the latency bound per stream from the config and a calibration.
    #[command(
        after_help = "Examples:\n  rtfuse bound\n  rtfuse bound my.toml --calibration host.json"
    )]
    Bound(BoundArgs),
    /// Measure this host (t_cc, t_enq, wake-up latencies) and save it for `bound` and `report`.
    #[command(
        after_help = "Examples:\n  rtfuse calibrate --out host.json\n  rtfuse calibrate my.toml --seconds 10 --out host.json"
    )]
    Calibrate(CalibrateArgs),
    /// Run the benchmark programs (rtfuse-bench) with the given arguments.
    #[command(after_help = "Examples:\n  rtfuse bench -- --help\n  rtfuse bench -- latency")]
    Bench(BenchArgs),
    /// Run the ROS 2 gateway for the config's [[ros2.bridge]] entries.
    #[command(
        name = "ros2-gateway",
        after_help = "Examples:\n  rtfuse ros2-gateway my.toml"
    )]
    Ros2Gateway(DurationConfig),
    /// Config tools.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `rtfuse config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate config files; print the pinned memory each needs.
    #[command(after_help = "\
Every error names the file, line and column, what was expected and what was found.

Examples:
  rtfuse config check examples/demo.toml
  rtfuse config check examples/*.toml")]
    Check {
        /// Files to check (none: the built-in demo).
        files: Vec<PathBuf>,
    },
    /// Print a config with its defaults filled in (the built-in demo when none is given).
    #[command(after_help = "Examples:\n  rtfuse config show > my-robot.toml")]
    Show(ConfigArg),
}

/// How `run` shows live status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusMode {
    /// A table redrawn in place on a terminal, plain lines otherwise.
    Auto,
    /// Plain lines, one block per refresh.
    Plain,
    /// No live status (final stats only).
    Off,
}

/// `rtfuse run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    /// Config.
    pub config: ConfigArg,
    /// Stop after this many seconds (exit status 0), as if Ctrl-C had been pressed.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Skip the host preflight (failures then only warn).
    #[arg(long)]
    pub no_preflight: bool,
    /// Live status display.
    #[arg(long, value_enum, default_value_t = StatusMode::Auto)]
    pub status: StatusMode,
    /// Seconds to wait for a process to stop after SIGTERM before SIGKILL.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub stop_timeout: f64,
}

/// `rtfuse check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    /// Config.
    pub config: ConfigArg,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rtfuse node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(flatten)]
    /// Config.
    pub config: ConfigArg,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Write a stats snapshot (JSON) to this file about once a second (the supervisor reads it).
    #[arg(long, value_name = "FILE")]
    pub stats_file: Option<PathBuf>,
}

/// `rtfuse driver`.
#[derive(Debug, Args)]
pub struct DriverArgs {
    /// Driver name from the config.
    pub name: String,
    #[command(flatten)]
    /// Config.
    pub config: ConfigArg,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
}

/// `rtfuse ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rtfuse clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Say what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `rtfuse record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    #[command(flatten)]
    /// Config.
    pub config: ConfigArg,
    /// Channels to record (default: every channel of the config).
    #[arg(long = "channel", value_name = "NAME")]
    pub channels: Vec<String>,
    /// Output MCAP file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
}

/// `rtfuse replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// rosbag2 MCAP file (cdr encoding).
    pub file: PathBuf,
    /// Speed: 1 is the recorded rate, 2 twice as fast, 0 as fast as possible.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
}

/// `rtfuse report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    /// Config.
    pub config: ConfigArg,
    /// Trace files written by the node (default: the config's node.outputs.trace).
    #[arg(long = "trace", value_name = "FILE")]
    pub traces: Vec<PathBuf>,
    /// Calibration file (default: the config's report.calibration, else calibrate now).
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Output directory (default: the config's report.dir).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seconds to calibrate for when no calibration file is given.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
}

/// `rtfuse calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    #[command(flatten)]
    /// Config (its fusion-thread priority is used).
    pub config: ConfigArg,
    /// Where to save the calibration (JSON).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Measuring time in seconds.
    #[arg(long, default_value_t = 4.0)]
    pub seconds: f64,
}

/// `rtfuse bound`.
#[derive(Debug, Args)]
pub struct BoundArgs {
    #[command(flatten)]
    /// Config.
    pub config: ConfigArg,
    /// Calibration file (default: the config's report.calibration, else calibrate now).
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Traces to take service times from where node.timing does not give them.
    #[arg(long = "trace", value_name = "FILE")]
    pub traces: Vec<PathBuf>,
    /// Seconds to calibrate for when no calibration file is given.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rtfuse bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Arguments passed to the benchmark program.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// A config and an optional duration.
#[derive(Debug, Args)]
pub struct DurationConfig {
    #[command(flatten)]
    /// Config.
    pub config: ConfigArg,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
}
