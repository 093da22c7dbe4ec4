//! [`FsCache`]: derivatives in files under a directory, bounded by bytes.
//!
//! # Layout
//!
//! `dir/ab/cd/abcd….bin`, named by the [`CacheKey::digest`] and fanned out by its first four hex
//! digits. Each file is a small text header and the body:
//!
//! ```text
//! TIIIF1\n
//! {content type}\n
//! {body length in bytes, decimal}\n
//! {identifier}\n
//! {key}\n
//! {body}
//! ```
//!
//! The content type, identifier and key are percent-escaped (`%`, control characters and line
//! breaks), so any identifier is safe. A file is written to `.{digest}.{pid}.{n}.tmp` in the same
//! directory and renamed over the `.bin`: a crash mid-write leaves at most a `.tmp`, which the
//! next [`FsCache::new`] deletes, never a partial `.bin`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use super::{CacheBackend, CacheKey, CachedDerivative, lock};

/// The first line of every entry file; the `1` is the format's version.
const MAGIC: &[u8] = b"TIIIF1\n";
/// The longest header line read (a longer one is a corrupt file).
const MAX_LINE: u64 = 64 * 1024;
/// What is escaped in header lines.
const ESCAPE: &AsciiSet = &CONTROLS.add(b'%');
/// The default size cap: 1 GiB.
const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// Derivatives in files under a directory: bounded by bytes (least recently used evicted
/// first), with an optional time to live, surviving restarts.
///
/// - Writes are atomic (temporary file + rename); leftovers of a crash are removed by
///   [`new`](Self::new).
/// - Reads check the header (magic, identifier and key, length): a corrupt or truncated file is
///   a miss and is deleted; a file older than the [`ttl`](Self::ttl) (by modification time) is a
///   miss and is deleted.
/// - When a write takes the total over [`max_bytes`](Self::max_bytes), the least recently used
///   entries are deleted until the total is under 90% of it. Entries larger than an eighth of
///   the cap are not stored.
/// - [`purge_identifier`](CacheBackend::purge_identifier) deletes every file of an identifier.
///
/// The size, recency and identifier indexes live in memory: [`new`](Self::new) builds them by
/// walking the directory (recency from modification times), and they follow this process's
/// reads and writes. A directory is meant for one process; another process's writes are found
/// by reads (and adopted into the indexes) but are not purged or counted before that.
///
/// All file I/O runs on tokio's blocking pool, except in [`new`](Self::new), which walks the
/// directory on the calling thread. Cheap to clone; clones share the indexes.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, FsCache};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let dir = std::env::temp_dir().join(format!("tower-iiif-fs-doc-{}", std::process::id()));
/// let cache = FsCache::new(&dir)?
///     .max_bytes(256 << 20)
///     .ttl(Duration::from_secs(7 * 24 * 3600));
/// let key = CacheKey::new("page-1", "full/max/0/default.jpg");
/// cache.put(key.clone(), CachedDerivative::new(&b"jpeg bytes"[..], "image/jpeg")).await;
///
/// // Another cache on the same directory (e.g. after a restart) finds it.
/// let reopened = FsCache::new(&dir)?;
/// let hit = reopened.get(&key).await.unwrap();
/// assert_eq!(hit.body, &b"jpeg bytes"[..]);
/// assert_eq!(hit.content_type, "image/jpeg");
///
/// assert_eq!(reopened.purge_identifier("page-1").await, 1);
/// assert!(reopened.get(&key).await.is_none());
/// std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct FsCache {
    shared: Arc<Shared>,
    max_bytes: u64,
    ttl: Option<Duration>,
}

/// State shared by the clones of an [`FsCache`].
struct Shared {
    dir: PathBuf,
    state: Mutex<State>,
    /// A copy of `State::total`, readable without the lock.
    total: AtomicU64,
    /// Numbers temporary files.
    tmp_counter: AtomicU64,
}

/// The in-memory indexes of the files on disk.
#[derive(Default)]
struct State {
    entries: HashMap<u128, Entry>,
    /// Last use -> digest, oldest first.
    lru: BTreeMap<u64, u128>,
    by_identifier: HashMap<Arc<str>, HashSet<u128>>,
    /// The clock of `lru`.
    tick: u64,
    /// The sum of `entries`' sizes.
    total: u64,
}

