#!/usr/bin/env bash
# `make monitoring-check`: the dashboard and the alerts, checked for real.
#
#  1. promtool check rules + promtool test rules (manifests/monitoring/tests/*.yaml, a unit
#     test for each alert) on the PrometheusRule's spec.
#  2. A real `kube-harden serve` (the static binary, a CA + serving certificate made with
#     openssl) on 127.0.0.1, scraped every second by a real Prometheus on 127.0.0.1 that also
#     loads the alert rules.
#  3. A bounded burst of real AdmissionReviews (scripts/monitoring/loadgen.py), with a
#     certificate rotation in the middle.
#  4. Every dashboard panel query and every alert expression through Prometheus' HTTP API
#     (scripts/monitoring/check_queries.py): every one parses, every panel returns data, every
#     rule was evaluated with health ok.
#
# Prometheus: scripts/monitoring/prometheus.sh (Debian's, installed when missing and running as
# root; the rule file; the server).
# Env: KUBE_HARDEN_BIN (default: the static build, built if missing),
#      MONITORING_CHECK_DIR (default target/monitoring-check), MONITORING_CHECK_TIMEOUT (s, 240),
#      MONITORING_CHECK_ROUNDS (rounds of 24 reviews per half of the burst, 15),
#      MONITORING_CHECK_PAUSE (seconds between rounds, 0.25: the burst spans several 1s scrapes,
#      so rates have two distinct samples), MONITORING_CHECK_SERIES (also dump
#      each panel's last 3 minutes to this JSON file, for scripts/monitoring/render_dashboard.py).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
work="${MONITORING_CHECK_DIR:-$repo/target/monitoring-check}"
deadline=$((SECONDS + ${MONITORING_CHECK_TIMEOUT:-240}))
log() { echo "monitoring-check: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

scripts/monitoring/prometheus.sh install

rm -rf "$work"
mkdir -p "$work"/{tls,prom-data,promtool}

# 1. promtool ------------------------------------------------------------------------------
scripts/monitoring/prometheus.sh rules "$work/promtool/rules.yaml"
tests=0
for t in manifests/monitoring/tests/*.yaml; do
  cp "$t" "$work/promtool/"
  (cd "$work/promtool" && promtool test rules "$(basename "$t")") >&2
  tests=$((tests + $(python3 -c 'import sys, yaml; print(len(yaml.safe_load(open(sys.argv[1]))["tests"]))' "$t")))
done
alerts="$(grep -c '^ *- alert:' manifests/monitoring/prometheusrule.yaml)"
log "promtool: $alerts alerts checked, $tests unit test groups passed"

# 2. kube-harden and Prometheus ---------------------------------------------------------------
bin="${KUBE_HARDEN_BIN:-}"
if [[ -z "$bin" ]]; then
  bin="$(scripts/static-build.sh)"
fi
[[ -x "$bin" ]] || fail "kube-harden binary $bin not found"

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
webhook_port="$(free_port)"; metrics_port="$(free_port)"; prom_port="$(free_port)"

cert() { # <name>: a serving certificate for 127.0.0.1 signed by the test CA
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$2" \
    -subj "/CN=kube-harden.kube-harden.svc" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -CA "$work/tls/ca.crt" -CAkey "$work/tls/ca.key" \
    -keyout "$work/tls/$1.key" -out "$work/tls/$1.crt" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=kube-harden-test-ca" -keyout "$work/tls/ca.key" -out "$work/tls/ca.crt" 2>/dev/null
cert first 20
cp "$work/tls/first.crt" "$work/tls/tls.crt"; cp "$work/tls/first.key" "$work/tls/tls.key"

# A policy with one change disabled, so the "skipped_disabled" reason has data too.
printf 'disabled: [fsGroupChangePolicy]\n' >"$work/policy.yaml"

"$bin" serve --webhook-addr "127.0.0.1:$webhook_port" --metrics-addr "127.0.0.1:$metrics_port" \
  --tls-cert-file "$work/tls/tls.crt" --tls-key-file "$work/tls/tls.key" \
  --tls-reload-interval 1s --config "$work/policy.yaml" --log-format json --shutdown-delay 0s \
  </dev/null >"$work/kube-harden.log" 2>&1 &
pids+=($!)

cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $work/promtool/rules.yaml
scrape_configs:
  # As the ServiceMonitor: job "kube-harden", the target's namespace label (here set as the
  # Operator's discovery sets it), honor_labels off, and the metric relabelling that moves the
  # workload namespace (exported_namespace) back to namespace: every panel and alert below
  # then finds it where it looks.
  - job_name: kube-harden
    honor_labels: false
    scrape_timeout: 1s
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
        labels:
          namespace: kube-harden
    metric_relabel_configs:
      - source_labels: [exported_namespace]
        regex: (.+)
        target_label: namespace
        replacement: \$1
        action: replace
      - regex: exported_namespace
        action: labeldrop
YAML
scripts/monitoring/prometheus.sh run "$work/prometheus.yml" "$work/prom-data" "127.0.0.1:$prom_port" \
  >"$work/prometheus.log" 2>&1 &
pids+=($!)

wait_for() { # <what> <command...>
  local what="$1"; shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out waiting for $what"
    sleep 0.2
  done
}
wait_for "kube-harden /readyz" curl -fsS "http://127.0.0.1:$metrics_port/readyz"
wait_for "Prometheus ready" curl -fsS "http://127.0.0.1:$prom_port/-/ready"
prom_query() { curl -fsS --get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1"; }
scrapes() { prom_query 'count_over_time(up{job="kube-harden"}[10m])' | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)'; }
scraped_at_least() { [[ "$(scrapes)" -ge "$1" ]]; }
wait_for "the first scrape" scraped_at_least 1
log "kube-harden on 127.0.0.1:$webhook_port (metrics :$metrics_port), Prometheus on 127.0.0.1:$prom_port"

# 3. the burst, with a certificate rotation in the middle ---------------------------------------
burst() {
  python3 scripts/monitoring/loadgen.py --url "https://127.0.0.1:$webhook_port" \
    --ca "$work/tls/ca.crt" --fixture tests/fixtures/pod-create.json --rounds "$1" \
    --pause "${MONITORING_CHECK_PAUSE:-0.25}" --deadline 300
}
burst "${MONITORING_CHECK_ROUNDS:-15}" >&2
cert second 25
cp "$work/tls/second.key" "$work/tls/tls.key.new"; cp "$work/tls/second.crt" "$work/tls/tls.crt.new"
mv "$work/tls/tls.key.new" "$work/tls/tls.key"; mv "$work/tls/tls.crt.new" "$work/tls/tls.crt"
reloaded() { curl -fsS "http://127.0.0.1:$metrics_port/metrics" | grep -q '^kube_harden_tls_reloads_total{result="success"} [1-9]'; }
wait_for "the certificate reload" reloaded
burst "${MONITORING_CHECK_ROUNDS:-15}" >&2
# Served the new certificate (25 days) after the reload:
served="$(echo | openssl s_client -connect "127.0.0.1:$webhook_port" -CAfile "$work/tls/ca.crt" 2>/dev/null | openssl x509 -noout -fingerprint -sha256)"
[[ "$served" == "$(openssl x509 -noout -fingerprint -sha256 -in "$work/tls/second.crt")" ]] \
  || fail "the rotated certificate is not served"
log "certificate rotated and served"

# At least two scrapes after the burst, then the rules' next evaluation.
before="$(scrapes)"
wait_for "two more scrapes" scraped_at_least $((before + 2))
sleep 2

# The relabelling: workload namespaces under `namespace` (not kube-harden's own), no
# exported_namespace left, and the target's own series keep the namespace Prometheus gave them.
labels_check="$(prom_query 'count by (namespace) (kube_harden_changes_total{job="kube-harden"})' | python3 -c '
import json, sys
ns = sorted(r["metric"].get("namespace", "") for r in json.load(sys.stdin)["data"]["result"])
print(" ".join(ns))')"
[[ -n "$labels_check" && " $labels_check " != *" kube-harden "* ]] \
  || fail "kube_harden_changes_total namespaces after relabelling: '$labels_check' (want the workloads')"
[[ "$(prom_query 'count({job="kube-harden", exported_namespace!=""})' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["result"]))')" == 0 ]] \
  || fail "series with exported_namespace left after relabelling"
[[ "$(prom_query 'up{job="kube-harden", namespace="kube-harden"}' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["result"]))')" == 1 ]] \
  || fail "the target's own namespace label was overwritten"
log "relabelling (honor_labels off): workload namespaces $labels_check; no exported_namespace; up keeps namespace=kube-harden"

# 4. every panel and alert through the HTTP API ----------------------------------------------
python3 scripts/monitoring/check_queries.py --prometheus "http://127.0.0.1:$prom_port" \
  --dashboard manifests/monitoring/kube-harden-dashboard.json \
  --rules manifests/monitoring/prometheusrule.yaml --job kube-harden \
  --report "$work/report.txt" ${MONITORING_CHECK_SERIES:+--dump "$MONITORING_CHECK_SERIES"}
log "ok (details: $work/report.txt)"
