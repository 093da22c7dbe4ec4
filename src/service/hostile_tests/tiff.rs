//! TIFF writing and IFD editing, EXIF TIFFs, and the strip TIFF suite's files.

use super::*;

/// One entry of a hand-written IFD: tag, type (3 SHORT, 4 LONG) and values.
struct Field(u16, u16, Vec<u32>);

/// The 12 bytes of a classic little-endian IFD entry holding `value` in its value field.
pub(super) fn tiff_entry_bytes(tag: u16, typ: u16, count: u32, value: u32) -> [u8; 12] {
    let mut e = [0u8; 12];
    e[..2].copy_from_slice(&tag.to_le_bytes());
    e[2..4].copy_from_slice(&typ.to_le_bytes());
    e[4..8].copy_from_slice(&count.to_le_bytes());
    e[8..].copy_from_slice(&value.to_le_bytes());
    e
}

/// A classic little-endian TIFF of one image: `data` at offset 8, then the IFD of `fields`
/// (sorted), then the values that do not fit in their entries.
fn tiff_file(data: &[u8], fields: &[Field]) -> Vec<u8> {
    let mut out = b"II*\0\0\0\0\0".to_vec();
    out.extend_from_slice(data);
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let ifd = out.len();
    put_le32(&mut out, 4, ifd as u32);
    let mut sorted: Vec<&Field> = fields.iter().collect();
    sorted.sort_by_key(|f| f.0);
    out.resize(ifd + 2 + 12 * sorted.len() + 4, 0);
    put_le16(&mut out, ifd, sorted.len() as u16);
    for (i, f) in sorted.into_iter().enumerate() {
        let e = ifd + 2 + 12 * i;
        let bytes: Vec<u8> =
            f.2.iter()
                .flat_map(|&v| match f.1 {
                    3 => (v as u16).to_le_bytes().to_vec(),
                    _ => v.to_le_bytes().to_vec(),
                })
                .collect();
        put_le16(&mut out, e, f.0);
        put_le16(&mut out, e + 2, f.1);
        put_le32(&mut out, e + 4, f.2.len() as u32);
        if bytes.len() <= 4 {
            out[e + 8..e + 8 + bytes.len()].copy_from_slice(&bytes);
        } else {
            let at = out.len();
            out.extend_from_slice(&bytes);
            put_le32(&mut out, e + 8, at as u32);
        }
    }
    out
}

/// A TIFF of one strip: `width` x `height`, `samples` 8-bit samples a pixel, `compression`,
/// `photometric`, all rows in `strip`.
pub(super) fn strip_tiff(
    width: u32,
    height: u32,
    samples: u16,
    compression: u16,
    photometric: u16,
    strip: &[u8],
) -> Vec<u8> {
    tiff_file(
        strip,
        &[
            Field(256, 4, vec![width]),
            Field(257, 4, vec![height]),
            Field(258, 3, vec![8; usize::from(samples)]),
            Field(259, 3, vec![u32::from(compression)]),
            Field(262, 3, vec![u32::from(photometric)]),
            Field(273, 4, vec![8]),
            Field(277, 3, vec![u32::from(samples)]),
            Field(278, 4, vec![height]),
            Field(279, 4, vec![strip.len() as u32]),
        ],
    )
}

/// Where the next-IFD offset of the IFD at `ifd` is.
pub(super) fn tiff_next_field(b: &[u8], ifd: usize) -> usize {
    ifd + 2 + 12 * le16(b, ifd)
}

/// The IFDs of the main chain of a classic little-endian TIFF (stopping at a loop).
pub(super) fn tiff_chain(b: &[u8]) -> Vec<usize> {
    assert!(b.starts_with(b"II*\0"), "a classic little-endian TIFF");
    let mut out = Vec::new();
    let mut at = le32(b, 4);
    while at != 0 && at + 2 <= b.len() && !out.contains(&at) && out.len() < 16 {
        out.push(at);
        at = le32(b, tiff_next_field(b, at));
    }
    out
}

/// The offset of the entry of `tag` in the IFD at `ifd`.
pub(super) fn tiff_entry(b: &[u8], ifd: usize, tag: u16) -> Option<usize> {
    (0..le16(b, ifd))
        .map(|i| ifd + 2 + 12 * i)
        .find(|&e| le16(b, e) == usize::from(tag))
}

/// The entry of `tag` in IFD `index` of the main chain (which must have it).
fn tiff_entry_in(b: &[u8], index: usize, tag: u16) -> usize {
    tiff_entry(b, tiff_chain(b)[index], tag).unwrap_or_else(|| panic!("no tag {tag}"))
}

