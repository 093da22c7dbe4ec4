//! Large flat sources (JPEG, PNG): which render input a request gets. Scales the
//! [`ReducedPyramid`] covers are rendered from it (built once, on first access, held in a
//! byte-bounded cache); larger ones from the file, a JPEG with a DCT-scaled and cropped
//! decode (libjpeg-turbo with the `turbojpeg` feature, else MozJPEG's libjpeg row by row).
//!
//! A PNG's pyramid is built without holding the file or its full-size pixels: the file is read
//! in 1 MiB chunks on the async side ([`send_chunks`]) and decoded row by row on the blocking
//! pool ([`ChunkReader`], [`png_reduce`]), reduced to the base level as it goes. A
//! JPEG's (and an interlaced PNG's) is built from the whole file.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tracing::Instrument;

use super::ReducedPyramid;
use crate::Error;
use crate::cache::{AnyCache, CacheBackend, CacheKey, CachedDerivative};
use crate::codec::{self, Header, SourceFormat};
use crate::pixels::{Budget, Layout, Pixels};
use crate::plan::Plan;
use crate::service::{InfoKey, RenderInput, Shared, reserve_render_slot};
use crate::source::SourceObject;
use crate::source::read_at::{ReadAt, ReadAtStream};

/// Weighs a cached pyramid by the bytes of its levels.
#[derive(Debug, Clone)]
pub(crate) struct PyramidBytes;

impl quick_cache::Weighter<InfoKey, Arc<ReducedPyramid>> for PyramidBytes {
    fn weight(&self, _key: &InfoKey, pyramid: &Arc<ReducedPyramid>) -> u64 {
        (pyramid.bytes() as u64).max(1)
    }
}

/// The reduced pyramids of large flat sources, bounded by bytes; shared by every clone of a
/// service.
#[derive(Debug, Clone)]
pub(crate) struct ReducedCache {
    pub(crate) cache: Arc<quick_cache::sync::Cache<InfoKey, Arc<ReducedPyramid>, PyramidBytes>>,
    /// The cache's capacity in bytes; one pyramid takes at most half of it.
    pub(crate) max_bytes: u64,
    /// Flat sources of fewer pixels are decoded whole, as small files are.
    pub(crate) min_pixels: u64,
    /// A second tier that outlives the process (or the memory cache's evictions): pyramids are
    /// stored there when built and loaded from it before building.
    pub(crate) store: Option<AnyCache>,
}

impl ReducedCache {
    pub(crate) fn new(max_bytes: u64, min_pixels: u64) -> Self {
        // quick_cache sizes its tables from an item estimate: a pyramid of ~80 MB each.
        let items = (max_bytes / (16 << 20)).clamp(4, 1024) as usize;
        Self {
            cache: Arc::new(quick_cache::sync::Cache::with_weighter(
                items,
                max_bytes.max(1),
                PyramidBytes,
            )),
            max_bytes,
            min_pixels,
            store: None,
        }
    }
}

/// What a render of `plan` on a flat source reads.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn input<O: SourceObject>(
    reduced: Option<&ReducedCache>,
    key: InfoKey,
    object: &Arc<O>,
    header: &Header,
    plan: &Plan,
    shared: &Arc<Shared>,
    budget: Budget,
    max_source_bytes: u64,
) -> Result<RenderInput, Error> {
    let whole = RenderInput::Whole { max_source_bytes };
    let flat = matches!(header.format, SourceFormat::Jpeg | SourceFormat::Png);
    let Some(reduced) = reduced
        .filter(|r| flat && u64::from(header.width) * u64::from(header.height) >= r.min_pixels)
    else {
        return Ok(whole);
    };
    // PNG may have alpha: reckon with four channels.
    let layout = match (header.format, header.gray) {
        (_, true) => Layout::GrayAlpha,
        (SourceFormat::Jpeg, false) => Layout::Rgb,
        _ => Layout::Rgba,
    };
    let scale = plan.scale();
    let shift =
        ReducedPyramid::base_shift(header.width, header.height, layout, reduced.max_bytes / 2);
    // A pyramid whose build could never fit under the memory ceiling is not built: the
    // region is decoded instead.
    let fits = |s: u32| build_memory(header, s, object.metadata().len) <= shared.memory.bytes();
    if let Some(shift) = shift
        .filter(|&s| scale <= (1.0 / f64::from(1u32 << s)) * (1.0 + 1e-9))
        .filter(|&s| fits(s))
    {
        let pyramid = match reduced.cache.get(&key) {
            Some(pyramid) => pyramid,
            None => {
                let task = tokio::spawn(
                    get_or_build(
                        reduced.clone(),
                        key,
                        Arc::clone(object),
                        *header,
                        shift,
                        layout,
                        Arc::clone(shared),
                        budget,
                        max_source_bytes,
                    )
                    .instrument(tracing::debug_span!("reduced pyramid", shift)),
                );
                task.await
                    .map_err(|e| Error::internal(format!("pyramid task failed: {e}")))??
            }
        };
        if let Some((level, _)) = pyramid.level_for(scale) {
            let rect = pyramid.level_rect(level, plan.region);
            return Ok(RenderInput::Reduced {
                pyramid,
                level,
                rect,
            });
        }
    }
    // A PNG has no random access, but its rows can be read down to the region's last one.
    if header.format == SourceFormat::Png && header.orientation == codec::Orientation::NORMAL {
        return Ok(RenderInput::PngRegion {
            rect: plan.region,
            max_source_bytes,
        });
    }
    Ok(region_input(header, plan, scale, max_source_bytes).unwrap_or(whole))
}

