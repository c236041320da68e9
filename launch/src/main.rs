//! `rtfuse`: the command-line front end of rtfuse (see `rtfuse --help`).

use clap::Parser;
use launch::cli::{Cli, EXIT_RUNTIME};
use launch::commands::{self, Failure};
use std::process::ExitCode;

fn init_logging(verbose: u8, quiet: u8) {
    let level = match (verbose, quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // The DDS stack logs every discovery step at info: keep it to warnings unless asked.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!("{level},rustdds=warn,ros2_client=warn"))
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match commands::dispatch(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e.downcast_ref::<Failure>().map_or(EXIT_RUNTIME, |f| f.code);
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}
