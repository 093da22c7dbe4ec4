//! Tests of the pyramid reader, on tiled TIFF and BigTIFF files written here by hand.

use std::ops::Range;
use std::sync::Mutex;

use bytes::Bytes;

use super::*;
use crate::Error;
use crate::codec::testutil::{mean_abs_diff_bytes as mean_abs_diff, split_tiles};
use crate::pixels::{Budget, Layout, Pixels, Rect};
use crate::source::{SourceMetadata, SourceObject};

// ---------------------------------------------------------------------------------------------
// A source that records its reads.

/// A file in memory that records every range read from it.
#[derive(Debug)]
pub(crate) struct Counting {
    meta: SourceMetadata,
    bytes: Bytes,
    reads: Mutex<Vec<Range<u64>>>,
}

impl Counting {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Self {
            meta: SourceMetadata::new(bytes.len() as u64, None, None),
            bytes: Bytes::from(bytes),
            reads: Mutex::new(Vec::new()),
        }
    }

    /// The reads so far, forgetting them.
    pub(crate) fn take(&self) -> Vec<Range<u64>> {
        std::mem::take(&mut *self.reads.lock().unwrap())
    }
}

impl SourceObject for Counting {
    fn metadata(&self) -> &SourceMetadata {
        &self.meta
    }

    async fn read_range(&self, range: Range<u64>) -> Result<Bytes, Error> {
        self.reads.lock().unwrap().push(range.clone());
        let end = range.end.min(self.bytes.len() as u64) as usize;
        let start = (range.start as usize).min(end);
        Ok(self.bytes.slice(start..end))
    }
}

// ---------------------------------------------------------------------------------------------
// A hand-written TIFF writer.

const BYTE: u16 = 1;
const SHORT: u16 = 3;
const LONG: u16 = 4;
const UNDEFINED: u16 = 7;
const IFD: u16 = 13;
const LONG8: u16 = 16;
const IFD8: u16 = 18;

/// One IFD entry to write. `count` overrides the number of values the entry states.
#[derive(Debug, Clone)]
struct Field {
    tag: u16,
    typ: u16,
    values: Vec<u64>,
    count: Option<u64>,
}

fn field(tag: u16, typ: u16, values: &[u64]) -> Field {
    Field {
        tag,
        typ,
        values: values.to_vec(),
        count: None,
    }
}

/// Byte order, classic or BigTIFF, and where the reduced images go.
#[derive(Debug, Clone, Copy)]
struct Opts {
    big: bool,
    big_endian: bool,
    /// Reduced images as SubIFDs of the first IFD instead of in the main chain.
    sub_ifds: bool,
}

const CLASSIC: Opts = Opts {
    big: false,
    big_endian: false,
    sub_ifds: false,
};

/// Every combination the reader must handle.
const LAYOUTS: [Opts; 6] = [
    CLASSIC,
    Opts {
        big: false,
        big_endian: true,
        sub_ifds: false,
    },
    Opts {
        big: false,
        big_endian: false,
        sub_ifds: true,
    },
    Opts {
        big: true,
        big_endian: false,
        sub_ifds: false,
    },
    Opts {
        big: true,
        big_endian: false,
        sub_ifds: true,
    },
    Opts {
        big: true,
        big_endian: true,
        sub_ifds: true,
    },
];

/// One image to write: its entries (without the chunk offsets and counts, which the writer adds
/// unless given) and its chunks.
#[derive(Debug, Clone, Default)]
struct Image {
    fields: Vec<Field>,
    chunks: Vec<Vec<u8>>,
    /// Chunks are strips (273/279), not tiles (324/325).
    strips: bool,
}

impl Image {
    /// Replace (or add) an entry.
    fn set(mut self, f: Field) -> Self {
        self.fields.retain(|x| x.tag != f.tag);
        self.fields.push(f);
        self
    }
}

/// A written file and where its IFDs are.
struct Written {
    bytes: Vec<u8>,
    /// Offset of each image's IFD.
    ifds: Vec<usize>,
    /// Offset of each IFD's next-IFD field.
    nexts: Vec<usize>,
}

fn type_size(typ: u16) -> usize {
    match typ {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        _ => 8,
    }
}

/// Write `v` as `size` bytes at `at`.
fn put(out: &mut [u8], at: usize, v: u64, size: usize, big_endian: bool) {
    if big_endian {
        out[at..at + size].copy_from_slice(&v.to_be_bytes()[8 - size..]);
    } else {
        out[at..at + size].copy_from_slice(&v.to_le_bytes()[..size]);
    }
}

/// Write a TIFF: header, every image's chunks, then the IFDs, each followed by its values.
fn write(images: &[Image], o: Opts) -> Written {
    write_layout(images, o, false)
}

/// Write a TIFF; `interleaved`: each image's chunks just before its IFD, as libtiff and libvips
/// write a pyramid level after level, instead of every chunk first.
fn write_layout(images: &[Image], o: Opts, interleaved: bool) -> Written {
    let be = o.big_endian;
    let off = if o.big { 8 } else { 4 };
    let (count_len, entry_len) = if o.big { (8, 20) } else { (2, 12) };
    let mut out = vec![0u8; if o.big { 16 } else { 8 }];
    out[..2].copy_from_slice(if be { b"MM" } else { b"II" });
    put(&mut out, 2, if o.big { 43 } else { 42 }, 2, be);
    if o.big {
        put(&mut out, 4, 8, 2, be);
    }
    let first_at = if o.big { 8 } else { 4 };

    let write_chunks = |out: &mut Vec<u8>, img: &Image| -> Vec<u64> {
        img.chunks
            .iter()
            .map(|c| {
                let at = out.len() as u64;
                out.extend_from_slice(c);
                at
            })
            .collect()
    };
    let mut chunk_offsets = vec![Vec::new(); images.len()];
    if !interleaved {
        for (i, img) in images.iter().enumerate() {
            chunk_offsets[i] = write_chunks(&mut out, img);
        }
    }

    let (mut ifds, mut nexts, mut sub_at) = (Vec::new(), Vec::new(), None);
    for (i, img) in images.iter().enumerate() {
        if interleaved {
            chunk_offsets[i] = write_chunks(&mut out, img);
        }
        let mut fields = img.fields.clone();
        let (otag, ctag) = if img.strips { (273, 279) } else { (324, 325) };
        let typ = if o.big { LONG8 } else { LONG };
        if !fields.iter().any(|f| f.tag == otag) {
            fields.push(field(otag, typ, &chunk_offsets[i]));
        }
        if !fields.iter().any(|f| f.tag == ctag) {
            let counts: Vec<u64> = img.chunks.iter().map(|c| c.len() as u64).collect();
            fields.push(field(ctag, typ, &counts));
        }
        if i == 0 && o.sub_ifds && images.len() > 1 {
            let typ = if o.big { IFD8 } else { IFD };
            fields.push(field(330, typ, &vec![0; images.len() - 1]));
        }
        fields.sort_by_key(|f| f.tag);
        if out.len() % 2 == 1 {
            out.push(0);
        }
        let pos = out.len();
        out.resize(pos + count_len + fields.len() * entry_len + off, 0);
        put(&mut out, pos, fields.len() as u64, count_len, be);
        for (k, f) in fields.iter().enumerate() {
            let e = pos + count_len + k * entry_len;
            let size = type_size(f.typ);
            let mut data = vec![0u8; f.values.len() * size];
            for (j, &v) in f.values.iter().enumerate() {
                put(&mut data, j * size, v, size, be);
            }
            put(&mut out, e, u64::from(f.tag), 2, be);
            put(&mut out, e + 2, u64::from(f.typ), 2, be);
            let count = f.count.unwrap_or(f.values.len() as u64);
            put(&mut out, e + 4, count, off, be);
            let field_at = e + 4 + off;
            let value_at = if data.len() <= off {
                out[field_at..field_at + data.len()].copy_from_slice(&data);
                field_at
            } else {
                if out.len() % 2 == 1 {
                    out.push(0);
                }
                let at = out.len();
                out.extend_from_slice(&data);
                put(&mut out, field_at, at as u64, off, be);
                at
            };
            if f.tag == 330 {
                sub_at = Some(value_at);
            }
        }
        ifds.push(pos);
        nexts.push(pos + count_len + fields.len() * entry_len);
    }
    put(&mut out, first_at, ifds[0] as u64, off, be);
    match sub_at {
        Some(at) => {
            for (j, &p) in ifds[1..].iter().enumerate() {
                put(&mut out, at + j * off, p as u64, off, be);
            }
        }
        None => {
            for i in 1..ifds.len() {
                put(&mut out, nexts[i - 1], ifds[i] as u64, off, be);
            }
        }
    }
    Written {
        bytes: out,
        ifds,
        nexts,
    }
}

// ---------------------------------------------------------------------------------------------
// Pyramids of known pixels.

/// How the tiles of a test pyramid are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    None,
    Lzw,
    /// Compression 8.
    Deflate,
    /// Compression 32946 with the horizontal predictor.
    DeflatePredictor,
    /// Self-contained JPEG tiles, Photometric YCbCr (gray: BlackIsZero).
    Jpeg,
    /// JPEG tiles without their DQT/DHT segments, which are in JPEGTables.
    JpegTables,
    /// JPEG tiles holding RGB components unconverted, with no JFIF marker, Photometric RGB.
    JpegRgb,
    /// Compression 32773.
    PackBits,
    /// Compression 50000 with the horizontal predictor.
    ZstdPredictor,
    /// Compression 50001: lossless WebP tiles (RGB and RGBA only).
    WebP,
}

impl Codec {
    fn is_jpeg(self) -> bool {
        matches!(self, Codec::Jpeg | Codec::JpegTables | Codec::JpegRgb)
    }
}

const SIZES: [(u32, u32); 3] = [(300, 200), (150, 100), (75, 50)];
const TILE: u32 = 64;
/// The padding of edge tiles of lossless files.
const PAD: u8 = 0xEE;

/// A pixel value that differs between neighbours, channels and levels.
fn noise(level: usize, x: u32, y: u32, ch: usize) -> u8 {
    let v = x * 31 + y * 17 + ch as u32 * 59 + level as u32 * 7;
    (v ^ (x.wrapping_mul(y) >> 2)) as u8
}

