#!/usr/bin/env python3
"""List what differs between two layer blobs (tar or tar.gz): entries only in one, and entries
whose type, mode, owner, size, link target or contents (sha256) differ. Exit 1 when any do.

Usage: e2e/images/layer-diff.py A.tar.gz B.tar.gz
"""

import hashlib
import sys
import tarfile


def entries(path):
    """{name: (type, mode, uid, gid, size, linkname, mtime, sha256 of contents)}."""
    out = {}
    try:
        with tarfile.open(path) as tar:
            for m in tar:
                sha = ""
                if m.isreg():
                    sha = hashlib.sha256(tar.extractfile(m).read()).hexdigest()[:16]
                out[m.name] = (m.type, oct(m.mode), m.uid, m.gid, m.size, m.linkname, m.mtime, sha)
    except (OSError, tarfile.TarError, EOFError) as err:
        sys.exit(f"layer-diff: {path}: not a readable layer: {err}")
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip())
    a, b = entries(sys.argv[1]), entries(sys.argv[2])
    fields = ("type", "mode", "uid", "gid", "size", "link", "mtime", "sha256")
    differ = 0
    for name in sorted(a.keys() | b.keys()):
        if name not in b:
            print(f"only in A: {name}")
        elif name not in a:
            print(f"only in B: {name}")
        elif a[name] != b[name]:
            what = ", ".join(f"{f} {x} != {y}" for f, x, y in zip(fields, a[name], b[name]) if x != y)
            print(f"differs: {name}: {what}")
        else:
            continue
        differ += 1
    print(f"{differ} of {len(a.keys() | b.keys())} entries differ")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
