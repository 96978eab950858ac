#!/usr/bin/env python3
"""Assemble an OCI image archive from root filesystem directories, reproducibly.

No registry and no container engine are needed: each --layer directory becomes one gzip layer,
the config (Entrypoint, Cmd, User, Env, WorkingDir, Volumes, ExposedPorts, Labels) is written
from the flags, and the result is an OCI image layout (oci-layout, index.json, blobs/sha256/...)
packed in a tar that `ctr -n k8s.io images import FILE` accepts.

Usage:
  scripts/oci-image.py build -o OUT.tar --name kube-harden.local/legacy/nginx:1 \\
      --layer ROOTFS_DIR [--layer DIFF_DIR ...] \\
      [--entrypoint '["/usr/sbin/nginx"]'] [--cmd '["-g","daemon off;"]'] \\
      [--user 1000:1000] [--env K=V ...] [--workdir /app] [--volume /data ...] \\
      [--expose 80/tcp ...] [--label k=v ...] [--arch amd64]
  scripts/oci-image.py layer -o LAYER.tar.gz DIR   # pack one layer now, reuse it later with
  scripts/oci-image.py build ... --layer-blob LAYER.tar.gz   # (digests in LAYER.tar.gz.json)
  scripts/oci-image.py digest OUT.tar       # the manifest digest of an archive (sha256:...)

Layers (--layer DIR and --layer-blob FILE) stack in the order given, mixed as needed.

The same inputs give the same bytes, hence the same digests:
  - entries in sorted order, every mtime set to SOURCE_DATE_EPOCH (default 0), no user/group
    names (numeric uid/gid only);
  - ownership and permission bits are kept as they are on disk (the app may need them: a 0700
    directory owned by UID 1000 stays so);
  - gzip without file name or timestamp; the image's `created` is SOURCE_DATE_EPOCH;
  - the contents of dev/, proc/ and sys/ are left out (the runtime mounts them).

Layer directories are added as they are. A later layer deletes a path of an earlier one the OCI
way: a `.wh.NAME` file, or an overlayfs whiteout (a 0:0 character device, turned into `.wh.NAME`),
and a directory with the overlayfs opaque xattr gets `.wh..wh..opq`, so an overlayfs upper
directory is a valid layer. Extended attributes other than that are not recorded.

The manifest digest is printed on stdout.
"""

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import sys
import tarfile
import tempfile

SKIP_CONTENTS = ("dev", "proc", "sys")
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"


class HashingWriter:
    """A write-only file object that hashes and counts what goes through it."""

    def __init__(self, inner):
        self.inner = inner
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        return self.inner.write(data) if self.inner is not None else len(data)

    def flush(self):
        if self.inner is not None:
            self.inner.flush()

    def digest(self):
        return "sha256:" + self.sha.hexdigest()


def fail(message):
    print(f"oci-image: {message}", file=sys.stderr)
    sys.exit(2)


def source_date_epoch():
    value = os.environ.get("SOURCE_DATE_EPOCH", "0")
    try:
        return int(value)
    except ValueError:
        fail(f"SOURCE_DATE_EPOCH is not an integer: {value!r}")


def is_overlay_whiteout(st):
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path):
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False


def walk_sorted(root, rel=""):
    """Relative paths under root, depth first, each directory before its contents, siblings
    sorted by name (as bytes)."""
    full = os.path.join(root, rel) if rel else root
    if rel.split("/", 1)[0] in SKIP_CONTENTS:
        return
    for name in sorted(os.listdir(full), key=os.fsencode):
        child = f"{rel}/{name}" if rel else name
        yield child
        path = os.path.join(root, child)
        if os.path.isdir(path) and not os.path.islink(path):
            yield from walk_sorted(root, child)


def tarinfo_for(tar, root, rel, mtime):
    full = os.path.join(root, rel)
    st = os.lstat(full)
    if is_overlay_whiteout(st):
        parent, name = os.path.split(rel)
        info = tarfile.TarInfo(os.path.join(parent, ".wh." + name))
        info.type = tarfile.REGTYPE
        info.size = 0
        info.mode = 0o644
        info.mtime = mtime
        return info, None
    info = tar.gettarinfo(full, arcname=rel)
    if info is None:  # sockets and other types tar cannot hold
        return None, None
    info.mtime = mtime
    info.uname = ""
    info.gname = ""
    # A hard link's linkname is the arcname of the first path seen for its inode (sorted order).
    if info.isdir():
        info.name = rel + "/"
    if info.isreg():
        return info, full
    return info, None


