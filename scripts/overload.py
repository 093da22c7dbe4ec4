#!/usr/bin/env python3
"""Overload and soak client for scripts/overload.sh (stdlib only; 127.0.0.1 only).

  overload.py storm  BASE PID SECONDS CONNECTIONS OUT.json IMAGE:KIND [IMAGE:KIND...]
                     (RATE=N in the environment: open loop, N requests a second whatever
                     the answers, CONNECTIONS being the most in flight)
  overload.py soak   BASE PID SECONDS CONNECTIONS OUT.json PATH
  overload.py single BASE PID OUT.json NAME PATH [COPIES]

storm: CONNECTIONS threads, each sending distinct renders (every URL different, so no cache
       can answer) of the images for SECONDS; KIND is `flat` (full-resolution 512x512 regions
       of a large flat image) or `pyramid` (512x512 regions at random levels); meanwhile a
       probe asks info.json every 100 ms. Reports 200/503/other counts, the latencies of the
       accepted renders and of the info.json probes, the Retry-After values, and RSS.
soak:  CONNECTIONS threads asking one uncached render over and over for SECONDS; RSS every
       second, summarised per minute.
verdict: OUT.json LIMIT_MIB: "ok ..." or "FAIL ..." for a single run: every answer 200, 400 or
        503, and the peak RSS (VmHWM) within LIMIT_MIB.
single: COPIES (default 1) concurrent requests of PATH (`{x}`, `{y}` in it: multiples of 100
        below 3400 and 2000, a different pair per copy); status, time and peak RSS.

RSS is sampled from /proc/PID/status (VmRSS) every 100 ms; VmHWM gives the process's peak.
"""

import http.client
import json
import os
import random
import statistics
import sys
import threading
import time
from urllib.parse import urlparse


