//! [`MemoryCache`]: derivatives in process memory, bounded by bytes.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter};

use super::{CacheBackend, CacheKey, CachedDerivative, lock};

/// The estimated size of one derivative, to size the cache's tables.
const TYPICAL_ENTRY: u64 = 32 * 1024;

/// quick_cache splits the capacity between shards and admits no entry larger than a shard's
/// hot part (97% of the shard). With 4 shards a shard holds a quarter of the cache, so every
/// entry up to the admission limit (an eighth of the cache) fits.
const SHARDS: usize = 4;

type Inner = Cache<CacheKey, CachedDerivative, ByteWeighter, DefaultHashBuilder, EvictionLog>;

/// Derivatives in process memory, bounded by bytes.
///
/// A [quick_cache](quick_cache) cache weighted by the bytes of each entry (body, media type and
/// key). Its eviction is CLOCK-PRO-like rather than strict LRU: entries that are asked for again
/// are kept over entries seen once, so one pass over many images does not flush the hot ones.
/// Entries larger than an eighth of the capacity are not stored.
///
/// Purging by identifier uses an index from identifier to keys, kept up to date on every insert
/// and eviction.
///
/// Cheap to clone; clones share the cache.
///
/// # Example
///
/// ```
/// use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, MemoryCache};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cache = MemoryCache::new(256 << 20); // 256 MiB
/// let key = CacheKey::new("page-1", "full/max/0/default.jpg");
/// cache.put(key.clone(), CachedDerivative::new(vec![0u8; 1000], "image/jpeg")).await;
/// assert_eq!(cache.get(&key).await.unwrap().body.len(), 1000);
/// assert!(cache.used_bytes() >= 1000);
/// assert_eq!(cache.purge_identifier("page-1").await, 1);
/// assert!(cache.is_empty());
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryCache {
    shared: Arc<Shared>,
}

struct Shared {
    cache: Inner,
    /// Identifier -> the keys stored for it.
    index: Mutex<HashMap<Arc<str>, HashSet<CacheKey>>>,
    /// The largest weight admitted.
    max_entry: u64,
}

/// Weighs an entry by its bytes.
#[derive(Debug, Clone, Copy, Default)]
struct ByteWeighter;

impl Weighter<CacheKey, CachedDerivative> for ByteWeighter {
    fn weight(&self, key: &CacheKey, value: &CachedDerivative) -> u64 {
        weight(key, value)
    }
}

/// The bytes an entry takes (never 0: zero-weight entries are never evicted by quick_cache).
fn weight(key: &CacheKey, value: &CachedDerivative) -> u64 {
    let bytes = value.body.len() + value.content_type.len() + key.identifier.len() + key.key.len();
    (bytes as u64).max(1)
}

/// Collects what an insert evicted, so that the index can forget it after the cache's shard
/// lock is released (the values are dropped there too, outside the lock).
#[derive(Debug, Clone, Copy, Default)]
struct EvictionLog;

impl Lifecycle<CacheKey, CachedDerivative> for EvictionLog {
    type RequestState = Vec<(CacheKey, CachedDerivative)>;

    fn begin_request(&self) -> Self::RequestState {
        Vec::new()
    }

    fn on_evict(&self, state: &mut Self::RequestState, key: CacheKey, value: CachedDerivative) {
        state.push((key, value));
    }
}

impl MemoryCache {
    /// Create a new [`MemoryCache`] holding up to `max_bytes` bytes.
    ///
    /// ```
    /// let cache = tower_iiif::cache::MemoryCache::new(64 << 20);
    /// assert_eq!(cache.capacity(), 64 << 20);
    /// assert!(cache.is_empty());
    /// ```
    pub fn new(max_bytes: u64) -> Self {
        let items = usize::try_from(max_bytes / TYPICAL_ENTRY)
            .unwrap_or(usize::MAX)
            .max(16);
        let options = OptionsBuilder::new()
            .estimated_items_capacity(items)
            .weight_capacity(max_bytes)
            .shards(SHARDS)
            .build()
            .expect("both capacities are set");
        Self {
            shared: Arc::new(Shared {
                cache: Cache::with_options(
                    options,
                    ByteWeighter,
                    DefaultHashBuilder::default(),
                    EvictionLog,
                ),
                index: Mutex::new(HashMap::new()),
                max_entry: max_bytes / 8,
            }),
        }
    }

