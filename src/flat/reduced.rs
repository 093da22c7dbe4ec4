//! Reduced-resolution pyramids of flat images (JPEG, PNG), built once on first access.
//!
//! A flat 25,000-pixel JPEG has no smaller copies inside: every thumbnail or zoomed-out tile
//! would decode the whole file. [`ReducedPyramid`] holds the image reduced by powers of two
//! (the largest copy as large as a byte budget allows, then halvings down to a few hundred
//! pixels), built from one decode; later requests at those scales crop and scale a level in
//! memory, as they would a pyramidal TIFF's. Requests at larger scales than the largest level
//! are decoded from the file as before.

use crate::Error;
use crate::ops;
use crate::pixels::{Budget, Layout, Pixels, Rect};

/// Levels stop halving once their long side is at most this.
const SMALLEST_SIDE: u32 = 256;

/// An image reduced by powers of two, largest first: level `i` is the full image reduced by
/// 2^(`shift` + `i`), each side rounded up.
#[derive(Debug)]
pub(crate) struct ReducedPyramid {
    width: u32,
    height: u32,
    shift: u32,
    levels: Vec<Pixels>,
}

/// The size of a `width` x `height` image reduced by 2^`shift`, rounded up (as JPEG DCT
/// scaling rounds).
fn reduced((width, height): (u32, u32), shift: u32) -> (u32, u32) {
    let d = 1u64 << shift.min(40);
    let side = |s: u32| u64::from(s).div_ceil(d) as u32;
    (side(width).max(1), side(height).max(1))
}

impl ReducedPyramid {
    /// The smallest reduction 2^`shift` (`shift` >= 1) whose levels, all of them, take at most
    /// `max_bytes` in `layout`; `None` when even a tiny pyramid does not fit.
    ///
    pub(crate) fn base_shift(
        width: u32,
        height: u32,
        layout: Layout,
        max_bytes: u64,
    ) -> Option<u32> {
        (1..31).find(|&shift| Self::bytes_from(width, height, layout, shift) <= max_bytes)
    }

    /// The bytes of all levels from reduction 2^`shift` down.
    fn bytes_from(width: u32, height: u32, layout: Layout, shift: u32) -> u64 {
        let mut total = 0u64;
        let mut k = shift;
        loop {
            let (w, h) = reduced((width, height), k);
            total += u64::from(w) * u64::from(h) * layout.channels() as u64;
            if w.max(h) <= SMALLEST_SIDE || k >= 40 {
                return total;
            }
            k += 1;
        }
    }

    /// Build the pyramid of a `width` x `height` image from `base`, the image reduced by
    /// 2^`shift` (any size within a pixel of it is taken), halving it down to a few hundred
    /// pixels.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Source`](crate::ErrorKind::Source) when `base` is not that size; budget
    /// errors of the halvings.
    pub(crate) fn from_base(
        width: u32,
        height: u32,
        shift: u32,
        base: Pixels,
        budget: Budget,
    ) -> Result<Self, Error> {
        let (w, h) = reduced((width, height), shift);
        if base.width().abs_diff(w) > 1 || base.height().abs_diff(h) > 1 {
            return Err(Error::source(format!(
                "a reduced level of {}x{} where {w}x{h} was expected",
                base.width(),
                base.height()
            )));
        }
        let mut levels = vec![base];
        let mut k = shift;
        while let Some(last) = levels.last() {
            if last.width().max(last.height()) <= SMALLEST_SIDE || k >= 40 {
                break;
            }
            k += 1;
            let (w, h) = reduced((width, height), k);
            let whole = Rect::new(0, 0, last.width(), last.height());
            let next = ops::crop_resize(last, whole, w, h, budget)?;
            levels.push(next);
        }
        Ok(Self {
            width,
            height,
            shift,
            levels,
        })
    }

