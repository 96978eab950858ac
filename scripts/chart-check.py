#!/usr/bin/env python3
"""`make chart-check`, after scripts/chart-check.sh has linted the chart: charts/kube-harden
rendered by `helm template` against what kustomize renders from manifests/, object by object,
and the values doing what they say.

1. Default values (plus the one required value, the API server's CIDR) against
   `kubectl kustomize manifests/overlays/default` with the same CIDR in place of its
   SET-THE-API-SERVER-CIDR parameter; certificates.mode=cert-manager against
   manifests/overlays/cert-manager; the monitoring switches against manifests/monitoring.
   Objects are keyed by kind, namespace and name and must be equal in full. The only thing
   normalised is the chart's checksum/policy pod annotation (kustomize has no equivalent; it
   is checked to be the policy's sha256, then removed).
2. Non-default values: replicas, policy, image, namespace, webhook selector, certificates,
   monitoring, admission policies, extra env; typos, wrong types and a missing CIDR refused
   with a message naming them.

Usage: chart-check.py <helm> <kubectl>   (run from the repository root)
"""

import difflib
import hashlib
import json
import re
import subprocess
import sys
import tempfile

import yaml

HELM, KUBECTL = sys.argv[1], sys.argv[2]
CHART = "charts/kube-harden"
CIDR = "10.96.0.1/32"
failures = []


def log(msg):
    print(f"chart-check: {msg}", file=sys.stderr)


def check(cond, msg):
    if not cond:
        failures.append(msg)
    return cond


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def objects(text):
    """The documents of a rendering, by (kind, namespace, name)."""
    out = {}
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        meta = doc["metadata"]
        key = (doc["kind"], meta.get("namespace", ""), meta["name"])
        if key in out:
            raise SystemExit(f"chart-check: FAIL: {key} rendered twice")
        out[key] = doc
    return out


def helm(*args, release_ns="default"):
    """`helm template` with the given --set/--set-json/-f arguments: (objects, None) or (None, stderr)."""
    r = run([HELM, "template", "kube-harden", CHART, "--namespace", release_ns, *args])
    if r.returncode != 0:
        return None, r.stderr
    return objects(r.stdout), None


def must_render(*args, **kw):
    objs, err = helm(*args, **kw)
    if objs is None:
        raise SystemExit(f"chart-check: FAIL: helm template {' '.join(args)} failed:\n{err}")
    return objs


def kustomize(path, cidr=None):
    r = run([KUBECTL, "kustomize", path])
    if r.returncode != 0:
        raise SystemExit(f"chart-check: FAIL: kubectl kustomize {path}:\n{r.stderr}")
    text = r.stdout
    if cidr:
        n = text.count("SET-THE-API-SERVER-CIDR")
        if n != 1:
            raise SystemExit(f"chart-check: FAIL: {path} holds the CIDR parameter {n} times, want 1")
        text = text.replace("SET-THE-API-SERVER-CIDR", cidr)
    return objects(text)


def normalise(objs):
    """Drops the chart's checksum/policy annotation after checking it is the policy's hash."""
    for (kind, ns, name), doc in objs.items():
        if kind != "Deployment":
            continue
        meta = doc["spec"]["template"]["metadata"]
        annotations = meta.get("annotations", {})
        checksum = annotations.pop("checksum/policy", None)
        policy = objs.get(("ConfigMap", ns, "kube-harden-policy"), {}).get("data", {}).get("policy.yaml", "")
        check(checksum == hashlib.sha256(policy.encode()).hexdigest(),
              f"{name}: checksum/policy {checksum} is not the sha256 of the policy")
        if not annotations:
            meta.pop("annotations", None)
    return objs


