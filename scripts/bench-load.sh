#!/usr/bin/env bash
# Side-by-side load benchmark: our demo server (examples/serve/) against the IIIF peers of
# the shared benchmark kit (IIPImage iipsrv, iiif-processor/sharp), same client (the kit's
# tiles.py), same images, every server on 127.0.0.1 only. Writes bench-results/ (git-ignored):
# one tiles.py JSON per cell, the peak RSS of every cell, wrk throughput on cached tiles, and
# bench-results/SUMMARY.md.
#
#   scripts/bench-load.sh                                   # the whole default matrix
#   PEERS=ours IMAGES=big-pyr-jpeg.tif CACHES=cold RUNS=1 MODE=bulk scripts/bench-load.sh
#   scripts/bench-load.sh serve start|stop|restart|status [cold|warm]   # our server alone
#
# The kit (../shared/bench next to the repository, or BENCH_KIT) must be set up first:
# packages and peers installed, images made (see its README.md, sections 1-2; ONLY=big is
# enough). Cells (image: peers):
#   big-pyr-jpeg.tif     ours, iipsrv (tile 512 forced + native 256), iiif-processor-tuned
#   big.jp2              ours, iipsrv (512 + 256)
#   big.jpg              ours, iiif-processor-tuned      (iipsrv cannot read flat JPEG)
#   big-pyr-deflate.tif  ours, iipsrv (512)
#   big.png              ours only (not in the default IMAGES)
# A cell a server cannot serve (e.g. info.json answers 4xx/5xx) is recorded as an error
# cell and the matrix goes on.
#
# Env knobs:
#   PEERS   ours iipsrv iiif-processor-tuned iiif-processor ours-s3 ours-gateway (default: the first
#           three; iiif-processor = the kit's stock mode, whole file streamed into sharp;
#           ours-s3 = our server reading the same images from the local S3 server of
#           scripts/servers.sh (Garage behind a logging nginx), uploaded under bench/: its
#           cells also record the S3 requests and bytes of each measured run, and the bytes of
#           the stored tiles the run's requests cover, in <cell>.s3.tsv and the summary;
#           ours-gateway = the Islandora gateway example (examples/gateway.rs) at
#           /cantaloupe/iiif/3, reading the same images over HTTP from the stand-in Drupal of
#           scripts/servers.sh (nginx; the images linked under /sites/default/files/bench/),
#           the identifier being the file's URL)
#   IMAGES  image ids (default: big-pyr-jpeg.tif big.jp2 big.jpg big-pyr-deflate.tif)
#   CACHES  cold warm purged (default: cold warm). cold: every measured run restarts the server;
#           ours runs with --cache-mem 0 (no derivative cache). warm: one unmeasured priming
#           pass, then RUNS passes on the same process; ours with its default 256 MiB memory
#           cache. purged (ours and ours-s3 only): a cold image on a running server: as cold,
#           but each measured run follows a purge of the image through the admin route (every
#           cache, the S3 source's metadata and chunks too) instead of a restart, after one
#           unmeasured priming pass, so the process's memory is warm (no first-touch page
#           faults, connections to the store open) while the image is not.
#   RUNS    measured runs per cell (default 3; medians are reported)
#   MODE    bulk | mirador | both (default both)
#   OUR_TILE=512      tile size forced on ours (the article's 91 tiles)
#   IIP_TILES="512 256"  tile sizes for iipsrv on TIFF/JP2 (deflate: the first one only)
#   WRK=1  WRK_PEERS="ours iipsrv"  WRK_IMAGES=big-pyr-jpeg.tif  WRK_DURATION=10s
#   WRK_THREADS=2  WRK_CONNECTIONS=10   cached-tile throughput (warm server, cache primed
#           with the 91 bulk URLs at tile 512); only peers/images also in PEERS/IMAGES
#   OUR_PORT=8090  OUT=bench-results  CLEAN=1 (empty OUT first; otherwise cells of earlier
#           invocations stay in the summary until overwritten)
#   BUILD=0 skip `cargo build --release --example serve`; CARGO_LOCK=<file> build under flock
#   FEATURES  more cargo features for our server (`axum` is always on; the default features,
#           turbojpeg among them, too)
#   SERVE_ARGS  more arguments for our server, e.g. "--jpeg-quality 75" (iipsrv's default)
#   BENCH_KIT  the benchmark kit (default: <repo>/../shared/bench)
#   PIN=1   our server (every ours* peer, from disk as from S3 or Drupal) on CPU 0 alone; the
#           client and the servers of scripts/servers.sh (Garage, nginx, Redis) on CPU 1, put
#           back on every CPU at the end. Models a store on other machines, as it is in any
#           deployment: without it, on two cores, the local store's CPU is counted in our time.
# Peak RSS: VmHWM from /proc/<pid>/status, read just before each server process is stopped
# (ours: the serve process; iipsrv: lighttpd + its iipsrv children, summed; iiif-processor:
# node and its children), max over the processes of the cell (cold runs restart per run).
# The demo server serves the kit's images/ as it is (`--images`): it writes nothing there.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$ROOT/scripts/$(basename "${BASH_SOURCE[0]}")"
BENCH_KIT=$(cd "${BENCH_KIT:-$ROOT/../shared/bench}" && pwd)
OUT=${OUT:-$ROOT/bench-results}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RUNDIR="$OUT/run"
OUR_PORT=${OUR_PORT:-8090}
OUR_BASE="http://127.0.0.1:$OUR_PORT/iiif/3"
PURGE_TOKEN=bench-load   # our server's admin token in purged cells (bound to 127.0.0.1)
IIP_BASE="http://127.0.0.1:${IIP_PORT:-8081}/iiif"
IIIFP_BASE="http://127.0.0.1:${IIIFP_PORT:-8082}/iiif/3"
SERVE_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/serve"
GATEWAY_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/gateway"
# shellcheck source=scripts/bench-common.sh
. "$ROOT/scripts/bench-common.sh"
TILES="$BENCH_KIT/tiles.py"
# IMAGES is also the peers' image-directory knob: keep our list apart and do not pass it on.
IDS=${IMAGES:-"big-pyr-jpeg.tif big.jp2 big.jpg big-pyr-deflate.tif"}
unset IMAGES
PIN=${PIN:-0}
export OUR_PORT BENCH_KIT OUT PIN
# PIN=1: what runs our server, and what runs the client.
SERVE_PIN=(); CLIENT_PIN=()
[ "$PIN" = 1 ] && SERVE_PIN=(taskset -c 0) && CLIENT_PIN=(taskset -c 1)

