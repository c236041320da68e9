//! Offline and auxiliary commands: record, replay, report, bound, bench, ros2-gateway.

use super::{failure, load};
use crate::cli::{
    BenchArgs, BoundArgs, Cli, ConfigArg, DurationConfig, RecordArgs, ReportArgs, EXIT_RUNTIME,
    EXIT_USAGE,
};

/// `rtfuse record`.
pub fn record(_cli: &Cli, a: &RecordArgs) -> anyhow::Result<u8> {
    let _cfg = load(&a.config)?;
    Err(failure(
        EXIT_RUNTIME,
        "not available in this build: the MCAP writer (fusion) has not landed yet",
    ))
}

/// `rtfuse replay`.
pub fn replay(_cli: &Cli, a: &ConfigArg) -> anyhow::Result<u8> {
    let _cfg = load(a)?;
    Err(failure(
        EXIT_RUNTIME,
        "not available in this build: MCAP replay (fusion) has not landed yet",
    ))
}

/// `rtfuse report`.
pub fn report(a: &ReportArgs) -> anyhow::Result<u8> {
    let _cfg = load(&a.config)?;
    Err(failure(
        EXIT_RUNTIME,
        "not available in this build: wcet::report has not landed yet",
    ))
}

/// `rtfuse bound`.
pub fn bound(a: &BoundArgs) -> anyhow::Result<u8> {
    let _cfg = load(&a.config)?;
    Err(failure(
        EXIT_RUNTIME,
        "not available in this build: wcet::bound wiring has not landed yet",
    ))
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
pub fn ros2_gateway(_cli: &Cli, a: &DurationConfig) -> anyhow::Result<u8> {
    let _cfg = load(&a.config)?;
    Err(failure(
        EXIT_RUNTIME,
        "not available in this build: ros2_plugin::gateway has not been wired yet",
    ))
}
