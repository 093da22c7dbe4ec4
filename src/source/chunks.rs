//! Range reads of remote objects grouped into fixed-size chunks, kept in a byte-bounded cache
//! (Cantaloupe's `S3Source.chunking`): a decoder's many small reads of one tiled file (headers,
//! IFDs, tile-part markers) cost one request per chunk, concurrent reads of one chunk make one
//! request, and the missing chunks of one read are fetched one request per run of consecutive
//! chunks. Reads of one object that are ready at the same time (the tile requests of a viewer's
//! burst, woken together by the header they waited for) are gathered: their adjacent ranges are
//! fetched in one request (at most 4 MiB).
//!
//! Reads that continue where an earlier fetch of the same object stopped, or start a little
//! past it (a viewer's tiles of one pyramid level, stored one after the other and asked for at
//! once, by concurrent requests that each take their own chunks) are read ahead, as an
//! operating system's page cache does: from the third fetch of such a run, the chunks after the
//! fetch, 512 KiB and then 1 MiB, and on to the end of the 1 MiB block of the object that
//! ends in (a store that keeps objects in blocks reads a ranged GET's blocks whole: a run's
//! fetches then start on a block, and each block of the run is read once), when no one has
//! them or is fetching them; a read ahead that would stop at most 128 KiB short of a chunk kept
//! or being fetched reads up to it. A run's reading ahead stops at most 2.1 MiB past its last
//! read. Reads that continue nothing (a TIFF's IFDs, a JPEG 2000's tile-part headers far
//! apart), and the first two of a run (one region's header and its data), fetch their own
//! chunks only. Reads under 1 MiB go through the chunks (rounded out to them); longer ones (a
//! flat file streamed in large pieces) are fetched as they are.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use quick_cache::Weighter;
use quick_cache::sync::{Cache, GuardResult};

use crate::Error;

/// Default chunk size: 64 KiB. Cantaloupe tunes `S3Source.chunking.chunk_size` to 2 MiB, but
/// measured on the benchmark's 91-tile burst from S3 (docs/BENCHMARKS.md), 2 MiB chunks fetch
/// 3x the bytes 64 KiB chunks do from a JPEG 2000 (every small tile-part header read pulls a
/// chunk holding several tiles) and 1.4x from a pyramidal TIFF.
pub(crate) const DEFAULT_CHUNK_SIZE: u64 = 64 << 10;
/// Default chunk cache: 64 MiB.
pub(crate) const DEFAULT_CHUNK_CACHE_BYTES: u64 = 64 << 20;
/// Reads this long or longer are fetched as they are, not through the cache (a flat file
/// streamed in large pieces should not evict every tile's chunks).
const MAX_CACHED_READ: u64 = 1 << 20;
/// How far a sequential run of reads reads ahead, in bytes (at least one chunk), before it goes
/// on to the end of a [`BLOCK`]: half of it for the third fetch of a run, all of it for the
/// next ones.
const MAX_READ_AHEAD: u64 = 1 << 20;
/// The most bytes fetched in one request for reads gathered together.
const MAX_TOGETHER: u64 = 4 << 20;
/// How many times a leading read lets the ready tasks run before it fetches for the reads
/// gathered (each turn, the tasks woken with it reach their own reads).
const GATHER_YIELDS: usize = 2;
/// The widest hole a read ahead leaves before a chunk kept or being fetched, in bytes: a read
/// ahead that would stop this close to one reads up to it (a level's last tiles before its IFD,
/// read when the file was opened), since a read would later fetch the hole alone.
const HOLE: u64 = 128 << 10;
/// The block a read ahead ends on, when the chunk size divides it: object stores keep an object
/// in blocks and read a ranged GET's blocks whole (Garage's `block_size` and MinIO's erasure
/// block are 1 MiB; Garage hashes each block it reads), so reading ahead to a block's end lets
/// the run's next fetch start on the next block, and each block of the run is read once (the
/// benchmark's TIFF burst touched 34 blocks for 17 distinct ones before, 29 after:
/// docs/BENCHMARKS.md).
const BLOCK: u64 = 1 << 20;
/// The runs of sequential reads followed at once (the oldest is forgotten).
const STREAMS: usize = 16;
/// How far past a run's end a fetch may start and still continue it, in bytes: concurrent
/// readers of one level's tiles take the chunks right after a run for themselves.
const SLACK: u64 = 192 << 10;

/// The bytes of one fetched range, in order, in the pieces they arrive in.
pub(crate) type Pieces = BoxStream<'static, Result<Bytes, Error>>;

/// Fetches one byte range of one object version.
pub(crate) trait FetchRange: Send + Sync {
    /// The range as it arrives, so that the reads gathered into one long fetch each go on as
    /// soon as their own part is in.
    fn fetch_pieces(&self, range: Range<u64>)
    -> impl Future<Output = Result<Pieces, Error>> + Send;

    /// The whole range at once: its pieces [`gather`]ed, exactly as long as the range.
    fn fetch(&self, range: Range<u64>) -> impl Future<Output = Result<Bytes, Error>> + Send {
        async move {
            let want = range.end - range.start;
            checked(gather(self.fetch_pieces(range).await?, want).await?, want)
        }
    }
}

/// The pieces of a fetch in one buffer, at most `want` bytes: more are an upstream fault,
/// refused as they come so that a lying server cannot make us hold them. A fetch that came in
/// one piece (an object kept whole, a short range) is that piece, not a copy.
pub(crate) async fn gather(mut pieces: Pieces, want: u64) -> Result<Bytes, Error> {
    let too_long = || {
        Error::bad_gateway(format!(
            "upstream sent more than the {want} bytes asked for"
        ))
    };
    let first = match pieces.next().await {
        Some(piece) => piece?,
        None => return Ok(Bytes::new()),
    };
    if first.len() as u64 > want {
        return Err(too_long());
    }
    let Some(second) = pieces.next().await else {
        return Ok(first);
    };
    let mut out = BytesMut::with_capacity(want.min(64 << 20) as usize);
    out.extend_from_slice(&first);
    let mut next = Some(second);
    while let Some(piece) = next {
        let piece = piece?;
        if out.len() as u64 + piece.len() as u64 > want {
            return Err(too_long());
        }
        out.extend_from_slice(&piece);
        next = pieces.next().await;
    }
    Ok(out.freeze())
}

