#!/usr/bin/env bash
# gpu-bridge device check: runs the pre-built gpu-device-check binary on a GPU machine (which
# has no Rust toolchain and no network), after printing what nvidia-smi says about the card.
#
# Build it first, on a machine with Rust:
#   CARGO_TARGET_DIR=/work/tgt/gpu cargo build --release -p gpu-bridge --bin gpu-device-check
#   mkdir -p .devbin && cp /work/tgt/gpu/release/gpu-device-check .devbin/
#
# Usage: gpu-bridge/device-check.sh [path/to/gpu-device-check] [extra args for the binary]
# Without a path it looks in $GPU_DEVICE_CHECK, .devbin/, then target dirs.
# Results (profile.json, results.json, log.txt, nvidia-smi.txt) go to $OUT, else ./out.
# Runs in well under 5 minutes (the binary itself takes seconds; a hard limit of 240 s).
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

bin=""
if [ $# -gt 0 ] && [ -f "$1" ]; then
    bin="$1"
    shift
fi
if [ -z "$bin" ]; then
    for c in "${GPU_DEVICE_CHECK:-}" "$root/.devbin/gpu-device-check" "./.devbin/gpu-device-check" \
        "${CARGO_TARGET_DIR:-/nonexistent}/release/gpu-device-check" \
        "/work/tgt/gpu/release/gpu-device-check" "$root/target/release/gpu-device-check"; do
        if [ -n "$c" ] && [ -f "$c" ]; then
            bin="$c"
            break
        fi
    done
fi
if [ -z "$bin" ]; then
    echo "device-check: gpu-device-check binary not found; pass its path or carry .devbin/" >&2
    exit 2
fi
[ -x "$bin" ] || chmod +x "$bin" 2>/dev/null || { cp "$bin" /tmp/gpu-device-check && chmod +x /tmp/gpu-device-check && bin=/tmp/gpu-device-check; }

out="${OUT:-./out}"
mkdir -p "$out"
echo "== gpu-bridge device check =="
echo "binary: $bin"
echo "output: $out"
date -u +"date: %Y-%m-%dT%H:%M:%SZ"
uname -a
if command -v nvidia-smi >/dev/null 2>&1; then
    echo "== nvidia-smi =="
    nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.gen.max,pcie.link.width.current,pcie.link.width.max,memory.total \
        --format=csv 2>&1 | tee "$out/nvidia-smi.txt"
    nvidia-smi 2>&1 | head -20 | tee -a "$out/nvidia-smi.txt"
else
    echo "nvidia-smi: not present"
fi
echo "memlock limit: $(ulimit -l)"
echo "== gpu-device-check =="
timeout 240 "$bin" --out "$out" "$@" 2>&1 | tee "$out/log.txt"
rc=${PIPESTATUS[0]}
echo "== device check exit status: $rc =="
exit "$rc"
