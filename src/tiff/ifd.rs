//! The structure of a TIFF or BigTIFF file, read by byte ranges: the header, the image file
//! directories (the main chain and the SubIFDs of the first one), and the values of the few
//! tags a pyramid needs.

use std::collections::HashSet;

use bytes::Bytes;

use super::{Alpha, Compression, Level, Photometric, TiffPyramid};
use crate::Error;
use crate::codec::Orientation;
use crate::source::SourceObject;
use crate::source::recording::Recording;

/// How much a read for the header or an IFD fetches at least, so that neighbouring IFDs and
/// their values come with it.
const READ_AHEAD: u64 = 64 * 1024;
/// Reads larger than this (big tile arrays) are parsed and dropped, not kept for reuse.
const KEEP_MAX: u64 = 1 << 20;
/// The most a remote file's tail read takes. In a pyramid written level after level (libtiff,
/// libvips) each level's IFD follows its tiles, so the small levels' IFDs all lie near the end of
/// the file, and one read there, alongside the first IFD's, saves a round trip for each.
const TAIL: u64 = 2 << 20;
/// The most IFDs walked, main chain and SubIFDs together.
const MAX_IFDS: usize = 64;
/// The most entries one IFD may have.
const MAX_ENTRIES: u64 = 4096;
/// The most tiles one level may have.
const MAX_TILES: u64 = 10_000_000;
/// The largest `JPEGTables` value accepted.
const MAX_TABLES: u64 = 1 << 20;
/// The most values a per-sample or scalar tag may have (and the most samples per pixel).
const MAX_SAMPLES: u64 = 16;

/// The tags read; every other entry is skipped.
mod tag {
    pub(super) const NEW_SUBFILE_TYPE: u16 = 254;
    pub(super) const IMAGE_WIDTH: u16 = 256;
    pub(super) const IMAGE_LENGTH: u16 = 257;
    pub(super) const BITS_PER_SAMPLE: u16 = 258;
    pub(super) const COMPRESSION: u16 = 259;
    pub(super) const PHOTOMETRIC: u16 = 262;
    pub(super) const ORIENTATION: u16 = 274;
    pub(super) const SAMPLES_PER_PIXEL: u16 = 277;
    pub(super) const PLANAR_CONFIGURATION: u16 = 284;
    pub(super) const PREDICTOR: u16 = 317;
    pub(super) const TILE_WIDTH: u16 = 322;
    pub(super) const TILE_LENGTH: u16 = 323;
    pub(super) const TILE_OFFSETS: u16 = 324;
    pub(super) const TILE_BYTE_COUNTS: u16 = 325;
    pub(super) const SUB_IFDS: u16 = 330;
    pub(super) const EXTRA_SAMPLES: u16 = 338;
    pub(super) const SAMPLE_FORMAT: u16 = 339;
    pub(super) const JPEG_TABLES: u16 = 347;
    pub(super) const YCBCR_SUBSAMPLING: u16 = 530;
    pub(super) const ICC_PROFILE: u16 = 34675;

    /// Every tag above.
    pub(super) const WANTED: [u16; 20] = [
        NEW_SUBFILE_TYPE,
        IMAGE_WIDTH,
        IMAGE_LENGTH,
        BITS_PER_SAMPLE,
        COMPRESSION,
        PHOTOMETRIC,
        ORIENTATION,
        SAMPLES_PER_PIXEL,
        PLANAR_CONFIGURATION,
        PREDICTOR,
        TILE_WIDTH,
        TILE_LENGTH,
        TILE_OFFSETS,
        TILE_BYTE_COUNTS,
        SUB_IFDS,
        EXTRA_SAMPLES,
        SAMPLE_FORMAT,
        JPEG_TABLES,
        YCBCR_SUBSAMPLING,
        ICC_PROFILE,
    ];
}

/// A one-line source error about the file's structure.
fn err(message: impl std::fmt::Display) -> Error {
    Error::source(format!("TIFF pyramid: {message}"))
}

/// `N` bytes of `b` from `at`, zeros where `b` is too short (callers check lengths first).
fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    if let Some(src) = b.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

/// Byte order and offset size of a file.
#[derive(Debug, Clone, Copy)]
struct Format {
    big_endian: bool,
    bigtiff: bool,
}

