//! Whole copies of remote objects on local disk (Cantaloupe's source cache), for files that are
//! read whole (flat JPEG and PNG, strip TIFF) and for HTTP servers that ignore `Range`.

use std::future::Future;
use std::path::PathBuf;

use bytes::Bytes;

use crate::Error;
use crate::cache::fs::FsCache;
use crate::cache::{CacheBackend, CacheKey, CachedDerivative, SingleFlight};

/// Local disk copies of whole remote objects: at most [`max_bytes`](Self::new) on disk, least
/// recently used evicted first; each copy is kept under its object's version (ETag, length,
/// Last-Modified), so a changed object is fetched again; concurrent first reads of one object
/// download it once; a copy is written to a temporary file and renamed, so a crash never
/// leaves a partial copy that is read.
///
/// Give it to [`HttpSource`](super::HttpSource) or
/// [`ObjectStoreSource`](super::ObjectStoreSource) (`source_cache`).
///
/// ```
/// use tower_iiif::source::SourceCache;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let dir = std::env::temp_dir().join(format!("tower-iiif-doc-srccache-{}", std::process::id()));
/// let cache = SourceCache::new(&dir, 1 << 30).unwrap();
/// assert_eq!(cache.used_bytes(), 0);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SourceCache {
    fs: FsCache,
    flights: SingleFlight<CacheKey, Result<Bytes, Error>>,
}

impl SourceCache {
    /// A cache in `dir` (created if missing; leftovers of an earlier run are indexed, temporary
    /// files deleted) holding at most `max_bytes`.
    ///
    /// # Errors
    ///
    /// When `dir` cannot be created or listed.
    ///
    /// ```
    /// # use tower_iiif::source::SourceCache;
    /// let dir = std::env::temp_dir().join(format!("tower-iiif-doc-srccache2-{}", std::process::id()));
    /// let cache = SourceCache::new(&dir, 10 << 20).unwrap();
    /// assert!(dir.is_dir());
    /// # drop(cache);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> std::io::Result<Self> {
        Ok(Self {
            fs: FsCache::new(dir)?.max_bytes(max_bytes),
            flights: SingleFlight::new(),
        })
    }

    /// Bytes on disk.
    ///
    /// ```
    /// # use tower_iiif::source::SourceCache;
    /// # let dir = std::env::temp_dir().join(format!("tower-iiif-doc-srccache3-{}", std::process::id()));
    /// let cache = SourceCache::new(&dir, 10 << 20).unwrap();
    /// assert_eq!(cache.used_bytes(), 0);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn used_bytes(&self) -> u64 {
        self.fs.used_bytes()
    }

    /// Delete every copy of `object` (its key or URL), whatever its version; the number deleted.
    ///
    /// ```
    /// # use tower_iiif::source::SourceCache;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir().join(format!("tower-iiif-doc-srccache4-{}", std::process::id()));
    /// let cache = SourceCache::new(&dir, 10 << 20).unwrap();
    /// assert_eq!(cache.purge("https://site.example/a.jpg").await, 0);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # }
    /// ```
    pub async fn purge(&self, object: &str) -> usize {
        self.fs.purge_identifier(object).await
    }

    /// Delete every copy; the number deleted.
    ///
    /// ```
    /// # use tower_iiif::source::SourceCache;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir().join(format!("tower-iiif-doc-srccache5-{}", std::process::id()));
    /// let cache = SourceCache::new(&dir, 10 << 20).unwrap();
    /// assert_eq!(cache.purge_all().await, 0);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # }
    /// ```
    pub async fn purge_all(&self) -> usize {
        self.fs.purge_all().await
    }

    /// The whole of `object` at `version`: the local copy, else `fetch`ed once (concurrent
    /// callers share the download, which goes on if they all leave) and kept.
    pub(crate) async fn get_or_fetch<F, Fut>(
        &self,
        object: &str,
        version: &str,
        fetch: F,
    ) -> Result<Bytes, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, Error>> + Send + 'static,
    {
        let key = CacheKey::new(object, version);
        if let Some(hit) = self.fs.get(&key).await {
            return Ok(hit.body);
        }
        let fs = self.fs.clone();
        let k = key.clone();
        let download = fetch();
        self.flights
            .run(key, move || async move {
                let body = download.await?;
                fs.put(
                    k,
                    CachedDerivative::new(body.clone(), "application/octet-stream"),
                )
                .await;
                Ok(body)
            })
            .await?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_first_reads_download_once_and_versions_are_apart() {
        let dir = std::env::temp_dir().join(format!("tower-iiif-srccache-{}", std::process::id()));
        let cache = SourceCache::new(&dir, 1 << 20).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let fetch = |body: &'static [u8]| {
            let calls = Arc::clone(&calls);
            move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Ok(Bytes::from_static(body))
            }
        };
        let (a, b) = tokio::join!(
            cache.get_or_fetch("u", "v1", fetch(b"one")),
            cache.get_or_fetch("u", "v1", fetch(b"one"))
        );
        assert_eq!(
            (&a.unwrap()[..], &b.unwrap()[..]),
            (&b"one"[..], &b"one"[..])
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let again = cache.get_or_fetch("u", "v1", fetch(b"x")).await.unwrap();
        assert_eq!((&again[..], calls.load(Ordering::SeqCst)), (&b"one"[..], 1));
        let v2 = cache.get_or_fetch("u", "v2", fetch(b"two")).await.unwrap();
        assert_eq!((&v2[..], calls.load(Ordering::SeqCst)), (&b"two"[..], 2));
        assert_eq!(cache.purge("u").await, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
