//! Tile decode benchmarks: one 256x256 tile of a tiled TIFF per compression (through
//! `tiff::decode_tile`), and JPEG 2000 regions (through `crate::jp2::decode`). Every fixture
//! is written in memory here.
//!
//! ```text
//! cargo bench --bench tiles
//! ```

use std::ffi::{c_int, c_void};
use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use openjpeg_sys as opj;
use tower_iiif::__private::jp2::{self, DecodeRequest};
use tower_iiif::__private::{self as pyramid, Budget, Rect};

/// Side of the TIFF fixtures.
const SIZE: u32 = 512;
/// Side of their tiles.
const TILE: u32 = 256;

// ---------------------------------------------------------------------------------------------
// Content

/// A well-mixed hash of a sample's position: the noise of [`photo`].
fn hash(x: u32, y: u32, c: u32) -> u32 {
    let mut h =
        x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77) ^ c.wrapping_mul(0xC2B2_AE3D);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^ (h >> 12)
}

/// Photographic-like RGB: smooth colour gradients, some detail at a fixed pixel scale, and
/// +-4 of sensor-like noise.
fn photo(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (f64::from(x) / f64::from(w), f64::from(y) / f64::from(h));
            let detail = 20.0 * (f64::from(x) / 11.0 + 3.0 * (f64::from(y) / 29.0).sin()).sin();
            let base = [
                120.0 + 90.0 * (fx * 7.0 + fy * 2.0).sin() + detail,
                128.0 + 90.0 * (fy * 5.0 - fx * 3.0).cos() + detail * 0.5,
                110.0 + 80.0 * ((fx + fy) * 4.0).sin() * (fx * 9.0).cos() - detail * 0.5,
            ];
            for (c, v) in base.into_iter().enumerate() {
                let noise = f64::from(hash(x, y, c as u32) % 9) - 4.0;
                out.push((v + noise).clamp(0.0, 255.0) as u8);
            }
        }
    }
    out
}

/// The `TILE` x `TILE` RGB tiles of a `SIZE` x `SIZE` image, row by row.
fn split(px: &[u8]) -> Vec<Vec<u8>> {
    let (n, t, row) = (SIZE / TILE, TILE as usize * 3, SIZE as usize * 3);
    let mut tiles = Vec::new();
    for ty in 0..n as usize {
        for tx in 0..n as usize {
            let mut tile = Vec::with_capacity(t * TILE as usize);
            for y in ty * TILE as usize..(ty + 1) * TILE as usize {
                tile.extend_from_slice(&px[y * row + tx * t..y * row + (tx + 1) * t]);
            }
            tiles.push(tile);
        }
    }
    tiles
}

// ---------------------------------------------------------------------------------------------
// Tiled TIFF fixtures

/// One IFD entry: tag, type, count, the values as little-endian bytes.
struct Entry {
    tag: u16,
    typ: u16,
    count: u32,
    data: Vec<u8>,
}

fn shorts(tag: u16, v: &[u16]) -> Entry {
    let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    Entry {
        tag,
        typ: 3,
        count: v.len() as u32,
        data,
    }
}

fn longs(tag: u16, v: &[u32]) -> Entry {
    let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    Entry {
        tag,
        typ: 4,
        count: v.len() as u32,
        data,
    }
}

