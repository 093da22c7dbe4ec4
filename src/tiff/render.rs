//! How the service renders from a tiled pyramid: the level and rectangle a request reads, and
//! the requests a stored JPEG tile answers as it is.

use std::sync::Arc;

use bytes::Bytes;
use tracing::Instrument;

use super::{Level, TiffPyramid};
use crate::Error;
use crate::plan::Plan;
use crate::request::{Format, Quality, Rotation};
use crate::service::RenderInput;
use crate::source::SourceObject;
use crate::source::recording::{Recording, Replay};

/// The tiled pyramid of a TIFF file, read by range, when the render path can use it: stored
/// upright (other orientations are left to the whole-file decoder, which applies them).
pub(crate) async fn read_usable_pyramid<O: SourceObject>(object: &O) -> Option<Arc<TiffPyramid>> {
    let read = crate::tiff::read_pyramid(object).instrument(tracing::debug_span!("pyramid"));
    usable(read.await)
}

/// [`read_usable_pyramid`], and the recording of the bytes its structure was read from
/// ([`Recording::encode`]), for other instances to [`replay_pyramid`].
pub(crate) async fn read_usable_pyramid_recorded<O: SourceObject>(
    object: &O,
) -> Option<(Arc<TiffPyramid>, Recording)> {
    let read =
        super::ifd::read_pyramid_recorded(object).instrument(tracing::debug_span!("pyramid"));
    let (p, recording) = match read.await {
        Ok((p, recording)) => (Ok(p), Some(recording)),
        Err(e) => (Err(e), None),
    };
    Some((usable(p)?, recording?))
}

/// The usable pyramid of a file with `metadata`, rebuilt from a recording of its structure
/// (another instance's, kept in the shared tier) through the same parser and checks as a file;
/// `None` when the recording is not one or does not make a usable pyramid.
pub(crate) async fn replay_pyramid(
    encoded: &Bytes,
    metadata: &crate::source::SourceMetadata,
) -> Option<Arc<TiffPyramid>> {
    let replay = Replay::decode(encoded, metadata)?;
    usable(crate::tiff::read_pyramid(&replay).await)
}

/// The pyramid, if the render path can use it.
fn usable(read: Result<TiffPyramid, Error>) -> Option<Arc<TiffPyramid>> {
    match read {
        Ok(p) if p.orientation() == crate::codec::Orientation::NORMAL => Some(Arc::new(p)),
        Ok(_) => None,
        Err(e) => {
            tracing::debug!("not rendered as a pyramid: {}", e.message());
            None
        }
    }
}

/// The smallest level that still covers the output size, and the plan's region in that
/// level's pixels (widened to whole pixels).
pub(crate) fn level_input(pyramid: Arc<TiffPyramid>, plan: &Plan, join: bool) -> RenderInput {
    let r = plan.region;
    let level = pyramid.level_for(plan.scale());
    let (lw, lh) = pyramid
        .level(level)
        .map_or((pyramid.width(), pyramid.height()), |l| (l.width, l.height));
    let (dx, dy) = pyramid.downsample(level).unwrap_or((1.0, 1.0));
    let rect = r.scaled_cover(dx, dy, (lw, lh));
    RenderInput::Level {
        pyramid,
        level,
        rect,
        join,
    }
}

/// The stored JPEG tile that `plan` asks for exactly, read and made a standalone JPEG: a JPEG
/// without mirroring or rotation, in the colours the tile has, of a pyramid without a colour
/// profile.
pub(crate) async fn passthrough<O: SourceObject>(
    pyramid: &TiffPyramid,
    plan: &Plan,
    object: &O,
) -> Result<Option<Bytes>, Error> {
    // (Tiles in another colour space are converted to sRGB, so rendered.)
    if plan.format != Format::Jpg
        || plan.rotation != Rotation::NONE
        || pyramid.icc_profile().is_some()
    {
        return Ok(None);
    }
    let Some((index, tile)) =
        super::stored_jpeg_tile(pyramid, plan.region, plan.width, plan.height)
    else {
        return Ok(None);
    };
    let Some(level) = pyramid.level(index) else {
        return Ok(None);
    };
    if !stored_quality(plan, level) {
        return Ok(None);
    }
    let stored = object
        .read_range(tile.range.clone())
        .instrument(tracing::debug_span!("passthrough", level = index))
        .await?;
    // A file cut short (or shrinking under us): render instead, which reports it.
    if stored.len() as u64 != tile.range.end - tile.range.start {
        return Ok(None);
    }
    Ok(super::standalone_jpeg(level, &stored))
}

/// Whether `plan` asks for a level's stored JPEG tiles as they are: JPEG, upright, unmirrored,
/// in the quality the level is stored in (default, or colour / gray matching it).
pub(crate) fn stored_quality(plan: &Plan, level: &Level) -> bool {
    let gray = level.layout().is_gray();
    let quality = match plan.quality {
        Quality::Default => true,
        Quality::Color => !gray,
        Quality::Gray => gray,
        Quality::Bitonal => false,
    };
    quality && plan.format == Format::Jpg && plan.rotation == Rotation::NONE
}
