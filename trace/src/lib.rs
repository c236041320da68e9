//! The rtfuse latency-trace format, version 1.
//!
//! The fusion node writes one trace file per run; the `wcet` analyzer reads it. The format is small,
//! binary and versioned so that a million samples cost 64 MB and load in well under a second.
//!
//! # Layout (all integers little-endian)
//! ```text
//! offset 0   magic            8 bytes  b"RTFTRACE"
//! offset 8   version          u32      FORMAT_VERSION (1)
//! offset 12  header_len       u32      length of the JSON header that follows
//! offset 16  header           JSON     a `TraceHeader`
//! then       records          64 bytes each, a `Record` (see `Record::to_bytes`)
//! last       trailer          one 64-byte record with `FLAG_TRAILER`: `seq` = records written,
//!                             `t_sensor_ns` = records lost (trace queue full)
//! ```
//! A file without a trailer was cut short (the node crashed or was killed): the reader still returns
//! every whole record, and says `complete = false` so an analysis can refuse to certify it.
//!
//! Timestamps are `CLOCK_MONOTONIC` nanoseconds of the host that wrote the trace. A stage that did not
//! happen (for example no sensor stamp) is 0.
//!
//! Record bytes 4..8 hold the fusion thread's CPU time for the step that fused the sample
//! (`CLOCK_THREAD_CPUTIME_ID`, ns, u32, saturating; `Record::fuse_cpu_ns`): the work itself,
//! without the time the thread was preempted or stalled, which the wall-clock span
//! `t_fuse_end_ns − t_fuse_start_ns` includes. 0 means not measured (traces written before it was,
//! which had these bytes reserved and zero, read the same way).
//!
//! # Example
//! ```
//! use rtfuse_trace::{Record, TraceHeader, TraceReader, TraceWriter, StreamInfo};
//! let header = TraceHeader {
//!     streams: vec![StreamInfo { id: 0, name: "imu".into(), kind: "imu".into(), rate_hz: 400.0,
//!                                payload_bytes: 64 }],
//!     ..TraceHeader::default()
//! };
//! let mut buf = Vec::new();
//! let mut w = TraceWriter::new(&mut buf, &header).unwrap();
//! w.write(&Record { stream: 0, seq: 1, t_dma_ns: 10, t_dequeue_ns: 25, ..Record::default() }).unwrap();
//! w.finish(0).unwrap();
//! let r = TraceReader::from_bytes(&buf).unwrap();
//! assert!(r.complete);
//! assert_eq!(r.records[0].dma_to_dequeue_ns(), Some(15));
//! ```

use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::path::Path;

/// File magic.
pub const MAGIC: [u8; 8] = *b"RTFTRACE";
/// Format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Size of one record in bytes.
pub const RECORD_SIZE: usize = 64;
/// Largest JSON header accepted (a hostile file cannot make the reader allocate more).
pub const MAX_HEADER_LEN: u32 = 1 << 20;

/// Record flag: the fusion thread ran under SCHED_FIFO when it handled this sample.
pub const FLAG_SCHED_FIFO: u16 = 1 << 0;
/// Record flag: a gap in sequence numbers preceded this sample (samples were dropped upstream).
pub const FLAG_GAP_BEFORE: u16 = 1 << 1;
/// Record flag: this record is the trailer (see the module docs).
pub const FLAG_TRAILER: u16 = 1 << 15;

/// One stream described in the header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StreamInfo {
    /// Stream id used in records.
    pub id: u16,
    /// Channel or stream name.
    pub name: String,
    /// Sensor kind ("camera", "lidar", "imu", "odometry", …).
    pub kind: String,
    /// Nominal rate in Hz.
    pub rate_hz: f64,
    /// Nominal payload size in bytes.
    pub payload_bytes: u64,
}

