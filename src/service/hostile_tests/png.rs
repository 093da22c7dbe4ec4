//! The PNG suite's files: chunk writing and editing, and the hostile PNGs.

use super::tiff::exif_tiff;
use super::*;

/// One PNG chunk, its CRC computed.
pub(super) fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[4..]);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// An IHDR chunk.
pub(super) fn png_ihdr(width: u32, height: u32, depth: u8, color: u8, interlace: u8) -> Vec<u8> {
    let mut data = width.to_be_bytes().to_vec();
    data.extend_from_slice(&height.to_be_bytes());
    data.extend_from_slice(&[depth, color, 0, 0, interlace]);
    png_chunk(b"IHDR", &data)
}

/// A PNG of `ihdr`, the `middle` chunks and IEND.
pub(super) fn png_file(ihdr: Vec<u8>, middle: &[Vec<u8>]) -> Vec<u8> {
    let mut out = PNG_SIGNATURE.to_vec();
    out.extend(ihdr);
    for chunk in middle {
        out.extend_from_slice(chunk);
    }
    out.extend(png_chunk(b"IEND", &[]));
    out
}

/// The chunks of a PNG: (offset, type, data length), as far as they fit in the file.
fn png_chunks(b: &[u8]) -> Vec<(usize, [u8; 4], usize)> {
    let mut out = Vec::new();
    let mut at = 8;
    while at + 12 <= b.len() {
        let len = be32(b, at);
        if len > b.len() - at - 12 {
            break;
        }
        let kind = [b[at + 4], b[at + 5], b[at + 6], b[at + 7]];
        out.push((at, kind, len));
        at += 12 + len;
    }
    out
}

/// Recompute the CRC of every chunk that fits, so that corruptions reach the decoder.
fn png_fix_crcs(b: &mut [u8]) {
    for (at, _, len) in png_chunks(b) {
        let crc = crc32(&b[at + 4..at + 8 + len]);
        put_be32(b, at + 8 + len, crc);
    }
}

/// A PNG with its 13 IHDR data bytes changed by `edit`, and the CRC fixed.
fn png_set_ihdr(base: &[u8], edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    patched(base, |b| {
        edit(&mut b[16..29]);
        let crc = crc32(&b[12..29]);
        put_be32(b, 29, crc);
    })
}

/// A PNG whose IHDR says `width` x `height`.
fn png_with_size(base: &[u8], width: u32, height: u32) -> Vec<u8> {
    png_set_ihdr(base, |d| {
        d[..4].copy_from_slice(&width.to_be_bytes());
        d[4..8].copy_from_slice(&height.to_be_bytes());
    })
}

/// An fcTL chunk's data: frame 0 of `w` x `h` at `x`, `y`.
fn png_fctl(w: u32, h: u32, x: u32, y: u32) -> Vec<u8> {
    let mut d = 0u32.to_be_bytes().to_vec();
    for v in [w, h, x, y] {
        d.extend_from_slice(&v.to_be_bytes());
    }
    d.extend_from_slice(&[0, 1, 0, 1, 0, 0]);
    d
}

/// An acTL chunk's data.
fn png_actl(frames: u32, plays: u32) -> Vec<u8> {
    let mut d = frames.to_be_bytes().to_vec();
    d.extend_from_slice(&plays.to_be_bytes());
    d
}

