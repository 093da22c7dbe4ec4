//! Region extraction and scaling in one pass.

use fast_image_resize::images::{CroppedImage, Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::Error;
use crate::pixels::{Budget, Layout, Pixels, Rect};

/// The resampling filter: sharp enough for downscales, smooth enough for upscales.
const FILTER: FilterType = FilterType::CatmullRom;

/// Extract `region` from `src` and scale it to `width` x `height`, in one pass.
///
/// `region` must lie inside the image (the caller clips it); otherwise, or when the output size
/// is zero, this is an internal error. When the output size equals the region size the pixels are
/// copied exactly, without resampling. Otherwise the region is resampled with a Catmull-Rom
/// filter; only pixels of the region contribute, so the region's edges do not pick up colour
/// from outside it. Layouts with alpha are resized premultiplied, so fully transparent pixels
/// do not bleed their colour into their neighbours.
///
/// The output buffer is allocated against `budget`.
pub fn crop_resize(
    src: &Pixels,
    region: Rect,
    width: u32,
    height: u32,
    budget: Budget,
) -> Result<Pixels, Error> {
    check_region(src, region)?;
    if width == 0 || height == 0 {
        return Err(Error::internal(format!(
            "crop_resize: cannot scale to {width}x{height}"
        )));
    }
    if width == region.w && height == region.h {
        return copy_region(src, region, budget);
    }

    let layout = src.layout();
    let pixel_type = pixel_type(layout);
    let dst = Pixels::try_new(width, height, layout, budget)?;
    let mut dst =
        Image::from_vec_u8(width, height, dst.into_vec(), pixel_type).map_err(resize_error)?;
    let whole =
        ImageRef::new(src.width(), src.height(), src.data(), pixel_type).map_err(resize_error)?;
    // A view of the region only: the resizer then never reads (or, for alpha layouts,
    // premultiplies into a scratch buffer) anything outside it.
    let view =
        CroppedImage::new(&whole, region.x, region.y, region.w, region.h).map_err(resize_error)?;
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FILTER))
        .use_alpha(layout.has_alpha());
    let mut resizer = Resizer::new();
    resizer
        .resize(&view, &mut dst, &options)
        .map_err(resize_error)?;
    Pixels::from_vec(width, height, layout, dst.into_vec())
}

/// The fast_image_resize pixel type of a layout.
fn pixel_type(layout: Layout) -> PixelType {
    match layout {
        Layout::Gray => PixelType::U8,
        Layout::GrayAlpha => PixelType::U8x2,
        Layout::Rgb => PixelType::U8x3,
        Layout::Rgba => PixelType::U8x4,
    }
}

fn resize_error(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("resize: {e}"))
}

/// An error unless `region` is non-empty and inside `src`.
fn check_region(src: &Pixels, region: Rect) -> Result<(), Error> {
    let inside = region.w > 0
        && region.h > 0
        && region
            .x
            .checked_add(region.w)
            .is_some_and(|right| right <= src.width())
        && region
            .y
            .checked_add(region.h)
            .is_some_and(|bottom| bottom <= src.height());
    if inside {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "crop_resize: region {},{},{},{} is not inside the {}x{} image",
            region.x,
            region.y,
            region.w,
            region.h,
            src.width(),
            src.height()
        )))
    }
}

