//! Where each resolution's packets end in a tile's data, for codestreams whose packets come
//! resolution by resolution (progression RLCP or RPCL, or LRCP with a single quality layer)
//! and whose tile-part headers list every packet's length (PLT marker segments, as Kakadu's
//! `ORGgen_plt=yes` and OpenJPEG's `PLT=YES` write them).
//!
//! A decode at a reduced resolution never uses the packets of the higher resolutions, but a
//! decoder still has to read past them. Cut at the end of the last resolution it needs, a tile
//! keeps only its first packets; the higher resolutions' packets are then written as empty
//! packets (one byte each, with the SOP and EPH markers the coding style asks for), so the
//! codestream stays valid and decodes to exactly the same pixels at that reduction.
//!
//! [`PacketOrder`] gives each packet's resolution and precinct, for leaving out the packets
//! of precincts away from a region the same way.
//!
//! Nothing here trusts the file: the number of packets each resolution of each tile holds is
//! computed from the image and tile geometry, the components' subsampling and the precinct
//! sizes, and the PLT lengths must count exactly as many packets and add up exactly to each
//! tile-part's data; else there is no cut and the tile-parts are read whole.

use super::be16;

/// COD: the coding style of every tile-component.
pub(super) const COD: u16 = 0xFF52;
/// COC: the coding style of one component.
pub(super) const COC: u16 = 0xFF53;
/// POC: progression order changes.
pub(super) const POC: u16 = 0xFF5F;
/// PLT: packet lengths of a tile-part.
const PLT: u16 = 0xFF58;
/// PPT: packed packet headers of a tile-part.
const PPT: u16 = 0xFF61;
/// SOD: start of a tile-part's data (no segment).
const SOD: u16 = 0xFF93;

/// COM: a comment, the only segment besides PLT a tile's later tile-parts may have here.
const COM: u16 = 0xFF64;

/// What the COD marker segment says about packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Coding {
    /// Progression order: 0 LRCP, 1 RLCP, 2 RPCL, 3 PCRL, 4 CPRL.
    pub(super) progression: u8,
    pub(super) layers: u16,
    /// Decomposition levels (resolutions less one).
    pub(super) levels: u8,
    /// Precinct size exponents (x, y) of each resolution, lowest first.
    pub(super) precincts: Vec<(u8, u8)>,
    /// SOP marker before each packet.
    pub(super) sop: bool,
    /// EPH marker after each packet header.
    pub(super) eph: bool,
    /// HT (Part 15) code-blocks: decoded here a whole tile at a time (see `jp2::openjpeg`), so
    /// precincts away from a region are not left out (the cuts by resolution are exact).
    pub(super) ht: bool,
}

impl Coding {
    /// Parse a COD segment (after its marker and length); `None` when it is not valid.
    pub(super) fn parse(seg: &[u8]) -> Option<Coding> {
        let (&scod, &progression) = (seg.first()?, seg.get(1)?);
        let layers = u16::from_be_bytes([*seg.get(2)?, *seg.get(3)?]);
        let levels = *seg.get(5)?;
        if progression > 4 || layers == 0 || levels > 32 {
            return None;
        }
        let n = usize::from(levels) + 1;
        let precincts = if scod & 1 == 1 {
            let bytes = seg.get(10..10 + n)?;
            let p: Vec<(u8, u8)> = bytes.iter().map(|b| (b & 0x0F, b >> 4)).collect();
            // Only the lowest resolution may have precincts of 1 (2^0) sample.
            if p.iter().skip(1).any(|&(x, y)| x == 0 || y == 0) {
                return None;
            }
            p
        } else {
            vec![(15, 15); n]
        };
        Some(Coding {
            progression,
            layers,
            levels,
            precincts,
            sop: scod & 2 == 2,
            eph: scod & 4 == 4,
            ht: seg.get(8)? & 0x40 != 0,
        })
    }

    /// Whether all packets of a resolution come before any of the next one.
    pub(super) fn resolution_major(&self) -> bool {
        matches!(self.progression, 1 | 2) || (self.progression == 0 && self.layers == 1)
    }

    /// The bytes of one empty packet.
    pub(super) fn empty_packet_len(&self) -> u64 {
        1 + if self.sop { 6 } else { 0 } + if self.eph { 2 } else { 0 }
    }

