//! The hot paths of the fusion algorithms allocate nothing once their buffers exist: synthetic sensors,
//! ApproximateTime / ExactTime, LiDAR → camera projection and the EKF, counted with the crate's
//! counting global allocator on this thread.

use fusion::alloc_check::{installed, thread_counts, CountingAllocator};
use fusion::ekf::{idx, imu_measurement, odometry_measurement, Covariance, Ekf, LagWindow, State};
use fusion::projection::{
    CameraInfo, CloudView, ImageModel, ImageView, Projector, COLOURED_POINT_STEP,
};
use fusion::sync::{ApproximateTime, ExactTime, SyncEvent};
use fusion::synth::{self, CameraModel, ImuNoise, LidarModel, OdomNoise, PixelEncoding};
use fusion::truth;
use rand::rngs::StdRng;
use rand::SeedableRng;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

#[test]
fn steady_state_allocates_nothing() {
    // Buffers, built before counting starts.
    let cam = CameraModel::with_hfov(320, 240, 90.0);
    let lidar = LidarModel::new(32 * 200);
    let mut img = vec![0u8; cam.frame_len(PixelEncoding::Rgb8)];
    let mut scan = vec![0u8; lidar.max_scan_bytes()];
    let mut depth = vec![0f32; 320 * 240];
    let mut coloured = vec![0u8; lidar.points_per_scan * COLOURED_POINT_STEP];
    let proj = Projector::new(
        &CameraInfo::from_model(&cam),
        &truth::lidar_to_camera_optical(),
        ImageModel::Raw,
    )
    .unwrap();
    let mut approx = ApproximateTime::<u32, 3, 16>::new(10, 0.1).unwrap();
    let mut exact = ExactTime::<u32, 2, 16>::new(10).unwrap();
    let mut ekf = Ekf::default();
    let s0 = truth::state(0.0);
    let mut x0 = State::zeros();
    x0[idx::YAW] = s0.yaw;
    x0[idx::VX] = s0.velocity_body.x;
    ekf.set_state(0.0, x0, Covariance::identity() * 1e-3);
    // One that gets each odometry sample a step late: rewind and re-application allocate nothing.
    let mut lagged = Ekf::with_history(ekf.process_noise(), LagWindow::default());
    lagged.set_state(0.0, x0, Covariance::identity() * 1e-3);
    let mut held_back = None;
    let mut rng = StdRng::seed_from_u64(3);
    let odom_noise = OdomNoise {
        position_std: 0.3,
        yaw_std: 0.05,
        velocity_std: 0.05,
        yaw_rate_std: 0.02,
    };
    let (mut sets, mut drops) = (0u64, 0u64);
    let mut sink3 = |e: SyncEvent<u32, 3>| match e {
        SyncEvent::Set(_) => sets += 1,
        SyncEvent::Dropped { .. } => drops += 1,
    };
    let mut exact_sets = 0u64;
    let mut sink2 = |e: SyncEvent<u32, 2>| {
        if let SyncEvent::Set(_) = e {
            exact_sets += 1;
        }
    };

    let mut step = |k: u32| {
        let t = f64::from(k) * 0.1;
        synth::camera_frame(t, &cam, PixelEncoding::Rgb8, &mut img).unwrap();
        let n = synth::lidar_scan(t, &lidar, &mut scan).unwrap();
        let cloud = CloudView::new(&scan, synth::LIDAR_POINT_STEP, [0, 4, 8], n).unwrap();
        let image =
            ImageView::new(&img, cam.width, cam.height, 320 * 3, PixelEncoding::Rgb8).unwrap();
        proj.depth_image(&cloud, &mut depth).unwrap();
        proj.coloured_cloud(&cloud, &image, Some((&depth, 0.05)), &mut coloured)
            .unwrap();
        let stamp = i64::from(k) * 100_000_000;
        for s in 0..3 {
            approx
                .add(s, stamp + s as i64 * 3_000_000, k, &mut sink3)
                .unwrap();
        }
        exact.add(0, stamp, k, &mut sink2).unwrap();
        exact.add(1, stamp, k, &mut sink2).unwrap();
        let imu = synth::imu_sample(t, &ImuNoise::NONE, &mut rng);
        ekf.process(&imu_measurement(&imu, [0.01, 0.05, 0.2], f64::INFINITY))
            .unwrap();
        let odom = synth::odometry_sample(t, &odom_noise, &mut rng);
        let odom = odometry_measurement(&odom, [0.3, 0.05, 0.05, 0.02], 6.0);
        ekf.process(&odom).unwrap();
        lagged
            .process(&imu_measurement(&imu, [0.01, 0.05, 0.2], f64::INFINITY))
            .unwrap();
        if let Some(o) = held_back.replace(odom) {
            lagged.process(&o).unwrap();
        }
    };
    for k in 0..5 {
        step(k); // warm-up
    }
    let before = thread_counts();
    for k in 5..60 {
        step(k);
    }
    let used = thread_counts().since(&before);
    assert!(
        installed(),
        "the counting allocator must be the global allocator"
    );
    assert_eq!(used.allocs, 0, "allocations in the steady state");
    assert!(
        sets > 50 && exact_sets > 50,
        "the synchronisers really ran ({sets}, {exact_sets})"
    );
    assert_eq!(ekf.stats().rejected, 0, "odometry rejected");
    let lag = lagged.stats();
    assert!(
        lag.late >= 55 && lag.replayed >= 55 && lag.too_late == 0 && lag.rejected == 0,
        "{lag:?}"
    );
}
