//! Decoding one tile of a [`Level`] to 8-bit [`Pixels`].

use flate2::{Decompress, FlushDecompress, Status};
use weezl::{BitOrder, LzwStatus};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use super::{Alpha, Compression, Level, Photometric};
use crate::Error;
use crate::codec::tiff::{jpeg_segments, ycbcr_to_rgb};
use crate::pixels::{Budget, Layout, Pixels};

/// A one-line source error about a tile.
fn err(message: impl std::fmt::Display) -> Error {
    Error::source(format!("TIFF tile: {message}"))
}

/// Decode one tile of `level` from its compressed `bytes` (as stored at its
/// `TileRef::range`) to a full `tile_width` x `tile_height` buffer of
/// `Level::layout`: gray, gray + alpha, RGB or RGBA, 8 bits. Edge tiles keep their padding.
/// Empty `bytes` (an absent, sparse tile) decode to zeros.
///
/// Uncompressed, LZW, Deflate (with or without the horizontal predictor) and JPEG tiles are
/// read. A JPEG tile is spliced behind the level's `JPEGTables` when it has them; YCbCr is
/// converted to RGB; a Photometric RGB level whose tiles declare no YCbCr (no JFIF marker, no
/// Adobe transform) is taken as RGB stored as such. WhiteIsZero gray is inverted; premultiplied
/// alpha is divided out.
///
/// # Errors
///
/// [`ErrorKind::Source`](crate::ErrorKind::Source) for an unsupported compression, broken or
/// short data, a JPEG tile that does not match the level, or a tile over `budget` (checked
/// before anything is allocated).
pub fn decode_tile(level: &Level, bytes: &[u8], budget: Budget) -> Result<Pixels, Error> {
    let mut out = Pixels::try_new(level.tile_width, level.tile_height, level.layout(), budget)?;
    let mut scratch = Scratch::default();
    decode_into(level, bytes, budget, &mut out, &mut scratch)?;
    Ok(out)
}

/// Buffers and decoder states reused from tile to tile.
#[derive(Default)]
pub(super) struct Scratch {
    /// Decompressed samples, when they are not the output as they are.
    raw: Vec<u8>,
    /// A JPEG tile spliced behind the tables.
    jpeg: Vec<u8>,
    lzw: Option<weezl::decode::Decoder>,
    zlib: Option<Decompress>,
}

/// Resize `v` to `len` zeros, reserving fallibly.
fn fill(v: &mut Vec<u8>, len: usize) -> Result<&mut [u8], Error> {
    v.clear();
    v.try_reserve_exact(len)
        .map_err(|_| err(format!("cannot allocate {len} bytes")))?;
    v.resize(len, 0);
    Ok(v.as_mut_slice())
}

/// Decode one tile into `out`, a `tile_width` x `tile_height` buffer of `level.layout()`.
pub(super) fn decode_into(
    level: &Level,
    bytes: &[u8],
    budget: Budget,
    out: &mut Pixels,
    scratch: &mut Scratch,
) -> Result<(), Error> {
    if (out.width(), out.height(), out.layout())
        != (level.tile_width, level.tile_height, level.layout())
    {
        return Err(Error::internal(
            "TIFF tile: the output buffer does not fit the tile",
        ));
    }
    if level.tile_width == 0 || level.tile_height == 0 {
        return Err(err("the tile size is 0"));
    }
    if level.bits_per_sample != 8 {
        return Err(err(format!(
            "{}-bit samples are not supported",
            level.bits_per_sample
        )));
    }
    if bytes.is_empty() {
        out.data_mut().fill(0);
        return Ok(());
    }
    match level.compression {
        Compression::Jpeg => jpeg(level, bytes, out, scratch),
        Compression::WebP => webp(level, bytes, out, scratch),
        Compression::None
        | Compression::Lzw
        | Compression::Deflate
        | Compression::PackBits
        | Compression::Zstd => samples(level, bytes, budget, out, scratch),
        Compression::Other(c) => Err(err(format!("compression {c} is not supported"))),
    }
}

