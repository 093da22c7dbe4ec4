//! Decoding source files and encoding responses.
//!
//! Sources are JPEG, PNG, TIFF, JPEG 2000, GIF, WebP and BMP, recognised by their magic bytes
//! ([`sniff`]). [`read_header`]
//! reads only what `info.json` needs; [`decode`] turns a whole file into 8-bit [`Pixels`],
//! upright (EXIF or TIFF orientation applied) and checked against a [`Budget`] before the big
//! buffers are allocated. [`encode`] writes any [`Pixels`] as one of the output [`Format`]s.
//!
//! No decoder error panics or aborts: every failure of a source file is an
//! [`ErrorKind::Source`](crate::ErrorKind::Source) error (500) with a one-line message (never
//! a decoder's debug output, see [`decode_error`]), a file of no format we read a
//! [`ErrorKind::NotImplemented`](crate::ErrorKind::NotImplemented) one (501), every failure to encode an
//! [`ErrorKind::Internal`](crate::ErrorKind::Internal) one, except output sizes a format cannot
//! hold, which are [`ErrorKind::BadRequest`](crate::ErrorKind::BadRequest).

mod bmp_source;
mod fax;
mod gif;
mod gif_source;
pub(crate) mod icc;
mod jpeg;
#[cfg(not(feature = "turbojpeg"))]
pub(crate) mod libjpeg;
pub(crate) mod orientation;
pub(crate) mod png;
pub(crate) mod tiff;
#[cfg(feature = "turbojpeg")]
pub(crate) mod turbo;

/// A JPEG decoded at 1/2^`shift` of its size, all of it or a crop (`decode`): libjpeg-turbo
/// with the `turbojpeg` feature, else MozJPEG's libjpeg row by row.
#[cfg(not(feature = "turbojpeg"))]
pub(crate) use libjpeg as scaled;
/// A JPEG decoded at 1/2^`shift` of its size, all of it or a crop (`decode`): libjpeg-turbo
/// with the `turbojpeg` feature, else MozJPEG's libjpeg row by row.
#[cfg(feature = "turbojpeg")]
pub(crate) use turbo as scaled;

/// The size of an image of `full` pixels decoded at 1/2^`shift` (libjpeg rounds up).
pub(crate) fn scaled_size((w, h): (u32, u32), shift: u32) -> (u32, u32) {
    let d = 1u32 << shift.min(3);
    (w.div_ceil(d), h.div_ceil(d))
}
mod webp;
mod webp_source;

pub(crate) use self::orientation::Orientation;
pub(crate) use crate::request::Format;

use crate::Error;
use crate::jp2;
use crate::pixels::{Budget, Layout, Pixels};

/// A source file format the decoders understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum SourceFormat {
    /// JPEG (baseline, progressive; gray, YCbCr, CMYK, YCCK).
    Jpeg,
    /// PNG (every colour type and bit depth; the first frame of an APNG).
    Png,
    /// TIFF and BigTIFF (the first image; strips or tiles).
    Tiff,
    /// JPEG 2000: JP2 files and raw codestreams, HTJ2K included.
    Jp2,
    /// GIF (the first frame of an animated one, on its logical screen).
    Gif,
    /// WebP (lossy, lossless, alpha; the first frame of an animated one).
    Webp,
    /// BMP (1- to 32-bit, paletted, RLE, bit fields).
    Bmp,
}

/// Recognise a source format by its magic bytes: JPEG `FF D8 FF`, the PNG signature, TIFF
/// `II*\0` / `MM\0*` and BigTIFF `II+\0` / `MM\0+`, JPEG 2000's, GIF `GIF87a` / `GIF89a`,
/// WebP `RIFF....WEBP`, BMP `BM` with a known header size.
pub(crate) fn sniff(bytes: &[u8]) -> Option<SourceFormat> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    const TIFF: [&[u8]; 4] = [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"];
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(SourceFormat::Jpeg)
    } else if bytes.starts_with(PNG) {
        Some(SourceFormat::Png)
    } else if TIFF.iter().any(|magic| bytes.starts_with(magic)) {
        Some(SourceFormat::Tiff)
    } else if jp2::sniff(bytes) {
        Some(SourceFormat::Jp2)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(SourceFormat::Gif)
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Some(SourceFormat::Webp)
    } else if bytes.starts_with(b"BM")
        && bytes
            .get(14..18)
            .is_some_and(|h| [12, 40, 52, 56, 64, 108, 124].contains(&h[0]) && h[1..] == [0, 0, 0])
    {
        Some(SourceFormat::Bmp)
    } else {
        None
    }
}

