#!/usr/bin/env python3
"""A bounded burst of real AdmissionReviews at a running `kube-harden serve`, over HTTPS.

Built from tests/fixtures/pod-create.json, varied so that every dashboard panel has data:
enforce and audit, Pods and Deployments in several namespaces, opted-out, explicit insecure
values, privileged, root, Windows, host namespaces (restricted failures; no probes: findings), an
already-hardened pod, a dry run, an object the rules cannot read (fail-open error), and invalid
bodies (malformed JSON, wrong apiVersion, no request).

Usage: loadgen.py --url https://127.0.0.1:PORT --ca ca.crt --fixture pod-create.json
                  [--rounds N] [--deadline SECONDS] [--pause SECONDS]
Prints a one-line summary; exits non-zero if a valid review was not answered with
`allowed: true`, or an invalid one was not refused.
"""

import argparse
import copy
import http.client
import json
import ssl
import sys
import time
import urllib.parse
import uuid


def review(base, namespace, mutate=None, kind="Pod", dry_run=False, operation="CREATE"):
    r = copy.deepcopy(base)
    req = r["request"]
    req["uid"] = str(uuid.uuid4())
    req["namespace"] = namespace
    req["dryRun"] = dry_run
    req["operation"] = operation
    pod = req["object"]
    pod["metadata"]["namespace"] = namespace
    if mutate:
        mutate(pod)
    if kind == "Deployment":
        meta = {"name": pod["metadata"]["name"], "namespace": namespace,
                "annotations": pod["metadata"].pop("annotations", {})}
        template = {"metadata": {"labels": pod["metadata"].get("labels", {})}, "spec": pod["spec"]}
        req["object"] = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                         "spec": {"replicas": 1,
                                  "selector": {"matchLabels": pod["metadata"].get("labels", {})},
                                  "template": template}}
        for key in ("kind", "requestKind"):
            req[key] = {"group": "apps", "version": "v1", "kind": "Deployment"}
        for key in ("resource", "requestResource"):
            req[key] = {"group": "apps", "version": "v1", "resource": "deployments"}
    return r


def annotate(**annotations):
    def f(pod):
        pod["metadata"].setdefault("annotations", {}).update(annotations)
    return f


def container_sc(**sc):
    def f(pod):
        pod["spec"]["containers"][0].setdefault("securityContext", {}).update(sc)
    return f


def pod_spec(**fields):
    def f(pod):
        pod["spec"].update(fields)
    return f


def hardened(pod):
    pod["spec"]["securityContext"] = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                                      "fsGroup": 1000, "fsGroupChangePolicy": "OnRootMismatch",
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    c = pod["spec"]["containers"][0]
    c["image"] = "nginx:1.27"
    c["securityContext"] = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}}
    c["resources"] = {"requests": {"cpu": "10m", "memory": "16Mi"},
                      "limits": {"cpu": "100m", "memory": "64Mi"}}
    c["env"] = [{"name": "TMPDIR", "value": "/tmp"}]
    c["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    c["livenessProbe"] = {"httpGet": {"path": "/", "port": 80}}
    c["readinessProbe"] = {"httpGet": {"path": "/", "port": 80}}
    pod["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]


def broken(pod):
    pod["spec"]["containers"] = "not a list"


def cases(base):
    """(path, body bytes, expect) for one round; expect: allowed | refused | http400."""
    out = []
    for ns in ("team-a", "team-b", "shop"):
        out.append(("/mutate", review(base, ns), "allowed"))
        out.append(("/mutate", review(base, ns, kind="Deployment"), "allowed"))
    out += [
        ("/audit", review(base, "audit-blog"), "allowed"),
        ("/audit", review(base, "audit-blog", kind="Deployment"), "allowed"),
        ("/audit", review(base, "audit-legacy", container_sc(privileged=True)), "allowed"),
        ("/mutate", review(base, "team-a", annotate(**{"kube-harden.io/skip": "true"})), "allowed"),
        ("/mutate", review(base, "team-b", annotate(**{"kube-harden.io/skip": "readOnlyRootFilesystem,resources"}),
                           kind="Deployment"), "allowed"),
        ("/mutate", review(base, "team-b", annotate(**{"kube-harden.io/writable-paths": "/var/cache/nginx,/var/run"})), "allowed"),
        ("/mutate", review(base, "shop", container_sc(readOnlyRootFilesystem=False, runAsNonRoot=False)), "allowed"),
        ("/mutate", review(base, "infra", container_sc(privileged=True)), "allowed"),
        ("/mutate", review(base, "infra", container_sc(runAsUser=0)), "allowed"),
        ("/mutate", review(base, "infra", pod_spec(hostNetwork=True, hostPID=True)), "allowed"),
        ("/mutate", review(base, "windows", pod_spec(os={"name": "windows"})), "allowed"),
        ("/mutate", review(base, "team-a", hardened), "allowed"),
        ("/mutate", review(base, "team-a", dry_run=True), "allowed"),
        ("/mutate", review(base, "team-a", broken), "allowed"),  # fail-open: admitted unchanged
        ("/mutate", review(base, "team-a", operation="DELETE"), "allowed"),  # ignored
    ]
    out = [(p, json.dumps(b).encode(), e) for p, b, e in out]
    out += [
        ("/mutate", b"{not json", "http400"),
        ("/mutate", json.dumps({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1beta1",
                                "request": base["request"]}).encode(), "refused"),
        ("/audit", json.dumps({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}).encode(), "refused"),
    ]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--deadline", type=float, default=60.0)
    ap.add_argument("--pause", type=float, default=0.0, help="seconds between rounds (at most 10)")
    args = ap.parse_args()
    base = json.load(open(args.fixture))
    u = urllib.parse.urlparse(args.url)
    ctx = ssl.create_default_context(cafile=args.ca)
    start = time.monotonic()
    sent = wrong = 0
    conn = None
    problems = []
    for i in range(max(1, min(args.rounds, 1000))):
        if i and args.pause:
            time.sleep(min(args.pause, 10.0))
        if time.monotonic() - start > args.deadline:
            problems.append("deadline reached")
            break
        for path, body, expect in cases(base):
            if conn is None:
                conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=5)
            try:
                conn.request("POST", path, body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as e:
                problems.append(f"{path}: {e}")
                conn.close()
                conn = None
                wrong += 1
                continue
            sent += 1
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
            ok = False
            if expect == "http400":
                ok = resp.status == 400
            elif resp.status == 200:
                allowed = json.loads(data).get("response", {}).get("allowed")
                ok = allowed is (expect == "allowed")
            if not ok:
                wrong += 1
                if len(problems) < 5:
                    problems.append(f"{path} expected {expect}, got HTTP {resp.status}: {data[:200]!r}")
    if conn is not None:
        conn.close()
    elapsed = time.monotonic() - start
    print(f"loadgen: {sent} reviews answered in {elapsed:.1f}s, {wrong} unexpected")
    for p in problems:
        print(f"loadgen: {p}", file=sys.stderr)
    return 1 if wrong or not sent else 0


if __name__ == "__main__":
    sys.exit(main())
