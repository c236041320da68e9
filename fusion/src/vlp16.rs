//! Velodyne VLP-16 data-packet decoder and rotation assembler.
//!
//! # Packet layout (VLP-16 user manual, section 9)
//! A data packet is the 1206-byte UDP payload sent to port 2368: 12 data blocks of 100 bytes
//! (`u16` LE flag `0xEEFF`, `u16` LE azimuth in 0.01°, then 32 channel records of `u16` LE
//! distance in 2 mm units and `u8` reflectivity: two firing sequences of the 16 lasers), then a
//! `u32` LE timestamp in µs past the top of the hour, the return-mode byte (`0x37` strongest,
//! `0x38` last, `0x39` dual) and the product-ID byte (`0x22` for the VLP-16).
//!
//! # Geometry and timing
//! - Laser `i` (firing order 0..15) has elevation ω = −15, 1, −13, 3, … , −1, 15 degrees
//!   ([`ELEVATION_DEG`]); its *ring* (rank by elevation, 0 = lowest) is [`ring_of_laser`].
//! - One firing sequence lasts 55.296 µs and laser `i` fires 2.304 µs × `i` into it; a block
//!   holds two sequences (single-return modes) and the packet timestamp is the first firing of
//!   block 0. In dual-return mode blocks `2k` and `2k+1` hold the strongest and last returns of
//!   the same two sequences.
//! - Each point's azimuth is interpolated in proportion to its firing time between its block's
//!   azimuth and the next block's (the manual's "precision azimuth"); the last block reuses the
//!   previous gap.
//! - Distance is `raw × 2 mm`; a raw distance of 0 means "no return".
//!
//! # Frame
//! The Velodyne sensor frame: `x = r cos ω sin α`, `y = r cos ω cos α`, `z = r sin ω`, α the
//! azimuth (clockwise seen from above, 0° along +y), so +y points at azimuth 0 (the cable side is
//! −y), +x at azimuth 90°, +z up. Units are metres.
//!
//! # Output
//! Points are written straight into a caller buffer (a loaned shared-memory chunk) as
//! PointCloud2-compatible records, see [`PointLayout`]. The [`RotationAssembler`] cuts the stream
//! into one cloud per full rotation at the block whose azimuth wraps past the cut angle. No
//! allocation happens after construction.
//!
//! # Measured cost
//! See `cargo run --release -p fusion --example vlp16_decode_bench` and the crate README.

use std::fmt;

/// Size of a VLP-16 data packet (UDP payload) in bytes.
pub const PACKET_SIZE: usize = 1206;
/// Data blocks per packet.
pub const BLOCKS: usize = 12;
/// Lasers per firing sequence.
pub const LASERS: usize = 16;
/// Channel records per block (two firing sequences).
pub const CHANNELS_PER_BLOCK: usize = 32;
/// Point slots per packet (returns, including "no return").
pub const POINTS_PER_PACKET: usize = BLOCKS * CHANNELS_PER_BLOCK;
/// Block start flag.
pub const BLOCK_FLAG: u16 = 0xEEFF;
/// Product-ID byte of the VLP-16.
pub const PRODUCT_VLP16: u8 = 0x22;
/// Laser elevations in degrees, by firing order (laser index 0..15).
pub const ELEVATION_DEG: [f32; LASERS] = [
    -15.0, 1.0, -13.0, 3.0, -11.0, 5.0, -9.0, 7.0, -7.0, 9.0, -5.0, 11.0, -3.0, 13.0, -1.0, 15.0,
];
/// Time between two lasers of one firing sequence, in nanoseconds (2.304 µs).
pub const LASER_PERIOD_NS: u32 = 2_304;
/// Duration of one firing sequence, in nanoseconds (55.296 µs).
pub const SEQUENCE_PERIOD_NS: u32 = 55_296;
/// Distance unit in metres.
pub const DISTANCE_UNIT_M: f32 = 0.002;
const AZIMUTH_FULL: u32 = 36_000;
const US_PER_HOUR: u64 = 3_600_000_000;

