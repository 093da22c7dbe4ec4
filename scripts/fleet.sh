#!/usr/bin/env bash
# A two-instance fleet of the demo server (examples/serve/) behind an nginx load balancer, on
# the real servers of scripts/servers.sh (Garage S3 behind a logging nginx, Redis), all bound
# to 127.0.0.1. Checks what a fleet needs from the shared tiers, then measures capacity.
#
# Usage: scripts/fleet.sh              (from any directory; takes seconds, at most ~2 minutes)
# Env:   FLEET_OUT=FILE  where the capacity figures go as JSON (default target/fleet.json;
#                        relative paths are from the repository root)
#
# Needs target/servers/env (runs `scripts/servers.sh up`, which starts the servers when it is
# missing or they do not answer; leaves them running) and target/release/examples/serve
# (built when missing).
# Uploads pyr.tif and tiled.jp2 under a unique prefix fleet-<pid>-<time>/ of the bucket and
# starts instances A and B (S3 source on that prefix, Redis derivative cache, admin token),
# and nginx round-robin over both (retrying the other one on error, timeout, 502, 503).
# Checks, one line each (`ok ...` or `FAILED ...`; exit 1 if any failed):
#   a. shared hit: a render made on A is served by B, same bytes, without any S3 GET (only
#      HEADs) and counted in B's iiif_cache_hits_total{tier="redis"};
#   b. purge reaches the fleet: POST /admin/purge/pyr.tif on A is 401 without the token,
#      200 with `purged` >= 1 with it, and B then re-renders (S3 GETs again) within 5 s;
#   c. no lost request: 300 distinct tile requests (JP2 and TIFF) through the balancer,
#      16 clients, B killed with SIGKILL a third of the way through: every one is 200, and
#      both instances had served requests before the kill;
#   d. capacity, A alone, measured directly: renders/s and cache hits/s (200 distinct
#      uncached regions, then the same again, 4 clients; median latencies), S3 requests and
#      bytes per 1,000 cold full-resolution 256px tiles, and the CPU cores. "Cold" means
#      after `POST /admin/purge/{id}` of both images (derivatives and source data): cache
#      keys hold the identifier, not the S3 prefix, so a fresh prefix alone would not do,
#      and `POST /admin/purge` (everything) would empty the Redis tier for everyone else.
# Everything it starts (instances, nginx, temp dirs, uploaded objects, the fleet's Redis
# entries for its identifiers) is stopped or removed on exit, failure included.
# The script is functions called from `main` at the end: bash parses it all before anything
# runs, so an INT/TERM never lands while bash is parsing (bash 5.2 then fails to parse the
# trap and skips the cleanup).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SERVE=target/release/examples/serve
ENV_FILE=target/servers/env
OUT_JSON=${FLEET_OUT:-target/fleet.json}
IDS=(pyr.tif tiled.jp2)
WORK="" PREFIX="" TOKEN="" UPLOADED=() FAILURES=()
PID_A="" PID_B="" PORT_A="" PORT_B="" PORT_LB="" NGINX_STARTED=0 A="" B="" LB=""

log() { echo "fleet.sh: $*"; }
die() {
    echo "fleet.sh: $*" >&2
    exit 1
}
pass() { echo "ok      $*"; }
fail() {
    echo "FAILED  $*"
    FAILURES+=("$*")
}
alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
s3curl() {
    curl -sf --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}
