//! CDR encoding and hardened decoding with the 4-byte RTPS encapsulation header.
//!
//! A ROS 2 serialized message is `[representation id (2 bytes, big-endian)][options (2 bytes)]`
//! followed by the plain (XCDR1) CDR body, whose alignment is counted from the first body byte.
//! We always write `CDR_LE` (`00 01 00 00`), which is what every ROS 2 RMW emits on x86 and ARM.
//! We read `CDR_LE` and `CDR_BE`; anything else (parameter lists, XCDR2) is rejected.
//!
//! # Hostile input
//! Decoding never panics and never allocates more than the input can justify: every declared
//! length (strings, byte arrays, sequences) is checked against the bytes that remain *before*
//! anything is copied (cdr-encoding's `next_bytes`), and sequences of structs grow only as
//! elements are actually decoded (no `with_capacity(declared_len)`), so a 4-byte message that
//! claims 4 billion elements fails with [`DecodeError::Truncated`] after reading a few bytes.
//!
//! Deliberate leniency, inherited from cdr-encoding for interoperability: padding bytes are
//! skipped without checking their value, and a string whose last byte is not NUL is accepted
//! (that byte is dropped as if it were the terminator).

use byteorder::{BigEndian, LittleEndian};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Encapsulation header for little-endian plain CDR (`CDR_LE`, representation id 0x0001).
pub const CDR_LE_HEADER: [u8; 4] = [0x00, 0x01, 0x00, 0x00];
/// Encapsulation header for big-endian plain CDR (`CDR_BE`, representation id 0x0000).
pub const CDR_BE_HEADER: [u8; 4] = [0x00, 0x00, 0x00, 0x00];

/// Most padding bytes a writer may append after the body (RTPS pads payloads to 4 bytes).
const MAX_TRAILING_PADDING: usize = 3;

/// Why a message could not be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A sequence or string is longer than CDR's 32-bit length field can describe.
    #[error("CDR encode failed: {0}")]
    Cdr(String),
    /// The destination buffer of [`encode_to_slice`] is too small for the message.
    #[error("message does not fit the {0}-byte buffer")]
    BufferTooSmall(usize),
}

/// Why bytes could not be decoded as a message. Never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than the 4-byte encapsulation header.
    #[error("CDR payload of {0} bytes is shorter than the 4-byte encapsulation header")]
    NoHeader(usize),
    /// The representation id is not plain CDR (e.g. PL_CDR or XCDR2).
    #[error("unsupported CDR encapsulation 0x{0:04x} (only CDR_LE 0x0001 and CDR_BE 0x0000)")]
    UnsupportedEncapsulation(u16),
    /// The input ended before the message did, or a declared length exceeds the remaining bytes.
    #[error("CDR payload truncated: a field or declared length runs past the end of the input")]
    Truncated,
    /// Bytes left over after the message (more than the allowed padding).
    #[error("{0} unexpected bytes after the end of the message")]
    TrailingBytes(usize),
    /// A field has an invalid value (boolean not 0/1, string not UTF-8 or not NUL-terminated, ...).
    #[error("malformed CDR: {0}")]
    Malformed(String),
}

impl From<cdr_encoding::Error> for DecodeError {
    fn from(e: cdr_encoding::Error) -> Self {
        match e {
            cdr_encoding::Error::Eof => DecodeError::Truncated,
            other => DecodeError::Malformed(other.to_string()),
        }
    }
}

/// Serializes `msg` as a complete ROS 2 payload: `CDR_LE` header followed by the CDR body.
///
/// # Examples
/// ```
/// use rtfuse_msgs::{cdr, builtin_interfaces::Time};
/// let bytes = cdr::encode(&Time { sec: 1, nanosec: 2 }).unwrap();
/// assert_eq!(bytes, [0, 1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]);
/// ```
///
/// # Errors
/// [`EncodeError::Cdr`] if a length does not fit CDR's 32-bit length fields.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_into(msg, &mut out)?;
    Ok(out)
}

