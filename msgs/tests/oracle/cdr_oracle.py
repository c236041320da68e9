"""CDR oracle: serializes / deserializes ROS 2 messages with Cyclone DDS's IDL serializer.

stdin: JSON lines {"op": "encode", "type": "sensor_msgs/msg/Imu", "value": {...}}
                  {"op": "decode", "type": "...", "hex": "0001..."}
stdout: one JSON line per request: {"hex": "..."} or {"value": {...}} or {"error": "..."}.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ros2_types  # noqa: E402  (exits with a clear message if cyclonedds is missing)


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        cls = ros2_types.BY_ROS_TYPE[req["type"]]
        try:
            if req["op"] == "encode":
                msg = ros2_types.from_json(cls, req["value"])
                out = {"hex": msg.serialize().hex()}
            else:
                msg = cls.deserialize(bytes.fromhex(req["hex"]))
                out = {"value": ros2_types.to_json(msg)}
        except Exception as e:  # report, the Rust side asserts
            out = {"error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
