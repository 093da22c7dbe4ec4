//! One 8-bit pixel buffer, the currency between decoders, operations and encoders.
//!
//! Every buffer is allocated through [`Pixels::try_new`] (or [`Pixels::from_vec`]), which
//! checks the size against a [`Budget`] with overflow-checked arithmetic *before* any memory is
//! reserved, and reserves fallibly. That is how a decompression bomb becomes an error response
//! instead of an out-of-memory abort.

use crate::Error;

/// The channels of a [`Pixels`] buffer, 8 bits each, interleaved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// One channel: luma.
    Gray,
    /// Luma and alpha.
    GrayAlpha,
    /// Red, green, blue.
    Rgb,
    /// Red, green, blue, alpha (not premultiplied).
    Rgba,
}

impl Layout {
    /// Bytes per pixel.
    pub const fn channels(self) -> usize {
        match self {
            Layout::Gray => 1,
            Layout::GrayAlpha => 2,
            Layout::Rgb => 3,
            Layout::Rgba => 4,
        }
    }

    /// Whether the last channel is alpha.
    pub const fn has_alpha(self) -> bool {
        matches!(self, Layout::GrayAlpha | Layout::Rgba)
    }

    /// Whether the colour channels are a single luma channel.
    pub const fn is_gray(self) -> bool {
        matches!(self, Layout::Gray | Layout::GrayAlpha)
    }

    /// The same colour model with an alpha channel added.
    pub const fn with_alpha(self) -> Layout {
        match self {
            Layout::Gray | Layout::GrayAlpha => Layout::GrayAlpha,
            Layout::Rgb | Layout::Rgba => Layout::Rgba,
        }
    }

    /// The same colour model without alpha.
    pub const fn without_alpha(self) -> Layout {
        match self {
            Layout::Gray | Layout::GrayAlpha => Layout::Gray,
            Layout::Rgb | Layout::Rgba => Layout::Rgb,
        }
    }
}

/// The most bytes one pixel buffer may take. Checked before allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    max_bytes: u64,
}

impl Budget {
    /// Create a new [`Budget`] of `max_bytes` bytes per buffer.
    pub const fn new(max_bytes: u64) -> Self {
        Self { max_bytes }
    }

    /// The byte limit.
    pub const fn max_bytes(self) -> u64 {
        self.max_bytes
    }

    /// The size in bytes of a `width` x `height` buffer, or an error when it is over budget.
    pub fn check(self, width: u32, height: u32, layout: Layout) -> Result<usize, Error> {
        let bytes = u64::from(width)
            .checked_mul(u64::from(height))
            .and_then(|px| px.checked_mul(layout.channels() as u64))
            .filter(|&b| b <= self.max_bytes)
            .and_then(|b| usize::try_from(b).ok());
        bytes.ok_or_else(|| {
            Error::source(format!(
                "a {width}x{height} image is larger than the memory budget of {} MiB",
                self.max_bytes >> 20
            ))
        })
    }
}

impl Default for Budget {
    /// 1 GiB per buffer.
    fn default() -> Self {
        Self::new(1 << 30)
    }
}

/// An 8-bit interleaved pixel buffer: `width * height * layout.channels()` bytes, rows top to
/// bottom, no padding.
///
#[derive(Clone, PartialEq, Eq)]
pub struct Pixels {
    width: u32,
    height: u32,
    layout: Layout,
    data: Vec<u8>,
}

