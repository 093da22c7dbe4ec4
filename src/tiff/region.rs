//! Reading a rectangle of one level: fetch the tiles it needs by range, decode them, crop them
//! into one buffer.

use bytes::Bytes;

#[cfg(test)]
use super::TiffPyramid;
#[cfg(feature = "turbojpeg")]
use super::tile::decode_jpeg_in_place;
use super::tile::{Scratch, decode_into};
use super::{Level, TileRef};
use crate::Error;
use crate::pixels::{Budget, Pixels, Rect};
use crate::source::SourceObject;

/// Tiles whose bytes lie at most this far apart in the file are fetched in one read.
const MERGE_GAP: u64 = 64 * 1024;

/// Read `rect` (in the pixels of level `level`, clipped to it) of a pyramid: fetch the bytes of
/// exactly the tiles [`TiffPyramid::tiles`] lists (tiles less than 64 KiB apart in the file in
/// one read), then [`assemble`] them.
///
/// The output is checked against `budget` before anything is fetched, and the bytes fetched
/// must fit in it too. Decoding runs on the calling thread: call this from a blocking pool, or
/// fetch with [`TiffPyramid::tiles`] and `read_range` yourself and hand the CPU work,
/// [`assemble`], to one.
///
/// # Errors
///
/// [`ErrorKind::Internal`](crate::ErrorKind::Internal) for a level that does not exist or a
/// `rect` with nothing inside the level; otherwise as [`assemble`], plus the source's read
/// errors and [`ErrorKind::Source`](crate::ErrorKind::Source) for a short read.
///
#[cfg(test)]
pub(crate) async fn read_region<O: SourceObject>(
    obj: &O,
    pyramid: &TiffPyramid,
    level: usize,
    rect: Rect,
    budget: Budget,
) -> Result<Pixels, Error> {
    let lv = pyramid
        .level(level)
        .ok_or_else(|| Error::internal(format!("TIFF pyramid: no level {level}")))?;
    let clipped = lv.clip(rect).ok_or_else(empty)?;
    budget.check(clipped.w, clipped.h, lv.layout())?;
    let tiles = fetch_tiles(obj, pyramid.tiles(level, rect), budget).await?;
    assemble(lv, rect, &tiles, budget)
}

fn empty() -> Error {
    Error::internal("TIFF pyramid: the region has nothing inside the image")
}

/// The bytes of every tile of `refs` (from `TiffPyramid::tiles`), in one read per run of
/// tiles close to each other in the file; the total must fit in `budget`. The async half of
/// `read_region`, for callers that run [`assemble`] on a blocking pool.
pub(crate) async fn fetch_tiles<O: SourceObject>(
    obj: &O,
    mut refs: Vec<TileRef>,
    budget: Budget,
) -> Result<Vec<(TileRef, Bytes)>, Error> {
    let mut out = Vec::with_capacity(refs.len());
    // Absent tiles need no read.
    refs.retain(|t| {
        let absent = t.range.is_empty();
        if absent {
            out.push((t.clone(), Bytes::new()));
        }
        !absent
    });
    refs.sort_by_key(|t| t.range.start);
    let mut total = 0u64;
    let mut groups = Vec::new();
    let mut pending = refs.into_iter().peekable();
    while let Some(first) = pending.next() {
        let start = first.range.start;
        let mut end = first.range.end;
        let mut group = vec![first];
        while let Some(next) = pending.next_if(|t| t.range.start <= end.saturating_add(MERGE_GAP)) {
            end = end.max(next.range.end);
            group.push(next);
        }
        total = total.saturating_add(end - start);
        if total > budget.max_bytes() {
            return Err(Error::source(format!(
                "TIFF pyramid: the region's tiles take more than the memory budget of {} MiB",
                budget.max_bytes() >> 20
            )));
        }
        groups.push((start..end, group));
    }
    // Every run read at once: over a remote source each is a round trip.
    let reads = groups
        .iter()
        .map(|(range, _)| obj.read_range(range.clone()));
    let fetched = futures_util::future::try_join_all(reads).await?;
    for ((range, group), data) in groups.into_iter().zip(fetched) {
        let (start, end) = (range.start, range.end);
        if (data.len() as u64) < end - start {
            return Err(Error::source(format!(
                "TIFF pyramid: the file is truncated: {} of {} tile bytes at offset {start}",
                data.len(),
                end - start
            )));
        }
        for t in group {
            let bytes =
                data.slice((t.range.start - start) as usize..(t.range.end - start) as usize);
            out.push((t, bytes));
        }
    }
    Ok(out)
}

/// Decode `tiles` (each with its compressed bytes) of `level` and copy the part of each inside
/// `rect` (in the level's pixels, clipped to it) into one buffer of `rect`'s size and
/// `Level::layout`. Edge tiles are cropped of their padding. Parts of `rect` no tile of
/// `tiles` covers stay zero; tiles outside `rect` are skipped without decoding.
///
/// This is the CPU-bound half of `read_region`: run it on a blocking pool.
///
/// # Errors
///
/// [`ErrorKind::Internal`](crate::ErrorKind::Internal) for a `rect` with nothing inside the
/// level; [`ErrorKind::Source`](crate::ErrorKind::Source) for an output or tile buffer over
/// `budget` (checked before allocating) and for any tile [`decode_tile`](super::decode_tile)
/// refuses.
pub fn assemble(
    level: &Level,
    rect: Rect,
    tiles: &[(TileRef, Bytes)],
    budget: Budget,
) -> Result<Pixels, Error> {
    let r = level.clip(rect).ok_or_else(empty)?;
    let layout = level.layout();
    let mut out = Pixels::try_new(r.w, r.h, layout, budget)?;
    let mut tile = Pixels::try_new(level.tile_width, level.tile_height, layout, budget)?;
    let mut scratch = Scratch::default();
    let c = layout.channels();
    let (tw, th) = (u64::from(level.tile_width), u64::from(level.tile_height));
    let (rx, ry) = (u64::from(r.x), u64::from(r.y));
    let (rr, rb) = (rx + u64::from(r.w), ry + u64::from(r.h));
    let dst_stride = out.stride();
    for (t, bytes) in tiles {
        let (tx, ty) = (u64::from(t.col) * tw, u64::from(t.row) * th);
        let (x0, x1) = (tx.max(rx), (tx + tw).min(rr));
        let (y0, y1) = (ty.max(ry), (ty + th).min(rb));
        if x0 >= x1 || y0 >= y1 {
            continue;
        }
        // All below are inside the tile and the output: they fit usize.
        let (sx, sy) = ((x0 - tx) as usize * c, (y0 - ty) as usize);
        let (dx, dy) = ((x0 - rx) as usize * c, (y0 - ry) as usize);
        // A tile wholly inside the region goes straight into place when libjpeg-turbo can.
        #[cfg(feature = "turbojpeg")]
        if (x0, y0, x1, y1) == (tx, ty, tx + tw, ty + th) {
            let dst = &mut out.data_mut()[dy * dst_stride + dx..];
            if decode_jpeg_in_place(level, bytes, dst, dst_stride, &mut scratch)? {
                continue;
            }
        }
        decode_into(level, bytes, budget, &mut tile, &mut scratch)?;
        let (w, h) = ((x1 - x0) as usize * c, (y1 - y0) as usize);
        let src = tile.data().chunks_exact(tile.stride()).skip(sy).take(h);
        let dst = out.data_mut().chunks_exact_mut(dst_stride).skip(dy).take(h);
        for (s, d) in src.zip(dst) {
            d[dx..dx + w].copy_from_slice(&s[sx..sx + w]);
        }
    }
    Ok(out)
}