/// What `info.json` needs to know about a source, read from its header only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Header {
    /// The file format.
    pub format: SourceFormat,
    /// Width of the upright image, i.e. after [`orientation`](Header::orientation) is applied
    /// (the stored height for orientations 5..=8).
    pub width: u32,
    /// Height of the upright image, i.e. after [`orientation`](Header::orientation) is applied.
    pub height: u32,
    /// The orientation [`decode`] applies.
    pub orientation: Orientation,
    /// The source has no colour (gray, with or without alpha).
    pub gray: bool,
}

/// Read the [`Header`] of a source file without decoding its pixels.
///
/// # Errors
///
/// [`ErrorKind::Source`](crate::ErrorKind::Source) when the format is not recognised
/// ("unsupported source format") or the header is broken.
pub(crate) fn read_header(bytes: &[u8]) -> Result<Header, Error> {
    read_any_header(bytes).and_then(has_pixels)
}

/// `header`, unless it says the image has no pixels.
pub(crate) fn has_pixels(header: Header) -> Result<Header, Error> {
    match header.width == 0 || header.height == 0 {
        true => Err(Error::source(format!(
            "the image has no pixels ({} x {})",
            header.width, header.height
        ))),
        false => Ok(header),
    }
}

fn read_any_header(bytes: &[u8]) -> Result<Header, Error> {
    match sniff(bytes) {
        Some(SourceFormat::Jpeg) => self::jpeg::read_header(bytes),
        Some(SourceFormat::Png) => self::png::read_header(bytes),
        Some(SourceFormat::Tiff) => self::tiff::read_header(bytes),
        Some(SourceFormat::Jp2) => jp2_header(&jp2::read_info(bytes).map_err(jp2_error)?),
        Some(SourceFormat::Gif) => gif_source::read_header(bytes),
        Some(SourceFormat::Webp) => webp_source::read_header(bytes),
        Some(SourceFormat::Bmp) => bmp_source::read_header(bytes),
        None => Err(unsupported()),
    }
}

/// The answer for a file of no format we read: 501, one line.
pub(crate) fn unsupported() -> Error {
    Error::new(
        crate::ErrorKind::NotImplemented,
        "unsupported source format (this server reads JPEG, PNG, TIFF, JPEG 2000, GIF, WebP and BMP)",
    )
}

/// A decoder's error as a one-line source error: `cannot decode {format}: {e}` when `e` reads
/// as a sentence, else `cannot decode {format}: corrupt or truncated data` (decoders' messages
/// may carry their debug output, which no response should).
pub(crate) fn decode_error(format: &str, e: impl std::fmt::Display) -> Error {
    let text = e.to_string();
    let clean = !text.is_empty()
        && text.len() <= 160
        && !text.contains(['{', '}', '\n', '\r', '`'])
        && !text.contains("::")
        && text.chars().all(|c| !c.is_control());
    match clean {
        true => Error::source(format!("cannot decode {format}: {text}")),
        false => Error::source(format!("cannot decode {format}: corrupt or truncated data")),
    }
}

/// The [`Header`] of a JPEG 2000 image: stored upright (JPEG 2000 has no orientation tag).
pub(crate) fn jp2_header(info: &jp2::Jp2Info) -> Result<Header, Error> {
    has_pixels(Header {
        format: SourceFormat::Jp2,
        width: info.width,
        height: info.height,
        orientation: Orientation::NORMAL,
        gray: info.gray,
    })
}

/// A JPEG 2000 error as a one-line source error (500).
pub(crate) fn jp2_error(e: jp2::Jp2Error) -> Error {
    Error::source(e.to_string())
}

