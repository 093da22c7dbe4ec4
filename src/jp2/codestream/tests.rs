//! Tests of the tile-part index, on JPEG 2000 files written by OpenJPEG's own encoder.

use std::ops::Range;

use super::*;
use crate::jp2::openjpeg::tests::{Opts, encode_fixture, pattern};
use crate::jp2::{self, DecodeRequest};
use crate::tiff::tests::Counting;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// A 300x200 RGB pattern in 64x64 tiles (5 x 4), 4 resolutions, TLM, split into tile-parts by
/// resolution.
fn fixture(jp2_container: bool, lossless: bool) -> Vec<u8> {
    fixture_tlm(jp2_container, lossless, true)
}

fn fixture_tlm(jp2_container: bool, lossless: bool, tlm: bool) -> Vec<u8> {
    let opts = Opts {
        tiled: Some((64, 64)),
        resolutions: 4,
        lossless,
        irreversible: !lossless,
        jp2_container,
        tlm,
        tile_parts_by_resolution: true,
        ..Opts::default()
    };
    encode_fixture(300, 200, 3, &pattern(300, 200, 3), &opts)
}

fn decode(file: &[u8], reduce: u32, area: (u32, u32, u32, u32)) -> jp2::Decoded {
    let req = DecodeRequest {
        reduce,
        area: Some(area),
        ..DecodeRequest::default()
    };
    jp2::decode(file, &req).unwrap()
}

#[test]
fn index_lists_every_tile_part_in_file_order() {
    for (jp2_container, tlm) in [(true, true), (false, true), (true, false), (false, false)] {
        let file = fixture_tlm(jp2_container, true, tlm);
        let obj = Counting::new(file.clone());
        let index = block_on(read_index(&obj)).unwrap().expect("an index");
        assert_eq!(index.tile_grid(), (5, 4));
        // One tile-part per resolution of each tile.
        assert_eq!(index.parts().len(), 20 * 4);
        for tile in 0..20 {
            assert_eq!(index.parts().iter().filter(|p| p.tile == tile).count(), 4);
        }
        // Contiguous from the first SOT, each starting with its SOT marker.
        for pair in index.parts().windows(2) {
            assert_eq!(pair[0].start + u64::from(pair[0].len), pair[1].start);
        }
        for p in index.parts() {
            let at = p.start as usize;
            assert_eq!(&file[at..at + 2], &[0xFF, 0x90]);
            assert_eq!(
                u16::from_be_bytes([file[at + 4], file[at + 5]]) as u32,
                p.tile
            );
        }
        // The main header, and without TLM each SOT marker segment: never the tile data.
        let reads = obj.take();
        let read: u64 = reads.iter().map(|r| r.end - r.start).sum();
        let parts = index.parts().len() as u64;
        match tlm {
            // Then the first tile-part's header, to look for packet lengths (there are none).
            true => {
                assert!(read <= (64 << 10) + 4096 + 2, "{read}");
                assert_eq!(
                    reads.len(),
                    3,
                    "the file's first bytes, the first tile-part's header, then its EOC"
                );
            }
            false => {
                let small = reads.iter().filter(|r| r.end - r.start <= 12).count() as u64;
                assert_eq!(small, parts + 2, "one read per SOT, EOC, and EOC again");
                assert!(read <= (64 << 10) + 4096 + 12 * (parts + 2), "{read}");
            }
        }
    }
}

#[test]
fn region_picks_the_tiles_the_area_touches() {
    let obj = Counting::new(fixture(true, true));
    let index = block_on(read_index(&obj)).unwrap().unwrap();
    let tiles = |x, y, w, h| {
        let mut t: Vec<u32> = index.region(x, y, w, h).iter().map(|p| p.tile).collect();
        t.dedup();
        t.sort_unstable();
        t.dedup();
        t
    };
    assert_eq!(tiles(0, 0, 64, 64), vec![0]);
    assert_eq!(tiles(63, 63, 2, 2), vec![0, 1, 5, 6]);
    assert_eq!(tiles(256, 192, 100, 100), vec![19]);
    assert_eq!(tiles(0, 0, 300, 200), (0..20).collect::<Vec<_>>());
    assert!(tiles(300, 0, 10, 10).is_empty());
    assert!(tiles(0, 0, 0, 10).is_empty());
    assert_eq!(index.region_bytes(0, 0, 64, 64, 0), {
        index
            .parts()
            .iter()
            .filter(|p| p.tile == 0)
            .map(|p| u64::from(p.len))
            .sum::<u64>()
    });
}

