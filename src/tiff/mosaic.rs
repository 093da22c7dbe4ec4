//! Stored JPEG tiles joined into one JPEG without decoding them: the generalisation of
//! stored-tile passthrough to a region of several whole stored tiles (a 512 tile a viewer asks
//! for over a file stored in 256 tiles is four of them).
//!
//! The tiles' entropy-coded data is copied bit for bit. Only what depends on the neighbours
//! changes: a JPEG codes each block's DC coefficient as the difference from the previous
//! block's of the same component, so the first MCU of each tile row segment gets its DC
//! differences coded again; every other bit is the stored one. No inverse or forward DCT, no
//! colour conversion, no quantisation: the pixels are the stored ones, at the stored quality,
//! as passthrough sends them. Only the Huffman symbols are read (to find where each MCU
//! starts), which is a fraction of what decoding costs.
//!
//! Baseline (or extended sequential) 8-bit Huffman JPEG only, one interleaved scan, no restart
//! intervals, tiles of whole MCUs, every tile with the same tables and frame; anything else is
//! `None` and the caller decodes and encodes as usual.

use bytes::Bytes;

use super::passthrough::sendable;
use super::{Level, Photometric, TileRef};
use crate::pixels::Rect;

/// The most stored tiles one join reads (a 2048 request over 128 tiles is 256).
const MAX_TILES: usize = 1024;

/// Blocks in one MCU at most (JPEG's own limit).
const MAX_BLOCKS: usize = 10;

/// `rect` of `level` (in the level's pixels, its top-left corner on a stored tile's, inside the
/// level) as one JPEG made of the stored JPEG tiles that cover it, `tiles` (from
/// `TiffPyramid::tiles`, with their bytes), without decoding them.
/// The right and bottom edges may cut through a tile: the frame is `rect`'s size and the
/// blocks past it are the stored tile's padding, which decoders do not show.
///
/// `None` when the tiles cannot be joined this way: another compression, alpha, a layout
/// passthrough would not send, a tile missing, progressive or arithmetic coding, restart
/// markers, tiles whose tables or frames differ, a broken tile. Decode and encode then.
pub fn join_jpeg_tiles(level: &Level, rect: Rect, tiles: &[(TileRef, Bytes)]) -> Option<Vec<u8>> {
    let (tw, th) = (level.tile_width, level.tile_height);
    if !sendable(level)
        || tw == 0
        || th == 0
        || rect.w == 0
        || rect.h == 0
        || !rect.x.is_multiple_of(tw)
        || !rect.y.is_multiple_of(th)
        || u64::from(rect.x) + u64::from(rect.w) > u64::from(level.width)
        || u64::from(rect.y) + u64::from(rect.h) > u64::from(level.height)
        || rect.w > 0xFFFF
        || rect.h > 0xFFFF
    {
        return None;
    }
    let (col0, row0) = (rect.x / tw, rect.y / th);
    let across = (rect.right() - rect.x).div_ceil(tw) as usize;
    let down = (rect.bottom() - rect.y).div_ceil(th) as usize;
    if across.checked_mul(down)? > MAX_TILES {
        return None;
    }
    // The tiles in a grid, row-major.
    let mut grid: Vec<Option<&[u8]>> = vec![None; across * down];
    for (t, bytes) in tiles {
        let (Some(c), Some(r)) = (t.col.checked_sub(col0), t.row.checked_sub(row0)) else {
            continue;
        };
        if (c as usize) < across && (r as usize) < down && !bytes.is_empty() {
            grid[r as usize * across + c as usize] = Some(bytes);
        }
    }
    let head = tables_head(level)?;
    let first = Stream::parse(head, grid.first().copied().flatten()?)?;
    let frame = Frame::read(&first, level)?;
    // Tiles of whole MCUs only: a tile's padding MCUs would land inside the joined image.
    if !tw.is_multiple_of(frame.mcu_w) || !th.is_multiple_of(frame.mcu_h) {
        return None;
    }
    // MCUs of the region in the last tile column and row (the others: whole tiles).
    let last_cols = ((rect.right() - (col0 + across as u32 - 1) * tw).div_ceil(frame.mcu_w))
        .min(frame.mcus_x) as usize;
    let last_rows = ((rect.bottom() - (row0 + down as u32 - 1) * th).div_ceil(frame.mcu_h))
        .min(frame.mcus_y) as usize;

    let cols_of = |c: usize| match c + 1 == across {
        true => last_cols,
        false => frame.mcus_x as usize,
    };
    let rows_of = |r: usize| match r + 1 == down {
        true => last_rows,
        false => frame.mcus_y as usize,
    };

    // The new file: the stored markers with the frame resized, then the joined scan, one row
    // of tiles read at a time.
    let stored: usize = grid.iter().map(|t| t.map_or(0, <[u8]>::len)).sum();
    let mut out = Vec::new();
    out.try_reserve(first.header_bytes_len() + stored + stored / 64 + 64)
        .ok()?;
    first.write_header(&mut out, level, rect.w as u16, rect.h as u16);
    let mut bits = BitWriter::new(out);
    let mut pred = [0i32; 4];
    for (r, row) in grid.chunks_exact(across).enumerate() {
        let mut parsed = Vec::with_capacity(across);
        for (c, tile) in row.iter().enumerate() {
            let stream = match (r, c) {
                (0, 0) => first.clone(),
                _ => Stream::parse(head, (*tile)?)?,
            };
            // Same tables, frame and scan as the first: its codes decode them all.
            if stream.header != first.header {
                return None;
            }
            parsed.push(Parsed::scan(&stream, &frame, rows_of(r), cols_of(c))?);
        }
        for lr in 0..rows_of(r) {
            for (c, p) in parsed.iter().enumerate() {
                p.segment(lr, cols_of(c), &frame, &mut pred, &mut bits)?;
            }
        }
    }
    let mut out = bits.finish();
    out.extend_from_slice(&[0xFF, 0xD9]);
    Some(out)
}

