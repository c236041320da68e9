//! LiDAR → camera projection against OpenCV's `projectPoints` (the Python oracle in
//! `tests/oracles/project_points.py`; needs `pip install opencv-python-headless numpy`), against analytic
//! scenes, and end to end on the synthetic camera and LiDAR.

use fusion::projection::{
    depth_to_mm, CameraInfo, CloudPass, CloudView, DepthPass, ImageModel, ImageView,
    ProjectionError, Projector, COLOURED_POINT_STEP,
};
use fusion::synth::{self, CameraModel, LidarModel, PixelEncoding};
use fusion::truth;
use nalgebra::{Isometry3, Point3, Translation3, UnitQuaternion, Vector3};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs the OpenCV oracle; fails the test with the pip line if Python or a package is missing.
fn opencv_oracle(request: &Value) -> Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/oracles/project_points.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .arg("project")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed to run the OpenCV oracle");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "OpenCV oracle failed (pip install opencv-python-headless numpy): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("oracle output is JSON")
}

fn pack_cloud(points: &[[f32; 3]]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(points.len() * 16);
    for p in points {
        for c in p {
            buf.extend_from_slice(&c.to_le_bytes());
        }
        buf.extend_from_slice(&0f32.to_le_bytes());
    }
    buf
}

fn random_info(rng: &mut StdRng) -> CameraInfo {
    let (w, h) = (1280u32, 960u32);
    let fx = rng.random_range(300.0..1500.0);
    let fy = fx * rng.random_range(0.95..1.05);
    let (cx, cy) = (
        640.0 + rng.random_range(-30.0..30.0),
        480.0 + rng.random_range(-30.0..30.0),
    );
    let d = [
        rng.random_range(-0.4..0.4),
        rng.random_range(-0.2..0.2),
        rng.random_range(-0.01..0.01),
        rng.random_range(-0.01..0.01),
        rng.random_range(-0.1..0.1),
    ];
    let k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0];
    CameraInfo {
        width: w,
        height: h,
        k,
        d,
        r: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p: [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
    }
}

fn random_extrinsic(rng: &mut StdRng) -> Isometry3<f64> {
    let axis = Vector3::new(
        rng.random_range(-1.0..1.0),
        rng.random_range(-1.0..1.0),
        rng.random_range(-1.0..1.0),
    );
    let rot = UnitQuaternion::from_scaled_axis(axis * rng.random_range(0.0..0.5));
    let t = Translation3::new(
        rng.random_range(-1.0..1.0),
        rng.random_range(-1.0..1.0),
        rng.random_range(-0.5..0.5),
    );
    Isometry3::from_parts(t, rot)
}

/// 8 random cameras (K, plumb-bob D), extrinsics and 500 points each: our raw-model projection equals
/// `cv2.projectPoints` to 1e-6 px wherever we do not cull.
#[test]
fn raw_model_matches_opencv_project_points() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut cases = Vec::new();
    let mut setups = Vec::new();
    for _ in 0..8 {
        let info = random_info(&mut rng);
        let ext = random_extrinsic(&mut rng);
        // Points in front of the camera, spread over (and a little beyond) its field of view.
        let inv = ext.inverse();
        let pts: Vec<[f32; 3]> = (0..500)
            .map(|_| {
                let z = rng.random_range(0.5..60.0);
                let pc = Point3::new(
                    z * rng.random_range(-0.9..0.9),
                    z * rng.random_range(-0.7..0.7),
                    z,
                );
                let pl = inv * pc;
                [pl.x as f32, pl.y as f32, pl.z as f32]
            })
            .collect();
        let r = ext.rotation.scaled_axis();
        let t = ext.translation.vector;
        cases.push(json!({
            "points": pts.iter().map(|p| p.map(f64::from)).collect::<Vec<_>>(),
            "rvec": [r.x, r.y, r.z], "tvec": [t.x, t.y, t.z], "K": info.k, "D": info.d,
        }));
        setups.push((info, ext, pts));
    }
    let reply = opencv_oracle(&json!({ "cases": cases }));
    let (mut compared, mut worst) = (0usize, 0.0f64);
    for (c, (info, ext, pts)) in setups.iter().enumerate() {
        let proj = Projector::new(info, ext, ImageModel::Raw).unwrap();
        let mut ours = vec![[0.0; 2]; pts.len()];
        proj.project_to_pixels(pts, &mut ours).unwrap();
        let theirs = reply["cases"][c].as_array().unwrap();
        for (i, (o, t)) in ours.iter().zip(theirs).enumerate() {
            if o[0].is_nan() {
                continue; // culled beyond the distortion fold
            }
            let (tu, tv) = (t[0].as_f64().unwrap(), t[1].as_f64().unwrap());
            let err = (o[0] - tu).abs().max((o[1] - tv).abs());
            worst = worst.max(err);
            assert!(
                err < 1e-6,
                "case {c} point {i}: ours {o:?}, OpenCV ({tu}, {tv})"
            );
            compared += 1;
        }
    }
    eprintln!("compared {compared} projections with OpenCV, worst difference {worst:.3e} px");
    assert!(
        compared > 8 * 500 * 9 / 10,
        "too many points culled: only {compared} compared"
    );
}

