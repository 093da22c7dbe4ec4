//! Where images come from: the [`Source`] trait and its implementations.
//!
//! A source resolves an [`Identifier`] to a [`SourceObject`]: something that knows its length
//! and version (modified time, etag) and can read byte ranges. Decoders ask for ranges, so a
//! remote source never has to fetch more than a request needs.
//!
//! # Example
//!
//! ```
//! use tower_iiif::source::{FsSource, Source, SourceObject};
//! use tower_iiif::request::Identifier;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let dir = std::env::temp_dir().join(format!("tower-iiif-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! std::fs::write(dir.join("a.jpg"), b"\xFF\xD8\xFF hello").unwrap();
//!
//! let source = FsSource::new(&dir).unwrap();
//! let obj = source.open(&Identifier::new("a").unwrap(), &Default::default()).await.unwrap(); // suffix .jpg tried
//! assert_eq!(obj.metadata().len, 9);
//! assert_eq!(&obj.read_range(4..9).await.unwrap()[..], b"hello");
//! let missing = source.open(&Identifier::new("../etc/passwd").unwrap(), &Default::default()).await.unwrap_err();
//! assert_eq!(missing.status(), 404);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # }
//! ```

mod any;
#[cfg(feature = "remote")]
mod cache;
#[cfg(feature = "remote")]
mod chunks;
mod fs;
#[cfg(feature = "http")]
mod http;
pub(crate) mod read_at;
pub(crate) mod recording;
mod request;
mod resolve;
#[cfg(feature = "object-store")]
pub(crate) mod store;
#[cfg(feature = "remote")]
mod upstream;

use std::future::Future;
use std::ops::Range;
use std::time::SystemTime;

use bytes::Bytes;

/// The `object_store` crate, whose stores [`ObjectStoreSource`] reads (re-exported, so that the
/// versions agree).
#[cfg(feature = "object-store")]
pub use ::object_store;
pub use any::{AnyObject, AnySource};
#[cfg(feature = "remote")]
pub use cache::SourceCache;
pub use fs::{FsObject, FsSource};
#[cfg(feature = "http")]
pub use http::{HttpObject, HttpSource, HttpSourceBuilder};
pub use request::SourceRequest;
pub use resolve::{KeyTemplate, Keyed, Resolved, Resolver, Routes};
#[cfg(feature = "object-store")]
pub use store::{ObjectStoreObject, ObjectStoreSource};

use crate::Error;
use crate::request::Identifier;

/// What a source knows about one object without reading it.
///
/// ```
/// # use tower_iiif::source::{FsSource, Source, SourceMetadata, SourceObject};
/// # use tower_iiif::request::Identifier;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let dir = std::env::temp_dir()
/// #     .join(format!("tower-iiif-doc-{}-{}", "source-metadata", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # std::fs::write(dir.join("a.jpg"), b"012345678").unwrap();
/// # let source = FsSource::new(&dir).unwrap();
/// # let id = |s: &str| Identifier::new(s).unwrap();
/// let obj = source.open(&id("a"), &Default::default()).await.unwrap();
/// let meta: &SourceMetadata = obj.metadata();
/// assert_eq!((meta.len, meta.etag.as_deref()), (9, None)); // files have no etag
/// assert!(meta.modified.is_some());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SourceMetadata {
    /// Length in bytes.
    pub len: u64,
    /// Last modification, if known.
    pub modified: Option<SystemTime>,
    /// An opaque version tag (e.g. an HTTP ETag), if known.
    pub etag: Option<String>,
}

impl SourceMetadata {
    /// Create new [`SourceMetadata`].
    ///
    /// ```
    /// let m = tower_iiif::source::SourceMetadata::new(10, None, Some("v1".into()));
    /// assert_eq!(m.len, 10);
    /// ```
    pub fn new(len: u64, modified: Option<SystemTime>, etag: Option<String>) -> Self {
        Self {
            len,
            modified,
            etag,
        }
    }
}

