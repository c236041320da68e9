//! UDP packet reception with `recvmmsg` into a pre-allocated packet ring, and the VLP-16 UDP
//! pipeline that turns received packets into one point cloud per rotation.
//!
//! [`PacketReceiver`] owns `batch` receive slots of [`SLOT_SIZE`] bytes, allocated once. One
//! [`PacketReceiver::recv_batch`] is one `recvmmsg(2)` system call with `MSG_WAITFORONE`: it
//! sleeps until the first datagram (or the socket's read timeout) and then takes whatever else
//! is queued, up to `batch` datagrams. Slots are larger than a VLP-16 packet so that oversized
//! datagrams are seen (and rejected) rather than silently cut; `MSG_TRUNC` is reported too.
//!
//! [`Vlp16Pipeline`] validates and decodes each datagram straight into the buffer a
//! [`CloudSink`] lends (a shared-memory chunk for the real driver) and hands the sink each
//! finished rotation. Malformed datagrams are counted by kind, the first of each kind is
//! logged, and decoding goes on with the next datagram.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::vlp16::{CloudInfo, Packet, Push, RotationAssembler, Vlp16Error, PACKET_SIZE};

/// Default VLP-16 data port.
pub const VLP16_DATA_PORT: u16 = 2368;
/// Bytes per receive slot: the largest Ethernet payload, so oversized datagrams are detected.
pub const SLOT_SIZE: usize = 1536;
/// Most datagrams one `recvmmsg` call takes.
pub const MAX_BATCH: usize = 64;

/// Receiver settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpConfig {
    /// Address to bind (default `0.0.0.0:2368`).
    pub bind: SocketAddr,
    /// Datagrams per `recvmmsg` call, 1..=[`MAX_BATCH`] (default 32).
    pub batch: usize,
    /// Requested kernel receive buffer (`SO_RCVBUF`, then `SO_RCVBUFFORCE` when permitted).
    pub recv_buffer_bytes: usize,
    /// How long one [`PacketReceiver::recv_batch`] waits for the first datagram.
    pub read_timeout: Duration,
}

impl Default for UdpConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([0, 0, 0, 0], VLP16_DATA_PORT)),
            batch: 32,
            recv_buffer_bytes: 4 << 20,
            read_timeout: Duration::from_millis(100),
        }
    }
}

/// One received datagram in the ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SlotInfo {
    len: usize,
    truncated: bool,
}

/// A UDP socket with a pre-allocated ring of receive slots, read with `recvmmsg`.
pub struct PacketReceiver {
    socket: UdpSocket,
    slots: Vec<[u8; SLOT_SIZE]>,
    info: [SlotInfo; MAX_BATCH],
    batch: usize,
    received: usize,
}

