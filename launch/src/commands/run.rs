//! `rtfuse run` and `rtfuse check`.

use super::{config_cmd, failure, load};
use crate::cli::{
    CheckArgs, Cli, RunArgs, StatusMode, EXIT_INTERRUPTED, EXIT_OK, EXIT_PREFLIGHT, EXIT_RUNTIME,
};
use crate::preflight::{self, Verdict};
use crate::signals;
use crate::supervisor::{Options, Outcome, Supervisor};
use std::time::Duration;

/// `rtfuse check`: exit 0 unless a check fails (then 3).
pub fn check(a: &CheckArgs) -> anyhow::Result<u8> {
    let cfg = load(&a.config)?;
    let results = preflight::run_all(&cfg);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        println!("preflight for {} on this host:", cfg.display_name());
        preflight::print(&results, &mut std::io::stdout())?;
    }
    match preflight::worst(&results) {
        Verdict::Fail => Err(failure(
            EXIT_PREFLIGHT,
            "preflight failed: fix the FAIL lines above",
        )),
        Verdict::Warn => {
            if !a.json {
                println!(
                    "ready, with warnings (real-time guarantees are weaker where WARN says so)"
                );
            }
            Ok(EXIT_OK)
        }
        Verdict::Pass => {
            if !a.json {
                println!("ready");
            }
            Ok(EXIT_OK)
        }
    }
}

/// Flags a child gets so it logs like its parent, minus the chatter under a live status table.
fn child_flags(cli: &Cli) -> Vec<String> {
    if cli.verbose > 0 {
        vec![format!("-{}", "v".repeat(usize::from(cli.verbose)))]
    } else {
        vec![format!("-{}", "q".repeat(usize::from(cli.quiet.max(1))))]
    }
}

/// Seconds from the command line as a Duration.
pub fn duration_arg(secs: Option<f64>) -> anyhow::Result<Option<Duration>> {
    secs.map(|s| {
        Duration::try_from_secs_f64(s).map_err(|_| {
            failure(
                crate::cli::EXIT_USAGE,
                format!("--duration {s}: expected a number of seconds >= 0"),
            )
        })
    })
    .transpose()
}

/// `rtfuse run`.
pub fn run(cli: &Cli, a: &RunArgs) -> anyhow::Result<u8> {
    let cfg = load(&a.config)?;
    let duration = duration_arg(a.duration)?;
    print!("{}", config_cmd::summary(&cfg));
    let results = preflight::run_all(&cfg);
    let worst = preflight::worst(&results);
    if worst != Verdict::Pass {
        let shown: Vec<_> = results
            .iter()
            .filter(|r| r.verdict != Verdict::Pass)
            .cloned()
            .collect();
        preflight::print(&shown, &mut std::io::stdout())?;
    }
    if worst == Verdict::Fail && !a.no_preflight {
        return Err(failure(
            EXIT_PREFLIGHT,
            "preflight failed (see FAIL above; --no-preflight runs anyway)",
        ));
    }
    let stop = signals::install()?;
    let opts = Options {
        exe: std::env::current_exe()?,
        prefix: cli.prefix.clone(),
        child_flags: child_flags(cli),
        duration,
        stop_timeout: Duration::try_from_secs_f64(a.stop_timeout).unwrap_or(Duration::from_secs(5)),
        status: match a.status {
            StatusMode::Auto => Some(true),
            StatusMode::Plain => Some(false),
            StatusMode::Off => None,
        },
        segment_wait: Duration::from_secs(10),
    };
    let mut sup = Supervisor::new(&cfg, opts);
    sup.clean_stale()
        .map_err(|e| failure(EXIT_PREFLIGHT, format!("{e:#}")))?;
    match sup.run(stop)? {
        Outcome::Completed => {
            println!("stopped after --duration; every process exited and the segments are removed");
            Ok(EXIT_OK)
        }
        Outcome::Interrupted(sig) => {
            println!("stopped by signal {sig}; every process exited and the segments are removed");
            Ok(EXIT_INTERRUPTED)
        }
        Outcome::Failed(reason) => Err(failure(
            EXIT_RUNTIME,
            format!("deployment failed: {reason}"),
        )),
    }
}