/// Resolves identifiers to readable objects.
///
/// An identifier that names nothing, or that the source refuses (e.g. a path escaping the root),
/// is an [`Error`] whose status is 404.
///
/// ```
/// use std::collections::HashMap;
/// use std::ops::Range;
/// use std::sync::Arc;
///
/// use bytes::Bytes;
/// use tower_iiif::Error;
/// use tower_iiif::request::Identifier;
/// use tower_iiif::source::{Source, SourceMetadata, SourceObject, SourceRequest};
///
/// /// Images held in memory, by identifier.
/// #[derive(Clone)]
/// struct MemSource(Arc<HashMap<String, Bytes>>);
///
/// #[derive(Debug)]
/// struct MemObject(SourceMetadata, Bytes);
///
/// impl Source for MemSource {
///     type Object = MemObject;
///
///     async fn open(&self, id: &Identifier, _request: &SourceRequest) -> Result<MemObject, Error> {
///         let bytes = self.0.get(id.as_str()).ok_or_else(|| Error::not_found("no such image"))?;
///         let meta = SourceMetadata::new(bytes.len() as u64, None, Some("v1".into()));
///         Ok(MemObject(meta, bytes.clone()))
///     }
/// }
///
/// impl SourceObject for MemObject {
///     fn metadata(&self) -> &SourceMetadata {
///         &self.0
///     }
///
///     async fn read_range(&self, range: Range<u64>) -> Result<Bytes, Error> {
///         let end = (range.end as usize).min(self.1.len());
///         Ok(self.1.slice((range.start as usize).min(end)..end))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let source = MemSource(Arc::new(HashMap::from([("a".into(), Bytes::from_static(b"abc"))])));
/// let obj = source.open(&Identifier::new("a").unwrap(), &Default::default()).await.unwrap();
/// assert_eq!(&obj.read_all().await.unwrap()[..], b"abc");
/// assert_eq!(source.open(&Identifier::new("b").unwrap(), &Default::default()).await.unwrap_err().status(), 404);
/// assert!(source.check().await.is_ok()); // the default
/// # }
/// ```
pub trait Source: Clone + Send + Sync + 'static {
    /// The object type this source opens.
    ///
    /// ```
    /// # use tower_iiif::source::{FsSource, Source, SourceObject};
    /// # use tower_iiif::request::Identifier;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "source-object-type", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # std::fs::write(dir.join("a.jpg"), b"012345678").unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let id = |s: &str| Identifier::new(s).unwrap();
    /// let obj: tower_iiif::source::FsObject = source.open(&id("a"), &Default::default()).await.unwrap();
    /// assert_eq!(obj.metadata().len, 9);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # }
    /// ```
    type Object: SourceObject;

    /// Find the object an identifier names, for `request` (whose headers and client address a
    /// source may act on, e.g. to pass the caller's credentials upstream).
    ///
    /// ```
    /// # use tower_iiif::source::{FsSource, Source, SourceObject};
    /// # use tower_iiif::request::Identifier;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "source-open", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # std::fs::write(dir.join("a.jpg"), b"012345678").unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let id = |s: &str| Identifier::new(s).unwrap();
    /// assert_eq!(source.open(&id("a"), &Default::default()).await.unwrap().metadata().len, 9);
    /// assert_eq!(source.open(&id("b"), &Default::default()).await.unwrap_err().status(), 404);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # }
    /// ```
    fn open(
        &self,
        id: &Identifier,
        request: &SourceRequest,
    ) -> impl Future<Output = Result<Self::Object, Error>> + Send;

    /// Whether the source is reachable, for health checks. The default says yes.
    ///
    /// ```
    /// # use tower_iiif::source::{FsSource, Source, SourceObject};
    /// # use tower_iiif::request::Identifier;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "source-check", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # std::fs::write(dir.join("a.jpg"), b"012345678").unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let id = |s: &str| Identifier::new(s).unwrap();
    /// assert!(source.check().await.is_ok());
    /// std::fs::remove_dir_all(&dir).unwrap();
    /// assert_eq!(source.check().await.unwrap_err().status(), 500); // the root is gone
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # }
    /// ```
    fn check(&self) -> impl Future<Output = Result<(), Error>> + Send {
        async { Ok(()) }
    }

    /// Whether what this source serves depends on the caller (it passes the caller's
    /// credentials upstream): responses are then marked
    /// [`Restricted`](crate::cache_control::Restricted), so that shared caches (CDNs, proxies)
    /// do not store them. The default says no.
    ///
    /// ```
    /// # use tower_iiif::source::{FsSource, Source};
    /// assert!(!FsSource::new(std::env::temp_dir()).unwrap().per_caller());
    /// ```
    fn per_caller(&self) -> bool {
        false
    }

    /// Forget what the source keeps of `id` (metadata, chunks, local copies), so that the next
    /// request reads it afresh. The default keeps nothing, so forgets nothing.
    ///
    /// ```
    /// # use tower_iiif::source::{FsSource, Source};
    /// # use tower_iiif::request::Identifier;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let source = FsSource::new(std::env::temp_dir()).unwrap();
    /// source.purge(&Identifier::new("a.jpg").unwrap()).await; // files are read afresh anyway
    /// # }
    /// ```
    fn purge(&self, id: &Identifier) -> impl Future<Output = ()> + Send {
        let _ = id;
        async {}
    }

    /// Forget everything the source keeps (metadata, chunks, local copies): what
    /// [`purge`](Self::purge) does, for every identifier at once (the admin service's purge of
    /// everything). The default keeps nothing, so forgets nothing.
    ///
    /// ```
    /// # use tower_iiif::source::{FsSource, Source};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let source = FsSource::new(std::env::temp_dir()).unwrap();
    /// source.purge_all().await; // files are read afresh anyway
    /// # }
    /// ```
    fn purge_all(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// One image file of a [`Source`], read by byte ranges.
///
/// ```
/// # use tower_iiif::source::{FsSource, Source, SourceObject};
/// # use tower_iiif::request::Identifier;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let dir = std::env::temp_dir()
/// #     .join(format!("tower-iiif-doc-{}-{}", "source-object", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # std::fs::write(dir.join("a.jpg"), b"012345678").unwrap();
/// # let source = FsSource::new(&dir).unwrap();
/// # let id = |s: &str| Identifier::new(s).unwrap();
/// // `a.jpg` holds the bytes `012345678`.
/// let obj = source.open(&id("a"), &Default::default()).await.unwrap();
/// assert_eq!(obj.metadata().len, 9);
/// assert_eq!(&obj.read_range(6..100).await.unwrap()[..], b"678"); // clamped to the end
/// assert_eq!(&obj.read_all().await.unwrap()[..], b"012345678");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// ```
pub trait SourceObject: Send + Sync + 'static {
    /// Length and version.
    ///
    /// ```
    /// # use tower_iiif::source::{FsSource, Source, SourceObject};
    /// # use tower_iiif::request::Identifier;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "source-object-metadata", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # std::fs::write(dir.join("a.jpg"), b"012345678").unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let id = |s: &str| Identifier::new(s).unwrap();
    /// let obj = source.open(&id("a"), &Default::default()).await.unwrap();
    /// assert_eq!(obj.metadata().len, 9);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # }
    /// ```
    fn metadata(&self) -> &SourceMetadata;

    /// Read `range` (clamped to the object's length).
    ///
    /// ```
    /// # use tower_iiif::source::{FsSource, Source, SourceObject};
    /// # use tower_iiif::request::Identifier;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "source-read-range", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # std::fs::write(dir.join("a.jpg"), b"012345678").unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let id = |s: &str| Identifier::new(s).unwrap();
    /// // `a.jpg` holds the bytes `012345678`.
    /// let obj = source.open(&id("a"), &Default::default()).await.unwrap();
    /// assert_eq!(&obj.read_range(2..5).await.unwrap()[..], b"234");
    /// assert_eq!(&obj.read_range(6..100).await.unwrap()[..], b"678");
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # }
    /// ```
    fn read_range(&self, range: Range<u64>) -> impl Future<Output = Result<Bytes, Error>> + Send;

    /// Read bytes at `offset` into `buf` on the calling thread, for decoders that pull bytes
    /// synchronously from the blocking pool (JPEG 2000): `Some(bytes read)` (0 at the end)
    /// when the object can read without its async runtime (a local file), `None` when it
    /// cannot, and [`read_range`](Self::read_range) is run to completion instead. The default
    /// is `None`.
    ///
    /// ```
    /// # use tower_iiif::source::{FsSource, Source, SourceObject};
    /// # use tower_iiif::request::Identifier;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "source-read-at", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # std::fs::write(dir.join("a.jpg"), b"012345678").unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let id = |s: &str| Identifier::new(s).unwrap();
    /// // `a.jpg` holds the bytes `012345678`; a local file reads without the runtime.
    /// let obj = source.open(&id("a"), &Default::default()).await.unwrap();
    /// let mut buf = [0u8; 4];
    /// assert_eq!(obj.read_at_blocking(6, &mut buf).unwrap().unwrap(), 3);
    /// assert_eq!(&buf[..3], b"678");
    /// assert_eq!(obj.read_at_blocking(9, &mut buf).unwrap().unwrap(), 0); // the end
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # }
    /// ```
    fn read_at_blocking(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize, Error>> {
        let _ = (offset, buf);
        None
    }

    /// Read the whole object.
    ///
    /// ```
    /// # use tower_iiif::source::{FsSource, Source, SourceObject};
    /// # use tower_iiif::request::Identifier;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "source-read-all", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # std::fs::write(dir.join("a.jpg"), b"012345678").unwrap();
    /// # let source = FsSource::new(&dir).unwrap();
    /// # let id = |s: &str| Identifier::new(s).unwrap();
    /// let obj = source.open(&id("a"), &Default::default()).await.unwrap();
    /// assert_eq!(&obj.read_all().await.unwrap()[..], b"012345678");
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # }
    /// ```
    fn read_all(&self) -> impl Future<Output = Result<Bytes, Error>> + Send {
        self.read_range(0..self.metadata().len)
    }
}

/// A shared object reads as the object: work that must outlive a request (a reduced pyramid's
/// build, spawned so that a client going away does not cancel it) holds the object this way.
///
/// ```
/// use std::sync::Arc;
/// use tower_iiif::source::{SourceMetadata, SourceObject};
/// # struct Mem(SourceMetadata, bytes::Bytes);
/// # impl SourceObject for Mem {
/// #     fn metadata(&self) -> &SourceMetadata { &self.0 }
/// #     async fn read_range(&self, r: std::ops::Range<u64>) -> Result<bytes::Bytes, tower_iiif::Error> {
/// #         Ok(self.1.slice(r.start as usize..(r.end as usize).min(self.1.len())))
/// #     }
/// # }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let object = Arc::new(Mem(SourceMetadata::new(3, None, None), bytes::Bytes::from_static(b"abc")));
/// assert_eq!(&object.read_range(1..3).await.unwrap()[..], b"bc");
/// # });
/// ```
impl<O: SourceObject> SourceObject for std::sync::Arc<O> {
    fn metadata(&self) -> &SourceMetadata {
        (**self).metadata()
    }

    fn read_range(&self, range: Range<u64>) -> impl Future<Output = Result<Bytes, Error>> + Send {
        (**self).read_range(range)
    }

    fn read_at_blocking(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize, Error>> {
        (**self).read_at_blocking(offset, buf)
    }

    fn read_all(&self) -> impl Future<Output = Result<Bytes, Error>> + Send {
        (**self).read_all()
    }
}