/// A smooth colour pattern, of the same frequencies at every size (JPEG-friendly).
fn smooth(level: usize, x: u32, y: u32) -> [u8; 3] {
    let (fx, fy, l) = (f64::from(x), f64::from(y), level as f64);
    let r = 128.0 + 100.0 * (fx / 23.0 + l).sin();
    let g = 128.0 + 100.0 * (fy / 17.0 - l).cos();
    let b = 128.0 + 90.0 * ((fx + fy) / 41.0).sin();
    [r as u8, g as u8, b as u8]
}

/// The pixels of `level` of a test pyramid: noise for lossless codecs, a smooth pattern for
/// JPEG.
fn source(level: usize, (w, h): (u32, u32), layout: Layout, codec: Codec) -> Pixels {
    let c = layout.channels();
    let mut px = Pixels::try_new(w, h, layout, Budget::default()).unwrap();
    if codec.is_jpeg() {
        for (i, d) in px.data_mut().chunks_exact_mut(c).enumerate() {
            let s = smooth(level, i as u32 % w, i as u32 / w);
            if c == 1 {
                let (r, g, b) = (u32::from(s[0]), u32::from(s[1]), u32::from(s[2]));
                d[0] = ((r * 299 + g * 587 + b * 114) / 1000) as u8;
            } else {
                d[..3].copy_from_slice(&s);
                if c == 4 {
                    let (x, y) = (f64::from(i as u32 % w), f64::from(i as u32 / w));
                    d[3] = (150.0 + 100.0 * ((x - y) / 29.0).sin()) as u8;
                }
            }
        }
    } else {
        for (i, d) in px.data_mut().chunks_exact_mut(c).enumerate() {
            let (x, y) = (i as u32 % w, i as u32 / w);
            for (ch, v) in d.iter_mut().enumerate() {
                *v = noise(level, x, y, ch);
            }
        }
    }
    px
}

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

fn lzw(data: &[u8]) -> Vec<u8> {
    weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
        .encode(data)
        .unwrap()
}

/// PackBits (compression 32773): runs of three or more equal bytes as repeats, the rest as
/// literals, each at most 128 bytes.
fn packbits(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    let run_at = |i: usize| {
        let b = data[i];
        data[i..].iter().take(128).take_while(|&&x| x == b).count()
    };
    while i < data.len() {
        let run = run_at(i);
        if run >= 3 {
            out.push((1 - run as i16) as i8 as u8);
            out.push(data[i]);
            i += run;
            continue;
        }
        let start = i;
        while i < data.len() && i - start < 128 && (i == start || run_at(i) < 3) {
            i += 1;
        }
        out.push((i - start - 1) as u8);
        out.extend_from_slice(&data[start..i]);
    }
    out
}

/// Horizontal differencing, per row of `TILE` pixels of `spp` samples.
fn predict(tile: &mut [u8], spp: usize) {
    for row in tile.chunks_exact_mut(TILE as usize * spp) {
        for i in (spp..row.len()).rev() {
            row[i] = row[i].wrapping_sub(row[i - spp]);
        }
    }
}

/// The marker segments of a JPEG before its scan: (start, end) of each, marker code.
fn segments(jpeg: &[u8]) -> Vec<(usize, usize, u8)> {
    let mut out = Vec::new();
    let mut at = 2;
    while jpeg[at + 1] != 0xDA {
        let end = at + 2 + usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        out.push((at, end, jpeg[at + 1]));
        at = end;
    }
    out
}

/// A 64x64 JPEG tile at quality 90. RGBA (RGB with an extra sample) is four components stored
/// as they are, with no JFIF or Adobe marker, as libtiff writes it.
fn jpeg_tile(tile: &[u8], layout: Layout, codec: Codec) -> Vec<u8> {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    let mut out = Vec::new();
    if layout == Layout::Rgba {
        // The encoder stores 255 - v of CMYK samples, and marks them JFIF and Adobe.
        let inverted: Vec<u8> = tile.iter().map(|v| 255 - v).collect();
        let mut encoder = Encoder::new(&mut out, 90);
        encoder.set_sampling_factor(SamplingFactor::F_1_1);
        encoder
            .encode(&inverted, TILE as u16, TILE as u16, ColorType::Cmyk)
            .unwrap();
        for (start, end, marker) in segments(&out).into_iter().rev() {
            if matches!(marker, 0xE0 | 0xEE) {
                out.drain(start..end);
            }
        }
        return out;
    }
    let mut encoder = Encoder::new(&mut out, 90);
    let color = match (layout, codec) {
        (Layout::Gray, _) => ColorType::Luma,
        // The components are taken as they are: RGB stays RGB.
        (_, Codec::JpegRgb) => ColorType::Ycbcr,
        _ => ColorType::Rgb,
    };
    encoder.set_sampling_factor(if codec == Codec::JpegRgb {
        SamplingFactor::F_1_1
    } else {
        SamplingFactor::F_2_2
    });
    encoder
        .encode(tile, TILE as u16, TILE as u16, color)
        .unwrap();
    if codec == Codec::JpegRgb {
        // Drop the JFIF marker: nothing then says YCbCr.
        let (start, end, marker) = segments(&out)[0];
        assert_eq!(marker, 0xE0);
        out.drain(start..end);
    }
    out
}

/// A lossless WebP tile of an RGB or RGBA tile.
fn webp_tile(tile: &[u8], layout: Layout) -> Vec<u8> {
    let color = match layout {
        Layout::Rgb => image_webp::ColorType::Rgb8,
        Layout::Rgba => image_webp::ColorType::Rgba8,
        other => panic!("no WebP tiles of {other:?}"),
    };
    let mut out = Vec::new();
    image_webp::WebPEncoder::new(&mut out)
        .encode(tile, TILE, TILE, color)
        .unwrap();
    out
}

/// Move the DQT and DHT segments of every tile into one JPEGTables stream (they are the same
/// in every tile at one quality).
fn split_tables(tiles: &mut [Vec<u8>]) -> Vec<u8> {
    let mut tables: Option<Vec<u8>> = None;
    for tile in tiles.iter_mut() {
        let mut these = vec![0xFF, 0xD8];
        let mut rest = vec![0xFF, 0xD8];
        let segs = segments(tile);
        for &(start, end, marker) in &segs {
            let seg = &tile[start..end];
            if matches!(marker, 0xDB | 0xC4) {
                these.extend_from_slice(seg);
            } else {
                rest.extend_from_slice(seg);
            }
        }
        rest.extend_from_slice(&tile[segs.last().unwrap().1..]);
        these.extend_from_slice(&[0xFF, 0xD9]);
        match &tables {
            Some(t) => assert_eq!(t, &these, "tiles with different tables"),
            None => tables = Some(these),
        }
        *tile = rest;
    }
    tables.unwrap()
}

/// The entries of one tiled image of `px`.
fn image(px: &Pixels, codec: Codec, reduced: bool) -> Image {
    let layout = px.layout();
    let spp = layout.channels();
    let mut tiles = split_tiles(px, TILE, (!codec.is_jpeg()).then_some(PAD));
    for t in &mut tiles {
        *t = match codec {
            Codec::None => t.clone(),
            Codec::Lzw => lzw(t),
            Codec::Deflate => zlib(t),
            Codec::PackBits => packbits(t),
            Codec::DeflatePredictor => {
                predict(t, spp);
                zlib(t)
            }
            Codec::Jpeg | Codec::JpegTables | Codec::JpegRgb => jpeg_tile(t, layout, codec),
            Codec::ZstdPredictor => {
                predict(t, spp);
                zstd::bulk::compress(t, 3).unwrap()
            }
            Codec::WebP => webp_tile(t, layout),
        };
    }
    let compression = match codec {
        Codec::None => 1,
        Codec::Lzw => 5,
        Codec::Deflate => 8,
        Codec::DeflatePredictor => 32946,
        Codec::PackBits => 32773,
        Codec::ZstdPredictor => 50000,
        Codec::WebP => 50001,
        _ => 7,
    };
    let photometric = match (layout.is_gray(), codec) {
        (true, _) => 1,
        (false, Codec::Jpeg | Codec::JpegTables) if !layout.has_alpha() => 6,
        (false, _) => 2,
    };
    let mut fields = vec![
        field(254, LONG, &[u64::from(reduced)]),
        field(256, LONG, &[u64::from(px.width())]),
        field(257, SHORT, &[u64::from(px.height())]),
        field(258, SHORT, &vec![8; spp]),
        field(259, SHORT, &[compression]),
        field(262, SHORT, &[photometric]),
        field(277, SHORT, &[spp as u64]),
        field(284, SHORT, &[1]),
        field(322, SHORT, &[u64::from(TILE)]),
        field(323, LONG, &[u64::from(TILE)]),
    ];
    if matches!(codec, Codec::DeflatePredictor | Codec::ZstdPredictor) {
        fields.push(field(317, SHORT, &[2]));
    }
    if layout.has_alpha() {
        fields.push(field(338, SHORT, &[2]));
    }
    if photometric == 6 {
        fields.push(field(530, SHORT, &[2, 2]));
    }
    if codec == Codec::JpegTables {
        let tables = split_tables(&mut tiles);
        let values: Vec<u64> = tables.iter().map(|&b| u64::from(b)).collect();
        fields.push(field(347, UNDEFINED, &values));
    }
    Image {
        fields,
        chunks: tiles,
        strips: false,
    }
}

/// A three-level pyramid and the pixels of each level.
fn pyramid_file(codec: Codec, layout: Layout, o: Opts) -> (Written, Vec<Pixels>) {
    let sources: Vec<Pixels> = SIZES
        .iter()
        .enumerate()
        .map(|(i, &size)| source(i, size, layout, codec))
        .collect();
    let images: Vec<Image> = sources
        .iter()
        .enumerate()
        .map(|(i, px)| image(px, codec, i > 0))
        .collect();
    (write(&images, o), sources)
}

/// The pixels of `px` inside `r` (clipped).
fn crop(px: &Pixels, r: Rect) -> Vec<u8> {
    let right = r.right().min(px.width());
    let bottom = r.bottom().min(px.height());
    let mut out = Vec::new();
    for y in r.y..bottom {
        for x in r.x..right {
            out.extend_from_slice(px.pixel(x, y));
        }
    }
    out
}

