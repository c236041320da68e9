//! Projection throughput: points per second of our LiDAR → camera projection against OpenCV's
//! `cv2.projectPoints` on the same points, same camera (1920×1080, plumb-bob distortion) and same
//! extrinsic, in the same run, both single-threaded. Also prints the cost of the whole fusion step on a
//! synthetic 120k-point scan and of rendering a 1920×1080 synthetic frame (no baseline for those),
//! and the time of one slice of that step as the fusion node cuts it (clear, project, colour, copy).
//!
//! Run: `cargo bench -p fusion --bench projection` (needs `pip install opencv-python-headless numpy`).

use fusion::node::DEFAULT_FUSE_SLICE_POINTS;
use fusion::projection::{
    CameraInfo, CloudPass, CloudView, DepthPass, ImageModel, ImageView, Projector,
    BULK_BYTES_PER_POINT, COLOURED_POINT_STEP,
};
use fusion::synth::{self, CameraModel, LidarModel, PixelEncoding};
use fusion::truth;
use nalgebra::Point3;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

const N: usize = 1_000_000;
const REPS: usize = 21;

fn median_secs(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let cam = CameraModel::with_hfov(1920, 1080, 90.0);
    let mut info = CameraInfo::from_model(&cam);
    info.d = [-0.28, 0.07, 0.0005, -0.0003, -0.008];
    let ext = truth::lidar_to_camera_optical();
    let proj = Projector::new(&info, &ext, ImageModel::Raw).expect("valid camera");

    // Points in front of the camera over its field of view, expressed in the LiDAR frame.
    let mut rng = StdRng::seed_from_u64(42);
    let inv = ext.inverse();
    let pts: Vec<[f32; 3]> = (0..N)
        .map(|_| {
            let z = rng.random_range(1.0..80.0);
            let p = inv
                * Point3::new(
                    z * rng.random_range(-1.0..1.0),
                    z * rng.random_range(-0.6..0.6),
                    z,
                );
            [p.x as f32, p.y as f32, p.z as f32]
        })
        .collect();
    let mut uv = vec![[0.0f64; 2]; N];
    let ours = median_secs(REPS, || {
        black_box(
            proj.project_to_pixels(black_box(&pts), &mut uv)
                .expect("buffer fits"),
        );
    });

    // The same points and camera through OpenCV.
    let path = std::env::temp_dir().join(format!(
        "rtfuse-projection-bench-{}.f32",
        std::process::id()
    ));
    let mut bytes = Vec::with_capacity(N * 12);
    for p in &pts {
        for c in p {
            bytes.extend_from_slice(&c.to_le_bytes());
        }
    }
    std::fs::write(&path, &bytes).expect("write the points for the oracle");
    let r = ext.rotation.scaled_axis();
    let t = ext.translation.vector;
    let params = serde_json::json!({"rvec": [r.x, r.y, r.z], "tvec": [t.x, t.y, t.z], "K": info.k, "D": info.d});
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/oracles/project_points.py"
    );
    let mut child = Command::new("python3")
        .args([
            script,
            "bench",
            path.to_str().expect("utf-8 temp path"),
            &REPS.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the OpenCV baseline");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(params.to_string().as_bytes())
        .expect("send params");
    let out = child.wait_with_output().expect("python3 ran");
    let _ = std::fs::remove_file(&path);
    if !out.status.success() {
        eprintln!(
            "OpenCV baseline failed (pip install opencv-python-headless numpy): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::process::exit(1);
    }
    let cv: serde_json::Value = serde_json::from_slice(&out.stdout).expect("oracle JSON");
    let cv_pps = cv["points_per_sec"].as_f64().expect("points_per_sec");
    let ours_pps = N as f64 / ours;

    println!(
        "projection throughput, {N} points, 1920x1080 plumb-bob, single thread, median of {REPS}:"
    );
    println!(
        "  ours (fusion::projection)      {:>8.1} Mpoints/s  ({:.2} ms)",
        ours_pps / 1e6,
        ours * 1e3
    );
    println!(
        "  OpenCV {} projectPoints   {:>8.1} Mpoints/s  ({:.2} ms)",
        cv["opencv"].as_str().unwrap_or("?"),
        cv_pps / 1e6,
        cv["median_s"].as_f64().unwrap_or(f64::NAN) * 1e3
    );
    println!(
        "  RATIO ours / OpenCV           {:>8.2}x  (target >= 1.0)",
        ours_pps / cv_pps
    );
    if let Some(np_pps) = cv["numpy_points_per_sec"].as_f64() {
        println!(
            "  numpy plumb-bob (no Jacobian)   {:>8.1} Mpoints/s",
            np_pps / 1e6
        );
        println!(
            "  RATIO ours / numpy            {:>8.2}x",
            ours_pps / np_pps
        );
    }
    println!("  (cv2.projectPoints from Python always computes the 2N x 15 Jacobian too)");

    // The whole fusion step on a synthetic scan: depth image, then coloured cloud with occlusion test.
    let lidar = LidarModel::new(120_000);
    let mut scan = vec![0u8; lidar.max_scan_bytes()];
    let n = synth::lidar_scan(5.0, &lidar, &mut scan).expect("scan");
    let scan_time = median_secs(REPS, || {
        black_box(synth::lidar_scan(5.0, &lidar, &mut scan).expect("scan"));
    });
    let mut img = vec![0u8; cam.frame_len(PixelEncoding::Rgb8)];
    let render = median_secs(REPS, || {
        synth::camera_frame(5.0, &cam, PixelEncoding::Rgb8, &mut img).expect("render");
    });
    let cloud = CloudView::new(&scan, synth::LIDAR_POINT_STEP, [0, 4, 8], n).expect("layout");
    let image =
        ImageView::new(&img, cam.width, cam.height, 1920 * 3, PixelEncoding::Rgb8).expect("image");
    let mut depth = vec![0f32; 1920 * 1080];
    let mut coloured = vec![0u8; n * COLOURED_POINT_STEP];
    let fuse = median_secs(REPS, || {
        proj.depth_image(&cloud, &mut depth).expect("depth");
        black_box(
            proj.coloured_cloud(&cloud, &image, Some((&depth, 0.05)), &mut coloured)
                .expect("cloud"),
        );
    });
    println!(
        "fusion step on a {n}-point 360° scan (depth image 1920x1080 + coloured cloud): {:.2} ms",
        fuse * 1e3
    );
    slices(&proj, &cloud, &image);
    println!(
        "synthetic camera frame 1920x1080 rgb8 render: {:.2} ms",
        render * 1e3
    );
    println!(
        "synthetic LiDAR scan, {n} points ray-cast: {:.2} ms",
        scan_time * 1e3
    );
}

/// Median and largest of `v` (sorted in place), in ms.
fn median_max_ms(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2] * 1e3, v[v.len() - 1] * 1e3)
}

