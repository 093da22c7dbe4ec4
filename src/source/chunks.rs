//! Range reads of remote objects grouped into fixed-size chunks, kept in a byte-bounded cache
//! (Cantaloupe's `S3Source.chunking`): a decoder's many small reads of one tiled file (headers,
//! IFDs, tile-part markers) cost one request per chunk, concurrent reads of one chunk make one
//! request, and the missing chunks of one read are fetched in one request. Reads of a chunk or
//! more (tile data) are fetched exactly as asked, not cached: rounding them out to chunks would
//! fetch the neighbours' bytes.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::Error;

/// Default chunk size: 64 KiB. Cantaloupe tunes `S3Source.chunking.chunk_size` to 2 MiB, but
/// measured on the benchmark's 91-tile burst from S3 (docs/BENCHMARKS.md), 2 MiB chunks fetch
/// 3x the bytes 64 KiB chunks do from a JPEG 2000 (every small tile-part header read pulls a
/// chunk holding several tiles) and 1.4x from a pyramidal TIFF.
pub(crate) const DEFAULT_CHUNK_SIZE: u64 = 64 << 10;
/// Default chunk cache: 64 MiB.
pub(crate) const DEFAULT_CHUNK_CACHE_BYTES: u64 = 64 << 20;
/// Reads longer than this are fetched as they are, not through the cache (a whole flat file
/// read once should not evict every tile's chunks).
const MAX_CACHED_READ: u64 = 16 << 20;

/// Fetches one byte range of one object version.
pub(crate) trait FetchRange: Send + Sync {
    fn fetch(&self, range: Range<u64>) -> impl Future<Output = Result<Bytes, Error>> + Send;
}

#[derive(Clone, Copy)]
struct ChunkBytes;

impl Weighter<(Arc<str>, u64), Bytes> for ChunkBytes {
    fn weight(&self, _key: &(Arc<str>, u64), value: &Bytes) -> u64 {
        value.len().max(1) as u64
    }
}

/// The chunk cache of one source: chunks by (object version, index), weighed by bytes.
pub(crate) struct Chunks {
    size: u64,
    cache: Option<Cache<(Arc<str>, u64), Bytes, ChunkBytes>>,
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
            Cache::with_weighter(items, max_bytes, ChunkBytes)
        });
        Self { size, cache }
    }

    /// `range` of the object `version` (length `len`), from cached chunks or fetched by chunk.
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
            Some(c) if end - start < self.size.min(MAX_CACHED_READ) => c,
            _ => return checked(fetch.fetch(start..end).await?, end - start),
        };
        // Each chunk: cached, or claimed (a placeholder others wait on), in ascending order, so
        // that two reads never wait on each other. The claimed chunks are fetched one request
        // per run of consecutive chunks.
        let mut parts: Vec<Option<Bytes>> = Vec::with_capacity((last - first + 1) as usize);
        let mut claimed = Vec::new();
        for i in first..=last {
            match cache
                .get_value_or_guard_async(&(Arc::clone(version), i))
                .await
            {
                Ok(bytes) => parts.push(Some(bytes)),
                Err(guard) => {
                    claimed.push((i, guard));
                    parts.push(None);
                }
            }
        }
        let mut claimed = claimed.into_iter().peekable();
        while let Some((run_first, guard)) = claimed.next() {
            let mut run = vec![(run_first, guard)];
            while let Some((i, _)) = claimed.peek() {
                if *i != run.last().map_or(0, |(j, _)| j + 1) {
                    break;
                }
                run.extend(claimed.next());
            }
            let run_last = run.last().map_or(run_first, |(i, _)| *i);
            let span = run_first * self.size..((run_last + 1) * self.size).min(len);
            let want = span.end - span.start;
            let bytes = checked(fetch.fetch(span).await?, want)?;
            for (i, guard) in run {
                let at = ((i - run_first) * self.size) as usize;
                let chunk = bytes.slice(at..(at + self.size as usize).min(bytes.len()));
                let _ = guard.insert(chunk.clone());
                parts[(i - first) as usize] = Some(chunk);
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

    /// Forget every chunk (a purge).
    pub(crate) fn clear(&self) {
        if let Some(c) = &self.cache {
            c.clear();
        }
    }

    /// Forget the chunks of every version whose key starts with `object` and a NUL.
    pub(crate) fn forget(&self, object: &str) {
        if let Some(c) = &self.cache {
            c.retain(|(version, _), _| {
                !(version.starts_with(object) && version.as_bytes().get(object.len()) == Some(&0))
            });
        }
    }
}

/// A fetched range must be exactly as long as asked: a short or long answer (a changed object,
/// a server that misreads ranges) is an upstream fault, not a truncated image.
fn checked(bytes: Bytes, want: u64) -> Result<Bytes, Error> {
    match bytes.len() as u64 == want {
        true => Ok(bytes),
        false => Err(Error::bad_gateway(format!(
            "upstream sent {} bytes for a range of {want}",
            bytes.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    struct Mem {
        data: Vec<u8>,
        calls: Mutex<Vec<Range<u64>>>,
    }

    impl FetchRange for Mem {
        async fn fetch(&self, range: Range<u64>) -> Result<Bytes, Error> {
            self.calls.lock().unwrap().push(range.clone());
            let end = (range.end as usize).min(self.data.len());
            Ok(Bytes::copy_from_slice(
                &self.data[(range.start as usize).min(end)..end],
            ))
        }
    }

    fn mem(len: usize) -> Mem {
        Mem {
            data: (0..len).map(|i| (i * 7 % 251) as u8).collect(),
            calls: Mutex::default(),
        }
    }

    #[tokio::test]
    async fn reads_are_served_from_chunks_fetched_once() {
        let m = mem(300_000);
        let chunks = Chunks::new(65_536, 1 << 20);
        let v: Arc<str> = "obj\0v1".into();
        for range in [
            10..20,
            65_530..65_540,
            0..300_000,
            299_990..400_000,
            100..100,
        ] {
            let got = chunks.read(&v, 300_000, range.clone(), &m).await.unwrap();
            let end = (range.end as usize).min(300_000);
            assert_eq!(&got[..], &m.data[range.start as usize..end], "{range:?}");
        }
        let calls = m.calls.lock().unwrap().clone();
        // Chunks 0 and 1 for the first two reads; the whole read as it is (a chunk or more);
        // chunk 4 (short) for the last ten bytes.
        assert_eq!(
            calls,
            vec![0..65_536, 65_536..131_072, 0..300_000, 262_144..300_000]
        );
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
        let big = MAX_CACHED_READ + 1;
        let m_big = mem(big as usize);
        let got = chunks.read(&v, big, 0..big, &m_big).await.unwrap();
        assert_eq!(got.len() as u64, big);
        assert_eq!(m_big.calls.lock().unwrap().clone(), vec![0..big]);
        // The object is said to be longer than it is: the short chunk is refused with a 502.
        let err = chunks.read(&v, 2_100_000, 1_990_000..2_010_000, &m).await;
        assert_eq!(err.unwrap_err().status(), 502);
    }
}