# GET URL into FILE; prints the status (000: no answer).
get() { curl -s -o "$2" -w '%{http_code}' -m 30 "$1" || true; }
# POST to A's admin PATH [with header]; prints the status, the body goes to $WORK/admin.json.
admin_post() { curl -s -o "$WORK/admin.json" -w '%{http_code}' -m 10 -X POST ${2:+-H "$2"} "$A$1" || true; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# The S3 log is shared with everyone using the servers: a mark, then the lines since that
# mark which concern this run's prefix.
s3_mark() { wc -l <"$TOWER_IIIF_S3_LOG"; }
s3_since() {
    tail -n +"$(($1 + 1))" "$TOWER_IIIF_S3_LOG" | grep -F " /$TOWER_IIIF_S3_BUCKET/$PREFIX" || true
}
s3_gets_since() { s3_since "$1" | awk '$1 == "GET"' | wc -l; }

stop_pid() {
    local pid=$1
    alive "$pid" || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        alive "$pid" || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? f id key npid
    set +e
    trap '' INT TERM # finish cleaning up whatever arrives now
    trap - EXIT
    if ((rc != 0)) && [[ -n $WORK ]]; then
        for f in "$WORK"/a.log "$WORK"/b.log "$WORK"/nginx/error.log; do
            [[ -s $f ]] || continue
            echo "--- last lines of ${f#"$WORK"/} ---" >&2
            tail -n 15 "$f" >&2
        done
    fi
    # Derivatives in Redis are keyed by identifier: leave none of this run's behind.
    if alive "$PID_A"; then
        for id in "${IDS[@]}"; do
            curl -s -o /dev/null -m 5 -X POST -H "Authorization: Bearer $TOKEN" "$A/admin/purge/$id"
        done
    fi
    stop_pid "$PID_A"
    stop_pid "$PID_B"
    if ((NGINX_STARTED)) && [[ -s $WORK/nginx/nginx.pid ]]; then
        npid=$(cat "$WORK/nginx/nginx.pid")
        kill -QUIT "$npid" 2>/dev/null
        for _ in $(seq 1 50); do
            kill -0 "$npid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$npid" 2>/dev/null && kill -9 "$npid" 2>/dev/null
    fi
    for key in "${UPLOADED[@]}"; do
        s3curl -o /dev/null -X DELETE "$TOWER_IIIF_S3_DIRECT/$TOWER_IIIF_S3_BUCKET/$key"
    done
    [[ -n $WORK ]] && rm -rf "$WORK"
    exit "$rc"
}

# --- 1. the shared servers and the binary ------------------------------------------------
prepare() {
    scripts/servers.sh up
    set -a
    # shellcheck disable=SC1090
    source "$ENV_FILE"
    set +a
    if [[ ! -x $SERVE ]]; then
        log "cargo build --release --features axum,s3,http,redis --example serve"
        cargo build --release --features axum,s3,http,redis --example serve
    fi
    local tool
    for tool in python3 curl sha256sum; do
        command -v "$tool" >/dev/null || die "$tool is needed"
    done
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
    [[ -x $NGINX ]] || die "nginx is needed (scripts/servers.sh install)"
}

# --- the load generator (standard library only) ------------------------------------------
write_burst_py() {
    cat >"$WORK/burst.py" <<'PY'
"""GET every URL of a file with N clients; JSON summary on stdout.
usage: burst.py URLS_FILE CLIENTS [KILL_PID KILL_AFTER LB_LOG]
With KILL_PID: SIGKILL it once KILL_AFTER requests are done (noting LB_LOG's line count)."""
import concurrent.futures, json, os, signal, statistics, sys, threading, time, urllib.error, urllib.request

urls = open(sys.argv[1]).read().split()
clients = int(sys.argv[2])
kill_pid = int(sys.argv[3]) if len(sys.argv) > 3 else 0
kill_after = int(sys.argv[4]) if len(sys.argv) > 4 else 0
lb_log = sys.argv[5] if len(sys.argv) > 5 else None
lock = threading.Lock()
state = {"done": 0, "killed_at": None, "lb_lines_at_kill": None}

def maybe_kill():
    if kill_pid and state["killed_at"] is None and state["done"] >= kill_after:
        if lb_log:
            with open(lb_log) as f:
                state["lb_lines_at_kill"] = sum(1 for _ in f)
        os.kill(kill_pid, signal.SIGKILL)
        state["killed_at"] = state["done"]

def fetch(url):
    t0 = time.monotonic()
    size, status = 0, None
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            size, status = len(r.read()), r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except Exception as e:  # resets, truncated bodies, timeouts
        status = f"{type(e).__name__}: {e}"
    dt = time.monotonic() - t0
    with lock:
        state["done"] += 1
        maybe_kill()
    return url, status, dt, size

t0 = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(clients) as pool:
    results = list(pool.map(fetch, urls))
wall = time.monotonic() - t0
lat = sorted(r[2] for r in results)
failures = [(u, s) for u, s, _, _ in results if s != 200]
print(json.dumps({
    "count": len(results),
    "failures": len(failures),
    "failed": [f"{s} {u}" for u, s in failures[:5]],
    "wall_s": round(wall, 3),
    "requests_per_s": round(len(results) / wall, 1),
    "median_ms": round(statistics.median(lat) * 1000, 1),
    "p95_ms": round(lat[int(0.95 * (len(lat) - 1))] * 1000, 1),
    "bytes": sum(r[3] for r in results),
    "killed_after": state["killed_at"],
    "lb_lines_at_kill": state["lb_lines_at_kill"],
}))
PY
}

# --- 2. upload ---------------------------------------------------------------------------
upload() {
    local id
    for id in "${IDS[@]}"; do
        s3curl -o /dev/null -T "$TOWER_IIIF_FILES_ROOT/files/$id" \
            "$TOWER_IIIF_S3_DIRECT/$TOWER_IIIF_S3_BUCKET/$PREFIX$id" ||
            die "cannot upload $id to $TOWER_IIIF_S3_DIRECT/$TOWER_IIIF_S3_BUCKET/$PREFIX$id"
        UPLOADED+=("$PREFIX$id")
    done
    log "uploaded ${IDS[*]} under s3://$TOWER_IIIF_S3_BUCKET/$PREFIX"
}

# --- 3. instances A and B ----------------------------------------------------------------
start_instance() { # NAME PORT; sets STARTED_PID
    local name=$1 port=$2
    mkdir -p "$WORK/samples-$name"
    "$SERVE" --addr "127.0.0.1:$port" \
        --s3 "s3://$TOWER_IIIF_S3_BUCKET/$PREFIX" --s3-endpoint "$TOWER_IIIF_S3_ENDPOINT" \
        --cache-redis "$TOWER_IIIF_REDIS_URL" --admin-token "$TOKEN" \
        --samples "$WORK/samples-$name" >"$WORK/$name.log" 2>&1 &
    STARTED_PID=$!
    disown "$STARTED_PID" # no job notice when c. kills B; still reaped, and stopped on exit
}
wait_health() { # NAME PORT PID
    local deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        alive "$3" || die "instance $1 exited: $(tail -n 5 "$WORK/$1.log")"
        [[ $(get "http://127.0.0.1:$2/health" /dev/null) == 200 ]] && return 0
        sleep 0.1
    done
    die "instance $1 (127.0.0.1:$2) not healthy within 30 s"
}
start_instances() {
    PORT_A=$(free_port)
    PORT_B=$(free_port)
    while [[ $PORT_B == "$PORT_A" ]]; do PORT_B=$(free_port); done
    start_instance a "$PORT_A"
    PID_A=$STARTED_PID
    start_instance b "$PORT_B"
    PID_B=$STARTED_PID
    wait_health a "$PORT_A" "$PID_A"
    wait_health b "$PORT_B" "$PID_B"
    A=http://127.0.0.1:$PORT_A
    B=http://127.0.0.1:$PORT_B
    log "instance A on $A (pid $PID_A), B on $B (pid $PID_B)"
}
# Derivatives are keyed by identifier, not by source key: this drops whatever an earlier run
# left in Redis for these identifiers (and A's memory tier, and B's through pub/sub). Only
# these identifiers: `POST /admin/purge` would empty the Redis tier of everyone else too.
purge_ids() {
    local id
    for id in "${IDS[@]}"; do
        [[ $(admin_post "/admin/purge/$id" "Authorization: Bearer $TOKEN") == 200 ]] ||
            die "POST /admin/purge/$id on A failed: $(cat "$WORK/admin.json" 2>/dev/null)"
    done
}

# --- 4. the load balancer ----------------------------------------------------------------
start_balancer() {
    mkdir -p "$WORK/nginx/tmp"
    PORT_LB=$(free_port)
    cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon on;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    log_format upstream '\$upstream_addr \$status';
    access_log $WORK/nginx/access.log upstream;
    upstream fleet {
        server 127.0.0.1:$PORT_A;
        server 127.0.0.1:$PORT_B;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$PORT_LB;
        location / {
            proxy_pass http://fleet;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 2;
            proxy_connect_timeout 1s;
        }
    }
}
EOF
    NGINX_STARTED=1 # the pid file tells whether it really did
    "$NGINX" -p "$WORK/nginx/" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" ||
        die "nginx did not start"
    LB=http://127.0.0.1:$PORT_LB
    for _ in $(seq 1 50); do
        [[ $(get "$LB/health" /dev/null) == 200 ]] && break
        sleep 0.1
    done
    [[ $(get "$LB/health" /dev/null) == 200 ]] || die "the load balancer on $LB does not answer /health"
    : >"$WORK/nginx/access.log" # count from here
    log "load balancer on $LB"
}

