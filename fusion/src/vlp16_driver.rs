//! The VLP-16 UDP driver: a [`SensorDriver`] that receives data packets with `recvmmsg` into its
//! pre-allocated packet ring, decodes them straight into a loaned shared-memory chunk and
//! publishes one point cloud per full rotation.
//!
//! # What a published sample holds
//! - payload: the cloud as PointCloud2 `x, y, z, intensity` float32 (`point_step` 16, the LiDAR
//!   layout of [`crate::driver::meta`]), Velodyne sensor frame (see [`crate::vlp16`]), "no return"
//!   slots dropped (a dense cloud);
//! - user header: [`FrameMeta::lidar`] (points, frame counter); user word: the LiDAR kind;
//! - sensor time: `CLOCK_MONOTONIC` of the rotation's first firing, estimated as the time the
//!   rotation was complete minus its firing span (network delay, < 1 ms, is not removed);
//! - DMA time: when the last point was written.
//!
//! Only full rotations are published: the partial rotation in progress at start-up is decoded
//! and discarded. Malformed datagrams are counted by kind ([`Vlp16Driver::udp_stats`]) and the
//! first of each kind is logged; a rotation that finds no free chunk is decoded into a private
//! buffer and dropped (counted in `loan_failures`), so the socket is always drained.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use shm_transport::{ChannelConfig, Publisher};

use crate::driver::meta::{FrameMeta, StreamKind, META_LEN};
use crate::driver::synthetic::ChannelParams;
use crate::driver::{DriverError, DriverStats, SensorDriver, STEADY_AFTER_FRAMES};
use crate::rt::{self, now_ns};
use crate::udp::{DatagramCheck, PacketReceiver, PipelineStats, UdpConfig};
use crate::vlp16::{CloudInfo, DecoderConfig, Packet, PointLayout, Push, RotationAssembler};

/// Settings of a [`Vlp16Driver`].
#[derive(Clone, Debug, PartialEq)]
pub struct Vlp16DriverConfig {
    /// Driver name (default channel name).
    pub name: String,
    /// Socket settings (bind address, batch size, receive buffer, read timeout).
    pub udp: UdpConfig,
    /// Motor speed in revolutions per minute (300..=1200): the nominal cloud rate is rpm / 60.
    pub rpm: f64,
    /// Rotation cut angle in 0.01° (see [`DecoderConfig::cut_azimuth`]).
    pub cut_azimuth: u16,
    /// Chunk payload size: the largest cloud in bytes. The default (1 MiB) holds a full organised
    /// rotation at 300 rpm (151 packets × 384 points × 16 bytes); blocks beyond it are dropped.
    pub chunk_size: usize,
    /// Channel shape.
    pub channel: ChannelParams,
}

impl Default for Vlp16DriverConfig {
    fn default() -> Self {
        Self {
            name: "vlp16".into(),
            udp: UdpConfig::default(),
            rpm: 600.0,
            cut_azimuth: 0,
            chunk_size: 1 << 20,
            channel: ChannelParams::frames(),
        }
    }
}

/// The VLP-16 UDP driver.
pub struct Vlp16Driver {
    cfg: Vlp16DriverConfig,
    rx: PacketReceiver,
    asm: RotationAssembler,
    check: DatagramCheck,
    /// Datagrams in the ring from the last batch, and the next one to decode.
    received: usize,
    next: usize,
    /// Block of datagram `next` to resume at (a rotation ended inside it).
    from_block: usize,
    /// Where a rotation goes when no chunk is free (allocated once).
    scratch: Vec<u8>,
}

impl Vlp16Driver {
    /// Binds the socket now (so a sender can be pointed at [`Self::local_addr`]).
    ///
    /// # Errors
    /// [`DriverError::Config`] for a bad rpm or chunk size, or when the socket cannot be bound.
    pub fn new(cfg: Vlp16DriverConfig) -> Result<Self, DriverError> {
        if !(300.0..=1200.0).contains(&cfg.rpm) {
            return Err(DriverError::Config(format!(
                "VLP-16 rpm {} not in 300..=1200",
                cfg.rpm
            )));
        }
        if cfg.chunk_size < 32 * PointLayout::XyzI.point_step() {
            return Err(DriverError::Config(format!(
                "VLP-16 chunk size {} cannot hold one block",
                cfg.chunk_size
            )));
        }
        let rx = PacketReceiver::bind(&cfg.udp).map_err(|e| {
            DriverError::Config(format!("binding VLP-16 UDP socket {}: {e}", cfg.udp.bind))
        })?;
        let decoder = DecoderConfig {
            layout: PointLayout::XyzI,
            keep_no_return: false,
            cut_azimuth: cfg.cut_azimuth,
        };
        Ok(Self {
            rx,
            asm: RotationAssembler::new(decoder),
            check: DatagramCheck::default(),
            received: 0,
            next: 0,
            from_block: 0,
            scratch: vec![0; cfg.chunk_size],
            cfg,
        })
    }