log() { echo "[$(date +%H:%M:%S)] $*"; }
die() { echo "bench-load: $*" >&2; exit 1; }

# ------------------------------------------------------------------ process helpers

# The pid and all its descendants.
tree_pids() {
  local all=" $1 " changed=1 pid ppid
  while [ $changed = 1 ]; do
    changed=0
    while read -r pid ppid; do
      if [[ $all == *" $ppid "* && $all != *" $pid "* ]]; then all+="$pid "; changed=1; fi
    done < <(ps -e -o pid=,ppid=)
  done
  echo $all
}

# Sum of VmHWM (KiB) over a process tree, its process count and the CPU time (user + system,
# clock ticks, reaped children included) it has used; empty when the process is gone.
tree_hwm_kib() {
  local pid=$1 p sum=0 n=0 v t ticks=0
  kill -0 "$pid" 2>/dev/null || return 0
  for p in $(tree_pids "$pid"); do
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
    [ -n "$v" ] && { sum=$((sum + v)); n=$((n + 1)); }
    # Fields 14-17 of stat (utime stime cutime cstime), counted after the ") " that ends comm.
    t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13 + $14 + $15}' || true)
    [ -n "$t" ] && ticks=$((ticks + t))
  done
  echo "$sum $n $ticks"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ------------------------------------------------------------------ our server

