#!/usr/bin/env python3
"""Draws docs/dashboard.png: the Grafana dashboard's layout filled with the data a real
Prometheus returned for each panel's queries (the JSON `check_queries.py --dump` writes).
Not Grafana itself (no Grafana package here): same panels, positions, queries and units.

Usage: MONITORING_CHECK_SERIES=target/panels.json MONITORING_CHECK_ROUNDS=60 \
         MONITORING_CHECK_PAUSE=1 scripts/monitoring-check.sh
       python3 scripts/monitoring/render_dashboard.py target/panels.json \
         manifests/monitoring/kube-harden-dashboard.json docs/dashboard.png
Needs matplotlib (pip install matplotlib); only for refreshing the picture.
"""

import datetime
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

BG, PANEL, FG, GRID = "#111217", "#181b1f", "#ccccdc", "#2c3235"
COLORS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9",
          "#705da0", "#37872d", "#fade2a", "#ff9830", "#c4162a"]


def fmt(v, unit):
    if v is None or not math.isfinite(v):
        return "-"
    if unit == "percentunit":
        return f"{v * 100:.1f}%"
    if unit == "s":
        return f"{v * 1000:.2f} ms" if v < 1 else f"{v:.2f} s"
    if unit == "d":
        return f"{v:.1f} days"
    if unit == "bytes":
        return f"{v / 2**20:.1f} MiB"
    if unit in ("reqps", "ops"):
        return f"{v:.2f}/s"
    return f"{v:.3g}"


def main():
    dump, dash_path, out = sys.argv[1:4]
    data = json.load(open(dump))
    dash = json.load(open(dash_path))
    rows = [p for p in dash["panels"] if p["type"] == "row"]
    top_margin = 1.2  # grid units above the first row, for the title
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dash["panels"]) + top_margin
    unit_h = 0.42
    fig = plt.figure(figsize=(24 * 0.75, height * unit_h), facecolor=BG)
    plt.rcParams.update({"text.color": FG, "axes.labelcolor": FG, "xtick.color": FG,
                         "ytick.color": FG, "font.size": 8})

    def axes_for(g, pad=0.15):
        x0 = g["x"] / 24
        w = g["w"] / 24
        y_top = 1 - (g["y"] + top_margin) / height
        h = g["h"] / height
        return fig.add_axes([x0 + 0.032, y_top - h + 0.004, w - 0.036, h - 0.008 - pad / height])

    fig.text(0.005, 1 - 0.5 / height, "kube-harden  (job=kube-harden, namespace=All, last 3 minutes)", fontsize=14, weight="bold", va="top")
    for r in rows:
        fig.text(0.005, 1 - (r["gridPos"]["y"] + top_margin + 0.55) / height, r["title"], fontsize=11,
                 weight="bold", va="center")
    for p in data["panels"]:
        g = dict(p["gridPos"])
        ax = axes_for(g, pad=0.9)
        ax.set_facecolor(PANEL)
        for s in ax.spines.values():
            s.set_color(GRID)
        fig.text(g["x"] / 24 + 0.008, 1 - (g["y"] + top_margin + 0.35) / height, p["title"], fontsize=9,
                 weight="bold", va="center")
        series = p["series"]
        unit = p["unit"]
        if p["type"] == "stat":
            ax.set_xticks([]), ax.set_yticks([])
            text = "  ".join(
                (s["legend"] + " " if len(series) > 1 else "") + fmt(float(s["values"][-1][1]), unit)
                for s in series[:3]) or "no data"
            ax.text(0.5, 0.45, text, ha="center", va="center", fontsize=20, weight="bold",
                    color=COLORS[0], transform=ax.transAxes)
        elif p["type"] == "table":
            ax.set_xticks([]), ax.set_yticks([])
            last = sorted(((float(s["values"][-1][1]), s["metric"]) for s in series),
                          key=lambda t: -t[0])[:7]
            keys = [k for k in ("namespace", "change", "kind") if last and k in last[0][1]]
            header = "   ".join(f"{k:<28}" for k in keys) + "value"
            ax.text(0.02, 0.92, header, family="monospace", fontsize=8, weight="bold",
                    va="top", transform=ax.transAxes)
            for i, (v, m) in enumerate(last):
                line = "   ".join(f"{m.get(k, ''):<28}" for k in keys) + f"{v:.0f}"
                ax.text(0.02, 0.80 - i * 0.11, line, family="monospace", fontsize=8, va="top",
                        transform=ax.transAxes)
        else:
            ax.grid(color=GRID, linewidth=0.5)
            top = sorted(series, key=lambda s: -max(float(v[1]) if math.isfinite(float(v[1])) else 0
                                                    for v in s["values"]))[:8]
            for i, s in enumerate(top):
                xs = [datetime.datetime.fromtimestamp(float(t)) for t, _ in s["values"]]
                ys = [float(v) for _, v in s["values"]]
                ax.plot(xs, ys, color=COLORS[i % len(COLORS)], linewidth=1.2, label=s["legend"][:38])
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _, u=unit: fmt(v, u)))
            if top:
                ax.legend(loc="upper left", fontsize=6.5, facecolor=PANEL, edgecolor=GRID,
                          labelcolor=FG, ncol=2 if len(top) > 4 else 1)
    fig.savefig(out, dpi=80, facecolor=BG)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
