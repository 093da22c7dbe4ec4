//! Tests of `icc`: profiles found in every container that carries one, and Adobe RGB pixels
//! converted to the sRGB values an independent computation gives.

use super::*;
use crate::codec::{EncodeOptions, encode};
use crate::pixels::Budget;
use crate::request::Format;

/// Adobe RGB (1998) colours, one per 16x16 block, and what they are in sRGB.
pub(crate) const ADOBE: [[u8; 3]; 4] = [
    [100, 150, 50],
    [30, 200, 220],
    [200, 60, 40],
    [128, 128, 128],
];

/// An Adobe RGB (1998) profile as moxcms writes it.
pub(crate) fn adobe_profile() -> Vec<u8> {
    ColorProfile::new_adobe_rgb().encode().unwrap()
}

/// The sRGB value of an Adobe RGB colour, computed from the two colour spaces' definitions
/// (Adobe RGB: gamma 563/256, its D65 RGB-to-XYZ matrix; sRGB: the inverse matrix of its
/// primaries and its piecewise curve), independently of any colour management code.
pub(crate) fn reference([r, g, b]: [u8; 3]) -> [u8; 3] {
    let lin = |v: u8| (f64::from(v) / 255.0).powf(563.0 / 256.0);
    let (r, g, b) = (lin(r), lin(g), lin(b));
    let x = 0.576_730_9 * r + 0.185_554_0 * g + 0.188_185_2 * b;
    let y = 0.297_376_9 * r + 0.627_349_1 * g + 0.075_274_1 * b;
    let z = 0.027_034_3 * r + 0.070_687_2 * g + 0.991_108_5 * b;
    let sr = 3.240_454_2 * x - 1.537_138_5 * y - 0.498_531_4 * z;
    let sg = -0.969_266_0 * x + 1.876_010_8 * y + 0.041_556_0 * z;
    let sb = 0.055_643_4 * x - 0.204_025_9 * y + 1.057_225_2 * z;
    let enc = |v: f64| {
        let v = v.clamp(0.0, 1.0);
        let s = if v <= 0.003_130_8 {
            12.92 * v
        } else {
            1.055 * v.powf(1.0 / 2.4) - 0.055
        };
        (s * 255.0).round() as u8
    };
    [enc(sr), enc(sg), enc(sb)]
}

/// 64x16: the four [`ADOBE`] colours in 16-pixel blocks.
pub(crate) fn patches() -> Pixels {
    let mut data = Vec::new();
    for _ in 0..16 {
        for x in 0..64 {
            data.extend_from_slice(&ADOBE[x / 16]);
        }
    }
    Pixels::from_vec(64, 16, Layout::Rgb, data).unwrap()
}

/// Every block's centre of `px` (scaled to any width) within `tolerance` of `want(colour)`.
pub(crate) fn assert_blocks(
    px: &Pixels,
    want: impl Fn([u8; 3]) -> [u8; 3],
    tolerance: u8,
    what: &str,
) {
    let (w, h) = (px.width(), px.height());
    for (i, &adobe) in ADOBE.iter().enumerate() {
        let x = (w * (2 * i as u32 + 1)) / 8;
        let got = &px.pixel(x, h / 2)[..3];
        let want = want(adobe);
        assert!(
            got.iter()
                .zip(want)
                .all(|(a, b)| a.abs_diff(b) <= tolerance),
            "{what}: block {i} {adobe:?} is {got:?}, want {want:?}"
        );
    }
}