/// Rectangles of every kind, in the pixels of a level of `w` x `h`.
fn rects(w: u32, h: u32) -> Vec<Rect> {
    vec![
        Rect::new(0, 0, w, h),
        Rect::new(0, 0, 1, 1),
        Rect::new(w - 1, h - 1, 1, 1),
        Rect::new(w / 3, h / 4, w / 2, h / 2),
        Rect::new(TILE - 3, TILE - 2, 7, 5),
        Rect::new(w - 10, h - 7, 10, 7),
        Rect::new(w - 10, 1, 500, 500), // clipped
    ]
    .into_iter()
    .filter(|r| r.x < w && r.y < h)
    .collect()
}

async fn read(bytes: Vec<u8>) -> Result<(Counting, TiffPyramid), Error> {
    let obj = Counting::new(bytes);
    let p = read_pyramid(&obj).await?;
    Ok((obj, p))
}

// ---------------------------------------------------------------------------------------------
// Structure.

#[tokio::test]
async fn levels_are_found_in_every_layout() {
    for o in LAYOUTS {
        let (file, sources) = pyramid_file(Codec::None, Layout::Rgb, o);
        let (obj, p) = read(file.bytes).await.unwrap();
        let what = format!("{o:?}");
        let sizes: Vec<_> = p.levels().iter().map(|l| (l.width, l.height)).collect();
        assert_eq!(sizes, SIZES, "{what}");
        assert_eq!((p.width(), p.height()), (300, 200));
        assert_eq!(p.file_len(), obj.meta.len);
        assert_eq!(p.orientation(), crate::codec::Orientation::NORMAL);
        for (i, level) in p.levels().iter().enumerate() {
            assert_eq!(
                (level.tile_width, level.tile_height),
                (TILE, TILE),
                "{what}"
            );
            assert_eq!(level.compression, Compression::None);
            assert_eq!(level.photometric, Photometric::Rgb);
            assert_eq!((level.samples_per_pixel, level.bits_per_sample), (3, 8));
            assert_eq!(level.layout(), Layout::Rgb);
            assert_eq!(level.ifd_offset, file.ifds[i] as u64);
            let tiles = [20, 6, 2][i];
            assert_eq!(level.tile_offsets.len(), tiles, "{what}");
            assert_eq!(
                level.tile_byte_counts,
                vec![u64::from(TILE * TILE * 3); tiles]
            );
            let rect = Rect::new(0, 0, level.width, level.height);
            let px = read_region(&obj, &p, i, rect, Budget::default())
                .await
                .unwrap();
            assert_eq!(px, sources[i], "{what} level {i}");
        }
        assert_eq!(p.downsample(2), Some((4.0, 4.0)));
        assert_eq!(p.downsample(3), None);
        // Debug stays short whatever the tile count.
        assert!(format!("{p:?}").len() < 2000);
    }
}

#[tokio::test]
async fn other_images_are_not_levels() {
    let px: Vec<Pixels> = SIZES
        .iter()
        .enumerate()
        .map(|(i, &s)| source(i, s, Layout::Gray, Codec::None))
        .collect();
    let thumbnail = Image {
        fields: vec![
            field(254, LONG, &[1]),
            field(256, SHORT, &[30]),
            field(257, SHORT, &[20]),
            field(258, SHORT, &[8]),
            field(262, SHORT, &[1]),
            field(278, SHORT, &[20]),
        ],
        chunks: vec![vec![7; 600]],
        strips: true,
    };
    let mask = image(&px[1], Codec::None, true).set(field(254, LONG, &[4]));
    let label = image(
        &source(9, (100, 100), Layout::Gray, Codec::None),
        Codec::None,
        true,
    );
    let duplicate = image(&px[1], Codec::Lzw, true);
    let full_size_page = image(&px[0], Codec::Lzw, false);
    // The next page of a multi-page file, smaller, of the same aspect ratio: not a level.
    let page = image(
        &source(8, (210, 140), Layout::Gray, Codec::None),
        Codec::None,
        false,
    )
    .set(field(254, LONG, &[2]));
    // Out of order, among the others.
    let images = [
        image(&px[0], Codec::None, false),
        thumbnail,
        image(&px[2], Codec::None, true),
        mask,
        label,
        image(&px[1], Codec::None, true),
        duplicate,
        full_size_page,
        page,
    ];
    for sub_ifds in [false, true] {
        let o = Opts {
            sub_ifds,
            ..CLASSIC
        };
        let file = write(&images, o);
        let (_, p) = read(file.bytes).await.unwrap();
        let found: Vec<_> = p
            .levels()
            .iter()
            .map(|l| (l.width, l.height, l.ifd_offset, l.compression))
            .collect();
        let want = [
            (300, 200, file.ifds[0] as u64, Compression::None),
            (150, 100, file.ifds[5] as u64, Compression::None),
            (75, 50, file.ifds[2] as u64, Compression::None),
        ];
        assert_eq!(found, want, "sub_ifds {sub_ifds}");
    }

    // A first image in strips is not a pyramid.
    let mut strips = images.clone();
    strips.swap(0, 1);
    let e = read(write(&strips, CLASSIC).bytes).await.unwrap_err();
    assert!(e.message().contains("not a tiled pyramid"), "{e}");
    // Nor is a plain TIFF of the encoder.
    let tif = crate::codec::encode(
        &px[0],
        crate::codec::Format::Tif,
        &crate::codec::EncodeOptions::default(),
    )
    .unwrap();
    let e = read(tif).await.unwrap_err();
    assert!(e.message().contains("not a tiled pyramid"), "{e}");
}

#[tokio::test]
async fn level_for_picks_the_smallest_level_that_covers_the_output() {
    let (file, _) = pyramid_file(Codec::None, Layout::Gray, CLASSIC);
    let (_, p) = read(file.bytes).await.unwrap();
    let table: [(f64, usize); 14] = [
        (2.0, 0),
        (1.0, 0),
        (0.75, 0),
        (0.5000001, 0),
        (151.0 / 300.0, 0),
        (0.5, 1),
        (150.0 / 300.0, 1),
        (100.0 / 200.0, 1),
        (0.4, 1),
        (0.2500001, 1),
        (0.25, 2),
        (0.1, 2),
        (0.0, 2),
        (f64::NAN, 0),
    ];
    for (scale, want) in table {
        assert_eq!(p.level_for(scale), want, "scale {scale}");
    }
}