#[derive(Clone, Copy)]
struct ChunkBytes;

/// A chunk claimed by one read: others wait for it until it is filled or dropped.
type Claim<'a> = quick_cache::sync::PlaceholderGuard<
    'a,
    (Arc<str>, u64),
    Bytes,
    ChunkBytes,
    quick_cache::DefaultHashBuilder,
    quick_cache::sync::DefaultLifecycle<(Arc<str>, u64), Bytes>,
>;

impl Weighter<(Arc<str>, u64), Bytes> for ChunkBytes {
    fn weight(&self, _key: &(Arc<str>, u64), value: &Bytes) -> u64 {
        value.len().max(1) as u64
    }
}

/// The chunk cache of one source: chunks by (object version, index), weighed by bytes.
pub(crate) struct Chunks {
    size: u64,
    cache: Option<Cache<(Arc<str>, u64), Bytes, ChunkBytes>>,
    streams: Mutex<Streams>,
    /// Reads waiting to be fetched together, by object version.
    waiting: Mutex<HashMap<Arc<str>, Waiting>>,
}

/// The latest runs of sequential fetches: where each would continue, and how long it is.
#[derive(Default)]
struct Streams {
    runs: Vec<Stream>,
    tick: u64,
}

struct Stream {
    version: Arc<str>,
    /// The chunk after the last one fetched (or claimed) by this run.
    next: u64,
    /// How many fetches in a row continued it.
    streak: u32,
    used: u64,
}

impl Streams {
    /// A fetch of chunks `first..=last` of `version`: how long a run it continues (0 when it
    /// continues none: it starts more than `slack` chunks past every run's end), and the run's
    /// slot. The run then ends at `last`, until [`extend`](Self::extend) says more.
    fn fetch(&mut self, version: &Arc<str>, first: u64, last: u64, slack: u64) -> (u32, usize) {
        self.tick += 1;
        let tick = self.tick;
        // Other reads of the run may have taken the chunks just after it (concurrent readers of
        // one level's tiles): a fetch a little further on continues it too.
        if let Some((slot, s)) = self.runs.iter_mut().enumerate().find(|(_, s)| {
            (s.next..=s.next.saturating_add(slack)).contains(&first) && s.version == *version
        }) {
            s.streak = s.streak.saturating_add(1);
            s.next = last + 1;
            s.used = tick;
            return (s.streak, slot);
        }
        let new = Stream {
            version: Arc::clone(version),
            next: last + 1,
            streak: 0,
            used: tick,
        };
        if self.runs.len() < STREAMS {
            self.runs.push(new);
            return (0, self.runs.len() - 1);
        }
        let oldest = (0..self.runs.len())
            .min_by_key(|&i| self.runs[i].used)
            .unwrap_or(0);
        self.runs[oldest] = new;
        (0, oldest)
    }

    /// The run in `slot` that ended at `last` now ends at `to` (chunks read ahead), unless
    /// another fetch took the slot meanwhile.
    fn extend(&mut self, slot: usize, version: &Arc<str>, last: u64, to: u64) {
        if let Some(s) = self.runs.get_mut(slot)
            && s.next == last + 1
            && s.version == *version
        {
            s.next = to + 1;
        }
    }
}

impl std::fmt::Debug for Chunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunks")
            .field("size", &self.size)
            .field("cached", &self.cache.as_ref().map(|c| c.weight()))
            .finish()
    }
}

impl Chunks {
    /// Chunks of `size` bytes (at least 64 KiB), at most `max_bytes` of them kept; 0 keeps none
    /// (every read is then fetched as it is).
    pub(crate) fn new(size: u64, max_bytes: u64) -> Self {
        let size = size.max(64 << 10);
        let cache = (max_bytes > 0).then(|| {
            let items = (max_bytes / size).clamp(4, 1 << 16) as usize;
            // Half the cache for chunks not asked for twice yet (read ahead, or a level's tiles
            // read once): with quick_cache's default (3%), chunks read ahead would be evicted
            // by the next fetches before the reads that want them come.
            let options = quick_cache::OptionsBuilder::new()
                .estimated_items_capacity(items)
                .weight_capacity(max_bytes)
                .hot_allocation(0.5)
                .build()
                .expect("both capacities are set");
            Cache::with_options(
                options,
                ChunkBytes,
                quick_cache::DefaultHashBuilder::default(),
                quick_cache::sync::DefaultLifecycle::default(),
            )
        });
        Self {
            size,
            cache,
            streams: Mutex::default(),
            waiting: Mutex::default(),
        }
    }

    /// How many chunks to read ahead of a fetch that continues a run of `streak` fetches: none
    /// for the first two fetches of a run (one region's header and data), then half of
    /// [`MAX_READ_AHEAD`], then all of it.
    fn ahead(&self, streak: u32) -> u64 {
        let bytes = match streak {
            0 | 1 => return 0,
            2 => MAX_READ_AHEAD / 2,
            _ => MAX_READ_AHEAD,
        };
        (bytes / self.size).max(1)
    }

    /// The last chunk a read ahead of `ahead` chunks after chunk `last` reads: the last chunk
    /// of the [`BLOCK`] that chunk `last + ahead` is in, so that a run's next fetch starts on a
    /// block; `last + ahead` when chunks do not divide a block.
    fn read_ahead_end(&self, last: u64, ahead: u64) -> u64 {
        let per_block = BLOCK / self.size;
        if ahead == 0 || per_block < 2 || !BLOCK.is_multiple_of(self.size) {
            return last + ahead;
        }
        ((last + ahead) / per_block + 1) * per_block - 1
    }