/// Return mode of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnMode {
    /// `0x37`: strongest return.
    Strongest,
    /// `0x38`: last return.
    Last,
    /// `0x39`: dual return (blocks come in pairs with the same azimuth).
    Dual,
}

impl ReturnMode {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0x37 => Some(Self::Strongest),
            0x38 => Some(Self::Last),
            0x39 => Some(Self::Dual),
            _ => None,
        }
    }
}

/// Why a packet was rejected or a cloud could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Vlp16Error {
    /// The payload is not 1206 bytes long.
    WrongSize {
        /// Bytes received.
        len: usize,
    },
    /// A data block does not start with `0xEEFF`.
    BadBlockFlag {
        /// Block index 0..11.
        block: u8,
        /// The flag found.
        flag: u16,
    },
    /// A block azimuth is not below 36000 (360.00°).
    BadAzimuth {
        /// Block index 0..11.
        block: u8,
        /// The azimuth found, in 0.01°.
        azimuth: u16,
    },
    /// The product-ID byte is not the VLP-16's `0x22`.
    UnknownProduct(u8),
    /// The return-mode byte is not `0x37`, `0x38` or `0x39`.
    UnknownReturnMode(u8),
    /// The output buffer cannot hold the points of one more block.
    BufferFull {
        /// Bytes the cloud needs at least.
        needed: usize,
        /// Bytes available.
        capacity: usize,
    },
}

impl fmt::Display for Vlp16Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::WrongSize { len } => {
                write!(f, "VLP-16 packet has {len} bytes, expected {PACKET_SIZE}")
            }
            Self::BadBlockFlag { block, flag } => {
                write!(
                    f,
                    "VLP-16 block {block} has flag {flag:#06x}, expected 0xeeff"
                )
            }
            Self::BadAzimuth { block, azimuth } => {
                write!(
                    f,
                    "VLP-16 block {block} has azimuth {azimuth} (0.01°), expected < 36000"
                )
            }
            Self::UnknownProduct(b) => {
                write!(
                    f,
                    "VLP-16 packet has product ID {b:#04x}, expected 0x22 (VLP-16)"
                )
            }
            Self::UnknownReturnMode(b) => write!(
                f,
                "VLP-16 packet has return mode {b:#04x}, expected 0x37, 0x38 or 0x39"
            ),
            Self::BufferFull { needed, capacity } => write!(
                f,
                "point-cloud buffer full: need {needed} bytes, have {capacity}"
            ),
        }
    }
}

impl std::error::Error for Vlp16Error {}

/// A validated view of one VLP-16 data packet.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    raw: &'a [u8; PACKET_SIZE],
    mode: ReturnMode,
}