/// One file on disk.
struct Entry {
    /// The file's length.
    size: u64,
    /// Its key in `State::lru`.
    tick: u64,
    identifier: Arc<str>,
}

impl State {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Record a file (replacing any record of the same digest) as the most recently used.
    fn insert(&mut self, digest: u128, size: u64, identifier: Arc<str>) {
        self.remove(digest);
        let tick = self.next_tick();
        self.lru.insert(tick, digest);
        self.by_identifier
            .entry(Arc::clone(&identifier))
            .or_default()
            .insert(digest);
        self.total += size;
        self.entries.insert(
            digest,
            Entry {
                size,
                tick,
                identifier,
            },
        );
    }

    /// Forget a file.
    fn remove(&mut self, digest: u128) -> Option<Entry> {
        let entry = self.entries.remove(&digest)?;
        self.lru.remove(&entry.tick);
        if let Some(digests) = self.by_identifier.get_mut(&entry.identifier) {
            digests.remove(&digest);
            if digests.is_empty() {
                self.by_identifier.remove(&entry.identifier);
            }
        }
        self.total = self.total.saturating_sub(entry.size);
        Some(entry)
    }

    /// Mark a file as just used; `false` if it is not known.
    fn touch(&mut self, digest: u128) -> bool {
        let tick = self.next_tick();
        match self.entries.get_mut(&digest) {
            Some(entry) => {
                self.lru.remove(&entry.tick);
                entry.tick = tick;
                self.lru.insert(tick, digest);
                true
            }
            None => false,
        }
    }

    /// Forget the least recently used files until the total is at most `target`; returns them.
    fn evict_to(&mut self, target: u64) -> Vec<u128> {
        let mut victims = Vec::new();
        while self.total > target {
            let Some((_, digest)) = self.lru.pop_first() else {
                break;
            };
            self.remove(digest);
            victims.push(digest);
        }
        victims
    }
}

/// A parsed entry header.
#[derive(Debug, PartialEq, Eq)]
struct Header {
    content_type: String,
    body_len: u64,
    identifier: String,
    key: String,
    /// The header's own length in bytes (where the body starts).
    len: u64,
}

/// What a read found.
enum Lookup {
    Hit(CachedDerivative, u64),
    /// No file.
    Missing,
    /// A valid file of another key with the same digest: left alone.
    Collision,
    /// Expired, corrupt or truncated: to be deleted.
    Invalid(&'static str),
}

impl FsCache {
    /// Open (or create) a cache in `dir`: delete leftover temporary files and build the indexes
    /// from the entries found (invalid ones are deleted).
    ///
    /// This walks the directory on the calling thread; in async code at startup that is
    /// usually fine, else wrap it in `tokio::task::spawn_blocking`.
    ///
    /// # Errors
    ///
    /// When `dir` cannot be created or listed. Errors on single files are logged and skipped.
    ///
    /// ```
    /// # use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, FsCache};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "fs-cache-new", std::process::id()));
    /// let cache = FsCache::new(&dir)?; // created if missing
    /// assert!(cache.is_empty());
    /// assert!(dir.is_dir());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        let mut found = Vec::new();
        scan(&dir, 0, &mut found)?;
        found.sort_by_key(|f| f.modified);
        let mut state = State::default();
        for f in found {
            state.insert(f.digest, f.size, f.identifier);
        }
        let total = state.total;
        Ok(Self {
            shared: Arc::new(Shared {
                dir,
                state: Mutex::new(state),
                total: AtomicU64::new(total),
                tmp_counter: AtomicU64::new(0),
            }),
            max_bytes: DEFAULT_MAX_BYTES,
            ttl: None,
        })
    }

