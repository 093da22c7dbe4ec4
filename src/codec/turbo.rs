//! libjpeg-turbo through its TurboJPEG 3 API (the `turbojpeg` feature): JPEG decoding scaled in
//! the DCT domain (1/2, 1/4, 1/8: the inverse transform itself makes the smaller image, so a
//! reduced decode costs little more than reading the entropy-coded data) and cropped to a
//! region (rows below it are never decoded, columns beside it are not transformed).
//!
//! Only the calls this needs are wrapped: a handle is created, used and destroyed within one
//! function, every size is checked against the [`Budget`] before the output is allocated, and
//! every failure is a one-line [`ErrorKind::Source`](crate::ErrorKind::Source) error.

use std::ffi::{CStr, c_int};

use turbojpeg_sys as tj;

use super::scaled_size;
use crate::Error;
use crate::pixels::{Budget, Layout, Pixels, Rect};

/// A TurboJPEG decompressor handle, destroyed when dropped.
struct Handle(tj::tjhandle);

impl Handle {
    fn decompressor() -> Result<Self, Error> {
        // SAFETY: tj3Init has no preconditions; a null handle is checked.
        let h = unsafe { tj::tj3Init(tj::TJINIT_TJINIT_DECOMPRESS as c_int) };
        if h.is_null() {
            return Err(Error::internal("cannot create a TurboJPEG decompressor"));
        }
        Ok(Self(h))
    }

    fn set(&self, param: tj::TJPARAM, value: c_int) -> Result<(), Error> {
        // SAFETY: a live handle.
        self.check(unsafe { tj::tj3Set(self.0, param as c_int, value) })
    }

    fn get(&self, param: tj::TJPARAM) -> c_int {
        // SAFETY: a live handle; tj3Get only reads.
        unsafe { tj::tj3Get(self.0, param as c_int) }
    }

    /// `Ok` for a 0 return code or a warning (e.g. extraneous bytes before a marker, common in
    /// real files), else the handle's error message.
    fn check(&self, code: c_int) -> Result<(), Error> {
        // SAFETY: a live handle; tj3GetErrorCode only reads.
        if code == 0 || unsafe { tj::tj3GetErrorCode(self.0) } == tj::TJERR_TJERR_WARNING as c_int {
            return Ok(());
        }
        // SAFETY: a live handle; the string is owned by the handle and copied at once.
        let msg = unsafe { CStr::from_ptr(tj::tj3GetErrorStr(self.0)) };
        let msg = msg.to_string_lossy();
        let line = msg.lines().next().unwrap_or("unknown error");
        Err(Error::source(format!("cannot decode JPEG: {line}")))
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { tj::tj3Destroy(self.0) }
    }
}

/// A JPEG whose header a decompressor has read: its frame size and what it decodes to.
struct Frame {
    h: Handle,
    width: u32,
    height: u32,
    layout: Layout,
    pixel_format: tj::TJPF,
}

/// Read the header of the JPEG `bytes` into a new decompressor, with libjpeg's own memory
/// capped at `max_bytes` (a progressive or multi-scan JPEG keeps every coefficient of the
/// frame) and hostile files with thousands of scans refused.
///
/// # Errors
///
/// [`ErrorKind::Source`](crate::ErrorKind::Source) for a broken header, a lossless or a
/// CMYK/YCCK JPEG (the caller's other decoder reads those).
fn open(bytes: &[u8], max_bytes: u64) -> Result<Frame, Error> {
    let h = Handle::decompressor()?;
    // SAFETY: a live handle and a readable slice of the given length.
    h.check(unsafe { tj::tj3DecompressHeader(h.0, bytes.as_ptr(), bytes.len() as tj::size_t) })?;
    let (w, ht) = (
        h.get(tj::TJPARAM_TJPARAM_JPEGWIDTH),
        h.get(tj::TJPARAM_TJPARAM_JPEGHEIGHT),
    );
    let (Ok(width), Ok(height)) = (u32::try_from(w), u32::try_from(ht)) else {
        return Err(Error::source("cannot decode JPEG: no frame size"));
    };
    if h.get(tj::TJPARAM_TJPARAM_LOSSLESS) != 0 {
        return Err(Error::source("lossless JPEG cannot be decoded scaled"));
    }
    let (layout, pixel_format) = match h.get(tj::TJPARAM_TJPARAM_COLORSPACE) as tj::TJCS {
        tj::TJCS_TJCS_GRAY => (Layout::Gray, tj::TJPF_TJPF_GRAY),
        tj::TJCS_TJCS_RGB | tj::TJCS_TJCS_YCbCr => (Layout::Rgb, tj::TJPF_TJPF_RGB),
        _ => return Err(Error::source("CMYK and YCCK JPEGs are not decoded scaled")),
    };
    let mib = c_int::try_from(max_bytes >> 20)
        .unwrap_or(c_int::MAX)
        .max(1);
    h.set(tj::TJPARAM_TJPARAM_MAXMEMORY, mib)?;
    h.set(tj::TJPARAM_TJPARAM_SCANLIMIT, 500)?;
    Ok(Frame {
        h,
        width,
        height,
        layout,
        pixel_format,
    })
}

