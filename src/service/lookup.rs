//! What the service knows of a source file, read once per source version and cached: its
//! header, its TIFF pyramid, its JPEG 2000 main header, and what info.json says of it.

use super::*;
use crate::source::recording::{Recorded, Replay};

impl<S: Source> IiifService<S> {
    /// The tiled pyramid of a TIFF source, from the cache or read by range; `None` when the file
    /// is not a tiled pyramid this reader handles (it is then decoded whole). Concurrent first
    /// requests read it once.
    pub(super) async fn pyramid(
        &self,
        id: &Identifier,
        object: &S::Object,
        header: &Header,
    ) -> Option<Arc<TiffPyramid>> {
        let key = InfoKey::new(id, object.metadata());
        let read = async { Ok::<_, Infallible>(self.read_pyramid(id, object).await) };
        let pyramid = match self.shared.pyramids.get_or_insert_async(&key, read).await {
            Ok(p) => p,
            Err(never) => match never {},
        };
        // A header that disagrees is left to the whole-file decoder.
        pyramid.filter(|p| (p.width(), p.height()) == (header.width, header.height))
    }

    /// The usable pyramid of a TIFF: with a shared tier, rebuilt from the bytes another
    /// instance read its structure from (kept there as the fact `pyramid`), so that no instance
    /// walks the file's IFD chain again; else read from the file (and, with a shared tier, its
    /// recording kept).
    async fn read_pyramid(&self, id: &Identifier, object: &S::Object) -> Option<Arc<TiffPyramid>> {
        if self.facts_tier().is_none() {
            return crate::tiff::read_usable_pyramid(object).await;
        }
        if let Some(kept) = self.shared_fact_bytes(id, object, "pyramid").await
            && let Some(p) = crate::tiff::replay_pyramid(&kept, object.metadata()).await
        {
            return Some(p);
        }
        let (p, recording) = crate::tiff::read_usable_pyramid_recorded(object).await?;
        if let Some(encoded) = recording.encode() {
            let value = CachedDerivative::new(encoded, "application/octet-stream");
            self.keep_fact_value(id, object, "pyramid", value).await;
        }
        Some(p)
    }

    /// The tile-part index of a JPEG 2000 source ([`jp2::index`]): with a shared tier, rebuilt
    /// from the bytes another instance read it from (the fact `jp2index`), else read through a
    /// [`Recorded`] object and those bytes kept there. Takes the object and gives it back, since
    /// the reads are recorded through it.
    pub(super) async fn jp2_index(
        &self,
        id: &Identifier,
        object: S::Object,
    ) -> (
        S::Object,
        Option<Arc<crate::jp2::codestream::CodestreamIndex>>,
    ) {
        let key = InfoKey::new(id, object.metadata());
        if self.facts_tier().is_none() || self.shared.codestreams.contains_key(&key) {
            let index = jp2::index(&self.shared.codestreams, id, &object).await;
            return (object, index);
        }
        // Replayed outside the index cache: a replay that makes no index must not be cached as
        // the file's answer (the file is read instead, and a sound fact kept again).
        if let Some(replay) = self.jp2_replay(id, &object).await
            && let Some(index) = self.jp2_index_replayed(key, &replay).await
        {
            return (object, Some(index));
        }
        let recorded = Recorded::new(object);
        let index = jp2::index(&self.shared.codestreams, id, &recorded).await;
        let (object, recording) = recorded.into_parts();
        // Only this request's own read, whole (one that waited on another's records nothing).
        if index.is_some()
            && !recording.is_empty()
            && let Some(encoded) = recording.encode()
        {
            let value = CachedDerivative::new(encoded, "application/octet-stream");
            self.keep_fact_value(id, &object, "jp2index", value).await;
        }
        (object, index)
    }

    /// The index `replay` makes, kept in the index cache under `key`; one it does not make is
    /// not cached (the file is read instead).
    async fn jp2_index_replayed(
        &self,
        key: InfoKey,
        replay: &Replay,
    ) -> Option<Arc<crate::jp2::codestream::CodestreamIndex>> {
        let index = Arc::new(crate::jp2::codestream::read_index(replay).await.ok()??);
        self.shared
            .codestreams
            .insert(key, Some(Arc::clone(&index)));
        Some(index)
    }

    /// The bytes another instance read a JPEG 2000 file's index from, as an object to read.
    async fn jp2_replay(&self, id: &Identifier, object: &S::Object) -> Option<Replay> {
        let kept = self.shared_fact_bytes(id, object, "jp2index").await?;
        Replay::decode(&kept, object.metadata())
    }

    /// The shared tier of the derivative cache, where image facts are kept for other
    /// instances too (not a memory-only cache: the service keeps its own in memory).
    fn facts_tier(&self) -> Option<&AnyCache> {
        let cache = self.config.derivatives.as_ref()?.backend();
        (cache.tier() != "memory").then_some(cache)
    }