#[test]
fn region_codestream_decodes_to_the_same_pixels_reading_only_its_tiles() {
    for (jp2_container, lossless, tlm) in [
        (true, true, true),
        (false, true, true),
        (true, false, true),
        (true, true, false),
    ] {
        let file = fixture_tlm(jp2_container, lossless, tlm);
        let obj = Counting::new(file.clone());
        let index = block_on(read_index(&obj)).unwrap().unwrap();
        obj.take();
        for (reduce, area) in [
            (0, (10, 20, 50, 40)),
            (1, (60, 60, 130, 70)),
            (2, (128, 64, 172, 136)),
            (0, (256, 192, 44, 8)),
        ] {
            let (x, y, w, h) = area;
            let small = block_on(index.read_region(&obj, x, y, w, h, 0, 1 << 30)).unwrap();
            let reads = obj.take();
            let parts = index.region(x, y, w, h);
            let want: u64 = parts.iter().map(|p| u64::from(p.len)).sum();
            let read: u64 = reads.iter().map(|r| r.end - r.start).sum();
            assert_eq!(read, want, "{area:?}: only the tile-parts of its tiles");
            // The tile-parts of one row of tiles follow each other in the file: one read per row.
            let rows = (y + h).div_ceil(64) - y / 64;
            assert_eq!(reads.len() as u32, rows, "{area:?}");
            assert!(small.len() < file.len());
            let a = decode(&file, reduce, area);
            let b = decode(&small, reduce, area);
            assert_eq!(
                (a.width, a.height, a.channels),
                (b.width, b.height, b.channels)
            );
            assert!(a.data == b.data, "{area:?} at reduce {reduce}: same pixels");
        }
    }
}

#[test]
fn files_without_a_useful_index_have_none() {
    let src = pattern(100, 80, 3);
    let one_tile = Opts {
        tlm: true,
        jp2_container: true,
        ..Opts::default()
    };
    let file = encode_fixture(100, 80, 3, &src, &one_tile);
    assert!(
        block_on(read_index(&Counting::new(file)))
            .unwrap()
            .is_none()
    );
    // Without TLM, a broken chain of SOT markers: no index.
    let mut file = fixture_tlm(false, true, false);
    let obj = Counting::new(file.clone());
    let second = block_on(read_index(&obj)).unwrap().unwrap().parts()[1].start as usize;
    file[second + 1] = 0x91;
    assert!(
        block_on(read_index(&Counting::new(file)))
            .unwrap()
            .is_none()
    );
    for junk in [
        b"".to_vec(),
        b"not a jpeg 2000 file".to_vec(),
        vec![0xFF, 0x4F],
    ] {
        assert!(
            block_on(read_index(&Counting::new(junk)))
                .unwrap()
                .is_none()
        );
    }
}

#[test]
fn damaged_files_are_errors_or_no_index_never_panics() {
    let file = fixture(true, true);
    let index = block_on(read_index(&Counting::new(file.clone())))
        .unwrap()
        .unwrap();
    let first = index.parts()[0].start as usize;
    // Every truncation of the header: no index or an index, never a panic.
    for cut in (0..first + 4).step_by(7) {
        let _ = block_on(read_index(&Counting::new(file[..cut].to_vec()))).unwrap();
    }
    // Cut inside the tile data: the TLM lengths run past the end.
    let cut = file[..file.len() / 2].to_vec();
    assert!(block_on(read_index(&Counting::new(cut))).unwrap().is_none());
    // Without TLM too: the chain of SOT markers runs past the end.
    let raw = fixture_tlm(false, true, false);
    let cut = raw[..raw.len() / 2].to_vec();
    assert!(block_on(read_index(&Counting::new(cut))).unwrap().is_none());
    // A tile-part that is not where the index says: the fetched bytes are refused.
    let mut moved = file.clone();
    let p = index.parts()[0];
    moved[p.start as usize] = 0;
    let obj = Counting::new(moved);
    let e = block_on(index.read_region(&obj, 0, 0, 10, 10, 0, 1 << 30)).unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::Source);
    assert!(e.message().contains("index"), "{e}");
    // Over the budget: refused before reading.
    let obj = Counting::new(file);
    let e = block_on(index.read_region(&obj, 0, 0, 300, 200, 0, 1000)).unwrap_err();
    assert!(e.message().contains("budget"), "{e}");
    assert!(obj.take().is_empty());
}

