#!/usr/bin/env bash
# Vendors the browser viewers of the `serve` example from the npm registry, so that its pages
# work offline: the files land in examples/serve/viewer/ and are embedded into the binary by
# examples/serve/viewer.rs.
#
#   examples/serve/viewer/openseadragon/  openseadragon.min.js, images/*.png, LICENSE.txt, VERSION
#   examples/serve/viewer/mirador/        mirador.min.js (self-contained UMD), LICENSE, VERSION
#
# Usage: scripts/vendor-viewers.sh       (from any directory; needs node and npm)
# Env:   OSD_SPEC=openseadragon@6        the npm spec of OpenSeadragon to vendor
#        MIRADOR_SPEC=mirador@4          the npm spec of Mirador to vendor
#
# Only the packages' own tarballs are fetched (`npm pack`: no dependencies are installed, no
# install scripts run). Source maps are left out. After a version bump, check that the list of
# images in examples/serve/viewer.rs still matches (this script warns when it does not).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

OSD_SPEC=${OSD_SPEC:-openseadragon@6}
MIRADOR_SPEC=${MIRADOR_SPEC:-mirador@4}
# The largest Mirador bundle we are willing to embed into the example binary.
MIRADOR_MAX_BYTES=$((4 * 1024 * 1024))

dest=examples/serve/viewer
viewer_rs=examples/serve/viewer.rs

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Fetches one package's tarball with `npm pack` and unpacks it into $tmp/<name>/package.
fetch() {
    local spec=$1 name=$2 tarball
    mkdir -p "$tmp/$name"
    tarball=$(cd "$tmp/$name" && npm pack --silent "$spec" | tail -n 1)
    tar -xzf "$tmp/$name/$tarball" -C "$tmp/$name"
}

# The `version` field of an unpacked package.
version_of() {
    node -p 'require(process.argv[1]).version' "$1/package.json"
}

# Copies a file, failing with a clear message when the package no longer ships it.
need() {
    if [[ ! -f $1 ]]; then
        echo "error: the package has no ${1#"$tmp"/} (layout changed?)" >&2
        exit 1
    fi
}

# --- OpenSeadragon ---------------------------------------------------------------------------
echo "==> npm pack $OSD_SPEC"
fetch "$OSD_SPEC" osd
pkg=$tmp/osd/package
osd_version=$(version_of "$pkg")
build=$pkg/build/openseadragon
need "$build/openseadragon.min.js"
need "$pkg/LICENSE.txt"
shopt -s nullglob
images=("$build"/images/*.png)
shopt -u nullglob
if ((${#images[@]} == 0)); then
    echo "error: $OSD_SPEC ships no build/openseadragon/images/*.png" >&2
    exit 1
fi

out=$dest/openseadragon
rm -rf "$out"
mkdir -p "$out/images"
cp "$build/openseadragon.min.js" "$out/"
cp "${images[@]}" "$out/images/"
cp "$pkg/LICENSE.txt" "$out/LICENSE.txt"
echo "$osd_version" >"$out/VERSION"
echo "    openseadragon $osd_version -> $out (${#images[@]} images)"

# viewer.rs embeds each image explicitly: say so when the package's set changed.
if [[ -f $viewer_rs ]]; then
    for png in "${images[@]}"; do
        png=$(basename "$png")
        grep -qF "\"openseadragon/images/$png\"" "$viewer_rs" ||
            echo "warning: $viewer_rs does not embed images/$png" >&2
    done
fi

# --- Mirador ---------------------------------------------------------------------------------
echo "==> npm pack $MIRADOR_SPEC"
fetch "$MIRADOR_SPEC" mirador
pkg=$tmp/mirador/package
mirador_version=$(version_of "$pkg")
bundle=$pkg/dist/mirador.min.js
need "$bundle"
need "$pkg/LICENSE"
size=$(wc -c <"$bundle")
if ((size > MIRADOR_MAX_BYTES)); then
    echo "error: $bundle is $size bytes, over the $MIRADOR_MAX_BYTES we embed" >&2
    exit 1
fi
# A UMD bundle that sets the `Mirador` global needs no bundler and no other script.
start=$(head -c 400 "$bundle")
if [[ $start != *define.amd* || $start != *Mirador* ]]; then
    echo "error: $bundle is not a UMD bundle setting the Mirador global" >&2
    exit 1
fi

out=$dest/mirador
rm -rf "$out"
mkdir -p "$out"
cp "$bundle" "$out/"
cp "$pkg/LICENSE" "$out/LICENSE"
echo "$mirador_version" >"$out/VERSION"
echo "    mirador $mirador_version -> $out ($size bytes)"

echo "==> vendored into $dest:"
du -ab "$dest" | sort -k2
