//! The ICC suite's files: hostile ICC profiles in every container that carries one.

use super::jp2::{jp2_box_bytes, jp2_fixture, jp2_with_jp2h};
use super::png::png_chunk;
use super::tiff::{tiff_entry_bytes, tiff_with_entries};
use super::webp::{riff_chunk, riff_chunk_at, riff_file, vp8x_chunk};
use super::*;

/// `v` as an ICC s15Fixed16Number.
fn s15f16(v: f64) -> [u8; 4] {
    ((v * 65536.0).round() as i32).to_be_bytes()
}

/// An ICC `XYZ ` tag.
fn icc_xyz(x: f64, y: f64, z: f64) -> Vec<u8> {
    let mut t = b"XYZ \0\0\0\0".to_vec();
    for v in [x, y, z] {
        t.extend_from_slice(&s15f16(v));
    }
    t
}

/// An ICC `curv` tag that says it has `count` entries and holds `entries`.
fn icc_curve(count: u32, entries: &[u16]) -> Vec<u8> {
    let mut t = b"curv\0\0\0\0".to_vec();
    t.extend_from_slice(&count.to_be_bytes());
    for e in entries {
        t.extend_from_slice(&e.to_be_bytes());
    }
    t
}

/// An ICC `mft2` (lut16) tag header: `inputs` and `outputs` channels, a CLUT of `grid` points a
/// side, tables of 4096 entries; none of the tables or the CLUT follow.
fn icc_lut16(inputs: u8, outputs: u8, grid: u8) -> Vec<u8> {
    let mut t = b"mft2\0\0\0\0".to_vec();
    t.extend_from_slice(&[inputs, outputs, grid, 0]);
    for k in 0..9 {
        t.extend_from_slice(&s15f16(if k % 4 == 0 { 1.0 } else { 0.0 }));
    }
    t.extend_from_slice(&4096u16.to_be_bytes());
    t.extend_from_slice(&4096u16.to_be_bytes());
    t
}

/// The tags of a matrix/TRC RGB profile (Adobe RGB-like primaries adapted to D50, gamma 2.2),
/// or with `curve` as the three TRCs.
fn icc_matrix_tags(curve: Vec<u8>) -> Vec<([u8; 4], Vec<u8>)> {
    vec![
        (*b"wtpt", icc_xyz(0.9642, 1.0, 0.8249)),
        (*b"rXYZ", icc_xyz(0.6097, 0.3111, 0.0195)),
        (*b"gXYZ", icc_xyz(0.2053, 0.6257, 0.0609)),
        (*b"bXYZ", icc_xyz(0.1492, 0.0632, 0.7446)),
        (*b"rTRC", curve.clone()),
        (*b"gTRC", curve.clone()),
        (*b"bTRC", curve),
    ]
}

/// An ICC profile (version 4.3, display class, RGB data, XYZ connection space) of `tags`; its
/// header's size and tag count are the true ones unless given.
fn icc_profile(tags: &[([u8; 4], Vec<u8>)], size: Option<u32>, count: Option<u32>) -> Vec<u8> {
    let start = 128 + 4 + 12 * tags.len();
    let (mut table, mut data) = (Vec::new(), Vec::new());
    for (signature, body) in tags {
        table.extend_from_slice(signature);
        table.extend_from_slice(&((start + data.len()) as u32).to_be_bytes());
        table.extend_from_slice(&(body.len() as u32).to_be_bytes());
        data.extend_from_slice(body);
        data.resize(data.len().div_ceil(4) * 4, 0);
    }
    let mut p = vec![0u8; 128];
    put_be32(&mut p, 0, size.unwrap_or((start + data.len()) as u32));
    p[8..10].copy_from_slice(&[4, 0x30]);
    p[12..16].copy_from_slice(b"mntr");
    p[16..20].copy_from_slice(b"RGB ");
    p[20..24].copy_from_slice(b"XYZ ");
    p[36..40].copy_from_slice(b"acsp");
    for (k, v) in [0.9642, 1.0, 0.8249].into_iter().enumerate() {
        p[68 + 4 * k..72 + 4 * k].copy_from_slice(&s15f16(v));
    }
    p.extend_from_slice(&count.unwrap_or(tags.len() as u32).to_be_bytes());
    p.extend(table);
    p.extend(data);
    p
}

