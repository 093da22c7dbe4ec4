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
use std::sync::{Arc, Mutex};

use openjpeg_sys as opj;

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
pub const DEFAULT_MAX_BYTES: u64 = 512 << 20;

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// Random access to the bytes of a file; the decoder reads only the byte ranges it needs.
///
/// Implemented for `[u8]`, `Vec<u8>` and for `&T`, `Box<T>`, `Arc<T>` of any `ReadAt`
/// (`bytes::Bytes` works through `&*bytes`).
pub trait ReadAt: Send + Sync {
    /// Total length of the file in bytes.
    fn len(&self) -> u64;

    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Read up to `buf.len()` bytes at `offset`, returning how many were read; `Ok(0)` at or
    /// after the end. A short read before the end is allowed (the caller asks again).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

impl ReadAt for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        let Some(rest) = self.get(start..) else {
            return Ok(0);
        };
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
}

impl ReadAt for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.as_slice().read_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Box<T> {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Arc<T> {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }
}

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
}

/// Whether `first_bytes` start a JPEG 2000 file this module reads: the JP2 signature box or a
/// raw codestream's SOC + SIZ markers (`FF 4F FF 51`).
pub fn sniff(first_bytes: &[u8]) -> bool {
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

/// The contents of the first box of type `kind` among the boxes that fill `bytes` (only boxes
/// whole inside `bytes`).
fn find_box<'a>(bytes: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let lbox = u32::from_be_bytes(bytes[at..at + 4].try_into().ok()?) as usize;
        let (header, len) = match lbox {
            0 => (8, bytes.len() - at),
            1 => {
                let x = u64::from_be_bytes(bytes.get(at + 8..at + 16)?.try_into().ok()?);
                (16, usize::try_from(x).ok()?)
            }
            n => (8, n),
        };
        let end = at
            .checked_add(len)
            .filter(|&e| e <= bytes.len() && len >= header)?;
        if &bytes[at + 4..at + 8] == kind {
            return Some(&bytes[at + header..end]);
        }
        at = end;
    }
    None
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

// ---------------------------------------------------------------------------------------------
// Conversion to 8-bit interleaved
// ---------------------------------------------------------------------------------------------

/// Maps samples of one component to 8 bits.
struct Depth {
    offset: i64,
    max: i64,
    lut: Vec<u8>,
}

impl Depth {
    fn new(prec: u32, signed: bool) -> Depth {
        let prec = prec.clamp(1, 31);
        let max = (1i64 << prec) - 1;
        let offset = if signed { 1i64 << (prec - 1) } else { 0 };
        let mut depth = Depth {
            offset,
            max,
            lut: Vec::new(),
        };
        if prec <= 16 {
            depth.lut = (0..=max).map(|v| depth.scale(v)).collect();
        }
        depth
    }

    /// `v` in `0..=max` to `0..=255`, rounding.
    fn scale(&self, v: i64) -> u8 {
        ((v * 255 + self.max / 2) / self.max).clamp(0, 255) as u8
    }

    /// Unsigned 8-bit samples: mapped by clamping alone.
    fn is_u8(&self) -> bool {
        self.offset == 0 && self.max == 255
    }

    #[inline]
    fn map(&self, sample: i32) -> u8 {
        let v = (i64::from(sample) + self.offset).clamp(0, self.max);
        match self.lut.get(v as usize) {
            Some(&b) => b,
            None => self.scale(v),
        }
    }
}

/// One component ready for sampling at output pixel positions.
struct Plane<'a> {
    data: &'a [i32],
    /// Column in the component for each output column.
    xmap: Vec<usize>,
    /// Offset of the component row for each output row.
    ymap: Vec<usize>,
    depth: Depth,
    /// `xmap` is consecutive columns.
    contiguous: bool,
}

fn reserve<T>(v: &mut Vec<T>, n: usize) -> Result<(), Jp2Error> {
    v.try_reserve_exact(n)
        .map_err(|_| Jp2Error::TooLarge(format!("cannot allocate {n} elements")))
}