/// The pixels of `region` (already checked to be inside `src`), unchanged.
fn copy_region(src: &Pixels, region: Rect, budget: Budget) -> Result<Pixels, Error> {
    let layout = src.layout();
    let c = layout.channels();
    let mut out = Pixels::try_new(region.w, region.h, layout, budget)?;
    let row_len = out.stride();
    let src_stride = src.stride();
    let start = region.y as usize * src_stride + region.x as usize * c;
    // Each chunk starts at the region's left edge in one source row; the last one may be shorter
    // than a full stride but always holds the region's row.
    let src_rows = src.data()[start..].chunks(src_stride);
    for (dst_row, src_row) in out.data_mut().chunks_exact_mut(row_len).zip(src_rows) {
        dst_row.copy_from_slice(&src_row[..row_len]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RED: [u8; 3] = [255, 0, 0];
    const GREEN: [u8; 3] = [0, 255, 0];
    const BLUE: [u8; 3] = [0, 0, 255];
    const WHITE: [u8; 3] = [255, 255, 255];

    /// A `size` x `size` image of four solid quadrants: red, green / blue, white.
    fn quadrants(size: u32, layout: Layout) -> Pixels {
        let half = size / 2;
        let mut data = Vec::new();
        for y in 0..size {
            for x in 0..size {
                let rgb = match (x < half, y < half) {
                    (true, true) => RED,
                    (false, true) => GREEN,
                    (true, false) => BLUE,
                    (false, false) => WHITE,
                };
                push_pixel(&mut data, rgb, 255, layout);
            }
        }
        Pixels::from_vec(size, size, layout, data).unwrap()
    }

    fn push_pixel(data: &mut Vec<u8>, rgb: [u8; 3], alpha: u8, layout: Layout) {
        let gray =
            ((299 * u32::from(rgb[0]) + 587 * u32::from(rgb[1]) + 114 * u32::from(rgb[2]) + 500)
                / 1000) as u8;
        match layout {
            Layout::Gray => data.push(gray),
            Layout::GrayAlpha => data.extend_from_slice(&[gray, alpha]),
            Layout::Rgb => data.extend_from_slice(&rgb),
            Layout::Rgba => data.extend_from_slice(&[rgb[0], rgb[1], rgb[2], alpha]),
        }
    }

    fn expected(rgb: [u8; 3], layout: Layout) -> Vec<u8> {
        let mut v = Vec::new();
        push_pixel(&mut v, rgb, 255, layout);
        v
    }

    fn assert_close(actual: &[u8], expected: &[u8], tolerance: u8, what: &str) {
        assert_eq!(actual.len(), expected.len(), "{what}");
        for (a, e) in actual.iter().zip(expected) {
            assert!(
                a.abs_diff(*e) <= tolerance,
                "{what}: {actual:?} != {expected:?}"
            );
        }
    }

    const LAYOUTS: [Layout; 4] = [Layout::Gray, Layout::GrayAlpha, Layout::Rgb, Layout::Rgba];

    #[test]
    fn downscale_keeps_quadrant_colours() {
        for layout in LAYOUTS {
            let px = quadrants(100, layout);
            let out =
                crop_resize(&px, Rect::new(0, 0, 100, 100), 50, 50, Budget::default()).unwrap();
            assert_eq!((out.width(), out.height(), out.layout()), (50, 50, layout));
            for (x, y, rgb) in [
                (12, 12, RED),
                (37, 12, GREEN),
                (12, 37, BLUE),
                (37, 37, WHITE),
            ] {
                assert_close(
                    out.pixel(x, y),
                    &expected(rgb, layout),
                    2,
                    &format!("{layout:?} at {x},{y}"),
                );
            }
        }
    }

    #[test]
    fn upscale_keeps_quadrant_colours() {
        let px = quadrants(10, Layout::Rgb);
        let out = crop_resize(&px, Rect::new(0, 0, 10, 10), 40, 40, Budget::default()).unwrap();
        assert_eq!((out.width(), out.height()), (40, 40));
        assert_close(out.pixel(5, 5), &RED, 2, "top left");
        assert_close(out.pixel(34, 34), &WHITE, 2, "bottom right");
    }

    #[test]
    fn identity_size_is_an_exact_copy() {
        for layout in LAYOUTS {
            let c = layout.channels();
            let (w, h) = (20u32, 15u32);
            let data: Vec<u8> = (0..w as usize * h as usize * c)
                .map(|i| (i * 7 % 251) as u8)
                .collect();
            let px = Pixels::from_vec(w, h, layout, data).unwrap();
            let region = Rect::new(3, 4, 10, 11);
            let out = crop_resize(&px, region, 10, 11, Budget::default()).unwrap();
            assert_eq!((out.width(), out.height()), (10, 11));
            for y in 0..11 {
                for x in 0..10 {
                    assert_eq!(
                        out.pixel(x, y),
                        px.pixel(x + 3, y + 4),
                        "{layout:?} {x},{y}"
                    );
                }
            }
            // The whole image, and a region touching the bottom-right corner.
            assert_eq!(
                crop_resize(&px, Rect::new(0, 0, w, h), w, h, Budget::default()).unwrap(),
                px
            );
            let corner =
                crop_resize(&px, Rect::new(19, 14, 1, 1), 1, 1, Budget::default()).unwrap();
            assert_eq!(corner.data(), px.pixel(19, 14));
        }
    }

    #[test]
    fn region_is_not_mixed_with_its_surroundings() {
        for layout in LAYOUTS {
            let px = quadrants(100, layout);
            let out =
                crop_resize(&px, Rect::new(50, 0, 50, 50), 25, 25, Budget::default()).unwrap();
            assert_eq!((out.width(), out.height()), (25, 25));
            let green = expected(GREEN, layout);
            for (i, p) in out.data().chunks_exact(layout.channels()).enumerate() {
                assert_close(p, &green, 2, &format!("{layout:?} pixel {i}"));
            }
        }
    }

    #[test]
    fn transparent_pixels_do_not_bleed() {
        // Left half opaque red, right half fully transparent green.
        let mut data = Vec::new();
        for _ in 0..16 {
            for x in 0..16 {
                if x < 8 {
                    data.extend_from_slice(&[255, 0, 0, 255]);
                } else {
                    data.extend_from_slice(&[0, 255, 0, 0]);
                }
            }
        }
        let px = Pixels::from_vec(16, 16, Layout::Rgba, data).unwrap();
        let out = crop_resize(&px, Rect::new(0, 0, 16, 16), 5, 5, Budget::default()).unwrap();
        for p in out.data().chunks_exact(4) {
            if p[3] > 0 {
                assert!(p[0] >= 250 && p[1] <= 2, "{p:?}");
            }
        }
        assert!(out.pixel(0, 2)[3] >= 253);
        assert!(out.pixel(4, 2)[3] <= 2);
    }

    #[test]
    fn regions_outside_the_image_and_empty_sizes_are_errors() {
        let px = quadrants(10, Layout::Rgb);
        let b = Budget::default();
        assert!(crop_resize(&px, Rect::new(5, 5, 6, 5), 6, 5, b).is_err());
        assert!(crop_resize(&px, Rect::new(10, 0, 1, 1), 1, 1, b).is_err());
        assert!(crop_resize(&px, Rect::new(u32::MAX, 0, 2, 1), 1, 1, b).is_err());
        assert!(crop_resize(&px, Rect::new(0, 0, 0, 5), 1, 1, b).is_err());
        assert!(crop_resize(&px, Rect::new(0, 0, 10, 10), 0, 5, b).is_err());
    }

    #[test]
    fn small_budget_is_an_error() {
        let px = quadrants(10, Layout::Rgba);
        let tiny = Budget::new(100);
        // 20x20 RGBA is 1600 bytes.
        assert!(crop_resize(&px, Rect::new(0, 0, 10, 10), 20, 20, tiny).is_err());
        // The exact-copy path is budgeted too: 10x10 RGBA is 400 bytes.
        assert!(crop_resize(&px, Rect::new(0, 0, 10, 10), 10, 10, tiny).is_err());
        // 5x5 RGBA is exactly 100 bytes.
        assert!(crop_resize(&px, Rect::new(0, 0, 10, 10), 5, 5, tiny).is_ok());
    }
}

/// The examples that stood in the doc comments of these crate-private items.
#[cfg(test)]
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    #[test]
    fn doc_resize_crop_resize_23() {
        use crate::ops::crop_resize;
        use crate::pixels::{Budget, Layout, Pixels, Rect};

        // An 8x8 gray ramp: the value of each pixel is its x coordinate times 10.
        let data: Vec<u8> = (0..8).flat_map(|_| (0..8).map(|x| x * 10)).collect();
        let px = Pixels::from_vec(8, 8, Layout::Gray, data).unwrap();

        // Exact copy of a region.
        let part = crop_resize(&px, Rect::new(2, 1, 3, 4), 3, 4, Budget::default()).unwrap();
        assert_eq!((part.width(), part.height()), (3, 4));
        assert_eq!(part.pixel(0, 0), &[20]);

        // Scaled down.
        let small = crop_resize(&px, Rect::new(0, 0, 8, 8), 4, 2, Budget::default()).unwrap();
        assert_eq!((small.width(), small.height()), (4, 2));

        // A region outside the image is refused.
        assert!(crop_resize(&px, Rect::new(4, 4, 5, 1), 5, 1, Budget::default()).is_err());
    }
}