def pack_layer(root, out_path, mtime):
    """Pack one directory as a gzip layer at out_path; returns (digest, size, diff_id)."""
    if not os.path.isdir(root):
        fail(f"layer is not a directory: {root}")
    root = os.path.abspath(root)
    tmp_path = out_path + ".tmp"
    with open(tmp_path, "wb") as raw:
        compressed = HashingWriter(raw)
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=6)
        uncompressed = HashingWriter(gz)
        with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for rel in walk_sorted(root):
                info, content = tarinfo_for(tar, root, rel, mtime)
                if info is None:
                    continue
                if content is None:
                    tar.addfile(info)
                else:
                    with open(content, "rb") as handle:
                        tar.addfile(info, handle)
                if info.isdir() and is_opaque(os.path.join(root, rel)):
                    opq = tarfile.TarInfo(rel + "/.wh..wh..opq")
                    opq.mtime = mtime
                    tar.addfile(opq)
        gz.close()
    os.replace(tmp_path, out_path)
    return compressed.digest(), compressed.size, uncompressed.digest()


def layer_digests(blob):
    """(digest, size, diff_id) of a packed layer: from its .json sidecar, else computed."""
    try:
        with open(blob + ".json") as handle:
            meta = json.load(handle)
        return meta["digest"], meta["size"], meta["diff_id"]
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError) as err:
        fail(f"{blob}.json: unreadable: {err}")
    compressed, uncompressed = hashlib.sha256(), hashlib.sha256()
    size = 0
    try:
        with open(blob, "rb") as handle:
            while chunk := handle.read(1 << 20):
                compressed.update(chunk)
                size += len(chunk)
        with gzip.open(blob, "rb") as handle:
            while chunk := handle.read(1 << 20):
                uncompressed.update(chunk)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        fail(f"layer blob {blob}: not a readable gzip file: {err}")
    return "sha256:" + compressed.hexdigest(), size, "sha256:" + uncompressed.hexdigest()


def write_blob(blob_dir, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(os.path.join(blob_dir, digest.split(":", 1)[1]), "wb") as handle:
        handle.write(data)
    return digest, len(data)


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def parse_json_list(flag, value):
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as err:
        fail(f"{flag} must be a JSON list of strings: {err}")
    if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
        fail(f"{flag} must be a JSON list of strings, got {value!r}")
    return parsed


def parse_pairs(flag, values):
    pairs = {}
    for item in values:
        if "=" not in item:
            fail(f"{flag} expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        pairs[key] = value
    return pairs


def image_config(args, diff_ids, created):
    config = {}
    entrypoint = parse_json_list("--entrypoint", args.entrypoint)
    cmd = parse_json_list("--cmd", args.cmd)
    if entrypoint is not None:
        config["Entrypoint"] = entrypoint
    if cmd is not None:
        config["Cmd"] = cmd
    if args.user:
        config["User"] = args.user
    env = parse_pairs("--env", args.env)
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    config["Env"] = [f"{k}={v}" for k, v in env.items()]
    if args.workdir:
        config["WorkingDir"] = args.workdir
    if args.volume:
        config["Volumes"] = {v: {} for v in args.volume}
    if args.expose:
        config["ExposedPorts"] = {(p if "/" in p else p + "/tcp"): {} for p in args.expose}
    labels = parse_pairs("--label", args.label)
    if labels:
        config["Labels"] = labels
    return {
        "created": created,
        "architecture": args.arch,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created, "created_by": "scripts/oci-image.py"} for _ in diff_ids],
    }