/// Uncompressed, LZW, Deflate, PackBits or Zstandard samples: decompress, undo the predictor,
/// convert.
fn samples(
    level: &Level,
    bytes: &[u8],
    budget: Budget,
    out: &mut Pixels,
    scratch: &mut Scratch,
) -> Result<(), Error> {
    let spp = usize::from(level.samples_per_pixel);
    let channels = out.layout().channels();
    if spp < channels {
        return Err(err(format!(
            "{spp} samples per pixel for a {:?} image",
            out.layout()
        )));
    }
    // The decompressed size, against the budget before anything is allocated.
    let raw_len = u64::from(level.tile_width)
        .checked_mul(u64::from(level.tile_height))
        .and_then(|px| px.checked_mul(spp as u64))
        .filter(|&n| n <= budget.max_bytes())
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            err(format!(
                "a {}x{} tile of {spp} samples is larger than the memory budget",
                level.tile_width, level.tile_height
            ))
        })?;
    // Decompress straight into the output when the samples are the output's channels.
    let direct = spp == channels
        && matches!(
            level.photometric,
            Photometric::BlackIsZero | Photometric::Rgb
        )
        && level.alpha != Alpha::Associated;
    let Scratch { raw, lzw, zlib, .. } = scratch;
    let buf = if direct {
        out.data_mut()
    } else {
        fill(raw, raw_len)?
    };
    match level.compression {
        Compression::Lzw => lzw_into(bytes, buf, lzw)?,
        Compression::Deflate => deflate_into(bytes, buf, zlib)?,
        Compression::Zstd => zstd_into(bytes, buf)?,
        Compression::PackBits => packbits_into(bytes, buf)?,
        _ => {
            let src = bytes.get(..buf.len()).ok_or_else(|| {
                err(format!(
                    "an uncompressed tile has {} bytes, {} expected",
                    bytes.len(),
                    buf.len()
                ))
            })?;
            buf.copy_from_slice(src);
        }
    }
    if level.predictor == 2 {
        let row = level.tile_width as usize * spp;
        for row in buf.chunks_exact_mut(row) {
            undo_predictor(row, spp);
        }
    }
    if !direct {
        convert(level, raw, out);
    }
    if level.alpha == Alpha::Associated {
        unpremultiply(out);
    }
    Ok(())
}

/// Decode PackBits (TIFF 6.0, section 9) into `out`, which it must fill: a header byte `n`
/// of 0..=127 copies the next `n + 1` bytes, -127..=-1 repeats the next byte `1 - n` times,
/// -128 is skipped. Runs that would overflow `out` are cut at its end (libtiff does the same);
/// input that ends before `out` is full is an error. (The `tiff` crate's PackBits reader is
/// private to it; the code is a dozen lines.)
fn packbits_into(mut input: &[u8], out: &mut [u8]) -> Result<(), Error> {
    let mut filled = 0;
    while filled < out.len() {
        let Some((&header, rest)) = input.split_first() else {
            return Err(err(format!(
                "PackBits data ends after {filled} of {} bytes",
                out.len()
            )));
        };
        input = rest;
        let room = out.len() - filled;
        match header as i8 {
            -128 => {}
            n @ 0.. => {
                let n = n as usize + 1;
                let literal = input
                    .get(..n)
                    .ok_or_else(|| err("PackBits data is truncated"))?;
                let take = n.min(room);
                out[filled..filled + take].copy_from_slice(&literal[..take]);
                filled += take;
                input = &input[n..];
            }
            n => {
                let (&byte, rest) = input
                    .split_first()
                    .ok_or_else(|| err("PackBits data is truncated"))?;
                input = rest;
                let take = (1 - isize::from(n)) as usize;
                let take = take.min(room);
                out[filled..filled + take].fill(byte);
                filled += take;
            }
        }
    }
    Ok(())
}

