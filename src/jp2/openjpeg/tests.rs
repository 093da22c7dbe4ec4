//! Tests of the OpenJPEG wrapper: codestreams made in the tests, and hostile ones.

use super::convert::ycc_to_rgb;
use super::*;
use std::sync::atomic::{AtomicU64, Ordering};

// -----------------------------------------------------------------------------------------
// Fixture encoder (OpenJPEG's own encoder, in memory)
// -----------------------------------------------------------------------------------------

/// Encoder options for [`encode_fixture`].
#[derive(Clone)]
pub(crate) struct Opts {
    pub(crate) tiled: Option<(u32, u32)>,
    pub(crate) resolutions: u32,
    pub(crate) lossless: bool,
    pub(crate) precincts: Option<(u32, u32)>,
    pub(crate) jp2_container: bool,
    pub(crate) irreversible: bool,
    /// Compression ratio when lossy.
    pub(crate) rate: f32,
    pub(crate) prec: u32,
    pub(crate) signed: bool,
    /// Image origin on the reference grid.
    pub(crate) origin: (u32, u32),
    pub(crate) tlm: bool,
    /// Mark the last component as alpha (2 or 4 channels).
    pub(crate) alpha: bool,
    pub(crate) color_space: Option<opj::COLOR_SPACE>,
    /// Split each tile into tile-parts by resolution (OpenJPEG's `-TP R`).
    pub(crate) tile_parts_by_resolution: bool,
    /// PLT marker segments: every packet's length in its tile-part's header.
    pub(crate) plt: bool,
    pub(crate) progression: opj::PROG_ORDER,
    /// Quality layers (lossy ones below the last, at ratios 4x and 2x `rate`).
    pub(crate) layers: u32,
    /// SOP markers before packets, EPH markers after packet headers.
    pub(crate) sop_eph: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            tiled: None,
            resolutions: 4,
            lossless: true,
            precincts: None,
            jp2_container: false,
            irreversible: false,
            rate: 10.0,
            prec: 8,
            signed: false,
            origin: (0, 0),
            tlm: false,
            alpha: false,
            color_space: None,
            tile_parts_by_resolution: false,
            plt: false,
            progression: opj::PROG_ORDER::OPJ_LRCP,
            layers: 1,
            sop_eph: false,
        }
    }
}

/// One component for [`encode_planes`]: `w x h` samples on a grid subsampled by `dx, dy`.
pub(crate) struct PlaneIn {
    pub(crate) dx: u32,
    pub(crate) dy: u32,
    pub(crate) data: Vec<i32>,
}

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

/// Encode interleaved samples (`channels` per pixel, values in the `opts.prec` range).
pub(crate) fn encode_fixture(
    width: u32,
    height: u32,
    channels: u32,
    pixels: &[i32],
    opts: &Opts,
) -> Vec<u8> {
    let n = channels as usize;
    assert_eq!(pixels.len(), (width * height) as usize * n);
    let planes: Vec<PlaneIn> = (0..n)
        .map(|c| PlaneIn {
            dx: 1,
            dy: 1,
            data: pixels.iter().skip(c).step_by(n).copied().collect(),
        })
        .collect();
    encode_planes(width, height, &planes, opts)
}