    /// The most bytes kept on disk (headers included); 1 GiB by default. Past it, a write
    /// evicts least recently used entries down to 90% of it.
    ///
    /// ```
    /// # use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, FsCache};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "fs-cache-max-bytes", std::process::id()));
    /// let cache = FsCache::new(&dir)?.max_bytes(8 * 1024);
    /// let key = CacheKey::new("a", "full/max/0/default.jpg");
    /// // More than an eighth of the cap: not stored.
    /// cache.put(key.clone(), CachedDerivative::new(vec![0u8; 2000], "image/jpeg")).await;
    /// assert!(cache.get(&key).await.is_none());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// How long an entry stays fresh after it was written (none by default: entries live until
    /// evicted or purged). Older entries are misses, and are deleted when read.
    ///
    /// ```
    /// # use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, FsCache};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "fs-cache-ttl", std::process::id()));
    /// let cache = FsCache::new(&dir)?.ttl(Duration::ZERO); // every entry is already stale
    /// let key = CacheKey::new("a", "full/max/0/default.jpg");
    /// cache.put(key.clone(), CachedDerivative::new(&b"jpeg"[..], "image/jpeg")).await;
    /// assert!(cache.get(&key).await.is_none());
    /// assert!(cache.is_empty()); // and deleted when read
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The cache's directory.
    ///
    /// ```
    /// # use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, FsCache};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "fs-cache-dir", std::process::id()));
    /// let cache = FsCache::new(&dir)?;
    /// assert_eq!(cache.dir(), dir.as_path());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The bytes of all entry files known to this cache.
    ///
    /// ```
    /// # use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, FsCache};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "fs-cache-used-bytes", std::process::id()));
    /// let cache = FsCache::new(&dir)?;
    /// assert_eq!(cache.used_bytes(), 0);
    /// let value = CachedDerivative::new(vec![0u8; 100], "image/png");
    /// cache.put(CacheKey::new("a", "k"), value).await;
    /// assert!(cache.used_bytes() > 100); // the body and the entry's header
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn used_bytes(&self) -> u64 {
        self.shared.total.load(Ordering::Relaxed)
    }

    /// How many entry files are known to this cache.
    ///
    /// ```
    /// # use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, FsCache};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "fs-cache-len", std::process::id()));
    /// let cache = FsCache::new(&dir)?;
    /// cache.put(CacheKey::new("a", "k1"), CachedDerivative::new(&b"1"[..], "image/png")).await;
    /// cache.put(CacheKey::new("a", "k2"), CachedDerivative::new(&b"2"[..], "image/png")).await;
    /// assert_eq!(cache.len(), 2);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn len(&self) -> usize {
        lock(&self.shared.state).entries.len()
    }

    /// Whether no entry file is known to this cache.
    ///
    /// ```
    /// # use tower_iiif::cache::{CacheBackend, CacheKey, CachedDerivative, FsCache};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "fs-cache-is-empty", std::process::id()));
    /// let cache = FsCache::new(&dir)?;
    /// assert!(cache.is_empty());
    /// cache.put(CacheKey::new("a", "k"), CachedDerivative::new(&b"1"[..], "image/png")).await;
    /// assert!(!cache.is_empty());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get_blocking(&self, key: &CacheKey) -> Option<CachedDerivative> {
        let digest = key.digest_u128();
        let path = self.shared.path(digest);
        let lookup = read_entry(&path, key, self.ttl, self.max_bytes);
        let mut state = lock(&self.shared.state);
        let hit = match lookup {
            Ok(Lookup::Hit(value, size)) => {
                if !state.touch(digest) {
                    // Written by another process, or before a lost race: adopt it.
                    state.insert(digest, size, Arc::clone(&key.identifier));
                }
                Some(value)
            }
            Ok(Lookup::Missing) => {
                state.remove(digest);
                None
            }
            Ok(Lookup::Collision) => None,
            Ok(Lookup::Invalid(why)) => {
                // Under the lock, so that a concurrent write of a fresh file is either deleted
                // and forgotten here, or renamed in after this and kept.
                tracing::debug!(path = %path.display(), why, "derivative cache: dropping entry");
                remove_file_logged(&path);
                state.remove(digest);
                None
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "derivative cache: cannot read entry");
                None
            }
        };
        self.shared.total.store(state.total, Ordering::Relaxed);
        hit
    }

    fn put_blocking(&self, key: &CacheKey, value: &CachedDerivative) -> io::Result<()> {
        let header = encode_header(key, value);
        let size = (header.len() + value.body.len()) as u64;
        if size > self.max_bytes / 8 {
            tracing::debug!(key = %key, bytes = size, "derivative too large for the file cache");
            return Ok(());
        }
        let digest = key.digest_u128();
        let target = self.shared.path(digest);
        let sub = target.parent().expect("entry paths have a parent");
        fs::create_dir_all(sub)?;
        let n = self.shared.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = sub.join(format!(".{digest:032x}.{}.{n}.tmp", std::process::id()));
        if let Err(e) = write_new(&tmp, &header, &value.body) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let victims = {
            let mut state = lock(&self.shared.state);
            if let Err(e) = fs::rename(&tmp, &target) {
                drop(state);
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
            state.insert(digest, size, Arc::clone(&key.identifier));
            let victims = if state.total > self.max_bytes {
                state.evict_to(self.max_bytes - self.max_bytes / 10)
            } else {
                Vec::new()
            };
            self.shared.total.store(state.total, Ordering::Relaxed);
            victims
        };
        // Outside the lock: a batch can be long. The victims are already forgotten; a write of
        // the same digest in between would lose its file, which the next read notices (a miss).
        for digest in victims {
            remove_file_logged(&self.shared.path(digest));
        }
        Ok(())
    }

    fn purge_blocking(&self, identifier: &str) -> usize {
        let digests: Vec<u128> = {
            let mut state = lock(&self.shared.state);
            let Some(digests) = state.by_identifier.remove(identifier) else {
                return 0;
            };
            for &digest in &digests {
                state.remove(digest);
            }
            self.shared.total.store(state.total, Ordering::Relaxed);
            digests.into_iter().collect()
        };
        digests
            .into_iter()
            .filter(|&digest| remove_file_logged(&self.shared.path(digest)))
            .count()
    }
}