/// A classic little-endian TIFF of one tiled `SIZE` x `SIZE` image: the tiles, then the IFD,
/// then the values that do not fit in their entries.
fn tiff(mut entries: Vec<Entry>, tiles: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"II*\0\0\0\0\0".to_vec();
    let (mut offsets, mut counts) = (Vec::new(), Vec::new());
    for t in tiles {
        offsets.push(out.len() as u32);
        counts.push(t.len() as u32);
        out.extend_from_slice(t);
    }
    entries.extend([
        longs(256, &[SIZE]),
        longs(257, &[SIZE]),
        shorts(258, &[8, 8, 8]),
        shorts(277, &[3]),
        shorts(284, &[1]),
        longs(322, &[TILE]),
        longs(323, &[TILE]),
        longs(324, &offsets),
        longs(325, &counts),
    ]);
    entries.sort_by_key(|e| e.tag);
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let ifd = out.len();
    out[4..8].copy_from_slice(&(ifd as u32).to_le_bytes());
    let values_at = ifd + 2 + entries.len() * 12 + 4;
    let mut values = Vec::new();
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for e in &entries {
        out.extend_from_slice(&e.tag.to_le_bytes());
        out.extend_from_slice(&e.typ.to_le_bytes());
        out.extend_from_slice(&e.count.to_le_bytes());
        if e.data.len() <= 4 {
            let mut inline = [0u8; 4];
            inline[..e.data.len()].copy_from_slice(&e.data);
            out.extend_from_slice(&inline);
        } else {
            out.extend_from_slice(&((values_at + values.len()) as u32).to_le_bytes());
            values.extend_from_slice(&e.data);
            if values.len() % 2 == 1 {
                values.push(0);
            }
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    out.extend_from_slice(&values);
    out
}

/// Horizontal differencing (Predictor 2) of an RGB tile, row by row.
fn predict(tile: &mut [u8]) {
    for row in tile.chunks_exact_mut(TILE as usize * 3) {
        for i in (3..row.len()).rev() {
            row[i] = row[i].wrapping_sub(row[i - 3]);
        }
    }
}

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

/// A JPEG tile at quality 90, YCbCr 4:2:0.
fn jpeg(tile: &[u8]) -> Vec<u8> {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, 90);
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    encoder
        .encode(tile, TILE as u16, TILE as u16, ColorType::Rgb)
        .unwrap();
    out
}

/// Move the DQT and DHT segments of every JPEG tile into one JPEGTables stream (the same in
/// every tile at one quality), as libtiff writes them.
fn split_tables(tiles: &mut [Vec<u8>]) -> Vec<u8> {
    let mut tables = Vec::new();
    for tile in tiles.iter_mut() {
        let (mut these, mut rest) = (vec![0xFF, 0xD8], vec![0xFF, 0xD8]);
        let mut at = 2;
        while tile[at + 1] != 0xDA {
            let end = at + 2 + usize::from(u16::from_be_bytes([tile[at + 2], tile[at + 3]]));
            let seg = &tile[at..end];
            if matches!(tile[at + 1], 0xDB | 0xC4) {
                these.extend_from_slice(seg);
            } else {
                rest.extend_from_slice(seg);
            }
            at = end;
        }
        rest.extend_from_slice(&tile[at..]);
        these.extend_from_slice(&[0xFF, 0xD9]);
        assert!(
            tables.is_empty() || tables == these,
            "tiles with different tables"
        );
        tables = these;
        *tile = rest;
    }
    tables
}

/// The TIFF compressions benched: name, Compression tag.
const COMPRESSIONS: [(&str, u16); 6] = [
    ("none", 1),
    ("lzw", 5),
    ("deflate+predictor", 8),
    ("jpeg+tables", 7),
    ("zstd+predictor", 50000),
    ("webp lossless", 50001),
];

/// The `SIZE` x `SIZE` tiled TIFF of `px` with tiles compressed by `compression`.
fn tiff_fixture(px: &[u8], compression: u16) -> Vec<u8> {
    let mut tiles = split(px);
    let photometric = if compression == 7 { 6 } else { 2 }; // YCbCr for JPEG, else RGB
    let mut entries = vec![shorts(259, &[compression]), shorts(262, &[photometric])];
    match compression {
        1 => {}
        // LZW, no predictor (libtiff's default).
        5 => {
            for t in &mut tiles {
                *t = weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
                    .encode(t)
                    .unwrap();
            }
        }
        // Deflate at zlib's default level, horizontal predictor.
        8 => {
            for t in &mut tiles {
                predict(t);
                *t = zlib(t);
            }
            entries.push(shorts(317, &[2]));
        }
        // JPEG q90 4:2:0, Photometric YCbCr, tables shared in JPEGTables.
        7 => {
            for t in &mut tiles {
                *t = jpeg(t);
            }
            let tables = split_tables(&mut tiles);
            entries.push(shorts(530, &[2, 2]));
            entries.push(Entry {
                tag: 347,
                typ: 7,
                count: tables.len() as u32,
                data: tables,
            });
        }
        // Zstandard at libtiff's default level 9, horizontal predictor.
        50000 => {
            for t in &mut tiles {
                predict(t);
                *t = zstd::bulk::compress(t, 9).unwrap();
            }
            entries.push(shorts(317, &[2]));
        }
        // Lossless WebP (image-webp encodes nothing else).
        50001 => {
            for t in &mut tiles {
                let mut out = Vec::new();
                image_webp::WebPEncoder::new(&mut out)
                    .encode(t, TILE, TILE, image_webp::ColorType::Rgb8)
                    .unwrap();
                *t = out;
            }
        }
        other => unreachable!("compression {other}"),
    }
    tiff(entries, &tiles)
}

fn tile_decode(c: &mut Criterion) {
    let px = photo(SIZE, SIZE);
    let first = split(&px).swap_remove(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for (name, compression) in COMPRESSIONS {
        let file = Bytes::from(tiff_fixture(&px, compression));
        let obj = pyramid::MemObject::new(file.clone());
        let pyr = rt.block_on(pyramid::read_pyramid(&obj)).unwrap();
        let level = &pyr.levels()[0];
        let range = pyr.tiles(0, Rect::new(0, 0, TILE, TILE))[0].range.clone();
        let bytes = file.slice(range.start as usize..range.end as usize);
        // Check the fixture: lossless tiles come back exact, JPEG close.
        let out = pyramid::decode_tile(level, &bytes, Budget::default()).unwrap();
        let diff = out
            .data()
            .iter()
            .zip(&first)
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum::<u64>();
        let mean = diff as f64 / first.len() as f64;
        assert!(
            if compression == 7 {
                mean < 3.0
            } else {
                diff == 0
            },
            "{name}: mean diff {mean}"
        );
        c.bench_function(&format!("tile decode {name} 256x256"), |b| {
            b.iter(|| pyramid::decode_tile(level, black_box(&bytes), Budget::default()).unwrap())
        });
    }
}

/// A 512 tile made of the four stored 256 JPEG tiles of the fixture: joined without decoding,
/// against decoded, assembled and encoded at the default quality (what a render does).
fn tile_join(c: &mut Criterion) {
    let px = photo(SIZE, SIZE);
    let file = Bytes::from(tiff_fixture(&px, 7));
    let obj = pyramid::MemObject::new(file.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let pyr = rt.block_on(pyramid::read_pyramid(&obj)).unwrap();
    let level = &pyr.levels()[0];
    let rect = Rect::new(0, 0, SIZE, SIZE);
    let tiles: Vec<_> = pyr
        .tiles(0, rect)
        .into_iter()
        .map(|t| {
            let b = file.slice(t.range.start as usize..t.range.end as usize);
            (t, b)
        })
        .collect();
    assert!(pyramid::join_jpeg_tiles(level, rect, &tiles).is_some());
    c.bench_function("2x2 JPEG tiles to a 512 JPEG: joined", |b| {
        b.iter(|| pyramid::join_jpeg_tiles(level, rect, black_box(&tiles)).unwrap())
    });
    let opts = tower_iiif::__private::EncodeOptions::default();
    c.bench_function("2x2 JPEG tiles to a 512 JPEG: decoded and encoded", |b| {
        b.iter(|| {
            let px = pyramid::assemble(level, rect, black_box(&tiles), Budget::default()).unwrap();
            tower_iiif::__private::encode(&px, tower_iiif::request::Format::Jpg, &opts).unwrap()
        })
    });
}

// ---------------------------------------------------------------------------------------------
// JPEG 2000 fixture (OpenJPEG's encoder, in memory)

/// Where OpenJPEG's encoder writes.
struct Sink {
    buf: Vec<u8>,
    pos: usize,
}

unsafe extern "C" fn sink_write(buf: *mut c_void, n: usize, user: *mut c_void) -> usize {
    let sink = unsafe { &mut *user.cast::<Sink>() };
    let data = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), n) };
    if sink.buf.len() < sink.pos + n {
        sink.buf.resize(sink.pos + n, 0);
    }
    sink.buf[sink.pos..sink.pos + n].copy_from_slice(data);
    sink.pos += n;
    n
}

