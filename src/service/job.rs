//! The render job: what a request reads ([`RenderInput`]), fetched ([`Fetched`]: each kind of
//! input with the bytes it needs, so that the render matches on one value and cannot pair an
//! input with another's data), then rendered on the blocking pool behind the render queue.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tracing::Instrument;

use super::{Shared, render};
use crate::Error;
use crate::codec::{self, EncodeOptions};
use crate::flat::ReducedPyramid;
use crate::jp2::codestream::CodestreamIndex;
use crate::jp2::{self, Jp2Info};
use crate::pixels::{Budget, Rect};
use crate::plan::Plan;
use crate::source::SourceObject;
use crate::source::read_at::{ReadAt, SourceReader};
use crate::tiff::{TiffPyramid, TileRef};

/// What a render reads: the whole file, the tiles of one pyramid level, a JPEG 2000 region, a
/// level of a reduced pyramid in memory, or a region of a flat file.
pub(crate) enum RenderInput {
    /// The whole file, decoded whole (refused past this size).
    Whole { max_source_bytes: u64 },
    /// `rect` of pyramid level `level`: only its tiles are read. `join`: whole stored JPEG
    /// tiles at their size are joined, not decoded.
    Level {
        pyramid: Arc<TiffPyramid>,
        level: usize,
        rect: Rect,
        join: bool,
    },
    /// The plan's region of a JPEG 2000 source decoded at resolution reduction `reduce`: with
    /// a tile-part index, from a codestream of the region's tiles only (fetched first); else
    /// reading what OpenJPEG asks for.
    Jp2 {
        info: Jp2Info,
        index: Option<Arc<CodestreamIndex>>,
        reduce: u32,
        area: Rect,
    },
    /// `rect` of level `level` of a flat source's reduced pyramid, in memory.
    Reduced {
        pyramid: Arc<ReducedPyramid>,
        level: usize,
        rect: Rect,
    },
    /// `rect` of a PNG (stored upright), its rows decoded down to the region's last one.
    PngRegion { rect: Rect, max_source_bytes: u64 },
    /// `rect` of a JPEG decoded at 1/2^`shift` (libjpeg), from the whole file.
    JpegRegion {
        shift: u32,
        rect: Rect,
        max_source_bytes: u64,
    },
}

/// A [`RenderInput`] with what it reads on the async side: the file, the level's tiles, or the
/// region's codestream (a remote JPEG 2000 source; a local file is read on the render thread).
enum Fetched {
    Whole(Bytes),
    Level {
        pyramid: Arc<TiffPyramid>,
        level: usize,
        rect: Rect,
        join: bool,
        tiles: Vec<(TileRef, Bytes)>,
    },
    Jp2 {
        info: Jp2Info,
        index: Option<Arc<CodestreamIndex>>,
        reduce: u32,
        area: Rect,
        codestream: Option<Vec<u8>>,
    },
    Reduced {
        pyramid: Arc<ReducedPyramid>,
        level: usize,
        rect: Rect,
    },
    PngRegion {
        rect: Rect,
        max_source_bytes: u64,
    },
    JpegRegion {
        shift: u32,
        rect: Rect,
        file: Bytes,
    },
}

impl RenderInput {
    /// An estimate of the render's peak memory, in bytes, for the memory ceiling: what the
    /// input holds (source bytes read whole, compressed tiles or codestream, the decoded
    /// samples; OpenJPEG's are 4 bytes per component) and what the output needs (the scaled
    /// image, a rotated copy, the encoded bytes), all at 4 bytes a pixel. Generous rather than
    /// exact: it only has to be an upper bound. Saturates (a hostile header's sizes must not
    /// overflow it).
    pub(crate) fn memory_estimate(&self, plan: &Plan, full: (u32, u32), source_len: u64) -> u64 {
        let area = |w: u32, h: u32| u64::from(w) * u64::from(h);
        let times = |a: u64, b: u64| a.saturating_mul(b);
        let out = times(area(plan.width, plan.height), 4);
        let rotated = match plan.rotation.quarter_turns() {
            Some(_) => 0,
            None => {
                let side = u64::from(plan.width) + u64::from(plan.height);
                times(times(side, side), 4)
            }
        };
        let input = match self {
            RenderInput::Whole { .. } => source_len.saturating_add(times(area(full.0, full.1), 4)),
            RenderInput::Level { rect, .. } => times(area(rect.w, rect.h), 8),
            RenderInput::Jp2 {
                info,
                reduce,
                area: a,
                ..
            } => {
                let d = 1u32 << (*reduce).min(31);
                let decoded = area(a.w.div_ceil(d), a.h.div_ceil(d));
                times(decoded, 16 + 4)
                    .saturating_add(decoded.min(source_len))
                    .saturating_add(openjpeg_overhead(info, *reduce, *a))
            }
            RenderInput::Reduced { rect, .. } => times(area(rect.w, rect.h), 4),
            RenderInput::PngRegion { rect, .. } => {
                times(area(rect.w, rect.h), 4).saturating_add(times(u64::from(full.0), 16))
            }
            RenderInput::JpegRegion { rect, .. } => {
                source_len.saturating_add(times(area(rect.w, rect.h), 4))
            }
        };
        input
            .saturating_add(times(out, 2))
            .saturating_add(rotated)
            .saturating_add(1 << 20)
    }

