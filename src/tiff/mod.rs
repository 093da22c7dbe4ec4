//! Tiled TIFF pyramids, read by byte range: only the IFDs and the tiles a region needs.
//!
//! [`read_pyramid`] walks the structure of a tiled TIFF or BigTIFF file (the main IFD chain and
//! the SubIFDs of its first image) through [`SourceObject::read_range`](crate::source::SourceObject::read_range),
//! and collects every reduced-resolution copy of the first image as a [`Level`], largest first.
//! [`TiffPyramid::level_for`] picks the level a render needs, [`TiffPyramid::tiles`] the tiles
//! that cover a rectangle of it, and [`read_region`] fetches exactly those tiles, decodes them
//! ([`decode_tile`]: none, LZW, Deflate with or without the horizontal predictor, JPEG with
//! shared `JPEGTables`) and crops them into one [`Pixels`](crate::pixels::Pixels) buffer. [`assemble`] is the
//! CPU-bound half of [`read_region`] on its own, for callers that fetch the bytes themselves and
//! decode on a blocking pool.
//!
//! A file that is not a tiled pyramid (strips, a first image that is not tiled, 16-bit or planar
//! samples, an unsupported photometric interpretation) is an [`Error`](crate::Error) from [`read_pyramid`]:
//! the caller falls back to the whole-file decoder in [`codec`](crate::codec). Hostile files are
//! bounded: at most 64 IFDs of at most 4096 entries, at most 10 million tiles per level, every
//! offset inside the file, loops in the IFD chain detected, every buffer checked against a
//! [`Budget`](crate::pixels::Budget) before it is allocated.

mod ifd;
mod mosaic;
mod passthrough;
mod region;
mod render;
mod tile;

#[cfg(test)]
pub(crate) mod tests;

use std::fmt;
use std::ops::Range;

use bytes::Bytes;

pub use self::ifd::read_pyramid;
pub use self::mosaic::join_jpeg_tiles;
pub(crate) use self::passthrough::{standalone_jpeg, stored_jpeg_tile};
pub use self::region::assemble;
pub(crate) use self::region::fetch_tiles;
#[cfg(test)]
pub(crate) use self::region::read_region;
pub(crate) use self::render::{
    level_input, passthrough, read_usable_pyramid, read_usable_pyramid_recorded, replay_pyramid,
    stored_quality,
};
pub use self::tile::decode_tile;

use crate::codec::Orientation;
use crate::pixels::{Layout, Rect};

/// The Compression tag (259) of a [`Level`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compression {
    /// 1: uncompressed.
    None,
    /// 5: LZW (TIFF flavour, MSB first).
    Lzw,
    /// 8 or 32946: Deflate (zlib).
    Deflate,
    /// 32773: PackBits (Apple's byte-oriented run-length encoding).
    PackBits,
    /// 7: "new-style" JPEG (TIFF Technical Note 2), with or without shared `JPEGTables`.
    Jpeg,
    /// 50000: Zstandard (libtiff's `COMPRESSION_ZSTD`), with or without the predictor.
    Zstd,
    /// 50001: WebP (libtiff's `COMPRESSION_WEBP`): every tile a whole WebP image, lossy or
    /// lossless, RGB or RGBA.
    WebP,
    /// Any other value. [`read_pyramid`] refuses a level that has it (the whole-file decoder
    /// then reads the file or names the compression), and so does [`decode_tile`].
    Other(u16),
}

impl Compression {
    /// The compression a Compression tag value stands for.
    pub fn from_tag(value: u16) -> Self {
        match value {
            1 => Self::None,
            5 => Self::Lzw,
            7 => Self::Jpeg,
            8 | 32946 => Self::Deflate,
            32773 => Self::PackBits,
            50000 => Self::Zstd,
            50001 => Self::WebP,
            other => Self::Other(other),
        }
    }
}

/// The PhotometricInterpretation tag (262) of a [`Level`]: the ones a pyramid may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Photometric {
    /// 0: gray, 0 is white (inverted when decoded).
    WhiteIsZero,
    /// 1: gray, 0 is black.
    BlackIsZero,
    /// 2: RGB.
    Rgb,
    /// 6: YCbCr (full range, as JFIF); converted to RGB when decoded.
    YCbCr,
}

/// The alpha channel of a [`Level`], from its ExtraSamples tag (338).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Alpha {
    /// No samples beyond the colour ones.
    None,
    /// The first extra sample is alpha, not premultiplied (ExtraSamples 2, or no ExtraSamples
    /// tag, as the whole-file decoder reads it).
    Unassociated,
    /// The first extra sample is premultiplied alpha (ExtraSamples 1); decoding divides it out.
    Associated,
}

