//! Shared helpers of the MCAP tests: the Python oracles (PyPI `mcap` + `mcap-ros2-support`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

/// A unique scratch path for this process and call.
pub fn scratch(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("rtfuse-mcap-{}-{n}-{tag}.mcap", std::process::id()))
}

/// Runs oracle `script` with `args`; fails loudly (naming the pip packages) if it fails.
fn oracle(script: &str, args: &[&std::ffi::OsStr]) -> Vec<u8> {
    let path = format!("{}/tests/oracles/{script}", env!("CARGO_MANIFEST_DIR"));
    let run = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .expect("python3 must be installed to run the MCAP oracles");
    assert!(
        run.status.success(),
        "the MCAP oracle {script} failed ({}); it needs: pip install mcap mcap-ros2-support\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    run.stdout
}

/// Writes a test file with the Python writer; returns its bytes and the writer's manifest.
pub fn python_file(args: &[&str]) -> (Vec<u8>, Vec<Value>) {
    let out = scratch("py");
    let mut all = vec![out.as_os_str()];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    let stdout = oracle("mcap_write.py", &all);
    let bytes = std::fs::read(&out).expect("the oracle wrote the file");
    let _ = std::fs::remove_file(&out);
    (
        bytes,
        serde_json::from_slice(&stdout).expect("manifest JSON"),
    )
}

/// Reads a file with the Python reader; returns its JSON.
pub fn python_read(path: &Path) -> Value {
    serde_json::from_slice(&oracle("mcap_read.py", &[path.as_os_str()])).expect("reader JSON")
}
