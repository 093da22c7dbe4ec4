//! The tile-parts of a JPEG 2000 codestream, found from its TLM markers, and the smaller
//! codestream of a region's tiles.
//!
//! Handed a whole file and a decode area, OpenJPEG 2.5 reads far past the tiles of the area: to
//! check a tile's tile-part count it walks the header of every later tile-part of the file, one
//! stream-buffer read each. For a 512-pixel tile of a 25,000-pixel image in 1024-pixel tiles that
//! is about 20 MB in over a thousand reads, where the tiles hold about 1 MB: slow from a disk,
//! hundreds of round trips from an HTTP or S3 source.
//!
//! [`read_index`] reads a file's main header by range, once: where each tile-part of each tile
//! lies (from the TLM marker segments, or, without them, from the SOT marker of each tile-part,
//! one small read each) and the header bytes a decoder needs.
//! [`CodestreamIndex::read_region`] then fetches the tile-parts of the tiles an area touches (one
//! read per run of adjacent tile-parts) and joins them into a valid codestream of those tiles only:
//! the JP2 boxes a decoder needs (signature, file type, header: colour, palette, channel
//! definitions), the main header without its TLM markers, the tile-parts as stored, EOC. Decoded
//! with the same area, it gives the same pixels as the whole file.
//!
//! When a file's packets come resolution by resolution (RLCP or RPCL, or LRCP with one quality
//! layer) and its tile-part headers list their lengths (PLT, as Kakadu's `ORGgen_plt=yes` and
//! OpenJPEG's `PLT=YES` write them), the index also knows where each tile's data can be cut to
//! keep only its first resolutions (the `packets` submodule; read tile by tile, from its
//! tile-part headers, when a region first needs the tile: the `cuts` submodule): a decode at a
//! reduced resolution then reads only those, the packets of the others written as empty ones. When every component has the
//! same subsampling, it keeps each packet's place too, and a region reads only the packets of
//! the precincts within 16 samples of it (OpenJPEG decodes the code-blocks within 3 subband
//! samples, 6 or 7 of the resolution's): the others are written as empty packets as well, and
//! OpenJPEG, which would have skipped them, decodes the same pixels. A tile-part whose packets
//! change loses its PLT segments (and the main header its PLM), which would list the old
//! lengths; tile-parts moved next to their tile's others get an explicit length. This is what
//! makes a thumbnail or a tile of an untiled archival JP2 cost a small part of the file.
//!
//! A file of a single tile whose packets cannot be cut, with packed packet headers in its main
//! header (PPM, numbered across the whole codestream) or whose structure does not add up has no
//! index (`Ok(None)`): the caller lets OpenJPEG read the file. Hostile files are bounded: at most 64 boxes before the
//! codestream, 4 MiB of kept boxes, a 16 MiB main header, 2^20 tile-parts listed by TLM or 2^16
//! walked without, every tile-part inside the file and every fetched one checked against its
//! SOT marker; tile-part headers are read for packet lengths only in files of at most 4096
//! tile-parts, only when the first one has a PLT, at most 64 MiB of them and never more packet
//! lengths than the geometry allows (2^22 in all; 2^20 kept for the precincts).

use std::ops::Range;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::StreamExt;

use crate::Error;
use crate::source::SourceObject;
use crate::source::read_at::ReadAt;

use self::packets::{COC, COD, Coding, Cut, POC, PartHeader, TileGeometry};

mod cuts;
mod packets;
mod region;

const SOC: u16 = 0xFF4F;
const SIZ: u16 = 0xFF51;
const TLM: u16 = 0xFF55;
const PPM: u16 = 0xFF60;
/// PLM: packet lengths in the main header (left out like TLM: they would not match).
const PLM: u16 = 0xFF57;
const SOT: u16 = 0xFF90;
const EOC: [u8; 2] = [0xFF, 0xD9];

const JP2_SIGNATURE: [u8; 12] = [
    0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50, 0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A,
];