fn u16_at(b: &[u8; PACKET_SIZE], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

impl<'a> Packet<'a> {
    /// Validates `bytes` as a VLP-16 data packet: size, the 12 block flags, azimuth range,
    /// product ID and return mode.
    ///
    /// # Errors
    /// The first [`Vlp16Error`] found; never panics, whatever the bytes.
    ///
    /// # Examples
    /// ```
    /// use fusion::vlp16::{Packet, Vlp16Error};
    /// assert_eq!(Packet::parse(&[0u8; 10]).unwrap_err(), Vlp16Error::WrongSize { len: 10 });
    /// ```
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Vlp16Error> {
        let raw: &[u8; PACKET_SIZE] = bytes
            .try_into()
            .map_err(|_| Vlp16Error::WrongSize { len: bytes.len() })?;
        for block in 0..BLOCKS {
            let flag = u16_at(raw, block * 100);
            if flag != BLOCK_FLAG {
                return Err(Vlp16Error::BadBlockFlag {
                    block: block as u8,
                    flag,
                });
            }
            let azimuth = u16_at(raw, block * 100 + 2);
            if u32::from(azimuth) >= AZIMUTH_FULL {
                return Err(Vlp16Error::BadAzimuth {
                    block: block as u8,
                    azimuth,
                });
            }
        }
        if raw[1205] != PRODUCT_VLP16 {
            return Err(Vlp16Error::UnknownProduct(raw[1205]));
        }
        let mode =
            ReturnMode::from_byte(raw[1204]).ok_or(Vlp16Error::UnknownReturnMode(raw[1204]))?;
        Ok(Self { raw, mode })
    }

    /// The return mode.
    pub fn return_mode(&self) -> ReturnMode {
        self.mode
    }

    /// Timestamp of the first firing of block 0, in µs past the top of the hour.
    pub fn timestamp_us(&self) -> u32 {
        u32::from_le_bytes([
            self.raw[1200],
            self.raw[1201],
            self.raw[1202],
            self.raw[1203],
        ])
    }

    /// Azimuth of block `block` (0..11) in 0.01°, or `None` if out of range.
    pub fn block_azimuth(&self, block: usize) -> Option<u16> {
        (block < BLOCKS).then(|| u16_at(self.raw, block * 100 + 2))
    }

    /// Raw distance (2 mm units) and reflectivity of channel `channel` (0..31) of block `block`.
    pub fn channel(&self, block: usize, channel: usize) -> Option<(u16, u8)> {
        if block >= BLOCKS || channel >= CHANNELS_PER_BLOCK {
            return None;
        }
        let at = block * 100 + 4 + 3 * channel;
        Some((u16_at(self.raw, at), self.raw[at + 2]))
    }

    /// Azimuth gap in 0.01° from block `block` to the next block of a later firing sequence
    /// (the last one reuses the previous gap).
    fn gap(&self, block: usize) -> u32 {
        let step = if self.mode == ReturnMode::Dual { 2 } else { 1 };
        let pair = block - block % step;
        let (from, to) = if pair + step < BLOCKS {
            (pair, pair + step)
        } else {
            (pair - step, pair)
        };
        let a = u32::from(u16_at(self.raw, from * 100 + 2));
        let b = u32::from(u16_at(self.raw, to * 100 + 2));
        (b + AZIMUTH_FULL - a) % AZIMUTH_FULL
    }

    /// Firing-sequence index (0..23) of the first sequence of block `block`.
    fn sequence_of_block(&self, block: usize) -> u32 {
        match self.mode {
            ReturnMode::Dual => (block as u32 / 2) * 2,
            _ => block as u32 * 2,
        }
    }
}

/// Ring number (rank by elevation, 0 = lowest, −15°) of laser `laser` (firing order).
pub const fn ring_of_laser(laser: usize) -> u16 {
    if laser % 2 == 0 {
        (laser / 2) as u16
    } else {
        (laser / 2 + 8) as u16
    }
}

/// Record layout of the points written into the output buffer (PointCloud2-compatible,
/// little-endian, `is_dense` only when no-return slots are dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointLayout {
    /// 16 bytes: `x`, `y`, `z`, `intensity` as `f32` at offsets 0, 4, 8, 12.
    XyzI,
    /// 24 bytes: `x`, `y`, `z`, `intensity` `f32` at 0..16, `ring` `u16` at 16 (2 bytes padding),
    /// `time` `f32` at 20: seconds since the first firing of the cloud.
    XyzIRingTime,
}

/// A PointCloud2 field: name, byte offset, ROS datatype (7 = FLOAT32, 4 = UINT16), count 1.
pub type FieldDesc = (&'static str, u32, u8);

impl PointLayout {
    /// Bytes per point (PointCloud2 `point_step`).
    pub const fn point_step(self) -> usize {
        match self {
            Self::XyzI => 16,
            Self::XyzIRingTime => 24,
        }
    }

    /// The PointCloud2 fields of this layout.
    pub fn fields(self) -> &'static [FieldDesc] {
        const XYZI: [FieldDesc; 4] = [("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("intensity", 12, 7)];
        const XYZIRT: [FieldDesc; 6] = [
            ("x", 0, 7),
            ("y", 4, 7),
            ("z", 8, 7),
            ("intensity", 12, 7),
            ("ring", 16, 4),
            ("time", 20, 7),
        ];
        match self {
            Self::XyzI => &XYZI,
            Self::XyzIRingTime => &XYZIRT,
        }
    }
}

/// Decoder settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecoderConfig {
    /// Output record layout.
    pub layout: PointLayout,
    /// Keep "no return" slots as NaN points (an organised cloud, 384 points per packet) instead
    /// of dropping them.
    pub keep_no_return: bool,
    /// A new rotation starts at the first block whose azimuth wraps past this angle (0.01°).
    pub cut_azimuth: u16,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            layout: PointLayout::XyzIRingTime,
            keep_no_return: false,
            cut_azimuth: 0,
        }
    }
}