/// What the trace says about the host and the fusion thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TraceHeader {
    /// Host name.
    #[serde(default)]
    pub hostname: String,
    /// Kernel release (`uname -r`).
    #[serde(default)]
    pub kernel: String,
    /// Whether the kernel is PREEMPT_RT.
    #[serde(default)]
    pub preempt_rt: bool,
    /// CPU model name.
    #[serde(default)]
    pub cpu_model: String,
    /// Name of the deployment config that produced the trace.
    #[serde(default)]
    pub config: String,
    /// Scheduling policy the fusion thread actually ran under ("SCHED_FIFO" or "SCHED_OTHER").
    #[serde(default)]
    pub fusion_policy: String,
    /// Fusion thread priority (SCHED_FIFO priority, 0 under SCHED_OTHER).
    #[serde(default)]
    pub fusion_priority: i32,
    /// CPU the fusion thread was pinned to, if any.
    #[serde(default)]
    pub fusion_cpu: Option<usize>,
    /// Wall-clock time the trace started, ns since the Unix epoch.
    #[serde(default)]
    pub started_unix_ns: u64,
    /// Points of a LiDAR scan the fusion thread projects in one slice of a synchronised set's
    /// fusion, when it fuses sets in slices and serves its other streams between two slices;
    /// `None` (absent) when sets are fused in one piece or not at all. The records of a set still
    /// span its whole fusion (fuse start before the first slice, fuse end after the last), so the
    /// fuse spans of samples served between two slices lie inside it. The longest slice measured is
    /// in the node's stats snapshot (`fuse_slice_max_ns`). Added within format version 1: files
    /// without it read as `None`, readers that predate it ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuse_slice_points: Option<u64>,
    /// The streams recorded.
    pub streams: Vec<StreamInfo>,
}

/// One sample's stage timestamps (`CLOCK_MONOTONIC` ns; 0 = stage absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Record {
    /// Stream id (see `StreamInfo::id`).
    pub stream: u16,
    /// `FLAG_*` bits.
    pub flags: u16,
    /// Sequence number within the stream.
    pub seq: u64,
    /// Sensor (acquisition) stamp.
    pub t_sensor_ns: u64,
    /// "DMA complete": the payload is in the slab.
    pub t_dma_ns: u64,
    /// Descriptor enqueued.
    pub t_enqueue_ns: u64,
    /// Descriptor dequeued by the fusion thread.
    pub t_dequeue_ns: u64,
    /// Fusion of the set containing this sample started.
    pub t_fuse_start_ns: u64,
    /// Fusion of that set ended.
    pub t_fuse_end_ns: u64,
    /// CPU time the fusion thread spent on that step (ns; 0 = not measured). A set fused in slices
    /// counts its slices only, not the samples of other streams served between them.
    pub fuse_cpu_ns: u32,
}

impl Record {
    /// Encodes the record in its 64-byte wire form.
    pub fn to_bytes(&self) -> [u8; RECORD_SIZE] {
        let mut b = [0u8; RECORD_SIZE];
        b[0..2].copy_from_slice(&self.stream.to_le_bytes());
        b[2..4].copy_from_slice(&self.flags.to_le_bytes());
        b[4..8].copy_from_slice(&self.fuse_cpu_ns.to_le_bytes());
        let words = [
            self.seq,
            self.t_sensor_ns,
            self.t_dma_ns,
            self.t_enqueue_ns,
            self.t_dequeue_ns,
            self.t_fuse_start_ns,
            self.t_fuse_end_ns,
        ];
        for (i, w) in words.iter().enumerate() {
            b[8 + 8 * i..16 + 8 * i].copy_from_slice(&w.to_le_bytes());
        }
        b
    }

