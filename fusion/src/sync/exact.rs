//! The ExactTime policy: a port of `message_filters::sync_policies::ExactTime` (ros2/message_filters,
//! `exact_time.hpp`) with a bounded, sorted table instead of `std::map`.
//!
//! Messages are grouped by identical stamp. When a stamp has a message from every stream the set is
//! published, and every incomplete group with a stamp at or before it is dropped (it can no longer be
//! completed in order). When more than `queue_size` incomplete groups are pending, the oldest are dropped.
//! A second message on the same stream with the same stamp replaces the first (which is handed back as
//! dropped), as the C++ overwrites its tuple slot.

use super::{check_sizes, AddError, ConfigError, Stamped, SyncEvent};

/// One pending group: a stamp and the messages received for it so far.
#[derive(Debug)]
struct Group<M, const N: usize> {
    stamp: i64,
    slots: [Option<M>; N],
}

/// ExactTime synchroniser for `N` streams holding at most `Q - 1` pending stamps.
///
/// # Examples
/// ```
/// use fusion::sync::{ExactTime, SyncEvent};
/// let mut sync = ExactTime::<u32, 2, 8>::new(4).unwrap();
/// let mut sets = Vec::new();
/// let mut sink = |e: SyncEvent<u32, 2>| if let SyncEvent::Set(s) = e { sets.push(s.map(|m| m.msg)) };
/// sync.add(0, 5, 100, &mut sink).unwrap();
/// sync.add(1, 5, 200, &mut sink).unwrap();
/// assert_eq!(sets, vec![[100, 200]]);
/// ```
#[derive(Debug)]
pub struct ExactTime<M, const N: usize, const Q: usize> {
    /// `1 ..= Q - 1`.
    queue_size: usize,
    /// Pending groups sorted by stamp, no two with the same stamp; at most `queue_size` between calls.
    groups: heapless::Vec<Group<M, N>, Q>,
    last_signal: Option<i64>,
}

impl<M, const N: usize, const Q: usize> ExactTime<M, N, Q> {
    /// A synchroniser keeping at most `queue_size` incomplete stamps.
    ///
    /// # Errors
    /// [`ConfigError`] for `N < 2` or a queue size outside `1 ..= Q - 1`.
    pub fn new(queue_size: usize) -> Result<Self, ConfigError> {
        check_sizes(N, Q, queue_size)?;
        Ok(Self {
            queue_size,
            groups: heapless::Vec::new(),
            last_signal: None,
        })
    }

    /// The stamp of the last published set, if any.
    pub fn last_signal(&self) -> Option<i64> {
        self.last_signal
    }

    /// Number of pending (incomplete) stamps.
    pub fn pending(&self) -> usize {
        self.groups.len()
    }

    /// Adds a message; completed sets and dropped messages go to `out` before this returns.
    /// Allocation-free.
    ///
    /// # Errors
    /// [`AddError::NoSuchStream`] (message handed back) if `stream >= N`.
    pub fn add(
        &mut self,
        stream: usize,
        stamp: i64,
        msg: M,
        out: &mut impl FnMut(SyncEvent<M, N>),
    ) -> Result<(), AddError<M>> {
        if stream >= N {
            return Err(AddError::NoSuchStream {
                stream,
                n: N,
                msg: Stamped { stamp, msg },
            });
        }
        let pos = match self.groups.binary_search_by_key(&stamp, |g| g.stamp) {
            Ok(p) => p,
            Err(p) => {
                let g = Group {
                    stamp,
                    slots: core::array::from_fn(|_| None),
                };
                if let Err(g) = self.groups.insert(p, g) {
                    // Unreachable: at most queue_size < Q groups are pending between calls.
                    drop(g);
                    out(SyncEvent::Dropped {
                        stream,
                        msg: Stamped { stamp, msg },
                    });
                    return Ok(());
                }
                p
            }
        };
        if let Some(old) = self.groups[pos].slots[stream].replace(msg) {
            out(SyncEvent::Dropped {
                stream,
                msg: Stamped { stamp, msg: old },
            });
        }
        if self.groups[pos].slots.iter().all(Option::is_some) {
            let g = self.groups.remove(pos);
            let set = g.slots.map(|m| Stamped {
                stamp,
                msg: m.expect("checked: all slots full"),
            });
            out(SyncEvent::Set(set));
            self.last_signal = Some(stamp);
            // Drop every group at or before the published stamp.
            let n_old = self.groups.iter().take_while(|g| g.stamp <= stamp).count();
            self.drop_oldest(n_old, out);
        }
        if self.groups.len() > self.queue_size {
            self.drop_oldest(self.groups.len() - self.queue_size, out);
        }
        Ok(())
    }

    /// Hands back every pending message as dropped.
    pub fn drain(&mut self, out: &mut impl FnMut(SyncEvent<M, N>)) {
        self.drop_oldest(self.groups.len(), out);
    }

    fn drop_oldest(&mut self, n: usize, out: &mut impl FnMut(SyncEvent<M, N>)) {
        for g in self.groups.drain(..n) {
            for (stream, m) in g.slots.into_iter().enumerate() {
                if let Some(msg) = m {
                    out(SyncEvent::Dropped {
                        stream,
                        msg: Stamped {
                            stamp: g.stamp,
                            msg,
                        },
                    });
                }
            }
        }
    }
}
