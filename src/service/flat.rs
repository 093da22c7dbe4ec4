//! Large flat sources (JPEG, PNG): which render input a request gets. Scales the
//! [`ReducedPyramid`] covers are rendered from it (built once, on first access, held in a
//! byte-bounded cache); larger ones from the file, with a DCT-scaled and cropped decode when
//! the `turbojpeg` feature is on, else decoded whole.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::Instrument;

use super::{InfoKey, RenderInput, Shared, reserve_render_slot};
use crate::Error;
use crate::codec::{self, Header, SourceFormat};
use crate::pixels::{Budget, Layout};
use crate::plan::Plan;
use crate::reduced::ReducedPyramid;
use crate::source::SourceObject;

/// Weighs a cached pyramid by the bytes of its levels.
#[derive(Debug, Clone)]
pub(super) struct PyramidBytes;

impl quick_cache::Weighter<InfoKey, Arc<ReducedPyramid>> for PyramidBytes {
    fn weight(&self, _key: &InfoKey, pyramid: &Arc<ReducedPyramid>) -> u64 {
        (pyramid.bytes() as u64).max(1)
    }
}

/// The reduced pyramids of large flat sources, bounded by bytes; shared by every clone of a
/// service.
#[derive(Debug, Clone)]
pub(super) struct ReducedCache {
    pub(super) cache: Arc<quick_cache::sync::Cache<InfoKey, Arc<ReducedPyramid>, PyramidBytes>>,
    /// The cache's capacity in bytes; one pyramid takes at most half of it.
    pub(super) max_bytes: u64,
    /// Flat sources of fewer pixels are decoded whole, as small files are.
    pub(super) min_pixels: u64,
}

impl ReducedCache {
    pub(super) fn new(max_bytes: u64, min_pixels: u64) -> Self {
        // quick_cache sizes its tables from an item estimate: a pyramid of ~80 MB each.
        let items = (max_bytes / (16 << 20)).clamp(4, 1024) as usize;
        Self {
            cache: Arc::new(quick_cache::sync::Cache::with_weighter(
                items,
                max_bytes.max(1),
                PyramidBytes,
            )),
            max_bytes,
            min_pixels,
        }
    }
}

/// How much smaller than its region a plan's output is (1.0 = full scale), less one output
/// pixel: a level (or DCT scale) one pixel short of the exact size still serves it (an edge
/// tile of 591 pixels at 148 wide is a quarter scale, not a little more), stretched by less
/// than a pixel.
pub(super) fn plan_scale(plan: &Plan) -> f64 {
    let r = plan.region;
    let axis =
        |out: u32, region: u32| f64::from(out.saturating_sub(1).max(1)) / f64::from(region.max(1));
    axis(plan.width, r.w).max(axis(plan.height, r.h))
}

/// What a render of `plan` on a flat source reads.
#[allow(clippy::too_many_arguments)]
pub(super) async fn input<O: SourceObject>(
    reduced: Option<&ReducedCache>,
    key: InfoKey,
    object: &O,
    header: &Header,
    plan: &Plan,
    shared: &Arc<Shared>,
    budget: Budget,
    max_source_bytes: u64,
) -> Result<RenderInput, Error> {
    let whole = RenderInput::Whole { max_source_bytes };
    let flat = matches!(header.format, SourceFormat::Jpeg | SourceFormat::Png);
    let Some(reduced) = reduced
        .filter(|r| flat && u64::from(header.width) * u64::from(header.height) >= r.min_pixels)
    else {
        return Ok(whole);
    };
    // PNG may have alpha: reckon with four channels.
    let layout = match (header.format, header.gray) {
        (_, true) => Layout::GrayAlpha,
        (SourceFormat::Jpeg, false) => Layout::Rgb,
        _ => Layout::Rgba,
    };
    let scale = plan_scale(plan);
    let shift =
        ReducedPyramid::base_shift(header.width, header.height, layout, reduced.max_bytes / 2);
    if let Some(shift) = shift.filter(|&s| scale <= (1.0 / f64::from(1u32 << s)) * (1.0 + 1e-9)) {
        let build = build(object, header, shift, shared, budget, max_source_bytes)
            .instrument(tracing::debug_span!("reduced pyramid", shift));
        let pyramid = reduced.cache.get_or_insert_async(&key, build).await?;
        if let Some((level, _)) = pyramid.level_for(scale) {
            let rect = pyramid.level_rect(level, plan.region);
            return Ok(RenderInput::Reduced {
                pyramid,
                level,
                rect,
            });
        }
    }
    Ok(region_input(header, plan, scale, max_source_bytes).unwrap_or(whole))
}

