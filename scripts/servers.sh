#!/usr/bin/env bash
# The real servers the remote-source tests run against, all bound to 127.0.0.1:
#   - Garage (S3-compatible; one node, sqlite metadata), behind
#   - nginx, which also serves a files tree with Range support (the HTTP source's upstream),
#     a bearer-protected tree, a tree that ignores Range, redirects, and a second origin;
#     its access logs count the requests and bytes each test causes;
#   - Redis (the shared cache tier);
#   - a stand-in Drupal (nginx again): a page at /, an OpenSeadragon page at /node/1, public
#     files under /sites/default/files/ and /_flysystem/ (the latter ignoring Range, as a
#     streamed Fedora file may), bearer- or session-cookie-protected /system/files/, and a
#     login form whose POST answers 303 with cookies; its log records what reached it.
# Also installed for the browser test: Debian's Chromium and playwright-core (npm, cached).
#
# Usage: scripts/servers.sh install     apt-get nginx and redis, cargo install garage (cached
#                                        in $TOWER_IIIF_TOOLS, default ~/.cache/tower-iiif/tools)
#        scripts/servers.sh start       install, start, and write target/servers/env
#        scripts/servers.sh up          start, unless they are running (env file there, servers
#                                       taking connections)
#        scripts/servers.sh stop        stop them and remove target/servers/env
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
    [[ -x /usr/bin/chromium ]] || need+=(chromium)
    if ((${#need[@]})); then
        echo "==> apt-get install ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        sudo_ apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 ||
            { sudo_ apt-get update -qq && sudo_ apt-get install -y -qq "${need[@]}" >/dev/null; }
        # Debian starts the packaged services; the tests run their own.
        sudo_ service nginx stop >/dev/null 2>&1 || true
        sudo_ service redis-server stop >/dev/null 2>&1 || true
    fi
    if [[ ! -f "$TOOLS/node/node_modules/playwright-core/package.json" ]]; then
        echo "==> npm install playwright-core (once; cached in $TOOLS/node)"
        mkdir -p "$TOOLS/node"
        npm install --silent --no-audit --no-fund --prefix "$TOOLS/node" playwright-core@1 >/dev/null
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

# The stand-in Drupal's tree: Islandora's file locations (a space in a name, as Drupal keeps
# it), a front page, and a node page whose OpenSeadragon asks the gateway for the image as the
# Islandora field formatter does: the IIIF server URL plus the PHP-urlencoded file URL.
drupal_site() {
    local root=$1 fixtures=$2
    mkdir -p "$root"/{sites/default/files/2024-05,_flysystem/fedora/2024-05,system/files/2024-05,node,libraries}
    cp "$fixtures/pyr.tif" "$root/sites/default/files/2024-05/page 1.tif"
    cp "$fixtures/tiled.jp2" "$root/sites/default/files/2024-05/page1.jp2"
    cp "$fixtures/flat.jpg" "$root/sites/default/files/2024-05/flat photo.jpg"
    cp "$fixtures/pyr.tif" "$root/_flysystem/fedora/2024-05/page1.tif"
    cp "$fixtures/tiled.jp2" "$root/_flysystem/fedora/2024-05/page1.jp2"
    cp "$fixtures/pyr.tif" "$root/system/files/2024-05/private.tif"
    cp -r "$ROOT/examples/serve/viewer/openseadragon" "$root/libraries/"
    cat >"$root/index.html" <<'HTML'
<!doctype html>
<html><head><meta charset="utf-8"><title>Islandora Digital Collections</title></head>
<body><h1>Islandora Digital Collections</h1><p>A stand-in for Drupal's front page.</p></body></html>
HTML
    cat >"$root/node/1" <<'HTML'
<!doctype html>
<html><head><meta charset="utf-8"><title>Page 1 | Islandora Digital Collections</title>
<script src="/libraries/openseadragon/openseadragon.min.js"></script></head>
<body style="margin:0">
<div id="osd" style="width:800px;height:600px;background:#000"></div>
<script>
  // PHP urlencode: like encodeURIComponent, but a space is '+' and !'()*~ are escaped.
  function urlencode(s) {
    return encodeURIComponent(s).replace(/[!'()*~]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase())
      .replace(/%20/g, '+');
  }
  var file = location.origin + '/sites/default/files/2024-05/page 1.tif';
  var events = window.osdEvents = {open: 0, loaded: 0, failed: 0};
  var viewer = window.viewer = OpenSeadragon({
    id: 'osd', prefixUrl: '/libraries/openseadragon/images/', drawer: 'canvas',
    tileSources: ['/cantaloupe/iiif/2/' + urlencode(file) + '/info.json'],
    immediateRender: false, animationTime: 0
  });
  viewer.addHandler('open', () => events.open++);
  viewer.addHandler('tile-loaded', () => events.loaded++);
  viewer.addHandler('tile-load-failed', () => events.failed++);
</script></body></html>
HTML
}

start() {
    install
    stop
    rm -rf "$DIR"
    mkdir -p "$DIR"/{garage/meta,garage/data,www/files,www/private,www/norange,logs,tmp,redis}
    local s3_port rpc_port admin_port proxy_port files_port other_port redis_port drupal_port
    s3_port=$(free_port); rpc_port=$(free_port); admin_port=$(free_port)
    proxy_port=$(free_port); files_port=$(free_port); other_port=$(free_port)
    redis_port=$(free_port); drupal_port=$(free_port)

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
    log_format bytes '\$request_method \$uri \$status \$body_bytes_sent "\$http_range" "\$http_authorization" \$msec \$request_time';
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
    # The stand-in Drupal. Its log: method, raw request URI, status, body bytes, Range,
    # Authorization, Cookie, X-Forwarded-For/-Host/-Proto, X-Secret, the request body (JSON
    # escaped), Host; one request per line, fields separated by tabs.
    log_format drupal escape=json '\$request_method\t\$request_uri\t\$status\t\$body_bytes_sent\t\$http_range\t\$http_authorization\t\$http_cookie\t\$http_x_forwarded_for\t\$http_x_forwarded_host\t\$http_x_forwarded_proto\t\$http_x_secret\t\$request_body\t\$http_host';
    map \$http_authorization \$drupal_bearer { default 0; "Bearer test-token" 1; }
    map \$cookie_SSESStest \$drupal_session { default 0; "session-1" 1; }
    map "\$http_authorization\$http_cookie" \$drupal_anonymous { default 0; "" 1; }
    # Drupal names its session cookie after the site's host: a session is valid only on a
    # request for the public site, not for the back end's own address.
    map \$http_host \$drupal_public_host { default 1; "localhost:$drupal_port" 0; "127.0.0.1:$drupal_port" 0; }
    server {
        listen 127.0.0.1:$drupal_port;
        access_log $DIR/logs/drupal.log drupal;
        root $DIR/drupal;
        absolute_redirect off;
        types { image/jpeg jpg; image/tiff tif; image/jp2 jp2; image/png png;
                text/html html; application/javascript js; }
        location = / { default_type text/html; try_files /index.html =404; }
        location /node/ { default_type text/html; }
        location /libraries/ { }
        location /sites/default/files/ { }
        # Drupal streams Fedora's files through PHP: no Range.
        location /_flysystem/ { max_ranges 0; }
        location /system/files/ {
            set \$drupal_ok "\$drupal_bearer\$drupal_session\$drupal_public_host";
            if (\$drupal_anonymous) {
                add_header WWW-Authenticate 'Bearer realm="drupal"' always;
                return 401;
            }
            if (\$drupal_ok !~ "^1|^011\$") { return 403; }
        }
        # The login form: the POST reaches /_login through a proxy pass, so that its body is
        # read and logged.
        location = /user/login { proxy_pass http://127.0.0.1:$drupal_port/_login; }
        location = /_login {
            access_log off;
            add_header Set-Cookie "SSESStest=session-1; path=/; HttpOnly" always;
            add_header Set-Cookie "Drupal.visitor.name=tester; path=/" always;
            return 303 /user/1;
        }
        # Files sent slowly (a large download over a slow link): the gateway must stream them.
        location /slow/ {
            alias $DIR/drupal/sites/default/files/;
            limit_rate_after 128k;
            limit_rate 512k;
        }
        location / { return 404 "Page not found\n"; }
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

    drupal_site "$DIR/drupal" "$DIR/www/files"

    wait_port "$s3_port"
    wait_port "$proxy_port"
    wait_port "$files_port"
    wait_port "$redis_port"
    wait_port "$drupal_port"
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
TOWER_IIIF_DRUPAL_URL=http://127.0.0.1:$drupal_port
TOWER_IIIF_DRUPAL_ROOT=$DIR/drupal
TOWER_IIIF_DRUPAL_LOG=$DIR/logs/drupal.log
TOWER_IIIF_PLAYWRIGHT=$TOOLS/node/node_modules/playwright-core
TOWER_IIIF_CHROMIUM=/usr/bin/chromium
EOF
    echo "==> servers up: S3 http://127.0.0.1:$proxy_port (Garage $s3_port), files http://127.0.0.1:$files_port, redis $redis_port"
}

stop() {
    [[ -f "$DIR/nginx.pid" ]] && /usr/sbin/nginx -c "$DIR/nginx.conf" -p "$DIR" -s stop 2>/dev/null || true
    for pid in "$DIR/garage.pid" "$DIR/redis.pid"; do
        [[ -f "$pid" ]] && kill "$(cat "$pid")" 2>/dev/null || true
        rm -f "$pid"
    done
    # The servers it names are gone: scripts that find it would take them for running.
    rm -f "$DIR/env"
}

# Whether the server at URL (scheme://host:port...) takes TCP connections.
answers() {
    local hp=${1#*://}
    hp=${hp%%/*}
    (echo >"/dev/tcp/${hp%:*}/${hp##*:}") 2>/dev/null
}

# Start the servers unless target/servers/env is there and Garage, its logging proxy and Redis
# take connections (an env file left by servers that died would make every request fail).
up() {
    if [[ -f "$DIR/env" ]] && (
        set -a
        # shellcheck disable=SC1091
        source "$DIR/env"
        answers "$TOWER_IIIF_S3_ENDPOINT" && answers "$TOWER_IIIF_S3_DIRECT" &&
            answers "$TOWER_IIIF_REDIS_URL"
    ); then
        return
    fi
    echo "==> target/servers/env missing or its servers down: starting them"
    start
}

case "${1:-}" in
install) install ;;
start) start ;;
up) up ;;
stop) stop ;;
*)
    echo "usage: $0 install|start|up|stop" >&2
    exit 2
    ;;
esac
