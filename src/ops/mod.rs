//! Pixel operations, in the order the IIIF Image API applies them: region and size
//! ([`crop_resize`]), rotation ([`mirror`], [`rotate_quarter_turns`], [`rotate_arbitrary`]) and
//! quality ([`to_gray`], [`to_bitonal`], [`to_color`]), plus [`flatten_alpha`] for output formats
//! without transparency.
//!
//! Every operation that makes a buffer larger than its input allocates it through
//! [`Pixels::try_new`](crate::pixels::Pixels::try_new) against a [`Budget`](crate::pixels::Budget),
//! so an oversized request becomes an error instead of an out-of-memory abort. There is no
//! `unsafe` code in this module.

#![forbid(unsafe_code)]

mod quality;
mod resize;
mod rotate;

pub(crate) use quality::{flatten_alpha, to_bitonal, to_color, to_gray};
pub use resize::crop_resize;
pub(crate) use rotate::{Background, mirror, rotate_arbitrary, rotate_quarter_turns};

/// The examples that stood in the doc comments of these crate-private items.
#[cfg(test)]
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    #[test]
    fn doc_ops_13() {
        use crate::ops::{crop_resize, mirror, rotate_quarter_turns, to_gray};
        use crate::pixels::{Budget, Layout, Pixels, Rect};

        let budget = Budget::default();
        // A 4x2 image: a red left half and a blue right half.
        let mut data = Vec::new();
        for _ in 0..2 {
            data.extend_from_slice(&[255, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 255]);
        }
        let px = Pixels::from_vec(4, 2, Layout::Rgb, data).unwrap();

        // Region 1,0,2,2 at full size: one red and one blue column.
        let mut px = crop_resize(&px, Rect::new(1, 0, 2, 2), 2, 2, budget).unwrap();
        assert_eq!(px.pixel(0, 0), &[255, 0, 0]);
        mirror(&mut px);
        assert_eq!(px.pixel(0, 0), &[0, 0, 255]);

        let px = rotate_quarter_turns(px, 1, budget).unwrap();
        let gray = to_gray(px).unwrap();
        assert_eq!(gray.layout(), Layout::Gray);
        // After a clockwise quarter turn the blue column is the top row.
        assert_eq!(gray.data(), &[29, 29, 76, 76]);
    }
}