/// With libjpeg-turbo: a JPEG region decoded at the DCT scale that still covers the output.
#[cfg(feature = "turbojpeg")]
fn region_input(
    header: &Header,
    plan: &Plan,
    scale: f64,
    max_source_bytes: u64,
) -> Option<RenderInput> {
    if header.format != SourceFormat::Jpeg || header.orientation != codec::Orientation::NORMAL {
        return None;
    }
    let shift = (0..=3u32)
        .rev()
        .find(|&s| (1.0 / f64::from(1u32 << s)) * (1.0 + 1e-9) >= scale)
        .unwrap_or(0);
    let (sw, sh) = codec::turbo::scaled_size((header.width, header.height), shift);
    let f = f64::from(1u32 << shift);
    Some(RenderInput::JpegRegion {
        shift,
        rect: plan.region.scaled_cover(f, f, (sw, sh)),
        max_source_bytes,
    })
}

/// Without libjpeg-turbo, larger scales decode the whole file.
#[cfg(not(feature = "turbojpeg"))]
fn region_input(_: &Header, _: &Plan, _: f64, _: u64) -> Option<RenderInput> {
    None
}

/// Build the reduced pyramid of a flat source on the blocking pool, holding a render slot and
/// permit: the largest level 1/2^`shift` of the full size.
async fn build<O: SourceObject>(
    object: &O,
    header: &Header,
    shift: u32,
    shared: &Arc<Shared>,
    budget: Budget,
    max_source_bytes: u64,
) -> Result<Arc<ReducedPyramid>, Error> {
    let slot = reserve_render_slot(shared)?;
    let len = object.metadata().len;
    if len > max_source_bytes {
        return Err(Error::source(format!(
            "the source file ({len} bytes) is larger than this server reads whole"
        )));
    }
    // The permit first: the file is not held while waiting (as for whole-file renders).
    let permit = Arc::clone(&shared.renders)
        .acquire_owned()
        .await
        .map_err(|_| Error::internal("render pool closed"))?;
    let bytes = object.read_all().await?;
    shared.renders_done.fetch_add(1, Ordering::Relaxed);
    let header = *header;
    let span = tracing::Span::current();
    let pyramid = tokio::task::spawn_blocking(move || {
        let _held = (slot, permit);
        let _span = span.entered();
        build_blocking(&bytes, &header, shift, budget)
    })
    .await
    .map_err(|e| Error::internal(format!("pyramid task failed: {e}")))??;
    Ok(Arc::new(pyramid))
}

/// Decode (DCT-scaled where libjpeg-turbo can) and reduce.
#[cfg_attr(not(feature = "turbojpeg"), allow(unused_variables))]
fn build_blocking(
    bytes: &[u8],
    header: &Header,
    shift: u32,
    budget: Budget,
) -> Result<ReducedPyramid, Error> {
    #[cfg(feature = "turbojpeg")]
    if header.format == SourceFormat::Jpeg {
        let dct = shift.min(3);
        match codec::turbo::decode(bytes, dct, None, budget) {
            Ok(px) => {
                let px = header.orientation.apply(px, budget)?;
                let (w, h) = (header.width, header.height);
                if dct == shift {
                    return ReducedPyramid::from_base(w, h, shift, px, budget);
                }
                let d = 1u32 << shift;
                let whole = crate::pixels::Rect::new(0, 0, px.width(), px.height());
                let base =
                    crate::ops::crop_resize(&px, whole, w.div_ceil(d), h.div_ceil(d), budget)?;
                return ReducedPyramid::from_base(w, h, shift, base, budget);
            }
            // CMYK, lossless...: the general decoder.
            Err(e) => tracing::debug!("not decoded scaled: {}", e.message()),
        }
    }
    let full = codec::decode(bytes, budget)?;
    ReducedPyramid::from_full(&full, shift, budget)
}