#[tokio::test]
async fn tiles_lists_exactly_the_intersecting_tiles() {
    let (file, _) = pyramid_file(Codec::Deflate, Layout::Rgb, CLASSIC);
    let (_, p) = read(file.bytes).await.unwrap();
    for (i, level) in p.levels().iter().enumerate() {
        let (w, h) = (level.width, level.height);
        let mut all = rects(w, h);
        all.extend([
            Rect::new(64, 64, 64, 64), // exactly one tile
            Rect::new(63, 0, 2, 1),
            Rect::new(0, 0, 0, 10),  // empty
            Rect::new(w, 0, 10, 10), // outside
            Rect::new(0, h, 10, 10), // outside
            Rect::new(u32::MAX - 1, u32::MAX - 1, u32::MAX, u32::MAX),
        ]);
        for rect in all {
            let got = p.tiles(i, rect);
            // Brute force: every tile whose area meets the clipped rect.
            let right = u64::from(rect.x) + u64::from(rect.w);
            let bottom = u64::from(rect.y) + u64::from(rect.h);
            let (right, bottom) = (right.min(u64::from(w)), bottom.min(u64::from(h)));
            let mut want = Vec::new();
            for row in 0..level.tiles_down() {
                for col in 0..level.tiles_across() {
                    let (tx, ty) = (u64::from(col * TILE), u64::from(row * TILE));
                    let meets = u64::from(rect.x) < right
                        && u64::from(rect.y) < bottom
                        && tx < right
                        && tx + u64::from(TILE) > u64::from(rect.x)
                        && ty < bottom
                        && ty + u64::from(TILE) > u64::from(rect.y);
                    if meets {
                        let k = (row * level.tiles_across() + col) as usize;
                        let start = level.tile_offsets[k];
                        let range = start..start + level.tile_byte_counts[k];
                        want.push(TileRef { col, row, range });
                    }
                }
            }
            assert_eq!(got, want, "level {i} {rect:?}");
        }
    }
    assert!(p.tiles(3, Rect::new(0, 0, 10, 10)).is_empty());
    assert_eq!(p.tiles(0, Rect::new(64, 64, 64, 64)).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Pixels.

#[tokio::test]
async fn lossless_tiles_read_back_exactly() {
    let codecs = [
        Codec::None,
        Codec::Lzw,
        Codec::Deflate,
        Codec::DeflatePredictor,
        Codec::PackBits,
        Codec::ZstdPredictor,
        Codec::WebP,
    ];
    let layouts = [Layout::Gray, Layout::GrayAlpha, Layout::Rgb, Layout::Rgba];
    for (k, codec) in codecs.into_iter().enumerate() {
        for layout in layouts {
            if codec == Codec::WebP && layout.is_gray() {
                continue;
            }
            let o = LAYOUTS[k % LAYOUTS.len()];
            let (file, sources) = pyramid_file(codec, layout, o);
            let (obj, p) = read(file.bytes).await.unwrap();
            for (i, level) in p.levels().iter().enumerate() {
                assert_eq!(level.layout(), layout);
                for rect in rects(level.width, level.height) {
                    let what = format!("{codec:?} {layout:?} level {i} {rect:?}");
                    let px = read_region(&obj, &p, i, rect, Budget::default()).await;
                    let px = px.unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(px.layout(), layout, "{what}");
                    assert_eq!(px.data(), crop(&sources[i], rect), "{what}");
                }
            }
            // One whole tile, padding included.
            let level = &p.levels()[0];
            let t = &p.tiles(0, Rect::new(299, 199, 1, 1))[0];
            let bytes = &obj.bytes[t.range.start as usize..t.range.end as usize];
            let tile = decode_tile(level, bytes, Budget::default()).unwrap();
            assert_eq!((tile.width(), tile.height()), (TILE, TILE));
            let c = layout.channels();
            assert_eq!(tile.pixel(300 - 4 * TILE - 1, 199 - 3 * TILE), {
                let px = sources[0].pixel(299, 199);
                &px[..c]
            });
            assert_eq!(tile.pixel(TILE - 1, TILE - 1), vec![PAD; c].as_slice());
        }
    }
}

#[tokio::test]
async fn jpeg_tiles_read_back_closely() {
    let cases = [
        (Codec::Jpeg, Layout::Rgb),
        (Codec::JpegTables, Layout::Rgb),
        (Codec::JpegRgb, Layout::Rgb),
        (Codec::Jpeg, Layout::Gray),
        (Codec::JpegTables, Layout::Gray),
        // RGB with an extra sample: four components as they are.
        (Codec::Jpeg, Layout::Rgba),
    ];
    for (k, (codec, layout)) in cases.into_iter().enumerate() {
        let o = LAYOUTS[k % LAYOUTS.len()];
        let (file, sources) = pyramid_file(codec, layout, o);
        let (obj, p) = read(file.bytes).await.unwrap();
        for (i, level) in p.levels().iter().enumerate() {
            assert_eq!(level.compression, Compression::Jpeg);
            assert_eq!(level.jpeg_tables.is_some(), codec == Codec::JpegTables);
            let photometric = match (layout, codec) {
                (Layout::Gray, _) => Photometric::BlackIsZero,
                (Layout::Rgba, _) | (_, Codec::JpegRgb) => Photometric::Rgb,
                _ => Photometric::YCbCr,
            };
            assert_eq!(level.photometric, photometric);
            let all = Rect::new(0, 0, level.width, level.height);
            let whole = read_region(&obj, &p, i, all, Budget::default())
                .await
                .unwrap();
            for rect in rects(level.width, level.height) {
                let what = format!("{codec:?} {layout:?} level {i} {rect:?}");
                let px = read_region(&obj, &p, i, rect, Budget::default()).await;
                let px = px.unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(px.layout(), layout, "{what}");
                // Every region is exactly the same part of the whole level...
                assert_eq!(px.data(), crop(&whole, rect), "{what}");
                // ...which is close to the source (small regions are left to JPEG's noise).
                if px.width() * px.height() >= 64 {
                    let mad = mean_abs_diff(px.data(), &crop(&sources[i], rect));
                    assert!(mad < 3.0, "{what}: mean absolute difference {mad}");
                }
            }
        }
    }
}

#[tokio::test]
async fn broken_jpeg_tiles_and_tables_are_errors() {
    let (file, _) = pyramid_file(Codec::JpegTables, Layout::Rgb, CLASSIC);
    let (obj, p) = read(file.bytes).await.unwrap();
    let level = &p.levels()[0];
    let t = &p.tiles(0, Rect::new(0, 0, 1, 1))[0];
    let tile = obj
        .bytes
        .slice(t.range.start as usize..t.range.end as usize);
    assert!(decode_tile(level, &tile, Budget::default()).is_ok());
    // No SOI on the tile.
    let e = decode_tile(level, &tile[2..], Budget::default()).unwrap_err();
    assert!(e.message().contains("SOI"), "{e}");
    // Tables without EOI, or without SOI.
    let tables = level.jpeg_tables.clone().unwrap();
    for bad in [tables.slice(..tables.len() - 2), tables.slice(2..)] {
        let mut broken = level.clone();
        broken.jpeg_tables = Some(bad);
        let e = decode_tile(&broken, &tile, Budget::default()).unwrap_err();
        assert!(e.message().contains("JPEGTables"), "{e}");
    }
    // Without the tables the tile has no quantisation tables.
    let mut bare = level.clone();
    bare.jpeg_tables = None;
    assert!(decode_tile(&bare, &tile, Budget::default()).is_err());
    // Truncated scans, garbage, and a level that says gray.
    for len in [4, 20, tile.len() / 2] {
        let _ = decode_tile(level, &tile[..len], Budget::default());
    }
    assert!(decode_tile(level, &[0xFF, 0xD8, 0xFF, 0xD9], Budget::default()).is_err());
    let mut zero = level.clone();
    zero.tile_width = 0;
    assert!(decode_tile(&zero, &tile, Budget::default()).is_err());
    let mut gray = level.clone();
    gray.photometric = Photometric::BlackIsZero;
    let e = decode_tile(&gray, &tile, Budget::default()).unwrap_err();
    assert!(e.message().contains("components"), "{e}");
}

#[tokio::test]
async fn broken_compressed_tiles_are_errors() {
    for codec in [
        Codec::Lzw,
        Codec::Deflate,
        Codec::None,
        Codec::PackBits,
        Codec::ZstdPredictor,
        Codec::WebP,
    ] {
        let (file, _) = pyramid_file(codec, Layout::Rgb, CLASSIC);
        let (obj, p) = read(file.bytes).await.unwrap();
        let level = &p.levels()[0];
        let t = &p.tiles(0, Rect::new(0, 0, 1, 1))[0];
        let tile = obj
            .bytes
            .slice(t.range.start as usize..t.range.end as usize);
        // (The last bytes of a stream may be only its end code or checksum.)
        for len in [1, tile.len() / 3, tile.len() / 2] {
            let e = decode_tile(level, &tile[..len], Budget::default());
            assert!(e.is_err(), "{codec:?} cut at {len}");
        }
        let garbage: Vec<u8> = (0..tile.len()).map(|i| (i * 37 % 251) as u8).collect();
        // (Any bytes are uncompressed samples, and most are PackBits.)
        if !matches!(codec, Codec::None | Codec::PackBits) {
            assert!(
                decode_tile(level, &garbage, Budget::default()).is_err(),
                "{codec:?}"
            );
        }
        // More than the tile's worth of data is ignored, never written past the tile.
        let mut long = tile.to_vec();
        long.extend_from_slice(&garbage);
        assert!(
            decode_tile(level, &long, Budget::default()).is_ok(),
            "{codec:?}"
        );
        // A budget smaller than one tile.
        let e = decode_tile(level, &tile, Budget::new(1000)).unwrap_err();
        assert!(e.message().contains("budget"), "{e}");
    }
}

#[tokio::test]
async fn photometric_variants_and_sparse_tiles() {
    let px = source(0, (100, 70), Layout::Rgba, Codec::None);
    let tiles = split_tiles(&px, TILE, Some(0));
    // WhiteIsZero gray.
    let gray: Vec<Vec<u8>> = tiles
        .iter()
        .map(|t| t.chunks_exact(4).map(|p| 255 - p[0]).collect())
        .collect();
    // Premultiplied RGBA.
    let premultiplied: Vec<Vec<u8>> = tiles
        .iter()
        .map(|t| {
            t.chunks_exact(4)
                .flat_map(|p| {
                    let a = u32::from(p[3]);
                    let m = |c: u8| ((u32::from(c) * a + 127) / 255) as u8;
                    [m(p[0]), m(p[1]), m(p[2]), p[3]]
                })
                .collect()
        })
        .collect();
    // Uncompressed YCbCr without subsampling: red, gray, white, black.
    let ycbcr: Vec<Vec<u8>> = tiles
        .iter()
        .map(|t| {
            t.chunks_exact(4)
                .flat_map(|p| match p[0] % 4 {
                    0 => [76, 85, 255],
                    1 => [128, 128, 128],
                    2 => [255, 128, 128],
                    _ => [0, 128, 128],
                })
                .collect()
        })
        .collect();
    let base = |spp: u64, photometric: u64| {
        vec![
            field(256, LONG, &[100]),
            field(257, LONG, &[70]),
            field(258, SHORT, &vec![8; spp as usize]),
            field(262, SHORT, &[photometric]),
            field(277, SHORT, &[spp]),
            field(322, LONG, &[u64::from(TILE)]),
            field(323, LONG, &[u64::from(TILE)]),
        ]
    };
    let rect = Rect::new(0, 0, 100, 70);

    let file = write(
        &[Image {
            fields: base(1, 0),
            chunks: gray,
            strips: false,
        }],
        CLASSIC,
    );
    let (obj, p) = read(file.bytes).await.unwrap();
    assert_eq!(p.levels()[0].photometric, Photometric::WhiteIsZero);
    let got = read_region(&obj, &p, 0, rect, Budget::default())
        .await
        .unwrap();
    let want: Vec<u8> = px.data().chunks_exact(4).map(|p| p[0]).collect();
    assert_eq!(got.data(), want);

    let mut fields = base(4, 2);
    fields.push(field(338, SHORT, &[1]));
    let file = write(
        &[Image {
            fields,
            chunks: premultiplied,
            strips: false,
        }],
        CLASSIC,
    );
    let (obj, p) = read(file.bytes).await.unwrap();
    assert_eq!(p.levels()[0].alpha, Alpha::Associated);
    let got = read_region(&obj, &p, 0, rect, Budget::default())
        .await
        .unwrap();
    assert_eq!(got.layout(), Layout::Rgba);
    for (g, w) in got.data().chunks_exact(4).zip(px.data().chunks_exact(4)) {
        assert_eq!(g[3], w[3]);
        // Premultiplying loses precision at low alpha; the colour comes back within it.
        let tol = if w[3] == 0 {
            255
        } else {
            255 / u32::from(w[3]) + 1
        };
        for c in 0..3 {
            assert!(u32::from(g[c].abs_diff(w[c])) <= tol, "{g:?} vs {w:?}");
        }
    }

    let mut fields = base(3, 6);
    fields.push(field(530, SHORT, &[1, 1]));
    let file = write(
        &[Image {
            fields: fields.clone(),
            chunks: ycbcr,
            strips: false,
        }],
        CLASSIC,
    );
    let (obj, p) = read(file.bytes).await.unwrap();
    let got = read_region(&obj, &p, 0, Rect::new(0, 0, 4, 1), Budget::default())
        .await
        .unwrap();
    let colours: Vec<[u8; 3]> = (0..4)
        .map(|x| match px.pixel(x, 0)[0] % 4 {
            0 => [254, 0, 0],
            1 => [128, 128, 128],
            2 => [255, 255, 255],
            _ => [0, 0, 0],
        })
        .collect();
    for (g, w) in got.data().chunks_exact(3).zip(colours) {
        assert!(
            g.iter().zip(w).all(|(a, b)| a.abs_diff(b) <= 2),
            "{g:?} vs {w:?}"
        );
    }
    // Subsampled YCbCr (the default) is only read through JPEG.
    fields.retain(|f| f.tag != 530);
    let file = write(
        &[Image {
            fields,
            chunks: vec![vec![0; 64 * 64 * 3]; 4],
            strips: false,
        }],
        CLASSIC,
    );
    let e = read(file.bytes).await.unwrap_err();
    assert!(e.message().contains("YCbCr"), "{e}");

    // A sparse tile (offset and count 0) reads as zeros.
    let mut chunks = split_tiles(
        &source(0, (100, 70), Layout::Gray, Codec::None),
        TILE,
        Some(PAD),
    );
    chunks[1].clear();
    let img = Image {
        fields: base(1, 1),
        chunks,
        strips: false,
    };
    let (_, p) = read(write(std::slice::from_ref(&img), CLASSIC).bytes)
        .await
        .unwrap();
    let mut offsets = p.levels()[0].tile_offsets.clone();
    offsets[1] = 0;
    let img = img.set(field(324, LONG, &offsets));
    let (obj, p) = read(write(&[img], CLASSIC).bytes).await.unwrap();
    assert_eq!(p.tiles(0, Rect::new(70, 0, 1, 1))[0].range, 0..0);
    let got = read_region(&obj, &p, 0, Rect::new(60, 0, 8, 1), Budget::default())
        .await
        .unwrap();
    let src = source(0, (100, 70), Layout::Gray, Codec::None);
    assert_eq!(&got.data()[..4], &crop(&src, Rect::new(60, 0, 4, 1))[..]);
    assert_eq!(&got.data()[4..], &[0; 4]);
}

// ---------------------------------------------------------------------------------------------
// Reads.

#[tokio::test]
async fn reads_fetch_the_header_the_ifds_and_only_the_tiles_needed() {
    let (file, sources) = pyramid_file(Codec::None, Layout::Rgb, CLASSIC);
    let len = file.bytes.len() as u64;
    assert!(len > 4 * 64 * 1024, "a file larger than the read-ahead");
    let (obj, p) = read(file.bytes).await.unwrap();
    // The structure: the first 64 KiB, then the IFDs at the end of the file.
    let reads = obj.take();
    let total: u64 = reads.iter().map(|r| r.end - r.start).sum();
    assert_eq!(reads[0], 0..64 * 1024);
    assert!(reads.len() <= 4, "{reads:?}");
    assert!(total < len / 2, "{reads:?}");

    // Inside one tile: exactly that tile's bytes.
    let rect = Rect::new(70, 70, 10, 10);
    let tiles = p.tiles(0, rect);
    assert_eq!(tiles.len(), 1);
    let px = read_region(&obj, &p, 0, rect, Budget::default())
        .await
        .unwrap();
    assert_eq!(px.data(), crop(&sources[0], rect));
    assert_eq!(obj.take(), vec![tiles[0].range.clone()]);

    // Across tiles: reads start and end at tiles needed, and cover them all.
    for (level, rect) in [
        (0, Rect::new(100, 30, 100, 120)),
        (0, Rect::new(0, 130, 300, 10)),
        (1, Rect::new(60, 60, 10, 10)),
    ] {
        let tiles = p.tiles(level, rect);
        let px = read_region(&obj, &p, level, rect, Budget::default())
            .await
            .unwrap();
        assert_eq!(px.data(), crop(&sources[level], rect));
        let reads = obj.take();
        for r in &reads {
            assert!(tiles.iter().any(|t| t.range.start == r.start), "{r:?}");
            assert!(tiles.iter().any(|t| t.range.end == r.end), "{r:?}");
        }
        for t in &tiles {
            let covered = reads
                .iter()
                .any(|r| r.start <= t.range.start && t.range.end <= r.end);
            assert!(covered, "{t:?} not read");
        }
        // Never more than the span of the tiles needed.
        let first = tiles.iter().map(|t| t.range.start).min().unwrap();
        let last = tiles.iter().map(|t| t.range.end).max().unwrap();
        let read: u64 = reads.iter().map(|r| r.end - r.start).sum();
        assert!(read <= last - first && read < len / 2, "{read} bytes read");
    }
}

/// A remote pyramid written level after level: the tail of the file, where the small levels'
/// IFDs are, is read alongside the first IFD, so that opening it takes two rounds of reads (the
/// header, then the first IFD with the tail) instead of one per IFD. A local file reads no tail.
#[tokio::test]
async fn a_remote_pyramid_reads_its_tail_with_the_first_ifd() {
    let sizes = [(640, 448), (320, 224), (160, 112)];
    let sources: Vec<Pixels> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| source(i, size, Layout::Rgb, Codec::None))
        .collect();
    let images: Vec<Image> = sources
        .iter()
        .enumerate()
        .map(|(i, px)| image(px, Codec::None, i > 0))
        .collect();
    let file = write_layout(&images, CLASSIC, true);
    let len = file.bytes.len() as u64;
    let tail = len - len / 8..len;
    // The layout this is about: the first IFD in the second half, before the tail; the others
    // in the tail, and not in the 64 KiB read at the first IFD.
    let ifds: Vec<u64> = file.ifds.iter().map(|&o| o as u64).collect();
    assert!(
        ifds[0] >= len / 2 && ifds[0] < tail.start,
        "{ifds:?} of {len}"
    );
    assert!(
        ifds[1] >= tail.start && ifds[1] > ifds[0] + 64 * 1024,
        "{ifds:?}"
    );

    let (obj, p) = read(file.bytes.clone()).await.unwrap();
    let got: Vec<_> = p.levels().iter().map(|l| (l.width, l.height)).collect();
    assert_eq!(got, sizes);
    let reads = obj.take();
    let ifd0_read = ifds[0]..ifds[0] + 64 * 1024;
    assert_eq!(reads, vec![0..64 * 1024, ifd0_read.clone(), tail.clone()]);
    for (i, src) in sources.iter().enumerate() {
        let level = &p.levels()[i];
        let rect = Rect::new(0, 0, level.width, level.height);
        let px = read_region(&obj, &p, i, rect, Budget::default())
            .await
            .unwrap();
        assert_eq!(&px, src, "level {i}");
    }

    // A local file: one read per IFD, no tail.
    let local = Local(Counting::new(file.bytes));
    let p = read_pyramid(&local).await.unwrap();
    assert_eq!(p.levels().len(), 3);
    let reads = local.0.take();
    assert!(!reads.contains(&tail), "{reads:?}");
    assert_eq!(&reads[..2], &[0..64 * 1024, ifd0_read]);
    assert!(reads.len() >= 3, "{reads:?}");
}

/// [`Counting`] as a local file: one that reads without the runtime.
#[derive(Debug)]
struct Local(Counting);

impl SourceObject for Local {
    fn metadata(&self) -> &SourceMetadata {
        self.0.metadata()
    }

    async fn read_range(&self, range: Range<u64>) -> Result<Bytes, Error> {
        self.0.read_range(range).await
    }

    fn read_at_blocking(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize, Error>> {
        let data = &self.0.bytes[(offset as usize).min(self.0.bytes.len())..];
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        Some(Ok(n))
    }
}

#[test]
fn futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let obj = Counting::new(Vec::new());
    send(&read_pyramid(&obj));
    let p = TiffPyramid {
        levels: Vec::new(),
        len: 0,
        orientation: crate::codec::Orientation::NORMAL,
        icc_profile: None,
    };
    send(&read_region(
        &obj,
        &p,
        0,
        Rect::new(0, 0, 1, 1),
        Budget::default(),
    ));
}

// ---------------------------------------------------------------------------------------------
// Hostile files.

/// `read_pyramid` on `bytes` fails with a one-line message containing `needle`.
async fn refused(bytes: Vec<u8>, needle: &str) {
    let e = read(bytes).await.map(|_| ()).unwrap_err();
    assert_eq!(e.status(), 500);
    assert!(!e.message().contains('\n'));
    assert!(
        e.message().contains(needle),
        "{needle:?} not in {:?}",
        e.message()
    );
}

#[tokio::test]
async fn truncated_and_garbage_files_are_errors() {
    let junk: [&[u8]; 9] = [
        b"",
        b"II",
        b"junk junk",
        b"II*\0",
        b"II*\0\0\0\0\0",
        b"II+\0\x08\0\0\0",
        b"II+\0\x04\0\0\0\x10\0\0\0\0\0\0\0",
        b"MM\0*\0\0\0\x08\0\0\0\0",
        b"II\x2b\x01\x08\0\0\0",
    ];
    for junk in junk {
        assert!(read(junk.to_vec()).await.is_err(), "{junk:?}");
    }
    for o in LAYOUTS {
        let (file, _) = pyramid_file(Codec::Lzw, Layout::Rgb, o);
        let full = file.bytes;
        let mut cuts = vec![8, 15, 16, full.len() / 2, full.len() - 1, full.len() - 3];
        cuts.extend(file.ifds.iter().map(|&p| p + 5));
        for cut in cuts {
            let e = read(full[..cut].to_vec()).await.map(|_| ());
            assert!(e.is_err(), "{o:?} cut at {cut} of {}", full.len());
        }
    }
}

#[tokio::test]
async fn loops_and_offsets_past_the_end_are_errors() {
    for o in [CLASSIC, LAYOUTS[3]] {
        let (file, _) = pyramid_file(Codec::None, Layout::Gray, o);
        let off = if o.big { 8 } else { 4 };
        let be = o.big_endian;
        let len = file.bytes.len() as u64;

        // The last IFD points back at the first, or at itself.
        for target in [file.ifds[0], file.ifds[2]] {
            let mut bytes = file.bytes.clone();
            put(&mut bytes, file.nexts[2], target as u64, off, be);
            refused(bytes, "loops").await;
        }
        // The first IFD, or a next one, past the end.
        let mut bytes = file.bytes.clone();
        put(&mut bytes, off, len + 10, off, be);
        refused(bytes, "past the end").await;
        let mut bytes = file.bytes.clone();
        put(&mut bytes, file.nexts[1], len - 1, off, be);
        refused(bytes, "past the end").await;
        // An IFD stating more entries than allowed.
        let mut bytes = file.bytes.clone();
        put(
            &mut bytes,
            file.ifds[1],
            5000,
            if o.big { 8 } else { 2 },
            be,
        );
        refused(bytes, "more than 4096").await;
    }

    // A tile, or the tile offsets array, past the end.
    let px = source(0, (100, 70), Layout::Gray, Codec::None);
    let img = image(&px, Codec::None, false);
    let len = write(std::slice::from_ref(&img), CLASSIC).bytes.len() as u64;
    let bad = img.clone().set(field(324, LONG, &[8, 8, 8, len + 100]));
    refused(write(&[bad], CLASSIC).bytes, "past the end").await;
    let mut offsets = field(324, LONG, &[8; 4]);
    offsets.count = Some(1_000_000);
    let bad = img.clone().set(offsets);
    refused(write(&[bad], CLASSIC).bytes, "past the end").await;
    // A tile whose end overflows.
    let bad = img.set(field(325, LONG, &[u64::from(u32::MAX); 4]));
    refused(write(&[bad], CLASSIC).bytes, "past the end").await;
}

#[tokio::test]
async fn limits_are_enforced_before_allocating() {
    let px = source(0, (100, 70), Layout::Gray, Codec::None);
    let img = image(&px, Codec::None, false);
    let big = LAYOUTS[3];

    // Tile arrays claiming 2^40 entries (BigTIFF) or 2^32 - 1 (classic).
    for (o, count) in [(big, 1u64 << 40), (CLASSIC, u64::from(u32::MAX))] {
        let mut offsets = field(324, if o.big { LONG8 } else { LONG }, &[8; 4]);
        offsets.count = Some(count);
        refused(
            write(&[img.clone().set(offsets)], o).bytes,
            "more than 10000000",
        )
        .await;
    }
    // An image of more than 10 million tiles.
    let huge = img
        .clone()
        .set(field(256, LONG, &[u64::from(u32::MAX)]))
        .set(field(257, LONG, &[u64::from(u32::MAX)]));
    refused(write(&[huge], CLASSIC).bytes, "more than 10000000").await;
    // More than 64 IFDs.
    let tiny = image(
        &source(0, (16, 16), Layout::Gray, Codec::None),
        Codec::None,
        false,
    );
    let many = vec![tiny; 70];
    refused(write(&many, CLASSIC).bytes, "more than 64 IFDs").await;
    // Too many SubIFDs.
    let mut subs = field(330, LONG, &[8; 2]);
    subs.count = Some(100);
    refused(
        write(&[img.clone().set(subs)], CLASSIC).bytes,
        "more than 64",
    )
    .await;

    // A region over the budget fails before reading any tile.
    let (file, _) = pyramid_file(Codec::None, Layout::Rgb, CLASSIC);
    let (obj, p) = read(file.bytes).await.unwrap();
    obj.take();
    let e = read_region(
        &obj,
        &p,
        0,
        Rect::new(0, 0, 300, 200),
        Budget::new(300 * 200 * 3 - 1),
    )
    .await
    .unwrap_err();
    assert!(e.message().contains("budget"), "{e}");
    assert!(obj.take().is_empty());
    // Bad arguments.
    let e = read_region(&obj, &p, 5, Rect::new(0, 0, 1, 1), Budget::default()).await;
    assert!(e.is_err());
    let e = read_region(&obj, &p, 0, Rect::new(300, 0, 1, 1), Budget::default()).await;
    assert!(e.is_err());
    let e = assemble(
        &p.levels()[0],
        Rect::new(0, 0, 0, 0),
        &[],
        Budget::default(),
    );
    assert!(e.is_err());
}

#[tokio::test]
async fn unsupported_samples_are_errors() {
    let px = source(0, (100, 70), Layout::Rgb, Codec::None);
    let img = image(&px, Codec::None, false);
    let cases = [
        (field(258, SHORT, &[16, 16, 16]), "16-bit"),
        (field(258, SHORT, &[8, 8, 4]), "4-bit"),
        (field(284, SHORT, &[2]), "planar"),
        (field(339, SHORT, &[3, 3, 3]), "floating-point"),
        (field(262, SHORT, &[5]), "photometric interpretation 5"),
        (field(262, SHORT, &[3]), "photometric interpretation 3"),
        (field(317, SHORT, &[3]), "predictor 3"),
        (field(277, SHORT, &[2]), "too few"),
        (field(322, BYTE, &[0]), "TileWidth is 0"),
        (field(322, 11, &[64]), "not an unsigned integer"),
    ];
    for (f, needle) in cases {
        refused(write(&[img.clone().set(f)], CLASSIC).bytes, needle).await;
    }
    // No photometric interpretation at all.
    let mut none = img.clone();
    none.fields.retain(|f| f.tag != 262);
    refused(write(&[none], CLASSIC).bytes, "photometric").await;

    // An unknown compression is refused with the structure (the whole-file decoder then
    // names it), and by the tile decoder.
    let other = img.clone().set(field(259, SHORT, &[34712]));
    refused(write(&[other], CLASSIC).bytes, "compression 34712").await;
    let (_, p) = read(write(&[img], CLASSIC).bytes).await.unwrap();
    let mut level = p.levels()[0].clone();
    level.compression = Compression::Other(34712);
    let e = decode_tile(&level, &[0; 64], Budget::default()).unwrap_err();
    assert!(e.message().contains("compression 34712"), "{e}");
}

#[tokio::test]
async fn corrupted_files_never_panic() {
    // Flip bytes all over valid files; whatever happens must be a result, not a panic.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let files = [
        pyramid_file(Codec::Lzw, Layout::Gray, CLASSIC).0,
        pyramid_file(Codec::JpegTables, Layout::Rgb, LAYOUTS[4]).0,
        pyramid_file(Codec::DeflatePredictor, Layout::Rgba, LAYOUTS[1]).0,
    ];
    for file in &files {
        // Bias towards the IFDs, which sit after the tile data.
        let ifd_start = file.ifds[0].min(file.ifds[1]).min(file.ifds[2]);
        for round in 0..150 {
            let mut bytes = file.bytes.clone();
            for _ in 0..1 + round % 4 {
                let span = if round % 3 == 0 {
                    bytes.len()
                } else {
                    bytes.len() - ifd_start
                };
                let at = bytes.len() - 1 - (next() as usize % span);
                bytes[at] = next() as u8;
            }
            let Ok((obj, p)) = read(bytes).await else {
                continue;
            };
            for (i, level) in p.levels().iter().enumerate() {
                let rect = Rect::new(0, 0, level.width.min(400), level.height.min(400));
                let _ = read_region(&obj, &p, i, rect, Budget::new(1 << 24)).await;
            }
        }
    }
}

