//! JPEG 2000 decoding through OpenJPEG (`openjpeg-sys`, which bundles OpenJPEG 2.5.3).
//!
//! Reads JP2 files and raw J2K codestreams, including HTJ2K (Part 15) codestreams, which
//! OpenJPEG 2.5 decodes. The file is never read whole: OpenJPEG pulls bytes through a
//! [`ReadAt`] with seeks, so a region of a tiled file (or one with TLM markers) costs only the
//! tiles it touches. [`decode`] decodes a region at a reduced resolution into 8-bit
//! interleaved pixels, after checking a byte budget.
//!
//! Safety model: every OpenJPEG handle (codec, stream, image, codestream info) is owned by a
//! small guard that destroys it on every path; every pointer from C is null-checked and every
//! size from the C structs is checked before a slice is made. OpenJPEG's messages go to
//! per-codec handlers (nothing is printed); the last error becomes the
//! [`Jp2Error::Invalid`] text. No global state is used, so decodes can run on any number of
//! threads at once.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::Mutex;

use openjpeg_sys as opj;

use crate::source::read_at::ReadAt;

/// Size of OpenJPEG's stream buffer: each refill reads this much (or up to the end).
const STREAM_BUFFER: usize = 16 * 1024;
/// The JP2 signature box.
const JP2_MAGIC: [u8; 12] = [
    0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A,
];
/// SOC followed by SIZ: the start of a raw codestream.
const J2K_MAGIC: [u8; 4] = [0xFF, 0x4F, 0xFF, 0x51];
/// Longest message kept from OpenJPEG, in characters.
const MAX_MESSAGE: usize = 240;
/// Code-block style bit of HT (Part 15) code-blocks (`J2K_CCP_CBLKSTY_HT`).
const CBLKSTY_HT: u32 = 0x40;
/// The most threads handed to OpenJPEG's pool.
const MAX_THREADS: u32 = 64;
/// Default byte budget of [`DecodeRequest::default`]: 512 MiB.
pub(crate) const DEFAULT_MAX_BYTES: u64 = 512 << 20;

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// Why a JPEG 2000 file could not be read or decoded. `Display` is one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jp2Error {
    /// A corrupt, truncated or unsupported file (OpenJPEG's last error message, if any).
    Invalid(String),
    /// Decoding would need more memory than [`DecodeRequest::max_bytes`].
    TooLarge(String),
    /// The [`ReadAt`] failed.
    Io(String),
}

impl fmt::Display for Jp2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, msg) = match self {
            Jp2Error::Invalid(m) => ("invalid JPEG 2000", m),
            Jp2Error::TooLarge(m) => ("JPEG 2000 decode too large", m),
            Jp2Error::Io(m) => ("I/O error reading JPEG 2000", m),
        };
        write!(f, "{what}: {}", one_line(msg))
    }
}

impl std::error::Error for Jp2Error {}

/// What the main header says about an image (see [`read_info`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jp2Info {
    /// Width on the reference grid (`x1 - x0` of the SIZ marker).
    pub width: u32,
    /// Height on the reference grid (`y1 - y0`).
    pub height: u32,
    /// Number of codestream components (before any JP2 palette expansion).
    pub components: u16,
    /// Bit depth of component 0.
    pub precision: u8,
    /// Resolution levels available: DWT levels + 1, the minimum over the components of the
    /// main header. [`DecodeRequest::reduce`] can be at most `resolutions - 1`.
    pub resolutions: u32,
    /// Tile width on the reference grid (the image width when untiled).
    pub tile_width: u32,
    /// Tile height on the reference grid (the image height when untiled).
    pub tile_height: u32,
    /// Number of tile columns.
    pub tiles_x: u32,
    /// Number of tile rows.
    pub tiles_y: u32,
    /// Whether [`decode`] will output an alpha channel (2 or 4 channels).
    pub has_alpha: bool,
    /// Whether [`decode`] will output gray (1 or 2 channels).
    pub gray: bool,
    /// Columns of the JP2 palette (`pclr` with `cmap`) that [`decode`] expands the one
    /// component into; 0 without a palette. Pass it on in
    /// [`DecodeRequest::palette_columns`] so that decoding need not look again.
    pub palette_columns: u8,
}

