#!/usr/bin/env bash
# Traced cold bursts of the bulk workload (91 tiles of 512 at scaleFactor 4, 10 at once), from
# disk and from the local S3 server: each request timed, each store request the burst made (from
# the logging proxy), and our server's CPU time. What a burst's time is made of, where
# scripts/bench-load.sh gives medians only (docs/BENCHMARKS.md).
#
#   scripts/bench-trace.sh                          # 10 bursts from disk, 10 from S3, alternated
#   RUNS=30 MODES=s3 IMAGE=big-pyr-jpeg.tif scripts/bench-trace.sh
#
# Needs the release serve example (cargo build --release --example serve --features "axum s3
# http redis"), the bench kit's image, and the servers of scripts/servers.sh (started when not
# running; the image is uploaded under bench/ as bench-load.sh does). As bench-load.sh's PIN=1,
# our server runs on CPU 0, the client and the servers on CPU 1. Each burst is on a fresh
# server, after another one answered info.json. Writes OUT/<mode>-<n>.json (OUT defaults to
# bench-results/trace) and prints each burst and the medians (bench-trace.py summary).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_KIT=$(cd "${BENCH_KIT:-$ROOT/../shared/bench}" && pwd)
RUNS=${RUNS:-10}
MODES=${MODES:-"disk s3"}
IMAGE=${IMAGE:-big-pyr-jpeg.tif}
PORT=${PORT:-8090}
OUT=${OUT:-$ROOT/bench-results/trace}
SERVE_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/serve"
TRACE="$ROOT/scripts/bench-trace.py"
die() { echo "bench-trace: $*" >&2; exit 1; }

[ -x "$SERVE_BIN" ] || die "$SERVE_BIN missing: cargo build --release --example serve --features \"axum s3 http redis\""
[ -f "$BENCH_KIT/images/$IMAGE" ] || die "$BENCH_KIT/images/$IMAGE missing (the kit's make-images.sh)"
[ "$(nproc)" -ge 2 ] || die "needs two CPUs"
mkdir -p "$OUT"
# shellcheck source=scripts/bench-common.sh
. "$ROOT/scripts/bench-common.sh"
s3_with_images "$IMAGE"
pin_servers 1 # the servers on CPU 1
PID=
stop() {
  if [ -n "$PID" ]; then
    kill "$PID" 2> /dev/null || true
    wait "$PID" 2> /dev/null || true
  fi
  PID=
}
trap 'stop; pin_servers "0-$(($(nproc) - 1))"' EXIT
start() { # disk|s3
  local args=(--images "$BENCH_KIT/images")
  [ "$1" = s3 ] && args=(--s3 "s3://$TOWER_IIIF_S3_BUCKET/bench/" --s3-endpoint "$TOWER_IIIF_S3_ENDPOINT")
  taskset -c 0 "$SERVE_BIN" --addr "127.0.0.1:$PORT" --cache-mem 0 "${args[@]}" > "$OUT/serve.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do (exec 3<> "/dev/tcp/127.0.0.1/$PORT") 2> /dev/null && return; sleep 0.05; done
  die "serve did not start, see $OUT/serve.log"
}
info=$(start disk > /dev/null; curl -sf "http://127.0.0.1:$PORT/iiif/3/$IMAGE/info.json"; stop)
width=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["width"])' "$info")
height=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["height"])' "$info")
for n in $(seq 1 "$RUNS"); do
  for mode in $MODES; do
    start "$mode"; curl -sf -o /dev/null "http://127.0.0.1:$PORT/iiif/3/$IMAGE/info.json"; stop
    start "$mode"
    log=(); [ "$mode" = s3 ] && log=(--s3-log "$TOWER_IIIF_S3_LOG")
    printf '%s %s: ' "$mode" "$n"
    taskset -c 1 python3 "$TRACE" run --port "$PORT" --id "$IMAGE" --width "$width" --height "$height" \
      --pid "$PID" "${log[@]}" --out "$OUT/$mode-$n.json"
    stop
  done
done
for mode in $MODES; do
  echo "== $mode"
  python3 "$TRACE" summary $(for n in $(seq 1 "$RUNS"); do echo "$OUT/$mode-$n.json"; done) | tail -1
done