impl std::fmt::Debug for Pixels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pixels")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl Pixels {
    /// A zero-filled buffer, checked against `budget` and reserved fallibly.
    pub fn try_new(width: u32, height: u32, layout: Layout, budget: Budget) -> Result<Self, Error> {
        let len = budget.check(width, height, layout)?;
        let mut data = Vec::new();
        data.try_reserve_exact(len)
            .map_err(|_| Error::source(format!("cannot allocate {len} bytes for the image")))?;
        data.resize(len, 0);
        Ok(Self {
            width,
            height,
            layout,
            data,
        })
    }

    /// Wrap an existing buffer; its length must be exactly `width * height * channels`.
    pub fn from_vec(width: u32, height: u32, layout: Layout, data: Vec<u8>) -> Result<Self, Error> {
        let expected = (width as usize)
            .checked_mul(height as usize)
            .and_then(|px| px.checked_mul(layout.channels()));
        if expected != Some(data.len()) || width == 0 || height == 0 {
            return Err(Error::source(format!(
                "pixel buffer of {} bytes does not match {width}x{height} {layout:?}",
                data.len()
            )));
        }
        Ok(Self {
            width,
            height,
            layout,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The channel layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The interleaved bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The interleaved bytes, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Take the bytes out.
    pub fn into_vec(self) -> Vec<u8> {
        self.data
    }

    /// Bytes per row.
    pub fn stride(&self) -> usize {
        self.width as usize * self.layout.channels()
    }

    /// The pixel at (x, y) as a slice of `channels()` bytes. Panics when out of bounds; meant for
    /// tests and examples, not hot loops.
    pub fn pixel(&self, x: u32, y: u32) -> &[u8] {
        let c = self.layout.channels();
        let i = y as usize * self.stride() + x as usize * c;
        &self.data[i..i + c]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_rejects_overflow_and_excess_before_allocating() {
        let b = Budget::new(u64::MAX);
        // u32::MAX^2 * 4 overflows u64: must be an error, not a wrap.
        assert!(b.check(u32::MAX, u32::MAX, Layout::Rgba).is_err());
        let small = Budget::new(99);
        assert!(Pixels::try_new(10, 10, Layout::Gray, small).is_err());
        assert!(Pixels::try_new(9, 11, Layout::Gray, small).is_ok());
    }

    #[test]
    fn from_vec_rejects_zero_sizes() {
        assert!(Pixels::from_vec(0, 1, Layout::Gray, vec![]).is_err());
    }
}

/// A rectangle of pixels: left, top, width, height.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

impl Rect {
    /// Create a new [`Rect`].
    pub const fn new(x: u32, y: u32, w: u32, h: u32) -> Self {
        Self { x, y, w, h }
    }

    /// One past the right edge.
    pub const fn right(self) -> u32 {
        self.x + self.w
    }

    /// One past the bottom edge.
    pub const fn bottom(self) -> u32 {
        self.y + self.h
    }

    /// This rectangle of a full image in the pixels of a copy `dx` x `dy` times smaller
    /// (a pyramid level, a DCT-scaled decode): widened to whole pixels, kept inside the
    /// copy's `width` x `height`, never empty.
    pub fn scaled_cover(self, dx: f64, dy: f64, (width, height): (u32, u32)) -> Rect {
        let (w, h) = (width.max(1), height.max(1));
        let x0 = ((f64::from(self.x) / dx).floor() as u32).min(w - 1);
        let y0 = ((f64::from(self.y) / dy).floor() as u32).min(h - 1);
        let x1 = ((f64::from(self.right()) / dx).ceil() as u32).clamp(x0 + 1, w);
        let y1 = ((f64::from(self.bottom()) / dy).ceil() as u32).clamp(y0 + 1, h);
        Rect::new(x0, y0, x1 - x0, y1 - y0)
    }
}

/// The examples that stood in the doc comments of these crate-private items.
#[cfg(test)]
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    #[test]
    fn doc_pixels_10() {
        use crate::pixels::{Budget, Layout, Pixels};

        let budget = Budget::new(1 << 20);
        let px = Pixels::try_new(16, 8, Layout::Rgb, budget).unwrap();
        assert_eq!(px.data().len(), 16 * 8 * 3);
        assert!(Pixels::try_new(100_000, 100_000, Layout::Rgba, budget).is_err());
    }

    #[test]
    fn doc_layout_channels_37() {
        assert_eq!(crate::pixels::Layout::Rgba.channels(), 4);
    }

    #[test]
    fn doc_layout_has_alpha_51() {
        assert!(crate::pixels::Layout::GrayAlpha.has_alpha());
    }

    #[test]
    fn doc_layout_is_gray_60() {
        assert!(crate::pixels::Layout::Gray.is_gray());
    }

    #[test]
    fn doc_layout_with_alpha_69() {
        use crate::pixels::Layout;
        assert_eq!(Layout::Rgb.with_alpha(), Layout::Rgba);
    }

    #[test]
    fn doc_layout_without_alpha_82() {
        use crate::pixels::Layout;
        assert_eq!(Layout::GrayAlpha.without_alpha(), Layout::Gray);
    }

    #[test]
    fn doc_budget_96() {
        use crate::pixels::{Budget, Layout};
        let b = Budget::new(300);
        assert!(b.check(10, 10, Layout::Rgb).is_ok());
        assert!(b.check(10, 11, Layout::Rgb).is_err());
    }

    #[test]
    fn doc_budget_new_110() {
        assert_eq!(crate::pixels::Budget::new(64).max_bytes(), 64);
    }

    #[test]
    fn doc_budget_max_bytes_119() {
        assert_eq!(crate::pixels::Budget::default().max_bytes(), 1 << 30);
    }

    #[test]
    fn doc_budget_check_128() {
        use crate::pixels::{Budget, Layout};
        assert_eq!(Budget::new(1000).check(10, 10, Layout::Gray).unwrap(), 100);
    }

    #[test]
    fn doc_pixels_try_new_179() {
        use crate::pixels::{Budget, Layout, Pixels};
        let px = Pixels::try_new(2, 2, Layout::Gray, Budget::default()).unwrap();
        assert_eq!(px.data(), &[0, 0, 0, 0]);
    }

    #[test]
    fn doc_pixels_from_vec_200() {
        use crate::pixels::{Layout, Pixels};
        assert!(Pixels::from_vec(1, 1, Layout::Rgb, vec![1, 2, 3]).is_ok());
        assert!(Pixels::from_vec(1, 1, Layout::Rgb, vec![1, 2]).is_err());
    }

    #[test]
    fn doc_pixels_width_225() {
        use crate::pixels::*;
        assert_eq!(
            Pixels::try_new(3, 2, Layout::Gray, Budget::default())
                .unwrap()
                .width(),
            3
        );
    }

    #[test]
    fn doc_pixels_height_235() {
        use crate::pixels::*;
        assert_eq!(
            Pixels::try_new(3, 2, Layout::Gray, Budget::default())
                .unwrap()
                .height(),
            2
        );
    }

    #[test]
    fn doc_pixels_layout_245() {
        use crate::pixels::*;
        assert_eq!(
            Pixels::try_new(1, 1, Layout::Rgba, Budget::default())
                .unwrap()
                .layout(),
            Layout::Rgba
        );
    }

    #[test]
    fn doc_pixels_data_255() {
        use crate::pixels::*;
        assert_eq!(
            Pixels::from_vec(1, 1, Layout::Gray, vec![7])
                .unwrap()
                .data(),
            &[7]
        );
    }

    #[test]
    fn doc_pixels_data_mut_265() {
        use crate::pixels::*;
        let mut px = Pixels::from_vec(1, 1, Layout::Gray, vec![7]).unwrap();
        px.data_mut()[0] = 9;
        assert_eq!(px.data(), &[9]);
    }

    #[test]
    fn doc_pixels_into_vec_277() {
        use crate::pixels::*;
        assert_eq!(
            Pixels::from_vec(1, 1, Layout::Gray, vec![7])
                .unwrap()
                .into_vec(),
            vec![7]
        );
    }

    #[test]
    fn doc_pixels_stride_287() {
        use crate::pixels::*;
        assert_eq!(
            Pixels::try_new(5, 1, Layout::Rgb, Budget::default())
                .unwrap()
                .stride(),
            15
        );
    }

    #[test]
    fn doc_pixels_pixel_298() {
        use crate::pixels::*;
        let px = Pixels::from_vec(2, 1, Layout::Gray, vec![1, 2]).unwrap();
        assert_eq!(px.pixel(1, 0), &[2]);
    }

    #[test]
    fn doc_rect_332() {
        use crate::pixels::Rect;
        let r = Rect::new(10, 20, 30, 40);
        assert_eq!((r.right(), r.bottom()), (40, 60));
    }

    #[test]
    fn doc_rect_new_352() {
        assert_eq!(crate::pixels::Rect::new(1, 2, 3, 4).w, 3);
    }

    #[test]
    fn doc_rect_right_361() {
        assert_eq!(crate::pixels::Rect::new(1, 2, 3, 4).right(), 4);
    }

    #[test]
    fn doc_rect_bottom_370() {
        assert_eq!(crate::pixels::Rect::new(1, 2, 3, 4).bottom(), 6);
    }

    #[test]
    fn doc_rect_scaled_cover_381() {
        use crate::pixels::Rect;
        let r = Rect::new(400, 0, 800, 400);
        assert_eq!(
            r.scaled_cover(4.0, 4.0, (300, 200)),
            Rect::new(100, 0, 200, 100)
        );
        assert_eq!(
            Rect::new(1, 1, 2, 2).scaled_cover(4.0, 4.0, (300, 200)),
            Rect::new(0, 0, 1, 1)
        );
        assert_eq!(
            Rect::new(1190, 0, 10, 10).scaled_cover(4.0, 4.0, (298, 200)),
            Rect::new(297, 0, 1, 3)
        );
    }
}