/// Decode a TIFF-flavoured LZW stream into `out`, which it must fill.
fn lzw_into(
    mut input: &[u8],
    out: &mut [u8],
    state: &mut Option<weezl::decode::Decoder>,
) -> Result<(), Error> {
    let decoder = state
        .get_or_insert_with(|| weezl::decode::Decoder::with_tiff_size_switch(BitOrder::Msb, 8));
    decoder.reset();
    let mut filled = 0;
    while filled < out.len() {
        let result = decoder.decode_bytes(input, &mut out[filled..]);
        input = input.get(result.consumed_in..).unwrap_or_default();
        filled += result.consumed_out;
        match result.status {
            Ok(LzwStatus::Ok) if result.consumed_in + result.consumed_out > 0 => {}
            Ok(_) => break,
            Err(e) => return Err(err(format!("broken LZW data: {e}"))),
        }
    }
    if filled < out.len() {
        return Err(err(format!(
            "LZW data ends after {filled} of {} bytes",
            out.len()
        )));
    }
    Ok(())
}

/// Decode a zlib (Deflate) stream into `out`, which it must fill; never more than `out`.
fn deflate_into(
    mut input: &[u8],
    out: &mut [u8],
    state: &mut Option<Decompress>,
) -> Result<(), Error> {
    let decoder = state.get_or_insert_with(|| Decompress::new(true));
    decoder.reset(true);
    let mut filled = 0;
    while filled < out.len() {
        let (in0, out0) = (decoder.total_in(), decoder.total_out());
        let status = decoder
            .decompress(input, &mut out[filled..], FlushDecompress::None)
            .map_err(|e| err(format!("broken Deflate data: {e}")))?;
        let used = (decoder.total_in() - in0) as usize;
        let made = (decoder.total_out() - out0) as usize;
        input = input.get(used..).unwrap_or_default();
        filled += made;
        if status == Status::StreamEnd || used + made == 0 {
            break;
        }
    }
    if filled < out.len() {
        return Err(err(format!(
            "Deflate data ends after {filled} of {} bytes",
            out.len()
        )));
    }
    Ok(())
}

/// Decode a Zstandard frame into `out`, which it must fill exactly.
fn zstd_into(input: &[u8], out: &mut [u8]) -> Result<(), Error> {
    // Only the first frame: bytes after it are not the tile's.
    let frame = zstd::zstd_safe::find_frame_compressed_size(input)
        .map_err(|_| err("broken Zstandard data: no frame"))?;
    let input = input.get(..frame).unwrap_or(input);
    let filled = zstd::bulk::decompress_to_buffer(input, out)
        .map_err(|e| err(format!("broken Zstandard data: {e}")))?;
    if filled < out.len() {
        return Err(err(format!(
            "Zstandard data ends after {filled} of {} bytes",
            out.len()
        )));
    }
    Ok(())
}

/// A WebP tile (a whole WebP image of the tile's size): decode it, then move its RGB or RGBA
/// samples into the level's layout.
fn webp(level: &Level, bytes: &[u8], out: &mut Pixels, scratch: &mut Scratch) -> Result<(), Error> {
    if level.photometric != Photometric::Rgb {
        return Err(err("WebP tiles must be RGB"));
    }
    let mut decoder = image_webp::WebPDecoder::new(std::io::Cursor::new(bytes))
        .map_err(|e| err(format!("broken WebP data: {e}")))?;
    let (w, h) = decoder.dimensions();
    if (w, h) != (level.tile_width, level.tile_height) {
        return Err(err(format!(
            "a {w}x{h} WebP tile in a level of {}x{} tiles",
            level.tile_width, level.tile_height
        )));
    }
    let alpha = decoder.has_alpha();
    let len = decoder
        .output_buffer_size()
        .ok_or_else(|| err("WebP tile too large"))?;
    let channels = out.layout().channels();
    if len == out.data().len() && alpha == (channels == 4) {
        return decoder
            .read_image(out.data_mut())
            .map_err(|e| err(format!("broken WebP data: {e}")));
    }
    let raw = fill(&mut scratch.raw, len)?;
    decoder
        .read_image(raw)
        .map_err(|e| err(format!("broken WebP data: {e}")))?;
    let spp = if alpha { 4 } else { 3 };
    for (s, d) in raw
        .chunks_exact(spp)
        .zip(out.data_mut().chunks_exact_mut(channels))
    {
        d[..3].copy_from_slice(&s[..3]);
        if let Some(a) = d.get_mut(3) {
            *a = s.get(3).copied().unwrap_or(255);
        }
    }
    Ok(())
}

