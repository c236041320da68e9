//! `rtfuse config check` and `rtfuse config show`.

use super::{failure, load};
use crate::cli::{ConfigArg, EXIT_OK, EXIT_USAGE};
use crate::config::{pinned_memory, Config, LoadError};
use crate::preflight::mib;
use std::path::PathBuf;

/// Prints what a valid config needs: channels with their pinned memory, and processes.
pub fn summary(cfg: &Config) -> String {
    let d = &cfg.deployment;
    let (per, total) = pinned_memory(d);
    let mut s = format!(
        "{}: ok — deployment `{}`: {} channels, {} drivers ({} as processes), node with {} streams\n",
        cfg.display_name(),
        d.name,
        d.channels.len(),
        d.drivers.len(),
        d.drivers.iter().filter(|x| x.process).count(),
        d.node.streams.len()
    );
    for (name, bytes) in &per {
        s.push_str(&format!(
            "  channel {name:<14} {:>10} pinned\n",
            mib(*bytes)
        ));
    }
    s.push_str(&format!(
        "  pinned memory needed: {} ({total} bytes)\n",
        mib(total)
    ));
    s
}

/// `rtfuse config check FILE…`: exit 0 when all are valid, 2 otherwise.
pub fn check(files: &[PathBuf]) -> anyhow::Result<u8> {
    let targets: Vec<Option<PathBuf>> = if files.is_empty() {
        vec![None]
    } else {
        files.iter().cloned().map(Some).collect()
    };
    let mut bad = 0;
    for t in &targets {
        match Config::load(t.as_deref()) {
            Ok(cfg) => print!("{}", summary(&cfg)),
            Err(LoadError::Invalid(e)) => {
                bad += 1;
                eprintln!("{e}");
            }
            Err(e) => {
                bad += 1;
                eprintln!("{e}");
            }
        }
    }
    if bad > 0 {
        return Err(failure(
            EXIT_USAGE,
            format!("{bad} of {} config file(s) invalid", targets.len()),
        ));
    }
    Ok(EXIT_OK)
}

/// `rtfuse config show`: the config with defaults filled in, as TOML.
pub fn show(arg: &ConfigArg) -> anyhow::Result<u8> {
    let cfg = load(arg)?;
    let text = toml::to_string_pretty(&cfg.deployment)?;
    print!("{text}");
    Ok(EXIT_OK)
}