    /// Decodes a record from its 64-byte wire form.
    pub fn from_bytes(b: &[u8; RECORD_SIZE]) -> Record {
        let u64_at = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[8 + 8 * i..16 + 8 * i]);
            u64::from_le_bytes(w)
        };
        Record {
            stream: u16::from_le_bytes([b[0], b[1]]),
            flags: u16::from_le_bytes([b[2], b[3]]),
            seq: u64_at(0),
            t_sensor_ns: u64_at(1),
            t_dma_ns: u64_at(2),
            t_enqueue_ns: u64_at(3),
            t_dequeue_ns: u64_at(4),
            t_fuse_start_ns: u64_at(5),
            t_fuse_end_ns: u64_at(6),
            fuse_cpu_ns: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// The latency the WCET bound covers: "DMA complete" to "fusion thread reads the data".
    /// `None` when either stamp is absent or they are out of order.
    pub fn dma_to_dequeue_ns(&self) -> Option<u64> {
        stage(self.t_dma_ns, self.t_dequeue_ns)
    }

    /// "DMA complete" to "fusion start".
    pub fn dma_to_fuse_start_ns(&self) -> Option<u64> {
        stage(self.t_dma_ns, self.t_fuse_start_ns)
    }

    /// The fusion thread's CPU time for the step, when measured.
    pub fn fuse_cpu(&self) -> Option<u64> {
        (self.fuse_cpu_ns > 0).then_some(u64::from(self.fuse_cpu_ns))
    }
}

fn stage(from: u64, to: u64) -> Option<u64> {
    (from != 0 && to != 0 && to >= from).then(|| to - from)
}

/// Errors reading or writing a trace.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// Underlying I/O failed.
    #[error("trace I/O: {0}")]
    Io(#[from] io::Error),
    /// The file does not start with `RTFTRACE`.
    #[error("not an rtfuse trace (bad magic)")]
    BadMagic,
    /// Written by another format version.
    #[error("trace format version {found}, this build reads version {FORMAT_VERSION}")]
    Version {
        /// Version found in the file.
        found: u32,
    },
    /// The header is malformed.
    #[error("trace header: {0}")]
    Header(String),
}

/// Writes a trace. Buffer the writer (`BufWriter`) for speed; this type does no buffering itself.
pub struct TraceWriter<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> TraceWriter<W> {
    /// Writes the magic, version and header.
    ///
    /// # Errors
    /// I/O errors of `out`.
    pub fn new(mut out: W, header: &TraceHeader) -> Result<Self, TraceError> {
        let json = serde_json::to_vec(header).map_err(|e| TraceError::Header(e.to_string()))?;
        out.write_all(&MAGIC)?;
        out.write_all(&FORMAT_VERSION.to_le_bytes())?;
        out.write_all(&(json.len() as u32).to_le_bytes())?;
        out.write_all(&json)?;
        Ok(TraceWriter { out, written: 0 })
    }

