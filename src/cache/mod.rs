//! Derivative caches: where rendered images are kept, and one render per key.
//!
//! A rendered image (a *derivative*) is stored under a [`CacheKey`]: the identifier of its
//! source and an opaque key that the service builds from the canonical request plus the source's
//! version (modified time / etag), so a changed source never serves stale bytes (DESIGN rule 7).
//!
//! - [`CacheBackend`] is the plug-in point: where the bytes live. [`MemoryCache`] keeps them in a
//!   byte-bounded in-process cache, [`FsCache`] in files under a directory (bounded by bytes,
//!   least recently used evicted first, optional time to live, crash-safe writes).
//! - The service renders each derivative once however many requests miss it at the same time
//!   (the render runs in a spawned task, so a client that goes away does not waste the work of
//!   the others), and stores the result: [`IiifService::derivative_cache`](crate::IiifService::derivative_cache).
//!
//! The cache only keeps bytes. Authorization must run before a cached byte is returned, on hits
//! as on misses: the service consults the cache only after its authorizing layers have let the
//! request through.
//!
//! # Example
//!
//! ```
//! use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, MemoryCache};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let cache = MemoryCache::new(64 << 20);
//! let key = CacheKey::new("page-1", "full/max/0/default.jpg;v=1700000000");
//! assert!(cache.get(&key).await.is_none());
//! cache.put(key.clone(), CachedDerivative::new(&b"\xff\xd8jpeg"[..], "image/jpeg")).await;
//! assert_eq!(cache.get(&key).await.unwrap().content_type, "image/jpeg");
//! // Purging an identifier forgets every version of every derivative of it.
//! assert_eq!(cache.purge_identifier("page-1").await, 1);
//! assert!(cache.get(&key).await.is_none());
//! # }
//! ```

#[cfg(any(feature = "redis", feature = "object-store"))]
pub(crate) mod entry;
mod flight;
pub(crate) mod fs;
mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "object-store")]
mod store;
mod tiered;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

use crate::Error;

pub(crate) use flight::SingleFlight;
pub use fs::FsCache;
pub use memory::MemoryCache;
#[cfg(feature = "redis")]
pub use redis::RedisCache;
#[cfg(feature = "object-store")]
pub use store::ObjectStoreCache;
pub use tiered::TieredCache;

/// Lock a mutex, ignoring poisoning: the caches keep no invariant that a panic elsewhere could
/// break halfway (every critical section is a few map operations).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A cache key: the identifier of the source image and an opaque key (the canonical form of the
/// request plus the source's version, as built by the service).
///
/// The identifier is kept apart so that every derivative of one image can be purged at once
/// ([`CacheBackend::purge_identifier`]).
///
/// ```
/// use tower_iiif::cache::CacheKey;
///
/// let key = CacheKey::new("page-1", "full/max/0/default.jpg");
/// assert_eq!(key.identifier(), "page-1");
/// assert_eq!(key.as_str(), "full/max/0/default.jpg");
/// assert_eq!(key.digest().len(), 32);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    identifier: Arc<str>,
    key: Arc<str>,
}

impl CacheKey {
    /// Create a new [`CacheKey`] from an identifier and a key.
    ///
    /// ```
    /// use tower_iiif::cache::CacheKey;
    /// let a = CacheKey::new("a", "full/max/0/default.jpg");
    /// let b = CacheKey::new(String::from("a"), String::from("full/max/0/default.jpg"));
    /// assert_eq!(a, b);
    /// ```
    pub fn new(identifier: impl Into<Arc<str>>, key: impl Into<Arc<str>>) -> Self {
        Self {
            identifier: identifier.into(),
            key: key.into(),
        }
    }

    /// The identifier of the source image.
    ///
    /// ```
    /// assert_eq!(tower_iiif::cache::CacheKey::new("img", "k").identifier(), "img");
    /// ```
    pub fn identifier(&self) -> &str {
        &self.identifier
    }

