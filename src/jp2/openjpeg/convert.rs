//! OpenJPEG's decoded components to 8-bit interleaved pixels: depth scaling, subsampled
//! components, palettes, sYCC, every size checked against the budget before allocating.

use super::*;

/// Maps samples of one component to 8 bits.
struct Depth {
    offset: i64,
    max: i64,
    lut: Vec<u8>,
}

impl Depth {
    fn new(prec: u32, signed: bool) -> Depth {
        let prec = prec.clamp(1, 31);
        let max = (1i64 << prec) - 1;
        let offset = if signed { 1i64 << (prec - 1) } else { 0 };
        let mut depth = Depth {
            offset,
            max,
            lut: Vec::new(),
        };
        if prec <= 16 {
            depth.lut = (0..=max).map(|v| depth.scale(v)).collect();
        }
        depth
    }

    /// `v` in `0..=max` to `0..=255`, rounding.
    fn scale(&self, v: i64) -> u8 {
        ((v * 255 + self.max / 2) / self.max).clamp(0, 255) as u8
    }

    /// Unsigned 8-bit samples: mapped by clamping alone.
    fn is_u8(&self) -> bool {
        self.offset == 0 && self.max == 255
    }

    #[inline]
    fn map(&self, sample: i32) -> u8 {
        let v = (i64::from(sample) + self.offset).clamp(0, self.max);
        match self.lut.get(v as usize) {
            Some(&b) => b,
            None => self.scale(v),
        }
    }
}

/// One component ready for sampling at output pixel positions.
struct Plane<'a> {
    data: &'a [i32],
    /// Column in the component for each output column.
    xmap: Vec<usize>,
    /// Offset of the component row for each output row.
    ymap: Vec<usize>,
    depth: Depth,
    /// `xmap` is consecutive columns.
    contiguous: bool,
}

fn reserve<T>(v: &mut Vec<T>, n: usize) -> Result<(), Jp2Error> {
    v.try_reserve_exact(n)
        .map_err(|_| Jp2Error::TooLarge(format!("cannot allocate {n} elements")))
}