/// The level's `JPEGTables` without their EOI (SOI alone without tables), spliced in front of
/// each tile.
fn tables_head(level: &Level) -> Option<&[u8]> {
    const SOI: [u8; 2] = [0xFF, 0xD8];
    match level.jpeg_tables.as_deref() {
        Some(t) if t.len() > 4 => {
            (t.starts_with(&SOI) && t.ends_with(&[0xFF, 0xD9])).then(|| &t[..t.len() - 2])
        }
        _ => Some(&SOI),
    }
}

/// One tile's marker segments (tables first) and entropy-coded data.
#[derive(Clone)]
struct Stream<'a> {
    /// The segments that decide how the scan decodes (DQT, DHT, SOF, SOS, DRI, and the APP0 /
    /// APP14 markers that say the colour space), `(marker, payload)`, in order.
    header: Vec<(u8, &'a [u8])>,
    /// The entropy-coded data, byte-stuffed, up to the next marker.
    data: &'a [u8],
}

impl<'a> Stream<'a> {
    fn parse(head: &'a [u8], tile: &'a [u8]) -> Option<Self> {
        if !tile.starts_with(&[0xFF, 0xD8]) {
            return None;
        }
        let mut header = Vec::new();
        segments(&head[2..], true, &mut header)?;
        let data = segments(&tile[2..], false, &mut header)?;
        // Where the scan's data ends: the first marker that is not a stuffed 0xFF.
        let end = data
            .windows(2)
            .position(|w| w[0] == 0xFF && w[1] != 0)
            .unwrap_or(data.len());
        if data
            .get(end + 1)
            .is_some_and(|&m| (0xD0..=0xD7).contains(&m))
        {
            return None; // restart markers
        }
        Some(Self {
            header,
            data: &data[..end],
        })
    }