    /// Append `n` empty packets, numbered (for SOP) from `first`.
    pub(super) fn push_empty_packets(&self, first: u32, n: u32, out: &mut Vec<u8>) {
        for i in 0..n {
            if self.sop {
                let seq = (first.wrapping_add(i) & 0xFFFF) as u16;
                out.extend_from_slice(&[0xFF, 0x91, 0x00, 0x04]);
                out.extend_from_slice(&seq.to_be_bytes());
            }
            // The packet header: one zero bit ("empty"), padded to a byte.
            out.push(0);
            if self.eph {
                out.extend_from_slice(&[0xFF, 0x92]);
            }
        }
    }
}

/// A tile's area on the reference grid, and the components' subsampling.
pub(super) struct TileGeometry<'a> {
    pub(super) x0: u32,
    pub(super) y0: u32,
    pub(super) x1: u32,
    pub(super) y1: u32,
    /// (XRsiz, YRsiz) of each component.
    pub(super) subsampling: &'a [(u8, u8)],
}

/// The precincts of one resolution of one tile-component (B.6), on the resolution's grid.
#[derive(Debug, Clone, Copy)]
pub(super) struct Precincts {
    x0: u64,
    y0: u64,
    x1: u64,
    y1: u64,
    ppx: u8,
    ppy: u8,
    /// Precincts across and down.
    pub(super) across: u64,
    pub(super) down: u64,
}

impl Precincts {
    /// Resolution `r` of the tile-component subsampled by `(dx, dy)`.
    pub(super) fn new(tile: &TileGeometry<'_>, coding: &Coding, r: u8, sub: (u8, u8)) -> Self {
        let (ppx, ppy) = coding.precincts[usize::from(r)];
        let scale = 1u64 << (coding.levels - r);
        let (dx, dy) = (u64::from(sub.0), u64::from(sub.1));
        // The tile-component, then the resolution, on their own grids.
        let x0 = u64::from(tile.x0).div_ceil(dx).div_ceil(scale);
        let x1 = u64::from(tile.x1).div_ceil(dx).div_ceil(scale);
        let y0 = u64::from(tile.y0).div_ceil(dy).div_ceil(scale);
        let y1 = u64::from(tile.y1).div_ceil(dy).div_ceil(scale);
        Precincts {
            x0,
            y0,
            x1,
            y1,
            ppx,
            ppy,
            across: count(x0, x1, ppx),
            down: count(y0, y1, ppy),
        }
    }

    /// Whether precinct `p` (raster order) comes within `margin` samples of the area
    /// `[ax0, ax1) x [ay0, ay1)` of the tile-component at full resolution, mapped to this
    /// resolution's grid (`levels_down` below full resolution).
    pub(super) fn touches(&self, p: u64, area: [u64; 4], levels_down: u8, margin: u64) -> bool {
        let (px, py) = (p % self.across.max(1), p / self.across.max(1));
        let span = |lo: u64, hi: u64, exp: u8, i: u64| {
            let start = ((lo >> exp) + i) << exp;
            (start.max(lo), (start + (1 << exp)).min(hi))
        };
        let (x0, x1) = span(self.x0, self.x1, self.ppx, px);
        let (y0, y1) = span(self.y0, self.y1, self.ppy, py);
        let d = u32::from(levels_down);
        let (ax0, ay0) = (area[0] >> d, area[1] >> d);
        let (ax1, ay1) = (area[2].div_ceil(1 << d), area[3].div_ceil(1 << d));
        x0 < ax1 + margin && ax0 < x1 + margin && y0 < ay1 + margin && ay0 < y1 + margin
    }
}

/// The number of packets of each resolution of a tile, lowest resolution first (B.6: the
/// precincts of each component at that resolution, times the layers). `None` past `u32::MAX`
/// in all (a tile's packets are numbered in 32 bits here).
pub(super) fn packets_per_resolution(tile: &TileGeometry<'_>, coding: &Coding) -> Option<Vec<u64>> {
    let mut total = 0u64;
    let mut out = Vec::with_capacity(usize::from(coding.levels) + 1);
    for r in 0..=coding.levels {
        let mut precincts = 0u64;
        for &sub in tile.subsampling {
            let p = Precincts::new(tile, coding, r, sub);
            precincts = precincts.checked_add(p.across.checked_mul(p.down)?)?;
        }
        let n = precincts.checked_mul(u64::from(coding.layers))?;
        total = total.checked_add(n).filter(|&t| t <= u64::from(u32::MAX))?;
        out.push(n);
    }
    Some(out)
}

