//! TIFF: decoding and encoding with the `tiff` crate.
//!
//! The first image of a TIFF or BigTIFF file is decoded, stored in strips or tiles, uncompressed
//! or compressed with Deflate, LZW, PackBits or JPEG. Unsigned 8- and 16-bit gray, gray + alpha,
//! RGB, RGBA, CMYK, CMYK + alpha and YCbCr samples are supported (16-bit samples keep their high
//! byte), and 1-, 2- and 4-bit gray. CMYK and YCbCr become RGB. The `Orientation` tag (274) is
//! honoured like the EXIF one.
//!
//! Encoding writes one Deflate-compressed 8-bit image.

use std::io::Cursor;

use ::tiff::decoder::{Decoder, DecodingResult, Limits};
use ::tiff::encoder::{Compression, DeflateLevel, TiffEncoder, colortype};
use ::tiff::tags::{ExtraSamples, Tag};
use ::tiff::{ColorType, TiffError};

use super::{Header, Orientation, SourceFormat, header};
use crate::Error;
use crate::pixels::{Budget, Layout, Pixels};

/// How much larger than the 8-bit output the decoder's raw sample buffer may be: 16-bit CMYK
/// takes 8 bytes a pixel for 3 bytes of RGB.
const RAW_FACTOR: u64 = 3;

fn source_error(e: TiffError) -> Error {
    Error::source(format!("cannot decode TIFF: {e}"))
}

/// The photometric model of a supported TIFF image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gray,
    GrayAlpha,
    Rgb,
    Rgba,
    Cmyk,
    Cmyka,
    YCbCr,
}

impl Kind {
    /// The kind and bits per sample of a colour type, or an error for unsupported ones.
    fn of(color: ColorType) -> Result<(Kind, u8), Error> {
        let (kind, bits) = match color {
            ColorType::Gray(b) => (Kind::Gray, b),
            ColorType::GrayA(b) => (Kind::GrayAlpha, b),
            // Gray with one extra sample, taken as alpha.
            ColorType::Multiband {
                bit_depth: b,
                num_samples: 2,
            } => (Kind::GrayAlpha, b),
            ColorType::RGB(b) => (Kind::Rgb, b),
            ColorType::RGBA(b) => (Kind::Rgba, b),
            ColorType::CMYK(b) => (Kind::Cmyk, b),
            ColorType::CMYKA(b) => (Kind::Cmyka, b),
            ColorType::YCbCr(b) => (Kind::YCbCr, b),
            other => {
                return Err(Error::source(format!(
                    "cannot decode TIFF: colour type {other:?} is not supported"
                )));
            }
        };
        match (kind, bits) {
            (_, 8 | 16) | (Kind::Gray, 1 | 2 | 4) => Ok((kind, bits)),
            _ => Err(Error::source(format!(
                "cannot decode TIFF: {bits}-bit {kind:?} samples are not supported"
            ))),
        }
    }

    /// Samples per pixel in the decoded data (at least; extra samples may follow).
    fn samples(self) -> usize {
        match self {
            Kind::Gray => 1,
            Kind::GrayAlpha => 2,
            Kind::Rgb | Kind::YCbCr => 3,
            Kind::Rgba | Kind::Cmyk => 4,
            Kind::Cmyka => 5,
        }
    }

    /// The layout of the decoded [`Pixels`].
    fn layout(self) -> Layout {
        match self {
            Kind::Gray => Layout::Gray,
            Kind::GrayAlpha => Layout::GrayAlpha,
            Kind::Rgb | Kind::Cmyk | Kind::YCbCr => Layout::Rgb,
            Kind::Rgba | Kind::Cmyka => Layout::Rgba,
        }
    }
}

/// The `Orientation` tag of the current image; missing or broken gives
/// [`Orientation::NORMAL`].
fn orientation<R: std::io::Read + std::io::Seek>(decoder: &mut Decoder<R>) -> Orientation {
    match decoder.find_tag_unsigned::<u32>(Tag::Orientation) {
        Ok(Some(v)) => Orientation::from_value(v),
        _ => Orientation::NORMAL,
    }
}

/// The [`Header`] of a TIFF file, from its first image file directory.
pub(super) fn read_header(bytes: &[u8]) -> Result<Header, Error> {
    let mut decoder = Decoder::new(Cursor::new(bytes)).map_err(source_error)?;
    let dimensions = decoder.dimensions().map_err(source_error)?;
    let (kind, _) = Kind::of(decoder.colortype().map_err(source_error)?)?;
    let orientation = orientation(&mut decoder);
    Ok(header(
        SourceFormat::Tiff,
        dimensions,
        orientation,
        kind.layout().is_gray(),
    ))
}

