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
//! keep only its first resolutions (the `packets` submodule): a decode at a reduced resolution then reads
//! only those, the packets of the others written as empty ones. When every component has the
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

use bytes::Bytes;

use crate::Error;
use crate::codec::jp2::ReadAt;
use crate::source::SourceObject;

use self::packets::{COC, COD, Coding, Cut, POC, PartHeader, TileGeometry};

mod packets;

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
#[derive(Debug, Clone)]
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

/// The cuts of every tile, for each number of kept resolutions (see `packets`).
#[derive(Debug, Clone)]
struct Cuts {
    coding: Coding,
    /// `coding.levels` cuts per tile, tile after tile: keeping 1, 2, ... resolutions.
    cuts: Vec<Cut>,
    /// (XRsiz, YRsiz) of each component.
    subsampling: Vec<(u8, u8)>,
    /// Each tile's tile-parts, in order: header length, packet count, PLT segments.
    parts: Vec<Vec<PartInfo>>,
    /// Each tile's packet lengths, in order, to leave out the packets of precincts away from
    /// an area; empty when the components are subsampled differently or there are too many.
    lengths: Vec<Vec<u32>>,
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
        index.cuts = read_cuts(obj, &index, coding, &subsampling).await?;
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

/// The cuts of every tile, from the tile-part headers' packet lengths (one read each, after
/// the first one shows a PLT). `None` when a tile's do not add up or there is none, or past
/// the bounds: 4096 tile-parts, 2^22 packets, 64 MiB of headers.
async fn read_cuts<O: SourceObject>(
    obj: &O,
    index: &CodestreamIndex,
    coding: Coding,
    subsampling: &[(u8, u8)],
) -> Result<Option<Cuts>, Error> {
    if index.parts.len() > MAX_CUT_PARTS {
        return Ok(None);
    }
    // Most files have no PLT: the first tile-part's header says so before any other work
    // (and is not read again below).
    let Some(probe) = read_part_header(obj, &index.parts[0], usize::MAX).await? else {
        return Ok(None);
    };
    let mut first = Some(probe);
    let g = &index.grid;
    let tiles = g.tiles() as usize;
    // The packets of each tile's resolutions, from the geometry: what its headers may list.
    let mut per_resolution = Vec::with_capacity(tiles);
    for t in 0..tiles {
        match packets::packets_per_resolution(&g.tile(t as u32, subsampling), &coding) {
            Some(p) => per_resolution.push(p),
            None => return Ok(None),
        }
    }
    let mut left: Vec<u64> = per_resolution.iter().map(|p| p.iter().sum()).collect();
    let total: u64 = left.iter().sum();
    if total > MAX_LISTED_PACKETS {
        return Ok(None);
    }
    let mut header_bytes = 0u64;
    // Per tile, its tile-parts in order, and their packet lengths.
    let mut parts: Vec<Vec<PartInfo>> = vec![Vec::new(); tiles];
    let mut lengths: Vec<Vec<u32>> = vec![Vec::new(); tiles];
    for (i, p) in index.parts.iter().enumerate() {
        let t = p.tile as usize;
        let limit = left[t] as usize;
        let read = match i {
            0 => first.take().filter(|(_, listed)| listed.len() <= limit),
            _ => read_part_header(obj, p, limit).await?,
        };
        let Some((info, listed)) = read else {
            return Ok(None);
        };
        header_bytes += u64::from(info.header);
        if usize::from(p.part) != parts[t].len() || header_bytes > MAX_HEADER_BYTES {
            return Ok(None);
        }
        left[t] -= listed.len() as u64;
        lengths[t].extend_from_slice(&listed);
        parts[t].push(info);
    }
    let mut cuts = Vec::with_capacity(tiles * usize::from(coding.levels));
    for t in 0..tiles {
        let mut from = 0;
        let mut list = Vec::with_capacity(parts[t].len());
        for info in &parts[t] {
            let n = info.packets as usize;
            list.push((info.header, info.data, &lengths[t][from..from + n]));
            from += n;
        }
        match packets::cuts(&list, &per_resolution[t]) {
            Some(c) if c.len() == usize::from(coding.levels) => cuts.extend(c),
            _ => return Ok(None),
        }
    }
    // Packet by packet: every component alike, and not too many to keep.
    if !subsampling.iter().all(|&s| s == subsampling[0]) || total > MAX_KEPT_PACKETS {
        lengths = Vec::new();
    }
    Ok(Some(Cuts {
        coding,
        cuts,
        subsampling: subsampling.to_vec(),
        parts,
        lengths,
    }))
}

/// A tile-part's header and packet lengths, read from its start (a first read of up to 4 KiB,
/// doubled as needed). `None` when it has no PLT, lists more than `limit` packets, or is not
/// usable (see [`packets::parse_part_header`]).
async fn read_part_header<O: SourceObject>(
    obj: &O,
    p: &TilePart,
    limit: usize,
) -> Result<Option<(PartInfo, Vec<u32>)>, Error> {
    let max = u64::from(p.len).min(MAX_PART_HEADER);
    let mut want = max.min(4096);
    loop {
        let mut buf = obj.read_range(p.start..p.start + want).await?;
        // A source that returns more than asked (the header must lie within the tile-part).
        buf.truncate(want as usize);
        match packets::parse_part_header(&buf, p.part == 0, limit) {
            PartHeader::Done { len, packets, plts } => {
                let info = PartInfo {
                    header: len,
                    // The header was read within the tile-part.
                    data: p.len - len,
                    packets: packets.len() as u32,
                    plts,
                };
                return Ok(Some((info, packets)));
            }
            PartHeader::Unusable => return Ok(None),
            PartHeader::NeedMore if want < max && buf.len() as u64 == want => {
                want = want.saturating_mul(2).min(max);
            }
            PartHeader::NeedMore => return Ok(None),
        }
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

impl CodestreamIndex {
    /// Where the last tile-part ends (EOC follows).
    fn end(&self) -> u64 {
        self.parts.last().map_or(0, |p| p.range().end)
    }

    /// The number of tiles across and down.
    pub fn tile_grid(&self) -> (u32, u32) {
        (self.grid.across, self.grid.down)
    }

    /// Every tile-part, in file order.
    pub fn parts(&self) -> &[TilePart] {
        &self.parts
    }

    /// The bytes this index keeps in memory (for cache weights).
    pub fn heap_bytes(&self) -> u64 {
        (self.boxes.len()
            + self.main.len()
            + self.parts.len() * std::mem::size_of::<TilePart>()
            + self.cuts.as_ref().map_or(0, |c| {
                c.cuts.len() * std::mem::size_of::<Cut>()
                    + c.coding.precincts.len() * 2
                    + c.lengths.iter().map(|t| t.len() * 4 + 24).sum::<usize>()
                    + c.parts
                        .iter()
                        .flatten()
                        .map(|p| std::mem::size_of::<PartInfo>() + p.plts.len() * 8)
                        .sum::<usize>()
            })
            + std::mem::size_of::<Self>()) as u64
    }

    /// The tile-parts, in file order, of the tiles that the area `x, y, w, h` (in image pixels
    /// at full resolution, clipped to the image) touches; empty when it is outside the image.
    pub fn region(&self, x: u32, y: u32, w: u32, h: u32) -> Vec<TilePart> {
        let g = &self.grid;
        let ax0 = u64::from(g.x0) + u64::from(x);
        let ay0 = u64::from(g.y0) + u64::from(y);
        let ax1 = (ax0 + u64::from(w)).min(u64::from(g.x1));
        let ay1 = (ay0 + u64::from(h)).min(u64::from(g.y1));
        if w == 0 || h == 0 || ax0 >= ax1 || ay0 >= ay1 {
            return Vec::new();
        }
        // As OpenJPEG's opj_set_decode_area picks its tiles.
        let (tx0, ty0, tw, th) = (
            u64::from(g.tx0),
            u64::from(g.ty0),
            u64::from(g.tw),
            u64::from(g.th),
        );
        let p0 = (ax0 - tx0) / tw;
        let p1 = (ax1 - tx0).div_ceil(tw).min(u64::from(g.across));
        let q0 = (ay0 - ty0) / th;
        let q1 = (ay1 - ty0).div_ceil(th).min(u64::from(g.down));
        let across = u64::from(g.across);
        self.parts
            .iter()
            .filter(|p| {
                let (px, py) = (u64::from(p.tile) % across, u64::from(p.tile) / across);
                (p0..p1).contains(&px) && (q0..q1).contains(&py)
            })
            .copied()
            .collect()
    }

    /// Whether a decode at `reduce` (resolutions dropped) reads less than whole tiles: the
    /// packets of the resolutions it does not use are left out (see the [module docs](self)).
    pub fn cuts_at(&self, reduce: u32) -> bool {
        reduce > 0 && self.cuts.is_some()
    }

    /// The bytes [`read_region`](Self::read_region) would fetch for this area at `reduce`.
    pub fn region_bytes(&self, x: u32, y: u32, w: u32, h: u32, reduce: u32) -> u64 {
        self.ops(x, y, w, h, reduce)
            .iter()
            .map(|op| match op {
                Op::Copy { len, .. } => u64::from(*len),
                Op::Empty { .. } => 0,
            })
            .sum()
    }

    /// What to write of the area's tiles at `reduce`, in order: tile-parts whole; or cut after
    /// the resolutions kept; or, when the packets are known one by one, only those of the
    /// precincts near the area, the others written as empty packets. A tile-part whose packets
    /// change loses its PLT segments (they would list the old lengths).
    fn ops(&self, x: u32, y: u32, w: u32, h: u32, reduce: u32) -> Vec<Op> {
        let parts = self.region(x, y, w, h);
        let Some(c) = &self.cuts else {
            return parts.into_iter().map(|p| Op::whole(p, None)).collect();
        };
        let g = &self.grid;
        // The area on the reference grid, for the precincts near it.
        let area = [
            u64::from(g.x0) + u64::from(x),
            u64::from(g.y0) + u64::from(y),
            (u64::from(g.x0) + u64::from(x) + u64::from(w)).min(u64::from(g.x1)),
            (u64::from(g.y0) + u64::from(y) + u64::from(h)).min(u64::from(g.y1)),
        ];
        // Each tile's tile-parts, in order, tiles in the order they first appear. Moved
        // together, every tile-part gets an explicit length (a Psot of 0, "to the end", is
        // valid only for the last).
        let mut tiles: Vec<u32> = Vec::new();
        let mut by_tile: std::collections::HashMap<u32, Vec<TilePart>> =
            std::collections::HashMap::new();
        for p in parts {
            let mine = by_tile.entry(p.tile).or_insert_with(|| {
                tiles.push(p.tile);
                Vec::new()
            });
            mine.push(p);
        }
        let levels = u32::from(c.coding.levels);
        // Resolutions kept: all but `reduce`, at least one.
        let kept = (levels + 1).saturating_sub(reduce).max(1);
        let mut ops = Vec::new();
        for tile in tiles {
            let mine = &by_tile[&tile];
            let t = tile as usize;
            let whole = |ops: &mut Vec<Op>| {
                ops.extend(mine.iter().map(|&p| Op::whole(p, Some((p.len, p.parts)))));
            };
            if let Some(lengths) = c.lengths.get(t).filter(|_| !c.coding.ht)
                && let Some(more) = select(
                    mine,
                    &c.parts[t],
                    lengths,
                    &g.tile(tile, &c.subsampling),
                    &c.coding,
                    kept,
                    area,
                )
            {
                ops.extend(more);
                continue;
            }
            if kept > levels || mine.len() != c.parts[t].len() {
                whole(&mut ops);
                continue;
            }
            let cut = c.cuts[t * levels as usize + kept as usize - 1];
            let info = &c.parts[t][usize::from(cut.part)];
            let empty = u64::from(cut.empty) * c.coding.empty_packet_len();
            let Ok(psot) = u32::try_from(u64::from(cut.keep - info.plt_bytes()) + empty) else {
                whole(&mut ops);
                continue;
            };
            let count = cut.part + 1;
            for &p in mine {
                if p.part < cut.part {
                    ops.push(Op::whole(p, Some((p.len, count))));
                } else if p.part == cut.part {
                    header_ops(p, info, (psot, count), &mut ops);
                    if cut.keep > info.header {
                        ops.push(Op::Copy {
                            from: p.start + u64::from(info.header),
                            len: cut.keep - info.header,
                            sot: None,
                            patch: None,
                        });
                    }
                    ops.push(Op::Empty {
                        first: cut.packets,
                        n: cut.empty,
                    });
                }
            }
        }
        ops
    }

    /// Whether [`read_region`](Self::read_region) for this area at `reduce` leaves packets
    /// out (else, for a single tile, the decoder may as well read the file itself).
    pub fn leaves_out(&self, x: u32, y: u32, w: u32, h: u32, reduce: u32) -> bool {
        self.ops(x, y, w, h, reduce)
            .iter()
            .any(|op| matches!(op, Op::Empty { n, .. } if *n > 0))
    }

    /// Fetch the tile-parts of the tiles the area `x, y, w, h` touches (one read per run of
    /// adjacent tile-parts) and join them into a codestream of those tiles only, in the file's
    /// container (JP2 or raw): the kept boxes, the main header without TLM, the tile-parts,
    /// EOC. Decode it with the same area and `reduce`: when [`cuts_at`](Self::cuts_at) says
    /// so, each tile keeps only the packets of the resolutions that decode uses.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Source`](crate::ErrorKind::Source) when the tile-parts take more than
    /// `max_bytes`, the file is shorter than its index says, or a fetched tile-part does not
    /// start with the SOT marker of its tile and length; [`ErrorKind::Internal`](crate::ErrorKind::Internal)
    /// for an area outside the image. Plus the source's read errors.
    #[allow(clippy::too_many_arguments)]
    pub async fn read_region<O: SourceObject>(
        &self,
        obj: &O,
        x: u32,
        y: u32,
        w: u32,
        h: u32,
        reduce: u32,
        max_bytes: u64,
    ) -> Result<Vec<u8>, Error> {
        let (ops, mut out) = self.begin(x, y, w, h, reduce, max_bytes)?;
        for run in runs(&ops) {
            let bytes = match &run {
                Run::Read(_, range) => obj.read_range(range.clone()).await?,
                Run::Empty(..) => Bytes::new(),
            };
            self.write_run(&ops, run, &bytes, &mut out)?;
        }
        out.extend_from_slice(&EOC);
        Ok(out)
    }

    /// [`read_region`](Self::read_region) from a source read synchronously on the calling
    /// thread (a blocking pool's), each run read straight into the codestream.
    ///
    /// # Errors
    ///
    /// As [`read_region`](Self::read_region).
    #[allow(clippy::too_many_arguments)]
    pub fn read_region_at<R: ReadAt + ?Sized>(
        &self,
        src: &R,
        x: u32,
        y: u32,
        w: u32,
        h: u32,
        reduce: u32,
        max_bytes: u64,
    ) -> Result<Vec<u8>, Error> {
        let (ops, mut out) = self.begin(x, y, w, h, reduce, max_bytes)?;
        let mut buf = Vec::new();
        for run in runs(&ops) {
            if let Run::Read(_, range) = &run {
                buf.clear();
                buf.resize((range.end - range.start) as usize, 0);
                let mut filled = 0;
                while filled < buf.len() {
                    let n = src
                        .read_at(range.start + filled as u64, &mut buf[filled..])
                        .map_err(|e| Error::source(format!("JPEG 2000: cannot read: {e}")))?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                buf.truncate(filled);
            }
            self.write_run(&ops, run, &buf, &mut out)?;
        }
        out.extend_from_slice(&EOC);
        Ok(out)
    }

    /// The pieces of the area and the codestream's first bytes (kept boxes, `jp2c` box
    /// header, main header), with room reserved for the rest.
    fn begin(
        &self,
        x: u32,
        y: u32,
        w: u32,
        h: u32,
        reduce: u32,
        max_bytes: u64,
    ) -> Result<(Vec<Op>, Vec<u8>), Error> {
        let ops = self.ops(x, y, w, h, reduce);
        if ops.is_empty() {
            return Err(Error::internal(format!(
                "JPEG 2000: the region {x},{y},{w},{h} is outside the image"
            )));
        }
        let empty = self
            .cuts
            .as_ref()
            .map_or(0, |c| c.coding.empty_packet_len());
        let data: u64 = ops
            .iter()
            .map(|op| match op {
                Op::Copy { len, .. } => u64::from(*len),
                Op::Empty { n, .. } => u64::from(*n) * empty,
            })
            .sum();
        let total = data + (self.boxes.len() + self.main.len() + 10) as u64;
        if total > max_bytes {
            return Err(Error::source(format!(
                "this region of the JPEG 2000 file needs {data} bytes of codestream, more than the memory budget allows"
            )));
        }
        let mut out = Vec::new();
        out.try_reserve_exact(total as usize)
            .map_err(|_| Error::source("out of memory for the JPEG 2000 tile-parts"))?;
        out.extend_from_slice(&self.boxes);
        if self.jp2 {
            let cs_len = total - self.boxes.len() as u64 - 8;
            let lbox = u32::try_from(cs_len + 8)
                .map_err(|_| Error::source("JPEG 2000: the region's codestream is too large"))?;
            out.extend_from_slice(&lbox.to_be_bytes());
            out.extend_from_slice(b"jp2c");
        }
        out.extend_from_slice(&self.main);
        Ok((ops, out))
    }

    /// Write a run into `out`: a read's bytes (`bytes`, read at its start; each tile-part
    /// checked against its SOT and patched), or empty packets.
    fn write_run(
        &self,
        ops: &[Op],
        run: Run,
        bytes: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let (some, range) = match run {
            Run::Read(some, range) => (some, range),
            Run::Empty(i) => {
                if let (Op::Empty { first, n }, Some(c)) = (&ops[i], &self.cuts) {
                    c.coding.push_empty_packets(*first, *n, out);
                }
                return Ok(());
            }
        };
        let len = (range.end - range.start) as usize;
        if bytes.len() < len {
            return Err(Error::source(format!(
                "JPEG 2000: the file is truncated: {} of {len} tile-part bytes at offset {}",
                bytes.len(),
                range.start
            )));
        }
        let at = out.len();
        // Within the capacity reserved for the whole codestream.
        out.extend_from_slice(&bytes[..len]);
        for op in &ops[some] {
            let Op::Copy {
                from, sot, patch, ..
            } = op
            else {
                continue;
            };
            let pos = at + (from - range.start) as usize;
            if let Some(p) = sot {
                check_sot(&out[pos..], p, p.range().end == self.end())?;
            }
            if let Some((psot, count)) = patch {
                out[pos + 6..pos + 10].copy_from_slice(&psot.to_be_bytes());
                out[pos + 11] = *count;
            }
        }
        Ok(())
    }
}

/// One step of writing a region's codestream.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// `len` bytes of the file at `from`. When they start a tile-part (`sot`), they are
    /// checked against it and, with `patch`, given a new length (Psot) and tile-part count
    /// (TNsot).
    Copy {
        from: u64,
        len: u32,
        sot: Option<TilePart>,
        patch: Option<(u32, u8)>,
    },
    /// `n` empty packets, numbered from `first`.
    Empty { first: u32, n: u32 },
}

impl Op {
    /// A whole tile-part, patched or not.
    fn whole(p: TilePart, patch: Option<(u32, u8)>) -> Op {
        Op::Copy {
            from: p.start,
            len: p.len,
            sot: Some(p),
            patch,
        }
    }
}

/// Ops written together: copies of adjacent file bytes (one read), or empty packets.
enum Run {
    Read(Range<usize>, Range<u64>),
    Empty(usize),
}

/// The runs of `ops`: copies that follow each other in the file, read at once.
fn runs(ops: &[Op]) -> Vec<Run> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < ops.len() {
        let Op::Copy { from, len, .. } = ops[i] else {
            out.push(Run::Empty(i));
            i += 1;
            continue;
        };
        let (start, mut end) = (from, from + u64::from(len));
        let mut j = i + 1;
        while let Some(Op::Copy { from, len, .. }) = ops.get(j)
            && *from == end
        {
            end += u64::from(*len);
            j += 1;
        }
        out.push(Run::Read(i..j, start..end));
        i = j;
    }
    out
}

/// The header of tile-part `p` without its PLT segments: the first piece (with the SOT)
/// checked and patched with `(Psot, TNsot)`.
fn header_ops(p: TilePart, info: &PartInfo, patch: (u32, u8), ops: &mut Vec<Op>) {
    let mut from = 0u32;
    let mut first = true;
    let ends = info.plts.iter().map(|&(at, len)| (at, at + len));
    for (to, next) in ends.chain([(info.header, info.header)]) {
        if to > from || first {
            ops.push(Op::Copy {
                from: p.start + u64::from(from),
                len: to - from,
                sot: first.then_some(p),
                patch: first.then_some(patch),
            });
            first = false;
        }
        from = next;
    }
}

/// The ops of a tile (its tile-parts `parts`, their headers `infos` and packet `lengths`) that
/// leave out the packets of precincts away from `area`, and those of the resolutions past
/// `kept`; `None` when nothing would be left out or the counts do not agree.
fn select(
    parts: &[TilePart],
    infos: &[PartInfo],
    lengths: &[u32],
    tile: &TileGeometry<'_>,
    coding: &Coding,
    kept: u32,
    area: [u64; 4],
) -> Option<Vec<Op>> {
    let order = packets::PacketOrder::new(tile, coding)?;
    let total = lengths.len() as u64;
    if order.len() != total || parts.len() != infos.len() {
        return None;
    }
    let kept_packets = order.first_resolutions(kept);
    // Component subsampling, uniform: the area on the tile-component's grid.
    let (dx, dy) = (
        u64::from(tile.subsampling[0].0),
        u64::from(tile.subsampling[0].1),
    );
    let area = [
        area[0].div_ceil(dx),
        area[1].div_ceil(dy),
        area[2].div_ceil(dx),
        area[3].div_ceil(dy),
    ];
    let grids: Vec<packets::Precincts> = (0..=coding.levels)
        .map(|r| packets::Precincts::new(tile, coding, r, tile.subsampling[0]))
        .collect();
    let wanted = |seq: u64| {
        let (r, k) = order.at(seq);
        seq < kept_packets
            && grids[usize::from(r)].touches(k, area, coding.levels - r, PRECINCT_MARGIN)
    };
    if kept_packets == total && (0..total).all(wanted) {
        return None;
    }
    let empty_len = coding.empty_packet_len();
    // The tile-parts holding kept packets (at least the first).
    let mut first = 0u64;
    let mut last_part = 0;
    for (k, info) in infos.iter().enumerate() {
        if first < kept_packets || k == 0 {
            last_part = k;
        }
        first += u64::from(info.packets);
    }
    let count = u8::try_from(last_part + 1).ok()?;
    let mut ops = Vec::new();
    let mut seq = 0u64;
    for (k, (p, info)) in parts.iter().zip(infos).enumerate().take(last_part + 1) {
        let mut body = Vec::new();
        let mut written = u64::from(info.header - info.plt_bytes());
        let mut at = p.start + u64::from(info.header);
        for _ in 0..info.packets {
            let len = *lengths.get(seq as usize)?;
            if wanted(seq) {
                written += u64::from(len);
                match body.last_mut() {
                    Some(Op::Copy { from, len: l, .. }) if *from + u64::from(*l) == at => {
                        *l += len;
                    }
                    _ => body.push(Op::Copy {
                        from: at,
                        len,
                        sot: None,
                        patch: None,
                    }),
                }
            } else {
                written += empty_len;
                match body.last_mut() {
                    Some(Op::Empty { first, n }) if u64::from(*first + *n) == seq => *n += 1,
                    _ => body.push(Op::Empty {
                        first: seq as u32,
                        n: 1,
                    }),
                }
            }
            at += u64::from(len);
            seq += 1;
        }
        // The last kept tile-part also stands for the packets of the tile-parts left out.
        if k == last_part && seq < total {
            let rest = total - seq;
            written += rest * empty_len;
            body.push(Op::Empty {
                first: seq as u32,
                n: rest as u32,
            });
        }
        header_ops(*p, info, (u32::try_from(written).ok()?, count), &mut ops);
        ops.extend(body);
    }
    Some(ops)
}

/// A tile-part must start with its SOT marker segment: its tile, its length (or 0, "to the end
/// of the codestream", for the codestream's last one), its place among its tile's parts and
/// their number (or 0, not stated). A TLM that leaves tile-parts out is caught here.
fn check_sot(part: &[u8], p: &TilePart, last: bool) -> Result<(), Error> {
    let ok = be16(part, 0) == Some(SOT)
        && be16(part, 2) == Some(10)
        && be16(part, 4).map(u32::from) == Some(p.tile)
        && matches!(be32(part, 6), Some(l) if l == p.len || (l == 0 && last))
        && part.get(10) == Some(&p.part)
        && matches!(part.get(11), Some(&n) if n == 0 || n == p.parts);
    if ok {
        Ok(())
    } else {
        Err(Error::source(format!(
            "JPEG 2000: the tile-part at offset {} is not the one the file's index lists",
            p.start
        )))
    }
}

#[cfg(test)]
mod tests;

/// The examples that stood in the doc comments of these crate-private items.
#[cfg(test)]
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    #[test]
    fn doc_codestream_43() {
        use crate::Error;
        use crate::codestream::read_index;
        use crate::source::{SourceMetadata, SourceObject};
        use bytes::Bytes;

        struct Mem(SourceMetadata, Bytes);
        impl SourceObject for Mem {
            fn metadata(&self) -> &SourceMetadata {
                &self.0
            }
            async fn read_range(&self, r: std::ops::Range<u64>) -> Result<Bytes, Error> {
                let end = r.end.min(self.1.len() as u64) as usize;
                Ok(self.1.slice((r.start as usize).min(end)..end))
            }
        }

        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async {
                // A codestream of a single tile without packet lengths has no index.
                let path = concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/htj2k/ht_rgb_64x48_lossless.j2c"
                );
                let file = Bytes::from(std::fs::read(path).unwrap());
                let obj = Mem(SourceMetadata::new(file.len() as u64, None, None), file);
                assert!(read_index(&obj).await.unwrap().is_none());
            });
    }
}
