//! Quality conversions (gray, bitonal, color) and alpha flattening.

use crate::Error;
use crate::pixels::{Layout, Pixels};

/// Rec. 601 luma, rounded, in integers.
#[inline]
fn luma(r: u8, g: u8, b: u8) -> u8 {
    // At most (299 + 587 + 114) * 255 + 500 = 255_500, so the quotient fits in a u8.
    ((299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b) + 500) / 1000) as u8
}

/// `colour` with coverage `alpha` over an opaque `background`, rounded.
#[inline]
fn over(colour: u8, alpha: u8, background: u8) -> u8 {
    let a = u32::from(alpha);
    ((u32::from(colour) * a + u32::from(background) * (255 - a) + 127) / 255) as u8
}

/// A zero-filled buffer of `pixels * channels` bytes, reserved fallibly and exactly.
fn alloc(pixels: usize, channels: usize) -> Result<Vec<u8>, Error> {
    let len = pixels
        .checked_mul(channels)
        .ok_or_else(|| Error::source("the image is too large to convert"))?;
    let mut data = Vec::new();
    data.try_reserve_exact(len)
        .map_err(|_| Error::source(format!("cannot allocate {len} bytes for the image")))?;
    data.resize(len, 0);
    Ok(data)
}

/// The number of pixels of `px`.
fn pixel_count(px: &Pixels) -> usize {
    px.data().len() / px.layout().channels()
}

/// Convert to gray with Rec. 601 luma, `(299 R + 587 G + 114 B + 500) / 1000`.
///
/// [`Layout::Rgb`] becomes [`Layout::Gray`] and [`Layout::Rgba`] becomes
/// [`Layout::GrayAlpha`] (alpha kept); gray layouts are returned unchanged.
pub(crate) fn to_gray(px: Pixels) -> Result<Pixels, Error> {
    let (w, h) = (px.width(), px.height());
    match px.layout() {
        Layout::Gray | Layout::GrayAlpha => Ok(px),
        Layout::Rgb => {
            let mut out = alloc(pixel_count(&px), 1)?;
            for (o, p) in out.iter_mut().zip(px.data().chunks_exact(3)) {
                *o = luma(p[0], p[1], p[2]);
            }
            Pixels::from_vec(w, h, Layout::Gray, out)
        }
        Layout::Rgba => {
            let mut out = alloc(pixel_count(&px), 2)?;
            for (o, p) in out.chunks_exact_mut(2).zip(px.data().chunks_exact(4)) {
                o[0] = luma(p[0], p[1], p[2]);
                o[1] = p[3];
            }
            Pixels::from_vec(w, h, Layout::GrayAlpha, out)
        }
    }
}

/// Convert to black and white: gray (see [`to_gray`]), then luma of 128 and above becomes
/// 255 and the rest 0. Alpha is kept as it is.
pub(crate) fn to_bitonal(px: Pixels) -> Result<Pixels, Error> {
    let mut px = to_gray(px)?;
    let c = px.layout().channels();
    for p in px.data_mut().chunks_exact_mut(c) {
        p[0] = if p[0] >= 128 { 255 } else { 0 };
    }
    Ok(px)
}

/// Convert to colour by replicating luma: [`Layout::Gray`] becomes [`Layout::Rgb`] and
/// [`Layout::GrayAlpha`] becomes [`Layout::Rgba`] (alpha kept); colour layouts are returned
/// unchanged.
pub(crate) fn to_color(px: Pixels) -> Result<Pixels, Error> {
    let (w, h) = (px.width(), px.height());
    match px.layout() {
        Layout::Rgb | Layout::Rgba => Ok(px),
        Layout::Gray => {
            let mut out = alloc(pixel_count(&px), 3)?;
            for (o, &v) in out.chunks_exact_mut(3).zip(px.data()) {
                o.fill(v);
            }
            Pixels::from_vec(w, h, Layout::Rgb, out)
        }
        Layout::GrayAlpha => {
            let mut out = alloc(pixel_count(&px), 4)?;
            for (o, p) in out.chunks_exact_mut(4).zip(px.data().chunks_exact(2)) {
                o[..3].fill(p[0]);
                o[3] = p[1];
            }
            Pixels::from_vec(w, h, Layout::Rgba, out)
        }
    }
}