    /// `range` of the object `version` (length `len`), from cached chunks or fetched by chunk.
    /// The future must be polled to its end or dropped: one left pending while it leads a
    /// gathering holds up the object's other reads.
    pub(crate) async fn read(
        &self,
        version: &Arc<str>,
        len: u64,
        range: Range<u64>,
        fetch: &impl FetchRange,
    ) -> Result<Bytes, Error> {
        let (start, end) = (range.start.min(len), range.end.min(len));
        if start >= end {
            return Ok(Bytes::new());
        }
        let (first, last) = (start / self.size, (end - 1) / self.size);
        let cache = match &self.cache {
            Some(c) if end - start < MAX_CACHED_READ => c,
            _ => return checked(fetch.fetch(start..end).await?, end - start),
        };
        // Each chunk: cached, claimed (a placeholder others wait on until this read fills it),
        // or being fetched by another read (waited for once this read's own are filled). While
        // it holds claims it has not filled, a read waits only for its gathering's leader,
        // which waits for no read, so no two reads wait on each other; and it claims all it
        // can at once, so that its chunks are fetched together, with those of the reads ready
        // at the same time.
        let mut parts: Vec<Option<Bytes>> = Vec::with_capacity((last - first + 1) as usize);
        let mut claimed = Vec::new();
        let mut elsewhere = Vec::new();
        for i in first..=last {
            match cache.get_value_or_guard(&(Arc::clone(version), i), Some(Duration::ZERO)) {
                GuardResult::Value(bytes) => parts.push(Some(bytes)),
                GuardResult::Guard(guard) => {
                    claimed.push((i, guard));
                    parts.push(None);
                }
                GuardResult::Timeout => {
                    elsewhere.push(i);
                    parts.push(None);
                }
            }
        }
        // Read ahead when the last run of claimed chunks continues an earlier fetch: the chunks
        // after it that no one has or is fetching (never waiting for one).
        if let Some(&(run_last, _)) = claimed.last() {
            let mut run_first = run_last;
            for (i, _) in claimed.iter().rev().skip(1) {
                if *i + 1 != run_first {
                    break;
                }
                run_first = *i;
            }
            let (streak, slot) = self
                .streams
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .fetch(version, run_first, run_last, SLACK / self.size);
            let chunks = len.div_ceil(self.size);
            let ahead = self.ahead(streak);
            let end = self.read_ahead_end(run_last, ahead);
            // Past the read ahead, free chunks are claimed only if a kept one follows (the
            // claims of a hole that none follows are let go when `hole` goes out of scope).
            let past = if ahead > 0 {
                (HOLE / self.size).max(1)
            } else {
                0
            };
            let mut to = run_last;
            let mut hole = Vec::new();
            for i in (run_last + 1..chunks).take((end - run_last + past) as usize) {
                match cache.get_value_or_guard(&(Arc::clone(version), i), Some(Duration::ZERO)) {
                    GuardResult::Guard(guard) if i > end => hole.push((i, guard)),
                    GuardResult::Guard(guard) => {
                        claimed.push((i, guard));
                        to = i;
                    }
                    GuardResult::Value(_) | GuardResult::Timeout => {
                        if let Some(&(last, _)) = hole.last() {
                            to = last;
                            claimed.append(&mut hole);
                        }
                        break;
                    }
                }
            }
            if to > run_last {
                self.streams
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(slot, version, run_last, to);
            }
        }
        for (i, chunk) in self.fill(version, len, claimed, fetch).await? {
            if let Some(part) = parts.get_mut((i - first) as usize) {
                *part = Some(chunk);
            }
        }
        // The chunks other reads were fetching: theirs, or this read's to fetch when theirs
        // failed.
        for i in elsewhere {
            let chunk = match cache
                .get_value_or_guard_async(&(Arc::clone(version), i))
                .await
            {
                Ok(chunk) => chunk,
                Err(guard) => {
                    let filled = self.fill(version, len, vec![(i, guard)], fetch).await?;
                    filled
                        .into_iter()
                        .next()
                        .map(|(_, c)| c)
                        .unwrap_or_default()
                }
            };
            if let Some(part) = parts.get_mut((i - first) as usize) {
                *part = Some(chunk);
            }
        }
        if first == last {
            let bytes = parts.pop().flatten().unwrap_or_default();
            let at = (start - first * self.size) as usize;
            return Ok(bytes.slice(at..at + (end - start) as usize));
        }
        let mut out = BytesMut::with_capacity((end - start) as usize);
        for (i, bytes) in (first..=last).zip(parts) {
            let bytes = bytes.unwrap_or_default();
            let base = i * self.size;
            let from = start.max(base) - base;
            let to = end.min(base + bytes.len() as u64) - base;
            out.extend_from_slice(&bytes[from as usize..to as usize]);
        }
        Ok(out.freeze())
    }