/// One resolution of a [`TiffPyramid`]: a tiled, chunky, 8-bit image file directory.
///
/// The fields are what [`read_pyramid`] found and checked; [`decode_tile`] and [`assemble`]
/// check them again where it matters, so a hand-edited `Level` gives errors, never panics.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Level {
    /// Width of the image, in pixels.
    pub width: u32,
    /// Height of the image, in pixels.
    pub height: u32,
    /// Width of every tile (edge tiles are padded to it in the file).
    pub tile_width: u32,
    /// Height of every tile.
    pub tile_height: u32,
    /// Samples per pixel, extra samples included.
    pub samples_per_pixel: u16,
    /// Bits per sample: always 8 (other depths are refused by [`read_pyramid`]).
    pub bits_per_sample: u16,
    /// How each tile is compressed.
    pub compression: Compression,
    /// The colour model of the samples.
    pub photometric: Photometric,
    /// The Predictor tag (317): 1 none, 2 horizontal differencing (per row, per sample).
    pub predictor: u16,
    /// Whether and how the first extra sample is alpha.
    pub alpha: Alpha,
    /// The shared JPEG tables (tag 347) spliced in front of every JPEG tile, if any.
    pub jpeg_tables: Option<Bytes>,
    /// File offset of each tile, row by row.
    pub tile_offsets: Vec<u64>,
    /// Compressed size of each tile, row by row; 0 marks an absent (sparse) tile, decoded as
    /// zeros.
    pub tile_byte_counts: Vec<u64>,
    /// File offset of the image file directory this level was read from.
    pub ifd_offset: u64,
}

impl fmt::Debug for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Level")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("tile_width", &self.tile_width)
            .field("tile_height", &self.tile_height)
            .field("samples_per_pixel", &self.samples_per_pixel)
            .field("bits_per_sample", &self.bits_per_sample)
            .field("compression", &self.compression)
            .field("photometric", &self.photometric)
            .field("predictor", &self.predictor)
            .field("alpha", &self.alpha)
            .field("jpeg_tables", &self.jpeg_tables.as_ref().map(Bytes::len))
            .field("tiles", &self.tile_offsets.len())
            .field("ifd_offset", &self.ifd_offset)
            .finish()
    }
}

impl Level {
    /// The layout [`decode_tile`] and [`read_region`] produce for this level: gray or RGB, with
    /// alpha when the level has it.
    ///
    pub fn layout(&self) -> Layout {
        let colour = match self.photometric {
            Photometric::WhiteIsZero | Photometric::BlackIsZero => Layout::Gray,
            Photometric::Rgb | Photometric::YCbCr => Layout::Rgb,
        };
        match self.alpha {
            Alpha::None => colour,
            Alpha::Unassociated | Alpha::Associated => colour.with_alpha(),
        }
    }

    /// Number of tile columns.
    ///
    pub fn tiles_across(&self) -> u32 {
        self.width.div_ceil(self.tile_width.max(1))
    }

    /// Number of tile rows.
    ///
    pub fn tiles_down(&self) -> u32 {
        self.height.div_ceil(self.tile_height.max(1))
    }

    /// `rect` clipped to the image, or `None` when nothing of it is inside.
    fn clip(&self, rect: Rect) -> Option<Rect> {
        let right = u64::from(rect.x) + u64::from(rect.w);
        let bottom = u64::from(rect.y) + u64::from(rect.h);
        let right = right.min(u64::from(self.width)) as u32;
        let bottom = bottom.min(u64::from(self.height)) as u32;
        (rect.x < right && rect.y < bottom)
            .then(|| Rect::new(rect.x, rect.y, right - rect.x, bottom - rect.y))
    }

    /// The file range of tile (`col`, `row`), if the level has such a tile.
    fn tile_range(&self, col: u32, row: u32) -> Option<Range<u64>> {
        let index =
            usize::try_from(u64::from(row) * u64::from(self.tiles_across()) + u64::from(col))
                .ok()?;
        let offset = *self.tile_offsets.get(index)?;
        let count = *self.tile_byte_counts.get(index)?;
        if count == 0 {
            return Some(offset..offset);
        }
        Some(offset..offset.checked_add(count)?)
    }
}

/// One tile of a level that a rectangle needs: its column and row and its bytes in the file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TileRef {
    /// Tile column, from 0 at the left.
    pub col: u32,
    /// Tile row, from 0 at the top.
    pub row: u32,
    /// The compressed bytes in the file (empty for an absent tile).
    pub range: Range<u64>,
}

