//! Helpers shared by the node tests (`node.rs`, `node_outputs.rs`, `steady_state.rs`).
#![allow(dead_code)] // each test binary uses a subset

use fusion::driver::meta::StreamKind;
use fusion::node::StreamSpec;
use fusion::rt::RtConfig;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A channel name unique to this process and call, so tests run in parallel.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "nd{}_{}_{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Ends the process if the test is still running after `secs` (a hang fails instead of blocking CI).
pub fn watchdog(secs: u64, what: &'static str) {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        eprintln!("WATCHDOG: {what} still running after {secs} s; aborting");
        std::process::exit(2);
    });
}

/// SCHED_FIFO at `prio`, memory locked, stack prefaulted.
pub fn rt(prio: i32) -> RtConfig {
    RtConfig {
        fifo_priority: Some(prio),
        cpu: None,
        lock_memory: true,
        prefault_stack_kib: 256,
    }
}

/// One input stream of the node.
pub fn spec(channel: &str, kind: StreamKind, rate_hz: f64) -> StreamSpec {
    StreamSpec {
        channel: channel.into(),
        kind,
        rate_hz,
    }
}
