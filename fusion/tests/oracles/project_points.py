#!/usr/bin/env python3
"""Independent oracle for fusion's LiDAR -> camera projection: OpenCV's cv2.projectPoints.

Modes:
  project            read {"cases": [{"points": [[x,y,z],...], "rvec": [3], "tvec": [3],
                     "K": [9 row-major], "D": [k1,k2,t1,t2,k3]}, ...]} on stdin, write
                     {"cases": [[[u,v],...], ...]} on stdout.
  bench FILE REPS    FILE holds N*3 float32 little-endian points followed by nothing; the camera
                     parameters come as JSON on stdin (one case without "points"). Times
                     cv2.projectPoints on all N points REPS times (time.perf_counter, single thread)
                     and prints {"n": N, "median_s": ..., "points_per_sec": ...}, plus the same
                     for the plumb-bob model written in vectorised numpy ("numpy_*": no Jacobian).
"""
import json
import sys
import time

try:
    import cv2
    import numpy as np
except ImportError as e:  # pragma: no cover - exercised only where packages are missing
    sys.stderr.write(
        f"missing Python package ({e}); install with: pip install opencv-python-headless numpy\n"
    )
    sys.exit(3)


def params(case):
    k = np.array(case["K"], dtype=np.float64).reshape(3, 3)
    d = np.array(case["D"], dtype=np.float64)
    rvec = np.array(case["rvec"], dtype=np.float64).reshape(3, 1)
    tvec = np.array(case["tvec"], dtype=np.float64).reshape(3, 1)
    return rvec, tvec, k, d


def project(req):
    out = []
    for case in req["cases"]:
        pts = np.array(case["points"], dtype=np.float64).reshape(-1, 1, 3)
        rvec, tvec, k, d = params(case)
        uv, _ = cv2.projectPoints(pts, rvec, tvec, k, d)
        out.append(uv.reshape(-1, 2).tolist())
    return {"cases": out}


def bench(path, reps, case):
    pts = np.fromfile(path, dtype="<f4").reshape(-1, 1, 3)
    rvec, tvec, k, d = params(case)
    cv2.setNumThreads(1)
    cv2.projectPoints(pts, rvec, tvec, k, d)  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        cv2.projectPoints(pts, rvec, tvec, k, d)
        times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    n = pts.shape[0]
    # A second reference without the Jacobian that the Python binding of projectPoints always computes:
    # the same plumb-bob model in vectorised numpy (float64), checked against OpenCV first.
    rot, _ = cv2.Rodrigues(rvec)
    flat = pts.reshape(-1, 3).astype(np.float64)

    def numpy_project():
        pc = flat @ rot.T + tvec.reshape(1, 3)
        x = pc[:, 0] / pc[:, 2]
        y = pc[:, 1] / pc[:, 2]
        r2 = x * x + y * y
        radial = 1 + r2 * (d[0] + r2 * (d[1] + r2 * d[4]))
        xd = x * radial + 2 * d[2] * x * y + d[3] * (r2 + 2 * x * x)
        yd = y * radial + d[2] * (r2 + 2 * y * y) + 2 * d[3] * x * y
        return np.stack([k[0, 0] * xd + k[0, 1] * yd + k[0, 2], k[1, 1] * yd + k[1, 2]], axis=1)

    ref, _ = cv2.projectPoints(pts, rvec, tvec, k, d)
    assert np.allclose(numpy_project(), ref.reshape(-1, 2), atol=1e-6), "numpy model disagrees with OpenCV"
    np_times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        numpy_project()
        np_times.append(time.perf_counter() - t0)
    np_times.sort()
    np_med = np_times[len(np_times) // 2]
    return {
        "n": n,
        "median_s": med,
        "points_per_sec": n / med,
        "opencv": cv2.__version__,
        "numpy_median_s": np_med,
        "numpy_points_per_sec": n / np_med,
    }


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "project":
        json.dump(project(json.load(sys.stdin)), sys.stdout)
    elif len(sys.argv) == 4 and sys.argv[1] == "bench":
        json.dump(bench(sys.argv[2], int(sys.argv[3]), json.load(sys.stdin)), sys.stdout)
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