/// What to decode: a region at a resolution, with a thread count and a memory budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeRequest {
    /// Resolution levels to discard: the output is `ceil(full / 2^reduce)` (for an image at
    /// the grid origin). Values past `resolutions - 1` are clamped to it.
    pub reduce: u32,
    /// Region `(x, y, w, h)` in full-resolution pixels (relative to the image origin); `None`
    /// is the whole image. A region running past the edges is clipped to the image.
    pub area: Option<(u32, u32, u32, u32)>,
    /// Worker threads for OpenJPEG's own pool; 0 and 1 mean the calling thread only.
    pub threads: u32,
    /// Byte budget, checked before decoding: OpenJPEG's i32 component buffers for the region
    /// at that resolution (4 bytes per sample, every component), one tile's working buffers
    /// of the same kind, and the 8-bit output. Over it, [`Jp2Error::TooLarge`].
    pub max_bytes: u64,
    /// The palette's column count from an earlier [`read_info`] ([`Jp2Info::palette_columns`],
    /// 0 for none), counted in the budget. `None` makes [`decode`] read the JP2 header boxes
    /// again (the first 64 KiB of the file) to find it.
    pub palette_columns: Option<u8>,
}

impl Default for DecodeRequest {
    /// The whole image at full resolution, single-threaded, [`DEFAULT_MAX_BYTES`].
    fn default() -> Self {
        DecodeRequest {
            reduce: 0,
            area: None,
            threads: 1,
            max_bytes: DEFAULT_MAX_BYTES,
            palette_columns: None,
        }
    }
}

/// Decoded pixels: 8 bits per sample, interleaved, row-major, no row padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA.
    pub channels: u8,
    /// `width * height * channels` bytes.
    pub data: Vec<u8>,
    /// The ICC profile of a JP2 `colr` box (method 2 or 3), as OpenJPEG read it.
    pub icc_profile: Option<Vec<u8>>,
}

/// Whether `first_bytes` start a JPEG 2000 file this module reads: the JP2 signature box or a
/// raw codestream's SOC + SIZ markers (`FF 4F FF 51`).
pub(crate) fn sniff(first_bytes: &[u8]) -> bool {
    codec_format(first_bytes).is_some()
}

/// Read the main header (and JP2 header boxes): size, components, resolution levels, tiling.
///
/// `src` is any [`ReadAt`], sized or not (`&[u8]`, `&Vec<u8>`, `&dyn ReadAt`, ...).
///
/// Reads only the first bytes of the file (one stream buffer's worth, typically).
pub fn read_info<R: ReadAt + ?Sized>(src: &R) -> Result<Jp2Info, Jp2Error> {
    read_info_dyn(&src)
}

fn read_info_dyn(src: &dyn ReadAt) -> Result<Jp2Info, Jp2Error> {
    check_tile_components(src)?;
    let session = Session::open(src, 0)?;
    let header = session.header()?;
    let mut info = header.info();
    // A palette (JP2 `pclr` box) of three or more columns maps the one codestream component to
    // colour: OpenJPEG applies it while decoding.
    if info.components == 1 {
        info.palette_columns = palette_columns(src).unwrap_or(0);
        if info.palette_columns >= 3 {
            info.gray = false;
        }
    }
    Ok(info)
}

/// The number of columns of the JP2 palette (`pclr` box inside `jp2h`), if the file has one
/// within its first 64 KiB (where the JP2 header box is).
fn palette_columns(src: &dyn ReadAt) -> Option<u8> {
    let mut head = vec![0u8; src.len().min(64 << 10) as usize];
    let n = src.read_at(0, &mut head).ok()?;
    let head = &head[..n];
    if !head.starts_with(&JP2_MAGIC) {
        return None;
    }
    let jp2h = find_box(head, b"jp2h")?;
    let pclr = find_box(jp2h, b"pclr")?;
    // OpenJPEG drops a palette without its component mapping and decodes gray.
    find_box(jp2h, b"cmap")?;
    // NE (2 bytes), then NPC.
    pclr.get(2).copied()
}

/// The most tile-components (tiles times components) a codestream may have: OpenJPEG keeps
/// coding parameters of about 4 KiB for each as soon as it reads the main header (60,000 tiles
/// of three components took 700 MB), before any memory ceiling can be consulted.
pub(crate) const MAX_TILE_COMPONENTS: u64 = 1 << 16;

/// How much of the file [`check_tile_components`] reads: a raw codestream's SIZ marker is at
/// its start, a JP2 file's after its header boxes (a few hundred bytes, more with an ICC
/// profile; past this, the check is skipped).
pub(crate) const SIZ_CHECK_BYTES: usize = 4 << 10;

