//! Serde support for fixed-size `float64[N]` arrays of any length.
//!
//! serde implements arrays only up to 32 elements, and ROS 2 covariances have 36. In CDR a fixed
//! array is its elements back to back with no length prefix, which is exactly a serde *tuple*, so
//! both directions go through `serialize_tuple` / `deserialize_tuple`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserializer, Serializer};

/// Serializes `[f64; N]` as a CDR fixed array (a serde tuple of `N` elements).
///
/// # Errors
/// Whatever the serializer reports.
pub fn serialize<S: Serializer, const N: usize>(
    value: &[f64; N],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut tuple = serializer.serialize_tuple(N)?;
    for element in value {
        tuple.serialize_element(element)?;
    }
    tuple.end()
}

/// Deserializes `[f64; N]` from a CDR fixed array.
///
/// # Errors
/// Truncated input or fewer than `N` elements.
pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
    deserializer: D,
) -> Result<[f64; N], D::Error> {
    struct ArrayVisitor<const N: usize>(PhantomData<[f64; N]>);

    impl<'de, const N: usize> Visitor<'de> for ArrayVisitor<N> {
        type Value = [f64; N];

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "an array of {N} float64")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = [0.0_f64; N];
            for (i, slot) in out.iter_mut().enumerate() {
                *slot = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(i, &self))?;
            }
            Ok(out)
        }
    }

    deserializer.deserialize_tuple(N, ArrayVisitor::<N>(PhantomData))
}
