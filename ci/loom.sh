#!/usr/bin/env bash
# Loom model check of the shared-memory ring protocol (shm-transport/tests/loom_ring.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTFLAGS="--cfg loom ${RUSTFLAGS:-}" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom" \
  cargo test -p shm-transport --test loom_ring --release