def compare(label, chart, kust):
    """Object by object: the same keys, and each object equal in full."""
    missing, extra = sorted(set(kust) - set(chart)), sorted(set(chart) - set(kust))
    check(not missing, f"{label}: the chart does not render {missing}")
    check(not extra, f"{label}: the chart renders objects kustomize does not: {extra}")
    differ = 0
    for key in sorted(set(chart) & set(kust)):
        if chart[key] != kust[key]:
            differ += 1
            a = yaml.safe_dump(kust[key], sort_keys=True).splitlines()
            b = yaml.safe_dump(chart[key], sort_keys=True).splitlines()
            diff = "\n".join(difflib.unified_diff(a, b, "kustomize", "helm", lineterm=""))
            failures.append(f"{label}: {key} differs:\n{diff}")
    same = len(set(chart) & set(kust)) - differ
    log(f"{label}: {same} of {len(kust)} objects identical (kustomize {len(kust)}, helm {len(chart)})")
    return same


def one(objs, kind, name):
    m = [d for (k, _, n), d in objs.items() if k == kind and n == name]
    return m[0] if len(m) == 1 else None


def kinds(objs):
    return {k for (k, _, _) in objs}


def container(objs):
    return one(objs, "Deployment", "kube-harden")["spec"]["template"]["spec"]["containers"][0]


def refused(label, args, pattern, **kw):
    """helm template with `args` fails, and its message matches `pattern`."""
    objs, err = helm(*args, **kw)
    if check(objs is None, f"{label}: accepted ({' '.join(args)})"):
        # The schema's findings ("- at '/image': ..."), else the error line (helm also notes, at
        # level INFO, that files/ links to manifests/monitoring: not part of the refusal).
        lines = [l for l in err.splitlines() if l.strip() and not l.startswith("level=INFO")]
        said = "; ".join(l.strip() for l in lines if l.startswith("- at ")) or lines[0]
        if check(re.search(pattern, err), f"{label}: refused, but the message does not say why:\n{err}"):
            log(f"refused, {label}: {said[:240]}")


CIDR_SET = ["--set-json", f'networkPolicy.apiServerCIDRs=["{CIDR}"]']

# 1. renderings against kustomize -------------------------------------------------------------
total = 0
total += compare("default", normalise(must_render(*CIDR_SET)), kustomize("manifests/overlays/default", CIDR))
total += compare("cert-manager", normalise(must_render("--set", "certificates.mode=cert-manager")),
                 kustomize("manifests/overlays/cert-manager"))
all_monitoring = ["--set", "monitoring.serviceMonitor.enabled=true", "--set", "monitoring.prometheusRule.enabled=true",
                  "--set", "monitoring.dashboard.enabled=true"]
base = must_render(*CIDR_SET)
with_monitoring = must_render(*CIDR_SET, *all_monitoring)
check(all(with_monitoring[k] == v for k, v in base.items()), "monitoring on changed the other objects")
total += compare("monitoring", {k: v for k, v in with_monitoring.items() if k not in base},
                 kustomize("manifests/monitoring"))
log(f"{total} objects identical to kustomize's in all")

# 2. values ------------------------------------------------------------------------------------
cargo = re.search(r'^version = "(.*)"', open("Cargo.toml").read(), re.M).group(1)
chart_meta = yaml.safe_load(open(f"{CHART}/Chart.yaml"))
check(chart_meta["appVersion"] == cargo and chart_meta["version"] == cargo,
      f"Chart.yaml version {chart_meta['version']} / appVersion {chart_meta['appVersion']}, Cargo.toml {cargo}")

# Defaults: no monitoring objects, self-managed certificates.
check(not kinds(base) & {"ServiceMonitor", "PrometheusRule"} and one(base, "ConfigMap", "kube-harden-dashboard") is None,
      "monitoring objects rendered by default")

# replicas: the Deployment, and the quota of critical pods follows (replicas + surge + spare).
objs = must_render(*CIDR_SET, "--set", "replicas=3")
check(one(objs, "Deployment", "kube-harden")["spec"]["replicas"] == 3, "replicas=3: Deployment")
check(one(objs, "ResourceQuota", "kube-harden-critical-pods")["spec"]["hard"]["pods"] == "5", "replicas=3: quota")

