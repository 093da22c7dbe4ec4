//! Tests of `png_reduce`.

use std::io::Cursor;

use ::png::{BitDepth, ColorType, Encoder};

use super::*;
use crate::codec::testutil::mean_abs_diff;
use crate::flat::reduced::ReducedPyramid;

/// One kind of generated PNG: colour type, bit depth, palette and `tRNS`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kind {
    pub(crate) color: ColorType,
    pub(crate) depth: BitDepth,
    pub(crate) palette: bool,
    pub(crate) trns: bool,
}

impl Kind {
    pub(crate) const fn new(color: ColorType, depth: BitDepth, trns: bool) -> Self {
        Self {
            color,
            depth,
            palette: matches!(color, ColorType::Indexed),
            trns,
        }
    }
}

/// Every kind the tests cover, and the layout each decodes to.
pub(crate) const KINDS: [(Kind, Layout); 11] = [
    (
        Kind::new(ColorType::Rgb, BitDepth::Eight, false),
        Layout::Rgb,
    ),
    (
        Kind::new(ColorType::Rgba, BitDepth::Eight, false),
        Layout::Rgba,
    ),
    (
        Kind::new(ColorType::Grayscale, BitDepth::Eight, false),
        Layout::Gray,
    ),
    (
        Kind::new(ColorType::GrayscaleAlpha, BitDepth::Eight, false),
        Layout::GrayAlpha,
    ),
    (
        Kind::new(ColorType::Rgb, BitDepth::Sixteen, false),
        Layout::Rgb,
    ),
    (
        Kind::new(ColorType::GrayscaleAlpha, BitDepth::Sixteen, false),
        Layout::GrayAlpha,
    ),
    (
        Kind::new(ColorType::Indexed, BitDepth::Eight, false),
        Layout::Rgb,
    ),
    (
        Kind::new(ColorType::Indexed, BitDepth::Eight, true),
        Layout::Rgba,
    ),
    (
        Kind::new(ColorType::Grayscale, BitDepth::Eight, true),
        Layout::GrayAlpha,
    ),
    (
        Kind::new(ColorType::Rgb, BitDepth::Eight, true),
        Layout::Rgba,
    ),
    (
        Kind::new(ColorType::Grayscale, BitDepth::Four, false),
        Layout::Gray,
    ),
];

/// The 8-bit sample values of the generated images at (x, y): smooth gradients, with a
/// fully transparent band at the left (x < 40) where there is alpha.
pub(crate) fn gradient(x: u32, y: u32, (w, h): (u32, u32)) -> [u8; 4] {
    let a = if x < 40 { 0 } else { 64 + 191 * y / h };
    [
        (255 * x / w) as u8,
        (255 * y / h) as u8,
        (255 * (x + y) / (w + h)) as u8,
        a as u8,
    ]
}

/// The stored rows of a `kind` image of `w` x `h` (no filter bytes).
fn raw_rows(kind: Kind, (w, h): (u32, u32)) -> Vec<u8> {
    let mut data = Vec::new();
    for y in 0..h {
        let mut nibbles = Vec::new();
        for x in 0..w {
            let [r, g, b, a] = gradient(x, y, (w, h));
            match (kind.color, kind.depth) {
                (ColorType::Rgb, BitDepth::Eight) => data.extend([r, g, b]),
                (ColorType::Rgba, _) => data.extend([r, g, b, a]),
                (ColorType::Grayscale, BitDepth::Eight) => data.push(g),
                (ColorType::GrayscaleAlpha, BitDepth::Eight) => data.extend([g, a]),
                // High bytes the gradient, low bytes noise that stripping drops.
                (ColorType::Rgb, BitDepth::Sixteen) => {
                    data.extend([r, x as u8, g, y as u8, b, (x ^ y) as u8]);
                }
                (ColorType::GrayscaleAlpha, BitDepth::Sixteen) => {
                    data.extend([g, x as u8, a, y as u8]);
                }
                (ColorType::Indexed, _) => data.push(r),
                (ColorType::Grayscale, BitDepth::Four) => nibbles.push(g >> 4),
                other => panic!("no generator for {other:?}"),
            }
        }
        for pair in nibbles.chunks(2) {
            data.push(pair[0] << 4 | pair.get(1).copied().unwrap_or(0));
        }
    }
    data
}

/// A PNG of `kind`, `w` x `h`, written by the png encoder (adaptive filters).
pub(crate) fn png_file(kind: Kind, (w, h): (u32, u32)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, w, h);
    encoder.set_color(kind.color);
    encoder.set_depth(kind.depth);
    if kind.palette {
        let palette: Vec<u8> = (0..=255u8).flat_map(|i| [i, 255 - i, i / 2]).collect();
        encoder.set_palette(palette);
    }
    if kind.trns {
        // Palette: index i as opaque as i; gray: 100 keyed out; RGB: one colour keyed out.
        let trns = match kind.color {
            ColorType::Indexed => (0..=255u8).collect(),
            ColorType::Grayscale => vec![0, 100],
            _ => {
                let [r, g, b, _] = gradient(w / 2, h / 2, (w, h));
                vec![0, r, 0, g, 0, b]
            }
        };
        encoder.set_trns(trns);
    }
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&raw_rows(kind, (w, h))).unwrap();
    writer.finish().unwrap();
    out
}