    fn reads_whole(&self) -> bool {
        matches!(
            self,
            RenderInput::Whole { .. } | RenderInput::JpegRegion { .. }
        )
    }

    /// Read what the input needs on the async side.
    async fn fetch<O: SourceObject>(self, object: &O, budget: Budget) -> Result<Fetched, Error> {
        Ok(match self {
            RenderInput::Whole { max_source_bytes } => {
                Fetched::Whole(read_whole(object, max_source_bytes).await?)
            }
            RenderInput::JpegRegion {
                shift,
                rect,
                max_source_bytes,
            } => Fetched::JpegRegion {
                shift,
                rect,
                file: read_whole(object, max_source_bytes).await?,
            },
            RenderInput::Level {
                pyramid,
                level,
                rect,
                join,
            } => {
                let tiles = crate::tiff::fetch_tiles(object, pyramid.tiles(level, rect), budget)
                    .instrument(tracing::debug_span!("fetch tiles", level))
                    .await?;
                Fetched::Level {
                    pyramid,
                    level,
                    rect,
                    join,
                    tiles,
                }
            }
            RenderInput::Jp2 {
                info,
                index,
                reduce,
                area,
            } => {
                // A remote source: the tile-parts are fetched here. A local file is read on
                // the render's own blocking thread (no extra thread, no extra copy).
                let codestream = match &index {
                    Some(index)
                        if object.read_at_blocking(0, &mut []).is_none()
                            && jp2::reads_index(&info, index, area, reduce) =>
                    {
                        let (a, max) = (area, budget.max_bytes() / 2);
                        Some(
                            index
                                .read_region(object, a.x, a.y, a.w, a.h, reduce, max)
                                .instrument(tracing::debug_span!("fetch tile-parts"))
                                .await?,
                        )
                    }
                    _ => None,
                };
                Fetched::Jp2 {
                    info,
                    index,
                    reduce,
                    area,
                    codestream,
                }
            }
            RenderInput::Reduced {
                pyramid,
                level,
                rect,
            } => Fetched::Reduced {
                pyramid,
                level,
                rect,
            },
            RenderInput::PngRegion {
                rect,
                max_source_bytes,
            } => Fetched::PngRegion {
                rect,
                max_source_bytes,
            },
        })
    }
}

/// What OpenJPEG allocates beside the samples, measured on hostile codestreams (the
/// hostile-file suite's): about 6 KiB for every tile-component of the codestream (its coding
/// parameters; 60,000 1x1 tiles took 1.1 GB), and 0.4 bytes for every sample, at the decoded
/// resolution, of the whole tiles a region touches (their code-block structures; a 64x64
/// region of one 65535x65535 tile took 1.3 GB).
fn openjpeg_overhead(info: &Jp2Info, reduce: u32, region: Rect) -> u64 {
    let components = u64::from(info.components.max(1));
    let tiles = u64::from(info.tiles_x).saturating_mul(u64::from(info.tiles_y));
    let parameters = tiles.saturating_mul(components).saturating_mul(6 << 10);
    let (tw, th) = (info.tile_width.max(1), info.tile_height.max(1));
    let across = u64::from(region.right().div_ceil(tw) - region.x / tw);
    let down = u64::from(region.bottom().div_ceil(th) - region.y / th);
    let d = 1u32 << reduce.min(31);
    let tile_samples = u64::from(tw.div_ceil(d)) * u64::from(th.div_ceil(d)) * components;
    let blocks = (across * down)
        .saturating_mul(tile_samples)
        .saturating_mul(2)
        / 5;
    parameters.saturating_add(blocks)
}

/// The whole file, refused past `max_source_bytes`.
async fn read_whole<O: SourceObject>(object: &O, max_source_bytes: u64) -> Result<Bytes, Error> {
    let len = object.metadata().len;
    if len > max_source_bytes {
        return Err(Error::source(format!(
            "the source file ({len} bytes) is larger than this server reads whole"
        )));
    }
    object.read_all().await
}