/// A classic little-endian Deflate RGB pyramid (300x200, 150x100, 75x50 in 64-pixel tiles, each
/// level its own pattern) and each level's pixels: a fixture for the service's tests.
pub(crate) fn deflate_rgb_pyramid() -> (Vec<u8>, Vec<Pixels>) {
    let (written, sources) = pyramid_file(Codec::Deflate, Layout::Rgb, CLASSIC);
    (written.bytes, sources)
}

/// A one-level tiled TIFF of `px` (64-pixel tiles; JPEG YCbCr tiles with `jpeg`, else Deflate)
/// carrying `profile` in its `ICCProfile` tag: a fixture for the service's tests.
pub(crate) fn tiled_with_profile(px: &Pixels, jpeg: bool, profile: &[u8]) -> Vec<u8> {
    let codec = if jpeg { Codec::Jpeg } else { Codec::Deflate };
    let values: Vec<u64> = profile.iter().map(|&b| u64::from(b)).collect();
    let img = image(px, codec, false).set(field(34675, UNDEFINED, &values));
    write(&[img], CLASSIC).bytes
}

/// JPEG RGB pyramids of the same shapes: YCbCr tiles behind shared `JPEGTables`, and (`raw`)
/// RGB components stored unconverted with no marker. A fixture for the service's tests.
pub(crate) fn jpeg_rgb_pyramid(raw: bool) -> (Vec<u8>, Vec<Pixels>) {
    let codec = if raw {
        Codec::JpegRgb
    } else {
        Codec::JpegTables
    };
    let (written, sources) = pyramid_file(codec, Layout::Rgb, CLASSIC);
    (written.bytes, sources)
}