/// Decode the JPEG `bytes` at 1/2^`shift` of its size (`shift` 0 to 3), all of it or only
/// `crop`, a rectangle of the scaled image, as stored (no EXIF orientation applied): RGB, or
/// gray for a gray JPEG.
///
/// # Errors
///
/// [`ErrorKind::Source`](crate::ErrorKind::Source) for a broken file, a CMYK/YCCK or lossless
/// JPEG (the caller's other decoder reads those), a progressive JPEG whose coefficient buffer
/// would exceed `budget`, an output over `budget`, or a crop outside the image.
pub(crate) fn decode(
    bytes: &[u8],
    shift: u32,
    crop: Option<Rect>,
    budget: Budget,
) -> Result<Pixels, Error> {
    let Frame {
        h,
        width: w,
        height: ht,
        layout,
        pixel_format,
    } = open(bytes, budget.max_bytes())?;
    let shift = shift.min(3);
    let factor = tj::tjscalingfactor {
        num: 1,
        denom: 1 << shift,
    };
    // SAFETY: a live handle.
    h.check(unsafe { tj::tj3SetScalingFactor(h.0, factor) })?;
    let (sw, sh) = scaled_size((w, ht), shift);
    let whole = Rect::new(0, 0, sw, sh);
    let want = crop.unwrap_or(whole);
    if want.w == 0 || want.h == 0 || want.right() > sw || want.bottom() > sh {
        return Err(Error::source(format!(
            "cannot decode JPEG: region {want:?} outside {sw}x{sh}"
        )));
    }
    // The left edge must fall on an iMCU column of the scaled image: decode from the column
    // before it and drop the extra pixels.
    let subsamp = h.get(tj::TJPARAM_TJPARAM_SUBSAMP);
    // tjMCUWidth of turbojpeg.h (a static of the header, not of the library), by TJSAMP: 444,
    // 422, 420, gray, 440, 411, 441; unknown subsampling: the widest.
    const MCU_WIDTH: [u32; 7] = [8, 16, 16, 8, 8, 32, 16];
    let mcu = usize::try_from(subsamp)
        .ok()
        .and_then(|i| MCU_WIDTH.get(i).copied())
        .unwrap_or(32);
    let step = mcu.div_ceil(1 << shift).max(1);
    let x0 = want.x - want.x % step;
    let decoded = Rect::new(x0, want.y, want.right() - x0, want.h);
    if decoded != whole {
        let region = tj::tjregion {
            x: decoded.x as c_int,
            y: decoded.y as c_int,
            w: decoded.w as c_int,
            h: decoded.h as c_int,
        };
        // SAFETY: a live handle.
        h.check(unsafe { tj::tj3SetCroppingRegion(h.0, region) })?;
    }
    let mut out = Pixels::try_new(decoded.w, decoded.h, layout, budget)?;
    let pitch = c_int::try_from(out.stride())
        .map_err(|_| Error::source("cannot decode JPEG: rows too long"))?;
    // SAFETY: `out` holds decoded.h rows of `pitch` bytes, exactly what the cropping region
    // (or the scaled image) decodes to in this pixel format.
    h.check(unsafe {
        tj::tj3Decompress8(
            h.0,
            bytes.as_ptr(),
            bytes.len() as tj::size_t,
            out.data_mut().as_mut_ptr(),
            pitch,
            pixel_format,
        )
    })?;
    if decoded == want {
        return Ok(out);
    }
    crate::ops::crop_resize(
        &out,
        Rect::new(want.x - x0, 0, want.w, want.h),
        want.w,
        want.h,
        budget,
    )
}

