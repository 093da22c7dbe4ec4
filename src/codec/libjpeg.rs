//! A JPEG decoded at 1/2^`shift` of its size, all of it or a crop, row by row, without the
//! `turbojpeg` feature: MozJPEG's libjpeg (the `mozjpeg` crate, built from its bundled C
//! sources by `cc`, no cmake, no nasm), scaled in the DCT domain. Only one row of the scaled
//! image and the crop are held: a full-resolution region of a huge flat JPEG costs its own
//! pixels, not the whole image's (the rows above it are still entropy-decoded).
//!
//! Same contract as `codec::turbo::decode`: RGB, or gray for a gray JPEG, as stored (no EXIF
//! orientation); CMYK / YCCK and lossless JPEGs, and those whose coefficient buffers would
//! exceed the budget (progressive or multi-scan), are refused so that the caller falls back to
//! its general decoder. libjpeg reports a fatal error by unwinding (the `mozjpeg` crate's error
//! manager, C compiled with `-fexceptions`); it is caught here and becomes an error.

use std::panic::{AssertUnwindSafe, catch_unwind};

use mozjpeg::ColorSpace;

use crate::Error;
use crate::pixels::{Budget, Layout, Pixels, Rect};

/// Decode the JPEG `bytes` at 1/2^`shift` of its size (`shift` 0 to 3), all of it or only
/// `crop`, a rectangle of the scaled image: RGB, or gray for a gray JPEG.
///
/// # Errors
///
/// [`ErrorKind::Source`](crate::ErrorKind::Source) for a broken file, a CMYK/YCCK or lossless
/// JPEG, a progressive or multi-scan JPEG whose coefficients would exceed `budget`, an output
/// over `budget`, or a crop outside the image.
pub(crate) fn decode(
    bytes: &[u8],
    shift: u32,
    crop: Option<Rect>,
    budget: Budget,
) -> Result<Pixels, Error> {
    let frame = Frame::read(bytes)?;
    if frame.coefficient_bytes() > budget.max_bytes() {
        return Err(Error::source(format!(
            "cannot decode JPEG: a {}x{} progressive or multi-scan JPEG needs more memory than the budget allows",
            frame.width, frame.height
        )));
    }
    match catch_unwind(AssertUnwindSafe(|| rows(bytes, shift, crop, budget))) {
        Ok(result) => result,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("libjpeg failed");
            let msg = msg.trim_start_matches("libjpeg fatal error: ").trim();
            Err(Error::source(format!("cannot decode JPEG: {msg}")))
        }
    }
}

/// The decode itself (may unwind on a libjpeg error).
fn rows(bytes: &[u8], shift: u32, crop: Option<Rect>, budget: Budget) -> Result<Pixels, Error> {
    let io = |e: std::io::Error| Error::source(format!("cannot decode JPEG: {e}"));
    let mut d = mozjpeg::Decompress::new_mem(bytes).map_err(io)?;
    let layout = match d.color_space() {
        ColorSpace::JCS_GRAYSCALE => Layout::Gray,
        ColorSpace::JCS_YCbCr | ColorSpace::JCS_RGB => Layout::Rgb,
        other => {
            return Err(Error::source(format!(
                "cannot decode JPEG scaled: colour space {other:?}"
            )));
        }
    };
    d.scale(8 >> shift.min(3));
    let mut s = match layout {
        Layout::Gray => d.grayscale(),
        _ => d.rgb(),
    }
    .map_err(io)?;
    let (sw, sh) = (
        u32::try_from(s.width()).map_err(|_| Error::source("cannot decode JPEG: too wide"))?,
        u32::try_from(s.height()).map_err(|_| Error::source("cannot decode JPEG: too tall"))?,
    );
    let want = crop.unwrap_or(Rect::new(0, 0, sw, sh));
    if want.w == 0 || want.h == 0 || want.right() > sw || want.bottom() > sh {
        return Err(Error::source(format!(
            "cannot decode JPEG: region {want:?} outside {sw}x{sh}"
        )));
    }
    let mut out = Pixels::try_new(want.w, want.h, layout, budget)?;
    let mut row = Pixels::try_new(sw, 1, layout, budget)?;
    let ch = layout.channels();
    let (x0, x1) = (want.x as usize * ch, want.right() as usize * ch);
    let stride = out.stride();
    let data = out.data_mut();
    for y in 0..want.bottom() {
        let line = s.read_scanlines_into(row.data_mut()).map_err(io)?;
        if y >= want.y {
            let at = (y - want.y) as usize * stride;
            data[at..at + (x1 - x0)].copy_from_slice(&line[x0..x1]);
        }
    }
    // The rows below the region are not decoded: dropping the decompressor aborts it.
    Ok(out)
}

/// What the frame header and the first scan say about libjpeg's memory: the frame's size and
/// components, and whether the coefficients of the whole frame are buffered (progressive, or
/// a first scan that does not hold every component).
struct Frame {
    width: u32,
    height: u32,
    components: u32,
    buffered: bool,
}