    /// Fetches the `claimed` chunks (ascending), one range per run of consecutive chunks, with
    /// the ranges of the other reads ready at the same time, and fills their placeholders: each
    /// chunk's index and bytes. Each chunk is a buffer of its own, so that the cache weighs what
    /// it keeps.
    async fn fill(
        &self,
        version: &Arc<str>,
        len: u64,
        claimed: Vec<(u64, Claim<'_>)>,
        fetch: &impl FetchRange,
    ) -> Result<Vec<(u64, Bytes)>, Error> {
        // One span per run of consecutive chunks; the chunks come back in the claims' order.
        let mut spans: Vec<Range<u64>> = Vec::new();
        for &(i, _) in &claimed {
            let (start, end) = (i * self.size, (i + 1).saturating_mul(self.size).min(len));
            match spans.last_mut() {
                Some(span) if span.end == start => span.end = end,
                _ => spans.push(start..end),
            }
        }
        let fetched = self.fetch_together(version, spans, fetch).await?;
        let mut filled = Vec::with_capacity(claimed.len());
        for ((i, guard), chunk) in claimed.into_iter().zip(fetched.into_iter().flatten()) {
            let _ = guard.insert(chunk.clone());
            filled.push((i, chunk));
        }
        Ok(filled)
    }

    /// The byte ranges `spans` (each whole chunks) of the object `version`, cut into chunks,
    /// fetched together with those of the other reads of the object that are ready now. The
    /// first read to come leads: it yields [`GATHER_YIELDS`] times, so that the tasks ready with
    /// it (the other tile requests of a burst, woken by the same header or chunk) reach their
    /// reads and join, then fetches the ranges gathered, one request per group of adjacent
    /// ranges, and hands each read its chunks as they come; it returns once every group is
    /// done. A store pays for each request (a round trip; Garage verifies each stored block a
    /// request touches), so a viewer's burst of tiles stored side by side costs a few long
    /// requests, not one each. A gathered read fetches its own ranges when the leader is gone
    /// (its client left) or its fetch failed (the fault may be the leader's alone: an HTTP
    /// source fetches with the leader's credentials).
    async fn fetch_together(
        &self,
        version: &Arc<str>,
        spans: Vec<Range<u64>>,
        fetch: &impl FetchRange,
    ) -> Result<Vec<Vec<Bytes>>, Error> {
        if spans.is_empty() {
            return Ok(Vec::new());
        }
        let mut answers = Vec::with_capacity(spans.len());
        let lead = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            // A list is never empty while it is in the map: the first read to come leads.
            let list = waiting.entry(Arc::clone(version)).or_default();
            let lead = list.is_empty();
            for span in &spans {
                let (tx, rx) = tokio::sync::oneshot::channel();
                list.push((span.clone(), tx));
                answers.push(rx);
            }
            lead
        };
        if lead {
            let mut gathering = Gathering {
                waiting: &self.waiting,
                version,
                done: false,
            };
            for _ in 0..GATHER_YIELDS {
                tokio::task::yield_now().await;
            }
            let list = gathering.take();
            serve_together(list, self.size, fetch).await;
        }
        let mut out = Vec::with_capacity(spans.len());
        for (answer, span) in answers.into_iter().zip(spans) {
            out.push(match answer.await {
                Ok(Ok(chunks)) => chunks,
                Ok(Err(e)) if lead => return Err(e),
                // The lead's fetch failed or was dropped: this read's own, chunk by chunk.
                Ok(Err(_)) | Err(_) => {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    serve_group(span.clone(), vec![(span, tx)], self.size, fetch).await;
                    // `serve_group` answers every member before it returns.
                    rx.await.unwrap_or_else(|_| {
                        Err(Error::internal("a fetch ended without answering its read"))
                    })?
                }
            });
        }
        Ok(out)
    }

    /// Forget every chunk and every run read ahead along (a purge).
    pub(crate) fn clear(&self) {
        if let Some(c) = &self.cache {
            c.clear();
        }
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .runs
            .clear();
    }

    /// Forget the chunks, and the runs read ahead along, of every version whose key starts
    /// with `object` and a NUL. (A run kept would make the next open's first reads, at the
    /// same places, look like its continuation, and read ahead of them.)
    pub(crate) fn forget(&self, object: &str) {
        let of = |version: &str| {
            version.starts_with(object) && version.as_bytes().get(object.len()) == Some(&0)
        };
        if let Some(c) = &self.cache {
            c.retain(|(version, _), _| !of(version));
        }
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .runs
            .retain(|s| !of(&s.version));
    }
}

/// The reads of one object waiting for a fetch that serves them together: each byte range, and
/// where its bytes go.
type Waiting = Vec<(
    Range<u64>,
    tokio::sync::oneshot::Sender<Result<Vec<Bytes>, Error>>,
)>;

/// A leading read's hold on its object's gathering reads: dropped before it took them (its
/// client left), it lets them go, and each then fetches its own ranges.
struct Gathering<'a> {
    waiting: &'a Mutex<HashMap<Arc<str>, Waiting>>,
    version: &'a Arc<str>,
    done: bool,
}

impl Gathering<'_> {
    /// The reads gathered: from now on, a new read of the object leads a new gathering.
    fn take(&mut self) -> Waiting {
        self.done = true;
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.remove(self.version).unwrap_or_default()
    }
}

impl Drop for Gathering<'_> {
    fn drop(&mut self) {
        if !self.done {
            drop(self.take());
        }
    }
}

/// Fetches the ranges of `list`, one request per group of adjacent ranges (at most
/// [`MAX_TOGETHER`] bytes), the groups at once, and sends each range its chunks of `size`
/// bytes as soon as they are in.
async fn serve_together(mut list: Waiting, size: u64, fetch: &impl FetchRange) {
    list.sort_by_key(|(span, _)| span.start);
    let mut groups: Vec<(Range<u64>, Waiting)> = Vec::new();
    for (span, tx) in list {
        match groups.last_mut() {
            Some((group, members))
                if span.start == group.end && span.end - group.start <= MAX_TOGETHER =>
            {
                group.end = span.end;
                members.push((span, tx));
            }
            _ => groups.push((span.clone(), vec![(span, tx)])),
        }
    }
    let serves = groups
        .into_iter()
        .map(|(group, members)| serve_group(group, members, size, fetch));
    futures_util::future::join_all(serves).await;
}