    /// The key of one kind of fact (`header`, `info`, `pyramid`) of a source version.
    pub(super) fn facts_key(
        id: &Identifier,
        meta: &crate::source::SourceMetadata,
        what: &str,
    ) -> CacheKey {
        let modified = meta
            .modified
            .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let etag = meta.etag.as_deref().unwrap_or("");
        CacheKey::new(
            id.as_str(),
            format!("{what}|{RENDERER}|{}|{modified}|{etag}", meta.len),
        )
    }

    /// A fact kept in the shared tier by this or another instance.
    async fn shared_fact<T: serde::de::DeserializeOwned>(
        &self,
        id: &Identifier,
        object: &S::Object,
        what: &str,
    ) -> Option<T> {
        serde_json::from_slice(&self.shared_fact_bytes(id, object, what).await?).ok()
    }

    /// The bytes of a fact kept in the shared tier.
    async fn shared_fact_bytes(
        &self,
        id: &Identifier,
        object: &S::Object,
        what: &str,
    ) -> Option<Bytes> {
        let tier = self.facts_tier()?;
        let hit = tier
            .get(&Self::facts_key(id, object.metadata(), what))
            .await?;
        Some(hit.body)
    }

    /// Keep a fact in the shared tier.
    async fn keep_fact<T: serde::Serialize>(
        &self,
        id: &Identifier,
        object: &S::Object,
        what: &str,
        fact: &T,
    ) {
        if let Ok(json) = serde_json::to_vec(fact) {
            let value = CachedDerivative::new(json, "application/json");
            self.keep_fact_value(id, object, what, value).await;
        }
    }

    /// Keep a fact's bytes in the shared tier.
    async fn keep_fact_value(
        &self,
        id: &Identifier,
        object: &S::Object,
        what: &str,
        value: CachedDerivative,
    ) {
        if let Some(tier) = self.facts_tier() {
            tier.put(Self::facts_key(id, object.metadata(), what), value)
                .await;
        }
    }

    /// What info.json says of an image: its header, and the levels and tile size of its
    /// pyramid, if it has one; from the shared tier when another instance has read it.
    pub(super) async fn image_info_of(
        &self,
        id: &Identifier,
        object: &S::Object,
        header: &Header,
    ) -> ImageInfo {
        if let Some(info) = self.shared_fact(id, object, "info").await {
            return info;
        }
        let info = self.read_image_info(id, object, header).await;
        self.keep_fact(id, object, "info", &info).await;
        info
    }

    async fn read_image_info(
        &self,
        id: &Identifier,
        object: &S::Object,
        header: &Header,
    ) -> ImageInfo {
        let jp2 = match header.format {
            SourceFormat::Jp2 => self.jp2_info(id, object).await,
            _ => None,
        };
        self.image_info_with(id, object, header, jp2).await
    }

    /// [`read_image_info`](Self::read_image_info) with the JPEG 2000 header already at hand
    /// (or known to be missing), so that it never reads the header again.
    async fn image_info_with(
        &self,
        id: &Identifier,
        object: &S::Object,
        header: &Header,
        jp2: Option<crate::jp2::Jp2Info>,
    ) -> ImageInfo {
        let info = ImageInfo::new(header.width, header.height).with_gray(header.gray);
        let pyramid = match header.format {
            SourceFormat::Tiff => self.pyramid(id, object, header).await,
            _ => None,
        };
        if header.format == SourceFormat::Jp2
            && let Some(j) = jp2
        {
            let info = info.with_levels(jp2::levels(&j));
            return match j.tiles_x.saturating_mul(j.tiles_y) > 1 {
                true => info.with_tile(j.tile_width, j.tile_height),
                false => info,
            };
        }
        match pyramid
            .as_deref()
            .and_then(|p| Some((p, p.levels().first()?)))
        {
            Some((p, first)) => {
                let levels = p.levels().iter().map(|l| (l.width, l.height)).collect();
                info.with_levels(levels)
                    .with_tile(first.tile_width, first.tile_height)
            }
            None => info,
        }
    }

    /// The main header of a JPEG 2000 source (read with its [`Header`]).
    pub(super) async fn jp2_info(
        &self,
        id: &Identifier,
        object: &S::Object,
    ) -> Option<crate::jp2::Jp2Info> {
        let key = InfoKey::new(id, object.metadata());
        if let Some(info) = self.shared.jp2_info.get(&key) {
            return Some(info);
        }
        // The header came from the shared tier: its bytes too, when another instance kept the
        // index's (they begin with the file's first 64 KiB).
        if let Some(replay) = self.jp2_replay(id, object).await
            && let Ok(prefix) = replay.read_range(0..HEADER_PREFIX).await
            && let Ok(info) = crate::jp2::read_info(&prefix[..])
        {
            self.shared.jp2_info.insert(key.clone(), info);
            // The index from the same bytes, so that a render does not fetch them again.
            if !self.shared.codestreams.contains_key(&key) {
                self.jp2_index_replayed(key, &replay).await;
            }
            return Some(info);
        }
        // Evicted, or the header came from the shared tier: read it from the file, which
        // keeps the JPEG 2000 header.
        self.shared.info_cache.remove(&key);
        self.read_header(id, object, false).await.ok()?;
        self.shared.jp2_info.get(&key)
    }