impl Frame {
    /// Walk the markers up to the first scan.
    fn read(bytes: &[u8]) -> Result<Frame, Error> {
        let bad = || Error::source("cannot decode JPEG: no frame header before the first scan");
        if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
            return Err(Error::source("cannot decode JPEG: no SOI marker"));
        }
        let mut at = 2usize;
        let mut frame: Option<Frame> = None;
        loop {
            // Fill bytes (0xFF) may precede a marker.
            while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
                at += 1;
            }
            let (Some(&0xFF), Some(&marker)) = (bytes.get(at), bytes.get(at + 1)) else {
                return Err(bad());
            };
            let len = bytes
                .get(at + 2..at + 4)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                .ok_or_else(bad)?;
            let seg = bytes.get(at + 4..at + 2 + len).ok_or_else(bad)?;
            match marker {
                // SOF0..SOF15 but DHT (C4), JPG (C8) and DAC (CC).
                0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                    if matches!(marker, 0xC3 | 0xC7 | 0xCB | 0xCF) {
                        return Err(Error::source("cannot decode JPEG scaled: lossless"));
                    }
                    let h = seg.get(1..3).ok_or_else(bad)?;
                    let w = seg.get(3..5).ok_or_else(bad)?;
                    frame = Some(Frame {
                        height: u32::from(u16::from_be_bytes([h[0], h[1]])),
                        width: u32::from(u16::from_be_bytes([w[0], w[1]])),
                        components: u32::from(*seg.get(5).ok_or_else(bad)?),
                        buffered: matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE),
                    });
                }
                0xDA => {
                    let mut f = frame.ok_or_else(bad)?;
                    let in_scan = u32::from(*seg.first().ok_or_else(bad)?);
                    f.buffered |= in_scan < f.components;
                    return Ok(f);
                }
                _ => {}
            }
            at += 2 + len;
        }
    }

    /// Bytes of the whole-frame coefficient buffers libjpeg keeps (an upper bound: every
    /// component at full resolution, 2 bytes a coefficient), or 0 when it keeps none.
    fn coefficient_bytes(&self) -> u64 {
        if !self.buffered {
            return 0;
        }
        let blocks = u64::from(self.width.div_ceil(8)) * u64::from(self.height.div_ceil(8));
        blocks * 64 * 2 * u64::from(self.components)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{EncodeOptions, Format, encode, scaled_size};

    /// A `w` x `h` RGB JPEG of a smooth pattern.
    fn jpeg(w: u32, h: u32) -> (Pixels, Vec<u8>) {
        let px = crate::samples::pattern(w, h);
        let bytes = encode(&px, Format::Jpg, &EncodeOptions { jpeg_quality: 95 }).unwrap();
        (px, bytes)
    }

    #[test]
    fn a_crop_at_full_size_matches_the_whole_decode() {
        let (_, bytes) = jpeg(300, 200);
        let whole = decode(&bytes, 0, None, Budget::default()).unwrap();
        assert_eq!((whole.width(), whole.height()), (300, 200));
        let rect = Rect::new(37, 51, 100, 60);
        let crop = decode(&bytes, 0, Some(rect), Budget::default()).unwrap();
        assert_eq!((crop.width(), crop.height()), (100, 60));
        let want = crate::ops::crop_resize(&whole, rect, 100, 60, Budget::default()).unwrap();
        assert_eq!(crop.data(), want.data());
    }

    #[test]
    fn scaled_decodes_are_close_to_a_reduced_original() {
        let (px, bytes) = jpeg(320, 240);
        for shift in 1..=3u32 {
            let got = decode(&bytes, shift, None, Budget::default()).unwrap();
            let (w, h) = scaled_size((320, 240), shift);
            assert_eq!((got.width(), got.height()), (w, h), "shift {shift}");
            let whole = Rect::new(0, 0, 320, 240);
            let want = crate::ops::crop_resize(&px, whole, w, h, Budget::default()).unwrap();
            let d = crate::codec::testutil::mean_abs_diff(&got, &want);
            assert!(d < 6.0, "shift {shift}: mean difference {d}");
        }
        // A crop of the scaled image.
        let quarter = decode(&bytes, 2, None, Budget::default()).unwrap();
        let rect = Rect::new(10, 20, 30, 25);
        let crop = decode(&bytes, 2, Some(rect), Budget::default()).unwrap();
        let want = crate::ops::crop_resize(&quarter, rect, 30, 25, Budget::default()).unwrap();
        assert_eq!(crop.data(), want.data());
    }

    #[test]
    fn gray_jpegs_decode_gray() {
        let px = crate::ops::to_gray(crate::samples::pattern(64, 48)).unwrap();
        let bytes = encode(&px, Format::Jpg, &EncodeOptions::default()).unwrap();
        let got = decode(&bytes, 1, None, Budget::default()).unwrap();
        assert_eq!(
            (got.width(), got.height(), got.layout()),
            (32, 24, Layout::Gray)
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let (_, bytes) = jpeg(64, 64);
        // Outside the image.
        let e = decode(&bytes, 0, Some(Rect::new(60, 0, 10, 10)), Budget::default());
        assert!(e.is_err());
        // Truncated in the entropy-coded data, and every header byte mutated.
        for cut in [bytes.len() / 2, 200, 30, 3] {
            let _ = decode(&bytes[..cut], 0, None, Budget::default());
        }
        for i in 0..bytes.len().min(700) {
            let mut b = bytes.clone();
            b[i] ^= 0x5A;
            let _ = decode(&b, 1, None, Budget::default());
        }
        assert!(decode(b"not a jpeg", 0, None, Budget::default()).is_err());
        // Over the budget: the output is refused before it is allocated.
        assert!(decode(&bytes, 0, None, Budget::new(1000)).is_err());
    }

    #[test]
    fn buffered_frames_are_weighed_before_decoding() {
        let f = Frame {
            width: 25167,
            height: 12483,
            components: 3,
            buffered: true,
        };
        assert!(f.coefficient_bytes() > 1 << 30);
        let (_, bytes) = jpeg(64, 64);
        let f = Frame::read(&bytes).unwrap();
        assert_eq!(
            (f.width, f.height, f.components, f.buffered),
            (64, 64, 3, false)
        );
    }
}