/// A fronto-parallel plane at 5 m (and a farther one behind it) covering the whole image: every pixel
/// gets depth exactly 5 m (nearest wins), through a non-trivial extrinsic.
#[test]
fn plane_at_known_distance_gives_known_depth() {
    let cam = CameraModel::with_hfov(320, 240, 80.0);
    let info = CameraInfo::from_model(&cam);
    let ext = truth::lidar_to_camera_optical();
    let inv = ext.inverse();
    let mut pts = Vec::new();
    for &z in &[8.0, 5.0] {
        for v in 0..cam.height {
            for u in 0..cam.width {
                // Hit every pixel centre (plus a small sub-pixel offset).
                let x = (f64::from(u) + 0.2 - cam.cx) / cam.fx * z;
                let y = (f64::from(v) - 0.3 - cam.cy) / cam.fy * z;
                let p = inv * Point3::new(x, y, z);
                pts.push([p.x as f32, p.y as f32, p.z as f32]);
            }
        }
    }
    let buf = pack_cloud(&pts);
    let cloud = CloudView::new(&buf, 16, [0, 4, 8], pts.len()).unwrap();
    let proj = Projector::new(&info, &ext, ImageModel::Raw).unwrap();
    let mut depth = vec![0f32; 320 * 240];
    let stats = proj.depth_image(&cloud, &mut depth).unwrap();
    assert_eq!(stats.in_image, pts.len());
    for (i, d) in depth.iter().enumerate() {
        assert!((d - 5.0).abs() < 1e-4, "pixel {i}: depth {d}");
    }
    let mut mm = vec![0u16; depth.len()];
    depth_to_mm(&depth, &mut mm).unwrap();
    assert!(mm.iter().all(|&m| m == 5000));
}