impl Shared {
    /// `dir/ab/cd/abcd….bin`.
    fn path(&self, digest: u128) -> PathBuf {
        let hex = format!("{digest:032x}");
        self.dir
            .join(&hex[..2])
            .join(&hex[2..4])
            .join(format!("{hex}.bin"))
    }
}

/// Run blocking file work on tokio's blocking pool; a failed task (a panic) is logged.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Some(value),
        Err(e) => {
            tracing::warn!(error = %e, "derivative cache: {what} task failed");
            None
        }
    }
}

impl CacheBackend for FsCache {
    fn get(&self, key: &CacheKey) -> impl Future<Output = Option<CachedDerivative>> + Send {
        let this = self.clone();
        let key = key.clone();
        async move {
            blocking("read", move || this.get_blocking(&key))
                .await
                .flatten()
        }
    }

    fn put(&self, key: CacheKey, value: CachedDerivative) -> impl Future<Output = ()> + Send {
        let this = self.clone();
        async move {
            let written = blocking("write", move || {
                let result = this.put_blocking(&key, &value);
                (key, result)
            })
            .await;
            if let Some((key, Err(e))) = written {
                tracing::warn!(key = %key, error = %e, "derivative cache: cannot write entry");
            }
        }
    }

    fn purge_identifier(&self, identifier: &str) -> impl Future<Output = usize> + Send {
        let this = self.clone();
        let identifier = identifier.to_owned();
        async move {
            blocking("purge", move || this.purge_blocking(&identifier))
                .await
                .unwrap_or(0)
        }
    }

    fn purge_all(&self) -> impl Future<Output = usize> + Send {
        let this = self.clone();
        async move {
            blocking("purge", move || {
                let ids: Vec<Arc<str>> = lock(&this.shared.state)
                    .by_identifier
                    .keys()
                    .cloned()
                    .collect();
                ids.iter().map(|id| this.purge_blocking(id)).sum()
            })
            .await
            .unwrap_or(0)
        }
    }

    fn tier(&self) -> &'static str {
        "disk"
    }
}

impl fmt::Debug for FsCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsCache")
            .field("dir", &self.shared.dir)
            .field("max_bytes", &self.max_bytes)
            .field("ttl", &self.ttl)
            .field("used_bytes", &self.used_bytes())
            .finish()
    }
}

/// Delete a file; `true` if it was there. Errors other than "not found" are logged.
fn remove_file_logged(path: &Path) -> bool {
    match fs::remove_file(path) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "derivative cache: cannot delete entry");
            false
        }
    }
}

/// Create `path` (which must not exist) holding `header` then `body`.
fn write_new(path: &Path, header: &[u8], body: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(header)?;
    file.write_all(body)?;
    Ok(())
}

fn escape(s: &str) -> String {
    utf8_percent_encode(s, ESCAPE).to_string()
}

