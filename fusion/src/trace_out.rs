//! Writing latency traces without blocking the real-time thread.
//!
//! The fusion thread pushes one [`rtfuse_trace::Record`] per sample into a [`RecordSink`] (a
//! pre-allocated `ArrayQueue`; push never blocks or allocates, a full queue counts the record lost). A
//! non-real-time writer thread started by [`TraceOutput::start`] drains it into a `BufWriter<File>`
//! through [`rtfuse_trace::TraceWriter`]; [`TraceOutput::finish`] drains the rest and writes the
//! trailer with the number of records lost, so the reader reports `complete = true`.
//!
//! # Example
//! ```
//! use fusion::stats::RecordSink;
//! use fusion::trace_out::{host_header, TraceOutput};
//! use rtfuse_trace::{Record, TraceReader};
//! let dir = std::env::temp_dir().join(format!("trace-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("run.rtft");
//! let sink = RecordSink::with_capacity(1024);
//! let out = TraceOutput::start(&path, &host_header(vec![], None, "doc"), sink.clone()).unwrap();
//! sink.push(Record { stream: 0, seq: 1, t_dma_ns: 5, t_dequeue_ns: 9, ..Record::default() });
//! let summary = out.finish().unwrap();
//! assert_eq!((summary.written, summary.lost), (1, 0));
//! assert!(TraceReader::open(&path).unwrap().complete);
//! # std::fs::remove_dir_all(&dir).ok();
//! ```

use rtfuse_trace::{StreamInfo, TraceError, TraceHeader, TraceWriter};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::rt::RtStatus;
use crate::stats::RecordSink;

/// What a finished trace holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSummary {
    /// The file written.
    pub path: PathBuf,
    /// Records written (trailer excluded).
    pub written: u64,
    /// Records lost because the queue was full (also in the trailer).
    pub lost: u64,
}

/// A running trace writer thread.
pub struct TraceOutput {
    path: PathBuf,
    sink: RecordSink,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<u64, TraceError>>>,
}

impl TraceOutput {
    /// Creates `path` (truncating it), writes the header and starts the writer thread draining `sink`.
    ///
    /// # Errors
    /// The file cannot be created or the header written; the thread cannot be spawned.
    pub fn start(
        path: &Path,
        header: &TraceHeader,
        sink: RecordSink,
    ) -> Result<TraceOutput, TraceError> {
        let file = File::create(path)?;
        let mut writer = TraceWriter::new(BufWriter::with_capacity(1 << 20, file), header)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (s, q) = (stop.clone(), sink.clone());
        let thread = std::thread::Builder::new()
            .name("rtfuse-trace".into())
            .spawn(move || {
                loop {
                    // SYNC: Acquire pairs with the Release in `finish`: every push made before the stop
                    // request is visible to the drain below.
                    let stopping = s.load(Ordering::Acquire);
                    while let Some(r) = q.pop() {
                        writer.write(&r)?;
                    }
                    if stopping {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                let written = writer.written();
                writer.finish(q.lost())?;
                Ok(written)
            })?;
        Ok(TraceOutput {
            path: path.to_path_buf(),
            sink,
            stop,
            thread: Some(thread),
        })
    }

    /// The sink the real-time thread pushes into.
    pub fn sink(&self) -> &RecordSink {
        &self.sink
    }

    /// Drains every record pushed so far, writes the trailer and closes the file.
    /// Stop the producer first: records pushed after this call are not written.
    ///
    /// # Errors
    /// An I/O error of the writer thread (the file is then incomplete).
    pub fn finish(mut self) -> Result<TraceSummary, TraceError> {
        let written = self.stop_and_join()?;
        Ok(TraceSummary {
            path: self.path.clone(),
            written,
            lost: self.sink.lost(),
        })
    }

    fn stop_and_join(&mut self) -> Result<u64, TraceError> {
        // SYNC: Release pairs with the writer's Acquire load (see `start`).
        self.stop.store(true, Ordering::Release);
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| {
                Err(TraceError::Io(std::io::Error::other(
                    "trace writer thread panicked",
                )))
            }),
            None => Ok(0),
        }
    }
}

impl Drop for TraceOutput {
    fn drop(&mut self) {
        if let Err(e) = self.stop_and_join() {
            tracing::error!("trace {}: {e}", self.path.display());
        }
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A trace header describing this host and the fusion thread (`rt`), for `streams`.
pub fn host_header(streams: Vec<StreamInfo>, rt: Option<&RtStatus>, config: &str) -> TraceHeader {
    let kernel_version = read_trimmed("/proc/sys/kernel/version");
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let started_unix_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    TraceHeader {
        hostname: read_trimmed("/proc/sys/kernel/hostname"),
        kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        preempt_rt: kernel_version.contains("PREEMPT_RT")
            || Path::new("/sys/kernel/realtime").exists(),
        cpu_model,
        config: config.to_string(),
        fusion_policy: rt.map_or("SCHED_OTHER", |r| r.policy.as_str()).to_string(),
        fusion_priority: rt.map_or(0, |r| r.priority),
        fusion_cpu: rt.and_then(|r| r.cpu),
        started_unix_ns,
        // The node adds its slicing (it knows its configuration).
        fuse_slice_points: None,
        streams,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtfuse_trace::{Record, TraceReader};

    #[test]
    fn full_queue_is_counted_in_trailer_and_bad_path_is_an_error() {
        let dir = std::env::temp_dir().join(format!("trace-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lost.rtft");
        let sink = RecordSink::with_capacity(4);
        // Fill before the writer runs: 4 fit, 3 are lost.
        for i in 0..7 {
            sink.push(Record {
                seq: i,
                ..Record::default()
            });
        }
        let out = TraceOutput::start(&path, &host_header(vec![], None, "t"), sink).unwrap();
        let s = out.finish().unwrap();
        assert_eq!((s.written, s.lost), (4, 3));
        let r = TraceReader::open(&path).unwrap();
        assert!(r.complete);
        assert_eq!(r.lost, 3);
        assert_eq!(
            r.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        assert!(!r.header.kernel.is_empty());
        std::fs::remove_dir_all(&dir).ok();

        let bad = TraceOutput::start(
            Path::new("/nonexistent-dir/x.rtft"),
            &TraceHeader::default(),
            RecordSink::with_capacity(1),
        );
        assert!(matches!(bad, Err(TraceError::Io(_))));
    }
}