/// An Adam7-interlaced 8-bit RGB PNG of the gradient (the png encoder writes no
/// interlaced files): chunks, zlib stream and CRCs written here.
pub(crate) fn interlaced_rgb(w: u32, h: u32) -> Vec<u8> {
    use std::io::Write;
    const PASSES: [(u32, u32, u32, u32); 7] = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ];
    let mut raw = Vec::new();
    for (x0, y0, dx, dy) in PASSES {
        if x0 >= w || y0 >= h {
            continue;
        }
        for y in (y0..h).step_by(dy as usize) {
            raw.push(0);
            for x in (x0..w).step_by(dx as usize) {
                raw.extend_from_slice(&gradient(x, y, (w, h))[..3]);
            }
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&raw).unwrap();
    let idat = z.finish().unwrap();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 1]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (name, data) in [(b"IHDR", &ihdr), (b"IDAT", &idat), (b"IEND", &Vec::new())] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(name);
        crc.update(data);
        out.extend_from_slice(name);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    out
}

/// The box average of every 2^`shift` block of `full`, pixel by pixel: colour weighted by
/// alpha, rounded to nearest, transparent black where a block has no opacity.
pub(crate) fn box_reference(full: &Pixels, shift: u32) -> Pixels {
    let d = 1u32 << shift;
    let (w, h, layout) = (full.width(), full.height(), full.layout());
    let c = layout.channels();
    let (ow, oh) = (w.div_ceil(d), h.div_ceil(d));
    let mut data = Vec::new();
    for oy in 0..oh {
        for ox in 0..ow {
            let mut sums = vec![0u64; c];
            let mut n = 0u64;
            for y in oy * d..((oy + 1) * d).min(h) {
                for x in ox * d..((ox + 1) * d).min(w) {
                    let p = full.pixel(x, y);
                    let a = if layout.has_alpha() {
                        u64::from(p[c - 1])
                    } else {
                        1
                    };
                    let colours = if layout.has_alpha() { c - 1 } else { c };
                    for k in 0..colours {
                        sums[k] += u64::from(p[k]) * a;
                    }
                    if layout.has_alpha() {
                        sums[c - 1] += a;
                    }
                    n += 1;
                }
            }
            if layout.has_alpha() {
                let sa = sums[c - 1];
                for &s in &sums[..c - 1] {
                    data.push((s + sa / 2).checked_div(sa).map_or(0, |v| v as u8));
                }
                data.push(((sa + n / 2) / n) as u8);
            } else {
                data.extend(sums.iter().map(|&s| ((s + n / 2) / n) as u8));
            }
        }
    }
    Pixels::from_vec(ow, oh, layout, data).unwrap()
}

#[test]
fn every_kind_reduces_to_the_box_average_of_its_whole_decode() {
    let size = (1001, 517);
    for (kind, layout) in KINDS {
        let file = png_file(kind, size);
        let full = crate::codec::decode(&file, Budget::default()).unwrap();
        assert_eq!(full.layout(), layout, "{kind:?}");
        for shift in [1, 2, 3] {
            let got = decode_reduced(Cursor::new(&file), shift, Budget::default())
                .unwrap()
                .unwrap();
            let d = 1 << shift;
            assert_eq!(
                (got.width(), got.height(), got.layout()),
                (1001u32.div_ceil(d), 517u32.div_ceil(d), layout),
                "{kind:?} {shift}"
            );
            assert!(
                got == box_reference(&full, shift),
                "{kind:?} at 1/{d}: not the box average"
            );
            // And close to what the whole decode's pyramid starts from (Catmull-Rom).
            let pyramid = ReducedPyramid::from_full(&full, shift, Budget::default()).unwrap();
            let diff = mean_abs_diff(&got, pyramid.level(0).unwrap());
            assert!(diff < 1.5, "{kind:?} at 1/{d}: mean difference {diff}");
        }
    }
}

