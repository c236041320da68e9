#!/usr/bin/env python3
"""Independent writer of rosbag2-style MCAP test files (PyPI `mcap` + `mcap-ros2-support`).

Usage: mcap_write.py OUT.mcap [--compression zstd|lz4|none] [--chunk-size BYTES] [--bad]

Writes camera images (rgb8), camera info, point clouds (x,y,z,intensity float32), IMU and
odometry messages with deterministic contents, and with --bad also messages of an unknown type,
point clouds with inconsistent layouts and an IMU stamp that goes backwards. Prints a JSON
manifest of every message (topic, log time, header stamp, the values the reader must recover,
and which problem a message carries, if any) on stdout.
"""
import argparse
import json
import struct
import sys

try:
    from mcap.writer import CompressionType
    from mcap_ros2.writer import Writer
except ImportError as e:  # pragma: no cover
    sys.exit(f"missing Python package ({e}): pip install mcap mcap-ros2-support")

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import mcap_ros2_defs as defs  # noqa: E402

T0 = 1_700_000_000 * 10**9


def stamp(ns):
    return {"sec": ns // 10**9, "nanosec": ns % 10**9}


def header(ns, frame):
    return {"stamp": stamp(ns), "frame_id": frame}


def image(k, ns):
    w, h = 8, 6
    data = bytes((k * 7 + i) % 256 for i in range(w * h * 3))
    msg = {"header": header(ns, "camera"), "height": h, "width": w, "encoding": "rgb8",
           "is_bigendian": 0, "step": w * 3, "data": data}
    return msg, {"width": w, "height": h, "encoding": "rgb8", "step": w * 3,
                 "data_sum": sum(data), "data_len": len(data)}


FIELDS = [
    {"name": "x", "offset": 0, "datatype": 7, "count": 1},
    {"name": "y", "offset": 4, "datatype": 7, "count": 1},
    {"name": "z", "offset": 8, "datatype": 7, "count": 1},
    {"name": "intensity", "offset": 12, "datatype": 7, "count": 1},
]


def cloud(k, ns, n=50, fields=FIELDS, keep=None):
    pts = [(0.5 * i, -0.25 * k, 1.0 + 0.125 * i, float(i % 7)) for i in range(n)]
    data = b"".join(struct.pack("<4f", *p) for p in pts)
    if keep is not None:
        data = data[:keep]
    msg = {"header": header(ns, "lidar"), "height": 1, "width": n, "fields": fields,
           "is_bigendian": False, "point_step": 16, "row_step": 16 * n, "data": data,
           "is_dense": True}
    return msg, {"width": n, "points": [list(p) for p in pts]}


def imu(k, ns):
    q = [0.0, 0.0, 0.1 * k, 1.0]
    msg = {"header": header(ns, "imu"),
           "orientation": {"x": q[0], "y": q[1], "z": q[2], "w": q[3]},
           "orientation_covariance": [0.01 * i for i in range(9)],
           "angular_velocity": {"x": 0.001 * k, "y": -0.002 * k, "z": 0.5},
           "angular_velocity_covariance": [0.0] * 9,
           "linear_acceleration": {"x": 0.1, "y": 0.2 * k, "z": 9.81},
           "linear_acceleration_covariance": [1.0] * 9}
    return msg, {"gyro": [0.001 * k, -0.002 * k, 0.5], "accel": [0.1, 0.2 * k, 9.81],
                 "orientation": q}


def camera_info(ns):
    k = [500.0, 0.0, 320.0, 0.0, 505.0, 240.0, 0.0, 0.0, 1.0]
    msg = {"header": header(ns, "camera"), "height": 480, "width": 640,
           "distortion_model": "plumb_bob", "d": [0.1, -0.05, 0.001, 0.002, 0.0], "k": k,
           "r": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
           "p": [500.0, 0, 320.0, 0, 0, 505.0, 240.0, 0, 0, 0, 1.0, 0],
           "binning_x": 0, "binning_y": 0,
           "roi": {"x_offset": 0, "y_offset": 0, "height": 0, "width": 0, "do_rectify": False}}
    return msg, {"k": k, "d": msg["d"], "width": 640, "height": 480}


def odom(k, ns):
    pos = [0.1 * k, 0.05 * k, 0.0]
    msg = {"header": header(ns, "odom"), "child_frame_id": "base_link",
           "pose": {"pose": {"position": dict(zip("xyz", pos)),
                             "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0}},
                    "covariance": [0.001 * i for i in range(36)]},
           "twist": {"twist": {"linear": {"x": 1.0, "y": 0.0, "z": 0.0},
                               "angular": {"x": 0.0, "y": 0.0, "z": 0.1 * k}},
                     "covariance": [0.0] * 36}}
    return msg, {"position": pos, "child_frame_id": "base_link", "yaw_rate": 0.1 * k}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--compression", default="zstd", choices=["zstd", "lz4", "none"])
    ap.add_argument("--chunk-size", type=int, default=1024 * 1024)
    ap.add_argument("--bad", action="store_true")
    a = ap.parse_args()
    comp = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4,
            "none": CompressionType.NONE}[a.compression]

    plan = []  # (log_time, topic, type, builder[, problem])
    plan.append((T0, "/camera/camera_info", "CameraInfo", lambda ns: camera_info(ns)))
    for k in range(6):
        plan.append((T0 + k * 33_333_333, "/camera/image_raw", "Image", lambda ns, k=k: image(k, ns)))
    for k in range(4):
        plan.append((T0 + k * 100_000_000 + 1, "/lidar/points", "PointCloud2",
                     lambda ns, k=k: cloud(k, ns)))
    for k in range(60):
        plan.append((T0 + k * 2_500_000 + 2, "/imu", "Imu", lambda ns, k=k: imu(k, ns)))
    for k in range(10):
        plan.append((T0 + k * 20_000_000 + 3, "/odom", "Odometry", lambda ns, k=k: odom(k, ns)))
    if a.bad:
        for k in range(3):
            plan.append((T0 + k * 50_000_000 + 4, "/chatter", "String",
                         lambda ns, k=k: ({"data": f"hello {k}"}, {}), "unknown_type"))
        # Data shorter than row_step × height.
        plan.append((T0 + 150_000_000 + 5, "/lidar/points", "PointCloud2",
                     lambda ns: cloud(9, ns, keep=16 * 40), "bad_layout"))
        # A field that runs past point_step.
        bad_fields = FIELDS[:3] + [{"name": "intensity", "offset": 14, "datatype": 7, "count": 1}]
        plan.append((T0 + 250_000_000 + 5, "/lidar/points", "PointCloud2",
                     lambda ns: cloud(8, ns, fields=bad_fields), "bad_layout"))
    plan.sort(key=lambda p: p[0])

    schemas = {}
    manifest = []
    counts = {}
    with open(a.out, "wb") as f:
        w = Writer(f, chunk_size=a.chunk_size, compression=comp)
        defs_by_type = {"Image": ("sensor_msgs/msg/Image", defs.IMAGE),
                        "PointCloud2": ("sensor_msgs/msg/PointCloud2", defs.POINTCLOUD2),
                        "Imu": ("sensor_msgs/msg/Imu", defs.IMU),
                        "CameraInfo": ("sensor_msgs/msg/CameraInfo", defs.CAMERA_INFO),
                        "Odometry": ("nav_msgs/msg/Odometry", defs.ODOMETRY),
                        "String": ("std_msgs/msg/String", defs.STRING)}
        for log_time, topic, ty, build, *problem in plan:
            if ty not in schemas:
                schemas[ty] = w.register_msgdef(*defs_by_type[ty])
            idx = counts.get(topic, 0)
            counts[topic] = idx + 1
            ns = log_time
            problem = problem[0] if problem else None
            if ty == "Imu" and a.bad and idx == 30:
                ns = log_time - 20_000_000  # header stamp goes back 20 ms
                problem = "non_monotonic"
            msg, expect = build(ns)
            w.write_message(topic, schemas[ty], msg, log_time=log_time,
                            publish_time=log_time, sequence=idx)
            manifest.append({"topic": topic, "type": ty, "log_time": log_time,
                             "stamp_ns": ns if ty != "String" else None, "seq": idx,
                             "problem": problem, "expect": expect})
        w.finish()
    json.dump(manifest, sys.stdout)


if __name__ == "__main__":
    main()
