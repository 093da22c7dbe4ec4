//! PNG: decoding and encoding with the `png` crate.
//!
//! Decoding expands palettes and `tRNS` and strips 16-bit samples to their high byte, so every
//! colour type and bit depth comes out as 8-bit gray, gray + alpha, RGB or RGBA. Of an animated
//! PNG only the default image is decoded.

use std::io::{BufRead, Cursor, Seek};

use ::png::{BitDepth, ColorType, Compression, Decoder, Encoder, Limits, Reader, Transformations};

use super::{Header, Orientation, SourceFormat, header};
use crate::Error;
use crate::pixels::{Budget, Layout, Pixels};

/// A png decoding error as the crate's: a source error (the file is broken or unsupported).
pub(crate) fn source_error(e: ::png::DecodingError) -> Error {
    super::decode_error("PNG", e)
}

/// The [`Header`] of a PNG file, from its `IHDR` chunk.
pub(super) fn read_header(bytes: &[u8]) -> Result<Header, Error> {
    let mut decoder = Decoder::new(Cursor::new(bytes));
    let info = decoder.read_header_info().map_err(source_error)?;
    let gray = matches!(
        info.color_type,
        ColorType::Grayscale | ColorType::GrayscaleAlpha
    );
    Ok(header(
        SourceFormat::Png,
        (info.width, info.height),
        Orientation::NORMAL,
        gray,
    ))
}

/// Decode a PNG file to 8-bit pixels, checking the output against `budget` first. The
/// decoder's own allocations are limited to the budget too.
pub(super) fn decode(bytes: &[u8], budget: Budget) -> Result<Pixels, Error> {
    let mut decoder = decoder(Cursor::new(bytes), budget);
    let (width, height) = {
        let info = decoder.read_header_info().map_err(source_error)?;
        (info.width, info.height)
    };
    // The smallest possible output; the exact layout is known after `read_info`.
    budget.check(width, height, Layout::Gray)?;
    let mut reader = decoder.read_info().map_err(source_error)?;
    let layout = output_layout(&reader)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::source("cannot decode PNG: image too large"))?;
    budget.check(width, height, layout)?;
    let mut px = Pixels::try_new(width, height, layout, budget)?;
    if px.data().len() != size {
        return Err(Error::source("cannot decode PNG: unexpected output size"));
    }
    reader.next_frame(px.data_mut()).map_err(source_error)?;
    Ok(px)
}

/// A decoder of `input` that expands palettes and `tRNS` and strips 16-bit samples, its own
/// allocations limited to `budget`: what every PNG decode here starts from, so that whole and
/// row-by-row decodes give the same layout.
pub(crate) fn decoder<R: BufRead + Seek>(input: R, budget: Budget) -> Decoder<R> {
    let limits = Limits {
        bytes: usize::try_from(budget.max_bytes()).unwrap_or(usize::MAX),
    };
    let mut decoder = Decoder::new_with_limits(input, limits);
    decoder.set_transformations(Transformations::EXPAND | Transformations::STRIP_16);
    decoder
}

/// The layout of the rows `reader` (made by [`decoder`]) gives: gray, gray + alpha (gray with
/// `tRNS` too), RGB (palette too) or RGBA (RGB or palette with `tRNS` too), 8 bits each.
pub(crate) fn output_layout<R: BufRead + Seek>(reader: &Reader<R>) -> Result<Layout, Error> {
    match reader.output_color_type() {
        (ColorType::Grayscale, BitDepth::Eight) => Ok(Layout::Gray),
        (ColorType::GrayscaleAlpha, BitDepth::Eight) => Ok(Layout::GrayAlpha),
        (ColorType::Rgb, BitDepth::Eight) => Ok(Layout::Rgb),
        (ColorType::Rgba, BitDepth::Eight) => Ok(Layout::Rgba),
        (color, depth) => Err(Error::source(format!(
            "cannot decode PNG: unexpected output {color:?} at {depth:?}"
        ))),
    }
}

