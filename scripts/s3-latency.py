#!/usr/bin/env python3
"""Latency of single requests to the local S3 server, one after the other or with idle gaps.

Sends signed (SigV4) HEADs and ranged GETs of one object over one kept-alive connection, COUNT
of each per gap, and prints the median and 10th percentile per request. A gap of 0 sends each
request as soon as the last one is answered; a gap of 20 ms lets both cores go idle between
requests, as they are between the steps of opening a file (docs/BENCHMARKS.md, 2026-12-08).

Reads the server's address and credentials from target/servers/env (scripts/servers.sh start)
and goes through the logging proxy (TOWER_IIIF_S3_ENDPOINT), as our server does. Standard
library only.

    scripts/s3-latency.py [--key bench/big-pyr-jpeg.tif] [--range 145900000-145965535]
                          [--count 40] [--gaps 0,20,0]

Pin it as the benchmark pins our server (the store being on the other CPU), e.g.
`taskset -c 0 scripts/s3-latency.py`.
"""

import argparse
import datetime
import hashlib
import hmac
import http.client
import os
import statistics
import sys
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v
    return env


def signed_headers(env, host, method, path, extra):
    """SigV4 headers for an unsigned-payload request (what curl's --aws-sigv4 sends); `path`
    as sent, already escaped."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    h = {"host": host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": amz}
    h.update({k.lower(): v for k, v in extra.items()})
    names = sorted(h)
    canonical = "\n".join([
        method, path, "",
        "".join(f"{k}:{h[k]}\n" for k in names), ";".join(names), "UNSIGNED-PAYLOAD",
    ])
    region = env["AWS_REGION"]
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join([
        "AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(canonical.encode()).hexdigest(),
    ])
    key = ("AWS4" + env["AWS_SECRET_ACCESS_KEY"]).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    h["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={env['AWS_ACCESS_KEY_ID']}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return h


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--key", default="bench/big-pyr-jpeg.tif", help="object key in the bucket")
    p.add_argument("--range", default="145900000-145965535",
                   help="the GETs' byte range, FIRST-LAST (default: 64 KiB inside one 1 MiB block)")
    p.add_argument("--count", type=int, default=40, help="requests of each kind per gap")
    p.add_argument("--gaps", default="0,20,0", help="idle gaps in ms, comma-separated")
    p.add_argument("--env", default=os.path.join(ROOT, "target/servers/env"))
    args = p.parse_args()

    env = load_env(args.env)
    host = urllib.parse.urlsplit(env["TOWER_IIIF_S3_ENDPOINT"]).netloc
    # Escaped once: the request line and the signature must agree.
    path = urllib.parse.quote(f"/{env['TOWER_IIIF_S3_BUCKET']}/{args.key}")
    conn = http.client.HTTPConnection(*host.split(":"))

    def once(method, extra):
        headers = signed_headers(env, host, method, path, extra)
        start = time.perf_counter()
        conn.request(method, path, headers=headers)
        res = conn.getresponse()
        res.read()
        if res.status not in (200, 206):
            sys.exit(f"{method} {path}: {res.status}")
        return (time.perf_counter() - start) * 1000

    print("| gap | request | median ms | p10 ms |")
    print("|---|---|---|---|")
    for gap in (float(g) for g in args.gaps.split(",")):
        for method, extra in (("HEAD", {}), ("GET", {"range": f"bytes={args.range}"})):
            times = []
            for _ in range(args.count):
                times.append(once(method, extra))
                if gap:
                    time.sleep(gap / 1000)
            p10 = sorted(times)[len(times) // 10]
            label = method if method == "HEAD" else f"GET {args.range}"
            print(f"| {gap:g} ms | {label} | {statistics.median(times):.2f} | {p10:.2f} |")


if __name__ == "__main__":
    main()