/// Boxes a decoder needs before the codestream; the others (XML, UUID, ...) are left out.
const KEPT_BOXES: [&[u8; 4]; 3] = [b"jP  ", b"ftyp", b"jp2h"];
const MAX_BOXES: usize = 64;
const MAX_KEPT_BYTES: u64 = 4 << 20;
const MAX_MAIN_HEADER: u64 = 16 << 20;
const MAX_TILE_PARTS: usize = 1 << 20;
const MAX_TILES: u64 = 65_535;
/// Without TLM markers, the tile-parts are found by reading each SOT marker: at most this many.
const MAX_WALKED_PARTS: usize = 1 << 16;
/// Tile-part headers are read for their packet lengths only in files of at most this many
/// tile-parts (one read each, once per file).
const MAX_CUT_PARTS: usize = 4096;
/// The largest tile-part header read for its packet lengths.
const MAX_PART_HEADER: u64 = 4 << 20;
/// The first read of a tile-part's header (doubled while the header goes on).
const PART_HEADER_READ: u64 = 4096;
/// Tile-part headers this close to each other in the file are read together (the bytes
/// between them are read too: one request instead of two, over a remote source).
const HEADER_GAP: u64 = 64 << 10;
/// The longest read of tile-part headers together.
const MAX_HEADER_GROUP: u64 = 1 << 20;
/// The most packet lengths kept (4 bytes each) to leave out the precincts away from an area.
const MAX_KEPT_PACKETS: u64 = 1 << 20;
/// The most packets a file's tile-part headers may list for cuts (read 4 bytes each).
const MAX_LISTED_PACKETS: u64 = 1 << 22;
/// The most tile-part header bytes read for cuts.
const MAX_HEADER_BYTES: u64 = 64 << 20;
/// How far (in samples of a resolution) from an area a precinct is still read: more than
/// the wavelet filters reach (OpenJPEG decodes code-blocks within 3 subband samples of it).
const PRECINCT_MARGIN: u64 = 16;
/// The first read of the main header; it grows by doubling.
const FIRST_READ: u64 = 64 << 10;

/// Where each tile-part of a JPEG 2000 codestream lies, and the header bytes that make a
/// codestream of some of its tiles decodable on their own. Made by [`read_index`].
#[derive(Debug)]
pub struct CodestreamIndex {
    /// The boxes before the codestream a decoder needs (empty for a raw codestream).
    boxes: Vec<u8>,
    jp2: bool,
    /// The main header, SOC to the first SOT, without its TLM marker segments.
    main: Vec<u8>,
    grid: Grid,
    /// Every tile-part, in file order.
    parts: Vec<TilePart>,
    /// Where each tile's data can be cut to keep its first resolutions, when its packets come
    /// resolution by resolution and its tile-part headers list their lengths.
    cuts: Option<Cuts>,
}

/// Where the tiles' data can be cut, for each number of kept resolutions (see `packets`),
/// read tile by tile when a region first needs the tile ([`CodestreamIndex::load_region`]):
/// a file's first tile costs the reads of its own tile-part headers, not of every tile's.
#[derive(Debug)]
struct Cuts {
    coding: Coding,
    /// (XRsiz, YRsiz) of each component.
    subsampling: Vec<(u8, u8)>,
    /// Whether each tile's packet lengths are kept, to leave out the packets of precincts away
    /// from an area: not when the components are subsampled differently or there are too many.
    by_packet: bool,
    /// Each tile's cuts, once read; `None` inside when its headers do not add up (the tile is
    /// then read whole).
    tiles: Vec<OnceLock<Option<TileCuts>>>,
    /// The tile-part header bytes read so far, at most [`MAX_HEADER_BYTES`].
    header_bytes: AtomicU64,
    /// What the tiles' cuts may take in memory, at most (for cache weights).
    max_heap: u64,
}

/// A tile-part's header as read: its packet lengths, or `None` when it is not usable.
type PartRead = Option<(PartInfo, Vec<u32>)>;

/// One tile's cuts and tile-part headers.
#[derive(Debug)]
struct TileCuts {
    /// `coding.levels` cuts: keeping 1, 2, ... resolutions.
    cuts: Vec<Cut>,
    /// Its tile-parts, in order: header length, packet count, PLT segments.
    parts: Vec<PartInfo>,
    /// Its packet lengths, in order (empty unless [`Cuts::by_packet`]).
    lengths: Vec<u32>,
}