/// Fetches `group` in one request and sends each of its `members` (adjacent ranges of whole
/// chunks of `size` bytes, in order, covering it) its chunks, each a buffer of its own, once
/// they are in; a fault goes to each member not yet served.
async fn serve_group(group: Range<u64>, members: Waiting, size: u64, fetch: &impl FetchRange) {
    let want = group.end - group.start;
    let mut members = members.into_iter();
    let mut pieces = match fetch.fetch_pieces(group).await {
        Ok(pieces) => pieces,
        Err(e) => {
            members.for_each(|(_, tx)| drop(tx.send(Err(e.clone()))));
            return;
        }
    };
    let mut got = 0u64;
    let mut next = members.next();
    // The chunks of `next` so far, and the one being filled.
    let mut chunks = Vec::new();
    let mut buf = BytesMut::new();
    let fault = loop {
        let mut piece = match pieces.next().await {
            Some(Ok(piece)) => piece,
            Some(Err(e)) => break e,
            None if got == want => return,
            None => break wrong_length(got, want),
        };
        got += piece.len() as u64;
        if got > want {
            break wrong_length(got, want);
        }
        // The members cover the group: while fewer bytes than asked came, each byte has one.
        while let Some((span, _)) = next.as_ref().filter(|_| !piece.is_empty()) {
            let (span_len, at) = (span.end - span.start, chunks.len() as u64 * size);
            let chunk_len = size.min(span_len - at) as usize;
            if buf.is_empty() {
                buf.reserve(chunk_len);
            }
            let take = (chunk_len - buf.len()).min(piece.len());
            buf.extend_from_slice(&piece.split_to(take));
            if buf.len() < chunk_len {
                break; // the piece is used up
            }
            chunks.push(std::mem::take(&mut buf).freeze());
            if at + chunk_len as u64 == span_len
                && let Some((_, tx)) = next.take()
            {
                let _ = tx.send(Ok(std::mem::take(&mut chunks)));
                next = members.next();
            }
        }
    };
    next.into_iter()
        .chain(members)
        .for_each(|(_, tx)| drop(tx.send(Err(fault.clone()))));
}

/// A fetch that sent `got` bytes for a range of `want`.
fn wrong_length(got: u64, want: u64) -> Error {
    Error::bad_gateway(format!("upstream sent {got} bytes for a range of {want}"))
}