/// Composite onto an opaque `background` colour and drop the alpha channel.
///
/// [`Layout::Rgba`] becomes [`Layout::Rgb`]; [`Layout::GrayAlpha`] becomes [`Layout::Gray`],
/// composited onto the background's luma. Each channel is
/// `(c * a + bg * (255 - a) + 127) / 255`. Layouts without alpha are returned unchanged.
pub(crate) fn flatten_alpha(px: Pixels, background: [u8; 3]) -> Result<Pixels, Error> {
    let (w, h) = (px.width(), px.height());
    match px.layout() {
        Layout::Gray | Layout::Rgb => Ok(px),
        Layout::Rgba => {
            let mut out = alloc(pixel_count(&px), 3)?;
            for (dst, p) in out.chunks_exact_mut(3).zip(px.data().chunks_exact(4)) {
                let a = p[3];
                for ((o, &c), &bg) in dst.iter_mut().zip(&p[..3]).zip(&background) {
                    *o = over(c, a, bg);
                }
            }
            Pixels::from_vec(w, h, Layout::Rgb, out)
        }
        Layout::GrayAlpha => {
            let bg = luma(background[0], background[1], background[2]);
            let mut out = alloc(pixel_count(&px), 1)?;
            for (o, p) in out.iter_mut().zip(px.data().chunks_exact(2)) {
                *o = over(p[0], p[1], bg);
            }
            Pixels::from_vec(w, h, Layout::Gray, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(layout: Layout, pixel: &[u8]) -> Pixels {
        Pixels::from_vec(1, 1, layout, pixel.to_vec()).unwrap()
    }

    #[test]
    fn luma_of_primaries() {
        assert_eq!(luma(255, 0, 0), 76);
        assert_eq!(luma(0, 255, 0), 150);
        assert_eq!(luma(0, 0, 255), 29);
        assert_eq!(luma(255, 255, 255), 255);
        assert_eq!(luma(0, 0, 0), 0);
    }

    #[test]
    fn gray_in_every_layout() {
        let red = to_gray(one(Layout::Rgb, &[255, 0, 0])).unwrap();
        assert_eq!((red.layout(), red.data()), (Layout::Gray, &[76][..]));
        let red = to_gray(one(Layout::Rgba, &[255, 0, 0, 128])).unwrap();
        assert_eq!(
            (red.layout(), red.data()),
            (Layout::GrayAlpha, &[76, 128][..])
        );
        let gray = one(Layout::Gray, &[42]);
        assert_eq!(to_gray(gray.clone()).unwrap(), gray);
        let gray_alpha = one(Layout::GrayAlpha, &[42, 9]);
        assert_eq!(to_gray(gray_alpha.clone()).unwrap(), gray_alpha);

        // A larger image keeps its size and converts every pixel.
        let data: Vec<u8> = [10, 20, 30].repeat(6);
        let px = Pixels::from_vec(3, 2, Layout::Rgb, data).unwrap();
        let gray = to_gray(px).unwrap();
        assert_eq!((gray.width(), gray.height()), (3, 2));
        assert_eq!(gray.data(), &[18; 6]);
    }

    #[test]
    fn bitonal_thresholds_luma() {
        let white = to_bitonal(one(Layout::Rgb, &[200, 200, 200])).unwrap();
        assert_eq!((white.layout(), white.data()), (Layout::Gray, &[255][..]));
        let black = to_bitonal(one(Layout::Rgb, &[50, 50, 50])).unwrap();
        assert_eq!(black.data(), &[0]);
        // 128 is the threshold.
        assert_eq!(
            to_bitonal(one(Layout::Gray, &[128])).unwrap().data(),
            &[255]
        );
        assert_eq!(to_bitonal(one(Layout::Gray, &[127])).unwrap().data(), &[0]);
        // Alpha is kept.
        let ga = to_bitonal(one(Layout::GrayAlpha, &[200, 77])).unwrap();
        assert_eq!(
            (ga.layout(), ga.data()),
            (Layout::GrayAlpha, &[255, 77][..])
        );
        let rgba = to_bitonal(one(Layout::Rgba, &[50, 50, 50, 3])).unwrap();
        assert_eq!(
            (rgba.layout(), rgba.data()),
            (Layout::GrayAlpha, &[0, 3][..])
        );
    }

    #[test]
    fn color_replicates_luma() {
        let rgb = to_color(one(Layout::Gray, &[33])).unwrap();
        assert_eq!((rgb.layout(), rgb.data()), (Layout::Rgb, &[33, 33, 33][..]));
        let rgba = to_color(one(Layout::GrayAlpha, &[33, 44])).unwrap();
        assert_eq!(
            (rgba.layout(), rgba.data()),
            (Layout::Rgba, &[33, 33, 33, 44][..])
        );
        let px = one(Layout::Rgb, &[1, 2, 3]);
        assert_eq!(to_color(px.clone()).unwrap(), px);
        let px = one(Layout::Rgba, &[1, 2, 3, 4]);
        assert_eq!(to_color(px.clone()).unwrap(), px);

        let px = Pixels::from_vec(2, 2, Layout::Gray, vec![1, 2, 3, 4]).unwrap();
        let rgb = to_color(px).unwrap();
        assert_eq!((rgb.width(), rgb.height()), (2, 2));
        assert_eq!(rgb.data(), &[1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
    }

    #[test]
    fn flatten_composites_onto_the_background() {
        let white = [255, 255, 255];
        let clear = flatten_alpha(one(Layout::Rgba, &[255, 0, 0, 0]), white).unwrap();
        assert_eq!(
            (clear.layout(), clear.data()),
            (Layout::Rgb, &[255, 255, 255][..])
        );
        let opaque = flatten_alpha(one(Layout::Rgba, &[255, 0, 0, 255]), white).unwrap();
        assert_eq!(opaque.data(), &[255, 0, 0]);
        // Half transparent red over blue:
        // (255 * 128 + 127) / 255 = 128 and (255 * 127 + 127) / 255 = 127.
        let half = flatten_alpha(one(Layout::Rgba, &[255, 0, 0, 128]), [0, 0, 255]).unwrap();
        assert_eq!(half.data(), &[128, 0, 127]);

        // Gray with alpha uses the background's luma: red is 76.
        let ga = flatten_alpha(one(Layout::GrayAlpha, &[200, 0]), [255, 0, 0]).unwrap();
        assert_eq!((ga.layout(), ga.data()), (Layout::Gray, &[76][..]));
        let ga = flatten_alpha(one(Layout::GrayAlpha, &[200, 255]), [255, 0, 0]).unwrap();
        assert_eq!(ga.data(), &[200]);

        // No alpha: unchanged.
        let px = one(Layout::Rgb, &[1, 2, 3]);
        assert_eq!(flatten_alpha(px.clone(), white).unwrap(), px);
        let px = one(Layout::Gray, &[7]);
        assert_eq!(flatten_alpha(px.clone(), white).unwrap(), px);
    }
}

/// The examples that stood in the doc comments of these crate-private items.
#[cfg(test)]
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    #[test]
    fn doc_quality_to_gray_42() {
        use crate::ops::to_gray;
        use crate::pixels::{Layout, Pixels};

        let px = Pixels::from_vec(2, 1, Layout::Rgba, vec![255, 0, 0, 7, 0, 255, 0, 255]).unwrap();
        let gray = to_gray(px).unwrap();
        assert_eq!(gray.layout(), Layout::GrayAlpha);
        assert_eq!(gray.data(), &[76, 7, 150, 255]);
    }

    #[test]
    fn doc_quality_to_bitonal_76() {
        use crate::ops::to_bitonal;
        use crate::pixels::{Layout, Pixels};

        let px = Pixels::from_vec(2, 1, Layout::Rgb, vec![200, 200, 200, 50, 50, 50]).unwrap();
        let bw = to_bitonal(px).unwrap();
        assert_eq!(bw.layout(), Layout::Gray);
        assert_eq!(bw.data(), &[255, 0]);
    }

    #[test]
    fn doc_quality_to_color_98() {
        use crate::ops::to_color;
        use crate::pixels::{Layout, Pixels};

        let px = Pixels::from_vec(1, 1, Layout::GrayAlpha, vec![9, 200]).unwrap();
        let rgba = to_color(px).unwrap();
        assert_eq!(rgba.layout(), Layout::Rgba);
        assert_eq!(rgba.data(), &[9, 9, 9, 200]);
    }

    #[test]
    fn doc_quality_flatten_alpha_135() {
        use crate::ops::flatten_alpha;
        use crate::pixels::{Layout, Pixels};

        let px = Pixels::from_vec(2, 1, Layout::Rgba, vec![255, 0, 0, 0, 255, 0, 0, 255]).unwrap();
        let flat = flatten_alpha(px, [255, 255, 255]).unwrap();
        assert_eq!(flat.layout(), Layout::Rgb);
        assert_eq!(flat.data(), &[255, 255, 255, 255, 0, 0]);
    }
}
