//! The render input of a request on a JPEG 2000 source: a region at the most reduced resolution
//! that covers it, read through the tile-part index when that leaves bytes out; and the cache
//! of those indexes.

use std::sync::Arc;

use super::Jp2Info;
use super::codestream::{CodestreamIndex, read_index};
use crate::Error;
use crate::pixels::{Budget, Rect};
use crate::plan::Plan;
use crate::request::Identifier;
use crate::service::{InfoKey, RenderInput};
use crate::source::SourceObject;

/// The sizes of a JPEG 2000 image's resolution levels, largest first.
pub(crate) fn levels(info: &Jp2Info) -> Vec<(u32, u32)> {
    (0..info.resolutions.min(32))
        .map(|r| (info.width.div_ceil(1 << r), info.height.div_ceil(1 << r)))
        .collect()
}

/// Decode the plan's region at the most reduced resolution that still covers its output
/// size (less one pixel, as for pyramid levels).
///
/// # Errors
///
/// The tile-parts the region touches are read into memory (whole, or cut to the resolutions
/// the reduction keeps when the index can cut them): when those (from the index, else
/// estimated from the file's length, evenly spread over its tiles) exceed the budget, the
/// request is refused rather than read.
pub(crate) fn input(
    info: &Jp2Info,
    index: Option<Arc<CodestreamIndex>>,
    plan: &Plan,
    file_len: u64,
    budget: Budget,
) -> Result<RenderInput, Error> {
    let reduce = reduce_for(info, plan);
    let r = plan.region;
    let compressed = match &index {
        Some(index) => index.region_bytes(r.x, r.y, r.w, r.h, reduce),
        None => {
            let (tw, th) = (info.tile_width.max(1), info.tile_height.max(1));
            let across = (r.right().div_ceil(tw) - r.x / tw).max(1);
            let down = (r.bottom().div_ceil(th) - r.y / th).max(1);
            let tiles = u64::from(info.tiles_x.max(1)) * u64::from(info.tiles_y.max(1));
            let touched = (u64::from(across) * u64::from(down)).min(tiles);
            file_len / tiles * touched
        }
    };
    if compressed > budget.max_bytes() / 2 {
        return Err(Error::source(format!(
            "this region of the JPEG 2000 file needs {compressed} bytes of codestream, more than the memory budget allows"
        )));
    }
    Ok(RenderInput::Jp2 {
        info: *info,
        index,
        reduce,
        area: plan.region,
    })
}

/// The most reduced resolution that still covers the plan's output size.
pub(crate) fn reduce_for(info: &Jp2Info, plan: &Plan) -> u32 {
    let scale = plan.scale();
    (0..info.resolutions.clamp(1, 32))
        .rev()
        .find(|&r| (1.0 / f64::from(1u32 << r)) * (1.0 + 1e-9) >= scale)
        .unwrap_or(0)
}

/// Whether `area` is the whole image (decoded whole, from the whole file).
pub(crate) fn is_whole(info: &Jp2Info, area: Rect) -> bool {
    area == Rect::new(0, 0, info.width, info.height)
}

/// Whether `area` at `reduce` is read through the tile-part index: a part of a tiled image
/// (its tiles only), or whenever the index leaves packets out (else OpenJPEG reads the file
/// itself, without a copy of it in memory).
pub(crate) fn reads_index(
    info: &Jp2Info,
    index: &CodestreamIndex,
    area: Rect,
    reduce: u32,
) -> bool {
    let (across, down) = index.tile_grid();
    (!is_whole(info, area) && u64::from(across) * u64::from(down) >= 2)
        || index.leaves_out(area.x, area.y, area.w, area.h, reduce)
}

/// `area` decoded at `reduce` (the whole decode of `area` when it is the image).
pub(crate) fn request(
    info: &Jp2Info,
    reduce: u32,
    area: Rect,
    max_bytes: u64,
) -> super::DecodeRequest {
    super::DecodeRequest {
        reduce,
        area: (!is_whole(info, area)).then_some((area.x, area.y, area.w, area.h)),
        threads: 1,
        max_bytes,
        palette_columns: Some(info.palette_columns),
    }
}

/// Weighs a cached tile-part index by the bytes it keeps.
#[derive(Debug, Clone)]
pub(crate) struct IndexBytes;

impl quick_cache::Weighter<InfoKey, Option<Arc<CodestreamIndex>>> for IndexBytes {
    fn weight(&self, _key: &InfoKey, index: &Option<Arc<CodestreamIndex>>) -> u64 {
        index.as_ref().map_or(1, |i| i.heap_bytes().max(1))
    }
}

/// The tile-part indexes of JPEG 2000 sources, by source version.
pub(crate) type IndexCache =
    quick_cache::sync::Cache<InfoKey, Option<Arc<CodestreamIndex>>, IndexBytes>;

/// An index cache of 128 MiB (an index takes ~24 bytes per tile-part: a 25,000-pixel image in
/// 1024-pixel tiles and 7 tile-parts per tile, ~55 KB). quick_cache admits no entry larger than
/// a shard's share: 4 shards of 32 MiB hold the largest index (2^20 tile-parts).
pub(crate) fn index_cache() -> IndexCache {
    let options = quick_cache::OptionsBuilder::new()
        .estimated_items_capacity(1024)
        .weight_capacity(128 << 20)
        .shards(4)
        .build()
        .expect("both capacities are set");
    quick_cache::sync::Cache::with_options(
        options,
        IndexBytes,
        quick_cache::DefaultHashBuilder::default(),
        quick_cache::sync::DefaultLifecycle::default(),
    )
}

/// The tile-part index of a JPEG 2000 source, read once per source version (concurrent first
/// requests share the read); `None` when it has none (see [`read_index`]) or when reading it
/// failed (not cached: the next request tries again; this one lets OpenJPEG read the file).
pub(crate) async fn index<O: SourceObject>(
    cache: &IndexCache,
    id: &Identifier,
    object: &O,
) -> Option<Arc<CodestreamIndex>> {
    let key = InfoKey::new(id, object.metadata());
    let read = async { Ok::<_, Error>(read_index(object).await?.map(Arc::new)) };
    match cache.get_or_insert_async(&key, read).await {
        Ok(index) => index,
        Err(e) => {
            tracing::warn!(identifier = %id.as_str(), error = %e, "JPEG 2000 tile-part index not read");
            None
        }
    }
}
