//! The cuts of a JPEG 2000's tiles (see the [module docs](super)): whether a file has them (its
//! first tile-part's header lists packet lengths), and each tile's, read from its tile-part
//! headers when a region first needs the tile.

use super::*;

/// Whether the tiles' data can be cut, and how, from the geometry and the first tile-part's
/// header (its own read: most files have no PLT, and say so there). The tiles' own cuts are read
/// when a region needs them. `None` without a PLT, or past the bounds: 4096 tile-parts, 2^22
/// packets.
pub(super) async fn read_cuts<O: SourceObject>(
    obj: &O,
    index: &CodestreamIndex,
    coding: Coding,
    subsampling: &[(u8, u8)],
) -> Result<Option<Cuts>, Error> {
    if index.parts.len() > MAX_CUT_PARTS {
        return Ok(None);
    }
    if read_part_header(obj, &index.parts[0], usize::MAX)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let g = &index.grid;
    let tiles = g.tiles() as usize;
    // The packets each tile's headers may list, from the geometry.
    let mut total = 0u64;
    for t in 0..tiles {
        match packets::packets_per_resolution(&g.tile(t as u32, subsampling), &coding) {
            Some(p) => total = total.saturating_add(p.iter().sum()),
            None => return Ok(None),
        }
    }
    if total > MAX_LISTED_PACKETS {
        return Ok(None);
    }
    // Packet by packet: every component alike, and not too many to keep.
    let by_packet = subsampling.iter().all(|&s| s == subsampling[0]) && total <= MAX_KEPT_PACKETS;
    let levels = u64::from(coding.levels);
    let max_heap = tiles as u64 * (levels * size_of::<Cut>() as u64 + size_of::<TileCuts>() as u64)
        // Each tile-part's header, with at most 16 PLT segments.
        + index.parts.len() as u64 * (size_of::<PartInfo>() as u64 + 16 * 8)
        + if by_packet { total * 4 } else { 0 };
    Ok(Some(Cuts {
        coding,
        subsampling: subsampling.to_vec(),
        by_packet,
        tiles: (0..tiles).map(|_| OnceLock::new()).collect(),
        header_bytes: AtomicU64::new(0),
        max_heap,
    }))
}

