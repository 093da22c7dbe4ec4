#!/usr/bin/env python3
"""Draw the side-by-side benchmark as an SVG bar chart (Python 3 standard library only).

    scripts/bench-chart.py docs/bench/2026-12-04.json
        reads the data file, writes docs/bench/2026-12-04.svg beside it

    scripts/bench-chart.py --from-results bench-results docs/bench/2026-12-10.json
        first builds that data file from a scripts/bench-load.sh output directory (its
        per-cell tiles.py JSON files and *.rss.tsv files), then draws it

The chart: one group of horizontal bars per source image, one bar per server, the bulk burst
on a cold server (seconds, log scale), the value printed at each bar. The data file format is
the one of docs/bench/2026-12-04.json: "rows", each with "source", "image" and "servers", each
server with "server", "bulk_cold_s", "mirador_cold_s", "peak_rss_mib" (and optionally
"bulk_warm_s", "server_cpu_s", "note", "failed").
"""

import argparse
import glob
import json
import math
import os
import re
import sys
from xml.sax.saxutils import escape

# ------------------------------------------------------------------ results -> data

# The kit's image ids, in the order the chart shows them, and what they are.
KNOWN_IMAGES = {
    "big-pyr-jpeg.tif": ("pyramidal JPEG TIFF", "RGB Q90, 256 tiles, 201 MB"),
    "big-pyr-deflate.tif": ("pyramidal Deflate TIFF", "Deflate + predictor, 256 tiles, 516 MB"),
    "big.jp2": ("JPEG 2000", "1024 tiles, 7 levels, 79 MB"),
    "big.jpg": ("flat JPEG", "Q90, 62 MB, first access included"),
    "big.png": ("flat PNG", "636 MB, first access included"),
}

# bench-load.sh's peer names -> the names the chart shows, in legend order.
SERVER_NAMES = {
    "ours": "tower-iiif",
    "iipsrv": "iipsrv",
    "iiif-processor-tuned": "iiif-processor tuned",
    "iiif-processor": "iiif-processor stock",
}

# bench-load.sh names a cell <image id with . as _>--<peer>-<cold|warm>[-t<tile>].
CELL_RE = re.compile(r"^(?P<img>.+)--(?P<peer>.+)-(?P<cache>cold|warm)(?:-t(?P<tile>\d+))?$")


def source_kind(image):
    if image in KNOWN_IMAGES:
        return KNOWN_IMAGES[image]
    low = image.lower()
    for ext, kind in ((".jp2", "JPEG 2000"), (".j2k", "JPEG 2000"), (".tif", "TIFF"), (".tiff", "TIFF"),
                      (".jpg", "JPEG"), (".jpeg", "JPEG"), (".png", "PNG")):
        if low.endswith(ext):
            return kind, image
    return image, ""


def bulk_wall(cell):
    for m in cell.get("median") or []:
        if m.get("phase", "").startswith("bulk"):
            return m.get("wall_s")
    return None


def read_rss(path):
    """bench-load.sh's <cell>.rss.tsv: name, label, cache, peak KiB, processes, samples, peer, CPU s."""
    try:
        with open(path) as f:
            cols = f.readline().rstrip("\n").split("\t")
    except OSError:
        return None, None
    peak = float(cols[3]) / 1024 if len(cols) > 3 and cols[3] else None
    cpu = float(cols[7]) if len(cols) > 7 and cols[7] not in ("", "?") else None
    return peak, cpu


def r2(x):
    return None if x is None else round(x, 2)