/// Decoded JPEG 2000 samples as [`Pixels`].
pub(crate) fn jp2_pixels(d: jp2::Decoded) -> Result<Pixels, Error> {
    let layout = match d.channels {
        1 => Layout::Gray,
        2 => Layout::GrayAlpha,
        3 => Layout::Rgb,
        4 => Layout::Rgba,
        n => return Err(Error::source(format!("JPEG 2000 with {n} channels"))),
    };
    let mut px = Pixels::from_vec(d.width, d.height, layout, d.data)?;
    if let Some(profile) = &d.icc_profile {
        icc::to_srgb(&mut px, profile);
    }
    Ok(px)
}

/// Decode a whole source file to 8-bit [`Pixels`] of the `Header`'s width and height, with its
/// orientation applied. Gray sources decode to [`Layout::Gray`] or [`Layout::GrayAlpha`], colour
/// ones (including CMYK and YCbCr) to [`Layout::Rgb`] or [`Layout::Rgba`].
///
/// The output size is checked against `budget` after the header is read and before the decoder
/// allocates its buffers.
///
/// # Errors
///
/// [`ErrorKind::Source`](crate::ErrorKind::Source) for unrecognised, broken or unsupported files
/// and for images over the budget.
pub fn decode(bytes: &[u8], budget: Budget) -> Result<Pixels, Error> {
    let mut px = decode_as_stored(bytes, budget)?;
    // (JPEG 2000's profile comes with OpenJPEG's output: see `jp2_pixels`.)
    if sniff(bytes) != Some(SourceFormat::Jp2) {
        icc::apply_embedded(&mut px, bytes);
    }
    Ok(px)
}

/// [`decode`] without the conversion of an embedded colour profile to sRGB.
fn decode_as_stored(bytes: &[u8], budget: Budget) -> Result<Pixels, Error> {
    match sniff(bytes) {
        Some(SourceFormat::Jpeg) => self::jpeg::decode(bytes, budget),
        Some(SourceFormat::Png) => self::png::decode(bytes, budget),
        Some(SourceFormat::Tiff) => self::tiff::decode(bytes, budget),
        Some(SourceFormat::Jp2) => {
            let req = jp2::DecodeRequest {
                max_bytes: budget.max_bytes(),
                ..jp2::DecodeRequest::default()
            };
            jp2_pixels(jp2::decode(bytes, &req).map_err(jp2_error)?)
        }
        Some(SourceFormat::Gif) => gif_source::decode(bytes, budget),
        Some(SourceFormat::Webp) => webp_source::decode(bytes, budget),
        Some(SourceFormat::Bmp) => bmp_source::decode(bytes, budget),
        None => Err(unsupported()),
    }
}

/// Settings for [`encode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncodeOptions {
    /// JPEG quality, 1..=100 (values outside are clamped). Default 85.
    pub jpeg_quality: u8,
}

impl Default for EncodeOptions {
    /// JPEG quality 85.
    fn default() -> Self {
        Self { jpeg_quality: 85 }
    }
}

/// Encode `px` as `format`.
///
/// - `jpg`: gray becomes a one-channel JPEG, colour 4:2:0 YCbCr; alpha is composited onto white.
/// - `png`: every layout natively, fast compression.
/// - `gif`: gray exactly through a gray palette, colour quantised to 256 colours; pixels with
///   alpha below 128 become transparent.
/// - `tif`: Deflate-compressed, 8-bit gray, gray + alpha, RGB or RGBA.
/// - `webp`: lossless, every layout natively.
///
/// # Errors
///
/// [`ErrorKind::BadRequest`](crate::ErrorKind::BadRequest) when the image is larger than the
/// format can hold (65535 pixels a side for JPEG and GIF, 16384 for WebP),
/// [`ErrorKind::Internal`](crate::ErrorKind::Internal) for an empty image or an encoder failure.
pub fn encode(px: &Pixels, format: Format, opts: &EncodeOptions) -> Result<Vec<u8>, Error> {
    if px.width() == 0 || px.height() == 0 {
        return Err(Error::internal("cannot encode an empty image"));
    }
    match format {
        Format::Jpg => self::jpeg::encode(px, opts.jpeg_quality),
        Format::Png => self::png::encode(px),
        Format::Gif => self::gif::encode(px),
        Format::Tif => self::tiff::encode(px),
        Format::Webp => self::webp::encode(px),
    }
}

