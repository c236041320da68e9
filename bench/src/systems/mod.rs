//! The systems under test, each an [`Endpoint`](crate::peer::Endpoint) implementation.

pub mod floor;
pub mod ice;
pub mod shm;
pub mod uds;