#[test]
fn every_header_byte_mutated_never_panics() {
    for tlm in [true, false] {
        let file = fixture_tlm(true, true, tlm);
        let good = block_on(read_index(&Counting::new(file.clone())))
            .unwrap()
            .unwrap();
        let end = good.parts()[1].start as usize + 16;
        for at in 0..end {
            for value in [0x00, 0xFF, file[at] ^ 0x01, file[at].wrapping_add(0x80)] {
                let mut bad = file.clone();
                bad[at] = value;
                let obj = Counting::new(bad);
                // Any answer but a panic; an index still reads only inside the file.
                if let Some(index) = block_on(read_index(&obj)).unwrap() {
                    for p in index.parts() {
                        assert!(p.start + u64::from(p.len) <= file.len() as u64);
                    }
                    for (x, y, w, h) in [(0, 0, 10, 10), (100, 100, 200, 100), (299, 199, 5, 5)] {
                        let _ = block_on(index.read_region(&obj, x, y, w, h, 0, 1 << 20));
                    }
                }
            }
        }
    }
}

#[test]
fn a_tlm_that_leaves_tile_parts_out_gives_no_index() {
    let file = fixture(false, true);
    let tlm = file.windows(2).position(|w| w == [0xFF, 0x55]).unwrap();
    let ltlm = u16::from_be_bytes([file[tlm + 2], file[tlm + 3]]) as usize;
    let stlm = file[tlm + 5];
    let size = usize::from((stlm >> 4) & 3) + if (stlm >> 6) & 1 == 1 { 4 } else { 2 };
    // The last entry dropped: the listed tile-parts no longer reach EOC.
    let mut short = file[..tlm + 2].to_vec();
    short.extend_from_slice(&((ltlm - size) as u16).to_be_bytes());
    short.extend_from_slice(&file[tlm + 4..tlm + 2 + ltlm - size]);
    short.extend_from_slice(&file[tlm + 2 + ltlm..]);
    assert!(
        block_on(read_index(&Counting::new(short)))
            .unwrap()
            .is_none()
    );
    // The file as written has one.
    assert!(
        block_on(read_index(&Counting::new(file)))
            .unwrap()
            .is_some()
    );
}

#[test]
fn more_tiles_than_a_codestream_may_have_give_no_index() {
    // SIZ of 70000 x 2 one-pixel tiles (Isot only goes to 65534).
    let mut cs = vec![0xFF, 0x4F, 0xFF, 0x51, 0x00, 41, 0, 0];
    for v in [70_000u32, 2, 0, 0, 1, 1, 0, 0] {
        cs.extend_from_slice(&v.to_be_bytes());
    }
    cs.extend_from_slice(&[0, 1, 7, 1, 1]);
    cs.extend_from_slice(&[
        0xFF, 0x90, 0, 10, 0, 0, 0, 0, 0, 14, 0, 1, 0xFF, 0x93, 0xFF, 0xD9,
    ]);
    assert!(block_on(read_index(&Counting::new(cs))).unwrap().is_none());
}

#[test]
fn regions_read_synchronously_are_the_same_codestream() {
    for tlm in [true, false] {
        let file = fixture_tlm(true, true, tlm);
        let obj = Counting::new(file.clone());
        let index = block_on(read_index(&obj)).unwrap().unwrap();
        for (x, y, w, h) in [(10, 20, 50, 40), (60, 60, 130, 70), (0, 0, 300, 200)] {
            let a = block_on(index.read_region(&obj, x, y, w, h, 0, 1 << 30)).unwrap();
            let b = index
                .read_region_at(file.as_slice(), x, y, w, h, 0, 1 << 30)
                .unwrap();
            assert!(a == b, "{x},{y},{w},{h}");
        }
        // A source shorter than its index: an error, not a panic or a short codestream.
        let short = &file[..file.len() - 40];
        let e = index
            .read_region_at(short, 0, 0, 300, 200, 0, 1 << 30)
            .unwrap_err();
        assert!(e.message().contains("truncated"), "{e}");
    }
}

/// A 300x200 RGB pattern with PLT markers, 5 resolutions, encoded with `opts` over that.
fn plt_fixture(opts: Opts) -> Vec<u8> {
    let opts = Opts {
        resolutions: 5,
        plt: true,
        ..opts
    };
    encode_fixture(300, 200, 3, &pattern(300, 200, 3), &opts)
}

