//! EXIF orientation: reading the tag and turning a decoded image upright.
//!
//! Cameras store pixels in sensor order and record in the EXIF `Orientation` tag (0x0112) how
//! the picture must be turned for display. Decoders apply it right after decoding, so everything
//! downstream (region, size, rotation) works on the upright image that a viewer would show.

use exif::{In, Reader, Tag};

use crate::Error;
use crate::pixels::{Budget, Pixels};

/// An EXIF orientation, 1..=8; 1 is "stored upright".
///
/// | value | transform to display       |
/// |-------|----------------------------|
/// | 1     | none                       |
/// | 2     | mirror horizontally        |
/// | 3     | rotate 180°                |
/// | 4     | mirror vertically          |
/// | 5     | transpose                  |
/// | 6     | rotate 90° clockwise       |
/// | 7     | transverse                 |
/// | 8     | rotate 270° clockwise      |
///
/// The default is [`Orientation::NORMAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Orientation(u8);

impl Default for Orientation {
    /// [`Orientation::NORMAL`].
    fn default() -> Self {
        Self::NORMAL
    }
}

/// Tile edge, in pixels, for the cache-friendly transposing copy.
const TILE: usize = 64;

impl Orientation {
    /// Orientation 1: the pixels are stored upright.
    pub const NORMAL: Orientation = Orientation(1);

    /// Read the orientation from a raw EXIF payload: the bytes of a JPEG APP1 segment after
    /// `Exif\0\0`, i.e. starting at the TIFF header. A missing tag, a value outside 1..=8 or a
    /// broken payload all give [`Orientation::NORMAL`].
    pub fn from_exif(raw_exif_app1_payload: &[u8]) -> Orientation {
        let mut reader = Reader::new();
        // Keep what parsed when, say, a maker note or thumbnail IFD is broken.
        reader.continue_on_error(true);
        let exif = match reader.read_raw(raw_exif_app1_payload.to_vec()) {
            Ok(exif) => exif,
            Err(exif::Error::PartialResult(partial)) => partial.into_inner().0,
            Err(_) => return Self::NORMAL,
        };
        exif.get_field(Tag::Orientation, In::PRIMARY)
            .and_then(|field| field.value.get_uint(0))
            .map_or(Self::NORMAL, Self::from_value)
    }

    /// The orientation for a raw tag value (EXIF or TIFF tag 274); values outside 1..=8 give
    /// [`Orientation::NORMAL`].
    pub fn from_value(value: u32) -> Orientation {
        match u8::try_from(value) {
            Ok(v @ 1..=8) => Orientation(v),
            _ => Self::NORMAL,
        }
    }

    /// The tag value, 1..=8.
    pub fn value(self) -> u8 {
        self.0
    }

    /// Whether applying this orientation swaps width and height (values 5..=8).
    pub fn swaps_dimensions(self) -> bool {
        matches!(self.0, 5..=8)
    }

    /// Turn `px`, as stored, into the upright image. Mirrors and the 180° turn work in place;
    /// the four transforms that swap width and height allocate the result through
    /// [`Pixels::try_new`] against `budget`. Works for every [`Layout`](crate::pixels::Layout).
    pub fn apply(self, mut px: Pixels, budget: Budget) -> Result<Pixels, Error> {
        let (w, h, layout) = (px.width(), px.height(), px.layout());
        let c = layout.channels();
        if px.data().is_empty() {
            return if self.swaps_dimensions() {
                Pixels::try_new(h, w, layout, budget)
            } else {
                Ok(px)
            };
        }
        let stride = px.stride();
        match self.0 {
            2 => {
                for row in px.data_mut().chunks_exact_mut(stride) {
                    reverse_pixels(row, c);
                }
                Ok(px)
            }
            3 => {
                reverse_pixels(px.data_mut(), c);
                Ok(px)
            }
            4 => {
                flip_rows(px.data_mut(), stride, h as usize);
                Ok(px)
            }
            5..=8 => {
                let mut out = Pixels::try_new(h, w, layout, budget)?;
                // (source column reversed, source row reversed) for each transform.
                let (flip_sx, flip_sy) = match self.0 {
                    5 => (false, false),
                    6 => (false, true),
                    7 => (true, true),
                    _ => (true, false),
                };
                let geometry = Swap {
                    sw: w as usize,
                    sh: h as usize,
                    flip_sx,
                    flip_sy,
                };
                match c {
                    1 => geometry.run::<1>(px.data(), out.data_mut()),
                    2 => geometry.run::<2>(px.data(), out.data_mut()),
                    3 => geometry.run::<3>(px.data(), out.data_mut()),
                    _ => geometry.run::<4>(px.data(), out.data_mut()),
                }
                Ok(out)
            }
            _ => Ok(px),
        }
    }
}

