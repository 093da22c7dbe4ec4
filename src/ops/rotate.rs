//! Mirroring and rotation.

use crate::Error;
use crate::pixels::{Budget, Pixels};

/// Flip `px` left to right, in place.
pub(crate) fn mirror(px: &mut Pixels) {
    let c = px.layout().channels();
    let stride = px.stride();
    if stride == 0 {
        return;
    }
    for row in px.data_mut().chunks_exact_mut(stride) {
        reverse_pixels(row, c);
    }
}

/// Reverse the order of the `c`-byte pixels in `buf`, keeping the channel order of each pixel.
fn reverse_pixels(buf: &mut [u8], c: usize) {
    buf.reverse();
    if c > 1 {
        for p in buf.chunks_exact_mut(c) {
            p.reverse();
        }
    }
}

/// Rotate `px` clockwise by `turns` quarter turns (taken modulo 4).
///
/// Zero turns returns the input and two turns work in place; one and three turns allocate a new
/// buffer, with width and height swapped, against `budget`. The result is exact: pixels are
/// moved, never resampled.
pub(crate) fn rotate_quarter_turns(px: Pixels, turns: u8, budget: Budget) -> Result<Pixels, Error> {
    match turns % 4 {
        0 => Ok(px),
        2 => {
            let mut px = px;
            let c = px.layout().channels();
            reverse_pixels(px.data_mut(), c);
            Ok(px)
        }
        t => rotate_90(&px, t == 1, budget),
    }
}

/// A quarter turn, clockwise or counter-clockwise, into a new buffer.
fn rotate_90(src: &Pixels, clockwise: bool, budget: Budget) -> Result<Pixels, Error> {
    let layout = src.layout();
    let c = layout.channels();
    let w = src.width() as usize;
    let mut out = Pixels::try_new(src.height(), src.width(), layout, budget)?;
    let in_stride = src.stride();
    let out_stride = out.stride();
    if in_stride == 0 || out_stride == 0 {
        return Ok(out);
    }
    let data = src.data();
    for (yd, row) in out.data_mut().chunks_exact_mut(out_stride).enumerate() {
        // Destination row `yd` is one source column, read bottom-up for a clockwise turn and
        // top-down for a counter-clockwise one. Each chunk starts at that column in one source
        // row; the last chunk may be shorter than a stride but always holds the pixel.
        let sx = if clockwise { yd } else { w - 1 - yd };
        let column = data[sx * c..].chunks(in_stride);
        let pixels = row.chunks_exact_mut(c);
        if clockwise {
            pixels
                .zip(column.rev())
                .for_each(|(d, s)| d.copy_from_slice(&s[..c]));
        } else {
            pixels
                .zip(column)
                .for_each(|(d, s)| d.copy_from_slice(&s[..c]));
        }
    }
    Ok(out)
}

/// What [`rotate_arbitrary`] fills the corners of the enlarged canvas with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) enum Background {
    /// Opaque black; the layout is kept (layouts with alpha get alpha 255 there).
    #[default]
    Black,
    /// Fully transparent; the output gets an alpha channel if it has none.
    Transparent,
}

