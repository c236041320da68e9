//! Assembles the hand-written zero-copy PTX with NVIDIA's `ptxas` for the architectures the
//! device machines use (sm_75 minimum, sm_80, sm_90 = H100/H200), so a PTX mistake shows up on
//! machines without a GPU. `ptxas` comes from the PyPI package `nvidia-cuda-nvcc-cu12`; a
//! missing package fails the test with the install line.

use gpu_bridge::ptx;

fn ptxas() -> std::path::PathBuf {
    let script = "import os, nvidia.cuda_nvcc as m\n\
                  c = [os.path.join(p, 'bin', 'ptxas') for p in m.__path__]\n\
                  print([p for p in c if os.path.exists(p)][0])";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "missing PyPI package nvidia-cuda-nvcc-cu12 (it provides ptxas): \
         pip install nvidia-cuda-nvcc-cu12==12.9.86\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[test]
fn copy_kernels_assemble_for_sm75_sm80_sm90() {
    let ptxas = ptxas();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("copy.ptx");
    std::fs::write(&src, ptx::COPY_KERNELS).unwrap();
    for arch in ["sm_75", "sm_80", "sm_90"] {
        let cubin = dir.path().join(format!("copy_{arch}.cubin"));
        let out = std::process::Command::new(&ptxas)
            .arg(format!("-arch={arch}"))
            .arg("-v")
            .arg(&src)
            .arg("-o")
            .arg(&cubin)
            .output()
            .expect("run ptxas");
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "ptxas {arch} failed:\n{log}");
        for entry in [ptx::COPY_V4, ptx::COPY_U8, ptx::NOOP] {
            assert!(
                log.contains(&format!("Compiling entry function '{entry}'")),
                "{arch}: {entry} missing:\n{log}"
            );
        }
        // No local-memory spills in the copy loops.
        for line in log.lines().filter(|l| l.contains("spill stores")) {
            assert!(line.contains(" 0 bytes spill stores"), "{arch}: {line}");
        }
        assert!(std::fs::metadata(&cubin).unwrap().len() > 0);
    }
}