/// Precomputed trigonometry: sin/cos per 0.01° of azimuth and per laser elevation.
struct Tables {
    /// (sin, cos) per 0.01° of azimuth, 36000 entries.
    sin_cos_az: Vec<(f32, f32)>,
    cos_el: [f32; LASERS],
    sin_el: [f32; LASERS],
    /// Firing offset of channel `c` (0..31) from the start of its block, in ns.
    offset_ns: [u32; CHANNELS_PER_BLOCK],
    /// The same in seconds.
    offset_s: [f32; CHANNELS_PER_BLOCK],
}

impl Tables {
    fn new() -> Self {
        let sin_cos_az = (0..AZIMUTH_FULL)
            .map(|a| (f64::from(a) / 100.0).to_radians().sin_cos())
            .map(|(s, c)| (s as f32, c as f32))
            .collect();
        let el = ELEVATION_DEG.map(|d| f64::from(d).to_radians());
        let mut offset_ns = [0; CHANNELS_PER_BLOCK];
        for (c, o) in offset_ns.iter_mut().enumerate() {
            *o = (c / LASERS) as u32 * SEQUENCE_PERIOD_NS + (c % LASERS) as u32 * LASER_PERIOD_NS;
        }
        Self {
            sin_cos_az,
            cos_el: el.map(|e| e.cos() as f32),
            sin_el: el.map(|e| e.sin() as f32),
            offset_ns,
            offset_s: offset_ns.map(|o| (f64::from(o) * 1e-9) as f32),
        }
    }
}

/// Facts about one finished (or partial) cloud.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CloudInfo {
    /// Points written (`width` of the cloud).
    pub points: usize,
    /// Bytes written (`points × point_step`).
    pub bytes: usize,
    /// "No return" slots seen (dropped, or written as NaN when kept).
    pub no_returns: usize,
    /// Packets that contributed blocks (a packet split by the wrap counts in both clouds).
    pub packets: usize,
    /// Blocks decoded (including blocks dropped because the buffer was full).
    pub blocks: usize,
    /// Time of the first firing, µs past the hour of the first packet, unwrapped across hours.
    pub first_time_us: u64,
    /// Time of the last firing, same clock as `first_time_us`.
    pub last_time_us: u64,
    /// Sequence number of this cloud (0, 1, 2, …) since the assembler was created.
    pub seq: u64,
    /// True when the cloud starts at a wrap (a full rotation); the first cloud after start-up
    /// is partial.
    pub complete: bool,
}

/// What [`RotationAssembler::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Push {
    /// The whole packet went into the current cloud.
    Consumed,
    /// A rotation ended before block `resume_block`: publish the buffer (its first
    /// `info.bytes` bytes), give a fresh one, and call [`RotationAssembler::push`] again with
    /// `from_block = resume_block`.
    Rotation {
        /// The finished cloud.
        info: CloudInfo,
        /// Block to continue from in the same packet.
        resume_block: usize,
    },
}

/// Counters of a decoder (monotonic, never reset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Packets accepted.
    pub packets: u64,
    /// Packets rejected (any [`Vlp16Error`] from parsing).
    pub malformed: u64,
    /// Rotations (clouds) finished.
    pub rotations: u64,
    /// Points written.
    pub points: u64,
    /// Blocks that did not fit the output buffer and were dropped.
    pub overflow_blocks: u64,
}

/// Turns a stream of packets into one cloud per rotation, written into caller buffers.
pub struct RotationAssembler {
    cfg: DecoderConfig,
    tables: Tables,
    last_azimuth: Option<u32>,
    hour_base_us: u64,
    last_stamp_us: Option<u32>,
    current: CloudInfo,
    stats: DecodeStats,
    /// Azimuth increment (0.01°) of each channel for the gap `interp_gap`.
    interp: [u32; CHANNELS_PER_BLOCK],
    interp_gap: Option<u32>,
}

