"""A standard ROS 2 node in Eclipse Cyclone DDS (Python), the independent peer of the interop tests.

It uses the message types of rtfuse-msgs' oracle (written from the ROS 2 .msg files) with ROS 2
DDS names (`rt/<topic>`, `pkg::msg::dds_::Type_`) and plain CDR (XCDR1) like every ROS 2 RMW.

  pub  --domain D --topic rt/imu --type sensor_msgs/msg/Imu --count N [--size BYTES] [--qos reliable|best_effort]
       [--encoding mono16|mono8|rgb8] [--stamp fixed|now]
       [--wait-go]: waits until a subscription matches (and, with --wait-go, for "GO" on stdin),
       publishes N deterministic messages, prints one JSON line
       per message {"seq": i, "crc32": <of data or of the CDR>, "value": <small messages only>,
       "stamp": <the header stamp, large messages>}
  sub  --domain D --topic rt/odom --type nav_msgs/msg/Odometry --count N [--qos ...] [--timeout S]
       prints "MATCHED <n>" once a publication matched, then one JSON line per sample
       {"value": ..., "crc32": ...}, and "DONE" (or "TIMEOUT") at the end.
Stamps are 1000 + i s (--stamp fixed, the default) or the system time at publication (--stamp now,
what a live ROS 2 driver does; "value" or "stamp" in the JSON say what was sent).
Exit code 3 with a clear message if cyclonedds is missing.
"""
import argparse
import json
import os
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "msgs", "tests", "oracle"))
import ros2_types  # noqa: E402  (exits 3 with a message when cyclonedds is missing)

from cyclonedds.core import Policy, Qos  # noqa: E402
from cyclonedds.domain import DomainParticipant  # noqa: E402
from cyclonedds.pub import DataWriter  # noqa: E402
from cyclonedds.sub import DataReader  # noqa: E402
from cyclonedds.topic import Topic  # noqa: E402
from cyclonedds.util import duration  # noqa: E402
from cyclonedds.idl import IdlStruct  # noqa: E402
from cyclonedds.idl import types as t  # noqa: E402
from dataclasses import dataclass  # noqa: E402


def qos(kind, depth):
    rel = (
        Policy.Reliability.Reliable(max_blocking_time=duration(seconds=1))
        if kind == "reliable"
        else Policy.Reliability.BestEffort
    )
    return Qos(
        rel,
        Policy.Durability.Volatile,
        Policy.History.KeepLast(depth),
        Policy.DataRepresentation(use_cdrv0_representation=True),
    )


BYTES_PER_PIXEL = {"mono8": 1, "mono16": 2, "rgb8": 3}


def make_message(ros_type, i, size, encoding="mono16", stamp_now=False):
    """Deterministic message number i (data bytes of `size` for Image / PointCloud2)."""
    T = ros2_types
    if stamp_now:
        ns = time.time_ns()
        stamp = T.Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
    else:
        stamp = T.Time(sec=1000 + i, nanosec=i * 1000)
    header = T.Header(stamp=stamp, frame_id="cyclone_%d" % i)
    if ros_type == "sensor_msgs/msg/Imu":
        return T.Imu(
            header=header,
            orientation=T.Quaternion(x=0.0, y=0.0, z=0.5, w=0.75 + i),
            orientation_covariance=[0.01 * k for k in range(9)],
            angular_velocity=T.Vector3(x=0.1 * i, y=-0.2, z=0.3),
            angular_velocity_covariance=[0.02 * k for k in range(9)],
            linear_acceleration=T.Vector3(x=0.0, y=0.0, z=9.81),
            linear_acceleration_covariance=[0.03 * k for k in range(9)],
        )
    if ros_type == "sensor_msgs/msg/Image":
        width = 1280
        bpp = BYTES_PER_PIXEL[encoding]
        height = max(1, size // (width * bpp))
        data = bytes((k * 7 + i) & 0xFF for k in range(256)) * (width * bpp * height // 256 + 1)
        data = data[: width * bpp * height]
        return T.Image(header=header, height=height, width=width, encoding=encoding,
                       is_bigendian=0, step=width * bpp, data=data)
    raise SystemExit("cyclone_peer: no generator for %s" % ros_type)


def digest(msg):
    """CRC-32 (zlib) of the data bytes, or of the whole serialized message if it has none."""
    data = getattr(msg, "data", None)
    if data is None:
        data = msg.serialize()
    return zlib.crc32(bytes(data))


def wait_matched(get, deadline):
    while time.time() < deadline:
        n = len(get())
        if n > 0:
            return n
        time.sleep(0.02)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["pub", "sub", "bogus"])
    ap.add_argument("--domain", type=int, required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--type", required=True)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--qos", default="reliable")
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--period", type=float, default=0.02)
    ap.add_argument("--encoding", choices=sorted(BYTES_PER_PIXEL), default="mono16")
    ap.add_argument("--stamp", choices=["fixed", "now"], default="fixed")
    ap.add_argument("--wait-go", action="store_true",
                    help="after MATCHED, wait for a line GO on stdin (the other side matched too)")
    a = ap.parse_args()

    cls = ros2_types.BY_ROS_TYPE[a.type]
    if a.mode == "bogus":
        # Same DDS type name, different (shorter) layout: a peer with a wrong .msg.
        @dataclass
        class Bogus(IdlStruct, typename=cls.__idl_typename__):
            x: t.uint32 = 0

        cls = Bogus
    dp = DomainParticipant(a.domain)
    topic = Topic(dp, a.topic, cls)
    deadline = time.time() + a.timeout
    out = sys.stdout
    if a.mode in ("pub", "bogus"):
        w = DataWriter(dp, topic, qos=qos(a.qos, a.depth))
        n = wait_matched(w.get_matched_subscriptions, deadline)
        out.write("MATCHED %d\n" % n)
        out.flush()
        if n == 0:
            out.write("TIMEOUT\n")
            return 1
        if a.wait_go:
            sys.stdin.readline()
        else:
            time.sleep(0.2)  # let the remote reader's matching complete on its side too
        for i in range(a.count):
            if a.mode == "bogus":
                msg = cls(x=i)
            else:
                msg = make_message(a.type, i, a.size, a.encoding, a.stamp == "now")
            w.write(msg)
            rec = {"seq": i, "crc32": digest(msg)}
            if a.mode == "pub":
                if a.size == 0:
                    rec["value"] = ros2_types.to_json(msg)
                else:
                    rec["stamp"] = ros2_types.to_json(msg.header.stamp)
            out.write(json.dumps(rec) + "\n")
            out.flush()
            time.sleep(a.period)
        # Reliable: give retransmissions a chance before the participant goes away.
        w.wait_for_acks(duration(seconds=5))
        time.sleep(0.5)
        out.write("DONE\n")
        return 0
    r = DataReader(dp, topic, qos=qos(a.qos, a.depth))
    n = wait_matched(r.get_matched_publications, deadline)
    out.write("MATCHED %d\n" % n)
    out.flush()
    got = 0
    while got < a.count and time.time() < deadline:
        samples = r.take(N=16)
        if not samples:
            time.sleep(0.005)
            continue
        for s in samples:
            out.write(json.dumps({"value": ros2_types.to_json(s), "crc32": digest(s)}) + "\n")
            got += 1
        out.flush()
    out.write("DONE\n" if got >= a.count else "TIMEOUT\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
