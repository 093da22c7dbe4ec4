//! WebP encoding with `image-webp`: lossless (VP8L), every layout natively.

use image_webp::{ColorType, WebPEncoder};

use super::too_large;
use crate::Error;
use crate::pixels::{Layout, Pixels};

/// The largest width and height of a WebP image.
const MAX_SIDE: u32 = 16_384;

/// Encode as a lossless WebP.
pub(super) fn encode(px: &Pixels) -> Result<Vec<u8>, Error> {
    if px.width() > MAX_SIDE || px.height() > MAX_SIDE {
        return Err(too_large(px, "webp", MAX_SIDE));
    }
    let color = match px.layout() {
        Layout::Gray => ColorType::L8,
        Layout::GrayAlpha => ColorType::La8,
        Layout::Rgb => ColorType::Rgb8,
        Layout::Rgba => ColorType::Rgba8,
    };
    let mut out = Vec::new();
    WebPEncoder::new(&mut out)
        .encode(px.data(), px.width(), px.height(), color)
        .map_err(|e| Error::internal(format!("cannot encode WebP: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testutil::{H, W, expected, sample};
    use image_webp::WebPDecoder;
    use std::io::Cursor;

    /// Decode with image-webp: RGB, or RGBA when the image has alpha.
    fn decode(bytes: &[u8]) -> (u32, u32, bool, Vec<u8>) {
        let mut decoder = WebPDecoder::new(Cursor::new(bytes)).unwrap();
        let (w, h) = decoder.dimensions();
        let alpha = decoder.has_alpha();
        let mut buf = vec![0; decoder.output_buffer_size().unwrap()];
        decoder.read_image(&mut buf).unwrap();
        (w, h, alpha, buf)
    }

    #[test]
    fn every_layout_round_trips_losslessly() {
        for layout in [Layout::Gray, Layout::GrayAlpha, Layout::Rgb, Layout::Rgba] {
            let bytes = encode(&sample(layout)).unwrap();
            assert!(bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(&b"WEBP"[..]));
            let (w, h, alpha, data) = decode(&bytes);
            assert_eq!((w, h), (W, H));
            assert_eq!(alpha, layout.has_alpha(), "{layout:?}");
            let c = if alpha { 4 } else { 3 };
            for (i, got) in data.chunks_exact(c).enumerate() {
                let (x, y) = ((i as u32) % W, (i as u32) / W);
                let want = expected(layout, x, y);
                let want: Vec<u8> = match layout {
                    Layout::Gray => vec![want[0], want[0], want[0]],
                    Layout::GrayAlpha => vec![want[0], want[0], want[0], want[1]],
                    Layout::Rgb | Layout::Rgba => want,
                };
                if alpha && want[3] == 0 {
                    // Colour under full transparency need not survive.
                    assert_eq!(got[3], 0, "{layout:?} ({x},{y})");
                } else {
                    assert_eq!(got, &want[..], "{layout:?} ({x},{y})");
                }
            }
        }
    }
}
