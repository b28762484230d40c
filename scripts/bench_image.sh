#!/bin/sh
# Load/save figures of `btfuse mount --from`, `btfuse save` and
# `btfuse mount --image` against tar of the same tree from/to tmpfs: save
# beside `tar c` (tree to archive), --image beside `tar x` (archive to
# tree), --from beside `tar c | tar x` (tree to tree).
# Then the mount's per-op latency (stat, open+read 4 KiB+close; through
# the FUSE door and the preload library) while saves of the whole tree run
# back to back, against the same with no save.
# Run as root: scripts/bench_image.sh [BIG_MIB] [SMALL_FILES]
# (BTFUSE=path/to/btfuse to bench another build)
set -eu
BIG_MIB=${1:-1024}
SMALL=${2:-50000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${BTFUSE:-$ROOT/target/release/btfuse}
LIB=$ROOT/target/release/libbtfuse.so
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
    mkdir "$W/t/copy"; t9=$(now); tar cf - -C "$tree" . | tar xf - -C "$W/t/copy"; t10=$(now)
    rm -rf "$W/t/copy"
    t4=$(now); "$B" mount "$W/m" --size 4G --from "$tree" --background; t5=$(now)
    "$B" save "$W/m" "$W/t/img" > "$W/saved"; t6=$(now)
    "$B" umount "$W/m"
    t7=$(now); "$B" mount "$W/m" --size 4G --image "$W/t/img" --background; t8=$(now)
    "$B" umount "$W/m"; rm -f "$W/t/img"
    printf '%-22s tar c %6.3fs  tar x %6.3fs  tar c|x %6.3fs | --from %6.3fs  save %6.3fs (%s)  --image %6.3fs\n' \
        "$name" "$(secs $t0 $t1)" "$(secs $t2 $t3)" "$(secs $t9 $t10)" "$(secs $t4 $t5)" "$(secs $t5 $t6)" \
        "$(grep -o 'fsync [0-9.]* s' "$W/saved")" "$(secs $t7 $t8)"
}
mkdir "$W/t/big"
dd if=/dev/urandom of="$W/t/big/f" bs=1M count="$BIG_MIB" status=none
# Each tree twice: on this VM, memory the guest freed (the previous step's
# files) goes back to the host, and the next step to touch fresh memory
# pays a host fault per page while zeroing it; the first pass shows that
# cost landing on whichever command comes first, the second less of it.
run "1 file, ${BIG_MIB} MiB #1" "$W/t/big"
run "1 file, ${BIG_MIB} MiB #2" "$W/t/big"
mkdir "$W/t/small"
python3 -c "
import os, sys
r = sys.argv[1]; n = int(sys.argv[2])
for d in range(n // 1000 + 1):
    os.mkdir(f'{r}/d{d}')
for i in range(n):
    with open(f'{r}/d{i // 1000}/f{i}', 'w') as f: f.write('x' * (i % 2000))
" "$W/t/small" "$SMALL"
run "$SMALL small files #1" "$W/t/small"
run "$SMALL small files #2" "$W/t/small"

# Latency while saving: the helper of benches/bench-fs.py times 1000
# operations per round on ops/f0000..f0999 (4 KiB each); the median of
# ROUNDS rounds with no save, then of the rounds run while `btfuse save`
# of the whole tree (both trees above and ops/) runs back to back, for as
# long as 2 whole saves take (so each save's cut, when writers wait, weighs
# in the median as often as it happens).
ROUNDS=100
python3 -c "
import importlib.util, sys
spec = importlib.util.spec_from_file_location('bench_fs', sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
open(sys.argv[2], 'w').write(m.C_HELPER)
" "$ROOT/benches/bench-fs.py" "$W/helper.c"
gcc -O2 -pthread -o "$W/helper" "$W/helper.c"
mkdir "$W/t/lat" "$W/t/lat/ops"
mv "$W/t/big" "$W/t/small" "$W/t/lat/"
python3 -c "
import sys
for i in range(1000):
    open('%s/f%04d' % (sys.argv[1], i), 'wb').write(b'r' * 4096)
" "$W/t/lat/ops"
"$B" mount "$W/m" --size 4G --from "$W/t/lat" --background
rm -rf "$W/t/lat"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
rounds() { # mode, door, rounds: ns per op of each round
    if [ "$2" = preload ]; then
        LD_PRELOAD=$LIB "$W/helper" "$1" "$W/m/ops" 1000 "$3"
    else
        "$W/helper" "$1" "$W/m/ops" 1000 "$3"
    fi
}
for door in fuse preload; do
    for mode in stat openread; do
        rounds "$mode" "$door" 1 >/dev/null # warm the kernel's caches
        idle=$(rounds "$mode" "$door" "$ROUNDS" | median)
        rm -f "$W/stop"; : > "$W/saves"; : > "$W/busy"
        ( while [ ! -e "$W/stop" ]; do
            "$B" save "$W/m" "$W/t/img" >/dev/null || exit 1
            echo >> "$W/saves"; done ) &
        saver=$!
        short_of() { # N: fewer than N saves done, and the saver runs
            [ "$(wc -l < "$W/saves")" -lt "$1" ] && kill -0 "$saver" 2>/dev/null; }
        # From the end of the first save to the end of the third.
        while short_of 1; do sleep 0.01; done
        while short_of 3; do rounds "$mode" "$door" 5 >> "$W/busy"; done
        touch "$W/stop"; wait "$saver"
        busy=$(median < "$W/busy")
        printf '%-8s %-8s idle %8.0f ns  during save %8.0f ns  %5.2fx  (%d rounds)\n' \
            "$mode" "$door" "$idle" "$busy" "$(echo "$busy / $idle" | bc -l)" "$(wc -l < "$W/busy")"
    done
done
echo "(saves of a $(du -sh "$W/t/img" | cut -f1) image)"