    /// The bound address.
    ///
    /// # Errors
    /// `getsockname` failed.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.rx.local_addr()
    }

    /// Datagram counters (malformed ones by kind) and clouds published.
    pub fn udp_stats(&self) -> PipelineStats {
        self.check.stats()
    }

    /// Decodes datagrams into `buf` until a rotation completes (`Some`) or `stop` is set while
    /// the ring is empty (`None`).
    fn fill_rotation(
        &mut self,
        buf: &mut [u8],
        stop: &AtomicBool,
    ) -> Result<Option<CloudInfo>, DriverError> {
        loop {
            if self.next >= self.received {
                // SYNC: Acquire pairs with the Release store of whoever stops the driver.
                if stop.load(Ordering::Acquire) {
                    return Ok(None);
                }
                self.received = self
                    .rx
                    .recv_batch()
                    .map_err(|e| DriverError::Config(format!("VLP-16 UDP receive: {e}")))?;
                self.next = 0;
                self.from_block = 0;
                continue;
            }
            let Some((datagram, truncated)) = self.rx.datagram(self.next) else {
                self.next = self.received;
                continue;
            };
            let pkt = if self.from_block == 0 {
                self.check.accept(&mut self.asm, datagram, truncated)
            } else {
                // Resuming inside a packet that was accepted (and counted) already.
                Packet::parse(datagram).ok()
            };
            let Some(pkt) = pkt else {
                self.next += 1;
                self.from_block = 0;
                continue;
            };
            match self.asm.push(&pkt, self.from_block, buf) {
                Push::Consumed => {
                    self.next += 1;
                    self.from_block = 0;
                }
                Push::Rotation { info, resume_block } => {
                    self.from_block = resume_block;
                    if info.complete {
                        return Ok(Some(info));
                    }
                    // The partial rotation of the start: discard it, keep filling the buffer.
                }
            }
        }
    }
}

impl SensorDriver for Vlp16Driver {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn kind(&self) -> StreamKind {
        StreamKind::Lidar
    }

    fn rate_hz(&self) -> f64 {
        self.cfg.rpm / 60.0
    }

    fn channel_config(&self) -> ChannelConfig {
        let p = &self.cfg.channel;
        ChannelConfig {
            chunk_size: self.cfg.chunk_size,
            chunk_count: p.chunk_count,
            ring_depth: p.ring_depth,
            max_subscribers: p.max_subscribers,
            user_header_size: META_LEN,
            wakeup: p.wakeup,
            ..ChannelConfig::default()
        }
    }

    fn run(
        &mut self,
        publisher: &mut Publisher,
        stop: &AtomicBool,
    ) -> Result<DriverStats, DriverError> {
        let mut st = DriverStats::default();
        let mut frame = 0u64;
        let mut base = None;
        loop {
            if frame + st.loan_failures == STEADY_AFTER_FRAMES && base.is_none() {
                base = Some((crate::alloc_check::thread_counts(), rt::thread_usage()));
            }
            let mut sample = match publisher.loan() {
                Ok(s) => s,
                Err(_) => {
                    st.loan_failures += 1;
                    let mut scratch = std::mem::take(&mut self.scratch);
                    let got = self.fill_rotation(&mut scratch, stop);
                    self.scratch = scratch;
                    match got? {
                        Some(_) => continue,
                        None => break,
                    }
                }
            };
            let Some(info) = self.fill_rotation(sample.payload_mut(), stop)? else {
                break;
            };
            let t_dma = now_ns();
            let span_ns = (info.last_time_us - info.first_time_us) * 1000;
            let points = u32::try_from(info.points).unwrap_or(u32::MAX);
            FrameMeta::lidar(points, frame).encode(sample.user_header_mut())?;
            sample.set_len(info.bytes);
            sample.set_sensor_time(t_dma.saturating_sub(span_ns));
            sample.set_dma_time(t_dma);
            sample.set_user(StreamKind::Lidar.user_word());
            match sample.publish() {
                Ok(_) => {
                    st.published += 1;
                    self.check.stats_mut().clouds += 1;
                }
                Err(_) => st.rejected += 1,
            }
            frame += 1;
        }
        if let Some((a0, u0)) = base {
            st.steady_allocations = crate::alloc_check::thread_counts().since(&a0).allocs;
            st.steady_minor_faults = rt::thread_usage().since(&u0).minor_faults;
            st.steady_frames = frame + st.loan_failures - STEADY_AFTER_FRAMES;
        }
        let u = self.check.stats();
        tracing::info!(
            "VLP-16 driver {}: {} clouds, {} packets, {} malformed datagrams \
             ({} wrong size, {} bad flag, {} bad azimuth, {} bad product/mode){}",
            self.cfg.name,
            st.published,
            u.packets,
            u.malformed(),
            u.wrong_size,
            u.bad_flag,
            u.bad_azimuth,
            u.bad_product_or_mode,
            self.check
                .last_error()
                .map(|e| format!(", last: {e}"))
                .unwrap_or_default()
        );
        Ok(st)
    }
}
