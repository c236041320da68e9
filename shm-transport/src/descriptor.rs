//! The descriptor: what travels through a descriptor ring for each published sample.

use crate::ring::SLOT_WORDS;

/// A published sample's metadata: which chunk, how many bytes, and its stage timestamps.
/// Encoded as the seven payload words of one ring slot (the slot's stamp is the eighth).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Descriptor {
    /// Chunk index in the slab.
    pub chunk: u32,
    /// Chunk generation: bumped by the publisher on every loan; returns must quote it.
    pub generation: u32,
    /// Valid payload bytes.
    pub len: u64,
    /// Sequence number (1, 2, …; gaps mean drops).
    pub seq: u64,
    /// Sensor (acquisition) time, CLOCK_MONOTONIC ns (0 = unset).
    pub t_sensor_ns: u64,
    /// "DMA complete": the payload is in the chunk, CLOCK_MONOTONIC ns (0 = unset).
    pub t_dma_ns: u64,
    /// Enqueued into the rings, CLOCK_MONOTONIC ns.
    pub t_enqueue_ns: u64,
    /// One word of user metadata.
    pub user: u64,
}

impl Descriptor {
    /// The slot words.
    pub fn to_words(&self) -> [u64; SLOT_WORDS] {
        [
            self.chunk as u64 | (self.generation as u64) << 32,
            self.len,
            self.seq,
            self.t_sensor_ns,
            self.t_dma_ns,
            self.t_enqueue_ns,
            self.user,
        ]
    }

    /// Decodes slot words. Nothing is validated here: see `validate`.
    pub fn from_words(w: &[u64; SLOT_WORDS]) -> Self {
        Descriptor {
            chunk: w[0] as u32,
            generation: (w[0] >> 32) as u32,
            len: w[1],
            seq: w[2],
            t_sensor_ns: w[3],
            t_dma_ns: w[4],
            t_enqueue_ns: w[5],
            user: w[6],
        }
    }

    /// Checks the fields that guard memory safety against the trusted geometry.
    pub fn validate(&self, chunk_count: u32, chunk_size: u64) -> Result<(), DescriptorError> {
        if self.chunk >= chunk_count {
            return Err(DescriptorError::ChunkOutOfRange);
        }
        if self.len > chunk_size {
            return Err(DescriptorError::LengthTooLarge);
        }
        Ok(())
    }
}

/// Why a descriptor read from shared memory was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DescriptorError {
    /// Chunk index beyond the slab.
    ChunkOutOfRange,
    /// Length beyond the chunk size.
    LengthTooLarge,
    /// Sequence number not after the previous one (duplicate or reordered).
    SequenceRegressed,
}

impl std::fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DescriptorError::ChunkOutOfRange => "chunk index out of range",
            DescriptorError::LengthTooLarge => "length larger than the chunk",
            DescriptorError::SequenceRegressed => "sequence number did not advance",
        })
    }
}

impl std::error::Error for DescriptorError {}
