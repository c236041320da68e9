//! Live status: what the node reports about its streams (a JSON snapshot it rewrites about once a
//! second) and what `/proc` says about every process's threads, drawn as a table.

use crate::procfs::ThreadSched;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// One stream as the node sees it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StreamStatus {
    /// Channel name.
    pub name: String,
    /// Samples received since start.
    pub received: u64,
    /// Samples per second over the last interval.
    pub rate_hz: f64,
    /// DMA complete → fusion start latency, median, µs.
    pub p50_us: f64,
    /// Same, 99th percentile, µs.
    pub p99_us: f64,
    /// Same, maximum, µs.
    pub max_us: f64,
    /// Samples lost (sequence gaps, keep-last overwrites).
    pub drops: u64,
    /// Samples rejected (invalid descriptors, bad payloads).
    pub errors: u64,
    /// Times the channel was reconnected (its publisher restarted).
    #[serde(default)]
    pub reconnects: u64,
}

/// The node's snapshot file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeSnapshot {
    /// Seconds since the node started.
    pub uptime_s: f64,
    /// Policy the fusion thread actually runs under ("SCHED_FIFO" or "SCHED_OTHER").
    pub fusion_policy: String,
    /// Its priority.
    pub fusion_priority: i32,
    /// Per stream.
    pub streams: Vec<StreamStatus>,
    /// Fused outputs produced (sets synchronised, EKF updates, …), by name.
    #[serde(default)]
    pub outputs: Vec<(String, u64)>,
}

impl NodeSnapshot {
    /// Reads a snapshot; `None` while the file does not exist yet or is being replaced.
    pub fn read(path: &Path) -> Option<NodeSnapshot> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Writes the snapshot atomically (temporary file, then rename).
    ///
    /// # Errors
    /// I/O errors.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, path)
    }
}

/// One supervised process, for display.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessStatus {
    /// "driver camera", "node", …
    pub name: String,
    /// Pid (None while waiting to restart).
    pub pid: Option<i32>,
    /// running / restarting in N ms / stopped / failed.
    pub state: String,
    /// Restarts so far.
    pub restarts: u32,
    /// Threads with their scheduling.
    pub threads: Vec<ThreadSched>,
}

fn thread_summary(ts: &[ThreadSched]) -> String {
    // Group identical (name, policy, prio) to keep the line short.
    let mut groups: Vec<(String, usize)> = Vec::new();
    for t in ts {
        let key = if t.rt_priority > 0 {
            format!("{}:{}/{}", t.name, t.policy, t.rt_priority)
        } else {
            format!("{}:{}", t.name, t.policy)
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => groups.push((key, 1)),
        }
    }
    groups
        .into_iter()
        .map(|(k, n)| if n > 1 { format!("{k}×{n}") } else { k })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The status table as text.
pub fn render(title: &str, node: Option<&NodeSnapshot>, procs: &[ProcessStatus]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{title}");
    let _ = writeln!(
        s,
        "{:<12} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}",
        "STREAM", "RATE Hz", "p50 µs", "p99 µs", "max µs", "RECEIVED", "DROPS", "ERRORS"
    );
    match node {
        None => {
            let _ = writeln!(s, "(waiting for the node's first stats)");
        }
        Some(n) => {
            for st in &n.streams {
                let _ = writeln!(
                    s,
                    "{:<12} {:>8.1} {:>9.1} {:>9.1} {:>9.1} {:>9} {:>7} {:>7}",
                    st.name,
                    st.rate_hz,
                    st.p50_us,
                    st.p99_us,
                    st.max_us,
                    st.received,
                    st.drops,
                    st.errors
                );
            }
            let _ = writeln!(
                s,
                "fusion thread: {} priority {}",
                n.fusion_policy, n.fusion_priority
            );
            if !n.outputs.is_empty() {
                let outs: Vec<String> = n.outputs.iter().map(|(k, v)| format!("{k} {v}")).collect();
                let _ = writeln!(s, "fused: {}", outs.join(", "));
            }
        }
    }
    let _ = writeln!(
        s,
        "{:<18} {:>7} {:<12} {:>8}  THREADS (name:policy/prio)",
        "PROCESS", "PID", "STATE", "RESTARTS"
    );
    for p in procs {
        let _ = writeln!(
            s,
            "{:<18} {:>7} {:<12} {:>8}  {}",
            p.name,
            p.pid.map_or_else(|| "-".to_string(), |x| x.to_string()),
            p.state,
            p.restarts,
            thread_summary(&p.threads)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trip_and_render() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stats.json");
        let snap = NodeSnapshot {
            uptime_s: 1.5,
            fusion_policy: "SCHED_FIFO".into(),
            fusion_priority: 80,
            streams: vec![StreamStatus {
                name: "imu".into(),
                received: 600,
                rate_hz: 400.0,
                ..Default::default()
            }],
            outputs: vec![("sets_fused".into(), 12), ("ekf_late".into(), 3)],
        };
        snap.write(&path).unwrap();
        assert_eq!(NodeSnapshot::read(&path), Some(snap.clone()));
        let procs = [ProcessStatus {
            name: "node".into(),
            pid: Some(7),
            state: "running".into(),
            restarts: 0,
            threads: vec![
                ThreadSched {
                    tid: 7,
                    name: "rtfuse".into(),
                    policy: "OTHER",
                    rt_priority: 0,
                    cpu: 0,
                },
                ThreadSched {
                    tid: 8,
                    name: "fusion".into(),
                    policy: "FIFO",
                    rt_priority: 80,
                    cpu: 1,
                },
            ],
        }];
        let text = render("t", Some(&snap), &procs);
        assert!(text.contains("imu"), "{text}");
        assert!(text.contains("fusion:FIFO/80"), "{text}");
        assert!(text.contains("SCHED_FIFO priority 80"), "{text}");
        assert!(text.contains("fused: sets_fused 12, ekf_late 3"), "{text}");
    }
}