# --- 5a. a render made on A is a hit on B ------------------------------------------------
URL=/iiif/3/pyr.tif/1024,1024,600,500/200,/0/default.jpg
check_shared_hit() {
    local mark status status_b a_gets b_lines b_gets b_heads redis_hits
    mark=$(s3_mark)
    status=$(get "$A$URL" "$WORK/a.jpg")
    a_gets=$(s3_gets_since "$mark")
    mark=$(s3_mark)
    status_b=$(get "$B$URL" "$WORK/b.jpg")
    b_lines=$(s3_since "$mark")
    b_gets=$(awk '$1 == "GET"' <<<"$b_lines" | grep -c . || true)
    b_heads=$(awk '$1 == "HEAD"' <<<"$b_lines" | grep -c . || true)
    redis_hits=$(curl -s -m 5 "$B/metrics" |
        awk '/^iiif_cache_hits_total\{/ && /tier="redis"/ {s += $NF} END {print s + 0}')
    if [[ $status != 200 ]]; then
        fail "a. shared hit: A answered $status to $URL"
    elif ((a_gets == 0)); then
        fail "a. shared hit: A's render of $URL made no S3 GET (cached before this run?)"
    elif [[ $status_b != 200 ]]; then
        fail "a. shared hit: B answered $status_b to $URL"
    elif [[ $(sha "$WORK/a.jpg") != "$(sha "$WORK/b.jpg")" ]]; then
        fail "a. shared hit: B's bytes differ from A's"
    elif ((b_gets > 0)); then
        fail "a. shared hit: B made $b_gets S3 GETs for a derivative A had rendered: $(awk '$1 == "GET" {print $2, $3, $5}' <<<"$b_lines" | head -3 | tr '\n' ';')"
    elif ! awk -v h="$redis_hits" 'BEGIN {exit !(h >= 1)}'; then
        fail "a. shared hit: B's iiif_cache_hits_total{tier=\"redis\"} is $redis_hits"
    else
        pass "a. shared hit: A rendered ($a_gets S3 GETs); B served the same $(stat -c %s "$WORK/b.jpg") bytes with 0 S3 GETs ($b_heads HEADs), redis hits $redis_hits"
    fi
}