/// A tile-part's header, as far as cutting it needs.
#[derive(Debug, Clone)]
struct PartInfo {
    /// SOT to SOD included.
    header: u32,
    /// The bytes after the header.
    data: u32,
    packets: u32,
    /// PLT segments (offset from SOT, length): left out of a tile-part whose packets change.
    plts: Vec<(u32, u32)>,
}

impl PartInfo {
    fn plt_bytes(&self) -> u32 {
        self.plts.iter().map(|p| p.1).sum()
    }
}

/// One tile-part: its tile's index (raster order) and its bytes in the file, SOT marker first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePart {
    /// The tile's index, in raster order.
    pub tile: u32,
    /// The file offset of its SOT marker.
    pub start: u64,
    /// Its length in bytes (TLM's `Ptlm`).
    pub len: u32,
    /// Its place among its tile's tile-parts (the SOT's `TPsot`).
    pub part: u8,
    /// How many tile-parts its tile has (the SOT's `TNsot`, when not 0).
    pub parts: u8,
}

impl TilePart {
    fn range(&self) -> Range<u64> {
        self.start..self.start + u64::from(self.len)
    }
}

/// The image area and the tile grid on the reference grid (the SIZ marker).
#[derive(Debug, Clone, Copy)]
struct Grid {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
    tx0: u32,
    ty0: u32,
    tw: u32,
    th: u32,
    across: u32,
    down: u32,
}

/// Read the tile-part index of a JPEG 2000 file (a JP2 file or a raw codestream) by range:
/// the boxes before the codestream, then its main header up to the first tile-part.
///
/// `Ok(None)` when there is nothing to gain or no safe way to do it: not JPEG 2000, a single
/// tile, PPM, more than 2^16 tile-parts without TLM, or a structure that does not add up (the
/// whole-file decoder then reports what is wrong).
///
/// # Errors
///
/// Only the source's read errors.
///
pub async fn read_index<O: SourceObject>(obj: &O) -> Result<Option<CodestreamIndex>, Error> {
    let len = obj.metadata().len;
    let first = obj.read_range(0..len.min(FIRST_READ)).await?;
    let (boxes, jp2, cs, cs_end) = if first.starts_with(&JP2_SIGNATURE) {
        match find_codestream(obj, len, &first).await? {
            Some((boxes, cs, cs_end)) => (boxes, true, cs, cs_end),
            None => return Ok(None),
        }
    } else if first.starts_with(&SOC.to_be_bytes()) {
        (Vec::new(), false, 0, len)
    } else {
        return Ok(None);
    };
    let Some(mut head) = read_main_header(obj, cs, cs_end, &first).await? else {
        return Ok(None);
    };
    let cuttable = head
        .coding
        .as_ref()
        .filter(|c| c.resolution_major() && c.levels > 0);
    if head.grid.tiles() < 2 && cuttable.is_none() {
        return Ok(None);
    }
    if head.entries.is_empty() {
        match walk_tile_parts(obj, head.first_part, cs_end, head.grid.tiles()).await? {
            Some(entries) => head.entries = entries,
            None => return Ok(None),
        }
    }
    let coding = cuttable.cloned();
    let subsampling = std::mem::take(&mut head.subsampling);
    let Some(mut index) = head.into_index(boxes, jp2, cs_end) else {
        return Ok(None);
    };
    if let Some(coding) = coding {
        index.cuts = cuts::read_cuts(obj, &index, coding, &subsampling).await?;
    }
    // A single tile is worth an index only to cut it.
    if index.grid.tiles() < 2 && index.cuts.is_none() {
        return Ok(None);
    }
    // The tile-parts must run up to the codestream's end: EOC right after the last one.
    let end = index.end();
    let eoc = obj
        .read_range(end..end.saturating_add(2).min(cs_end))
        .await?;
    Ok((eoc[..] == EOC).then_some(index))
}