unsafe extern "C" fn sink_skip(n: i64, user: *mut c_void) -> i64 {
    let sink = unsafe { &mut *user.cast::<Sink>() };
    sink.pos = (sink.pos as i64 + n).max(0) as usize;
    n
}

unsafe extern "C" fn sink_seek(pos: i64, user: *mut c_void) -> c_int {
    let sink = unsafe { &mut *user.cast::<Sink>() };
    sink.pos = pos as usize;
    1
}

/// A JP2 of interleaved RGB `px`: lossy (irreversible 9/7 wavelet, colour transform, 10:1),
/// one quality layer, `resolutions` resolution levels; `tile` x `tile` tiles, or with `None`
/// the archival layout of Kakadu's usual recipe: one tile, RPCL, 256 precincts, SOP, PLT.
fn jp2_fixture(w: u32, h: u32, px: &[u8], tile: Option<u32>, resolutions: u32) -> Vec<u8> {
    assert_eq!(px.len(), w as usize * h as usize * 3);
    unsafe {
        let mut parms: Vec<opj::opj_image_cmptparm_t> = (0..3)
            .map(|_| opj::opj_image_cmptparm_t {
                dx: 1,
                dy: 1,
                w,
                h,
                x0: 0,
                y0: 0,
                prec: 8,
                bpp: 8,
                sgnd: 0,
            })
            .collect();
        let image = opj::opj_image_create(3, parms.as_mut_ptr(), opj::COLOR_SPACE::OPJ_CLRSPC_SRGB);
        assert!(!image.is_null());
        (*image).x1 = w;
        (*image).y1 = h;
        let comps = std::slice::from_raw_parts_mut((*image).comps, 3);
        for (c, comp) in comps.iter_mut().enumerate() {
            let data = std::slice::from_raw_parts_mut(comp.data, px.len() / 3);
            for (d, s) in data.iter_mut().zip(px.iter().skip(c).step_by(3)) {
                *d = i32::from(*s);
            }
        }

        let mut params: opj::opj_cparameters_t = std::mem::zeroed();
        opj::opj_set_default_encoder_parameters(&mut params);
        params.tcp_numlayers = 1;
        params.cp_disto_alloc = 1;
        params.tcp_rates[0] = 10.0;
        params.numresolution = resolutions as c_int;
        params.irreversible = 1;
        match tile {
            Some(tile) => {
                params.tile_size_on = 1;
                params.cp_tdx = tile as c_int;
                params.cp_tdy = tile as c_int;
            }
            None => {
                params.prog_order = opj::PROG_ORDER::OPJ_RPCL;
                params.csty |= 0x01 | 0x02;
                params.res_spec = 1;
                params.prcw_init[0] = 256;
                params.prch_init[0] = 256;
            }
        }
        params.tcp_mct = 1;

        let codec = opj::opj_create_compress(opj::CODEC_FORMAT::OPJ_CODEC_JP2);
        assert!(!codec.is_null());
        assert_eq!(
            opj::opj_setup_encoder(codec, &mut params, image),
            1,
            "setup_encoder"
        );
        if tile.is_none() {
            let list = [c"PLT=YES".as_ptr(), std::ptr::null()];
            assert_eq!(opj::opj_encoder_set_extra_options(codec, list.as_ptr()), 1);
        }
        opj::opj_codec_set_threads(codec, 2); // setup only; a failure just encodes slower
        let mut sink = Sink {
            buf: Vec::new(),
            pos: 0,
        };
        let stream = opj::opj_stream_create(1 << 16, 0);
        assert!(!stream.is_null());
        opj::opj_stream_set_write_function(stream, Some(sink_write));
        opj::opj_stream_set_skip_function(stream, Some(sink_skip));
        opj::opj_stream_set_seek_function(stream, Some(sink_seek));
        opj::opj_stream_set_user_data(stream, (&mut sink as *mut Sink).cast(), None);
        let ok = opj::opj_start_compress(codec, image, stream) == 1
            && opj::opj_encode(codec, stream) == 1
            && opj::opj_end_compress(codec, stream) == 1;
        opj::opj_stream_destroy(stream);
        opj::opj_destroy_codec(codec);
        opj::opj_image_destroy(image);
        assert!(ok, "encoding failed");
        sink.buf
    }
}

