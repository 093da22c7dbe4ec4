//! TIFF: decoding and encoding with the `tiff` crate.
//!
//! The first image of a TIFF or BigTIFF file is decoded, stored in strips or tiles, uncompressed
//! or compressed with Deflate, LZW, PackBits or JPEG. Unsigned 8- and 16-bit gray, gray + alpha,
//! RGB, RGBA, CMYK, CMYK + alpha and YCbCr samples are supported (16-bit samples keep their high
//! byte), and 1-, 2- and 4-bit gray. CMYK and YCbCr become RGB. The `Orientation` tag (274) is
//! honoured like the EXIF one. JPEG-compressed RGB images whose JPEG chunks declare their own
//! colour space are read as the chunks say (see [`JpegRgb`]).
//!
//! Encoding writes one Deflate-compressed 8-bit image.

use std::io::{Cursor, Read, Seek, SeekFrom};

use ::tiff::decoder::{ChunkType, Decoder, DecodingResult, Limits};
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
    let mut decoder = Decoder::new(Masked::new(bytes)).map_err(source_error)?;
    let (width, height) = decoder.dimensions().map_err(source_error)?;
    let (mut kind, bits) = Kind::of(decoder.colortype().map_err(source_error)?)?;
    let layout = kind.layout();
    budget.check(width, height, layout)?;
    let orientation = orientation(&mut decoder);
    let compression = decoder.find_tag_unsigned::<u16>(Tag::Compression);
    if kind == Kind::Rgb && compression.ok().flatten() == Some(JPEG) {
        let jpeg = JpegRgb::of(&mut decoder, bytes);
        if jpeg.ycbcr {
            kind = Kind::YCbCr;
        }
        decoder.inner().hide = jpeg.hide;
    }

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

/// The Compression tag value of JPEG (TIFF Technical Note 2).
const JPEG: u16 = 7;

/// How a JPEG-compressed image of Photometric RGB is read, from the marker segments its JPEG
/// chunks carry before their first scan.
///
/// The tiff crate hands back the JPEG components of such an image unconverted. That is right
/// for RGB stored as such with no colour space marker (as libtiff writes it), but two kinds of
/// chunks declare something the crate mishandles:
/// - a JFIF (APP0) or Adobe (APP14, transform 1) marker declares YCbCr: the components come
///   back as YCbCr, so the image is converted as [`Kind::YCbCr`];
/// - an Adobe marker with transform 0 declares RGB, which the tiff crate fails on (it fixes the
///   output colour space from zune-jpeg's before the component count tells RGB from CMYK).
///   Those markers are hidden ([`Masked`]); the components are RGB either way.
#[derive(Debug, Default)]
struct JpegRgb {
    /// The first JPEG chunk declares YCbCr.
    ycbcr: bool,
    /// Sorted file positions of the `0xEE` of every Adobe transform-0 marker.
    hide: Vec<u64>,
}

impl JpegRgb {
    fn of<R: Read + Seek>(decoder: &mut Decoder<R>, bytes: &[u8]) -> JpegRgb {
        let mut out = JpegRgb::default();
        let (offsets, counts) = match decoder.get_chunk_type() {
            ChunkType::Tile => (Tag::TileOffsets, Tag::TileByteCounts),
            ChunkType::Strip => (Tag::StripOffsets, Tag::StripByteCounts),
        };
        let (Ok(Some(offsets)), Ok(Some(counts))) = (
            decoder.find_tag_unsigned_vec::<u64>(offsets),
            decoder.find_tag_unsigned_vec::<u64>(counts),
        ) else {
            return out;
        };
        let mut first = true;
        for (offset, count) in offsets.into_iter().zip(counts) {
            let chunk = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(count).ok())
                .and_then(|(start, len)| bytes.get(start..start.checked_add(len)?));
            let Some(chunk) = chunk.filter(|c| c.starts_with(&[0xFF, 0xD8])) else {
                continue;
            };
            for (at, marker, payload) in jpeg_segments(chunk) {
                let adobe = (marker == 0xEE && payload.starts_with(b"Adobe"))
                    .then(|| payload.get(11).copied())
                    .flatten();
                if adobe == Some(0) {
                    out.hide.push(offset + at as u64 + 1);
                } else if first
                    && (adobe.is_some() || marker == 0xE0 && payload.starts_with(b"JFIF\0"))
                {
                    out.ycbcr = true;
                }
            }
            first = false;
        }
        out.hide.sort_unstable();
        out
    }
}