/// A profile whose tag table entries have their offset (`field` 4) or size (`field` 8) set to
/// `value`.
fn icc_with_table(profile: &[u8], tags: usize, field: usize, value: u32) -> Vec<u8> {
    patched(profile, |p| {
        for k in 0..tags {
            put_be32(p, 132 + 12 * k + field, value);
        }
    })
}

/// Hostile profiles, and one plausible one (`plausible`, whose images must render): (name,
/// bytes).
fn hostile_profiles() -> Vec<(&'static str, Vec<u8>)> {
    let gamma = icc_curve(1, &[0x0233]);
    let plausible = icc_profile(&icc_matrix_tags(gamma.clone()), None, None);
    let n = icc_matrix_tags(Vec::new()).len();
    let mut lut = icc_matrix_tags(gamma.clone());
    lut.push((*b"A2B0", icc_lut16(3, 3, 255)));
    let mut overflow = icc_matrix_tags(gamma);
    overflow.push((*b"A2B0", icc_lut16(15, 15, 255)));
    let mut garbage = Rng::new(17).bytes(2000);
    garbage[36..40].copy_from_slice(b"acsp");
    vec![
        ("plausible", plausible.clone()),
        ("size-max", icc_profile(&[], Some(u32::MAX), None)),
        ("size-0", icc_profile(&[], Some(0), None)),
        ("tag-count-max", icc_profile(&[], None, Some(u32::MAX))),
        (
            "tags-past-end",
            icc_with_table(&plausible, n, 4, 0xFFFF_FF00),
        ),
        ("tag-sizes-max", icc_with_table(&plausible, n, 8, u32::MAX)),
        ("tags-in-header", icc_with_table(&plausible, n, 4, 0)),
        (
            "curves-count-max",
            icc_profile(&icc_matrix_tags(icc_curve(u32::MAX, &[])), None, None),
        ),
        (
            "curves-parametric-99",
            icc_profile(
                &icc_matrix_tags(b"para\0\0\0\0\0\x63\0\0".to_vec()),
                None,
                None,
            ),
        ),
        ("lut16-grid-255", icc_profile(&lut, None, None)),
        ("lut16-15-channels", icc_profile(&overflow, None, None)),
        ("garbage", garbage),
    ]
}

/// APP2 `ICC_PROFILE` segments of `chunks` (sequence numbers `seq`, of `total`), inserted after
/// the SOI of `jpeg`.
fn jpeg_with_icc(jpeg: &[u8], chunks: &[(u8, &[u8])], total: u8) -> Vec<u8> {
    let mut segments = Vec::new();
    for &(seq, chunk) in chunks {
        segments.extend_from_slice(&[0xFF, 0xE2]);
        segments.extend_from_slice(&((2 + 12 + 2 + chunk.len()) as u16).to_be_bytes());
        segments.extend_from_slice(b"ICC_PROFILE\0");
        segments.extend_from_slice(&[seq, total]);
        segments.extend_from_slice(chunk);
    }
    splice(jpeg, 2, 0, &segments)
}

/// A PNG with an `iCCP` chunk of `profile` right after IHDR.
fn png_with_icc(png: &[u8], profile: &[u8]) -> Vec<u8> {
    let data = [b"icc\0\0".as_slice(), zlib(profile).as_slice()].concat();
    splice(png, 33, 0, &png_chunk(b"iCCP", &data))
}

/// A TIFF whose first image has an `ICCProfile` tag of `profile` (appended to the file), or of
/// `count` bytes when given.
fn tiff_with_icc(tiff: &[u8], profile: &[u8], count: Option<u32>) -> Vec<u8> {
    let mut out = tiff.to_vec();
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let at = out.len() as u32;
    out.extend_from_slice(profile);
    let count = count.unwrap_or(profile.len() as u32);
    tiff_with_entries(&out, 0, |_| vec![tiff_entry_bytes(34675, 7, count, at)])
}

/// A JP2 whose `colr` box holds `profile` (method 2, restricted ICC).
fn jp2_with_icc(jp2: &[u8], profile: &[u8]) -> Vec<u8> {
    let colr = jp2_box_bytes(b"colr", &[&[2u8, 0, 0][..], profile].concat());
    jp2_with_jp2h(jp2, |c| {
        c.retain(|x| x[4..8] != b"colr"[..]);
        c.push(colr);
    })
}

