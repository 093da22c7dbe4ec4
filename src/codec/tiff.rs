//! TIFF: decoding and encoding with the `tiff` crate.
//!
//! The first image of a TIFF or BigTIFF file is decoded, stored in strips or tiles, uncompressed
//! or compressed with Deflate, LZW, PackBits, JPEG or CCITT Group 4 (bilevel), and Group 3 by
//! [`fax`](super::fax). A multi-page file is read as its first page. Unsigned 8- and 16-bit gray, gray + alpha,
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
    super::decode_error("TIFF", e)
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
            ColorType::Multiband {
                bit_depth,
                num_samples,
            } => {
                return Err(Error::source(format!(
                    "cannot decode TIFF: {num_samples} samples of {bit_depth} bits per pixel are not supported"
                )));
            }
            other => {
                return Err(super::decode_error(
                    "TIFF",
                    format_args!("colour type {other:?} is not supported"),
                ));
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
    if let Ok(Some(c @ (2 | 3))) = compression {
        let px = super::fax::decode(&mut decoder, bytes, c, (width, height), budget)?;
        return orientation.apply(px, budget);
    }
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
mod tests;