    /// The key within the identifier (canonical request plus source version).
    ///
    /// ```
    /// assert_eq!(tower_iiif::cache::CacheKey::new("img", "k").as_str(), "k");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// A stable 128-bit digest of the identifier and the key, as 32 lowercase hex digits: safe as
    /// a file or object name whatever bytes the identifier holds.
    ///
    /// It is FNV-1a 128 over the identifier's bytes, one `0xFF` byte (which never occurs in
    /// UTF-8, so `("ab", "c")` and `("a", "bc")` differ) and the key's bytes; it does not change
    /// between versions or platforms. It is not a cryptographic hash: stores that name entries by
    /// it must also compare the stored identifier and key (as [`FsCache`] does).
    ///
    /// ```
    /// use tower_iiif::cache::CacheKey;
    /// let d = CacheKey::new("page-1", "full/max/0/default.jpg").digest();
    /// assert_eq!(d, "8eaef784a6ef29a1654cddd9e5501845");
    /// assert_ne!(d, CacheKey::new("page-2", "full/max/0/default.jpg").digest());
    /// ```
    pub fn digest(&self) -> String {
        format!("{:032x}", self.digest_u128())
    }

    /// The digest as a number (see [`digest`](Self::digest)).
    fn digest_u128(&self) -> u128 {
        const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
        const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
        let mut hash = OFFSET;
        let bytes = self
            .identifier
            .as_bytes()
            .iter()
            .chain(std::iter::once(&0xff))
            .chain(self.key.as_bytes());
        for &b in bytes {
            hash ^= u128::from(b);
            hash = hash.wrapping_mul(PRIME);
        }
        hash
    }
}

impl fmt::Display for CacheKey {
    /// `{identifier} {key}`, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.identifier, self.key)
    }
}

/// One cached derivative: the encoded bytes and their media type.
///
/// ```
/// use tower_iiif::cache::CachedDerivative;
///
/// let d = CachedDerivative::new(vec![0x89, b'P', b'N', b'G'], "image/png");
/// assert_eq!(d.body.len(), 4);
/// assert_eq!(d.content_type, "image/png");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct CachedDerivative {
    /// The encoded image.
    pub body: Bytes,
    /// Its media type, e.g. `image/jpeg`.
    pub content_type: String,
}

impl CachedDerivative {
    /// Create a new [`CachedDerivative`].
    ///
    /// ```
    /// use tower_iiif::cache::CachedDerivative;
    /// let d = CachedDerivative::new(&b"GIF89a"[..], "image/gif");
    /// assert_eq!(d.body, &b"GIF89a"[..]);
    /// ```
    pub fn new(body: impl Into<Bytes>, content_type: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            content_type: content_type.into(),
        }
    }
}

impl fmt::Debug for CachedDerivative {
    /// The body's length, not its bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedDerivative")
            .field("body", &format_args!("{} bytes", self.body.len()))
            .field("content_type", &self.content_type)
            .finish()
    }
}

