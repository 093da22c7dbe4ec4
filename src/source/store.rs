//! Images in an object store (S3 and S3-compatible servers, GCS, Azure) through the
//! `object_store` crate: metadata by HEAD, cached briefly; reads by range, in chunks kept in a
//! byte-bounded cache, so a tiled TIFF or JPEG 2000 is never fetched whole.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt};
use quick_cache::sync::Cache;
use tracing::Instrument;

use super::cache::SourceCache;
use super::chunks::{self, Chunks, FetchRange};
use super::{Source, SourceMetadata, SourceObject, SourceRequest};
use crate::Error;
use crate::request::Identifier;

/// How long a failed HEAD is the answer for the same object (the opens that waited on it).
const FAILURE_TTL: Duration = Duration::from_secs(1);

/// A HEAD's answer, and when it came.
type Head = (Result<SourceMetadata, Error>, Instant);

/// Images in an object store, the identifier (or the key a [`Keyed`](super::Keyed) template
/// makes of it) being the object's key (Cantaloupe's `S3Source` with the basic lookup
/// strategy). Cheap to clone; clones share the caches.
///
/// - Metadata (length, ETag, Last-Modified) comes from a HEAD request, kept for
///   [`metadata_ttl`](Self::metadata_ttl) (10 s by default); concurrent first opens of an
///   object share one request (and its failure, kept 1 s).
/// - Small reads are grouped into chunks of [`chunk_size`](Self::chunk_size) bytes (64 KiB;
///   Cantaloupe tunes 2 MiB, which fetches more here), kept in a cache of
///   [`chunk_cache_bytes`](Self::chunk_cache_bytes) (64 MiB) and read ahead along
///   sequential runs (a viewer's tiles of one level); reads of 1 MiB or more are fetched as
///   they are.
/// - A missing key is a 404; other store failures a 502, timeouts a 504.
///
/// ```
/// use std::sync::Arc;
/// use object_store::{ObjectStoreExt, memory::InMemory, path::Path};
/// use tower_iiif::source::{ObjectStoreSource, Source, SourceObject};
/// use tower_iiif::request::Identifier;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = Arc::new(InMemory::new());
/// store.put(&Path::from("scans/a.tif"), b"II*\0 tiff bytes".to_vec().into()).await.unwrap();
/// let source = ObjectStoreSource::new(store).chunk_size(64 << 10);
/// let obj = source.open(&Identifier::new("scans/a.tif").unwrap(), &Default::default()).await.unwrap();
/// assert_eq!(obj.metadata().len, 15);
/// assert_eq!(&obj.read_range(5..9).await.unwrap()[..], b"tiff");
/// let missing = source.open(&Identifier::new("scans/b.tif").unwrap(), &Default::default()).await;
/// assert_eq!(missing.unwrap_err().status(), 404);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ObjectStoreSource {
    store: Arc<dyn ObjectStore>,
    heads: Arc<Cache<String, Head>>,
    metadata_ttl: Duration,
    chunks: Arc<Chunks>,
    chunk_size: u64,
    chunk_cache_bytes: u64,
    source_cache: Option<SourceCache>,
}

