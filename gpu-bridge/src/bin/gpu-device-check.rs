//! Device check for gpu-bridge. On a GPU machine: prints the GPU, driver and PCIe link,
//! measures every path at 4 KiB … 16 MiB, registration cost, event and launch overheads,
//! checks data integrity on every path, fits a profile (one or two segments per link) to the
//! calibration sizes, checks that the policy picks the measured fastest path there and at
//! held-out sizes the fit never saw, and writes `profile.json` and `results.json` to `$OUT` (or `./out`,
//! or `--out DIR`). Without a GPU it says so loudly, runs the host-backend parts (CPU copy
//! measured, PCIe modeled) and exits 0 with the result "no GPU: modeled".
//!
//! Usage: `gpu-device-check [--out DIR] [--force-host] [--reps N]`

use std::path::PathBuf;
use std::process::ExitCode;

use gpu_bridge::calibrate::{
    check_choices, fit_profile, time_path, time_pipeline, ChoiceCheck, PathTiming,
};
use gpu_bridge::model::SyncCost;
use gpu_bridge::{
    probe, Backend, BridgeError, CalibrationOptions, CudaBackend, HostBackend, PageBuffer, Path,
    Policy, Profile, Provenance, RegisterMode, SlabRegion, Source, StreamConfig, TransferRequest,
};
use serde_json::json;

/// Calibration sizes: the profile is fitted to these.
const SIZES: [usize; 5] = [4 << 10, 64 << 10, 1 << 20, 5 << 19, 16 << 20];
/// Held-out sizes: measured and checked, never fitted, so a check there tests what the model
/// predicts between calibration sizes (where a two-segment fit interpolates).
const HELD_OUT: [usize; 3] = [16 << 10, 256 << 10, 8 << 20];
const PATHS: [Path; 4] = [
    Path::PeerDma,
    Path::PeerZeroCopy,
    Path::Bounce,
    Path::Pageable,
];

struct Args {
    out: PathBuf,
    force_host: bool,
    reps: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut out = std::env::var_os("OUT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("out"));
    let (mut force_host, mut reps) = (false, 41);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = it.next().ok_or("--out needs a directory")?.into(),
            "--force-host" => force_host = true,
            "--reps" => {
                reps = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n: &usize| n > 0)
                    .ok_or("--reps needs a positive number")?
            }
            "-h" | "--help" => {
                println!("usage: gpu-device-check [--out DIR] [--force-host] [--reps N]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        out,
        force_host,
        reps,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gpu-device-check: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!(
            "gpu-device-check: cannot create {}: {e}",
            args.out.display()
        );
        return ExitCode::from(2);
    }
    println!(
        "gpu-device-check (gpu-bridge {})",
        env!("CARGO_PKG_VERSION")
    );
    println!("output directory: {}", args.out.display());
    let probed = if args.force_host {
        Err(BridgeError::CudaUnavailable("--force-host given".into()))
    } else {
        probe(0)
    };
    let r = match probed {
        Ok(_) => gpu_check(&args),
        Err(e) => {
            println!();
            println!("############################################################");
            println!("##  NO GPU: {e}");
            println!("##  Running the host-backend parts only. Every PCIe number");
            println!("##  below is MODELED (PCIe 4.0 x16 default profile); CPU");
            println!("##  copies and integrity checks are real.");
            println!("############################################################");
            println!();
            host_check(&args, &e.to_string())
        }
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gpu-device-check: FAILED: {e}");
            ExitCode::from(1)
        }
    }
}

/// A slab pair for the checks: one to register, one mlock-only.
struct Slabs {
    pinned: PageBuffer,
    locked: PageBuffer,
}