/// Files whose packets come resolution by resolution, with PLT: untiled and tiled, each
/// progression that allows a cut, with precincts, layers, SOP and EPH markers.
fn cuttable_fixtures() -> Vec<(&'static str, Vec<u8>)> {
    use openjpeg_sys::PROG_ORDER::{OPJ_RLCP, OPJ_RPCL};
    vec![
        (
            "untiled RPCL, precincts, 2 layers, SOP + EPH, JP2",
            plt_fixture(Opts {
                progression: OPJ_RPCL,
                precincts: Some((32, 32)),
                layers: 2,
                sop_eph: true,
                jp2_container: true,
                ..Opts::default()
            }),
        ),
        ("untiled LRCP, 1 layer", plt_fixture(Opts::default())),
        (
            "untiled RLCP, 3 lossy layers",
            plt_fixture(Opts {
                progression: OPJ_RLCP,
                layers: 3,
                lossless: false,
                irreversible: true,
                ..Opts::default()
            }),
        ),
        (
            "64 tiles, RPCL, tile-parts by resolution, TLM",
            plt_fixture(Opts {
                tiled: Some((64, 64)),
                progression: OPJ_RPCL,
                tile_parts_by_resolution: true,
                tlm: true,
                ..Opts::default()
            }),
        ),
        (
            "64 tiles, RPCL, tile-parts by resolution, components 1x1, 2x2, 2x2 (cut by resolution)",
            {
                use crate::jp2::openjpeg::tests::{PlaneIn, encode_planes};
                let full = pattern(300, 200, 3);
                let half = pattern(150, 100, 3);
                let planes = vec![
                    PlaneIn {
                        dx: 1,
                        dy: 1,
                        data: full.iter().step_by(3).copied().collect(),
                    },
                    PlaneIn {
                        dx: 2,
                        dy: 2,
                        data: half.iter().skip(1).step_by(3).copied().collect(),
                    },
                    PlaneIn {
                        dx: 2,
                        dy: 2,
                        data: half.iter().skip(2).step_by(3).copied().collect(),
                    },
                ];
                let opts = Opts {
                    tiled: Some((64, 64)),
                    resolutions: 5,
                    plt: true,
                    progression: OPJ_RPCL,
                    tile_parts_by_resolution: true,
                    ..Opts::default()
                };
                encode_planes(300, 200, &planes, &opts)
            },
        ),
        (
            "96 tiles, LRCP, 1 layer, SOP + EPH",
            plt_fixture(Opts {
                tiled: Some((96, 96)),
                sop_eph: true,
                ..Opts::default()
            }),
        ),
    ]
}

/// The marker segments of each tile-part's header, walking the codestream from SOT to SOT by
/// their lengths (Psot) to EOC, which must end it.
fn tile_part_markers(cs: &[u8]) -> Vec<(u16, Vec<u16>)> {
    let be16 = |at: usize| u16::from_be_bytes([cs[at], cs[at + 1]]);
    let mut pos = cs
        .windows(4)
        .position(|w| w == [0xFF, 0x4F, 0xFF, 0x51])
        .expect("SOC")
        + 2;
    while be16(pos) != 0xFF90 {
        pos += 2 + usize::from(be16(pos + 2));
    }
    let mut out = Vec::new();
    while be16(pos) == 0xFF90 {
        let psot = u32::from_be_bytes([cs[pos + 6], cs[pos + 7], cs[pos + 8], cs[pos + 9]]);
        let mut at = pos + 12;
        let mut markers = Vec::new();
        while be16(at) != 0xFF93 {
            markers.push(be16(at));
            at += 2 + usize::from(be16(at + 2));
        }
        out.push((be16(pos + 4), markers));
        assert!(psot > 0);
        pos += psot as usize;
    }
    assert_eq!(pos, cs.len() - 2, "EOC right after the last tile-part");
    assert_eq!(be16(pos), 0xFFD9);
    out
}

fn decode_req(file: &[u8], reduce: u32, area: Option<(u32, u32, u32, u32)>) -> jp2::Decoded {
    let req = DecodeRequest {
        reduce,
        area,
        ..DecodeRequest::default()
    };
    jp2::decode(file, &req).unwrap()
}