/// The levels of a tiled TIFF pyramid, largest first, as [`read_pyramid`] found them.
///
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TiffPyramid {
    levels: Vec<Level>,
    len: u64,
    orientation: Orientation,
    icc_profile: Option<crate::codec::icc::Profile>,
}

impl TiffPyramid {
    /// The embedded colour profile of the full image (the `ICCProfile` tag), if any.
    pub(crate) fn icc_profile(&self) -> Option<&[u8]> {
        self.icc_profile.as_deref()
    }

    /// The levels, largest (the full image, the first IFD) first, each strictly smaller than
    /// the one before. Never empty.
    ///
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// Level `index`, if there is one.
    ///
    pub fn level(&self, index: usize) -> Option<&Level> {
        self.levels.get(index)
    }

    /// Length of the file the pyramid was read from, in bytes.
    ///
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// Width of the full image (level 0), as stored (before [`orientation`](Self::orientation)).
    ///
    pub fn width(&self) -> u32 {
        self.levels.first().map_or(0, |l| l.width)
    }

    /// Height of the full image (level 0), as stored.
    ///
    pub fn height(&self) -> u32 {
        self.levels.first().map_or(0, |l| l.height)
    }

    /// The Orientation tag (274) of the first image. Pixels are read as stored; applying it is
    /// the caller's job (the whole-file decoder applies it).
    ///
    pub fn orientation(&self) -> Orientation {
        self.orientation
    }

    /// How many full-image pixels one pixel of level `index` spans, across and down (1.0 for
    /// level 0); `None` when there is no such level. A level within a pixel of a power-of-two
    /// reduction (writers round down or up: libvips makes 6291 of 25167 / 4) spans exactly that
    /// power of two, so that tile grids line up with it.
    ///
    pub fn downsample(&self, index: usize) -> Option<(f64, f64)> {
        let level = self.level(index)?;
        let (w, h) = (self.width(), self.height());
        for k in 0..32 {
            let f = 1u64 << k;
            let (nw, nh) = (f64::from(w) / f as f64, f64::from(h) / f as f64);
            if (f64::from(level.width) - nw).abs() < 1.0
                && (f64::from(level.height) - nh).abs() < 1.0
            {
                return Some((f as f64, f as f64));
            }
            if nw < f64::from(level.width) - 1.0 {
                break;
            }
        }
        Some((
            f64::from(w) / f64::from(level.width.max(1)),
            f64::from(h) / f64::from(level.height.max(1)),
        ))
    }

    /// The smallest level still at least `scale` times the full size in both directions (by
    /// its [`downsample`](Self::downsample)): the level to render an output of `scale` x the
    /// region's size from without upsampling. `scale` >= 1 (or NaN) gives level 0, a tiny
    /// `scale` the smallest level.
    ///
    pub fn level_for(&self, scale: f64) -> usize {
        if scale.is_nan() || scale >= 1.0 {
            return 0;
        }
        // A relative slack of 1e-9 absorbs the rounding of `scale` = output / region.
        let fits = |i: usize| {
            self.downsample(i)
                .is_some_and(|(dx, dy)| (1.0 / dx).min(1.0 / dy) * (1.0 + 1e-9) >= scale)
        };
        (0..self.levels.len()).rev().find(|&i| fits(i)).unwrap_or(0)
    }

    /// The tiles of level `index` that intersect `rect` (in that level's pixels), row by row:
    /// exactly those, with their byte ranges. `rect` is clipped to the level; an empty or
    /// outside rectangle, or a level that does not exist, gives no tiles.
    ///
    pub fn tiles(&self, index: usize, rect: Rect) -> Vec<TileRef> {
        let Some(level) = self.level(index) else {
            return Vec::new();
        };
        let Some(r) = level.clip(rect) else {
            return Vec::new();
        };
        let (tw, th) = (level.tile_width.max(1), level.tile_height.max(1));
        let (col0, col1) = (r.x / tw, (r.right() - 1) / tw);
        let (row0, row1) = (r.y / th, (r.bottom() - 1) / th);
        let count = (col1 - col0 + 1) as usize * (row1 - row0 + 1) as usize;
        let mut out = Vec::with_capacity(count.min(level.tile_offsets.len()));
        for row in row0..=row1 {
            for col in col0..=col1 {
                if let Some(range) = level.tile_range(col, row) {
                    out.push(TileRef { col, row, range });
                }
            }
        }
        out
    }
}