/// The resolution and precinct (raster order) of each packet of a tile, when every component
/// has the same subsampling (so the same precincts): RPCL visits precincts, then components
/// and layers; RLCP layers, then components and precincts; LRCP of one layer components, then
/// precincts.
pub(super) struct PacketOrder {
    /// The first packet of each resolution, and the number of packets.
    starts: Vec<u64>,
    /// Precincts of each resolution.
    precincts: Vec<u64>,
    /// Components times layers.
    per_precinct: u64,
    rpcl: bool,
}

impl PacketOrder {
    /// `None` when the counts overflow (see [`packets_per_resolution`]).
    pub(super) fn new(tile: &TileGeometry<'_>, coding: &Coding) -> Option<Self> {
        let per_precinct = (tile.subsampling.len() as u64).checked_mul(u64::from(coding.layers))?;
        let mut precincts = Vec::with_capacity(usize::from(coding.levels) + 1);
        let mut starts = vec![0u64];
        for r in 0..=coding.levels {
            let p = Precincts::new(tile, coding, r, tile.subsampling[0]);
            let n = p.across.checked_mul(p.down)?;
            let end = starts[starts.len() - 1].checked_add(n.checked_mul(per_precinct)?)?;
            precincts.push(n);
            starts.push(end);
        }
        Some(PacketOrder {
            starts,
            precincts,
            per_precinct,
            rpcl: coding.progression == 2,
        })
    }

    /// How many packets the tile has.
    pub(super) fn len(&self) -> u64 {
        self.starts[self.starts.len() - 1]
    }

    /// How many packets the first `n` resolutions have.
    pub(super) fn first_resolutions(&self, n: u32) -> u64 {
        self.starts[(n as usize).min(self.starts.len() - 1)]
    }

    /// The resolution and precinct of packet `seq` (less than [`len`](Self::len)).
    pub(super) fn at(&self, seq: u64) -> (u8, u64) {
        let r = self.starts.partition_point(|&s| s <= seq) - 1;
        let j = seq - self.starts[r];
        let k = match self.rpcl {
            true => j / self.per_precinct.max(1),
            false => j % self.precincts[r].max(1),
        };
        (r as u8, k)
    }
}

/// How many precincts of `2^exp` cover `[a, b)` (none when it is empty).
fn count(a: u64, b: u64, exp: u8) -> u64 {
    if b <= a {
        return 0;
    }
    let exp = u32::from(exp);
    b.div_ceil(1 << exp) - (a >> exp)
}

/// A tile-part header, SOT to SOD.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PartHeader {
    /// Its length (SOD included), its packets' lengths in order, and where its PLT segments
    /// are (offset from SOT, length), to leave them out of a codestream whose packets change.
    Done {
        len: u32,
        packets: Vec<u32>,
        plts: Vec<(u32, u32)>,
    },
    /// `buf` ends before SOD.
    NeedMore,
    /// No PLT, a marker that changes the packets (COD, COC, POC, PPT), anything but PLT and
    /// COM in a tile's later tile-part (dropped with it, it would be lost), more than `limit`
    /// packets, or not valid.
    Unusable,
}