    /// Appends one record.
    ///
    /// # Errors
    /// I/O errors of the underlying writer.
    pub fn write(&mut self, r: &Record) -> Result<(), TraceError> {
        self.out.write_all(&r.to_bytes())?;
        self.written += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Writes the trailer (with the number of records the producer had to drop) and flushes.
    ///
    /// # Errors
    /// I/O errors of the underlying writer.
    pub fn finish(mut self, lost: u64) -> Result<W, TraceError> {
        let trailer = Record {
            stream: u16::MAX,
            flags: FLAG_TRAILER,
            seq: self.written,
            t_sensor_ns: lost,
            ..Record::default()
        };
        self.out.write_all(&trailer.to_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A trace read back into memory.
#[derive(Debug, Clone)]
pub struct TraceReader {
    /// The header.
    pub header: TraceHeader,
    /// Every whole record, trailer excluded.
    pub records: Vec<Record>,
    /// True when the trailer was present and its count matched.
    pub complete: bool,
    /// Records the writer reported lost (0 when incomplete).
    pub lost: u64,
    /// Bytes after the last whole record (a torn write at a crash).
    pub trailing_bytes: usize,
}

impl TraceReader {
    /// Reads a trace file.
    ///
    /// # Errors
    /// I/O, bad magic, unknown version, malformed header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TraceError> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)?.read_to_end(&mut bytes)?;
        Self::from_bytes(&bytes)
    }

    /// Parses a trace held in memory.
    ///
    /// # Errors
    /// Bad magic, unknown version, malformed or oversized header.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TraceError> {
        if bytes.len() < 16 || bytes[0..8] != MAGIC {
            return Err(TraceError::BadMagic);
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(TraceError::Version { found: version });
        }
        let hlen = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
        if hlen > MAX_HEADER_LEN || 16 + hlen as usize > bytes.len() {
            return Err(TraceError::Header(format!(
                "declared header length {hlen} exceeds the file or the {MAX_HEADER_LEN}-byte limit"
            )));
        }
        let header: TraceHeader = serde_json::from_slice(&bytes[16..16 + hlen as usize])
            .map_err(|e| TraceError::Header(e.to_string()))?;
        let body = &bytes[16 + hlen as usize..];
        let mut records = Vec::with_capacity(body.len() / RECORD_SIZE);
        let mut complete = false;
        let mut lost = 0;
        let mut chunks = body.chunks_exact(RECORD_SIZE);
        for c in &mut chunks {
            let r = Record::from_bytes(c.try_into().expect("exact chunk"));
            if r.flags & FLAG_TRAILER != 0 {
                complete = r.seq == records.len() as u64;
                lost = if complete { r.t_sensor_ns } else { 0 };
                break;
            }
            records.push(r);
        }
        let trailing_bytes = chunks.remainder().len();
        Ok(TraceReader {
            header,
            records,
            complete,
            lost,
            trailing_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_trace_is_incomplete_but_keeps_whole_records() {
        let mut buf = Vec::new();
        let mut w = TraceWriter::new(&mut buf, &TraceHeader::default()).unwrap();
        for i in 0..10 {
            w.write(&Record {
                seq: i,
                ..Record::default()
            })
            .unwrap();
        }
        let _ = w; // no trailer written: the file looks cut short
        buf.truncate(buf.len() - 10);
        let r = TraceReader::from_bytes(&buf).unwrap();
        assert!(!r.complete);
        assert_eq!(r.records.len(), 9);
        assert_eq!(r.trailing_bytes, RECORD_SIZE - 10);
    }

    #[test]
    fn fuse_slice_note_is_optional_within_version_1() {
        // A header written before the note existed reads as unsliced.
        let old = br#"{"hostname":"h","streams":[]}"#;
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        v.extend_from_slice(&(old.len() as u32).to_le_bytes());
        v.extend_from_slice(old);
        let r = TraceReader::from_bytes(&v).unwrap();
        assert_eq!(
            (r.header.hostname.as_str(), r.header.fuse_slice_points),
            ("h", None)
        );
        // Without slicing the header is written as before; with it the note round-trips.
        let json = serde_json::to_string(&TraceHeader::default()).unwrap();
        assert!(!json.contains("fuse_slice_points"), "{json}");
        let sliced = TraceHeader {
            fuse_slice_points: Some(8192),
            ..TraceHeader::default()
        };
        let mut buf = Vec::new();
        TraceWriter::new(&mut buf, &sliced)
            .unwrap()
            .finish(0)
            .unwrap();
        let r = TraceReader::from_bytes(&buf).unwrap();
        assert!(r.complete);
        assert_eq!(r.header, sliced);
    }

    #[test]
    fn record_roundtrip_and_bad_inputs() {
        let r = Record {
            stream: 3,
            flags: FLAG_SCHED_FIFO,
            seq: 7,
            t_sensor_ns: 1,
            t_dma_ns: 2,
            t_enqueue_ns: 3,
            t_dequeue_ns: 4,
            t_fuse_start_ns: 5,
            t_fuse_end_ns: 6,
            fuse_cpu_ns: 0xdead_beef,
        };
        assert_eq!(Record::from_bytes(&r.to_bytes()), r);
        assert_eq!(r.fuse_cpu(), Some(0xdead_beef));
        // A record of a trace written before the CPU time was measured: bytes 4..8 zero.
        let mut old = r.to_bytes();
        old[4..8].fill(0);
        assert_eq!(Record::from_bytes(&old).fuse_cpu(), None);
        assert!(matches!(
            TraceReader::from_bytes(b"NOTATRACEFILE..."),
            Err(TraceError::BadMagic)
        ));
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&2u32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            TraceReader::from_bytes(&v),
            Err(TraceError::Version { found: 2 })
        ));
        let mut h = MAGIC.to_vec();
        h.extend_from_slice(&1u32.to_le_bytes());
        h.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            TraceReader::from_bytes(&h),
            Err(TraceError::Header(_))
        ));
    }
}