# cert-manager: Certificates and Issuers, none of the self-managed pieces.
objs = must_render("--set", "certificates.mode=cert-manager")
check({"Certificate", "Issuer"} <= kinds(objs), "cert-manager: no Certificate/Issuer")
check(not kinds(objs) & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy",
                         "ValidatingAdmissionPolicyBinding"}, f"cert-manager: self-managed objects {kinds(objs)}")
check(one(objs, "NetworkPolicy", "kube-harden-apiserver") is None, "cert-manager: egress to the API server")
c = container(objs)
check(not any(a.startswith(("--manage-certs", "--cert-")) for a in c["args"]), f"cert-manager: flags {c['args']}")
check(one(objs, "Deployment", "kube-harden")["spec"]["template"]["spec"]["automountServiceAccountToken"] is False,
      "cert-manager: token mounted")
# ... and self-managed: none of cert-manager's.
check(not kinds(base) & {"Certificate", "Issuer"}, "self-managed: Certificate/Issuer rendered")
check("annotations" not in one(base, "MutatingWebhookConfiguration", "kube-harden")["metadata"],
      "self-managed: cainjector annotation")

# monitoring, one switch at a time, with the extra labels a Prometheus selects on.
objs = must_render(*CIDR_SET, "--set", "monitoring.serviceMonitor.enabled=true",
                   "--set", "monitoring.serviceMonitor.labels.release=prom")
sm = one(objs, "ServiceMonitor", "kube-harden")
check(sm is not None and sm["metadata"]["labels"].get("release") == "prom", "serviceMonitor: label")
check("PrometheusRule" not in kinds(objs) and one(objs, "ConfigMap", "kube-harden-dashboard") is None,
      "serviceMonitor alone rendered more")
objs = must_render(*CIDR_SET, "--set", "monitoring.prometheusRule.enabled=true")
rule = one(objs, "PrometheusRule", "kube-harden")
check(rule is not None and len(rule["spec"]["groups"][0]["rules"]) >= 8 and "ServiceMonitor" not in kinds(objs),
      "prometheusRule alone")

# policy: the ConfigMap holds it as given, and the pods roll (new checksum).
policy = "runAsUser: 3000\nrunAsGroup: 3000\nfsGroup: 3000\n"
with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
    yaml.safe_dump({"policy": policy}, f)
    f.flush()
    objs = must_render(*CIDR_SET, "-f", f.name)
check(one(objs, "ConfigMap", "kube-harden-policy")["data"]["policy.yaml"] == policy, "policy: ConfigMap")
check(one(objs, "Deployment", "kube-harden")["spec"]["template"]["metadata"]["annotations"]["checksum/policy"]
      == hashlib.sha256(policy.encode()).hexdigest(), "policy: checksum")

# image: repository, tag, digest, pull policy; resources.
digest = "sha256:" + "ab" * 32
objs = must_render(*CIDR_SET, "--set", "image.repository=registry.example.com/kh", "--set", "image.tag=9.9.9",
                   "--set", "image.pullPolicy=Always", "--set", "resources.limits.memory=300Mi")
c = container(objs)
check(c["image"] == "registry.example.com/kh:9.9.9" and c["imagePullPolicy"] == "Always", f"image: {c['image']}")
check(c["resources"]["limits"] == {"cpu": "1", "memory": "300Mi"}, f"resources: {c['resources']}")
c = container(must_render(*CIDR_SET, "--set", f"image.digest={digest}"))
check(c["image"] == f"ghcr.io/kube-harden/kube-harden@{digest}", f"image digest: {c['image']}")

# namespace: every namespaced object, the Service reference, the exclusion, the policies'
# username, the Secret's namespace for cert-manager names.
objs = must_render(*CIDR_SET, "--set", "namespace.name=hardening")
check({ns for (_, ns, _) in objs} == {"", "hardening"}, f"namespace: objects in {sorted({ns for (_, ns, _) in objs})}")
mwc = one(objs, "MutatingWebhookConfiguration", "kube-harden")
for w in mwc["webhooks"]:
    check(w["clientConfig"]["service"]["namespace"] == "hardening", "namespace: webhook service")
    check(w["namespaceSelector"]["matchExpressions"][1]["values"] == ["kube-system", "hardening"], "namespace: exclusion")