/// Where derivatives are kept: the plug-in point of the derivative cache.
///
/// Methods take `&self` and return `Send` futures; implementations are cheap to clone (an `Arc`
/// inside) and shared by every clone. A backend never fails the request: a read error is logged
/// (`tracing::warn!`) and answered as a miss, a write error is logged and the derivative is
/// simply not stored.
///
/// # Example
///
/// A backend on a plain map (unbounded: an example, not for production):
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::{Arc, Mutex};
/// use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative};
///
/// #[derive(Clone, Default)]
/// struct MapCache(Arc<Mutex<HashMap<CacheKey, CachedDerivative>>>);
///
/// impl CacheBackend for MapCache {
///     async fn get(&self, key: &CacheKey) -> Option<CachedDerivative> {
///         self.0.lock().unwrap().get(key).cloned()
///     }
///     async fn put(&self, key: CacheKey, value: CachedDerivative) {
///         self.0.lock().unwrap().insert(key, value);
///     }
///     async fn purge_identifier(&self, identifier: &str) -> usize {
///         let mut map = self.0.lock().unwrap();
///         let before = map.len();
///         map.retain(|k, _| k.identifier() != identifier);
///         before - map.len()
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cache = MapCache::default();
/// let key = CacheKey::new("img", "full/max/0/default.png");
/// cache.put(key.clone(), CachedDerivative::new(&b"png"[..], "image/png")).await;
/// assert!(cache.get(&key).await.is_some());
/// assert_eq!(cache.purge_identifier("img").await, 1);
/// assert!(cache.get(&key).await.is_none());
/// # }
/// ```
pub trait CacheBackend: Clone + Send + Sync + 'static {
    /// The derivative stored under `key`, or `None` on a miss (errors are logged and are misses).
    ///
    /// ```
    /// # use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, MemoryCache};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = MemoryCache::new(1 << 20);
    /// let key = CacheKey::new("a", "full/max/0/default.png");
    /// assert!(cache.get(&key).await.is_none());
    /// cache.put(key.clone(), CachedDerivative::new(&b"png"[..], "image/png")).await;
    /// assert_eq!(cache.get(&key).await.unwrap().body, &b"png"[..]);
    /// # }
    /// ```
    fn get(&self, key: &CacheKey) -> impl Future<Output = Option<CachedDerivative>> + Send;

    /// Store `value` under `key`, replacing what was there. Errors are logged, not returned; a
    /// backend may decline to store a value (e.g. one too large for its bounds).
    ///
    /// ```
    /// # use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, MemoryCache};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = MemoryCache::new(1 << 20);
    /// let key = CacheKey::new("a", "full/max/0/default.png");
    /// cache.put(key.clone(), CachedDerivative::new(&b"old"[..], "image/png")).await;
    /// cache.put(key.clone(), CachedDerivative::new(&b"new"[..], "image/png")).await;
    /// assert_eq!(cache.get(&key).await.unwrap().body, &b"new"[..]);
    /// # }
    /// ```
    fn put(&self, key: CacheKey, value: CachedDerivative) -> impl Future<Output = ()> + Send;

    /// Remove every derivative of `identifier`, and say how many entries were removed. The
    /// future resolves when they are gone.
    ///
    /// ```
    /// # use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, MemoryCache};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = MemoryCache::new(1 << 20);
    /// let value = CachedDerivative::new(&b"x"[..], "image/jpeg");
    /// for (id, key) in [("a", "full/max/0/default.jpg"), ("a", "max/0"), ("b", "max/0")] {
    ///     cache.put(CacheKey::new(id, key), value.clone()).await;
    /// }
    /// assert_eq!(cache.purge_identifier("a").await, 2);
    /// assert_eq!(cache.len(), 1);
    /// # }
    /// ```
    fn purge_identifier(&self, identifier: &str) -> impl Future<Output = usize> + Send;

    /// Remove every entry, and say how many were removed. The default removes nothing and says
    /// 0: a backend that can enumerate its entries should override it.
    ///
    /// ```
    /// # use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, MemoryCache};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = MemoryCache::new(1 << 20);
    /// cache.put(CacheKey::new("a", "k"), CachedDerivative::new(&b"x"[..], "image/jpeg")).await;
    /// assert_eq!(cache.purge_all().await, 1);
    /// assert!(cache.is_empty());
    /// # }
    /// ```
    fn purge_all(&self) -> impl Future<Output = usize> + Send {
        async { 0 }
    }

    /// Whether the backend answers, for health checks. The default says yes.
    ///
    /// ```
    /// # use tower_iiif::cache::{CacheBackend, MemoryCache};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// assert!(MemoryCache::new(1 << 20).check().await.is_ok());
    /// # }
    /// ```
    fn check(&self) -> impl Future<Output = Result<(), Error>> + Send {
        async { Ok(()) }
    }

    /// The tier's name, in metrics and health reports: `memory`, `disk`, `redis`,
    /// `object-store`, `tiered`; `custom` by default.
    ///
    /// ```
    /// # use tower_iiif::cache::{CacheBackend, MemoryCache};
    /// assert_eq!(MemoryCache::new(1 << 20).tier(), "memory");
    /// ```
    fn tier(&self) -> &'static str {
        "custom"
    }

    /// Purges made through other instances that share this backend, for the tiers in front of
    /// it to follow ([`TieredCache`] does). `None` (the default) for a backend of one process.
    ///
    /// ```
    /// # use tower_iiif::cache::{CacheBackend, MemoryCache};
    /// assert!(MemoryCache::new(1 << 20).purges().is_none());
    /// ```
    fn purges(&self) -> Option<tokio::sync::broadcast::Receiver<Purge>> {
        None
    }
}