def add_tree_to_tar(out_path, layout_dir, mtime):
    entries = []
    for dirpath, dirnames, filenames in os.walk(layout_dir):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            if name.startswith(".layer"):
                continue
            entries.append(os.path.relpath(full, layout_dir))
    entries.sort()
    tmp = out_path + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for rel in entries:
            info = tar.gettarinfo(os.path.join(layout_dir, rel), arcname=rel)
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o755 if info.isdir() else 0o644
            if info.isreg():
                with open(os.path.join(layout_dir, rel), "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    os.replace(tmp, out_path)


def build(args):
    mtime = source_date_epoch()
    created = datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    if not args.layers:
        fail("at least one --layer DIR or --layer-blob FILE is needed")
    out_dir = os.path.dirname(os.path.abspath(args.output))
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".oci-image-") as layout:
        blob_dir = os.path.join(layout, "blobs", "sha256")
        os.makedirs(blob_dir)
        layers, diff_ids = [], []
        for kind, source in args.layers:
            if kind == "dir":
                tmp = os.path.join(blob_dir, ".layer")
                digest, size, diff_id = pack_layer(source, tmp, mtime)
                os.replace(tmp, os.path.join(blob_dir, digest.split(":", 1)[1]))
            else:
                digest, size, diff_id = layer_digests(source)
                target = os.path.join(blob_dir, digest.split(":", 1)[1])
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copyfile(source, target)
            layers.append({"mediaType": MEDIA_LAYER, "digest": digest, "size": size})
            diff_ids.append(diff_id)
        config_digest, config_size = write_blob(
            blob_dir, canonical(image_config(args, diff_ids, created))
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config_size},
            "layers": layers,
        }
        manifest_digest, manifest_size = write_blob(blob_dir, canonical(manifest))
        index = {
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": [
                {
                    "mediaType": MEDIA_MANIFEST,
                    "digest": manifest_digest,
                    "size": manifest_size,
                    "platform": {"architecture": args.arch, "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": args.name,
                        "org.opencontainers.image.ref.name": args.name,
                    },
                }
            ],
        }
        with open(os.path.join(layout, "index.json"), "wb") as handle:
            handle.write(canonical(index))
        with open(os.path.join(layout, "oci-layout"), "wb") as handle:
            handle.write(canonical({"imageLayoutVersion": "1.0.0"}))
        add_tree_to_tar(args.output, layout, mtime)
    print(manifest_digest)


def layer(args):
    out = os.path.abspath(args.output)
    digest_, size, diff_id = pack_layer(args.dir, out, source_date_epoch())
    with open(out + ".json", "w") as handle:
        json.dump({"digest": digest_, "size": size, "diff_id": diff_id}, handle)
    print(digest_)


def digest(args):
    try:
        with tarfile.open(args.archive) as tar:
            member = tar.extractfile("index.json")
            index = json.load(member)
    except (OSError, tarfile.TarError, KeyError, json.JSONDecodeError) as err:
        fail(f"{args.archive}: not an OCI archive with an index.json: {err}")
    print(index["manifests"][0]["digest"])


class AppendKind(argparse.Action):
    """Appends (kind, value) so --layer and --layer-blob keep their relative order."""

    def __init__(self, option_strings, dest, const=None, **kwargs):
        super().__init__(option_strings, dest, nargs=None, const=const, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest) or [])
        items.append((self.const, values))
        setattr(namespace, self.dest, items)


def main():
    parser = argparse.ArgumentParser(
        description="Assemble a reproducible OCI image archive from rootfs directories.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("The same inputs", 1)[1] if __doc__ else None,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="assemble an archive")
    b.add_argument("-o", "--output", required=True, help="the OCI archive (tar) to write")
    b.add_argument("--name", required=True, help="image reference, e.g. example.local/app:1")
    b.add_argument("--layer", dest="layers", action=AppendKind, const="dir", default=[],
                   help="a directory: one layer each")
    b.add_argument("--layer-blob", dest="layers", action=AppendKind, const="blob", default=[],
                   help="a layer packed by the `layer` command")
    b.add_argument("--entrypoint", help='JSON list, e.g. \'["/entrypoint.sh"]\'')
    b.add_argument("--cmd", help="JSON list")
    b.add_argument("--user", help="USER: name, UID, or UID:GID")
    b.add_argument("--env", action="append", default=[], help="KEY=VALUE (repeatable)")
    b.add_argument("--workdir", help="WorkingDir")
    b.add_argument("--volume", action="append", default=[], help="a VOLUME path (repeatable)")
    b.add_argument("--expose", action="append", default=[], help="PORT[/PROTO] (repeatable)")
    b.add_argument("--label", action="append", default=[], help="KEY=VALUE (repeatable)")
    b.add_argument("--arch", default="amd64", help="architecture (default amd64)")
    lay = sub.add_parser("layer", help="pack one directory as a reusable layer blob")
    lay.add_argument("-o", "--output", required=True, help="the .tar.gz to write")
    lay.add_argument("dir")
    d = sub.add_parser("digest", help="print an archive's manifest digest")
    d.add_argument("archive")
    args = parser.parse_args()
    if args.command == "build":
        build(args)
    elif args.command == "layer":
        layer(args)
    else:
        digest(args)


if __name__ == "__main__":
    main()