def rss_kib(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler(threading.Thread):
    """VmRSS every 100 ms while running: (seconds since start, KiB)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], threading.Event()
        self.start_time = time.monotonic()

    def run(self):
        while not self.stop.is_set():
            kib = rss_kib(self.pid)
            if kib is not None:
                self.samples.append((time.monotonic() - self.start_time, kib))
            time.sleep(0.1)

    def peak_mib(self):
        return max((k for _, k in self.samples), default=0) / 1024


class Client:
    """One keep-alive connection, reopened after errors."""

    def __init__(self, base):
        u = urlparse(base)
        if u.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("overload.py only talks to 127.0.0.1")
        self.host, self.port, self.prefix = u.hostname, u.port, u.path.rstrip("/")
        self.conn = None

    def get(self, path, timeout=120):
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
                started = time.monotonic()
                self.conn.request("GET", self.prefix + path)
                res = self.conn.getresponse()
                body = res.read()
                took = time.monotonic() - started
                return res.status, took, res.getheader("Retry-After"), len(body)
            except (OSError, http.client.HTTPException):
                self.conn = None
                if attempt:
                    return 0, 0.0, None, 0
        return 0, 0.0, None, 0


def info(base, image):
    """The image's width and height, from its info.json."""
    u = urlparse(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    c.request("GET", u.path.rstrip("/") + f"/{image}/info.json")
    doc = json.loads(c.getresponse().read())
    return doc["width"], doc["height"]


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return round(values[k], 3)


def storm(base, pid, seconds, connections, out, specs, rate=None):
    images = []
    for spec in specs:
        image, kind = spec.split(":")
        w, h = info(base, image)
        images.append((image, kind, w, h))
    sampler = RssSampler(pid)
    sampler.start()
    deadline = time.monotonic() + seconds
    results, probes, lock = [], [], threading.Lock()
    counter = iter(range(10**9))

    def url(rng):
        image, kind, w, h = rng.choice(images)
        n = next(counter)
        if kind == "flat":
            x, y = rng.randrange(0, w - 512), rng.randrange(0, h - 512)
            return f"/{image}/{x},{y},512,512/max/0/default.jpg"
        # A 512x512 output of a region 1x..64x as large: any level of the pyramid.
        scale = 2 ** rng.randrange(0, 7)
        side = min(512 * scale, w, h)
        x, y = rng.randrange(0, w - side + 1), rng.randrange(0, h - side + 1)
        return f"/{image}/{x},{y},{side},{side}/{512 - n % 7},/0/default.jpg"

    start = time.monotonic()
    slots = iter(range(10**9))

    def worker(i):
        rng, client = random.Random(i), Client(base)
        while time.monotonic() < deadline:
            if rate:
                # Open loop: the next request of the schedule, at its time.
                with lock:
                    at = start + next(slots) / rate
                if at >= deadline:
                    break
                time.sleep(max(0.0, at - time.monotonic()))
            status, took, retry, _ = client.get(url(rng))
            with lock:
                results.append((status, took, retry))
            if status == 503 and not rate:
                time.sleep(0.05)  # a client that backs off a little, not per Retry-After

    def prober():
        client = Client(base)
        image = images[0][0]
        while time.monotonic() < deadline:
            status, took, _, _ = client.get(f"/{image}/info.json")
            with lock:
                probes.append((status, took))
            time.sleep(0.1)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    threads.append(threading.Thread(target=prober))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sampler.stop.set()
    sampler.join()
    ok = [t for s, t, _ in results if s == 200]
    retry = [int(r) for s, _, r in results if s == 503 and r and r.isdigit()]
    counts = {}
    for s, _, _ in results:
        counts[str(s)] = counts.get(str(s), 0) + 1
    report = {
        "mode": "storm",
        "images": specs,
        "seconds": seconds,
        "connections": connections,
        "rate_per_s": rate,
        "requests": len(results),
        "throughput_200_per_s": round(len(ok) / seconds, 2),
        "status": counts,
        "accepted_p50_s": pct(ok, 50),
        "accepted_p99_s": pct(ok, 99),
        "accepted_max_s": pct(ok, 100),
        "retry_after_s": {"min": min(retry, default=None), "median": pct(retry, 50),
                          "max": max(retry, default=None)},
        "info_requests": len(probes),
        "info_non_200": sum(1 for s, _ in probes if s != 200),
        "info_p50_ms": round(1000 * (pct([t for _, t in probes], 50) or 0), 1),
        "info_p99_ms": round(1000 * (pct([t for _, t in probes], 99) or 0), 1),
        "rss_peak_mib": round(sampler.peak_mib(), 1),
        "rss_hwm_mib": round((rss_kib(pid, "VmHWM") or 0) / 1024, 1),
    }
    write(out, report)


def soak(base, pid, seconds, connections, out, path):
    sampler = RssSampler(pid)
    sampler.start()
    deadline = time.monotonic() + seconds
    results, lock = [], threading.Lock()

    def worker():
        client = Client(base)
        while time.monotonic() < deadline:
            status, took, _, _ = client.get(path)
            with lock:
                results.append((status, took))

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sampler.stop.set()
    sampler.join()
    minutes = {}
    for at, kib in sampler.samples:
        if at >= seconds:  # the moment after the load: not a minute of the soak
            continue
        minutes.setdefault(int(at // 60), []).append(kib / 1024)
    per_minute = [round(statistics.mean(v), 1) for _, v in sorted(minutes.items())]
    counts = {}
    for s, _ in results:
        counts[str(s)] = counts.get(str(s), 0) + 1
    second, last = (per_minute[1], per_minute[-1]) if len(per_minute) > 1 else (None, None)
    report = {
        "mode": "soak",
        "path": path,
        "seconds": seconds,
        "connections": connections,
        "requests": len(results),
        "status": counts,
        "p50_s": pct([t for s, t in results if s == 200], 50),
        "p99_s": pct([t for s, t in results if s == 200], 99),
        "rss_mean_per_minute_mib": per_minute,
        "rss_last_vs_second_minute": round(last / second, 3) if second else None,
        "rss_peak_mib": round(sampler.peak_mib(), 1),
        "rss_hwm_mib": round((rss_kib(pid, "VmHWM") or 0) / 1024, 1),
    }
    write(out, report)


def single(base, pid, out, name, path, copies=1):
    sampler = RssSampler(pid)
    sampler.start()
    results, lock = [], threading.Lock()

    def one(i):
        # `{x}` and `{y}` in the path: a different region per copy, within 3400 x 2000.
        x, y = 100 * (i % 34), 100 * (i // 34 % 20)
        status, took, retry, size = Client(base).get(
            path.replace("{x}", str(x)).replace("{y}", str(y)), timeout=300)
        with lock:
            results.append((status, round(took, 2), retry, size))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(0.3)
    sampler.stop.set()
    sampler.join()
    report = {
        "mode": "single",
        "name": name,
        "path": path,
        "copies": copies,
        "answers": [{"status": s, "seconds": t, "retry_after": r, "bytes": b}
                    for s, t, r, b in results],
        "rss_peak_mib": round(sampler.peak_mib(), 1),
        "rss_hwm_mib": round((rss_kib(pid, "VmHWM") or 0) / 1024, 1),
    }
    write(out, report)


def write(out, report):
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report))


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    mode = argv[1]
    if mode == "storm":
        base, pid, seconds, conns, out, *specs = argv[2:]
        rate = float(os.environ["RATE"]) if os.environ.get("RATE") else None
        storm(base, int(pid), float(seconds), int(conns), out, specs, rate)
    elif mode == "soak":
        base, pid, seconds, conns, out, path = argv[2:]
        soak(base, int(pid), float(seconds), int(conns), out, path)
    elif mode == "single":
        base, pid, out, name, path, *copies = argv[2:]
        single(base, int(pid), out, name, path, int(copies[0]) if copies else 1)
    elif mode == "verdict":
        verdict(argv[2], float(argv[3]))
    else:
        raise SystemExit(__doc__)


def verdict(path, limit):
    r = json.load(open(path))
    statuses = sorted({a["status"] for a in r["answers"]})
    bad = [s for s in statuses if s not in (200, 400, 503)]
    ok = r["rss_hwm_mib"] <= limit and not bad
    print(("ok" if ok else "FAIL") + f" {r['name']} x{r['copies']}: statuses {statuses}, "
          f"peak RSS {r['rss_hwm_mib']} MiB (limit {limit:g})")


if __name__ == "__main__":
    main(sys.argv)