/// The marker segments of a JPEG stream before its first scan: the position of each marker's
/// `0xFF`, the marker code and the payload.
pub(crate) fn jpeg_segments(jpeg: &[u8]) -> Vec<(usize, u8, &[u8])> {
    let mut segments = Vec::new();
    let mut at = 2; // after SOI
    while let Some(&[0xFF, marker, hi, lo]) = jpeg.get(at..at + 4) {
        match marker {
            0xFF => at += 1, // fill byte
            0xDA | 0xD9 => break,
            _ => {
                let end = at + 2 + usize::from(u16::from_be_bytes([hi, lo]));
                let Some(payload) = jpeg.get(at + 4..end) else {
                    break;
                };
                segments.push((at, marker, payload));
                at = end;
            }
        }
    }
    segments
}

/// The file as the tiff decoder reads it: the bytes at the sorted positions `hide` read as
/// `0xEF`, which turns the Adobe APP14 markers there into APP15 ones that JPEG decoders skip.
struct Masked<'a> {
    cursor: Cursor<&'a [u8]>,
    hide: Vec<u64>,
}

impl<'a> Masked<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            cursor: Cursor::new(bytes),
            hide: Vec::new(),
        }
    }
}

impl Read for Masked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = self.cursor.position();
        let n = self.cursor.read(buf)?;
        let end = start + n as u64;
        let from = self.hide.partition_point(|&p| p < start);
        let to = self.hide.partition_point(|&p| p < end);
        for &p in self.hide.get(from..to).unwrap_or_default() {
            // p - start < n, the bytes just read.
            if let Some(b) = buf.get_mut((p - start) as usize) {
                *b = 0xEF;
            }
        }
        Ok(n)
    }
}

