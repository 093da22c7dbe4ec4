//! WebP sources with `image-webp`: lossy (VP8), lossless (VP8L), with alpha, and the first
//! frame of an animated file, as RGB or RGBA.

use std::io::Cursor;

use image_webp::WebPDecoder;

use super::{Header, Orientation, SourceFormat, decode_error, header};
use crate::Error;
use crate::pixels::{Budget, Layout, Pixels};

/// The [`Header`] of a WebP file: its canvas.
pub(super) fn read_header(bytes: &[u8]) -> Result<Header, Error> {
    let d = WebPDecoder::new(Cursor::new(bytes)).map_err(|e| decode_error("WebP", e))?;
    Ok(header(
        SourceFormat::Webp,
        d.dimensions(),
        Orientation::NORMAL,
        false,
    ))
}

/// Decode the image (or first frame), checking its size against `budget` first.
pub(super) fn decode(bytes: &[u8], budget: Budget) -> Result<Pixels, Error> {
    let mut d = WebPDecoder::new(Cursor::new(bytes)).map_err(|e| decode_error("WebP", e))?;
    let (width, height) = d.dimensions();
    let layout = match d.has_alpha() {
        true => Layout::Rgba,
        false => Layout::Rgb,
    };
    budget.check(width, height, layout)?;
    d.set_memory_limit(usize::try_from(budget.max_bytes()).unwrap_or(usize::MAX));
    let mut px = Pixels::try_new(width, height, layout, budget)?;
    if d.output_buffer_size() != Some(px.data().len()) {
        return Err(Error::source("cannot decode WebP: unexpected output size"));
    }
    d.read_image(px.data_mut())
        .map_err(|e| decode_error("WebP", e))?;
    Ok(px)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image_webp::{ColorType, WebPEncoder};

    fn lossless(w: u32, h: u32, rgba: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        WebPEncoder::new(&mut out)
            .encode(rgba, w, h, ColorType::Rgba8)
            .unwrap();
        out
    }

    #[test]
    fn lossless_webp_with_alpha_decodes_exactly() {
        let rgba: Vec<u8> = (0..4 * 3 * 4).map(|i| (i * 5) as u8).collect();
        let bytes = lossless(4, 3, &rgba);
        assert_eq!(super::super::sniff(&bytes), Some(SourceFormat::Webp));
        let h = read_header(&bytes).unwrap();
        assert_eq!((h.width, h.height), (4, 3));
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!(px.layout(), Layout::Rgba);
        assert_eq!(px.data(), &rgba[..]);
    }

    /// Lossy WebP, lossy with alpha (an ALPH chunk) and lossless with alpha, written by libwebp:
    /// close to their references (exact for the lossless one, alpha exact everywhere).
    #[test]
    fn libwebp_files_decode_close_to_their_references() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webp");
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
        let reference = super::super::decode(&read("reference.png"), Budget::default()).unwrap();
        let reference_alpha =
            super::super::decode(&read("reference-alpha.png"), Budget::default()).unwrap();
        for (name, want, max_diff) in [
            ("lossy.webp", &reference, 6.0),
            ("lossy-alpha.webp", &reference_alpha, 6.0),
            ("lossless-alpha.webp", &reference_alpha, 0.0),
        ] {
            let bytes = read(name);
            let px = decode(&bytes, Budget::default()).unwrap();
            assert_eq!(
                (px.width(), px.height(), px.layout()),
                (want.width(), want.height(), want.layout()),
                "{name}"
            );
            // Colour where the reference is opaque (libwebp changes the colour under alpha 0
            // unless told to keep it exact), alpha exactly.
            let c = px.layout().channels();
            let (mut sum, mut n) = (0u64, 0u64);
            for (got, want) in px.data().chunks_exact(c).zip(want.data().chunks_exact(c)) {
                if c == 4 {
                    assert_eq!(got[3], want[3], "{name}: alpha");
                    if want[3] < 255 {
                        continue;
                    }
                }
                sum += got[..3]
                    .iter()
                    .zip(&want[..3])
                    .map(|(a, b)| u64::from(a.abs_diff(*b)))
                    .sum::<u64>();
                n += 3;
            }
            let d = sum as f64 / n as f64;
            assert!(n > 0 && d <= max_diff, "{name}: mean difference {d}");
        }
    }

    #[test]
    fn broken_webps_are_clean_errors() {
        let rgba = vec![200u8; 16 * 16 * 4];
        let bytes = lossless(16, 16, &rgba);
        for cut in [12, 20, 30, bytes.len() / 2, bytes.len() - 1] {
            if let Err(e) = decode(&bytes[..cut], Budget::default()) {
                assert!(!e.message().contains('{'), "{e}");
            }
        }
        assert!(decode(&bytes, Budget::new(100)).is_err());
    }
}
