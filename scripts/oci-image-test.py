#!/usr/bin/env python3
"""Tests of scripts/oci-image.py: reproducible digests, ownership and modes kept, whiteouts,
the OCI layout, and clear errors on bad input. Run: python3 scripts/oci-image-test.py"""

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "oci-image.py")


def run(*args, env=None, check=True):
    return subprocess.run(
        [sys.executable, TOOL, *args], capture_output=True, text=True, env=env, check=check
    )


def make_tree(root):
    os.makedirs(os.path.join(root, "app"))
    os.makedirs(os.path.join(root, "etc"))
    os.makedirs(os.path.join(root, "dev", "pts"))
    with open(os.path.join(root, "app", "server"), "w") as handle:
        handle.write("#!/bin/sh\necho hi\n")
    os.chmod(os.path.join(root, "app", "server"), 0o700)
    os.link(os.path.join(root, "app", "server"), os.path.join(root, "app", "server-link"))
    os.symlink("server", os.path.join(root, "app", "alias"))
    with open(os.path.join(root, "dev", "pts", "junk"), "w") as handle:
        handle.write("left out")
    with open(os.path.join(root, "etc", "hostname"), "w") as handle:
        handle.write("x\n")
    if os.geteuid() == 0:
        os.chown(os.path.join(root, "app"), 10001, 10001)
        os.chown(os.path.join(root, "app", "server"), 10001, 10001)
    os.chmod(os.path.join(root, "app"), 0o700)


BUILD = ["--name", "test.local/app:1", "--user", "10001", "--entrypoint", '["/app/server"]',
         "--env", "A=1", "--expose", "8080", "--label", "k=v", "--volume", "/data",
         "--workdir", "/app"]


def read_layout(archive):
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        index = json.load(tar.extractfile("index.json"))
        blobs = {n.split("/")[-1]: tar.extractfile(n).read() for n in names
                 if n.startswith("blobs/sha256/") and tar.getmember(n).isreg()}
    return names, index, blobs


