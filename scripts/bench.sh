#!/usr/bin/env bash
# Builds in release mode and runs the filesystem benchmark: tmpfs vs bindfs
# (a stock FUSE filesystem) vs the btfuse FUSE mount (warm and cold caches)
# vs the preload fast path, medians and ratios from one run. Writes the
# markdown table to stdout, target/bench/results.json and target/bench/*.png.
# Needs root. Extra arguments go to benches/bench-fs.py (--quick, --runs N,
# --only REGEX, ...; see benches/bench-fs.py --help).
set -euo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do
    if [[ "$arg" == -h || "$arg" == --help ]]; then
        # Help needs no build: show this header, then the runner's options.
        sed -n '2,7s/^# \{0,1\}//p' "$0"
        echo
        exec python3 benches/bench-fs.py --help
    fi
done
cargo build --release --quiet
# The kernel's FUSE over io_uring (6.14+) is off unless switched on; btfuse
# uses it when it is on (README, "The plain mount"). As root, switch it on,
# as a deployment that wants the fastest FUSE door would.
uring=/sys/module/fuse/parameters/enable_uring
if [[ -w "$uring" ]]; then
    echo 1 > "$uring"
fi
tgt="${CARGO_TARGET_DIR:-target}"
exec python3 benches/bench-fs.py --btfuse "$tgt/release/btfuse" \
    --preload "$tgt/release/libbtfuse.so" "$@"
