//! Unit and property tests of the cost model and the policy.

use gpu_bridge::fit::{fit_link_segmented, max_relative_error};
use gpu_bridge::model::{
    fit_link, Knee, LinkCost, RegistrationCost, SyncCost, PROFILE_FORMAT_VERSION,
};
use gpu_bridge::policy::RegistrationLedger;
use gpu_bridge::{
    BridgeError, Capabilities, Path, Policy, Profile, ProfileError, Provenance, Source,
    StreamConfig,
};
use proptest::prelude::*;

fn cfg(bytes: u64, registered: bool) -> StreamConfig {
    StreamConfig {
        name: "cam".into(),
        frame_bytes: bytes,
        slab_bytes: 64 << 20,
        slab_registered: registered,
        source: Source::HostSlab,
        forced: None,
    }
}

/// The seed's worked example: a 2.5 MB frame over PCIe 4.0 x16 (~25 GB/s) makes the bounce
/// path add on the order of a hundred microseconds or more (size / 25 GB/s plus setup).
#[test]
fn worked_example_2_5_mb_over_pcie4_x16() {
    let p = Profile::pcie4_x16_default();
    let e = p.estimate(Path::Bounce, 2_500_000);
    // The DMA leg alone is 2.5e6 B / 25e9 B/s = 100 µs.
    assert!((e.wire_ns - 100_000.0).abs() < 1.0, "wire {}", e.wire_ns);
    assert!(e.total_ns() >= 100_000.0, "ΔL {}", e.total_ns());
    // …and it stays "on the order of" 100 µs: under a millisecond.
    assert!(e.total_ns() < 1_000_000.0, "ΔL {}", e.total_ns());
    assert_eq!(e.provenance, Provenance::Modeled);
    // Peer DMA from the registered slab saves the CPU copy.
    let peer = p.estimate(Path::PeerDma, 2_500_000);
    assert!(peer.total_ns() < e.total_ns());
    assert!(peer.total_ns() >= 100_000.0);
}

#[test]
fn setup_dominates_small_frames_with_the_default_profile() {
    let p = Profile::pcie4_x16_default();
    for path in [
        Path::PeerDma,
        Path::PeerZeroCopy,
        Path::Bounce,
        Path::Pageable,
    ] {
        let e = p.estimate(path, 4096);
        let fixed = e.setup_ns + e.sync_ns;
        assert!(fixed > 0.9 * e.total_ns(), "{path}: {e:?}");
    }
}

#[test]
fn default_policy_flips_from_zero_copy_to_dma_at_the_crossover() {
    let policy = Policy::new(Profile::pcie4_x16_default());
    let x = policy
        .crossover_bytes(Path::PeerZeroCopy, Path::PeerDma)
        .expect("lines cross");
    // 5 µs + s/20 = 6 µs + s/25 (ns, B) → s = 100 000 B.
    assert!((x - 100_000.0).abs() < 1.0, "{x}");
    let below = policy.choose(&cfg(99_000, true)).unwrap();
    let above = policy.choose(&cfg(101_000, true)).unwrap();
    assert_eq!(below.path(), Path::PeerZeroCopy);
    assert_eq!(above.path(), Path::PeerDma);
    let line = above.explain();
    assert!(line.contains("peer-dma") && line.contains("µs") && line.contains("modeled"));
    assert!(line.contains("slab registration"), "{line}");
    assert_eq!(above.delta_l_ns(), above.estimate.total_ns().ceil() as u64);
    let sum = above.summary();
    assert_eq!(
        (sum.path, sum.delta_l_ns),
        (Path::PeerDma, above.delta_l_ns())
    );
    let json = serde_json::to_value(&sum).unwrap();
    assert_eq!(json["path"], "peer-dma");
    assert_eq!(json["provenance"], "modeled");
}

#[test]
fn unregistered_slab_offers_bounce_and_pageable_only() {
    let policy = Policy::new(Profile::pcie4_x16_default());
    assert_eq!(
        policy.candidates(&cfg(1 << 20, false)),
        vec![Path::Bounce, Path::Pageable]
    );
    assert_eq!(
        policy.candidates(&cfg(1 << 20, true)),
        vec![Path::PeerDma, Path::PeerZeroCopy, Path::Bounce]
    );
    let c = policy.choose(&cfg(1 << 20, false)).unwrap();
    assert_eq!(c.registration_once_ns, None);
}