#[cfg(any(feature = "redis", feature = "object-store"))]
/// The receiving end of a shared tier's purge notices: the channel made, and `start`ed (a task
/// that feeds it), on first call; a new receiver on later ones. `None` outside a tokio runtime.
fn purge_feed(
    cell: &std::sync::OnceLock<tokio::sync::broadcast::Sender<Purge>>,
    start: impl FnOnce(tokio::sync::broadcast::Sender<Purge>),
) -> Option<tokio::sync::broadcast::Receiver<Purge>> {
    if let Some(tx) = cell.get() {
        return Some(tx.subscribe());
    }
    tokio::runtime::Handle::try_current().ok()?;
    let (tx, rx) = tokio::sync::broadcast::channel(1024);
    if cell.set(tx.clone()).is_err() {
        return cell.get().map(|tx| tx.subscribe());
    }
    start(tx);
    Some(rx)
}

/// Count one cache lookup of `tier` as a hit or a miss (`iiif_cache_hits_total`,
/// `iiif_cache_misses_total`).
fn count_lookup(tier: &'static str, hit: bool) {
    let name = if hit {
        "iiif_cache_hits_total"
    } else {
        "iiif_cache_misses_total"
    };
    metrics::counter!(name, "tier" => tier).increment(1);
}

/// A purge announced by a shared cache tier (see [`CacheBackend::purges`]).
///
/// ```
/// use tower_iiif::cache::Purge;
/// assert_ne!(Purge::All, Purge::Identifier("a".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Purge {
    /// Every entry of one identifier.
    Identifier(String),
    /// Every entry.
    All,
}

/// A boxed, `Send` future.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe twin of [`CacheBackend`], behind [`AnyCache`].
trait ErasedBackend: Send + Sync + 'static {
    fn get_boxed<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Option<CachedDerivative>>;
    fn put_boxed(&self, key: CacheKey, value: CachedDerivative) -> BoxFuture<'_, ()>;
    fn purge_boxed<'a>(&'a self, identifier: &'a str) -> BoxFuture<'a, usize>;
    fn purge_all_boxed(&self) -> BoxFuture<'_, usize>;
    fn check_boxed(&self) -> BoxFuture<'_, Result<(), Error>>;
    fn tier_dyn(&self) -> &'static str;
    fn purges_dyn(&self) -> Option<tokio::sync::broadcast::Receiver<Purge>>;
}

impl<C: CacheBackend> ErasedBackend for C {
    fn get_boxed<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Option<CachedDerivative>> {
        Box::pin(CacheBackend::get(self, key))
    }

    fn put_boxed(&self, key: CacheKey, value: CachedDerivative) -> BoxFuture<'_, ()> {
        Box::pin(CacheBackend::put(self, key, value))
    }

    fn purge_boxed<'a>(&'a self, identifier: &'a str) -> BoxFuture<'a, usize> {
        Box::pin(CacheBackend::purge_identifier(self, identifier))
    }

    fn purge_all_boxed(&self) -> BoxFuture<'_, usize> {
        Box::pin(CacheBackend::purge_all(self))
    }

    fn check_boxed(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(CacheBackend::check(self))
    }

    fn tier_dyn(&self) -> &'static str {
        CacheBackend::tier(self)
    }

    fn purges_dyn(&self) -> Option<tokio::sync::broadcast::Receiver<Purge>> {
        CacheBackend::purges(self)
    }
}