/// The reduced pyramid of a source version from the memory cache, else from the store, else
/// built; concurrent callers share one build. Run in a task of its own: a build (seconds, on
/// a large image) is finished and cached even when every request that waits for it is gone.
#[allow(clippy::too_many_arguments)]
async fn get_or_build<O: SourceObject>(
    reduced: ReducedCache,
    key: InfoKey,
    object: Arc<O>,
    header: Header,
    shift: u32,
    layout: Layout,
    shared: Arc<Shared>,
    budget: Budget,
    max_source_bytes: u64,
) -> Result<Arc<ReducedPyramid>, Error> {
    let store = store_key(&key, shift, layout).and_then(|k| Some((reduced.store.clone()?, k)));
    let build = async {
        if let Some((s, k)) = &store
            && let Some(p) = load(s, k, &header, shift, budget).await
        {
            return Ok::<_, Error>(p);
        }
        let p = build(&object, &header, shift, &shared, budget, max_source_bytes).await?;
        if let Some((s, k)) = store {
            keep(s, k, Arc::clone(&p));
        }
        Ok(p)
    };
    reduced.cache.get_or_insert_async(&key, build).await
}

/// The key of a source version's pyramid in the store: the pyramid depends on the renderer
/// (crate version and decoder revision), the source's version, the base reduction and the
/// layout. `None` for a source that states neither a modification time nor an ETag: a file
/// replaced by another of the same length could not be told apart, so nothing is stored.
fn store_key(key: &InfoKey, shift: u32, layout: Layout) -> Option<CacheKey> {
    if key.modified.is_none() && key.etag.is_none() {
        return None;
    }
    let modified = match key.modified {
        None => "-".to_owned(),
        Some(m) => match m.duration_since(std::time::SystemTime::UNIX_EPOCH) {
            Ok(d) => d.as_nanos().to_string(),
            Err(e) => format!("-{}", e.duration().as_nanos()),
        },
    };
    let etag = key
        .etag
        .as_deref()
        .map_or("-".to_owned(), |e| format!("\"{e}\""));
    Some(CacheKey::new(
        key.id.as_str(),
        format!(
            "reduced-pyramid|{}|{}|{modified}|{etag}|{shift}|{layout:?}",
            crate::service::RENDERER,
            key.len,
        ),
    ))
}

/// The media type of a stored pyramid.
const STORED_TYPE: &str = "application/x-tower-iiif-reduced-pyramid";

/// The pyramid kept in `store` under `key`, if there is one and it is of this image; read back
/// on the blocking pool (a copy of its bytes).
async fn load(
    store: &AnyCache,
    key: &CacheKey,
    header: &Header,
    shift: u32,
    budget: Budget,
) -> Option<Arc<ReducedPyramid>> {
    let hit = store.get(key).await?;
    // Of this image and base reduction, checked before anything is copied.
    let expected = (header.width, header.height, shift);
    if hit.content_type != STORED_TYPE || ReducedPyramid::stored_size(&hit.body) != Some(expected) {
        return None;
    }
    let loaded =
        tokio::task::spawn_blocking(move || ReducedPyramid::from_bytes(&hit.body, budget).ok())
            .await
            .ok()??;
    Some(Arc::new(loaded))
}

