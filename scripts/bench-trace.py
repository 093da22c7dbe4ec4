#!/usr/bin/env python3
"""One traced cold burst of the bulk workload (91 tiles of 512 at scaleFactor 4, 10 at once) against
a running server, and what it was made of. Used by scripts/bench-trace.sh; see docs/BENCHMARKS.md.

  bench-trace.py run --port P --id ID --width W --height H --pid SERVER_PID [--s3-log LOG] --out FILE.json
  bench-trace.py summary FILE.json...

run: each request's start and end (client side), the server's CPU time (the sum of its threads'
schedstat run times, sampled every 2 ms) and, with --s3-log, the store requests the burst made
(the logging proxy's lines written during the burst: method, bytes, range, end, duration).
summary: per burst and as medians: when the first tile came back, the wall time, the server's
CPU time, the store requests (all, and before the first tile came back) and bytes, and when
the last store request ended.
"""
import argparse, http.client, json, math, os, re, statistics, sys, threading, time, urllib.parse
from concurrent.futures import ThreadPoolExecutor


def cpu_ns(pid):
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def run(a):
    w, h, s, tile = a.width, a.height, 4, 512
    span = tile * s
    paths = []
    for r in range(math.ceil(h / span)):
        for c in range(math.ceil(w / span)):
            x, y = c * span, r * span
            rw, rh = min(span, w - x), min(span, h - y)
            paths.append(f"/iiif/3/{urllib.parse.quote(a.id, safe='')}/{x},{y},{rw},{rh}/"
                         f"{math.ceil(rw / s)},{math.ceil(rh / s)}/0/default.jpg")
    s3_from = 0
    if a.s3_log:
        with open(a.s3_log) as f:
            s3_from = sum(1 for _ in f)
    local, res, samples, stop = threading.local(), [None] * len(paths), [], [False]

    def sampler():
        while not stop[0]:
            samples.append((time.time(), cpu_ns(a.pid)))
            time.sleep(0.002)

    def one(i):
        c = getattr(local, "c", None)
        if c is None:
            c = local.c = http.client.HTTPConnection("127.0.0.1", a.port)
        t = time.time()
        c.request("GET", paths[i])
        r = c.getresponse()
        n = len(r.read())
        res[i] = (i, t, time.time(), r.status, n)

    th = threading.Thread(target=sampler)
    th.start()
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=10) as ex:
        list(ex.map(one, range(len(paths))))
    t1 = time.time()
    time.sleep(0.2)
    stop[0] = True
    th.join()
    store = []
    if a.s3_log:
        with open(a.s3_log) as f:
            for line in list(f)[s3_from:]:
                p = line.split()
                m = re.search(r'"bytes=(\d+)-(\d+)"', line)
                store.append({"method": p[0], "bytes": int(p[3]), "start": int(m.group(1)) if m else None,
                              "end_s": float(p[-2]) - t0, "dur_s": float(p[-1])})
    with open(a.out, "w") as f:
        json.dump({"t0": t0, "t1": t1, "requests": res, "cpu": samples, "store": store}, f)
    errors = sum(1 for r in res if r[3] != 200)
    print(f"wall {t1 - t0:.3f} s, {errors} errors")
    return 1 if errors else 0


def summary(files):
    rows = []
    for path in files:
        d = json.load(open(path))
        t0 = d["t0"]
        ms = lambda t: 1000 * t
        first_done = min(ms(r[2] - t0) for r in d["requests"])
        cpu = (d["cpu"][-1][1] - d["cpu"][0][1]) / 1e6 if len(d["cpu"]) > 1 else float("nan")
        st = d["store"]
        before = sum(1 for e in st if ms(e["end_s"] - e["dur_s"]) < first_done)
        last = max((ms(e["end_s"]) for e in st), default=float("nan"))
        row = {"first_tile_ms": first_done, "wall_ms": ms(d["t1"] - t0), "cpu_ms": cpu,
               "store_requests": len(st), "before_first_tile": before,
               "store_bytes": sum(e["bytes"] for e in st), "last_store_end_ms": last}
        rows.append(row)
        print(os.path.basename(path) + ": " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                                       for k, v in row.items()))
    if rows:
        print("medians over %d: " % len(rows) + ", ".join(
            f"{k} {statistics.median(r[k] for r in rows):.1f}" for k in rows[0]))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--id", required=True)
    r.add_argument("--pid", type=int, required=True)
    r.add_argument("--width", type=int, required=True)
    r.add_argument("--height", type=int, required=True)
    r.add_argument("--s3-log")
    r.add_argument("--out", required=True)
    s = sub.add_parser("summary")
    s.add_argument("files", nargs="+")
    a = p.parse_args()
    return run(a) if a.cmd == "run" else summary(a.files)


if __name__ == "__main__":
    sys.exit(main() or 0)