serve_pidfile() { echo "$RUNDIR/serve.pid"; }
serve_running() { local f; f=$(serve_pidfile); [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

serve_start() { # cold|warm
  local cache=${1:-warm} args=()
  if serve_running; then echo "serve already running (pid $(cat "$(serve_pidfile)"))"; return; fi
  [ -x "$SERVE_BIN" ] || die "$SERVE_BIN missing: cargo build --release --example serve"
  port_busy "$OUR_PORT" && die "127.0.0.1:$OUR_PORT is taken by another process"
  mkdir -p "$RUNDIR"
  case $cache in
    cold) args=(--cache-mem 0) ;;
    purged) args=(--cache-mem 0 --admin-token "$PURGE_TOKEN") ;;
  esac
  if [ "${GATEWAY:-0}" = 1 ]; then
    [ -x "$GATEWAY_BIN" ] || die "$GATEWAY_BIN missing: cargo build --release --example gateway"
    GATEWAY_ADDR="127.0.0.1:$OUR_PORT" GATEWAY_DRUPAL_URL="$TOWER_IIIF_DRUPAL_URL" \
      DRUPAL_DEFAULT_CANTALOUPE_URL="http://127.0.0.1:$OUR_PORT/cantaloupe/iiif/2" \
      nohup "${SERVE_PIN[@]}" "$GATEWAY_BIN" "${args[@]}" >> "$RUNDIR/serve.log" 2>&1 &
  else
    if [ "${S3:-0}" = 1 ]; then
      args+=(--s3 "s3://$TOWER_IIIF_S3_BUCKET/bench/" --s3-endpoint "$TOWER_IIIF_S3_ENDPOINT")
    else
      args+=(--images "$BENCH_KIT/images")
    fi
    # shellcheck disable=SC2206 # SERVE_ARGS is split on purpose
    args+=(${SERVE_ARGS:-})
    nohup "${SERVE_PIN[@]}" "$SERVE_BIN" --addr "127.0.0.1:$OUR_PORT" "${args[@]}" \
      >> "$RUNDIR/serve.log" 2>&1 &
  fi
  echo $! > "$(serve_pidfile)"
  for _ in $(seq 100); do port_busy "$OUR_PORT" && break; sleep 0.1; done
  serve_running || die "serve did not start, see $RUNDIR/serve.log"
  echo "serve ($cache) pid $(cat "$(serve_pidfile)") on $OUR_BASE"
}

serve_stop() {
  local f pid; f=$(serve_pidfile)
  if serve_running; then
    pid=$(cat "$f")
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "stopped serve pid $pid"
  else
    echo "serve not running"
  fi
  rm -f "$f"
}

# ------------------------------------------------------------------ peers (uniform interface)

peer_pidfile() {
  case $1 in
    ours|ours-s3|ours-gateway) serve_pidfile ;;
    iipsrv) echo "$BENCH_KIT/peers/run/iipsrv/lighttpd.pid" ;;
    iiif-processor*) echo "$BENCH_KIT/peers/run/iiif-processor/node.pid" ;;
  esac
}

peer_base() {
  case $1 in
    ours|ours-s3) echo "$OUR_BASE" ;;
    ours-gateway) echo "http://127.0.0.1:$OUR_PORT/cantaloupe/iiif/3" ;;
    iipsrv) echo "$IIP_BASE" ;;
    iiif-processor*) echo "$IIIFP_BASE" ;;
  esac
}

peer_label() { case $1 in ours) echo tower-iiif ;; ours-s3) echo "tower-iiif (S3)" ;; ours-gateway) echo "tower-iiif (gateway)" ;; *) echo "$1" ;; esac; }

# The identifier a peer knows an image by: its name, or for the gateway its URL on the site.
peer_id() { # peer id
  case $1 in
    ours-gateway) echo "http://127.0.0.1:$OUR_PORT/sites/default/files/bench/$2" ;;
    *) echo "$2" ;;
  esac
}

peer_ctl() { # peer cache start|stop
  local peer=$1 cache=$2 action=$3
  case $peer in
    ours) "serve_$action" "$cache" ;;
    ours-s3) S3=1 "serve_$action" "$cache" ;;
    ours-gateway) GATEWAY=1 "serve_$action" "$cache" ;;
    iipsrv) "$BENCH_KIT/peers/iipsrv.sh" "$action" ;;
    iiif-processor-tuned) INPUT_MODE=file SHARP_RANDOM_ACCESS=1 "$BENCH_KIT/peers/iiif-processor.sh" "$action" ;;
    iiif-processor) INPUT_MODE=stream SHARP_RANDOM_ACCESS=0 "$BENCH_KIT/peers/iiif-processor.sh" "$action" ;;
    *) die "unknown peer $peer" ;;
  esac
}