impl ObjectStoreSource {
    /// Images in `store`.
    ///
    /// ```
    /// use tower_iiif::source::ObjectStoreSource;
    /// let source = ObjectStoreSource::new(std::sync::Arc::new(object_store::memory::InMemory::new()));
    /// # let _ = source;
    /// ```
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            heads: Arc::new(Cache::new(10_000)),
            metadata_ttl: Duration::from_secs(10),
            chunks: Arc::new(Chunks::new(
                chunks::DEFAULT_CHUNK_SIZE,
                chunks::DEFAULT_CHUNK_CACHE_BYTES,
            )),
            chunk_size: chunks::DEFAULT_CHUNK_SIZE,
            chunk_cache_bytes: chunks::DEFAULT_CHUNK_CACHE_BYTES,
            source_cache: None,
        }
    }

    /// Keep whole copies of the objects read whole (flat JPEG and PNG, strip TIFF) on local
    /// disk, in `cache`.
    ///
    /// ```
    /// # use tower_iiif::source::{ObjectStoreSource, SourceCache};
    /// # let store = std::sync::Arc::new(object_store::memory::InMemory::new());
    /// # let dir = std::env::temp_dir().join(format!("tower-iiif-doc-s3sc-{}", std::process::id()));
    /// let source = ObjectStoreSource::new(store).source_cache(SourceCache::new(&dir, 1 << 30).unwrap());
    /// # let _ = source;
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn source_cache(mut self, cache: SourceCache) -> Self {
        self.source_cache = Some(cache);
        self
    }

    /// An S3 bucket, with credentials and region the standard way (the `AWS_*` environment
    /// variables, else the instance profile). With `endpoint` (an S3-compatible server: MinIO,
    /// Garage, Ceph), requests go there, path-style, and plain `http://` is allowed.
    ///
    /// ```
    /// use tower_iiif::source::ObjectStoreSource;
    /// // SAFETY: the doctest is single-threaded.
    /// unsafe { std::env::set_var("AWS_REGION", "garage") };
    /// let source = ObjectStoreSource::s3("images", Some("http://127.0.0.1:3900")).unwrap();
    /// # let _ = source;
    /// ```
    #[cfg(feature = "s3")]
    pub fn s3(bucket: &str, endpoint: Option<&str>) -> Result<Self, Error> {
        Ok(Self::new(Arc::new(s3_store(bucket, endpoint)?)))
    }

    /// Bytes per chunk (at least 64 KiB, the default; Cantaloupe uses 2 MiB). Reads of 1 MiB or
    /// more are fetched as they are.
    ///
    /// ```
    /// # use tower_iiif::source::ObjectStoreSource;
    /// # let store = std::sync::Arc::new(object_store::memory::InMemory::new());
    /// let source = ObjectStoreSource::new(store).chunk_size(512 << 10);
    /// # let _ = source;
    /// ```
    pub fn chunk_size(mut self, bytes: u64) -> Self {
        self.chunk_size = bytes;
        self.chunks = Arc::new(Chunks::new(bytes, self.chunk_cache_bytes));
        self
    }

    /// Bytes of chunks kept (default 64 MiB; 0 keeps none).
    ///
    /// ```
    /// # use tower_iiif::source::ObjectStoreSource;
    /// # let store = std::sync::Arc::new(object_store::memory::InMemory::new());
    /// let source = ObjectStoreSource::new(store).chunk_cache_bytes(256 << 20);
    /// # let _ = source;
    /// ```
    pub fn chunk_cache_bytes(mut self, bytes: u64) -> Self {
        self.chunk_cache_bytes = bytes;
        self.chunks = Arc::new(Chunks::new(self.chunk_size, bytes));
        self
    }

    /// How long an object's metadata (length, ETag) is trusted without a new HEAD (default
    /// 10 s; zero asks every time). A changed object is seen after at most this long.
    ///
    /// ```
    /// # use tower_iiif::source::ObjectStoreSource;
    /// # let store = std::sync::Arc::new(object_store::memory::InMemory::new());
    /// let source = ObjectStoreSource::new(store).metadata_ttl(std::time::Duration::from_secs(60));
    /// # let _ = source;
    /// ```
    pub fn metadata_ttl(mut self, ttl: Duration) -> Self {
        self.metadata_ttl = ttl;
        self
    }

    /// Forget every cached HEAD and chunk (a purge).
    ///
    /// ```
    /// # use tower_iiif::source::ObjectStoreSource;
    /// # let store = std::sync::Arc::new(object_store::memory::InMemory::new());
    /// ObjectStoreSource::new(store).clear();
    /// ```
    pub fn clear(&self) {
        self.heads.clear();
        self.chunks.clear();
    }

    /// The object's metadata: kept, or from a HEAD request that concurrent first opens share
    /// (its failure too: a failure is kept [`FAILURE_TTL`], so that the opens waiting on the
    /// request do not each ask again in turn).
    async fn head(&self, path: &Path) -> Result<SourceMetadata, Error> {
        if self.metadata_ttl.is_zero() {
            return self.head_request(path).await;
        }
        let key = path.to_string();
        let fresh = |(meta, at): &Head| match meta {
            Ok(_) => at.elapsed() < self.metadata_ttl,
            Err(_) => at.elapsed() < FAILURE_TTL,
        };
        // A stale entry is forgotten and asked for again (once: a second stale one, put there
        // meanwhile by another open, is as good as a fresh request).
        for _ in 0..2 {
            match self.heads.get_value_or_guard_async(&key).await {
                Ok(entry) if fresh(&entry) => return entry.0,
                Ok(_) => {
                    self.heads.remove_if(&key, |entry| !fresh(entry));
                }
                Err(guard) => {
                    let meta = self.head_request(path).await;
                    let _ = guard.insert((meta.clone(), Instant::now()));
                    return meta;
                }
            }
        }
        self.head_request(path).await
    }

    async fn head_request(&self, path: &Path) -> Result<SourceMetadata, Error> {
        metrics::counter!("iiif_source_requests_total", "source" => "object-store").increment(1);
        let head = self.store.head(path).await.map_err(store_error)?;
        let modified = std::time::SystemTime::from(head.last_modified);
        let etag = head.e_tag.or(head.version);
        Ok(SourceMetadata::new(head.size, Some(modified), etag))
    }
}