/// Undo horizontal differencing on one row of interleaved 8-bit samples.
fn undo_predictor(row: &mut [u8], spp: usize) {
    // Whole pixels of the usual sample counts, each sample a running sum of its channel: the
    // compiler keeps the sums in registers (the strided loop below re-reads the row per sample).
    match spp {
        1 => return undo_predictor_n::<1>(row),
        3 if row.len().is_multiple_of(3) => return undo_predictor_n::<3>(row),
        4 if row.len().is_multiple_of(4) => return undo_predictor_n::<4>(row),
        _ => {}
    }
    for sample in 0..spp {
        let mut acc = 0u8;
        for v in row.iter_mut().skip(sample).step_by(spp) {
            acc = acc.wrapping_add(*v);
            *v = acc;
        }
    }
}

/// [`undo_predictor`] for `N` samples per pixel and a row of whole pixels.
fn undo_predictor_n<const N: usize>(row: &mut [u8]) {
    let mut acc = [0u8; N];
    for px in row.chunks_exact_mut(N) {
        for (a, v) in acc.iter_mut().zip(px) {
            *a = a.wrapping_add(*v);
            *v = *a;
        }
    }
}

/// Convert `spp` interleaved samples per pixel into the channels of `out`.
fn convert(level: &Level, raw: &[u8], out: &mut Pixels) {
    let spp = usize::from(level.samples_per_pixel);
    let channels = out.layout().channels();
    let pairs = raw
        .chunks_exact(spp)
        .zip(out.data_mut().chunks_exact_mut(channels));
    match level.photometric {
        Photometric::WhiteIsZero => {
            for (s, d) in pairs {
                for (d, s) in d.iter_mut().zip(s) {
                    *d = *s;
                }
                if let Some(v) = d.first_mut() {
                    *v = 255 - *v;
                }
            }
        }
        Photometric::BlackIsZero | Photometric::Rgb => {
            for (s, d) in pairs {
                d.copy_from_slice(&s[..channels]);
            }
        }
        Photometric::YCbCr => {
            for (s, d) in pairs {
                if let ([y, cb, cr, alpha @ ..], [r, g, b, out_alpha @ ..]) = (s, d) {
                    [*r, *g, *b] = ycbcr_to_rgb(*y, *cb, *cr);
                    if let ([a, ..], [oa]) = (alpha, out_alpha) {
                        *oa = *a;
                    }
                }
            }
        }
    }
}

/// Divide premultiplied colour by alpha, in place.
fn unpremultiply(px: &mut Pixels) {
    let channels = px.layout().channels();
    for p in px.data_mut().chunks_exact_mut(channels) {
        if let Some((&mut a, colour)) = p.split_last_mut() {
            for c in colour {
                *c = if a == 0 {
                    0
                } else {
                    ((u32::from(*c) * 255 + u32::from(a) / 2) / u32::from(a)).min(255) as u8
                };
            }
        }
    }
}

/// The JPEG stream of a tile: its bytes behind the level's `JPEGTables` (spliced into
/// `spliced`) when it has any.
fn jpeg_stream<'a>(
    level: &Level,
    bytes: &'a [u8],
    spliced: &'a mut Vec<u8>,
) -> Result<&'a [u8], Error> {
    const SOI: [u8; 2] = [0xFF, 0xD8];
    const EOI: [u8; 2] = [0xFF, 0xD9];
    if !bytes.starts_with(&SOI) {
        return Err(err("a JPEG tile does not start with SOI"));
    }
    match level.jpeg_tables.as_deref() {
        // Tables of SOI + EOI only hold nothing.
        Some(tables) if tables.len() > 4 => {
            if !tables.starts_with(&SOI) || !tables.ends_with(&EOI) {
                return Err(err("JPEGTables is not an SOI ... EOI stream"));
            }
            let head = &tables[..tables.len() - 2];
            let len = head.len() + bytes.len() - 2;
            spliced.clear();
            spliced
                .try_reserve_exact(len)
                .map_err(|_| err(format!("cannot allocate {len} bytes")))?;
            spliced.extend_from_slice(head);
            spliced.extend_from_slice(&bytes[2..]);
            Ok(spliced.as_slice())
        }
        _ => Ok(bytes),
    }
}

