//! Stored-tile passthrough: a request that is exactly one stored JPEG tile of a pyramid level is
//! answered with that tile's own bytes, made a standalone JPEG, with no decoding or encoding.

use bytes::Bytes;

use super::{Alpha, Compression, Level, Photometric, TiffPyramid, TileRef};
use crate::codec::tiff::jpeg_segments;
use crate::pixels::Rect;

/// How far, in level pixels, a requested edge may be from the stored tile's edge and still be
/// that tile: the rounding of a client that computed the region from scale factors.
const SLACK: f64 = 0.5;

/// The stored tile that is exactly `region` of the full image scaled to `width` x `height`,
/// and the index of its level, when that tile can be sent as it is stored: a JPEG tile of a
/// colour (YCbCr or RGB) or BlackIsZero gray level without alpha, inside the level (edge tiles
/// carry padding), present in the file.
pub(crate) fn stored_jpeg_tile(
    pyramid: &TiffPyramid,
    region: Rect,
    width: u32,
    height: u32,
) -> Option<(usize, TileRef)> {
    if region.w == 0 || region.h == 0 {
        return None;
    }
    let scale =
        (f64::from(width) / f64::from(region.w)).max(f64::from(height) / f64::from(region.h));
    let index = pyramid.level_for(scale);
    let level = pyramid.level(index)?;
    if !sendable(level) || (width, height) != (level.tile_width, level.tile_height) {
        return None;
    }
    let (sx, sy) = pyramid.downsample(index)?;
    let (x0, x1) = (f64::from(region.x) / sx, f64::from(region.right()) / sx);
    let (y0, y1) = (f64::from(region.y) / sy, f64::from(region.bottom()) / sy);
    let (tw, th) = (f64::from(level.tile_width), f64::from(level.tile_height));
    let (col, row) = ((x0 / tw).round(), (y0 / th).round());
    let near = |a: f64, b: f64| (a - b).abs() <= SLACK;
    let exact = near(x0, col * tw)
        && near(x1, (col + 1.0) * tw)
        && near(y0, row * th)
        && near(y1, (row + 1.0) * th);
    // Whole tiles only: an edge tile's stored pixels include its padding.
    let inside =
        (col + 1.0) * tw <= f64::from(level.width) && (row + 1.0) * th <= f64::from(level.height);
    if !exact || !inside || col < 0.0 || row < 0.0 {
        return None;
    }
    let (col, row) = (col as u32, row as u32);
    let tile = pyramid
        .tiles(
            index,
            Rect::new(col * level.tile_width, row * level.tile_height, 1, 1),
        )
        .into_iter()
        .next()?;
    (tile.col == col && tile.row == row && tile.range.end > tile.range.start)
        .then_some((index, tile))
}

/// Whether a level's tiles can be sent as they are stored: 8-bit JPEG, gray or colour, no
/// alpha.
pub(super) fn sendable(level: &Level) -> bool {
    let colour = match level.photometric {
        Photometric::BlackIsZero => level.samples_per_pixel == 1,
        Photometric::Rgb | Photometric::YCbCr => level.samples_per_pixel == 3,
        Photometric::WhiteIsZero => false,
    };
    colour
        && level.compression == Compression::Jpeg
        && level.bits_per_sample == 8
        && level.alpha == Alpha::None
}

/// A stored JPEG tile of `level` as a standalone JPEG file: the level's `JPEGTables` spliced in
/// front, and, for RGB stored without conversion (Photometric RGB and no JFIF or Adobe marker),
/// an Adobe marker that says so, so that every decoder reads the colours the tile decoder reads.
/// `None` when the tile is not a whole frame of the tile's size with the level's components.
pub(crate) fn standalone_jpeg(level: &Level, tile: &[u8]) -> Option<Bytes> {
    const SOI: [u8; 2] = [0xFF, 0xD8];
    const EOI: [u8; 2] = [0xFF, 0xD9];
    if !sendable(level) || !tile.starts_with(&SOI) {
        return None;
    }
    let head: &[u8] = match level.jpeg_tables.as_deref() {
        Some(t) if t.len() > 4 => {
            if !t.starts_with(&SOI) || !t.ends_with(&EOI) {
                return None;
            }
            &t[..t.len() - 2]
        }
        _ => &SOI,
    };
    let mut whole = Vec::new();
    whole.try_reserve_exact(head.len() + tile.len()).ok()?;
    whole.extend_from_slice(head);
    whole.extend_from_slice(&tile[2..]);
    let segments = jpeg_segments(&whole);
    // The frame: the tile's size, the level's components.
    let frame = segments
        .iter()
        .find(|(_, m, _)| matches!(m, 0xC0..=0xC2))
        .map(|(_, _, p)| *p)?;
    let (h, w, n) = match frame {
        [_, h0, h1, w0, w1, n, ..] => (
            u16::from_be_bytes([*h0, *h1]),
            u16::from_be_bytes([*w0, *w1]),
            *n,
        ),
        _ => return None,
    };
    if (u32::from(w), u32::from(h)) != (level.tile_width, level.tile_height)
        || u16::from(n) != level.samples_per_pixel
    {
        return None;
    }
    let marked = segments.iter().any(|(_, m, p)| {
        (*m == 0xE0 && p.starts_with(b"JFIF\0")) || (*m == 0xEE && p.starts_with(b"Adobe"))
    });
    if level.photometric == Photometric::Rgb && !marked {
        // APP14 "Adobe", version 100, flags 0, 0, transform 0: the components are RGB.
        const ADOBE_RGB: [u8; 16] = [
            0xFF, 0xEE, 0x00, 0x0E, b'A', b'd', b'o', b'b', b'e', 0x00, 0x64, 0x00, 0x00, 0x00,
            0x00, 0x00,
        ];
        let mut out = Vec::new();
        out.try_reserve_exact(whole.len() + ADOBE_RGB.len()).ok()?;
        out.extend_from_slice(&SOI);
        out.extend_from_slice(&ADOBE_RGB);
        out.extend_from_slice(&whole[2..]);
        return Some(out.into());
    }
    Some(whole.into())
}
