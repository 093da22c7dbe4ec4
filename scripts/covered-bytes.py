#!/usr/bin/env python3
"""The bytes of the stored tiles a list of IIIF region requests covers, for the S3 benchmark.

    tiles.py urls ... | scripts/covered-bytes.py IMAGE      -> prints one number

Reads IIIF Image API URLs (.../{x},{y},{w},{h}/{W},/...) on stdin. For a tiled TIFF (classic
or BigTIFF, levels as the main IFD chain, as libvips writes pyramids): the level a request reads
is the smallest one at least as large as the output, and the covered bytes are the TileByteCounts
of the tiles of that level the region intersects. For a JPEG 2000: the tile-parts (Psot, walked
from the SOT markers) of the tiles the region intersects, all resolutions (an upper bound of
what a reader needs). Each tile counts once.
"""
import re
import struct
import sys


def tiff_levels(data):
    order = {b"II": "<", b"MM": ">"}[data[:2]]
    magic = struct.unpack(order + "H", data[2:4])[0]
    big = magic == 43
    if big:
        off = struct.unpack(order + "Q", data[8:16])[0]
    else:
        off = struct.unpack(order + "I", data[4:8])[0]
    sizes = {1: 1, 2: 1, 3: 2, 4: 4, 16: 8}
    fmt = {1: "B", 2: "B", 3: "H", 4: "I", 16: "Q"}
    levels = []
    while off:
        if big:
            n = struct.unpack(order + "Q", data[off : off + 8])[0]
            at, esize, count_fmt = off + 8, 20, "Q"
        else:
            n = struct.unpack(order + "H", data[off : off + 2])[0]
            at, esize, count_fmt = off + 2, 12, "I"
        tags = {}
        for i in range(n):
            e = at + i * esize
            tag, typ = struct.unpack(order + "HH", data[e : e + 4])
            if typ not in sizes:
                continue
            count = struct.unpack(order + count_fmt, data[e + 4 : e + 4 + (8 if big else 4)])[0]
            vpos = e + (12 if big else 8)
            inline = 8 if big else 4
            total = sizes[typ] * count
            if total > inline:
                vpos = struct.unpack(order + ("Q" if big else "I"), data[vpos : vpos + inline])[0]
            tags[tag] = list(struct.unpack(order + fmt[typ] * count, data[vpos : vpos + total]))
        nxt = at + n * esize
        off = struct.unpack(order + ("Q" if big else "I"), data[nxt : nxt + (8 if big else 4)])[0]
        if 322 in tags and 325 in tags:
            levels.append(
                dict(w=tags[256][0], h=tags[257][0], tw=tags[322][0], th=tags[323][0], counts=tags[325])
            )
    return levels


def tiff_covered(data, requests):
    levels = tiff_levels(data)
    full_w = levels[0]["w"]
    seen, total = set(), 0
    for x, y, w, h, out_w in requests:
        need = full_w * out_w / w
        # A level a pixel or two short (rounded down when halved) still serves the size.
        fit = [i for i, l in enumerate(levels) if l["w"] >= need * 0.995]
        li = fit[-1] if fit else 0
        lv = levels[li]
        s = lv["w"] / full_w
        across = -(-lv["w"] // lv["tw"])
        c0, c1 = int(x * s) // lv["tw"], int((x + w) * s - 1e-9) // lv["tw"]
        r0, r1 = int(y * s) // lv["th"], int((y + h) * s - 1e-9) // lv["th"]
        for r in range(r0, r1 + 1):
            for c in range(c0, min(c1, across - 1) + 1):
                k = (li, r * across + c)
                if k not in seen and k[1] < len(lv["counts"]):
                    seen.add(k)
                    total += lv["counts"][k[1]]
    return total


def jp2_covered(data, requests):
    soc = data.find(b"\xff\x4f\xff\x51")
    siz = soc + 2
    (_, _, xsiz, ysiz, xo, yo, xt, yt, xto, yto) = struct.unpack(">HHIIIIIIII", data[siz + 2 : siz + 38])
    across = -(-(xsiz - xto) // xt)
    # Walk the tile-parts from the first SOT.
    pos = data.find(b"\xff\x90", siz)
    tile_bytes = {}
    while pos >= 0 and data[pos : pos + 2] == b"\xff\x90":
        _, isot, psot = struct.unpack(">HHI", data[pos + 2 : pos + 10])
        if psot == 0:
            psot = len(data) - pos
        tile_bytes[isot] = tile_bytes.get(isot, 0) + psot
        pos += psot
    seen, total = set(), 0
    for x, y, w, h, _ in requests:
        c0, c1 = (x + xo - xto) // xt, (x + w + xo - xto - 1) // xt
        r0, r1 = (y + yo - yto) // yt, (y + h + yo - yto - 1) // yt
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                t = r * across + c
                if t not in seen:
                    seen.add(t)
                    total += tile_bytes.get(t, 0)
    return total


def main():
    data = open(sys.argv[1], "rb").read()
    requests = []
    for line in sys.stdin:
        m = re.search(r"/(\d+),(\d+),(\d+),(\d+)/(\d+),", line)
        if m:
            requests.append(tuple(int(g) for g in m.groups()))
    if data[:2] in (b"II", b"MM"):
        print(tiff_covered(data, requests))
    else:
        print(jp2_covered(data, requests))


if __name__ == "__main__":
    main()
