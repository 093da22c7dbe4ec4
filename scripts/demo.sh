#!/usr/bin/env bash
# The demo server on generated sample images: installs what the default build needs (cmake and
# nasm, scripts/build-deps.sh) when missing, then runs examples/serve on 127.0.0.1:8080.
# Open http://127.0.0.1:8080/ for OpenSeadragon, /mirador for Mirador.
#
# Usage: scripts/demo.sh [serve arguments...]   (e.g. --images DIR to serve your own images)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/build-deps.sh
exec cargo run --release --features axum,s3,http,redis --example serve -- --addr 127.0.0.1:8080 "$@"