    /// Build the pyramid from the `full` decoded image: scaled down to the base level (a
    /// reduction by 2^`shift`), then halved.
    ///
    /// # Errors
    ///
    /// Budget errors of the scaling.
    pub(crate) fn from_full(full: &Pixels, shift: u32, budget: Budget) -> Result<Self, Error> {
        let (width, height) = (full.width(), full.height());
        let (w, h) = reduced((width, height), shift);
        let whole = Rect::new(0, 0, width, height);
        let base = ops::crop_resize(full, whole, w, h, budget)?;
        Self::from_base(width, height, shift, base, budget)
    }

    /// Width of the full image.
    ///
    #[cfg(test)]
    pub(crate) fn width(&self) -> u32 {
        self.width
    }

    /// Height of the full image.
    ///
    #[cfg(test)]
    pub(crate) fn height(&self) -> u32 {
        self.height
    }

    /// The sizes of the levels, largest first.
    ///
    #[cfg(test)]
    pub(crate) fn level_sizes(&self) -> Vec<(u32, u32)> {
        self.levels
            .iter()
            .map(|l| (l.width(), l.height()))
            .collect()
    }

    /// The pixels of level `index`, if there is one.
    ///
    pub(crate) fn level(&self, index: usize) -> Option<&Pixels> {
        self.levels.get(index)
    }

    /// The bytes the levels hold.
    ///
    pub(crate) fn bytes(&self) -> usize {
        self.levels.iter().map(|l| l.data().len()).sum()
    }

    /// The reduction of level `index` (the full image is `factor` times its size).
    fn factor(&self, index: usize) -> f64 {
        (1u64 << (self.shift as usize + index).min(62)) as f64
    }

    /// The smallest level at least `scale` times the full size, and its pixels: the level to
    /// render an output of `scale` x the region's size from; `None` when `scale` is larger
    /// than the largest level (the file must be decoded).
    ///
    pub(crate) fn level_for(&self, scale: f64) -> Option<(usize, &Pixels)> {
        if scale.is_nan() {
            return None;
        }
        let fits = |i: usize| (1.0 / self.factor(i)) * (1.0 + 1e-9) >= scale;
        let index = (0..self.levels.len()).rev().find(|&i| fits(i))?;
        Some((index, &self.levels[index]))
    }

    /// `region` of the full image in the pixels of level `index`, widened to whole pixels
    /// and kept inside the level.
    pub(crate) fn level_rect(&self, index: usize, region: Rect) -> Rect {
        let f = self.factor(index);
        let (lw, lh) = self
            .levels
            .get(index)
            .map_or((1, 1), |l| (l.width().max(1), l.height().max(1)));
        region.scaled_cover(f, f, (lw, lh))
    }

    /// The pyramid as bytes, for a store that outlives the process (see
    /// [`from_bytes`](Self::from_bytes)): a small little-endian header (format tag, full size,
    /// shift, layout, level sizes), then each level's pixels.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let layout = self.levels.first().map_or(Layout::Gray, Pixels::layout);
        let header = STORED_TAG.len() + 4 * 5 + 8 * self.levels.len();
        let mut out = Vec::with_capacity(header + self.bytes());
        out.extend_from_slice(STORED_TAG);
        for v in [
            self.width,
            self.height,
            self.shift,
            layout_code(layout),
            self.levels.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for l in &self.levels {
            out.extend_from_slice(&l.width().to_le_bytes());
            out.extend_from_slice(&l.height().to_le_bytes());
        }
        for l in &self.levels {
            out.extend_from_slice(l.data());
        }
        out
    }

    /// The full size and base reduction (`width`, `height`, `shift`) that bytes made by
    /// [`to_bytes`](Self::to_bytes) state, read from their header only; `None` for bytes of
    /// another format.
    pub(crate) fn stored_size(bytes: &[u8]) -> Option<(u32, u32, u32)> {
        let rest = bytes.strip_prefix(STORED_TAG)?;
        let word = |i: usize| {
            Some(u32::from_le_bytes(
                rest.get(4 * i..4 * i + 4)?.try_into().ok()?,
            ))
        };
        Some((word(0)?, word(1)?, word(2)?))
    }

