#!/bin/bash
# Real programs on a filesystem: builds a sample tree under ROOT and runs
# coreutils / tar / find / du / python over it, printing normalized output
# (ROOT replaced by the literal "ROOT", all times fixed by the script itself
# so that they may be printed). Run on tmpfs and on btfuse; outputs must be
# byte-identical.
#
#   realprog.sh ROOT
#
# Every step prints a "### name" header and its exit status, so a failing
# command shows up as a difference rather than stopping the script.
set -u
ROOT=$1
PY=${PYTHON:-/usr/bin/python3}
cd "$ROOT" || exit 2
umask 022
export LC_ALL=C TZ=UTC

step() { # step NAME CMD... : run, normalize, print status
    local name=$1; shift
    echo "### $name"
    "$@" 2>&1 | sed -e "s#$ROOT#ROOT#g"
    echo "### status ${PIPESTATUS[0]}"
}

fix_times() { # all entries under $1 get mtime/atime @1600000000 (children first)
    find "$1" -depth -exec touch -h -d @1600000000 {} +
}

mktree() {
    local t=$1
    mkdir -p "$t"/a/b/c "$t"/empty_dir "$t"/modes
    : > "$t"/empty
    printf x > "$t"/one
    yes 'abcdefghijklmnopqrstuvwxyz' | head -c 4095 > "$t"/a/p4095
    yes 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' | head -c 4096 > "$t"/a/p4096
    yes '0123456789' | head -c 4097 > "$t"/a/b/p4097
    yes 'the quick brown fox' | head -c 300000 > "$t"/a/b/c/big
    "$PY" -c 'import random,sys; sys.stdout.buffer.write(random.Random(5).randbytes(1234567))' > "$t"/a/rand
    truncate -s 10M "$t"/sparse
    printf 'middle' | dd of="$t"/sparse bs=1 seek=5242880 conv=notrunc status=none
    truncate -s 3M "$t"/a/allhole
    ln -s one "$t"/sym_one
    ln -s a/b "$t"/sym_dir
    ln -s nowhere "$t"/sym_dangling
    ln -s ../../one "$t"/a/b/sym_up
    ln "$t"/one "$t"/hard_one
    ln "$t"/a/p4096 "$t"/a/b/c/hard_p4096
    mkfifo "$t"/fifo
    for m in 600 640 700 755 4755 2755 444; do printf "$m" > "$t"/modes/f$m; chmod $m "$t"/modes/f$m; done
    mkdir "$t"/modes/d1777 "$t"/modes/d700; chmod 1777 "$t"/modes/d1777; chmod 700 "$t"/modes/d700
    "$PY" -c 'import os,sys; os.setxattr(sys.argv[1], "user.note", b"hello xattr")' "$t"/a/p4095
    fix_times "$t"
    touch -h -d @1700000000 "$t"/a/b/p4097 "$t"/one
    touch -h -d @1650000000 "$t"/ref
    touch -h -d @1600000000 "$t"
}

mktree src
step "ls -lR src" ls -lR --time-style=+%s src
step "ls -la --full-time src" bash -c "ls -la --full-time src | grep -v ' \.\.$'"
step "stat src" bash -c "find src | sort | xargs -d '\n' stat -c '%n %s %b %f %h %u %g %Y'"
step "sha256sum src" bash -c "find src -type f | sort | xargs -d '\n' sha256sum"
step "cat/wc/head" bash -c "cat src/one src/a/p4096 | wc -c; head -c 30 src/a/b/c/big | od -c | head -3; tail -c 5 src/a/rand | od -An -tx1"
step "find -type f" bash -c "find src -type f | sort"
step "find -type l" bash -c "find src -type l | sort"
step "find -type d" bash -c "find src -type d | sort"
step "find -size +0" bash -c "find src -size +0 | sort"
step "find -size +4k -size -1M" bash -c "find src -size +4k -size -1M | sort"
step "find -newer ref" bash -c "find src -newer src/ref | sort"
step "find -empty" bash -c "find src -empty | sort"
step "find -links +1" bash -c "find src -type f -links +1 | sort"
step "find -perm" bash -c "find src -perm -4000 -o -perm -1000 | sort"
step "find -printf" bash -c "find src -printf '%p %y %s %k %n %m %Y\n' | sort"
step "du -a --apparent-size" bash -c "du -al --apparent-size -B1 src | sort -k2"
step "du -al" bash -c "du -al src | sort -k2"
step "du -s" du -s src
step "xattr read" "$PY" -c 'import os; print(os.getxattr("src/a/p4095", "user.note"))'

