#!/usr/bin/env bash
# What the default build needs besides cargo and a C compiler: cmake and nasm, with which the
# `turbojpeg` feature (on by default) builds libjpeg-turbo from its bundled sources. Installs
# them with apt when they are missing and this runs as root (or with sudo); otherwise says
# what to do. Sourced or run by scripts/demo.sh and scripts/test.sh.
set -euo pipefail

if command -v cmake >/dev/null 2>&1 && command -v nasm >/dev/null 2>&1; then
    exit 0
fi
if [[ "$(id -u)" -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "build-deps.sh: the default build needs cmake and nasm (for libjpeg-turbo);" >&2
    echo "    install them, or build with --no-default-features (slower JPEG paths)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "build-deps.sh: no apt-get here: install cmake and nasm with your package manager" >&2
    exit 1
fi
echo "==> apt-get install cmake nasm (libjpeg-turbo's build, for the default turbojpeg feature)"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq cmake nasm >/dev/null