/// Convert the decoded image to 8-bit interleaved pixels.
///
/// # Safety
/// `image` must be a live image filled by a successful `opj_decode`.
/// `out` is the region to output, in component 0's coordinates at the decoded resolution
/// (normally exactly what OpenJPEG decoded; a sub-rectangle of it for HTJ2K).
unsafe fn convert(
    image: *const opj::opj_image_t,
    out: &Rect,
    max_bytes: u64,
) -> Result<Decoded, Jp2Error> {
    let bad = |m: &str| Jp2Error::Invalid(m.to_string());
    if image.is_null() {
        return Err(bad("no decoded image"));
    }
    // SAFETY: caller's contract.
    let img = unsafe { &*image };
    if img.numcomps == 0 || img.numcomps > 16384 || img.comps.is_null() {
        return Err(bad("decoded image has no components"));
    }
    // SAFETY: `numcomps` entries at a non-null `comps`.
    let comps = unsafe { std::slice::from_raw_parts(img.comps, img.numcomps as usize) };
    let n = comps.len();
    let space = img.color_space;
    if matches!(
        space,
        opj::COLOR_SPACE::OPJ_CLRSPC_CMYK | opj::COLOR_SPACE::OPJ_CLRSPC_EYCC
    ) {
        return Err(bad("unsupported colour space (CMYK or e-YCC)"));
    }
    let sources: &[usize] = match n {
        1 => &[0],
        2 => &[0, 1],
        3 => &[0, 1, 2],
        4 => &[0, 1, 2, 3],
        _ if comps[3].alpha != 0 => &[0, 1, 2, 3],
        _ => &[0, 1, 2],
    };
    let channels = sources.len();
    let c0 = &comps[0];
    // Three components whose chroma is subsampled and no colour space said: YCC, as
    // opj_decompress assumes.
    let unspecified = matches!(
        space,
        opj::COLOR_SPACE::OPJ_CLRSPC_UNSPECIFIED | opj::COLOR_SPACE::OPJ_CLRSPC_UNKNOWN
    );
    let ycc = channels >= 3
        && (space == opj::COLOR_SPACE::OPJ_CLRSPC_SYCC
            || (unspecified
                && n == 3
                && c0.dx == 1
                && c0.dy == 1
                && (comps[1].dx > 1 || comps[1].dy > 1)));

    if c0.w == 0 || c0.h == 0 || c0.dx == 0 || c0.dy == 0 {
        return Err(bad("decoded an empty image"));
    }
    // The output must lie within what was decoded.
    let (ox0, oy0) = origin(c0);
    let inside = u64::from(out.x0) >= ox0
        && u64::from(out.y0) >= oy0
        && out.x1 > out.x0
        && out.y1 > out.y0
        && u64::from(out.x1) <= ox0 + u64::from(c0.w)
        && u64::from(out.y1) <= oy0 + u64::from(c0.h);
    if !inside {
        return Err(bad("decoded region does not cover the requested region"));
    }
    let (width, height) = ((out.x1 - out.x0) as usize, (out.y1 - out.y0) as usize);
    let out_len = width
        .checked_mul(height)
        .and_then(|p| p.checked_mul(channels))
        .ok_or_else(|| Jp2Error::TooLarge("output size overflows".into()))?;
    if out_len as u64 > max_bytes {
        return Err(Jp2Error::TooLarge(format!(
            "output of {out_len} bytes is over the budget of {max_bytes}"
        )));
    }

    let mut planes = Vec::with_capacity(channels);
    for &i in sources {
        let c = &comps[i];
        if c.data.is_null() || c.w == 0 || c.h == 0 || c.dx == 0 || c.dy == 0 {
            return Err(bad("a component was not decoded"));
        }
        if c.prec == 0 || c.prec > 31 {
            return Err(bad("invalid component precision"));
        }
        let (cw, ch) = (c.w as usize, c.h as usize);
        let len = cw
            .checked_mul(ch)
            .ok_or_else(|| bad("component size overflows"))?;
        // SAFETY: OpenJPEG allocates `w * h` samples for each decoded component (checked
        // non-null above), and they stay alive as long as the image.
        let data = unsafe { std::slice::from_raw_parts(c.data, len) };
        // Nearest neighbour through the (reduced) reference grid: output column i sits at
        // (out.x0 + i) * c0.dx, which is column floor(that / c.dx) - origin.x of this
        // component (clamped to it).
        let map = |n_out: usize, o0: u32, od: u32, x0: u64, d: u32, size: usize| {
            let mut v = Vec::new();
            reserve(&mut v, n_out)?;
            for i in 0..n_out as u64 {
                let grid = (u64::from(o0) + i) * u64::from(od);
                let pos = (grid / u64::from(d)).saturating_sub(x0);
                v.push((pos as usize).min(size - 1));
            }
            Ok::<_, Jp2Error>(v)
        };
        let (cx0, cy0) = origin(c);
        let xmap = map(width, out.x0, c0.dx, cx0, c.dx, cw)?;
        let mut ymap = map(height, out.y0, c0.dy, cy0, c.dy, ch)?;
        for y in &mut ymap {
            *y *= cw;
        }
        // At full resolution on the grid (no subsampling) the columns are consecutive.
        let contiguous = c.dx == c0.dx && xmap[width - 1] == xmap[0] + width - 1;
        planes.push(Plane {
            data,
            xmap,
            ymap,
            depth: Depth::new(c.prec, c.sgnd != 0),
            contiguous,
        });
    }

    let mut pixels = Vec::new();
    reserve(&mut pixels, out_len)?;
    if planes.iter().all(|p| p.contiguous) {
        // Rows of consecutive samples: sliced once per row and plane, no per-sample lookups.
        pixels.resize(out_len, 0);
        for (y, row) in pixels.chunks_exact_mut(width * channels).enumerate() {
            for (k, p) in planes.iter().enumerate() {
                let start = p.ymap[y] + p.xmap[0];
                let Some(src) = p.data.get(start..start + width) else {
                    continue;
                };
                let dst = row[k..].iter_mut().step_by(channels);
                if p.depth.is_u8() {
                    for (d, &s) in dst.zip(src) {
                        *d = s.clamp(0, 255) as u8;
                    }
                } else {
                    for (d, &s) in dst.zip(src) {
                        *d = p.depth.map(s);
                    }
                }
            }
        }
    } else {
        for y in 0..height {
            for x in 0..width {
                for p in &planes {
                    let s = p.data.get(p.ymap[y] + p.xmap[x]).copied().unwrap_or(0);
                    pixels.push(p.depth.map(s));
                }
            }
        }
    }
    if ycc {
        for px in pixels.chunks_exact_mut(channels) {
            let (r, g, b) = ycc_to_rgb(px[0], px[1], px[2]);
            px[0] = r;
            px[1] = g;
            px[2] = b;
        }
    }
    Ok(Decoded {
        width: width as u32,
        height: height as u32,
        channels: channels as u8,
        data: pixels,
    })
}