impl Format {
    fn u16(self, b: &[u8], at: usize) -> u16 {
        let a = array(b, at);
        if self.big_endian {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }

    fn u32(self, b: &[u8], at: usize) -> u32 {
        let a = array(b, at);
        if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }

    fn u64(self, b: &[u8], at: usize) -> u64 {
        let a = array(b, at);
        if self.big_endian {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        }
    }

    /// An offset as the file stores it: 4 bytes, or 8 in BigTIFF.
    fn offset(self, b: &[u8], at: usize) -> u64 {
        if self.bigtiff {
            self.u64(b, at)
        } else {
            u64::from(self.u32(b, at))
        }
    }

    /// Size of the value field of an entry: 4 bytes, or 8 in BigTIFF.
    fn field_len(self) -> u64 {
        if self.bigtiff { 8 } else { 4 }
    }

    /// One unsigned value of type `typ` at `at`.
    fn uint(self, typ: u16, b: &[u8], at: usize) -> u64 {
        match typ {
            3 => u64::from(self.u16(b, at)),
            4 | 13 => u64::from(self.u32(b, at)),
            16 | 18 => self.u64(b, at),
            _ => u64::from(b.get(at).copied().unwrap_or(0)),
        }
    }
}

/// Bytes per value of a TIFF field type; `None` for unknown types.
fn type_size(typ: u16) -> Option<u64> {
    match typ {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 | 16 | 17 | 18 => Some(8),
        _ => None,
    }
}

/// A tag's human name, for messages.
fn name(tag: u16) -> &'static str {
    match tag {
        tag::NEW_SUBFILE_TYPE => "NewSubfileType",
        tag::IMAGE_WIDTH => "ImageWidth",
        tag::IMAGE_LENGTH => "ImageLength",
        tag::BITS_PER_SAMPLE => "BitsPerSample",
        tag::COMPRESSION => "Compression",
        tag::PHOTOMETRIC => "PhotometricInterpretation",
        tag::ORIENTATION => "Orientation",
        tag::SAMPLES_PER_PIXEL => "SamplesPerPixel",
        tag::PLANAR_CONFIGURATION => "PlanarConfiguration",
        tag::PREDICTOR => "Predictor",
        tag::TILE_WIDTH => "TileWidth",
        tag::TILE_LENGTH => "TileLength",
        tag::TILE_OFFSETS => "TileOffsets",
        tag::TILE_BYTE_COUNTS => "TileByteCounts",
        tag::SUB_IFDS => "SubIFDs",
        tag::EXTRA_SAMPLES => "ExtraSamples",
        tag::SAMPLE_FORMAT => "SampleFormat",
        tag::JPEG_TABLES => "JPEGTables",
        tag::YCBCR_SUBSAMPLING => "YCbCrSubSampling",
        _ => "a tag",
    }
}

/// One IFD entry of a wanted tag.
#[derive(Debug, Clone)]
struct Entry {
    tag: u16,
    typ: u16,
    count: u64,
    /// The value field: the values themselves when they fit, else their offset.
    field: [u8; 8],
}

/// One image file directory: its wanted entries and the offset of the next one.
#[derive(Debug)]
struct Ifd {
    offset: u64,
    entries: Vec<Entry>,
    next: u64,
}

impl Ifd {
    fn get(&self, tag: u16) -> Option<&Entry> {
        self.entries.iter().find(|e| e.tag == tag)
    }

    fn has(&self, tag: u16) -> bool {
        self.get(tag).is_some()
    }
}

/// Range reads of one file, remembering what was fetched so that IFDs and values close to each
/// other cost one read.
struct Reader<'a, O> {
    obj: &'a O,
    len: u64,
    format: Format,
    chunks: Vec<(u64, Bytes)>,
    /// Every range parsed, when the parse is recorded.
    recording: Option<Recording>,
}