# --- 5b. a purge on A reaches B ----------------------------------------------------------
check_purge() {
    local no_token bad_token status purged t0 took mark status_b rerendered=0 tries=0 deadline same
    no_token=$(admin_post /admin/purge/pyr.tif)
    bad_token=$(admin_post /admin/purge/pyr.tif "Authorization: Bearer wrong-$TOKEN")
    status=$(admin_post /admin/purge/pyr.tif "Authorization: Bearer $TOKEN")
    purged=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["purged"]))' \
        "$WORK/admin.json" 2>/dev/null || echo -1)
    if [[ $no_token != 401 || $bad_token != 401 ]]; then
        fail "b. purge: without / with a wrong token A answered $no_token / $bad_token, not 401"
        return
    elif [[ $status != 200 ]] || ((purged < 1)); then
        fail "b. purge: with the token A answered $status $(cat "$WORK/admin.json" 2>/dev/null)"
        return
    fi
    t0=$(date +%s%N)
    deadline=$((SECONDS + 5))
    while ((SECONDS <= deadline)); do
        tries=$((tries + 1))
        mark=$(s3_mark)
        status_b=$(get "$B$URL" "$WORK/b2.jpg")
        if [[ $status_b == 200 ]] && (($(s3_gets_since "$mark") > 0)); then
            rerendered=1
            break
        fi
        sleep 0.2
    done
    took=$((($(date +%s%N) - t0) / 1000000))
    if ((rerendered)); then
        same="same bytes as A's"
        [[ $(sha "$WORK/b2.jpg") == "$(sha "$WORK/a.jpg")" ]] || same="bytes DIFFER from A's render"
        pass "b. purge: 401 without token, 200 {purged: $purged} with it; B re-rendered from S3 on try $tries (${took} ms, $same)"
    else
        fail "b. purge: B never went back to S3 within 5 s ($tries tries, last status $status_b)"
    fi
}