/// Decode the first image of a TIFF file to upright 8-bit pixels, checking the output against
/// `budget` (and the decoder's sample buffer against a multiple of it) before decoding.
pub(super) fn decode(bytes: &[u8], budget: Budget) -> Result<Pixels, Error> {
    let mut decoder = Decoder::new(Cursor::new(bytes)).map_err(source_error)?;
    let (width, height) = decoder.dimensions().map_err(source_error)?;
    let (kind, bits) = Kind::of(decoder.colortype().map_err(source_error)?)?;
    let layout = kind.layout();
    budget.check(width, height, layout)?;
    let orientation = orientation(&mut decoder);

    let mut limits = Limits::default();
    limits.decoding_buffer_size =
        usize::try_from(budget.max_bytes().saturating_mul(RAW_FACTOR)).unwrap_or(usize::MAX);
    let mut decoder = decoder.with_limits(limits);
    let raw = decoder.read_image().map_err(source_error)?;

    let mut px = Pixels::try_new(width, height, layout, budget)?;
    match raw {
        DecodingResult::U8(samples) if bits < 8 => unpack_gray(&samples, bits, &mut px)?,
        DecodingResult::U8(samples) => convert(samples.as_slice(), kind, &mut px)?,
        DecodingResult::U16(samples) => convert(samples.as_slice(), kind, &mut px)?,
        _ => {
            return Err(Error::source(
                "cannot decode TIFF: only unsigned integer samples are supported",
            ));
        }
    }
    orientation.apply(px, budget)
}

/// An unsigned sample that reduces to 8 bits.
trait Sample: Copy {
    /// The 8-bit value: the sample itself, or the high byte of a 16-bit one.
    fn to_u8(self) -> u8;
}

impl Sample for u8 {
    fn to_u8(self) -> u8 {
        self
    }
}

impl Sample for u16 {
    fn to_u8(self) -> u8 {
        (self >> 8) as u8
    }
}

/// Convert interleaved samples of `kind` into `px`.
fn convert<S: Sample>(src: &[S], kind: Kind, px: &mut Pixels) -> Result<(), Error> {
    let pixels = px.width() as usize * px.height() as usize;
    if pixels == 0 {
        return Ok(());
    }
    // Samples per pixel actually decoded, counting extra samples; fewer than the model needs
    // means a planar file, of which only the first plane is read.
    let stride = src.len() / pixels;
    if stride < kind.samples() {
        return Err(Error::source(
            "cannot decode TIFF: planar or truncated sample data is not supported",
        ));
    }
    let out_channels = px.layout().channels();
    let pairs = src
        .chunks_exact(stride)
        .zip(px.data_mut().chunks_exact_mut(out_channels));
    match kind {
        Kind::Gray | Kind::GrayAlpha | Kind::Rgb | Kind::Rgba => {
            for (s, d) in pairs {
                for (d, s) in d.iter_mut().zip(s) {
                    *d = s.to_u8();
                }
            }
        }
        Kind::Cmyk | Kind::Cmyka => {
            for (s, d) in pairs {
                if let ([c, m, y, k, alpha @ ..], [r, g, b, out_alpha @ ..]) = (s, d) {
                    let k = k.to_u8();
                    *r = cmyk_channel(c.to_u8(), k);
                    *g = cmyk_channel(m.to_u8(), k);
                    *b = cmyk_channel(y.to_u8(), k);
                    if let ([a, ..], [oa, ..]) = (alpha, out_alpha) {
                        *oa = a.to_u8();
                    }
                }
            }
        }
        Kind::YCbCr => {
            for (s, d) in pairs {
                if let ([y, cb, cr, ..], [r, g, b]) = (s, d) {
                    [*r, *g, *b] = ycbcr_to_rgb(y.to_u8(), cb.to_u8(), cr.to_u8());
                }
            }
        }
    }
    Ok(())
}

/// One RGB channel from its CMY ink and black: (255 - ink) * (255 - k) / 255, rounded.
fn cmyk_channel(ink: u8, k: u8) -> u8 {
    let v = u32::from(255 - ink) * u32::from(255 - k);
    ((v + 127) / 255) as u8
}

/// Full-range (JFIF) YCbCr to RGB, in 16.16 fixed point.
fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let y = i32::from(y);
    let cb = i32::from(cb) - 128;
    let cr = i32::from(cr) - 128;
    let r = y + ((91_881 * cr + 32_768) >> 16);
    let g = y + ((-22_554 * cb - 46_802 * cr + 32_768) >> 16);
    let b = y + ((116_130 * cb + 32_768) >> 16);
    [r, g, b].map(|v| v.clamp(0, 255) as u8)
}

