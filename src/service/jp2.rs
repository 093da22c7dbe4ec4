//! JPEG 2000 sources: the render input of a request (a region at a reduced resolution) and the
//! bridge that lets OpenJPEG, which reads synchronously, read the source by byte range.

use std::io;
use std::sync::Arc;

use super::InfoKey;
use super::RenderInput;
use crate::Error;
use crate::codec::jp2::{Jp2Info, ReadAt};
use crate::codestream::{CodestreamIndex, read_index};
use crate::pixels::{Budget, Rect};
use crate::plan::Plan;
use crate::request::Identifier;
use crate::source::SourceObject;

/// A [`SourceObject`] read synchronously, for OpenJPEG's stream callbacks: with the object's
/// own blocking read when it has one (a local file: no thread hand-off per read), else
/// [`SourceObject::read_range`] run to completion on the runtime of `handle`. Only for
/// blocking threads (it blocks the calling thread).
pub(super) struct SourceReader<'a, O> {
    pub(super) object: &'a O,
    pub(super) handle: tokio::runtime::Handle,
}

impl<O: SourceObject> ReadAt for SourceReader<'_, O> {
    fn len(&self) -> u64 {
        self.object.metadata().len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(read) = self.object.read_at_blocking(offset, buf) {
            return read.map_err(|e| io::Error::other(e.message().to_owned()));
        }
        let end = offset.saturating_add(buf.len() as u64).min(self.len());
        if offset >= end {
            return Ok(0);
        }
        let bytes = self
            .handle
            .block_on(self.object.read_range(offset..end))
            .map_err(|e| io::Error::other(e.message().to_owned()))?;
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }
}

/// The sizes of a JPEG 2000 image's resolution levels, largest first.
pub(super) fn levels(info: &Jp2Info) -> Vec<(u32, u32)> {
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
pub(super) fn input(
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
pub(super) fn reduce_for(info: &Jp2Info, plan: &Plan) -> u32 {
    let scale = super::flat::plan_scale(plan);
    (0..info.resolutions.clamp(1, 32))
        .rev()
        .find(|&r| (1.0 / f64::from(1u32 << r)) * (1.0 + 1e-9) >= scale)
        .unwrap_or(0)
}

/// Whether `area` is the whole image (decoded whole, from the whole file).
pub(super) fn is_whole(info: &Jp2Info, area: Rect) -> bool {
    area == Rect::new(0, 0, info.width, info.height)
}

/// Whether `area` at `reduce` is read through the tile-part index: a part of a tiled image
/// (its tiles only), or whenever the index leaves packets out (else OpenJPEG reads the file
/// itself, without a copy of it in memory).
pub(super) fn reads_index(
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
pub(super) fn request(
    info: &Jp2Info,
    reduce: u32,
    area: Rect,
    max_bytes: u64,
) -> crate::codec::jp2::DecodeRequest {
    crate::codec::jp2::DecodeRequest {
        reduce,
        area: (!is_whole(info, area)).then_some((area.x, area.y, area.w, area.h)),
        threads: 1,
        max_bytes,
        palette_columns: Some(info.palette_columns),
    }
}

/// Weighs a cached tile-part index by the bytes it keeps.
#[derive(Debug, Clone)]
pub(super) struct IndexBytes;

impl quick_cache::Weighter<InfoKey, Option<Arc<CodestreamIndex>>> for IndexBytes {
    fn weight(&self, _key: &InfoKey, index: &Option<Arc<CodestreamIndex>>) -> u64 {
        index.as_ref().map_or(1, |i| i.heap_bytes().max(1))
    }
}

/// The tile-part indexes of JPEG 2000 sources, by source version.
pub(super) type IndexCache =
    quick_cache::sync::Cache<InfoKey, Option<Arc<CodestreamIndex>>, IndexBytes>;

/// An index cache of 128 MiB (an index takes ~24 bytes per tile-part: a 25,000-pixel image in
/// 1024-pixel tiles and 7 tile-parts per tile, ~55 KB). quick_cache admits no entry larger than
/// a shard's share: 4 shards of 32 MiB hold the largest index (2^20 tile-parts).
pub(super) fn index_cache() -> IndexCache {
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
pub(super) async fn index<O: SourceObject>(
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
