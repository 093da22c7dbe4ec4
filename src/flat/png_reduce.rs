//! A PNG decoded row by row and reduced by a power of two on the fly, for the reduced pyramid
//! of a PNG too large to decode whole (a 25,000 x 12,000 RGB scan is 940 MB decoded; its
//! quarter-size copy 59 MB).
//!
//! Rows come out of the `png` crate one at a time with the transformations of a whole decode
//! (palettes and `tRNS` expanded, 16-bit samples stripped), so the result has the layout
//! [`decode`](super::decode) would give. Each output pixel is the box average of its 2^`shift`
//! x 2^`shift` block of the image (blocks at the right and bottom edges average the pixels
//! they have); colour is weighted by alpha, as the resizer's premultiplied scaling weighs it,
//! so the colour of transparent pixels does not bleed into their neighbours. Only one row of
//! sums is kept besides the output.
//!
//! Adam7-interlaced files spread every output row over seven passes: those (and an animated
//! PNG whose default image is a smaller frame) are left to the whole decode.

use std::io::{BufRead, Seek};

use crate::Error;
use crate::codec::png::{decoder, output_layout, source_error};
use crate::pixels::{Budget, Layout, Pixels, Rect};

/// The largest reduction [`decode_reduced`] makes: 2^8. Its `u32` sums hold a 256 x 256 block
/// of alpha-weighted samples (255 x 255 x 65,536 < 2^32); larger reductions are made from this
/// one.
pub(crate) const MAX_SHIFT: u32 = 8;

/// Decode the PNG file read from `input` reduced by 2^`shift` (at most [`MAX_SHIFT`]): a
/// `ceil(width / 2^shift)` x `ceil(height / 2^shift)` image, each pixel the box average of
/// its block, in the layout a whole decode gives. `Ok(None)` when the file must be decoded
/// whole instead (interlaced, or an animated PNG whose default image is smaller than the
/// canvas).
///
/// The output, the row of sums and the row buffer are checked against `budget` before they
/// are allocated; the decoder's own buffers are limited to it.
///
/// # Errors
///
/// [`ErrorKind::Source`](crate::ErrorKind::Source) for a broken, truncated or unsupported file
/// (image data that ends before the last row included) and for buffers over the budget;
/// [`ErrorKind::Internal`](crate::ErrorKind::Internal) for a `shift` over [`MAX_SHIFT`].
pub(crate) fn decode_reduced<R: BufRead + Seek>(
    input: R,
    shift: u32,
    budget: Budget,
) -> Result<Option<Pixels>, Error> {
    if shift > MAX_SHIFT {
        return Err(Error::internal(format!(
            "PNG rows reduced by 2^{shift}: at most 2^{MAX_SHIFT}"
        )));
    }
    let mut decoder = decoder(input, budget);
    decoder.set_ignore_text_chunk(true);
    let (width, height, interlaced) = {
        let info = decoder.read_header_info().map_err(source_error)?;
        (info.width, info.height, info.interlaced)
    };
    if interlaced {
        return Ok(None);
    }
    let d = 1u32 << shift;
    let (out_w, out_h) = (width.div_ceil(d), height.div_ceil(d));
    // The smallest possible output; the exact layout is known after `read_info`.
    budget.check(out_w, out_h, Layout::Gray)?;
    let mut reader = decoder.read_info().map_err(source_error)?;
    if let Some(frame) = &reader.info().frame_control
        && (frame.width, frame.height) != (width, height)
    {
        return Ok(None);
    }
    let layout = output_layout(&reader)?;
    let row_len = budget.check(width, 1, layout)?;
    if reader.output_line_size(width) != Some(row_len) {
        return Err(Error::source("cannot decode PNG: unexpected row size"));
    }
    let profile = icc_profile(&reader);
    let mut out = Pixels::try_new(out_w, out_h, layout, budget)?;
    let mut sums = BoxSums::new(width, shift, layout, budget)?;
    let mut row = zeroed(row_len)?;
    let stride = out.stride();
    let mut y = 0u32;
    for out_row in out.data_mut().chunks_exact_mut(stride) {
        let rows = d.min(height - y);
        for _ in 0..rows {
            if reader.read_row(&mut row).map_err(source_error)?.is_none() {
                return Err(Error::source(format!(
                    "cannot decode PNG: the image data ends at row {y} of {height}"
                )));
            }
            sums.add(&row);
            y += 1;
        }
        sums.emit(out_row, rows);
    }
    // The rest of the image data and its checksum, as a whole decode reads them.
    if reader.read_row(&mut row).map_err(source_error)?.is_some() {
        return Err(Error::source(
            "cannot decode PNG: more rows than its height",
        ));
    }
    if let Some(profile) = profile {
        crate::codec::icc::to_srgb(&mut out, &profile);
    }
    Ok(Some(out))
}