/// Parse a tile-part header from its first bytes (`buf` starts at SOT). `first`: the tile's
/// first tile-part. `limit`: the most packets it may list.
pub(super) fn parse_part_header(buf: &[u8], first: bool, limit: usize) -> PartHeader {
    let mut pos = 12usize;
    let mut packets = Vec::new();
    let mut plts: Vec<(u32, u32)> = Vec::new();
    let mut segments = 0usize;
    loop {
        let Some(marker) = be16(buf, pos) else {
            return PartHeader::NeedMore;
        };
        if marker == SOD {
            if plts.is_empty() {
                return PartHeader::Unusable;
            }
            let Ok(len) = u32::try_from(pos + 2) else {
                return PartHeader::Unusable;
            };
            return PartHeader::Done { len, packets, plts };
        }
        let Some(seg_len) = be16(buf, pos + 2) else {
            return PartHeader::NeedMore;
        };
        if marker >> 8 != 0xFF || seg_len < 2 {
            return PartHeader::Unusable;
        }
        let end = pos + 2 + usize::from(seg_len);
        let Some(seg) = buf.get(pos + 4..end) else {
            return PartHeader::NeedMore;
        };
        match marker {
            COD | COC | POC | PPT => return PartHeader::Unusable,
            PLT => {
                // Zplt numbers the segments of this tile-part in order.
                if seg.first().map(|&z| usize::from(z)) != Some(segments % 256)
                    || !parse_plt(&seg[1..], &mut packets, limit)
                {
                    return PartHeader::Unusable;
                }
                // Within a header of at most u32::MAX bytes (checked at SOD). Segments that
                // follow each other are one range to leave out; at most 16 ranges.
                let n = plts.len();
                match plts.last_mut() {
                    Some((at, len)) if (*at + *len) as usize == pos => *len += (end - pos) as u32,
                    _ if n >= 16 => return PartHeader::Unusable,
                    _ => plts.push((pos as u32, (end - pos) as u32)),
                }
                segments += 1;
            }
            COM => {}
            _ if !first => return PartHeader::Unusable,
            _ => {}
        }
        pos = end;
    }
}

/// Append the packet lengths of a PLT segment's body (after Zplt): seven bits a byte, high bit
/// set on all but a length's last byte. False when a length is cut off or too long (at most
/// four bytes, 2^28: longer packets turn cutting off), or past `limit` lengths in all.
fn parse_plt(body: &[u8], packets: &mut Vec<u32>, limit: usize) -> bool {
    let mut len = 0u32;
    let mut bytes = 0;
    for &b in body {
        len = (len << 7) | u32::from(b & 0x7F);
        bytes += 1;
        if bytes > 4 {
            return false;
        }
        if b & 0x80 == 0 {
            if packets.len() >= limit {
                return false;
            }
            packets.push(len);
            len = 0;
            bytes = 0;
        }
    }
    bytes == 0
}

/// Where a tile is cut to keep its first resolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cut {
    /// The tile's last kept tile-part (its place among the tile's tile-parts).
    pub(super) part: u8,
    /// The bytes kept of it, from its SOT marker.
    pub(super) keep: u32,
    /// The packets before the cut (numbering the empty ones after it).
    pub(super) packets: u32,
    /// The packets left out, written as empty packets.
    pub(super) empty: u32,
}

