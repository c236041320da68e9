//! `floor`: a bare atomic cache-line ping-pong between two processes — the physical limit of a
//! hand-off between the two cores, with nothing else (no payload, no ring, no validation).
//!
//! Each side writes only its own 128-byte line in the shared control page and spins (without
//! `PAUSE`, like every receive loop in this benchmark) on the other's.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Result};

use crate::control::Control;
use crate::peer::{Endpoint, PeerArgs, Role};

/// One side of the floor ping-pong.
pub struct Floor<'a> {
    mine: &'a AtomicU64,
    theirs: &'a AtomicU64,
}

impl<'a> Floor<'a> {
    /// Picks this role's line and the other's from the control page.
    pub fn new(control: &'a Control, args: &PeerArgs) -> Result<Self> {
        let page = control.page();
        match args.role {
            Role::Ping => Ok(Self {
                mine: &page.ping.0,
                theirs: &page.pong.0,
            }),
            Role::Pong => Ok(Self {
                mine: &page.pong.0,
                theirs: &page.ping.0,
            }),
            Role::StreamPub | Role::StreamSub => {
                bail!("floor is a ping-pong only (a single line cannot queue a stream)")
            }
        }
    }
}

impl Endpoint for Floor<'_> {
    fn send(&mut self, seq: u64) -> Result<()> {
        // SYNC: Release store / Acquire load in `recv`: the other side sees message `seq`.
        self.mine.store(seq + 1, Ordering::Release);
        Ok(())
    }

    fn recv(&mut self, seq: u64) -> Result<()> {
        // SYNC: Acquire load pairs with the other side's Release store in `send`.
        while self.theirs.load(Ordering::Acquire) != seq + 1 {}
        Ok(())
    }
}