fn make_slabs(len: usize) -> Result<Slabs, BridgeError> {
    let mut pinned = PageBuffer::new(len, false)?;
    let mut locked = PageBuffer::new(len, true).or_else(|e| {
        println!("note: mlock failed ({e}); the unregistered slab is plain pageable memory");
        PageBuffer::new(len, false)
    })?;
    for (i, b) in pinned.as_mut_slice().iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1];
    }
    for (i, b) in locked.as_mut_slice().iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(40_503).to_le_bytes()[2];
    }
    Ok(Slabs { pinned, locked })
}

/// Sends 2.5 MiB at an odd offset (tail handling) and at offset 0 over every path and compares
/// what arrived with the slab.
fn integrity(backend: &mut dyn Backend, s: &Slabs) -> Result<Vec<serde_json::Value>, BridgeError> {
    // SAFETY: the slabs outlive the registrations; they are unregistered before returning.
    let reg = unsafe { SlabRegion::from_raw(s.pinned.as_ptr(), s.pinned.len()) }?;
    // SAFETY: as above.
    let unreg = unsafe { SlabRegion::from_raw(s.locked.as_ptr(), s.locked.len()) }?;
    let unreg = backend.register_slab(unreg, RegisterMode::TrackOnly)?.id;
    let reg = register_or_report(backend, reg);
    let n = 5 << 19;
    backend.ensure_staging(2, n + 64)?;
    let dst = backend.alloc_device(n + 64)?;
    let mut rows = Vec::new();
    for path in PATHS {
        for offset in [0usize, 13] {
            let (slab, src) = match (path, reg) {
                (Path::Pageable, _) | (Path::Bounce, None) => (unreg, &s.locked),
                (_, Some(r)) => (r, &s.pinned),
                (_, None) => {
                    println!("  integrity {path}: skipped (slab registration failed)");
                    rows.push(
                        json!({"path": path, "offset": offset, "skipped": "registration failed"}),
                    );
                    continue;
                }
            };
            let req = TransferRequest {
                path,
                slab,
                offset,
                len: n - offset,
                dst,
                dst_offset: offset,
            };
            let res = backend.submit(&req).and_then(|t| backend.wait(t));
            let ok = match res {
                Ok(_) => {
                    let mut back = vec![0u8; req.len];
                    backend.read_device(dst, offset, &mut back)?;
                    back == src.as_slice()[offset..offset + req.len]
                }
                Err(e) => {
                    println!("  integrity {path} offset {offset}: ERROR {e}");
                    false
                }
            };
            println!(
                "  integrity {:<15} offset {:>2}: {}",
                path.name(),
                offset,
                if ok { "ok" } else { "MISMATCH" }
            );
            rows.push(json!({"path": path, "offset": offset, "bytes": req.len, "ok": ok}));
        }
    }
    if let Some(r) = reg {
        backend.unregister_slab(r)?;
    }
    backend.unregister_slab(unreg)?;
    Ok(rows)
}

/// Registers (pins) a slab; on failure says so and returns `None`, so the check goes on
/// with the paths that need no registration.
fn register_or_report(b: &mut dyn Backend, region: SlabRegion) -> Option<gpu_bridge::SlabId> {
    match b.register_slab(region, RegisterMode::Pin) {
        Ok(r) => Some(r.id),
        Err(e) => {
            println!("WARNING: cuMemHostRegister failed ({e}); peer paths cannot be measured");
            None
        }
    }
}

fn print_timings(t: &[PathTiming], link_label: &str) {
    println!(
        "  {:>9} {:<15} {:>12} {:>12} {:>10} {:>12}",
        "bytes", "path", "median µs", "min µs", "GB/s", link_label
    );
    for r in t {
        println!(
            "  {:>9} {:<15} {:>12.2} {:>12.2} {:>10.2} {:>12.2}",
            r.bytes,
            r.path.name(),
            r.median_ns / 1e3,
            r.min_ns / 1e3,
            r.gbps(),
            r.link_median_ns / 1e3
        );
    }
}

/// Whether every row is exact, and whether every row is within noise.
fn verdicts(rows: &[ChoiceCheck]) -> (bool, bool) {
    (
        rows.iter().all(|r| r.exact),
        rows.iter().all(|r| r.within_noise),
    )
}