def data_from_results(results_dir):
    """One data file from the cells of a bench-load.sh output directory."""
    cells = {}  # (image, server) -> {"cold": json, "warm": json, rss...}
    when, cpus = [], set()
    files = sorted(glob.glob(os.path.join(results_dir, "*.json")))
    if not files:
        sys.exit(f"bench-chart: no *.json cell files in {results_dir}")
    for fn in files:
        name = os.path.basename(fn)[: -len(".json")]
        m = CELL_RE.match(name)
        if not m:
            print(f"bench-chart: skipping {fn} (not a bench-load.sh cell name)", file=sys.stderr)
            continue
        with open(fn) as f:
            d = json.load(f)
        image = d.get("id") or m["img"]
        peer = m["peer"]
        server = SERVER_NAMES.get(peer, peer)
        tile = m["tile"] or str(d.get("tile") or "")
        if tile and tile != "512" and d.get("mode") != "failed":
            server += f" (tile {tile})"
        c = cells.setdefault((image, server), {"peer": peer})
        c[m["cache"]] = d
        peak, cpu = read_rss(os.path.join(results_dir, name + ".rss.tsv"))
        if peak is not None:
            c["rss"] = max(c.get("rss", 0), peak)
        if m["cache"] == "cold" and cpu is not None:
            c["cpu"] = cpu
        if d.get("when"):
            when.append(d["when"])
        if d.get("cpus"):
            cpus.add(d["cpus"])

    order_img = list(KNOWN_IMAGES)
    order_srv = list(SERVER_NAMES.values())

    def img_key(i):
        return (order_img.index(i) if i in order_img else len(order_img), i)

    def srv_key(s):
        base = s.split(" (tile")[0]
        return (order_srv.index(base) if base in order_srv else len(order_srv), s)

    rows = []
    for image in sorted({i for i, _ in cells}, key=img_key):
        kind, detail = source_kind(image)
        servers = []
        for server in sorted((s for i, s in cells if i == image), key=srv_key):
            c = cells[(image, server)]
            cold, warm = c.get("cold"), c.get("warm")
            entry = {"server": server,
                     "bulk_cold_s": r2(bulk_wall(cold)) if cold else None,
                     "mirador_cold_s": r2(cold.get("mirador_total_median_s")) if cold else None,
                     "bulk_warm_s": r2(bulk_wall(warm)) if warm else None,
                     "server_cpu_s": c.get("cpu"),
                     "peak_rss_mib": round(c["rss"]) if c.get("rss") else None}
            failed = [d.get("failed") for d in (cold, warm) if d and d.get("failed")]
            if failed:
                entry["failed"] = failed[0]
            servers.append(entry)
        rows.append({"source": kind, "image": image, "detail": detail, "servers": servers})

    date = max(when)[:10] if when else ""
    runs = sorted({len(d["runs"]) for c in cells.values() for k in ("cold", "warm")
                   if (d := c.get(k)) and d.get("mode") != "failed"})
    return {
        "title": "Bulk tile burst, cold server: tower-iiif against its peers",
        "date": date,
        "machine": (", ".join(f"{n} CPUs" for n in sorted(cpus)) + "; every server on loopback") if cpus else "",
        "workload": "bulk = every tile at scaleFactor 4, 10 concurrent clients; cold = server restarted "
                    f"before every run; medians of {'/'.join(map(str, runs)) or '?'} runs",
        "built_from": os.path.abspath(results_dir),
        "rows": rows,
    }


# ------------------------------------------------------------------ data -> SVG

PALETTE = {
    "tower-iiif": "#d9480f",
    "iipsrv": "#1c7ed6",
    "iiif-processor tuned": "#5c940d",
    "iiif-processor stock": "#868e96",
}
LEGEND_NAMES = {"iipsrv": "iipsrv (IIPImage)"}
EXTRA_COLOURS = ["#7048e8", "#e64980", "#0c8599", "#f59f00", "#495057"]


def fmt_s(v):
    if v >= 100:
        return f"{v:.0f} s"
    return f"{v:.2f} s"


def tick_label(e):
    v = 10.0 ** e
    return f"{v:g}" if e >= 0 else f"{v:.{-e}f}"