/// Expand 1-, 2- or 4-bit gray rows (each padded to a whole byte) to 8 bits.
fn unpack_gray(src: &[u8], bits: u8, px: &mut Pixels) -> Result<(), Error> {
    let width = px.width() as usize;
    if width == 0 || px.height() == 0 {
        return Ok(());
    }
    let bits = usize::from(bits);
    let row_bytes = (width * bits).div_ceil(8);
    if src.len() < row_bytes * px.height() as usize {
        return Err(Error::source("cannot decode TIFF: truncated sample data"));
    }
    let mask = (1u8 << bits) - 1;
    let scale = 255 / mask;
    for (row, out) in src
        .chunks_exact(row_bytes)
        .zip(px.data_mut().chunks_exact_mut(width))
    {
        for (x, d) in out.iter_mut().enumerate() {
            let bit = x * bits;
            let byte = row.get(bit / 8).copied().unwrap_or(0);
            let shift = 8 - bits - bit % 8;
            *d = ((byte >> shift) & mask) * scale;
        }
    }
    Ok(())
}

/// Encode as a Deflate-compressed 8-bit TIFF: gray, gray with an (unassociated) alpha extra
/// sample, RGB or RGBA.
pub(super) fn encode(px: &Pixels) -> Result<Vec<u8>, Error> {
    let fail = |e: TiffError| Error::internal(format!("cannot encode TIFF: {e}"));
    let (w, h, data) = (px.width(), px.height(), px.data());
    let mut out = Cursor::new(Vec::new());
    let mut encoder = TiffEncoder::new(&mut out)
        .map_err(fail)?
        .with_compression(Compression::Deflate(DeflateLevel::Fast));
    let written = match px.layout() {
        Layout::Gray => encoder.write_image::<colortype::Gray8>(w, h, data),
        Layout::Rgb => encoder.write_image::<colortype::RGB8>(w, h, data),
        Layout::Rgba => encoder.write_image::<colortype::RGBA8>(w, h, data),
        Layout::GrayAlpha => encoder
            .new_image::<colortype::Gray8>(w, h)
            .and_then(|mut image| {
                image.extra_samples(&[ExtraSamples::UnassociatedAlpha])?;
                image.write_data(data)
            }),
    };
    written.map_err(fail)?;
    Ok(out.into_inner())
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
            assert_eq!(h.gray, layout.is_gray(), "{layout:?}");
            assert_eq!(decode(&bytes, Budget::default()).unwrap(), px, "{layout:?}");
        }
    }

    /// Write one image of colour type `C` with the tiff encoder, uncompressed.
    fn write<C: colortype::ColorType>(w: u32, h: u32, data: &[C::Inner]) -> Vec<u8>
    where
        [C::Inner]: ::tiff::encoder::TiffValue,
    {
        let mut out = Cursor::new(Vec::new());
        TiffEncoder::new(&mut out)
            .unwrap()
            .write_image::<C>(w, h, data)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn sixteen_bit_samples_keep_their_high_byte() {
        let bytes =
            write::<colortype::RGB16>(2, 1, &[0x1234, 0xABCD, 0xFFFF, 0x0001, 0x8000, 0x7FFF]);
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!(px.layout(), Layout::Rgb);
        assert_eq!(px.data(), &[0x12, 0xAB, 0xFF, 0x00, 0x80, 0x7F]);

        let bytes = write::<colortype::Gray16>(3, 1, &[0xFF00, 0x0100, 0x8080]);
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!(px.layout(), Layout::Gray);
        assert_eq!(px.data(), &[0xFF, 0x01, 0x80]);
        assert!(read_header(&bytes).unwrap().gray);
    }

    #[test]
    fn cmyk_becomes_rgb() {
        let bytes = write::<colortype::CMYK8>(
            4,
            1,
            &[0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 128, 0, 255, 0],
        );
        let h = read_header(&bytes).unwrap();
        assert!(!h.gray);
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!(px.layout(), Layout::Rgb);
        assert_eq!(
            px.data(),
            &[255, 255, 255, 0, 255, 255, 0, 0, 0, 127, 255, 0]
        );

        let bytes = write::<colortype::CMYKA8>(1, 1, &[0, 255, 0, 0, 77]);
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!(px.layout(), Layout::Rgba);
        assert_eq!(px.data(), &[255, 0, 255, 77]);
    }

    #[test]
    fn ycbcr_becomes_rgb() {
        // Red, mid gray, white, black.
        let bytes = write::<colortype::YCbCr8>(
            4,
            1,
            &[76, 85, 255, 128, 128, 128, 255, 128, 128, 0, 128, 128],
        );
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!(px.layout(), Layout::Rgb);
        let want = [254, 0, 0, 128, 128, 128, 255, 255, 255, 0, 0, 0];
        for (got, want) in px.data().iter().zip(want) {
            assert!(got.abs_diff(want) <= 2, "{:?}", px.data());
        }
    }

    #[test]
    fn orientation_tag_is_honoured() {
        // 3x2 gray: a b c / d e f, orientation 6 -> d a / e b / f c.
        let mut out = Cursor::new(Vec::new());
        {
            let mut encoder = TiffEncoder::new(&mut out).unwrap();
            let mut image = encoder.new_image::<colortype::Gray8>(3, 2).unwrap();
            image.encoder().write_tag(Tag::Orientation, 6u16).unwrap();
            image.write_data(b"abcdef").unwrap();
        }
        let bytes = out.into_inner();
        let h = read_header(&bytes).unwrap();
        assert_eq!(h.orientation.value(), 6);
        assert_eq!((h.width, h.height), (2, 3));
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!((px.width(), px.height()), (2, 3));
        assert_eq!(px.data(), b"daebfc");
    }

    /// A hand-made little-endian, uncompressed, single-strip gray TIFF of `bits` per sample.
    fn gray_tiff(w: u32, h: u32, bits: u16, photometric: u16, data: &[u8]) -> Vec<u8> {
        const ENTRIES: u16 = 9;
        let data_offset = 8 + 2 + 12 * u32::from(ENTRIES) + 4;
        let entries: [(u16, u16, u32); ENTRIES as usize] = [
            (256, 4, w),
            (257, 4, h),
            (258, 3, u32::from(bits)),
            (259, 3, 1),
            (262, 3, u32::from(photometric)),
            (273, 4, data_offset),
            (277, 3, 1),
            (278, 4, h),
            (279, 4, data.len() as u32),
        ];
        let mut v = b"II*\0".to_vec();
        v.extend_from_slice(&8u32.to_le_bytes());
        v.extend_from_slice(&ENTRIES.to_le_bytes());
        for (tag, typ, value) in entries {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&typ.to_le_bytes());
            v.extend_from_slice(&1u32.to_le_bytes());
            if typ == 3 {
                v.extend_from_slice(&(value as u16).to_le_bytes());
                v.extend_from_slice(&[0, 0]);
            } else {
                v.extend_from_slice(&value.to_le_bytes());
            }
        }
        v.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(v.len() as u32, data_offset);
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn bilevel_and_four_bit_gray_expand() {
        // 10x2, 1 bit: rows padded to 2 bytes.
        let bytes = gray_tiff(10, 2, 1, 1, &[0b1010_0000, 0b0100_0000, 0xFF, 0xC0]);
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!(px.layout(), Layout::Gray);
        let mut want: Vec<u8> = vec![255, 0, 255, 0, 0, 0, 0, 0, 0, 255];
        want.extend([255; 10]);
        assert_eq!(px.data(), &want[..]);

        // WhiteIsZero is inverted by the tiff crate.
        let bytes = gray_tiff(8, 1, 1, 0, &[0b1000_0000]);
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!(px.data(), &[0, 255, 255, 255, 255, 255, 255, 255]);

        // 3x1, 4 bit: 0x0, 0xF, 0x8.
        let bytes = gray_tiff(3, 1, 4, 1, &[0x0F, 0x80]);
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!(px.data(), &[0, 255, 136]);
    }

    #[test]
    fn bigtiff_decodes() {
        let px = sample(Layout::Rgb);
        let mut out = Cursor::new(Vec::new());
        TiffEncoder::new_big(&mut out)
            .unwrap()
            .write_image::<colortype::RGB8>(W, H, px.data())
            .unwrap();
        let bytes = out.into_inner();
        assert_eq!(super::super::sniff(&bytes), Some(SourceFormat::Tiff));
        assert_eq!(decode(&bytes, Budget::default()).unwrap(), px);
    }

    #[test]
    fn unsupported_samples_are_errors() {
        let bytes = write::<colortype::GrayI8>(2, 1, &[-1, 5]);
        assert!(decode(&bytes, Budget::default()).is_err());
        let bytes = write::<colortype::Gray32Float>(2, 1, &[0.5, 1.0]);
        assert!(decode(&bytes, Budget::default()).is_err());
    }

    #[test]
    fn budget_is_checked_before_decoding() {
        let bytes = encode(&sample(Layout::Rgb)).unwrap();
        let need = u64::from(W * H * 3);
        assert!(decode(&bytes, Budget::new(need - 1)).is_err());
        assert!(decode(&bytes, Budget::new(need)).is_ok());
    }
}