    /// A pyramid from the bytes [`to_bytes`](Self::to_bytes) made. Everything is checked before
    /// anything is allocated: the format tag, the level sizes (those this full size and shift
    /// give), the length, each level against `budget`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Source`](crate::ErrorKind::Source) for bytes that are not a pyramid of
    /// this format (truncated, another version, sizes that do not add up) or over `budget`.
    ///
    /// See [`to_bytes`](Self::to_bytes) for an example.
    pub(crate) fn from_bytes(bytes: &[u8], budget: Budget) -> Result<Self, Error> {
        let bad = |what: &str| Error::source(format!("not a stored reduced pyramid: {what}"));
        let rest = bytes
            .strip_prefix(STORED_TAG)
            .ok_or_else(|| bad("unknown format"))?;
        let word = |i: usize| -> Result<u32, Error> {
            rest.get(4 * i..4 * i + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| bad("truncated header"))
        };
        let (width, height, shift) = (word(0)?, word(1)?, word(2)?);
        let layout = layout_from_code(word(3)?).ok_or_else(|| bad("unknown layout"))?;
        let count = word(4)? as usize;
        if width == 0 || height == 0 || !(1..=40).contains(&shift) || !(1..=41).contains(&count) {
            return Err(bad("bad sizes"));
        }
        let mut sizes = Vec::with_capacity(count);
        let mut total = 0u64;
        for i in 0..count {
            let (w, h) = (word(5 + 2 * i)?, word(6 + 2 * i)?);
            let (ew, eh) = reduced((width, height), shift + i as u32);
            // The base level may be within a pixel of its size (as from_base takes it).
            let close = if i == 0 {
                w.abs_diff(ew) <= 1 && h.abs_diff(eh) <= 1
            } else {
                (w, h) == (ew, eh)
            };
            if !close || w == 0 || h == 0 {
                return Err(bad("level sizes do not match the image"));
            }
            total += budget.check(w, h, layout)? as u64;
            sizes.push((w, h));
        }
        // Every header word was read above: the header is there.
        let mut data = rest.get(4 * (5 + 2 * count)..).unwrap_or_default();
        if data.len() as u64 != total {
            return Err(bad("the pixels do not match the level sizes"));
        }
        let mut levels = Vec::with_capacity(count);
        for (w, h) in sizes {
            let n = w as usize * h as usize * layout.channels();
            let mut px = Vec::new();
            px.try_reserve_exact(n)
                .map_err(|_| Error::source("out of memory for a stored reduced pyramid"))?;
            px.extend_from_slice(&data[..n]);
            data = &data[n..];
            levels.push(Pixels::from_vec(w, h, layout, px)?);
        }
        Ok(Self {
            width,
            height,
            shift,
            levels,
        })
    }
}

/// The format tag of a stored pyramid; a new layout of the bytes gets a new tag.
const STORED_TAG: &[u8; 8] = b"TIRP\x00\x00\x00\x01";

fn layout_code(layout: Layout) -> u32 {
    match layout {
        Layout::Gray => 1,
        Layout::GrayAlpha => 2,
        Layout::Rgb => 3,
        Layout::Rgba => 4,
    }
}

