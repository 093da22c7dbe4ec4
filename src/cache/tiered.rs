//! Two cache tiers stacked: a fast one (memory) in front of a shared one (Redis, an object
//! store), so that a fleet of instances shares renders while each keeps its hot set close.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use super::{CacheBackend, CacheKey, CachedDerivative, Purge};
use crate::Error;

/// `front` in front of `back`: a read tries `front`, then `back` (a hit there is copied to
/// `front`); a write goes to both; a purge reaches both. Purges that other instances make
/// through a shared `back` ([`CacheBackend::purges`]) are followed in `front`, so a purge
/// through one instance is a miss through every other (within the shared tier's notice delay).
///
/// ```
/// use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, MemoryCache, TieredCache};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (front, back) = (MemoryCache::new(1 << 20), MemoryCache::new(1 << 20));
/// let tiers = TieredCache::new(front.clone(), back.clone());
/// let key = CacheKey::new("a", "full/max/0/default.jpg");
/// back.put(key.clone(), CachedDerivative::new(&b"jpeg"[..], "image/jpeg")).await;
/// assert!(front.get(&key).await.is_none());
/// assert_eq!(tiers.get(&key).await.unwrap().body, &b"jpeg"[..]); // from the back tier...
/// assert!(front.get(&key).await.is_some()); // ...now in front too
/// assert_eq!(tiers.purge_identifier("a").await, 2);
/// assert!(tiers.get(&key).await.is_none());
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TieredCache<F, B> {
    front: F,
    back: B,
    following: Arc<OnceLock<()>>,
}

impl<F: CacheBackend, B: CacheBackend> TieredCache<F, B> {
    /// `front` in front of `back`.
    ///
    /// ```
    /// use tower_iiif::cache::{CacheBackend, FsCache, MemoryCache, TieredCache};
    /// let dir = std::env::temp_dir().join(format!("tower-iiif-doc-tiered-{}", std::process::id()));
    /// let tiers = TieredCache::new(MemoryCache::new(64 << 20), FsCache::new(&dir).unwrap());
    /// assert_eq!(tiers.tier(), "tiered");
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn new(front: F, back: B) -> Self {
        Self {
            front,
            back,
            following: Arc::new(OnceLock::new()),
        }
    }

    /// Start following the back tier's purges in the front tier (once, on first use: it needs
    /// the tokio runtime).
    fn follow_purges(&self) {
        if self.following.get().is_some() || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        if self.following.set(()).is_err() {
            return;
        }
        let Some(mut purges) = self.back.purges() else {
            return;
        };
        let front = self.front.clone();
        tokio::spawn(async move {
            loop {
                match purges.recv().await {
                    Ok(Purge::Identifier(id)) => {
                        front.purge_identifier(&id).await;
                    }
                    Ok(Purge::All) => {
                        front.purge_all().await;
                    }
                    // Notices were missed: forget everything rather than serve a purged entry.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        front.purge_all().await;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }
}

impl<F: CacheBackend, B: CacheBackend> CacheBackend for TieredCache<F, B> {
    fn get(&self, key: &CacheKey) -> impl Future<Output = Option<CachedDerivative>> + Send {
        self.follow_purges();
        let key = key.clone();
        async move {
            let front = self.front.get(&key).await;
            super::count_lookup(self.front.tier(), front.is_some());
            if front.is_some() {
                return front;
            }
            let hit = self.back.get(&key).await;
            super::count_lookup(self.back.tier(), hit.is_some());
            if let Some(hit) = &hit {
                self.front.put(key, hit.clone()).await;
            }
            hit
        }
    }

    async fn put(&self, key: CacheKey, value: CachedDerivative) {
        self.follow_purges();
        futures_util::future::join(
            self.front.put(key.clone(), value.clone()),
            self.back.put(key, value),
        )
        .await;
    }

    async fn purge_identifier(&self, identifier: &str) -> usize {
        // The back first: an entry purged in front only would come back from it.
        let back = self.back.purge_identifier(identifier).await;
        back + self.front.purge_identifier(identifier).await
    }

    async fn purge_all(&self) -> usize {
        let back = self.back.purge_all().await;
        back + self.front.purge_all().await
    }

    async fn check(&self) -> Result<(), Error> {
        self.front.check().await?;
        self.back.check().await
    }

    fn tier(&self) -> &'static str {
        "tiered"
    }

    fn purges(&self) -> Option<tokio::sync::broadcast::Receiver<Purge>> {
        self.back.purges()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::MemoryCache;

    /// A back tier that announces purges, as a shared tier does for other instances' purges.
    #[derive(Clone)]
    struct Announcing(MemoryCache, tokio::sync::broadcast::Sender<Purge>);

    impl CacheBackend for Announcing {
        fn get(&self, key: &CacheKey) -> impl Future<Output = Option<CachedDerivative>> + Send {
            self.0.get(key)
        }
        fn put(&self, key: CacheKey, value: CachedDerivative) -> impl Future<Output = ()> + Send {
            self.0.put(key, value)
        }
        fn purge_identifier(&self, identifier: &str) -> impl Future<Output = usize> + Send {
            self.0.purge_identifier(identifier)
        }
        fn purges(&self) -> Option<tokio::sync::broadcast::Receiver<Purge>> {
            Some(self.1.subscribe())
        }
    }

    #[tokio::test]
    async fn purges_announced_by_the_back_tier_reach_the_front() {
        let front = MemoryCache::new(1 << 20);
        let (tx, _) = tokio::sync::broadcast::channel(16);
        let back = Announcing(MemoryCache::new(1 << 20), tx.clone());
        let tiers = TieredCache::new(front.clone(), back.clone());
        let key = CacheKey::new("a", "k");
        tiers
            .put(key.clone(), CachedDerivative::new(&b"x"[..], "image/jpeg"))
            .await;
        assert!(front.get(&key).await.is_some());
        // Another instance purged "a" in the shared tier: it is gone there, and announced.
        back.0.purge_identifier("a").await;
        tx.send(Purge::Identifier("a".into())).unwrap();
        for _ in 0..50 {
            if front.get(&key).await.is_none() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(front.get(&key).await.is_none());
        assert!(tiers.get(&key).await.is_none());
    }
}
