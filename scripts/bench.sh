#!/usr/bin/env bash
# Builds in release mode and runs the filesystem benchmark: tmpfs vs the
# btfuse FUSE mount (warm and cold caches) vs the preload fast path vs
# bindfs (a stock FUSE filesystem), medians and ratios from one run.
# Needs root. Extra arguments go to benches/bench-fs.py (--quick, --runs N).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec python3 benches/bench-fs.py --btfuse target/release/btfuse \
    --preload target/release/libbtfuse.so "$@"
