//! Embedded ICC colour profiles: found in a source file's header and applied, the pixels
//! converted to sRGB.
//!
//! Browsers take an image without a profile as sRGB, and the server's outputs carry none: an
//! Adobe RGB or ProPhoto scan shown as it is stored looks dull and shifted. So the RGB(A)
//! pixels of a source with an RGB profile are converted to sRGB (moxcms, perceptual intent)
//! before they are scaled into the output. Profiles of sRGB itself (the same primaries), gray
//! and CMYK profiles, and profiles moxcms cannot read are left alone: the pixels are used as
//! they are, as before.
//!
//! Where the profiles are found: JPEG APP2 `ICC_PROFILE` segments (a profile may be chunked over
//! several, joined in sequence order), PNG `iCCP`, WebP `ICCP`, the TIFF `ICCProfile` tag
//! (34675) of the first image, and a JP2 `colr` box of method 2 or 3 in the JP2 header.
//! Transforms are built once per distinct profile and kept (64 at most).

use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::sync::{Arc, OnceLock};

use moxcms::{ColorProfile, DataColorSpace, Layout as CmsLayout};

use super::SourceFormat;
use crate::pixels::{Layout, Pixels};

/// An ICC profile's bytes, shared; its debug output is its length.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Profile(Arc<[u8]>);

impl Profile {
    pub(crate) fn new(bytes: &[u8]) -> Self {
        Self(bytes.into())
    }
}

impl std::ops::Deref for Profile {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ICC profile ({} bytes)", self.0.len())
    }
}

/// The largest profile read (printer profiles with big LUTs run to a few MiB).
pub(crate) const MAX_PROFILE: usize = 4 << 20;

/// The embedded ICC profile of the encoded file `bytes` (or of its first bytes, when they hold
/// the header), if it has one.
pub(crate) fn find(bytes: &[u8]) -> Option<Vec<u8>> {
    match super::sniff(bytes)? {
        SourceFormat::Jpeg => jpeg(bytes),
        SourceFormat::Png => png(bytes),
        SourceFormat::Webp => webp(bytes),
        SourceFormat::Tiff => tiff(bytes),
        SourceFormat::Jp2 => jp2(bytes),
        SourceFormat::Gif | SourceFormat::Bmp => None,
    }
    .filter(|p| !p.is_empty() && p.len() <= MAX_PROFILE)
}

/// `px` converted from the colour space of `profile` to sRGB, in place. Pixels that are not
/// RGB or RGBA, and profiles that need no conversion or cannot be read, leave `px` unchanged.
pub(crate) fn to_srgb(px: &mut Pixels, profile: &[u8]) {
    let layout = match px.layout() {
        Layout::Rgb => CmsLayout::Rgb,
        Layout::Rgba => CmsLayout::Rgba,
        _ => return,
    };
    let Some(transform) = transform(profile, layout) else {
        return;
    };
    let row_len = px.width() as usize * px.layout().channels();
    let stride = px.stride();
    let mut row = vec![0u8; row_len];
    for line in px.data_mut().chunks_exact_mut(stride) {
        let line = &mut line[..row_len];
        row.copy_from_slice(line);
        if transform.transform(&row, line).is_err() {
            line.copy_from_slice(&row);
        }
    }
}

/// [`to_srgb`] with the profile found in the file `bytes`, if any.
pub(crate) fn apply_embedded(px: &mut Pixels, bytes: &[u8]) {
    if let Some(profile) = find(bytes) {
        to_srgb(px, &profile);
    }
}

type Transform = Arc<moxcms::Transform8BitExecutor>;

/// The transform of `profile` to sRGB for `layout`: made once per distinct profile, `None`
/// when no conversion is needed or the profile is not usable.
fn transform(profile: &[u8], layout: CmsLayout) -> Option<Transform> {
    static CACHE: OnceLock<quick_cache::sync::Cache<(u64, u8), Option<Transform>>> =
        OnceLock::new();
    static KEYS: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    let mut h = KEYS.get_or_init(Default::default).build_hasher();
    h.write(profile);
    let key = (h.finish(), layout as u8);
    let cache = CACHE.get_or_init(|| quick_cache::sync::Cache::new(64));
    cache
        .get_or_insert_with(&key, || {
            Ok::<_, std::convert::Infallible>(make(profile, layout))
        })
        .unwrap_or_else(|never| match never {})
}

fn make(profile: &[u8], layout: CmsLayout) -> Option<Transform> {
    let source = ColorProfile::new_from_slice(profile).ok()?;
    if source.color_space != DataColorSpace::Rgb || is_srgb(&source) {
        return None;
    }
    let srgb = ColorProfile::new_srgb();
    source
        .create_transform_8bit(layout, &srgb, layout, moxcms::TransformOptions::default())
        .ok()
}

