//! The BMP suite's files: BMP writing, and the hostile BMPs.

use super::*;

/// A BMP with a 40-byte info header: `bits` a pixel, `compression`, `palette` (BGRA entries)
/// of which `colors` are said to be used, and `data` right after the palette.
pub(super) fn bmp_file(
    width: i32,
    height: i32,
    bits: u16,
    compression: u32,
    palette: &[u8],
    colors: u32,
    data: &[u8],
) -> Vec<u8> {
    let offset = 54 + palette.len() as u32;
    let mut b = b"BM".to_vec();
    b.extend_from_slice(&(offset + data.len() as u32).to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&offset.to_le_bytes());
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&width.to_le_bytes());
    b.extend_from_slice(&height.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    b.extend_from_slice(&compression.to_le_bytes());
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&colors.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(palette);
    b.extend_from_slice(data);
    b
}

/// The rows of `px` as 24-bit BMP data: B, G, R, rows padded to 4 bytes, bottom-up unless
/// `top_down`.
pub(super) fn bmp_rows24(px: &Pixels, top_down: bool) -> Vec<u8> {
    let (w, h) = (px.width() as usize, px.height() as usize);
    let stride = (w * 3).div_ceil(4) * 4;
    let mut out = Vec::with_capacity(stride * h);
    for k in 0..h {
        let y = if top_down { k } else { h - 1 - k };
        let start = out.len();
        for p in px.data()[y * w * 3..][..w * 3].chunks_exact(3) {
            out.extend_from_slice(&[p[2], p[1], p[0]]);
        }
        out.resize(start + stride, 0);
    }
    out
}

/// A BMP whose header says `width` x `height`.
pub(super) fn bmp_with_size(b: &[u8], width: i32, height: i32) -> Vec<u8> {
    patched(b, |b| {
        b[18..22].copy_from_slice(&width.to_le_bytes());
        b[22..26].copy_from_slice(&height.to_le_bytes());
    })
}

/// The BMP suite: a 24-bit 250 x 150 (rows padded), its top-down twin, an 8-bit paletted one,
/// mutations and specials.
pub(super) fn bmp_cases() -> Vec<Case> {
    const F: &str = "bmp";
    let px = crate::samples::pattern(250, 150);
    let base = bmp_file(250, 150, 24, 0, &[], 0, &bmp_rows24(&px, false));
    let top_down = bmp_file(250, -150, 24, 0, &[], 0, &bmp_rows24(&px, true));
    let gray: Vec<u8> = (0..=255u8).flat_map(|i| [i, i, i, 0]).collect();
    let paletted = bmp_file(64, 48, 8, 0, &gray, 256, &gradient(64, 48));

    let mut cases = vec![
        Case::valid(F, "bmp-base", base.clone(), (250, 150)),
        Case::valid(F, "bmp-top-down", top_down, (250, 150)),
        Case::valid(F, "bmp-paletted", paletted.clone(), (64, 48)),
    ];
    cases.extend(mutations(
        F,
        "bmp",
        &base,
        &[2, 6, 10, 14, 18, 26, 30, 54],
        16,
    ));

    let u16_at = |at: usize, v: u16| patched(&base, |b| put_le16(b, at, v));
    let u32_at = |at: usize, v: u32| patched(&base, |b| put_le32(b, at, v));
    let rle8 = |w: i32, h: i32, data: &[u8]| bmp_file(w, h, 8, 1, &gray, 256, data);
    let mut overrun: Vec<u8> = vec![0, 255];
    overrun.extend_from_slice(&[7; 255]);
    overrun.extend_from_slice(&[0, 0, 1]);
    let runs: Vec<u8> = [255u8, 7].repeat(1000).into_iter().chain([0, 1]).collect();
    cases.extend(named(
        F,
        "bmp",
        vec![
            ("65535x65535", bmp_with_size(&base, 65535, 65535)),
            ("2147483647x1", bmp_with_size(&base, i32::MAX, 1)),
            ("1x2147483647", bmp_with_size(&base, 1, i32::MAX)),
            ("height-minus-65535", bmp_with_size(&base, 250, -65535)),
            ("height-min", bmp_with_size(&base, 250, i32::MIN)),
            ("width-negative", bmp_with_size(&base, -250, 150)),
            ("width-min", bmp_with_size(&base, i32::MIN, 150)),
            ("width-0", bmp_with_size(&base, 0, 150)),
            ("height-0", bmp_with_size(&base, 250, 0)),
            ("bpp-0", u16_at(28, 0)),
            ("bpp-1-without-palette", u16_at(28, 1)),
            ("bpp-33", u16_at(28, 33)),
            ("bpp-64", u16_at(28, 64)),
            ("planes-0", u16_at(26, 0)),
            ("rle8-on-24-bit", u32_at(30, 1)),
            ("rle4-on-24-bit", u32_at(30, 2)),
            ("bitfields-without-masks", u32_at(30, 3)),
            ("embedded-jpeg", u32_at(30, 4)),
            ("embedded-png", u32_at(30, 5)),
            ("compression-max", u32_at(30, u32::MAX)),
            ("data-offset-past-end", u32_at(10, base.len() as u32 + 100)),
            ("data-offset-0", u32_at(10, 0)),
            ("data-offset-max", u32_at(10, u32::MAX)),
            ("header-size-12", u32_at(14, 12)),
            ("header-size-124", u32_at(14, 124)),
            ("header-size-124-short", u32_at(14, 124)[..100].to_vec()),
            ("image-size-max", u32_at(34, u32::MAX)),
            (
                "colors-used-max",
                patched(&paletted, |b| put_le32(b, 46, u32::MAX)),
            ),
            (
                "colors-used-4-index-255",
                bmp_file(64, 48, 8, 0, &gray[..16], 4, &[255; 64 * 48]),
            ),
            ("rle8-65535x65535", rle8(65535, 65535, &[0, 1])),
            ("rle8-sparse-4000", rle8(4000, 4000, &[0, 1])),
            (
                "rle8-delta-past-end",
                rle8(64, 64, &[0, 2, 255, 255, 5, 7, 0, 1]),
            ),
            ("rle8-absolute-overrun", rle8(64, 64, &overrun)),
            ("rle8-runs-past-the-image", rle8(64, 64, &runs)),
            ("rle8-top-down", rle8(64, -64, &[4, 7, 0, 1])),
            (
                "rle4-65535x65535",
                bmp_file(65535, 65535, 4, 2, &gray[..64], 16, &[0, 1]),
            ),
        ],
    ));
    cases
}