/// A zero-filled working buffer for an encoder's conversion of an image that is already in
/// memory. The conversions at most quadruple the size of an image that passed its budget, so no
/// further limit is applied here; the reservation is still fallible.
fn scratch(width: u32, height: u32, layout: Layout) -> Result<Pixels, Error> {
    Pixels::try_new(width, height, layout, Budget::new(u64::MAX))
}

/// The dimension of `px` as the `u16` a format header holds, or a 400 naming the limit.
fn dimensions_u16(px: &Pixels, format: &str) -> Result<(u16, u16), Error> {
    match (u16::try_from(px.width()), u16::try_from(px.height())) {
        (Ok(w), Ok(h)) => Ok((w, h)),
        _ => Err(too_large(px, format, u32::from(u16::MAX))),
    }
}

/// The error for an image larger than `max` pixels a side in `format`.
fn too_large(px: &Pixels, format: &str, max: u32) -> Error {
    Error::bad_request(format!(
        "format: a {}x{} image is too large for {format} (at most {max} pixels a side)",
        px.width(),
        px.height()
    ))
}

/// The [`Header`] for stored dimensions and an orientation.
fn header(
    format: SourceFormat,
    (width, height): (u32, u32),
    orientation: Orientation,
    gray: bool,
) -> Header {
    let (width, height) = if orientation.swaps_dimensions() {
        (height, width)
    } else {
        (width, height)
    };
    Header {
        format,
        width,
        height,
        orientation,
        gray,
    }
}

#[cfg(test)]
mod scaled_size_tests {
    #[test]
    fn libjpeg_rounds_up() {
        assert_eq!(super::scaled_size((25167, 12483), 2), (6292, 3121));
        assert_eq!(super::scaled_size((8, 8), 3), (1, 1));
        assert_eq!(super::scaled_size((9, 1), 9), (2, 1), "shifts past 3 are 3");
    }
}

/// Shared fixtures for the codec tests.
#[cfg(test)]
pub(crate) mod testutil {
    use crate::pixels::{Budget, Layout, Pixels};

    /// The mean absolute difference of two sample buffers of one length.
    pub(crate) fn mean_abs_diff_bytes(a: &[u8], b: &[u8]) -> f64 {
        assert_eq!(a.len(), b.len());
        let sum: u64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        sum as f64 / a.len() as f64
    }

    /// The mean absolute difference of two images of one size and layout.
    pub(crate) fn mean_abs_diff(a: &Pixels, b: &Pixels) -> f64 {
        assert_eq!(
            (a.width(), a.height(), a.layout()),
            (b.width(), b.height(), b.layout())
        );
        mean_abs_diff_bytes(a.data(), b.data())
    }

    /// The full-size `tile` x `tile` tiles of `px`, row by row, as a tiled TIFF stores them.
    /// Padding outside the image is `pad` when given, else a copy of the nearest edge pixel (so
    /// JPEG tiles do not bleed into the image).
    pub(crate) fn split_tiles(px: &Pixels, tile: u32, pad: Option<u8>) -> Vec<Vec<u8>> {
        let c = px.layout().channels();
        let mut tiles = Vec::new();
        for ty in (0..px.height()).step_by(tile as usize) {
            for tx in (0..px.width()).step_by(tile as usize) {
                let mut out = Vec::with_capacity((tile * tile) as usize * c);
                for y in ty..ty + tile {
                    for x in tx..tx + tile {
                        let inside = x < px.width() && y < px.height();
                        match pad {
                            Some(p) if !inside => out.extend(std::iter::repeat_n(p, c)),
                            _ => out.extend_from_slice(
                                px.pixel(x.min(px.width() - 1), y.min(px.height() - 1)),
                            ),
                        }
                    }
                }
                tiles.push(out);
            }
        }
        tiles
    }

