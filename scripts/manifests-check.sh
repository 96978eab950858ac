#!/usr/bin/env bash
# `make manifests-check`: the manifests, checked against a real kube-apiserver (v1.36, from
# e2e/controlplane.sh; its own state dir, so it never collides with the e2e suite).
#
#  1. Render: kubectl kustomize of manifests/ (= overlays/default), manifests/base,
#     overlays/cert-manager and manifests/monitoring; and "default-set": the default overlay
#     with its one parameter (the API server's CIDR, for the egress NetworkPolicy) set in an
#     overlay of our own, as docs/install.md tells users to.
#  2. Static checks of the rendered MutatingWebhookConfiguration (two webhooks, the settings the
#     issue asks for) and of the default overlay's RBAC (scoped by resourceNames).
#  3. kubectl apply --dry-run=server --validate=strict of every rendering. cert-manager and
#     Prometheus Operator objects are validated against the structural CRDs in
#     e2e/testdata/crds (see its README). The Namespace is created first, for real, since a
#     dry-run namespace cannot hold dry-run objects.
#  4. Pod Security restricted: no PodSecurity warning for anything, and a Pod with the
#     Deployment's template is admitted by the restricted namespace (dry run); a pod without a
#     securityContext is refused there (PSA really enforces).
#  5. The default overlay applied for real; the ServiceAccount's permissions checked with
#     `kubectl auth can-i --as`: exactly the certificate-management ones. The parameter left
#     unset is refused by the API server, naming the field.
#  6. The webhook registered and unreachable (no pods run here): a Pod created in an
#     enforce-mode namespace is admitted (failurePolicy: Ignore), and the API server counts it in
#     apiserver_admission_webhook_fail_open_count{name="enforce.kube-harden.io"}, the series the
#     KubeHardenWebhookFailingOpen alert watches.
#     The ValidatingAdmissionPolicies, enforced: impersonating the ServiceAccount, a caBundle
#     update (the strategic merge patch kube-harden sends) passes; a change to rules, selectors,
#     failurePolicy, timeoutSeconds, the service, the webhook list or labels is refused; it may
#     create the Secret kube-harden-tls and no other.
#     Then the uninstall's first step: with the configuration deleted, no more calls.
#  7. kube-harden hardens its own Deployment: an empty patch and no findings.
#
# Env: KUBE_HARDEN_BIN (default: the static build), MANIFESTS_CHECK_DIR (default
#      target/manifests-check), E2E_STATE_DIR (default target/e2e-manifests).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
work="${MANIFESTS_CHECK_DIR:-$repo/target/manifests-check}"
export E2E_STATE_DIR="${E2E_STATE_DIR:-$repo/target/e2e-manifests}"
log() { echo "manifests-check: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
rm -rf "$work"; mkdir -p "$work"

# kubectl matching the API server (built and cached by e2e/build-controlplane.sh).
while IFS='=' read -r k v; do
  [[ "$k" == KUBECTL_BIN ]] && kubectl_bin="$v"
done < <(e2e/build-controlplane.sh --print-env)
[[ -x "${kubectl_bin:-}" ]] || fail "kubectl from e2e/build-controlplane.sh not found"
k() { "$kubectl_bin" "$@"; }

# 1. render ------------------------------------------------------------------------------
for pair in default:manifests base:manifests/base cert-manager:manifests/overlays/cert-manager \
  monitoring:manifests/monitoring; do
  k kustomize "${pair#*:}" >"$work/${pair%%:*}.yaml"
done
cmp -s "$work/default.yaml" <(k kustomize manifests/overlays/default) \
  || fail "manifests/ does not render the default overlay"
# The default overlay with its parameter set, as a user's overlay does (docs/install.md): the API
# server here listens on 127.0.0.1.
apiserver_cidr=127.0.0.1/32
mkdir -p "$work/overlay"
cat >"$work/overlay/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(python3 -c 'import os, sys; print(os.path.relpath(os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2])))' "$repo/manifests/overlays/default" "$work/overlay")
patches:
  - target: {kind: NetworkPolicy, name: kube-harden-apiserver}
    patch: |-
      - op: replace
        path: /spec/egress/0/to/0/ipBlock/cidr
        value: $apiserver_cidr
YAML
k kustomize "$work/overlay" >"$work/default-set.yaml"
log "rendered: $(for f in default default-set base cert-manager monitoring; do printf '%s=%s objects ' "$f" "$(grep -c '^kind:' "$work/$f.yaml")"; done)"

# 2. static checks of what must hold in the rendered output ----------------------------------
python3 - "$work" <<'PY'
import sys, yaml
work = sys.argv[1]
def docs(name):
    return [d for d in yaml.safe_load_all(open(f"{work}/{name}.yaml")) if d]
def one(ds, kind, name=None):
    m = [d for d in ds if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(m) == 1, f"expected one {kind} {name or ''}, found {len(m)}"
    return m[0]
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)
for overlay in ("default", "cert-manager", "base"):
    ds = docs(overlay)
    mwc = one(ds, "MutatingWebhookConfiguration", "kube-harden")
    hooks = {w["name"]: w for w in mwc["webhooks"]}
    check(set(hooks) == {"enforce.kube-harden.io", "audit.kube-harden.io"}, f"{overlay}: webhooks {set(hooks)}")
    for name, w in hooks.items():
        mode = name.split(".")[0]
        path = {"enforce": "/mutate", "audit": "/audit"}[mode]
        where = f"{overlay}: {name}"
        check(w["clientConfig"]["service"]["path"] == path, f"{where}: path")
        check(w.get("reinvocationPolicy") == "IfNeeded", f"{where}: reinvocationPolicy")
        check(w.get("failurePolicy") == "Ignore", f"{where}: failurePolicy")
        check(0 < w.get("timeoutSeconds", 10) <= 5, f"{where}: timeoutSeconds")
        check(w.get("sideEffects") == "None", f"{where}: sideEffects")
        check(w.get("admissionReviewVersions") == ["v1"], f"{where}: admissionReviewVersions")
        exprs = w["namespaceSelector"]["matchExpressions"]
        check({"key": "kube-harden.io/mode", "operator": "In", "values": [mode]} in exprs, f"{where}: mode selector")
        excl = [e for e in exprs if e["key"] == "kubernetes.io/metadata.name" and e["operator"] == "NotIn"]
        check(excl and {"kube-system", "kube-harden"} <= set(excl[0]["values"]), f"{where}: exclusions")
        res = {(g, r) for rule in w["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
        want = {("", "pods"), ("", "pods/ephemeralcontainers"), ("", "replicationcontrollers"),
                ("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets"),
                ("apps", "replicasets"), ("batch", "jobs"), ("batch", "cronjobs")}
        check(want <= res, f"{where}: rules miss {want - res}")
    dep = one(ds, "Deployment", "kube-harden")
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    check(dep["spec"]["replicas"] == 2, f"{overlay}: replicas")
    check(spec.get("topologySpreadConstraints") and spec.get("affinity", {}).get("podAntiAffinity"), f"{overlay}: spreading")
    check(spec.get("priorityClassName") == "system-cluster-critical", f"{overlay}: priorityClassName")
    check(isinstance(spec["securityContext"].get("runAsUser"), int) and spec["securityContext"]["runAsUser"] > 0, f"{overlay}: runAsUser")
    sc = c["securityContext"]
    check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
          and sc.get("capabilities", {}).get("drop") == ["ALL"]
          and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{overlay}: container securityContext")
    check(all(c["resources"].get(k, {}).get(r) for k in ("requests", "limits") for r in ("cpu", "memory")), f"{overlay}: resources")
    check(c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{overlay}: probes")
    check(any(v.get("configMap", {}).get("name") == "kube-harden-policy" for v in spec["volumes"]), f"{overlay}: policy ConfigMap")
    one(ds, "PodDisruptionBudget", "kube-harden")
    one(ds, "Service", "kube-harden")
    ns = one(ds, "Namespace", "kube-harden")
    check(ns["metadata"]["labels"].get("pod-security.kubernetes.io/enforce") == "restricted", f"{overlay}: PSA label")
    np = one(ds, "NetworkPolicy", "kube-harden")
    check(np["spec"]["policyTypes"] == ["Ingress", "Egress"] and not np["spec"].get("egress"), f"{overlay}: network policy")
    ports = {p["port"] for r in np["spec"]["ingress"] for p in r["ports"]}
    check(ports == {"webhook", "metrics"}, f"{overlay}: ingress ports {ports}")
    vols = {v["name"]: v for v in spec["volumes"]}
    if overlay == "default":
        check("emptyDir" in vols.get("tls", {}), "default: tls emptyDir")
        check(spec.get("automountServiceAccountToken") is True, "default: token")
        for flag in ("--manage-certs", "--cert-secret=kube-harden-tls", "--cert-namespace=$(POD_NAMESPACE)",
                     "--webhook-config=kube-harden", "--service-name=kube-harden",
                     "--tls-cert-file=/var/run/kube-harden/tls/tls.crt", "--tls-key-file=/var/run/kube-harden/tls/tls.key"):
            check(flag in c["args"], f"default: flag {flag}")
        for r in [d for d in ds if d["kind"] in ("Role", "ClusterRole")]:
            for rule in r["rules"]:
                check("*" not in rule["verbs"] and "*" not in rule["resources"], f"{r['metadata']['name']}: wildcard")
                check(not {"list", "watch", "delete", "deletecollection"} & set(rule["verbs"]), f"{r['metadata']['name']}: broad verbs")
                check(rule.get("resourceNames") or rule["verbs"] == ["create"], f"{r['metadata']['name']}: unscoped rule {rule}")
    if overlay == "default":
        # Egress only to the API server: every rule names its destination (the parameter), on
        # the API server's ports; the parameter unset is not a CIDR (refused in step 5).
        egress = one(ds, "NetworkPolicy", "kube-harden-apiserver")["spec"]
        check(egress["policyTypes"] == ["Egress"] and "ingress" not in egress, "default: apiserver policy is egress-only")
        for rule in egress["egress"]:
            to = rule.get("to") or []
            check(len(to) == 1 and set(to[0]) == {"ipBlock"} and to[0]["ipBlock"].get("cidr") == "SET-THE-API-SERVER-CIDR"
                  and not to[0]["ipBlock"].get("except"), f"default: egress destination {to}")
            check({(p["port"], p["protocol"]) for p in rule["ports"]} == {(443, "TCP"), (6443, "TCP")}, f"default: egress ports {rule['ports']}")
        sa_user = "system:serviceaccount:kube-harden:kube-harden"
        policies = {d["metadata"]["name"]: d for d in ds if d["kind"] == "ValidatingAdmissionPolicy"}
        bindings = {d["spec"]["policyName"]: d for d in ds if d["kind"] == "ValidatingAdmissionPolicyBinding"}
        check(set(policies) == {"kube-harden-cabundle-only", "kube-harden-secret-create"}, f"default: policies {set(policies)}")
        for name, p in policies.items():
            check(p["spec"].get("failurePolicy") == "Fail", f"{name}: failurePolicy")
            check(any(sa_user in c["expression"] for c in p["spec"].get("matchConditions", [])), f"{name}: keyed on the ServiceAccount")
            check(bindings.get(name, {}).get("spec", {}).get("validationActions") == ["Deny"], f"{name}: binding with Deny")
        dep_sa = spec.get("serviceAccountName")
        check(dep_sa == "kube-harden" and dep["metadata"]["namespace"] == "kube-harden", "default: the policies' username matches the Deployment's ServiceAccount")
    if overlay == "cert-manager":
        check(vols.get("tls", {}).get("secret", {}).get("secretName") == "kube-harden-tls", "cert-manager: tls secret volume")
        check(mwc["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from") == "kube-harden/kube-harden", "cert-manager: cainjector annotation")
        cert = one(ds, "Certificate", "kube-harden")
        check(cert["spec"]["secretName"] == "kube-harden-tls" and "kube-harden.kube-harden.svc" in cert["spec"]["dnsNames"], "cert-manager: Certificate")
        check(not [d for d in ds if d["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")], "cert-manager: needs no RBAC")
sm = one(docs("monitoring"), "ServiceMonitor", "kube-harden")
for ep in sm["spec"]["endpoints"]:
    # The target must not overwrite Prometheus' own labels (job, instance, namespace, pod).
    check(not ep.get("honorLabels"), "ServiceMonitor: honorLabels")
    moved = [r for r in ep.get("metricRelabelings", []) if r.get("targetLabel")]
    check(all(r.get("sourceLabels") == ["exported_namespace"] and r["targetLabel"] == "namespace" for r in moved),
          f"ServiceMonitor: relabelings may only move exported_namespace back: {moved}")
if errors:
    print("\n".join("manifests-check: FAIL: " + e for e in errors), file=sys.stderr)
    sys.exit(1)
print("manifests-check: rendered MutatingWebhookConfiguration, Deployment, RBAC, NetworkPolicy checks passed for base, default, cert-manager", file=sys.stderr)
PY

# 3. a real API server -----------------------------------------------------------------------
export E2E_WATCH_PID=$$
trap 'e2e/controlplane.sh stop || true' EXIT
e2e/controlplane.sh start
export KUBECONFIG="$E2E_STATE_DIR/kubeconfig"
log "API server: $(k version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')"

k apply -f e2e/testdata/crds/ >&2
k wait --for=condition=Established --timeout=60s -f e2e/testdata/crds/ >&2
# The Namespace for real (dry-run objects cannot live in a dry-run namespace).
python3 -c 'import sys, yaml; [yaml.safe_dump(d, sys.stdout) for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "Namespace"]' \
  "$work/default.yaml" | k apply -f - >&2

# The default overlay's parameter unset: refused, naming the field (kubectl apply says so).
if k apply --dry-run=server -f "$work/default.yaml" >"$work/default-unset.out" 2>&1; then
  fail "the default overlay with the API server CIDR unset was accepted"
fi
grep -q 'kube-harden-apiserver.*ipBlock.cidr: Invalid value: "SET-THE-API-SERVER-CIDR"' "$work/default-unset.out" \
  || { cat "$work/default-unset.out" >&2; fail "unexpected refusal of the default overlay with the parameter unset"; }
log "default overlay with the API server CIDR unset: refused ($(grep -o 'spec.egress\[0\].to\[0\].ipBlock.cidr: Invalid value' "$work/default-unset.out"))"
for f in default-set cert-manager monitoring; do
  if ! k apply --dry-run=server --validate=strict -f "$work/$f.yaml" >"$work/$f.dry-run.out" 2>&1; then
    cat "$work/$f.dry-run.out" >&2
    fail "kubectl apply --dry-run=server of $f was refused"
  fi
  if grep -qi 'warning' "$work/$f.dry-run.out"; then
    cat "$work/$f.dry-run.out" >&2
    fail "$f: the API server warned (PodSecurity or unknown fields)"
  fi
  log "dry-run=server $f: $(grep -c 'dry run' "$work/$f.dry-run.out") objects accepted, no warnings"
done

# 4. Pod Security restricted, really enforced ------------------------------------------------
python3 - "$work/default.yaml" >"$work/pod.json" <<'PY'
import json, sys, yaml
dep = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "Deployment")
t = dep["spec"]["template"]
print(json.dumps({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": "kube-harden-template", "namespace": "kube-harden", "labels": t["metadata"]["labels"]},
                  "spec": t["spec"]}))
PY
k create --dry-run=server -f "$work/pod.json" >&2 2>"$work/pod.err" || { cat "$work/pod.err" >&2; fail "restricted refused the Deployment's pod"; }
! grep -qi warning "$work/pod.err" || { cat "$work/pod.err" >&2; fail "PodSecurity warned about the Deployment's pod"; }
if k run psa-negative-control -n kube-harden --image=nginx:1.27 --restart=Never --dry-run=server >/dev/null 2>"$work/negative.err"; then
  fail "a pod without securityContext was admitted in kube-harden's namespace: PSA restricted is not enforced"
fi
grep -q 'violates PodSecurity "restricted' "$work/negative.err" || { cat "$work/negative.err" >&2; fail "unexpected refusal"; }
log "Pod Security restricted: the Deployment's pod is admitted, a pod without securityContext is refused"

# 5. the default overlay for real; RBAC is exactly what certificate management needs -------------
# Everything but the MutatingWebhookConfiguration: registered as is, the API server would try to
# reach kube-harden.kube-harden.svc through DNS, which is not on this machine (step 6 registers
# it pointed at a closed port on 127.0.0.1 instead).
split() { # <file> <kind> <keep: 1 = only that kind, 0 = all but it>
  python3 -c 'import sys, yaml; [yaml.safe_dump(d, sys.stdout, explicit_start=True) for d in yaml.safe_load_all(open(sys.argv[1])) if d and (d["kind"] == sys.argv[2]) == (sys.argv[3] == "1")]' "$@"
}
split "$work/default-set.yaml" MutatingWebhookConfiguration 0 | k apply -f - >&2
sa=system:serviceaccount:kube-harden:kube-harden
can() { # <expect yes|no> <can-i args...>
  local want="$1"; shift
  local got
  got="$(k auth can-i --as="$sa" "$@" 2>/dev/null || true)"
  [[ "$got" == "$want" ]] || fail "can-i $* as the ServiceAccount: $got, want $want"
  echo "  can-i $*: $got" >>"$work/rbac.txt"
}
: >"$work/rbac.txt"
can yes get secret/kube-harden-tls -n kube-harden
can yes update secret/kube-harden-tls -n kube-harden
can yes create secrets -n kube-harden
can yes get mutatingwebhookconfigurations.admissionregistration.k8s.io/kube-harden
can yes patch mutatingwebhookconfigurations.admissionregistration.k8s.io/kube-harden
can no get secret/other -n kube-harden
can no update secret/other -n kube-harden
can no list secrets -n kube-harden
can no watch secrets -n kube-harden
can no delete secret/kube-harden-tls -n kube-harden
can no create secrets -n default
can no get secret/kube-harden-tls -n default
can no patch mutatingwebhookconfigurations.admissionregistration.k8s.io/other
can no list mutatingwebhookconfigurations.admissionregistration.k8s.io
can no delete mutatingwebhookconfigurations.admissionregistration.k8s.io/kube-harden
can no create mutatingwebhookconfigurations.admissionregistration.k8s.io
can no patch validatingwebhookconfigurations.admissionregistration.k8s.io/kube-harden
can no get configmaps -n kube-harden
can no get pods -n kube-harden
cat "$work/rbac.txt" >&2
log "RBAC: $(grep -c ': yes$' "$work/rbac.txt") permissions granted, $(grep -c ': no$' "$work/rbac.txt") denied, as intended"

# 6. failing open, as the API server reports it --------------------------------------------------
# The rendered configuration with clientConfig.service swapped for a closed port on 127.0.0.1
# (connection refused at once), everything else as rendered.
closed_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
split "$work/default-set.yaml" MutatingWebhookConfiguration 1 | python3 -c '
import sys, yaml
d = yaml.safe_load(sys.stdin)
for w in d["webhooks"]:
    w["clientConfig"] = {"url": "https://127.0.0.1:" + sys.argv[1] + w["clientConfig"]["service"]["path"]}
yaml.safe_dump(d, sys.stdout)' "$closed_port" | k apply -f - >&2
k create namespace e2e-enforce --dry-run=client -o yaml \
  | k label --local -f - kube-harden.io/mode=enforce -o yaml | k apply -f - >&2
ok=0
for i in $(seq 30); do
  if k run "fail-open-$i" -n e2e-enforce --image=nginx:1.27 --restart=Never --dry-run=server >/dev/null 2>"$work/fail-open.err"; then
    k get --raw /metrics >"$work/apiserver-metrics.txt"
    if grep -q '^apiserver_admission_webhook_fail_open_count{name="enforce.kube-harden.io"' "$work/apiserver-metrics.txt"; then
      ok=1; break
    fi
  fi
  sleep 1
done
((ok)) || { cat "$work/fail-open.err" >&2; fail "no apiserver_admission_webhook_fail_open_count for enforce.kube-harden.io"; }
log "fail-open: pod admitted with the webhook unreachable; API server: $(grep '^apiserver_admission_webhook_fail_open_count{name="enforce.kube-harden.io"' "$work/apiserver-metrics.txt")"
# The ServiceAccount may change the caBundle and nothing else of the configuration, and create
# only its own Secret: the ValidatingAdmissionPolicies, enforced by this API server.
: >"$work/vap.txt"
as_sa() { k --as="$sa" "$@"; }
refused() { # <what> <kubectl args...>: refused by the policy
  local what="$1"; shift
  local i
  for i in $(seq 20); do # the API server loads new policies within a second or two
    if as_sa "$@" >"$work/vap.out" 2>&1; then
      fail "as the ServiceAccount, $what was accepted (the ValidatingAdmissionPolicy did not refuse it)"
    fi
    if grep -q "denied request: kube-harden's ServiceAccount may" "$work/vap.out"; then
      echo "  refused: $what" >>"$work/vap.txt"; return
    fi
    grep -q 'forbidden' "$work/vap.out" && ! grep -q 'ValidatingAdmissionPolicy' "$work/vap.out" \
      && { cat "$work/vap.out" >&2; fail "$what: refused by RBAC, not by the policy"; }
    sleep 0.5
  done
  cat "$work/vap.out" >&2; fail "$what: not refused by the policy"
}
ca_bundle="$(printf 'not a real CA, the API server stores any bytes' | base64 -w0)"
as_sa patch mutatingwebhookconfiguration kube-harden --type=strategic \
  -p "{\"webhooks\":[{\"name\":\"enforce.kube-harden.io\",\"clientConfig\":{\"caBundle\":\"$ca_bundle\"}},{\"name\":\"audit.kube-harden.io\",\"clientConfig\":{\"caBundle\":\"$ca_bundle\"}}]}" >&2 \
  || fail "as the ServiceAccount, a caBundle update was refused"
[[ "$(k get mutatingwebhookconfiguration kube-harden -o jsonpath='{.webhooks[1].clientConfig.caBundle}')" == "$ca_bundle" ]] \
  || fail "the caBundle update did not land"
echo "  passed: caBundle of both webhooks" >>"$work/vap.txt"
mwc=(patch mutatingwebhookconfiguration kube-harden --type=json -p)
refused "failurePolicy: Fail" "${mwc[@]}" '[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Fail"}]'
refused "a rule removed" "${mwc[@]}" '[{"op":"remove","path":"/webhooks/0/rules/0"}]'
refused "a rule widened" "${mwc[@]}" '[{"op":"replace","path":"/webhooks/0/rules/0/resources","value":["*"]}]'
refused "namespaceSelector emptied" "${mwc[@]}" '[{"op":"replace","path":"/webhooks/0/namespaceSelector","value":{}}]'
refused "an objectSelector added" "${mwc[@]}" '[{"op":"add","path":"/webhooks/1/objectSelector","value":{"matchLabels":{"a":"b"}}}]'
refused "timeoutSeconds" "${mwc[@]}" '[{"op":"replace","path":"/webhooks/1/timeoutSeconds","value":30}]'
refused "the webhook URL" "${mwc[@]}" '[{"op":"replace","path":"/webhooks/0/clientConfig/url","value":"https://attacker.example/mutate"}]'
refused "a webhook removed" "${mwc[@]}" '[{"op":"remove","path":"/webhooks/1"}]'
refused "a label" label mutatingwebhookconfiguration kube-harden evil=1
refused "another Secret created" -n kube-harden create secret generic not-kube-harden-tls --from-literal=a=b
as_sa -n kube-harden create secret generic kube-harden-tls --from-literal=a=b >&2 \
  || fail "as the ServiceAccount, creating the Secret kube-harden-tls was refused"
echo "  passed: create Secret kube-harden-tls" >>"$work/vap.txt"
k -n kube-harden delete secret kube-harden-tls >&2
cat "$work/vap.txt" >&2
log "ValidatingAdmissionPolicies: $(grep -c passed "$work/vap.txt") changes passed, $(grep -c refused "$work/vap.txt") refused, as intended"
# The uninstall's first step (docs/install.md): with the configuration deleted, pods in the
# enforce namespace are admitted without any call to kube-harden (the count stays).
count() { k get --raw /metrics | grep '^apiserver_admission_webhook_fail_open_count{name="enforce.kube-harden.io"' | awk '{print $2}'; }
k delete mutatingwebhookconfiguration kube-harden >&2
sleep 3 # the API server's informer drops the configuration
before="$(count)"
for i in 1 2 3; do
  k run "after-uninstall-$i" -n e2e-enforce --image=nginx:1.27 --restart=Never --dry-run=server >/dev/null \
    || fail "a pod was refused after the webhook configuration was deleted"
done
[[ "$(count)" == "$before" ]] || fail "the API server still called the webhook after its configuration was deleted"
log "uninstall: webhook configuration deleted first; pods admitted with no call to kube-harden (fail-open count stays $before)"

# 7. kube-harden on its own Deployment ----------------------------------------------------------
bin="${KUBE_HARDEN_BIN:-}"
[[ -n "$bin" ]] || bin="$(scripts/static-build.sh)"
for f in default cert-manager; do
  patch="$(python3 -c 'import sys, yaml; [yaml.safe_dump(d, sys.stdout) for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "Deployment"]' "$work/$f.yaml" \
    | "$bin" harden -f - -o patch --findings --fail-on-findings 2>"$work/$f.findings")" \
    || { cat "$work/$f.findings" >&2; fail "$f: kube-harden reports findings on its own Deployment"; }
  [[ "$patch" == "[]" ]] || fail "$f: kube-harden would change its own Deployment: $patch"
done
log "kube-harden on its own Deployment (default, cert-manager): empty patch, no findings, restricted"
log "ok"