fn unescape(s: &str) -> Option<String> {
    percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The header of an entry file (see the [module docs](self)).
fn encode_header(key: &CacheKey, value: &CachedDerivative) -> Vec<u8> {
    let text = format!(
        "{}\n{}\n{}\n{}\n",
        escape(&value.content_type),
        value.body.len(),
        escape(key.identifier()),
        escape(key.as_str()),
    );
    let mut header = Vec::with_capacity(MAGIC.len() + text.len());
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(text.as_bytes());
    header
}

/// Read one `\n`-terminated line of at most [`MAX_LINE`] bytes into `line` (without the `\n`);
/// `false` at the end of the input or on a line too long.
fn read_line<R: BufRead>(r: &mut R, line: &mut Vec<u8>) -> io::Result<bool> {
    line.clear();
    Read::take(&mut *r, MAX_LINE).read_until(b'\n', line)?;
    if line.last() != Some(&b'\n') {
        return Ok(false);
    }
    line.pop();
    Ok(true)
}

/// Parse an entry header from the start of `r`; `None` if it is not a valid one.
fn read_header<R: BufRead>(r: &mut R) -> io::Result<Option<Header>> {
    let mut magic = [0u8; MAGIC.len()];
    match r.read_exact(&mut magic) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    if magic.as_slice() != MAGIC {
        return Ok(None);
    }
    let mut len = MAGIC.len() as u64;
    let mut fields: [String; 4] = Default::default();
    let mut line = Vec::new();
    for field in &mut fields {
        if !read_line(r, &mut line)? {
            return Ok(None);
        }
        len += line.len() as u64 + 1;
        let Ok(text) = std::str::from_utf8(&line) else {
            return Ok(None);
        };
        *field = text.to_owned();
    }
    let [content_type, body_len, identifier, key] = fields;
    Ok(parse_fields(
        &content_type,
        &body_len,
        &identifier,
        &key,
        len,
    ))
}

/// The header from its (still escaped) lines; `None` if one is invalid.
fn parse_fields(
    content_type: &str,
    body_len: &str,
    identifier: &str,
    key: &str,
    len: u64,
) -> Option<Header> {
    Some(Header {
        content_type: unescape(content_type)?,
        body_len: body_len.parse().ok()?,
        identifier: unescape(identifier)?,
        key: unescape(key)?,
        len,
    })
}

/// Whether a file modified at `modified` is older than `ttl`. A time in the future is fresh.
fn expired(modified: SystemTime, ttl: Duration) -> bool {
    SystemTime::now()
        .duration_since(modified)
        .is_ok_and(|age| age >= ttl)
}

/// Read and check the entry for `key` at `path`.
fn read_entry(
    path: &Path,
    key: &CacheKey,
    ttl: Option<Duration>,
    max_bytes: u64,
) -> io::Result<Lookup> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Lookup::Missing),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if let Some(ttl) = ttl
        && expired(meta.modified()?, ttl)
    {
        return Ok(Lookup::Invalid("expired"));
    }
    if meta.len() > max_bytes {
        // Larger than any entry this cache writes: not one of ours, or a corrupt one.
        return Ok(Lookup::Invalid("too large"));
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut buf)?;
    drop(file);
    let Some(header) = read_header(&mut buf.as_slice())? else {
        return Ok(Lookup::Invalid("corrupt header"));
    };
    if header.identifier != key.identifier() || header.key != key.as_str() {
        return Ok(Lookup::Collision);
    }
    if header.len.checked_add(header.body_len) != Some(buf.len() as u64) {
        return Ok(Lookup::Invalid("truncated"));
    }
    let size = buf.len() as u64;
    let start = usize::try_from(header.len).expect("within the buffer");
    let body = Bytes::from(buf).slice(start..);
    Ok(Lookup::Hit(
        CachedDerivative {
            body,
            content_type: header.content_type,
        },
        size,
    ))
}

/// An entry file found by [`scan`].
struct Found {
    digest: u128,
    size: u64,
    modified: SystemTime,
    identifier: Arc<str>,
}

fn parse_digest(stem: &str) -> Option<u128> {
    if stem.len() != 32 || !stem.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(stem, 16).ok()
}