/// Refuse a codestream whose SIZ marker (in the first [`SIZ_CHECK_BYTES`]) declares more than
/// [`MAX_TILE_COMPONENTS`], before OpenJPEG sees it. A SIZ marker this reads no further than
/// its fields (out of reach, or invalid) is left to OpenJPEG, which refuses more than 65,535
/// tiles itself.
fn check_tile_components(src: &dyn ReadAt) -> Result<(), Jp2Error> {
    let mut head = vec![0u8; src.len().min(SIZ_CHECK_BYTES as u64) as usize];
    let n = src.read_at(0, &mut head).unwrap_or(0);
    let head = &head[..n];
    let codestream = match head.starts_with(&JP2_MAGIC) {
        true => boxes(head).find(|b| &b.0 == b"jp2c").map(|b| b.1),
        false => Some(0),
    };
    // SOC, SIZ, Lsiz, then the segment.
    let Some(siz) = codestream.and_then(|at| head.get(at..)) else {
        return Ok(());
    };
    if !siz.starts_with(&[0xFF, 0x4F, 0xFF, 0x51]) {
        return Ok(());
    }
    match siz
        .get(6..)
        .and_then(super::codestream::siz_tiles_and_components)
    {
        Some((tiles, c)) if tiles.saturating_mul(c) > MAX_TILE_COMPONENTS => {
            Err(Jp2Error::Invalid(format!(
                "{tiles} tiles of {c} components, more than this server reads \
                 ({MAX_TILE_COMPONENTS} tile-components)"
            )))
        }
        _ => Ok(()),
    }
}

/// The boxes that start inside `bytes`, in order: each one's type, where its contents start
/// and where it ends (perhaps past `bytes`). Ends after a box of length 0 (the last one) and
/// at a length shorter than its own header.
fn boxes(bytes: &[u8]) -> impl Iterator<Item = ([u8; 4], usize, usize)> + '_ {
    let mut next = Some(0usize);
    std::iter::from_fn(move || {
        let at = next.take()?;
        let head = bytes.get(at..at.checked_add(8)?)?;
        let kind: [u8; 4] = head[4..8].try_into().ok()?;
        let (header, len) = match u32::from_be_bytes(head[..4].try_into().ok()?) {
            0 => (8, bytes.len() - at),
            1 => {
                let x = u64::from_be_bytes(bytes.get(at + 8..at + 16)?.try_into().ok()?);
                (16, usize::try_from(x).ok()?)
            }
            n => (8, n as usize),
        };
        if len < header {
            return None;
        }
        let end = at.checked_add(len)?;
        next = (u32::from_be_bytes(head[..4].try_into().ok()?) != 0).then_some(end);
        Some((kind, at + header, end))
    })
}

/// The contents of the first box of type `kind` among the boxes that fill `bytes` (only boxes
/// whole inside `bytes`).
fn find_box<'a>(bytes: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    let (_, start, end) = boxes(bytes)
        .take_while(|b| b.2 <= bytes.len())
        .find(|b| &b.0 == kind)?;
    bytes.get(start..end)
}

/// Decode a region of `src` at a reduced resolution into 8-bit interleaved pixels.
///
/// Gray, gray + alpha, RGB and RGBA come out as 1 to 4 channels (more than four components:
/// the first three, plus the fourth if it is alpha). sYCC is converted to RGB (BT.601 full
/// range), subsampled components are upsampled by nearest neighbour, other bit depths are
/// scaled to 8 bits and signed components are shifted to unsigned. CMYK and e-YCC are
/// [`Jp2Error::Invalid`].
pub fn decode<R: ReadAt + ?Sized>(src: &R, req: &DecodeRequest) -> Result<Decoded, Jp2Error> {
    decode_dyn(&src, req)
}