fn jp2_decode(c: &mut Criterion) {
    // 2048x2048 RGB, 1024x1024 tiles, 6 resolutions (big.jp2: 1024 tiles, 7 resolutions).
    let file = jp2_fixture(2048, 2048, &photo(2048, 2048), Some(1024), 6);
    let info = jp2::read_info(file.as_slice()).unwrap();
    assert_eq!((info.tile_width, info.resolutions), (1024, 6));
    let cases = [
        (
            "jp2 decode 1024 tile region reduce 0",
            (1024, 1024, 1024, 1024),
            0,
            1024,
        ),
        (
            "jp2 decode 2048 region reduce 2",
            (0, 0, 2048, 2048),
            2,
            512,
        ),
    ];
    for (name, area, reduce, side) in cases {
        let req = DecodeRequest {
            reduce,
            area: Some(area),
            ..DecodeRequest::default()
        };
        let out = jp2::decode(file.as_slice(), &req).unwrap();
        assert_eq!((out.width, out.height, out.channels), (side, side, 3));
        c.bench_function(name, |b| {
            b.iter(|| jp2::decode(black_box(file.as_slice()), &req).unwrap())
        });
    }
}

/// A thumbnail of an untiled archival JP2: OpenJPEG handed the whole file, against the
/// codestream cut after the resolutions the reduction uses (read through the index).
fn jp2_cut(c: &mut Criterion) {
    // 4096x4096 RGB, one tile, 7 resolutions; the thumbnail is 256x256 (reduce 4).
    let file = jp2_fixture(4096, 4096, &photo(4096, 4096), None, 7);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let obj = tower_iiif::__private::MemObject::new(Bytes::from(file.clone()));
    let index = rt
        .block_on(tower_iiif::__private::read_index(&obj))
        .unwrap()
        .expect("an index");
    rt.block_on(index.load_region(&obj, 0, 0, 4096, 4096))
        .unwrap();
    assert!(index.cuts_at(4));
    assert!(index.region_bytes(0, 0, 4096, 4096, 4) * 4 < file.len() as u64);
    let req = DecodeRequest {
        reduce: 4,
        ..DecodeRequest::default()
    };
    let cut = index
        .read_region_at(file.as_slice(), 0, 0, 4096, 4096, 4, 1 << 30)
        .unwrap();
    let (a, b) = (
        jp2::decode(file.as_slice(), &req).unwrap(),
        jp2::decode(cut.as_slice(), &req).unwrap(),
    );
    assert_eq!((a.width, a.height), (256, 256));
    assert!(a.data == b.data, "the same pixels");
    eprintln!(
        "jp2 thumbnail: {} of {} bytes read when cut",
        index.region_bytes(0, 0, 4096, 4096, 4),
        file.len()
    );
    c.bench_function("jp2 untiled thumbnail, whole file", |b| {
        b.iter(|| jp2::decode(black_box(file.as_slice()), &req).unwrap())
    });
    c.bench_function("jp2 untiled thumbnail, cut codestream", |b| {
        b.iter(|| {
            let cs = index
                .read_region_at(black_box(file.as_slice()), 0, 0, 4096, 4096, 4, 1 << 30)
                .unwrap();
            jp2::decode(cs.as_slice(), &req).unwrap()
        })
    });

    // A 512 tile at full size: every precinct, or those near the tile.
    let (x, y, w, h) = (1536, 2048, 512, 512);
    let req = DecodeRequest {
        area: Some((x, y, w, h)),
        ..DecodeRequest::default()
    };
    let near = index
        .read_region_at(file.as_slice(), x, y, w, h, 0, 1 << 30)
        .unwrap();
    let (a, b) = (
        jp2::decode(file.as_slice(), &req).unwrap(),
        jp2::decode(near.as_slice(), &req).unwrap(),
    );
    assert_eq!((a.width, a.height), (512, 512));
    assert!(a.data == b.data, "the same pixels");
    eprintln!(
        "jp2 512 tile: {} of {} bytes read near the tile",
        index.region_bytes(x, y, w, h, 0),
        file.len()
    );
    c.bench_function("jp2 untiled 512 tile, whole file", |b| {
        b.iter(|| jp2::decode(black_box(file.as_slice()), &req).unwrap())
    });
    c.bench_function("jp2 untiled 512 tile, precincts near it", |b| {
        b.iter(|| {
            let cs = index
                .read_region_at(black_box(file.as_slice()), x, y, w, h, 0, 1 << 30)
                .unwrap();
            jp2::decode(cs.as_slice(), &req).unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = tile_decode, tile_join, jp2_decode, jp2_cut
}
criterion_main!(benches);