/// The tile-parts of a codestream without TLM markers, from their SOT marker segments: one
/// 12-byte read per tile-part, once per file (OpenJPEG would walk them on every request).
/// `None` past [`MAX_WALKED_PARTS`] or when the chain of SOT markers breaks before EOC.
async fn walk_tile_parts<O: SourceObject>(
    obj: &O,
    first_part: u64,
    cs_end: u64,
    tiles: u64,
) -> Result<Option<Vec<(u32, u32)>>, Error> {
    let mut entries = Vec::new();
    let mut at = first_part;
    loop {
        if entries.len() >= MAX_WALKED_PARTS || at.saturating_add(2) > cs_end {
            return Ok(None);
        }
        let sot = obj.read_range(at..(at + 12).min(cs_end)).await?;
        if sot.starts_with(&EOC) {
            return Ok(Some(entries));
        }
        let (Some(SOT), Some(10), Some(tile), Some(psot)) =
            (be16(&sot, 0), be16(&sot, 2), be16(&sot, 4), be32(&sot, 6))
        else {
            return Ok(None);
        };
        // Psot 0: the last tile-part, up to the codestream's EOC.
        let len = match psot {
            0 => cs_end.saturating_sub(2).saturating_sub(at),
            n => u64::from(n),
        };
        let Ok(len32) = u32::try_from(len) else {
            return Ok(None);
        };
        if u64::from(tile) >= tiles || len < 14 || at + len > cs_end {
            return Ok(None);
        }
        entries.push((u32::from(tile), len32));
        if psot == 0 {
            return Ok(Some(entries));
        }
        at += len;
    }
}

/// Walk the boxes of a JP2 file to its codestream: the kept boxes' bytes, and the codestream's
/// start and end.
async fn find_codestream<O: SourceObject>(
    obj: &O,
    len: u64,
    first: &Bytes,
) -> Result<Option<(Vec<u8>, u64, u64)>, Error> {
    let mut kept = Vec::new();
    let mut off = 0u64;
    for _ in 0..MAX_BOXES {
        if len.saturating_sub(off) < 8 {
            return Ok(None);
        }
        let hdr = bytes_at(obj, first, off, 16.min(len - off)).await?;
        if hdr.len() < 8 {
            return Ok(None);
        }
        let lbox = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let kind: [u8; 4] = [hdr[4], hdr[5], hdr[6], hdr[7]];
        let (hlen, blen) = match lbox {
            0 => (8, len - off),
            1 if hdr.len() >= 16 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&hdr[8..16]);
                (16, u64::from_be_bytes(b))
            }
            n if n >= 8 => (8, u64::from(n)),
            _ => return Ok(None),
        };
        let Some(end) = off.checked_add(blen).filter(|&e| e <= len && blen >= hlen) else {
            return Ok(None);
        };
        if &kind == b"jp2c" {
            return Ok(Some((kept, off + hlen, end)));
        }
        if KEPT_BOXES.contains(&&kind) {
            if kept.len() as u64 + blen > MAX_KEPT_BYTES {
                return Ok(None);
            }
            kept.extend_from_slice(&bytes_at(obj, first, off, blen).await?);
        }
        if lbox == 0 {
            return Ok(None);
        }
        off = end;
    }
    Ok(None)
}

/// `n` bytes at `off`, from `first` (the file's first bytes) when it holds them. Fewer when the
/// file is shorter.
async fn bytes_at<O: SourceObject>(
    obj: &O,
    first: &Bytes,
    off: u64,
    n: u64,
) -> Result<Bytes, Error> {
    let end = off.saturating_add(n);
    if end <= first.len() as u64 {
        return Ok(first.slice(off as usize..end as usize));
    }
    obj.read_range(off..end).await
}

/// What the main header says.
struct MainHeader {
    /// The main header without TLM segments.
    main: Vec<u8>,
    /// The file offset of the first SOT.
    first_part: u64,
    grid: Grid,
    /// TLM entries in file order: (tile index, length).
    entries: Vec<(u32, u32)>,
    /// The COD segment's packet coding; `None` when COC or POC segments change it.
    coding: Option<Coding>,
    /// (XRsiz, YRsiz) of each component.
    subsampling: Vec<(u8, u8)>,
}