#[test]
fn cut_tiles_decode_to_the_same_pixels_reading_only_the_resolutions_used() {
    for (name, file) in cuttable_fixtures() {
        let obj = Counting::new(file.clone());
        let index = block_on(read_index(&obj))
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: an index"));
        assert!(index.cuts_at(1) && !index.cuts_at(0), "{name}");
        // Every tile's cuts, read before the counting starts.
        block_on(index.load_region(&obj, 0, 0, 300, 200)).unwrap();
        obj.take();
        for area in [(0, 0, 300, 200), (37, 50, 120, 90), (250, 150, 50, 50)] {
            let (x, y, w, h) = area;
            let mut last = u64::MAX;
            for reduce in 0..5 {
                let cs = block_on(index.read_region(&obj, x, y, w, h, reduce, 1 << 30)).unwrap();
                let read: u64 = obj.take().iter().map(|r| r.end - r.start).sum();
                let expect = index.region_bytes(x, y, w, h, reduce);
                assert_eq!(
                    read, expect,
                    "{name} {area:?} at {reduce}: what it says it reads"
                );
                assert!(
                    read < last,
                    "{name} {area:?}: reduce {reduce} reads less than {}",
                    reduce.max(1) - 1
                );
                last = read;
                let whole = (x, y, w, h) == (0, 0, 300, 200);
                let area = (!whole).then_some(area);
                let want = decode_req(&file, reduce, area);
                let got = decode_req(&cs, reduce, area);
                assert_eq!(
                    (got.width, got.height, got.channels),
                    (want.width, want.height, want.channels),
                    "{name} {area:?} at {reduce}"
                );
                assert!(
                    got.data == want.data,
                    "{name} {area:?} at {reduce}: the same pixels as from the whole file"
                );
                // Valid structure: each tile-part's Psot leads to the next, EOC last; the
                // cut tile-part (each tile's last, at a reduction) has no PLT left: it would
                // list the old lengths.
                let headers = tile_part_markers(&cs);
                if reduce > 0 {
                    for (i, (tile, markers)) in headers.iter().enumerate() {
                        let last = headers[i + 1..].iter().all(|(t, _)| t != tile);
                        assert!(
                            !last || !markers.contains(&0xFF58),
                            "{name} {area:?} at {reduce}: {headers:x?}"
                        );
                    }
                }
                // Read synchronously: the same codestream.
                let sync = index
                    .read_region_at(file.as_slice(), x, y, w, h, reduce, 1 << 30)
                    .unwrap();
                assert!(sync == cs, "{name} {area:?} at {reduce}");
            }
        }
        // The smallest resolution of the whole image: a small part of the file.
        let least = index.region_bytes(0, 0, 300, 200, 4);
        assert!(
            least * 5 < file.len() as u64,
            "{name}: {least} of {} bytes",
            file.len()
        );
    }
}

#[test]
fn files_whose_packets_cannot_be_cut_are_read_whole() {
    use openjpeg_sys::PROG_ORDER::{OPJ_LRCP, OPJ_PCRL};
    let src = pattern(300, 200, 3);
    // Packets not resolution by resolution; or no packet lengths: one tile has no index, and
    // the tiles of a tiled file are read whole.
    let no_cut = [
        Opts {
            plt: true,
            layers: 2,
            progression: OPJ_LRCP,
            ..Opts::default()
        },
        Opts {
            plt: true,
            progression: OPJ_PCRL,
            ..Opts::default()
        },
        Opts::default(),
    ];
    for opts in no_cut {
        let file = encode_fixture(300, 200, 3, &src, &opts);
        assert!(
            block_on(read_index(&Counting::new(file)))
                .unwrap()
                .is_none()
        );
        let tiled = Opts {
            tiled: Some((64, 64)),
            ..opts
        };
        let file = encode_fixture(300, 200, 3, &src, &tiled);
        let index = block_on(read_index(&Counting::new(file))).unwrap().unwrap();
        assert!(!index.cuts_at(2));
        assert_eq!(
            index.region_bytes(0, 0, 300, 200, 2),
            index.region_bytes(0, 0, 300, 200, 0)
        );
    }
    // Packet lengths that do not add up: no cuts (one PLT length changed by one).
    let file = plt_fixture(Opts {
        tiled: Some((64, 64)),
        ..Opts::default()
    });
    let plt = file
        .windows(2)
        .position(|w| w == [0xFF, 0x58])
        .expect("a PLT");
    let mut bad = file.clone();
    bad[plt + 5] ^= 1;
    let obj = Counting::new(bad);
    let index = block_on(read_index(&obj)).unwrap().unwrap();
    block_on(index.load_region(&obj, 0, 0, 300, 200)).unwrap();
    // That tile (the first) is read whole; the others are still cut.
    assert_eq!(index.parts()[0].tile, 0);
    assert_eq!(
        index.region_bytes(0, 0, 64, 64, 1),
        index.region_bytes(0, 0, 64, 64, 0)
    );
    assert!(index.region_bytes(128, 128, 64, 64, 1) < index.region_bytes(128, 128, 64, 64, 0));
}