/// The rectified path: a stereo pair's right camera (`P` with `Tx = -fx·B`, `R` a small rotation) sees
/// a point at depth Z with disparity `fx·B/Z` against the left camera, and `R` is applied before `P`.
#[test]
fn rectified_model_applies_r_then_p() {
    let (fx, cx, cy, baseline) = (700.0, 320.0, 240.0, 0.12);
    let rot = UnitQuaternion::from_euler_angles(0.01, -0.02, 0.005);
    let r = rot.to_rotation_matrix();
    let rm = r.matrix();
    let r9 = [
        rm[(0, 0)],
        rm[(0, 1)],
        rm[(0, 2)],
        rm[(1, 0)],
        rm[(1, 1)],
        rm[(1, 2)],
        rm[(2, 0)],
        rm[(2, 1)],
        rm[(2, 2)],
    ];
    let base = CameraInfo {
        width: 640,
        height: 480,
        k: [650.0, 0.0, 300.0, 0.0, 655.0, 250.0, 0.0, 0.0, 1.0],
        d: [-0.3, 0.1, 0.001, -0.002, 0.0], // must be ignored by the rectified model
        r: r9,
        p: [fx, 0.0, cx, 0.0, 0.0, fx, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
    };
    let mut right = base;
    right.p[3] = -fx * baseline;
    let ext = Isometry3::identity();
    let left_p = Projector::new(&base, &ext, ImageModel::Rectified).unwrap();
    let right_p = Projector::new(&right, &ext, ImageModel::Rectified).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..200 {
        let p = [
            rng.random_range(-2.0..2.0),
            rng.random_range(-1.5..1.5),
            rng.random_range(1.0..20.0),
        ];
        let l = left_p.project(p).unwrap();
        let rr = right_p.project(p).unwrap();
        let xr = r * Vector3::from(p);
        assert!(
            (l.z - xr.z).abs() < 1e-12,
            "depth is taken in the rectified frame"
        );
        assert!((l.u - (fx * xr.x / xr.z + cx)).abs() < 1e-9);
        assert!((l.v - (fx * xr.y / xr.z + cy)).abs() < 1e-9);
        assert!(
            (l.u - rr.u - fx * baseline / xr.z).abs() < 1e-9,
            "disparity"
        );
        assert!((l.v - rr.v).abs() < 1e-12, "rectified rows align");
    }
}

/// Culling and bad input: points behind the camera, outside the image, non-finite; bad layouts.
#[test]
fn culls_and_rejects_bad_input() {
    let cam = CameraModel::with_hfov(100, 80, 90.0);
    let info = CameraInfo::from_model(&cam);
    let proj = Projector::new(&info, &Isometry3::identity(), ImageModel::Raw).unwrap();
    let pts = [
        [0.0, 0.0, 2.0],
        [0.0, 0.0, -2.0],
        [50.0, 0.0, 1.0],
        [f32::NAN, 0.0, 1.0],
        [0.0, 0.0, 0.0],
    ];
    let buf = pack_cloud(&pts);
    let cloud = CloudView::new(&buf, 16, [0, 4, 8], pts.len()).unwrap();
    let mut depth = vec![0f32; 100 * 80];
    let s = proj.depth_image(&cloud, &mut depth).unwrap();
    assert_eq!((s.in_image, s.behind, s.outside, s.invalid), (1, 2, 1, 1));
    assert_eq!(depth.iter().filter(|d| d.is_finite()).count(), 1);
    assert!(matches!(
        CloudView::new(&buf, 16, [0, 4, 13], 5),
        Err(ProjectionError::Layout(_))
    ));
    assert!(matches!(
        CloudView::new(&buf, 16, [0, 4, 8], 6),
        Err(ProjectionError::Layout(_))
    ));
    assert!(matches!(
        proj.depth_image(&cloud, &mut depth[..10]),
        Err(ProjectionError::BufferTooSmall { .. })
    ));
    let img = vec![0u8; 100 * 80 * 3];
    assert!(ImageView::new(&img, 100, 80, 299, PixelEncoding::Rgb8).is_err());
    assert!(ImageView::new(&img[..100], 100, 80, 300, PixelEncoding::Rgb8).is_err());
    let mut bad = info;
    bad.k[0] = f64::NAN;
    assert!(Projector::new(&bad, &Isometry3::identity(), ImageModel::Raw).is_err());
}

/// End to end on the synthetic sensors: LiDAR points coloured from the camera image carry the colour of
/// the scene surface they lie on (where the camera sees that surface).
#[test]
fn synthetic_lidar_points_get_the_true_scene_colour() {
    let cam = CameraModel::with_hfov(640, 480, 90.0);
    let info = CameraInfo::from_model(&cam);
    let proj = Projector::new(&info, &truth::lidar_to_camera_optical(), ImageModel::Raw).unwrap();
    let lidar = LidarModel::new(32 * 1000);
    let mut scan = vec![0u8; lidar.max_scan_bytes()];
    let mut img = vec![0u8; cam.frame_len(PixelEncoding::Bgr8)];
    let mut depth = vec![0f32; 640 * 480];
    let mut coloured = vec![0u8; lidar.points_per_scan * COLOURED_POINT_STEP];
    let (mut checked, mut matched) = (0usize, 0usize);
    for &t in &[1.0, 9.5, 17.0, 33.3] {
        let n = synth::lidar_scan(t, &lidar, &mut scan).unwrap();
        synth::camera_frame(t, &cam, PixelEncoding::Bgr8, &mut img).unwrap();
        let cloud = CloudView::new(&scan, synth::LIDAR_POINT_STEP, [0, 4, 8], n).unwrap();
        let image =
            ImageView::new(&img, cam.width, cam.height, 640 * 3, PixelEncoding::Bgr8).unwrap();
        proj.depth_image(&cloud, &mut depth).unwrap();
        let m = proj
            .coloured_cloud(&cloud, &image, Some((&depth, 0.05)), &mut coloured)
            .unwrap();
        assert!(m > n / 10, "t={t}: only {m} of {n} points coloured");
        let lidar_pose = truth::state(t).pose() * truth::lidar_in_body();
        let cam_pose = truth::state(t).pose() * truth::camera_in_body();
        let c = cam_pose * Point3::origin();
        for k in 0..m {
            let rec = &coloured[k * 16..(k + 1) * 16];
            let f = |o: usize| f64::from(f32::from_le_bytes(rec[o..o + 4].try_into().unwrap()));
            let rgb = u32::from_le_bytes(rec[12..16].try_into().unwrap());
            let pw = lidar_pose * Point3::new(f(0), f(4), f(8));
            // What the camera really sees along the ray to this point.
            let d = pw - c;
            let hit = truth::raycast([c.x, c.y, c.z], [d.x, d.y, d.z]).unwrap();
            if (hit.t - 1.0).abs() > 1e-3 {
                continue; // occluded from the camera by something nearer: colour is of that
            }
            let [r, g, b] = truth::surface_colour(hit.surface, hit.point, hit.normal);
            checked += 1;
            if rgb == (u32::from(r) << 16) | (u32::from(g) << 8) | u32::from(b) {
                matched += 1;
            }
        }
    }
    eprintln!("{matched} of {checked} coloured points carry the true surface colour");
    // Misses are points within half a pixel of a colour edge (checker, stripe or box outline).
    assert!(checked > 10_000, "too few points checked: {checked}");
    assert!(
        matched * 100 >= checked * 95,
        "{matched} of {checked} colours match"
    );
}

/// Calls `step` with `budget` until it reports the work complete; returns the slices it took.
fn in_slices(
    budget: usize,
    mut step: impl FnMut(usize) -> Result<bool, ProjectionError>,
) -> Result<usize, ProjectionError> {
    let mut slices = 1;
    while !step(budget)? {
        slices += 1;
    }
    Ok(slices)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The synthetic scene's depth image, coloured cloud (occlusion on) and depth statistics
    /// computed in slices of any size — one point, a few, more than the scan holds — are
    /// bit-identical to the one-shot projection, whatever the output buffers held before.
    #[test]
    fn sliced_projection_is_bit_identical_to_unsliced(
        slice in prop_oneof![Just(1usize), 2usize..700, Just(2401usize), Just(usize::MAX)],
        t in 0.0f64..60.0,
        rectified in any::<bool>(),
    ) {
        let cam = CameraModel::with_hfov(96, 72, 90.0);
        let model = if rectified { ImageModel::Rectified } else { ImageModel::Raw };
        let proj =
            Projector::new(&CameraInfo::from_model(&cam), &truth::lidar_to_camera_optical(), model)
                .unwrap();
        let lidar = LidarModel::new(2400);
        let mut scan = vec![0u8; lidar.max_scan_bytes()];
        let n = synth::lidar_scan(t, &lidar, &mut scan).unwrap();
        let mut img = vec![0u8; cam.frame_len(PixelEncoding::Bgr8)];
        synth::camera_frame(t, &cam, PixelEncoding::Bgr8, &mut img).unwrap();
        let cloud = CloudView::new(&scan, synth::LIDAR_POINT_STEP, [0, 4, 8], n).unwrap();
        let image = ImageView::new(&img, 96, 72, 96 * 3, PixelEncoding::Bgr8).unwrap();

        let mut whole_depth = vec![0.0f32; 96 * 72];
        let whole_stats = proj.depth_image(&cloud, &mut whole_depth).unwrap();
        let mut whole_cloud = vec![0u8; n * COLOURED_POINT_STEP];
        let whole_n = proj
            .coloured_cloud(&cloud, &image, Some((&whole_depth, 0.2)), &mut whole_cloud)
            .unwrap();
        prop_assert!(whole_stats.in_image > 0 && whole_n > 0, "an empty view at t={}", t);

        // Stale contents, as a reused output chunk holds.
        let mut depth = vec![7.5f32; 96 * 72];
        let mut pass = DepthPass::new();
        let depth_slices = in_slices(slice, |b| pass.step(&proj, &cloud, &mut depth, b)).unwrap();
        let mut coloured = vec![0xa5u8; n * COLOURED_POINT_STEP];
        let mut cpass = CloudPass::new();
        let occlusion = Some((&depth[..], 0.2));
        let cloud_slices =
            in_slices(slice, |b| cpass.step(&proj, &cloud, &image, occlusion, &mut coloured, b))
                .unwrap();

        prop_assert_eq!(pass.stats(), whole_stats);
        let same_depth = depth.iter().zip(&whole_depth).all(|(a, b)| a.to_bits() == b.to_bits());
        prop_assert!(same_depth, "depth differs with slices of {}", slice);
        prop_assert_eq!(cpass.written(), whole_n);
        let used = whole_n * COLOURED_POINT_STEP;
        prop_assert!(coloured[..used] == whole_cloud[..used], "cloud differs with slices of {}", slice);
        // The slices are as many as the budget asks for: the clear at 32 pixels a point, then the
        // points (the clear's last slice ends the pass for an empty scan only).
        let px_slices = (96 * 72usize).div_ceil(slice.saturating_mul(32));
        prop_assert_eq!(depth_slices, px_slices + n.div_ceil(slice));
        prop_assert_eq!(cloud_slices, n.div_ceil(slice).max(1));
    }
}
