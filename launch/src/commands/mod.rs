//! The commands behind `rtfuse`.

mod config_cmd;
mod parts;
mod run;
mod segments;
mod tools;

use crate::cli::{Cli, Command, ConfigArg, ConfigCommand, EXIT_USAGE};
use crate::config::{Config, LoadError};
use std::fmt;

/// An error with the exit status it must produce.
#[derive(Debug)]
pub struct Failure {
    /// Exit status.
    pub code: u8,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// An error that exits with `code`.
pub fn failure(code: u8, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        code,
        message: message.into(),
    })
}

/// Loads the config named by `arg` (the demo when none); an invalid config exits with status 2.
///
/// # Errors
/// A [`Failure`] with [`EXIT_USAGE`] for unreadable or invalid files.
pub fn load(arg: &ConfigArg) -> anyhow::Result<Config> {
    Config::load(arg.config.as_deref()).map_err(|e| match e {
        LoadError::Invalid(c) => failure(EXIT_USAGE, c.to_string()),
        other => failure(EXIT_USAGE, other.to_string()),
    })
}

/// Checks a segment-name prefix: what shm-transport accepts in a channel name.
fn check_prefix(prefix: &str) -> anyhow::Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    shm_transport::validate_name(prefix).map_err(|e| {
        failure(
            EXIT_USAGE,
            format!("--prefix / RTFUSE_PREFIX `{prefix}`: {e}"),
        )
    })
}

/// Runs the command; returns the exit status.
///
/// # Errors
/// Failures, with their exit status as a [`Failure`] where it is not 1.
pub fn dispatch(cli: &Cli) -> anyhow::Result<u8> {
    check_prefix(&cli.prefix)?;
    match &cli.command {
        Command::Run(a) => run::run(cli, a),
        Command::Check(a) => run::check(a),
        Command::Node(a) => parts::node(cli, a),
        Command::Driver(a) => parts::driver(cli, a),
        Command::Ls(a) => segments::ls(a),
        Command::Clean(a) => segments::clean(a),
        Command::Record(a) => tools::record(cli, a),
        Command::Replay(a) => tools::replay(cli, a),
        Command::Report(a) => tools::report(cli, a),
        Command::Bound(a) => tools::bound(cli, a),
        Command::Calibrate(a) => tools::calibrate(a),
        Command::Bench(a) => tools::bench(a),
        Command::Ros2Gateway(a) => tools::ros2_gateway(cli, a),
        Command::Config(ConfigCommand::Check { files }) => config_cmd::check(files),
        Command::Config(ConfigCommand::Show(a)) => config_cmd::show(a),
    }
}
