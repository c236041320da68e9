#!/usr/bin/env bash
# Miri over the ring's in-process tests (two threads through one ring, wrap-around, scribbled stamps).
# Needs a nightly toolchain with miri: rustup +nightly component add miri rust-src
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/miri" cargo +nightly miri test -p shm-transport --lib ring::
