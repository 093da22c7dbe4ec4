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

use super::png::{decoder, output_layout, source_error};
use crate::Error;
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
    Ok(Some(out))
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
pub(crate) mod tests {
    use std::io::Cursor;

    use ::png::{BitDepth, ColorType, Encoder};

    use super::*;
    use crate::codec::testutil::mean_abs_diff;
    use crate::reduced::ReducedPyramid;

    /// One kind of generated PNG: colour type, bit depth, palette and `tRNS`.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct Kind {
        pub(crate) color: ColorType,
        pub(crate) depth: BitDepth,
        pub(crate) palette: bool,
        pub(crate) trns: bool,
    }

    impl Kind {
        pub(crate) const fn new(color: ColorType, depth: BitDepth, trns: bool) -> Self {
            Self {
                color,
                depth,
                palette: matches!(color, ColorType::Indexed),
                trns,
            }
        }
    }

    /// Every kind the tests cover, and the layout each decodes to.
    pub(crate) const KINDS: [(Kind, Layout); 11] = [
        (
            Kind::new(ColorType::Rgb, BitDepth::Eight, false),
            Layout::Rgb,
        ),
        (
            Kind::new(ColorType::Rgba, BitDepth::Eight, false),
            Layout::Rgba,
        ),
        (
            Kind::new(ColorType::Grayscale, BitDepth::Eight, false),
            Layout::Gray,
        ),
        (
            Kind::new(ColorType::GrayscaleAlpha, BitDepth::Eight, false),
            Layout::GrayAlpha,
        ),
        (
            Kind::new(ColorType::Rgb, BitDepth::Sixteen, false),
            Layout::Rgb,
        ),
        (
            Kind::new(ColorType::GrayscaleAlpha, BitDepth::Sixteen, false),
            Layout::GrayAlpha,
        ),
        (
            Kind::new(ColorType::Indexed, BitDepth::Eight, false),
            Layout::Rgb,
        ),
        (
            Kind::new(ColorType::Indexed, BitDepth::Eight, true),
            Layout::Rgba,
        ),
        (
            Kind::new(ColorType::Grayscale, BitDepth::Eight, true),
            Layout::GrayAlpha,
        ),
        (
            Kind::new(ColorType::Rgb, BitDepth::Eight, true),
            Layout::Rgba,
        ),
        (
            Kind::new(ColorType::Grayscale, BitDepth::Four, false),
            Layout::Gray,
        ),
    ];

    /// The 8-bit sample values of the generated images at (x, y): smooth gradients, with a
    /// fully transparent band at the left (x < 40) where there is alpha.
    pub(crate) fn gradient(x: u32, y: u32, (w, h): (u32, u32)) -> [u8; 4] {
        let a = if x < 40 { 0 } else { 64 + 191 * y / h };
        [
            (255 * x / w) as u8,
            (255 * y / h) as u8,
            (255 * (x + y) / (w + h)) as u8,
            a as u8,
        ]
    }

    /// The stored rows of a `kind` image of `w` x `h` (no filter bytes).
    fn raw_rows(kind: Kind, (w, h): (u32, u32)) -> Vec<u8> {
        let mut data = Vec::new();
        for y in 0..h {
            let mut nibbles = Vec::new();
            for x in 0..w {
                let [r, g, b, a] = gradient(x, y, (w, h));
                match (kind.color, kind.depth) {
                    (ColorType::Rgb, BitDepth::Eight) => data.extend([r, g, b]),
                    (ColorType::Rgba, _) => data.extend([r, g, b, a]),
                    (ColorType::Grayscale, BitDepth::Eight) => data.push(g),
                    (ColorType::GrayscaleAlpha, BitDepth::Eight) => data.extend([g, a]),
                    // High bytes the gradient, low bytes noise that stripping drops.
                    (ColorType::Rgb, BitDepth::Sixteen) => {
                        data.extend([r, x as u8, g, y as u8, b, (x ^ y) as u8]);
                    }
                    (ColorType::GrayscaleAlpha, BitDepth::Sixteen) => {
                        data.extend([g, x as u8, a, y as u8]);
                    }
                    (ColorType::Indexed, _) => data.push(r),
                    (ColorType::Grayscale, BitDepth::Four) => nibbles.push(g >> 4),
                    other => panic!("no generator for {other:?}"),
                }
            }
            for pair in nibbles.chunks(2) {
                data.push(pair[0] << 4 | pair.get(1).copied().unwrap_or(0));
            }
        }
        data
    }

    /// A PNG of `kind`, `w` x `h`, written by the png encoder (adaptive filters).
    pub(crate) fn png_file(kind: Kind, (w, h): (u32, u32)) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = Encoder::new(&mut out, w, h);
        encoder.set_color(kind.color);
        encoder.set_depth(kind.depth);
        if kind.palette {
            let palette: Vec<u8> = (0..=255u8).flat_map(|i| [i, 255 - i, i / 2]).collect();
            encoder.set_palette(palette);
        }
        if kind.trns {
            // Palette: index i as opaque as i; gray: 100 keyed out; RGB: one colour keyed out.
            let trns = match kind.color {
                ColorType::Indexed => (0..=255u8).collect(),
                ColorType::Grayscale => vec![0, 100],
                _ => {
                    let [r, g, b, _] = gradient(w / 2, h / 2, (w, h));
                    vec![0, r, 0, g, 0, b]
                }
            };
            encoder.set_trns(trns);
        }
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&raw_rows(kind, (w, h))).unwrap();
        writer.finish().unwrap();
        out
    }

    /// An Adam7-interlaced 8-bit RGB PNG of the gradient (the png encoder writes no
    /// interlaced files): chunks, zlib stream and CRCs written here.
    pub(crate) fn interlaced_rgb(w: u32, h: u32) -> Vec<u8> {
        use std::io::Write;
        const PASSES: [(u32, u32, u32, u32); 7] = [
            (0, 0, 8, 8),
            (4, 0, 8, 8),
            (0, 4, 4, 8),
            (2, 0, 4, 4),
            (0, 2, 2, 4),
            (1, 0, 2, 2),
            (0, 1, 1, 2),
        ];
        let mut raw = Vec::new();
        for (x0, y0, dx, dy) in PASSES {
            if x0 >= w || y0 >= h {
                continue;
            }
            for y in (y0..h).step_by(dy as usize) {
                raw.push(0);
                for x in (x0..w).step_by(dx as usize) {
                    raw.extend_from_slice(&gradient(x, y, (w, h))[..3]);
                }
            }
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&raw).unwrap();
        let idat = z.finish().unwrap();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 1]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        for (name, data) in [(b"IHDR", &ihdr), (b"IDAT", &idat), (b"IEND", &Vec::new())] {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut crc = flate2::Crc::new();
            crc.update(name);
            crc.update(data);
            out.extend_from_slice(name);
            out.extend_from_slice(data);
            out.extend_from_slice(&crc.sum().to_be_bytes());
        }
        out
    }

    /// The box average of every 2^`shift` block of `full`, pixel by pixel: colour weighted by
    /// alpha, rounded to nearest, transparent black where a block has no opacity.
    pub(crate) fn box_reference(full: &Pixels, shift: u32) -> Pixels {
        let d = 1u32 << shift;
        let (w, h, layout) = (full.width(), full.height(), full.layout());
        let c = layout.channels();
        let (ow, oh) = (w.div_ceil(d), h.div_ceil(d));
        let mut data = Vec::new();
        for oy in 0..oh {
            for ox in 0..ow {
                let mut sums = vec![0u64; c];
                let mut n = 0u64;
                for y in oy * d..((oy + 1) * d).min(h) {
                    for x in ox * d..((ox + 1) * d).min(w) {
                        let p = full.pixel(x, y);
                        let a = if layout.has_alpha() {
                            u64::from(p[c - 1])
                        } else {
                            1
                        };
                        let colours = if layout.has_alpha() { c - 1 } else { c };
                        for k in 0..colours {
                            sums[k] += u64::from(p[k]) * a;
                        }
                        if layout.has_alpha() {
                            sums[c - 1] += a;
                        }
                        n += 1;
                    }
                }
                if layout.has_alpha() {
                    let sa = sums[c - 1];
                    for &s in &sums[..c - 1] {
                        data.push((s + sa / 2).checked_div(sa).map_or(0, |v| v as u8));
                    }
                    data.push(((sa + n / 2) / n) as u8);
                } else {
                    data.extend(sums.iter().map(|&s| ((s + n / 2) / n) as u8));
                }
            }
        }
        Pixels::from_vec(ow, oh, layout, data).unwrap()
    }

    #[test]
    fn every_kind_reduces_to_the_box_average_of_its_whole_decode() {
        let size = (1001, 517);
        for (kind, layout) in KINDS {
            let file = png_file(kind, size);
            let full = super::super::decode(&file, Budget::default()).unwrap();
            assert_eq!(full.layout(), layout, "{kind:?}");
            for shift in [1, 2, 3] {
                let got = decode_reduced(Cursor::new(&file), shift, Budget::default())
                    .unwrap()
                    .unwrap();
                let d = 1 << shift;
                assert_eq!(
                    (got.width(), got.height(), got.layout()),
                    (1001u32.div_ceil(d), 517u32.div_ceil(d), layout),
                    "{kind:?} {shift}"
                );
                assert!(
                    got == box_reference(&full, shift),
                    "{kind:?} at 1/{d}: not the box average"
                );
                // And close to what the whole decode's pyramid starts from (Catmull-Rom).
                let pyramid = ReducedPyramid::from_full(&full, shift, Budget::default()).unwrap();
                let diff = mean_abs_diff(&got, pyramid.level(0).unwrap());
                assert!(diff < 1.5, "{kind:?} at 1/{d}: mean difference {diff}");
            }
        }
    }

    #[test]
    fn regions_read_row_by_row_are_the_crops_of_the_whole_decode() {
        let size = (301, 157);
        for (kind, layout) in KINDS {
            let file = png_file(kind, size);
            let full = super::super::decode(&file, Budget::default()).unwrap();
            for rect in [
                Rect::new(0, 0, 301, 157),
                Rect::new(0, 0, 1, 1),
                Rect::new(100, 40, 64, 32),
                Rect::new(300, 156, 1, 1),
                Rect::new(7, 150, 294, 7),
            ] {
                let got = decode_region(Cursor::new(&file), rect, Budget::default())
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    (got.width(), got.height(), got.layout()),
                    (rect.w, rect.h, layout),
                    "{kind:?} {rect:?}"
                );
                let want = crate::ops::crop_resize(&full, rect, rect.w, rect.h, Budget::default())
                    .unwrap();
                assert!(got == want, "{kind:?} {rect:?}: not the crop");
            }
        }
        let file = png_file(KINDS[0].0, size);
        for outside in [
            Rect::new(0, 0, 302, 1),
            Rect::new(0, 157, 1, 1),
            Rect::new(5, 5, 0, 3),
        ] {
            let err = decode_region(Cursor::new(&file), outside, Budget::default()).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Source, "{outside:?}");
        }
        // Only the rows down to the region are needed: a file cut after them still serves it.
        let cut = &file[..file.len() / 2];
        let top = decode_region(
            Cursor::new(cut),
            Rect::new(0, 0, 301, 10),
            Budget::default(),
        );
        assert!(top.unwrap().is_some());
        assert!(
            decode_region(
                Cursor::new(cut),
                Rect::new(0, 150, 301, 7),
                Budget::default()
            )
            .is_err()
        );
        // Interlaced: left to the whole decode.
        let file = interlaced_rgb(101, 53);
        let got = decode_region(Cursor::new(&file), Rect::new(0, 0, 5, 5), Budget::default());
        assert!(got.unwrap().is_none());
        // The region's buffer is checked against the budget.
        let file = png_file(KINDS[0].0, size);
        let err = decode_region(
            Cursor::new(&file),
            Rect::new(0, 0, 301, 157),
            Budget::new(1000),
        );
        assert_eq!(err.unwrap_err().kind(), crate::ErrorKind::Source);
    }

    #[test]
    fn edge_blocks_average_the_pixels_they_have() {
        // 5x3 gray, reduced by 4: blocks of 4x3 and 1x3.
        let rows = [[0u8, 4, 8, 12, 200], [16, 20, 24, 28, 101], [0, 0, 0, 0, 1]];
        let mut out = Vec::new();
        let mut encoder = Encoder::new(&mut out, 5, 3);
        encoder.set_color(ColorType::Grayscale);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(rows.as_flattened()).unwrap();
        writer.finish().unwrap();
        let px = decode_reduced(Cursor::new(&out), 2, Budget::default())
            .unwrap()
            .unwrap();
        // (0+4+8+12+16+20+24+28)/12 = 9.33 -> 9; (200+101+1)/3 = 100.67 -> 101.
        assert_eq!(px.data(), &[9, 101]);
        // A whole block of nothing but transparency: transparent black, not its colour.
        let sums = {
            let mut s = BoxSums::new(2, 1, Layout::GrayAlpha, Budget::default()).unwrap();
            s.add(&[255, 0, 200, 0]);
            let mut o = [1, 1];
            s.emit(&mut o, 1);
            o
        };
        assert_eq!(sums, [0, 0]);
    }

    #[test]
    fn the_largest_reduction_does_not_overflow() {
        // 256 x 256 white opaque pixels at 1/256: every sum at its largest.
        let kind = Kind::new(ColorType::Rgba, BitDepth::Eight, false);
        let mut out = Vec::new();
        let mut encoder = Encoder::new(&mut out, 300, 256);
        encoder.set_color(kind.color);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&vec![255; 300 * 256 * 4]).unwrap();
        writer.finish().unwrap();
        let px = decode_reduced(Cursor::new(&out), MAX_SHIFT, Budget::default())
            .unwrap()
            .unwrap();
        assert_eq!(px.data(), &[255; 8]);
        assert!(decode_reduced(Cursor::new(&out), MAX_SHIFT + 1, Budget::default()).is_err());
    }

    #[test]
    fn interlaced_files_are_left_to_the_whole_decode() {
        let file = interlaced_rgb(101, 53);
        assert!(
            decode_reduced(Cursor::new(&file), 1, Budget::default())
                .unwrap()
                .is_none()
        );
        let full = super::super::decode(&file, Budget::default()).unwrap();
        assert_eq!(full.pixel(50, 20), &gradient(50, 20, (101, 53))[..3]);
    }

    #[test]
    fn truncated_and_corrupt_files_are_errors_not_panics() {
        let kind = Kind::new(ColorType::Rgb, BitDepth::Eight, false);
        let file = png_file(kind, (301, 207));
        for len in [
            0,
            8,
            20,
            33,
            40,
            file.len() / 3,
            file.len() / 2,
            file.len() - 20,
        ] {
            let err = decode_reduced(Cursor::new(&file[..len]), 2, Budget::default()).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Source, "{len}: {err}");
        }
        // Flipped bytes in the image data: a CRC or inflate error.
        let mut flipped = file.clone();
        for b in flipped.iter_mut().skip(200).step_by(97) {
            *b ^= 0x5A;
        }
        let err = decode_reduced(Cursor::new(&flipped), 2, Budget::default()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Source);
    }

    #[test]
    fn buffers_are_checked_against_the_budget() {
        let kind = Kind::new(ColorType::Rgba, BitDepth::Eight, false);
        let file = png_file(kind, (1001, 517));
        // The output at 1/4: 251 x 130 x 4 = 130,520 bytes; the whole image 2 MB.
        let out = 251 * 130 * 4;
        assert!(super::super::decode(&file, Budget::new(out)).is_err());
        let px = decode_reduced(Cursor::new(&file), 2, Budget::new(out)).unwrap();
        assert!(px.is_some());
        let err = decode_reduced(Cursor::new(&file), 2, Budget::new(out - 1)).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Source);
    }
}
