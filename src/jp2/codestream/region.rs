//! The codestream of a region's tiles: which tile-parts (and which of their packets) a region
//! at a reduction needs, fetched by range and joined, every fetched tile-part checked.

use super::*;

impl CodestreamIndex {
    /// Where the last tile-part ends (EOC follows).
    pub(super) fn end(&self) -> u64 {
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

    /// The bytes this index keeps in memory once every tile's cuts are read, about (for cache
    /// weights).
    pub fn heap_bytes(&self) -> u64 {
        (self.boxes.len()
            + self.main.len()
            + self.parts.len() * std::mem::size_of::<TilePart>()
            + std::mem::size_of::<Self>()) as u64
            + self.cuts.as_ref().map_or(0, |c| {
                c.max_heap
                    + c.tiles.len() as u64
                        * std::mem::size_of::<OnceLock<Option<TileCuts>>>() as u64
                    + c.coding.precincts.len() as u64 * 2
            })
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

    /// The bytes [`read_region`](Self::read_region) would fetch for this area at `reduce`, the
    /// tiles whose cuts are not read yet ([`load_region`](Self::load_region)) counted whole.
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
            let whole = |ops: &mut Vec<Op>| {
                ops.extend(mine.iter().map(|&p| Op::whole(p, Some((p.len, p.parts)))));
            };
            let Some(tc) = self.tile_cuts(tile) else {
                whole(&mut ops);
                continue;
            };
            if c.by_packet
                && !c.coding.ht
                && let Some(more) = select(
                    mine,
                    &tc.parts,
                    &tc.lengths,
                    &g.tile(tile, &c.subsampling),
                    &c.coding,
                    kept,
                    area,
                )
            {
                ops.extend(more);
                continue;
            }
            if kept > levels || mine.len() != tc.parts.len() {
                whole(&mut ops);
                continue;
            }
            let cut = tc.cuts[kept as usize - 1];
            let info = &tc.parts[usize::from(cut.part)];
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
    /// out (else, for a single tile, the decoder may as well read the file itself), as far as
    /// the tiles' cuts are read ([`load_region`](Self::load_region)).
    pub fn leaves_out(&self, x: u32, y: u32, w: u32, h: u32, reduce: u32) -> bool {
        self.ops(x, y, w, h, reduce)
            .iter()
            .any(|op| matches!(op, Op::Empty { n, .. } if *n > 0))
    }

    /// Read the cuts of the tiles the area `x, y, w, h` touches
    /// ([`load_region`](Self::load_region)), fetch their tile-parts (one read per run of
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
        self.load_region(obj, x, y, w, h).await?;
        let (ops, mut out) = self.begin(x, y, w, h, reduce, max_bytes)?;
        let runs = runs(&ops);
        // Every run read at once: over a remote source each is a round trip.
        let reads = runs.iter().map(|run| async move {
            match run {
                Run::Read(_, range) => obj.read_range(range.clone()).await,
                Run::Empty(..) => Ok(Bytes::new()),
            }
        });
        let fetched = futures_util::future::try_join_all(reads).await?;
        for (run, bytes) in runs.into_iter().zip(fetched) {
            self.write_run(&ops, run, &bytes, &mut out)?;
        }
        out.extend_from_slice(&EOC);
        Ok(out)
    }

    /// [`read_region`](Self::read_region) from a source read synchronously on the calling
    /// thread (a blocking pool's), each run read straight into the codestream. Tiles whose cuts
    /// are not read yet ([`load_region`](Self::load_region)) are read whole.
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