impl<O: SourceObject> Reader<'_, O> {
    /// `n` bytes at `offset`, which must lie inside the file.
    async fn bytes(&mut self, offset: u64, n: u64, what: &str) -> Result<Bytes, Error> {
        let end = offset
            .checked_add(n)
            .filter(|&end| end <= self.len)
            .ok_or_else(|| {
                err(format!(
                    "{what} at offset {offset} ({n} bytes) runs past the end of the file ({} bytes)",
                    self.len
                ))
            })?;
        let n_usize = usize::try_from(n).map_err(|_| err(format!("{what} is too large")))?;
        let cached = self.chunks.iter().find_map(|(start, b)| {
            let covers = offset >= *start && end <= *start + b.len() as u64;
            covers.then(|| {
                let from = (offset - start) as usize;
                b.slice(from..from + n_usize)
            })
        });
        if let Some(b) = cached {
            self.record(offset, &b);
            return Ok(b);
        }
        let fetch_end = if n < READ_AHEAD {
            offset.saturating_add(READ_AHEAD).min(self.len)
        } else {
            end
        };
        let mut got = self.obj.read_range(offset..fetch_end).await?;
        if got.len() < n_usize {
            return Err(err(format!(
                "the file is truncated: {what} at offset {offset} needs {n} bytes, {} read",
                got.len()
            )));
        }
        got.truncate(usize::try_from(fetch_end - offset).unwrap_or(usize::MAX));
        let out = got.slice(..n_usize);
        if got.len() as u64 <= KEEP_MAX {
            self.chunks.push((offset, got));
        }
        self.record(offset, &out);
        Ok(out)
    }

    fn record(&mut self, offset: u64, bytes: &Bytes) {
        if let Some(r) = &mut self.recording {
            r.add(offset, bytes.clone());
        }
    }

    /// The byte order, version and first IFD offset.
    async fn header(&mut self) -> Result<u64, Error> {
        if self.len < 8 {
            return Err(err("the file is too short for a TIFF header"));
        }
        let head = self.bytes(0, 8, "the header").await?;
        self.format.big_endian = match &head[..2] {
            b"II" => false,
            b"MM" => true,
            _ => return Err(err("not a TIFF file")),
        };
        match self.format.u16(&head, 2) {
            42 => {
                self.format.bigtiff = false;
                Ok(u64::from(self.format.u32(&head, 4)))
            }
            43 => {
                self.format.bigtiff = true;
                let head = self.bytes(0, 16, "the BigTIFF header").await?;
                if self.format.u16(&head, 4) != 8 || self.format.u16(&head, 6) != 0 {
                    return Err(err("BigTIFF header with an offset size other than 8"));
                }
                Ok(self.format.u64(&head, 8))
            }
            v => Err(err(format!("unknown TIFF version {v}"))),
        }
    }

    /// The IFD at `offset`.
    async fn ifd(&mut self, offset: u64) -> Result<Ifd, Error> {
        let f = self.format;
        let (count_len, entry_len, next_len) = if f.bigtiff { (8, 20, 8) } else { (2, 12, 4) };
        let head = self.bytes(offset, count_len, "an IFD").await?;
        let n = if f.bigtiff {
            f.u64(&head, 0)
        } else {
            u64::from(f.u16(&head, 0))
        };
        if n == 0 {
            return Err(err(format!("the IFD at offset {offset} is empty")));
        }
        if n > MAX_ENTRIES {
            return Err(err(format!(
                "the IFD at offset {offset} has {n} entries, more than {MAX_ENTRIES}"
            )));
        }
        let body = self
            .bytes(offset + count_len, n * entry_len + next_len, "an IFD")
            .await?;
        let (list, next) = body.split_at((n * entry_len) as usize);
        let mut entries = Vec::new();
        for e in list.chunks_exact(entry_len as usize) {
            let tag = f.u16(e, 0);
            if !tag::WANTED.contains(&tag) || entries.iter().any(|x: &Entry| x.tag == tag) {
                continue;
            }
            let (count, field) = if f.bigtiff {
                (f.u64(e, 4), array::<8>(e, 12))
            } else {
                let mut field = [0; 8];
                field[..4].copy_from_slice(&array::<4>(e, 8));
                (u64::from(f.u32(e, 4)), field)
            };
            entries.push(Entry {
                tag,
                typ: f.u16(e, 2),
                count,
                field,
            });
        }
        Ok(Ifd {
            offset,
            entries,
            next: f.offset(next, 0),
        })
    }

    /// The value bytes of `e` (`size` bytes): from the field, or read from the file.
    async fn value_bytes(&mut self, e: &Entry, size: u64) -> Result<Bytes, Error> {
        if size <= self.format.field_len() {
            Ok(Bytes::copy_from_slice(&e.field[..size as usize]))
        } else {
            let offset = self.format.offset(&e.field, 0);
            self.bytes(offset, size, name(e.tag)).await
        }
    }

    /// The unsigned integer values of `e`, at most `max` of them.
    async fn uints(&mut self, e: &Entry, max: u64) -> Result<Vec<u64>, Error> {
        let what = name(e.tag);
        if !matches!(e.typ, 1 | 3 | 4 | 13 | 16 | 18) {
            return Err(err(format!(
                "{what} has field type {}, not an unsigned integer",
                e.typ
            )));
        }
        if e.count > max {
            return Err(err(format!(
                "{what} has {} values, more than {max}",
                e.count
            )));
        }
        let size = type_size(e.typ).unwrap_or(1);
        let bytes = self.value_bytes(e, e.count * size).await?;
        let mut out = Vec::new();
        out.try_reserve_exact(e.count as usize)
            .map_err(|_| err(format!("cannot allocate {} values of {what}", e.count)))?;
        out.extend(
            bytes
                .chunks_exact(size as usize)
                .map(|c| self.format.uint(e.typ, c, 0)),
        );
        Ok(out)
    }

    /// All values of `tag` in `ifd`, `None` when the tag is absent.
    async fn values(&mut self, ifd: &Ifd, tag: u16, max: u64) -> Result<Option<Vec<u64>>, Error> {
        match ifd.get(tag) {
            Some(e) => self.uints(e, max).await.map(Some),
            None => Ok(None),
        }
    }

    /// The first value of `tag` in `ifd`, `None` when the tag is absent or has no values.
    async fn scalar(&mut self, ifd: &Ifd, tag: u16) -> Result<Option<u64>, Error> {
        Ok(self
            .values(ifd, tag, MAX_SAMPLES)
            .await?
            .and_then(|v| v.first().copied()))
    }

    /// The first value of `tag` as a `u16`, `default` when absent.
    async fn short(&mut self, ifd: &Ifd, tag: u16, default: u16) -> Result<u16, Error> {
        match self.scalar(ifd, tag).await? {
            None => Ok(default),
            Some(v) => u16::try_from(v).map_err(|_| err(format!("{} is {v}", name(tag)))),
        }
    }

    /// The first value of `tag` as a non-zero `u32`; absent is an error.
    async fn dimension(&mut self, ifd: &Ifd, tag: u16) -> Result<u32, Error> {
        let v = self.scalar(ifd, tag).await?.ok_or_else(|| {
            err(format!(
                "the IFD at offset {} has no {}",
                ifd.offset,
                name(tag)
            ))
        })?;
        u32::try_from(v)
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| err(format!("{} is {v}", name(tag))))
    }

    /// Walk the chain of IFDs starting at `offset` into `ifds`.
    async fn chain(
        &mut self,
        mut offset: u64,
        seen: &mut HashSet<u64>,
        ifds: &mut Vec<Ifd>,
    ) -> Result<(), Error> {
        while offset != 0 {
            if !seen.insert(offset) {
                return Err(err(format!("the IFD chain loops back to offset {offset}")));
            }
            if ifds.len() >= MAX_IFDS {
                return Err(err(format!("more than {MAX_IFDS} IFDs")));
            }
            let ifd = self.ifd(offset).await?;
            offset = ifd.next;
            ifds.push(ifd);
        }
        Ok(())
    }

    /// A [`Level`] from a tiled IFD, every tag checked.
    async fn level(&mut self, ifd: &Ifd) -> Result<Level, Error> {
        let width = self.dimension(ifd, tag::IMAGE_WIDTH).await?;
        let height = self.dimension(ifd, tag::IMAGE_LENGTH).await?;
        let tile_width = self.dimension(ifd, tag::TILE_WIDTH).await?;
        let tile_height = self.dimension(ifd, tag::TILE_LENGTH).await?;

        let samples_per_pixel = self.short(ifd, tag::SAMPLES_PER_PIXEL, 1).await?;
        if samples_per_pixel == 0 || u64::from(samples_per_pixel) > MAX_SAMPLES {
            return Err(err(format!(
                "{samples_per_pixel} samples per pixel are not supported"
            )));
        }
        let bits = self
            .values(ifd, tag::BITS_PER_SAMPLE, MAX_SAMPLES)
            .await?
            .unwrap_or_else(|| vec![1]);
        if let Some(&b) = bits.iter().find(|&&b| b != 8) {
            return Err(err(format!("{b}-bit samples are not supported")));
        }
        let formats = self
            .values(ifd, tag::SAMPLE_FORMAT, MAX_SAMPLES)
            .await?
            .unwrap_or_default();
        if formats.iter().any(|&f| f != 1) {
            return Err(err("signed or floating-point samples are not supported"));
        }
        match self.short(ifd, tag::PLANAR_CONFIGURATION, 1).await? {
            1 => {}
            2 if samples_per_pixel == 1 => {}
            2 => return Err(err("planar (separate) samples are not supported")),
            p => return Err(err(format!("PlanarConfiguration {p} is not supported"))),
        }
        let compression = Compression::from_tag(self.short(ifd, tag::COMPRESSION, 1).await?);
        if let Compression::Other(c) = compression {
            return Err(err(format!("compression {c} is not supported in tiles")));
        }
        let photometric = match self.scalar(ifd, tag::PHOTOMETRIC).await? {
            Some(0) => Photometric::WhiteIsZero,
            Some(1) => Photometric::BlackIsZero,
            Some(2) => Photometric::Rgb,
            Some(6) => Photometric::YCbCr,
            Some(p) => {
                return Err(err(format!(
                    "photometric interpretation {p} is not supported"
                )));
            }
            None => return Err(err("no photometric interpretation")),
        };
        let colours = match photometric {
            Photometric::WhiteIsZero | Photometric::BlackIsZero => 1,
            Photometric::Rgb | Photometric::YCbCr => 3,
        };
        if samples_per_pixel < colours {
            return Err(err(format!(
                "{samples_per_pixel} samples per pixel are too few for {photometric:?}"
            )));
        }
        let alpha = if samples_per_pixel == colours {
            Alpha::None
        } else {
            let extra = self.values(ifd, tag::EXTRA_SAMPLES, MAX_SAMPLES).await?;
            match extra.and_then(|v| v.first().copied()) {
                Some(1) => Alpha::Associated,
                _ => Alpha::Unassociated,
            }
        };
        let predictor = self.short(ifd, tag::PREDICTOR, 1).await?;
        if !matches!(predictor, 1 | 2) {
            return Err(err(format!("predictor {predictor} is not supported")));
        }
        if photometric == Photometric::YCbCr && compression != Compression::Jpeg {
            let sub = self
                .values(ifd, tag::YCBCR_SUBSAMPLING, MAX_SAMPLES)
                .await?
                .unwrap_or_else(|| vec![2, 2]);
            if sub.get(..2) != Some(&[1, 1]) {
                return Err(err(
                    "subsampled YCbCr is only supported with JPEG compression",
                ));
            }
        }
        let jpeg_tables = match ifd.get(tag::JPEG_TABLES) {
            Some(e) if compression == Compression::Jpeg => {
                if !matches!(e.typ, 1 | 7) || e.count > MAX_TABLES {
                    return Err(err(format!(
                        "JPEGTables of type {} and {} bytes is not supported",
                        e.typ, e.count
                    )));
                }
                let b = self.value_bytes(e, e.count).await?;
                Some(Bytes::copy_from_slice(&b))
            }
            _ => None,
        };

        let across = u64::from(width.div_ceil(tile_width));
        let down = u64::from(height.div_ceil(tile_height));
        let tiles = across * down;
        if tiles > MAX_TILES {
            return Err(err(format!(
                "{tiles} tiles in one image, more than {MAX_TILES}"
            )));
        }
        let mut arrays = [Vec::new(), Vec::new()];
        for (array, tag) in arrays
            .iter_mut()
            .zip([tag::TILE_OFFSETS, tag::TILE_BYTE_COUNTS])
        {
            let e = ifd
                .get(tag)
                .ok_or_else(|| err(format!("no {}", name(tag))))?;
            *array = self.uints(e, MAX_TILES).await?;
            if array.len() as u64 != tiles {
                return Err(err(format!(
                    "{} has {} values for {tiles} tiles",
                    name(tag),
                    array.len()
                )));
            }
        }
        let [tile_offsets, tile_byte_counts] = arrays;
        for (i, (&offset, &count)) in tile_offsets.iter().zip(&tile_byte_counts).enumerate() {
            if count > 0 && offset.checked_add(count).is_none_or(|end| end > self.len) {
                return Err(err(format!(
                    "tile {i} (offset {offset}, {count} bytes) lies past the end of the file"
                )));
            }
        }
        Ok(Level {
            width,
            height,
            tile_width,
            tile_height,
            samples_per_pixel,
            bits_per_sample: 8,
            compression,
            photometric,
            predictor,
            alpha,
            jpeg_tables,
            tile_offsets,
            tile_byte_counts,
            ifd_offset: ifd.offset,
        })
    }
}