# --- 5c. losing B mid-burst through the balancer -----------------------------------------
check_lose_instance() {
    local x y n lb_at_kill before_kill to_a to_b retried refused cut count failures detail
    {
        for y in $(seq 0 512 2560); do for x in $(seq 0 512 3584); do
            echo "$LB/iiif/3/tiled.jp2/$x,$y,512,512/256,/0/default.jpg"
        done; done
        for y in $(seq 0 1024 2048); do for x in $(seq 0 1024 3072); do
            echo "$LB/iiif/3/tiled.jp2/$x,$y,1024,1024/256,/0/default.jpg"
        done; done
        for y in $(seq 0 256 2816); do for x in $(seq 0 256 3840); do
            echo "$LB/iiif/3/pyr.tif/$x,$y,256,256/256,/0/default.jpg"
        done; done
        for y in $(seq 0 512 2560); do for x in $(seq 0 512 3584); do
            echo "$LB/iiif/3/pyr.tif/$x,$y,512,512/256,/0/default.jpg"
        done; done
    } | python3 -c 'import random,sys; u=sys.stdin.read().split(); random.Random(7).shuffle(u); print("\n".join(u))' \
        >"$WORK/burst.urls"
    n=$(wc -l <"$WORK/burst.urls")
    python3 "$WORK/burst.py" "$WORK/burst.urls" 16 "$PID_B" "$((n / 3))" "$WORK/nginx/access.log" \
        >"$WORK/burst.json"
    for _ in $(seq 1 50); do
        alive "$PID_B" || break
        sleep 0.1
    done
    if alive "$PID_B"; then
        fail "c. lose B mid-burst: B (pid $PID_B) was not killed"
        return
    fi
    local dead=$PID_B
    PID_B=""
    lb_at_kill=$(jget "$WORK/burst.json" lb_lines_at_kill)
    before_kill=$(head -n "$lb_at_kill" "$WORK/nginx/access.log")
    to_a=$(grep -c "^127.0.0.1:$PORT_A " <<<"$before_kill" || true)
    to_b=$(grep -c "^127.0.0.1:$PORT_B " <<<"$before_kill" || true)
    retried=$(grep -c ', ' "$WORK/nginx/access.log" || true)
    refused=$(grep -c 'connect() failed' "$WORK/nginx/error.log" || true)
    cut=$(grep '\[error\]' "$WORK/nginx/error.log" | grep -vc 'connect() failed' || true)
    count=$(jget "$WORK/burst.json" count)
    failures=$(jget "$WORK/burst.json" failures)
    detail="$count requests, 16 clients, $failures failed, $(jget "$WORK/burst.json" wall_s) s wall; B (pid $dead) killed after $(jget "$WORK/burst.json" killed_after) answers, up to then A served $to_a and B $to_b; $retried retried on A ($cut cut mid-request, $refused refused)"
    if ((count != n || failures != 0)); then
        fail "c. lose B mid-burst: $detail; first failures: $(jget "$WORK/burst.json" failed)"
    elif ((to_a == 0 || to_b == 0)); then
        fail "c. lose B mid-burst: not balanced before the kill: $detail"
    else
        pass "c. lose B mid-burst: $detail"
    fi
}

