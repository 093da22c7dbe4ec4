#!/usr/bin/env bash
# The one test command: formatting, lints, unit/integration/doc tests, the docs, and the
# official IIIF validator against the `serve` example.
#
# Usage: scripts/test.sh               (from any directory)
# Env:   SKIP_VALIDATOR=1   skip the validator step (quick local runs)
#        SKIP_TURBOJPEG=1   skip the `turbojpeg` feature's lints and tests
#        VALIDATE_ROUNDS=N  passed on to scripts/validate.sh (default 3)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# rustfmt and clippy are rustup components; a fresh toolchain may lack them.
if ! cargo clippy --version >/dev/null 2>&1 || ! cargo fmt --version >/dev/null 2>&1; then
    echo "==> rustup component add clippy rustfmt"
    rustup component add clippy rustfmt
fi

echo "==> cargo fmt --all -- --check"
cargo fmt --all -- --check

echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

echo "==> cargo test --all-targets"
cargo test --all-targets

echo "==> cargo test --doc"
cargo test --doc

echo "==> cargo doc --no-deps (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

# The optional `turbojpeg` feature builds libjpeg-turbo from source: cmake and nasm (apt when
# missing and root).
if [[ "${SKIP_TURBOJPEG:-0}" == "1" ]]; then
    echo "==> --features turbojpeg (skipped: SKIP_TURBOJPEG=1)"
else
    if ! command -v cmake >/dev/null 2>&1 || ! command -v nasm >/dev/null 2>&1; then
        if [[ "$(id -u)" -eq 0 ]]; then
            echo "==> apt-get install cmake nasm (for the turbojpeg feature)"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq cmake nasm >/dev/null
        else
            echo "test.sh: the turbojpeg feature needs cmake and nasm; install them" >&2
            echo "         (sudo apt-get install cmake nasm) or set SKIP_TURBOJPEG=1" >&2
            exit 1
        fi
    fi
    echo "==> cargo clippy --all-targets --features turbojpeg -- -D warnings"
    cargo clippy --all-targets --features turbojpeg -- -D warnings
    echo "==> cargo test --lib --tests --features turbojpeg"
    cargo test --lib --tests --features turbojpeg
fi

if [[ "${SKIP_VALIDATOR:-0}" == "1" ]]; then
    echo "==> scripts/validate.sh (skipped: SKIP_VALIDATOR=1)"
else
    echo "==> scripts/validate.sh"
    scripts/validate.sh
fi