/// Whether a matrix/TRC profile has sRGB's primaries (then it is sRGB, or as close as makes
/// no visible difference).
fn is_srgb(p: &ColorProfile) -> bool {
    let s = ColorProfile::new_srgb();
    let near = |a: moxcms::Xyzd, b: moxcms::Xyzd| {
        (a.x - b.x).abs() < 2e-3 && (a.y - b.y).abs() < 2e-3 && (a.z - b.z).abs() < 2e-3
    };
    p.lut_a_to_b_perceptual.is_none()
        && p.lut_a_to_b_colorimetric.is_none()
        && near(p.red_colorant, s.red_colorant)
        && near(p.green_colorant, s.green_colorant)
        && near(p.blue_colorant, s.blue_colorant)
}

/// JPEG: the payloads of the APP2 `ICC_PROFILE\0` segments before the first scan, joined in
/// their sequence numbers' order.
fn jpeg(bytes: &[u8]) -> Option<Vec<u8>> {
    const TAG: &[u8] = b"ICC_PROFILE\0";
    let mut chunks: Vec<(u8, &[u8])> = super::tiff::jpeg_segments(bytes)
        .into_iter()
        .filter(|&(_, marker, payload)| marker == 0xE2 && payload.starts_with(TAG))
        .filter_map(|(_, _, payload)| {
            let rest = &payload[TAG.len()..];
            Some((*rest.first()?, rest.get(2..)?))
        })
        .collect();
    if chunks.is_empty() {
        return None;
    }
    chunks.sort_by_key(|&(seq, _)| seq);
    Some(
        chunks
            .into_iter()
            .flat_map(|(_, c)| c.iter().copied())
            .collect(),
    )
}

/// PNG: the `iCCP` chunk (a name, a compression method of 0, zlib data) before `IDAT`.
fn png(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut at = 8;
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes(head[..4].try_into().ok()?) as usize;
        let kind = &head[4..8];
        let data = bytes.get(at + 8..(at + 8).checked_add(len)?)?;
        match kind {
            b"iCCP" => {
                let name_end = data.iter().position(|&b| b == 0)?;
                if *data.get(name_end + 1)? != 0 {
                    return None;
                }
                return inflate(data.get(name_end + 2..)?);
            }
            b"IDAT" | b"IEND" => return None,
            _ => at += 12 + len,
        }
    }
    None
}

/// A zlib stream inflated, at most [`MAX_PROFILE`] bytes of it.
fn inflate(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(MAX_PROFILE as u64 + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() <= MAX_PROFILE).then_some(out)
}

/// WebP: the `ICCP` chunk of an extended (`VP8X`) file.
fn webp(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut at = 12;
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes(head[4..8].try_into().ok()?) as usize;
        let data = bytes.get(at + 8..(at + 8).checked_add(len)?)?;
        match &head[..4] {
            b"ICCP" => return Some(data.to_vec()),
            b"VP8 " | b"VP8L" | b"ANIM" => return None,
            _ => at += 8 + len + (len & 1),
        }
    }
    None
}

/// TIFF: the `ICCProfile` tag (34675) of the first image.
fn tiff(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut decoder = ::tiff::decoder::Decoder::new(std::io::Cursor::new(bytes)).ok()?;
    decoder.get_tag_u8_vec(::tiff::tags::Tag::IccProfile).ok()
}

/// JP2: the profile of the first `colr` box of method 2 (restricted ICC) or 3 (any ICC) in the
/// JP2 header box.
fn jp2(bytes: &[u8]) -> Option<Vec<u8>> {
    let header = boxes(bytes).find(|(kind, _)| kind == b"jp2h")?.1;
    boxes(header)
        .filter(|(kind, _)| kind == b"colr")
        .find_map(|(_, data)| match data.first()? {
            2 | 3 => data.get(3..).map(<[u8]>::to_vec),
            _ => None,
        })
}

/// The boxes of a JPEG 2000 box sequence: (type, contents), up to the first broken one.
fn boxes(mut data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        let head = data.get(..8)?;
        let kind: [u8; 4] = head[4..8].try_into().ok()?;
        let (start, len) = match u32::from_be_bytes(head[..4].try_into().ok()?) {
            0 => (8, data.len()),
            1 => {
                let xl = u64::from_be_bytes(data.get(8..16)?.try_into().ok()?);
                (16, usize::try_from(xl).ok()?)
            }
            n => (8, n as usize),
        };
        let contents = data.get(start..len)?;
        data = &data[len..];
        Some((kind, contents))
    })
}

#[cfg(test)]
pub(crate) mod tests;