#[tokio::test]
async fn stored_tiles_are_found_only_for_exact_whole_tile_requests() {
    let (file, _) = jpeg_rgb_pyramid(false);
    let (obj, p) = read(file).await.unwrap();
    // Level 0 (300x200, 64 tiles): tile (1, 2).
    let (level, t) = stored_jpeg_tile(&p, Rect::new(64, 128, 64, 64), 64, 64).unwrap();
    assert_eq!((level, t.col, t.row), (0, 1, 2));
    // Level 1 (150x100): tile (1, 0) is region 128,0,128,128 at half size.
    let (level, t) = stored_jpeg_tile(&p, Rect::new(128, 0, 128, 128), 64, 64).unwrap();
    assert_eq!((level, t.col, t.row), (1, 1, 0));
    // A pixel off, another size, an edge tile (padded in the file): no.
    assert!(stored_jpeg_tile(&p, Rect::new(65, 128, 64, 64), 64, 64).is_none());
    assert!(stored_jpeg_tile(&p, Rect::new(64, 128, 64, 64), 63, 63).is_none());
    assert!(stored_jpeg_tile(&p, Rect::new(256, 0, 44, 64), 44, 64).is_none());
    assert!(stored_jpeg_tile(&p, Rect::new(0, 192, 64, 8), 64, 8).is_none());
    // The standalone JPEG decodes as the tile decoder decodes the stored tile.
    let (level, t) = stored_jpeg_tile(&p, Rect::new(0, 0, 64, 64), 64, 64).unwrap();
    let lv = &p.levels()[level];
    let stored = &obj.bytes[t.range.start as usize..t.range.end as usize];
    let jpeg = standalone_jpeg(lv, stored).unwrap();
    let via_tile = decode_tile(lv, stored, Budget::default()).unwrap();
    let standalone = crate::codec::decode(&jpeg, Budget::default()).unwrap();
    // (Two decoders: zune-jpeg, and libjpeg-turbo for tiles with the turbojpeg feature.)
    let d = mean_abs_diff(standalone.data(), via_tile.data());
    assert!(d < 1.5, "mean difference {d}");
    // Not JPEG: never.
    let (file, _) = deflate_rgb_pyramid();
    let (_, p) = read(file).await.unwrap();
    assert!(stored_jpeg_tile(&p, Rect::new(0, 0, 64, 64), 64, 64).is_none());
}

