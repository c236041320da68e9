//! `uds-copy`: the payload copied through a Unix domain stream socket (a `socketpair` the parent
//! made and both peers inherited), each message framed by an 8-byte little-endian length. The
//! receiver blocks in `read` (the usual way to use a socket), so its wake-up is the kernel's.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use anyhow::{bail, Context, Result};

use crate::peer::{check_tag, tag, Endpoint, PeerArgs};

/// Bytes of the length prefix.
const HEADER: usize = 8;

/// One end of the socket pair with a message buffer of `8 + payload` bytes.
pub struct Uds {
    sock: UnixStream,
    buf: Vec<u8>,
}

impl Uds {
    /// Takes over the inherited descriptor named by `--fd`.
    pub fn new(args: &PeerArgs) -> Result<Self> {
        let Some(fd) = args.fd else {
            bail!("uds-copy needs --fd (an inherited socket)");
        };
        // SAFETY: F_GETFD only inspects the descriptor table; any integer is acceptable.
        if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            bail!("--fd {fd} is not an open file descriptor");
        }
        // SAFETY: `fd` is open (checked above) and was inherited from the parent for this peer
        // alone; nothing else in this process refers to it, so we may own and close it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let sock = UnixStream::from(owned);
        sock.peer_addr()
            .with_context(|| format!("--fd {fd} is not a connected Unix socket"))?;
        let mut buf = vec![0u8; HEADER + args.payload.max(1)];
        buf.fill(1); // fault the buffer in before the measurement
        Ok(Self { sock, buf })
    }
}

impl Endpoint for Uds {
    fn send(&mut self, seq: u64) -> Result<()> {
        let len = (self.buf.len() - HEADER) as u64;
        self.buf[..HEADER].copy_from_slice(&len.to_le_bytes());
        self.buf[HEADER] = tag(seq);
        self.sock.write_all(&self.buf).context("uds write")?;
        Ok(())
    }

    fn recv(&mut self, seq: u64) -> Result<()> {
        let mut header = [0u8; HEADER];
        self.sock.read_exact(&mut header).context("uds read")?;
        let len = u64::from_le_bytes(header);
        let want = (self.buf.len() - HEADER) as u64;
        if len != want {
            bail!("uds message {seq} announces {len} bytes, expected {want}");
        }
        self.sock
            .read_exact(&mut self.buf[HEADER..])
            .context("uds read")?;
        check_tag(self.buf[HEADER], seq)
    }
}