fn verdict_word(exact: bool, noise: bool) -> &'static str {
    if exact {
        "picks the fastest path at every size"
    } else if noise {
        "matches within noise"
    } else {
        "MISMATCH"
    }
}

fn print_profile(profile: &Profile) {
    let row = |name: &str, l: &gpu_bridge::LinkCost| {
        let knee = match l.knee {
            Some(k) => format!(
                "  first {} B at {:.2} GB/s, the rest at the bandwidth",
                k.bytes, k.head_bandwidth_gbps
            ),
            None => String::new(),
        };
        println!(
            "  {:<15} {:>8.2} GB/s  setup {:>8.2} µs  ({}){knee}",
            name,
            l.bandwidth_gbps,
            l.setup_ns / 1e3,
            l.provenance
        );
    };
    for p in PATHS {
        row(p.name(), profile.link(p));
    }
    row("host-copy", &profile.host_copy);
}

/// Fits `base` to the calibration-size timings and checks the policy against the measured
/// fastest path at the calibration sizes and at the held-out sizes.
fn fit_and_check(
    base: &Profile,
    timings: &[PathTiming],
    sync_ns: f64,
) -> (Profile, Vec<ChoiceCheck>, Vec<ChoiceCheck>) {
    let (fit, held): (Vec<PathTiming>, Vec<PathTiming>) =
        timings.iter().partition(|t| SIZES.contains(&t.bytes));
    let profile = fit_profile(base, &fit, sync_ns);
    println!("fitted profile (ΔL = wire(size) + setup + sync; two segments where one line misses a size by > 10%):");
    print_profile(&profile);
    println!("policy (fed the fitted profile) vs measured fastest path, calibration sizes:");
    let checks = check_choices(&profile, &fit);
    print_checks(&checks);
    println!("policy vs measured fastest path, held-out sizes (measured, not fitted):");
    let held_checks = check_choices(&profile, &held);
    print_checks(&held_checks);
    (profile, checks, held_checks)
}

fn print_checks(rows: &[ChoiceCheck]) {
    println!(
        "  {:>9} {:>5} {:<15} {:>12} {:<15} {:>12} {:>12} verdict",
        "bytes", "reg", "chosen", "pred µs", "fastest", "fast µs", "chosen µs"
    );
    for r in rows {
        println!(
            "  {:>9} {:>5} {:<15} {:>12.2} {:<15} {:>12.2} {:>12.2} {}",
            r.bytes,
            r.slab_registered,
            r.chosen.name(),
            r.predicted_ns / 1e3,
            r.fastest.name(),
            r.fastest_ns / 1e3,
            r.chosen_measured_ns / 1e3,
            if r.exact {
                "MATCH"
            } else if r.within_noise {
                "match within noise (<=5% or 1 µs)"
            } else {
                "MISMATCH"
            }
        );
    }
}

fn explain_all(profile: &Profile) -> Vec<String> {
    let policy = Policy::new(profile.clone());
    let mut lines = Vec::new();
    for registered in [true, false] {
        for bytes in SIZES {
            let cfg = StreamConfig {
                name: format!(
                    "{}{}",
                    bytes,
                    if registered {
                        " registered"
                    } else {
                        " mlock-only"
                    }
                ),
                frame_bytes: bytes as u64,
                slab_bytes: 64 << 20,
                slab_registered: registered,
                source: Source::HostSlab,
                forced: None,
            };
            if let Ok(c) = policy.choose(&cfg) {
                lines.push(c.explain());
            }
        }
    }
    for l in &lines {
        println!("  {l}");
    }
    lines
}