/// Decode a JPEG tile of `level` with libjpeg-turbo straight into `dst`, the place of the
/// tile's top-left pixel in a canvas of rows of `pitch` bytes that holds the whole tile: no
/// tile buffer, no copy. `Ok(false)` when it was not decoded there (not a JPEG level, or a
/// tile libjpeg-turbo leaves to [`decode_into`]).
#[cfg(feature = "turbojpeg")]
pub(super) fn decode_jpeg_in_place(
    level: &Level,
    bytes: &[u8],
    dst: &mut [u8],
    pitch: usize,
    scratch: &mut Scratch,
) -> Result<bool, Error> {
    if level.compression != Compression::Jpeg || bytes.is_empty() || level.bits_per_sample != 8 {
        return Ok(false);
    }
    let stream = jpeg_stream(level, bytes, &mut scratch.jpeg)?;
    Ok(turbo(level, stream, dst, pitch, &mut scratch.raw))
}

/// Decode a whole-frame JPEG tile with libjpeg-turbo (the `turbojpeg` feature); `false` leaves
/// the tile to zune-jpeg (a frame of another size or layout, or a stream libjpeg-turbo
/// refuses). RGB stored unconverted gets an Adobe marker saying so, as zune-jpeg is told.
#[cfg(feature = "turbojpeg")]
fn turbo(level: &Level, stream: &[u8], dst: &mut [u8], pitch: usize, marked: &mut Vec<u8>) -> bool {
    /// APP14 "Adobe", version 100, flags 0, 0, transform 0: the components are RGB.
    const ADOBE_RGB: [u8; 16] = [
        0xFF, 0xEE, 0x00, 0x0E, b'A', b'd', b'o', b'b', b'e', 0x00, 0x64, 0x00, 0x00, 0x00, 0x00,
        0x00,
    ];
    let stream = if level.photometric == Photometric::Rgb && !declares_ycbcr(stream) {
        marked.clear();
        if marked
            .try_reserve_exact(stream.len() + ADOBE_RGB.len())
            .is_err()
        {
            return false;
        }
        marked.extend_from_slice(&stream[..2]);
        marked.extend_from_slice(&ADOBE_RGB);
        marked.extend_from_slice(&stream[2..]);
        marked.as_slice()
    } else {
        stream
    };
    let size = (level.tile_width, level.tile_height);
    matches!(
        crate::codec::turbo::decode_to(stream, dst, pitch, size, level.layout()),
        Ok(true)
    )
}

/// Whether the marker segments of a JPEG stream declare YCbCr: a JFIF (APP0) marker or an
/// Adobe (APP14) marker with a colour transform.
fn declares_ycbcr(jpeg: &[u8]) -> bool {
    jpeg_segments(jpeg).into_iter().any(|(_, marker, payload)| {
        (marker == 0xE0 && payload.starts_with(b"JFIF\0"))
            || (marker == 0xEE
                && payload.starts_with(b"Adobe")
                && payload.get(11).is_some_and(|&t| t != 0))
    })
}