/// A copy of `b` with IFD `index` of the main chain rewritten at the end of the file with the
/// entries `make` gives (from the new IFD's offset) added or replacing those of their tags, and
/// the offset that pointed at it pointing at the new one.
pub(super) fn tiff_with_entries(
    b: &[u8],
    index: usize,
    make: impl FnOnce(usize) -> Vec<[u8; 12]>,
) -> Vec<u8> {
    let chain = tiff_chain(b);
    let old = chain[index];
    let mut entries: Vec<[u8; 12]> = (0..le16(b, old))
        .map(|i| {
            let at = old + 2 + 12 * i;
            <[u8; 12]>::try_from(&b[at..at + 12]).expect("12 bytes")
        })
        .collect();
    let mut out = b.to_vec();
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let new = out.len();
    let extra = make(new);
    entries.retain(|e| !extra.iter().any(|x| x[..2] == e[..2]));
    entries.extend(extra);
    entries.sort_by_key(|e| u16::from_le_bytes([e[0], e[1]]));
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for e in &entries {
        out.extend_from_slice(e);
    }
    let next = tiff_next_field(b, old);
    out.extend_from_slice(&b[next..next + 4]);
    let pointer = match index {
        0 => 4,
        _ => tiff_next_field(b, chain[index - 1]),
    };
    put_le32(&mut out, pointer, new as u32);
    out
}

/// A copy of `b` with `tag` of IFD `index` set to one `value` of type `typ` (added if missing).
pub(super) fn tiff_put(b: &[u8], index: usize, tag: u16, typ: u16, value: u32) -> Vec<u8> {
    tiff_with_entries(b, index, |_| vec![tiff_entry_bytes(tag, typ, 1, value)])
}

/// A copy of `b` with ImageWidth and ImageLength of IFD `index` set.
pub(super) fn tiff_with_size(b: &[u8], index: usize, width: u32, height: u32) -> Vec<u8> {
    tiff_put(&tiff_put(b, index, 256, 4, width), index, 257, 4, height)
}

/// A copy of `b` with every value of `tag` (SHORT or LONG, in the entry or not) of IFD `index`
/// set to `value` (clamped for SHORT).
pub(super) fn tiff_set_all(b: &[u8], index: usize, tag: u16, value: u32) -> Vec<u8> {
    let e = tiff_entry_in(b, index, tag);
    let size = if le16(b, e + 2) == 3 { 2 } else { 4 };
    let count = le32(b, e + 4);
    let at = if count * size <= 4 {
        e + 8
    } else {
        le32(b, e + 8)
    };
    patched(b, |b| {
        for i in 0..count {
            match size {
                2 => put_le16(b, at + 2 * i, value.min(0xFFFF) as u16),
                _ => put_le32(b, at + 4 * i, value),
            }
        }
    })
}

/// A copy of `b` with the count field of `tag` of IFD `index` set.
pub(super) fn tiff_set_count(b: &[u8], index: usize, tag: u16, count: u32) -> Vec<u8> {
    let e = tiff_entry_in(b, index, tag);
    patched(b, |b| put_le32(b, e + 4, count))
}

/// A copy of `b` with the value field (a value or an offset) of `tag` of IFD `index` set.
pub(super) fn tiff_set_value_field(b: &[u8], index: usize, tag: u16, value: u32) -> Vec<u8> {
    let e = tiff_entry_in(b, index, tag);
    patched(b, |b| put_le32(b, e + 8, value))
}

/// The truncation boundaries of a TIFF: the header, and each IFD's start, entries and end.
pub(super) fn tiff_headers(b: &[u8]) -> Vec<usize> {
    let mut at = vec![4, 8];
    for ifd in tiff_chain(b) {
        at.extend([
            ifd,
            ifd + 2,
            ifd + 14,
            tiff_next_field(b, ifd),
            tiff_next_field(b, ifd) + 4,
        ]);
    }
    at
}

/// A little-endian EXIF TIFF (as in a JPEG's APP1 or a PNG's eXIf) of one IFD that says it has
/// `count` entries, holds one (Orientation `orientation`), and whose next IFD is at `next`.
pub(super) fn exif_tiff(count: u16, orientation: u16, next: u32) -> Vec<u8> {
    let mut t = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&count.to_le_bytes());
    t.extend_from_slice(&tiff_entry_bytes(274, 3, 1, u32::from(orientation)));
    t.extend_from_slice(&next.to_le_bytes());
    t
}