/// Like [`encode`], but appends to `out` (cleared first) so its capacity can be reused.
///
/// # Errors
/// [`EncodeError::Cdr`] if a length does not fit CDR's 32-bit length fields.
pub fn encode_into<T: Serialize>(msg: &T, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.clear();
    out.extend_from_slice(&CDR_LE_HEADER);
    // Alignment in the body counts from the body's first byte, so serialize it on its own
    // serializer (whose count starts at 0) writing behind the header.
    cdr_encoding::to_writer::<T, LittleEndian, _>(&mut *out, msg)
        .map_err(|e| EncodeError::Cdr(e.to_string()))
}

/// Serializes `msg` (header + body) straight into `dst`, e.g. a shared-memory chunk, and
/// returns the number of bytes written. No allocation.
///
/// # Examples
/// ```
/// use rtfuse_msgs::{cdr, builtin_interfaces::Time};
/// let mut buf = [0u8; 64];
/// let n = cdr::encode_to_slice(&Time { sec: 1, nanosec: 2 }, &mut buf).unwrap();
/// assert_eq!(&buf[..n], &[0, 1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]);
/// assert!(cdr::encode_to_slice(&Time::default(), &mut buf[..8]).is_err());
/// ```
///
/// # Errors
/// [`EncodeError::BufferTooSmall`] if `dst` cannot hold the message, [`EncodeError::Cdr`] as for
/// [`encode`].
pub fn encode_to_slice<T: Serialize>(msg: &T, dst: &mut [u8]) -> Result<usize, EncodeError> {
    let capacity = dst.len();
    let Some((header, body)) = dst.split_first_chunk_mut::<4>() else {
        return Err(EncodeError::BufferTooSmall(capacity));
    };
    *header = CDR_LE_HEADER;
    let mut rest: &mut [u8] = body;
    let before = rest.len();
    match cdr_encoding::to_writer::<T, LittleEndian, _>(&mut rest, msg) {
        Ok(()) => Ok(4 + before - rest.len()),
        Err(cdr_encoding::Error::Io(e)) if e.kind() == std::io::ErrorKind::WriteZero => {
            Err(EncodeError::BufferTooSmall(capacity))
        }
        Err(e) => Err(EncodeError::Cdr(e.to_string())),
    }
}

/// Decodes a complete ROS 2 payload (encapsulation header + CDR body) into `T`.
///
/// # Examples
/// ```
/// use rtfuse_msgs::{cdr, builtin_interfaces::Time};
/// let t: Time = cdr::decode(&[0, 1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]).unwrap();
/// assert_eq!(t, Time { sec: 1, nanosec: 2 });
/// assert!(cdr::decode::<Time>(&[0, 1, 0, 0, 1, 0]).is_err());
/// ```
///
/// # Errors
/// See [`DecodeError`]: a short or unknown header, truncation, over-long declared lengths,
/// invalid field values or trailing garbage.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    decode_borrowed(bytes)
}

/// Like [`decode`], for types that borrow from the input (e.g.
/// [`ImageView`](crate::sensor_msgs::ImageView), whose pixel data stays where it is, in a
/// shared-memory chunk for instance).
///
/// # Errors
/// As [`decode`].
pub fn decode_borrowed<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, DecodeError> {
    let (big_endian, body) = split_header(bytes)?;
    let (value, consumed) = if big_endian {
        cdr_encoding::from_bytes::<T, BigEndian>(body)?
    } else {
        cdr_encoding::from_bytes::<T, LittleEndian>(body)?
    };
    let trailing = body.len().saturating_sub(consumed);
    if trailing > MAX_TRAILING_PADDING {
        return Err(DecodeError::TrailingBytes(trailing));
    }
    Ok(value)
}

/// Checks the encapsulation header and returns `(big_endian, body)`.
///
/// # Errors
/// [`DecodeError::NoHeader`] or [`DecodeError::UnsupportedEncapsulation`].
pub fn split_header(bytes: &[u8]) -> Result<(bool, &[u8]), DecodeError> {
    let Some((header, body)) = bytes.split_first_chunk::<4>() else {
        return Err(DecodeError::NoHeader(bytes.len()));
    };
    match u16::from_be_bytes([header[0], header[1]]) {
        0x0000 => Ok((true, body)),
        0x0001 => Ok((false, body)),
        other => Err(DecodeError::UnsupportedEncapsulation(other)),
    }
}
