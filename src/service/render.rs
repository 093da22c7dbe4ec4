//! The render pipeline, run on the blocking pool: decode, crop and scale, mirror and rotate,
//! quality, encode.

use crate::Error;
use crate::codec::{self, EncodeOptions};
use crate::ops::{self, Background};
use crate::pixels::{Budget, Pixels, Rect};
use crate::plan::Plan;
use crate::request::Quality;

/// Render `plan` from the encoded source `bytes`.
pub(crate) fn render(
    bytes: &[u8],
    plan: &Plan,
    budget: Budget,
    encode: &EncodeOptions,
) -> Result<Vec<u8>, Error> {
    let full = tracing::debug_span!("decode").in_scope(|| codec::decode(bytes, budget))?;
    finish(full, plan.region, plan, budget, encode)
}

/// Render `plan` from `src`, whose pixels `region` hold the plan's region (the whole decoded
/// image and the plan's region; or a pyramid level's crop and all of it): crop and scale to the
/// plan's size, mirror, rotate, quality, encode.
pub(crate) fn finish(
    src: Pixels,
    region: Rect,
    plan: &Plan,
    budget: Budget,
    encode: &EncodeOptions,
) -> Result<Vec<u8>, Error> {
    let whole = Rect::new(0, 0, src.width(), src.height());
    if region == whole && (plan.width, plan.height) == (whole.w, whole.h) {
        return after_scaling(src, plan, budget, encode);
    }
    finish_ref(&src, region, plan, budget, encode)
}

/// [`finish`] of pixels that hold exactly the plan's region (a decoded region or tiles).
pub(crate) fn finish_region(
    src: Pixels,
    plan: &Plan,
    budget: Budget,
    encode: &EncodeOptions,
) -> Result<Vec<u8>, Error> {
    let whole = Rect::new(0, 0, src.width(), src.height());
    finish(src, whole, plan, budget, encode)
}

/// [`finish`] from pixels that stay where they are (a cached level): `region` of `src` is
/// always copied or scaled first.
pub(crate) fn finish_ref(
    src: &Pixels,
    region: Rect,
    plan: &Plan,
    budget: Budget,
    encode: &EncodeOptions,
) -> Result<Vec<u8>, Error> {
    if region.right() > src.width() || region.bottom() > src.height() {
        return Err(Error::source(
            "the decoded image is smaller than its header says",
        ));
    }
    let px = tracing::debug_span!("ops")
        .in_scope(|| ops::crop_resize(src, region, plan.width, plan.height, budget))?;
    after_scaling(px, plan, budget, encode)
}

/// Mirror, rotate, quality, encode.
fn after_scaling(
    mut px: Pixels,
    plan: &Plan,
    budget: Budget,
    encode: &EncodeOptions,
) -> Result<Vec<u8>, Error> {
    let _ops = tracing::debug_span!("ops").entered();
    if plan.rotation.mirror() {
        ops::mirror(&mut px);
    }
    px = match plan.rotation.quarter_turns() {
        Some(turns) => ops::rotate_quarter_turns(px, turns, budget)?,
        None => {
            let background = if plan.format.supports_alpha() {
                Background::Transparent
            } else {
                Background::Black
            };
            ops::rotate_arbitrary(&px, plan.rotation.degrees(), background, budget)?
        }
    };
    px = match plan.quality {
        Quality::Default => px,
        Quality::Color => ops::to_color(px)?,
        Quality::Gray => ops::to_gray(px)?,
        Quality::Bitonal => ops::to_bitonal(px)?,
    };
    drop(_ops);
    tracing::debug_span!("encode", format = %plan.format)
        .in_scope(|| codec::encode(&px, plan.format, encode))
}