/// Read and parse the main header from `cs` (SOC) to the first SOT, growing the read as needed.
async fn read_main_header<O: SourceObject>(
    obj: &O,
    cs: u64,
    cs_end: u64,
    first: &Bytes,
) -> Result<Option<MainHeader>, Error> {
    // Start with what the first read holds of it, if anything.
    let held = (first.len() as u64).saturating_sub(cs);
    let mut want = if held >= 1024 { held } else { FIRST_READ }.min(cs_end - cs);
    let mut buf = bytes_at(obj, first, cs, want).await?;
    loop {
        match parse_main_header(&buf) {
            Parse::Done(mut head) => {
                head.first_part += cs;
                return Ok(Some(head));
            }
            Parse::Invalid => return Ok(None),
            Parse::NeedMore => {
                let more = want.saturating_mul(2).min(cs_end - cs);
                if more <= want || more > MAX_MAIN_HEADER || (buf.len() as u64) < want {
                    return Ok(None);
                }
                want = more;
                buf = obj.read_range(cs..cs + want).await?;
            }
        }
    }
}

enum Parse {
    Done(MainHeader),
    NeedMore,
    Invalid,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parse a main header from its first bytes (`buf` starts at SOC).
fn parse_main_header(buf: &[u8]) -> Parse {
    if be16(buf, 0) != Some(SOC) {
        return Parse::Invalid;
    }
    let mut main = buf[..2].to_vec();
    let mut grid = None;
    let mut subsampling = Vec::new();
    let mut entries = Vec::new();
    let mut coding = None;
    let mut changed = false;
    let mut pos = 2usize;
    loop {
        let (Some(marker), Some(seg_len)) = (be16(buf, pos), be16(buf, pos + 2)) else {
            return Parse::NeedMore;
        };
        if marker == SOT {
            let Some(grid) = grid else {
                return Parse::Invalid;
            };
            return Parse::Done(MainHeader {
                main,
                first_part: pos as u64,
                grid,
                entries,
                coding: coding.filter(|_| !changed),
                subsampling,
            });
        }
        if marker >> 8 != 0xFF || seg_len < 2 {
            return Parse::Invalid;
        }
        let end = pos + 2 + usize::from(seg_len);
        let Some(seg) = buf.get(pos + 4..end) else {
            return Parse::NeedMore;
        };
        match marker {
            SIZ => match parse_siz(seg) {
                Some((g, s)) => (grid, subsampling) = (Some(g), s),
                None => return Parse::Invalid,
            },
            COD => coding = Coding::parse(seg),
            COC | POC => changed = true,
            TLM => {
                // The tile count is known: SIZ comes first in every main header.
                let Some(g) = grid else {
                    return Parse::Invalid;
                };
                if !parse_tlm(seg, g.tiles(), &mut entries) {
                    return Parse::Invalid;
                }
            }
            PPM => return Parse::Invalid,
            _ => {}
        }
        if marker != TLM && marker != PLM {
            main.extend_from_slice(&buf[pos..end]);
        }
        pos = end;
    }
}

/// The tiles and the components of a SIZ segment (without its marker and length), if it is
/// valid.
pub(crate) fn siz_tiles_and_components(seg: &[u8]) -> Option<(u64, u64)> {
    let (grid, components) = parse_siz(seg)?;
    Some((
        u64::from(grid.across) * u64::from(grid.down),
        components.len() as u64,
    ))
}

/// The image area and tile grid of a SIZ segment (without its marker and length), and each
/// component's subsampling.
fn parse_siz(seg: &[u8]) -> Option<(Grid, Vec<(u8, u8)>)> {
    let v = |i: usize| be32(seg, 2 + 4 * i);
    let (xsiz, ysiz, x0, y0) = (v(0)?, v(1)?, v(2)?, v(3)?);
    let (tw, th, tx0, ty0) = (v(4)?, v(5)?, v(6)?, v(7)?);
    if tw == 0 || th == 0 || x0 >= xsiz || y0 >= ysiz || tx0 > x0 || ty0 > y0 {
        return None;
    }
    // The first tile must contain the image origin (A.5.1).
    if u64::from(tx0) + u64::from(tw) <= u64::from(x0)
        || u64::from(ty0) + u64::from(th) <= u64::from(y0)
    {
        return None;
    }
    let across = (xsiz - tx0).div_ceil(tw);
    let down = (ysiz - ty0).div_ceil(th);
    // Isot is 0 to 65534 (as OpenJPEG refuses more tiles).
    if u64::from(across) * u64::from(down) > MAX_TILES {
        return None;
    }
    let comps = usize::from(be16(seg, 34)?);
    let subsampling: Vec<(u8, u8)> = seg
        .get(36..36 + 3 * comps)?
        .chunks_exact(3)
        .map(|c| (c[1], c[2]))
        .collect();
    if comps == 0 || subsampling.iter().any(|&(dx, dy)| dx == 0 || dy == 0) {
        return None;
    }
    let grid = Grid {
        x0,
        y0,
        x1: xsiz,
        y1: ysiz,
        tx0,
        ty0,
        tw,
        th,
        across,
        down,
    };
    Some((grid, subsampling))
}

/// Append the entries of a TLM segment (without its marker and length); false if it is not
/// valid. As OpenJPEG reads them: segments in file order, an absent tile index (ST = 0) meaning
/// one tile-part per tile in order.
fn parse_tlm(seg: &[u8], tiles: u64, entries: &mut Vec<(u32, u32)>) -> bool {
    let (Some(&_ztlm), Some(&stlm)) = (seg.first(), seg.get(1)) else {
        return false;
    };
    let st = usize::from((stlm >> 4) & 3);
    let sp = if (stlm >> 6) & 1 == 1 { 4 } else { 2 };
    if st == 3 {
        return false;
    }
    let body = &seg[2..];
    let size = st + sp;
    if !body.len().is_multiple_of(size) || entries.len() + body.len() / size > MAX_TILE_PARTS {
        return false;
    }
    for e in body.chunks_exact(size) {
        let tile = match st {
            0 => entries.len() as u32,
            1 => u32::from(e[0]),
            _ => u32::from(u16::from_be_bytes([e[0], e[1]])),
        };
        let len = match sp {
            2 => u32::from(u16::from_be_bytes([e[st], e[st + 1]])),
            _ => u32::from_be_bytes([e[st], e[st + 1], e[st + 2], e[st + 3]]),
        };
        if u64::from(tile) >= tiles {
            return false;
        }
        entries.push((tile, len));
    }
    true
}

impl Grid {
    fn tiles(&self) -> u64 {
        u64::from(self.across) * u64::from(self.down)
    }