#[tokio::test]
async fn levels_rounded_down_by_the_writer_count_as_exact_halvings() {
    let (file, _) = deflate_rgb_pyramid();
    let (_, p) = read(file).await.unwrap();
    // 301x201 with levels 150x100 and 75x50, as libvips rounds (down).
    let mut levels = p.levels().to_vec();
    (levels[0].width, levels[0].height) = (301, 201);
    let odd = TiffPyramid {
        levels: levels.clone(),
        len: p.file_len(),
        orientation: Orientation::NORMAL,
        icc_profile: None,
    };
    assert_eq!(odd.downsample(1), Some((2.0, 2.0)));
    assert_eq!(odd.downsample(2), Some((4.0, 4.0)));
    assert_eq!(odd.level_for(0.5), 1);
    assert_eq!(odd.level_for(0.25), 2);
    assert_eq!(odd.level_for(0.2), 2);
    assert_eq!(odd.level_for(0.6), 0);
    // A level that is no power of two keeps its real ratio.
    (levels[1].width, levels[1].height) = (100, 67);
    let thirds = TiffPyramid {
        levels,
        len: p.file_len(),
        orientation: Orientation::NORMAL,
        icc_profile: None,
    };
    let (dx, dy) = thirds.downsample(1).unwrap();
    assert_eq!(dx, 3.01);
    assert!((dy - 3.0).abs() < 0.01, "{dy}");
    assert_eq!(thirds.level_for(0.33), 1);
    assert_eq!(thirds.level_for(0.34), 0);
}

// ---------------------------------------------------------------------------------------------
// Stored JPEG tiles joined without decoding.

/// The tiles of `rect` of level `level` with their bytes.
fn tiles_of(obj: &Counting, p: &TiffPyramid, level: usize, rect: Rect) -> Vec<(TileRef, Bytes)> {
    p.tiles(level, rect)
        .into_iter()
        .map(|t| {
            let bytes = obj
                .bytes
                .slice(t.range.start as usize..t.range.end as usize);
            (t, bytes)
        })
        .collect()
}

/// `rect` of level `level` as its stored tiles decode one at a time (each made a standalone
/// JPEG, decoded by the decoder `codec::decode` uses), cropped and put side by side.
fn stored_pixels(obj: &Counting, p: &TiffPyramid, level: usize, rect: Rect) -> Vec<u8> {
    let lv = &p.levels()[level];
    let c = lv.layout().channels();
    let mut out = vec![0u8; (rect.w * rect.h) as usize * c];
    for (t, bytes) in tiles_of(obj, p, level, rect) {
        let jpeg = standalone_jpeg(lv, &bytes).unwrap();
        let px = crate::codec::decode(&jpeg, Budget::default()).unwrap();
        let (tx, ty) = (t.col * lv.tile_width, t.row * lv.tile_height);
        for y in ty.max(rect.y)..(ty + lv.tile_height).min(rect.bottom()) {
            for x in tx.max(rect.x)..(tx + lv.tile_width).min(rect.right()) {
                let at = (((y - rect.y) * rect.w + (x - rect.x)) as usize) * c;
                out[at..at + c].copy_from_slice(px.pixel(x - tx, y - ty));
            }
        }
    }
    out
}

#[tokio::test]
async fn whole_stored_jpeg_tiles_are_joined_into_one_jpeg_without_decoding() {
    // RGB 4:4:4 and gray decode to exactly the stored tiles' pixels (blocks are independent);
    // YCbCr 4:2:0 differs along the tile edges only, where chroma upsampling now sees the
    // neighbour tile.
    for (codec, layout, exact) in [
        (Codec::JpegRgb, Layout::Rgb, true),
        (Codec::Jpeg, Layout::Gray, true),
        (Codec::JpegTables, Layout::Rgb, false),
    ] {
        let (written, _) = pyramid_file(codec, layout, CLASSIC);
        let (obj, p) = read(written.bytes).await.unwrap();
        // Level 0 is 300x200 and level 1 150x100, in tiles of 64.
        for (level, rect) in [
            (0, Rect::new(0, 0, 128, 128)),
            (0, Rect::new(64, 64, 128, 64)),
            (0, Rect::new(128, 0, 64, 64)),
            (0, Rect::new(256, 128, 44, 72)),
            (0, Rect::new(0, 0, 300, 200)),
            (0, Rect::new(192, 64, 100, 61)),
            (1, Rect::new(64, 0, 86, 100)),
        ] {
            let lv = &p.levels()[level];
            let what = format!("{codec:?} {layout:?} level {level} {rect:?}");
            let jpeg = join_jpeg_tiles(lv, rect, &tiles_of(&obj, &p, level, rect))
                .unwrap_or_else(|| panic!("{what}: not joined"));
            let got = crate::codec::decode(&jpeg, Budget::default()).unwrap();
            assert_eq!(
                (got.width(), got.height(), got.layout()),
                (rect.w, rect.h, layout),
                "{what}"
            );
            let want = stored_pixels(&obj, &p, level, rect);
            if exact {
                assert!(got.data() == want.as_slice(), "{what}: pixels differ");
            } else {
                let d = mean_abs_diff(got.data(), &want);
                assert!(d < 1.0, "{what}: mean difference {d}");
            }
        }
    }
}

#[tokio::test]
async fn tiles_that_cannot_be_joined_are_left_to_the_decoder() {
    let (written, _) = pyramid_file(Codec::JpegRgb, Layout::Rgb, CLASSIC);
    let (obj, p) = read(written.bytes).await.unwrap();
    let lv = &p.levels()[0];
    let rect = Rect::new(0, 0, 128, 128);
    let tiles = tiles_of(&obj, &p, 0, rect);
    assert!(join_jpeg_tiles(lv, rect, &tiles).is_some());
    // Not on a tile's corner; past the level.
    let off = Rect::new(8, 0, 120, 128);
    assert!(join_jpeg_tiles(lv, off, &tiles_of(&obj, &p, 0, off)).is_none());
    let past = Rect::new(256, 0, 64, 64);
    assert!(join_jpeg_tiles(lv, past, &tiles_of(&obj, &p, 0, past)).is_none());
    // A tile missing.
    assert!(join_jpeg_tiles(lv, rect, &tiles[1..]).is_none());
    // A restart interval in one tile.
    let mut dri = tiles.clone();
    let mut t = vec![0xFF, 0xD8, 0xFF, 0xDD, 0x00, 0x04, 0x00, 0x10];
    t.extend_from_slice(&dri[2].1[2..]);
    dri[2].1 = Bytes::from(t);
    assert!(join_jpeg_tiles(lv, rect, &dri).is_none());
    // A second frame header in a tile; a scan naming one component twice; a Huffman table
    // with more codes than its lengths allow (three of one bit) in the tables.
    let mut two_sof = tiles.clone();
    for tile in &mut two_sof {
        let sof = jpeg_marker(&tile.1, 0xC0);
        let mut t = tile.1[..sof.start].to_vec();
        t.extend_from_slice(&tile.1[sof.clone()]);
        t.extend_from_slice(&tile.1[sof.start..]);
        tile.1 = Bytes::from(t);
    }
    assert!(join_jpeg_tiles(lv, rect, &two_sof).is_none());
    let mut twice = tiles.clone();
    for tile in &mut twice {
        let sos = jpeg_marker(&tile.1, 0xDA);
        let mut t = tile.1.to_vec();
        t[sos.start + 7] = t[sos.start + 5];
        tile.1 = Bytes::from(t);
    }
    assert!(join_jpeg_tiles(lv, rect, &twice).is_none());
    let mut bad_table = lv.clone();
    let mut t = vec![0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x16, 0x00, 0x03];
    t.extend_from_slice(&[0; 15]);
    t.extend_from_slice(&[0, 1, 2, 0xFF, 0xD9]);
    bad_table.jpeg_tables = Some(Bytes::from(t));
    assert!(join_jpeg_tiles(&bad_table, rect, &tiles).is_none());
    // Another compression.
    let (written, _) = deflate_rgb_pyramid();
    let (obj, p) = read(written).await.unwrap();
    assert!(join_jpeg_tiles(&p.levels()[0], rect, &tiles_of(&obj, &p, 0, rect)).is_none());
}

#[tokio::test]
async fn broken_tiles_never_panic_the_join() {
    for codec in [Codec::JpegRgb, Codec::JpegTables] {
        let (written, _) = pyramid_file(codec, Layout::Rgb, CLASSIC);
        let (obj, p) = read(written.bytes).await.unwrap();
        let lv = &p.levels()[0];
        let rect = Rect::new(0, 0, 128, 128);
        let tiles = tiles_of(&obj, &p, 0, rect);
        let len = tiles[1].1.len();
        for cut in (0..len).step_by(5) {
            let mut t = tiles.clone();
            t[1].1 = t[1].1.slice(..cut);
            let _ = join_jpeg_tiles(lv, rect, &t);
        }
        for at in (0..len).step_by(3) {
            for v in [0x00, 0xFF, 0xD0, 0x7F] {
                let mut t = tiles.clone();
                let mut b = t[1].1.to_vec();
                b[at] = v;
                t[1].1 = Bytes::from(b);
                if let Some(jpeg) = join_jpeg_tiles(lv, rect, &t) {
                    assert!(jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.ends_with(&[0xFF, 0xD9]));
                }
            }
        }
        // The shared tables, every byte, more values.
        if let Some(tables) = &lv.jpeg_tables {
            for at in 0..tables.len() {
                for v in [0x00, 0x01, 0x03, 0x10, 0x7F, 0xFF] {
                    let mut broken = lv.clone();
                    let mut b = tables.to_vec();
                    b[at] = v;
                    broken.jpeg_tables = Some(Bytes::from(b));
                    let _ = join_jpeg_tiles(&broken, rect, &tiles);
                }
            }
        }
    }
}

/// The byte range of the first `marker` segment of a JPEG stream (from its 0xFF).
fn jpeg_marker(jpeg: &[u8], marker: u8) -> Range<usize> {
    if marker == 0xDA {
        let start = segments(jpeg).last().map_or(2, |s| s.1);
        let len = usize::from(u16::from_be_bytes([jpeg[start + 2], jpeg[start + 3]]));
        return start..start + 2 + len;
    }
    let (start, end, _) = segments(jpeg)
        .into_iter()
        .find(|s| s.2 == marker)
        .unwrap_or_else(|| panic!("no marker {marker:#x}"));
    start..end
}

