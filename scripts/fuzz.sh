#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers and decoders with cargo-fuzz (libFuzzer, nightly):
# the targets in fuzz/fuzz_targets/, seeded from the test fixtures and generated samples.
# Not part of the test command; crashes land in fuzz/artifacts/<target>/ and each one found
# becomes a regression test in the normal suite.
#
# Usage: scripts/fuzz.sh                  every target, 60 s each
#        scripts/fuzz.sh TARGET [SECONDS] one target (request_path headers decode tiff_pyramid
#                                         jpeg_tiles jp2 stored)
# Env:   FUZZ_JOBS=N   parallel libFuzzer jobs per target (default 1)
# Installs cargo-fuzz (cargo install) when missing. Prints one line per target:
#   fuzz: TARGET SECONDS s, N executions, M crashes
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TARGETS=(request_path headers decode tiff_pyramid jpeg_tiles jp2 stored)
SECONDS_EACH=${2:-60}
JOBS=${FUZZ_JOBS:-1}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> cargo install cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi

# Seeds: the repository's fixtures, the sample images the crate generates, and small request
# paths and header values.
seed() {
    local target=$1 dir=$ROOT/fuzz/corpus/$1
    mkdir -p "$dir"
    if [[ -n "$(ls -A "$dir" 2>/dev/null)" ]]; then
        # A corpus already grown: only the repository's fixtures added since (new formats).
        case $target in
        decode | tiff_pyramid | jp2 | stored)
            find "$ROOT/tests/fixtures" -type f -size -100k | while read -r f; do
                cp -n "$f" "$dir/$(basename "$f")"
            done
            ;;
        esac
        return 0
    fi
    case $target in
    request_path)
        printf '%s' "/abc/full/max/0/default.jpg" >"$dir/a"
        printf '%s' "/a%2Fb/0,0,256,256/256,/90/gray.png" >"$dir/b"
        printf '%s' "/x+y/pct:10,10,50,50/^!100,100/!45/bitonal.webp" >"$dir/c"
        printf '%s' "/id/info.json" >"$dir/d"
        ;;
    headers)
        printf '%s' 'for=192.0.2.60;proto=http;by=203.0.113.43;host="a.example:8443"' >"$dir/a"
        printf '%s' '[2001:db8::1]:80' >"$dir/b"
        printf '%s' 'public, max-age=2592000, s-maxage=60, stale-while-revalidate=30' >"$dir/c"
        printf '%s' '/iiif/prefix/' >"$dir/d"
        ;;
    jpeg_tiles)
        # A flags byte (0 to 3: photometric YCbCr or RGB, tables split off or not), then a
        # small JPEG from the decode target's corpus (up to 16 of them).
        seed decode
        local n=0
        for f in "$ROOT"/fuzz/corpus/decode/*; do
            [[ $(head -c 2 "$f" | od -An -tx1 | tr -d ' ') == ffd8 ]] || continue
            for flags in 0 1 2 3; do
                { printf "\\x0$flags"; cat "$f"; } >"$dir/$(basename "$f")-$flags"
            done
            n=$((n + 1))
            [[ $n -ge 16 ]] && break
        done
        ;;
    decode | tiff_pyramid | jp2 | stored)
        # The demo server writes its sample images (JPEG, PNG, TIFF strips and pyramids,
        # JPEG 2000) on start: started for a moment, for them.
        local samples=$ROOT/target/fuzz-samples
        if [[ ! -d "$samples" ]]; then
            cargo build --release --quiet --features axum,s3,http,redis --example serve
            timeout 20 "$ROOT/target/release/examples/serve" --samples "$samples" \
                --addr 127.0.0.1:0 >/dev/null 2>&1 || true
        fi
        # Small tiled pyramids and JPEG 2000s, GIF and WebP, made by libvips and OpenJPEG
        # (installed by scripts/servers.sh) when they are here.
        if command -v vips >/dev/null 2>&1 && [[ ! -f "$samples/pyr-jpeg.tif" ]]; then
            local small=$samples/small.v
            vips thumbnail "$samples/landscape.jpg" "$small" 256 >/dev/null 2>&1 || true
            vips tiffsave "$small" "$samples/pyr-jpeg.tif" --tile --tile-width 64 \
                --tile-height 64 --pyramid --compression jpeg >/dev/null 2>&1 || true
            vips tiffsave "$small" "$samples/pyr-deflate.tif" --tile --tile-width 64 \
                --tile-height 64 --pyramid --compression deflate --predictor horizontal \
                --bigtiff >/dev/null 2>&1 || true
            vips copy "$small" "$samples/small.gif" >/dev/null 2>&1 || true
            vips copy "$small" "$samples/small.webp" >/dev/null 2>&1 || true
            vips copy "$small" "$samples/small.ppm" >/dev/null 2>&1 || true
            if command -v opj_compress >/dev/null 2>&1; then
                opj_compress -i "$samples/small.ppm" -o "$samples/small.jp2" -t 64,64 -n 3 \
                    -r 20 -TLM -PLT >/dev/null 2>&1 || true
            fi
            rm -f "$small" "$samples/small.ppm"
        fi
        # Small inputs only: a large seed makes every execution slow.
        find "$ROOT/tests/fixtures" "$samples" -type f -size -100k 2>/dev/null | while read -r f; do
            cp "$f" "$dir/$(basename "$f")"
        done
        ;;
    esac
}

run() {
    local target=$1 log
    seed "$target"
    log=$(mktemp)
    # libFuzzer prints its statistics on stderr; -max_total_time bounds the run.
    (cd fuzz && cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_EACH" -jobs="$JOBS" -workers="$JOBS" -rss_limit_mb=4096 \
        -print_final_stats=1) >"$log" 2>&1 || true
    local execs crashes
    execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | awk '{s += $2} END {print s + 0}')
    crashes=$(find "fuzz/artifacts/$target" -type f 2>/dev/null | wc -l)
    echo "fuzz: $target ${SECONDS_EACH} s, $execs executions, $crashes crashes"
    if grep -q "ERROR: libFuzzer\|panicked at" "$log"; then
        grep -m5 "ERROR: libFuzzer\|panicked at\|Test unit written" "$log" | sed 's/^/  /'
    fi
    rm -f "$log"
}

if [[ $# -ge 1 ]]; then
    run "$1"
else
    for t in "${TARGETS[@]}"; do run "$t"; done
fi