impl Fetched {
    /// Render `plan` from the fetched input, on a blocking thread (`handle` runs the source's
    /// reads that happen here).
    fn render<O: SourceObject>(
        self,
        object: &O,
        handle: tokio::runtime::Handle,
        plan: &Plan,
        budget: Budget,
        encode: &EncodeOptions,
    ) -> Result<Vec<u8>, Error> {
        match self {
            Fetched::Whole(bytes) => render::render(&bytes, plan, budget, encode),
            Fetched::JpegRegion { shift, rect, file } => {
                match codec::scaled::decode(&file, shift, Some(rect), budget) {
                    Ok(mut px) => {
                        codec::icc::apply_embedded(&mut px, &file);
                        render::finish_region(px, plan, budget, encode)
                    }
                    Err(_) => render::render(&file, plan, budget, encode),
                }
            }
            Fetched::Level {
                pyramid,
                level,
                rect,
                join,
                tiles,
            } => {
                let lv = pyramid
                    .level(level)
                    .ok_or_else(|| Error::internal("pyramid level vanished"))?;
                // Whole stored JPEG tiles at their own size: joined, not decoded.
                if join
                    && pyramid.icc_profile().is_none()
                    && (plan.width, plan.height) == (rect.w, rect.h)
                    && crate::tiff::stored_quality(plan, lv)
                    && let Some(jpeg) = tracing::debug_span!("join")
                        .in_scope(|| crate::tiff::join_jpeg_tiles(lv, rect, &tiles))
                {
                    return Ok(jpeg);
                }
                let mut px = tracing::debug_span!("assemble")
                    .in_scope(|| crate::tiff::assemble(lv, rect, &tiles, budget))?;
                if let Some(profile) = pyramid.icc_profile() {
                    codec::icc::to_srgb(&mut px, profile);
                }
                render::finish_region(px, plan, budget, encode)
            }
            Fetched::Jp2 {
                info,
                index,
                reduce,
                area,
                codestream,
            } => {
                let req = jp2::request(&info, reduce, area, budget.max_bytes());
                let decode = |src: &dyn ReadAt| {
                    tracing::debug_span!("decode", reduce).in_scope(|| {
                        jp2::decode(src, &req)
                            .map_err(codec::jp2_error)
                            .and_then(codec::jp2_pixels)
                    })
                };
                let reader = SourceReader { object, handle };
                let px = match (codestream, index) {
                    (Some(cs), _) => decode(&cs)?,
                    (None, Some(index)) if jp2::reads_index(&info, &index, area, reduce) => {
                        let (a, max) = (area, budget.max_bytes() / 2);
                        let cs = tracing::debug_span!("read tile-parts").in_scope(|| {
                            index.read_region_at(&reader, a.x, a.y, a.w, a.h, reduce, max)
                        })?;
                        decode(&cs)?
                    }
                    _ => decode(&reader)?,
                };
                render::finish_region(px, plan, budget, encode)
            }
            Fetched::Reduced {
                pyramid,
                level,
                rect,
            } => {
                let px = pyramid
                    .level(level)
                    .ok_or_else(|| Error::internal("reduced level vanished"))?;
                render::finish_ref(px, rect, plan, budget, encode)
            }
            Fetched::PngRegion {
                rect,
                max_source_bytes,
            } => {
                let reader = SourceReader { object, handle };
                crate::flat::render_png_region(
                    &reader,
                    rect,
                    max_source_bytes,
                    plan,
                    budget,
                    encode,
                )
            }
        }
    }
}

