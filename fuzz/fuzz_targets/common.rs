//! What the tiled TIFF targets share: a region's tiles read from the file in memory, then
//! decoded one by one, assembled, and joined without decoding.

use bytes::Bytes;
use tower_iiif::__private::{
    Budget, MemObject, Rect, TiffPyramid, assemble, decode_tile, join_jpeg_tiles, read_pyramid,
};

/// The pyramid of the TIFF in `bytes`, read as the server reads it (by range, on a runtime of
/// one thread); `None` when the reader refuses it.
pub fn read(bytes: &Bytes) -> Option<TiffPyramid> {
    let obj = MemObject::new(bytes.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(read_pyramid(&obj)).ok()
}

/// Every tile path over `rect` of level `index` of `pyramid`, read from `bytes` (at most
/// `max_tiles` tiles; ranges past the end cut short).
pub fn exercise_region(
    pyramid: &TiffPyramid,
    index: usize,
    rect: Rect,
    bytes: &Bytes,
    max_tiles: usize,
    budget: Budget,
) {
    let Some(level) = pyramid.levels().get(index) else {
        return;
    };
    let tiles: Vec<_> = pyramid
        .tiles(index, rect)
        .into_iter()
        .take(max_tiles)
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
