#!/usr/bin/env bash
# A real Prometheus with kube-harden's alert rules, for the checks that query one: `make
# monitoring-check` (scripts/monitoring-check.sh, scraping a kube-harden process) and the node
# e2e's fail-open test (e2e/tests/node_install/failopen.rs, scraping the node's API server).
#
#   scripts/monitoring/prometheus.sh install                 Debian's prometheus + promtool if missing (root)
#   scripts/monitoring/prometheus.sh rules OUT.yaml          the PrometheusRule's spec as a rule file
#   scripts/monitoring/prometheus.sh run CONFIG DATA ADDR    promtool check config, then exec prometheus
#                                                            (TSDB in DATA, HTTP on ADDR; warn logs)
set -euo pipefail
caller="$PWD"
cd "$(dirname "$0")/../.."
abs() { [[ "$1" == /* ]] && echo "$1" || echo "$caller/$1"; }

log() { echo "prometheus: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

case "${1:-}" in
  install)
    if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
      if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        log "installing Debian's prometheus (prometheus, promtool)"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >&2
      else
        fail "prometheus and promtool are needed: apt-get install prometheus"
      fi
    fi
    log "$(prometheus --version 2>&1 | head -1)"
    ;;
  rules)
    out="$(abs "${2:?rules needs an output path}")"
    python3 -c 'import sys, yaml; yaml.safe_dump(yaml.safe_load(open(sys.argv[1]))["spec"], open(sys.argv[2], "w"), sort_keys=False)' \
      manifests/monitoring/prometheusrule.yaml "$out"
    promtool check rules "$out" >&2
    ;;
  run)
    config="$(abs "${2:?run needs a config}")" data="$(abs "${3:?run needs a data directory}")"
    addr="${4:?run needs an address}"
    promtool check config "$config" >&2
    exec prometheus --config.file="$config" --storage.tsdb.path="$data" \
      --web.listen-address="$addr" --log.level=warn </dev/null
    ;;
  *) echo "usage: $0 install | rules OUT.yaml | run CONFIG DATA ADDR" >&2; exit 2 ;;
esac
