#!/usr/bin/env bash
# The one test command: formatting, lints, unit/integration/doc tests with the default
# features and with none, the docs, the package, and the official IIIF validator against the
# `serve` example. Installs what it needs (cmake and nasm for the default build; nginx, Redis
# and Garage for the remote sources' tests; the validator in a venv) when missing.
#
# Usage: scripts/test.sh               (from any directory)
# Env:   SKIP_VALIDATOR=1   skip the validator step (quick local runs)
#        SKIP_MINIMAL=1     skip the `--no-default-features` lints and tests
#        VALIDATE_ROUNDS=N  passed on to scripts/validate.sh (default 3)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# rustfmt and clippy are rustup components; a fresh toolchain may lack them.
if ! cargo clippy --version >/dev/null 2>&1 || ! cargo fmt --version >/dev/null 2>&1; then
    echo "==> rustup component add clippy rustfmt"
    rustup component add clippy rustfmt
fi
scripts/build-deps.sh

echo "==> cargo fmt --all -- --check"
cargo fmt --all -- --check

echo "==> cargo clippy --all-targets --all-features -- -D warnings"
cargo clippy --all-targets --all-features -- -D warnings

# The remote sources' tests run against real servers on 127.0.0.1 (Garage, nginx, Redis),
# installed when missing (Garage is built once and cached) and stopped when this script ends.
echo "==> scripts/servers.sh start"
scripts/servers.sh start
trap 'scripts/servers.sh stop' EXIT

echo "==> cargo test --all-targets --all-features"
cargo test --all-targets --all-features

echo "==> cargo test --doc --all-features"
cargo test --doc --all-features

echo "==> cargo doc --no-deps --all-features (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features

# Without default features the crate builds with cargo and a C compiler alone (no
# libjpeg-turbo): the pure-Rust JPEG paths.
if [[ "${SKIP_MINIMAL:-0}" == "1" ]]; then
    echo "==> --no-default-features (skipped: SKIP_MINIMAL=1)"
else
    echo "==> cargo clippy --all-targets --no-default-features -- -D warnings"
    cargo clippy --all-targets --no-default-features -- -D warnings
    echo "==> cargo test --lib --tests --no-default-features"
    cargo test --lib --tests --no-default-features
fi

echo "==> cargo publish --dry-run"
cargo publish --dry-run --allow-dirty --quiet

if [[ "${SKIP_VALIDATOR:-0}" == "1" ]]; then
    echo "==> scripts/validate.sh (skipped: SKIP_VALIDATOR=1)"
else
    echo "==> scripts/validate.sh"
    scripts/validate.sh
    # The same image read from the remote sources: Garage (S3) and nginx (HTTP, by URL); and the
    # Islandora gateway in front of the stand-in Drupal (the identifier being the URL).
    for source in s3 http gateway; do
        echo "==> VALIDATE_SOURCE=$source scripts/validate.sh (one round)"
        VALIDATE_SOURCE=$source VALIDATE_ROUNDS=1 scripts/validate.sh
    done
fi

# Two demo instances on S3 behind an nginx load balancer, sharing Redis: a shared hit, a purge
# through one instance missing in the other, an instance killed mid-burst with no request lost.
echo "==> scripts/fleet.sh"
cargo build --release --features axum,s3,http,redis --example serve --quiet
scripts/fleet.sh

# The hardening issue's memory storms (upscales, four at once, 200 concurrent full-resolution
# regions) on fresh release servers: the process's peak RSS stays under the ceiling + overhead.
echo "==> scripts/overload.sh check"
scripts/overload.sh check
