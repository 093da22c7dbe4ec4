//! A derivative cache in Redis, shared by every instance that points at it (Cantaloupe's
//! `RedisCache`).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::broadcast;

use super::{CacheBackend, CacheKey, CachedDerivative, Purge, entry};
use crate::Error;

/// Derivatives (and image information) in Redis, shared by a fleet of instances.
///
/// - One connection per process, multiplexed and reconnecting (redis' `ConnectionManager`):
///   clones share it.
/// - Entries expire after [`ttl`](Self::ttl) (Cantaloupe's `derivative.ttl_seconds`): Redis
///   deletes them (`EX`), and a read checks the age stored in the entry.
/// - A purge deletes the identifier's entries (each identifier has a set of its keys; only the
///   keys deleted leave it, so an entry written during the purge stays reachable by the next)
///   and is announced on a pub/sub channel, so that the memory tiers of other instances follow it
///   ([`TieredCache`](super::TieredCache)).
/// - Errors (Redis down) are logged and are misses; [`check`](CacheBackend::check) says so.
///
/// ```no_run
/// use std::time::Duration;
/// use tower_iiif::cache::{MemoryCache, RedisCache, TieredCache};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tower_iiif::Error> {
/// let shared = RedisCache::connect("redis://127.0.0.1:6379").await?.ttl(Duration::from_secs(86_400));
/// let cache = TieredCache::new(MemoryCache::new(256 << 20), shared);
/// # let _ = cache;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisCache {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: Arc<str>,
    ttl: Option<Duration>,
    purges: Arc<OnceLock<broadcast::Sender<Purge>>>,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// Connect to `url` (`redis://host:port/db`, `rediss://` for TLS is not built in). Keys are
    /// prefixed `iiif:`; no time to live.
    ///
    /// # Errors
    ///
    /// A 500-kind error when the URL is invalid or the server cannot be reached.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = tower_iiif::cache::RedisCache::connect("redis://127.0.0.1:6379").await.unwrap();
    /// # let _ = cache;
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let err = |e: redis::RedisError| Error::internal(format!("redis {url}: {e}"));
        let client = redis::Client::open(url).map_err(err)?;
        let conn = client.get_connection_manager().await.map_err(err)?;
        Ok(Self {
            client,
            conn,
            prefix: "iiif:".into(),
            ttl: None,
            purges: Arc::default(),
        })
    }

    /// Prefix every key (default `iiif:`), to share a Redis with other applications or keep
    /// several caches apart.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = tower_iiif::cache::RedisCache::connect("redis://127.0.0.1:6379").await.unwrap()
    ///     .prefix("museum:iiif:");
    /// # let _ = cache;
    /// # }
    /// ```
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Entries older than `ttl` are gone (default: kept until evicted by Redis' own policy).
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = tower_iiif::cache::RedisCache::connect("redis://127.0.0.1:6379").await.unwrap()
    ///     .ttl(std::time::Duration::from_secs(3600));
    /// # let _ = cache;
    /// # }
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl).filter(|t| !t.is_zero());
        self
    }

    fn entry_key(&self, key: &CacheKey) -> String {
        format!("{}d:{}", self.prefix, key.digest())
    }

    fn index_key(&self, identifier: &str) -> String {
        format!(
            "{}i:{}",
            self.prefix,
            CacheKey::new(identifier, "").digest()
        )
    }

    fn channel(&self) -> String {
        format!("{}purge", self.prefix)
    }

    async fn announce(&self, purge: &str) {
        let mut conn = self.conn.clone();
        let sent: Result<i64, _> = redis::cmd("PUBLISH")
            .arg(self.channel())
            .arg(purge)
            .query_async(&mut conn)
            .await;
        if let Err(e) = sent {
            tracing::warn!("redis cache: cannot announce a purge: {e}");
        }
    }
}

fn logged<T: Default>(what: &str, r: redis::RedisResult<T>) -> T {
    r.unwrap_or_else(|e| {
        tracing::warn!("redis cache: {what}: {e}");
        T::default()
    })
}

