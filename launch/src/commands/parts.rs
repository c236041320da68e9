//! `rtfuse node` and `rtfuse driver NAME`: one part of a deployment, as the supervisor starts it.

use super::{failure, load};
use crate::cli::{Cli, DriverArgs, NodeArgs, EXIT_RUNTIME, EXIT_USAGE};

/// `rtfuse node`.
pub fn node(_cli: &Cli, a: &NodeArgs) -> anyhow::Result<u8> {
    let _cfg = load(&a.config)?;
    Err(failure(
        EXIT_RUNTIME,
        "not available in this build: the fusion node (fusion::node) has not landed yet",
    ))
}

/// `rtfuse driver NAME`.
pub fn driver(_cli: &Cli, a: &DriverArgs) -> anyhow::Result<u8> {
    let cfg = load(&a.config)?;
    if cfg.driver(&a.name).is_none() {
        let names: Vec<&str> = cfg
            .deployment
            .drivers
            .iter()
            .map(|d| d.name.get_ref().as_str())
            .collect();
        return Err(failure(
            EXIT_USAGE,
            format!(
                "no driver `{}` in {}; expected one of: {}",
                a.name,
                cfg.display_name(),
                names.join(", ")
            ),
        ));
    }
    Err(failure(
        EXIT_RUNTIME,
        "not available in this build: the sensor drivers (fusion::driver) have not landed yet",
    ))
}