/// Reverse the order of the `c`-byte pixels in `buf`, keeping the bytes of each pixel in order.
fn reverse_pixels(buf: &mut [u8], c: usize) {
    buf.reverse();
    if c > 1 {
        for p in buf.chunks_exact_mut(c) {
            p.reverse();
        }
    }
}

/// Swap row `y` with row `rows - 1 - y`.
fn flip_rows(buf: &mut [u8], stride: usize, rows: usize) {
    let half = rows / 2;
    let Some(split) = half.checked_mul(stride) else {
        return;
    };
    let (top, rest) = buf.split_at_mut(split.min(buf.len()));
    // When `rows` is odd, the middle row stays where it is.
    let skip = rest.len().saturating_sub(split);
    let bottom = &mut rest[skip..];
    for (a, b) in top
        .chunks_exact_mut(stride)
        .zip(bottom.chunks_exact_mut(stride).rev())
    {
        a.swap_with_slice(b);
    }
}

/// The geometry of a transform that swaps width and height. The output is `sh` wide and `sw`
/// tall; output pixel (ox, oy) comes from source column `oy` (or `sw - 1 - oy` when `flip_sx`)
/// and source row `ox` (or `sh - 1 - ox` when `flip_sy`).
struct Swap {
    sw: usize,
    sh: usize,
    flip_sx: bool,
    flip_sy: bool,
}

