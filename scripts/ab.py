#!/usr/bin/env python3
"""Interleaved A/B timing of shell commands: the comparisons quoted in
README next to each change (`make -j2` with one library build against
another, a `cat` loop on two mounts...). On a shared, noisy machine a
change is only seen in runs that alternate: each round runs every command
once, in order, and the medians are taken over the rounds.

usage: scripts/ab.py ROUNDS LABEL COMMAND [LABEL COMMAND ...]

A COMMAND runs under `sh -c`, its output discarded. Prefix it with
`PRE:` to run it with `LD_PRELOAD` set to the library in `$LIB`
(default: target/release/libbtfuse.so). Prints, per label, the median
wall time with min and max, and the median CPU time of the command's
processes (user + system, children included).

example:
  scripts/ab.py 9 fuse 'make -s -C /mnt/proj -j2' \\
                  preload 'PRE:make -s -C /mnt/proj -j2'
"""

import os
import resource
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_once(command, lib):
    """Wall and CPU seconds of one run of `command`."""
    env = dict(os.environ)
    if command.startswith("PRE:"):
        command = command[len("PRE:"):]
        env["LD_PRELOAD"] = lib
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(["sh", "-c", command], env=env, stdout=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu


def main(argv):
    if len(argv) < 4 or len(argv) % 2 != 0:
        sys.exit(__doc__)
    rounds = int(argv[1])
    pairs = list(zip(argv[2::2], argv[3::2]))
    lib = os.environ.get("LIB", os.path.join(REPO, "target", "release", "libbtfuse.so"))
    walls = {label: [] for label, _ in pairs}
    cpus = {label: [] for label, _ in pairs}
    for _ in range(rounds):
        for label, command in pairs:
            wall, cpu = run_once(command, lib)
            walls[label].append(wall)
            cpus[label].append(cpu)
    for label, _ in pairs:
        w = sorted(walls[label])
        print("%-12s wall median %9.2f ms  (min %.2f, max %.2f)  cpu median %9.2f ms"
              % (label, statistics.median(w) * 1e3, w[0] * 1e3, w[-1] * 1e3,
                 statistics.median(cpus[label]) * 1e3))


if __name__ == "__main__":
    main(sys.argv)