/// The strip TIFF suite: the crate's encoder's TIFF (300 x 200 RGB, Deflate), hand-made gray
/// ones (Deflate, LZW), mutations and specials.
pub(super) fn strip_tiff_cases() -> Vec<Case> {
    const F: &str = "tiff-strip";
    let base = encode(&base_pixels(), Format::Tif);
    let ifd = tiff_chain(&base)[0];
    let end = tiff_next_field(&base, ifd);
    let len = base.len() as u32;
    let gray = gradient(64, 48);

    let mut cases = vec![
        Case::valid(F, "tiff-strip-base", base.clone(), BASE),
        Case::valid(
            F,
            "tiff-strip-handmade-deflate",
            strip_tiff(64, 48, 1, 8, 1, &zlib(&gray)),
            (64, 48),
        ),
        Case::valid(
            F,
            "tiff-strip-handmade-lzw",
            strip_tiff(64, 48, 1, 5, 1, &lzw_tiff(&gray)),
            (64, 48),
        ),
    ];
    cases.extend(mutations(F, "tiff-strip", &base, &tiff_headers(&base), 4));

    let put = |tag: u16, typ: u16, v: u32| tiff_put(&base, 0, tag, typ, v);
    let all = |tag: u16, v: u32| tiff_set_all(&base, 0, tag, v);
    let header = |at: usize, v: u32| patched(&base, |b| put_le32(b, at, v));
    let entry_type = |v: u16| {
        let e = tiff_entry_in(&base, 0, 256);
        patched(&base, |b| put_le16(b, e + 2, v))
    };
    let mut rng = Rng::new(5);
    let big_tiff = |offset_size: u16, first: u64, tail: Vec<u8>| {
        let mut b = b"II+\0".to_vec();
        b.extend_from_slice(&offset_size.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&first.to_le_bytes());
        b.extend(tail);
        b
    };
    cases.extend(named(
        F,
        "tiff-strip",
        vec![
            ("65535x65535", tiff_with_size(&base, 0, 65535, 65535)),
            ("100000x100000", tiff_with_size(&base, 0, 100_000, 100_000)),
            ("0-wide", put(256, 4, 0)),
            ("0-high", put(257, 4, 0)),
            ("1x4294967295", tiff_with_size(&base, 0, 1, u32::MAX)),
            ("rows-per-strip-0", put(278, 4, 0)),
            ("rows-per-strip-max", put(278, 4, u32::MAX)),
            ("rows-per-strip-1", put(278, 4, 1)),
            ("offsets-past-end", all(273, len + 1000)),
            ("offsets-max", all(273, u32::MAX - 16)),
            ("counts-huge", all(279, 0xFFFF_FFF0)),
            ("counts-0", all(279, 0)),
            (
                "offsets-count-huge",
                tiff_set_count(&base, 0, 273, 0x3FFF_FFFF),
            ),
            (
                "counts-count-huge",
                tiff_set_count(&base, 0, 279, 0x3FFF_FFFF),
            ),
            ("offsets-count-0", tiff_set_count(&base, 0, 273, 0)),
            ("bits-0", all(258, 0)),
            ("bits-3", all(258, 3)),
            ("bits-16", all(258, 16)),
            ("bits-64", all(258, 64)),
            (
                "bits-count-huge",
                tiff_set_count(&base, 0, 258, 0x3FFF_FFFF),
            ),
            ("samples-0", put(277, 3, 0)),
            ("samples-1", put(277, 3, 1)),
            ("samples-65535", put(277, 3, 65535)),
            ("compression-12345", put(259, 3, 12345)),
            ("compression-lzw-on-deflate", put(259, 3, 5)),
            ("compression-jpeg-on-deflate", put(259, 3, 7)),
            ("compression-old-jpeg", put(259, 3, 6)),
            ("compression-packbits-on-deflate", put(259, 3, 32773)),
            ("compression-zstd-on-deflate", put(259, 3, 50000)),
            ("compression-none-on-deflate", put(259, 3, 1)),
            ("compression-fax3-on-deflate", put(259, 3, 3)),
            ("compression-fax4-on-deflate", put(259, 3, 4)),
            (
                "fax4-garbage",
                strip_tiff(64, 64, 1, 4, 0, &rng.bytes(4096)),
            ),
            (
                "fax4-garbage-65535",
                strip_tiff(65535, 65535, 1, 4, 0, &rng.bytes(4096)),
            ),
            ("gray-with-3-samples", put(262, 3, 1)),
            ("palette-without-colormap", put(262, 3, 3)),
            ("photometric-ycbcr", put(262, 3, 6)),
            ("photometric-cmyk-3-samples", put(262, 3, 5)),
            ("photometric-cielab", put(262, 3, 8)),
            ("photometric-999", put(262, 3, 999)),
            ("planar-2", put(284, 3, 2)),
            ("planar-9", put(284, 3, 9)),
            ("predictor-2", put(317, 3, 2)),
            ("predictor-3", put(317, 3, 3)),
            ("predictor-99", put(317, 3, 99)),
            ("orientation-0", put(274, 3, 0)),
            ("orientation-8", put(274, 3, 8)),
            ("orientation-9999", put(274, 3, 9999)),
            ("extra-samples-99", put(338, 3, 99)),
            ("sample-format-float", put(339, 3, 3)),
            ("sample-format-signed", put(339, 3, 2)),
            ("entry-type-0", entry_type(0)),
            ("entry-type-99", entry_type(99)),
            ("ifd-past-end", header(4, len + 100)),
            ("ifd-max", header(4, u32::MAX - 1)),
            ("ifd-0", header(4, 0)),
            ("ifd-in-header", header(4, 2)),
            ("ifd-odd", header(4, ifd as u32 + 1)),
            ("entries-65535", patched(&base, |b| put_le16(b, ifd, 65535))),
            ("entries-0", patched(&base, |b| put_le16(b, ifd, 0))),
            ("ifd-loop-self", header(end, ifd as u32)),
            ("next-ifd-past-end", header(end, len + 100)),
            ("next-ifd-in-header", header(end, 4)),
            (
                "subifd-self",
                tiff_with_entries(&base, 0, |new| {
                    vec![tiff_entry_bytes(330, 13, 1, new as u32)]
                }),
            ),
            (
                "subifds-count-huge",
                tiff_with_entries(&base, 0, |_| {
                    vec![tiff_entry_bytes(330, 4, 0x3FFF_FFFF, len + 64)]
                }),
            ),
            (
                "exif-ifd-self",
                tiff_with_entries(&base, 0, |new| {
                    vec![tiff_entry_bytes(34665, 4, 1, new as u32)]
                }),
            ),
            (
                "deflate-bomb",
                strip_tiff(64, 64, 1, 8, 1, &zlib_zeros(100 << 20)),
            ),
            (
                "deflate-bomb-1000",
                strip_tiff(1000, 1000, 1, 8, 1, &zlib_zeros(100 << 20)),
            ),
            (
                "deflate-bomb-65535",
                strip_tiff(65535, 65535, 3, 8, 2, &zlib_zeros(1 << 20)),
            ),
            (
                "lzw-bomb",
                strip_tiff(64, 64, 1, 5, 1, &lzw_tiff(&vec![0; 32 << 20])),
            ),
            ("lzw-garbage", strip_tiff(64, 64, 1, 5, 1, &rng.bytes(4096))),
            (
                "lzw-garbage-65535",
                strip_tiff(65535, 65535, 1, 5, 1, &rng.bytes(65536)),
            ),
            (
                "lzw-clear-codes",
                strip_tiff(64, 64, 1, 5, 1, &lzw_clear_codes(100_000)),
            ),
            (
                "packbits-bomb",
                strip_tiff(64, 64, 1, 32773, 1, &[0x81u8, 0].repeat(100_000)),
            ),
            (
                "deflate-garbage",
                strip_tiff(64, 64, 1, 8, 1, &rng.bytes(4096)),
            ),
            (
                "jpeg-garbage",
                strip_tiff(64, 64, 3, 7, 6, &rng.bytes(4096)),
            ),
            (
                "bigtiff-ifd-past-end",
                big_tiff(8, u64::MAX - 7, rng.bytes(64)),
            ),
            ("bigtiff-offset-size-16", big_tiff(16, 16, vec![0; 64])),
            (
                "bigtiff-entries-huge",
                big_tiff(
                    8,
                    16,
                    [u64::MAX.to_le_bytes().as_slice(), &[0u8; 64][..]].concat(),
                ),
            ),
            (
                "big-endian-entries-65535",
                [
                    b"MM\0*\0\0\0\x08\xFF\xFF".as_slice(),
                    rng.bytes(128).as_slice(),
                ]
                .concat(),
            ),
        ],
    ));
    cases
}
