//! The per-stream path choice: the path with the lowest predicted ΔL among those available,
//! or the one the configuration forces, with a one-line explanation for logs and the WCET
//! report.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::BridgeError;
use crate::model::{Estimate, Path, Profile, Provenance};

/// Where a stream's frames come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A slab in host shared memory (the normal case).
    #[default]
    HostSlab,
    /// A third-party PCIe device (NIC, capture card) that can write GPU memory itself when
    /// the GPU supports GPUDirect RDMA or dma-buf; otherwise its frames land in a host slab.
    PeerDevice,
}

/// What the policy needs to know about one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamConfig {
    /// Stream name, for the explanation.
    pub name: String,
    /// Frame size in bytes (the largest frame the stream carries).
    pub frame_bytes: u64,
    /// Size of the slab the frames live in (for the one-time registration cost).
    pub slab_bytes: u64,
    /// Whether the slab is (or may be) registered with the driver; peer paths need it.
    pub slab_registered: bool,
    /// Where frames come from.
    #[serde(default)]
    pub source: Source,
    /// A path forced by the configuration, or `None` to let the model choose.
    #[serde(default)]
    pub forced: Option<Path>,
}

/// The policy's decision for one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// Stream name.
    pub stream: String,
    /// The chosen path's prediction.
    pub estimate: Estimate,
    /// True when the configuration forced the path.
    pub forced: bool,
    /// Every available path's prediction, cheapest first.
    pub ranking: Vec<Estimate>,
    /// One-time registration cost of the slab in ns, when the chosen path needs it.
    pub registration_once_ns: Option<f64>,
    /// Profile label the prediction came from.
    pub profile_label: String,
}

/// What the WCET report records about a stream's path choice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChoiceSummary {
    /// Stream name.
    pub stream: String,
    /// Chosen path.
    pub path: Path,
    /// ΔL added to the stream's latency chain, ns.
    pub delta_l_ns: u64,
    /// Whether every term of ΔL was measured.
    pub provenance: Provenance,
    /// True when the configuration forced the path.
    pub forced: bool,
    /// One-time slab registration cost, ns (not part of the per-frame chain).
    pub registration_once_ns: Option<f64>,
    /// The explanation line.
    pub explanation: String,
}

impl Choice {
    /// The chosen path.
    pub fn path(&self) -> Path {
        self.estimate.path
    }

    /// The record for the WCET report.
    pub fn summary(&self) -> ChoiceSummary {
        ChoiceSummary {
            stream: self.stream.clone(),
            path: self.path(),
            delta_l_ns: self.delta_l_ns(),
            provenance: self.estimate.provenance,
            forced: self.forced,
            registration_once_ns: self.registration_once_ns,
            explanation: self.explain(),
        }
    }

    /// The chosen path's ΔL in whole ns (rounded up): what the WCET chain adds.
    pub fn delta_l_ns(&self) -> u64 {
        self.estimate.total_ns().ceil() as u64
    }

    /// One human line for logs and the WCET report.
    pub fn explain(&self) -> String {
        let e = &self.estimate;
        let mut terms = Vec::new();
        if e.ingress_ns > 0.0 {
            terms.push(format!("peer→host ingress {}", us(e.ingress_ns)));
        }
        if e.host_copy_ns > 0.0 {
            terms.push(format!("CPU copy {}", us(e.host_copy_ns)));
        }
        terms.push(format!("wire {}", us(e.wire_ns)));
        terms.push(format!("setup {}", us(e.setup_ns)));
        terms.push(format!("sync {}", us(e.sync_ns)));
        let why = if self.forced {
            "forced by config".to_string()
        } else {
            match self.ranking.iter().find(|r| r.path != e.path) {
                Some(r) => format!(
                    "lowest of {} candidates; next {} {}",
                    self.ranking.len(),
                    r.path,
                    us(r.total_ns())
                ),
                None => "only available path".to_string(),
            }
        };
        let reg = match self.registration_once_ns {
            Some(ns) => format!("; slab registration {} once per slab", us(ns)),
            None => String::new(),
        };
        format!(
            "stream {:?}: path {} ΔL {} for {} B ({}; {}) — {}{} [profile: {}]",
            self.stream,
            e.path,
            us(e.total_ns()),
            e.bytes,
            terms.join(" + "),
            e.provenance,
            why,
            reg,
            self.profile_label
        )
    }
}

fn us(ns: f64) -> String {
    format!("{:.1} µs", ns / 1000.0)
}

/// Chooses paths from a [`Profile`].
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    profile: Profile,
}

impl Policy {
    /// A policy over `profile`.
    pub fn new(profile: Profile) -> Self {
        Policy { profile }
    }

    /// The profile in use.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Why `path` cannot carry this stream, or `None` if it can.
    pub fn unavailable_reason(&self, cfg: &StreamConfig, path: Path) -> Option<String> {
        let caps = &self.profile.capabilities;
        match path {
            Path::ThirdPartyPeer => {
                if cfg.source != Source::PeerDevice {
                    Some("the stream's source is a host slab, not a peer device".into())
                } else if !(caps.gpudirect_rdma || caps.dma_buf) {
                    Some(format!(
                        "the GPU reports neither GPUDirect RDMA nor dma-buf support{}",
                        if caps.detected {
                            ""
                        } else {
                            " (no GPU detected)"
                        }
                    ))
                } else {
                    None
                }
            }
            Path::PeerDma | Path::PeerZeroCopy if !cfg.slab_registered => {
                Some("the slab is not registered with the driver".into())
            }
            Path::PeerZeroCopy if caps.detected && !caps.can_map_host_memory => {
                Some("the GPU cannot map host memory".into())
            }
            Path::Pageable if cfg.slab_registered => {
                Some("the slab is registered, so a direct copy is peer DMA".into())
            }
            _ => None,
        }
    }

