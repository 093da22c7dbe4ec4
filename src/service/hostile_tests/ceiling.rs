//! The memory-ceiling test's files: a 16000 x 16000 dimension bomb of every format.

use super::bmp::{bmp_file, bmp_rows24, bmp_with_size};
use super::gif::gif_with_size;
use super::jp2::{j2k_with_size, jp2_fixture};
use super::jpeg::jpeg_with_size;
use super::png::{png_chunk, png_file, png_ihdr};
use super::tiff::{strip_tiff, tiff_with_size};
use super::webp::webp_with_size;
use super::*;

/// A 16000 x 16000 dimension bomb of every format, each with a valid header.
pub(super) fn ceiling_bombs() -> Vec<(String, Vec<u8>)> {
    const SIDE: u32 = 16_000;
    let side16 = SIDE as u16;
    let jpeg = encode(&base_pixels(), Format::Jpg);
    let gif = encode(&base_pixels(), Format::Gif);
    let webp = encode(&base_pixels(), Format::Webp);
    let px = crate::samples::pattern(250, 150);
    let bmp = bmp_file(250, 150, 24, 0, &[], 0, &bmp_rows24(&px, false));
    let (pyramid, _) = crate::tiff::tests::deflate_rgb_pyramid();
    vec![
        ("bomb-jpeg", jpeg_with_size(&jpeg, side16, side16)),
        (
            "bomb-png",
            png_file(
                png_ihdr(SIDE, SIDE, 8, 2, 0),
                &[png_chunk(b"IDAT", &zlib_zeros(1 << 20))],
            ),
        ),
        (
            "bomb-tiff-strip",
            strip_tiff(SIDE, SIDE, 3, 8, 2, &zlib_zeros(1 << 20)),
        ),
        ("bomb-tiff-tiled", tiff_with_size(&pyramid, 0, SIDE, SIDE)),
        ("bomb-bmp", bmp_with_size(&bmp, SIDE as i32, SIDE as i32)),
        (
            "bomb-gif",
            gif_with_size(&gif, (side16, side16), (side16, side16)),
        ),
        ("bomb-webp", webp_with_size(&webp, SIDE, SIDE)),
        (
            "bomb-j2k",
            j2k_with_size(&jp2_fixture(false, false), SIDE, SIDE, Some((SIDE, SIDE))),
        ),
        (
            "bomb-jp2-tiled",
            j2k_with_size(&jp2_fixture(true, true), SIDE, SIDE, None),
        ),
    ]
    .into_iter()
    .map(|(id, bytes)| (id.to_owned(), bytes))
    .collect()
}
