#!/usr/bin/env python3
"""Set every entry date of a Java KeyStore (JKS) file to SOURCE_DATE_EPOCH, in place.

Debian's ca-certificates-java builds /etc/ssl/certs/java/cacerts at install time as a JKS
keystore whose entries carry their creation time (milliseconds), so two builds of the same
packages differ. Only the dates change here: the entries, their order and the certificates stay
as they are, and the keystore's integrity digest is recomputed with the store password, which
is checked first (a wrong password or a file that is not JKS is an error, the file untouched).

Usage: e2e/images/jks-dates.py [--storepass changeit] FILE
"""

import argparse
import hashlib
import os
import struct
import sys

MAGIC = 0xFEEDFEED
PRIVATE_KEY, TRUSTED_CERT = 1, 2
WHITENER = b"Mighty Aphrodite"  # the JKS integrity digest's salt, fixed by the format


class Reader:
    """Reads the big-endian fields of a JKS body, failing clearly on truncation."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated keystore")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def utf(self):
        (n,) = struct.unpack(">H", self.take(2))
        self.take(n)

    def cert(self, version):
        if version == 2:
            self.utf()  # certificate type, "X.509"
        self.take(self.u32())


def digest(password, body):
    key = b"".join(struct.pack(">H", ord(c)) for c in password)
    return hashlib.sha1(key + WHITENER + body).digest()


def fixed_dates(data, password, millis):
    """The keystore bytes with every entry date set to millis; ValueError when not valid JKS."""
    if len(data) < 32:
        raise ValueError("too short for a JKS keystore")
    body, mac = data[:-20], data[-20:]
    r = Reader(body)
    if r.u32() != MAGIC:
        raise ValueError("not a JKS keystore (magic)")
    version = r.u32()
    if version not in (1, 2):
        raise ValueError(f"unknown JKS version {version}")
    if digest(password, body) != mac:
        raise ValueError("integrity check failed (wrong store password?)")
    out = bytearray(body)
    for _ in range(r.u32()):
        tag = r.u32()
        r.utf()  # alias
        struct.pack_into(">q", out, r.pos, millis)
        r.take(8)
        if tag == TRUSTED_CERT:
            r.cert(version)
        elif tag == PRIVATE_KEY:
            r.take(r.u32())
            for _ in range(r.u32()):
                r.cert(version)
        else:
            raise ValueError(f"unknown entry tag {tag}")
    if r.pos != len(body):
        raise ValueError("trailing bytes after the entries")
    return bytes(out) + digest(password, bytes(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--storepass", default="changeit")
    p.add_argument("file")
    args = p.parse_args()
    millis = int(os.environ.get("SOURCE_DATE_EPOCH", "0")) * 1000
    with open(args.file, "rb") as f:
        data = f.read()
    try:
        fixed = fixed_dates(data, args.storepass, millis)
    except ValueError as e:
        sys.exit(f"jks-dates: {args.file}: {e}")
    if fixed != data:
        st = os.stat(args.file)
        tmp = args.file + ".tmp"
        with open(tmp, "wb") as f:
            f.write(fixed)
        os.chmod(tmp, st.st_mode & 0o7777)
        os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, args.file)


if __name__ == "__main__":
    main()
