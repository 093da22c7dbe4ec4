//! The JPEG 2000 suite's files: JP2 box and codestream editing, and the hostile JPEG 2000s.

use super::*;

/// A 300 x 200 RGB JPEG 2000 of OpenJPEG's encoder, lossless, three resolutions: a JP2 file or
/// a raw codestream, in 64-pixel tiles or one tile.
pub(super) fn jp2_fixture(container: bool, tiled: bool) -> Vec<u8> {
    use crate::jp2::openjpeg::tests::{Opts, encode_fixture, pattern};
    let (w, h) = BASE;
    let opts = Opts {
        resolutions: 3,
        jp2_container: container,
        tiled: tiled.then_some((64, 64)),
        ..Opts::default()
    };
    encode_fixture(w, h, 3, &pattern(w, h, 3), &opts)
}

/// Where the codestream (SOC, SIZ) starts.
fn j2k_start(b: &[u8]) -> usize {
    b.windows(4)
        .position(|w| w == [0xFFu8, 0x4F, 0xFF, 0x51])
        .expect("a codestream")
}

/// The main header's marker segments from SIZ to the first SOT: (offset, marker).
fn j2k_markers(b: &[u8], cs: usize) -> Vec<(usize, u16)> {
    let mut out = Vec::new();
    let mut at = cs + 2;
    while at + 4 <= b.len() {
        let marker = be16(b, at) as u16;
        out.push((at, marker));
        if marker == 0xFF90 || marker >> 8 != 0xFF {
            break;
        }
        at += 2 + be16(b, at + 2);
    }
    out
}

/// The offsets of the tile-parts' SOT markers, from the first one, following their Psot.
fn j2k_tile_parts(b: &[u8], first: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = first;
    while at + 12 <= b.len() && be16(b, at) == 0xFF90 && out.len() < 10_000 {
        out.push(at);
        let psot = be32(b, at + 6);
        if psot == 0 {
            break;
        }
        at += psot;
    }
    out
}

/// The boxes between `start` and `end`: (offset, type, length); a length of 0 runs to `end`.
fn boxes_in(b: &[u8], start: usize, end: usize) -> Vec<(usize, [u8; 4], usize)> {
    let mut out = Vec::new();
    let mut at = start;
    while at + 8 <= end {
        let kind = [b[at + 4], b[at + 5], b[at + 6], b[at + 7]];
        let len = match be32(b, at) {
            0 => end - at,
            1 if at + 16 <= end => {
                u64::from_be_bytes(b[at + 8..at + 16].try_into().expect("eight bytes")) as usize
            }
            n => n,
        };
        out.push((at, kind, len));
        if len < 8 {
            break;
        }
        at += len;
    }
    out
}

/// The top-level box of `kind`: (offset, length).
fn jp2_box(b: &[u8], kind: &[u8; 4]) -> (usize, usize) {
    boxes_in(b, 0, b.len())
        .into_iter()
        .find(|x| &x.1 == kind)
        .map(|x| (x.0, x.2))
        .expect("the fixture has the box")
}

