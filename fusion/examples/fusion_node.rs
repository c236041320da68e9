//! Runs the fusion node on the demo channels (`camera`, `lidar`, `imu`, `odom`) and prints its live
//! statistics every second until Ctrl-C. Start the drivers in other terminals (see README.md here).
//!
//! ```text
//! cargo run --release -p fusion --example fusion_node [-- --trace /tmp/demo.rtft]
//! ```

use fusion::node::{FusionNode, NodeConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Release);
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let mut cfg = NodeConfig::demo();
    if let Some(i) = args.iter().position(|a| a == "--trace") {
        cfg.trace_path = args.get(i + 1).map(Into::into);
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
    let handle = FusionNode::new(cfg)?.start()?;
    println!("fusion thread: {}", handle.rt_status());
    while !STOP.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_secs(1));
        println!("{}\n", handle.snapshot());
    }
    let report = handle.stop()?;
    println!("final:\n{}", report.stats);
    if let Some(t) = report.trace {
        println!(
            "trace {}: {} records, {} lost",
            t.path.display(),
            t.written,
            t.lost
        );
    }
    Ok(())
}