impl CodestreamIndex {
    /// Read the cuts of the tiles the area `x, y, w, h` touches that are not read yet: their
    /// tile-part headers, one read per group of them close to each other in the file, 16 at a
    /// time. [`read_region`](Self::read_region) does this itself; call it before
    /// [`region_bytes`](Self::region_bytes) and [`leaves_out`](Self::leaves_out), which count
    /// a tile whose cuts are not read as read whole. Concurrent calls may read a tile twice
    /// (the source's chunk cache makes that one request); the first to finish is kept.
    ///
    /// # Errors
    ///
    /// Only the source's read errors.
    pub async fn load_region<O: SourceObject>(
        &self,
        obj: &O,
        x: u32,
        y: u32,
        w: u32,
        h: u32,
    ) -> Result<(), Error> {
        let Some(c) = &self.cuts else {
            return Ok(());
        };
        let missing: Vec<TilePart> = self
            .region(x, y, w, h)
            .into_iter()
            .filter(|p| {
                c.tiles
                    .get(p.tile as usize)
                    .is_some_and(|t| t.get().is_none())
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        // Each tile's packets per resolution, from the geometry: what its headers may list.
        let mut geometry = std::collections::HashMap::new();
        for p in &missing {
            geometry.entry(p.tile).or_insert_with(|| {
                packets::packets_per_resolution(&self.grid.tile(p.tile, &c.subsampling), &c.coding)
            });
        }
        let listable = |t: u32| {
            geometry
                .get(&t)
                .and_then(|g| g.as_ref())
                .map_or(0, |p| p.iter().sum::<u64>())
        };
        let reads: Vec<_> = header_groups(&missing)
            .into_iter()
            .map(|(g, span)| read_part_headers(obj, &missing[g], span, &listable))
            .collect();
        let mut headers = futures_util::stream::iter(reads).buffered(16);
        let mut read: Vec<(TilePart, PartRead)> = Vec::with_capacity(missing.len());
        let mut parts = missing.iter();
        while let Some(group) = headers.next().await.transpose()? {
            // The group's headers first: `zip` stops at the end of the group without taking
            // the next group's first tile-part.
            read.extend(group.into_iter().zip(parts.by_ref()).map(|(h, p)| (*p, h)));
        }
        read.sort_by_key(|(p, _)| (p.tile, p.part));
        for tile in read.chunk_by(|a, b| a.0.tile == b.0.tile) {
            let t = tile[0].0.tile;
            // A tile another request loaded meanwhile is kept (and its headers counted once).
            c.tiles[t as usize].get_or_init(|| {
                let per_resolution = geometry.get(&t)?.as_deref()?;
                c.tile_from_headers(tile, per_resolution)
            });
        }
        Ok(())
    }

    /// The cuts of tile `t` when they are read and add up.
    pub(super) fn tile_cuts(&self, t: u32) -> Option<&TileCuts> {
        self.cuts.as_ref()?.tiles.get(t as usize)?.get()?.as_ref()
    }
}

impl Cuts {
    /// A tile's cuts from its tile-parts' headers (in order) and its packets per resolution
    /// (from the geometry): `None` when a header is unusable, the tile-parts are not all
    /// there in order, they list more packets than the geometry makes or lengths that do not
    /// add up, or the file's headers pass [`MAX_HEADER_BYTES`].
    fn tile_from_headers(
        &self,
        headers: &[(TilePart, PartRead)],
        per_resolution: &[u64],
    ) -> Option<TileCuts> {
        let mut left: u64 = per_resolution.iter().sum();
        let mut parts = Vec::with_capacity(headers.len());
        let mut lengths = Vec::new();
        for (p, header) in headers {
            let (info, listed) = header.as_ref()?;
            if usize::from(p.part) != parts.len() || listed.len() as u64 > left {
                return None;
            }
            left -= listed.len() as u64;
            lengths.extend_from_slice(listed);
            parts.push(info.clone());
        }
        let bytes: u64 = parts.iter().map(|i: &PartInfo| u64::from(i.header)).sum();
        if self.header_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes > MAX_HEADER_BYTES {
            return None;
        }
        let mut from = 0;
        let mut list = Vec::with_capacity(parts.len());
        for info in &parts {
            let n = info.packets as usize;
            list.push((info.header, info.data, &lengths[from..from + n]));
            from += n;
        }
        let cuts = packets::cuts(&list, per_resolution)
            .filter(|c| c.len() == usize::from(self.coding.levels))?;
        if self.by_packet {
            lengths.shrink_to_fit();
        } else {
            lengths = Vec::new();
        }
        Some(TileCuts {
            cuts,
            parts,
            lengths,
        })
    }
}

/// The tile-parts of `parts` (in file order) whose headers are read together, and the bytes
/// read for them: runs of tile-parts whose first [`PART_HEADER_READ`] bytes lie within
/// [`HEADER_GAP`] of each other, each run at most [`MAX_HEADER_GROUP`] bytes.
pub(super) fn header_groups(parts: &[TilePart]) -> Vec<(Range<usize>, Range<u64>)> {
    let mut groups: Vec<(Range<usize>, Range<u64>)> = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let end = p.range().end.min(p.start + PART_HEADER_READ);
        match groups.last_mut() {
            Some((g, span))
                if p.start >= span.start
                    && p.start.saturating_sub(span.end) <= HEADER_GAP
                    && end.max(span.end) - span.start <= MAX_HEADER_GROUP =>
            {
                g.end = i + 1;
                span.end = end.max(span.end);
            }
            _ => groups.push((i..i + 1, p.start..end)),
        }
    }
    groups
}

/// The headers of a group of tile-parts (see [`header_groups`]) from one read of `span`, each
/// as [`read_part_header`] gives it; a header longer than the read is read on its own.
async fn read_part_headers<O: SourceObject>(
    obj: &O,
    group: &[TilePart],
    span: Range<u64>,
    listable: &impl Fn(u32) -> u64,
) -> Result<Vec<PartRead>, Error> {
    let start = span.start;
    let buf = obj.read_range(span).await?;
    let mut out = Vec::with_capacity(group.len());
    for p in group {
        let limit = usize::try_from(listable(p.tile)).unwrap_or(usize::MAX);
        let at = (p.start - start) as usize;
        // As much of the tile-part as the read holds (a header longer than 4 KiB may be there).
        let want = u64::from(p.len).min(MAX_PART_HEADER) as usize;
        let parsed = buf
            .get(at..(at + want).min(buf.len()))
            .and_then(|head| parse_part(head, p, limit));
        match parsed {
            Some(header) => out.push(header),
            None => out.push(read_part_header(obj, p, limit).await?),
        }
    }
    Ok(out)
}

/// A tile-part's header and packet lengths, read from its start (a first read of up to 4 KiB,
/// doubled as needed). `None` when it has no PLT, lists more than `limit` packets, or is not
/// usable (see [`packets::parse_part_header`]).
async fn read_part_header<O: SourceObject>(
    obj: &O,
    p: &TilePart,
    limit: usize,
) -> Result<PartRead, Error> {
    let max = u64::from(p.len).min(MAX_PART_HEADER);
    let mut want = max.min(PART_HEADER_READ);
    loop {
        let mut buf = obj.read_range(p.start..p.start + want).await?;
        // A source that returns more than asked (the header must lie within the tile-part).
        buf.truncate(want as usize);
        match parse_part(&buf, p, limit) {
            Some(header) => return Ok(header),
            None if want < max && buf.len() as u64 == want => {
                want = want.saturating_mul(2).min(max);
            }
            None => return Ok(None),
        }
    }
}

/// The header of tile-part `p` from its first bytes `buf`: `Some` with its packet lengths, or
/// `Some(None)` when it is unusable; `None` when `buf` ends before the header does.
#[allow(clippy::option_option)]
fn parse_part(buf: &[u8], p: &TilePart, limit: usize) -> Option<PartRead> {
    match packets::parse_part_header(buf, p.part == 0, limit) {
        PartHeader::Done { len, packets, plts } => {
            let info = PartInfo {
                header: len,
                // The header was read within the tile-part.
                data: p.len - len,
                packets: packets.len() as u32,
                plts,
            };
            Some(Some((info, packets)))
        }
        PartHeader::Unusable => Some(None),
        PartHeader::NeedMore => None,
    }
}