/// One slice of the fusion step at the node's default slice size: clearing the depth image,
/// projecting points into it, colouring points, copying a result (the node's bulk slices).
fn slices(proj: &Projector, cloud: &CloudView<'_>, image: &ImageView<'_>) {
    let budget = DEFAULT_FUSE_SLICE_POINTS;
    let mut depth = vec![0f32; 1920 * 1080];
    let mut coloured = vec![0u8; cloud.len() * COLOURED_POINT_STEP];
    let (mut clear, mut project, mut colour) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..REPS {
        let mut pass = DepthPass::new();
        let mut cleared = 0;
        loop {
            let s = Instant::now();
            let done = pass.step(proj, cloud, &mut depth, budget).expect("depth");
            let t = s.elapsed().as_secs_f64();
            // The clear's slices come first, one per `budget × 32` pixels.
            if cleared < (1920 * 1080usize).div_ceil(budget * 32) {
                cleared += 1;
                clear.push(t);
            } else {
                project.push(t);
            }
            if done {
                break;
            }
        }
        let mut pass = CloudPass::new();
        let occlusion = Some((&depth[..], 0.2));
        loop {
            let s = Instant::now();
            let done = pass
                .step(proj, cloud, image, occlusion, &mut coloured, budget)
                .expect("cloud");
            colour.push(s.elapsed().as_secs_f64());
            if done {
                break;
            }
        }
    }
    let bytes = budget * BULK_BYTES_PER_POINT;
    let src = vec![1u8; bytes];
    let mut dst = vec![0u8; bytes];
    let mut copy: Vec<f64> = (0..REPS * 8)
        .map(|_| {
            let s = Instant::now();
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
            s.elapsed().as_secs_f64()
        })
        .collect();
    println!(
        "one slice of {budget} points (bulk work: {bytes} bytes), median / max over {REPS} scans:"
    );
    for (what, v) in [
        ("clear depth image", &mut clear),
        ("project into depth image", &mut project),
        ("colour points", &mut colour),
        ("copy a result", &mut copy),
    ] {
        let (med, max) = median_max_ms(v);
        println!("  {what:<26} {med:>7.3} ms / {max:>7.3} ms");
    }
}