/// Where a decoded component's samples start, at its decoded resolution: OpenJPEG keeps
/// `x0, y0` at full resolution (`ceil(image x0 / dx)`) and `w, h` at the reduced one.
fn origin(c: &opj::opj_image_comp_t) -> (u64, u64) {
    let scale = 1u64 << c.factor.min(32);
    (ceil_div(c.x0.into(), scale), ceil_div(c.y0.into(), scale))
}

/// sYCC (BT.601, full range) to RGB.
fn ycc_to_rgb(y: u8, cb: u8, cr: u8) -> (u8, u8, u8) {
    let (y, cb, cr) = (f32::from(y), f32::from(cb) - 128.0, f32::from(cr) - 128.0);
    let c = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    (
        c(y + 1.402 * cr),
        c(y - 0.344_136 * cb - 0.714_136 * cr),
        c(y + 1.772 * cb),
    )
}

#[cfg(test)]
pub(crate) mod tests {
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

    pub(crate) fn encode_planes(
        width: u32,
        height: u32,
        planes: &[PlaneIn],
        opts: &Opts,
    ) -> Vec<u8> {
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
                let (r, g, b) =
                    ycc_to_rgb(yp[(y * w + x) as usize] as u8, cb[ci] as u8, cr[ci] as u8);
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
            header_bytes <= STREAM_BUFFER as u64 + 12,
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
        // Only the header was read (the sniff, then one stream buffer): no tile data.
        assert!(src.bytes.load(Ordering::Relaxed) <= STREAM_BUFFER as u64 + 12);
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
            include_bytes!("../../tests/fixtures/htj2k/ht_rgb_64x48_lossless.j2c").to_vec(),
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
        let rgb = include_bytes!("../../tests/fixtures/htj2k/ht_rgb_64x48_lossless.j2c");
        let gray = include_bytes!("../../tests/fixtures/htj2k/ht_gray_64x48_lossless.j2c");
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
        let file = include_bytes!("../../tests/fixtures/htj2k/ht_rgb_96x80_tiled32_lossless.j2c");
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
}

/// The examples that stood in the doc comments of these crate-private items.
#[cfg(test)]
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    #[test]
    fn doc_jp2_16() {
        use crate::codec::jp2::{self, DecodeRequest};

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
        use crate::codec::jp2::ReadAt;
        let data = vec![1u8, 2, 3, 4];
        let mut buf = [0u8; 8];
        assert_eq!(data.read_at(1, &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], &[2, 3, 4]);
        assert_eq!(data.read_at(4, &mut buf).unwrap(), 0);
        assert_eq!(ReadAt::len(&data), 4);
    }

    #[test]
    fn doc_jp2_jp2error_148() {
        use crate::codec::jp2::{self, Jp2Error};
        let err = jp2::read_info(&b"GIF89a"[..]).unwrap_err();
        assert!(matches!(err, Jp2Error::Invalid(_)));
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn doc_jp2_decoderequest_211() {
        use crate::codec::jp2::DecodeRequest;
        let req = DecodeRequest {
            reduce: 2,
            area: Some((512, 0, 1024, 1024)),
            ..Default::default()
        };
        assert_eq!(req.threads, 1);
    }

    #[test]
    fn doc_jp2_sniff_265() {
        use crate::codec::jp2::sniff;
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
        let info = crate::codec::jp2::read_info(file.as_slice()).unwrap();
        assert_eq!(
            (info.width, info.height, info.components, info.resolutions),
            (64, 48, 3, 5)
        );
    }

    #[test]
    fn doc_jp2_decode_356() {
        use crate::codec::jp2::{self, DecodeRequest, Jp2Error};
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