pub(crate) fn encode_planes(width: u32, height: u32, planes: &[PlaneIn], opts: &Opts) -> Vec<u8> {
    let n = planes.len();
    let (ox, oy) = opts.origin;
    unsafe {
        let mut parms: Vec<opj::opj_image_cmptparm_t> = planes
            .iter()
            .map(|p| opj::opj_image_cmptparm_t {
                dx: p.dx,
                dy: p.dy,
                w: (ox + width).div_ceil(p.dx) - ox.div_ceil(p.dx),
                h: (oy + height).div_ceil(p.dy) - oy.div_ceil(p.dy),
                x0: ox.div_ceil(p.dx),
                y0: oy.div_ceil(p.dy),
                prec: opts.prec,
                bpp: opts.prec,
                sgnd: opts.signed as u32,
            })
            .collect();
        let space = opts.color_space.unwrap_or(if n >= 3 {
            opj::COLOR_SPACE::OPJ_CLRSPC_SRGB
        } else {
            opj::COLOR_SPACE::OPJ_CLRSPC_GRAY
        });
        let image = opj::opj_image_create(n as u32, parms.as_mut_ptr(), space);
        assert!(!image.is_null());
        (*image).x0 = ox;
        (*image).y0 = oy;
        (*image).x1 = ox + width;
        (*image).y1 = oy + height;
        let comps = std::slice::from_raw_parts_mut((*image).comps, n);
        for (c, p) in comps.iter_mut().zip(planes) {
            assert_eq!((c.w * c.h) as usize, p.data.len(), "plane size");
            std::slice::from_raw_parts_mut(c.data, p.data.len()).copy_from_slice(&p.data);
        }
        if opts.alpha {
            comps[n - 1].alpha = 1;
        }

        let mut params: opj::opj_cparameters_t = std::mem::zeroed();
        opj::opj_set_default_encoder_parameters(&mut params);
        let layers = opts.layers.clamp(1, 3) as usize;
        params.tcp_numlayers = layers as c_int;
        params.cp_disto_alloc = 1;
        for l in 0..layers {
            let ratio = opts.rate * (1 << (layers - 1 - l)) as f32;
            params.tcp_rates[l] = if opts.lossless && l == layers - 1 {
                0.0
            } else {
                ratio
            };
        }
        params.prog_order = opts.progression;
        if opts.sop_eph {
            params.csty |= 0x02 | 0x04;
        }
        params.numresolution = opts.resolutions as c_int;
        params.irreversible = opts.irreversible as c_int;
        params.image_offset_x0 = ox as c_int;
        params.image_offset_y0 = oy as c_int;
        if let Some((tw, th)) = opts.tiled {
            params.tile_size_on = 1;
            params.cp_tdx = tw as c_int;
            params.cp_tdy = th as c_int;
        }
        if let Some((pw, ph)) = opts.precincts {
            params.csty |= 0x01;
            params.res_spec = 1;
            params.prcw_init[0] = pw as c_int;
            params.prch_init[0] = ph as c_int;
        }
        if opts.tile_parts_by_resolution {
            params.tp_on = 1;
            params.tp_flag = b'R' as c_char;
        }
        let same = planes.iter().all(|p| p.dx == 1 && p.dy == 1);
        params.tcp_mct = (n >= 3 && same) as c_char;

        let format = if opts.jp2_container {
            opj::CODEC_FORMAT::OPJ_CODEC_JP2
        } else {
            opj::CODEC_FORMAT::OPJ_CODEC_J2K
        };
        let codec = opj::opj_create_compress(format);
        assert!(!codec.is_null());
        assert_eq!(
            opj::opj_setup_encoder(codec, &mut params, image),
            1,
            "setup_encoder"
        );
        let mut extra = Vec::new();
        if opts.tlm {
            extra.push(c"TLM=YES".as_ptr());
        }
        if opts.plt {
            extra.push(c"PLT=YES".as_ptr());
        }
        if !extra.is_empty() {
            extra.push(ptr::null());
            assert_eq!(opj::opj_encoder_set_extra_options(codec, extra.as_ptr()), 1);
        }
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

// -----------------------------------------------------------------------------------------
// Test images and comparisons
// -----------------------------------------------------------------------------------------

/// A gradient with coloured squares and a 16-pixel checker, 8-bit, `channels` interleaved.
pub(crate) fn pattern(w: u32, h: u32, channels: u32) -> Vec<i32> {
    let mut v = Vec::with_capacity((w * h * channels) as usize);
    for y in 0..h {
        for x in 0..w {
            let mut rgb = [
                (x * 255 / w) as i32,
                (y * 255 / h) as i32,
                ((x + 2 * y) * 255 / (w + 2 * h)) as i32,
            ];
            if x >= w / 5 && x < w / 5 + w / 6 && y >= h / 4 && y < h / 4 + h / 5 {
                rgb = [230, 20, 30];
            }
            if x >= w / 2 && x < w / 2 + w / 7 && y >= h / 2 && y < h / 2 + h / 6 {
                rgb = [10, 200, 40];
            }
            if x >= 3 * w / 4 && y < h / 8 && ((x / 16 + y / 16) % 2 == 0) {
                rgb = [255, 255, 255];
            }
            let gray = (rgb[0] * 3 + rgb[1] * 6 + rgb[2]) / 10;
            let alpha = ((x * 7 + y * 3) % 256) as i32;
            match channels {
                1 => v.push(gray),
                2 => v.extend([gray, alpha]),
                3 => v.extend(rgb),
                _ => v.extend([rgb[0], rgb[1], rgb[2], alpha]),
            }
        }
    }
    v
}

fn to_u8(v: &[i32]) -> Vec<u8> {
    v.iter().map(|&s| s as u8).collect()
}

fn crop(src: &[u8], w: u32, ch: u32, x: u32, y: u32, cw: u32, chh: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for yy in y..y + chh {
        let row = ((yy * w + x) * ch) as usize;
        out.extend_from_slice(&src[row..row + (cw * ch) as usize]);
    }
    out
}

/// Box average over 2^r x 2^r blocks, output ceil(w / 2^r) x ceil(h / 2^r).
fn box_down(src: &[u8], w: u32, h: u32, ch: u32, r: u32) -> (u32, u32, Vec<u8>) {
    let s = 1u32 << r;
    let (ow, oh) = (w.div_ceil(s), h.div_ceil(s));
    let mut out = Vec::new();
    for oy in 0..oh {
        for ox in 0..ow {
            for c in 0..ch {
                let (mut sum, mut cnt) = (0u32, 0u32);
                for y in oy * s..((oy + 1) * s).min(h) {
                    for x in ox * s..((ox + 1) * s).min(w) {
                        sum += u32::from(src[((y * w + x) * ch + c) as usize]);
                        cnt += 1;
                    }
                }
                out.push(((sum + cnt / 2) / cnt) as u8);
            }
        }
    }
    (ow, oh, out)
}

fn mad(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    sum as f64 / a.len() as f64
}

fn req(reduce: u32, area: Option<(u32, u32, u32, u32)>) -> DecodeRequest {
    DecodeRequest {
        reduce,
        area,
        ..DecodeRequest::default()
    }
}

struct Counting {
    data: Vec<u8>,
    bytes: AtomicU64,
}

impl ReadAt for Counting {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.data.read_at(offset, buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Deterministic xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

// -----------------------------------------------------------------------------------------
// Tests
// -----------------------------------------------------------------------------------------

#[test]
fn sniff_formats() {
    assert!(sniff(&JP2_MAGIC));
    assert!(sniff(&[0xFF, 0x4F, 0xFF, 0x51, 0x00]));
    assert!(!sniff(&[0xFF, 0x4F, 0xFF]));
    assert!(!sniff(b""));
    assert!(!sniff(b"\x89PNG\r\n\x1a\n"));
    let px = pattern(16, 16, 3);
    let j2k = encode_fixture(16, 16, 3, &px, &Opts::default());
    let jp2 = encode_fixture(
        16,
        16,
        3,
        &px,
        &Opts {
            jp2_container: true,
            ..Opts::default()
        },
    );
    assert!(sniff(&j2k) && sniff(&jp2));
    assert_eq!(codec_format(&j2k), Some(opj::CODEC_FORMAT::OPJ_CODEC_J2K));
    assert_eq!(codec_format(&jp2), Some(opj::CODEC_FORMAT::OPJ_CODEC_JP2));
}

#[test]
fn lossless_untiled_j2k_and_jp2_exact() {
    let (w, h) = (97, 61);
    let px = pattern(w, h, 3);
    for jp2 in [false, true] {
        let file = encode_fixture(
            w,
            h,
            3,
            &px,
            &Opts {
                jp2_container: jp2,
                ..Opts::default()
            },
        );
        let out = decode(file.as_slice(), &req(0, None)).unwrap();
        assert_eq!((out.width, out.height, out.channels), (w, h, 3));
        assert!(out.data == to_u8(&px), "jp2={jp2}");
        // An explicit full area is the same.
        let full = decode(file.as_slice(), &req(0, Some((0, 0, w, h)))).unwrap();
        assert_eq!(full, out);
    }
}

#[test]
fn tiled_area_exact() {
    let (w, h) = (300, 200);
    let px = pattern(w, h, 3);
    let src = to_u8(&px);
    for jp2 in [false, true] {
        let opts = Opts {
            tiled: Some((64, 64)),
            jp2_container: jp2,
            ..Opts::default()
        };
        let file = encode_fixture(w, h, 3, &px, &opts);
        let out = decode(file.as_slice(), &req(0, Some((70, 30, 100, 90)))).unwrap();
        assert_eq!((out.width, out.height), (100, 90));
        assert!(out.data == crop(&src, w, 3, 70, 30, 100, 90));
        // Whole image, tiled.
        let all = decode(file.as_slice(), &req(0, None)).unwrap();
        assert!(all.data == src);
        // An area running past the edge is clipped.
        let edge = decode(file.as_slice(), &req(0, Some((250, 180, 100, 100)))).unwrap();
        assert_eq!((edge.width, edge.height), (50, 20));
        assert!(edge.data == crop(&src, w, 3, 250, 180, 50, 20));
    }
}

#[test]
fn reduce_sizes_and_content() {
    let (w, h) = (301, 203);
    let px = pattern(w, h, 3);
    let src = to_u8(&px);
    let file = encode_fixture(
        w,
        h,
        3,
        &px,
        &Opts {
            tiled: Some((64, 64)),
            ..Opts::default()
        },
    );
    for r in [1, 2] {
        let out = decode(file.as_slice(), &req(r, None)).unwrap();
        let (ow, oh, expect) = box_down(&src, w, h, 3, r);
        assert_eq!((out.width, out.height), (ow, oh));
        assert_eq!((ow, oh), (w.div_ceil(1 << r), h.div_ceil(1 << r)));
        let d = mad(&out.data, &expect);
        assert!(d < 6.0, "reduce {r}: mean abs diff {d}");
    }
}

#[test]
fn reduce_is_clamped() {
    let (w, h) = (90, 70);
    let px = pattern(w, h, 1);
    let file = encode_fixture(
        w,
        h,
        1,
        &px,
        &Opts {
            resolutions: 3,
            ..Opts::default()
        },
    );
    assert_eq!(read_info(file.as_slice()).unwrap().resolutions, 3);
    let out = decode(file.as_slice(), &req(9, None)).unwrap();
    assert_eq!((out.width, out.height), (w.div_ceil(4), h.div_ceil(4)));
}

/// Area at a reduce: output covers ceil(x0/2^r)..ceil(x1/2^r) of the reduced image, equals
/// that crop of the whole image decoded at the same reduce, and is close to a box-filtered
/// crop of the source (mean absolute difference under `limit`).
#[allow(clippy::too_many_arguments)]
fn check_area_reduce_limit(
    file: &[u8],
    src: &[u8],
    w: u32,
    h: u32,
    ch: u32,
    area: (u32, u32, u32, u32),
    r: u32,
    limit: f64,
) {
    let out = decode(file, &req(r, Some(area))).unwrap();
    let s = 1u32 << r;
    let (x0, y0) = (area.0.div_ceil(s), area.1.div_ceil(s));
    let (x1, y1) = ((area.0 + area.2).div_ceil(s), (area.1 + area.3).div_ceil(s));
    assert_eq!(
        (out.width, out.height),
        (x1 - x0, y1 - y0),
        "area {area:?} reduce {r}"
    );
    let whole = decode(file, &req(r, None)).unwrap();
    assert!(
        out.data == crop(&whole.data, whole.width, ch, x0, y0, x1 - x0, y1 - y0),
        "area {area:?} reduce {r} differs from the whole decode"
    );
    let (dw, _, down) = box_down(src, w, h, ch, r);
    let expect = crop(&down, dw, ch, x0, y0, x1 - x0, y1 - y0);
    let d = mad(&out.data, &expect);
    assert!(d < limit, "area {area:?} reduce {r}: mean abs diff {d}");
}

fn check_area_reduce(
    file: &[u8],
    src: &[u8],
    w: u32,
    h: u32,
    ch: u32,
    area: (u32, u32, u32, u32),
    r: u32,
) {
    check_area_reduce_limit(file, src, w, h, ch, area, r, 6.0);
}

#[test]
fn area_and_reduce_tiled() {
    let (w, h) = (300, 200);
    let px = pattern(w, h, 3);
    let src = to_u8(&px);
    let file = encode_fixture(
        w,
        h,
        3,
        &px,
        &Opts {
            tiled: Some((64, 64)),
            ..Opts::default()
        },
    );
    check_area_reduce(&file, &src, w, h, 3, (70, 30, 100, 90), 1);
    check_area_reduce(&file, &src, w, h, 3, (70, 30, 100, 90), 2);
    check_area_reduce(&file, &src, w, h, 3, (128, 64, 128, 128), 1);
}

#[test]
fn area_and_reduce_untiled_precincts() {
    let (w, h) = (300, 200);
    let px = pattern(w, h, 3);
    let src = to_u8(&px);
    let opts = Opts {
        precincts: Some((32, 32)),
        resolutions: 5,
        ..Opts::default()
    };
    let file = encode_fixture(w, h, 3, &px, &opts);
    let exact = decode(file.as_slice(), &req(0, Some((70, 30, 100, 90)))).unwrap();
    assert!(exact.data == crop(&src, w, 3, 70, 30, 100, 90));
    check_area_reduce(&file, &src, w, h, 3, (70, 30, 100, 90), 1);
    check_area_reduce(&file, &src, w, h, 3, (33, 17, 200, 150), 2);
}

#[test]
fn image_origin_offset() {
    let (w, h) = (120, 80);
    let px = pattern(w, h, 3);
    let src = to_u8(&px);
    let opts = Opts {
        origin: (16, 32),
        tiled: Some((48, 48)),
        ..Opts::default()
    };
    let file = encode_fixture(w, h, 3, &px, &opts);
    let info = read_info(file.as_slice()).unwrap();
    assert_eq!((info.width, info.height), (w, h));
    let out = decode(file.as_slice(), &req(0, Some((10, 20, 50, 40)))).unwrap();
    assert_eq!((out.width, out.height), (50, 40));
    assert!(out.data == crop(&src, w, 3, 10, 20, 50, 40));
    let all = decode(file.as_slice(), &req(0, None)).unwrap();
    assert!(all.data == src);
}

#[test]
fn gray_and_gray_alpha() {
    let (w, h) = (70, 50);
    for ch in [1u32, 2] {
        let px = pattern(w, h, ch);
        let opts = Opts {
            alpha: ch == 2,
            jp2_container: true,
            ..Opts::default()
        };
        let file = encode_fixture(w, h, ch, &px, &opts);
        let info = read_info(file.as_slice()).unwrap();
        assert!(info.gray);
        assert_eq!(info.has_alpha, ch == 2);
        let out = decode(file.as_slice(), &req(0, None)).unwrap();
        assert_eq!(out.channels, ch as u8);
        assert!(out.data == to_u8(&px));
    }
}

/// `jp2` (one 8-bit component) with a palette of `colours` and its component mapping added
/// to the JP2 header box, and its colour space made sRGB.
fn with_palette(jp2: &[u8], colours: &[[u8; 3]], cmap: bool) -> Vec<u8> {
    let at = jp2.windows(4).position(|w| w == b"jp2h").unwrap() - 4;
    let len = u32::from_be_bytes(jp2[at..at + 4].try_into().unwrap()) as usize;
    let mut inner = jp2[at + 8..at + len].to_vec();
    let colr = inner.windows(4).position(|w| w == b"colr").unwrap();
    inner[colr + 7..colr + 11].copy_from_slice(&16u32.to_be_bytes());
    let mut pclr = (colours.len() as u16).to_be_bytes().to_vec();
    pclr.extend_from_slice(&[3, 7, 7, 7]);
    pclr.extend(colours.iter().flatten());
    let mapping: Vec<u8> = (0..3u8).flat_map(|i| [0, 0, 1, i]).collect();
    let mut boxes = vec![(b"pclr", pclr)];
    if cmap {
        boxes.push((b"cmap", mapping));
    }
    for (kind, body) in boxes {
        inner.extend_from_slice(&(8 + body.len() as u32).to_be_bytes());
        inner.extend_from_slice(kind);
        inner.extend_from_slice(&body);
    }
    let mut out = jp2[..at].to_vec();
    out.extend_from_slice(&(8 + inner.len() as u32).to_be_bytes());
    out.extend_from_slice(b"jp2h");
    out.extend_from_slice(&inner);
    out.extend_from_slice(&jp2[at + len..]);
    out
}

#[test]
fn palette_images_are_colour() {
    let (w, h) = (40, 30);
    let colours = [[255, 0, 0], [0, 128, 255], [10, 200, 30], [250, 250, 250]];
    let indices: Vec<i32> = (0..w * h).map(|i| ((i % w) / 10) as i32).collect();
    let opts = Opts {
        jp2_container: true,
        ..Opts::default()
    };
    let file = with_palette(&encode_fixture(w, h, 1, &indices, &opts), &colours, true);
    let info = read_info(file.as_slice()).unwrap();
    assert_eq!((info.components, info.palette_columns), (1, 3));
    assert!(!info.gray, "a palette of colours is not gray");
    let out = decode(file.as_slice(), &req(0, None)).unwrap();
    assert_eq!(out.channels, 3);
    for (i, px) in out.data.chunks(3).enumerate() {
        assert_eq!(px, colours[indices[i] as usize], "pixel {i}");
    }
    // Without the palette: gray. A palette without its component mapping is dropped by
    // OpenJPEG: gray too.
    let gray = encode_fixture(w, h, 1, &indices, &opts);
    let gray_info = read_info(gray.as_slice()).unwrap();
    assert!(gray_info.gray);
    assert_eq!(gray_info.palette_columns, 0);
    // The palette's expansion counts against the memory budget: 40x30 is 10,800 bytes as
    // one component, 27,600 with three columns.
    let tight = |max_bytes| DecodeRequest {
        max_bytes,
        ..req(0, None)
    };
    assert!(matches!(
        decode(file.as_slice(), &tight(20_000)),
        Err(Jp2Error::TooLarge(_))
    ));
    assert!(decode(file.as_slice(), &tight(30_000)).is_ok());
    // Told the column count (from read_info), decode budgets with it and does not look at
    // the file's boxes: told none, the same file fits 20,000.
    let told = |palette_columns| DecodeRequest {
        palette_columns: Some(palette_columns),
        ..tight(20_000)
    };
    assert!(matches!(
        decode(file.as_slice(), &told(info.palette_columns)),
        Err(Jp2Error::TooLarge(_))
    ));
    assert!(decode(file.as_slice(), &told(0)).is_ok());
    let no_cmap = with_palette(&gray, &colours, false);
    let no_cmap_info = read_info(no_cmap.as_slice()).unwrap();
    assert!(no_cmap_info.gray);
    assert_eq!(no_cmap_info.palette_columns, 0);
    assert_eq!(
        decode(no_cmap.as_slice(), &req(0, None)).unwrap().channels,
        1
    );
}

#[test]
fn rgba_alpha_comes_through() {
    let (w, h) = (70, 50);
    let px = pattern(w, h, 4);
    for jp2 in [false, true] {
        let opts = Opts {
            alpha: true,
            jp2_container: jp2,
            ..Opts::default()
        };
        let file = encode_fixture(w, h, 4, &px, &opts);
        let info = read_info(file.as_slice()).unwrap();
        assert!(info.has_alpha && !info.gray);
        assert_eq!(info.components, 4);
        let out = decode(file.as_slice(), &req(0, None)).unwrap();
        assert_eq!(out.channels, 4);
        assert!(out.data == to_u8(&px), "jp2={jp2}");
    }
}

#[test]
fn five_components_use_first_three() {
    let (w, h) = (40, 30);
    let rgb = pattern(w, h, 3);
    let mut px = Vec::new();
    for p in rgb.chunks(3) {
        px.extend_from_slice(p);
        px.extend([7, 9]);
    }
    let file = encode_fixture(w, h, 5, &px, &Opts::default());
    let out = decode(file.as_slice(), &req(0, None)).unwrap();
    assert_eq!(out.channels, 3);
    assert!(out.data == to_u8(&rgb));
}

#[test]
fn sixteen_and_twelve_bit_and_low_precision() {
    let (w, h) = (64, 40);
    let base = pattern(w, h, 3);
    // 16-bit: value * 257 plus a little noise; expected round(v * 255 / 65535).
    let px16: Vec<i32> = base
        .iter()
        .enumerate()
        .map(|(i, &v)| v * 257 + (i % 97) as i32)
        .collect();
    let file = encode_fixture(
        w,
        h,
        3,
        &px16,
        &Opts {
            prec: 16,
            ..Opts::default()
        },
    );
    assert_eq!(read_info(file.as_slice()).unwrap().precision, 16);
    let out = decode(file.as_slice(), &req(0, None)).unwrap();
    let expect: Vec<u8> = px16
        .iter()
        .map(|&v| ((v * 255 + 32767) / 65535) as u8)
        .collect();
    assert!(out.data == expect);
    assert!(
        out.data == to_u8(&base),
        "v*257 + small noise rounds back to v"
    );
    // 12-bit.
    let px12: Vec<i32> = base.iter().map(|&v| v * 16 + 5).collect();
    let file = encode_fixture(
        w,
        h,
        3,
        &px12,
        &Opts {
            prec: 12,
            ..Opts::default()
        },
    );
    let out = decode(file.as_slice(), &req(0, None)).unwrap();
    let expect: Vec<u8> = px12
        .iter()
        .map(|&v| ((v * 255 + 2047) / 4095) as u8)
        .collect();
    assert!(out.data == expect);
    // 4-bit gray scaled up: 15 -> 255, 1 -> 17.
    let px4: Vec<i32> = pattern(w, h, 1).iter().map(|&v| v >> 4).collect();
    let file = encode_fixture(
        w,
        h,
        1,
        &px4,
        &Opts {
            prec: 4,
            ..Opts::default()
        },
    );
    let out = decode(file.as_slice(), &req(0, None)).unwrap();
    let expect: Vec<u8> = px4.iter().map(|&v| (v * 17) as u8).collect();
    assert!(out.data == expect);
}

#[test]
fn signed_components() {
    let (w, h) = (50, 40);
    let base = pattern(w, h, 3);
    let signed: Vec<i32> = base.iter().map(|&v| v - 128).collect();
    let file = encode_fixture(
        w,
        h,
        3,
        &signed,
        &Opts {
            signed: true,
            ..Opts::default()
        },
    );
    let out = decode(file.as_slice(), &req(0, None)).unwrap();
    assert!(out.data == to_u8(&base));
}

#[test]
fn sycc_420_is_converted_and_upsampled() {
    let (w, h) = (40, 30);
    let rgb = to_u8(&pattern(w, h, 3));
    let mut yp = Vec::new();
    for p in rgb.chunks(3) {
        let (r, g, b) = (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
        yp.push((0.299 * r + 0.587 * g + 0.114 * b).round() as i32);
    }
    // Chroma planes at half resolution, from the top-left pixel of each 2x2 block.
    let (cw, chh) = (w.div_ceil(2), h.div_ceil(2));
    let (mut cb, mut cr) = (Vec::new(), Vec::new());
    for y in 0..chh {
        for x in 0..cw {
            let p = &rgb[(((2 * y) * w + 2 * x) * 3) as usize..][..3];
            let (r, g, b) = (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
            cb.push(
                (128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b)
                    .round()
                    .clamp(0.0, 255.0) as i32,
            );
            cr.push(
                (128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b)
                    .round()
                    .clamp(0.0, 255.0) as i32,
            );
        }
    }
    let planes = [
        PlaneIn {
            dx: 1,
            dy: 1,
            data: yp.clone(),
        },
        PlaneIn {
            dx: 2,
            dy: 2,
            data: cb.clone(),
        },
        PlaneIn {
            dx: 2,
            dy: 2,
            data: cr.clone(),
        },
    ];
    let opts = Opts {
        jp2_container: true,
        color_space: Some(opj::COLOR_SPACE::OPJ_CLRSPC_SYCC),
        ..Opts::default()
    };
    let file = encode_planes(w, h, &planes, &opts);
    let out = decode(file.as_slice(), &req(0, None)).unwrap();
    assert_eq!((out.width, out.height, out.channels), (w, h, 3));
    let mut expect = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let ci = ((y / 2) * cw + x / 2) as usize;
            let (r, g, b) = ycc_to_rgb(yp[(y * w + x) as usize] as u8, cb[ci] as u8, cr[ci] as u8);
            expect.extend([r, g, b]);
        }
    }
    assert!(
        out.data == expect,
        "exact sYCC -> RGB with nearest-neighbour chroma"
    );
    assert!(mad(&out.data, &rgb) < 6.0);
    // Raw codestream, no colour space: subsampled chroma is taken as YCC too.
    let file = encode_planes(w, h, &planes, &Opts::default());
    let out = decode(file.as_slice(), &req(0, None)).unwrap();
    assert!(out.data == expect);
    // An area and a reduce on subsampled components.
    let part = decode(file.as_slice(), &req(1, Some((5, 3, 20, 20)))).unwrap();
    assert_eq!((part.width, part.height), (10, 10));
}

#[test]
fn cmyk_is_unsupported() {
    let (w, h) = (20, 20);
    let px = pattern(w, h, 4);
    let opts = Opts {
        jp2_container: true,
        color_space: Some(opj::COLOR_SPACE::OPJ_CLRSPC_CMYK),
        ..Opts::default()
    };
    let file = encode_fixture(w, h, 4, &px, &opts);
    match decode(file.as_slice(), &req(0, None)) {
        Err(Jp2Error::Invalid(m)) => assert!(m.contains("colour space"), "{m}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn lossy_irreversible() {
    let (w, h) = (200, 150);
    let px = pattern(w, h, 3);
    let opts = Opts {
        lossless: false,
        irreversible: true,
        rate: 8.0,
        ..Opts::default()
    };
    let file = encode_fixture(w, h, 3, &px, &opts);
    let out = decode(file.as_slice(), &req(0, None)).unwrap();
    let d = mad(&out.data, &to_u8(&px));
    assert!(d < 4.0, "mean abs diff {d}");
}

#[test]
fn read_info_reports_header() {
    let (w, h) = (300, 200);
    let px = pattern(w, h, 3);
    let opts = Opts {
        tiled: Some((64, 32)),
        resolutions: 5,
        jp2_container: true,
        ..Opts::default()
    };
    let file = encode_fixture(w, h, 3, &px, &opts);
    let info = read_info(file.as_slice()).unwrap();
    assert_eq!(
        info,
        Jp2Info {
            width: 300,
            height: 200,
            components: 3,
            precision: 8,
            resolutions: 5,
            tile_width: 64,
            tile_height: 32,
            tiles_x: 5,
            tiles_y: 7,
            has_alpha: false,
            gray: false,
            palette_columns: 0,
        }
    );
    let untiled = encode_fixture(w, h, 3, &px, &Opts::default());
    let info = read_info(untiled.as_slice()).unwrap();
    assert_eq!(
        (
            info.tile_width,
            info.tile_height,
            info.tiles_x,
            info.tiles_y
        ),
        (300, 200, 1, 1)
    );
    assert_eq!(info.resolutions, 4);
}

#[test]
fn area_decode_reads_a_fraction_of_a_tiled_file() {
    let (w, h) = (1024, 1024);
    // Noise keeps the file big (about 0.8 MB at ratio 4), like a real photograph.
    let mut rng = Rng(42);
    let px: Vec<i32> = pattern(w, h, 3)
        .iter()
        .map(|&v| (v + (rng.next() % 24) as i32).min(255))
        .collect();
    let opts = Opts {
        tiled: Some((128, 128)),
        lossless: false,
        rate: 4.0,
        tlm: true,
        ..Opts::default()
    };
    let file = encode_fixture(w, h, 3, &px, &opts);
    let total = file.len() as u64;
    let src = Counting {
        data: file,
        bytes: AtomicU64::new(0),
    };
    let info = read_info(&src).unwrap();
    assert_eq!((info.tiles_x, info.tiles_y), (8, 8));
    let header_bytes = src.bytes.swap(0, Ordering::Relaxed);
    assert!(
        header_bytes <= STREAM_BUFFER as u64 + 12 + super::SIZ_CHECK_BYTES as u64,
        "read_info read {header_bytes}"
    );
    let out = decode(&src, &req(0, Some((384, 512, 128, 128)))).unwrap();
    assert_eq!((out.width, out.height), (128, 128));
    let read = src.bytes.load(Ordering::Relaxed);
    assert!(read * 10 < total * 3, "read {read} of {total} bytes");
    let d = mad(&out.data, &crop(&to_u8(&px), w, 3, 384, 512, 128, 128));
    assert!(d < 6.0, "mean abs diff {d}");
    eprintln!("TLM, J2K: read {read} of {total}");
    // The same in a JP2 container (opj_end_decompress must not read on to the end).
    let jp2 = encode_fixture(
        w,
        h,
        3,
        &px,
        &Opts {
            jp2_container: true,
            ..opts.clone()
        },
    );
    let total = jp2.len() as u64;
    let src = Counting {
        data: jp2,
        bytes: AtomicU64::new(0),
    };
    let out2 = decode(&src, &req(0, Some((384, 512, 128, 128)))).unwrap();
    assert_eq!(out2, out);
    let read = src.bytes.load(Ordering::Relaxed);
    eprintln!("TLM, JP2: read {read} of {total}");
    assert!(read * 10 < total * 3, "JP2: read {read} of {total} bytes");
    // Same file without TLM markers: OpenJPEG walks the tile headers with skips.
    let opts = Opts { tlm: false, ..opts };
    let file = encode_fixture(w, h, 3, &px, &opts);
    let total = file.len() as u64;
    let src = Counting {
        data: file,
        bytes: AtomicU64::new(0),
    };
    decode(&src, &req(0, Some((384, 512, 128, 128)))).unwrap();
    let read = src.bytes.load(Ordering::Relaxed);
    eprintln!("no TLM: read {read} of {total}");
    assert!(read < total, "read {read} of {total} bytes");
}

#[test]
fn threads_give_the_same_pixels() {
    let (w, h) = (256, 192);
    let px = pattern(w, h, 3);
    let file = encode_fixture(
        w,
        h,
        3,
        &px,
        &Opts {
            tiled: Some((64, 64)),
            ..Opts::default()
        },
    );
    let one = decode(file.as_slice(), &req(0, None)).unwrap();
    let four = decode(
        file.as_slice(),
        &DecodeRequest {
            threads: 4,
            ..req(0, None)
        },
    )
    .unwrap();
    assert_eq!(one, four);
    assert!(one.data == to_u8(&px));
    // And from several Rust threads at once.
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let file = &file;
                s.spawn(move || {
                    decode(
                        file.as_slice(),
                        &DecodeRequest {
                            threads: i,
                            ..req(1, None)
                        },
                    )
                    .unwrap()
                })
            })
            .collect();
        let outs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(outs.windows(2).all(|p| p[0] == p[1]));
    });
}

#[test]
fn budget_is_checked_before_decoding() {
    let (w, h) = (300, 200);
    let px = pattern(w, h, 3);
    let file = encode_fixture(
        w,
        h,
        3,
        &px,
        &Opts {
            tiled: Some((64, 64)),
            ..Opts::default()
        },
    );
    // Region buffers 3 * 4 * 60000 + tile 3 * 4 * 4096 + output 180000 = 949152.
    let need = 3 * 4 * (300 * 200) + 3 * 4 * (64 * 64) + 3 * 300 * 200;
    let src = Counting {
        data: file.clone(),
        bytes: AtomicU64::new(0),
    };
    let tight = DecodeRequest {
        max_bytes: need - 1,
        ..req(0, None)
    };
    match decode(&src, &tight) {
        Err(Jp2Error::TooLarge(m)) => assert!(!m.contains('\n')),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // Only the header was read (the sniff, the SIZ check, then one stream buffer): no tile data.
    assert!(
        src.bytes.load(Ordering::Relaxed)
            <= STREAM_BUFFER as u64 + 12 + super::SIZ_CHECK_BYTES as u64
    );
    let exact = DecodeRequest {
        max_bytes: need,
        ..req(0, None)
    };
    assert!(decode(file.as_slice(), &exact).is_ok());
    // A reduce shrinks the need.
    let reduced = DecodeRequest {
        max_bytes: need / 3,
        ..req(1, None)
    };
    assert!(decode(file.as_slice(), &reduced).is_ok());
}

#[test]
fn bad_areas() {
    let px = pattern(40, 30, 1);
    let file = encode_fixture(40, 30, 1, &px, &Opts::default());
    for area in [
        (40, 0, 5, 5),
        (0, 30, 5, 5),
        (0, 0, 0, 5),
        (0, 0, 5, 0),
        (u32::MAX, 0, 1, 1),
    ] {
        assert!(
            matches!(
                decode(file.as_slice(), &req(0, Some(area))),
                Err(Jp2Error::Invalid(_))
            ),
            "{area:?}"
        );
    }
    let big = decode(file.as_slice(), &req(0, Some((39, 29, u32::MAX, u32::MAX)))).unwrap();
    assert_eq!((big.width, big.height), (1, 1));
}

#[test]
fn empty_and_garbage() {
    for bytes in [
        &b""[..],
        b"\0",
        b"hello world, not an image",
        &JP2_MAGIC,
        &J2K_MAGIC,
        &[0xFF; 64],
    ] {
        assert!(
            matches!(read_info(bytes), Err(Jp2Error::Invalid(_))),
            "{bytes:?}"
        );
        let err = decode(bytes, &req(0, None)).unwrap_err();
        assert!(matches!(err, Jp2Error::Invalid(_)));
        assert!(!err.to_string().contains('\n'));
    }
    // A JP2 signature followed by noise.
    let mut rng = Rng(7);
    let mut noise = JP2_MAGIC.to_vec();
    noise.extend((0..4000).map(|_| rng.next() as u8));
    assert!(decode(noise.as_slice(), &req(0, None)).is_err());
    let mut noise = J2K_MAGIC.to_vec();
    noise.extend((0..4000).map(|_| rng.next() as u8));
    assert!(decode(noise.as_slice(), &req(0, None)).is_err());
}

#[test]
fn io_errors_are_reported() {
    struct Failing(Vec<u8>);
    impl ReadAt for Failing {
        fn len(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
            if offset >= 12 {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(12 - offset as usize);
            self.0.read_at(offset, &mut buf[..n])
        }
    }
    let px = pattern(40, 30, 3);
    let file = encode_fixture(40, 30, 3, &px, &Opts::default());
    match decode(&Failing(file), &req(0, None)) {
        Err(Jp2Error::Io(m)) => assert!(m.contains("disk on fire"), "{m}"),
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn lying_and_panicking_readers() {
    struct Lying(Vec<u8>, u64);
    impl ReadAt for Lying {
        fn len(&self) -> u64 {
            self.1
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read_at(offset, buf)
        }
    }
    struct Panicking(Vec<u8>);
    impl ReadAt for Panicking {
        fn len(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
            assert!(offset < 12, "reader bug");
            let n = buf.len().min(12);
            self.0.read_at(offset, &mut buf[..n])
        }
    }
    let px = pattern(40, 30, 3);
    let file = encode_fixture(40, 30, 3, &px, &Opts::default());
    // Claims the whole length but holds only half: the missing bytes are an I/O error.
    let half = Lying(file[..file.len() / 2].to_vec(), file.len() as u64);
    match decode(&half, &req(0, None)).map(|d| d.width) {
        Err(Jp2Error::Io(m)) => assert!(m.contains("unexpected end"), "{m}"),
        other => panic!("expected Io, got {other:?}"),
    }
    // Claims more than the file: harmless, the codestream ends before.
    let long = Lying(file.clone(), file.len() as u64 + 100_000);
    assert!(decode(&long, &req(0, None)).unwrap().data == to_u8(&px));
    // A panic inside the read callback is caught at the C boundary.
    match decode(&Panicking(file), &req(0, None)).map(|d| d.width) {
        Err(Jp2Error::Io(m)) => assert!(m.contains("panicked"), "{m}"),
        other => panic!("expected Io, got {other:?}"),
    }
}

fn hostile_fixtures() -> Vec<Vec<u8>> {
    let (w, h) = (48, 40);
    let px = pattern(w, h, 3);
    let tiled = Opts {
        tiled: Some((16, 16)),
        resolutions: 3,
        ..Opts::default()
    };
    vec![
        encode_fixture(w, h, 3, &px, &tiled),
        encode_fixture(
            w,
            h,
            3,
            &px,
            &Opts {
                jp2_container: true,
                ..tiled.clone()
            },
        ),
        encode_fixture(
            w,
            h,
            4,
            &pattern(w, h, 4),
            &Opts {
                jp2_container: true,
                alpha: true,
                ..Opts::default()
            },
        ),
        encode_fixture(
            w,
            h,
            3,
            &px,
            &Opts {
                lossless: false,
                irreversible: true,
                precincts: Some((16, 16)),
                ..Opts::default()
            },
        ),
        include_bytes!("../../../tests/fixtures/htj2k/ht_rgb_64x48_lossless.j2c").to_vec(),
    ]
}

fn try_all(bytes: &[u8]) {
    let small = DecodeRequest {
        max_bytes: 64 << 20,
        ..req(0, None)
    };
    if let Ok(out) = decode(bytes, &small) {
        assert_eq!(
            out.data.len(),
            (out.width * out.height * u32::from(out.channels)) as usize
        );
    }
    let _ = decode(
        bytes,
        &DecodeRequest {
            reduce: 1,
            area: Some((5, 5, 20, 20)),
            ..small
        },
    );
    let _ = read_info(bytes);
}

#[test]
fn truncated_files_never_panic() {
    for file in hostile_fixtures() {
        let n = file.len();
        let mut lengths: Vec<usize> = (0..n.min(200)).collect();
        lengths.extend((200..n).step_by((n / 40).max(1)));
        lengths.push(n - 1);
        for len in lengths {
            let cut = &file[..len];
            if len < n - 2 {
                // Strict mode: a codestream cut before its end is an error.
                let r = decode(cut, &req(0, None));
                assert!(r.is_err() || len > 100, "cut at {len} of {n} decoded");
            }
            try_all(cut);
        }
    }
}

#[test]
fn byte_flips_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let fixtures = hostile_fixtures();
    let mut ok = 0;
    for i in 0..400 {
        let mut file = fixtures[i % fixtures.len()].clone();
        let flips = 1 + rng.next() % 4;
        for _ in 0..flips {
            // Mostly in the headers, where flips do the most damage.
            let span = if rng.next().is_multiple_of(2) {
                file.len().min(200)
            } else {
                file.len()
            };
            let at = (rng.next() % span as u64) as usize;
            file[at] ^= 1 << (rng.next() % 8);
        }
        if decode(file.as_slice(), &req(0, None)).is_ok() {
            ok += 1;
        }
        try_all(&file);
    }
    eprintln!("{ok} of 400 flipped files still decoded");
}

/// The HTJ2K fixtures' pixels (see fixtures/make_htj2k.py).
fn ht_expected(w: u32, h: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let mut p = [
                ((x * 4) % 256) as u8,
                ((y * 5) % 256) as u8,
                (((x + y) * 3) % 256) as u8,
            ];
            if (8..24).contains(&y) && (10..30).contains(&x) {
                p = [255, 0, 0];
            }
            if (30..44).contains(&y) && (40..60).contains(&x) {
                p = [0, 0, 255];
            }
            v.extend(p);
        }
    }
    v
}

#[test]
fn htj2k_lossless_rgb_and_gray() {
    let rgb = include_bytes!("../../../tests/fixtures/htj2k/ht_rgb_64x48_lossless.j2c");
    let gray = include_bytes!("../../../tests/fixtures/htj2k/ht_gray_64x48_lossless.j2c");
    // Rsiz has the HTJ2K bit (Part 15).
    assert_eq!(u16::from_be_bytes([rgb[6], rgb[7]]) & 0x4000, 0x4000);
    let expect = ht_expected(64, 48);
    let info = read_info(&rgb[..]).unwrap();
    // OpenJPH's "resolutions=4" is 4 decomposition levels: 5 resolution levels.
    assert_eq!(
        (info.width, info.height, info.components, info.resolutions),
        (64, 48, 3, 5)
    );
    let out = decode(&rgb[..], &req(0, None)).unwrap();
    assert_eq!((out.width, out.height, out.channels), (64, 48, 3));
    assert!(out.data == expect);
    let part = decode(&rgb[..], &req(0, Some((8, 6, 30, 20)))).unwrap();
    assert!(part.data == crop(&expect, 64, 3, 8, 6, 30, 20));
    // Reduced decodes: the reversible 5/3 DWT and RCT are exact integer transforms, so the
    // same image coded by OpenJPEG (Part 1 code-blocks, same tiling and levels) must give
    // identical pixels at every reduce, with or without an area.
    let part1 = same_image_part1(&expect, 64, 48, None, 5);
    for r in 0..5 {
        for area in [None, Some((9, 7, 41, 30)), Some((40, 30, 24, 18))] {
            assert_eq!(
                decode(&rgb[..], &req(r, area)).unwrap(),
                decode(&part1, &req(r, area)).unwrap()
            );
        }
    }
    let g = decode(&gray[..], &req(0, None)).unwrap();
    assert_eq!(g.channels, 1);
    let expect_g: Vec<u8> = expect.chunks(3).map(|p| p[1]).collect();
    assert!(g.data == expect_g);
}

#[test]
fn htj2k_tiled_areas() {
    let file = include_bytes!("../../../tests/fixtures/htj2k/ht_rgb_96x80_tiled32_lossless.j2c");
    let expect = ht_expected(96, 80);
    let info = read_info(&file[..]).unwrap();
    assert_eq!(
        (
            info.tile_width,
            info.tile_height,
            info.tiles_x,
            info.tiles_y
        ),
        (32, 32, 3, 3)
    );
    assert_eq!(info.resolutions, 4);
    assert!(decode(&file[..], &req(0, None)).unwrap().data == expect);
    let part1 = same_image_part1(&expect, 96, 80, Some((32, 32)), 4);
    // Areas inside one tile, across tiles, and at the clipped last tiles.
    for area in [
        (3, 5, 20, 20),
        (20, 10, 40, 50),
        (33, 33, 30, 30),
        (70, 60, 26, 20),
    ] {
        let out = decode(&file[..], &req(0, Some(area))).unwrap();
        assert_eq!((out.width, out.height), (area.2, area.3));
        assert!(
            out.data == crop(&expect, 96, 3, area.0, area.1, area.2, area.3),
            "{area:?}"
        );
        for r in 1..4 {
            let ht = decode(&file[..], &req(r, Some(area))).unwrap();
            assert_eq!(
                ht,
                decode(&part1, &req(r, Some(area))).unwrap(),
                "{area:?} reduce {r}"
            );
            let whole = decode(&file[..], &req(r, None)).unwrap();
            let s = 1 << r;
            let (x0, y0) = (area.0.div_ceil(s), area.1.div_ceil(s));
            let (x1, y1) = ((area.0 + area.2).div_ceil(s), (area.1 + area.3).div_ceil(s));
            assert!(ht.data == crop(&whole.data, whole.width, 3, x0, y0, x1 - x0, y1 - y0));
        }
    }
}

/// The HTJ2K fixture's image coded by OpenJPEG (Part 1 code-blocks), lossless, RCT.
fn same_image_part1(
    rgb: &[u8],
    w: u32,
    h: u32,
    tiled: Option<(u32, u32)>,
    resolutions: u32,
) -> Vec<u8> {
    let px: Vec<i32> = rgb.iter().map(|&v| i32::from(v)).collect();
    encode_fixture(
        w,
        h,
        3,
        &px,
        &Opts {
            tiled,
            resolutions,
            ..Opts::default()
        },
    )
}

#[test]
fn stream_callbacks_semantics() {
    let data = vec![1u8, 2, 3, 4, 5];
    let mut ctx = StreamCtx {
        src: &data,
        pos: 0,
        len: 5,
        io_error: None,
    };
    let user = (&mut ctx as *mut StreamCtx<'_>).cast::<c_void>();
    let mut buf = [0u8; 8];
    unsafe {
        assert_eq!(stream_read(buf.as_mut_ptr().cast(), 3, user), 3);
        assert_eq!(&buf[..3], &[1, 2, 3]);
        assert_eq!(stream_read(buf.as_mut_ptr().cast(), 8, user), 2);
        assert_eq!(stream_read(buf.as_mut_ptr().cast(), 8, user), usize::MAX);
        assert_eq!(stream_skip(1, user), -1, "skip at the end cannot move");
        assert_eq!(stream_skip(-2, user), -2);
        assert_eq!(stream_skip(10, user), 2, "clamped to the end");
        assert_eq!(stream_skip(-10, user), -5, "clamped to the start");
        assert_eq!(stream_seek(5, user), 1);
        assert_eq!(stream_seek(6, user), 0);
        assert_eq!(stream_seek(-1, user), 0);
        assert_eq!(stream_seek(1, user), 1);
        assert_eq!(stream_read(buf.as_mut_ptr().cast(), 1, user), 1);
        assert_eq!(buf[0], 2);
    }
}

#[test]
fn messages_are_one_line() {
    assert_eq!(one_line("  Error: bad\n\tthing\r\n"), "Error: bad thing");
    assert!(one_line(&"x".repeat(1000)).len() <= MAX_MESSAGE + 3);
    let e = Jp2Error::Invalid("a\nb".into());
    assert_eq!(e.to_string(), "invalid JPEG 2000: a b");
}

/// A lossless, tiled (128) JP2 of 4 resolutions of a `w` x `h` RGB pattern, with TLM
/// markers, and its pixels: a fixture for the service's tests.
pub(crate) fn tiled_rgb_fixture(w: u32, h: u32) -> (Vec<u8>, Vec<u8>) {
    let src = pattern(w, h, 3);
    let opts = Opts {
        tiled: Some((128, 128)),
        resolutions: 4,
        jp2_container: true,
        tlm: true,
        ..Opts::default()
    };
    (encode_fixture(w, h, 3, &src, &opts), to_u8(&src))
}

/// The examples that stood in the doc comments of these crate-private items.
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    #[test]
    fn doc_jp2_16() {
        use crate::jp2::{self, DecodeRequest};

        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/htj2k/ht_gray_64x48_lossless.j2c"
        );
        let file = std::fs::read(path).unwrap();
        assert!(jp2::sniff(&file));
        let info = jp2::read_info(file.as_slice()).unwrap();
        assert_eq!((info.width, info.height, info.gray), (64, 48, true));
        let req = DecodeRequest {
            reduce: 1,
            area: Some((0, 0, 32, 32)),
            ..DecodeRequest::default()
        };
        let out = jp2::decode(file.as_slice(), &req).unwrap();
        assert_eq!((out.width, out.height, out.channels), (16, 16, 1));
    }

    #[test]
    fn doc_jp2_readat_65() {
        use crate::source::read_at::ReadAt;
        let data = vec![1u8, 2, 3, 4];
        let mut buf = [0u8; 8];
        assert_eq!(data.read_at(1, &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], &[2, 3, 4]);
        assert_eq!(data.read_at(4, &mut buf).unwrap(), 0);
        assert_eq!(ReadAt::len(&data), 4);
    }

    #[test]
    fn doc_jp2_jp2error_148() {
        use crate::jp2::{self, Jp2Error};
        let err = jp2::read_info(&b"GIF89a"[..]).unwrap_err();
        assert!(matches!(err, Jp2Error::Invalid(_)));
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn doc_jp2_decoderequest_211() {
        use crate::jp2::DecodeRequest;
        let req = DecodeRequest {
            reduce: 2,
            area: Some((512, 0, 1024, 1024)),
            ..Default::default()
        };
        assert_eq!(req.threads, 1);
    }

    #[test]
    fn doc_jp2_sniff_265() {
        use crate::jp2::sniff;
        assert!(sniff(&[0xFF, 0x4F, 0xFF, 0x51, 0, 0x2F]));
        assert!(sniff(b"\0\0\0\x0CjP  \r\n\x87\n\0\0\0\x14ftyp"));
        assert!(!sniff(b"\xFF\xD8\xFF\xE0"));
    }

    #[test]
    fn doc_jp2_read_info_281() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/htj2k/ht_rgb_64x48_lossless.j2c"
        );
        let file = std::fs::read(path).unwrap();
        let info = crate::jp2::read_info(file.as_slice()).unwrap();
        assert_eq!(
            (info.width, info.height, info.components, info.resolutions),
            (64, 48, 3, 5)
        );
    }

    #[test]
    fn doc_jp2_decode_356() {
        use crate::jp2::{self, DecodeRequest, Jp2Error};
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/htj2k/ht_rgb_64x48_lossless.j2c"
        );
        let file = std::fs::read(path).unwrap();
        let out = jp2::decode(file.as_slice(), &DecodeRequest::default()).unwrap();
        assert_eq!(
            (out.width, out.height, out.channels, out.data.len()),
            (64, 48, 3, 64 * 48 * 3)
        );
        let tiny = DecodeRequest {
            max_bytes: 1000,
            ..DecodeRequest::default()
        };
        assert!(matches!(
            jp2::decode(file.as_slice(), &tiny),
            Err(Jp2Error::TooLarge(_))
        ));
    }
}