/// One pyramid serialized for the store at a time: each is a copy of its levels.
static STORE_WRITES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Store a freshly built pyramid in the background (serialized on the blocking pool, one at a
/// time); the request does not wait for it.
fn keep(store: AnyCache, key: CacheKey, pyramid: Arc<ReducedPyramid>) {
    tokio::spawn(async move {
        let Ok(_one) = STORE_WRITES.acquire().await else {
            return;
        };
        let bytes = tokio::task::spawn_blocking(move || pyramid.to_bytes()).await;
        if let Ok(bytes) = bytes {
            let value = CachedDerivative::new(Bytes::from(bytes), STORED_TYPE);
            store.put(key, value).await;
        }
    });
}

/// Render `plan` from `rect` of a PNG read through `reader` on the blocking pool, its rows
/// decoded only down to the region's last one and only the region's columns kept (see
/// [`crate::flat::png_reduce::decode_region`]); an interlaced PNG is read and decoded whole, within
/// `max_source_bytes`.
pub(crate) fn render_png_region<R: ReadAt>(
    reader: &R,
    rect: crate::pixels::Rect,
    max_source_bytes: u64,
    plan: &Plan,
    budget: Budget,
    encode: &codec::EncodeOptions,
) -> Result<Vec<u8>, Error> {
    let stream = std::io::BufReader::with_capacity(CHUNK as usize, ReadAtStream::new(reader));
    let decoded = tracing::debug_span!("decode", rows = rect.bottom())
        .in_scope(|| crate::flat::png_reduce::decode_region(stream, rect, budget))?;
    if let Some(px) = decoded {
        let whole = crate::pixels::Rect::new(0, 0, px.width(), px.height());
        return crate::service::render::finish(px, whole, plan, budget, encode);
    }
    let len = reader.len();
    if len > max_source_bytes {
        return Err(Error::source(format!(
            "the interlaced PNG file ({len} bytes) is larger than this server reads whole"
        )));
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(len as usize)
        .map_err(|_| Error::source(format!("cannot allocate {len} bytes for the file")))?;
    let mut stream = ReadAtStream::new(reader);
    std::io::Read::read_to_end(&mut stream, &mut bytes)
        .map_err(|e| Error::source(format!("cannot read the source: {e}")))?;
    if (bytes.len() as u64) < len {
        return Err(Error::source(format!(
            "the source ended at byte {} of {len}",
            bytes.len()
        )));
    }
    crate::service::render::render(&bytes, plan, budget, encode)
}

/// A JPEG region decoded at the DCT scale that still covers the output (libjpeg-turbo, or
/// without the `turbojpeg` feature MozJPEG's libjpeg row by row).
fn region_input(
    header: &Header,
    plan: &Plan,
    scale: f64,
    max_source_bytes: u64,
) -> Option<RenderInput> {
    if header.format != SourceFormat::Jpeg || header.orientation != codec::Orientation::NORMAL {
        return None;
    }
    let shift = (0..=3u32)
        .rev()
        .find(|&s| (1.0 / f64::from(1u32 << s)) * (1.0 + 1e-9) >= scale)
        .unwrap_or(0);
    let (sw, sh) = codec::scaled_size((header.width, header.height), shift);
    let f = f64::from(1u32 << shift);
    Some(RenderInput::JpegRegion {
        shift,
        rect: plan.region.scaled_cover(f, f, (sw, sh)),
        max_source_bytes,
    })
}

/// Build the reduced pyramid of a flat source on the blocking pool, holding a render slot and
/// permit: the largest level 1/2^`shift` of the full size. A PNG is streamed: decoded row by
/// row and reduced as it is read (see [`build_png`]); a JPEG (and an interlaced PNG) is read
/// whole and decoded, DCT-scaled where libjpeg-turbo can.
async fn build<O: SourceObject>(
    object: &O,
    header: &Header,
    shift: u32,
    shared: &Arc<Shared>,
    budget: Budget,
    max_source_bytes: u64,
) -> Result<Arc<ReducedPyramid>, Error> {
    let slot = reserve_render_slot(shared)?;
    let len = object.metadata().len;
    let png = header.format == SourceFormat::Png;
    let limit = match png {
        true => png_read_limit(header, max_source_bytes),
        false => max_source_bytes,
    };
    if len > limit {
        let what = match png {
            true => "a PNG of its dimensions can hold",
            false => "this server reads whole",
        };
        return Err(Error::source(format!(
            "the source file ({len} bytes) is larger than {what}"
        )));
    }
    // The permit first: the file is not held while waiting (as for whole-file renders).
    let permit = Arc::clone(&shared.renders)
        .acquire_owned()
        .await
        .map_err(|_| Error::internal("render pool closed"))?;
    let memory = shared
        .memory
        .reserve(build_memory(header, shift, len), shared.queue.max_wait())
        .await?;
    shared.renders_done.fetch_add(1, Ordering::Relaxed);
    let header = *header;
    let span = tracing::Span::current();
    let mut held = (slot, permit, memory);
    if png {
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        let span = span.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _span = span.entered();
            let built = build_png(ChunkReader::new(rx, len), &header, shift, budget);
            (held, built)
        });
        send_chunks(object, len, tx).await;
        let (back, built) = task
            .await
            .map_err(|e| Error::internal(format!("pyramid task failed: {e}")))?;
        if let Some(pyramid) = built? {
            return Ok(Arc::new(pyramid));
        }
        // Interlaced: decoded whole, as any PNG was before, if it may be read whole.
        if len > max_source_bytes {
            return Err(Error::source(format!(
                "the interlaced PNG file ({len} bytes) is larger than this server reads whole"
            )));
        }
        held = back;
    }
    let bytes = object.read_all().await?;
    let pyramid = tokio::task::spawn_blocking(move || {
        let _held = held;
        let _span = span.entered();
        build_blocking(&bytes, &header, shift, budget)
    })
    .await
    .map_err(|e| Error::internal(format!("pyramid task failed: {e}")))??;
    Ok(Arc::new(pyramid))
}