/// The range of the tail read that goes with the first IFD's: the last eighth of the file, at
/// most [`TAIL`] bytes. Only for remote files (a local read costs no round trip) whose first IFD
/// lies in their second half, after the full image's tiles (a cloud-optimized GeoTIFF, IFDs
/// first, reads them with its header), and when it is more than one read-ahead.
fn tail_range<O: SourceObject>(obj: &O, len: u64, first: u64) -> Option<std::ops::Range<u64>> {
    let n = (len / 8).min(TAIL);
    let remote = obj.read_at_blocking(0, &mut []).is_none();
    (remote && first >= len / 2 && n > READ_AHEAD).then(|| len - n..len)
}

/// Whether an image of `w` x `h` has the aspect ratio of one of `w0` x `h0`, within 2% plus the
/// rounding of each side to whole pixels.
fn same_aspect((w, h): (u32, u32), (w0, h0): (u32, u32)) -> bool {
    let (w, h, w0, h0) = (f64::from(w), f64::from(h), f64::from(w0), f64::from(h0));
    (w * h0 - h * w0).abs() <= 0.02 * w * h0 + w0 + h0
}

/// Read the structure of a tiled TIFF or BigTIFF pyramid by byte ranges.
///
/// The first IFD is the full image; it must be tiled. Its reduced-resolution copies are the
/// other tiled images in the main IFD chain and among the SubIFDs (tag 330) of the first IFD
/// (and their chains), except transparency masks (NewSubfileType bit 2), the other pages of a
/// multi-page file (bit 1 without bit 0: only the first page is read) and images whose aspect
/// ratio differs from the full image's by more than 2% (labels, macro photos). Levels come
/// largest first, each strictly narrower and no taller than the one before (of equal sizes, the
/// first in file order is kept).
///
/// Reads: the first 64 KiB, then 64 KiB (or exactly what is needed, when more) at each IFD or
/// value not read yet. Values of tags other than the ones a pyramid needs are never read. From a
/// remote object whose IFDs follow the image data, the last eighth of the file (at most 2 MiB,
/// where the small levels' IFDs are) is read at the same time as the first IFD.
///
/// # Errors
///
/// [`ErrorKind::Source`](crate::ErrorKind::Source), with a one-line message, for a file that is
/// not a TIFF, is truncated, breaks a limit (64 IFDs, 4096 entries per IFD, 10 million tiles
/// per level, every offset inside the file, no loop in the IFD chain), is not a tiled pyramid
/// (the first image stored in strips), or has a level the tile decoder cannot read (not 8 bits
/// per sample, signed or floating-point samples, planar samples, a compression it does not
/// read, a photometric interpretation other than gray, RGB or YCbCr, a predictor other than 1 or 2, subsampled YCbCr without
/// JPEG). Errors from the source are passed on. Callers fall back to the whole-file decoder.
///
pub async fn read_pyramid<O: SourceObject>(obj: &O) -> Result<TiffPyramid, Error> {
    read(obj, None).await.map(|(p, _)| p)
}