step "cp -a" cp -a src cpa
step "ls -lR cpa" ls -lR --time-style=+%s cpa
step "stat cpa" bash -c "cd cpa && find . | sort | xargs -d '\n' stat -c '%n %s %b %f %h %u %g %Y'"
step "diff -r src cpa" diff -r --no-dereference -x fifo src cpa
step "cp -a xattr" "$PY" -c 'import os; print(os.getxattr("cpa/a/p4095", "user.note"))'
step "cp --sparse=always" bash -c "cp --sparse=always src/sparse sparse_copy && stat -c '%s %b' sparse_copy && cmp src/sparse sparse_copy && echo same"
step "cp -r (no preserve)" bash -c "cp -r src cpr && ls -lR --time-style=+ cpr | sed -e 's/ [0-9]* [0-9]* *\$//' | head -50"

step "tar c" tar --sort=name -cSf arch.tar src
step "tar archive digest" sha256sum arch.tar
step "tar tvf" tar tvf arch.tar
step "tar x" bash -c "mkdir tx && tar xSf arch.tar -C tx"
step "ls -lR tx" ls -lR --time-style=+%s tx
step "diff -r src tx" diff -r --no-dereference -x fifo src tx/src
step "tar x sparse blocks" stat -c '%n %s %b' tx/src/sparse tx/src/a/allhole
step "tar xattrs" bash -c "tar --xattrs --sort=name -cf ax.tar src/a/p4095 && mkdir tx2 && tar --xattrs -xf ax.tar -C tx2 && $PY -c 'import os; print(os.getxattr(\"tx2/src/a/p4095\", \"user.note\"))'"
step "tar to pipe" bash -c "tar --sort=name -cf - src | tar tvf - | md5sum"

step "ln" bash -c "ln src/a/rand lnk_hard && ln -s src/a lnk_soft && ln -sf src/one lnk_soft2 && ln -sfn src/a/b lnk_soft && stat -c '%n %h %F %s' lnk_hard lnk_soft lnk_soft2 src/a/rand && readlink lnk_soft lnk_soft2"
step "ln errors" bash -c "ln src/a lnk_dir; ln src/missing x; ln -s a lnk_soft2; echo done"
step "mv within" bash -c "mv cpa/a mv_a && mv cpa/one mv_a/ && mv mv_a/b/p4097 mv_a/b/renamed && ls -R mv_a cpa | head -40"
step "mv dir over" bash -c "mkdir -p mvt/x mvt/y/z; mv mvt/x mvt/y; mv -T mvt/x mvt/y 2>&1; ls -R mvt"
step "mv -n / -b" bash -c "echo 1 > m1; echo 2 > m2; mv -n m1 m2; cat m2; mv -b m1 m2; ls m*; cat m2 m2~"
step "rm -rf" bash -c "rm -rf cpa tx tx2 mv_a mvt cpr && ls"
step "rm errors" bash -c "rm src; rm -d src/a; rmdir src/a; rm nothing; echo done"
step "rm -rf deep" bash -c "mkdir -p deep/\$(printf 'd/%.0s' \$(seq 1 40)) && rm -rf deep && ls -d deep 2>&1"

step "python os.walk" "$PY" - <<'EOF'
import os
for top, dirs, files in os.walk("src"):
    dirs.sort()
    print(top, sorted(dirs), sorted(files))
for top, dirs, files in os.walk("src", followlinks=True):
    dirs.sort()
    print("L", top, len(files))
EOF
step "python shutil.copytree" "$PY" - <<'EOF'
import hashlib, os, shutil, stat
shutil.copytree("src", "pyc", symlinks=True, ignore=shutil.ignore_patterns("fifo"))
def digest(top):
    out = []
    for t, ds, fs in os.walk(top):
        ds.sort()
        for n in sorted(fs) + sorted(ds):
            p = os.path.join(t, n)
            s = os.lstat(p)
            rel = os.path.relpath(p, top)
            if stat.S_ISLNK(s.st_mode):
                out.append((rel, "l", os.readlink(p)))
            elif stat.S_ISREG(s.st_mode):
                out.append((rel, oct(s.st_mode), s.st_size, s.st_mtime_ns, hashlib.sha256(open(p, "rb").read()).hexdigest()[:16]))
            else:
                out.append((rel, oct(s.st_mode)))
    return out
a, b = digest("src"), digest("pyc")
print("copytree equal (minus fifo):", [x for x in a if x[0] != "fifo"] == b)
for x in b:
    print(x)
shutil.rmtree("pyc")
print(os.path.exists("pyc"))
EOF
step "shell redirections" bash -c "echo a > r1; echo b >> r1; cat < r1; : > r1; stat -c %s r1; exec 3<>r2; echo x >&3; exec 3>&-; cat r2; set -C; echo y > r2; echo \$?"
step "final listing" bash -c "find . -path ./src -prune -o -print | sort"