/// Any [`CacheBackend`], with its type erased (an `Arc` inside; one box per call).
#[derive(Clone)]
pub(crate) struct AnyCache {
    inner: Arc<dyn ErasedBackend>,
    type_name: &'static str,
}

impl AnyCache {
    /// Erase the type of `backend`.
    pub(crate) fn new(backend: impl CacheBackend) -> Self {
        fn name_of<T>(_: &T) -> &'static str {
            std::any::type_name::<T>()
        }
        Self {
            type_name: name_of(&backend),
            inner: Arc::new(backend),
        }
    }
}

impl fmt::Debug for AnyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AnyCache").field(&self.type_name).finish()
    }
}

impl CacheBackend for AnyCache {
    // The borrowed arguments are copied into the futures: a boxed future bound by both the
    // `&self` and the `&key` lifetimes could not be the hidden type of the trait's `impl Future`
    // (it would need the intersection of the two).
    fn get(&self, key: &CacheKey) -> impl Future<Output = Option<CachedDerivative>> + Send {
        let key = key.clone();
        async move { self.inner.get_boxed(&key).await }
    }

    fn put(&self, key: CacheKey, value: CachedDerivative) -> impl Future<Output = ()> + Send {
        self.inner.put_boxed(key, value)
    }

    fn purge_identifier(&self, identifier: &str) -> impl Future<Output = usize> + Send {
        let identifier = identifier.to_owned();
        async move { self.inner.purge_boxed(&identifier).await }
    }

    fn purge_all(&self) -> impl Future<Output = usize> + Send {
        self.inner.purge_all_boxed()
    }

    fn check(&self) -> impl Future<Output = Result<(), Error>> + Send {
        self.inner.check_boxed()
    }

    fn tier(&self) -> &'static str {
        self.inner.tier_dyn()
    }

    fn purges(&self) -> Option<tokio::sync::broadcast::Receiver<Purge>> {
        self.inner.purges_dyn()
    }
}

/// A [`CacheBackend`] plus single flight: at most one render per key at a time, however many
/// requests miss together, and the result stored for the next ones.
///
/// Cheap to clone; clones share the backend and the flights in progress. See the
/// [module docs](crate::cache) for an example.
pub(crate) struct DerivativeCache<C> {
    backend: C,
    flight: SingleFlight<CacheKey, Result<CachedDerivative, Error>>,
}

impl<C: CacheBackend> DerivativeCache<C> {
    /// Create a new [`DerivativeCache`] over `backend`.
    pub(crate) fn new(backend: C) -> Self {
        Self {
            backend,
            flight: SingleFlight::new(),
        }
    }

    /// The stored derivative for `key`, if any, without rendering.
    /// The cached derivative, counted as a hit or a miss of the backend's tier.
    pub(crate) async fn get(&self, key: &CacheKey) -> Option<CachedDerivative> {
        let tier = self.backend.tier();
        let hit = self.backend.get(key).await;
        // A tiered backend counts each of its tiers itself.
        if tier != "tiered" {
            count_lookup(tier, hit.is_some());
        }
        hit
    }

    /// Remove every stored derivative of `identifier`; returns how many were removed.
    pub(crate) async fn purge_identifier(&self, identifier: &str) -> usize {
        self.backend.purge_identifier(identifier).await
    }

    pub(crate) fn backend(&self) -> &C {
        &self.backend
    }