/// An extended WebP of `frame` (a whole VP8L chunk) with an `ICCP` chunk of `profile`.
fn webp_with_icc(frame: &[u8], profile: &[u8]) -> Vec<u8> {
    riff_file(&[
        vp8x_chunk(0x20, BASE.0, BASE.1),
        riff_chunk(b"ICCP", profile),
        frame.to_vec(),
    ])
}

/// The ICC suite: every hostile profile in every container, and JPEG chunking tricks.
pub(super) fn icc_cases() -> Vec<Case> {
    let jpeg = encode(&base_pixels(), Format::Jpg);
    let png = encode(&base_pixels(), Format::Png);
    let tiff = encode(&base_pixels(), Format::Tif);
    let (pyramid, _) = crate::tiff::tests::deflate_rgb_pyramid();
    let jp2 = jp2_fixture(true, false);
    let webp = encode(&base_pixels(), Format::Webp);
    let (vp8l, vp8l_len) = riff_chunk_at(&webp, b"VP8L");
    let frame = &webp[vp8l..(vp8l + 8 + vp8l_len + (vp8l_len & 1)).min(webp.len())];
    let mut cases = Vec::new();
    for (name, profile) in hostile_profiles() {
        let p = profile.as_slice();
        // A valid image with a well-formed profile must render, converted or not.
        let mut add = |format: &'static str, bytes: Vec<u8>| {
            let id = format!("{format}-{name}");
            cases.push(match name {
                "plausible" => Case::valid(format, id, bytes, BASE),
                _ => Case::hostile(format, id, bytes),
            });
        };
        add("icc-jpeg", jpeg_with_icc(&jpeg, &[(1u8, p)], 1));
        add("icc-png", png_with_icc(&png, p));
        add("icc-tiff-strip", tiff_with_icc(&tiff, p, None));
        add("icc-tiff-tiled", tiff_with_icc(&pyramid, p, None));
        add("icc-jp2", jp2_with_icc(&jp2, p));
        add("icc-webp", webp_with_icc(frame, p));
    }
    let plausible = icc_profile(&icc_matrix_tags(icc_curve(1, &[0x0233])), None, None);
    let (a, rest) = plausible.split_at(100);
    let (b, c) = rest.split_at(100);
    let empty: &[u8] = &[];
    let big = vec![0x41u8; 65_000];
    let many: Vec<(u8, &[u8])> = (1..=80).map(|k| (k, big.as_slice())).collect();
    cases.extend(named(
        "icc-jpeg",
        "icc-jpeg",
        vec![
            (
                "chunks-out-of-order",
                jpeg_with_icc(&jpeg, &[(3u8, c), (1, a), (2, b)], 3),
            ),
            (
                "chunks-duplicated",
                jpeg_with_icc(&jpeg, &[(1u8, a), (1, a), (2, rest)], 2),
            ),
            (
                "chunks-missing",
                jpeg_with_icc(&jpeg, &[(1u8, a), (3, c)], 3),
            ),
            ("chunk-empty", jpeg_with_icc(&jpeg, &[(1u8, empty)], 1)),
            ("chunks-past-4-mib", jpeg_with_icc(&jpeg, &many, 80)),
            ("chunk-header-only", {
                let seg = [&[0xFFu8, 0xE2, 0, 14][..], b"ICC_PROFILE\0".as_slice()].concat();
                splice(&jpeg, 2, 0, &seg)
            }),
        ],
    ));
    cases.extend(named(
        "icc-tiff-strip",
        "icc-tiff-strip",
        vec![
            (
                "count-huge",
                tiff_with_icc(&tiff, &plausible, Some(0x7FFF_FFFF)),
            ),
            (
                "count-past-end",
                tiff_with_icc(&tiff, &plausible, Some(plausible.len() as u32 + 100)),
            ),
        ],
    ));
    cases.extend(named(
        "icc-tiff-tiled",
        "icc-tiff-tiled",
        vec![
            (
                "count-huge",
                tiff_with_icc(&pyramid, &plausible, Some(0x7FFF_FFFF)),
            ),
            (
                "count-past-end",
                tiff_with_icc(&pyramid, &plausible, Some(plausible.len() as u32 + 100)),
            ),
        ],
    ));
    cases
}
