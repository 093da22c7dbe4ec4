//! The tiled TIFF suite's files: hostile variants of the Deflate and JPEG pyramids.

use super::tiff::{
    tiff_chain, tiff_entry, tiff_entry_bytes, tiff_headers, tiff_next_field, tiff_put,
    tiff_set_all, tiff_set_count, tiff_set_value_field, tiff_with_entries, tiff_with_size,
};
use super::*;

/// The tiled TIFF suite: the Deflate and JPEG pyramids of `crate::tiff::tests` (300 x 200, 150 x
/// 100, 75 x 50 in 64-pixel tiles), mutations and specials of each.
pub(super) fn tiled_tiff_cases() -> Vec<Case> {
    const F: &str = "tiff-tiled";
    let (deflate, _) = crate::tiff::tests::deflate_rgb_pyramid();
    let (jpeg, _) = crate::tiff::tests::jpeg_rgb_pyramid(false);
    let mut cases = Vec::new();
    for (prefix, file, seed) in [
        ("tiff-pyr-deflate", &deflate, 6),
        ("tiff-pyr-jpeg", &jpeg, 7),
    ] {
        cases.push(Case::valid(F, prefix, file.clone(), BASE));
        cases.extend(mutations(F, prefix, file, &tiff_headers(file), seed));
        cases.extend(named(F, prefix, tiled_specials(file)));
    }
    cases
}

/// The hostile variants of a tiled pyramid's structure.
fn tiled_specials(file: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let chain = tiff_chain(file);
    assert_eq!(chain.len(), 3, "three levels in the main chain");
    let len = file.len() as u32;
    let put = |index: usize, tag: u16, typ: u16, v: u32| tiff_put(file, index, tag, typ, v);
    let tiles = |w: u32, h: u32| tiff_put(&tiff_put(file, 0, 322, 4, w), 0, 323, 4, h);
    let next = |index: usize, target: usize| {
        let at = tiff_next_field(file, chain[index]);
        patched(file, |b| put_le32(b, at, target as u32))
    };
    let subifd = |index: usize, typ: u16, count: u32, value: u32| {
        tiff_with_entries(file, index, |_| {
            vec![tiff_entry_bytes(330, typ, count, value)]
        })
    };
    let mut list = vec![
        ("dims-65535x65535", tiff_with_size(file, 0, 65535, 65535)),
        (
            "dims-100000x100000",
            tiff_with_size(file, 0, 100_000, 100_000),
        ),
        ("dims-0-wide", put(0, 256, 4, 0)),
        (
            "level1-larger-than-level0",
            tiff_with_size(file, 1, 600, 400),
        ),
        (
            "level2-as-large-as-level0",
            tiff_with_size(file, 2, 300, 200),
        ),
        ("level1-0x0", tiff_with_size(file, 1, 0, 0)),
        ("tile-65536", tiles(65536, 65536)),
        ("tile-0", tiles(0, 0)),
        ("tile-17", tiles(17, 17)),
        (
            "tile-16-dims-100000",
            tiff_with_size(&tiles(16, 16), 0, 100_000, 100_000),
        ),
        (
            "tile-offsets-past-end",
            tiff_set_all(file, 0, 324, len + 1000),
        ),
        (
            "tile-offsets-max",
            tiff_set_all(file, 0, 324, u32::MAX - 16),
        ),
        ("tile-counts-huge", tiff_set_all(file, 0, 325, 0xFFFF_FFF0)),
        ("tile-counts-0", tiff_set_all(file, 0, 325, 0)),
        (
            "tile-offsets-count-huge",
            tiff_set_count(file, 0, 324, 0x3FFF_FFFF),
        ),
        ("tile-offsets-count-1", tiff_set_count(file, 0, 324, 1)),
        (
            "tile-offsets-pointer-past-end",
            tiff_set_value_field(file, 0, 324, len + 100),
        ),
        (
            "level1-tile-offsets-past-end",
            tiff_set_all(file, 1, 324, len + 1000),
        ),
        (
            "level2-tile-counts-huge",
            tiff_set_all(file, 2, 325, 0xFFFF_FFF0),
        ),
        ("compression-lzw", put(0, 259, 3, 5)),
        ("compression-deflate", put(0, 259, 3, 8)),
        ("compression-jpeg", put(0, 259, 3, 7)),
        ("compression-12345", put(0, 259, 3, 12345)),
        ("compression-packbits", put(0, 259, 3, 32773)),
        ("compression-zstd", put(0, 259, 3, 50000)),
        ("compression-webp", put(0, 259, 3, 50001)),
        ("compression-fax4", put(0, 259, 3, 4)),
        ("photometric-ycbcr", put(0, 262, 3, 6)),
        ("photometric-palette", put(0, 262, 3, 3)),
        ("samples-1", put(0, 277, 3, 1)),
        ("samples-65535", put(0, 277, 3, 65535)),
        ("bits-0", tiff_set_all(file, 0, 258, 0)),
        ("bits-16", tiff_set_all(file, 0, 258, 16)),
        ("planar-2", put(0, 284, 3, 2)),
        ("predictor-2", put(0, 317, 3, 2)),
        ("orientation-9999", put(0, 274, 3, 9999)),
        ("ifd-loop-self", next(0, chain[0])),
        ("ifd-loop-level1-self", next(1, chain[1])),
        ("ifd-loop-back-to-first", next(2, chain[0])),
        ("ifd-loop-back-to-level1", next(2, chain[1])),
        ("next-ifd-past-end", next(0, file.len() + 100)),
        ("next-ifd-in-header", next(1, 4)),
        (
            "subifd-self",
            tiff_with_entries(file, 0, |new| {
                vec![tiff_entry_bytes(330, 13, 1, new as u32)]
            }),
        ),
        (
            "subifd-first-from-level1",
            subifd(1, 13, 1, chain[0] as u32),
        ),
        (
            "subifd-level1-from-first",
            subifd(0, 13, 1, chain[1] as u32),
        ),
        ("subifds-count-huge", subifd(0, 4, 0x3FFF_FFFF, len + 64)),
        ("subifds-past-end", subifd(0, 13, 1, len + 64)),
        (
            "first-ifd-past-end",
            patched(file, |b| put_le32(b, 4, len + 100)),
        ),
        (
            "entries-65535",
            patched(file, |b| put_le16(b, chain[0], 65535)),
        ),
        (
            "level1-entries-65535",
            patched(file, |b| put_le16(b, chain[1], 65535)),
        ),
        ("level1-not-reduced", put(1, 254, 4, 0)),
    ];
    if tiff_entry(file, chain[0], 347).is_some() {
        list.extend([
            (
                "jpegtables-past-end",
                tiff_set_value_field(file, 0, 347, len + 100),
            ),
            (
                "jpegtables-count-huge",
                tiff_set_count(file, 0, 347, 0x3FFF_FFFF),
            ),
            ("jpegtables-count-2", tiff_set_count(file, 0, 347, 2)),
        ]);
    }
    list
}
