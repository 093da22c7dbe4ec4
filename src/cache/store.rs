//! A derivative cache in an object store (S3 and compatible, GCS, Azure), shared by every
//! instance that points at it (Cantaloupe's `S3Cache`).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::sync::broadcast;

use super::{CacheBackend, CacheKey, CachedDerivative, Purge, entry};
use crate::Error;

/// How often the purge notices of other instances are looked for.
const NOTICE_POLL: Duration = Duration::from_secs(1);
/// Purge notices are deleted by the sweeper after this long.
const NOTICE_LIFE: Duration = Duration::from_secs(3600);

/// Derivatives (and image information) in an object store, shared by a fleet of instances.
///
/// - Entries are objects `PREFIX/ab/<identifier digest>/<key digest>`, each holding its key,
///   content type and creation time in front of the body (a read checks both).
/// - [`ttl`](Self::ttl) (Cantaloupe's `derivative.ttl_seconds`) is enforced on read, and
///   [`sweep`](Self::sweep) (run by [`spawn_sweeper`](Self::spawn_sweeper), Cantaloupe's cache
///   worker) deletes expired entries.
/// - A purge deletes the identifier's objects (one listing of its directory) and leaves a
///   notice under `PREFIX/_purges/`, which other instances poll every second
///   ([`purges`](CacheBackend::purges)) so that their memory tiers follow.
/// - Errors are logged and are misses.
///
/// ```
/// use std::sync::Arc;
/// use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, ObjectStoreCache};
/// use tower_iiif::source::object_store::memory::InMemory;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cache = ObjectStoreCache::new(Arc::new(InMemory::new()), "derivatives");
/// let key = CacheKey::new("a", "full/max/0/default.jpg");
/// cache.put(key.clone(), CachedDerivative::new(&b"jpeg"[..], "image/jpeg")).await;
/// assert_eq!(cache.get(&key).await.unwrap().body, &b"jpeg"[..]);
/// assert_eq!(cache.purge_identifier("a").await, 1);
/// assert!(cache.get(&key).await.is_none());
/// # }
/// ```
#[derive(Clone)]
pub struct ObjectStoreCache {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    ttl: Option<Duration>,
    purges: Arc<OnceLock<broadcast::Sender<Purge>>>,
}

impl std::fmt::Debug for ObjectStoreCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStoreCache")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix.as_ref())
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl ObjectStoreCache {
    /// A cache under `prefix` (e.g. `cache/derivatives`) in `store`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use tower_iiif::cache::ObjectStoreCache;
    /// # use tower_iiif::source::object_store::memory::InMemory;
    /// let cache = ObjectStoreCache::new(Arc::new(InMemory::new()), "iiif-cache");
    /// # let _ = cache;
    /// ```
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        Self {
            store,
            prefix: Path::from(prefix),
            ttl: None,
            purges: Arc::default(),
        }
    }

    /// An S3 bucket (credentials and region from the `AWS_*` environment, else the instance
    /// profile; with `endpoint`, an S3-compatible server, path-style).
    ///
    /// ```
    /// // SAFETY: the doctest is single-threaded.
    /// unsafe { std::env::set_var("AWS_REGION", "garage") };
    /// let cache = tower_iiif::cache::ObjectStoreCache::s3("cache", "iiif/", Some("http://127.0.0.1:3900"));
    /// assert!(cache.is_ok());
    /// ```
    #[cfg(feature = "s3")]
    pub fn s3(bucket: &str, prefix: &str, endpoint: Option<&str>) -> Result<Self, Error> {
        let store = crate::source::store::s3_store(bucket, endpoint)?;
        Ok(Self::new(Arc::new(store), prefix))
    }

    /// Entries older than `ttl` are misses, and swept.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use tower_iiif::cache::ObjectStoreCache;
    /// # use tower_iiif::source::object_store::memory::InMemory;
    /// let cache = ObjectStoreCache::new(Arc::new(InMemory::new()), "c")
    ///     .ttl(std::time::Duration::from_secs(86_400));
    /// # let _ = cache;
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl).filter(|t| !t.is_zero());
        self
    }

    fn identifier_dir(&self, identifier: &str) -> Path {
        let digest = CacheKey::new(identifier, "").digest();
        self.prefix.clone().join(&digest[..2]).join(digest)
    }

    fn entry_path(&self, key: &CacheKey) -> Path {
        self.identifier_dir(key.identifier()).join(key.digest())
    }

    fn notices(&self) -> Path {
        self.prefix.clone().join("_purges")
    }

    async fn delete_under(&self, dir: &Path, keep: impl Fn(&Path) -> bool) -> usize {
        let mut listing = self.store.list(Some(dir));
        let mut removed = 0;
        while let Some(meta) = listing.next().await {
            match meta {
                Ok(m) if keep(&m.location) => {}
                Ok(m) => match self.store.delete(&m.location).await {
                    Ok(()) => removed += 1,
                    Err(e) => tracing::warn!("object store cache: delete: {e}"),
                },
                Err(e) => {
                    tracing::warn!("object store cache: list: {e}");
                    break;
                }
            }
        }
        removed
    }

    async fn announce(&self, body: String) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let name = format!("{:020}-{:08x}", now.as_millis(), rand_u32());
        let path = self.notices().join(name);
        if let Err(e) = self.store.put(&path, PutPayload::from(body)).await {
            tracing::warn!("object store cache: cannot leave a purge notice: {e}");
        }
    }

    /// Delete every expired entry and old purge notice; the number of entries deleted. Uses
    /// the listing's modification times, so bodies are not read.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, ObjectStoreCache};
    /// # use tower_iiif::source::object_store::memory::InMemory;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = ObjectStoreCache::new(Arc::new(InMemory::new()), "c")
    ///     .ttl(std::time::Duration::from_secs(1));
    /// cache.put(CacheKey::new("a", "k"), CachedDerivative::new(&b"x"[..], "image/png")).await;
    /// assert_eq!(cache.sweep().await, 0);
    /// tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    /// assert_eq!(cache.sweep().await, 1);
    /// # }
    /// ```
    pub async fn sweep(&self) -> usize {
        let now = chrono_now();
        let ttl = self.ttl;
        let notices = self.notices();
        let mut listing = self.store.list(Some(&self.prefix));
        let mut removed = 0;
        while let Some(meta) = listing.next().await {
            let Ok(m) = meta else { break };
            let age = now.saturating_sub(m.last_modified.timestamp().max(0) as u64);
            let notice = m.location.prefix_matches(&notices);
            let expired = match notice {
                true => age > NOTICE_LIFE.as_secs(),
                false => ttl.is_some_and(|t| age > t.as_secs()),
            };
            if expired && self.store.delete(&m.location).await.is_ok() && !notice {
                removed += 1;
            }
        }
        removed
    }

    /// Run [`sweep`](Self::sweep) every `interval` in a task of its own (Cantaloupe's cache
    /// worker). Needs a tokio runtime; stop it by aborting the handle.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use tower_iiif::cache::ObjectStoreCache;
    /// # use tower_iiif::source::object_store::memory::InMemory;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = ObjectStoreCache::new(Arc::new(InMemory::new()), "c");
    /// let sweeper = cache.spawn_sweeper(std::time::Duration::from_secs(3600));
    /// sweeper.abort();
    /// # }
    /// ```
    pub fn spawn_sweeper(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let n = this.sweep().await;
                if n > 0 {
                    tracing::info!("object store cache: swept {n} expired entries");
                }
            }
        })
    }
}