/// One box.
pub(super) fn jp2_box_bytes(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = ((data.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out
}

/// A JP2 whose jp2h box's children (whole boxes) are changed by `edit`.
pub(super) fn jp2_with_jp2h(file: &[u8], edit: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
    let (pos, len) = jp2_box(file, b"jp2h");
    let mut children: Vec<Vec<u8>> = boxes_in(file, pos + 8, pos + len)
        .into_iter()
        .map(|(at, _, l)| file[at..at + l].to_vec())
        .collect();
    edit(&mut children);
    let mut out = file[..pos].to_vec();
    out.extend(jp2_box_bytes(b"jp2h", &children.concat()));
    out.extend_from_slice(&file[pos + len..]);
    out
}

/// A JP2 whose box at `pos` has an XL length of `xl` instead of its 32-bit one.
fn jp2_box_xl(file: &[u8], pos: usize, xl: u64) -> Vec<u8> {
    let mut header: Vec<u8> = vec![0, 0, 0, 1];
    header.extend_from_slice(&file[pos + 4..pos + 8]);
    header.extend_from_slice(&xl.to_be_bytes());
    splice(file, pos, 8, &header)
}

/// Set the jp2c box's length to what follows it (after a splice into the codestream).
fn fix_jp2c_length(b: &mut [u8]) {
    if !b.starts_with(&JP2_SIGNATURE) {
        return;
    }
    if let Some((pos, _, _)) = boxes_in(b, 0, b.len())
        .into_iter()
        .find(|x| &x.1 == b"jp2c")
        && be32(b, pos) > 1
    {
        let len = (b.len() - pos) as u32;
        put_be32(b, pos, len);
    }
}

/// A codestream with `marker` (a whole segment) inserted at `at` (in the main header).
fn j2k_insert(file: &[u8], at: usize, marker: &[u8]) -> Vec<u8> {
    let mut b = splice(file, at, 0, marker);
    fix_jp2c_length(&mut b);
    b
}

/// A JPEG 2000 whose SIZ says `width` x `height` (and, with `tile`, that tile size).
pub(super) fn j2k_with_size(
    file: &[u8],
    width: u32,
    height: u32,
    tile: Option<(u32, u32)>,
) -> Vec<u8> {
    let siz = j2k_start(file) + 2;
    patched(file, |b| {
        put_be32(b, siz + 6, width);
        put_be32(b, siz + 10, height);
        if let Some((tw, th)) = tile {
            put_be32(b, siz + 22, tw);
            put_be32(b, siz + 26, th);
        }
    })
}

/// The truncation boundaries of a JPEG 2000: boxes, main header markers, the first tile-parts.
fn jp2_headers(file: &[u8]) -> Vec<usize> {
    let cs = j2k_start(file);
    let markers = j2k_markers(file, cs);
    let mut at = vec![cs, cs + 2];
    if file.starts_with(&JP2_SIGNATURE) {
        at.extend(
            boxes_in(file, 0, file.len())
                .iter()
                .flat_map(|x| [x.0, x.0 + 8]),
        );
    }
    at.extend(markers.iter().map(|m| m.0));
    if let Some(&(sot, _)) = markers.last() {
        at.extend(
            j2k_tile_parts(file, sot)
                .iter()
                .take(4)
                .flat_map(|&t| [t + 12, t + 14]),
        );
    }
    at
}

/// The JPEG 2000 suite: a tiled JP2 file and an untiled raw codestream, their mutations and
/// codestream specials, the JP2 file's box specials, and a gray JP2 with hostile palettes.
pub(super) fn jp2_cases() -> Vec<Case> {
    let jp2 = jp2_fixture(true, true);
    let j2k = jp2_fixture(false, false);
    let mut cases = vec![
        Case::valid("jp2", "jp2-base", jp2.clone(), BASE),
        Case::valid("j2k", "j2k-base", j2k.clone(), BASE),
    ];
    cases.extend(mutations("jp2", "jp2", &jp2, &jp2_headers(&jp2), 8));
    cases.extend(mutations("j2k", "j2k", &j2k, &jp2_headers(&j2k), 9));
    cases.extend(named("jp2", "jp2", codestream_specials(&jp2, 10)));
    cases.extend(named("j2k", "j2k", codestream_specials(&j2k, 11)));
    cases.extend(named("jp2", "jp2", jp2_box_specials(&jp2)));
    let gray = jp2_gray_fixture();
    cases.push(Case::valid("jp2", "jp2-gray-base", gray.clone(), BASE));
    cases.extend(named("jp2", "jp2-gray", jp2_palette_specials(&gray)));
    cases
}

/// A 300 x 200 gray JP2 (one component, one tile): the crate reads a palette (`pclr` and
/// `cmap` boxes) itself only for one component.
fn jp2_gray_fixture() -> Vec<u8> {
    use crate::jp2::openjpeg::tests::{Opts, encode_fixture, pattern};
    let (w, h) = BASE;
    let opts = Opts {
        resolutions: 3,
        jp2_container: true,
        ..Opts::default()
    };
    encode_fixture(w, h, 1, &pattern(w, h, 1), &opts)
}

/// Palettes added to a one-component JP2: a plain one, and ones with too many columns, missing
/// or short entries, absurd bit depths, mappings to columns or components that do not exist.
fn jp2_palette_specials(file: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let pclr = |entries: u16, bits: &[u8], values: &[u8]| {
        let mut d = entries.to_be_bytes().to_vec();
        d.push(bits.len() as u8);
        d.extend_from_slice(bits);
        d.extend_from_slice(values);
        jp2_box_bytes(b"pclr", &d)
    };
    let cmap = |columns: u8| {
        let d: Vec<u8> = (0..columns).flat_map(|k| [0, 0, 1, k]).collect();
        jp2_box_bytes(b"cmap", &d)
    };
    let with = |boxes: Vec<Vec<u8>>| jp2_with_jp2h(file, |c| c.extend(boxes));
    let rgb: [u8; 6] = [255, 0, 0, 0, 0, 255];
    vec![
        (
            "palette-rgb",
            with(vec![pclr(2, &[7, 7, 7], &rgb), cmap(3)]),
        ),
        (
            "palette-255-columns",
            with(vec![pclr(2, &[7; 255], &[9; 510]), cmap(255)]),
        ),
        (
            "palette-entries-missing",
            with(vec![pclr(65535, &[7; 255], &[]), cmap(3)]),
        ),
        (
            "palette-entries-short",
            with(vec![pclr(256, &[7, 7, 7], &[1; 10]), cmap(3)]),
        ),
        (
            "palette-bits-38",
            with(vec![pclr(2, &[37, 37, 37], &[0; 30]), cmap(3)]),
        ),
        ("palette-columns-0", with(vec![pclr(2, &[], &[]), cmap(3)])),
        (
            "palette-mapping-past-columns",
            with(vec![pclr(2, &[7, 7, 7], &rgb), cmap(200)]),
        ),
        (
            "palette-mapping-component-9",
            with(vec![
                pclr(2, &[7, 7, 7], &rgb),
                jp2_box_bytes(b"cmap", &[0, 9, 1, 0, 0, 9, 1, 1, 0, 9, 1, 2]),
            ]),
        ),
        (
            "palette-without-mapping",
            with(vec![pclr(2, &[7, 7, 7], &rgb)]),
        ),
        ("mapping-without-palette", with(vec![cmap(3)])),
    ]
}

/// Hostile codestreams: SIZ, COD, QCD, SOT fields, marker lengths, corrupted packets.
fn codestream_specials(file: &[u8], seed: u64) -> Vec<(&'static str, Vec<u8>)> {
    let cs = j2k_start(file);
    let siz = cs + 2;
    let markers = j2k_markers(file, cs);
    let find = |m: u16| {
        markers
            .iter()
            .find(|x| x.1 == m)
            .map(|x| x.0)
            .unwrap_or_else(|| panic!("no marker {m:04X} in the main header"))
    };
    let (cod, qcd, sot) = (find(0xFF52), find(0xFF5C), find(0xFF90));
    let parts = j2k_tile_parts(file, sot);
    let data = (sot + 14).min(file.len());
    let data_end = file.len() - 2;
    let twice = (file.len() * 2) as u32;
    let byte_at = |at: usize, v: u8| patched(file, |b| b[at] = v);
    let be16_at = |at: usize, v: u16| patched(file, |b| put_be16(b, at, v));
    let be32_at = |at: usize, v: u32| patched(file, |b| put_be32(b, at, v));
    let pair_at = |at: usize, v: u32| {
        patched(file, |b| {
            put_be32(b, at, v);
            put_be32(b, at + 4, v);
        })
    };
    let mut rng = Rng::new(seed);
    vec![
        ("siz-0x0", j2k_with_size(file, 0, 0, None)),
        ("siz-65535x65535", j2k_with_size(file, 65535, 65535, None)),
        ("siz-max", j2k_with_size(file, u32::MAX, u32::MAX, None)),
        (
            "siz-65535-one-tile",
            j2k_with_size(file, 65535, 65535, Some((65535, 65535))),
        ),
        ("siz-origin-past-size", be32_at(siz + 14, 301)),
        ("siz-tile-1x1", pair_at(siz + 22, 1)),
        ("siz-tile-0", pair_at(siz + 22, 0)),
        ("siz-tile-origin-past-image", pair_at(siz + 30, 1000)),
        ("siz-components-0", be16_at(siz + 38, 0)),
        ("siz-components-16384", be16_at(siz + 38, 16384)),
        ("siz-depth-38", byte_at(siz + 40, 37)),
        ("siz-depth-255", byte_at(siz + 40, 0xFF)),
        ("siz-subsampling-0", byte_at(siz + 41, 0)),
        ("siz-subsampling-255", byte_at(siz + 41, 255)),
        ("siz-length-0", be16_at(siz + 2, 0)),
        ("siz-length-ffff", be16_at(siz + 2, 0xFFFF)),
        ("cod-levels-32", byte_at(cod + 9, 32)),
        ("cod-levels-33", byte_at(cod + 9, 33)),
        ("cod-levels-255", byte_at(cod + 9, 255)),
        ("cod-codeblock-huge", be16_at(cod + 10, 0x0F0F)),
        ("cod-progression-9", byte_at(cod + 5, 9)),
        ("cod-layers-0", be16_at(cod + 6, 0)),
        ("cod-layers-65535", be16_at(cod + 6, 65535)),
        ("cod-transform-9", byte_at(cod + 13, 9)),
        (
            "cod-precincts-without-sizes",
            byte_at(cod + 4, file[cod + 4] | 1),
        ),
        ("cod-length-0", be16_at(cod + 2, 0)),
        ("cod-length-ffff", be16_at(cod + 2, 0xFFFF)),
        ("qcd-style-ff", byte_at(qcd + 4, 0xFF)),
        ("sot-psot-past-end", be32_at(sot + 6, 0xFFFF_FFF0)),
        ("sot-psot-1", be32_at(sot + 6, 1)),
        ("sot-psot-0", be32_at(sot + 6, 0)),
        ("sot-tile-65535", be16_at(sot + 4, 65535)),
        ("sot-tile-part-255", byte_at(sot + 10, 255)),
        ("sot-length-0", be16_at(sot + 2, 0)),
        (
            "sot-every-psot-past-end",
            patched(file, |b| {
                for &t in &parts {
                    put_be32(b, t + 6, twice);
                }
            }),
        ),
        ("eoc-after-main-header", be16_at(sot, 0xFFD9)),
        (
            "packets-ff",
            patched(file, |b| b[data..(data + 256).min(data_end)].fill(0xFF)),
        ),
        ("packets-zero", patched(file, |b| b[data..data_end].fill(0))),
        (
            "packets-random",
            patched(file, |b| {
                for x in &mut b[data..data_end] {
                    if rng.below(10) == 0 {
                        *x = rng.byte();
                    }
                }
            }),
        ),
        (
            "tlm-bogus",
            j2k_insert(file, sot, &[0xFF, 0x55, 0, 8, 0, 0x70, 1, 2, 3, 4]),
        ),
        (
            "com-length-past-header",
            j2k_insert(file, sot, &[0xFF, 0x64, 0xFF, 0xFF, 0, 1]),
        ),
        ("second-siz", j2k_insert(file, sot, &file[siz..cod])),
    ]
}

/// Broken JP2 boxes.
fn jp2_box_specials(file: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let (ftyp, _) = jp2_box(file, b"ftyp");
    let (jp2h, jp2h_len) = jp2_box(file, b"jp2h");
    let (jp2c, _) = jp2_box(file, b"jp2c");
    let ihdr = boxes_in(file, jp2h + 8, jp2h + jp2h_len)
        .into_iter()
        .find(|x| &x.1 == b"ihdr")
        .expect("an ihdr box")
        .0;
    let ihdr_data = ihdr + 8;
    let len_at = |pos: usize, v: u32| patched(file, |b| put_be32(b, pos, v));
    let kind_at =
        |pos: usize, kind: &[u8; 4]| patched(file, |b| b[pos + 4..pos + 8].copy_from_slice(kind));
    let without =
        |kind: &'static [u8; 4]| jp2_with_jp2h(file, |c| c.retain(|x| x[4..8] != kind[..]));
    let with_children = |extra: Vec<Vec<u8>>| jp2_with_jp2h(file, |c| c.extend(extra));
    let mut icc: Vec<u8> = vec![2, 0, 0];
    icc.extend_from_slice(&u32::MAX.to_be_bytes());
    icc.extend_from_slice(&[0; 124]);
    let mut pclr: Vec<u8> = vec![0xFF, 0xFF, 255];
    pclr.extend_from_slice(&[7; 255]);
    let cmap: [u8; 4] = [0, 0, 1, 200];
    let mut res = jp2_box_bytes(b"res ", &[]);
    put_be32(&mut res, 0, 0x7FFF_FFFF);
    let boxes = boxes_in(file, 0, file.len());
    let jp2c_first: Vec<u8> = {
        let mut out = file[..12].to_vec();
        out.extend_from_slice(&file[jp2c..]);
        for &(at, kind, len) in &boxes[1..] {
            if &kind != b"jp2c" {
                out.extend_from_slice(&file[at..at + len]);
            }
        }
        out
    };
    vec![
        ("ftyp-length-0", len_at(ftyp, 0)),
        ("jp2h-length-0", len_at(jp2h, 0)),
        ("ftyp-length-7", len_at(ftyp, 7)),
        ("jp2h-length-4", len_at(jp2h, 4)),
        ("ihdr-length-0", len_at(ihdr, 0)),
        ("ihdr-length-3", len_at(ihdr, 3)),
        ("jp2h-length-past-end", len_at(jp2h, 0x7FFF_FFFF)),
        (
            "jp2c-length-past-end",
            len_at(jp2c, (file.len() - jp2c + 1000) as u32),
        ),
        ("ihdr-length-past-jp2h", len_at(ihdr, jp2h_len as u32 + 100)),
        ("jp2h-xl-huge", jp2_box_xl(file, jp2h, u64::MAX)),
        ("jp2c-xl-huge", jp2_box_xl(file, jp2c, 1 << 62)),
        ("jp2h-xl-4", jp2_box_xl(file, jp2h, 4)),
        (
            "jp2c-xl-exact",
            jp2_box_xl(file, jp2c, (file.len() - jp2c + 8) as u64),
        ),
        ("jp2c-renamed", kind_at(jp2c, b"junk")),
        ("jp2c-removed", file[..jp2c].to_vec()),
        ("jp2h-renamed", kind_at(jp2h, b"junk")),
        ("ihdr-renamed", kind_at(ihdr, b"junk")),
        ("ihdr-removed", without(b"ihdr")),
        ("colr-removed", without(b"colr")),
        ("jp2h-empty", jp2_with_jp2h(file, |c| c.clear())),
        (
            "ihdr-65535x65535",
            patched(file, |b| {
                put_be32(b, ihdr_data, 65535);
                put_be32(b, ihdr_data + 4, 65535);
            }),
        ),
        (
            "ihdr-0x0",
            patched(file, |b| b[ihdr_data..ihdr_data + 8].fill(0)),
        ),
        (
            "ihdr-components-0",
            patched(file, |b| put_be16(b, ihdr_data + 8, 0)),
        ),
        (
            "ihdr-components-16384",
            patched(file, |b| put_be16(b, ihdr_data + 8, 16384)),
        ),
        ("ihdr-bpc-255", patched(file, |b| b[ihdr_data + 10] = 255)),
        (
            "colr-icc-bogus",
            jp2_with_jp2h(file, |c| {
                c.retain(|x| x[4..8] != b"colr"[..]);
                c.push(jp2_box_bytes(b"colr", &icc));
            }),
        ),
        (
            "pclr-bogus",
            with_children(vec![
                jp2_box_bytes(b"pclr", &pclr),
                jp2_box_bytes(b"cmap", &cmap),
            ]),
        ),
        (
            "cmap-without-pclr",
            with_children(vec![jp2_box_bytes(b"cmap", &cmap)]),
        ),
        ("res-length-huge", with_children(vec![res])),
        (
            "ftyp-brand-junk",
            patched(file, |b| b[ftyp + 8..ftyp + 12].copy_from_slice(b"junk")),
        ),
        ("signature-only", file[..12].to_vec()),
        ("jp2c-first", jp2c_first),
        (
            "two-jp2h",
            splice(file, jp2c, 0, &{
                let mut copy = file[jp2h..jp2h + jp2h_len].to_vec();
                let at = ihdr_data - jp2h;
                put_be32(&mut copy, at, 65535);
                put_be32(&mut copy, at + 4, 65535);
                copy
            }),
        ),
    ]
}