/// A main header declaring more tile-components than the server reads is refused before
/// OpenJPEG allocates their coding parameters (60,000 tiles of three components took 700 MB),
/// in a raw codestream and in a JP2 file; an ordinary tiling passes.
#[test]
fn too_many_tile_components_are_refused_before_openjpeg_reads_them() {
    fn siz(tile: u32) -> Vec<u8> {
        let mut v = vec![0xFF, 0x4F, 0xFF, 0x51, 0, 47, 0, 0];
        for value in [300u32, 200, 0, 0, tile, tile, 0, 0] {
            v.extend_from_slice(&value.to_be_bytes());
        }
        v.extend_from_slice(&3u16.to_be_bytes());
        v.extend_from_slice(&[7, 1, 1, 7, 1, 1, 7, 1, 1]);
        v
    }
    let in_jp2 = |cs: &[u8]| {
        let mut v = super::JP2_MAGIC.to_vec();
        v.extend_from_slice(&[0, 0, 0, 20]);
        v.extend_from_slice(b"ftypjp2 \0\0\0\0jp2 ");
        v.extend_from_slice(&((cs.len() + 8) as u32).to_be_bytes());
        v.extend_from_slice(b"jp2c");
        v.extend_from_slice(cs);
        v
    };
    for file in [siz(1), in_jp2(&siz(1))] {
        let e = super::check_tile_components(&file.as_slice()).unwrap_err();
        assert!(e.to_string().contains("60000 tiles of 3 components"), "{e}");
        assert!(read_info(file.as_slice()).is_err());
    }
    for file in [siz(64), in_jp2(&siz(64))] {
        assert!(super::check_tile_components(&file.as_slice()).is_ok());
    }
}