#[test]
fn tiles_of_part_mcus_are_not_joined() {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    // 4:2:0 tiles (MCUs of 16) of 40 and of 48 pixels, two across.
    for (side, joinable) in [(40u32, false), (48, true)] {
        let tile = |shade: u8| {
            let px = vec![shade; (side * side * 3) as usize];
            let mut out = Vec::new();
            let mut encoder = Encoder::new(&mut out, 90);
            encoder.set_sampling_factor(SamplingFactor::F_2_2);
            encoder
                .encode(&px, side as u16, side as u16, ColorType::Rgb)
                .unwrap();
            Bytes::from(out)
        };
        let (_, p) = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(read(
                pyramid_file(Codec::Jpeg, Layout::Rgb, CLASSIC).0.bytes,
            ))
            .unwrap();
        let mut level = p.levels()[0].clone();
        (level.width, level.height) = (2 * side, side);
        (level.tile_width, level.tile_height) = (side, side);
        level.jpeg_tables = None;
        let tiles = [(0, 40u8), (1, 200)].map(|(col, shade)| {
            let t = TileRef {
                col,
                row: 0,
                range: 0..1,
            };
            (t, tile(shade))
        });
        let rect = Rect::new(0, 0, 2 * side, side);
        let joined = join_jpeg_tiles(&level, rect, &tiles);
        assert_eq!(joined.is_some(), joinable, "tiles of {side}");
        if let Some(jpeg) = joined {
            let px = crate::codec::decode(&jpeg, Budget::default()).unwrap();
            assert_eq!((px.width(), px.height()), (2 * side, side));
            assert!(px.pixel(side / 2, side / 2)[0].abs_diff(40) <= 2);
            assert!(px.pixel(side + side / 2, side / 2)[0].abs_diff(200) <= 2);
        }
    }
}

/// A little-endian TIFF of one `w` x `h` gray image, uncompressed, in tiles of `tile` x `tile`
/// laid out left to right, top to bottom, each `tile * tile` bytes of `sample(x, y)` (padding
/// `0xEE`), after the header and the IFD.
fn tiny_gray_tiff(w: u32, h: u32, tile: u32, sample: impl Fn(u32, u32) -> u8) -> Vec<u8> {
    let (across, down) = (w.div_ceil(tile), h.div_ceil(tile));
    let n = across * down;
    let entries: [(u16, u32); 8] = [
        (256, w),
        (257, h),
        (258, 8),
        (262, 1),
        (322, tile),
        (323, tile),
        (324, 0),
        (325, 0),
    ];
    let ifd_len = 2 + 12 * entries.len() as u32 + 4;
    let arrays = 8 + ifd_len; // TileOffsets, then TileByteCounts, when there are several tiles
    let data = arrays + if n > 1 { 8 * n } else { 0 };
    let mut f = b"II*\0\x08\0\0\0".to_vec();
    f.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, value) in entries {
        let value = match (tag, n > 1) {
            (324, true) => arrays,
            (325, true) => arrays + 4 * n,
            (324, false) => data,
            (325, false) => tile * tile,
            _ => value,
        };
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&4u16.to_le_bytes());
        f.extend_from_slice(&(if matches!(tag, 324 | 325) { n } else { 1 }).to_le_bytes());
        f.extend_from_slice(&value.to_le_bytes());
    }
    f.extend_from_slice(&0u32.to_le_bytes());
    if n > 1 {
        (0..n).for_each(|t| f.extend_from_slice(&(data + t * tile * tile).to_le_bytes()));
        (0..n).for_each(|_| f.extend_from_slice(&(tile * tile).to_le_bytes()));
    }
    for t in 0..n {
        let (x0, y0) = ((t % across) * tile, (t / across) * tile);
        for y in y0..y0 + tile {
            for x in x0..x0 + tile {
                f.push(if x < w && y < h { sample(x, y) } else { 0xEE });
            }
        }
    }
    f
}

#[tokio::test]
async fn a_tiny_pyramid_read_by_range() {
    // 20x12 gray in 16x16 tiles (2 x 1), pixel value x + 10 * y.
    let obj = Counting::new(tiny_gray_tiff(20, 12, 16, |x, y| (x + 10 * y) as u8));
    let pyramid = crate::tiff::read_pyramid(&obj).await.unwrap();
    assert_eq!((pyramid.width(), pyramid.height()), (20, 12));
    let level = &pyramid.levels()[0];
    assert_eq!(
        (level.tile_width, level.tile_height, level.compression),
        (16, 16, Compression::None)
    );
    assert_eq!(pyramid.level_for(0.25), 0); // the only level
    // A 4x2 region straddling both tiles.
    let rect = Rect::new(14, 3, 4, 2);
    let tiles = pyramid.tiles(0, rect);
    assert_eq!(
        tiles.iter().map(|t| (t.col, t.row)).collect::<Vec<_>>(),
        [(0, 0), (1, 0)]
    );
    let px = read_region(&obj, &pyramid, 0, rect, Budget::default())
        .await
        .unwrap();
    assert_eq!(px.layout(), Layout::Gray);
    assert_eq!(px.data(), &[44, 45, 46, 47, 54, 55, 56, 57]);
}

#[tokio::test]
async fn a_tile_decoded_and_tiles_assembled() {
    // 2x2 gray in one 2x2 tile: 1 2 / 3 4.
    let file = tiny_gray_tiff(2, 2, 2, |x, y| (1 + x + 2 * y) as u8);
    let obj = Counting::new(file.clone());
    let pyramid = crate::tiff::read_pyramid(&obj).await.unwrap();
    let level = &pyramid.levels()[0];
    let px = decode_tile(level, &[1, 2, 3, 4], Budget::default()).unwrap();
    assert_eq!((px.width(), px.height(), px.layout()), (2, 2, Layout::Gray));
    assert_eq!(px.data(), &[1, 2, 3, 4]);
    assert!(decode_tile(level, &[1, 2], Budget::default()).is_err());
    // Fetch the tiles however you like, then assemble elsewhere.
    let rect = Rect::new(1, 0, 1, 2);
    let tiles: Vec<_> = pyramid
        .tiles(0, rect)
        .into_iter()
        .map(|t| {
            let data = Bytes::from(file[t.range.start as usize..t.range.end as usize].to_vec());
            (t, data)
        })
        .collect();
    let px = assemble(level, rect, &tiles, Budget::default()).unwrap();
    assert_eq!(px.data(), &[2, 4]);
}

#[test]
fn compression_tags() {
    assert_eq!(Compression::from_tag(32946), Compression::Deflate);
    assert_eq!(Compression::from_tag(34712), Compression::Other(34712));
}

/// The bytes a pyramid's structure was read from, kept and replayed through the same parser,
/// make the same pyramid without the file; JPEG tables and every level come with them.
#[tokio::test]
async fn a_recorded_pyramid_replays_without_the_file() {
    use crate::source::recording::Replay;
    let (file, _) = jpeg_rgb_pyramid(false);
    let obj = Counting::new(file.clone());
    let (p, recording) = super::ifd::read_pyramid_recorded(&obj).await.unwrap();
    assert_eq!(p.levels().len(), 3);
    assert!(p.levels()[0].jpeg_tables.is_some());
    let encoded = bytes::Bytes::from(recording.encode().unwrap());
    // The structure only: a fraction of the file.
    assert!(
        encoded.len() * 4 < file.len(),
        "{} of {}",
        encoded.len(),
        file.len()
    );

    let replay = Replay::decode(&encoded, obj.metadata()).unwrap();
    assert_eq!(read_pyramid(&replay).await.unwrap(), p);
    // Through the service's entry point too, and not for a file of another length.
    let replayed = super::replay_pyramid(&encoded, obj.metadata())
        .await
        .unwrap();
    assert_eq!(*replayed, p);
    let other = SourceMetadata::new(obj.metadata().len - 1, None, None);
    assert!(super::replay_pyramid(&encoded, &other).await.is_none());
}

/// Every layout the reader handles (BigTIFF, big-endian, levels as SubIFDs) replays to the
/// pyramid the file makes, and so does a remote file whose tail is read with its first IFD.
#[tokio::test]
async fn recordings_of_every_layout_replay() {
    use crate::source::recording::Replay;
    for o in LAYOUTS {
        let (written, _) = pyramid_file(Codec::Deflate, Layout::Rgb, o);
        let obj = Counting::new(written.bytes);
        let (p, recording) = super::ifd::read_pyramid_recorded(&obj).await.unwrap();
        let encoded = bytes::Bytes::from(recording.encode().unwrap());
        let replay = Replay::decode(&encoded, obj.metadata()).unwrap();
        assert_eq!(read_pyramid(&replay).await.unwrap(), p, "{o:?}");
    }
    let sizes = [(640, 448), (320, 224), (160, 112)];
    let images: Vec<Image> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            image(
                &source(i, size, Layout::Rgb, Codec::None),
                Codec::None,
                i > 0,
            )
        })
        .collect();
    let obj = Counting::new(write_layout(&images, CLASSIC, true).bytes);
    let (p, recording) = super::ifd::read_pyramid_recorded(&obj).await.unwrap();
    let encoded = bytes::Bytes::from(recording.encode().unwrap());
    let replay = Replay::decode(&encoded, obj.metadata()).unwrap();
    assert_eq!(read_pyramid(&replay).await.unwrap(), p);
}

/// A recording whose CRC matches is still checked as a file is: one that misses a read, or
/// whose bytes are not a TIFF's, makes no pyramid (the caller then reads the file).
#[tokio::test]
async fn a_recording_short_of_a_read_or_not_a_tiff_makes_no_pyramid() {
    use crate::source::recording::Replay;
    let (file, _) = jpeg_rgb_pyramid(false);
    let obj = Counting::new(file);
    let meta = obj.metadata().clone();
    let (_, recording) = super::ifd::read_pyramid_recorded(&obj).await.unwrap();
    let encoded = recording.encode().unwrap();
    let body = &encoded[..encoded.len() - 4];
    let reseal = |mut body: Vec<u8>| {
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        bytes::Bytes::from(body)
    };

    // The last run dropped (the count lowered, the encoding cut to match).
    let count = u32::from_le_bytes(body[8..12].try_into().unwrap());
    assert!(count >= 2, "{count} runs");
    let mut at = 12;
    for _ in 0..count - 1 {
        let n = u32::from_le_bytes(body[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 12 + n;
    }
    let mut fewer = body[..at].to_vec();
    fewer[8..12].copy_from_slice(&(count - 1).to_le_bytes());
    let replay = Replay::decode(&reseal(fewer), &meta).unwrap();
    assert!(read_pyramid(&replay).await.is_err());

    // The header's bytes altered: the parser says so, as of a file.
    let mut altered = body.to_vec();
    assert_eq!(u64::from_le_bytes(altered[12..20].try_into().unwrap()), 0);
    altered[24..26].copy_from_slice(b"XX");
    let replay = Replay::decode(&reseal(altered), &meta).unwrap();
    let e = read_pyramid(&replay).await.unwrap_err();
    assert!(e.message().contains("not a TIFF"), "{}", e.message());
}