/// The cuts of one tile, one per number of kept resolutions (1 to `levels`; keeping them all
/// is no cut), from its tile-parts' headers (`(header length, data length, packet lengths)`,
/// in order) and its packets per resolution. `None` when they do not agree.
pub(super) fn cuts(parts: &[(u32, u32, &[u32])], per_resolution: &[u64]) -> Option<Vec<Cut>> {
    let total: u64 = per_resolution.iter().sum();
    let listed: u64 = parts.iter().map(|p| p.2.len() as u64).sum();
    if total != listed || u32::try_from(total).is_err() {
        return None;
    }
    for &(_, data, packets) in parts {
        let sum: u64 = packets.iter().map(|&l| u64::from(l)).sum();
        if sum != u64::from(data) {
            return None;
        }
    }
    let mut out = Vec::new();
    let mut wanted = 0u64;
    for &n in &per_resolution[..per_resolution.len().saturating_sub(1)] {
        wanted += n;
        // Find the tile-part holding the packet `wanted` (its first packet not kept).
        let mut before = 0u64;
        let mut found = None;
        for (i, &(header, _, packets)) in parts.iter().enumerate() {
            let here = packets.len() as u64;
            if wanted <= before + here {
                let k = (wanted - before) as usize;
                let bytes: u64 = packets[..k].iter().map(|&l| u64::from(l)).sum();
                found = Some((i, u64::from(header) + bytes));
                break;
            }
            before += here;
        }
        let (i, keep) = found?;
        out.push(Cut {
            part: u8::try_from(i).ok()?,
            keep: u32::try_from(keep).ok()?,
            packets: wanted as u32,
            empty: (total - wanted) as u32,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precincts_are_counted_as_the_standard_says() {
        let coding = Coding {
            progression: 2,
            layers: 2,
            levels: 2,
            precincts: vec![(15, 15), (6, 6), (6, 6)],
            sop: false,
            eph: false,
            ht: false,
        };
        // A 300x200 tile at (10, 0): resolution 2 is the tile, 1 half, 0 a quarter.
        let tile = TileGeometry {
            x0: 10,
            y0: 0,
            x1: 310,
            y1: 200,
            subsampling: &[(1, 1), (2, 2)],
        };
        let p = packets_per_resolution(&tile, &coding).unwrap();
        // Resolution 0: one precinct per component. Resolution 1: component 0 spans x 5..155,
        // y 0..100 -> precincts 0..3 x 0..2 = 6; component 1 x 3..78, y 0..50 -> 2 x 1.
        // Resolution 2: component 0 x 10..310 -> 0..5 (5), y 0..200 -> 4: 20; component 1
        // x 5..155 -> 3, y 0..100 -> 2: 6.
        assert_eq!(p, vec![2 * 2, (6 + 2) * 2, (20 + 6) * 2]);
        // An empty resolution has no precincts.
        assert_eq!(count(5, 5, 3), 0);
    }

    #[test]
    fn packets_are_ordered_as_their_progression_says() {
        let tile = TileGeometry {
            x0: 0,
            y0: 0,
            x1: 64,
            y1: 64,
            subsampling: &[(1, 1), (1, 1)],
        };
        let mut coding = Coding {
            progression: 2,
            layers: 1,
            levels: 1,
            precincts: vec![(15, 15), (5, 5)],
            sop: false,
            eph: false,
            ht: false,
        };
        let all = |c: &Coding| {
            let o = PacketOrder::new(&tile, c).unwrap();
            (0..o.len()).map(|s| o.at(s)).collect::<Vec<_>>()
        };
        // RPCL: each precinct's two components together.
        let mut want = vec![(0, 0), (0, 0)];
        want.extend([0, 0, 1, 1, 2, 2, 3, 3].map(|k| (1, k)));
        assert_eq!(all(&coding), want);
        // RLCP: each component's precincts together.
        coding.progression = 1;
        let mut want = vec![(0, 0), (0, 0)];
        want.extend([0, 1, 2, 3, 0, 1, 2, 3].map(|k| (1, k)));
        assert_eq!(all(&coding), want);
        // Precinct 3 of resolution 1 (32..64 x 32..64 there) against areas at full size.
        let p = Precincts::new(&tile, &coding, 1, (1, 1));
        assert!(p.touches(3, [40, 40, 41, 41], 0, 0));
        assert!(!p.touches(3, [0, 0, 20, 20], 0, 0));
        assert!(p.touches(3, [0, 0, 20, 20], 0, 16), "within the margin");
        // One level down, the area 0..40 is 0..20.
        let p0 = Precincts::new(&tile, &coding, 0, (1, 1));
        assert!(p0.touches(0, [60, 60, 64, 64], 1, 0));
    }

    #[test]
    fn plt_lengths_and_cuts() {
        let mut v = Vec::new();
        assert!(parse_plt(&[0x05, 0x81, 0x00, 0x82, 0x80, 0x01], &mut v, 3));
        assert_eq!(v, vec![5, 128, 32769]);
        assert!(
            !parse_plt(&[0x05, 0x06], &mut Vec::new(), 1),
            "past the limit"
        );
        assert!(!parse_plt(&[0x81], &mut Vec::new(), 9), "cut off");
        assert!(!parse_plt(
            &[0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
            &mut Vec::new(),
            9
        ));

        // Two tile-parts: 3 packets then 2; resolutions of 1, 2 and 2 packets.
        let a = [10, 20, 30];
        let b = [40, 50];
        let parts = [(14, 60, &a[..]), (20, 90, &b[..])];
        let c = cuts(&parts, &[1, 2, 2]).unwrap();
        assert_eq!(
            c,
            vec![
                Cut {
                    part: 0,
                    keep: 24,
                    packets: 1,
                    empty: 4
                },
                // The cut at a tile-part's end keeps that tile-part whole.
                Cut {
                    part: 0,
                    keep: 74,
                    packets: 3,
                    empty: 2
                },
            ]
        );
        assert!(cuts(&parts, &[1, 2, 3]).is_none(), "one packet too many");
        let wrong = [(14, 61, &a[..]), (20, 90, &b[..])];
        assert!(cuts(&wrong, &[1, 2, 2]).is_none(), "lengths do not add up");
    }

    #[test]
    fn empty_packets_carry_the_markers_the_coding_asks_for() {
        let mut coding = Coding::parse(&[0x06, 2, 0, 1, 0, 1, 4, 4, 0, 1]).unwrap();
        assert!(coding.sop && coding.eph && coding.resolution_major());
        let mut out = Vec::new();
        coding.push_empty_packets(65535, 2, &mut out);
        assert_eq!(
            out,
            [
                0xFF, 0x91, 0, 4, 0xFF, 0xFF, 0, 0xFF, 0x92, 0xFF, 0x91, 0, 4, 0, 0, 0, 0xFF, 0x92
            ]
        );
        assert_eq!(out.len() as u64, 2 * coding.empty_packet_len());
        coding.layers = 2;
        coding.progression = 0;
        assert!(!coding.resolution_major(), "LRCP of two layers");
        assert!(Coding::parse(&[0x01, 2, 0, 1, 0, 1, 4, 4, 0, 1, 0x00, 0x77]).is_some());
        assert!(
            Coding::parse(&[0x01, 2, 0, 1, 0, 1, 4, 4, 0, 1, 0x77, 0x00]).is_none(),
            "a precinct of one sample above the lowest resolution"
        );
        assert!(Coding::parse(&[0x00, 5, 0, 1, 0, 1, 4, 4, 0, 1]).is_none());
        // HT code-blocks (style bit 6).
        assert!(
            Coding::parse(&[0x00, 2, 0, 1, 0, 1, 4, 4, 0x40, 1])
                .unwrap()
                .ht
        );
        assert!(!coding.ht);
    }

    #[test]
    fn tile_part_headers() {
        let mut h = vec![0xFF, 0x90, 0, 10, 0, 0, 0, 0, 0, 100, 0, 1];
        assert_eq!(parse_part_header(&h, true, 9), PartHeader::NeedMore);
        h.extend_from_slice(&[0xFF, 0x58, 0, 5, 0, 0x05, 0x0A]);
        assert_eq!(parse_part_header(&h, true, 9), PartHeader::NeedMore);
        h.extend_from_slice(&[0xFF, 0x93]);
        assert_eq!(
            parse_part_header(&h, true, 9),
            PartHeader::Done {
                len: 21,
                packets: vec![5, 10],
                plts: vec![(12, 7)]
            }
        );
        assert_eq!(
            parse_part_header(&h, true, 1),
            PartHeader::Unusable,
            "over the limit"
        );
        // A QCD: in a tile's first tile-part only.
        let mut qcd = h[..12].to_vec();
        qcd.extend_from_slice(&[0xFF, 0x5C, 0, 3, 0]);
        qcd.extend_from_slice(&h[12..]);
        assert!(matches!(
            parse_part_header(&qcd, true, 9),
            PartHeader::Done { len: 26, .. }
        ));
        assert_eq!(parse_part_header(&qcd, false, 9), PartHeader::Unusable);
        // PLT segments next to each other are one range; apart, two.
        let plt = |z: u8| [0xFF, 0x58, 0, 4, z, 0x03];
        let mut two = h[..12].to_vec();
        two.extend_from_slice(&plt(0));
        two.extend_from_slice(&plt(1));
        two.extend_from_slice(&[0xFF, 0x5C, 0, 3, 0]);
        two.extend_from_slice(&plt(2));
        two.extend_from_slice(&[0xFF, 0x93]);
        assert_eq!(
            parse_part_header(&two, true, 9),
            PartHeader::Done {
                len: 37,
                packets: vec![3, 3, 3],
                plts: vec![(12, 12), (29, 6)]
            }
        );
        // Zplt out of order.
        two[16] = 5;
        assert_eq!(parse_part_header(&two, true, 9), PartHeader::Unusable);
        let mut cod = h[..12].to_vec();
        cod.extend_from_slice(&[0xFF, 0x52, 0, 2, 0xFF, 0x93]);
        assert_eq!(parse_part_header(&cod, true, 9), PartHeader::Unusable);
        assert_eq!(
            parse_part_header(&[&h[..12], &[0xFF, 0x93][..]].concat(), true, 9),
            PartHeader::Unusable,
            "no PLT"
        );
    }
}