fn layout_from_code(code: u32) -> Option<Layout> {
    Some(match code {
        1 => Layout::Gray,
        2 => Layout::GrayAlpha,
        3 => Layout::Rgb,
        4 => Layout::Rgba,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth gradient, so that scaled copies keep their values.
    fn gradient(w: u32, h: u32) -> Pixels {
        let mut data = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 77]);
            }
        }
        Pixels::from_vec(w, h, Layout::Rgb, data).unwrap()
    }

    #[test]
    fn levels_halve_down_to_a_few_hundred_pixels_and_keep_the_picture() {
        let full = gradient(3001, 1001);
        let p = ReducedPyramid::from_full(&full, 1, Budget::default()).unwrap();
        assert_eq!(
            p.level_sizes(),
            vec![(1501, 501), (751, 251), (376, 126), (188, 63)]
        );
        assert_eq!(
            p.bytes(),
            (1501 * 501 + 751 * 251 + 376 * 126 + 188 * 63) * 3
        );
        for (i, (w, h)) in p.level_sizes().into_iter().enumerate() {
            let (_, level) = p.level_for(1.0 / p.factor(i)).unwrap();
            assert_eq!((level.width(), level.height()), (w, h));
            // The middle pixel: the full image's middle colour.
            let got = level.pixel(w / 2, h / 2);
            let want = full.pixel(1500, 500);
            for (a, b) in got.iter().zip(want) {
                assert!(a.abs_diff(*b) <= 2, "level {i}: {got:?} vs {want:?}");
            }
        }
        assert!(p.level_for(0.6).is_none());
        assert_eq!(p.level_for(0.5).unwrap().0, 0);
        assert_eq!(p.level_for(0.3).unwrap().0, 0);
        assert_eq!(p.level_for(0.001).unwrap().0, 3);
        assert!(p.level_for(f64::NAN).is_none());
    }

    #[test]
    fn the_base_shift_keeps_the_levels_within_the_bytes() {
        // 25167x12483 RGB: 1/2 is 236 MB, 1/4 59 MB (+ 20 MB of smaller levels).
        let (w, h) = (25167, 12483);
        assert_eq!(
            ReducedPyramid::base_shift(w, h, Layout::Rgb, 128 << 20),
            Some(2)
        );
        assert_eq!(
            ReducedPyramid::base_shift(w, h, Layout::Rgb, 512 << 20),
            Some(1)
        );
        assert_eq!(
            ReducedPyramid::base_shift(w, h, Layout::Rgb, 32 << 20),
            Some(3)
        );
        assert_eq!(ReducedPyramid::base_shift(w, h, Layout::Rgb, 0), None);
        for max in [1u64 << 20, 64 << 20, 300 << 20] {
            let shift = ReducedPyramid::base_shift(w, h, Layout::Rgba, max).unwrap();
            assert!(ReducedPyramid::bytes_from(w, h, Layout::Rgba, shift) <= max);
            assert!(shift == 1 || ReducedPyramid::bytes_from(w, h, Layout::Rgba, shift - 1) > max);
        }
    }

    #[test]
    fn stored_pyramids_come_back_the_same_and_damaged_ones_are_errors() {
        let p = ReducedPyramid::from_full(&gradient(3001, 1001), 1, Budget::default()).unwrap();
        let bytes = p.to_bytes();
        let back = ReducedPyramid::from_bytes(&bytes, Budget::default()).unwrap();
        assert_eq!((back.width(), back.height()), (3001, 1001));
        assert_eq!(back.level_sizes(), p.level_sizes());
        for i in 0..p.level_sizes().len() {
            assert_eq!(back.level(i).unwrap().data(), p.level(i).unwrap().data());
        }
        assert_eq!(
            back.level_for(0.25).unwrap().0,
            p.level_for(0.25).unwrap().0
        );
        // Every truncation, a flipped header byte, a trailing byte, an over-budget level.
        for cut in (0..bytes.len()).step_by(4099).chain([bytes.len() - 1]) {
            assert!(ReducedPyramid::from_bytes(&bytes[..cut], Budget::default()).is_err());
        }
        for at in 0..48 {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(
                ReducedPyramid::from_bytes(&bad, Budget::default()).is_err(),
                "byte {at}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(ReducedPyramid::from_bytes(&longer, Budget::default()).is_err());
        assert!(ReducedPyramid::from_bytes(&bytes, Budget::new(1000)).is_err());
    }

    #[test]
    fn a_base_of_the_wrong_size_is_an_error() {
        let base = gradient(100, 100);
        assert!(ReducedPyramid::from_base(1000, 1000, 1, base, Budget::default()).is_err());
        let base = gradient(501, 500);
        assert!(ReducedPyramid::from_base(1000, 1000, 1, base, Budget::default()).is_ok());
    }
}

/// The examples that stood in the doc comments of these crate-private items.
#[cfg(test)]
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    #[test]
    fn doc_reduced_12() {
        use crate::flat::reduced::ReducedPyramid;
        use crate::pixels::{Budget, Layout, Pixels};

        // A 4000x3000 RGB image in at most 8 MB of levels: the largest level is 1/4 (1000x750).
        let shift = ReducedPyramid::base_shift(4000, 3000, Layout::Rgb, 8 << 20).unwrap();
        assert_eq!(shift, 2);
        let base = Pixels::try_new(1000, 750, Layout::Rgb, Budget::default()).unwrap();
        let p = ReducedPyramid::from_base(4000, 3000, shift, base, Budget::default()).unwrap();
        assert_eq!(p.level_sizes(), vec![(1000, 750), (500, 375), (250, 188)]);
        // A quarter-size request reads level 0 (1/4); an eighth, level 1; a half: not covered.
        assert_eq!(p.level_for(0.25).map(|(i, _)| i), Some(0));
        assert_eq!(p.level_for(0.125).map(|(i, _)| i), Some(1));
        assert!(p.level_for(0.5).is_none());
    }

    #[test]
    fn doc_reducedpyramid_from_full_126() {
        use crate::flat::reduced::ReducedPyramid;
        use crate::pixels::{Budget, Layout, Pixels};
        let full = Pixels::try_new(1200, 800, Layout::Gray, Budget::default()).unwrap();
        let p = ReducedPyramid::from_full(&full, 1, Budget::default()).unwrap();
        assert_eq!(p.level_sizes()[0], (600, 400));
    }

    #[test]
    fn doc_reducedpyramid_level_rect_204() {
        use crate::flat::reduced::ReducedPyramid;
        use crate::pixels::{Budget, Layout, Pixels, Rect};
        let full = Pixels::try_new(1200, 800, Layout::Gray, Budget::default()).unwrap();
        let p = ReducedPyramid::from_full(&full, 2, Budget::default()).unwrap();
        assert_eq!(
            p.level_rect(0, Rect::new(400, 0, 800, 400)),
            Rect::new(100, 0, 200, 100)
        );
        assert_eq!(
            p.level_rect(0, Rect::new(1, 1, 2, 2)),
            Rect::new(0, 0, 1, 1)
        );
    }

    #[test]
    fn doc_reducedpyramid_to_bytes_225() {
        use crate::flat::reduced::ReducedPyramid;
        use crate::pixels::{Budget, Layout, Pixels};
        let full = Pixels::try_new(1200, 800, Layout::Gray, Budget::default()).unwrap();
        let p = ReducedPyramid::from_full(&full, 1, Budget::default()).unwrap();
        let back = ReducedPyramid::from_bytes(&p.to_bytes(), Budget::default()).unwrap();
        assert_eq!(back.level_sizes(), p.level_sizes());
    }

    #[test]
    fn doc_reducedpyramid_stored_size_261() {
        use crate::flat::reduced::ReducedPyramid;
        use crate::pixels::{Budget, Layout, Pixels};
        let full = Pixels::try_new(1200, 800, Layout::Gray, Budget::default()).unwrap();
        let p = ReducedPyramid::from_full(&full, 1, Budget::default()).unwrap();
        assert_eq!(
            ReducedPyramid::stored_size(&p.to_bytes()),
            Some((1200, 800, 1))
        );
        assert_eq!(ReducedPyramid::stored_size(b"junk"), None);
    }
}
