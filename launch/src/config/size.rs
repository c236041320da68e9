//! Byte sizes written as integers (`6291456`) or with a unit (`"6 MiB"`, `"64 KiB"`, `"1.5 GiB"`).

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A size in bytes. In TOML either an integer or a string with a binary (KiB, MiB, GiB) or decimal
/// (kB, MB, GB) unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Default)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        human_bytes(self.0, f)
    }
}

/// Writes `n` bytes the way a person reads them: `6.0 MiB (6291456 bytes)`.
fn human_bytes(n: u64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (name, scale) in UNITS {
        if n >= scale {
            return write!(f, "{:.1} {name} ({n} bytes)", n as f64 / scale as f64);
        }
    }
    write!(f, "{n} bytes")
}

/// Parses `"6 MiB"`, `"64KiB"`, `"1.5 GiB"`, `"512"`, `"10 MB"`.
///
/// # Errors
/// A message saying what was expected when the text is not a size.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num = num.replace('_', "");
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
            "expected a size such as `4 MiB`, `64 KiB` or `4096`, found unit `{other}` in `{text}`"
        ))
        }
    };
    let value: f64 = num.parse().map_err(|_| {
        format!("expected a size such as `4 MiB`, `64 KiB` or `4096`, found `{text}`")
    })?;
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 / 2.0 {
        return Err(format!("size `{text}` is out of range"));
    }
    if bytes.fract() != 0.0 {
        return Err(format!("size `{text}` is not a whole number of bytes"));
    }
    Ok(bytes as u64)
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size in bytes: an integer or a string such as \"4 MiB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("expected a size in bytes, found negative {v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_size(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_size("6 MiB"), Ok(6 << 20));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("10 MB"), Ok(10_000_000));
        assert!(parse_size("4 parsecs").unwrap_err().contains("parsecs"));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0.3 B").is_err());
    }
}
