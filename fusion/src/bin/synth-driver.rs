//! Runs one synthetic sensor driver as its own process, publishing on a shared-memory channel until
//! SIGINT or SIGTERM (what `rtfuse driver NAME` does for synthetic drivers).
//!
//! ```text
//! synth-driver camera CHANNEL [--rate HZ] [--width W] [--height H] [--fifo PRIO]
//! synth-driver lidar  CHANNEL [--rate HZ] [--points N] [--fifo PRIO]
//! synth-driver imu    CHANNEL [--rate HZ] [--fifo PRIO]
//! synth-driver odom   CHANNEL [--rate HZ] [--fifo PRIO]
//! ```
//! Defaults: camera 1920×1080 at 30 Hz, LiDAR 120 000 points at 10 Hz, IMU 400 Hz, odometry 50 Hz,
//! SCHED_OTHER. When it ends it prints its counters on one line (see
//! [`fusion::node::driver_process`]).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(fusion::node::driver_process::driver_main(
        "synth-driver",
        &args,
    ));
}