impl Seek for Masked<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.cursor.seek(pos)
    }
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
pub(crate) fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
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
    use crate::codec::testutil::{H, W, sample, split_tiles};

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

    #[test]
    fn compressed_strips_round_trip_exactly() {
        use ::tiff::tags::Predictor;
        let deflate = Compression::Deflate(DeflateLevel::Balanced);
        // (setting, Compression tag, Predictor tag)
        let cases = [
            (Compression::Lzw, 5, Predictor::None),
            (Compression::Lzw, 5, Predictor::Horizontal),
            (deflate, 8, Predictor::None),
            (deflate, 8, Predictor::Horizontal),
            (Compression::Packbits, 32773, Predictor::None),
        ];
        for (compression, tag, predictor) in cases {
            for layout in [Layout::Gray, Layout::Rgb] {
                let px = sample(layout);
                let mut out = Cursor::new(Vec::new());
                let mut encoder = TiffEncoder::new(&mut out)
                    .unwrap()
                    .with_compression(compression)
                    .with_predictor(predictor);
                // 48 rows in strips of 5: ten strips, the last one short.
                let written = if layout == Layout::Gray {
                    let mut image = encoder.new_image::<colortype::Gray8>(W, H).unwrap();
                    image.rows_per_strip(5).unwrap();
                    image.write_data(px.data())
                } else {
                    let mut image = encoder.new_image::<colortype::RGB8>(W, H).unwrap();
                    image.rows_per_strip(5).unwrap();
                    image.write_data(px.data())
                };
                written.unwrap();
                let bytes = out.into_inner();
                let what = format!("compression {tag}, {predictor:?}, {layout:?}");
                // The settings reached the file.
                let mut tags = Decoder::new(Cursor::new(&bytes)).unwrap();
                assert_eq!(tags.get_tag_unsigned::<u16>(Tag::Compression).unwrap(), tag);
                let stored = tags.find_tag_unsigned::<u16>(Tag::Predictor).unwrap();
                assert_eq!(stored.unwrap_or(1), predictor.to_u16(), "{what}");
                assert_eq!(tags.strip_count().unwrap(), 10, "{what}");

                let h = read_header(&bytes).unwrap();
                assert_eq!((h.width, h.height), (W, H), "{what}");
                assert_eq!(h.gray, layout.is_gray(), "{what}");
                assert_eq!(decode(&bytes, Budget::default()).unwrap(), px, "{what}");
            }
        }
    }

    /// Tile edge of [`tiled_tiff`] files.
    const TILE: u32 = 16;
    /// Size of the tiled test images: 3x2 tiles of 16, the right and bottom ones padded.
    const TW: u32 = 40;
    const TH: u32 = 24;

    /// A little-endian TIFF with one tiled, chunky (PlanarConfiguration 1) image of `tiles`
    /// ([`TILE`]-square, row by row), built by hand since the tiff encoder writes strips only.
    fn tiled_tiff(
        (w, h): (u32, u32),
        samples: u16,
        compression: u16,
        photometric: u16,
        tiles: &[Vec<u8>],
    ) -> Vec<u8> {
        const SHORT: u16 = 3;
        const LONG: u16 = 4;
        let n = tiles.len();
        let mut entries: Vec<(u16, u16, Vec<u32>)> = vec![
            (256, LONG, vec![w]),
            (257, LONG, vec![h]),
            (258, SHORT, vec![8; usize::from(samples)]),
            (259, SHORT, vec![u32::from(compression)]),
            (262, SHORT, vec![u32::from(photometric)]),
            (277, SHORT, vec![u32::from(samples)]),
            (284, SHORT, vec![1]),
            (322, LONG, vec![TILE]),
            (323, LONG, vec![TILE]),
            (324, LONG, vec![0; n]),
            (325, LONG, tiles.iter().map(|t| t.len() as u32).collect()),
        ];
        let size = |typ: u16, count: usize| count * if typ == SHORT { 2 } else { 4 };
        let ifd_end = 8 + 2 + 12 * entries.len() + 4;
        // Values over 4 bytes go after the IFD, then the tile data.
        let external: usize = entries
            .iter()
            .map(|(_, typ, v)| size(*typ, v.len()))
            .filter(|&s| s > 4)
            .sum();
        let mut offset = (ifd_end + external) as u32;
        for (tag, _, values) in &mut entries {
            if *tag == 324 {
                for (value, tile) in values.iter_mut().zip(tiles) {
                    *value = offset;
                    offset += tile.len() as u32;
                }
            }
        }
        let mut v = b"II*\0".to_vec();
        v.extend_from_slice(&8u32.to_le_bytes());
        v.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        let mut extra = Vec::new();
        for (tag, typ, values) in &entries {
            let mut bytes = Vec::new();
            for &value in values {
                if *typ == SHORT {
                    bytes.extend_from_slice(&(value as u16).to_le_bytes());
                } else {
                    bytes.extend_from_slice(&value.to_le_bytes());
                }
            }
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&typ.to_le_bytes());
            v.extend_from_slice(&(values.len() as u32).to_le_bytes());
            if bytes.len() > 4 {
                v.extend_from_slice(&((ifd_end + extra.len()) as u32).to_le_bytes());
                extra.extend_from_slice(&bytes);
            } else {
                bytes.resize(4, 0);
                v.extend_from_slice(&bytes);
            }
        }
        v.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(v.len(), ifd_end);
        v.extend_from_slice(&extra);
        for tile in tiles {
            v.extend_from_slice(tile);
        }
        v
    }

    /// A 40x24 image in `layout` with a different value at every pixel.
    fn gradient(layout: Layout) -> Pixels {
        let c = layout.channels();
        let data = (0..TH)
            .flat_map(|y| (0..TW).map(move |x| (x, y)))
            .flat_map(|(x, y)| {
                let rgb = [(x * 6) as u8, (y * 10) as u8, (x * 5 + y * 2 + 7) as u8];
                if c == 1 { vec![rgb[2]] } else { rgb.to_vec() }
            })
            .collect();
        Pixels::from_vec(TW, TH, layout, data).unwrap()
    }

    #[test]
    fn uncompressed_tiles_are_assembled_and_cropped() {
        for (layout, samples, photometric) in [(Layout::Rgb, 3, 2), (Layout::Gray, 1, 1)] {
            let px = gradient(layout);
            let tiles = split_tiles(&px, TILE, Some(0xEE));
            assert_eq!(tiles.len(), 6);
            let bytes = tiled_tiff((TW, TH), samples, 1, photometric, &tiles);
            let h = read_header(&bytes).unwrap();
            assert_eq!((h.width, h.height, h.gray), (TW, TH, layout.is_gray()));
            assert_eq!(decode(&bytes, Budget::default()).unwrap(), px, "{layout:?}");
        }
    }

    /// The solid colour of each 16x16 tile of [`tile_colours`].
    const TILE_RGB: [[u8; 3]; 6] = [
        [255, 0, 0],
        [0, 160, 0],
        [0, 0, 255],
        [240, 200, 40],
        [128, 128, 128],
        [20, 200, 220],
    ];

    /// A 40x24 RGB image whose tiles are the solid colours of [`TILE_RGB`].
    fn tile_colours() -> Pixels {
        let data = (0..TH)
            .flat_map(|y| (0..TW).map(move |x| (x, y)))
            .flat_map(|(x, y)| TILE_RGB[(y / TILE * 3 + x / TILE) as usize])
            .collect();
        Pixels::from_vec(TW, TH, Layout::Rgb, data).unwrap()
    }

    /// Each tile of `px` as a complete 16x16 JPEG, stored as `color` (the data is taken as it
    /// is: `Rgb` is converted to YCbCr by the encoder, `Ycbcr` is not).
    fn jpeg_tiles(px: &Pixels, color: jpeg_encoder::ColorType) -> Vec<Vec<u8>> {
        split_tiles(px, TILE, None)
            .into_iter()
            .map(|tile| {
                let mut out = Vec::new();
                let mut encoder = jpeg_encoder::Encoder::new(&mut out, 85);
                encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
                encoder.encode(&tile, 16, 16, color).unwrap();
                out
            })
            .collect()
    }

    /// Assert the centre of the visible part of every tile of a decoded [`tile_colours`] image.
    fn assert_tile_colours(px: &Pixels, what: &str) {
        assert_eq!(
            (px.width(), px.height(), px.layout()),
            (TW, TH, Layout::Rgb),
            "{what}"
        );
        for (i, want) in TILE_RGB.iter().enumerate() {
            let (tx, ty) = (i as u32 % 3 * TILE, i as u32 / 3 * TILE);
            let x = tx + (TW - tx).min(TILE) / 2;
            let y = ty + (TH - ty).min(TILE) / 2;
            let got = px.pixel(x, y);
            assert!(
                crate::codec::testutil::close(got, want, 12),
                "{what}: tile {i} at ({x},{y}) is {got:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn jpeg_tiles_with_ycbcr_photometric_decode() {
        let tiles = jpeg_tiles(&tile_colours(), jpeg_encoder::ColorType::Rgb);
        let bytes = tiled_tiff((TW, TH), 3, 7, 6, &tiles);
        let h = read_header(&bytes).unwrap();
        assert_eq!((h.width, h.height, h.gray), (TW, TH, false));
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_tile_colours(&px, "YCbCr photometric");
    }

    /// Replace the JFIF APP0 segment jpeg-encoder writes first with `segment` (may be empty).
    fn replace_jfif(jpeg: &[u8], segment: &[u8]) -> Vec<u8> {
        assert_eq!(&jpeg[2..4], &[0xFF, 0xE0]);
        assert_eq!(&jpeg[6..11], b"JFIF\0");
        let end = 4 + usize::from(u16::from_be_bytes([jpeg[4], jpeg[5]]));
        [&jpeg[..2], segment, &jpeg[end..]].concat()
    }

    /// An Adobe APP14 segment with colour transform 0: three components are RGB.
    const ADOBE_RGB: &[u8] = b"\xFF\xEE\x00\x0EAdobe\x00\x64\x00\x00\x00\x00\x00";

    #[test]
    fn jpeg_tiles_with_rgb_photometric_decode() {
        let px = tile_colours();
        // As the TIFF JPEG notes intend: the tile JPEG holds RGB itself, flagged by an Adobe
        // marker (transform 0), as libjpeg writes it.
        let rgb_flagged: Vec<Vec<u8>> = jpeg_tiles(&px, jpeg_encoder::ColorType::Ycbcr)
            .iter()
            .map(|t| replace_jfif(t, ADOBE_RGB))
            .collect();
        // RGB with no colour space marker at all (as in Aperio SVS files): Photometric decides.
        let rgb_unflagged: Vec<Vec<u8>> = jpeg_tiles(&px, jpeg_encoder::ColorType::Ycbcr)
            .iter()
            .map(|t| replace_jfif(t, &[]))
            .collect();
        // A JFIF tile, i.e. YCbCr by definition, in a file that says RGB.
        let jfif = jpeg_tiles(&px, jpeg_encoder::ColorType::Rgb);
        for (tiles, what) in [
            (rgb_flagged, "Adobe RGB tiles"),
            (rgb_unflagged, "unmarked RGB tiles"),
            (jfif, "JFIF YCbCr tiles"),
        ] {
            let bytes = tiled_tiff((TW, TH), 3, 7, 2, &tiles);
            assert!(!read_header(&bytes).unwrap().gray);
            let px = decode(&bytes, Budget::default()).unwrap();
            assert_tile_colours(&px, what);
        }
    }

    #[test]
    fn masked_reader_hides_its_positions_whatever_the_reads() {
        let bytes: Vec<u8> = (0..20).collect();
        let mut want = bytes.clone();
        for p in [3, 4, 11] {
            want[p] = 0xEF;
        }
        let mut reader = Masked::new(&bytes);
        reader.hide = vec![3, 4, 11];
        for piece in [1, 3, 4, 7, 64] {
            reader.seek(SeekFrom::Start(0)).unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0; piece];
            loop {
                let n = reader.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, want, "reads of {piece}");
        }
    }

    #[test]
    fn broken_jpeg_tiles_are_errors_not_panics() {
        let px = tile_colours();
        let tiles: Vec<Vec<u8>> = jpeg_tiles(&px, jpeg_encoder::ColorType::Ycbcr)
            .iter()
            .map(|t| replace_jfif(t, ADOBE_RGB))
            .collect();
        let full = tiled_tiff((TW, TH), 3, 7, 2, &tiles);
        for len in [full.len() / 2, full.len() - 40, full.len() - 1] {
            let _ = decode(&full[..len], Budget::default());
        }
        // Marker lengths running past the tile, or too short to be one.
        for bad_len in [[0xFF, 0xFF], [0x00, 0x01], [0x00, 0x00]] {
            let broken: Vec<Vec<u8>> = tiles
                .iter()
                .map(|t| [&t[..4], &bad_len[..], &t[6..]].concat())
                .collect();
            let bytes = tiled_tiff((TW, TH), 3, 7, 2, &broken);
            let _ = decode(&bytes, Budget::default());
        }
    }
}