/// A JPEG tile: splice it behind the tables, decode with zune-jpeg into `out`.
fn jpeg(level: &Level, bytes: &[u8], out: &mut Pixels, scratch: &mut Scratch) -> Result<(), Error> {
    let stream = jpeg_stream(level, bytes, &mut scratch.jpeg)?;
    #[cfg(feature = "turbojpeg")]
    {
        let pitch = out.stride();
        if turbo(level, stream, out.data_mut(), pitch, &mut scratch.raw) {
            return Ok(());
        }
    }

    let (tw, th) = (level.tile_width, level.tile_height);
    let max = u16::MAX as usize;
    let options = DecoderOptions::default()
        .set_max_width((tw as usize).min(max))
        .set_max_height((th as usize).min(max));
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(stream), options);
    let jpeg_err = |e: zune_jpeg::errors::DecodeErrors| err(format!("cannot decode JPEG: {e}"));
    decoder.decode_headers().map_err(jpeg_err)?;
    let info = decoder
        .info()
        .ok_or_else(|| err("cannot decode JPEG: no frame header"))?;
    let colorspace = match (info.components, out.layout()) {
        (1, Layout::Gray) => ColorSpace::Luma,
        (3, Layout::Rgb) => {
            // RGB stored as such with no marker: zune-jpeg assumes YCbCr; asking for YCbCr out
            // copies the components unconverted.
            let raw_rgb = level.photometric == Photometric::Rgb
                && decoder.input_colorspace() == Some(ColorSpace::YCbCr)
                && !declares_ycbcr(stream);
            if raw_rgb {
                ColorSpace::YCbCr
            } else {
                ColorSpace::RGB
            }
        }
        // RGB with an extra sample (as libtiff writes RGBA): four components with no colour
        // transform; zune-jpeg hands CMYK out unconverted.
        (4, Layout::Rgba) if level.photometric == Photometric::Rgb => ColorSpace::CMYK,
        (n, layout) => {
            return Err(err(format!(
                "a JPEG tile of {n} components in a {layout:?} image"
            )));
        }
    };
    decoder.set_options(options.jpeg_set_out_colorspace(colorspace));
    let (fw, fh) = (u32::from(info.width), u32::from(info.height));
    if (fw, fh) == (tw, th) {
        if decoder.output_buffer_size() != Some(out.data().len()) {
            return Err(err("cannot decode JPEG: unexpected output size"));
        }
        return decoder.decode_into(out.data_mut()).map_err(jpeg_err);
    }
    // A frame smaller than the tile (some writers crop edge tiles): decode it aside and copy
    // it to the top left, the rest zero. Never larger: the decoder's limits are the tile's.
    let size = decoder
        .output_buffer_size()
        .ok_or_else(|| err("cannot decode JPEG: unknown output size"))?;
    let channels = out.layout().channels();
    if size != fw as usize * fh as usize * channels {
        return Err(err("cannot decode JPEG: unexpected output size"));
    }
    let raw = fill(&mut scratch.raw, size)?;
    decoder.decode_into(raw).map_err(jpeg_err)?;
    out.data_mut().fill(0);
    let (src_stride, dst_stride) = (fw as usize * channels, out.stride());
    let copy = src_stride.min(dst_stride);
    if copy > 0 {
        for (src, dst) in raw
            .chunks_exact(src_stride)
            .zip(out.data_mut().chunks_exact_mut(dst_stride))
        {
            dst[..copy].copy_from_slice(&src[..copy]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The predictor undone one sample at a time, as TIFF defines it.
    fn reference(row: &mut [u8], spp: usize) {
        for i in spp..row.len() {
            row[i] = row[i].wrapping_add(row[i - spp]);
        }
    }

    #[test]
    fn the_predictor_is_undone_per_channel_for_every_sample_count() {
        let row: Vec<u8> = (0..240u32).map(|i| (i * 97 % 251) as u8).collect();
        for spp in 1..=5 {
            let (mut fast, mut slow) = (row.clone(), row.clone());
            undo_predictor(&mut fast, spp);
            reference(&mut slow, spp);
            assert_eq!(fast, slow, "{spp} samples per pixel");
        }
        // A row that is not whole pixels (never made by a TIFF level, but not mis-summed).
        let (mut fast, mut slow) = (row[..238].to_vec(), row[..238].to_vec());
        undo_predictor(&mut fast, 3);
        reference(&mut slow, 3);
        assert_eq!(fast, slow);
    }
}