impl RotationAssembler {
    /// Creates an assembler (allocates its 288 KB trigonometry table once).
    pub fn new(cfg: DecoderConfig) -> Self {
        Self {
            cfg,
            tables: Tables::new(),
            last_azimuth: None,
            hour_base_us: 0,
            last_stamp_us: None,
            current: CloudInfo::default(),
            stats: DecodeStats::default(),
            interp: [0; CHANNELS_PER_BLOCK],
            interp_gap: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    /// Counters so far.
    pub fn stats(&self) -> DecodeStats {
        self.stats
    }

    /// The cloud being assembled (points so far).
    pub fn current(&self) -> CloudInfo {
        self.current
    }

    /// Validates a packet, counting it as malformed on error.
    ///
    /// # Errors
    /// See [`Packet::parse`].
    pub fn parse<'a>(&mut self, bytes: &'a [u8]) -> Result<Packet<'a>, Vlp16Error> {
        let r = Packet::parse(bytes);
        match r {
            Ok(_) => self.stats.packets += 1,
            Err(_) => self.stats.malformed += 1,
        }
        r
    }

    /// Ends the current cloud without a wrap (end of stream): returns it if it has points.
    pub fn flush(&mut self) -> Option<CloudInfo> {
        (self.current.blocks > 0).then(|| self.finish())
    }

    fn finish(&mut self) -> CloudInfo {
        let info = self.current;
        self.stats.rotations += 1;
        self.current = CloudInfo {
            seq: info.seq + 1,
            complete: true,
            ..CloudInfo::default()
        };
        info
    }

    fn unwrap_stamp(&mut self, stamp: u32) -> u64 {
        if let Some(prev) = self.last_stamp_us {
            // A jump back by more than half an hour is the top of the hour.
            if u64::from(stamp) + US_PER_HOUR / 2 < u64::from(prev) {
                self.hour_base_us += US_PER_HOUR;
            }
        }
        self.last_stamp_us = Some(stamp);
        self.hour_base_us + u64::from(stamp)
    }

    /// Decodes blocks `from_block..` of `pkt` into `out` (points of the current cloud so far
    /// occupy `out[..current().bytes]`), stopping at a rotation wrap.
    ///
    /// Blocks that do not fit `out` are dropped and counted (`overflow_blocks`); a cloud never
    /// grows past the buffer. No allocation.
    pub fn push(&mut self, pkt: &Packet<'_>, from_block: usize, out: &mut [u8]) -> Push {
        let cut = u32::from(self.cfg.cut_azimuth);
        let stamp = if from_block == 0 {
            self.unwrap_stamp(pkt.timestamp_us())
        } else {
            self.hour_base_us + u64::from(pkt.timestamp_us())
        };
        let mut counted_packet = false;
        for block in from_block..BLOCKS {
            let az = u32::from(u16_at(pkt.raw, block * 100 + 2));
            let rel = (az + AZIMUTH_FULL - cut) % AZIMUTH_FULL;
            let wrapped = self.last_azimuth.is_some_and(|prev| rel < prev);
            self.last_azimuth = Some(rel);
            if wrapped && self.current.blocks > 0 {
                // `last_azimuth` already holds this block, so the next call resumes here.
                return Push::Rotation {
                    info: self.finish(),
                    resume_block: block,
                };
            }
            if !counted_packet {
                self.current.packets += 1;
                counted_packet = true;
            }
            self.decode_block(pkt, block, az, stamp, out);
        }
        Push::Consumed
    }