def draw(data):
    rows = data["rows"]
    servers = []
    for r in rows:
        for s in r["servers"]:
            if s["server"] not in servers:
                servers.append(s["server"])
    colours, extra = {}, iter(EXTRA_COLOURS)
    for s in servers:
        colours[s] = PALETTE.get(s) or next(extra, "#495057")  # a tile-size variant gets its own

    values = [s["bulk_cold_s"] for r in rows for s in r["servers"] if s.get("bulk_cold_s")]
    if not values:
        sys.exit("bench-chart: no bulk_cold_s figure to draw")
    lo = math.floor(math.log10(min(values))) - 1  # bars start one decade below the fastest
    hi = math.ceil(math.log10(max(values)))
    if hi <= lo:
        hi = lo + 1

    # geometry
    width, left, right = 960, 250, 80
    top = 92
    bar_h, bar_gap, group_gap = 20, 4, 18
    plot_w = width - left - right
    legend_h = 34

    def x_of(v):
        return left + (math.log10(v) - lo) / (hi - lo) * plot_w

    y = top
    layout = []
    for r in rows:
        n = len(r["servers"])
        gh = n * bar_h + (n - 1) * bar_gap
        layout.append((r, y, gh))
        y += gh + group_gap
    plot_bottom = y - group_gap + 8
    height = plot_bottom + 46 + legend_h + 14

    out = []
    a = out.append
    a(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
      f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="13">')
    title = data.get("title") or "Bulk tile burst, cold server"
    a(f'<title>{escape(title)}</title>')
    a(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>')
    a(f'<text x="{width / 2}" y="28" text-anchor="middle" font-size="17" font-weight="bold" '
      f'fill="#212529">{escape(title)}</text>')
    sub = data.get("subtitle") or \
        "91 tiles of 512 at scaleFactor 4, 10 concurrent clients, server restarted before every run"
    if data.get("date"):
        sub += f" — {data['date']}"
    a(f'<text x="{width / 2}" y="50" text-anchor="middle" font-size="12.5" fill="#495057">{escape(sub)}</text>')
    if data.get("machine"):
        a(f'<text x="{width / 2}" y="68" text-anchor="middle" font-size="12" fill="#868e96">'
          f'{escape(data["machine"])}</text>')

    # grid: decades, with 2x and 5x minor lines
    for e in range(lo, hi + 1):
        x = x_of(10.0 ** e)
        a(f'<line x1="{x:.1f}" y1="{top - 8}" x2="{x:.1f}" y2="{plot_bottom}" stroke="#ced4da" stroke-width="1"/>')
        a(f'<text x="{x:.1f}" y="{plot_bottom + 17}" text-anchor="middle" fill="#495057">{tick_label(e)}</text>')
        if e < hi:
            for k in (2, 5):
                xm = x_of(k * 10.0 ** e)
                a(f'<line x1="{xm:.1f}" y1="{top - 8}" x2="{xm:.1f}" y2="{plot_bottom}" stroke="#f1f3f5" '
                  f'stroke-width="1"/>')
    a(f'<text x="{left + plot_w / 2}" y="{plot_bottom + 38}" text-anchor="middle" fill="#212529">'
      f'bulk burst wall time, seconds (median; log scale; shorter is faster)</text>')

    # bars
    for r, gy, gh in layout:
        cy = gy + gh / 2
        a(f'<text x="{left - 12}" y="{cy - 3:.1f}" text-anchor="end" font-weight="bold" fill="#212529">'
          f'{escape(r["source"])}</text>')
        second = r.get("image", "")
        a(f'<text x="{left - 12}" y="{cy + 13:.1f}" text-anchor="end" font-size="11.5" fill="#868e96">'
          f'{escape(second)}</text>')
        by = gy
        for s in r["servers"]:
            v = s.get("bulk_cold_s")
            name = s["server"]
            if v:
                x1 = x_of(v)
                a(f'<rect x="{left}" y="{by}" width="{max(x1 - left, 1):.1f}" height="{bar_h}" '
                  f'fill="{colours[name]}"><title>{escape(name)}: {fmt_s(v)}</title></rect>')
                a(f'<text x="{x1 + 5:.1f}" y="{by + bar_h / 2 + 4.5:.1f}" fill="#212529">{fmt_s(v)}</text>')
            else:
                why = "failed" if s.get("failed") else "not measured"
                a(f'<text x="{left + 5}" y="{by + bar_h / 2 + 4.5:.1f}" font-style="italic" fill="#868e96">'
                  f'{escape(name)}: {why}</text>')
            by += bar_h + bar_gap
    a(f'<line x1="{left}" y1="{top - 8}" x2="{left}" y2="{plot_bottom}" stroke="#495057" stroke-width="1.2"/>')

    # legend, centred under the axis label
    ly = plot_bottom + 46 + 12
    items = [(s, 18 + 8 + 6.6 * len(LEGEND_NAMES.get(s, s)) + 28) for s in servers]
    total = sum(w for _, w in items)
    lx = left + plot_w / 2 - total / 2
    for s, w in items:
        a(f'<rect x="{lx:.1f}" y="{ly}" width="18" height="14" fill="{colours[s]}"/>')
        a(f'<text x="{lx + 24:.1f}" y="{ly + 11.5}" fill="#212529">{escape(LEGEND_NAMES.get(s, s))}</text>')
        lx += w
    a('</svg>')
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="data JSON to draw (with --from-results: to write first)")
    p.add_argument("--from-results", metavar="DIR",
                   help="build the data JSON from a scripts/bench-load.sh output directory first")
    p.add_argument("--svg", help="SVG to write (default: the data file's name with .svg)")
    args = p.parse_args()

    if args.from_results:
        data = data_from_results(args.from_results)
        os.makedirs(os.path.dirname(os.path.abspath(args.data)), exist_ok=True)
        with open(args.data, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        print(f"wrote {args.data}")
    else:
        with open(args.data) as f:
            data = json.load(f)

    svg = args.svg or os.path.splitext(args.data)[0] + ".svg"
    with open(svg, "w") as f:
        f.write(draw(data))
    print(f"wrote {svg}")


if __name__ == "__main__":
    main()