impl CacheBackend for RedisCache {
    async fn get(&self, key: &CacheKey) -> Option<CachedDerivative> {
        let mut conn = self.conn.clone();
        let got: Option<Vec<u8>> = logged(
            "read",
            redis::cmd("GET")
                .arg(self.entry_key(key))
                .query_async(&mut conn)
                .await,
        );
        entry::decode(Bytes::from(got?), key, self.ttl)
    }

    async fn put(&self, key: CacheKey, value: CachedDerivative) {
        let bytes = entry::encode(&key, &value, SystemTime::now());
        let entry_key = self.entry_key(&key);
        let index = self.index_key(key.identifier());
        let mut pipe = redis::pipe();
        let set = pipe.cmd("SET").arg(&entry_key).arg(bytes.as_ref());
        if let Some(ttl) = self.ttl {
            set.arg("PX")
                .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1));
        }
        set.ignore();
        pipe.cmd("SADD").arg(&index).arg(&entry_key).ignore();
        if let Some(ttl) = self.ttl {
            // The index outlives its entries by a day at most.
            pipe.cmd("EXPIRE")
                .arg(&index)
                .arg(ttl.as_secs() + 86_400)
                .ignore();
        }
        let mut conn = self.conn.clone();
        logged("write", pipe.query_async::<()>(&mut conn).await);
    }

    async fn purge_identifier(&self, identifier: &str) -> usize {
        let index = self.index_key(identifier);
        let mut conn = self.conn.clone();
        let keys: Vec<String> = logged(
            "purge",
            redis::cmd("SMEMBERS")
                .arg(&index)
                .query_async(&mut conn)
                .await,
        );
        let mut removed = 0;
        if !keys.is_empty() {
            removed = logged(
                "purge",
                redis::cmd("DEL")
                    .arg(&keys)
                    .query_async::<usize>(&mut conn)
                    .await,
            );
            // Only the members deleted leave the index: an entry written meanwhile (its key
            // added after SMEMBERS) stays in it, for the next purge to reach. Deleting the
            // whole index would leave such an entry out of reach of every purge by
            // identifier.
            logged(
                "purge",
                redis::cmd("SREM")
                    .arg(&index)
                    .arg(&keys)
                    .query_async::<usize>(&mut conn)
                    .await,
            );
        }
        self.announce(&format!("i:{identifier}")).await;
        removed
    }

    async fn purge_all(&self) -> usize {
        let mut conn = self.conn.clone();
        let pattern = format!("{}*", self.prefix);
        let mut cursor: u64 = 0;
        let mut removed = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = logged(
                "purge",
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await,
            );
            let entries: Vec<&String> = keys
                .iter()
                .filter(|k| k.starts_with(&format!("{}d:", self.prefix)))
                .collect();
            removed += entries.len();
            if !keys.is_empty() {
                logged(
                    "purge",
                    redis::cmd("DEL")
                        .arg(&keys)
                        .query_async::<usize>(&mut conn)
                        .await,
                );
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        self.announce("all").await;
        removed
    }

    async fn check(&self) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| Error::bad_gateway(format!("redis cache unreachable: {e}")))
    }

    fn tier(&self) -> &'static str {
        "redis"
    }

    /// Purges announced on the cache's channel (by any instance, this one included), from a
    /// subscription started on first call (it reconnects after a second if Redis goes away).
    fn purges(&self) -> Option<broadcast::Receiver<Purge>> {
        super::purge_feed(&self.purges, |tx| {
            let (client, channel) = (self.client.clone(), self.channel());
            tokio::spawn(async move {
                loop {
                    if tx.receiver_count() == 0 {
                        break;
                    }
                    match client.get_async_pubsub().await {
                        Ok(mut pubsub) => {
                            if pubsub.subscribe(&channel).await.is_ok() {
                                let mut messages = pubsub.into_on_message();
                                while let Some(msg) = messages.next().await {
                                    let payload: String = msg.get_payload().unwrap_or_default();
                                    let purge = match payload.strip_prefix("i:") {
                                        Some(id) => Purge::Identifier(id.to_owned()),
                                        None => Purge::All,
                                    };
                                    if tx.send(purge).is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                        Err(e) => tracing::warn!("redis cache: purge subscription: {e}"),
                    }
                    // Notices may have been missed while disconnected: say so.
                    if tx.send(Purge::All).is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        })
    }
}