impl Source for ObjectStoreSource {
    type Object = ObjectStoreObject;

    async fn open(&self, id: &Identifier, _request: &SourceRequest) -> Result<Self::Object, Error> {
        let path = Path::parse(id.as_str()).map_err(|_| Error::not_found("image not found"))?;
        let metadata = self.head(&path).await?;
        let version = format!(
            "{path}\0{}\0{}",
            metadata.etag.as_deref().unwrap_or(""),
            metadata.len
        );
        Ok(ObjectStoreObject {
            fetch: Fetch {
                store: Arc::clone(&self.store),
                path,
            },
            version: version.into(),
            metadata,
            chunks: Arc::clone(&self.chunks),
            source_cache: self.source_cache.clone(),
        })
    }

    async fn purge_all(&self) {
        self.clear();
        if let Some(cache) = &self.source_cache {
            cache.purge_all().await;
        }
    }

    async fn purge(&self, id: &Identifier) {
        self.heads.remove(id.as_str());
        self.chunks.forget(id.as_str());
        if let Some(cache) = &self.source_cache {
            cache.purge(id.as_str()).await;
        }
    }

    /// The store must answer: a HEAD of a key that does not exist is a 404 from a reachable
    /// store, anything else a failure.
    async fn check(&self) -> Result<(), Error> {
        match self
            .store
            .head(&Path::from("tower-iiif-health-check"))
            .await
        {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }
}

/// An object of an [`ObjectStoreSource`].
///
/// ```
/// # use std::sync::Arc;
/// # use object_store::{ObjectStoreExt, memory::InMemory, path::Path};
/// use tower_iiif::source::{ObjectStoreObject, ObjectStoreSource, Source, SourceObject};
/// # use tower_iiif::request::Identifier;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let store = Arc::new(InMemory::new());
/// # store.put(&Path::from("a"), b"abc".to_vec().into()).await.unwrap();
/// let source = ObjectStoreSource::new(store);
/// let obj: ObjectStoreObject = source.open(&Identifier::new("a").unwrap(), &Default::default()).await.unwrap();
/// assert_eq!(&obj.read_all().await.unwrap()[..], b"abc");
/// assert!(obj.metadata().etag.is_some());
/// # }
/// ```
#[derive(Debug)]
pub struct ObjectStoreObject {
    fetch: Fetch,
    version: Arc<str>,
    metadata: SourceMetadata,
    chunks: Arc<Chunks>,
    source_cache: Option<SourceCache>,
}

#[derive(Debug)]
struct Fetch {
    store: Arc<dyn ObjectStore>,
    path: Path,
}

impl FetchRange for Fetch {
    async fn fetch_pieces(&self, range: Range<u64>) -> Result<chunks::Pieces, Error> {
        let span =
            tracing::debug_span!("store", key = %self.path, start = range.start, end = range.end);
        metrics::counter!("iiif_source_requests_total", "source" => "object-store").increment(1);
        let options = GetOptions::new().with_range(Some(range));
        let got = self
            .store
            .get_opts(&self.path, options)
            .instrument(span)
            .await
            .map_err(store_error)?;
        Ok(got
            .into_stream()
            .map(|piece| {
                let piece = piece.map_err(store_error)?;
                metrics::counter!("iiif_source_bytes_total", "source" => "object-store")
                    .increment(piece.len() as u64);
                Ok(piece)
            })
            .boxed())
    }
}

impl SourceObject for ObjectStoreObject {
    fn metadata(&self) -> &SourceMetadata {
        &self.metadata
    }

    async fn read_range(&self, range: Range<u64>) -> Result<Bytes, Error> {
        self.chunks
            .read(&self.version, self.metadata.len, range, &self.fetch)
            .await
    }