class Reproducible(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = os.path.join(self.tmp.name, "root")
        make_tree(self.root)

    def tearDown(self):
        self.tmp.cleanup()

    def build(self, name, *extra, env=None):
        out = os.path.join(self.tmp.name, name)
        result = run("build", "-o", out, "--layer", self.root, *BUILD, *extra, env=env)
        return out, result.stdout.strip()

    def test_same_inputs_same_bytes_even_after_mtimes_change(self):
        first, digest1 = self.build("a.tar")
        later = time.time() + 1000
        for dirpath, _, files in os.walk(self.root):
            for name in files:
                os.utime(os.path.join(dirpath, name), (later, later))
        second, digest2 = self.build("b.tar")
        self.assertRegex(digest1, r"^sha256:[0-9a-f]{64}$")
        self.assertEqual(digest1, digest2)
        with open(first, "rb") as a, open(second, "rb") as b:
            self.assertEqual(a.read(), b.read())
        self.assertEqual(run("digest", first).stdout.strip(), digest1)

    def test_content_and_epoch_change_the_digest(self):
        _, before = self.build("a.tar")
        with open(os.path.join(self.root, "etc", "hostname"), "w") as handle:
            handle.write("y\n")
        _, after = self.build("b.tar")
        self.assertNotEqual(before, after)
        _, epoch = self.build("c.tar", env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"})
        self.assertNotEqual(after, epoch)

    def test_layout_config_and_layer_contents(self):
        archive, digest = self.build("a.tar")
        names, index, blobs = read_layout(archive)
        self.assertIn("oci-layout", names)
        entry = index["manifests"][0]
        self.assertEqual(entry["digest"], digest)
        self.assertEqual(entry["annotations"]["io.containerd.image.name"], "test.local/app:1")
        manifest = json.loads(blobs[digest.split(":")[1]])
        config = json.loads(blobs[manifest["config"]["digest"].split(":")[1]])
        self.assertEqual(config["config"]["User"], "10001")
        self.assertEqual(config["config"]["Entrypoint"], ["/app/server"])
        self.assertEqual(config["config"]["ExposedPorts"], {"8080/tcp": {}})
        self.assertEqual(config["config"]["Volumes"], {"/data": {}})
        self.assertEqual(config["config"]["Labels"], {"k": "v"})
        self.assertIn("A=1", config["config"]["Env"])
        self.assertEqual(config["created"], "1970-01-01T00:00:00Z")
        layer = blobs[manifest["layers"][0]["digest"].split(":")[1]]
        self.assertEqual(layer[4:8], b"\0\0\0\0", "gzip header carries no timestamp")
        raw = gzip.decompress(layer)
        self.assertEqual("sha256:" + hashlib.sha256(raw).hexdigest(),
                         config["rootfs"]["diff_ids"][0])
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            members = {m.name.rstrip("/"): m for m in tar.getmembers()}
        self.assertEqual(list(members), sorted(members, key=lambda n: n.split("/")))
        self.assertEqual(members["app"].mode & 0o777, 0o700)
        self.assertEqual(members["app/server"].mode & 0o777, 0o700)
        if os.geteuid() == 0:
            self.assertEqual((members["app"].uid, members["app"].gid), (10001, 10001))
        self.assertTrue(members["app/server-link"].islnk())
        self.assertEqual(members["app/server-link"].linkname, "app/server")
        self.assertEqual(members["app/alias"].linkname, "server")
        self.assertIn("dev", members)
        self.assertNotIn("dev/pts", members, "contents of dev/ are left out")
        self.assertTrue(all(m.mtime == 0 and m.uname == "" for m in members.values()))

    def test_packed_layer_blob_gives_the_same_image(self):
        _, from_dir = self.build("a.tar")
        blob = os.path.join(self.tmp.name, "layer.tar.gz")
        packed = run("layer", "-o", blob, self.root).stdout.strip()
        out = os.path.join(self.tmp.name, "b.tar")
        from_blob = run("build", "-o", out, "--layer-blob", blob, *BUILD).stdout.strip()
        self.assertEqual(from_dir, from_blob)
        os.remove(blob + ".json")  # without the sidecar the digests are computed
        out = os.path.join(self.tmp.name, "c.tar")
        self.assertEqual(run("build", "-o", out, "--layer-blob", blob, *BUILD).stdout.strip(),
                         from_dir)
        _, _, blobs = read_layout(out)
        self.assertIn(packed.split(":")[1], blobs)

    def test_layers_stack_in_the_order_given(self):
        top = os.path.join(self.tmp.name, "top")
        os.makedirs(os.path.join(top, "etc"))
        with open(os.path.join(top, "etc", "hostname"), "w") as handle:
            handle.write("top\n")
        blob = os.path.join(self.tmp.name, "top.tar.gz")
        run("layer", "-o", blob, top)
        out = os.path.join(self.tmp.name, "a.tar")
        digest = run("build", "-o", out, "--layer", self.root, "--layer-blob", blob,
                     *BUILD).stdout.strip()
        _, _, blobs = read_layout(out)
        manifest = json.loads(blobs[digest.split(":")[1]])
        self.assertEqual(len(manifest["layers"]), 2)
        top_digest = json.load(open(blob + ".json"))["digest"]
        self.assertEqual(manifest["layers"][1]["digest"], top_digest)

    @unittest.skipUnless(os.geteuid() == 0, "mknod needs root")
    def test_overlay_whiteout_becomes_wh_file(self):
        os.mknod(os.path.join(self.root, "etc", "gone"), 0o600 | 0o020000, os.makedev(0, 0))
        archive, digest = self.build("a.tar")
        _, _, blobs = read_layout(archive)
        manifest = json.loads(blobs[digest.split(":")[1]])
        raw = gzip.decompress(blobs[manifest["layers"][0]["digest"].split(":")[1]])
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            names = tar.getnames()
        self.assertIn("etc/.wh.gone", names)
        self.assertNotIn("etc/gone", names)


class BadInput(unittest.TestCase):
    def test_clear_errors(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "x.tar")
            cases = [
                (["--layer", os.path.join(tmp, "missing")], "not a directory"),
                (["--layer", tmp, "--entrypoint", "/bin/sh"], "JSON list"),
                (["--layer", tmp, "--env", "NOEQUALS"], "KEY=VALUE"),
                ([], "at least one --layer"),
                (["--layer-blob", os.path.join(tmp, "missing.tar.gz")], "not a readable gzip"),
            ]
            for extra, message in cases:
                result = run("build", "-o", out, "--name", "x:1", *extra, check=False)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(message, result.stderr)
                self.assertNotIn("Traceback", result.stderr)
            result = run("digest", os.path.join(tmp, "none.tar"), check=False)
            self.assertEqual(result.returncode, 2)
            self.assertNotIn("Traceback", result.stderr)


if __name__ == "__main__":
    unittest.main()