/// The PNG suite: the base (300 x 200 RGB), a hand-made gray one, mutations (corruptions with
/// and without fixed CRCs) and specials.
pub(super) fn png_cases() -> Vec<Case> {
    const F: &str = "png";
    let base = encode(&base_pixels(), Format::Png);
    let chunks = png_chunks(&base);
    let idat = chunks.iter().find(|c| &c.1 == b"IDAT").expect("an IDAT").0;
    let headers: Vec<usize> = chunks.iter().flat_map(|c| [c.0, c.0 + 8]).collect();
    let rows: Vec<u8> = gradient(64, 48)
        .chunks(64)
        .flat_map(|row| std::iter::once(0).chain(row.iter().copied()))
        .collect();
    let handmade = png_file(
        png_ihdr(64, 48, 8, 0, 0),
        &[png_chunk(b"IDAT", &zlib(&rows))],
    );

    let mut cases = vec![
        Case::valid(F, "png-base", base.clone(), BASE),
        Case::valid(F, "png-handmade-gray", handmade, (64, 48)),
    ];
    cases.extend(mutations(F, "png", &base, &headers, 2));
    cases.extend(
        corruptions(F, "png-crcfixed", &base, 3)
            .into_iter()
            .map(|mut c| {
                png_fix_crcs(&mut c.bytes);
                c
            }),
    );

    let ihdr_byte = |at: usize, v: u8| png_set_ihdr(&base, |d| d[at] = v);
    let before_idat = |chunks: &[Vec<u8>]| splice(&base, idat, 0, &chunks.concat());
    let z64 = zlib_zeros(64 << 20);
    let with_z64 = |head: &[u8]| [head, z64.as_slice()].concat();
    let empty_idats: Vec<Vec<u8>> = (0..100_000).map(|_| png_chunk(b"IDAT", &[])).collect();
    cases.extend(named(
        F,
        "png",
        vec![
            ("ihdr-65535x65535", png_with_size(&base, 65535, 65535)),
            ("ihdr-0x0", png_with_size(&base, 0, 0)),
            ("ihdr-0x200", png_with_size(&base, 0, 200)),
            ("ihdr-300x0", png_with_size(&base, 300, 0)),
            (
                "ihdr-2147483647-square",
                png_with_size(&base, 0x7FFF_FFFF, 0x7FFF_FFFF),
            ),
            ("ihdr-1x2147483647", png_with_size(&base, 1, 0x7FFF_FFFF)),
            ("ihdr-4294967295x1", png_with_size(&base, u32::MAX, 1)),
            ("ihdr-depth-3", ihdr_byte(8, 3)),
            ("ihdr-depth-16", ihdr_byte(8, 16)),
            ("ihdr-color-5", ihdr_byte(9, 5)),
            ("ihdr-gray", ihdr_byte(9, 0)),
            ("ihdr-palette-without-plte", ihdr_byte(9, 3)),
            ("ihdr-compression-1", ihdr_byte(10, 1)),
            ("ihdr-filter-1", ihdr_byte(11, 1)),
            ("ihdr-interlaced", ihdr_byte(12, 1)),
            ("ihdr-interlace-7", ihdr_byte(12, 7)),
            ("ihdr-bad-crc", patched(&base, |b| b[29] ^= 0xFF)),
            (
                "ihdr-length-huge",
                patched(&base, |b| put_be32(b, 8, 0x7FFF_FFFF)),
            ),
            ("ihdr-length-0", patched(&base, |b| put_be32(b, 8, 0))),
            (
                "idat-length-huge",
                patched(&base, |b| put_be32(b, idat, 0x7FFF_FFFF)),
            ),
            ("zlib-header-ffff", {
                let mut b = patched(&base, |b| b[idat + 8..idat + 10].fill(0xFF));
                png_fix_crcs(&mut b);
                b
            }),
            ("zlib-preset-dictionary", {
                let mut b = patched(&base, |b| b[idat + 9] = 0xBB);
                png_fix_crcs(&mut b);
                b
            }),
            ("zlib-data-zeros", {
                let len = be32(&base, idat);
                let mut b = patched(&base, |b| b[idat + 10..idat + 8 + len].fill(0));
                png_fix_crcs(&mut b);
                b
            }),
            ("many-empty-idat", before_idat(&empty_idats)),
            (
                "idat-missing",
                [&base[..idat], png_chunk(b"IEND", &[]).as_slice()].concat(),
            ),
            ("iend-first", splice(&base, 8, 0, &png_chunk(b"IEND", &[]))),
            (
                // 16 Mpx of zeros in 16 KB: a real image, decoded (slowly in a debug build).
                "deflate-bomb-4000x4000",
                png_file(
                    png_ihdr(4_000, 4_000, 8, 0, 0),
                    &[png_chunk(b"IDAT", &zlib_zeros(4_001 * 4_000))],
                ),
            ),
            (
                "deflate-trailing-bomb",
                png_file(
                    png_ihdr(64, 64, 8, 0, 0),
                    &[png_chunk(b"IDAT", &zlib_zeros(100 << 20))],
                ),
            ),
            (
                "deflate-bomb-65535-rgba",
                png_file(
                    png_ihdr(65535, 65535, 8, 6, 0),
                    &[png_chunk(b"IDAT", &zlib_zeros(16 << 20))],
                ),
            ),
            (
                "deflate-bomb-interlaced-20000",
                png_file(
                    png_ihdr(20_000, 20_000, 8, 0, 1),
                    &[png_chunk(b"IDAT", &zlib_zeros(16 << 20))],
                ),
            ),
            (
                "iccp-bomb",
                before_idat(&[png_chunk(b"iCCP", &with_z64(b"icc\0\0"))]),
            ),
            (
                "ztxt-bomb",
                before_idat(&[png_chunk(b"zTXt", &with_z64(b"Comment\0\0"))]),
            ),
            (
                "itxt-bomb",
                before_idat(&[png_chunk(b"iTXt", &with_z64(b"Comment\0\x01\x00\0\0"))]),
            ),
            (
                "exif-loop",
                before_idat(&[png_chunk(b"eXIf", &exif_tiff(1, 1, 8))]),
            ),
            (
                "exif-count-65535",
                before_idat(&[png_chunk(b"eXIf", &exif_tiff(0xFFFF, 1, 0))]),
            ),
            (
                "exif-orientation-9999",
                before_idat(&[png_chunk(b"eXIf", &exif_tiff(1, 9999, 0))]),
            ),
            (
                "actl-frame-bomb",
                before_idat(&[
                    png_chunk(b"acTL", &png_actl(0x7FFF_FFFF, 0)),
                    png_chunk(b"fcTL", &png_fctl(65535, 65535, 0, 0)),
                ]),
            ),
            (
                "fctl-offset-bomb",
                before_idat(&[
                    png_chunk(b"acTL", &png_actl(1, 0)),
                    png_chunk(b"fcTL", &png_fctl(300, 200, 0xFFFF_FF00, 0xFFFF_FF00)),
                ]),
            ),
            (
                "actl-zero-frames",
                before_idat(&[png_chunk(b"acTL", &png_actl(0, 0))]),
            ),
        ],
    ));
    cases
}