    async fn read_all(&self) -> Result<Bytes, Error> {
        let len = self.metadata.len;
        let Some(cache) = &self.source_cache else {
            return self.fetch.fetch(0..len).await;
        };
        let (store, path) = (Arc::clone(&self.fetch.store), self.fetch.path.clone());
        let download = async move { Fetch { store, path }.fetch(0..len).await };
        cache
            .get_or_fetch(self.fetch.path.as_ref(), &self.version, move || download)
            .await
    }
}

#[cfg(feature = "s3")]
pub(crate) fn s3_store(
    bucket: &str,
    endpoint: Option<&str>,
) -> Result<object_store::aws::AmazonS3, Error> {
    let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(endpoint) = endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    builder
        .build()
        .map_err(|e| Error::internal(format!("S3 configuration: {e}")))
}

/// An object store's error as the client sees it: 404 for a missing key, 504 for a timeout,
/// 502 for the rest (logged in full; the message names the kind only).
pub(crate) fn store_error(e: object_store::Error) -> Error {
    match &e {
        object_store::Error::NotFound { .. } | object_store::Error::InvalidPath { .. } => {
            Error::not_found("image not found")
        }
        _ if super::upstream::is_timeout(&e) => {
            metrics::counter!("iiif_upstream_errors_total", "source" => "object-store")
                .increment(1);
            Error::gateway_timeout("the object store did not answer in time")
        }
        _ => {
            tracing::warn!("object store: {e}");
            metrics::counter!("iiif_upstream_errors_total", "source" => "object-store")
                .increment(1);
            Error::bad_gateway("the object store request failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use object_store::memory::InMemory;
    use tower::ServiceExt;

    use super::*;
    use crate::IiifService;
    use crate::codec::{EncodeOptions, Format};

    fn png(width: u32, height: u32) -> Vec<u8> {
        crate::codec::encode(
            &crate::samples::grid(width, height),
            Format::Png,
            &EncodeOptions::default(),
        )
        .unwrap()
    }

    async fn width<S: Source>(svc: &IiifService<S>) -> u64 {
        let req = http::Request::get("/a.png/info.json").body(()).unwrap();
        let res = svc.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 200);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        doc["width"].as_u64().unwrap()
    }

    /// A purge of one identifier reaches the source through the wrappers the serve example
    /// puts around it (a key prefix, routes): an object replaced in the store is read afresh
    /// at once, not when its kept metadata expires.
    #[tokio::test]
    async fn a_purge_forgets_the_metadata_kept() {
        use crate::source::{KeyTemplate, Keyed, Routes};
        let store = Arc::new(InMemory::new());
        let path = Path::from("bench/a.png");
        store.put(&path, png(64, 32).into()).await.unwrap();
        let s3 = ObjectStoreSource::new(store.clone()).metadata_ttl(Duration::from_secs(600));
        let source = Routes::new().fallback(Keyed::new(s3, KeyTemplate::prefix("bench/")));
        let svc = IiifService::new(source);
        assert_eq!(width(&svc).await, 64);

        store.put(&path, png(48, 40).into()).await.unwrap();
        assert_eq!(width(&svc).await, 64, "what is kept answers until a purge");
        svc.purge("a.png").await;
        assert_eq!(width(&svc).await, 48);
    }

    /// A purge of everything reaches the source: an object replaced in the store is read
    /// afresh at once, not when its kept metadata expires.
    #[tokio::test]
    async fn a_purge_of_everything_forgets_the_metadata_and_chunks_kept() {
        let store = Arc::new(InMemory::new());
        let path = Path::from("a.png");
        store.put(&path, png(64, 32).into()).await.unwrap();
        let source = ObjectStoreSource::new(store.clone()).metadata_ttl(Duration::from_secs(600));
        let svc = IiifService::new(source.clone());
        assert_eq!(width(&svc).await, 64);

        store.put(&path, png(48, 40).into()).await.unwrap();
        // The metadata kept (and the chunks of its version) still answer for the object.
        let id = Identifier::new("a.png").unwrap();
        let kept = source.open(&id, &Default::default()).await.unwrap();
        assert_eq!(kept.metadata().len, png(64, 32).len() as u64);

        svc.purge_all().await;
        let fresh = source.open(&id, &Default::default()).await.unwrap();
        assert_eq!(fresh.metadata().len, png(48, 40).len() as u64);
        assert_eq!(&fresh.read_all().await.unwrap()[..], &png(48, 40)[..]);
        assert_eq!(width(&svc).await, 48);
    }
}