    /// The most bytes held.
    ///
    /// ```
    /// assert_eq!(tower_iiif::cache::MemoryCache::new(1 << 20).capacity(), 1 << 20);
    /// ```
    pub fn capacity(&self) -> u64 {
        self.shared.cache.capacity()
    }

    /// The bytes held now (bodies, media types and keys).
    ///
    /// ```
    /// # use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, MemoryCache};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = MemoryCache::new(1 << 20);
    /// assert_eq!(cache.used_bytes(), 0);
    /// let value = CachedDerivative::new(vec![0u8; 100], "image/png");
    /// cache.put(CacheKey::new("a", "k"), value).await;
    /// assert!(cache.used_bytes() >= 100);
    /// # }
    /// ```
    pub fn used_bytes(&self) -> u64 {
        self.shared.cache.weight()
    }

    /// How many derivatives are held.
    ///
    /// ```
    /// # use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, MemoryCache};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = MemoryCache::new(1 << 20);
    /// cache.put(CacheKey::new("a", "k1"), CachedDerivative::new(&b"1"[..], "image/png")).await;
    /// cache.put(CacheKey::new("b", "k1"), CachedDerivative::new(&b"2"[..], "image/png")).await;
    /// assert_eq!(cache.len(), 2);
    /// # }
    /// ```
    pub fn len(&self) -> usize {
        self.shared.cache.len()
    }

    /// Whether no derivative is held.
    ///
    /// ```
    /// # use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, MemoryCache};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = MemoryCache::new(1 << 20);
    /// assert!(cache.is_empty());
    /// cache.put(CacheKey::new("a", "k"), CachedDerivative::new(&b"1"[..], "image/png")).await;
    /// assert!(!cache.is_empty());
    /// # }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.shared.cache.is_empty()
    }

    fn insert(&self, key: CacheKey, value: CachedDerivative) {
        if weight(&key, &value) > self.shared.max_entry {
            tracing::debug!(key = %key, bytes = value.body.len(), "derivative too large for the memory cache");
            return;
        }
        let identifier = Arc::clone(&key.identifier);
        let evicted = self.shared.cache.insert_with_lifecycle(key.clone(), value);
        let mut index = lock(&self.shared.index);
        // A replaced value is reported as evicted under the same key: that key stays indexed.
        // (A refused insert would leave a stale key, which is harmless, but none is refused:
        // `max_entry` is below a shard's hot part.)
        for (gone, _) in evicted.iter().filter(|(gone, _)| *gone != key) {
            if let Some(keys) = index.get_mut(&gone.identifier) {
                keys.remove(gone);
                if keys.is_empty() {
                    index.remove(&gone.identifier);
                }
            }
        }
        index.entry(identifier).or_default().insert(key);
        drop(index);
        drop(evicted);
    }

    fn purge(&self, identifier: &str) -> usize {
        let keys = lock(&self.shared.index).remove(identifier);
        keys.map_or(0, |keys| {
            keys.iter()
                .filter(|key| self.shared.cache.remove(*key).is_some())
                .count()
        })
    }
}

impl CacheBackend for MemoryCache {
    fn get(&self, key: &CacheKey) -> impl Future<Output = Option<CachedDerivative>> + Send {
        std::future::ready(self.shared.cache.get(key))
    }

    async fn put(&self, key: CacheKey, value: CachedDerivative) {
        self.insert(key, value);
    }

    fn purge_identifier(&self, identifier: &str) -> impl Future<Output = usize> + Send {
        std::future::ready(self.purge(identifier))
    }

