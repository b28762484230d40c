#!/usr/bin/env bash
# Builds everything in release mode and runs the whole test suite.
# Tests that mount need root and /dev/fuse; without them they skip loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace
cargo test --release --workspace "$@"