/// Decode the whole JPEG `bytes` at full size straight into `dst`, `height` rows of `pitch`
/// bytes (the last row may be just `width` pixels long), when the frame is exactly `width` x
/// `height` and decodes to `layout` (RGB or gray): a tile written in place into a larger
/// canvas. `Ok(false)`, with `dst` untouched, when the frame is another size or layout.
///
/// # Errors
///
/// [`ErrorKind::Source`](crate::ErrorKind::Source) for a broken file (`dst` may then be partly
/// written) and, as [`decode`], a CMYK/YCCK or lossless JPEG;
/// [`ErrorKind::Internal`](crate::ErrorKind::Internal) when `dst` is too short.
pub(crate) fn decode_to(
    bytes: &[u8],
    dst: &mut [u8],
    pitch: usize,
    (width, height): (u32, u32),
    layout: Layout,
) -> Result<bool, Error> {
    if !matches!(layout, Layout::Rgb | Layout::Gray) {
        return Ok(false);
    }
    let row = width as usize * layout.channels();
    let need = (height as usize).saturating_sub(1) * pitch + row;
    let Ok(c_pitch) = c_int::try_from(pitch) else {
        return Ok(false);
    };
    if width == 0 || height == 0 || pitch < row || dst.len() < need {
        return Err(Error::internal("JPEG decode: the destination does not fit"));
    }
    // A tile's frame needs at most a few times its pixels.
    let frame = open(bytes, need as u64 * 4)?;
    if (frame.width, frame.height, frame.layout) != (width, height, layout) {
        return Ok(false);
    }
    let h = frame.h;
    // SAFETY: `dst` holds `height` rows of `pitch` bytes (the last at least `row`), exactly
    // what a `width` x `height` frame decodes to in this pixel format at this pitch.
    h.check(unsafe {
        tj::tj3Decompress8(
            h.0,
            bytes.as_ptr(),
            bytes.len() as tj::size_t,
            dst.as_mut_ptr(),
            c_pitch,
            frame.pixel_format,
        )
    })?;
    Ok(true)
}

/// A TurboJPEG compressor handle, destroyed when dropped.
struct Compressor(tj::tjhandle);

impl Drop for Compressor {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { tj::tj3Destroy(self.0) }
    }
}