/// Convert the decoded image to 8-bit interleaved pixels.
///
/// # Safety
/// `image` must be a live image filled by a successful `opj_decode`.
/// `out` is the region to output, in component 0's coordinates at the decoded resolution
/// (normally exactly what OpenJPEG decoded; a sub-rectangle of it for HTJ2K).
pub(super) unsafe fn convert(
    image: *const opj::opj_image_t,
    out: &Rect,
    max_bytes: u64,
) -> Result<Decoded, Jp2Error> {
    let bad = |m: &str| Jp2Error::Invalid(m.to_string());
    if image.is_null() {
        return Err(bad("no decoded image"));
    }
    // SAFETY: caller's contract.
    let img = unsafe { &*image };
    if img.numcomps == 0 || img.numcomps > 16384 || img.comps.is_null() {
        return Err(bad("decoded image has no components"));
    }
    // SAFETY: `numcomps` entries at a non-null `comps`.
    let comps = unsafe { std::slice::from_raw_parts(img.comps, img.numcomps as usize) };
    let n = comps.len();
    let space = img.color_space;
    if matches!(
        space,
        opj::COLOR_SPACE::OPJ_CLRSPC_CMYK | opj::COLOR_SPACE::OPJ_CLRSPC_EYCC
    ) {
        return Err(bad("unsupported colour space (CMYK or e-YCC)"));
    }
    let sources: &[usize] = match n {
        1 => &[0],
        2 => &[0, 1],
        3 => &[0, 1, 2],
        4 => &[0, 1, 2, 3],
        _ if comps[3].alpha != 0 => &[0, 1, 2, 3],
        _ => &[0, 1, 2],
    };
    let channels = sources.len();
    let c0 = &comps[0];
    // Three components whose chroma is subsampled and no colour space said: YCC, as
    // opj_decompress assumes.
    let unspecified = matches!(
        space,
        opj::COLOR_SPACE::OPJ_CLRSPC_UNSPECIFIED | opj::COLOR_SPACE::OPJ_CLRSPC_UNKNOWN
    );
    let ycc = channels >= 3
        && (space == opj::COLOR_SPACE::OPJ_CLRSPC_SYCC
            || (unspecified
                && n == 3
                && c0.dx == 1
                && c0.dy == 1
                && (comps[1].dx > 1 || comps[1].dy > 1)));

    if c0.w == 0 || c0.h == 0 || c0.dx == 0 || c0.dy == 0 {
        return Err(bad("decoded an empty image"));
    }
    // The output must lie within what was decoded.
    let (ox0, oy0) = origin(c0);
    let inside = u64::from(out.x0) >= ox0
        && u64::from(out.y0) >= oy0
        && out.x1 > out.x0
        && out.y1 > out.y0
        && u64::from(out.x1) <= ox0 + u64::from(c0.w)
        && u64::from(out.y1) <= oy0 + u64::from(c0.h);
    if !inside {
        return Err(bad("decoded region does not cover the requested region"));
    }
    let (width, height) = ((out.x1 - out.x0) as usize, (out.y1 - out.y0) as usize);
    let out_len = width
        .checked_mul(height)
        .and_then(|p| p.checked_mul(channels))
        .ok_or_else(|| Jp2Error::TooLarge("output size overflows".into()))?;
    if out_len as u64 > max_bytes {
        return Err(Jp2Error::TooLarge(format!(
            "output of {out_len} bytes is over the budget of {max_bytes}"
        )));
    }

    let mut planes = Vec::with_capacity(channels);
    for &i in sources {
        let c = &comps[i];
        if c.data.is_null() || c.w == 0 || c.h == 0 || c.dx == 0 || c.dy == 0 {
            return Err(bad("a component was not decoded"));
        }
        if c.prec == 0 || c.prec > 31 {
            return Err(bad("invalid component precision"));
        }
        let (cw, ch) = (c.w as usize, c.h as usize);
        let len = cw
            .checked_mul(ch)
            .ok_or_else(|| bad("component size overflows"))?;
        // SAFETY: OpenJPEG allocates `w * h` samples for each decoded component (checked
        // non-null above), and they stay alive as long as the image.
        let data = unsafe { std::slice::from_raw_parts(c.data, len) };
        // Nearest neighbour through the (reduced) reference grid: output column i sits at
        // (out.x0 + i) * c0.dx, which is column floor(that / c.dx) - origin.x of this
        // component (clamped to it).
        let map = |n_out: usize, o0: u32, od: u32, x0: u64, d: u32, size: usize| {
            let mut v = Vec::new();
            reserve(&mut v, n_out)?;
            for i in 0..n_out as u64 {
                let grid = (u64::from(o0) + i) * u64::from(od);
                let pos = (grid / u64::from(d)).saturating_sub(x0);
                v.push((pos as usize).min(size - 1));
            }
            Ok::<_, Jp2Error>(v)
        };
        let (cx0, cy0) = origin(c);
        let xmap = map(width, out.x0, c0.dx, cx0, c.dx, cw)?;
        let mut ymap = map(height, out.y0, c0.dy, cy0, c.dy, ch)?;
        for y in &mut ymap {
            *y *= cw;
        }
        // At full resolution on the grid (no subsampling) the columns are consecutive.
        let contiguous = c.dx == c0.dx && xmap[width - 1] == xmap[0] + width - 1;
        planes.push(Plane {
            data,
            xmap,
            ymap,
            depth: Depth::new(c.prec, c.sgnd != 0),
            contiguous,
        });
    }

    let mut pixels = Vec::new();
    reserve(&mut pixels, out_len)?;
    if planes.iter().all(|p| p.contiguous) {
        // Rows of consecutive samples: sliced once per row and plane, no per-sample lookups.
        pixels.resize(out_len, 0);
        for (y, row) in pixels.chunks_exact_mut(width * channels).enumerate() {
            for (k, p) in planes.iter().enumerate() {
                let start = p.ymap[y] + p.xmap[0];
                let Some(src) = p.data.get(start..start + width) else {
                    continue;
                };
                let dst = row[k..].iter_mut().step_by(channels);
                if p.depth.is_u8() {
                    for (d, &s) in dst.zip(src) {
                        *d = s.clamp(0, 255) as u8;
                    }
                } else {
                    for (d, &s) in dst.zip(src) {
                        *d = p.depth.map(s);
                    }
                }
            }
        }
    } else {
        for y in 0..height {
            for x in 0..width {
                for p in &planes {
                    let s = p.data.get(p.ymap[y] + p.xmap[x]).copied().unwrap_or(0);
                    pixels.push(p.depth.map(s));
                }
            }
        }
    }
    if ycc {
        for px in pixels.chunks_exact_mut(channels) {
            let (r, g, b) = ycc_to_rgb(px[0], px[1], px[2]);
            px[0] = r;
            px[1] = g;
            px[2] = b;
        }
    }
    let icc_profile = match (img.icc_profile_buf.is_null(), img.icc_profile_len as usize) {
        (false, len @ 1..=crate::codec::icc::MAX_PROFILE) => {
            // SAFETY: OpenJPEG's buffer of `icc_profile_len` bytes, alive with the image.
            Some(unsafe { std::slice::from_raw_parts(img.icc_profile_buf, len) }.to_vec())
        }
        _ => None,
    };
    Ok(Decoded {
        width: width as u32,
        height: height as u32,
        channels: channels as u8,
        data: pixels,
        icc_profile,
    })
}

/// Where a decoded component's samples start, at its decoded resolution: OpenJPEG keeps
/// `x0, y0` at full resolution (`ceil(image x0 / dx)`) and `w, h` at the reduced one.
fn origin(c: &opj::opj_image_comp_t) -> (u64, u64) {
    let scale = 1u64 << c.factor.min(32);
    (ceil_div(c.x0.into(), scale), ceil_div(c.y0.into(), scale))
}

/// sYCC (BT.601, full range) to RGB.
pub(super) fn ycc_to_rgb(y: u8, cb: u8, cr: u8) -> (u8, u8, u8) {
    let (y, cb, cr) = (f32::from(y), f32::from(cb) - 128.0, f32::from(cr) - 128.0);
    let c = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    (
        c(y + 1.402 * cr),
        c(y - 0.344_136 * cb - 0.714_136 * cr),
        c(y + 1.772 * cb),
    )
}