/// Walk `dir` (the cache root at depth 0, fan-out directories at depths 1 and 2): delete
/// temporary files, collect valid entries, delete invalid ones. Only the root's listing may
/// fail the walk.
fn scan(dir: &Path, depth: u32, found: &mut Vec<Found>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if depth == 0 => return Err(e),
        Err(e) => {
            tracing::warn!(path = %dir.display(), error = %e, "derivative cache: cannot list");
            return Ok(());
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!(path = %dir.display(), error = %e, "derivative cache: cannot list");
                continue;
            }
        };
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if file_type.is_dir() {
            if depth < 2 && name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                scan(&path, depth + 1, found)?;
            }
            continue;
        }
        if !file_type.is_file() || depth != 2 {
            continue;
        }
        if name.starts_with('.') && name.ends_with(".tmp") {
            remove_file_logged(&path);
            continue;
        }
        let Some(digest) = name.strip_suffix(".bin").and_then(parse_digest) else {
            continue;
        };
        match check_found(&path, digest) {
            Ok(Some(f)) => found.push(f),
            Ok(None) => {
                tracing::debug!(path = %path.display(), "derivative cache: deleting invalid entry");
                remove_file_logged(&path);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "derivative cache: cannot read entry");
            }
        }
    }
    Ok(())
}