fn write(args: &Args, profile: &Profile, results: &serde_json::Value) -> Result<(), BridgeError> {
    let pp = args.out.join("profile.json");
    profile.save(&pp)?;
    let rp = args.out.join("results.json");
    let text = serde_json::to_string_pretty(results).map_err(gpu_bridge::ProfileError::from)?;
    std::fs::write(&rp, text)
        .map_err(|e| BridgeError::HostMemory(format!("{}: {e}", rp.display())))?;
    println!("wrote {} and {}", pp.display(), rp.display());
    Ok(())
}

fn host_check(args: &Args, reason: &str) -> Result<ExitCode, BridgeError> {
    let mut host = HostBackend::new(Profile::pcie4_x16_default());
    println!("backend: {}", host.describe());
    let profile = host.calibrate(&CalibrationOptions {
        sizes: SIZES.to_vec(),
        reps: 15,
    })?;
    println!(
        "CPU copy (measured): {:.2} GB/s, setup {:.0} ns; PCIe: modeled",
        profile.host_copy.bandwidth_gbps, profile.host_copy.setup_ns
    );
    let slabs = make_slabs(16 << 20)?;
    println!("integrity (host backend; the device write is a real copy, its timing modeled):");
    let integ = integrity(&mut host, &slabs)?;
    println!("path timings (wall = measured CPU part + MODELED link wait):");
    let timings = host_timings(&mut host, &slabs, args.reps.min(15))?;
    print_timings(&timings, "modeled µs");
    println!(
        "calibration fit on these timings (exercises the fit only: the link part is MODELED and the\n  CPU part shares this machine, so the verdicts below say nothing about a GPU):"
    );
    let (_, checks, held_checks) = fit_and_check(&profile, &timings, profile.sync.ns);
    println!("policy choices (modeled profile):");
    let lines = explain_all(&profile);
    let worked = profile.estimate(Path::Bounce, 2_500_000);
    println!(
        "worked example: 2.5 MB bounce over PCIe 4.0 x16 -> ΔL {:.1} µs (DMA leg {:.1} µs, modeled)",
        worked.total_ns() / 1e3,
        worked.wire_ns / 1e3
    );
    let all_ok = integ.iter().all(|r| r["ok"] == json!(true));
    let results = json!({
        "result": "no GPU: modeled",
        "gpu": null,
        "reason": reason,
        "backend": host.describe(),
        "integrity": integ,
        "integrity_ok": all_ok,
        "timings_modeled": timings,
        "policy_checks_modeled": checks,
        "policy_checks_held_out_modeled": held_checks,
        "policy": lines,
        "worked_example_bounce_2_5MB_ns": worked.total_ns(),
    });
    write(args, &profile, &results)?;
    println!();
    println!(
        "RESULT: no GPU: modeled (host-backend parts {})",
        if all_ok { "passed" } else { "FAILED" }
    );
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn host_timings(
    b: &mut dyn Backend,
    s: &Slabs,
    reps: usize,
) -> Result<Vec<PathTiming>, BridgeError> {
    // SAFETY: the slabs outlive the registrations, unregistered below.
    let reg = unsafe { SlabRegion::from_raw(s.pinned.as_ptr(), s.pinned.len()) }?;
    // SAFETY: as above.
    let unreg = unsafe { SlabRegion::from_raw(s.locked.as_ptr(), s.locked.len()) }?;
    let reg = b.register_slab(reg, RegisterMode::Pin)?.id;
    let unreg = b.register_slab(unreg, RegisterMode::TrackOnly)?.id;
    b.ensure_staging(2, 16 << 20)?;
    let dst = b.alloc_device(16 << 20)?;
    let mut out = Vec::new();
    let mut sizes = SIZES.to_vec();
    sizes.extend(HELD_OUT);
    sizes.sort_unstable();
    for len in sizes {
        for path in PATHS {
            let slab = if path == Path::Pageable { unreg } else { reg };
            let req = TransferRequest {
                path,
                slab,
                offset: 0,
                len,
                dst,
                dst_offset: 0,
            };
            out.push(time_path(b, &req, reps)?);
        }
    }
    b.unregister_slab(reg)?;
    b.unregister_slab(unreg)?;
    Ok(out)
}

/// Serial (submit, wait) versus pipelined (all submitted, then collected) ns per 2.5 MiB frame
/// on the bounce and peer-DMA paths: with two staging slots the bounce CPU copy of frame n+1
/// overlaps the DMA of frame n.
fn pipeline(b: &mut dyn Backend, s: &Slabs) -> Result<Vec<serde_json::Value>, BridgeError> {
    // SAFETY: the slab outlives the registration, unregistered below.
    let region = unsafe { SlabRegion::from_raw(s.pinned.as_ptr(), s.pinned.len()) }?;
    let Some(reg) = register_or_report(b, region) else {
        return Ok(Vec::new());
    };
    let n = 5 << 19;
    b.ensure_staging(2, n)?;
    let dst = b.alloc_device(n)?;
    let mut rows = Vec::new();
    for path in [Path::Bounce, Path::PeerDma] {
        let req = TransferRequest {
            path,
            slab: reg,
            offset: 0,
            len: n,
            dst,
            dst_offset: 0,
        };
        let serial = time_path(b, &req, 16)?.median_ns;
        let piped = time_pipeline(b, &req, 32)?;
        println!(
            "  {:<15} serial {:>9.1} µs/frame, pipelined {:>9.1} µs/frame, speed-up {:.2}x",
            path.name(),
            serial / 1e3,
            piped / 1e3,
            serial / piped
        );
        rows.push(json!({"path": path, "bytes": n, "serial_ns": serial, "pipelined_ns": piped}));
    }
    b.unregister_slab(reg)?;
    Ok(rows)
}

fn gpu_check(args: &Args) -> Result<ExitCode, BridgeError> {
    let mut cuda = CudaBackend::new(0)?;
    let info = cuda.info().clone();
    println!("GPU: {}", info.name);
    println!("driver API version: {}", info.driver_version);
    println!(
        "compute capability: {}.{}, {} SMs, {} async copy engines, {} device(s)",
        info.compute_capability.0,
        info.compute_capability.1,
        info.multiprocessors,
        info.async_engines,
        info.device_count
    );
    match &info.pcie {
        Some(l) => println!(
            "PCIe link ({}): current {} x{}, max {} x{}",
            info.pci_bus_id, l.current_speed, l.current_width, l.max_speed, l.max_width
        ),
        None => println!("PCIe link ({}): not readable from sysfs", info.pci_bus_id),
    }
    let caps = info.capabilities;
    println!(
        "attributes: CAN_MAP_HOST_MEMORY={} GPU_DIRECT_RDMA_SUPPORTED={} DMA_BUF_SUPPORTED={}",
        caps.can_map_host_memory, caps.gpudirect_rdma, caps.dma_buf
    );
    if let Some(e) = cuda.kernels_error() {
        println!("WARNING: zero-copy kernels did not load: {e}");
    }
    println!("backend: {}", cuda.describe());

    let event_ns = cuda.measure_event_overhead_ns(201)?;
    let launch_ns = cuda.measure_launch_overhead_ns(201).ok();
    println!(
        "event record+synchronize: {:.2} µs (measured)",
        event_ns / 1e3
    );
    match launch_ns {
        Some(t) => println!(
            "empty kernel launch+synchronize: {:.2} µs (measured)",
            t / 1e3
        ),
        None => println!("empty kernel launch: unavailable (kernels did not load)"),
    }
    let reg = match cuda.measure_registration(&[1, 4, 16, 64]) {
        Ok(r) => r,
        Err(e) => {
            println!("WARNING: registration cost not measurable ({e}); using the modeled default");
            Profile::pcie4_x16_default().registration
        }
    };
    println!(
        "registration (cuMemHostRegister DEVICEMAP|PORTABLE): {:.1} µs + {:.1} µs/MiB ({})",
        reg.fixed_ns / 1e3,
        reg.ns_per_mib / 1e3,
        reg.provenance
    );

    let slabs = make_slabs(16 << 20)?;
    println!("integrity (bytes read back from the GPU and compared):");
    let integ = integrity(&mut cuda, &slabs)?;
    println!("pipelining, 2.5 MiB frames (double-buffered bounce ring):");
    let piped = pipeline(&mut cuda, &slabs)?;
    drop(slabs);

    println!("path timings (submit -> event complete; link = CUDA event time):");
    let mut sizes = SIZES.to_vec();
    sizes.extend(HELD_OUT);
    sizes.sort_unstable();
    let timings = cuda.measure_paths(&sizes, args.reps)?;
    print_timings(&timings, "link µs");

    let mut base = Profile::pcie4_x16_default();
    base.sync = SyncCost {
        ns: event_ns,
        provenance: Provenance::Measured,
    };
    base.registration = reg;
    base.capabilities = caps;
    let (mut profile, checks, held_checks) = fit_and_check(&base, &timings, event_ns);
    profile.label = match &info.pcie {
        Some(l) => format!(
            "{} on PCIe {} x{} (measured)",
            info.name, l.current_speed, l.current_width
        ),
        None => format!("{} (measured)", info.name),
    };
    println!(
        "  third-party-peer: {} (GPUDirect RDMA {}, dma-buf {}; numbers modeled, no peer device here)",
        if caps.gpudirect_rdma || caps.dma_buf { "possible" } else { "not supported" },
        caps.gpudirect_rdma,
        caps.dma_buf
    );
    let (exact, noise) = verdicts(&checks);
    let (held_exact, held_noise) = verdicts(&held_checks);
    println!("policy explanations:");
    let lines = explain_all(&profile);

    let link_at = |p: Path| {
        timings
            .iter()
            .find(|t| t.path == p && t.bytes == 16 << 20)
            .map(|t| t.bytes as f64 / t.link_median_ns.max(1.0))
    };
    let (dma, pinned) = (link_at(Path::PeerDma), link_at(Path::Bounce));
    let dma_ratio = match (dma, pinned) {
        (Some(d), Some(p)) => d / p,
        _ => f64::NAN,
    };
    println!(
        "registered-slab DMA {:.2} GB/s vs pinned staging H2D {:.2} GB/s at 16 MiB: ratio {:.3} (target >= 0.8)",
        dma.unwrap_or(f64::NAN),
        pinned.unwrap_or(f64::NAN),
        dma_ratio
    );
    let integrity_ok = integ
        .iter()
        .all(|r| r["ok"] == json!(true) || r.get("skipped").is_some());
    let results = json!({
        "result": "measured on GPU",
        "gpu": info,
        "event_overhead_ns": event_ns,
        "launch_overhead_ns": launch_ns,
        "registration": reg,
        "integrity": integ,
        "integrity_ok": integrity_ok,
        "timings": timings,
        "pipeline": piped,
        "policy_checks": checks,
        "policy_exact": exact,
        "policy_within_noise": noise,
        "policy_checks_held_out": held_checks,
        "policy_held_out_exact": held_exact,
        "policy_held_out_within_noise": held_noise,
        "policy": lines,
        "dma_vs_pinned_ratio_16MiB": dma_ratio,
    });
    write(args, &profile, &results)?;
    println!();
    println!(
        "RESULT: GPU {}: integrity {}, policy {} ({}/{} exact), held-out sizes {} ({}/{} exact), registered DMA/pinned H2D {:.3} ({})",
        info.name,
        if integrity_ok { "ok" } else { "FAILED" },
        verdict_word(exact, noise),
        checks.iter().filter(|r| r.exact).count(),
        checks.len(),
        verdict_word(held_exact, held_noise),
        held_checks.iter().filter(|r| r.exact).count(),
        held_checks.len(),
        dma_ratio,
        if dma_ratio >= 0.8 { "ok" } else { "below 0.8" }
    );
    Ok(if integrity_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
