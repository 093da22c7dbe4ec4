#!/usr/bin/env bash
# The real servers the remote-source tests run against, all bound to 127.0.0.1:
#   - Garage (S3-compatible; one node, sqlite metadata), behind
#   - nginx, which also serves a files tree with Range support (the HTTP source's upstream),
#     a bearer-protected tree, a tree that ignores Range, redirects, and a second origin;
#     its access logs count the requests and bytes each test causes;
#   - Redis (the shared cache tier).
#
# Usage: scripts/servers.sh install     apt-get nginx and redis, cargo install garage (cached
#                                        in $TOWER_IIIF_TOOLS, default ~/.cache/tower-iiif/tools)
#        scripts/servers.sh start       install, start, and write target/servers/env
#        scripts/servers.sh stop
# Tests read target/servers/env (or the TOWER_IIIF_* variables it sets).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
DIR=$ROOT/target/servers
TOOLS=${TOWER_IIIF_TOOLS:-$HOME/.cache/tower-iiif/tools}
GARAGE_VERSION=2.5.0
GARAGE=$TOOLS/bin/garage
# Test credentials for a throwaway local store (Garage's key format: GK + 24 hex digits).
ACCESS_KEY=GK0123456789abcdef01234567
SECRET_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
BUCKET=iiif

sudo_() {
    if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

install() {
    local need=()
    [[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
    command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
    command -v vips >/dev/null 2>&1 || need+=(libvips-tools)
    command -v opj_compress >/dev/null 2>&1 || need+=(libopenjp2-tools)
    if ((${#need[@]})); then
        echo "==> apt-get install ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        sudo_ apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 ||
            { sudo_ apt-get update -qq && sudo_ apt-get install -y -qq "${need[@]}" >/dev/null; }
        # Debian starts the packaged services; the tests run their own.
        sudo_ service nginx stop >/dev/null 2>&1 || true
        sudo_ service redis-server stop >/dev/null 2>&1 || true
    fi
    if ! "$GARAGE" --version 2>/dev/null | grep -q "$GARAGE_VERSION"; then
        echo "==> cargo install garage $GARAGE_VERSION (once; cached in $TOOLS, ~7 min)"
        cargo install garage --version "$GARAGE_VERSION" --locked --quiet \
            --no-default-features --features bundled-libs,sqlite --root "$TOOLS"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
    for _ in $(seq 1 100); do
        if (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "servers.sh: nothing listens on 127.0.0.1:$1" >&2
    return 1
}

# The test images, made by libvips and OpenJPEG (as sites make theirs): a 4096x3072 picture
# of smooth colour and fine detail as a tiled pyramidal JPEG TIFF (256-pixel tiles), a tiled
# JPEG 2000 (512-pixel tiles, 6 resolutions, TLM markers), a flat JPEG and a flat PNG.
fixtures() {
    local out=$1 t=$DIR/tmp/fixtures
    mkdir -p "$t" "$out"
    vips zone "$t/z.v" 4096 3072
    vips linear "$t/z.v" "$t/a.v" 100 128 --uchar
    vips sines "$t/s.v" 4096 3072 --hfreq 3 --vfreq 2
    vips linear "$t/s.v" "$t/b.v" 110 128 --uchar
    vips xyz "$t/xyz.v" 4096 3072
    vips extract_band "$t/xyz.v" "$t/x.v" 0
    vips linear "$t/x.v" "$t/c.v" 0.06 0 --uchar
    vips bandjoin "$t/a.v $t/b.v $t/c.v" "$t/rgb.v"
    vips tiffsave "$t/rgb.v" "$out/pyr.tif" --tile --pyramid --compression jpeg --Q 85 \
        --tile-width 256 --tile-height 256
    vips copy "$t/rgb.v" "$out/flat.jpg[Q=85]"
    vips copy "$t/rgb.v" "$t/flat.png"
    opj_compress -i "$t/flat.png" -o "$out/tiled.jp2" -t 512,512 -n 6 -r 20 -TLM >/dev/null
    rm -rf "$t"
}

start() {
    install
    stop
    rm -rf "$DIR"
    mkdir -p "$DIR"/{garage/meta,garage/data,www/files,www/private,www/norange,logs,tmp,redis}
    local s3_port rpc_port admin_port proxy_port files_port other_port redis_port
    s3_port=$(free_port); rpc_port=$(free_port); admin_port=$(free_port)
    proxy_port=$(free_port); files_port=$(free_port); other_port=$(free_port)
    redis_port=$(free_port)

    cat >"$DIR/garage/garage.toml" <<EOF
metadata_dir = "$DIR/garage/meta"
data_dir = "$DIR/garage/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(printf '%064d' 7)"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
[admin]
api_bind_addr = "127.0.0.1:$admin_port"
EOF
    GARAGE_DEFAULT_ACCESS_KEY=$ACCESS_KEY GARAGE_DEFAULT_SECRET_KEY=$SECRET_KEY \
        GARAGE_DEFAULT_BUCKET=$BUCKET RUST_LOG=warn \
        "$GARAGE" -c "$DIR/garage/garage.toml" server --single-node --default-bucket \
        >"$DIR/logs/garage.log" 2>&1 &
    echo $! >"$DIR/garage.pid"

    cat >"$DIR/nginx.conf" <<EOF
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/logs/nginx-error.log warn;
daemon on;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path $DIR/tmp/body;
    proxy_temp_path $DIR/tmp/proxy;
    fastcgi_temp_path $DIR/tmp/fastcgi;
    uwsgi_temp_path $DIR/tmp/uwsgi;
    scgi_temp_path $DIR/tmp/scgi;
    types { image/jpeg jpg; image/tiff tif; image/jp2 jp2; image/png png; }
    default_type application/octet-stream;
    log_format bytes '\$request_method \$uri \$status \$body_bytes_sent "\$http_range" "\$http_authorization"';
    map \$http_authorization \$authorized { default 0; "Bearer test-token" 1; }
    # Garage's S3 API behind a logging proxy: the tests count S3 requests and bytes here.
    server {
        listen 127.0.0.1:$proxy_port;
        access_log $DIR/logs/s3.log bytes;
        client_max_body_size 0;
        proxy_request_buffering off;
        location / {
            proxy_pass http://127.0.0.1:$s3_port;
            proxy_set_header Host \$http_host;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
    # The HTTP source's upstream.
    server {
        listen 127.0.0.1:$files_port;
        access_log $DIR/logs/files.log bytes;
        root $DIR/www;
        location /files/ { }
        location /private/ {
            if (\$authorized = 0) {
                add_header WWW-Authenticate 'Bearer realm="files"' always;
                return 401;
            }
        }
        location /norange/ { max_ranges 0; }
        location = /redirect/ok { return 302 /files/flat.jpg; }
        location = /redirect/private-address { return 302 http://10.0.0.1/files/flat.jpg; }
        location = /redirect/metadata { return 302 http://169.254.169.254/latest/meta-data/; }
        location = /redirect/other-origin { return 302 http://127.0.0.1:$other_port/files/flat.jpg; }
        location = /redirect/other-origin-refused { return 302 http://127.0.0.1:$other_port/files/refused.jpg; }
        location = /redirect/loop { return 302 /redirect/loop; }
        location / { return 200 "files\n"; }
    }
    # A second origin: credentials must never reach it through a redirect.
    server {
        listen 127.0.0.1:$other_port;
        access_log $DIR/logs/other.log bytes;
        root $DIR/www;
    }
}
EOF
    /usr/sbin/nginx -c "$DIR/nginx.conf" -p "$DIR" 2>>"$DIR/logs/nginx-error.log"

    redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
        --dir "$DIR/redis" --daemonize yes --pidfile "$DIR/redis.pid" \
        --logfile "$DIR/logs/redis.log"

    fixtures "$DIR/www/files"
    cp "$DIR/www/files/"{pyr.tif,tiled.jp2,flat.jpg} "$DIR/www/private/"
    cp "$DIR/www/files/"{pyr.tif,flat.jpg} "$DIR/www/norange/"

    wait_port "$s3_port"
    wait_port "$proxy_port"
    wait_port "$files_port"
    wait_port "$redis_port"
    cat >"$DIR/env" <<EOF
TOWER_IIIF_S3_ENDPOINT=http://127.0.0.1:$proxy_port
TOWER_IIIF_S3_DIRECT=http://127.0.0.1:$s3_port
TOWER_IIIF_S3_BUCKET=$BUCKET
TOWER_IIIF_S3_LOG=$DIR/logs/s3.log
AWS_ACCESS_KEY_ID=$ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$SECRET_KEY
AWS_REGION=garage
TOWER_IIIF_FILES_URL=http://127.0.0.1:$files_port
TOWER_IIIF_FILES_ROOT=$DIR/www
TOWER_IIIF_FILES_LOG=$DIR/logs/files.log
TOWER_IIIF_OTHER_URL=http://127.0.0.1:$other_port
TOWER_IIIF_OTHER_LOG=$DIR/logs/other.log
TOWER_IIIF_REDIS_URL=redis://127.0.0.1:$redis_port
EOF
    echo "==> servers up: S3 http://127.0.0.1:$proxy_port (Garage $s3_port), files http://127.0.0.1:$files_port, redis $redis_port"
}

stop() {
    [[ -f "$DIR/nginx.pid" ]] && /usr/sbin/nginx -c "$DIR/nginx.conf" -p "$DIR" -s stop 2>/dev/null || true
    for pid in "$DIR/garage.pid" "$DIR/redis.pid"; do
        [[ -f "$pid" ]] && kill "$(cat "$pid")" 2>/dev/null || true
        rm -f "$pid"
    done
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 install|start|stop" >&2
    exit 2
    ;;
esac