    fn decode_block(
        &mut self,
        pkt: &Packet<'_>,
        block: usize,
        az: u32,
        stamp_us: u64,
        out: &mut [u8],
    ) {
        let step = self.cfg.layout.point_step();
        let gap = pkt.gap(block);
        let seq0 = pkt.sequence_of_block(block);
        let block_ns = u64::from(seq0) * u64::from(SEQUENCE_PERIOD_NS);
        let first_ns = stamp_us * 1000 + block_ns;
        if self.current.blocks == 0 {
            self.current.first_time_us = first_ns / 1000;
        }
        self.current.blocks += 1;
        let needed = self.current.bytes + CHANNELS_PER_BLOCK * step;
        if needed > out.len() {
            self.stats.overflow_blocks += 1;
            return;
        }
        let cloud_start_ns = self.current.first_time_us * 1000;
        if self.interp_gap != Some(gap) {
            // Precision azimuth: block azimuth + gap × (firing offset / two sequences), rounded.
            let period2 = 2 * SEQUENCE_PERIOD_NS;
            for (i, o) in self.interp.iter_mut().zip(self.tables.offset_ns) {
                *i = (gap * o + period2 / 2) / period2;
            }
            self.interp_gap = Some(gap);
        }
        let t = &self.tables;
        let block_s = (first_ns.saturating_sub(cloud_start_ns) as f64 * 1e-9) as f32;
        let with_ring_time = self.cfg.layout == PointLayout::XyzIRingTime;
        let base = block * 100 + 4;
        let mut at = self.current.bytes;
        for c in 0..CHANNELS_PER_BLOCK {
            let off = base + 3 * c;
            let raw = u16::from_le_bytes([pkt.raw[off], pkt.raw[off + 1]]);
            let refl = pkt.raw[off + 2];
            let laser = c % LASERS;
            if raw == 0 {
                self.current.no_returns += 1;
                if !self.cfg.keep_no_return {
                    continue;
                }
            }
            let mut a = (az + self.interp[c]) as usize;
            if a >= AZIMUTH_FULL as usize {
                a -= AZIMUTH_FULL as usize;
            }
            let (x, y, z) = if raw == 0 {
                (f32::NAN, f32::NAN, f32::NAN)
            } else {
                let r = f32::from(raw) * DISTANCE_UNIT_M;
                let xy = r * t.cos_el[laser];
                let (sin, cos) = t.sin_cos_az.get(a).copied().unwrap_or((0.0, 1.0));
                (xy * sin, xy * cos, r * t.sin_el[laser])
            };
            let mut rec = [0u8; 24];
            rec[0..4].copy_from_slice(&x.to_le_bytes());
            rec[4..8].copy_from_slice(&y.to_le_bytes());
            rec[8..12].copy_from_slice(&z.to_le_bytes());
            rec[12..16].copy_from_slice(&f32::from(refl).to_le_bytes());
            if with_ring_time {
                rec[16..18].copy_from_slice(&ring_of_laser(laser).to_le_bytes());
                rec[20..24].copy_from_slice(&(block_s + t.offset_s[c]).to_le_bytes());
            }
            out[at..at + step].copy_from_slice(&rec[..step]);
            at += step;
            self.current.points += 1;
        }
        self.stats.points += ((at - self.current.bytes) / step) as u64;
        self.current.bytes = at;
        let last_ns = first_ns + u64::from(SEQUENCE_PERIOD_NS + 15 * LASER_PERIOD_NS);
        self.current.last_time_us = last_ns / 1000;
    }
}

/// Decodes a concatenation of 1206-byte packets (like `recording.bin`) into clouds, calling
/// `on_cloud` with each cloud's bytes and facts; the trailing partial cloud is flushed.
/// Malformed packets are counted in the returned stats and skipped. Allocates one buffer of
/// `capacity` bytes; for tests, tools and the benchmark.
pub fn decode_stream(
    packets: &[u8],
    cfg: DecoderConfig,
    capacity: usize,
    mut on_cloud: impl FnMut(&[u8], &CloudInfo),
) -> DecodeStats {
    let mut asm = RotationAssembler::new(cfg);
    let mut buf = vec![0u8; capacity];
    for chunk in packets.chunks(PACKET_SIZE) {
        let Ok(pkt) = asm.parse(chunk) else { continue };
        let mut from = 0;
        while let Push::Rotation { info, resume_block } = asm.push(&pkt, from, &mut buf) {
            on_cloud(&buf[..info.bytes], &info);
            from = resume_block;
        }
    }
    if let Some(info) = asm.flush() {
        on_cloud(&buf[..info.bytes], &info);
    }
    asm.stats()
}