    /// After a miss: render once for every concurrent caller and store the result. Concurrent
    /// calls with the same key share one flight, which looks in the backend again first
    /// (another process, or a flight that just ended, may have stored it). The flight runs in a
    /// spawned task: if the caller that started it goes away, the others still get the result
    /// and it is still stored. A flight whose task panics answers an internal error (500).
    pub(crate) async fn render_missing<F, Fut>(
        &self,
        key: CacheKey,
        render: F,
    ) -> Result<CachedDerivative, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<CachedDerivative, Error>> + Send + 'static,
    {
        let backend = self.backend.clone();
        let flight_key = key.clone();
        self.flight
            .run(flight_key, move || async move {
                if let Some(hit) = backend.get(&key).await {
                    return Ok(hit);
                }
                match render().await {
                    Ok(rendered) => {
                        backend.put(key, rendered.clone()).await;
                        Ok(rendered)
                    }
                    Err(e) => Err(e),
                }
            })
            .await
            .unwrap_or_else(|e| Err(Error::from(e)))
    }
}

impl<C: Clone> Clone for DerivativeCache<C> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            flight: self.flight.clone(),
        }
    }
}

impl<C: fmt::Debug> fmt::Debug for DerivativeCache<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DerivativeCache")
            .field("backend", &self.backend)
            .field("flight", &self.flight)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// A cached derivative, else one render for every concurrent caller (as the service does).
    pub(super) async fn get_or_render<C: CacheBackend, F, Fut>(
        cache: &DerivativeCache<C>,
        key: CacheKey,
        render: F,
    ) -> Result<CachedDerivative, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<CachedDerivative, Error>> + Send + 'static,
    {
        match cache.get(&key).await {
            Some(hit) => Ok(hit),
            None => cache.render_missing(key, render).await,
        }
    }
    use crate::ErrorKind;

    fn jpeg(bytes: &'static [u8]) -> CachedDerivative {
        CachedDerivative::new(Bytes::from_static(bytes), "image/jpeg")
    }

    #[test]
    fn digest_is_fnv1a_128() {
        // Computed independently (Python) from the FNV-1a 128 parameters.
        let key = CacheKey::new("page-1", "full/max/0/default.jpg");
        assert_eq!(key.digest(), "8eaef784a6ef29a1654cddd9e5501845");
        // The separator keeps the split between identifier and key significant.
        assert_ne!(
            CacheKey::new("ab", "c").digest(),
            CacheKey::new("a", "bc").digest()
        );
        assert_eq!(
            CacheKey::new("ab", "c").digest(),
            CacheKey::new("ab", "c").digest()
        );
    }

    #[test]
    fn debug_shows_the_length_not_the_bytes() {
        let d = CachedDerivative::new(vec![7u8; 1000], "image/png");
        let s = format!("{d:?}");
        assert!(s.contains("1000 bytes"), "{s}");
        assert!(s.len() < 100, "{s}");
    }

    // Current-thread runtime: all 50 callers miss before the render's 50 ms are over.
    #[tokio::test]
    async fn concurrent_misses_render_once() {
        let cache = DerivativeCache::new(MemoryCache::new(1 << 20));
        let renders = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let cache = cache.clone();
            let renders = Arc::clone(&renders);
            tasks.push(tokio::spawn(async move {
                get_or_render(
                    &cache,
                    CacheKey::new("img", "full/max/0/default.jpg"),
                    move || async move {
                        renders.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(jpeg(b"rendered"))
                    },
                )
                .await
            }));
        }
        for task in tasks {
            let got = task.await.unwrap().unwrap();
            assert_eq!(&got.body[..], b"rendered");
        }
        assert_eq!(renders.load(Ordering::SeqCst), 1);
        // Stored: the next call is a hit.
        let key = CacheKey::new("img", "full/max/0/default.jpg");
        assert_eq!(cache.get(&key).await.unwrap().body, &b"rendered"[..]);
        let again = get_or_render(&cache, key, || async {
            Err(Error::internal("must not render"))
        })
        .await;
        assert!(again.is_ok());
    }

    #[tokio::test]
    async fn errors_are_shared_but_not_stored() {
        let cache = DerivativeCache::new(MemoryCache::new(1 << 20));
        let key = CacheKey::new("img", "k");
        let err = get_or_render(&cache, key.clone(), || async {
            Err(Error::source("truncated JPEG"))
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Source);
        assert!(cache.get(&key).await.is_none());
        let ok = get_or_render(&cache, key.clone(), || async { Ok(jpeg(b"ok")) })
            .await
            .unwrap();
        assert_eq!(&ok.body[..], b"ok");
    }

    #[tokio::test]
    async fn a_panicking_render_is_an_internal_error() {
        let cache = DerivativeCache::new(MemoryCache::new(1 << 20));
        let key = CacheKey::new("img", "k");
        let err = get_or_render(&cache, key.clone(), || async {
            if true {
                panic!("render exploded (expected by the test)");
            }
            Ok(jpeg(b"never"))
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        // The flight is gone: the next call renders again.
        let ok = get_or_render(&cache, key, || async { Ok(jpeg(b"ok")) })
            .await
            .unwrap();
        assert_eq!(&ok.body[..], b"ok");
    }

    #[tokio::test]
    async fn any_cache_delegates() {
        let inner = MemoryCache::new(1 << 20);
        let any = AnyCache::new(inner.clone());
        let key = CacheKey::new("img", "k");
        any.put(key.clone(), jpeg(b"x")).await;
        assert!(inner.get(&key).await.is_some());
        assert_eq!(any.get(&key).await.unwrap().body, &b"x"[..]);
        assert_eq!(any.purge_identifier("img").await, 1);
        assert!(inner.get(&key).await.is_none());
        assert!(format!("{any:?}").contains("MemoryCache"));

        let cache = DerivativeCache::new(any);
        let got = get_or_render(&cache, key.clone(), || async { Ok(jpeg(b"y")) })
            .await
            .unwrap();
        assert_eq!(&got.body[..], b"y");
        assert!(inner.get(&key).await.is_some());
    }
}

/// The examples that stood in the doc comments of these crate-private items.
#[cfg(test)]
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    mod doc_anycache_303 {
        use crate::cache::{AnyCache, CacheBackend, CacheKey, CachedDerivative, MemoryCache};

        #[tokio::main(flavor = "current_thread")]
        async fn main() {
            let backends = [
                AnyCache::new(MemoryCache::new(1 << 20)),
                AnyCache::new(MemoryCache::new(1 << 10)),
            ];
            let key = CacheKey::new("img", "k");
            backends[0]
                .put(key.clone(), CachedDerivative::new(&b"x"[..], "image/jpeg"))
                .await;
            assert!(backends[0].get(&key).await.is_some());
            assert!(backends[1].get(&key).await.is_none());
        }

        #[test]
        fn run() {
            main();
        }
    }
}

#[cfg(test)]
mod derivative_cache_example {
    use bytes::Bytes;

    use super::tests::get_or_render;
    use super::{CacheKey, CachedDerivative, DerivativeCache, MemoryCache};

    #[tokio::test]
    async fn renders_once_then_hits_then_purges() {
        let cache = DerivativeCache::new(MemoryCache::new(64 << 20));
        let key = CacheKey::new("page-1", "full/max/0/default.jpg;v=1700000000");
        // A miss: the closure renders, and the result is stored.
        let first = get_or_render(&cache, key.clone(), || async {
            Ok(CachedDerivative::new(
                Bytes::from_static(b"\xff\xd8jpeg"),
                "image/jpeg",
            ))
        })
        .await
        .unwrap();
        assert_eq!(first.content_type, "image/jpeg");
        // A hit: the closure is not called.
        let second = get_or_render(&cache, key.clone(), || async {
            Err(crate::Error::internal("not called on a hit"))
        })
        .await
        .unwrap();
        assert_eq!(second, first);
        // A new version of the source is another key; purging forgets every version.
        assert_eq!(cache.purge_identifier("page-1").await, 1);
    }
}