fn decode_dyn(src: &dyn ReadAt, req: &DecodeRequest) -> Result<Decoded, Jp2Error> {
    check_tile_components(src)?;
    let session = Session::open(src, req.threads)?;
    let header = session.header()?;
    match header.color_space {
        opj::COLOR_SPACE::OPJ_CLRSPC_CMYK => {
            return Err(Jp2Error::Invalid("unsupported colour space CMYK".into()));
        }
        opj::COLOR_SPACE::OPJ_CLRSPC_EYCC => {
            return Err(Jp2Error::Invalid("unsupported colour space e-YCC".into()));
        }
        _ => {}
    }
    let reduce = req.reduce.min(header.resolutions - 1);

    // The region on the reference grid.
    let (width, height) = (header.x1 - header.x0, header.y1 - header.y0);
    let (x, y, w, h) = req.area.unwrap_or((0, 0, width, height));
    if w == 0 || h == 0 {
        return Err(Jp2Error::Invalid(format!("empty region {x},{y},{w},{h}")));
    }
    if x >= width || y >= height {
        return Err(Jp2Error::Invalid(format!(
            "region {x},{y},{w},{h} is outside the {width}x{height} image"
        )));
    }
    let area = Rect {
        x0: header.x0 + x,
        y0: header.y0 + y,
        x1: header.x0 + x + w.min(width - x),
        y1: header.y0 + y + h.min(height - y),
    };

    // OpenJPEG 2.5.3 decodes HT code-blocks to the wrong buffer on its sub-tile (windowed)
    // path, which leaves the region black. Decode whole tiles instead and crop.
    let window = if header.ht {
        header.tile_aligned(&area)
    } else {
        area.clone()
    };
    // The output in component 0's coordinates at this reduce, as OpenJPEG would compute it.
    let c0 = &header.comps[0];
    let at = |v: u32, d: u32| ceil_div(ceil_div(v.into(), d.into()), 1u64 << reduce) as u32;
    let out = Rect {
        x0: at(area.x0, c0.dx),
        y0: at(area.y0, c0.dy),
        x1: at(area.x1, c0.dx),
        y1: at(area.y1, c0.dy),
    };

    let mut need = header.budget_bytes(&window, &area, reduce);
    // A palette: OpenJPEG expands the one component into one i32 component per column, and
    // the output has that many channels.
    let palette = || match req.palette_columns {
        Some(0) => None,
        Some(n) => Some(n),
        None => palette_columns(src),
    };
    if header.comps.len() == 1
        && let Some(n) = palette()
    {
        let c0 = &header.comps[0];
        let region = comp_samples(&window, c0.dx, c0.dy, reduce);
        let pixels = comp_samples(&area, c0.dx, c0.dy, reduce);
        need = need
            .saturating_add(region.saturating_mul(4 * u64::from(n)))
            .saturating_add(pixels.saturating_mul(u64::from(n.clamp(1, 4)) - 1));
    }
    if need > req.max_bytes {
        return Err(Jp2Error::TooLarge(format!(
            "decoding {}x{} at reduce {reduce} needs about {need} bytes, over the budget of {}",
            area.x1 - area.x0,
            area.y1 - area.y0,
            req.max_bytes
        )));
    }

    // SAFETY: the codec, stream and image are live handles owned by `session`; the image was
    // created by opj_read_header on this codec.
    unsafe {
        let codec = session.codec.raw;
        if reduce > 0 && opj::opj_set_decoded_resolution_factor(codec, reduce) == 0 {
            return Err(session.fail("cannot set the resolution"));
        }
        let as_i32 =
            |v: u32| i32::try_from(v).map_err(|_| Jp2Error::Invalid("image too large".into()));
        if opj::opj_set_decode_area(
            codec,
            session.image.0,
            as_i32(window.x0)?,
            as_i32(window.y0)?,
            as_i32(window.x1)?,
            as_i32(window.y1)?,
        ) == 0
        {
            return Err(session.fail("cannot set the decode area"));
        }
        if opj::opj_decode(codec, session.stream.raw, session.image.0) == 0 {
            return Err(session.fail("decode failed"));
        }
        // Reads what follows the codestream (JP2 boxes). The pixels are complete by now, so
        // a failure here (trailing garbage) does not lose the image.
        let _ = opj::opj_end_decompress(codec, session.stream.raw);
    }
    // SAFETY: the image is live and was filled by a successful opj_decode.
    unsafe { convert(session.image.0, &out, req.max_bytes) }
}

// ---------------------------------------------------------------------------------------------
// Sniffing, messages
// ---------------------------------------------------------------------------------------------

fn codec_format(bytes: &[u8]) -> Option<opj::CODEC_FORMAT> {
    if bytes.starts_with(&JP2_MAGIC) {
        Some(opj::CODEC_FORMAT::OPJ_CODEC_JP2)
    } else if bytes.starts_with(&J2K_MAGIC) {
        Some(opj::CODEC_FORMAT::OPJ_CODEC_J2K)
    } else {
        None
    }
}

/// Collapse whitespace and control characters to single spaces, trim, cap the length.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_MESSAGE + 3));
    let mut count = 0;
    for word in s
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
            count += 1;
        }
        for c in word.chars() {
            if count >= MAX_MESSAGE {
                out.push_str("...");
                return out;
            }
            out.push(c);
            count += 1;
        }
    }
    out
}

/// Messages OpenJPEG reported on one codec.
#[derive(Default)]
struct Messages {
    last_error: Option<String>,
    last_warning: Option<String>,
}

fn record_message(msg: *const c_char, user: *mut c_void, error: bool) {
    if msg.is_null() || user.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: OpenJPEG passes a NUL-terminated string; `user` is the `Mutex<Messages>`
        // owned by the `Codec` that installed this handler, alive until after the codec is
        // destroyed.
        let (text, sink) = unsafe { (CStr::from_ptr(msg), &*user.cast::<Mutex<Messages>>()) };
        let text = one_line(&text.to_string_lossy());
        if let Ok(mut m) = sink.lock() {
            if error {
                m.last_error = Some(text);
            } else {
                m.last_warning = Some(text);
            }
        }
    }));
}