/// What a pyramid build reserves under the memory ceiling: the levels (a third more than the
/// base, 4 bytes a pixel), what is read (the file, or a PNG's chunks in flight and its rows),
/// and the decoder's own.
fn build_memory(header: &Header, shift: u32, len: u64) -> u64 {
    let d = 1u64 << shift.min(31);
    let base = u64::from(header.width).div_ceil(d) * u64::from(header.height).div_ceil(d) * 4;
    let read = match header.format == SourceFormat::Png {
        true => READ_AHEAD as u64 * CHUNK + u64::from(header.width) * 16,
        false => len,
    };
    base + base / 3 + read + (16 << 20)
}

/// The most bytes a PNG's pyramid build reads. The file is streamed, never held, so the
/// whole-file bound (`max_source_bytes`) does not apply; what bounds the work is the image:
/// its compressed data is at most its raw rows (8 bytes a pixel at 16-bit RGBA, a filter byte
/// a row), which deflate's stored blocks and the chunk framing grow by well under 1/64, plus
/// room for metadata (64 MiB). A larger file is padded with chunks that would only be read
/// through, and is refused; one that could be read whole is never refused.
fn png_read_limit(header: &Header, max_source_bytes: u64) -> u64 {
    let (w, h) = (u64::from(header.width), u64::from(header.height));
    let raw = w.saturating_mul(h).saturating_mul(8).saturating_add(h);
    raw.saturating_add(raw / 64)
        .saturating_add(64 << 20)
        .max(max_source_bytes)
}

/// The size of the chunks a streamed PNG is read in.
const CHUNK: u64 = 1 << 20;

/// How many chunks are read ahead of the decoder.
const READ_AHEAD: usize = 2;

/// The chunks of a streamed source, in order; an error ends the stream.
type Chunks = tokio::sync::mpsc::Receiver<Result<Bytes, Error>>;

/// Read `object` in [`CHUNK`]s from the start and send them to a [`ChunkReader`] on the
/// blocking pool, a few ahead of it; stop at the end, at the first error (sent on), at an
/// empty read before the end (the reader reports it), or when the reader is gone.
///
/// The object is read here, on the async side, because the build borrows it: the blocking
/// task cannot take it along (the JPEG 2000 render owns its object and reads it through
/// [`SourceReader`](crate::source::read_at::SourceReader) on the blocking thread instead).
async fn send_chunks<O: SourceObject>(
    object: &O,
    len: u64,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, Error>>,
) {
    let mut offset = 0u64;
    while offset < len {
        let end = offset.saturating_add(CHUNK).min(len);
        let chunk = object.read_range(offset..end).await;
        let last = match &chunk {
            Ok(bytes) => {
                offset += bytes.len() as u64;
                bytes.is_empty()
            }
            Err(_) => true,
        };
        if tx.send(chunk).await.is_err() || last {
            return;
        }
    }
}

