#!/usr/bin/env bash
# Overload and soak, measured (the hardening issue's item 6): the demo server (release build,
# default memory ceiling 512 MiB and queue wait 5 s, no derivative cache) driven by
# scripts/overload.py on 127.0.0.1, its RSS sampled every 100 ms. Not part of the test command
# (it runs for about 16 minutes); the figures go to docs/RELIABILITY.md.
#
#   scripts/overload.sh              every phase
#   scripts/overload.sh singles      the issue's single-request storms only
#   scripts/overload.sh storm        calibration, then the 10x overload only
#   scripts/overload.sh soak         the soak only (SOAK_SECONDS, default 600)
#   scripts/overload.sh check        in the test command: the memory storms on the demo's
#                                    sample image only (no kit needed), each on a fresh server,
#                                    failing if the peak RSS passes RSS_LIMIT_MIB (default 768:
#                                    the 512 MiB ceiling + 256 MiB of overhead)
#
# Phases:
#   singles  each of the issue's memory storms on a fresh server: an upscale to ^16383,16383;
#            ^11585,11585 rotated 45 degrees to PNG; four concurrent upscales; 200 concurrent
#            full-resolution 512x512 regions of the 25167x12483 flat JPEG. Status, seconds, peak RSS.
#   storm    calibration (2 connections, closed loop, 20 s per image: the renders a second the
#            server sustains), then 10x that rate open loop for 60 s per image (distinct
#            renders: full-resolution regions of the flat JPEG, regions at every level of the
#            pyramidal TIFF), info.json probed every 100 ms meanwhile.
#   soak     one uncached tile of the pyramid at 20 connections for SOAK_SECONDS; RSS per minute.
#
# Needs the shared benchmark kit's big images (../shared/bench or BENCH_KIT; `ONLY=big
# ./make-images.sh`: big.jpg and big-pyr-jpeg.tif are used). Writes target/overload/*.json.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
KIT=${BENCH_KIT:-$ROOT/../shared/bench}
OUT=$ROOT/target/overload
DIR=$OUT/images
PORT=${PORT:-8290}
BASE=http://127.0.0.1:$PORT/iiif/3
SERVE=$ROOT/target/release/examples/serve
SOAK_SECONDS=${SOAK_SECONDS:-600}
PHASE=${1:-all}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ $PHASE != check ]]; then
    for f in big.jpg big-pyr-jpeg.tif; do
        [[ -s $KIT/images/$f && $(stat -c %s "$KIT/images/$f") -gt 1000 ]] ||
            { echo "missing $KIT/images/$f: run ONLY=big ./make-images.sh in the kit" >&2; exit 1; }
    done
fi
log "cargo build --release --features axum,s3,http,redis --example serve"
cargo build --release --features axum,s3,http,redis --example serve --quiet
mkdir -p "$DIR"
if [[ $PHASE != check ]]; then
    # Hard links or copies: the file source follows no symbolic link.
    for f in big.jpg big-pyr-jpeg.tif; do
        [[ -e $DIR/$f && ! -L $DIR/$f ]] || { rm -f "$DIR/$f"; ln "$KIT/images/$f" "$DIR/$f" 2>/dev/null || cp "$KIT/images/$f" "$DIR/$f"; }
    done
fi

PID=
start() {
    "$SERVE" --addr "127.0.0.1:$PORT" --samples "$DIR" --cache-mem 0 "$@" >"$OUT/serve.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "$BASE/landscape/info.json" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "the server did not start: $(tail -3 "$OUT/serve.log")" >&2
    exit 1
}
stop() {
    [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    PID=
}
trap stop EXIT

py() { python3 "$ROOT/scripts/overload.py" "$@"; }

if [[ $PHASE == all || $PHASE == singles ]]; then
    singles=(
        "upscale-16383 /landscape/full/^16383,16383/0/default.jpg 1"
        "upscale-11585-rot45-png /landscape/full/^11585,11585/45/default.png 1"
        "four-upscales /landscape/full/^16383,16383/0/default.jpg 4"
        "flat-regions-200 /big.jpg/{x},{y},512,512/max/0/default.jpg 200"
    )
    for s in "${singles[@]}"; do
        read -r name path copies <<<"$s"
        start
        log "single: $name x$copies"
        py single "$BASE" "$PID" "$OUT/single-$name.json" "$name" "$path" "$copies" >/dev/null
        stop
    done
fi

if [[ $PHASE == check ]]; then
    limit=${RSS_LIMIT_MIB:-768}
    checks=(
        "upscale-16383 /landscape/full/^16383,16383/0/default.jpg 1"
        "upscale-11585-rot45-png /landscape/full/^11585,11585/45/default.png 1"
        "four-upscales /landscape/full/^16383,16383/0/default.jpg 4"
        "regions-200 /landscape/{x},{y},512,512/max/0/default.png 200"
    )
    failed=0
    for s in "${checks[@]}"; do
        read -r name path copies <<<"$s"
        start
        py single "$BASE" "$PID" "$OUT/check-$name.json" "$name" "$path" "$copies" >/dev/null
        stop
        verdict=$(python3 "$ROOT/scripts/overload.py" verdict "$OUT/check-$name.json" "$limit")
        log "$verdict"
        [[ $verdict == ok* ]] || failed=1
    done
    exit $failed
fi

if [[ $PHASE == all || $PHASE == storm ]]; then
    for spec in big.jpg:flat big-pyr-jpeg.tif:pyramid; do
        name=${spec%%:*}
        start
        log "calibrate: $spec"
        py storm "$BASE" "$PID" 20 2 "$OUT/calibrate-$name.json" "$spec" >/dev/null
        rate=$(python3 -c "import json,sys; print(max(0.5, 10 * json.load(open(sys.argv[1]))['throughput_200_per_s']))" "$OUT/calibrate-$name.json")
        log "storm: $spec at $rate requests/s (10x)"
        RATE=$rate py storm "$BASE" "$PID" 60 400 "$OUT/storm-$name.json" "$spec" >/dev/null
        stop
    done
fi

if [[ $PHASE == all || $PHASE == soak ]]; then
    start
    log "soak: $SOAK_SECONDS s"
    py soak "$BASE" "$PID" "$SOAK_SECONDS" 20 "$OUT/soak.json" \
        "/big-pyr-jpeg.tif/4096,4096,2048,2048/512,/0/default.jpg" >/dev/null
    stop
fi

python3 - "$OUT" <<'EOF'
import glob, json, os, sys
out = sys.argv[1]
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    r = json.load(open(path))
    name = os.path.basename(path)[:-5]
    if r["mode"] == "single":
        st = sorted({a["status"] for a in r["answers"]})
        secs = max(a["seconds"] for a in r["answers"])
        print(f"{name}: status {st}, slowest {secs} s, RSS peak {r['rss_peak_mib']} MiB")
    elif r["mode"] == "storm":
        print(f"{name}: {r['requests']} requests {r['status']}, 200/s {r['throughput_200_per_s']}, "
              f"accepted p50 {r['accepted_p50_s']} s p99 {r['accepted_p99_s']} s, "
              f"Retry-After {r['retry_after_s']}, info.json p50 {r['info_p50_ms']} ms "
              f"p99 {r['info_p99_ms']} ms, RSS peak {r['rss_peak_mib']} MiB")
    else:
        print(f"{name}: {r['requests']} requests {r['status']}, p50 {r['p50_s']} s p99 {r['p99_s']} s, "
              f"RSS per minute {r['rss_mean_per_minute_mib']} MiB, last/second "
              f"{r['rss_last_vs_second_minute']}, peak {r['rss_peak_mib']} MiB")
EOF