    /// Tile `t`'s area on the reference grid (clipped to the image).
    fn tile<'a>(&self, t: u32, subsampling: &'a [(u8, u8)]) -> TileGeometry<'a> {
        let (px, py) = (
            u64::from(t) % u64::from(self.across),
            u64::from(t) / u64::from(self.across),
        );
        let tx0 = u64::from(self.tx0) + px * u64::from(self.tw);
        let ty0 = u64::from(self.ty0) + py * u64::from(self.th);
        TileGeometry {
            x0: tx0.max(u64::from(self.x0)) as u32,
            y0: ty0.max(u64::from(self.y0)) as u32,
            x1: (tx0 + u64::from(self.tw)).min(u64::from(self.x1)) as u32,
            y1: (ty0 + u64::from(self.th)).min(u64::from(self.y1)) as u32,
            subsampling,
        }
    }
}

impl MainHeader {
    /// The index, when the TLM entries describe a codestream that fits in the file.
    fn into_index(self, boxes: Vec<u8>, jp2: bool, cs_end: u64) -> Option<CodestreamIndex> {
        let tiles = self.grid.tiles();
        if self.entries.is_empty() {
            return None;
        }
        // Tile-parts seen so far, per tile (at most 255: TPsot is a byte).
        let mut seen = vec![0u16; usize::try_from(tiles).ok()?];
        let mut parts = Vec::with_capacity(self.entries.len());
        let mut at = self.first_part;
        for (tile, len) in self.entries {
            // SOT (12 bytes) and SOD (2) at least.
            if len < 14 {
                return None;
            }
            let end = at.checked_add(u64::from(len)).filter(|&e| e <= cs_end)?;
            let count = &mut seen[tile as usize];
            let part = u8::try_from(*count).ok()?;
            *count += 1;
            parts.push(TilePart {
                tile,
                start: at,
                len,
                part,
                parts: 0,
            });
            at = end;
        }
        // As OpenJPEG: every tile must have a tile-part.
        if seen.contains(&0) {
            return None;
        }
        for p in &mut parts {
            p.parts = u8::try_from(seen[p.tile as usize]).ok()?;
        }
        Some(CodestreamIndex {
            boxes,
            jp2,
            main: self.main,
            grid: self.grid,
            parts,
            cuts: None,
        })
    }
}

#[cfg(test)]
mod tests;
