//! The tiled TIFF reader (IFD chains, SubIFDs, BigTIFF), then for each level the first tiles
//! decoded, assembled into a region, and joined without decoding when they are JPEG.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tower_iiif::__private::{Budget, Rect};

mod common;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let Some(pyramid) = common::read(&bytes) else {
        return;
    };
    let budget = Budget::new(16 << 20);
    for (index, level) in pyramid.levels().iter().enumerate().take(4) {
        let rect = Rect::new(
            0,
            0,
            level.tile_width.min(1024) * 2,
            level.tile_height.min(1024) * 2,
        );
        common::exercise_region(&pyramid, index, rect, &bytes, 4, budget);
    }
});