impl Swap {
    /// Fill `dst` from `src`, in `TILE`-row bands and `TILE`-column tiles so that reads down the
    /// source columns stay in cache.
    fn run<const C: usize>(&self, src: &[u8], dst: &mut [u8]) {
        let (dw, dh) = (self.sh, self.sw);
        let dstride = dw * C;
        for (band, rows) in dst.chunks_mut(TILE * dstride).enumerate() {
            for tx in (0..dw).step_by(TILE) {
                let tx_end = (tx + TILE).min(dw);
                for (r, row) in rows.chunks_exact_mut(dstride).enumerate() {
                    let oy = band * TILE + r;
                    if oy >= dh {
                        break;
                    }
                    let sx = if self.flip_sx { self.sw - 1 - oy } else { oy };
                    let Some(tile) = row.get_mut(tx * C..tx_end * C) else {
                        continue;
                    };
                    for (ox, out) in (tx..tx_end).zip(tile.chunks_exact_mut(C)) {
                        let sy = if self.flip_sy { self.sh - 1 - ox } else { ox };
                        let si = (sy * self.sw + sx) * C;
                        if let Some(p) = src.get(si..si + C) {
                            out.copy_from_slice(p);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::Layout;

    /// A 3x2 gray image
    /// ```text
    /// a b c
    /// d e f
    /// ```
    fn img() -> Pixels {
        Pixels::from_vec(3, 2, Layout::Gray, b"abcdef".to_vec()).unwrap()
    }

    #[test]
    fn all_eight_orientations_on_a_3x2_image() {
        let cases: [(u32, (u32, u32), &[u8]); 8] = [
            (1, (3, 2), b"abcdef"),
            (2, (3, 2), b"cbafed"),
            (3, (3, 2), b"fedcba"),
            (4, (3, 2), b"defabc"),
            (5, (2, 3), b"adbecf"),
            (6, (2, 3), b"daebfc"),
            (7, (2, 3), b"fcebda"),
            (8, (2, 3), b"cfbead"),
        ];
        for (v, (w, h), want) in cases {
            let o = Orientation::from_value(v);
            let out = o.apply(img(), Budget::default()).unwrap();
            assert_eq!((out.width(), out.height()), (w, h), "orientation {v}");
            assert_eq!(out.data(), want, "orientation {v}");
            assert_eq!(o.swaps_dimensions(), v >= 5);
        }
        // Orientation 6: the top-left source pixel ends at the top-right.
        let out = Orientation::from_value(6)
            .apply(img(), Budget::default())
            .unwrap();
        assert_eq!(out.pixel(1, 0), b"a");
    }

    #[test]
    fn multi_channel_pixels_move_as_a_whole() {
        // 3x2 RGB, pixel i = [i, 10 + i, 20 + i].
        let data: Vec<u8> = (0..6u8).flat_map(|i| [i, 10 + i, 20 + i]).collect();
        let px = Pixels::from_vec(3, 2, Layout::Rgb, data).unwrap();
        let out = Orientation::from_value(8)
            .apply(px.clone(), Budget::default())
            .unwrap();
        // 8: c f / b e / a d  ->  indices 2 5 / 1 4 / 0 3
        let order = [2u8, 5, 1, 4, 0, 3];
        let want: Vec<u8> = order.iter().flat_map(|&i| [i, 10 + i, 20 + i]).collect();
        assert_eq!(out.data(), &want[..]);

        let out = Orientation::from_value(2)
            .apply(px, Budget::default())
            .unwrap();
        let order = [2u8, 1, 0, 5, 4, 3];
        let want: Vec<u8> = order.iter().flat_map(|&i| [i, 10 + i, 20 + i]).collect();
        assert_eq!(out.data(), &want[..]);
    }

    #[test]
    fn larger_than_a_tile_round_trips() {
        // 6 then 8 is the identity; exercise several tiles and odd sizes.
        let (w, h) = (131u32, 70u32);
        let data: Vec<u8> = (0..w * h * 2).map(|i| (i % 251) as u8).collect();
        let px = Pixels::from_vec(w, h, Layout::GrayAlpha, data).unwrap();
        let b = Budget::default();
        let r = Orientation::from_value(6).apply(px.clone(), b).unwrap();
        assert_eq!((r.width(), r.height()), (h, w));
        let back = Orientation::from_value(8).apply(r, b).unwrap();
        assert_eq!(back, px);
        let t = Orientation::from_value(5).apply(px.clone(), b).unwrap();
        let back = Orientation::from_value(5).apply(t, b).unwrap();
        assert_eq!(back, px);
        let t = Orientation::from_value(7).apply(px.clone(), b).unwrap();
        let back = Orientation::from_value(7).apply(t, b).unwrap();
        assert_eq!(back, px);
        let f = Orientation::from_value(4).apply(px.clone(), b).unwrap();
        let back = Orientation::from_value(4).apply(f, b).unwrap();
        assert_eq!(back, px);
    }

    #[test]
    fn swapping_transform_respects_the_budget() {
        let px = Pixels::from_vec(3, 2, Layout::Gray, b"abcdef".to_vec()).unwrap();
        assert!(
            Orientation::from_value(6)
                .apply(px, Budget::new(5))
                .is_err()
        );
    }

    #[test]
    fn reads_the_exif_tag() {
        use crate::codec::testutil::exif_payload;
        assert_eq!(Orientation::from_exif(&exif_payload(6)).value(), 6);
        assert_eq!(Orientation::from_exif(&exif_payload(3)).value(), 3);
        assert_eq!(
            Orientation::from_exif(&exif_payload(0)),
            Orientation::NORMAL
        );
        assert_eq!(
            Orientation::from_exif(&exif_payload(9)),
            Orientation::NORMAL
        );
        assert_eq!(Orientation::from_exif(&[]), Orientation::NORMAL);
        assert_eq!(
            Orientation::from_exif(b"II*\0\xff\xff\xff\xff"),
            Orientation::NORMAL
        );
        let mut truncated = exif_payload(6);
        truncated.truncate(14);
        assert_eq!(Orientation::from_exif(&truncated), Orientation::NORMAL);
        assert_eq!(Orientation::default(), Orientation::NORMAL);
    }
}

/// The examples that stood in the doc comments of these crate-private items.
#[cfg(test)]
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    #[test]
    fn doc_orientation_9() {
        use crate::codec::Orientation;
        use crate::pixels::{Budget, Layout, Pixels};

        // 2x1: [1, 2]; rotating 90 degrees clockwise gives a 1x2 column [1; 2].
        let px = Pixels::from_vec(2, 1, Layout::Gray, vec![1, 2]).unwrap();
        let rotated = Orientation::from_value(6)
            .apply(px, Budget::default())
            .unwrap();
        assert_eq!((rotated.width(), rotated.height()), (1, 2));
        assert_eq!(rotated.data(), &[1, 2]);
    }

    #[test]
    fn doc_orientation_orientation_from_exif_60() {
        use crate::codec::Orientation;
        assert_eq!(Orientation::from_exif(b"not exif"), Orientation::NORMAL);
    }

    #[test]
    fn doc_orientation_orientation_from_value_81() {
        use crate::codec::Orientation;
        assert_eq!(Orientation::from_value(6).value(), 6);
        assert_eq!(Orientation::from_value(9), Orientation::NORMAL);
    }

    #[test]
    fn doc_orientation_orientation_value_95() {
        assert_eq!(crate::codec::Orientation::NORMAL.value(), 1);
    }

    #[test]
    fn doc_orientation_orientation_swaps_dimensions_104() {
        use crate::codec::Orientation;
        assert!(Orientation::from_value(6).swaps_dimensions());
        assert!(!Orientation::from_value(3).swaps_dimensions());
    }

    #[test]
    fn doc_orientation_orientation_apply_117() {
        use crate::codec::Orientation;
        use crate::pixels::{Budget, Layout, Pixels};
        let px = Pixels::from_vec(3, 1, Layout::Gray, vec![1, 2, 3]).unwrap();
        let m = Orientation::from_value(2)
            .apply(px, Budget::default())
            .unwrap();
        assert_eq!(m.data(), &[3, 2, 1]);
    }
}