vap = one(objs, "ValidatingAdmissionPolicy", "kube-harden-secret-create")
check("system:serviceaccount:hardening:kube-harden" in vap["spec"]["matchConditions"][0]["expression"], "namespace: VAP user")
objs = must_render("--set", "namespace.name=hardening", "--set", "certificates.mode=cert-manager")
check(one(objs, "Certificate", "kube-harden")["spec"]["dnsNames"][0] == "kube-harden.hardening.svc"
      and one(objs, "MutatingWebhookConfiguration", "kube-harden")["metadata"]["annotations"]
      == {"cert-manager.io/inject-ca-from": "hardening/kube-harden"}, "namespace: cert-manager names")
objs = must_render(*CIDR_SET, "--set", "namespace.create=false", release_ns="kube-harden")
check(one(objs, "Namespace", "kube-harden") is None, "namespace.create=false: Namespace rendered")

# webhook selector: the label key and the excluded namespaces.
objs = must_render(*CIDR_SET, "--set", "webhook.modeLabel=example.com/harden",
                   "--set-json", 'webhook.excludeNamespaces=["kube-system","monitoring"]')
for w in one(objs, "MutatingWebhookConfiguration", "kube-harden")["webhooks"]:
    mode = w["name"].split(".")[0]
    check(w["namespaceSelector"]["matchExpressions"] == [
        {"key": "example.com/harden", "operator": "In", "values": [mode]},
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "monitoring", "kube-harden"]},
    ], f"webhook selector: {w['namespaceSelector']}")

# several API server addresses; admission policies off; extra env after the chart's own.
objs = must_render("--set-json", 'networkPolicy.apiServerCIDRs=["10.0.0.1/32","10.0.0.2/32"]',
                   "--set", "admissionPolicies.enabled=false",
                   "--set-json", 'extraEnv=[{"name":"KUBERNETES_SERVICE_HOST","value":"10.0.0.1"}]')
to = one(objs, "NetworkPolicy", "kube-harden-apiserver")["spec"]["egress"][0]["to"]
check(to == [{"ipBlock": {"cidr": "10.0.0.1/32"}}, {"ipBlock": {"cidr": "10.0.0.2/32"}}], f"CIDRs: {to}")
check(not kinds(objs) & {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}, "admissionPolicies off")
check(container(objs)["env"][-1] == {"name": "KUBERNETES_SERVICE_HOST", "value": "10.0.0.1"}
      and [e["name"] for e in container(objs)["env"]][:2] == ["POD_NAMESPACE", "TMPDIR"], "extraEnv")

# refused, each with a message that names the problem.
refused("no API server CIDR with self-managed certificates", [], r"networkPolicy\.apiServerCIDRs is required")
refused("a typo at the top level", [*CIDR_SET, "--set", "replica=3"], r"additional propert.*replica")
refused("a typo in a nested value", [*CIDR_SET, "--set", "image.pullPolcy=Always"], r"additional propert.*pullPolcy")
refused("a typo under monitoring", [*CIDR_SET, "--set", "monitoring.serviceMonitor.enable=true"],
        r"additional propert.*enable")
refused("replicas as a string", [*CIDR_SET, "--set-string", "replicas=two"], r"replicas.*(integer|type)")
refused("an unknown certificates.mode", [*CIDR_SET, "--set", "certificates.mode=vault"], r"certificates.*mode")
refused("a CIDR that is not one", ["--set-json", 'networkPolicy.apiServerCIDRs=["kubernetes.default"]'],
        r"apiServerCIDRs")
refused("a digest that is not one", [*CIDR_SET, "--set", "image.digest=latest"], r"digest")
refused("the release stored in the namespace the chart creates", [*CIDR_SET], r"cannot be stored in it",
        release_ns="kube-harden")

if failures:
    for f in failures:
        print(f"chart-check: FAIL: {f}", file=sys.stderr)
    sys.exit(1)
log("renderings and values: ok")