#[test]
fn every_byte_of_the_headers_and_packet_lengths_mutated_never_panics() {
    // The main header and the tile-part headers with their PLT, of an untiled and a tiled file.
    for (_, file) in cuttable_fixtures().into_iter().step_by(3) {
        let good = block_on(read_index(&Counting::new(file.clone())))
            .unwrap()
            .unwrap();
        let first = good.parts()[0].start as usize;
        let sod = first
            + file[first..]
                .windows(2)
                .position(|w| w == [0xFF, 0x93])
                .expect("SOD");
        for at in 0..sod + 2 {
            for value in [0x00, 0xFF, file[at] ^ 0x01, file[at].wrapping_add(0x80)] {
                let mut bad = file.clone();
                bad[at] = value;
                let obj = Counting::new(bad.clone());
                // Any answer but a panic: an index, its cut codestreams, their decode.
                if let Some(index) = block_on(read_index(&obj)).unwrap() {
                    for reduce in [1, 3] {
                        if let Ok(cs) =
                            block_on(index.read_region(&obj, 20, 30, 200, 100, reduce, 1 << 20))
                        {
                            let req = DecodeRequest {
                                reduce,
                                area: Some((20, 30, 200, 100)),
                                ..DecodeRequest::default()
                            };
                            let _ = jp2::decode(cs.as_slice(), &req);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn precincts_away_from_an_area_are_left_out_and_the_pixels_are_the_same() {
    use openjpeg_sys::PROG_ORDER::{OPJ_RLCP, OPJ_RPCL};
    // Untiled, 32-sample precincts: reversible (5/3) and irreversible (9/7, longer filters).
    let fixtures = [
        plt_fixture(Opts {
            progression: OPJ_RPCL,
            precincts: Some((32, 32)),
            layers: 2,
            sop_eph: true,
            ..Opts::default()
        }),
        plt_fixture(Opts {
            progression: OPJ_RLCP,
            precincts: Some((32, 32)),
            lossless: false,
            irreversible: true,
            ..Opts::default()
        }),
        // The image and its precincts off the reference grid's origin.
        plt_fixture(Opts {
            progression: OPJ_RPCL,
            precincts: Some((32, 32)),
            origin: (13, 7),
            ..Opts::default()
        }),
        // Every component subsampled 2x2: precincts on the components' own grids.
        {
            use crate::jp2::openjpeg::tests::{PlaneIn, encode_planes};
            let px = pattern(150, 100, 3);
            let planes: Vec<PlaneIn> = (0..3)
                .map(|c| PlaneIn {
                    dx: 2,
                    dy: 2,
                    data: px.iter().skip(c).step_by(3).copied().collect(),
                })
                .collect();
            let opts = Opts {
                resolutions: 5,
                plt: true,
                progression: OPJ_RPCL,
                precincts: Some((16, 16)),
                ..Opts::default()
            };
            encode_planes(300, 200, &planes, &opts)
        },
        // Kakadu's archival recipe: also one tile-part per resolution (ORGtparts=R).
        plt_fixture(Opts {
            progression: OPJ_RPCL,
            precincts: Some((32, 32)),
            tile_parts_by_resolution: true,
            sop_eph: true,
            lossless: false,
            irreversible: true,
            ..Opts::default()
        }),
    ];
    let mut refused = 0;
    let mut compared = 0;
    for file in fixtures {
        let obj = Counting::new(file.clone());
        let index = block_on(read_index(&obj)).unwrap().unwrap();
        block_on(index.load_region(&obj, 0, 0, 300, 200)).unwrap();
        let whole = index.region_bytes(0, 0, 300, 200, 0);
        // A small area reads a small part of the file.
        let small = index.region_bytes(250, 150, 20, 20, 0);
        assert!(small * 2 < whole, "{small} of {whole}");
        for reduce in [0, 1, 3] {
            for x in [0, 31, 32, 33, 150, 290] {
                for y in [0, 47, 64, 199] {
                    for (w, h) in [(1, 1), (17, 9), (64, 64)] {
                        let area = (x, y, w.min(300 - x), h.min(200 - y));
                        let cs = index
                            .read_region_at(
                                file.as_slice(),
                                area.0,
                                area.1,
                                area.2,
                                area.3,
                                reduce,
                                1 << 30,
                            )
                            .unwrap();
                        let req = DecodeRequest {
                            reduce,
                            area: Some(area),
                            ..DecodeRequest::default()
                        };
                        // OpenJPEG refuses an area of less than a pixel at the reduction
                        // (the service never asks for one): then both must be refused.
                        let (want, got) = match (
                            jp2::decode(file.as_slice(), &req),
                            jp2::decode(cs.as_slice(), &req),
                        ) {
                            (Ok(want), Ok(got)) => (want, got),
                            (Err(_), Err(_)) => {
                                refused += 1;
                                continue;
                            }
                            (a, b) => panic!("{area:?} at {reduce}: {:?} / {:?}", a.err(), b.err()),
                        };
                        assert!(
                            (got.width, got.height) == (want.width, want.height)
                                && got.data == want.data,
                            "{area:?} at {reduce}: the same pixels as from the whole file"
                        );
                        compared += 1;
                    }
                }
            }
        }
    }
    // Only the areas of less than a pixel at their reduction are refused: most are compared.
    assert!(
        compared > 2 * refused,
        "{compared} compared, {refused} refused"
    );
}

#[test]
fn a_tile_whose_last_tile_part_ends_the_file_keeps_an_explicit_length_when_moved() {
    // Two tiles in tile-parts by resolution, no TLM; tile 0's last tile-part moved to the end
    // of the codestream with Psot 0 ("to the end"), which is valid only there.
    let opts = Opts {
        tiled: Some((64, 64)),
        resolutions: 3,
        plt: true,
        progression: openjpeg_sys::PROG_ORDER::OPJ_RPCL,
        tile_parts_by_resolution: true,
        ..Opts::default()
    };
    let file = encode_fixture(128, 64, 3, &pattern(128, 64, 3), &opts);
    let index = block_on(read_index(&Counting::new(file.clone())))
        .unwrap()
        .unwrap();
    let parts = index.parts().to_vec();
    assert_eq!(parts.len(), 6);
    let moved = parts[2];
    assert_eq!((moved.tile, moved.part), (0, 2));
    let (a, b) = (
        moved.start as usize,
        moved.start as usize + moved.len as usize,
    );
    let mut sot = file[a..b].to_vec();
    sot[6..10].copy_from_slice(&0u32.to_be_bytes());
    let end = parts[5].start as usize + parts[5].len as usize;
    let mut odd = file[..a].to_vec();
    odd.extend_from_slice(&file[b..end]);
    odd.extend_from_slice(&sot);
    odd.extend_from_slice(&file[end..]);
    let obj = Counting::new(odd.clone());
    let index = block_on(read_index(&obj)).unwrap().expect("an index");
    assert!(index.cuts_at(1));
    for reduce in 0..3 {
        for area in [(0, 0, 128, 64), (60, 10, 10, 40)] {
            let (x, y, w, h) = area;
            let cs = block_on(index.read_region(&obj, x, y, w, h, reduce, 1 << 30)).unwrap();
            tile_part_markers(&cs);
            let req = DecodeRequest {
                reduce,
                area: Some(area),
                ..DecodeRequest::default()
            };
            let want = jp2::decode(odd.as_slice(), &req).unwrap();
            let got = jp2::decode(cs.as_slice(), &req).unwrap();
            assert!(
                (got.width, got.height) == (want.width, want.height) && got.data == want.data,
                "{area:?} at {reduce}"
            );
        }
    }
}

#[test]
fn precinct_counts_past_any_bound_give_no_cuts_and_no_panic() {
    // One tile of 2^32 - 1 samples square, precincts of one sample at resolution 0 (2^62 of
    // them), four layers: the packet count overflows 64 bits. (It panicked in debug builds.)
    let mut cs = vec![0xFF, 0x4F, 0xFF, 0x51, 0, 41, 0, 0];
    for v in [u32::MAX, u32::MAX, 0, 0, u32::MAX, u32::MAX, 0, 0] {
        cs.extend_from_slice(&v.to_be_bytes());
    }
    cs.extend_from_slice(&[0, 1, 7, 1, 1]);
    cs.extend_from_slice(&[
        0xFF, 0x52, 0, 14, 0x01, 1, 0, 4, 0, 1, 4, 4, 0, 1, 0x00, 0x11,
    ]);
    cs.extend_from_slice(&[0xFF, 0x90, 0, 10, 0, 0, 0, 0, 0, 19, 0, 1]);
    cs.extend_from_slice(&[0xFF, 0x58, 0, 3, 0, 0xFF, 0x93, 0xFF, 0xD9]);
    assert!(block_on(read_index(&Counting::new(cs))).unwrap().is_none());
}

#[test]
fn the_cuts_of_a_tile_are_read_when_a_region_first_needs_it() {
    let file = plt_fixture(Opts {
        tiled: Some((64, 64)),
        ..Opts::default()
    });
    let obj = Counting::new(file.clone());
    let index = block_on(read_index(&obj)).unwrap().unwrap();
    assert!(index.cuts_at(1));
    let parts = index.parts().to_vec();
    let overlaps = |r: &Range<u64>, tile: u32| {
        parts
            .iter()
            .any(|p| p.tile == tile && r.start < p.start + u64::from(p.len) && p.start < r.end)
    };
    // The index read no tile-part header but the first tile-part's (it has a PLT): of the
    // others, only their SOT markers (this file has no TLM) and its first 64 KiB.
    let read = obj.take();
    let (across, down) = index.tile_grid();
    assert!(across * down > 6);
    let header_reads = read
        .iter()
        .filter(|r| r.start > 0 && r.end - r.start > 12)
        .filter(|r| parts[1..].iter().any(|p| p.start == r.start))
        .count();
    assert_eq!(header_reads, 0, "{read:?}");
    // A region inside tile 6 (64..128, 64..128) reads only that tile's tile-parts: its
    // headers, then its cut data.
    let area = (70, 70, 20, 20);
    let cs = block_on(index.read_region(&obj, 70, 70, 20, 20, 1, 1 << 30)).unwrap();
    let read = obj.take();
    assert!(!read.is_empty());
    for tile in (0..across * down).filter(|&t| t != 6) {
        assert!(
            !read.iter().any(|r| overlaps(r, tile)),
            "tile {tile}: {read:?}"
        );
    }
    let req = DecodeRequest {
        reduce: 1,
        area: Some(area),
        ..DecodeRequest::default()
    };
    let want = jp2::decode(file.as_slice(), &req).unwrap();
    assert!(jp2::decode(cs.as_slice(), &req).unwrap().data == want.data);
    // The second time, only the data: what the index says it reads, less than the whole tile.
    block_on(index.read_region(&obj, 70, 70, 20, 20, 1, 1 << 30)).unwrap();
    let again: u64 = obj.take().iter().map(|r| r.end - r.start).sum();
    assert_eq!(again, index.region_bytes(70, 70, 20, 20, 1));
    assert!(again < index.region_bytes(70, 70, 20, 20, 0));
    // A tile not read yet counts whole.
    assert_eq!(
        index.region_bytes(0, 0, 10, 10, 1),
        index.region_bytes(0, 0, 10, 10, 0)
    );
}

#[test]
fn tiles_far_apart_read_their_headers_in_groups_each_matched_to_its_tile_part() {
    // Noise, lossless, 256x256 tiles in tile-parts by resolution: each tile's data is over
    // 64 KiB, so its headers are a group of their own, and the groups come back in turn.
    let (w, h) = (1024, 512);
    let mut seed = 0x2545_f491_u32;
    let noise: Vec<i32> = (0..w * h * 3)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed >> 24) as i32
        })
        .collect();
    let opts = Opts {
        tiled: Some((256, 256)),
        resolutions: 4,
        plt: true,
        tile_parts_by_resolution: true,
        ..Opts::default()
    };
    let file = encode_fixture(w, h, 3, &noise, &opts);
    let obj = Counting::new(file.clone());
    let index = block_on(read_index(&obj)).unwrap().unwrap();
    let parts = index.parts().to_vec();
    let tile_bytes = |t: u32| {
        parts
            .iter()
            .filter(|p| p.tile == t)
            .map(|p| u64::from(p.len))
            .sum::<u64>()
    };
    assert!(tile_bytes(0) > 64 << 10, "{}", tile_bytes(0));
    assert!(cuts::header_groups(&parts).len() >= 8, "a group per tile");
    obj.take();
    block_on(index.load_region(&obj, 0, 0, w, h)).unwrap();
    // Every tile is cut (its headers matched and added up), at every reduction.
    for t in 0..8u32 {
        let (x, y) = ((t % 4) * 256, (t / 4) * 256);
        for reduce in 1..3 {
            assert!(
                index.region_bytes(x, y, 256, 256, reduce) < index.region_bytes(x, y, 256, 256, 0),
                "tile {t} at {reduce}"
            );
        }
    }
    // And the pixels are the file's.
    let area = (200, 120, 600, 300);
    let req = DecodeRequest {
        reduce: 1,
        area: Some(area),
        ..DecodeRequest::default()
    };
    let cs = block_on(index.read_region(&obj, 200, 120, 600, 300, 1, 1 << 30)).unwrap();
    let want = jp2::decode(file.as_slice(), &req).unwrap();
    assert!(jp2::decode(cs.as_slice(), &req).unwrap().data == want.data);
}

/// The examples that stood in the doc comments of these crate-private items.
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    #[test]
    fn doc_codestream_43() {
        use crate::Error;
        use crate::jp2::codestream::read_index;
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