/// Encode 8-bit RGB (or, with `gray`, gray) samples as a baseline JPEG at `quality`, 4:2:0
/// (as the pure-Rust encoder does): libjpeg-turbo's SIMD encoder.
///
/// # Errors
///
/// [`ErrorKind::Internal`](crate::ErrorKind::Internal) when libjpeg-turbo fails or `data` is
/// not `width * height` pixels.
pub(crate) fn encode(
    data: &[u8],
    width: u32,
    height: u32,
    gray: bool,
    quality: u8,
) -> Result<Vec<u8>, Error> {
    let channels = if gray { 1 } else { 3 };
    let fail = |what: &str| Error::internal(format!("cannot encode JPEG: {what}"));
    let (Ok(w), Ok(h)) = (c_int::try_from(width), c_int::try_from(height)) else {
        return Err(fail("too large"));
    };
    if data.len() != width as usize * height as usize * channels || w == 0 || h == 0 {
        return Err(fail("the pixels do not match the size"));
    }
    // SAFETY: tj3Init has no preconditions; a null handle is checked.
    let handle = unsafe { tj::tj3Init(tj::TJINIT_TJINIT_COMPRESS as c_int) };
    if handle.is_null() {
        return Err(fail("no compressor"));
    }
    let c = Compressor(handle);
    let (subsamp, format) = if gray {
        (tj::TJSAMP_TJSAMP_GRAY, tj::TJPF_TJPF_GRAY)
    } else {
        (tj::TJSAMP_TJSAMP_420, tj::TJPF_TJPF_RGB)
    };
    let mut buf: *mut u8 = std::ptr::null_mut();
    let mut size: tj::size_t = 0;
    // SAFETY: a live handle; `data` holds `h` rows of `w * channels` bytes; libjpeg-turbo
    // allocates `buf`, freed below with tj3Free.
    let code = unsafe {
        let q = c_int::from(quality.clamp(1, 100));
        if tj::tj3Set(c.0, tj::TJPARAM_TJPARAM_QUALITY as c_int, q) != 0
            || tj::tj3Set(c.0, tj::TJPARAM_TJPARAM_SUBSAMP as c_int, subsamp) != 0
        {
            -1
        } else {
            tj::tj3Compress8(c.0, data.as_ptr(), w, 0, h, format, &mut buf, &mut size)
        }
    };
    let out = if code == 0 && !buf.is_null() {
        // SAFETY: libjpeg-turbo wrote `size` bytes at `buf`.
        Ok(unsafe { std::slice::from_raw_parts(buf, size as usize) }.to_vec())
    } else {
        Err(fail("libjpeg-turbo failed"))
    };
    // SAFETY: `buf` is null or was allocated by libjpeg-turbo.
    unsafe { tj::tj3Free(buf.cast()) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 200x120 RGB JPEG of coloured blocks, at quality 95, 4:2:0.
    fn sample() -> (Pixels, Vec<u8>) {
        let (w, h) = (200u32, 120u32);
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&[(x / 40 * 50) as u8, (y / 40 * 100) as u8, 128]);
            }
        }
        let px = Pixels::from_vec(w, h, Layout::Rgb, data).unwrap();
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 95);
        enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
        enc.encode(px.data(), w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        (px, out)
    }

    fn close(a: &[u8], b: &[u8], tol: u8) -> bool {
        a.iter().zip(b).all(|(x, y)| x.abs_diff(*y) <= tol)
    }

    #[test]
    fn scaled_and_cropped_decodes_match_the_source() {
        let (src, jpeg) = sample();
        for shift in 0..=3 {
            let px = decode(&jpeg, shift, None, Budget::default()).unwrap();
            assert_eq!((px.width(), px.height()), scaled_size((200, 120), shift));
            // The middle of a block keeps its colour at every scale.
            let d = 1 << shift;
            let (x, y) = (60 / d, 60 / d);
            assert!(close(px.pixel(x, y), src.pixel(60, 60), 6), "shift {shift}");
        }
        // A crop whose left edge is inside an iMCU: exactly the requested rectangle.
        let crop = Rect::new(37, 21, 50, 30);
        let px = decode(&jpeg, 1, Some(crop), Budget::default()).unwrap();
        let full = decode(&jpeg, 1, None, Budget::default()).unwrap();
        assert_eq!((px.width(), px.height()), (50, 30));
        for (y, x) in [(0, 0), (10, 45), (29, 49)] {
            assert!(
                close(px.pixel(x, y), full.pixel(37 + x, 21 + y), 3),
                "({x}, {y})"
            );
        }
    }

    #[test]
    fn encoded_jpegs_decode_to_the_source() {
        let (src, _) = sample();
        let jpeg = encode(src.data(), 200, 120, false, 90).unwrap();
        let back = decode(&jpeg, 0, None, Budget::default()).unwrap();
        assert_eq!((back.width(), back.height()), (200, 120));
        assert!(close(back.pixel(60, 60), src.pixel(60, 60), 6));
        let gray = vec![100u8; 64 * 32];
        let jpeg = encode(&gray, 64, 32, true, 80).unwrap();
        let back = decode(&jpeg, 0, None, Budget::default()).unwrap();
        assert_eq!(back.layout(), Layout::Gray);
        assert!(close(back.pixel(10, 10), &[100], 2));
        assert!(encode(&gray, 65, 32, true, 80).is_err());
    }

    #[test]
    fn bad_input_is_an_error() {
        let (_, jpeg) = sample();
        assert!(decode(b"junk", 0, None, Budget::default()).is_err());
        assert!(decode(&jpeg[..200], 0, None, Budget::default()).is_err());
        let outside = Rect::new(90, 0, 20, 10);
        assert!(decode(&jpeg, 1, Some(outside), Budget::default()).is_err());
        let e = decode(&jpeg, 0, None, Budget::new(1000)).unwrap_err();
        assert!(e.message().contains("budget"), "{e}");
    }
}