# ours-s3: append "<requests> <bytes>" of the S3 log since the last mark to <cell>.s3 (one
# line per server process: the first is the unmeasured start, then one per measured run).
s3_snapshot() { # rss-file
  local mark="${1%.hwm}.s3mark" from=0 total
  [ -f "$mark" ] && from=$(cat "$mark")
  total=$(wc -l < "$TOWER_IIIF_S3_LOG")
  tail -n +"$((from + 1))" "$TOWER_IIIF_S3_LOG" | head -n "$((total - from))" \
    | awk '$2 ~ "^/'"$TOWER_IIIF_S3_BUCKET"'/bench/" {n++; b += $4} END {print n + 0, b + 0}' >> "${1%.hwm}.s3"
  echo "$total" > "$mark"
}

# Append "<kib> <nprocs> <cpu ticks>" of the peer's process tree to the file, if it is running.
peer_snapshot() { # peer file
  [ "$1" = ours-s3 ] && s3_snapshot "$2"
  local f pid s; f=$(peer_pidfile "$1")
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  s=$(tree_hwm_kib "$pid")
  [ -n "$s" ] && echo "$s" >> "$2"
  return 0
}

# The restart command handed to tiles.py: record the peak RSS, stop, start (purged: purge the
# image through the admin route instead).
peer_restart() { # peer cache rss-file id
  peer_snapshot "$1" "$3"
  if [ "$2" = purged ]; then
    curl -sf -o /dev/null -X POST -H "Authorization: Bearer $PURGE_TOKEN" \
      "http://127.0.0.1:$OUR_PORT/admin/purge/$4" || die "purge of $4 failed"
    return 0
  fi
  peer_ctl "$1" "$2" stop
  peer_ctl "$1" "$2" start
}

peer_running() { local f; f=$(peer_pidfile "$1"); [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

# Which tile sizes a peer is benchmarked with on an image; nothing = not a cell.
cells_for() { # peer id
  local peer=$1 id=$2
  case $peer in
    ours|ours-s3|ours-gateway) echo "${OUR_TILE:-512}" ;;
    iipsrv)
      case $id in
        *deflate*.tif) echo "${IIP_TILES:-512 256}" | awk '{print $1}' ;;
        *.tif|*.tiff|*.jp2) echo "${IIP_TILES:-512 256}" ;;
      esac ;;
    iiif-processor*)
      case $id in *deflate*) ;; *.jpg|*.tif|*.tiff|*.png) echo native ;; esac ;;
  esac
}

cell_name() { # peer id cache tile
  local t=$4; [ "$t" = native ] && t="" || t="-t$t"
  echo "${2//./_}--$1-$3$t"
}

# ------------------------------------------------------------------ one cell

