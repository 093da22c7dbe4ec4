#!/usr/bin/env bash
# The one test command: formatting, lints, unit/integration/doc tests, and the
# official IIIF validator against the `serve` example.
#
# Usage: scripts/test.sh               (from any directory)
# Env:   SKIP_VALIDATOR=1   skip the validator step (quick local runs)
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

if [[ "${SKIP_VALIDATOR:-0}" == "1" ]]; then
    echo "==> scripts/validate.sh (skipped: SKIP_VALIDATOR=1)"
else
    echo "==> scripts/validate.sh"
    scripts/validate.sh
fi