/// The file's embedded colour profile (`iCCP`), within the size the server reads.
fn icc_profile<R: BufRead + Seek>(reader: &::png::Reader<R>) -> Option<Vec<u8>> {
    let profile = reader.info().icc_profile.as_deref()?;
    (profile.len() <= crate::codec::icc::MAX_PROFILE).then(|| profile.to_vec())
}

/// Decode `rect` of the PNG file read from `input` at full size, in the layout a whole decode
/// gives, reading its rows only down to the region's last one: a zoomed-in tile of a PNG too
/// large for its reduced pyramid to serve, without the file or its full-size pixels in memory.
/// `Ok(None)` when the file must be decoded whole instead (interlaced, or an animated PNG whose
/// default image is smaller than the canvas).
///
/// # Errors
///
/// [`ErrorKind::Source`](crate::ErrorKind::Source) for a broken, truncated or unsupported file,
/// a region outside the image, and buffers over `budget`.
pub(crate) fn decode_region<R: BufRead + Seek>(
    input: R,
    rect: Rect,
    budget: Budget,
) -> Result<Option<Pixels>, Error> {
    let mut decoder = decoder(input, budget);
    decoder.set_ignore_text_chunk(true);
    let (width, height, interlaced) = {
        let info = decoder.read_header_info().map_err(source_error)?;
        (info.width, info.height, info.interlaced)
    };
    if interlaced {
        return Ok(None);
    }
    if rect.w == 0 || rect.h == 0 || rect.right() > width || rect.bottom() > height {
        return Err(Error::source(format!(
            "cannot decode PNG: region {},{},{},{} outside {width}x{height}",
            rect.x, rect.y, rect.w, rect.h
        )));
    }
    budget.check(rect.w, rect.h, Layout::Gray)?;
    let mut reader = decoder.read_info().map_err(source_error)?;
    if let Some(frame) = &reader.info().frame_control
        && (frame.width, frame.height) != (width, height)
    {
        return Ok(None);
    }
    let layout = output_layout(&reader)?;
    let row_len = budget.check(width, 1, layout)?;
    if reader.output_line_size(width) != Some(row_len) {
        return Err(Error::source("cannot decode PNG: unexpected row size"));
    }
    let profile = icc_profile(&reader);
    let mut out = Pixels::try_new(rect.w, rect.h, layout, budget)?;
    let mut row = zeroed(row_len)?;
    let c = layout.channels();
    let (x0, x1) = (rect.x as usize * c, rect.right() as usize * c);
    let stride = out.stride();
    let mut out_rows = out.data_mut().chunks_exact_mut(stride);
    for y in 0..rect.bottom() {
        if reader.read_row(&mut row).map_err(source_error)?.is_none() {
            return Err(Error::source(format!(
                "cannot decode PNG: the image data ends at row {y} of {height}"
            )));
        }
        if y >= rect.y
            && let Some(o) = out_rows.next()
        {
            o.copy_from_slice(&row[x0..x1]);
        }
    }
    if let Some(profile) = profile {
        crate::codec::icc::to_srgb(&mut out, &profile);
    }
    Ok(Some(out))
}