    fn find(&self, marker: u8) -> Option<&'a [u8]> {
        self.header
            .iter()
            .find(|(m, _)| *m == marker)
            .map(|(_, p)| *p)
    }

    fn header_bytes_len(&self) -> usize {
        self.header.iter().map(|(_, p)| p.len() + 4).sum::<usize>() + 32
    }

    /// SOI, an Adobe marker saying RGB when the level is RGB stored unconverted and unmarked,
    /// the segments with SOF's size set to `w` x `h`.
    fn write_header(&self, out: &mut Vec<u8>, level: &Level, w: u16, h: u16) {
        out.extend_from_slice(&[0xFF, 0xD8]);
        let marked = self.header.iter().any(|(m, p)| {
            (*m == 0xE0 && p.starts_with(b"JFIF\0")) || (*m == 0xEE && p.starts_with(b"Adobe"))
        });
        if level.photometric == Photometric::Rgb && !marked {
            // APP14 "Adobe", version 100, flags 0, 0, transform 0: the components are RGB.
            out.extend_from_slice(&[
                0xFF, 0xEE, 0x00, 0x0E, b'A', b'd', b'o', b'b', b'e', 0x00, 0x64, 0x00, 0x00, 0x00,
                0x00, 0x00,
            ]);
        }
        // The colour markers first, then the tables, the frame and the scan header.
        let (app, rest): (Vec<_>, Vec<_>) = self
            .header
            .iter()
            .partition(|(m, _)| (0xE0..=0xEF).contains(m));
        for &(marker, payload) in app.into_iter().chain(rest) {
            let at = out.len();
            out.extend_from_slice(&[0xFF, marker]);
            out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
            out.extend_from_slice(payload);
            if matches!(marker, 0xC0 | 0xC1) {
                // P, then Y and X.
                out[at + 5..at + 7].copy_from_slice(&h.to_be_bytes());
                out[at + 7..at + 9].copy_from_slice(&w.to_be_bytes());
            }
        }
    }
}