# --- 5d. capacity of A alone -------------------------------------------------------------
capacity() {
    local i j x y mark render_s3 hits_s3 cores
    # (i) renders: 200 distinct regions off the tile grid, scaled to 200 px wide; cold.
    for j in $(seq 0 9); do for i in $(seq 0 19); do
        echo "$A/iiif/3/pyr.tif/$((37 + 170 * i)),$((53 + 250 * j)),600,500/200,/0/default.jpg"
    done; done >"$WORK/render.urls"
    purge_ids
    mark=$(s3_mark)
    python3 "$WORK/burst.py" "$WORK/render.urls" 4 >"$WORK/render.json"
    render_s3=$(s3_since "$mark" | wc -l)
    # (ii) the same again: hits (of the memory tier in front).
    mark=$(s3_mark)
    python3 "$WORK/burst.py" "$WORK/render.urls" 4 >"$WORK/hits.json"
    hits_s3=$(s3_since "$mark" | wc -l)
    # (iii) every stored 256 px tile of pyr.tif at full resolution (16 x 12), cold.
    for y in $(seq 0 256 2816); do for x in $(seq 0 256 3840); do
        echo "$A/iiif/3/pyr.tif/$x,$y,256,256/256,/0/default.jpg"
    done; done >"$WORK/tiles.urls"
    purge_ids
    mark=$(s3_mark)
    python3 "$WORK/burst.py" "$WORK/tiles.urls" 4 >"$WORK/tiles.json"
    s3_since "$mark" >"$WORK/tiles.s3"
    cores=$(nproc)
    mkdir -p "$(dirname "$OUT_JSON")"
    python3 - "$WORK" "$OUT_JSON" "$cores" "$render_s3" "$hits_s3" <<'PY' >"$WORK/capacity.txt"
import json, sys
work, out, cores = sys.argv[1], sys.argv[2], int(sys.argv[3])
render_s3, hits_s3 = int(sys.argv[4]), int(sys.argv[5])
load = lambda name: json.load(open(f"{work}/{name}.json"))
render, hits, tiles = load("render"), load("hits"), load("tiles")
lines = [l.split() for l in open(f"{work}/tiles.s3") if l.strip()]
methods = {}
for l in lines:
    methods[l[0]] = methods.get(l[0], 0) + 1
s3_bytes = sum(int(l[3]) for l in lines if l[3].isdigit())
n = tiles["count"]
keys = ("count", "failures", "requests_per_s", "median_ms", "p95_ms", "wall_s")
fig = {
    "cpu_cores": cores,
    "renders": {k: render[k] for k in keys} | {"clients": 4, "s3_requests": render_s3},
    "cache_hits": {k: hits[k] for k in keys} | {"clients": 4, "s3_requests": hits_s3},
    "s3_per_1000_tiles": {
        "tiles_measured": n,
        "failures": tiles["failures"],
        "requests": round(len(lines) * 1000 / n, 1),
        "by_method": {m: round(c * 1000 / n, 1) for m, c in sorted(methods.items())},
        "bytes": round(s3_bytes * 1000 / n),
        "tile_bytes_served": round(tiles["bytes"] * 1000 / n),
        "tiles_per_s": tiles["requests_per_s"],
    },
}
json.dump(fig, open(out, "w"), indent=2)
r, h, s = fig["renders"], fig["cache_hits"], fig["s3_per_1000_tiles"]
by = ", ".join(f"{m} {c}" for m, c in s["by_method"].items())
print(f"  renders (200 distinct uncached regions, 4 clients): {r['requests_per_s']} req/s, median {r['median_ms']} ms, p95 {r['p95_ms']} ms; {r['s3_requests']} S3 requests")
print(f"  cache hits (the same 200 again, 4 clients):         {h['requests_per_s']} req/s, median {h['median_ms']} ms, p95 {h['p95_ms']} ms; {h['s3_requests']} S3 requests")
print(f"  S3 per 1,000 cold 256 px tiles (from {n}, {s['tiles_per_s']} tiles/s): {s['requests']} requests ({by}), {s['bytes'] / 1e6:.2f} MB (tiles served: {s['tile_bytes_served'] / 1e6:.2f} MB)")
print(f"  CPU cores: {cores}")
PY
    local failed
    failed=$(($(jget "$WORK/render.json" failures) + $(jget "$WORK/hits.json" failures) + $(jget "$WORK/tiles.json" failures)))
    if ((failed == 0)); then
        pass "d. capacity of A alone measured (figures below, JSON in $OUT_JSON)"
    else
        fail "d. capacity: $failed failed requests: $(jget "$WORK/render.json" failed) $(jget "$WORK/hits.json" failed) $(jget "$WORK/tiles.json" failed)"
    fi
}

# The instances log `METHOD PATH STATUS TIME` per request: anything else, and any 5xx.
odd_log_lines() {
    cat "$WORK/a.log" "$WORK/b.log" | grep -v '^listening on ' |
        grep -vE '^[A-Z]+ [^ ]+ [1-4][0-9][0-9] [0-9.]+[a-zµ]*s$' || true
}

main() {
    prepare
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/tower-iiif-fleet.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    PREFIX="fleet-$$-$(date +%s)/"
    TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    write_burst_py
    upload
    start_instances
    purge_ids
    start_balancer
    echo
    check_shared_hit
    check_purge
    check_lose_instance
    capacity

    local odd
    odd=$(odd_log_lines)
    echo
    echo "capacity (A alone):"
    cat "$WORK/capacity.txt"
    if [[ -n $odd ]]; then
        echo
        echo "note: $(grep -c . <<<"$odd") unexpected lines (errors, 5xx) in the instance logs, e.g.:"
        head -n 5 <<<"$odd" | sed 's/^/  /'
    fi
    echo
    if ((${#FAILURES[@]})); then
        echo "fleet.sh: ${#FAILURES[@]} check(s) FAILED"
        exit 1
    fi
    echo "fleet.sh: all checks passed"
}

main "$@"