    async fn purge_all(&self) -> usize {
        let n = self.len();
        self.shared.cache.clear();
        lock(&self.shared.index).clear();
        n
    }

    fn tier(&self) -> &'static str {
        "memory"
    }
}

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache")
            .field("capacity", &self.capacity())
            .field("used_bytes", &self.used_bytes())
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, i: usize) -> CacheKey {
        CacheKey::new(id, format!("full/{i},/0/default.jpg"))
    }

    fn body(len: usize) -> CachedDerivative {
        CachedDerivative::new(vec![0x5a; len], "image/jpeg")
    }

    #[tokio::test]
    async fn put_get_purge() {
        let cache = MemoryCache::new(1 << 20);
        for i in 0..3 {
            cache.put(key("a", i), body(100)).await;
        }
        cache.put(key("b", 0), body(100)).await;
        assert_eq!(cache.len(), 4);
        let got = cache.get(&key("a", 1)).await.unwrap();
        assert_eq!(got.body.len(), 100);
        assert_eq!(got.content_type, "image/jpeg");
        assert!(cache.get(&key("c", 0)).await.is_none());

        assert_eq!(cache.purge_identifier("a").await, 3);
        for i in 0..3 {
            assert!(cache.get(&key("a", i)).await.is_none());
        }
        assert!(cache.get(&key("b", 0)).await.is_some());
        assert_eq!(cache.purge_identifier("a").await, 0);
        assert!(
            lock(&cache.shared.index).get("a").is_none(),
            "purge prunes the index"
        );
    }

    #[tokio::test]
    async fn replacing_keeps_one_entry() {
        let cache = MemoryCache::new(1 << 20);
        cache.put(key("a", 0), body(10)).await;
        cache.put(key("a", 0), body(20)).await;
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(&key("a", 0)).await.unwrap().body.len(), 20);
        assert_eq!(cache.purge_identifier("a").await, 1);
    }

    #[tokio::test]
    async fn bounded_by_bytes() {
        let cap = 200 * 1024;
        let cache = MemoryCache::new(cap);
        for i in 0..100 {
            cache.put(key("img", i), body(10 * 1024)).await;
            assert!(
                cache.used_bytes() <= cap,
                "after {i}: {}",
                cache.used_bytes()
            );
        }
        assert!(cache.used_bytes() <= cap);
        let mut present = Vec::new();
        for i in 0..100 {
            if cache.get(&key("img", i)).await.is_some() {
                present.push(i);
            }
        }
        // At most 19 entries of 10 KiB + key fit in 200 KiB; the newest is always admitted and
        // the oldest are gone. (The policy is CLOCK-PRO-like, not strict LRU: in a one-off scan
        // like this one about every other recent entry survives, not the 19 newest.)
        assert!(present.len() <= 19, "{present:?}");
        assert!(present.contains(&99), "{present:?}");
        assert!(!present.contains(&0), "{present:?}");
        assert!(present.iter().all(|&i| i >= 50), "{present:?}");
        // Evictions left the index: it holds exactly what the cache holds.
        let indexed = lock(&cache.shared.index).get("img").map_or(0, HashSet::len);
        assert_eq!(indexed, cache.len());
    }

    #[tokio::test]
    async fn large_entries_are_not_stored() {
        let cache = MemoryCache::new(80 * 1024);
        cache.put(key("big", 0), body(11 * 1024)).await;
        assert!(cache.get(&key("big", 0)).await.is_none());
        assert!(lock(&cache.shared.index).is_empty());
        cache.put(key("small", 0), body(9 * 1024)).await;
        assert!(cache.get(&key("small", 0)).await.is_some());
    }

    #[tokio::test]
    async fn clones_share() {
        let a = MemoryCache::new(1 << 20);
        let b = a.clone();
        a.put(key("x", 0), body(5)).await;
        assert!(b.get(&key("x", 0)).await.is_some());
        assert!(format!("{b:?}").contains("len: 1"));
    }
}