    /// The paths that can carry this stream, in [`Path::ALL`] order.
    pub fn candidates(&self, cfg: &StreamConfig) -> Vec<Path> {
        Path::ALL
            .into_iter()
            .filter(|&p| self.unavailable_reason(cfg, p).is_none())
            .collect()
    }

    /// Chooses the path for a stream.
    ///
    /// # Examples
    /// ```
    /// use gpu_bridge::{Path, Policy, Profile, Source, StreamConfig};
    ///
    /// let policy = Policy::new(Profile::pcie4_x16_default());
    /// let choice = policy.choose(&StreamConfig {
    ///     name: "camera".into(),
    ///     frame_bytes: 2_500_000,
    ///     slab_bytes: 16 << 20,
    ///     slab_registered: true,
    ///     source: Source::HostSlab,
    ///     forced: None,
    /// })?;
    /// assert_eq!(choice.path(), Path::PeerDma);
    /// assert!(choice.delta_l_ns() >= 100_000); // 2.5 MB / 25 GB/s = 100 µs, plus setup
    /// println!("{}", choice.explain());
    /// # Ok::<(), gpu_bridge::BridgeError>(())
    /// ```
    ///
    /// # Errors
    /// [`BridgeError::PathUnavailable`] when the forced path cannot carry the stream.
    pub fn choose(&self, cfg: &StreamConfig) -> Result<Choice, BridgeError> {
        let estimate = |p: Path| match cfg.source {
            Source::HostSlab => self.profile.estimate(p, cfg.frame_bytes),
            Source::PeerDevice => self.profile.estimate_from_peer(p, cfg.frame_bytes),
        };
        let mut ranking: Vec<Estimate> = self.candidates(cfg).into_iter().map(estimate).collect();
        // Stable sort: ties keep Path::ALL order.
        ranking.sort_by(|a, b| a.total_ns().total_cmp(&b.total_ns()));
        let estimate = match cfg.forced {
            Some(path) => {
                if let Some(reason) = self.unavailable_reason(cfg, path) {
                    return Err(BridgeError::PathUnavailable { path, reason });
                }
                estimate(path)
            }
            None => *ranking
                .first()
                .ok_or_else(|| BridgeError::PathUnavailable {
                    path: Path::Bounce,
                    reason: "no path can carry this stream".into(),
                })?,
        };
        let registration_once_ns = estimate
            .path
            .needs_registered_slab()
            .then(|| self.profile.registration.cost_ns(cfg.slab_bytes));
        Ok(Choice {
            stream: cfg.name.clone(),
            estimate,
            forced: cfg.forced.is_some(),
            ranking,
            registration_once_ns,
            profile_label: self.profile.label.clone(),
        })
    }

    /// For a host-slab source: the smallest positive frame size at which `a` and `b` predict
    /// the same ΔL, if they cross: below it one path wins, above it (up to the next crossing,
    /// which two-segment links can have) the other. ΔL is piecewise linear in size, so the
    /// crossing is found segment by segment between the links' knees.
    pub fn crossover_bytes(&self, a: Path, b: Path) -> Option<f64> {
        let p = &self.profile;
        let links = |q: Path| {
            let mut v = vec![p.link(q)];
            if q == Path::Bounce {
                v.push(&p.host_copy);
            }
            v
        };
        let (la, lb) = (links(a), links(b));
        let mut breaks: Vec<f64> = la
            .iter()
            .chain(lb.iter())
            .filter_map(|l| l.knee.map(|k| k.bytes as f64))
            .collect();
        breaks.push(0.0);
        breaks.sort_by(f64::total_cmp);
        breaks.dedup();
        let fixed = |q: Path| p.estimate(q, 0).total_ns();
        let wire =
            |ls: &[&crate::model::LinkCost], x: f64| ls.iter().map(|l| l.wire_at(x)).sum::<f64>();
        let slope = |ls: &[&crate::model::LinkCost], x: f64| {
            ls.iter().map(|l| l.ns_per_byte_after(x)).sum::<f64>()
        };
        for (i, &x0) in breaks.iter().enumerate() {
            let x1 = breaks.get(i + 1).copied().unwrap_or(f64::INFINITY);
            let d0 = fixed(a) + wire(&la, x0) - fixed(b) - wire(&lb, x0);
            let ds = slope(&la, x0) - slope(&lb, x0);
            if ds == 0.0 {
                continue;
            }
            let x = x0 - d0 / ds;
            if x.is_finite() && x > 0.0 && x >= x0 && x < x1 {
                return Some(x);
            }
        }
        None
    }
}

/// Accounts the registration cost once per slab: the first stream that takes a peer path on a
/// slab pays it, later ones do not.
#[derive(Debug, Default, Clone)]
pub struct RegistrationLedger {
    charged: BTreeSet<u64>,
    total_ns: f64,
    provenance: Option<Provenance>,
}

impl RegistrationLedger {
    /// Charges `cost_ns` for `slab` if it was not charged before; returns what was charged.
    pub fn charge(&mut self, slab: u64, cost_ns: f64, provenance: Provenance) -> Option<f64> {
        if self.charged.insert(slab) {
            self.total_ns += cost_ns;
            self.provenance = Some(self.provenance.unwrap_or(provenance).and(provenance));
            Some(cost_ns)
        } else {
            None
        }
    }

    /// Total one-time registration cost charged so far, in ns, and its provenance.
    pub fn total(&self) -> (f64, Option<Provenance>) {
        (self.total_ns, self.provenance)
    }
}