/// Collect the segments of `bytes` (after SOI) into `into` up to SOS (included) and return the
/// bytes after SOS; `None` for a broken stream or one this module does not join. `tables`: the
/// bytes are `JPEGTables` without EOI, whose end ends them (`Some(&[])`).
fn segments<'a>(bytes: &'a [u8], tables: bool, into: &mut Vec<(u8, &'a [u8])>) -> Option<&'a [u8]> {
    let mut at = 0usize;
    loop {
        let Some(pair) = bytes.get(at..at + 2) else {
            return tables.then_some(&[]);
        };
        match pair {
            [0xFF, 0xFF] => at += 1,
            [0xFF, marker] => {
                let marker = *marker;
                let len = usize::from(u16::from_be_bytes(
                    bytes.get(at + 2..at + 4)?.try_into().ok()?,
                ));
                let payload = bytes.get(at + 4..at + 2 + len.max(2))?;
                at += 2 + len.max(2);
                match marker {
                    // The tables hold tables only.
                    0xC0 | 0xC1 | 0xDA if tables => return None,
                    // One frame.
                    0xC0 | 0xC1 if into.iter().any(|(m, _)| matches!(m, 0xC0 | 0xC1)) => {
                        return None;
                    }
                    0xDB | 0xC4 | 0xC0 | 0xC1 | 0xDA => into.push((marker, payload)),
                    0xDD => {
                        // A restart interval other than 0 puts RST markers in the data.
                        if payload != [0, 0] {
                            return None;
                        }
                    }
                    0xE0 if payload.starts_with(b"JFIF\0") => into.push((marker, payload)),
                    0xEE if payload.starts_with(b"Adobe") => into.push((marker, payload)),
                    0xE0..=0xEF | 0xFE => {}
                    // Progressive, lossless, arithmetic, hierarchical: not joined.
                    _ => return None,
                }
                if marker == 0xDA {
                    return Some(&bytes[at..]);
                }
            }
            _ => return None,
        }
    }
}

/// What the frame and scan say: the MCU grid and, per block of an MCU, its component and
/// tables.
struct Frame {
    mcu_w: u32,
    mcu_h: u32,
    mcus_x: u32,
    mcus_y: u32,
    /// For each block of an MCU: (component index in the scan, DC table, AC table).
    blocks: Vec<(usize, usize, usize)>,
    dc: Vec<Huffman>,
    ac: Vec<Huffman>,
}

impl Frame {
    fn read(stream: &Stream<'_>, level: &Level) -> Option<Self> {
        let sof = stream.find(0xC0).or_else(|| stream.find(0xC1))?;
        let sos = stream.find(0xDA)?;
        let (&[p, h0, h1, w0, w1, nf], comps) = sof.split_first_chunk::<6>()?;
        let (h, w, nf) = (
            u32::from(u16::from_be_bytes([h0, h1])),
            u32::from(u16::from_be_bytes([w0, w1])),
            usize::from(nf),
        );
        if p != 8
            || (w, h) != (level.tile_width, level.tile_height)
            || nf != usize::from(level.samples_per_pixel)
            || !(1..=3).contains(&nf)
            || comps.len() != 3 * nf
        {
            return None;
        }
        let sampling: Vec<(u8, u32, u32)> = comps
            .chunks_exact(3)
            .take(nf)
            .map(|c| (c[0], u32::from(c[1] >> 4), u32::from(c[1] & 15)))
            .collect();
        let unique = |ids: &[u8]| (1..ids.len()).all(|i| !ids[..i].contains(&ids[i]));
        let ids: Vec<u8> = sampling.iter().map(|s| s.0).collect();
        if !unique(&ids)
            || sampling
                .iter()
                .any(|&(_, h, v)| !(1..=4).contains(&h) || !(1..=4).contains(&v))
        {
            return None;
        }
        // One interleaved scan of every component, whole spectrum, no approximation.
        let (&ns, rest) = sos.split_first()?;
        if usize::from(ns) != nf || rest.len() != 2 * nf + 3 || rest[2 * nf..] != [0, 63, 0] {
            return None;
        }
        let selectors: Vec<u8> = rest[..2 * nf].iter().step_by(2).copied().collect();
        if !unique(&selectors) {
            return None;
        }
        let mut tables = (vec![], vec![]);
        for (m, payload) in &stream.header {
            if *m == 0xC4 {
                Huffman::read_dht(payload, &mut tables)?;
            }
        }
        let (dc, ac) = tables;
        let (hmax, vmax) = sampling
            .iter()
            .fold((1, 1), |(a, b), &(_, h, v)| (a.max(h), b.max(v)));
        let mut blocks = Vec::new();
        for (i, sel) in rest[..2 * nf].chunks_exact(2).enumerate() {
            let (_, h, v) = *sampling.iter().find(|s| s.0 == sel[0])?;
            let (td, ta) = (usize::from(sel[1] >> 4), usize::from(sel[1] & 15));
            dc.get(td)?.as_ref()?;
            ac.get(ta)?.as_ref()?;
            // A single-component scan is not interleaved: one block an MCU.
            let n = if nf == 1 { 1 } else { h * v };
            blocks.extend(std::iter::repeat_n((i, td, ta), n as usize));
        }
        if blocks.len() > MAX_BLOCKS {
            return None;
        }
        let (mcu_w, mcu_h) = match nf {
            1 => (8, 8),
            _ => (8 * hmax, 8 * vmax),
        };
        let unwrap = |v: Vec<Option<Huffman>>| v.into_iter().map(|t| t.unwrap_or_default());
        Some(Self {
            mcu_w,
            mcu_h,
            mcus_x: w.div_ceil(mcu_w),
            mcus_y: h.div_ceil(mcu_h),
            blocks,
            dc: unwrap(dc).collect(),
            ac: unwrap(ac).collect(),
        })
    }
}

/// A Huffman table: a 9-bit lookup for short codes, the canonical limits for long ones, and
/// each symbol's code for writing.
#[derive(Clone)]
struct Huffman {
    /// `(length << 8) | symbol` for codes of at most 9 bits, by their next 9 bits; 0: longer.
    lookup: Vec<u16>,
    /// Read as an AC table, by the next 9 bits: `bits | advance << 4` for a code whose extra
    /// bits end within them, `bits` taken by code and extra bits and `advance` the coefficients
    /// it covers (0 for an end of block); 0: decode the slow way.
    skip: Vec<u16>,
    /// Per length 1..=16: the largest code of that length (-1 for none), the first code, and
    /// the index of its symbol in `values`.
    maxcode: [i32; 17],
    mincode: [i32; 17],
    valptr: [usize; 17],
    values: Vec<u8>,
    /// Per symbol: `(code, length)`; length 0 for a symbol the table cannot write.
    codes: Vec<(u16, u8)>,
}

impl Default for Huffman {
    fn default() -> Self {
        Self {
            lookup: vec![0; 512],
            skip: vec![0; 512],
            maxcode: [-1; 17],
            mincode: [0; 17],
            valptr: [0; 17],
            values: Vec::new(),
            codes: vec![(0, 0); 256],
        }
    }
}

impl Huffman {
    /// Read every table of one DHT payload into `(dc, ac)`, by id.
    fn read_dht(
        mut payload: &[u8],
        (dc, ac): &mut (Vec<Option<Huffman>>, Vec<Option<Huffman>>),
    ) -> Option<()> {
        while let Some((&tc_th, rest)) = payload.split_first() {
            let (class, id) = (tc_th >> 4, usize::from(tc_th & 15));
            let counts: &[u8; 16] = rest.first_chunk()?;
            let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let values = rest.get(16..16 + n)?;
            let table = Huffman::new(counts, values)?;
            let list = match class {
                0 => &mut *dc,
                1 => &mut *ac,
                _ => return None,
            };
            if id > 3 {
                return None;
            }
            if list.len() <= id {
                list.resize(id + 1, None);
            }
            list[id] = Some(table);
            payload = &rest[16 + n..];
        }
        Some(())
    }

    fn new(counts: &[u8; 16], values: &[u8]) -> Option<Self> {
        let mut t = Huffman {
            values: values.to_vec(),
            ..Huffman::default()
        };
        let (mut code, mut k) = (0u32, 0usize);
        for len in 1..=16usize {
            let n = usize::from(counts[len - 1]);
            t.valptr[len] = k;
            t.mincode[len] = code as i32;
            for _ in 0..n {
                // Past the codes of this length (or all ones): not a valid table.
                if code + 1 >= 1 << len {
                    return None;
                }
                let sym = usize::from(values[k]);
                if t.codes[sym].1 == 0 {
                    t.codes[sym] = (code as u16, len as u8);
                }
                if len <= 9 {
                    let shift = 9 - len;
                    let first = (code as usize) << shift;
                    for e in &mut t.lookup[first..first + (1 << shift)] {
                        *e = ((len as u16) << 8) | sym as u16;
                    }
                    if let Some(skip) = ac_skip(sym as u8, len) {
                        t.skip[first..first + (1 << shift)].fill(skip);
                    }
                }
                code += 1;
                k += 1;
            }
            t.maxcode[len] = if n > 0 { code as i32 - 1 } else { -1 };
            code <<= 1;
        }
        Some(t)
    }

    /// The next symbol at bit `pos` of `data`, and the bits it took.
    #[inline]
    fn decode(&self, data: &[u8], pos: usize) -> Option<(u8, usize)> {
        let e = self.lookup[peek(data, pos, 9) as usize];
        if e != 0 {
            return Some(((e & 0xFF) as u8, usize::from(e >> 8)));
        }
        let bits = peek(data, pos, 16) as i32;
        for len in 10..=16 {
            let code = bits >> (16 - len);
            if code <= self.maxcode[len] {
                let i = self.valptr[len] + (code - self.mincode[len]) as usize;
                return Some((*self.values.get(i)?, len));
            }
        }
        None
    }
}

/// A [`Huffman::skip`] entry for AC symbol `rs` coded in `len` bits, when its code and extra
/// bits take at most 9 bits.
fn ac_skip(rs: u8, len: usize) -> Option<u16> {
    let (r, s) = (u16::from(rs >> 4), usize::from(rs & 15));
    let advance = match (r, s) {
        (15, 0) => 16,
        (_, 0) => 0,
        _ => r + 1,
    };
    let bits = len + s;
    (bits <= 9).then_some(bits as u16 | advance << 4)
}

/// `n` (at most 32) bits of `data` from bit `pos`, most significant first (zeros past the end).
#[inline]
fn peek(data: &[u8], pos: usize, n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    (window(data, pos) >> (64 - n)) as u32
}

/// The bits of [`window`] that are `data`'s (or zeros past its end), however `pos` is aligned.
const WINDOW: u32 = 57;

/// The 64 bits of `data` from byte `pos / 8`, shifted so that bit `pos` comes first: at least
/// [`WINDOW`] bits of `data` from `pos`, most significant first (zeros past the end).
#[inline]
fn window(data: &[u8], pos: usize) -> u64 {
    let at = pos >> 3;
    let word = match data.get(at..at + 8) {
        Some(w) => u64::from_be_bytes(w.try_into().unwrap_or([0; 8])),
        None => {
            let mut w = [0u8; 8];
            let tail = data.get(at..).unwrap_or(&[]);
            w[..tail.len().min(8)].copy_from_slice(&tail[..tail.len().min(8)]);
            u64::from_be_bytes(w)
        }
    };
    word << (pos & 7)
}

/// A tile's scan read as far as the region needs: where each MCU starts, the DC predictors
/// after it, and the blocks of each row's first MCU.
struct Parsed {
    /// The entropy-coded data unstuffed.
    data: Vec<u8>,
    /// Bit position of each MCU read, and of the end of the last.
    starts: Vec<usize>,
    /// Each component's DC value after each MCU read.
    preds: Vec<[i32; 4]>,
    /// The first MCU of each row: per block, its DC value and its AC bits.
    firsts: Vec<[(i32, usize, usize); MAX_BLOCKS]>,
}

impl Parsed {
    /// Read `rows` rows of MCUs, the last one only up to `cols` MCUs.
    fn scan(stream: &Stream<'_>, frame: &Frame, rows: usize, cols: usize) -> Option<Self> {
        // Unstuffed: the byte after each 0xFF left out.
        let mut data = Vec::with_capacity(stream.data.len());
        let mut rest = stream.data;
        while let Some(i) = memchr::memchr(0xFF, rest) {
            data.extend_from_slice(&rest[..=i]);
            rest = rest.get(i + 2..).unwrap_or_default();
        }
        data.extend_from_slice(rest);
        let bits = data.len() * 8;
        let per_row = frame.mcus_x as usize;
        let count = (rows - 1) * per_row + cols;
        // Every block takes at least two bits (a DC code and an end of block): more MCUs than
        // the data can hold is a broken tile, refused before anything is allocated for them.
        if count > bits / (2 * frame.blocks.len()) + 1 {
            return None;
        }
        let mut p = Parsed {
            data,
            starts: Vec::with_capacity(count + 1),
            preds: Vec::with_capacity(count),
            firsts: Vec::with_capacity(rows),
        };
        let mut pos = 0usize;
        let mut pred = [0i32; 4];
        for m in 0..count {
            p.starts.push(pos);
            let first = m % per_row == 0;
            let mut blocks = [(0i32, 0usize, 0usize); MAX_BLOCKS];
            for (b, &(comp, td, ta)) in frame.blocks.iter().enumerate() {
                let (s, len) = frame.dc[td].decode(&p.data, pos)?;
                if s > 11 {
                    return None;
                }
                pos += len;
                let v = peek(&p.data, pos, u32::from(s)) as i32;
                pos += usize::from(s);
                let diff = match s {
                    0 => 0,
                    _ if v < 1 << (s - 1) => v - (1 << s) + 1,
                    _ => v,
                };
                // 8-bit DC values stay within about +-1024: a predictor running far past
                // that is a broken tile (libjpeg refuses it too).
                pred[comp] = pred[comp]
                    .checked_add(diff)
                    .filter(|p| p.abs() <= 1 << 15)?;
                let ac_start = pos;
                let ac = &frame.ac[ta];
                let mut k = 1usize;
                // The bits from `pos` kept in a register (`have` of them at least), so that
                // a short code's step waits on one table lookup, not on a load of the data.
                let (mut word, mut have) = (window(&p.data, pos), WINDOW);
                while k < 64 {
                    if have < 9 {
                        (word, have) = (window(&p.data, pos), WINDOW);
                    }
                    let e = ac.skip[(word >> 55) as usize];
                    if e != 0 {
                        let n = u32::from(e & 15);
                        (word, have, pos) = (word << n, have - n, pos + n as usize);
                        match e >> 4 {
                            0 => break,
                            advance => k += usize::from(advance),
                        }
                        continue;
                    }
                    let (rs, len) = ac.decode(&p.data, pos)?;
                    pos += len;
                    let (r, s) = (usize::from(rs >> 4), usize::from(rs & 15));
                    if s == 0 {
                        if r != 15 {
                            break;
                        }
                        k += 16;
                    } else {
                        k += r + 1;
                        pos += s;
                    }
                    (word, have) = (window(&p.data, pos), WINDOW);
                }
                if k > 64 {
                    return None;
                }
                if first {
                    blocks[b] = (pred[comp], ac_start, pos);
                }
            }
            if pos > bits {
                return None;
            }
            p.preds.push(pred);
            if first {
                p.firsts.push(blocks);
            }
        }
        p.starts.push(pos);
        Some(p)
    }

    /// Write `cols` MCUs of row `row`: the first with its DC differences coded from `pred`
    /// (the previous segment's), the rest as stored; `pred` then holds this segment's last.
    fn segment(
        &self,
        row: usize,
        cols: usize,
        frame: &Frame,
        pred: &mut [i32; 4],
        out: &mut BitWriter,
    ) -> Option<()> {
        let first = row * frame.mcus_x as usize;
        let blocks = self.firsts.get(row)?;
        for (&(comp, td, _), &(dc, from, to)) in frame.blocks.iter().zip(blocks) {
            let diff = dc - pred[comp];
            pred[comp] = dc;
            let s = 32 - diff.unsigned_abs().leading_zeros();
            let (code, len) = *frame.dc[td].codes.get(s as usize)?;
            if len == 0 || s > 11 {
                return None;
            }
            out.put(u32::from(code), u32::from(len));
            let bits = if diff < 0 { diff - 1 } else { diff } as u32 & ((1u32 << s) - 1);
            out.put(bits, s);
            out.copy(&self.data, from, to);
        }
        if cols > 1 {
            out.copy(
                &self.data,
                *self.starts.get(first + 1)?,
                *self.starts.get(first + cols)?,
            );
        }
        *pred = *self.preds.get(first + cols - 1)?;
        Some(())
    }
}

/// Entropy-coded bits written MSB first, 0xFF bytes stuffed.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn new(out: Vec<u8>) -> Self {
        Self { out, acc: 0, n: 0 }
    }

    /// The low `n` (at most 32) bits of `bits`.
    #[inline]
    fn put(&mut self, bits: u32, n: u32) {
        if n == 0 {
            return;
        }
        self.acc = (self.acc << n) | u64::from(bits & (u32::MAX >> (32 - n)));
        self.n += n;
        while self.n >= 8 {
            self.n -= 8;
            self.byte((self.acc >> self.n) as u8);
        }
    }

    /// One byte of entropy-coded data, stuffed with a 0 after 0xFF.
    #[inline]
    fn byte(&mut self, b: u8) {
        self.out.push(b);
        if b == 0xFF {
            self.out.push(0);
        }
    }

    /// Bits `from..to` of `data`.
    fn copy(&mut self, data: &[u8], from: usize, to: usize) {
        let mut at = from;
        while to - at >= 32 {
            // Four whole bytes leave the accumulator: at once when none of them is 0xFF.
            self.acc = (self.acc << 32) | u64::from(peek(data, at, 32));
            let bytes = (self.acc >> self.n) as u32;
            let inverse = !bytes;
            if inverse.wrapping_sub(0x0101_0101) & !inverse & 0x8080_8080 == 0 {
                self.out.extend_from_slice(&bytes.to_be_bytes());
            } else {
                bytes.to_be_bytes().into_iter().for_each(|b| self.byte(b));
            }
            at += 32;
        }
        if to > at {
            let n = (to - at) as u32;
            self.put(peek(data, at, n), n);
        }
    }

    /// The bytes, the last one padded with 1 bits.
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            let pad = 8 - self.n;
            self.put((1 << pad) - 1, pad);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The skip table agrees with decoding each symbol and its extra bits, for every 9-bit
    /// prefix, and covers every code whose extra bits end within the 9 bits.
    #[test]
    fn the_ac_skip_table_agrees_with_decoding() {
        // Annex K's luminance AC code lengths over every run/size symbol baseline JPEG has.
        let counts = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
        let mut values = vec![0x01, 0x02, 0x00, 0x03, 0xF0];
        for rs in 0..=255u8 {
            if rs & 15 != 0 && rs & 15 <= 10 && !values.contains(&rs) {
                values.push(rs);
            }
        }
        assert_eq!(values.len(), 162);
        let t = Huffman::new(&counts, &values).unwrap();
        let mut fast = 0;
        for prefix in 0..512u16 {
            for fill in [0x00u8, 0x5A, 0xFF] {
                let mut data = vec![fill; 8];
                data[0] = (prefix >> 1) as u8;
                data[1] = (prefix as u8 & 1) << 7 | (fill >> 1);
                let e = t.skip[usize::from(prefix)];
                // All ones is no code: the slow way refuses it.
                let Some((rs, len)) = t.decode(&data, 0) else {
                    assert_eq!(e, 0, "{prefix:09b}");
                    continue;
                };
                let (r, s) = (rs >> 4, usize::from(rs & 15));
                if len + s > 9 {
                    assert_eq!(e, 0, "{prefix:09b}");
                    continue;
                }
                fast += 1;
                let advance = match (r, s) {
                    (15, 0) => 16,
                    (_, 0) => 0,
                    _ => usize::from(r) + 1,
                };
                assert_eq!(
                    (usize::from(e & 15), usize::from(e >> 4)),
                    (len + s, advance),
                    "{prefix:09b} {rs:#04x}"
                );
            }
        }
        assert!(fast > 3 * 256, "{fast}");
    }
}
