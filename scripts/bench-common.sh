# Helpers shared by scripts/bench-load.sh and scripts/bench-trace.sh; sourced, with ROOT (the
# repository) and BENCH_KIT (the benchmark kit) set.

# The servers of scripts/servers.sh (every thread of each process and of its children, e.g.
# nginx's workers) on the CPUs given.
pin_servers() { # cpu-list
  local f pid p
  for f in "$ROOT"/target/servers/{garage,nginx,redis}.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    for p in "$pid" $(pgrep -P "$pid" || true); do taskset -a -p -c "$1" "$p" > /dev/null 2>&1 || true; done
  done
}

# The servers of scripts/servers.sh, started unless they are running (`servers.sh up`), their
# variables exported.
servers_env() {
  "$ROOT/scripts/servers.sh" up
  # shellcheck disable=SC1091
  set -a; . "$ROOT/target/servers/env"; set +a
}

# The local S3 server of scripts/servers.sh (started if needed), its variables exported, with
# the kit's images given under bench/ (uploaded unless there at their size).
s3_with_images() { # id...
  local id key size
  servers_env
  local sigv4=(--aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
  for id in "$@"; do
    key="$TOWER_IIIF_S3_BUCKET/bench/$id"
    size=$(curl -s -I "${sigv4[@]}" "$TOWER_IIIF_S3_DIRECT/$key" | awk 'tolower($1) == "content-length:" {print $2 + 0}')
    if [ "${size:-0}" != "$(stat -c %s "$BENCH_KIT/images/$id")" ]; then
      echo "[$(date +%H:%M:%S)] upload $id to s3://$key"
      curl -sf -o /dev/null "${sigv4[@]}" -T "$BENCH_KIT/images/$id" "$TOWER_IIIF_S3_DIRECT/$key"
    fi
  done
}
