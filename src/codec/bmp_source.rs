//! BMP sources with `zune-bmp`: 1- to 32-bit, paletted, RLE and bit-field files, as gray, RGB
//! or RGBA.

use zune_bmp::BmpDecoder;
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

use super::{Header, Orientation, SourceFormat, header};
use crate::Error;
use crate::pixels::{Budget, Layout, Pixels};

/// The decoder's errors only implement `Debug`: never shown, one plain line instead.
fn broken() -> Error {
    Error::source("cannot decode BMP: corrupt, truncated or unsupported data")
}

/// A decoder with its headers read, and the image's width, height and layout.
type Opened<'a> = (BmpDecoder<ZCursor<&'a [u8]>>, u32, u32, Layout);

/// A decoder with its headers read; sizes are bounded by the budget, not by the decoder's
/// default maximum side.
fn decoder(bytes: &[u8]) -> Result<Opened<'_>, Error> {
    let options = DecoderOptions::default()
        .set_max_width(1 << 24)
        .set_max_height(1 << 24);
    let mut d = BmpDecoder::new_with_options(ZCursor::new(bytes), options);
    d.decode_headers().map_err(|_| broken())?;
    let (w, h) = d.dimensions().ok_or_else(broken)?;
    let layout = match d.colorspace() {
        Some(ColorSpace::Luma) => Layout::Gray,
        Some(ColorSpace::RGB) => Layout::Rgb,
        Some(ColorSpace::RGBA) => Layout::Rgba,
        _ => return Err(broken()),
    };
    let size = |v: usize| u32::try_from(v).map_err(|_| broken());
    Ok((d, size(w)?, size(h)?, layout))
}

/// The [`Header`] of a BMP file.
pub(super) fn read_header(bytes: &[u8]) -> Result<Header, Error> {
    let (_, w, h, layout) = decoder(bytes)?;
    Ok(header(
        SourceFormat::Bmp,
        (w, h),
        Orientation::NORMAL,
        layout.is_gray(),
    ))
}

/// Decode a BMP file, checking its size against `budget` first.
pub(super) fn decode(bytes: &[u8], budget: Budget) -> Result<Pixels, Error> {
    let (mut d, w, h, layout) = decoder(bytes)?;
    budget.check(w, h, layout)?;
    let mut px = Pixels::try_new(w, h, layout, budget)?;
    if d.output_buf_size() != Some(px.data().len()) {
        return Err(broken());
    }
    d.decode_into(px.data_mut()).map_err(|_| broken())?;
    Ok(px)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 24-bit BMP, bottom-up rows padded to 4 bytes, pixels stored B, G, R.
    fn bmp24(w: u32, h: u32, rgb: &[u8]) -> Vec<u8> {
        let row = (w * 3).div_ceil(4) * 4;
        let data_len = row * h;
        let mut out = Vec::new();
        out.extend_from_slice(b"BM");
        out.extend_from_slice(&(54 + data_len).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&54u32.to_le_bytes());
        out.extend_from_slice(&40u32.to_le_bytes());
        out.extend_from_slice(&w.to_le_bytes());
        out.extend_from_slice(&h.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&24u16.to_le_bytes());
        out.extend_from_slice(&[0; 4]); // BI_RGB
        out.extend_from_slice(&data_len.to_le_bytes());
        out.extend_from_slice(&[0; 16]);
        for y in (0..h).rev() {
            let start = out.len();
            for x in 0..w {
                let p = &rgb[((y * w + x) * 3) as usize..][..3];
                out.extend_from_slice(&[p[2], p[1], p[0]]);
            }
            out.resize(start + row as usize, 0);
        }
        out
    }

    #[test]
    fn a_24_bit_bmp_decodes_exactly_upright() {
        let rgb: Vec<u8> = (0..5 * 3 * 3).map(|i| (i * 7) as u8).collect();
        let bytes = bmp24(5, 3, &rgb);
        assert_eq!(super::super::sniff(&bytes), Some(SourceFormat::Bmp));
        let h = read_header(&bytes).unwrap();
        assert_eq!((h.width, h.height, h.gray), (5, 3, false));
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!(px.layout(), Layout::Rgb);
        assert_eq!(px.data(), &rgb[..]);
    }

    #[test]
    fn broken_and_oversized_bmps_are_clean_errors() {
        let rgb = vec![90u8; 64 * 64 * 3];
        let bytes = bmp24(64, 64, &rgb);
        for cut in [2, 14, 30, 54, 1000, bytes.len() - 1] {
            if let Err(e) = decode(&bytes[..cut], Budget::default()) {
                assert!(!e.message().contains(['{', '(']), "{e}");
            }
        }
        assert!(decode(&bytes, Budget::new(1000)).is_err());
        // A header claiming 100,000 x 100,000 pixels: refused by the budget, nothing allocated.
        let mut bomb = bytes.clone();
        bomb[18..22].copy_from_slice(&100_000u32.to_le_bytes());
        bomb[22..26].copy_from_slice(&100_000u32.to_le_bytes());
        assert!(decode(&bomb, Budget::default()).is_err());
    }
}