unsafe extern "C" fn on_error(msg: *const c_char, user: *mut c_void) {
    record_message(msg, user, true);
}

unsafe extern "C" fn on_warning(msg: *const c_char, user: *mut c_void) {
    record_message(msg, user, false);
}

unsafe extern "C" fn on_info(_msg: *const c_char, _user: *mut c_void) {}

// ---------------------------------------------------------------------------------------------
// Handles
// ---------------------------------------------------------------------------------------------

/// A decompressor with its message sink. Destroyed (and the sink freed) on drop.
struct Codec {
    raw: *mut opj::opj_codec_t,
    messages: *mut Mutex<Messages>,
}

impl Codec {
    fn new(format: opj::CODEC_FORMAT) -> Result<Codec, Jp2Error> {
        let messages = Box::into_raw(Box::new(Mutex::new(Messages::default())));
        // SAFETY: plain constructor call.
        let raw = unsafe { opj::opj_create_decompress(format) };
        let codec = Codec { raw, messages };
        if raw.is_null() {
            return Err(Jp2Error::Invalid(
                "cannot create an OpenJPEG decoder".into(),
            ));
        }
        // SAFETY: `raw` is a live codec; `messages` outlives it (freed after the codec in
        // Drop), and the handlers only lock the mutex.
        unsafe {
            opj::opj_set_info_handler(raw, Some(on_info), messages.cast());
            opj::opj_set_warning_handler(raw, Some(on_warning), messages.cast());
            opj::opj_set_error_handler(raw, Some(on_error), messages.cast());
        }
        Ok(codec)
    }

    fn last_message(&self) -> Option<String> {
        // SAFETY: `messages` is live until Drop; access is through the mutex.
        let sink = unsafe { &*self.messages };
        let m = sink.lock().ok()?;
        m.last_error.clone().or_else(|| m.last_warning.clone())
    }
}

impl Drop for Codec {
    fn drop(&mut self) {
        // SAFETY: both were created in `new` and are freed exactly once here, the codec first
        // (it joins its worker threads, which may still report messages).
        unsafe {
            if !self.raw.is_null() {
                opj::opj_destroy_codec(self.raw);
            }
            drop(Box::from_raw(self.messages));
        }
    }
}

/// What the stream callbacks see: the source, a position and the length.
struct StreamCtx<'a> {
    src: &'a dyn ReadAt,
    pos: u64,
    len: u64,
    io_error: Option<String>,
}

/// An input stream reading from a borrowed [`ReadAt`]. The user data is owned on the Rust side
/// (no free function is given to OpenJPEG) and freed after the stream is destroyed.
struct Stream<'a> {
    raw: *mut opj::opj_stream_t,
    ctx: *mut StreamCtx<'a>,
    _src: PhantomData<&'a dyn ReadAt>,
}

impl<'a> Stream<'a> {
    fn new(src: &'a dyn ReadAt) -> Result<Stream<'a>, Jp2Error> {
        let len = src.len();
        let ctx = Box::into_raw(Box::new(StreamCtx {
            src,
            pos: 0,
            len,
            io_error: None,
        }));
        // SAFETY: plain constructor call.
        let raw = unsafe { opj::opj_stream_create(STREAM_BUFFER, 1) };
        let stream = Stream {
            raw,
            ctx,
            _src: PhantomData,
        };
        if raw.is_null() {
            return Err(Jp2Error::Invalid("cannot create an OpenJPEG stream".into()));
        }
        // SAFETY: `raw` is live; `ctx` stays valid until after opj_stream_destroy (Drop).
        unsafe {
            opj::opj_stream_set_read_function(raw, Some(stream_read));
            opj::opj_stream_set_skip_function(raw, Some(stream_skip));
            opj::opj_stream_set_seek_function(raw, Some(stream_seek));
            opj::opj_stream_set_user_data(raw, ctx.cast(), None);
            opj::opj_stream_set_user_data_length(raw, len);
        }
        Ok(stream)
    }

    fn io_error(&self) -> Option<String> {
        // SAFETY: no OpenJPEG call is running (we are on the only thread that drives the
        // stream, between calls), so nothing else touches `ctx`.
        unsafe { (*self.ctx).io_error.clone() }
    }
}

impl Drop for Stream<'_> {
    fn drop(&mut self) {
        // SAFETY: created in `new`, freed exactly once, the stream (which points at ctx) first.
        unsafe {
            if !self.raw.is_null() {
                opj::opj_stream_destroy(self.raw);
            }
            drop(Box::from_raw(self.ctx));
        }
    }
}