#[test]
fn forced_path_is_honoured_or_refused_with_a_reason() {
    let policy = Policy::new(Profile::pcie4_x16_default());
    let mut c = cfg(4 << 20, true);
    c.forced = Some(Path::Bounce);
    let ch = policy.choose(&c).unwrap();
    assert_eq!(ch.path(), Path::Bounce);
    assert!(ch.forced && ch.explain().contains("forced by config"));
    c.slab_registered = false;
    c.forced = Some(Path::PeerDma);
    match policy.choose(&c) {
        Err(BridgeError::PathUnavailable { path, reason }) => {
            assert_eq!(path, Path::PeerDma);
            assert!(reason.contains("not registered"), "{reason}");
        }
        other => panic!("expected PathUnavailable, got {other:?}"),
    }
}

#[test]
fn third_party_peer_needs_detected_support_and_a_peer_source() {
    let mut p = Profile::pcie4_x16_default();
    let mut c = cfg(8 << 20, true);
    c.source = Source::PeerDevice;
    let policy = Policy::new(p.clone());
    assert!(!policy.candidates(&c).contains(&Path::ThirdPartyPeer));
    let reason = policy.unavailable_reason(&c, Path::ThirdPartyPeer).unwrap();
    assert!(reason.contains("no GPU detected"), "{reason}");
    // Without RDMA the peer's frames land in the host slab first: the ingress leg counts.
    let via_host = policy.choose(&c).unwrap();
    assert!(via_host.estimate.ingress_ns > 0.0);
    assert!(via_host.explain().contains("peer→host ingress"));
    p.capabilities = Capabilities {
        can_map_host_memory: true,
        gpudirect_rdma: true,
        dma_buf: false,
        detected: true,
    };
    let policy = Policy::new(p);
    assert!(policy.candidates(&c).contains(&Path::ThirdPartyPeer));
    assert_eq!(policy.choose(&c).unwrap().path(), Path::ThirdPartyPeer);
    c.source = Source::HostSlab;
    assert!(!policy.candidates(&c).contains(&Path::ThirdPartyPeer));
}

#[test]
fn registration_is_charged_once_per_slab() {
    let mut l = RegistrationLedger::default();
    assert_eq!(l.charge(1, 500.0, Provenance::Measured), Some(500.0));
    assert_eq!(l.charge(1, 500.0, Provenance::Measured), None);
    assert_eq!(l.charge(2, 100.0, Provenance::Modeled), Some(100.0));
    assert_eq!(l.total(), (600.0, Some(Provenance::Modeled)));
    let r = RegistrationCost {
        fixed_ns: 10.0,
        ns_per_mib: 1000.0,
        provenance: Provenance::Measured,
    };
    assert_eq!(r.cost_ns(2 << 20), 2010.0);
}

#[test]
fn profile_json_round_trips_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.json");
    let mut p = Profile::pcie4_x16_default();
    p.peer_dma.provenance = Provenance::Measured;
    p.save(&path).unwrap();
    assert_eq!(Profile::load(&path).unwrap(), p);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"measured\"") && text.contains("\"modeled\""));
}