    /// Width of [`sample`].
    pub(crate) const W: u32 = 64;
    /// Height of [`sample`].
    pub(crate) const H: u32 = 48;
    /// Centres of the four 16x16 solid blocks of [`sample`] (MCU-aligned for 4:2:0 JPEG).
    pub(crate) const CENTRES: [(u32, u32); 4] = [(8, 8), (56, 8), (8, 40), (56, 40)];

    fn block(x: u32, y: u32) -> Option<usize> {
        let bx = match x {
            0..16 => 0,
            48..64 => 1,
            _ => return None,
        };
        match y {
            0..16 => Some(bx),
            32..48 => Some(2 + bx),
            _ => None,
        }
    }

    /// The colour sample: red, green, half-transparent blue and fully transparent orange blocks
    /// in the corners, an RGB gradient elsewhere.
    pub(crate) fn rgba_at(x: u32, y: u32) -> [u8; 4] {
        match block(x, y) {
            Some(0) => [255, 0, 0, 255],
            Some(1) => [0, 255, 0, 255],
            Some(2) => [0, 0, 255, 128],
            Some(_) => [200, 100, 50, 0],
            None => [(x * 4) as u8, (y * 5) as u8, 128, 255],
        }
    }

    /// The gray sample: black, white, half-transparent 60 and fully transparent 180 blocks, a
    /// gradient elsewhere.
    pub(crate) fn gray_at(x: u32, y: u32) -> [u8; 2] {
        match block(x, y) {
            Some(0) => [0, 255],
            Some(1) => [255, 255],
            Some(2) => [60, 128],
            Some(_) => [180, 0],
            None => [(x * 2 + y) as u8, 255],
        }
    }

    /// The expected pixel of [`sample`] in `layout` at (x, y).
    pub(crate) fn expected(layout: Layout, x: u32, y: u32) -> Vec<u8> {
        match layout {
            Layout::Gray => gray_at(x, y)[..1].to_vec(),
            Layout::GrayAlpha => gray_at(x, y).to_vec(),
            Layout::Rgb => rgba_at(x, y)[..3].to_vec(),
            Layout::Rgba => rgba_at(x, y).to_vec(),
        }
    }

    /// A 64x48 synthetic image in `layout`.
    pub(crate) fn sample(layout: Layout) -> Pixels {
        let mut px = Pixels::try_new(W, H, layout, Budget::default()).unwrap();
        let c = layout.channels();
        for (i, p) in px.data_mut().chunks_exact_mut(c).enumerate() {
            let (x, y) = ((i as u32) % W, (i as u32) / W);
            p.copy_from_slice(&expected(layout, x, y));
        }
        px
    }