/// A source read as a `BufRead + Seek` on a blocking thread, from the chunks [`send_chunks`]
/// sends: what the png decoder reads. A stream that ends before the source's length is an
/// error (a short read), not the end of the file; seeking backwards is not supported (the png
/// decoder reads straight through).
struct ChunkReader {
    chunks: Chunks,
    /// The current chunk and how much of it is consumed.
    chunk: Bytes,
    at: usize,
    /// The source offset of the end of `chunk`, and the source's length.
    end: u64,
    len: u64,
}

impl ChunkReader {
    fn new(chunks: Chunks, len: u64) -> Self {
        Self {
            chunks,
            chunk: Bytes::new(),
            at: 0,
            end: 0,
            len,
        }
    }

    /// The source offset of the next byte.
    fn position(&self) -> u64 {
        self.end - (self.chunk.len() - self.at) as u64
    }
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = std::io::BufRead::fill_buf(self)?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        std::io::BufRead::consume(self, n);
        Ok(n)
    }
}

impl std::io::BufRead for ChunkReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.at == self.chunk.len() && self.end < self.len {
            let chunk = match self.chunks.blocking_recv() {
                Some(Ok(chunk)) if !chunk.is_empty() => chunk,
                Some(Err(e)) => return Err(std::io::Error::other(e.message().to_owned())),
                Some(Ok(_)) | None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("the source ended at byte {} of {}", self.end, self.len),
                    ));
                }
            };
            self.end += chunk.len() as u64;
            self.chunk = chunk;
            self.at = 0;
        }
        Ok(&self.chunk[self.at..])
    }

    fn consume(&mut self, n: usize) {
        self.at = (self.at + n).min(self.chunk.len());
    }
}

impl std::io::Seek for ChunkReader {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let here = self.position();
        let target = match to {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::Current(d) => here.checked_add_signed(d),
            std::io::SeekFrom::End(d) => self.len.checked_add_signed(d),
        };
        let target = target
            .filter(|&t| t >= here)
            .ok_or_else(|| std::io::Error::other("a streamed source cannot seek backwards"))?;
        let mut skip = target - here;
        while skip > 0 && self.position() < self.len {
            let n = std::io::BufRead::fill_buf(self)?.len().min(skip as usize);
            std::io::BufRead::consume(self, n);
            skip -= n as u64;
        }
        Ok(self.position() + skip)
    }
}

/// The pyramid of a PNG decoded row by row from `input` and reduced as it is read (only the
/// base level and one row of sums in memory); `None` when the file must be decoded whole
/// (interlaced).
fn build_png<R: std::io::BufRead + std::io::Seek>(
    input: R,
    header: &Header,
    shift: u32,
    budget: Budget,
) -> Result<Option<ReducedPyramid>, Error> {
    let streamed = shift.min(crate::flat::png_reduce::MAX_SHIFT);
    let Some(px) = crate::flat::png_reduce::decode_reduced(input, streamed, budget)? else {
        return Ok(None);
    };
    from_reduced(px, header, shift, streamed, budget).map(Some)
}

/// The pyramid from `px`, the stored image reduced by 2^`got` (at most `shift`): turned
/// upright, scaled the rest of the way to 1/2^`shift`, then halved.
fn from_reduced(
    px: Pixels,
    header: &Header,
    shift: u32,
    got: u32,
    budget: Budget,
) -> Result<ReducedPyramid, Error> {
    let px = header.orientation.apply(px, budget)?;
    let (w, h) = (header.width, header.height);
    if got == shift {
        return ReducedPyramid::from_base(w, h, shift, px, budget);
    }
    let d = 1u32 << shift;
    let whole = crate::pixels::Rect::new(0, 0, px.width(), px.height());
    let base = crate::ops::crop_resize(&px, whole, w.div_ceil(d), h.div_ceil(d), budget)?;
    ReducedPyramid::from_base(w, h, shift, base, budget)
}