#[test]
fn bad_profiles_are_rejected_with_the_field_named() {
    let good = Profile::pcie4_x16_default().to_json();
    let zero_bw = good.replacen("\"bandwidth_gbps\": 25.0", "\"bandwidth_gbps\": 0.0", 1);
    match Profile::from_json(&zero_bw) {
        Err(ProfileError::Invalid { field, .. }) => assert_eq!(field, "bounce"),
        other => panic!("{other:?}"),
    }
    let neg = good.replacen("\"ns\": 2000.0", "\"ns\": -1.0", 1);
    match Profile::from_json(&neg) {
        Err(ProfileError::Invalid { field, .. }) => assert_eq!(field, "sync.ns"),
        other => panic!("{other:?}"),
    }
    let current = format!("\"format_version\": {PROFILE_FORMAT_VERSION}");
    assert!(good.contains(&current));
    for bad in ["0", "99"] {
        let ver = good.replacen(&current, &format!("\"format_version\": {bad}"), 1);
        assert!(matches!(
            Profile::from_json(&ver),
            Err(ProfileError::Invalid { .. })
        ));
    }
    // A knee with no bytes or no bandwidth is rejected, naming the link.
    let mut kneed = Profile::pcie4_x16_default();
    kneed.pageable.knee = Some(Knee {
        bytes: 0,
        head_bandwidth_gbps: 4.0,
    });
    match Profile::from_json(&kneed.to_json()) {
        Err(ProfileError::Invalid { field, problem }) => {
            assert_eq!(field, "pageable");
            assert!(problem.contains("knee.bytes"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    kneed.pageable.knee = Some(Knee {
        bytes: 65536,
        head_bandwidth_gbps: -1.0,
    });
    assert!(matches!(
        Profile::from_json(&kneed.to_json()),
        Err(ProfileError::Invalid { .. })
    ));
    assert!(matches!(
        Profile::from_json("{\"label\": 3"),
        Err(ProfileError::Json(_))
    ));
    let missing = std::path::Path::new("/nonexistent/gpu-bridge/profile.json");
    let e = Profile::load(missing).unwrap_err();
    assert!(e
        .to_string()
        .contains("/nonexistent/gpu-bridge/profile.json"));
}

fn arb_link() -> impl Strategy<Value = LinkCost> {
    (0.5f64..60.0, 0.0f64..50_000.0).prop_map(|(bw, setup)| LinkCost::modeled(bw, setup))
}

/// A link that may have two segments, the head slower or faster than the tail.
fn arb_kneed_link() -> impl Strategy<Value = LinkCost> {
    (
        arb_link(),
        proptest::option::of((1u64..(32 << 20), 0.5f64..60.0)),
    )
        .prop_map(|(mut l, k)| {
            l.knee = k.map(|(bytes, head_bandwidth_gbps)| Knee {
                bytes,
                head_bandwidth_gbps,
            });
            l
        })
}

fn arb_kneed_profile() -> impl Strategy<Value = Profile> {
    (
        arb_profile(),
        arb_kneed_link(),
        arb_kneed_link(),
        arb_kneed_link(),
        arb_kneed_link(),
    )
        .prop_map(|(mut p, host, bounce, dma, pageable)| {
            p.host_copy = host;
            p.bounce_dma = bounce;
            p.peer_dma = dma;
            p.pageable = pageable;
            p
        })
}

fn arb_profile() -> impl Strategy<Value = Profile> {
    (
        arb_link(),
        arb_link(),
        arb_link(),
        arb_link(),
        arb_link(),
        0.0f64..10_000.0,
    )
        .prop_map(|(host, bounce, dma, zc, pageable, sync)| {
            let mut p = Profile::pcie4_x16_default();
            p.host_copy = host;
            p.bounce_dma = bounce;
            p.peer_dma = dma;
            p.zero_copy = zc;
            p.pageable = pageable;
            p.sync = SyncCost {
                ns: sync,
                provenance: Provenance::Modeled,
            };
            p
        })
}

proptest! {
    #[test]
    fn delta_l_grows_with_size(p in arb_profile(), a in 0u64..(64 << 20), d in 1u64..(64 << 20)) {
        for path in Path::ALL {
            let small = p.estimate(path, a).total_ns();
            let big = p.estimate(path, a + d).total_ns();
            prop_assert!(big > small, "{path}: {small} !< {big}");
        }
    }

    #[test]
    fn setup_dominates_frames_much_smaller_than_setup_times_bandwidth(p in arb_profile()) {
        for path in [Path::PeerDma, Path::PeerZeroCopy, Path::Pageable] {
            let l = p.link(path);
            // Frames whose wire time is a tenth of the fixed cost.
            let fixed = l.setup_ns + p.sync.ns;
            let bytes = (fixed * l.bandwidth_gbps / 10.0) as u64;
            let e = p.estimate(path, bytes);
            prop_assert!(e.setup_ns + e.sync_ns >= 0.9 * e.total_ns() - 1e-6);
        }
    }

    #[test]
    fn choice_flips_where_the_model_says(p in arb_profile(), registered in any::<bool>()) {
        let policy = Policy::new(p.clone());
        let c = cfg(0, registered);
        let cands = policy.candidates(&c);
        for (i, &a) in cands.iter().enumerate() {
            for &b in &cands[i + 1..] {
                let Some(x) = policy.crossover_bytes(a, b) else { continue };
                if !(2.0..=1e9).contains(&x) { continue; }
                let (lo, hi) = ((x * 0.99) as u64, (x * 1.01).ceil() as u64);
                let da = |n| p.estimate(a, n).total_ns();
                let db = |n| p.estimate(b, n).total_ns();
                // The sign of ΔL_a − ΔL_b changes across the crossover.
                prop_assert!((da(lo) - db(lo)) * (da(hi) - db(hi)) <= 0.0,
                    "{a} vs {b} at {x}");
            }
        }
        // The choice is always the minimum of the ranking.
        for n in [4096u64, 100_000, 2_500_000, 16 << 20] {
            let mut c = c.clone();
            c.frame_bytes = n;
            let ch = policy.choose(&c).unwrap();
            let best = cands.iter().map(|&q| p.estimate(q, n).total_ns()).fold(f64::INFINITY, f64::min);
            prop_assert!((ch.estimate.total_ns() - best).abs() < 1e-6);
        }
    }

    #[test]
    fn fit_recovers_any_line(link in arb_link()) {
        let samples: Vec<(u64, f64)> = [4096u64, 65536, 1 << 20, 5 << 19, 16 << 20]
            .iter().map(|&b| (b, link.transfer_ns(b))).collect();
        let f = fit_link(&samples, Provenance::Measured);
        prop_assert!(f.is_some(), "no fit for {link:?}");
        let f = f.unwrap();
        prop_assert!((f.bandwidth_gbps - link.bandwidth_gbps).abs() / link.bandwidth_gbps < 1e-3);
        prop_assert!((f.setup_ns - link.setup_ns).abs() < 1.0 + link.setup_ns * 1e-3);
    }

    #[test]
    fn delta_l_grows_with_size_with_two_segment_links(
        p in arb_kneed_profile(), a in 0u64..(64 << 20), d in 1u64..(64 << 20)
    ) {
        for path in Path::ALL {
            let small = p.estimate(path, a).total_ns();
            let big = p.estimate(path, a + d).total_ns();
            prop_assert!(big > small, "{path}: {small} !< {big}");
        }
    }

    #[test]
    fn two_segment_wire_time_is_continuous_at_the_knee(l in arb_kneed_link()) {
        if let Some(k) = l.knee {
            let at = l.wire_at(k.bytes as f64);
            prop_assert!((l.wire_at(k.bytes as f64 - 1e-3) - at).abs() < 1e-2);
            prop_assert!((l.wire_at(k.bytes as f64 + 1e-3) - at).abs() < 1e-2);
            prop_assert!((at - k.bytes as f64 / k.head_bandwidth_gbps).abs() < 1e-6 * at.max(1.0));
        }
    }

    #[test]
    fn crossover_is_a_sign_change_with_two_segment_links(
        p in arb_kneed_profile(), registered in any::<bool>()
    ) {
        let policy = Policy::new(p.clone());
        let cands = policy.candidates(&cfg(0, registered));
        for (i, &a) in cands.iter().enumerate() {
            for &b in &cands[i + 1..] {
                let Some(x) = policy.crossover_bytes(a, b) else { continue };
                prop_assert!(x > 0.0);
                let d = |n: f64| {
                    let at = |q: Path| {
                        let e = p.estimate(q, 0);
                        let host = if q == Path::Bounce { p.host_copy.wire_at(n) } else { 0.0 };
                        e.total_ns() + p.link(q).wire_at(n) + host
                    };
                    at(a) - at(b)
                };
                // ΔL_a − ΔL_b is zero at the crossover and nonzero just below it on the
                // same side as at size 0 (it is the first crossing).
                let scale = d(x).abs().max(p.estimate(a, x as u64).total_ns());
                prop_assert!(d(x).abs() <= 1e-6 * scale, "{a} vs {b}: d({x}) = {}", d(x));
                if d(0.0) != 0.0 && x > 1.0 {
                    prop_assert!(d(0.0) * d(x * (1.0 - 1e-6)) >= 0.0);
                }
            }
        }
    }

    #[test]
    fn segmented_fit_recovers_a_two_segment_link_knee_on_a_calibrated_size(
        l in arb_link(), head in 0.5f64..60.0, knee_at in 1usize..5
    ) {
        let sizes = [4096u64, 16384, 65536, 1 << 20, 5 << 19, 16 << 20];
        let mut link = l;
        link.knee = Some(Knee { bytes: sizes[knee_at], head_bandwidth_gbps: head });
        let samples: Vec<(u64, f64)> = sizes.iter().map(|&b| (b, link.transfer_ns(b))).collect();
        let f = fit_link_segmented(&samples, Provenance::Measured);
        prop_assert!(f.is_some());
        // Whatever it picks (a line if that is within 10%), it explains every sample so.
        prop_assert!(max_relative_error(&f.unwrap(), &samples) <= 0.10 + 1e-9);
    }
}
