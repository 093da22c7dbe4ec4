//! The tiled TIFF reader (IFD chains, SubIFDs, BigTIFF), then for each level the first tiles
//! decoded, assembled into a region, and joined without decoding when they are JPEG.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tower_iiif::__private::{
    Budget, MemObject, Rect, assemble, decode_tile, join_jpeg_tiles, read_pyramid,
};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let obj = MemObject::new(bytes.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let Ok(pyramid) = rt.block_on(read_pyramid(&obj)) else {
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
        let refs = pyramid.tiles(index, rect);
        let tiles: Vec<_> = refs
            .into_iter()
            .take(4)
            .map(|t| {
                let r = t.range.clone();
                let end = (r.end as usize).min(bytes.len());
                let body = bytes.slice((r.start as usize).min(end)..end);
                (t, body)
            })
            .collect();
        for (_, body) in &tiles {
            let _ = decode_tile(level, body, budget);
        }
        let _ = assemble(level, rect, &tiles, budget);
        let _ = join_jpeg_tiles(level, rect, &tiles);
    }
});