/// Encode as an 8-bit PNG of the same layout, with fast compression.
pub(super) fn encode(px: &Pixels) -> Result<Vec<u8>, Error> {
    let color = match px.layout() {
        Layout::Gray => ColorType::Grayscale,
        Layout::GrayAlpha => ColorType::GrayscaleAlpha,
        Layout::Rgb => ColorType::Rgb,
        Layout::Rgba => ColorType::Rgba,
    };
    let fail = |e: ::png::EncodingError| Error::internal(format!("cannot encode PNG: {e}"));
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, px.width(), px.height());
    encoder.set_color(color);
    encoder.set_depth(BitDepth::Eight);
    encoder.set_compression(Compression::Fast);
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(px.data()).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testutil::{H, W, sample};

    #[test]
    fn every_layout_round_trips_exactly() {
        for layout in [Layout::Gray, Layout::GrayAlpha, Layout::Rgb, Layout::Rgba] {
            let px = sample(layout);
            let bytes = encode(&px).unwrap();
            let h = read_header(&bytes).unwrap();
            assert_eq!((h.width, h.height), (W, H));
            assert_eq!(h.gray, layout.is_gray());
            assert_eq!(decode(&bytes, Budget::default()).unwrap(), px, "{layout:?}");
        }
    }

    /// Write a PNG with the png encoder directly.
    fn raw_png(
        (w, h): (u32, u32),
        color: ColorType,
        depth: BitDepth,
        palette: Option<&[u8]>,
        trns: Option<&[u8]>,
        data: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = Encoder::new(&mut out, w, h);
        encoder.set_color(color);
        encoder.set_depth(depth);
        if let Some(p) = palette {
            encoder.set_palette(p.to_vec());
        }
        if let Some(t) = trns {
            encoder.set_trns(t.to_vec());
        }
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(data).unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn palette_expands_to_rgb_and_with_trns_to_rgba() {
        let palette = [255, 0, 0, 0, 255, 0, 0, 0, 255];
        let indices = [0, 1, 2, 2, 1, 0];
        let bytes = raw_png(
            (3, 2),
            ColorType::Indexed,
            BitDepth::Eight,
            Some(&palette),
            None,
            &indices,
        );
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!(px.layout(), Layout::Rgb);
        assert_eq!(px.pixel(0, 0), &[255, 0, 0]);
        assert_eq!(px.pixel(1, 0), &[0, 255, 0]);
        assert_eq!(px.pixel(0, 1), &[0, 0, 255]);
        assert!(!read_header(&bytes).unwrap().gray);

        let bytes = raw_png(
            (3, 2),
            ColorType::Indexed,
            BitDepth::Eight,
            Some(&palette),
            Some(&[0, 128]),
            &indices,
        );
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!(px.layout(), Layout::Rgba);
        assert_eq!(px.pixel(0, 0), &[255, 0, 0, 0]);
        assert_eq!(px.pixel(1, 0), &[0, 255, 0, 128]);
        assert_eq!(px.pixel(2, 0), &[0, 0, 255, 255]);
    }

    #[test]
    fn low_bit_depth_palette_and_gray_expand() {
        // 2-bit palette, 4 pixels in one byte: indices 3, 2, 1, 0.
        let palette = [0, 0, 0, 10, 20, 30, 40, 50, 60, 70, 80, 90];
        let bytes = raw_png(
            (4, 1),
            ColorType::Indexed,
            BitDepth::Two,
            Some(&palette),
            None,
            &[0b11_10_01_00],
        );
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!(px.data(), &[70, 80, 90, 40, 50, 60, 10, 20, 30, 0, 0, 0]);

        // 1-bit gray: 0 -> 0, 1 -> 255.
        let bytes = raw_png(
            (8, 1),
            ColorType::Grayscale,
            BitDepth::One,
            None,
            None,
            &[0b1010_0001],
        );
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!(px.layout(), Layout::Gray);
        assert_eq!(px.data(), &[255, 0, 255, 0, 0, 0, 0, 255]);
        assert!(read_header(&bytes).unwrap().gray);
    }

    #[test]
    fn sixteen_bit_samples_keep_their_high_byte() {
        // 2x1 RGB16, big-endian samples.
        let data = [
            0x12, 0x34, 0xAB, 0xCD, 0xFF, 0xFF, //
            0x00, 0x01, 0x80, 0x00, 0x7F, 0xFF,
        ];
        let bytes = raw_png((2, 1), ColorType::Rgb, BitDepth::Sixteen, None, None, &data);
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!(px.layout(), Layout::Rgb);
        assert_eq!(px.data(), &[0x12, 0xAB, 0xFF, 0x00, 0x80, 0x7F]);

        let data = [0xFE, 0x01, 0x00, 0x00, 0x40, 0x00, 0x80, 0x00];
        let bytes = raw_png(
            (2, 1),
            ColorType::GrayscaleAlpha,
            BitDepth::Sixteen,
            None,
            None,
            &data,
        );
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!(px.layout(), Layout::GrayAlpha);
        assert_eq!(px.data(), &[0xFE, 0x00, 0x40, 0x80]);
    }

    #[test]
    fn budget_is_checked_before_decoding() {
        let bytes = encode(&sample(Layout::Rgba)).unwrap();
        let need = u64::from(W * H * 4);
        assert!(decode(&bytes, Budget::new(need - 1)).is_err());
        assert!(decode(&bytes, Budget::new(need)).is_ok());
        // Less than even a gray image: refused before `read_info`.
        assert!(decode(&bytes, Budget::new(10)).is_err());
    }
}
