//! GIF encoding with the `gif` crate.
//!
//! Gray images are written exactly through a 256-level gray palette. Colour images are
//! quantised to 256 colours with NeuQuant (speed 10) when they have more. GIF transparency is
//! one bit: pixels with alpha below 128 become transparent, the others opaque.

use ::gif::{Encoder, EncodingError, Frame};

use super::{dimensions_u16, scratch};
use crate::Error;
use crate::pixels::{Layout, Pixels};

/// NeuQuant speed: 1 (best) ..= 30 (fastest); 10 is the crate's recommended compromise.
const SPEED: i32 = 10;

/// Alpha at or above this is opaque, below it transparent.
const OPAQUE: u8 = 128;

/// Encode as a single-frame GIF.
pub(super) fn encode(px: &Pixels) -> Result<Vec<u8>, Error> {
    let (w, h) = dimensions_u16(px, "gif")?;
    let frame = match px.layout() {
        Layout::Gray => {
            let mut indices = scratch(px.width(), px.height(), Layout::Gray)?;
            indices.data_mut().copy_from_slice(px.data());
            Frame::from_palette_pixels(w, h, indices.into_vec(), gray_palette(), None)
        }
        Layout::GrayAlpha => {
            let mut ga = scratch(px.width(), px.height(), Layout::GrayAlpha)?;
            for (d, s) in ga
                .data_mut()
                .chunks_exact_mut(2)
                .zip(px.data().chunks_exact(2))
            {
                if let ([dg, da], [sg, sa]) = (d, s) {
                    *dg = *sg;
                    *da = binary_alpha(*sa);
                }
            }
            Frame::from_grayscale_with_alpha(w, h, ga.data())
        }
        Layout::Rgb | Layout::Rgba => {
            let mut rgba = scratch(px.width(), px.height(), Layout::Rgba)?;
            let c = px.layout().channels();
            for (d, s) in rgba
                .data_mut()
                .chunks_exact_mut(4)
                .zip(px.data().chunks_exact(c))
            {
                if let ([dr, dg, db, da], [sr, sg, sb, rest @ ..]) = (d, s) {
                    *dr = *sr;
                    *dg = *sg;
                    *db = *sb;
                    *da = rest.first().map_or(255, |&a| binary_alpha(a));
                }
            }
            Frame::from_rgba_speed(w, h, rgba.data_mut(), SPEED)
        }
    };
    let fail = |e: EncodingError| Error::internal(format!("cannot encode GIF: {e}"));
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, w, h, &[]).map_err(fail)?;
    encoder.write_frame(&frame).map_err(fail)?;
    encoder.into_inner().map_err(fail)?;
    Ok(out)
}

/// 0 below [`OPAQUE`], 255 from it on.
fn binary_alpha(a: u8) -> u8 {
    if a < OPAQUE { 0 } else { 255 }
}

/// The palette `[0, 0, 0, 1, 1, 1, ..., 255, 255, 255]`.
fn gray_palette() -> Vec<u8> {
    (0..=255u8).flat_map(|v| [v, v, v]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testutil::{CENTRES, H, W, close, expected, sample};

    /// Decode the first frame to RGBA with the gif crate.
    fn decode_rgba(bytes: &[u8]) -> (u16, u16, Vec<u8>) {
        let mut options = ::gif::DecodeOptions::new();
        options.set_color_output(::gif::ColorOutput::RGBA);
        let mut decoder = options.read_info(bytes).unwrap();
        let frame = decoder.read_next_frame().unwrap().unwrap();
        (frame.width, frame.height, frame.buffer.to_vec())
    }

    fn at(rgba: &[u8], x: u32, y: u32) -> &[u8] {
        let i = ((y * W + x) * 4) as usize;
        &rgba[i..i + 4]
    }

    #[test]
    fn gray_is_exact() {
        let bytes = encode(&sample(Layout::Gray)).unwrap();
        let (w, h, rgba) = decode_rgba(&bytes);
        assert_eq!((u32::from(w), u32::from(h)), (W, H));
        for y in 0..H {
            for x in 0..W {
                let g = expected(Layout::Gray, x, y)[0];
                assert_eq!(at(&rgba, x, y), &[g, g, g, 255], "({x},{y})");
            }
        }
    }

    #[test]
    fn gray_alpha_keeps_binary_transparency() {
        let bytes = encode(&sample(Layout::GrayAlpha)).unwrap();
        let (_, _, rgba) = decode_rgba(&bytes);
        for y in 0..H {
            for x in 0..W {
                let want = expected(Layout::GrayAlpha, x, y);
                let (g, a) = (want[0], want[1]);
                let got = at(&rgba, x, y);
                if a < OPAQUE {
                    assert_eq!(got[3], 0, "({x},{y})");
                } else {
                    // The crate may shift the one gray it reserves for transparency by one.
                    assert!(close(got, &[g, g, g, 255], 1), "({x},{y}): {got:?}");
                }
            }
        }
    }

    #[test]
    fn colour_is_quantised_and_keeps_transparency() {
        for layout in [Layout::Rgb, Layout::Rgba] {
            let bytes = encode(&sample(layout)).unwrap();
            let (w, h, rgba) = decode_rgba(&bytes);
            assert_eq!((u32::from(w), u32::from(h)), (W, H));
            for (x, y) in CENTRES {
                let want = expected(Layout::Rgba, x, y);
                let got = at(&rgba, x, y);
                if layout == Layout::Rgba && want[3] < OPAQUE {
                    assert_eq!(got[3], 0, "{layout:?} ({x},{y})");
                } else {
                    // NeuQuant trains on a tenth of only 3072 pixels: loose tolerance.
                    assert!(
                        close(&got[..3], &want[..3], 40),
                        "{layout:?} ({x},{y}): {got:?}"
                    );
                    assert_eq!(got[3], 255);
                }
            }
        }
    }

    #[test]
    fn few_colours_are_exact() {
        let data: Vec<u8> = (0..16u8).flat_map(|i| [i * 16, 255 - i * 16, 7]).collect();
        let px = Pixels::from_vec(4, 4, Layout::Rgb, data.clone()).unwrap();
        let (_, _, rgba) = decode_rgba(&encode(&px).unwrap());
        let rgb: Vec<u8> = rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        assert_eq!(rgb, data);
    }
}
