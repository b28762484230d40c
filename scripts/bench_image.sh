#!/bin/sh
# Load/save figures of `btfuse mount --from`, `btfuse save` and
# `btfuse mount --image` against tar of the same tree from/to tmpfs.
# Run as root: scripts/bench_image.sh [BIG_MIB] [SMALL_FILES]
set -eu
BIG_MIB=${1:-1024}
SMALL=${2:-50000}
B=$(cd "$(dirname "$0")/.." && pwd)/target/release/btfuse
W=$(mktemp -d /tmp/btfuse-bench-image.XXXXXX)
mkdir -p "$W/t" "$W/m"
mount -t tmpfs -o size=8G tmpfs "$W/t"
cleanup() { "$B" umount "$W/m" 2>/dev/null || true; umount "$W/t"; rm -rf "$W"; }
trap cleanup EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
run() { # name, tree
    name=$1 tree=$2
    t0=$(now); tar cf - -C "$tree" . > "$W/t/tree.tar"; t1=$(now)
    mkdir "$W/t/untar"; t2=$(now); tar xf "$W/t/tree.tar" -C "$W/t/untar"; t3=$(now)
    rm -rf "$W/t/untar" "$W/t/tree.tar"
    t4=$(now); "$B" mount "$W/m" --size 4G --from "$tree" --background; t5=$(now)
    "$B" save "$W/m" "$W/t/img" >/dev/null; t6=$(now)
    "$B" umount "$W/m"
    t7=$(now); "$B" mount "$W/m" --size 4G --image "$W/t/img" --background; t8=$(now)
    "$B" umount "$W/m"; rm -f "$W/t/img"
    printf '%-22s tar c %6.3fs  tar x %6.3fs | --from %6.3fs  save %6.3fs  --image %6.3fs\n' \
        "$name" "$(secs $t0 $t1)" "$(secs $t2 $t3)" "$(secs $t4 $t5)" "$(secs $t5 $t6)" "$(secs $t7 $t8)"
}
mkdir "$W/t/big"
dd if=/dev/urandom of="$W/t/big/f" bs=1M count="$BIG_MIB" status=none
run "1 file, ${BIG_MIB} MiB" "$W/t/big"
rm -rf "$W/t/big"
mkdir "$W/t/small"
python3 -c "
import os, sys
r = sys.argv[1]; n = int(sys.argv[2])
for d in range(n // 1000 + 1):
    os.mkdir(f'{r}/d{d}')
for i in range(n):
    with open(f'{r}/d{i // 1000}/f{i}', 'w') as f: f.write('x' * (i % 2000))
" "$W/t/small" "$SMALL"
run "$SMALL small files" "$W/t/small"