#[test]
fn regions_read_row_by_row_are_the_crops_of_the_whole_decode() {
    let size = (301, 157);
    for (kind, layout) in KINDS {
        let file = png_file(kind, size);
        let full = crate::codec::decode(&file, Budget::default()).unwrap();
        for rect in [
            Rect::new(0, 0, 301, 157),
            Rect::new(0, 0, 1, 1),
            Rect::new(100, 40, 64, 32),
            Rect::new(300, 156, 1, 1),
            Rect::new(7, 150, 294, 7),
        ] {
            let got = decode_region(Cursor::new(&file), rect, Budget::default())
                .unwrap()
                .unwrap();
            assert_eq!(
                (got.width(), got.height(), got.layout()),
                (rect.w, rect.h, layout),
                "{kind:?} {rect:?}"
            );
            let want =
                crate::ops::crop_resize(&full, rect, rect.w, rect.h, Budget::default()).unwrap();
            assert!(got == want, "{kind:?} {rect:?}: not the crop");
        }
    }
    let file = png_file(KINDS[0].0, size);
    for outside in [
        Rect::new(0, 0, 302, 1),
        Rect::new(0, 157, 1, 1),
        Rect::new(5, 5, 0, 3),
    ] {
        let err = decode_region(Cursor::new(&file), outside, Budget::default()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Source, "{outside:?}");
    }
    // Only the rows down to the region are needed: a file cut after them still serves it.
    let cut = &file[..file.len() / 2];
    let top = decode_region(
        Cursor::new(cut),
        Rect::new(0, 0, 301, 10),
        Budget::default(),
    );
    assert!(top.unwrap().is_some());
    assert!(
        decode_region(
            Cursor::new(cut),
            Rect::new(0, 150, 301, 7),
            Budget::default()
        )
        .is_err()
    );
    // Interlaced: left to the whole decode.
    let file = interlaced_rgb(101, 53);
    let got = decode_region(Cursor::new(&file), Rect::new(0, 0, 5, 5), Budget::default());
    assert!(got.unwrap().is_none());
    // The region's buffer is checked against the budget.
    let file = png_file(KINDS[0].0, size);
    let err = decode_region(
        Cursor::new(&file),
        Rect::new(0, 0, 301, 157),
        Budget::new(1000),
    );
    assert_eq!(err.unwrap_err().kind(), crate::ErrorKind::Source);
}

#[test]
fn edge_blocks_average_the_pixels_they_have() {
    // 5x3 gray, reduced by 4: blocks of 4x3 and 1x3.
    let rows = [[0u8, 4, 8, 12, 200], [16, 20, 24, 28, 101], [0, 0, 0, 0, 1]];
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, 5, 3);
    encoder.set_color(ColorType::Grayscale);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(rows.as_flattened()).unwrap();
    writer.finish().unwrap();
    let px = decode_reduced(Cursor::new(&out), 2, Budget::default())
        .unwrap()
        .unwrap();
    // (0+4+8+12+16+20+24+28)/12 = 9.33 -> 9; (200+101+1)/3 = 100.67 -> 101.
    assert_eq!(px.data(), &[9, 101]);
    // A whole block of nothing but transparency: transparent black, not its colour.
    let sums = {
        let mut s = BoxSums::new(2, 1, Layout::GrayAlpha, Budget::default()).unwrap();
        s.add(&[255, 0, 200, 0]);
        let mut o = [1, 1];
        s.emit(&mut o, 1);
        o
    };
    assert_eq!(sums, [0, 0]);
}

#[test]
fn the_largest_reduction_does_not_overflow() {
    // 256 x 256 white opaque pixels at 1/256: every sum at its largest.
    let kind = Kind::new(ColorType::Rgba, BitDepth::Eight, false);
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, 300, 256);
    encoder.set_color(kind.color);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&vec![255; 300 * 256 * 4]).unwrap();
    writer.finish().unwrap();
    let px = decode_reduced(Cursor::new(&out), MAX_SHIFT, Budget::default())
        .unwrap()
        .unwrap();
    assert_eq!(px.data(), &[255; 8]);
    assert!(decode_reduced(Cursor::new(&out), MAX_SHIFT + 1, Budget::default()).is_err());
}

#[test]
fn interlaced_files_are_left_to_the_whole_decode() {
    let file = interlaced_rgb(101, 53);
    assert!(
        decode_reduced(Cursor::new(&file), 1, Budget::default())
            .unwrap()
            .is_none()
    );
    let full = crate::codec::decode(&file, Budget::default()).unwrap();
    assert_eq!(full.pixel(50, 20), &gradient(50, 20, (101, 53))[..3]);
}

#[test]
fn truncated_and_corrupt_files_are_errors_not_panics() {
    let kind = Kind::new(ColorType::Rgb, BitDepth::Eight, false);
    let file = png_file(kind, (301, 207));
    for len in [
        0,
        8,
        20,
        33,
        40,
        file.len() / 3,
        file.len() / 2,
        file.len() - 20,
    ] {
        let err = decode_reduced(Cursor::new(&file[..len]), 2, Budget::default()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Source, "{len}: {err}");
    }
    // Flipped bytes in the image data: a CRC or inflate error.
    let mut flipped = file.clone();
    for b in flipped.iter_mut().skip(200).step_by(97) {
        *b ^= 0x5A;
    }
    let err = decode_reduced(Cursor::new(&flipped), 2, Budget::default()).unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Source);
}

#[test]
fn buffers_are_checked_against_the_budget() {
    let kind = Kind::new(ColorType::Rgba, BitDepth::Eight, false);
    let file = png_file(kind, (1001, 517));
    // The output at 1/4: 251 x 130 x 4 = 130,520 bytes; the whole image 2 MB.
    let out = 251 * 130 * 4;
    assert!(crate::codec::decode(&file, Budget::new(out)).is_err());
    let px = decode_reduced(Cursor::new(&file), 2, Budget::new(out)).unwrap();
    assert!(px.is_some());
    let err = decode_reduced(Cursor::new(&file), 2, Budget::new(out - 1)).unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Source);
}