# A JSON tiles.py can summarize for a cell that produced none (e.g. info.json failed).
failed_json() { # file label id cache base reason
  python3 - "$@" <<'EOF'
import json, sys, time
f, label, ident, cache, base, reason = sys.argv[1:7]
json.dump({"label": f"{label} [FAILED: {reason}]", "base": base, "id": ident, "cache": cache,
           "tile": 0, "info_tile": 0, "mode": "failed", "failed": reason,
           "runs": [{"run": 1, "phases": [{"phase": "info.json", "errors": 1}]}],
           "median": [], "mirador_total_median_s": None,
           "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, open(f, "w"), indent=1)
EOF
}

bench_cell() { # peer id cache tile
  local peer=$1 id=$2 cache=$3 tile=$4 name label base rss rc=0 peak nproc reason
  name=$(cell_name "$peer" "$id" "$cache" "$tile")
  base=$(peer_base "$peer")
  label="$(peer_label "$peer") $id"
  [ "$tile" != native ] && label+=" (tile $tile)"
  [ "$cache" = purged ] && label+=" [purged]"
  rss="$RUNDIR/$name.hwm"
  : > "$rss"
  if [ "$peer" = ours-s3 ]; then
    : > "${rss%.hwm}.s3"
    wc -l < "$TOWER_IIIF_S3_LOG" > "${rss%.hwm}.s3mark"
  fi
  echo; log "=== $name"
  peer_ctl "$peer" "$cache" start > /dev/null
  # ours-s3: the bytes of the stored tiles the burst covers (before the measured runs: the
  # info.json this asks for falls in the unmeasured first segment of the S3 log).
  local covered="?"
  if [ "$peer" = ours-s3 ] && [ "$MODE" = bulk ]; then
    covered=$("$TILES" urls --base "$base" --id "$id" --scale 4 --tile-size "$tile" 2> /dev/null \
      | python3 "$ROOT/scripts/covered-bytes.py" "$BENCH_KIT/images/$id" || echo "?")
  fi
  local restart
  restart="$(printf '%q ' "$SELF" peer-restart "$peer" "$cache" "$rss" "$id")"
  local extra=() client_cache=$cache
  [ "$tile" != native ] && extra=(--tile-size "$tile")
  rm -f "$OUT/$name.json"
  if [ "$cache" = purged ]; then
    # tiles.py's cold runs, with a purge for a restart; first one unmeasured pass.
    client_cache=cold
    "${CLIENT_PIN[@]}" "$TILES" run --base "$base" --id "$(peer_id "$peer" "$id")" --mode "$MODE" \
      --cache cold --runs 1 --restart-cmd "$restart" "${extra[@]}" > "$RUNDIR/$name.priming.log" 2>&1 \
      || echo "!!! $name: the priming pass had errors (see $RUNDIR/$name.priming.log)"
    : > "$rss"
    [ "$peer" = ours-s3 ] && : > "${rss%.hwm}.s3" && wc -l < "$TOWER_IIIF_S3_LOG" > "${rss%.hwm}.s3mark"
  fi
  if "${CLIENT_PIN[@]}" "$TILES" run --base "$base" --id "$(peer_id "$peer" "$id")" --mode "$MODE" --cache "$client_cache" --runs "$RUNS" \
      --restart-cmd "$restart" "${extra[@]}" --label "$label" --json "$OUT/$name.json" \
      2>&1 | tee "$RUNDIR/$name.log"; then rc=0; else rc=$?; fi
  peer_snapshot "$peer" "$rss"
  peer_ctl "$peer" "$cache" stop > /dev/null
  if [ ! -s "$OUT/$name.json" ]; then
    reason=$(grep -m1 -E 'tiles.py:|Error|error' "$RUNDIR/$name.log" | sed 's/^tiles.py: //' | cut -c1-160 || true)
    failed_json "$OUT/$name.json" "$label" "$id" "$cache" "$base" "${reason:-tiles.py exit $rc}"
    echo "!!! $name: no result (${reason:-tiles.py exit $rc}); recorded as a failed cell"
  elif [ "$rc" != 0 ]; then
    echo "!!! $name had errors (see above)"
  fi
  read -r peak nproc _ < <(sort -n "$rss" | tail -1; echo "0 0") || true   # max, or 0 0
  # Server CPU per measured run: all the cell's processes' CPU time over the runs (cold: the
  # process started before the first restart only answered info.json; warm: one process did
  # the priming pass too, counted as a run; purged: one process, its CPU from the snapshot
  # before the first measured run to the last).
  local runs=$RUNS cpu
  [ "$cache" = warm ] && runs=$((RUNS + 1))
  if [ "$cache" = purged ]; then
    cpu=$(awk -v hz="$(getconf CLK_TCK)" -v r="$runs" 'NR == 1 {f = $3} {l = $3} END {printf "%.2f", (l - f) / hz / r}' "$rss")
  else
    cpu=$(awk -v hz="$(getconf CLK_TCK)" -v r="$runs" '{t += $3} END {printf "%.2f", t / hz / r}' "$rss")
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$label" "$cache" "${peak:-0}" "${nproc:-0}" \
    "$(wc -l < "$rss")" "$peer" "$cpu" > "$OUT/$name.rss.tsv"
  log "peak RSS $label ($cache): $(( ${peak:-0} / 1024 )) MiB over $(wc -l < "$rss") process(es)"
  if [ "$peer" = ours-s3 ] && [ "$MODE" = bulk ]; then
    local per_run
    # Median over the measured runs (lines 2.. of the .s3 file).
    per_run=$(tail -n +2 "${rss%.hwm}.s3" | sort -n -k2 | awk '{r[NR]=$1; b[NR]=$2} END {m=int((NR+1)/2); print r[m] + 0, b[m] + 0}')
    printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$cache" "${per_run% *}" "${per_run#* }" "$covered" > "$OUT/$name.s3.tsv"
    log "S3 per run $label ($cache): ${per_run% *} requests, ${per_run#* } bytes; stored tiles covered: $covered bytes"
  fi
}

# ------------------------------------------------------------------ wrk on cached tiles

wrk_cell() { # peer id
  local peer=$1 id=$2 name base urls rss ok=0 bad=0 code out rps lat p50 p99 non2xx reqs peak nproc
  name="wrk-${id//./_}--$peer"
  base=$(peer_base "$peer")
  urls="$OUT/$name.urls.txt"
  out="$OUT/$name.txt"
  rss="$RUNDIR/$name.hwm"
  : > "$rss"
  echo; log "=== $name (wrk, warm, tile 512)"
  peer_ctl "$peer" warm start > /dev/null
  if ! "$TILES" urls --base "$base" --id "$id" --scale 4 --tile-size 512 > "$urls" 2> "$RUNDIR/$name.log"; then
    echo "!!! $name: cannot list URLs: $(cat "$RUNDIR/$name.log")"
    peer_ctl "$peer" warm stop > /dev/null
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(peer_label "$peer")" "$id" 0 "" "" "" "" \
      "no info.json" 0 "" > "$OUT/$name.tsv"
    return 0
  fi
  # prime: every URL once
  while read -r u; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 600 "$u" || echo 000)
    if [ "$code" = 200 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
  done < "$urls"
  echo "primed $ok URLs ($bad not 200)"
  wrk -t"${WRK_THREADS:-2}" -c"${WRK_CONNECTIONS:-10}" -d"${WRK_DURATION:-10s}" --latency \
    -s "$BENCH_KIT/wrk-urls.lua" "${base%%/iiif*}" -- "$urls" \
    > "$out" 2>&1 || echo "!!! wrk failed"
  sed -i "1i # $peer $id, cache primed with $ok URLs ($bad not 200)" "$out"
  cat "$out"
  peer_snapshot "$peer" "$rss"
  peer_ctl "$peer" warm stop > /dev/null
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  reqs=$(awk '/requests in/ {print $1}' "$out")
  lat=$(awk '$1 == "Latency" {print $2; exit}' "$out")
  p50=$(awk '$1 == "50%" {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
  read -r peak nproc _ < <(sort -n "$rss" | tail -1; echo "0 0") || true
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(peer_label "$peer")" "$id" "${rps:-}" \
    "${reqs:-}" "${lat:-}" "${p50:-}" "${p99:-}" "${non2xx:-0}" "${peak:-0}" "$bad" > "$OUT/$name.tsv"
  log "wrk $(peer_label "$peer") $id: ${rps:-?} req/s (${non2xx:-0} non-2xx), peak RSS $(( ${peak:-0} / 1024 )) MiB"
}

# ------------------------------------------------------------------ summary

summary() {
  local jsons=("$OUT"/*.json) f
  {
    echo "# Side-by-side load benchmark (tower-iiif vs IIIF peers)"; echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), " \
      "tower-iiif $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (dirty)')," \
      "this invocation: RUNS=$RUNS MODE=$MODE CACHES=\"$CACHES\" PEERS=\"$PEERS\" IMAGES=\"$IDS\" SERVE_ARGS=\"${SERVE_ARGS:-}\" PIN=$PIN."
    echo "Client: the kit's tiles.py (bulk = the article's 91 tiles at scaleFactor 4 with 512 tiles,"
    echo "10 concurrent; mirador = 4 phases). Cold: server restarted before every run (ours with"
    echo "--cache-mem 0); warm: one priming pass, then measured passes (ours with its 256 MiB memory"
    echo "cache); purged (labelled so): one running server, the image purged before every run, after"
    echo "one unmeasured pass. Check the \"max other-CPU\" column before trusting a figure."; echo
    echo "## Overview (medians)"; echo
    if [ -e "${jsons[0]}" ]; then "$TILES" summarize --compact --markdown "${jsons[@]}"; else echo "(no cells)"; fi
    echo; echo "## Peak RSS per cell"; echo
    echo "VmHWM read just before each server process is stopped; max over the processes of the cell"
    echo "(cold: one process per run). iipsrv: lighttpd + its iipsrv processes, summed. Server CPU:"
    echo "user + system time of those processes per measured run (mean; warm: priming counted as a"
    echo "run); the client's CPU is not in it, and on a 2-core machine it shares the cores."; echo
    echo "| target | cache | peak RSS MiB | server CPU s per run | processes in tree | processes sampled |"
    echo "|---|---|---|---|---|---|"
    for f in "$OUT"/*.rss.tsv; do
      [ -e "$f" ] || continue
      awk -F'\t' '{printf "| %s | %s | %.0f | %s | %s | %s |\n", $2, $3, $4 / 1024, ($8 == "" ? "?" : $8), $5, $6}' "$f"
    done
    echo; echo "## Cached-tile throughput (wrk)"; echo
    echo "Warm server, cache primed with the 91 bulk URLs (scaleFactor 4, tile 512), then"
    echo "\`wrk -t${WRK_THREADS:-2} -c${WRK_CONNECTIONS:-10} -d${WRK_DURATION:-10s} --latency -s wrk-urls.lua\` over the same URLs."; echo
    echo "| server | image | req/s | requests | mean latency | p50 | p99 | non-2xx | peak RSS MiB | priming failures |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    ls "$OUT"/wrk-*.tsv > /dev/null 2>&1 || echo "| (not run) | | | | | | | | | |"
    for f in "$OUT"/wrk-*.tsv; do
      [ -e "$f" ] || continue
      awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s | %.0f | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 / 1024, $10}' "$f"
    done
    if ls "$OUT"/*.s3.tsv > /dev/null 2>&1; then
      echo; echo "## S3 requests and bytes per burst (ours-s3)"; echo
      echo "Counted in the logging proxy in front of Garage; median over the measured runs. Covered:"
      echo "the bytes of the stored tiles (TIFF) or tile-parts (JPEG 2000) the burst's regions"
      echo "intersect at the level read (scripts/covered-bytes.py)."; echo
      echo "| target | cache | S3 requests | S3 bytes | covered bytes | fetched / covered |"
      echo "|---|---|---|---|---|---|"
      for f in "$OUT"/*.s3.tsv; do
        awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, ($5 > 0 ? sprintf("%.2f", $4 / $5) : "?")}' "$f"
      done
    fi
    echo; echo "## Per phase (medians)"; echo
    if [ -e "${jsons[0]}" ]; then "$TILES" summarize --markdown "${jsons[@]}"; fi
  } > "$OUT/SUMMARY.md"
}

# ------------------------------------------------------------------ subcommands

case "${1:-}" in
  serve) shift; action=${1:-status}; cache=${2:-warm}
    case $action in
      start) serve_start "$cache" ;;
      stop) serve_stop ;;
      restart) serve_stop; serve_start "$cache" ;;
      status) if serve_running; then echo "running (pid $(cat "$(serve_pidfile)"))"; else echo "not running"; exit 1; fi ;;
      *) die "usage: $0 serve start|stop|restart|status [cold|warm]" ;;
    esac
    exit 0 ;;
  peer-restart) shift; peer_restart "$@"; exit 0 ;;   # internal: tiles.py --restart-cmd
  "") ;;
  *) die "usage: $0 [serve start|stop|restart|status [cold|warm]]  (knobs: see the header)" ;;
esac

PEERS=${PEERS:-"ours iipsrv iiif-processor-tuned"}
CACHES=${CACHES:-"cold warm"}
RUNS=${RUNS:-3}
MODE=${MODE:-both}
WRK=${WRK:-1}
WRK_PEERS=${WRK_PEERS:-"ours iipsrv"}
WRK_IMAGES=${WRK_IMAGES:-big-pyr-jpeg.tif}

for c in $CACHES; do case $c in cold|warm|purged) ;; *) die "unknown cache mode $c" ;; esac; done
for t in python3 curl wrk ps; do command -v "$t" > /dev/null || die "missing tool: $t"; done
[ -x "$TILES" ] || die "benchmark kit not found at $BENCH_KIT (set BENCH_KIT)"
for id in $IDS; do [ -s "$BENCH_KIT/images/$id" ] || die "missing image $BENCH_KIT/images/$id (run make-images.sh in the kit)"; done
for peer in $PEERS; do
  case $peer in ours|ours-s3|ours-gateway|iipsrv|iiif-processor|iiif-processor-tuned) ;; *) die "unknown peer $peer" ;; esac
  peer_running "$peer" && die "$peer is already running (pid file $(peer_pidfile "$peer")); stop it first"
done
port_busy "$OUR_PORT" && [[ " $PEERS " == *" ours "* ]] && die "127.0.0.1:$OUR_PORT is taken"

[ "${CLEAN:-0}" = 1 ] && rm -rf "${OUT:?}"/*
mkdir -p "$RUNDIR"

# ours-s3: the local S3 server (started if needed) with the images under bench/.
# shellcheck disable=SC2086 # IDS is a list
[[ " $PEERS " == *" ours-s3 "* ]] && s3_with_images $IDS

# ours-gateway: the stand-in Drupal (started if needed) with the images linked under
# /sites/default/files/bench/.
if [[ " $PEERS " == *" ours-gateway "* ]]; then
  servers_env
  mkdir -p "$TOWER_IIIF_DRUPAL_ROOT/sites/default/files/bench"
  for id in $IDS; do ln -sf "$BENCH_KIT/images/$id" "$TOWER_IIIF_DRUPAL_ROOT/sites/default/files/bench/$id"; done
  if [ "${BUILD:-1}" = 1 ]; then
    log "cargo build --release --example gateway"
    (cd "$ROOT" && ${CARGO_LOCK:+flock "$CARGO_LOCK"} cargo build --release --example gateway --features "axum http ${FEATURES:-}")
  fi
fi

if [[ " $PEERS " == *" ours"* ]] && [ "${BUILD:-1}" = 1 ]; then
  log "cargo build --release --example serve"
  if [ -n "${CARGO_LOCK:-}" ]; then
    (cd "$ROOT" && flock "$CARGO_LOCK" cargo build --release --example serve --features "axum s3 http redis ${FEATURES:-}")
  else
    (cd "$ROOT" && cargo build --release --example serve --features "axum s3 http redis ${FEATURES:-}")
  fi
fi

# PIN=1: the servers of scripts/servers.sh on CPU 1 (pin_servers, scripts/bench-common.sh).
if [ "$PIN" = 1 ]; then
  [ "$(nproc)" -ge 2 ] || die "PIN=1 needs two CPUs"
  command -v taskset > /dev/null || die "PIN=1 needs taskset (util-linux)"
  pin_servers 1
fi

# Stop whatever this script started if it is interrupted.
cleanup() {
  for p in $PEERS; do peer_running "$p" && peer_ctl "$p" warm stop > /dev/null 2>&1; done
  [ "$PIN" = 1 ] && pin_servers "0-$(($(nproc) - 1))"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T0=$SECONDS
for id in $IDS; do
  for peer in $PEERS; do
    for tile in $(cells_for "$peer" "$id"); do
      for cache in $CACHES; do
        if [ "$cache" = purged ] && [ "$peer" != ours ] && [ "$peer" != ours-s3 ]; then
          log "skip $peer $id purged: only our server has a purge route"
          continue
        fi
        bench_cell "$peer" "$id" "$cache" "$tile"
      done
    done
  done
done

if [ "$WRK" = 1 ]; then
  for id in $WRK_IMAGES; do
    [[ " $IDS " == *" $id "* ]] || continue
    for peer in $WRK_PEERS; do
      [[ " $PEERS " == *" $peer "* ]] || continue
      [ -n "$(cells_for "$peer" "$id")" ] || continue
      wrk_cell "$peer" "$id"
    done
  done
fi

summary
echo
cat "$OUT/SUMMARY.md" | sed -n '/^## Overview/,/^## Per phase/p' | sed '$d'
log "done in $(( (SECONDS - T0) / 60 )) min; wrote $OUT/SUMMARY.md"