/// [`read_pyramid`], and the recording of the bytes it parsed: replayed
/// ([`Replay`](crate::source::recording::Replay)), they make the same pyramid without the file.
pub(crate) async fn read_pyramid_recorded<O: SourceObject>(
    obj: &O,
) -> Result<(TiffPyramid, Recording), Error> {
    let (p, recording) = read(obj, Some(Recording::default())).await?;
    Ok((p, recording.unwrap_or_default()))
}

async fn read<O: SourceObject>(
    obj: &O,
    recording: Option<Recording>,
) -> Result<(TiffPyramid, Option<Recording>), Error> {
    let len = obj.metadata().len;
    let mut r = Reader {
        obj,
        len,
        format: Format {
            big_endian: false,
            bigtiff: false,
        },
        chunks: Vec::new(),
        recording,
    };
    let first = r.header().await?;
    if first == 0 {
        return Err(err("the file has no image"));
    }

    // The first IFD, then its SubIFDs with their chains, then the rest of the main chain.
    let mut seen = HashSet::new();
    let mut ifds = Vec::new();
    seen.insert(first);
    let ifd0 = match tail_range(obj, len, first) {
        // The tail, with the first IFD's read or as it (when the first IFD is in it). A failed
        // tail read only loses the head start: those IFDs are then read one by one.
        Some(tail) if first < tail.start => {
            let (ifd0, bytes) =
                futures_util::future::join(r.ifd(first), obj.read_range(tail.clone())).await;
            if let Ok(b) = bytes {
                r.chunks.push((tail.start, b));
            }
            ifd0?
        }
        Some(tail) => {
            if let Ok(b) = obj.read_range(tail.clone()).await {
                r.chunks.push((tail.start, b));
            }
            r.ifd(first).await?
        }
        None => r.ifd(first).await?,
    };
    let next = ifd0.next;
    let subifds = r.values(&ifd0, tag::SUB_IFDS, MAX_IFDS as u64).await?;
    ifds.push(ifd0);
    for offset in subifds.unwrap_or_default() {
        r.chain(offset, &mut seen, &mut ifds).await?;
    }
    r.chain(next, &mut seen, &mut ifds).await?;

    let tiled = |ifd: &Ifd| ifd.has(tag::TILE_WIDTH) && ifd.has(tag::TILE_OFFSETS);
    let full = &ifds[0];
    if !tiled(full) {
        return Err(err("not a tiled pyramid (the first image is not tiled)"));
    }
    let subfile = r.scalar(full, tag::NEW_SUBFILE_TYPE).await?.unwrap_or(0);
    if subfile & 4 != 0 {
        return Err(err("not a tiled pyramid (the first image is a mask)"));
    }
    let size0 = (
        r.dimension(full, tag::IMAGE_WIDTH).await?,
        r.dimension(full, tag::IMAGE_LENGTH).await?,
    );
    let orientation = r
        .scalar(full, tag::ORIENTATION)
        .await?
        .map_or(Orientation::NORMAL, |v| {
            Orientation::from_value(u32::try_from(v).unwrap_or(0))
        });

    // (size, index) of every candidate reduced level.
    let mut candidates = Vec::new();
    for (i, ifd) in ifds.iter().enumerate().skip(1) {
        if !tiled(ifd) {
            continue;
        }
        let subfile = r.scalar(ifd, tag::NEW_SUBFILE_TYPE).await?.unwrap_or(0);
        // A mask (bit 2), or another page of a multi-page file (bit 1) that is not also a
        // reduced image (bit 0).
        if subfile & 4 != 0 || subfile & 3 == 2 {
            continue;
        }
        let size = (
            r.dimension(ifd, tag::IMAGE_WIDTH).await?,
            r.dimension(ifd, tag::IMAGE_LENGTH).await?,
        );
        let smaller = size.0 <= size0.0 && size.1 <= size0.1 && size != size0;
        if smaller && same_aspect(size, size0) {
            candidates.push((size, i));
        }
    }
    // Widest first; of equal sizes the first in file order.
    candidates.sort_by_key(|&((w, h), i)| (std::cmp::Reverse(w), std::cmp::Reverse(h), i));

    let mut levels = vec![r.level(full).await?];
    let mut last = size0;
    for ((w, h), i) in candidates {
        if w < last.0 && h <= last.1 {
            levels.push(r.level(&ifds[i]).await?);
            last = (w, h);
        }
    }
    // The colour profile of the first image; one that is too large or not bytes is ignored.
    let icc_profile = match full.get(tag::ICC_PROFILE) {
        Some(e) if matches!(e.typ, 1 | 7) && e.count <= crate::codec::icc::MAX_PROFILE as u64 => {
            Some(crate::codec::icc::Profile::new(
                &r.value_bytes(e, e.count).await?,
            ))
        }
        _ => None,
    };
    let pyramid = TiffPyramid {
        levels,
        len,
        orientation,
        icc_profile,
    };
    Ok((pyramid, r.recording))
}