    /// Whether every channel of `a` is within `tol` of `b`.
    pub(crate) fn close(a: &[u8], b: &[u8], tol: u8) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.abs_diff(*y) <= tol)
    }

    /// A minimal little-endian TIFF/EXIF payload with one IFD entry, Orientation = `value`.
    pub(crate) fn exif_payload(value: u16) -> Vec<u8> {
        let mut v = b"II*\0".to_vec();
        v.extend_from_slice(&8u32.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes()); // one entry
        v.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
        v.extend_from_slice(&3u16.to_le_bytes()); // SHORT
        v.extend_from_slice(&1u32.to_le_bytes()); // count
        v.extend_from_slice(&value.to_le_bytes());
        v.extend_from_slice(&[0, 0]); // padding of the 4-byte value field
        v.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
        v
    }

    /// `jpeg` with an APP1 Exif segment holding `payload` inserted right after SOI.
    pub(crate) fn with_exif(jpeg: &[u8], payload: &[u8]) -> Vec<u8> {
        let len = u16::try_from(2 + 6 + payload.len()).unwrap();
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(b"Exif\0\0");
        out.extend_from_slice(payload);
        out.extend_from_slice(&jpeg[2..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{H, W, sample};
    use super::*;

    #[test]
    fn sniff_recognises_every_magic_and_rejects_junk() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(SourceFormat::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0"), Some(SourceFormat::Png));
        for magic in [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"] {
            assert_eq!(sniff(magic), Some(SourceFormat::Tiff));
        }
        assert_eq!(sniff(b"GIF87a\x01\0"), Some(SourceFormat::Gif));
        assert_eq!(sniff(b"GIF89a"), Some(SourceFormat::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(SourceFormat::Webp));
        let junk: [&[u8]; 9] = [
            b"",
            b"\xFF\xD8",
            b"\x89PNG",
            b"II*",
            b"MM*\0",
            b"GIF8",
            b"RIFF\0\0\0\0WAVE",
            b"<svg",
            b"BM6\0\0\0",
        ];
        for junk in junk {
            assert_eq!(sniff(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn garbage_and_truncated_headers_are_errors_not_panics() {
        let mut inputs: Vec<Vec<u8>> = vec![
            b"junk".to_vec(),
            vec![0xFF, 0xD8, 0xFF],
            vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F'],
            b"\x89PNG\r\n\x1a\n".to_vec(),
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0".to_vec(),
            b"II*\0".to_vec(),
            b"II*\0\xff\xff\xff\x7f".to_vec(),
            b"MM\0*\0\0\0\x08\0\x01".to_vec(),
            b"II+\0\x08\0\0\0".to_vec(),
            b"GIF89a".to_vec(),
            b"GIF89a\x10\0\x10\0\xF7".to_vec(),
            b"RIFF\0\0\0\0WEBP".to_vec(),
            b"RIFF\x20\0\0\0WEBPVP8L\x10\0\0\0\x2f".to_vec(),
        ];
        // Short prefixes of real files: not even a complete header.
        for format in [Format::Jpg, Format::Png, Format::Tif] {
            let full = encode(&sample(Layout::Rgb), format, &EncodeOptions::default()).unwrap();
            for len in [0, 1, 3, 8, 12, 16, 20, 24] {
                inputs.push(full[..len.min(full.len())].to_vec());
            }
        }
        for bytes in &inputs {
            let header = read_header(bytes);
            assert!(header.is_err(), "{bytes:?} gave {header:?}");
            let e = header.unwrap_err();
            // No format we read: 501; a broken file of one we read: 500. One line either way,
            // no decoder's debug output.
            let expected = if sniff(bytes).is_some() { 500 } else { 501 };
            assert_eq!(e.status(), expected, "{bytes:?}: {e}");
            assert!(!e.message().contains(['{', '\n']), "{e}");
            assert!(decode(bytes, Budget::default()).is_err(), "{bytes:?}");
        }
        // Longer prefixes may hold a complete header (PNG's IHDR ends at byte 33) but no
        // pixels.
        for format in [Format::Jpg, Format::Png, Format::Tif] {
            let full = encode(&sample(Layout::Rgb), format, &EncodeOptions::default()).unwrap();
            for len in [33, 40, 64] {
                let bytes = &full[..len.min(full.len())];
                let _ = read_header(bytes);
                assert!(decode(bytes, Budget::default()).is_err(), "{format} {len}");
            }
        }
    }

    #[test]
    fn truncated_bodies_do_not_panic() {
        for format in [Format::Jpg, Format::Png, Format::Tif] {
            let full = encode(&sample(Layout::Rgb), format, &EncodeOptions::default()).unwrap();
            for len in [full.len() / 3, full.len() / 2, full.len() - 1] {
                // Decoders may be lenient about a missing tail; they must not panic.
                let _ = decode(&full[..len], Budget::default());
            }
            let mut flipped = full.clone();
            for b in flipped.iter_mut().skip(100).step_by(37) {
                *b ^= 0x5A;
            }
            let _ = decode(&flipped, Budget::default());
        }
    }

    #[test]
    fn header_and_decode_agree_for_every_source_format() {
        let cases = [
            (Format::Jpg, SourceFormat::Jpeg),
            (Format::Png, SourceFormat::Png),
            (Format::Tif, SourceFormat::Tiff),
        ];
        for (format, source) in cases {
            for layout in [Layout::Gray, Layout::Rgb] {
                let bytes = encode(&sample(layout), format, &EncodeOptions::default()).unwrap();
                assert_eq!(sniff(&bytes), Some(source));
                let h = read_header(&bytes).unwrap();
                assert_eq!(h.format, source);
                assert_eq!((h.width, h.height), (W, H));
                assert_eq!(h.gray, layout.is_gray(), "{format} {layout:?}");
                assert_eq!(h.orientation, Orientation::NORMAL);
                let px = decode(&bytes, Budget::default()).unwrap();
                assert_eq!((px.width(), px.height()), (W, H));
                assert_eq!(px.layout(), layout, "{format}");
            }
        }
    }

    #[test]
    fn small_budget_fails_before_decoding() {
        for format in [Format::Jpg, Format::Png, Format::Tif] {
            let bytes = encode(&sample(Layout::Rgb), format, &EncodeOptions::default()).unwrap();
            let err = decode(&bytes, Budget::new(1000)).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Source, "{format}");
        }
    }

    #[test]
    fn every_format_encodes_every_layout() {
        for format in Format::ALL {
            for layout in [Layout::Gray, Layout::GrayAlpha, Layout::Rgb, Layout::Rgba] {
                let bytes = encode(&sample(layout), format, &EncodeOptions::default())
                    .unwrap_or_else(|e| panic!("{format} {layout:?}: {e}"));
                assert!(bytes.len() > 20, "{format} {layout:?}");
            }
        }
    }

    #[test]
    fn empty_and_oversized_images_are_refused() {
        let empty = Pixels::try_new(0, 5, Layout::Rgb, Budget::default()).unwrap();
        for format in Format::ALL {
            assert_eq!(
                encode(&empty, format, &EncodeOptions::default())
                    .unwrap_err()
                    .kind(),
                crate::ErrorKind::Internal
            );
        }
        let wide = Pixels::try_new(70_000, 1, Layout::Gray, Budget::default()).unwrap();
        for format in [Format::Jpg, Format::Gif, Format::Webp] {
            assert_eq!(
                encode(&wide, format, &EncodeOptions::default())
                    .unwrap_err()
                    .status(),
                400,
                "{format}"
            );
        }
    }
}

/// The examples that stood in the doc comments of these crate-private items.
#[cfg(test)]
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    #[test]
    fn doc_codec_15() {
        use crate::codec::{self, EncodeOptions, Format, SourceFormat};
        use crate::pixels::{Budget, Layout, Pixels};

        let px = Pixels::from_vec(2, 1, Layout::Rgb, vec![255, 0, 0, 0, 0, 255]).unwrap();
        let png = codec::encode(&px, Format::Png, &EncodeOptions::default()).unwrap();
        assert_eq!(codec::sniff(&png), Some(SourceFormat::Png));
        let header = codec::read_header(&png).unwrap();
        assert_eq!((header.width, header.height, header.gray), (2, 1, false));
        assert_eq!(codec::decode(&png, Budget::default()).unwrap(), px);
    }

    #[test]
    fn doc_sniff_60() {
        use crate::codec::{SourceFormat, sniff};
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Some(SourceFormat::Tiff));
        assert_eq!(sniff(b"GIF89a"), Some(SourceFormat::Gif));
        assert_eq!(sniff(b"BM6\0\0\0"), None); // too short for a BMP header
    }

    #[test]
    fn doc_read_header_104() {
        assert_eq!(
            crate::codec::read_header(b"junk").unwrap_err().status(),
            501
        );
    }

    #[test]
    fn doc_decode_157() {
        use crate::pixels::Budget;
        assert!(crate::codec::decode(b"\x89PNG\r\n\x1a\n", Budget::default()).is_err());
    }

    #[test]
    fn doc_encodeoptions_179() {
        let opts = crate::codec::EncodeOptions::default();
        assert_eq!(opts.jpeg_quality, 85);
    }

    #[test]
    fn doc_encode_213() {
        use crate::codec::{EncodeOptions, Format, encode};
        use crate::pixels::{Layout, Pixels};
        let px = Pixels::from_vec(1, 1, Layout::Gray, vec![7]).unwrap();
        let gif = encode(&px, Format::Gif, &EncodeOptions::default()).unwrap();
        assert!(gif.starts_with(b"GIF89a"));
    }
}