impl PacketReceiver {
    /// Binds the socket and allocates the slots.
    ///
    /// # Errors
    /// Binding or configuring the socket failed, or `batch` is not in 1..=[`MAX_BATCH`].
    pub fn bind(cfg: &UdpConfig) -> io::Result<Self> {
        if !(1..=MAX_BATCH).contains(&cfg.batch) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("UDP batch {} not in 1..={MAX_BATCH}", cfg.batch),
            ));
        }
        let socket = UdpSocket::bind(cfg.bind)?;
        socket.set_read_timeout(Some(cfg.read_timeout.max(Duration::from_micros(1))))?;
        let rx = Self {
            socket,
            slots: vec![[0u8; SLOT_SIZE]; cfg.batch],
            info: [SlotInfo::default(); MAX_BATCH],
            batch: cfg.batch,
            received: 0,
        };
        rx.set_recv_buffer(cfg.recv_buffer_bytes);
        Ok(rx)
    }

    fn set_recv_buffer(&self, bytes: usize) {
        let val = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        for opt in [libc::SO_RCVBUF, libc::SO_RCVBUFFORCE] {
            // SAFETY: the fd is a live socket owned by `self.socket`; `val` is a c_int that lives
            // across the call and its size is passed. Failure (EPERM for FORCE) is harmless.
            unsafe {
                libc::setsockopt(
                    self.socket.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&val as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }

    /// The bound address (useful after binding port 0).
    ///
    /// # Errors
    /// `getsockname` failed.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Receives up to `batch` datagrams with one `recvmmsg` call. Returns how many arrived
    /// (0 after the read timeout with nothing received); read them with [`Self::datagram`].
    ///
    /// # Errors
    /// A socket error other than a timeout or an interrupted call.
    pub fn recv_batch(&mut self) -> io::Result<usize> {
        let mut iov: [libc::iovec; MAX_BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; MAX_BATCH];
        // SAFETY: mmsghdr is a plain C struct for which all-zero bytes are a valid value.
        let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        for ((slot, v), h) in self
            .slots
            .iter_mut()
            .zip(iov.iter_mut())
            .zip(hdrs.iter_mut())
        {
            v.iov_base = slot.as_mut_ptr().cast();
            v.iov_len = SLOT_SIZE;
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `hdrs[..batch]` each point at one iovec in `iov`, which points at a distinct
        // SLOT_SIZE-byte slot in `self.slots`; all outlive the call and nothing else aliases
        // them during it. No address or control buffers are passed (null, zero length).
        let n = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                self.batch as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for (info, h) in self.info.iter_mut().zip(&hdrs).take(n) {
            *info = SlotInfo {
                len: (h.msg_len as usize).min(SLOT_SIZE),
                truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            };
        }
        self.received = n;
        Ok(n)
    }

    /// Datagram `i` of the last batch: its bytes and whether the kernel truncated it.
    pub fn datagram(&self, i: usize) -> Option<(&[u8], bool)> {
        (i < self.received).then(|| {
            let SlotInfo { len, truncated } = self.info[i];
            (&self.slots[i][..len], truncated)
        })
    }
}

/// Where finished clouds go: lends the buffer the current cloud is decoded into and takes it
/// back when a rotation is complete.
pub trait CloudSink {
    /// Error of the sink (e.g. no free shared-memory chunk).
    type Error: std::fmt::Display;
    /// The buffer of the cloud being assembled; the same buffer until [`Self::publish`].
    ///
    /// # Errors
    /// No buffer is available; the pipeline then drops the packet and counts it.
    fn buffer(&mut self) -> Result<&mut [u8], Self::Error>;
    /// The current buffer holds the finished cloud `info` in its first `info.bytes` bytes.
    ///
    /// # Errors
    /// Publishing failed; the pipeline counts it and goes on with a fresh buffer.
    fn publish(&mut self, info: &CloudInfo) -> Result<(), Self::Error>;
}

/// A [`CloudSink`] that copies clouds into a `Vec` (for tests and tools).
#[derive(Debug)]
pub struct VecSink {
    buf: Vec<u8>,
    /// Finished clouds: their bytes and facts.
    pub clouds: Vec<(Vec<u8>, CloudInfo)>,
}

impl VecSink {
    /// A sink whose working buffer holds `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: vec![0; capacity],
            clouds: Vec::new(),
        }
    }
}

impl CloudSink for VecSink {
    type Error = std::convert::Infallible;
    fn buffer(&mut self) -> Result<&mut [u8], Self::Error> {
        Ok(&mut self.buf)
    }
    fn publish(&mut self, info: &CloudInfo) -> Result<(), Self::Error> {
        self.clouds.push((self.buf[..info.bytes].to_vec(), *info));
        Ok(())
    }
}

/// Counters of a [`Vlp16Pipeline`], malformed datagrams by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Datagrams received.
    pub datagrams: u64,
    /// Valid packets decoded.
    pub packets: u64,
    /// Datagrams not 1206 bytes long (including kernel-truncated ones).
    pub wrong_size: u64,
    /// Datagrams with a bad block flag.
    pub bad_flag: u64,
    /// Datagrams with an azimuth ≥ 360°.
    pub bad_azimuth: u64,
    /// Datagrams with an unknown product or return-mode byte.
    pub bad_product_or_mode: u64,
    /// Clouds handed to the sink.
    pub clouds: u64,
    /// Packets dropped because the sink had no buffer.
    pub no_buffer: u64,
    /// Clouds the sink failed to publish.
    pub publish_errors: u64,
}

impl PipelineStats {
    /// All malformed datagrams.
    pub fn malformed(&self) -> u64 {
        self.wrong_size + self.bad_flag + self.bad_azimuth + self.bad_product_or_mode
    }
}

/// Validates datagrams as VLP-16 packets, counting the malformed ones by kind and logging the
/// first of each kind.
#[derive(Debug, Default)]
pub struct DatagramCheck {
    stats: PipelineStats,
    last_error: Option<Vlp16Error>,
}

impl DatagramCheck {
    /// Counters so far.
    pub fn stats(&self) -> PipelineStats {
        self.stats
    }