/// `jpeg` with `segments` (marker, payload) inserted after SOI.
fn with_segments(jpeg: &[u8], segments: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    for (marker, payload) in segments {
        out.extend_from_slice(&[0xFF, *marker]);
        out.extend_from_slice(&(payload.len() as u16 + 2).to_be_bytes());
        out.extend_from_slice(payload);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A JPEG of [`patches`] with `profile` in APP2 segments of at most `chunk` bytes, written in
/// the order `order` gives (sequence numbers from 1).
pub(crate) fn jpeg_with_profile(profile: &[u8], chunk: usize, order: &[usize]) -> Vec<u8> {
    let opts = EncodeOptions {
        jpeg_quality: 100,
        ..EncodeOptions::default()
    };
    let jpeg = encode(&patches(), Format::Jpg, &opts).unwrap();
    let chunks: Vec<&[u8]> = profile.chunks(chunk).collect();
    assert_eq!(chunks.len(), order.len());
    let segments: Vec<(u8, Vec<u8>)> = order
        .iter()
        .map(|&i| {
            let mut p = b"ICC_PROFILE\0".to_vec();
            p.extend_from_slice(&[i as u8 + 1, chunks.len() as u8]);
            p.extend_from_slice(chunks[i]);
            (0xE2, p)
        })
        .collect();
    with_segments(&jpeg, &segments)
}

/// A PNG of [`patches`] with an `iCCP` chunk after `IHDR`.
pub(crate) fn png_with_profile(profile: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let png = encode(&patches(), Format::Png, &EncodeOptions::default()).unwrap();
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(profile).unwrap();
    let mut data = b"Adobe RGB\0\0".to_vec();
    data.extend_from_slice(&z.finish().unwrap());
    let ihdr_end = 8 + 8 + 13 + 4;
    let mut out = png[..ihdr_end].to_vec();
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(b"iCCP");
    crc.update(&data);
    out.extend_from_slice(b"iCCP");
    out.extend_from_slice(&data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
    out.extend_from_slice(&png[ihdr_end..]);
    out
}

/// A strip TIFF of [`patches`] with the `ICCProfile` tag.
pub(crate) fn tiff_with_profile(profile: &[u8]) -> Vec<u8> {
    use ::tiff::encoder::{TiffEncoder, colortype};
    let px = patches();
    let mut out = std::io::Cursor::new(Vec::new());
    let mut enc = TiffEncoder::new(&mut out).unwrap();
    let mut image = enc.new_image::<colortype::RGB8>(64, 16).unwrap();
    image
        .encoder()
        .write_tag(::tiff::tags::Tag::IccProfile, profile)
        .unwrap();
    image.write_data(px.data()).unwrap();
    out.into_inner()
}

/// An extended (`VP8X`) lossless WebP of [`patches`] with an `ICCP` chunk.
fn webp_with_profile(profile: &[u8]) -> Vec<u8> {
    let simple = encode(&patches(), Format::Webp, &EncodeOptions::default()).unwrap();
    let mut body = b"WEBP".to_vec();
    let chunk = |body: &mut Vec<u8>, kind: &[u8], data: &[u8]| {
        body.extend_from_slice(kind);
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        if data.len() % 2 == 1 {
            body.push(0);
        }
    };
    let mut vp8x = vec![0x20, 0, 0, 0]; // ICC profile present
    vp8x.extend_from_slice(&63u32.to_le_bytes()[..3]);
    vp8x.extend_from_slice(&15u32.to_le_bytes()[..3]);
    chunk(&mut body, b"VP8X", &vp8x);
    chunk(&mut body, b"ICCP", profile);
    body.extend_from_slice(&simple[12..]); // the VP8L chunk
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// A JP2 box.
fn jp2_box(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = ((data.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out
}

/// A JP2 of [`patches`] (lossless, OpenJPEG) whose `colr` box is replaced by one of method 2
/// holding `profile`.
pub(crate) fn jp2_with_profile(profile: &[u8]) -> Vec<u8> {
    use crate::jp2::openjpeg::tests::{Opts, encode_fixture};
    let px = patches();
    let samples: Vec<i32> = px.data().iter().map(|&v| i32::from(v)).collect();
    let opts = Opts {
        jp2_container: true,
        lossless: true,
        resolutions: 2,
        ..Opts::default()
    };
    let file = encode_fixture(64, 16, 3, &samples, &opts);
    let mut out = Vec::new();
    for (kind, data) in boxes(&file) {
        if &kind != b"jp2h" {
            out.extend_from_slice(&jp2_box(&kind, data));
            continue;
        }
        let mut inner = Vec::new();
        for (kind, data) in boxes(data) {
            if &kind == b"colr" {
                let mut colr = vec![2, 0, 0];
                colr.extend_from_slice(profile);
                inner.extend_from_slice(&jp2_box(b"colr", &colr));
            } else {
                inner.extend_from_slice(&jp2_box(&kind, data));
            }
        }
        out.extend_from_slice(&jp2_box(b"jp2h", &inner));
    }
    out
}

#[test]
fn adobe_rgb_becomes_srgb_in_every_format() {
    let profile = adobe_profile();
    let files = [
        (
            "JPEG, one APP2",
            jpeg_with_profile(&profile, 60_000, &[0]),
            6,
        ),
        (
            "JPEG, profile over three APP2 out of order",
            jpeg_with_profile(&profile, profile.len().div_ceil(3), &[2, 0, 1]),
            6,
        ),
        ("PNG", png_with_profile(&profile), 2),
        ("TIFF", tiff_with_profile(&profile), 2),
        ("WebP", webp_with_profile(&profile), 2),
        ("JP2", jp2_with_profile(&profile), 2),
    ];
    for (what, file, tolerance) in files {
        assert_eq!(find(&file).as_deref(), Some(&profile[..]), "{what}");
        let px = crate::codec::decode(&file, Budget::default()).unwrap();
        assert_blocks(&px, reference, tolerance, what);
    }
    // The conversion is not the identity for these colours.
    assert!(ADOBE.iter().any(|&c| {
        let r = reference(c);
        (0..3).any(|i| r[i].abs_diff(c[i]) > 20)
    }));
}

#[test]
fn files_without_a_profile_or_with_an_srgb_one_are_unchanged() {
    let plain = encode(&patches(), Format::Png, &EncodeOptions::default()).unwrap();
    assert_eq!(find(&plain), None);
    let px = crate::codec::decode(&plain, Budget::default()).unwrap();
    assert_eq!(px, patches());

    let srgb = ColorProfile::new_srgb().encode().unwrap();
    let mut px = patches();
    to_srgb(&mut px, &srgb);
    assert_eq!(px, patches());
}

#[test]
fn broken_gray_and_huge_profiles_are_ignored() {
    let mut px = patches();
    for profile in [
        b"not a profile".to_vec(),
        vec![0; 200],
        ColorProfile::new_gray_with_gamma(2.2).encode().unwrap(),
    ] {
        to_srgb(&mut px, &profile);
        assert_eq!(px, patches());
    }
    // A profile in gray pixels is left alone too.
    let mut gray = crate::ops::to_gray(patches()).unwrap();
    let before = gray.clone();
    to_srgb(&mut gray, &adobe_profile());
    assert_eq!(gray, before);
    // Truncated containers: no profile, no panic.
    let jpeg = jpeg_with_profile(&adobe_profile(), 60_000, &[0]);
    for cut in [3, 10, 30, 100] {
        let _ = find(&jpeg[..cut]);
    }
    let png = png_with_profile(&adobe_profile());
    for cut in [9, 20, 40, 80] {
        assert_eq!(find(&png[..cut]), None);
    }
    // A PNG whose iCCP inflates past the limit.
    let big = png_with_profile(&vec![0u8; MAX_PROFILE + 10]);
    assert_eq!(find(&big), None);
}

#[test]
fn rgba_keeps_its_alpha() {
    let mut data = Vec::new();
    for (i, p) in patches().data().chunks_exact(3).enumerate() {
        data.extend_from_slice(p);
        data.push((i % 256) as u8);
    }
    let mut px = Pixels::from_vec(64, 16, Layout::Rgba, data.clone()).unwrap();
    to_srgb(&mut px, &adobe_profile());
    for (i, p) in px.data().chunks_exact(4).enumerate() {
        assert_eq!(p[3], (i % 256) as u8);
    }
    assert_blocks(&px, reference, 2, "RGBA");
}