/// Read the header of an entry file found on disk; `None` if it is invalid (bad header, a
/// digest that does not match its name, or a length that does not match its header).
fn check_found(path: &Path, digest: u128) -> io::Result<Option<Found>> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    let mut reader = BufReader::with_capacity(4096, file);
    let Some(header) = read_header(&mut reader)? else {
        return Ok(None);
    };
    let key = CacheKey::new(header.identifier, header.key);
    if key.digest_u128() != digest || header.len.checked_add(header.body_len) != Some(meta.len()) {
        return Ok(None);
    }
    Ok(Some(Found {
        digest,
        size: meta.len(),
        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        identifier: key.identifier,
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A directory under the system's temp dir, unique to this process and test, removed on
    /// drop (also when the test fails).
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new(test: &str) -> Self {
            let path = std::env::temp_dir()
                .join(format!("tower-iiif-fscache-{}-{test}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn key(id: &str, i: usize) -> CacheKey {
        CacheKey::new(id, format!("full/{i},/0/default.jpg"))
    }

    fn value(len: usize, fill: u8) -> CachedDerivative {
        CachedDerivative::new(vec![fill; len], "image/jpeg")
    }

    /// Every file under `dir` whose name ends with `suffix`, with its length.
    fn files(dir: &Path, suffix: &str) -> Vec<(PathBuf, u64)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = fs::read_dir(&d) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.to_string_lossy().ends_with(suffix) {
                    let len = entry.metadata().map_or(0, |m| m.len());
                    out.push((path, len));
                }
            }
        }
        out
    }

    fn disk_bytes(dir: &Path) -> u64 {
        files(dir, ".bin").iter().map(|(_, len)| len).sum()
    }

    #[test]
    fn header_round_trip_with_any_identifier() {
        let key = CacheKey::new("a%2Fb\nc\r\u{0}ü/%", "full/max/0/default.jpg\n");
        let value = CachedDerivative::new(&b"body"[..], "image/jpeg");
        let header = encode_header(&key, &value);
        assert_eq!(header.iter().filter(|&&b| b == b'\n').count(), 5);
        let mut bytes = header.clone();
        bytes.extend_from_slice(b"body");
        let parsed = read_header(&mut bytes.as_slice()).unwrap().unwrap();
        assert_eq!(
            parsed,
            Header {
                content_type: "image/jpeg".into(),
                body_len: 4,
                identifier: key.identifier().into(),
                key: key.as_str().into(),
                len: header.len() as u64,
            }
        );
        assert!(
            read_header(&mut &b"TIIIF1\nimage/jpeg\n"[..])
                .unwrap()
                .is_none()
        );
        assert!(read_header(&mut &b"TIIIF2\n"[..]).unwrap().is_none());
        assert!(read_header(&mut &b""[..]).unwrap().is_none());
    }

    #[tokio::test]
    async fn put_get_and_persistence() {
        let tmp = TempDir::new("persist");
        let cache = FsCache::new(&tmp.0).unwrap();
        cache.put(key("a", 1), value(1000, 1)).await;
        cache.put(key("b", 2), value(2000, 2)).await;
        let got = cache.get(&key("a", 1)).await.unwrap();
        assert_eq!(got, value(1000, 1));
        assert!(cache.get(&key("a", 2)).await.is_none());
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.used_bytes(), disk_bytes(&tmp.0));

        // The layout: dir/ab/cd/<digest>.bin.
        let digest = key("a", 1).digest();
        let path = tmp
            .0
            .join(&digest[..2])
            .join(&digest[2..4])
            .join(format!("{digest}.bin"));
        assert!(path.is_file(), "{}", path.display());
        drop(cache);

        let reopened = FsCache::new(&tmp.0).unwrap();
        assert_eq!(reopened.len(), 2);
        assert_eq!(reopened.used_bytes(), disk_bytes(&tmp.0));
        assert_eq!(reopened.get(&key("a", 1)).await.unwrap(), value(1000, 1));
        assert_eq!(reopened.get(&key("b", 2)).await.unwrap(), value(2000, 2));
        // The identifier index was rebuilt from the headers.
        assert_eq!(reopened.purge_identifier("b").await, 1);
        assert!(reopened.get(&key("b", 2)).await.is_none());
        assert!(reopened.get(&key("a", 1)).await.is_some());
    }

    #[tokio::test]
    async fn replacing_an_entry_counts_it_once() {
        let tmp = TempDir::new("replace");
        let cache = FsCache::new(&tmp.0).unwrap();
        cache.put(key("a", 1), value(1000, 1)).await;
        cache.put(key("a", 1), value(500, 2)).await;
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.used_bytes(), disk_bytes(&tmp.0));
        assert_eq!(cache.get(&key("a", 1)).await.unwrap(), value(500, 2));
    }

    #[tokio::test]
    async fn leftover_tmp_files_are_removed_and_never_read() {
        let tmp = TempDir::new("tmpfiles");
        let k = key("a", 1);
        // A complete entry, but under a temporary name, as a crash before the rename leaves it.
        let digest = k.digest();
        let sub = tmp.0.join(&digest[..2]).join(&digest[2..4]);
        fs::create_dir_all(&sub).unwrap();
        let v = value(100, 7);
        let mut bytes = encode_header(&k, &v);
        bytes.extend_from_slice(&v.body);
        fs::write(sub.join(format!(".{digest}.123.0.tmp")), &bytes).unwrap();
        fs::write(sub.join(format!(".{digest}.123.1.tmp")), &bytes[..10]).unwrap();
        assert_eq!(files(&tmp.0, ".tmp").len(), 2);

        let cache = FsCache::new(&tmp.0).unwrap();
        assert!(files(&tmp.0, ".tmp").is_empty());
        assert!(cache.is_empty());
        assert_eq!(cache.used_bytes(), 0);
        assert!(cache.get(&k).await.is_none());
        // Writing leaves no temporary file behind.
        cache.put(k.clone(), v.clone()).await;
        assert!(files(&tmp.0, ".tmp").is_empty());
        assert_eq!(cache.get(&k).await.unwrap(), v);
    }

    #[tokio::test]
    async fn a_truncated_entry_is_a_miss_and_is_deleted() {
        let tmp = TempDir::new("truncated");
        let cache = FsCache::new(&tmp.0).unwrap();
        let k = key("a", 1);
        cache.put(k.clone(), value(1000, 3)).await;
        let (path, len) = files(&tmp.0, ".bin").pop().unwrap();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 10)
            .unwrap();
        assert!(cache.get(&k).await.is_none());
        assert!(!path.exists());
        assert_eq!(cache.used_bytes(), 0);
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn invalid_entries_are_deleted_at_startup() {
        let tmp = TempDir::new("startup-invalid");
        let cache = FsCache::new(&tmp.0).unwrap();
        cache.put(key("a", 1), value(1000, 3)).await;
        cache.put(key("a", 2), value(1000, 4)).await;
        cache.put(key("a", 3), value(1000, 5)).await;
        drop(cache);
        let mut bins = files(&tmp.0, ".bin");
        bins.sort();
        // One truncated, one with a bad magic, one intact.
        let (truncated, len) = &bins[0];
        OpenOptions::new()
            .write(true)
            .open(truncated)
            .unwrap()
            .set_len(len - 1)
            .unwrap();
        fs::write(&bins[1].0, b"not an entry").unwrap();

        let reopened = FsCache::new(&tmp.0).unwrap();
        assert_eq!(reopened.len(), 1);
        assert_eq!(files(&tmp.0, ".bin").len(), 1);
        assert_eq!(reopened.used_bytes(), disk_bytes(&tmp.0));
    }

    #[tokio::test]
    async fn the_size_cap_holds() {
        let tmp = TempDir::new("cap");
        let cap = 100 * 1024;
        let cache = FsCache::new(&tmp.0).unwrap().max_bytes(cap);
        for i in 0..50 {
            cache.put(key("img", i), value(10 * 1024, i as u8)).await;
            let on_disk = disk_bytes(&tmp.0);
            assert!(on_disk <= cap, "after {i}: {on_disk} bytes on disk");
            assert_eq!(cache.used_bytes(), on_disk);
        }
        assert!(cache.get(&key("img", 49)).await.is_some());
        assert!(cache.get(&key("img", 0)).await.is_none());
        // Entries over an eighth of the cap are not stored.
        cache.put(key("big", 0), value(13 * 1024, 0)).await;
        assert!(cache.get(&key("big", 0)).await.is_none());
    }

    #[tokio::test]
    async fn eviction_is_least_recently_used() {
        let tmp = TempDir::new("lru");
        // Entries of about 10.3 KiB: nine fit in 100 KiB, the tenth evicts down to 90 KiB.
        let cache = FsCache::new(&tmp.0).unwrap().max_bytes(100 * 1024);
        for i in 0..9 {
            cache.put(key("img", i), value(10 * 1024, 0)).await;
        }
        assert_eq!(cache.len(), 9);
        assert!(cache.get(&key("img", 0)).await.is_some()); // now the most recently used
        cache.put(key("img", 9), value(10 * 1024, 0)).await;
        assert!(cache.used_bytes() <= 90 * 1024);
        assert!(cache.get(&key("img", 0)).await.is_some());
        assert!(cache.get(&key("img", 1)).await.is_none());
        assert!(cache.get(&key("img", 9)).await.is_some());
    }

    #[tokio::test]
    async fn expired_entries_are_misses_and_deleted() {
        let tmp = TempDir::new("ttl");
        let cache = FsCache::new(&tmp.0).unwrap().ttl(Duration::from_millis(1));
        let k = key("a", 1);
        cache.put(k.clone(), value(100, 1)).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(cache.get(&k).await.is_none());
        assert!(files(&tmp.0, ".bin").is_empty());
        assert_eq!(cache.used_bytes(), 0);

        // A long ttl keeps it.
        let cache = cache.ttl(Duration::from_secs(3600));
        cache.put(k.clone(), value(100, 1)).await;
        assert!(cache.get(&k).await.is_some());
    }

    #[tokio::test]
    async fn purge_removes_only_that_identifier() {
        let tmp = TempDir::new("purge");
        let cache = FsCache::new(&tmp.0).unwrap();
        for i in 0..3 {
            cache.put(key("a", i), value(100, 1)).await;
        }
        for i in 0..2 {
            cache.put(key("b", i), value(100, 2)).await;
        }
        assert_eq!(files(&tmp.0, ".bin").len(), 5);
        assert_eq!(cache.purge_identifier("a").await, 3);
        assert_eq!(files(&tmp.0, ".bin").len(), 2);
        for i in 0..3 {
            assert!(cache.get(&key("a", i)).await.is_none());
        }
        for i in 0..2 {
            assert!(cache.get(&key("b", i)).await.is_some());
        }
        assert_eq!(cache.purge_identifier("a").await, 0);
        assert_eq!(cache.used_bytes(), disk_bytes(&tmp.0));
    }

    #[tokio::test]
    async fn a_digest_collision_is_a_miss_not_a_wrong_answer() {
        let tmp = TempDir::new("collision");
        let cache = FsCache::new(&tmp.0).unwrap();
        let k = key("a", 1);
        cache.put(k.clone(), value(100, 1)).await;
        // Pretend another key has the same digest: write `k`'s file with another key inside.
        let other = key("z", 9);
        let v = value(100, 2);
        let mut bytes = encode_header(&other, &v);
        bytes.extend_from_slice(&v.body);
        let (path, _) = files(&tmp.0, ".bin").pop().unwrap();
        fs::write(&path, &bytes).unwrap();
        assert!(cache.get(&k).await.is_none());
        assert!(path.exists(), "another key's entry is left alone");
    }
}