    /// Counters, mutably (for the callers that count clouds and buffers).
    pub fn stats_mut(&mut self) -> &mut PipelineStats {
        &mut self.stats
    }

    /// The most recent malformed-datagram error, for reports.
    pub fn last_error(&self) -> Option<Vlp16Error> {
        self.last_error
    }

    /// Counts one datagram (`truncated`: the kernel cut it) and validates it with `asm`.
    pub fn accept<'a>(
        &mut self,
        asm: &mut RotationAssembler,
        datagram: &'a [u8],
        truncated: bool,
    ) -> Option<Packet<'a>> {
        self.stats.datagrams += 1;
        let parsed = if truncated {
            Err(Vlp16Error::WrongSize {
                len: datagram.len().max(SLOT_SIZE + 1),
            })
        } else {
            asm.parse(datagram)
        };
        match parsed {
            Ok(p) => {
                self.stats.packets += 1;
                Some(p)
            }
            Err(e) => {
                self.reject(e);
                None
            }
        }
    }

    fn reject(&mut self, e: Vlp16Error) {
        let counter = match e {
            Vlp16Error::WrongSize { .. } => &mut self.stats.wrong_size,
            Vlp16Error::BadBlockFlag { .. } => &mut self.stats.bad_flag,
            Vlp16Error::BadAzimuth { .. } => &mut self.stats.bad_azimuth,
            _ => &mut self.stats.bad_product_or_mode,
        };
        *counter += 1;
        if *counter == 1 {
            tracing::warn!(
                "dropping malformed VLP-16 datagram (first of its kind, counted from now on): {e}"
            );
        }
        self.last_error = Some(e);
    }
}

/// Validates, decodes and assembles VLP-16 datagrams into a [`CloudSink`].
pub struct Vlp16Pipeline<S> {
    asm: RotationAssembler,
    sink: S,
    check: DatagramCheck,
}

impl<S: CloudSink> Vlp16Pipeline<S> {
    /// A pipeline decoding with `asm` into `sink`.
    pub fn new(asm: RotationAssembler, sink: S) -> Self {
        Self {
            asm,
            sink,
            check: DatagramCheck::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> PipelineStats {
        self.check.stats()
    }

    /// The most recent malformed-datagram error, for reports.
    pub fn last_error(&self) -> Option<Vlp16Error> {
        self.check.last_error()
    }

    /// The sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The sink, mutably.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Handles one datagram (`truncated`: the kernel cut it). No allocation unless the sink
    /// allocates.
    pub fn handle(&mut self, datagram: &[u8], truncated: bool) {
        let Some(pkt) = self.check.accept(&mut self.asm, datagram, truncated) else {
            return;
        };
        let mut from = 0;
        loop {
            let buf = match self.sink.buffer() {
                Ok(b) => b,
                Err(e) => {
                    let st = self.check.stats_mut();
                    st.no_buffer += 1;
                    if st.no_buffer == 1 {
                        tracing::warn!("VLP-16 packet dropped, no cloud buffer: {e}");
                    }
                    return;
                }
            };
            match self.asm.push(&pkt, from, buf) {
                Push::Consumed => return,
                Push::Rotation { info, resume_block } => {
                    self.publish(&info);
                    from = resume_block;
                }
            }
        }
    }

    fn publish(&mut self, info: &CloudInfo) {
        let st = self.check.stats_mut();
        match self.sink.publish(info) {
            Ok(()) => st.clouds += 1,
            Err(e) => {
                st.publish_errors += 1;
                if st.publish_errors == 1 {
                    tracing::warn!("VLP-16 cloud {} not published: {e}", info.seq);
                }
            }
        }
    }

    /// Receives one batch from `rx` and handles every datagram in it; returns how many arrived.
    ///
    /// # Errors
    /// A socket error from [`PacketReceiver::recv_batch`].
    pub fn poll(&mut self, rx: &mut PacketReceiver) -> io::Result<usize> {
        let n = rx.recv_batch()?;
        for i in 0..n {
            if let Some((d, t)) = rx.datagram(i) {
                self.handle(d, t);
            }
        }
        Ok(n)
    }

    /// Publishes the partial cloud in progress (end of stream).
    pub fn flush(&mut self) {
        if let Some(info) = self.asm.flush() {
            self.publish(&info);
        }
    }
}

const _: () = assert!(SLOT_SIZE > PACKET_SIZE);