/// Read callback: bytes read, or `(OPJ_SIZE_T)-1` at the end or on error.
unsafe extern "C" fn stream_read(buf: *mut c_void, n: usize, user: *mut c_void) -> usize {
    if buf.is_null() || user.is_null() {
        return usize::MAX;
    }
    // SAFETY: `user` is the StreamCtx set in Stream::new, only used by this thread.
    let ctx = unsafe { &mut *user.cast::<StreamCtx<'_>>() };
    let remaining = ctx.len.saturating_sub(ctx.pos);
    if remaining == 0 {
        return usize::MAX;
    }
    let want = usize::try_from(remaining).map_or(n, |r| r.min(n));
    if want == 0 {
        return 0;
    }
    // SAFETY: OpenJPEG hands a buffer of at least `n` bytes; it may be uninitialised, so
    // zero it before making a slice.
    let out = unsafe {
        ptr::write_bytes(buf.cast::<u8>(), 0, want);
        std::slice::from_raw_parts_mut(buf.cast::<u8>(), want)
    };
    let mut filled = 0usize;
    let mut interrupted = 0;
    while filled < want {
        let (src, at) = (ctx.src, ctx.pos + filled as u64);
        let result = catch_unwind(AssertUnwindSafe(|| src.read_at(at, &mut out[filled..])));
        match result {
            Ok(Ok(0)) => {
                ctx.io_error.get_or_insert_with(|| {
                    format!("unexpected end of data at byte {at} of {}", ctx.len)
                });
                break;
            }
            Ok(Ok(k)) => filled += k.min(want - filled),
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted && interrupted < 16 => {
                interrupted += 1;
            }
            Ok(Err(e)) => {
                ctx.io_error.get_or_insert_with(|| e.to_string());
                break;
            }
            Err(_) => {
                ctx.io_error
                    .get_or_insert_with(|| "the reader panicked".to_string());
                break;
            }
        }
    }
    ctx.pos += filled as u64;
    if filled == 0 { usize::MAX } else { filled }
}

/// Skip callback: moves by `n` (clamped to `[0, len]`), returns the bytes actually moved, or
/// -1 if it cannot move at all (so OpenJPEG's skip loop always ends).
unsafe extern "C" fn stream_skip(n: i64, user: *mut c_void) -> i64 {
    if user.is_null() {
        return -1;
    }
    // SAFETY: see stream_read.
    let ctx = unsafe { &mut *user.cast::<StreamCtx<'_>>() };
    let target = (i128::from(ctx.pos) + i128::from(n)).clamp(0, i128::from(ctx.len));
    let moved = target - i128::from(ctx.pos);
    if n != 0 && moved == 0 {
        return -1;
    }
    ctx.pos = target as u64; // within [0, len]
    moved as i64 // |moved| <= |n|
}

/// Seek callback: absolute position, refused outside `[0, len]`.
unsafe extern "C" fn stream_seek(pos: i64, user: *mut c_void) -> c_int {
    if user.is_null() {
        return 0;
    }
    // SAFETY: see stream_read.
    let ctx = unsafe { &mut *user.cast::<StreamCtx<'_>>() };
    match u64::try_from(pos) {
        Ok(p) if p <= ctx.len => {
            ctx.pos = p;
            1
        }
        _ => 0,
    }
}

/// An image from OpenJPEG, destroyed on drop.
struct Image(*mut opj::opj_image_t);

impl Drop for Image {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: created by opj_read_header, destroyed once.
            unsafe { opj::opj_image_destroy(self.0) };
        }
    }
}

/// Codestream info from opj_get_cstr_info, destroyed on drop.
struct CstrInfo(*mut opj::opj_codestream_info_v2_t);

impl Drop for CstrInfo {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: created by opj_get_cstr_info, destroyed once (it nulls the pointer).
            unsafe { opj::opj_destroy_cstr_info(&mut self.0) };
        }
    }
}

/// One decode: fields drop in order image, codec, stream.
struct Session<'a> {
    image: Image,
    codec: Codec,
    stream: Stream<'a>,
}