/// A fetched range must be exactly as long as asked: a short or long answer (a changed object,
/// a server that misreads ranges) is an upstream fault, not a truncated image.
fn checked(bytes: Bytes, want: u64) -> Result<Bytes, Error> {
    match bytes.len() as u64 == want {
        true => Ok(bytes),
        false => Err(wrong_length(bytes.len() as u64, want)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// An object in memory that records each fetch. A fetch's pieces from byte `hold_from` of
    /// the object on wait until `hold` has a permit.
    struct Mem {
        data: Vec<u8>,
        calls: Mutex<Vec<Range<u64>>>,
        hold_from: u64,
        hold: Arc<tokio::sync::Semaphore>,
    }

    impl FetchRange for Mem {
        async fn fetch(&self, range: Range<u64>) -> Result<Bytes, Error> {
            self.calls.lock().unwrap().push(range.clone());
            let end = (range.end as usize).min(self.data.len());
            Ok(Bytes::copy_from_slice(
                &self.data[(range.start as usize).min(end)..end],
            ))
        }

        /// The range in pieces of 10,000 bytes (not a divisor of any chunk size).
        async fn fetch_pieces(&self, range: Range<u64>) -> Result<Pieces, Error> {
            let start = range.start;
            let bytes = self.fetch(range).await?;
            let (hold_from, hold) = (self.hold_from, Arc::clone(&self.hold));
            let pieces = (0..bytes.len()).step_by(10_000).map(move |at| {
                let piece = bytes.slice(at..(at + 10_000).min(bytes.len()));
                let held = start + at as u64 >= hold_from;
                let hold = Arc::clone(&hold);
                async move {
                    if held {
                        let _open = hold.acquire().await;
                    }
                    Ok(piece)
                }
            });
            Ok(futures_util::stream::iter(pieces).then(|p| p).boxed())
        }
    }

    fn mem(len: usize) -> Mem {
        Mem {
            data: (0..len).map(|i| (i * 7 % 251) as u8).collect(),
            calls: Mutex::default(),
            hold_from: u64::MAX,
            hold: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }

    #[tokio::test]
    async fn reads_are_served_from_chunks_fetched_once() {
        let m = mem(1_000_000);
        let chunks = Chunks::new(65_536, 4 << 20);
        let v: Arc<str> = "obj\0v1".into();
        for range in [
            10..20,
            600_000..600_010,
            65_530..65_540,
            0..1_000_000,
            999_990..1_100_000,
            100..100,
        ] {
            let got = chunks.read(&v, 1_000_000, range.clone(), &m).await.unwrap();
            let end = (range.end as usize).min(1_000_000);
            assert_eq!(&got[..], &m.data[range.start as usize..end], "{range:?}");
        }
        let calls = m.calls.lock().unwrap().clone();
        // Chunk 0; chunk 9 (far from it); chunk 1 (the second fetch of chunk 0's run: nothing
        // read ahead); the whole object needs chunks 2 to 8 and 10 to 15 more, a request each
        // (the last chunk short); the last read is inside chunk 15.
        assert_eq!(
            calls,
            vec![
                0..65_536,
                589_824..655_360,
                65_536..131_072,
                131_072..589_824,
                655_360..1_000_000
            ]
        );
    }

    /// 40 KB reads of `m` one after the other, as a level's tiles are, up to `upto`; each
    /// checked.
    async fn read_one_after_another(chunks: &Chunks, m: &Mem, upto: u64) {
        let v: Arc<str> = "obj".into();
        let mut at = 0u64;
        while at < upto {
            let got = chunks
                .read(&v, m.data.len() as u64, at..at + 40_000, m)
                .await
                .unwrap();
            assert_eq!(&got[..], &m.data[at as usize..at as usize + 40_000]);
            at += 40_000;
        }
    }

    #[tokio::test]
    async fn sequential_reads_are_read_ahead() {
        let len = 4 << 20;
        let m = mem(len);
        let chunks = Chunks::new(65_536, 8 << 20);
        read_one_after_another(&chunks, &m, 1_600_000).await;
        let calls = m.calls.lock().unwrap().clone();
        // The first two fetches alone; the third with 512 KiB more, on to the end of the
        // first block; then 1 MiB more, on to the end of the block that ends in.
        assert_eq!(
            calls,
            vec![0..65_536, 65_536..131_072, 131_072..BLOCK, BLOCK..3 * BLOCK],
            "{calls:?}"
        );
    }

    /// A run's read ahead ends on a block of the store, so its next fetch starts on one: a
    /// store that reads a ranged GET's blocks whole reads each block of the run once.
    #[tokio::test]
    async fn a_run_reads_ahead_block_by_block() {
        let len = 8 << 20;
        let m = mem(len);
        let chunks = Chunks::new(65_536, 16 << 20);
        read_one_after_another(&chunks, &m, 6_000_000).await;
        let calls = m.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 6, "{calls:?}");
        assert!(
            calls[2..].iter().all(|c| c.end.is_multiple_of(BLOCK)),
            "{calls:?}"
        );
        assert!(
            calls[3..].iter().all(|c| c.start.is_multiple_of(BLOCK)),
            "{calls:?}"
        );
        // Never more than a block past the 1 MiB read ahead.
        assert!(calls.last().unwrap().end <= 6_000_000 + MAX_READ_AHEAD + BLOCK);
    }

    #[test]
    fn a_read_ahead_ends_on_a_block() {
        let c = Chunks::new(65_536, 1 << 20);
        // Chunks 3 to 10, on to 15, the first block's last.
        assert_eq!(c.read_ahead_end(2, 8), 15);
        assert_eq!(c.read_ahead_end(11, 16), 31);
        // From a block's first chunk: that block and the next.
        assert_eq!(c.read_ahead_end(32, 16), 63);
        // From a block's last chunk: the next block.
        assert_eq!(c.read_ahead_end(47, 16), 63);
        assert_eq!(c.read_ahead_end(5, 0), 5);
        // Chunks that do not divide a block, or as large: as asked.
        assert_eq!(Chunks::new(96 << 10, 1 << 20).read_ahead_end(3, 10), 13);
        assert_eq!(Chunks::new(2 << 20, 8 << 20).read_ahead_end(3, 1), 4);
    }

    /// A purge forgets the runs read ahead along with the chunks: a new open's first read where
    /// a run of the old one ended is not taken for its continuation.
    #[tokio::test]
    async fn a_purge_forgets_the_runs_read_ahead() {
        let len = 4 << 20;
        let m = mem(len);
        let chunks = Chunks::new(65_536, 8 << 20);
        let v: Arc<str> = "obj\0etag\0len".into();
        for at in (0..655_360).step_by(65_536) {
            chunks
                .read(&v, len as u64, at..at + 65_536, &m)
                .await
                .unwrap();
        }
        let before = m.calls.lock().unwrap().last().cloned().unwrap();
        chunks.forget("obj");
        let next = before.end;
        let got = chunks
            .read(&v, len as u64, next..next + 100, &m)
            .await
            .unwrap();
        assert_eq!(&got[..], &m.data[next as usize..next as usize + 100]);
        let calls = m.calls.lock().unwrap().clone();
        // Read ahead before the purge; the read after it fetches its chunk alone.
        assert!(before.end - before.start > 65_536, "{calls:?}");
        assert_eq!(calls.last(), Some(&(next..next + 65_536)), "{calls:?}");
    }

    #[tokio::test]
    async fn reads_far_apart_fetch_their_own_chunks_only() {
        let len = 4 << 20;
        let m = mem(len);
        let chunks = Chunks::new(65_536, 8 << 20);
        let v: Arc<str> = "obj".into();
        // A header every 400 KB (a JPEG 2000's tile-parts): never a continuation.
        for k in 0..10u64 {
            let at = k * 400_000;
            chunks
                .read(&v, len as u64, at..at + 4096, &m)
                .await
                .unwrap();
        }
        let calls = m.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 10);
        assert!(calls.iter().all(|r| r.end - r.start == 65_536), "{calls:?}");
    }

    #[tokio::test]
    async fn a_read_a_little_past_a_run_continues_it() {
        let len = 4 << 20;
        let m = mem(len);
        let chunks = Chunks::new(65_536, 8 << 20);
        let v: Arc<str> = "obj".into();
        // Chunks 0, 2 and 4 (other readers would have taken 1 and 3): one run, the third
        // fetch read ahead.
        for at in [0, 140_000, 270_000] {
            chunks
                .read(&v, len as u64, at..at + 1000, &m)
                .await
                .unwrap();
        }
        // Chunk 20 is past the slack of that run's end (chunk 15, the end of the first
        // block): a run of its own.
        chunks
            .read(&v, len as u64, 1_320_000..1_321_000, &m)
            .await
            .unwrap();
        let calls = m.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            vec![
                0..65_536,
                131_072..196_608,
                262_144..1_048_576,
                1_310_720..1_376_256
            ]
        );
    }

    #[tokio::test]
    async fn reading_ahead_stops_at_a_chunk_already_there_and_at_the_end() {
        let m = mem(400_000);
        let chunks = Chunks::new(65_536, 8 << 20);
        let v: Arc<str> = "obj".into();
        for at in [270_000, 0, 70_000, 140_000, 330_000, 394_000] {
            let to = (at + 1000).min(400_000);
            chunks.read(&v, 400_000, at..to, &m).await.unwrap();
        }
        let calls = m.calls.lock().unwrap().clone();
        // Chunk 4, then 0: two runs. Chunks 1 and 2 continue chunk 0's: the third fetch reads
        // ahead to chunk 3 only, as chunk 4 is already there. Chunks 5 and 6 continue chunk
        // 4's run: the third fetch reads ahead, but chunk 6 is the last (short).
        assert_eq!(
            calls,
            vec![
                262_144..327_680,
                0..65_536,
                65_536..131_072,
                131_072..262_144,
                327_680..393_216,
                393_216..400_000
            ]
        );
    }

    /// A read ahead that would stop one chunk short of a chunk already there (a level's last
    /// tiles before its IFD, read at the open) reads that chunk too, so that no read fetches it
    /// alone later; one that would stop further from it does not.
    #[tokio::test]
    async fn reading_ahead_leaves_no_small_hole_before_a_chunk_already_there() {
        for (kept, want_end) in [(17u64, 17 * 65_536), (19, BLOCK)] {
            let m = mem(4 << 20);
            let chunks = Chunks::new(65_536, 8 << 20);
            let v: Arc<str> = "obj".into();
            // A chunk far on (an IFD), then a run: chunk 0, 1, then 2 read ahead to the first
            // block's end (chunk 15).
            for chunk in [kept, 0, 1, 2] {
                let at = chunk * 65_536 + 10;
                chunks.read(&v, 4 << 20, at..at + 100, &m).await.unwrap();
            }
            let calls = m.calls.lock().unwrap().clone();
            assert_eq!(calls[3], 131_072..want_end, "kept chunk {kept}: {calls:?}");
            // The chunks up to the kept one: read, or the next fetch of the run.
            for chunk in 3..kept {
                let at = chunk * 65_536 + 10;
                let got = chunks.read(&v, 4 << 20, at..at + 100, &m).await.unwrap();
                assert_eq!(&got[..], &m.data[at as usize..at as usize + 100]);
            }
            let after = m.calls.lock().unwrap().len();
            assert_eq!(
                after,
                if kept == 17 { 4 } else { 5 },
                "{:?}",
                m.calls.lock().unwrap()
            );
        }
    }

    #[tokio::test]
    async fn concurrent_reads_of_one_chunk_fetch_it_once() {
        let m = mem(300_000);
        let chunks = Chunks::new(65_536, 1 << 20);
        let v: Arc<str> = "obj".into();
        let reads = (0..5).map(|k| {
            let start = 60_000 + k * 1000;
            chunks.read(&v, 300_000, start..start + 10_000, &m)
        });
        for got in futures_util::future::join_all(reads).await {
            assert_eq!(got.unwrap().len(), 10_000);
        }
        let calls = m.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            vec![0..131_072],
            "one request for the two chunks, shared"
        );
    }

    #[tokio::test]
    async fn large_reads_bypass_the_cache_and_short_answers_are_upstream_faults() {
        let m = mem(2_000_000);
        let chunks = Chunks::new(65_536, 1 << 20);
        let v: Arc<str> = "obj".into();
        let big = MAX_CACHED_READ;
        let m_big = mem(big as usize);
        let got = chunks.read(&v, big, 0..big, &m_big).await.unwrap();
        assert_eq!(got.len() as u64, big);
        assert_eq!(m_big.calls.lock().unwrap().clone(), vec![0..big]);
        // The object is said to be longer than it is: the short chunk is refused with a 502.
        let err = chunks.read(&v, 2_100_000, 1_990_000..2_010_000, &m).await;
        assert_eq!(err.unwrap_err().status(), 502);
    }

    #[tokio::test]
    async fn reads_ready_at_once_are_fetched_together() {
        let m = mem(1_000_000);
        let chunks = Chunks::new(65_536, 4 << 20);
        let v: Arc<str> = "obj".into();
        // Chunks 0-1, chunks 2-3 (side by side), and chunk 10 (far off): asked for at once,
        // as a burst's tile requests are.
        let ranges = [0..100_000, 140_000..240_000, 660_000..661_000];
        let reads = ranges
            .iter()
            .map(|r| chunks.read(&v, 1_000_000, r.clone(), &m));
        for (got, r) in futures_util::future::join_all(reads)
            .await
            .into_iter()
            .zip(&ranges)
        {
            assert_eq!(&got.unwrap()[..], &m.data[r.start as usize..r.end as usize]);
        }
        let calls = m.calls.lock().unwrap().clone();
        assert_eq!(calls, vec![0..262_144, 655_360..720_896]);
    }

    #[tokio::test]
    async fn a_read_fetches_its_free_chunks_before_waiting_for_one_another_fetches() {
        let m = mem(1_000_000);
        let chunks = Chunks::new(65_536, 4 << 20);
        let v: Arc<str> = "obj".into();
        // The first read claims chunks 1 and 2; the second needs chunk 0 and chunk 1: it claims
        // chunk 0 at once (not after chunk 1 is in), so both go in one request.
        let reads = [70_000..140_000, 10_000..80_000].map(|r| chunks.read(&v, 1_000_000, r, &m));
        let [a, b] = futures_util::future::join_all(reads)
            .await
            .try_into()
            .unwrap();
        assert_eq!(&a.unwrap()[..], &m.data[70_000..140_000]);
        assert_eq!(&b.unwrap()[..], &m.data[10_000..80_000]);
        assert_eq!(m.calls.lock().unwrap().clone(), vec![0..196_608]);
    }

    #[tokio::test]
    async fn reads_gathered_by_a_read_that_is_dropped_fetch_their_own() {
        let m = mem(1_000_000);
        let chunks = Chunks::new(65_536, 4 << 20);
        let v: Arc<str> = "obj".into();
        let mut leader = Box::pin(chunks.read(&v, 1_000_000, 0..1000, &m));
        assert!(
            futures_util::poll!(leader.as_mut()).is_pending(),
            "gathering"
        );
        let mut gathered = Box::pin(chunks.read(&v, 1_000_000, 70_000..71_000, &m));
        assert!(
            futures_util::poll!(gathered.as_mut()).is_pending(),
            "gathered"
        );
        // The leader's client leaves before it fetched anything.
        drop(leader);
        let got = gathered.await.unwrap();
        assert_eq!(&got[..], &m.data[70_000..71_000]);
        assert_eq!(m.calls.lock().unwrap().clone(), vec![65_536..131_072]);
        // The object's reads gather anew.
        chunks.read(&v, 1_000_000, 0..1000, &m).await.unwrap();
        assert_eq!(m.calls.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_gathered_read_goes_on_as_soon_as_its_part_of_the_fetch_is_in() {
        // Every piece from chunk 2 on is held back.
        let m = Mem {
            hold_from: 131_072,
            ..mem(1_000_000)
        };
        let chunks = Chunks::new(65_536, 4 << 20);
        let v: Arc<str> = "obj".into();
        // The leader wants chunks 2-3, the read gathered with it chunks 0-1: one request.
        let mut leader = Box::pin(chunks.read(&v, 1_000_000, 140_000..240_000, &m));
        assert!(futures_util::poll!(leader.as_mut()).is_pending());
        let first = Box::pin(chunks.read(&v, 1_000_000, 10_000..100_000, &m));
        let within = Duration::from_secs(10);
        let done = tokio::time::timeout(within, futures_util::future::select(leader, first));
        let futures_util::future::Either::Right((got, leader)) = done.await.expect("not held")
        else {
            panic!("the leader's part is held back");
        };
        assert_eq!(&got.unwrap()[..], &m.data[10_000..100_000]);
        m.hold.add_permits(100);
        let got = tokio::time::timeout(within, leader).await.expect("let go");
        assert_eq!(&got.unwrap()[..], &m.data[140_000..240_000]);
        assert_eq!(m.calls.lock().unwrap().clone(), vec![0..262_144]);
    }

    /// Refuses every fetch, as an upstream refuses a caller whose credentials it rejects.
    struct Refused;

    impl FetchRange for Refused {
        async fn fetch_pieces(&self, _: Range<u64>) -> Result<Pieces, Error> {
            Err(Error::new(crate::ErrorKind::Forbidden, "refused"))
        }
    }

    /// Answers every range with `len` bytes in pieces of 3 bytes, whatever was asked, and
    /// counts the pieces taken from it.
    struct Sends {
        len: usize,
        taken: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl FetchRange for Sends {
        async fn fetch_pieces(&self, _: Range<u64>) -> Result<Pieces, Error> {
            let (len, taken) = (self.len, Arc::clone(&self.taken));
            let pieces = (0..len).step_by(3).map(move |at| {
                taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(Bytes::from(
                    (at..(at + 3).min(len)).map(|b| b as u8).collect::<Vec<_>>(),
                ))
            });
            Ok(futures_util::stream::iter(pieces).boxed())
        }
    }

    #[tokio::test]
    async fn a_fetch_is_exactly_as_long_as_its_range() {
        let sends = |len| Sends {
            len,
            taken: Default::default(),
        };
        let exact = sends(10).fetch(5..15).await.unwrap();
        assert_eq!(&exact[..], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let short = sends(7).fetch(5..15).await.unwrap_err();
        assert_eq!(short.status(), 502);
        assert_eq!(short.to_string(), "upstream sent 7 bytes for a range of 10");
        // Refused at the piece that goes past the range (the fourth), not after the body.
        let long = sends(3000);
        let e = long.fetch(5..15).await.unwrap_err();
        assert_eq!(e.status(), 502);
        assert_eq!(
            e.to_string(),
            "upstream sent more than the 10 bytes asked for"
        );
        assert_eq!(long.taken.load(std::sync::atomic::Ordering::Relaxed), 4);
        // A single piece too long, refused as it is.
        let one = |b: Bytes| futures_util::stream::iter([Ok(b)]).boxed();
        let e = gather(one(Bytes::from(vec![0; 11])), 10).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "upstream sent more than the 10 bytes asked for"
        );
    }

    #[tokio::test]
    async fn a_fetch_in_one_piece_is_that_piece() {
        let piece = Bytes::from(vec![7u8; 100_000]);
        let one = futures_util::stream::iter([Ok(piece.clone())]).boxed();
        let got = gather(one, 100_000).await.unwrap();
        assert_eq!(got.as_ptr(), piece.as_ptr());
        assert_eq!(got.len(), 100_000);
    }

    /// A read of 0..1000 through `Refused` and one of 70,000..200,000 through `fetch`, ready
    /// at once: the first leads the gathering, and its fetch fails (403). Their results.
    async fn behind_a_refused_lead(
        chunks: &Chunks,
        fetch: &impl FetchRange,
    ) -> (Result<Bytes, Error>, Result<Bytes, Error>) {
        let v: Arc<str> = "obj".into();
        futures_util::future::join(
            chunks.read(&v, 1_000_000, 0..1000, &Refused),
            chunks.read(&v, 1_000_000, 70_000..200_000, fetch),
        )
        .await
    }

    #[tokio::test]
    async fn a_gathered_read_whose_own_fetch_fails_too_gets_the_fault() {
        let chunks = Chunks::new(65_536, 4 << 20);
        let (led, gathered) = behind_a_refused_lead(&chunks, &Refused).await;
        assert_eq!(led.unwrap_err().status(), 403);
        assert_eq!(gathered.unwrap_err().status(), 403);
    }

    #[tokio::test]
    async fn a_read_gathered_by_a_read_whose_fetch_fails_fetches_and_keeps_its_own() {
        // After the lead's fetch failed, the gathered read fetches its three chunks in one
        // request, and they are kept: reading them again fetches nothing.
        let m = mem(1_000_000);
        let chunks = Chunks::new(65_536, 4 << 20);
        let (led, gathered) = behind_a_refused_lead(&chunks, &m).await;
        assert_eq!(led.unwrap_err().status(), 403);
        assert_eq!(&gathered.unwrap()[..], &m.data[70_000..200_000]);
        let v: Arc<str> = "obj".into();
        let again = chunks.read(&v, 1_000_000, 65_536..262_144, &m).await;
        assert_eq!(&again.unwrap()[..], &m.data[65_536..262_144]);
        assert_eq!(m.calls.lock().unwrap().clone(), vec![65_536..262_144]);
    }
}
