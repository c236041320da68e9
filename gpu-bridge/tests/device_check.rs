//! Runs the device-check binary: on this machine (no GPU) it must say so loudly, run the
//! host-backend parts, write a loadable profile and results, and exit 0.

use gpu_bridge::Profile;

#[test]
fn device_check_runs_and_writes_a_profile() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gpu-device-check"))
        .arg("--out")
        .arg(dir.path())
        .arg("--reps")
        .arg("3")
        .output()
        .expect("run gpu-device-check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    let profile = Profile::load(&dir.path().join("profile.json")).unwrap();
    if stdout.contains("NO GPU") {
        eprintln!("NO GPU: skipped the CUDA part of this test; checked the host-backend run");
        assert_eq!(results["result"], "no GPU: modeled");
        assert!(stdout.contains("RESULT: no GPU: modeled"));
        assert_eq!(results["integrity_ok"], true);
        assert_eq!(
            profile.host_copy.provenance,
            gpu_bridge::Provenance::Measured
        );
    } else {
        assert_eq!(results["result"], "measured on GPU");
        assert_eq!(results["integrity_ok"], true);
        assert_eq!(
            profile.peer_dma.provenance,
            gpu_bridge::Provenance::Measured
        );
    }
}

#[test]
fn device_check_rejects_unknown_arguments() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gpu-device-check"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
}
