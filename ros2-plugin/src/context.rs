//! DDS participants with `ROS_DOMAIN_ID` honoured.

use ros2_client::{Context, ContextOptions};

use crate::error::PluginError;

/// Highest domain id ROS 2 allows (the RTPS port formula overflows above 232).
pub const MAX_DOMAIN_ID: u16 = 232;

/// The domain id from `ROS_DOMAIN_ID`, 0 when unset or empty (as in ROS 2).
///
/// # Errors
/// [`PluginError::BadDomainId`] for anything but an integer in 0..=232.
pub fn domain_id_from_env() -> Result<u16, PluginError> {
    match std::env::var("ROS_DOMAIN_ID") {
        Err(_) => Ok(0),
        Ok(s) if s.trim().is_empty() => Ok(0),
        Ok(s) => parse_domain_id(&s),
    }
}

/// Parses a domain id (0..=232).
///
/// # Errors
/// [`PluginError::BadDomainId`].
pub fn parse_domain_id(s: &str) -> Result<u16, PluginError> {
    match s.trim().parse::<u16>() {
        Ok(id) if id <= MAX_DOMAIN_ID => Ok(id),
        _ => Err(PluginError::BadDomainId(s.to_owned())),
    }
}

/// A ros2-client context on `domain` (or on `ROS_DOMAIN_ID` when `None`). ros2-client's own
/// `Context::new()` always uses domain 0; this goes through `ContextOptions`.
///
/// # Errors
/// A bad `ROS_DOMAIN_ID` or a DDS participant that cannot be created.
pub fn new_context(domain: Option<u16>) -> Result<Context, PluginError> {
    let id = match domain {
        Some(id) if id <= MAX_DOMAIN_ID => id,
        Some(id) => return Err(PluginError::BadDomainId(id.to_string())),
        None => domain_id_from_env()?,
    };
    Context::with_options(ContextOptions::new().domain_id(id))
        .map_err(|e| PluginError::dds(&format!("domain {id}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_ids_are_validated() {
        assert_eq!(parse_domain_id("0").unwrap(), 0);
        assert_eq!(parse_domain_id(" 232 ").unwrap(), 232);
        for bad in ["233", "-1", "x", "1.5", "70000"] {
            assert!(parse_domain_id(bad).is_err(), "{bad}");
        }
    }
}
