#!/usr/bin/env python3
"""Independent reader of MCAP files (PyPI `mcap` + `mcap-ros2-support`).

Usage: mcap_read.py FILE.mcap

Opens the file with mcap's reader, decodes every message with mcap-ros2-support's CDR decoder
(which parses the schema text stored in the file) and prints JSON: the header's profile, and per
message the topic, schema name and encoding, message encoding, log time and the decoded fields
that the Rust test checks (images and point clouds unpacked per their declared layout).
"""
import json
import struct
import sys

try:
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
except ImportError as e:  # pragma: no cover
    sys.exit(f"missing Python package ({e}): pip install mcap mcap-ros2-support")


def stamp(h):
    return h.stamp.sec * 10**9 + h.stamp.nanosec


def image(m):
    data = bytes(m.data)
    if m.encoding == "32FC1":
        px = [v if v == v else None for v in struct.unpack(f"<{len(data) // 4}f", data)]
    elif m.encoding == "16UC1":
        px = list(struct.unpack(f"<{len(data) // 2}H", data))
    else:
        px = list(data)
    return {"encoding": m.encoding, "width": m.width, "height": m.height, "step": m.step,
            "is_bigendian": m.is_bigendian, "pixels": px}


def cloud(m):
    data = bytes(m.data)
    fields = {f.name: (f.offset, f.datatype, f.count) for f in m.fields}
    pts = []
    for i in range(m.width * m.height):
        base = i * m.point_step
        x, y, z = (struct.unpack_from("<f", data, base + fields[c][0])[0] for c in "xyz")
        if "rgb" in fields:
            (rgb,) = struct.unpack_from("<I", data, base + fields["rgb"][0])
            pts.append([x, y, z, (rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255])
        else:
            (intensity,) = struct.unpack_from("<f", data, base + fields["intensity"][0])
            pts.append([x, y, z, intensity])
    return {"fields": [[f.name, f.offset, f.datatype, f.count] for f in m.fields],
            "width": m.width, "height": m.height, "point_step": m.point_step,
            "row_step": m.row_step, "is_dense": m.is_dense, "points": pts}


def imu(m):
    q, w, a = m.orientation, m.angular_velocity, m.linear_acceleration
    return {"orientation": [q.x, q.y, q.z, q.w], "angular_velocity": [w.x, w.y, w.z],
            "linear_acceleration": [a.x, a.y, a.z]}


def odom(m):
    p, q = m.pose.pose.position, m.pose.pose.orientation
    t = m.twist.twist
    return {"child_frame_id": m.child_frame_id, "position": [p.x, p.y, p.z],
            "orientation": [q.x, q.y, q.z, q.w], "pose_covariance": list(m.pose.covariance),
            "linear": [t.linear.x, t.linear.y, t.linear.z],
            "angular": [t.angular.x, t.angular.y, t.angular.z]}


def main():
    out = {"messages": []}
    with open(sys.argv[1], "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        out["profile"] = reader.get_header().profile
        for schema, channel, message, m in reader.iter_decoded_messages():
            rec = {"topic": channel.topic, "schema": schema.name,
                   "schema_encoding": schema.encoding,
                   "message_encoding": channel.message_encoding,
                   "log_time": message.log_time, "sequence": message.sequence,
                   "stamp_ns": stamp(m.header), "frame_id": m.header.frame_id}
            if schema.name == "sensor_msgs/msg/Image":
                rec.update(image(m))
            elif schema.name == "sensor_msgs/msg/PointCloud2":
                rec.update(cloud(m))
            elif schema.name == "nav_msgs/msg/Odometry":
                rec.update(odom(m))
            elif schema.name == "sensor_msgs/msg/Imu":
                rec.update(imu(m))
            out["messages"].append(rec)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