    /// The image's header, from the info cache or read from the source; concurrent first
    /// requests read it once. A tiled TIFF's header comes from its pyramid, read by range (its
    /// IFDs may be anywhere in the file).
    pub(super) async fn header(
        &self,
        id: &Identifier,
        object: &S::Object,
    ) -> Result<Header, Error> {
        self.read_header(id, object, true).await
    }

    /// The header, from the in-process cache, else (with `shared`) the shared tier, else the
    /// file.
    async fn read_header(
        &self,
        id: &Identifier,
        object: &S::Object,
        shared: bool,
    ) -> Result<Header, Error> {
        let key = InfoKey::new(id, object.metadata());
        let read = async {
            if shared && let Some(header) = self.shared_fact(id, object, "header").await {
                return Ok(header);
            }
            let header = self.header_from_file(id, object, &key).await?;
            if self.facts_tier().is_some() {
                // What info.json says comes from the same reads (the pyramid, the JPEG 2000
                // header): kept now, so no instance reads them for info.json again. The JPEG
                // 2000 header is taken as it is now, never read again from here (this holds
                // the header's flight: reading again would wait on itself).
                let jp2 = self.shared.jp2_info.get(&key);
                // Both writes at once: each is a round trip to the shared tier. Another
                // instance may find the header before the info; it then reads the info's
                // sources (the pyramid, kept before) once more, nothing worse.
                let keep_info = async {
                    if header.format != SourceFormat::Jp2 || jp2.is_some() {
                        let info = self.image_info_with(id, object, &header, jp2).await;
                        self.keep_fact(id, object, "info", &info).await;
                    }
                };
                futures_util::future::join(
                    keep_info,
                    self.keep_fact(id, object, "header", &header),
                )
                .await;
            }
            Ok(header)
        };
        self.shared.info_cache.get_or_insert_async(&key, read).await
    }

    async fn header_from_file(
        &self,
        id: &Identifier,
        object: &S::Object,
        key: &InfoKey,
    ) -> Result<Header, Error> {
        let _ = id;
        let key = key.clone();
        {
            let meta = object.metadata();
            let prefix = object.read_range(0..HEADER_PREFIX.min(meta.len)).await?;
            if codec::sniff(&prefix) == Some(SourceFormat::Tiff) {
                let read = async { Ok::<_, Infallible>(self.read_pyramid(id, object).await) };
                let pyramid = match self.shared.pyramids.get_or_insert_async(&key, read).await {
                    Ok(p) => p,
                    Err(never) => match never {},
                };
                if let Some(p) = pyramid {
                    return Ok(Header {
                        format: SourceFormat::Tiff,
                        width: p.width(),
                        height: p.height(),
                        orientation: p.orientation(),
                        gray: p.levels().first().is_some_and(|l| l.layout().is_gray()),
                    });
                }
            }
            if codec::sniff(&prefix) == Some(SourceFormat::Jp2) {
                let parse = |b: &[u8]| crate::jp2::read_info(b).map_err(codec::jp2_error);
                let info = self.parse_header(object, prefix, parse).await?;
                self.shared.jp2_info.insert(key.clone(), info);
                return codec::jp2_header(&info);
            }
            self.parse_header(object, prefix, codec::read_header).await
        }
    }

    /// `parse` the header from `prefix` (the first [`HEADER_PREFIX`] bytes), else from the first
    /// MiB, else from the whole file (refused past `max_source_bytes`).
    pub(super) async fn parse_header<T>(
        &self,
        object: &S::Object,
        prefix: Bytes,
        parse: impl Fn(&[u8]) -> Result<T, Error>,
    ) -> Result<T, Error> {
        const WIDER: u64 = 1 << 20;
        let len = object.metadata().len;
        let err = match parse(&prefix) {
            Ok(v) => return Ok(v),
            Err(e) if len <= prefix.len() as u64 => return Err(e),
            Err(e) => e,
        };
        let wider = object.read_range(0..WIDER.min(len)).await?;
        match parse(&wider) {
            Ok(v) => Ok(v),
            Err(_) if len > WIDER && len <= self.config.max_source_bytes => {
                parse(&object.read_all().await?)
            }
            Err(e) if len <= WIDER => Err(e),
            Err(_) => Err(Error::source(format!(
                "no header in the first MiB ({}) and the file is larger than this server reads whole",
                err.message()
            ))),
        }
    }
}
