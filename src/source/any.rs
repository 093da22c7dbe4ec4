//! Sources of different types behind one type, for routing and resolver hooks.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use super::{Source, SourceMetadata, SourceObject, SourceRequest};
use crate::Error;
use crate::request::Identifier;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Any [`Source`], its type erased, so that sources of different types can stand side by side
/// (in [`Routes`](super::Routes), or returned by a [`Resolver`](super::Resolver) hook). Cheap to
/// clone; each read costs one boxed future.
///
/// ```
/// use tower_iiif::source::{AnySource, FsSource, Source, SourceObject};
/// # use tower_iiif::request::Identifier;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let dir = std::env::temp_dir().join(format!("tower-iiif-doc-any-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("a.jpg"), b"0123").unwrap();
/// let any = AnySource::new(FsSource::new(&dir).unwrap());
/// let obj = any.open(&Identifier::new("a").unwrap(), &Default::default()).await.unwrap();
/// assert_eq!(&obj.read_range(1..3).await.unwrap()[..], b"12");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct AnySource {
    inner: Arc<dyn DynSource>,
}

impl fmt::Debug for AnySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnySource").finish_non_exhaustive()
    }
}

impl AnySource {
    /// Erase a source's type.
    ///
    /// ```
    /// use tower_iiif::source::{AnySource, FsSource, Source};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let any = AnySource::new(FsSource::new(std::env::temp_dir()).unwrap());
    /// assert!(any.check().await.is_ok());
    /// # }
    /// ```
    pub fn new<S: Source>(source: S) -> Self {
        Self {
            inner: Arc::new(source),
        }
    }
}

impl Source for AnySource {
    type Object = AnyObject;

    async fn open(&self, id: &Identifier, request: &SourceRequest) -> Result<AnyObject, Error> {
        self.inner.open_dyn(id, request).await
    }

    fn check(&self) -> impl Future<Output = Result<(), Error>> + Send {
        self.inner.check_dyn()
    }

    async fn purge(&self, id: &Identifier) {
        self.inner.purge_dyn(id).await
    }

    async fn purge_all(&self) {
        self.inner.purge_all_dyn().await
    }

    fn per_caller(&self) -> bool {
        self.inner.per_caller_dyn()
    }
}

/// An object of an [`AnySource`].
///
/// ```
/// use tower_iiif::source::{AnyObject, AnySource, FsSource, Source, SourceObject};
/// # use tower_iiif::request::Identifier;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let dir = std::env::temp_dir().join(format!("tower-iiif-doc-anyobj-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("a.jpg"), b"0123").unwrap();
/// let any = AnySource::new(FsSource::new(&dir).unwrap());
/// let obj: AnyObject = any.open(&Identifier::new("a.jpg").unwrap(), &Default::default()).await.unwrap();
/// assert_eq!(obj.metadata().len, 4);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// ```
pub struct AnyObject {
    inner: Box<dyn DynObject>,
}

impl fmt::Debug for AnyObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyObject")
            .field("metadata", self.inner.metadata_dyn())
            .finish_non_exhaustive()
    }
}

impl SourceObject for AnyObject {
    fn metadata(&self) -> &SourceMetadata {
        self.inner.metadata_dyn()
    }

    fn read_range(&self, range: Range<u64>) -> impl Future<Output = Result<Bytes, Error>> + Send {
        self.inner.read_range_dyn(range)
    }

    fn read_at_blocking(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize, Error>> {
        self.inner.read_at_blocking_dyn(offset, buf)
    }

    fn read_all(&self) -> impl Future<Output = Result<Bytes, Error>> + Send {
        self.inner.read_all_dyn()
    }
}

trait DynSource: Send + Sync + 'static {
    fn open_dyn<'a>(
        &'a self,
        id: &'a Identifier,
        request: &'a SourceRequest,
    ) -> BoxFuture<'a, Result<AnyObject, Error>>;
    fn check_dyn(&self) -> BoxFuture<'_, Result<(), Error>>;
    fn purge_dyn<'a>(&'a self, id: &'a Identifier) -> BoxFuture<'a, ()>;
    fn purge_all_dyn(&self) -> BoxFuture<'_, ()>;
    fn per_caller_dyn(&self) -> bool;
}

impl<S: Source> DynSource for S {
    fn open_dyn<'a>(
        &'a self,
        id: &'a Identifier,
        request: &'a SourceRequest,
    ) -> BoxFuture<'a, Result<AnyObject, Error>> {
        Box::pin(async move {
            let object = self.open(id, request).await?;
            Ok(AnyObject {
                inner: Box::new(object),
            })
        })
    }

    fn check_dyn(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(self.check())
    }

    fn purge_dyn<'a>(&'a self, id: &'a Identifier) -> BoxFuture<'a, ()> {
        Box::pin(self.purge(id))
    }

    fn purge_all_dyn(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.purge_all())
    }

    fn per_caller_dyn(&self) -> bool {
        self.per_caller()
    }
}

trait DynObject: Send + Sync + 'static {
    fn metadata_dyn(&self) -> &SourceMetadata;
    fn read_range_dyn(&self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes, Error>>;
    fn read_at_blocking_dyn(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize, Error>>;
    fn read_all_dyn(&self) -> BoxFuture<'_, Result<Bytes, Error>>;
}

impl<O: SourceObject> DynObject for O {
    fn metadata_dyn(&self) -> &SourceMetadata {
        self.metadata()
    }

    fn read_range_dyn(&self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes, Error>> {
        Box::pin(self.read_range(range))
    }

    fn read_at_blocking_dyn(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize, Error>> {
        self.read_at_blocking(offset, buf)
    }

    fn read_all_dyn(&self) -> BoxFuture<'_, Result<Bytes, Error>> {
        Box::pin(self.read_all())
    }
}