impl<'a> Session<'a> {
    /// Sniff, create and set up the codec, read the main header.
    fn open(src: &'a dyn ReadAt, threads: u32) -> Result<Session<'a>, Jp2Error> {
        let mut head = [0u8; 12];
        let mut got = 0;
        while got < head.len() {
            match src.read_at(got as u64, &mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n.min(head.len() - got),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Jp2Error::Io(e.to_string())),
            }
        }
        let format = codec_format(&head[..got]).ok_or_else(|| {
            Jp2Error::Invalid("not a JPEG 2000 file (no JP2 signature or SOC+SIZ markers)".into())
        })?;
        let codec = Codec::new(format)?;
        // SAFETY: opj_dparameters_t is plain integers and arrays (all-zero is valid), filled
        // by opj_set_default_decoder_parameters; the codec is live.
        unsafe {
            let mut params: opj::opj_dparameters_t = std::mem::zeroed();
            opj::opj_set_default_decoder_parameters(&mut params);
            if opj::opj_setup_decoder(codec.raw, &mut params) == 0 {
                let msg = codec.last_message().unwrap_or_default();
                return Err(Jp2Error::Invalid(format!(
                    "cannot set up the decoder: {msg}"
                )));
            }
            // 0 = no worker threads, which also overrides an OPJ_NUM_THREADS environment
            // variable; a failure (no thread support) leaves the decoder single-threaded.
            let n = if threads > 1 {
                threads.min(MAX_THREADS) as c_int
            } else {
                0
            };
            let _ = opj::opj_codec_set_threads(codec.raw, n);
        }
        let stream = Stream::new(src)?;
        let mut raw_image: *mut opj::opj_image_t = ptr::null_mut();
        // SAFETY: live stream and codec; OpenJPEG sets `raw_image` only to a valid image.
        let ok = unsafe { opj::opj_read_header(stream.raw, codec.raw, &mut raw_image) };
        let session = Session {
            image: Image(raw_image),
            codec,
            stream,
        };
        if ok == 0 || raw_image.is_null() {
            return Err(session.fail("cannot read the header"));
        }
        Ok(session)
    }

    /// The error for a failed OpenJPEG call: an I/O error if the reader failed, else Invalid
    /// with OpenJPEG's last message.
    fn fail(&self, what: &str) -> Jp2Error {
        if let Some(e) = self.stream.io_error() {
            return Jp2Error::Io(e);
        }
        match self.codec.last_message() {
            Some(m) => Jp2Error::Invalid(format!("{what}: {m}")),
            None => Jp2Error::Invalid(what.to_string()),
        }
    }

