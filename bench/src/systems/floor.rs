//! `floor`: a bare atomic cache-line ping-pong between two processes — the physical limit of a
//! hand-off between the two cores, with nothing else (no payload, no ring, no validation).
//!
//! Each side writes only its own 128-byte line in the shared control page and spins (without
//! `PAUSE`, like every receive loop in this benchmark) on the other's.
//!
//! `floor-touch` adds what "payload touched" costs at the least: the sender first writes a byte
//! on a second line of its own, then the flag; the receiver, once it sees the flag, reads that
//! byte. Two dependent line transfers per hop: no transport that touches the payload and signals
//! on a separate line can do better.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use anyhow::{bail, Result};

use crate::control::Control;
use crate::peer::{check_tag, tag, Endpoint, PeerArgs, Role, System};

/// One side of the floor ping-pong.
pub struct Floor<'a> {
    mine: &'a AtomicU64,
    theirs: &'a AtomicU64,
    /// The payload lines (`floor-touch` only): (mine, theirs).
    payload: Option<(&'a AtomicU8, &'a AtomicU8)>,
}

impl<'a> Floor<'a> {
    /// Picks this role's lines and the other's from the control page.
    pub fn new(control: &'a Control, args: &PeerArgs) -> Result<Self> {
        let page = control.page();
        let (mine, theirs, my_payload, their_payload) = match args.role {
            Role::Ping => (
                &page.ping.0,
                &page.pong.0,
                &page.ping_payload.0,
                &page.pong_payload.0,
            ),
            Role::Pong => (
                &page.pong.0,
                &page.ping.0,
                &page.pong_payload.0,
                &page.ping_payload.0,
            ),
            Role::StreamPub | Role::StreamSub => {
                bail!("floor is a ping-pong only (a single line cannot queue a stream)")
            }
        };
        let payload = (args.system == System::FloorTouch).then_some((my_payload, their_payload));
        Ok(Self {
            mine,
            theirs,
            payload,
        })
    }
}

impl Endpoint for Floor<'_> {
    fn send(&mut self, seq: u64) -> Result<()> {
        if let Some((mine, _)) = self.payload {
            mine.store(tag(seq), Ordering::Relaxed);
        }
        // SYNC: Release store / Acquire load in `recv`: the other side sees message `seq` (and,
        // for floor-touch, the payload byte stored before it).
        self.mine.store(seq + 1, Ordering::Release);
        Ok(())
    }

    fn recv(&mut self, seq: u64) -> Result<()> {
        // SYNC: Acquire load pairs with the other side's Release store in `send`.
        while self.theirs.load(Ordering::Acquire) != seq + 1 {}
        match self.payload {
            Some((_, theirs)) => check_tag(theirs.load(Ordering::Relaxed), seq),
            None => Ok(()),
        }
    }
}