/// Decode the whole file (DCT-scaled where libjpeg can) and reduce.
fn build_blocking(
    bytes: &[u8],
    header: &Header,
    shift: u32,
    budget: Budget,
) -> Result<ReducedPyramid, Error> {
    if header.format == SourceFormat::Jpeg {
        let dct = shift.min(3);
        match codec::scaled::decode(bytes, dct, None, budget) {
            Ok(mut px) => {
                codec::icc::apply_embedded(&mut px, bytes);
                return from_reduced(px, header, shift, dct, budget);
            }
            // CMYK, lossless...: the general decoder.
            Err(e) => tracing::debug!("not decoded scaled: {}", e.message()),
        }
    }
    let full = codec::decode(bytes, budget)?;
    ReducedPyramid::from_full(&full, shift, budget)
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read, Seek, SeekFrom};

    use ::png::{BitDepth, ColorType};

    use super::*;
    use crate::flat::png_reduce::tests::{Kind, interlaced_rgb, png_file};
    use crate::source::SourceMetadata;

    /// An in-memory object that claims `len` bytes (more than it has, to play a file cut
    /// short under the reader) and reads at most `max_read` bytes at a time.
    struct Memory {
        data: Bytes,
        meta: SourceMetadata,
        max_read: u64,
    }

    impl Memory {
        fn new(data: Vec<u8>, len: u64, max_read: u64) -> Self {
            Self {
                data: Bytes::from(data),
                meta: SourceMetadata::new(len, None, None),
                max_read,
            }
        }
    }

    impl SourceObject for Memory {
        fn metadata(&self) -> &SourceMetadata {
            &self.meta
        }
        async fn read_range(&self, range: std::ops::Range<u64>) -> Result<Bytes, Error> {
            let end = range
                .end
                .min(range.start.saturating_add(self.max_read))
                .min(self.data.len() as u64);
            let start = range.start.min(end);
            Ok(self.data.slice(start as usize..end as usize))
        }
    }

    /// Stream `object` through [`send_chunks`] into a [`ChunkReader`] and run `read` on it on
    /// the blocking pool.
    async fn stream<T: Send + 'static>(
        object: Memory,
        read: impl FnOnce(&mut ChunkReader) -> T + Send + 'static,
    ) -> T {
        let len = object.metadata().len;
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        let task = tokio::task::spawn_blocking(move || read(&mut ChunkReader::new(rx, len)));
        send_chunks(&object, len, tx).await;
        task.await.unwrap()
    }

    #[tokio::test]
    async fn chunks_read_back_as_the_file_and_a_short_source_is_an_error() {
        let data: Vec<u8> = (0..3 * CHUNK + 12_345).map(|i| (i % 251) as u8).collect();
        let len = data.len() as u64;
        // Whole, in full chunks and in short reads of 1000 bytes.
        for max_read in [u64::MAX, 1000] {
            let object = Memory::new(data.clone(), len, max_read);
            let got = stream(object, |r| {
                let mut v = Vec::new();
                r.read_to_end(&mut v).map(|_| v)
            })
            .await
            .unwrap();
            assert!(got == data, "max_read {max_read}");
        }
        // Forward seeks skip; backward ones fail.
        let object = Memory::new(data.clone(), len, u64::MAX);
        let (after, back) = stream(object, |r| {
            let mut b = [0; 4];
            r.seek(SeekFrom::Start(CHUNK + 10)).unwrap();
            r.read_exact(&mut b).unwrap();
            (b, r.seek(SeekFrom::Current(-100)).is_err())
        })
        .await;
        let at = (CHUNK + 10) as usize;
        assert_eq!(after, data[at..at + 4]);
        assert!(back);
        // A source that claims more than it holds: the end is an error, not end of file.
        let object = Memory::new(data.clone(), len + 1, u64::MAX);
        let err = stream(object, |r| r.read_to_end(&mut Vec::new()))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn a_png_cut_short_under_the_reader_is_a_source_error() {
        let kind = Kind::new(ColorType::Rgb, BitDepth::Eight, false);
        let file = png_file(kind, (1001, 517));
        let header = codec::read_header(&file).unwrap();
        let len = file.len() as u64;
        for cut in [40, file.len() / 2, file.len() - 20] {
            let object = Memory::new(file[..cut].to_vec(), len, 4096);
            let built = stream(object, move |r| build_png(r, &header, 2, Budget::default())).await;
            let err = built.unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Source, "{cut}: {err}");
        }
    }

    #[test]
    fn a_streamed_png_pyramid_is_the_whole_decodes_closely() {
        let kind = Kind::new(ColorType::Rgba, BitDepth::Eight, false);
        // 2^9 is past what the rows are reduced by: the rest is scaled (on a size whose edge
        // blocks are whole: a partial one would count as a whole pixel in that scaling).
        for (size, shift) in [((1001, 517), 1), ((1001, 517), 2), ((2048, 1536), 9)] {
            let file = png_file(kind, size);
            let header = codec::read_header(&file).unwrap();
            let streamed = build_png(Cursor::new(&file), &header, shift, Budget::default())
                .unwrap()
                .unwrap();
            let whole = build_blocking(&file, &header, shift, Budget::default()).unwrap();
            assert_eq!(streamed.level_sizes(), whole.level_sizes(), "{shift}");
            for i in 0..whole.level_sizes().len() {
                let (a, b) = (streamed.level(i).unwrap(), whole.level(i).unwrap());
                let diff: u64 = a
                    .data()
                    .iter()
                    .zip(b.data())
                    .map(|(x, y)| u64::from(x.abs_diff(*y)))
                    .sum();
                let mean = diff as f64 / a.data().len() as f64;
                assert!(mean < 2.0, "shift {shift} level {i}: {mean}");
            }
        }
    }

    #[test]
    fn a_png_too_big_to_decode_whole_within_the_budget_is_streamed() {
        // 1001x517 RGB: 1.55 MB decoded whole; its half-size base 501x259x3 = 389 KB.
        let kind = Kind::new(ColorType::Rgb, BitDepth::Eight, false);
        let file = png_file(kind, (1001, 517));
        let header = codec::read_header(&file).unwrap();
        let budget = Budget::new(400_000);
        let err = build_blocking(&file, &header, 1, budget).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Source);
        let pyramid = build_png(Cursor::new(&file), &header, 1, budget)
            .unwrap()
            .unwrap();
        assert_eq!(pyramid.level_sizes()[0], (501, 259));
        // Below the base itself: refused.
        assert!(build_png(Cursor::new(&file), &header, 1, Budget::new(389_000)).is_err());
    }

    #[test]
    fn an_interlaced_png_is_left_to_the_whole_decode() {
        let file = interlaced_rgb(1001, 517);
        let header = codec::read_header(&file).unwrap();
        let streamed = build_png(Cursor::new(&file), &header, 1, Budget::default()).unwrap();
        assert!(streamed.is_none());
        let whole = build_blocking(&file, &header, 1, Budget::default()).unwrap();
        assert_eq!(whole.level_sizes()[0], (501, 259));
    }

    #[test]
    fn the_png_read_limit_follows_the_pixels_not_the_whole_file_bound() {
        let header = codec::read_header(&png_file(
            Kind::new(ColorType::Rgb, BitDepth::Eight, false),
            (1001, 517),
        ))
        .unwrap();
        let raw = 1001 * 517 * 8 + 517;
        assert_eq!(png_read_limit(&header, 1000), raw + raw / 64 + (64 << 20));
        assert_eq!(png_read_limit(&header, 1 << 40), 1 << 40);
    }

    #[test]
    fn store_keys_tell_source_versions_apart_and_need_one() {
        let id = crate::request::Identifier::new("big").unwrap();
        let at = |modified, etag: Option<&str>| {
            let meta = SourceMetadata::new(100, modified, etag.map(str::to_owned));
            store_key(&InfoKey::new(&id, &meta), 2, Layout::Rgb).map(|k| k.as_str().to_owned())
        };
        let epoch = Some(std::time::UNIX_EPOCH);
        let later = Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1));
        // Neither a time nor an ETag: a same-length replacement could not be told apart.
        assert_eq!(at(None, None), None);
        let keys = [
            at(epoch, None),
            at(later, None),
            at(None, Some("a")),
            at(epoch, Some("a")),
            at(epoch, Some("b")),
        ];
        for (i, a) in keys.iter().enumerate() {
            assert!(a.is_some());
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        let meta = SourceMetadata::new(100, epoch, None);
        let key = InfoKey::new(&id, &meta);
        assert_ne!(
            store_key(&key, 2, Layout::Rgb),
            store_key(&key, 3, Layout::Rgb)
        );
    }
}