    /// Validated facts from the image header and the codestream info.
    fn header(&self) -> Result<Header, Jp2Error> {
        let bad = |m: &str| Jp2Error::Invalid(m.to_string());
        // SAFETY: the image is live (checked non-null in `open`).
        let img = unsafe { &*self.image.0 };
        if img.numcomps == 0 || img.numcomps > 16384 || img.comps.is_null() {
            return Err(bad("no image components"));
        }
        if img.x1 <= img.x0 || img.y1 <= img.y0 {
            return Err(bad("empty image"));
        }
        // SAFETY: OpenJPEG allocates `numcomps` entries at `comps` (checked non-null).
        let comps = unsafe { std::slice::from_raw_parts(img.comps, img.numcomps as usize) };
        let mut facts = Vec::with_capacity(comps.len());
        for c in comps {
            if c.dx == 0 || c.dy == 0 || c.prec == 0 || c.prec > 31 {
                return Err(bad("invalid component parameters"));
            }
            facts.push(CompFacts {
                dx: c.dx,
                dy: c.dy,
                prec: c.prec,
                alpha: c.alpha != 0,
            });
        }

        // SAFETY: live codec after a successful opj_read_header.
        let cstr = CstrInfo(unsafe { opj::opj_get_cstr_info(self.codec.raw) });
        if cstr.0.is_null() {
            return Err(self.fail("no codestream info"));
        }
        // SAFETY: checked non-null; owned by `cstr`.
        let ci = unsafe { &*cstr.0 };
        let tccp = ci.m_default_tile_info.tccp_info;
        if tccp.is_null() || ci.nbcomps == 0 || ci.tdx == 0 || ci.tdy == 0 {
            return Err(bad("no coding parameters"));
        }
        // SAFETY: opj_get_cstr_info allocates `nbcomps` tccp entries.
        let tccps = unsafe { std::slice::from_raw_parts(tccp, ci.nbcomps as usize) };
        let resolutions = tccps.iter().map(|t| t.numresolutions).min().unwrap_or(0);
        let ht = tccps.iter().any(|t| t.cblksty & CBLKSTY_HT != 0);
        if resolutions == 0 || resolutions > opj::OPJ_J2K_MAXRLVLS {
            return Err(bad("invalid number of resolution levels"));
        }
        Ok(Header {
            x0: img.x0,
            y0: img.y0,
            x1: img.x1,
            y1: img.y1,
            color_space: img.color_space,
            comps: facts,
            resolutions,
            tx0: ci.tx0,
            ty0: ci.ty0,
            tdx: ci.tdx,
            tdy: ci.tdy,
            tw: ci.tw,
            th: ci.th,
            ht,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Header facts and the budget
// ---------------------------------------------------------------------------------------------

struct CompFacts {
    dx: u32,
    dy: u32,
    prec: u32,
    alpha: bool,
}

struct Header {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
    color_space: opj::COLOR_SPACE,
    comps: Vec<CompFacts>,
    resolutions: u32,
    tx0: u32,
    ty0: u32,
    tdx: u32,
    tdy: u32,
    tw: u32,
    th: u32,
    /// Some component uses HT (Part 15) code-blocks.
    ht: bool,
}

/// A rectangle `x0..x1` by `y0..y1` (on the reference grid, or on a component's grid).
#[derive(Clone)]
struct Rect {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
}

fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b.max(1))
}

/// Samples of one component of `rect` at `reduce`, as OpenJPEG computes the component size.
fn comp_samples(rect: &Rect, dx: u32, dy: u32, reduce: u32) -> u64 {
    let scale = 1u64 << reduce.min(32);
    let span = |a0: u32, a1: u32, d: u32| {
        let (c0, c1) = (ceil_div(a0.into(), d.into()), ceil_div(a1.into(), d.into()));
        ceil_div(c1, scale) - ceil_div(c0, scale)
    };
    span(rect.x0, rect.x1, dx).saturating_mul(span(rect.y0, rect.y1, dy))
}

impl Header {
    /// Output channels for `n` components (an upper bound before decoding: 4 for n >= 4).
    fn channels(&self) -> u8 {
        match self.comps.len() {
            1 => 1,
            2 => 2,
            3 => 3,
            4 => 4,
            _ if self.comps[3].alpha => 4,
            _ => 3,
        }
    }

    fn info(&self) -> Jp2Info {
        let c0 = &self.comps[0];
        let channels = self.channels();
        let (width, height) = (self.x1 - self.x0, self.y1 - self.y0);
        Jp2Info {
            width,
            height,
            components: self.comps.len().min(u16::MAX as usize) as u16,
            precision: c0.prec.min(u8::MAX as u32) as u8,
            resolutions: self.resolutions,
            tile_width: self.tdx.min(width),
            tile_height: self.tdy.min(height),
            tiles_x: self.tw,
            tiles_y: self.th,
            has_alpha: channels == 2 || channels == 4,
            gray: channels <= 2,
            palette_columns: 0,
        }
    }

    /// Bytes needed to decode `area` at `reduce` and output `out`: i32 component buffers of
    /// the region, one tile's i32 working buffers (the tile clipped to the region's size) and
    /// the 8-bit output.
    fn budget_bytes(&self, area: &Rect, out: &Rect, reduce: u32) -> u64 {
        let tile = Rect {
            x0: 0,
            y0: 0,
            x1: self.tdx.min(area.x1 - area.x0),
            y1: self.tdy.min(area.y1 - area.y0),
        };
        let mut total = 0u64;
        for c in &self.comps {
            let region = comp_samples(area, c.dx, c.dy, reduce);
            let work = comp_samples(&tile, c.dx, c.dy, reduce);
            total = total.saturating_add(region.saturating_add(work).saturating_mul(4));
        }
        let c0 = &self.comps[0];
        let out = comp_samples(out, c0.dx, c0.dy, reduce).saturating_mul(self.channels().into());
        total.saturating_add(out)
    }

    /// `area` grown to whole tiles (clipped to the image).
    fn tile_aligned(&self, area: &Rect) -> Rect {
        let down = |v: u32, t0: u32, d: u32, lo: u32| {
            let k = u64::from(v.saturating_sub(t0)) / u64::from(d);
            (u64::from(t0) + k * u64::from(d)).max(u64::from(lo)) as u32
        };
        let up = |v: u32, t0: u32, d: u32, hi: u32| {
            let k = u64::from(v.saturating_sub(t0)).div_ceil(u64::from(d));
            (u64::from(t0) + k * u64::from(d)).min(u64::from(hi)) as u32
        };
        Rect {
            x0: down(area.x0, self.tx0, self.tdx, self.x0),
            y0: down(area.y0, self.ty0, self.tdy, self.y0),
            x1: up(area.x1, self.tx0, self.tdx, self.x1),
            y1: up(area.y1, self.ty0, self.tdy, self.y1),
        }
    }
}

mod convert;
use convert::convert;

#[cfg(test)]
pub(crate) mod tests;