/// Rotate `px` clockwise by any angle, in degrees, onto a canvas just large enough for it.
///
/// The output is `round(w |cos| + h |sin|)` x `round(h |cos| + w |sin|)` (at least 1x1),
/// allocated against `budget`. Every output pixel centre is mapped back into the source and
/// sampled bilinearly (premultiplied by alpha); samples that fall outside the source take the
/// `background`, so the edges of the rotated image are antialiased. With
/// [`Background::Transparent`] the output layout gains an alpha channel. Multiples of 90 degrees
/// are exact, though [`rotate_quarter_turns`] is faster for them. A non-finite angle is an
/// internal error.
pub(crate) fn rotate_arbitrary(
    px: &Pixels,
    degrees: f64,
    background: Background,
    budget: Budget,
) -> Result<Pixels, Error> {
    if !degrees.is_finite() {
        return Err(Error::internal(format!(
            "rotation: {degrees} is not an angle"
        )));
    }
    if px.width() == 0 || px.height() == 0 {
        return Err(Error::internal("rotation: the image is empty"));
    }
    let (sin, cos) = sin_cos_degrees(degrees);
    let (w, h) = (f64::from(px.width()), f64::from(px.height()));
    // Float to int `as` casts saturate; an absurd size is then refused by the budget.
    let out_w = (w * cos.abs() + h * sin.abs()).round().max(1.0) as u32;
    let out_h = (h * cos.abs() + w * sin.abs()).round().max(1.0) as u32;

    let in_layout = px.layout();
    let out_layout = match background {
        Background::Black => in_layout,
        Background::Transparent => in_layout.with_alpha(),
    };
    let mut out = Pixels::try_new(out_w, out_h, out_layout, budget)?;

    let c_in = in_layout.channels();
    let c_out = out_layout.channels();
    // Colour channels (1 or 3), the same in input and output.
    let colours = in_layout.without_alpha().channels();
    let in_alpha = in_layout.has_alpha();
    let background_alpha: f32 = match background {
        Background::Black => 1.0,
        Background::Transparent => 0.0,
    };
    let (src_w, src_h) = (i64::from(px.width()), i64::from(px.height()));
    let src_stride = px.stride();
    let data = px.data();

    // Source centre and destination centre, in continuous coordinates where pixel (i, j)
    // covers [i, i + 1) x [j, j + 1).
    let (cx, cy) = (w / 2.0, h / 2.0);
    let (dcx, dcy) = (f64::from(out_w) / 2.0, f64::from(out_h) / 2.0);
    // Offset from the destination centre of the first pixel centre of a row.
    let dx0 = 0.5 - dcx;

    let out_stride = out.stride();
    for (yd, row) in out.data_mut().chunks_exact_mut(out_stride).enumerate() {
        let dy = yd as f64 + 0.5 - dcy;
        // The inverse of the clockwise rotation (x, y) -> (x cos - y sin, x sin + y cos) maps a
        // destination offset (dx, dy) to the source offset (dx cos + dy sin, -dx sin + dy cos).
        // The trailing -0.5 turns a position into bilinear sample coordinates, where integer
        // values are pixel centres.
        let fx0 = cx + dx0 * cos + dy * sin - 0.5;
        let fy0 = cy - dx0 * sin + dy * cos - 0.5;
        for (xd, out_px) in row.chunks_exact_mut(c_out).enumerate() {
            let step = xd as f64;
            let fx = fx0 + step * cos;
            let fy = fy0 - step * sin;
            let (x0, y0) = (fx.floor(), fy.floor());
            let (tx, ty) = ((fx - x0) as f32, (fy - y0) as f32);
            let (x0, y0) = (x0 as i64, y0 as i64);

            // Premultiplied colour sums and the alpha sum (alpha in 0..=1).
            let mut colour_sum = [0.0f32; 3];
            let mut alpha_sum = 0.0f32;
            for (y, wy) in [(y0, 1.0 - ty), (y0 + 1, ty)] {
                for (x, wx) in [(x0, 1.0 - tx), (x0 + 1, tx)] {
                    let weight = wx * wy;
                    if weight <= 0.0 {
                        continue;
                    }
                    if x < 0 || y < 0 || x >= src_w || y >= src_h {
                        // The background's colour is black: it only adds alpha.
                        alpha_sum += weight * background_alpha;
                        continue;
                    }
                    let i = y as usize * src_stride + x as usize * c_in;
                    let p = &data[i..i + c_in];
                    let alpha = if in_alpha {
                        f32::from(p[c_in - 1]) / 255.0
                    } else {
                        1.0
                    };
                    let wa = weight * alpha;
                    alpha_sum += wa;
                    for (sum, &v) in colour_sum.iter_mut().zip(&p[..colours]) {
                        *sum += wa * f32::from(v);
                    }
                }
            }

            let (colour_out, alpha_out) = out_px.split_at_mut(colours);
            if alpha_sum > 0.0 {
                let inv = 1.0 / alpha_sum;
                for (o, &sum) in colour_out.iter_mut().zip(&colour_sum) {
                    *o = (sum * inv).round().clamp(0.0, 255.0) as u8;
                }
            } else {
                colour_out.fill(0);
            }
            if let Some(a) = alpha_out.first_mut() {
                *a = (alpha_sum * 255.0).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    Ok(out)
}

/// Sine and cosine of an angle in degrees, exact for multiples of 90.
fn sin_cos_degrees(degrees: f64) -> (f64, f64) {
    let d = degrees.rem_euclid(360.0);
    if d == 0.0 || d == 360.0 {
        (0.0, 1.0)
    } else if d == 90.0 {
        (1.0, 0.0)
    } else if d == 180.0 {
        (0.0, -1.0)
    } else if d == 270.0 {
        (-1.0, 0.0)
    } else {
        d.to_radians().sin_cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::Layout;

    const LAYOUTS: [Layout; 4] = [Layout::Gray, Layout::GrayAlpha, Layout::Rgb, Layout::Rgba];

    /// A `w` x `h` image whose every byte is distinct-ish: it encodes x, y and the channel.
    fn pattern(w: u32, h: u32, layout: Layout) -> Pixels {
        let c = layout.channels();
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    data.push((x * 31 + y * 7 + ch as u32 * 3 + 1) as u8);
                }
            }
        }
        Pixels::from_vec(w, h, layout, data).unwrap()
    }

    fn solid(w: u32, h: u32, layout: Layout, pixel: &[u8]) -> Pixels {
        Pixels::from_vec(w, h, layout, pixel.repeat(w as usize * h as usize)).unwrap()
    }

    #[test]
    fn mirror_puts_the_left_column_at_the_right() {
        for layout in LAYOUTS {
            let src = pattern(5, 3, layout);
            let mut px = src.clone();
            mirror(&mut px);
            assert_eq!((px.width(), px.height(), px.layout()), (5, 3, layout));
            for y in 0..3 {
                for x in 0..5 {
                    assert_eq!(px.pixel(x, y), src.pixel(4 - x, y), "{layout:?} {x},{y}");
                }
            }
            mirror(&mut px);
            assert_eq!(px, src);
        }
        let mut gray = Pixels::from_vec(3, 1, Layout::Gray, vec![1, 2, 3]).unwrap();
        mirror(&mut gray);
        assert_eq!(gray.data(), &[3, 2, 1]);
        let mut rgba = Pixels::from_vec(2, 1, Layout::Rgba, vec![1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        mirror(&mut rgba);
        assert_eq!(rgba.data(), &[5, 6, 7, 8, 1, 2, 3, 4]);
    }

    #[test]
    fn quarter_turns_move_pixels_exactly() {
        for layout in LAYOUTS {
            let (w, h) = (3u32, 2u32);
            let src = pattern(w, h, layout);
            let b = Budget::default();

            assert_eq!(rotate_quarter_turns(src.clone(), 0, b).unwrap(), src);
            assert_eq!(rotate_quarter_turns(src.clone(), 4, b).unwrap(), src);

            let one = rotate_quarter_turns(src.clone(), 1, b).unwrap();
            assert_eq!((one.width(), one.height(), one.layout()), (h, w, layout));
            // The top-left source pixel goes to the top right.
            assert_eq!(one.pixel(h - 1, 0), src.pixel(0, 0));
            for y in 0..w {
                for x in 0..h {
                    assert_eq!(one.pixel(x, y), src.pixel(y, h - 1 - x), "{layout:?}");
                }
            }

            let two = rotate_quarter_turns(src.clone(), 2, b).unwrap();
            assert_eq!((two.width(), two.height(), two.layout()), (w, h, layout));
            assert_eq!(two.pixel(w - 1, h - 1), src.pixel(0, 0));
            for y in 0..h {
                for x in 0..w {
                    assert_eq!(
                        two.pixel(x, y),
                        src.pixel(w - 1 - x, h - 1 - y),
                        "{layout:?}"
                    );
                }
            }

            let three = rotate_quarter_turns(src.clone(), 3, b).unwrap();
            assert_eq!(
                (three.width(), three.height(), three.layout()),
                (h, w, layout)
            );
            // The top-left source pixel goes to the bottom left.
            assert_eq!(three.pixel(0, w - 1), src.pixel(0, 0));
            for y in 0..w {
                for x in 0..h {
                    assert_eq!(three.pixel(x, y), src.pixel(w - 1 - y, x), "{layout:?}");
                }
            }

            // Four quarter turns, one at a time, are the identity.
            let mut px = src.clone();
            for _ in 0..4 {
                px = rotate_quarter_turns(px, 1, b).unwrap();
            }
            assert_eq!(px, src);
            let back = rotate_quarter_turns(one, 3, b).unwrap();
            assert_eq!(back, src);
        }
    }

    #[test]
    fn quarter_turn_over_budget_is_an_error() {
        let src = pattern(10, 10, Layout::Rgb);
        assert!(rotate_quarter_turns(src.clone(), 1, Budget::new(299)).is_err());
        assert!(rotate_quarter_turns(src.clone(), 3, Budget::new(299)).is_err());
        assert!(rotate_quarter_turns(src, 1, Budget::new(300)).is_ok());
    }

    #[test]
    fn forty_five_degrees_black() {
        let red = solid(100, 100, Layout::Rgb, &[255, 0, 0]);
        let out = rotate_arbitrary(&red, 45.0, Background::Black, Budget::default()).unwrap();
        assert!(out.width().abs_diff(141) <= 1 && out.height().abs_diff(141) <= 1);
        assert_eq!(out.layout(), Layout::Rgb);
        let (cw, ch) = (out.width() / 2, out.height() / 2);
        assert_eq!(out.pixel(cw, ch), &[255, 0, 0]);
        let (r, b) = (out.width() - 1, out.height() - 1);
        for (x, y) in [(0, 0), (r, 0), (0, b), (r, b)] {
            assert_eq!(out.pixel(x, y), &[0, 0, 0], "{x},{y}");
        }
        // The edges are antialiased: some pixel of a row crossing an edge is in between.
        let row = 35;
        let partial = (0..out.width())
            .map(|x| out.pixel(x, row)[0])
            .any(|v| v > 0 && v < 255);
        assert!(partial);
    }

    #[test]
    fn forty_five_degrees_transparent() {
        let red = solid(100, 100, Layout::Rgb, &[255, 0, 0]);
        let out = rotate_arbitrary(&red, 45.0, Background::Transparent, Budget::default()).unwrap();
        assert_eq!(out.layout(), Layout::Rgba);
        let (cw, ch) = (out.width() / 2, out.height() / 2);
        assert_eq!(out.pixel(cw, ch), &[255, 0, 0, 255]);
        assert_eq!(out.pixel(0, 0), &[0, 0, 0, 0]);
        assert_eq!(out.pixel(out.width() - 1, out.height() - 1), &[0, 0, 0, 0]);
        // Colour is not darkened at the edges: wherever there is some alpha, it is red.
        for p in out.data().chunks_exact(4) {
            if p[3] > 0 {
                assert_eq!(&p[..3], &[255, 0, 0], "{p:?}");
            }
        }
    }

    #[test]
    fn forty_five_degrees_in_every_layout() {
        type Case<'a> = (Layout, &'a [u8], &'a [u8], &'a [u8]);
        let cases: [Case; 4] = [
            (Layout::Gray, &[200], &[0], &[0, 0]),
            (Layout::GrayAlpha, &[200, 255], &[0, 255], &[0, 0]),
            (Layout::Rgb, &[10, 20, 30], &[0, 0, 0], &[0, 0, 0, 0]),
            (
                Layout::Rgba,
                &[10, 20, 30, 255],
                &[0, 0, 0, 255],
                &[0, 0, 0, 0],
            ),
        ];
        for (layout, fill, black, clear) in cases {
            let src = solid(40, 20, layout, fill);
            let b = Budget::default();
            let out = rotate_arbitrary(&src, 45.0, Background::Black, b).unwrap();
            // 40 cos 45 + 20 sin 45 = 42.43
            assert_eq!((out.width(), out.height(), out.layout()), (42, 42, layout));
            assert_eq!(out.pixel(21, 21), fill, "{layout:?}");
            assert_eq!(out.pixel(0, 0), black, "{layout:?}");

            let out = rotate_arbitrary(&src, 45.0, Background::Transparent, b).unwrap();
            assert_eq!(out.layout(), layout.with_alpha());
            assert_eq!(out.pixel(0, 0), clear, "{layout:?}");
            let centre = out.pixel(21, 21);
            assert_eq!(
                centre[..layout.without_alpha().channels()],
                fill[..centre.len() - 1]
            );
            assert_eq!(centre[centre.len() - 1], 255);
        }
    }

    #[test]
    fn multiples_of_ninety_match_quarter_turns() {
        let b = Budget::default();
        for layout in LAYOUTS {
            let src = pattern(7, 4, layout);
            let cases = [
                (0.0, 0),
                (90.0, 1),
                (180.0, 2),
                (270.0, 3),
                (-90.0, 3),
                (450.0, 1),
            ];
            for (degrees, turns) in cases {
                let arbitrary = rotate_arbitrary(&src, degrees, Background::Black, b).unwrap();
                let quarter = rotate_quarter_turns(src.clone(), turns, b).unwrap();
                assert_eq!(arbitrary, quarter, "{layout:?} {degrees}");
            }
        }
    }

    #[test]
    fn ninety_degrees_transparent_is_opaque() {
        let src = pattern(5, 3, Layout::Rgb);
        let out = rotate_arbitrary(&src, 90.0, Background::Transparent, Budget::default()).unwrap();
        assert_eq!(
            (out.width(), out.height(), out.layout()),
            (3, 5, Layout::Rgba)
        );
        let quarter = rotate_quarter_turns(src, 1, Budget::default()).unwrap();
        for (a, q) in out
            .data()
            .chunks_exact(4)
            .zip(quarter.data().chunks_exact(3))
        {
            assert_eq!(&a[..3], q);
            assert_eq!(a[3], 255);
        }
    }

    #[test]
    fn nearly_ninety_degrees_is_close_to_a_quarter_turn() {
        let src = solid(30, 10, Layout::Rgb, &[0, 128, 255]);
        let out = rotate_arbitrary(&src, 90.001, Background::Black, Budget::default()).unwrap();
        assert!(out.width().abs_diff(10) <= 1 && out.height().abs_diff(30) <= 1);
        for (i, v) in out
            .pixel(out.width() / 2, out.height() / 2)
            .iter()
            .enumerate()
        {
            assert!(v.abs_diff([0, 128, 255][i]) <= 1);
        }
    }

    #[test]
    fn arbitrary_rotation_errors() {
        let src = solid(100, 100, Layout::Rgba, &[1, 2, 3, 4]);
        // 141 * 141 * 4 bytes do not fit.
        assert!(rotate_arbitrary(&src, 45.0, Background::Black, Budget::new(50_000)).is_err());
        assert!(rotate_arbitrary(&src, 45.0, Background::Black, Budget::new(80_000)).is_ok());
        assert!(rotate_arbitrary(&src, f64::NAN, Background::Black, Budget::default()).is_err());
        assert!(
            rotate_arbitrary(&src, f64::INFINITY, Background::Black, Budget::default()).is_err()
        );
    }
}

/// The examples that stood in the doc comments of these crate-private items.
#[cfg(test)]
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    #[test]
    fn doc_rotate_mirror_8() {
        use crate::ops::mirror;
        use crate::pixels::{Layout, Pixels};

        let mut px = Pixels::from_vec(3, 1, Layout::GrayAlpha, vec![1, 10, 2, 20, 3, 30]).unwrap();
        mirror(&mut px);
        assert_eq!(px.data(), &[3, 30, 2, 20, 1, 10]);
    }

    #[test]
    fn doc_rotate_rotate_quarter_turns_43() {
        use crate::ops::rotate_quarter_turns;
        use crate::pixels::{Budget, Layout, Pixels};

        // 1 2 3
        // 4 5 6
        let px = Pixels::from_vec(3, 2, Layout::Gray, vec![1, 2, 3, 4, 5, 6]).unwrap();
        let turned = rotate_quarter_turns(px, 1, Budget::default()).unwrap();
        // 4 1
        // 5 2
        // 6 3
        assert_eq!((turned.width(), turned.height()), (2, 3));
        assert_eq!(turned.data(), &[4, 1, 5, 2, 6, 3]);
    }

    #[test]
    fn doc_rotate_background_104() {
        use crate::ops::Background;
        assert_eq!(Background::default(), Background::Black);
    }

    #[test]
    fn doc_rotate_rotate_arbitrary_127() {
        use crate::ops::{Background, rotate_arbitrary};
        use crate::pixels::{Budget, Layout, Pixels};

        let red = Pixels::from_vec(10, 10, Layout::Rgb, [255, 0, 0].repeat(100)).unwrap();
        let out = rotate_arbitrary(&red, 45.0, Background::Transparent, Budget::default()).unwrap();
        assert_eq!(
            (out.width(), out.height(), out.layout()),
            (14, 14, Layout::Rgba)
        );
        assert_eq!(out.pixel(7, 7), &[255, 0, 0, 255]);
        assert_eq!(out.pixel(0, 0), &[0, 0, 0, 0]);
    }
}
