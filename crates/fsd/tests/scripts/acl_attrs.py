"""POSIX ACL attributes of a file, a directory and a symlink under ROOT:
set (a well-formed ACL, a malformed value, an empty one), get and remove,
following and not following the symlink, and on an open fd; one line per
call with its errno (or "ok"), names relative to ROOT.

usage: acl_attrs.py ROOT
"""
import os, sys, errno, struct
root = os.path.join(sys.argv[1], "aclm"); os.makedirs(root, exist_ok=True)
f = os.path.join(root, "f"); open(f, "w").close()
d = os.path.join(root, "d"); os.makedirs(d, exist_ok=True)
l = os.path.join(root, "l")
if not os.path.lexists(l): os.symlink("f", l)
val = struct.pack("<I", 2) + struct.pack("<HHI", 1, 6, 0xffffffff) + struct.pack("<HHI", 4, 4, 0xffffffff) + struct.pack("<HHI", 0x20, 4, 0xffffffff)
def e(fn):
    try: fn(); return "ok"
    except OSError as x: return errno.errorcode[x.errno]
out = []
for p in (f, d, l):
    for name in ("system.posix_acl_access", "system.posix_acl_default"):
        for fol in (True, False):
            for v in (val, b"junk", b""):
                out.append("%s %s %s set%d %s" % (os.path.basename(p), name[13:], "f" if fol else "n", len(v), e(lambda: os.setxattr(p, name, v, follow_symlinks=fol))))
            out.append("%s %s %s get %s" % (os.path.basename(p), name[13:], "f" if fol else "n", e(lambda: os.getxattr(p, name, follow_symlinks=fol))))
            out.append("%s %s %s rm %s" % (os.path.basename(p), name[13:], "f" if fol else "n", e(lambda: os.removexattr(p, name, follow_symlinks=fol))))
    fd = os.open(p, os.O_RDONLY | (os.O_PATH if p == l else 0) ) if p != l else None
    if fd is not None:
        for name in ("system.posix_acl_access", "system.posix_acl_default"):
            out.append("%s %s fd set %s" % (os.path.basename(p), name[13:], e(lambda: os.setxattr(fd, name, val))))
            out.append("%s %s fd get %s" % (os.path.basename(p), name[13:], e(lambda: os.getxattr(fd, name))))
        os.close(fd)
print("\n".join(out))