/// A zero-filled buffer of `len` bytes, reserved fallibly (the caller checked `len`).
fn zeroed(len: usize) -> Result<Vec<u8>, Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| Error::source(format!("cannot allocate {len} bytes for a PNG row")))?;
    v.resize(len, 0);
    Ok(v)
}

/// The sums of one output row's blocks: per output pixel, each channel summed over the rows
/// added so far (colour channels weighted by alpha in the alpha layouts).
struct BoxSums {
    sums: Vec<u32>,
    width: u32,
    shift: u32,
    layout: Layout,
}

impl BoxSums {
    /// Sums for rows `width` pixels wide in `layout`, reduced by 2^`shift`, checked against
    /// `budget` (four bytes a sample) before they are allocated.
    fn new(width: u32, shift: u32, layout: Layout, budget: Budget) -> Result<Self, Error> {
        let out_w = width.div_ceil(1 << shift);
        // As many bytes as four rows of output pixels.
        let bytes = budget.check(out_w, 4, layout)?;
        let len = bytes / 4;
        let mut sums = Vec::new();
        sums.try_reserve_exact(len)
            .map_err(|_| Error::source(format!("cannot allocate {bytes} bytes of sums")))?;
        sums.resize(len, 0);
        Ok(Self {
            sums,
            width,
            shift,
            layout,
        })
    }

    /// Add one decoded row (`width` pixels in the layout).
    fn add(&mut self, row: &[u8]) {
        let d = 1usize << self.shift;
        match self.layout {
            Layout::Gray => add_row::<1, false>(&mut self.sums, row, d),
            Layout::GrayAlpha => add_row::<2, true>(&mut self.sums, row, d),
            Layout::Rgb => add_row::<3, false>(&mut self.sums, row, d),
            Layout::Rgba => add_row::<4, true>(&mut self.sums, row, d),
        }
    }

    /// Write the averages of the `rows` rows added since the last call into `out` (one output
    /// row) and clear the sums. Rounded to nearest; a block with no opacity at all is
    /// transparent black.
    fn emit(&mut self, out: &mut [u8], rows: u32) {
        let c = self.layout.channels();
        let alpha = self.layout.has_alpha();
        let d = 1u32 << self.shift;
        let mut x = 0u32;
        for (o, s) in out.chunks_exact_mut(c).zip(self.sums.chunks_exact_mut(c)) {
            let n = u64::from(d.min(self.width - x) * rows);
            x += d;
            let avg = |sum: u32, n: u64| ((u64::from(sum) + n / 2) / n) as u8;
            if alpha {
                let (colour, a) = s.split_at(c - 1);
                let weight = u64::from(a[0]);
                for (o, &sum) in o.iter_mut().zip(colour) {
                    *o = if weight == 0 { 0 } else { avg(sum, weight) };
                }
                o[c - 1] = avg(a[0], n);
            } else {
                for (o, &sum) in o.iter_mut().zip(s.iter()) {
                    *o = avg(sum, n);
                }
            }
            s.fill(0);
        }
    }
}

/// Add `row` (pixels of `C` samples, the last alpha when `ALPHA`) to `sums`, each block of `d`
/// pixels into one pixel's sums.
fn add_row<const C: usize, const ALPHA: bool>(sums: &mut [u32], row: &[u8], d: usize) {
    for (s, block) in sums.chunks_exact_mut(C).zip(row.chunks(d * C)) {
        for px in block.chunks_exact(C) {
            if ALPHA {
                let a = u32::from(px[C - 1]);
                for k in 0..C - 1 {
                    s[k] += u32::from(px[k]) * a;
                }
                s[C - 1] += a;
            } else {
                for k in 0..C {
                    s[k] += u32::from(px[k]);
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