/// Read what the render needs and render `plan` on the blocking pool. The queue slot and the
/// render permit move into the blocking task: they are released when the render really ends,
/// even if the client has gone away meanwhile.
pub(super) async fn render_job<O: SourceObject>(
    shared: Arc<Shared>,
    object: O,
    input: RenderInput,
    plan: &Plan,
    budget: Budget,
    encode: EncodeOptions,
    full: (u32, u32),
) -> Result<Bytes, Error> {
    let need = input.memory_estimate(plan, full, object.metadata().len);
    // Refused at once if it could never fit; else a place in the queue, then room.
    shared.memory.check(need)?;
    let slot = reserve_render_slot(&shared)?;
    // A render permit, then room under the ceiling: requests waiting in the queue hold none.
    // Both within the queue wait: a render admitted on an expectation that the renders ahead
    // then belie is answered 503 when the wait has passed, not started late.
    let acquire = || async {
        let deadline = tokio::time::Instant::now() + shared.queue.max_wait();
        let permit =
            match tokio::time::timeout_at(deadline, Arc::clone(&shared.renders).acquire_owned())
                .await
            {
                Ok(permit) => permit.map_err(|_| Error::internal("render pool closed"))?,
                // Late: retry after the wait the queue can now be expected to take.
                Err(_) => {
                    let ahead = shared.in_flight.load(Ordering::Acquire);
                    return Err(super::memory::busy(expected_wait(&shared, ahead)));
                }
            };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let memory = shared.memory.reserve(need, left).await?;
        Ok::<_, Error>((permit, memory, std::time::Instant::now()))
    };
    // A whole-file read takes its render permit first: requests waiting for a permit then hold
    // no file in memory (at most `render_concurrency` whole files at once). Tile reads are
    // small and overlap the renders in progress.
    let early = match input.reads_whole() {
        true => Some(acquire().await?),
        false => None,
    };
    let fetched = input.fetch(&object, budget).await?;
    let (permit, memory, held_since) = match early {
        Some(p) => p,
        None => acquire().await?,
    };
    let plan = plan.clone();
    shared.renders_done.fetch_add(1, Ordering::Relaxed);
    let span = tracing::debug_span!("render", canonical = %plan.canonical);
    let handle = tokio::runtime::Handle::current();
    let queue_shared = Arc::clone(&shared);
    let body = tokio::task::spawn_blocking(move || {
        let _held = (slot, permit, memory);
        let _span = span.entered();
        let started = std::time::Instant::now();
        let body = fetched.render(&object, handle, &plan, budget, &encode);
        metrics::histogram!("iiif_render_seconds").record(started.elapsed().as_secs_f64());
        // The queue reckons with how long a render holds its permit: the render, and the
        // reads done while holding it (a file read whole is read after the permit is taken).
        queue_shared.queue.record(held_since.elapsed());
        body
    })
    .await
    .map_err(|e| Error::internal(format!("render task failed: {e}")))??;
    Ok(Bytes::from(body))
}

/// Take a place in the render queue, or answer 503 when it is full or when the renders ahead
/// can be expected to keep this one waiting past the queue wait (with a `Retry-After` of that
/// expectation).
pub(crate) fn reserve_render_slot(shared: &Arc<Shared>) -> Result<SlotGuard, Error> {
    let max = shared.max_in_flight.load(Ordering::Relaxed);
    let before = shared.in_flight.fetch_add(1, Ordering::AcqRel);
    let guard = SlotGuard(Arc::clone(shared));
    let expected = expected_wait(shared, before);
    if before >= max || expected > shared.queue.max_wait() {
        // Full, or too long a wait: retry after the wait the queue can be expected to take.
        return Err(super::memory::busy(expected));
    }
    Ok(guard)
}

/// The wait a render with `ahead` renders in the queue before it can be expected to take.
fn expected_wait(shared: &Shared, ahead: usize) -> std::time::Duration {
    let running = shared.render_permits.load(Ordering::Relaxed);
    shared.queue.expected_wait(ahead, running)
}

/// Releases a place in the render queue when dropped.
pub(crate) struct SlotGuard(Arc<Shared>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(size: (u32, u32), tile: (u32, u32)) -> Jp2Info {
        Jp2Info {
            width: size.0,
            height: size.1,
            components: 3,
            precision: 8,
            resolutions: 6,
            tile_width: tile.0,
            tile_height: tile.1,
            tiles_x: size.0.div_ceil(tile.0),
            tiles_y: size.1.div_ceil(tile.1),
            has_alpha: false,
            gray: false,
            palette_columns: 0,
        }
    }

    /// The hostile geometries that made OpenJPEG allocate over a gigabyte could never fit
    /// the default ceiling; an archival file's tiles cost a few MiB.
    #[test]
    fn openjpeg_overhead_counts_tiles_and_the_tiles_a_region_touches() {
        let gib = 1u64 << 30;
        // 60,000 tiles of 1x1: their parameters alone.
        let many = info((300, 200), (1, 1));
        assert!(openjpeg_overhead(&many, 0, Rect::new(0, 0, 1, 1)) > gib);
        // One 65535x65535 tile, a 64x64 region at half size.
        let one = info((65535, 65535), (65535, 65535));
        assert!(openjpeg_overhead(&one, 1, Rect::new(0, 0, 64, 64)) > gib);
        // The benchmark's JP2 (25167x12483 in 1024 tiles), a 512 region at full size, and the
        // whole image at 1/32.
        let big = info((25167, 12483), (1024, 1024));
        assert!(openjpeg_overhead(&big, 0, Rect::new(1024, 1024, 512, 512)) < 8 << 20);
        assert!(openjpeg_overhead(&big, 5, Rect::new(0, 0, 25167, 12483)) < 8 << 20);
    }
}
