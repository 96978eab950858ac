#!/usr/bin/env python3
"""Evaluates every Grafana dashboard query and every alert expression against a real
Prometheus (HTTP API /api/v1/query) that has scraped a real kube-harden.

- Dashboard: every target `expr` of every panel, with Grafana's variables substituted ($job ->
  the scrape job, $namespace -> .* as "All" does, $__rate_interval -> --rate-interval,
  $__range -> --range). Each must parse and return at least one sample with a finite value.
  Each template variable's query (label_values) must return values too.
- Alerts: every `expr` in the PrometheusRule must parse (apiserver_* series, which only the API
  server exports, may be empty); Prometheus has the same rules loaded, and every rule must have
  been evaluated with health "ok".

Usage: check_queries.py --prometheus http://127.0.0.1:PORT --dashboard FILE --rules FILE
                        [--job kube-harden] [--report FILE]
"""

import argparse
import json
import math
import re
import sys
import urllib.parse
import urllib.request

import yaml


def query(prom, expr):
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:  # 400 = parse error, with a JSON body
        return json.load(e)


def finite_values(result):
    data = result.get("data", {})
    kind, res = data.get("resultType"), data.get("result", [])
    if kind == "vector":
        vals = [float(s["value"][1]) for s in res]
    elif kind == "matrix":
        vals = [float(v[1]) for s in res for v in s["values"]]
    elif kind == "scalar":
        vals = [float(res[1])]
    else:
        vals = []
    return len(res) if kind != "scalar" else 1, [v for v in vals if math.isfinite(v)]


def substitute(expr, job, rate_interval, rng):
    expr = expr.replace("${job}", job).replace("$job", job)
    expr = expr.replace("${namespace}", ".*").replace("$namespace", ".*")
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__range", rng)
    left = re.findall(r"\$\{?\w+", expr)
    if left:
        raise ValueError(f"unsubstituted variables {left} in {expr}")
    return expr


def dump_ranges(prom, panels, args):
    import time
    end = time.time()
    out = []
    for p in panels:
        series = []
        for t in p.get("targets", []):
            expr = substitute(t["expr"], args.job, args.rate_interval, args.range)
            params = {"query": expr, "start": end - 180, "end": end, "step": 2}
            url = prom + "/api/v1/query_range?" + urllib.parse.urlencode(params)
            with urllib.request.urlopen(url, timeout=10) as r:
                res = json.load(r)["data"]["result"]
            for s in res:
                legend = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: s["metric"].get(m.group(1), ""),
                                t.get("legendFormat") or "") or json.dumps(s["metric"])
                series.append({"legend": legend, "values": s["values"], "metric": s["metric"]})
        out.append({"title": p["title"], "type": p["type"], "gridPos": p["gridPos"],
                    "unit": p.get("fieldConfig", {}).get("defaults", {}).get("unit", ""),
                    "series": series})
    with open(args.dump, "w") as f:
        json.dump({"end": end, "panels": out}, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--rules", required=True)
    ap.add_argument("--job", default="kube-harden")
    ap.add_argument("--rate-interval", default="1m")
    ap.add_argument("--range", default="5m")
    ap.add_argument("--report")
    ap.add_argument("--dump", help="also write each panel's range query results (last 3 minutes) "
                    "to this JSON file, for scripts/monitoring/render_dashboard.py")
    args = ap.parse_args()
    prom = args.prometheus.rstrip("/")
    failures, lines = [], []

    dash = json.load(open(args.dashboard))
    panels = [p for p in dash["panels"] if p.get("type") != "row"]
    panels += [c for p in dash["panels"] if p.get("type") == "row" for c in p.get("panels", [])]
    panels_ok = queries = 0
    for p in panels:
        ok = True
        for t in p.get("targets", []):
            queries += 1
            expr = substitute(t["expr"], args.job, args.rate_interval, args.range)
            res = query(prom, expr)
            if res.get("status") != "success":
                ok = False
                failures.append(f"panel '{p['title']}' {t['refId']}: {res.get('error')}: {expr}")
                continue
            n, finite = finite_values(res)
            lines.append(f"panel {p['title']!r} {t['refId']}: {n} series, {len(finite)} finite values")
            if not finite:
                ok = False
                failures.append(f"panel '{p['title']}' {t['refId']}: no data: {expr}")
        panels_ok += ok
    if args.dump:
        dump_ranges(prom, panels, args)
    variables = 0
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        variables += 1
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v["definition"].strip())
        if not m:
            failures.append(f"variable {v['name']}: unsupported query {v['definition']}")
            continue
        selector, label = m.group(1), m.group(2)
        expr = f"count by ({label}) ({substitute(selector, args.job, args.rate_interval, args.range)})"
        res = query(prom, expr)
        values = sorted(s["metric"].get(label, "") for s in res.get("data", {}).get("result", []))
        lines.append(f"variable {v['name']}: {values}")
        if res.get("status") != "success" or not values:
            failures.append(f"variable {v['name']}: no values from {expr}")

    spec = yaml.safe_load(open(args.rules))
    spec = spec.get("spec", spec)
    alerts = [r for g in spec["groups"] for r in g["rules"] if "alert" in r]
    alerts_ok = alerts_with_data = 0
    for r in alerts:
        res = query(prom, r["expr"])
        if res.get("status") != "success":
            failures.append(f"alert {r['alert']}: {res.get('error')}")
            continue
        alerts_ok += 1
        n, _ = finite_values(res)
        lines.append(f"alert {r['alert']}: parses; {n} series meet its condition now")

    with urllib.request.urlopen(prom + "/api/v1/rules", timeout=10) as resp:
        loaded = {r["name"]: r for g in json.load(resp)["data"]["groups"] for r in g["rules"]}
    evaluated = 0
    for r in alerts:
        lr = loaded.get(r["alert"])
        if lr is None:
            failures.append(f"alert {r['alert']}: not loaded by Prometheus")
        elif lr.get("health") != "ok":
            failures.append(f"alert {r['alert']}: health {lr.get('health')}: {lr.get('lastError')}")
        else:
            evaluated += 1
            lines.append(f"alert {r['alert']}: evaluated by Prometheus, health ok, state {lr.get('state')}")

    summary = (f"{len(panels)} panels ({queries} queries): {panels_ok} returned data; "
               f"{variables} template variables; {len(alerts)} alerts: {alerts_ok} parsed, "
               f"{evaluated} evaluated with health ok")
    lines.append(summary)
    if args.report:
        with open(args.report, "w") as f:
            f.write("\n".join(lines) + "\n")
    for line in lines:
        print("monitoring-check: " + line)
    for f in failures:
        print("monitoring-check: FAIL: " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
