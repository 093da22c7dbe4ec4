//! The JPEG tile paths behind a valid tiled TIFF: the input is one JPEG stream (after a flags
//! byte), stored as every tile of a 2x2 tiled image, or split at its first scan into
//! `JPEGTables` and abbreviated tiles. Each tile is decoded, the region assembled, and the tiles
//! joined without decoding (the mosaic a viewer's large tile gets), so that the fuzzer spends
//! its time in the JPEG tile code rather than in the IFD reader (`tiff_pyramid` covers that).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tower_iiif::__private::{Budget, Rect};

mod common;

/// The frame size of a JPEG's SOF segment, if it has one before its first scan.
fn frame_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    let mut at = 2;
    while let Some(&[0xFF, marker, hi, lo]) = jpeg.get(at..at + 4) {
        if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
            let h = u16::from_be_bytes(jpeg.get(at + 5..at + 7)?.try_into().ok()?);
            let w = u16::from_be_bytes(jpeg.get(at + 7..at + 9)?.try_into().ok()?);
            return Some((u32::from(w), u32::from(h)));
        }
        if marker == 0xDA {
            return None;
        }
        at += 2 + usize::from(u16::from_be_bytes([hi, lo]));
    }
    None
}

/// Where the first SOS marker starts.
fn first_scan(jpeg: &[u8]) -> Option<usize> {
    let mut at = 2;
    while let Some(&[0xFF, marker, hi, lo]) = jpeg.get(at..at + 4) {
        if marker == 0xDA {
            return Some(at);
        }
        at += 2 + usize::from(u16::from_be_bytes([hi, lo]));
    }
    None
}

/// A little-endian classic TIFF of one 2x2-tiled RGB image with JPEG tiles.
fn tiff(tile: (u32, u32), photometric: u16, tables: Option<&[u8]>, tiles: &[&[u8]; 4]) -> Vec<u8> {
    // (tag, type, count, value or offset-later data)
    let mut entries: Vec<(u16, u16, u32, Vec<u8>)> = vec![
        (256, 4, 1, (tile.0 * 2).to_le_bytes().to_vec()),
        (257, 4, 1, (tile.1 * 2).to_le_bytes().to_vec()),
        (258, 3, 3, [8u16, 8, 8].iter().flat_map(|v| v.to_le_bytes()).collect()),
        (259, 3, 1, 7u16.to_le_bytes().to_vec()),
        (262, 3, 1, photometric.to_le_bytes().to_vec()),
        (277, 3, 1, 3u16.to_le_bytes().to_vec()),
        (284, 3, 1, 1u16.to_le_bytes().to_vec()),
        (322, 4, 1, tile.0.to_le_bytes().to_vec()),
        (323, 4, 1, tile.1.to_le_bytes().to_vec()),
    ];
    let header_len = 8 + 2 + 12 * (entries.len() + 3 + usize::from(tables.is_some())) + 4;
    // Data after the IFD: the out-of-line values, then the tiles.
    let mut data = Vec::new();
    let mut offsets = Vec::new();
    let tiles_at = header_len + 64 + tables.map_or(0, <[u8]>::len);
    let mut at = tiles_at;
    for t in tiles {
        offsets.push(at as u32);
        at += t.len();
    }
    entries.push((324, 4, 4, offsets.iter().flat_map(|o| o.to_le_bytes()).collect()));
    entries.push((325, 4, 4, tiles.iter().flat_map(|t| (t.len() as u32).to_le_bytes()).collect()));
    if let Some(t) = tables {
        entries.push((347, 7, t.len() as u32, t.to_vec()));
    }
    entries.push((530, 3, 2, [2u16, 2].iter().flat_map(|v| v.to_le_bytes()).collect()));
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    let mut extra_at = header_len;
    for (tag, typ, count, value) in &entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&typ.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        if value.len() <= 4 {
            let mut v = value.clone();
            v.resize(4, 0);
            out.extend_from_slice(&v);
        } else {
            out.extend_from_slice(&(extra_at as u32).to_le_bytes());
            data.extend_from_slice(value);
            extra_at += value.len();
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&data);
    out.resize(tiles_at, 0);
    for t in tiles {
        out.extend_from_slice(t);
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&flags, jpeg)) = input.split_first() else {
        return;
    };
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return;
    }
    let (w, h) = frame_size(jpeg).unwrap_or((16, 16));
    let tile = (w.clamp(1, 512), h.clamp(1, 512));
    let photometric = if flags & 1 == 0 { 6 } else { 2 };
    // Split at the first scan: tables (SOI .. before SOS, then EOI), and SOI + the scan on.
    let split = (flags & 2 != 0).then(|| first_scan(jpeg)).flatten();
    let (tables, body): (Option<Vec<u8>>, Vec<u8>) = match split {
        Some(sos) => {
            let mut tables = jpeg[..sos].to_vec();
            tables.extend_from_slice(&[0xFF, 0xD9]);
            let mut body = vec![0xFF, 0xD8];
            body.extend_from_slice(&jpeg[sos..]);
            (Some(tables), body)
        }
        None => (None, jpeg.to_vec()),
    };
    // The last tile a cut copy when asked: tiles that differ.
    let cut = &body[..body.len() - usize::from(flags >> 2) % body.len().max(1)];
    let file = tiff(tile, photometric, tables.as_deref(), &[&body, &body, &body, cut]);
    let bytes = Bytes::from(file);
    let Some(pyramid) = common::read(&bytes) else {
        return;
    };
    let budget = Budget::new(16 << 20);
    let Some(level) = pyramid.levels().first() else {
        return;
    };
    for rect in [
        Rect::new(0, 0, level.width, level.height),
        Rect::new(0, 0, level.tile_width, level.tile_height),
        Rect::new(level.tile_width / 2, 1, level.tile_width, level.tile_height),
    ] {
        common::exercise_region(&pyramid, 0, rect, &bytes, 4, budget);
    }
});