fn chrono_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A little randomness for notice names (two instances purging in the same millisecond).
fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() as u32
}

impl CacheBackend for ObjectStoreCache {
    async fn get(&self, key: &CacheKey) -> Option<CachedDerivative> {
        let path = self.entry_path(key);
        let got = match self.store.get(&path).await {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        };
        match got {
            Ok(bytes) => entry::decode(bytes, key, self.ttl),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => {
                tracing::warn!("object store cache: read: {e}");
                None
            }
        }
    }

    async fn put(&self, key: CacheKey, value: CachedDerivative) {
        let bytes: Bytes = entry::encode(&key, &value, SystemTime::now());
        if let Err(e) = self
            .store
            .put(&self.entry_path(&key), PutPayload::from(bytes))
            .await
        {
            tracing::warn!("object store cache: write: {e}");
        }
    }

    async fn purge_identifier(&self, identifier: &str) -> usize {
        let removed = self
            .delete_under(&self.identifier_dir(identifier), |_| false)
            .await;
        self.announce(format!("i:{identifier}")).await;
        removed
    }

    async fn purge_all(&self) -> usize {
        let notices = self.notices();
        let removed = self
            .delete_under(&self.prefix, |p| p.prefix_matches(&notices))
            .await;
        self.announce("all".into()).await;
        removed
    }

    async fn check(&self) -> Result<(), Error> {
        match self.store.head(&self.prefix.clone().join("_health")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::bad_gateway(format!(
                "object store cache unreachable: {e}"
            ))),
        }
    }

    fn tier(&self) -> &'static str {
        "object-store"
    }

    /// The notices other instances leave, polled every second from the first call on.
    fn purges(&self) -> Option<broadcast::Receiver<Purge>> {
        super::purge_feed(&self.purges, |tx| {
            let this = self.clone();
            tokio::spawn(async move {
                // Notices from before this instance started are not its business.
                let start = format!("{:020}", {
                    SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis())
                });
                let seen = Mutex::new(this.notices().join(start));
                loop {
                    tokio::time::sleep(NOTICE_POLL).await;
                    if tx.receiver_count() == 0 {
                        return;
                    }
                    let offset = super::lock(&seen).clone();
                    let mut listing = this.store.list_with_offset(Some(&this.notices()), &offset);
                    let mut found = Vec::new();
                    while let Some(Ok(m)) = listing.next().await {
                        found.push(m.location);
                    }
                    found.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
                    for location in found {
                        let body = match this.store.get(&location).await {
                            Ok(r) => r.bytes().await.unwrap_or_default(),
                            Err(_) => Bytes::new(),
                        };
                        let text = String::from_utf8_lossy(&body);
                        let purge = match text.strip_prefix("i:") {
                            Some(id) => Purge::Identifier(id.to_owned()),
                            None => Purge::All,
                        };
                        *super::lock(&seen) = location;
                        if tx.send(purge).is_err() {
                            return;
                        }
                    }
                }
            });
        })
    }
}
