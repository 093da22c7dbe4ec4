//! The request path, top to bottom: a request is parsed, its image found and described, and
//! answered with a redirect, its info.json or its image (a 304, a cached derivative, a stored
//! tile, or a render job); and the public URLs it is answered with.

use super::*;

impl<S: Source> IiifService<S> {
    /// Answer one request. Never fails: errors become error responses.
    pub(super) async fn handle(self, parts: Parts) -> Response<IiifBody> {
        let head = parts.method == Method::HEAD;
        let mut res = match parts.method {
            Method::OPTIONS => respond::preflight(&parts),
            Method::GET | Method::HEAD => match self.get(&parts).await {
                Ok(res) => res,
                Err(e) => respond::error(&e),
            },
            _ => respond::error(&Error::new(
                ErrorKind::MethodNotAllowed,
                "only GET, HEAD and OPTIONS are allowed",
            )),
        };
        respond::cors(&mut res);
        if head {
            *res.body_mut() = IiifBody::empty();
        }
        if self.source.per_caller() {
            // The upstream decided who may see this: no shared cache may keep it.
            res.extensions_mut()
                .insert(crate::cache_control::Restricted);
        }
        let kind = match parts.uri.path() {
            p if p.ends_with("/info.json") => "info",
            _ if parts.method == Method::OPTIONS => "options",
            _ if res.status() == http::StatusCode::SEE_OTHER => "base",
            _ => "image",
        };
        metrics::counter!(
            "iiif_requests_total",
            "kind" => kind,
            "status" => res.status().as_str().to_owned()
        )
        .increment(1);
        res
    }

    pub(super) async fn get(&self, parts: &Parts) -> Result<Response<IiifBody>, Error> {
        let parsed = self.parser().parse(parts)?;
        let base = self.public_base(parts);
        let request = SourceRequest::from_parts(parts);
        match parsed {
            IiifRequest::Base(id) => Ok(respond::redirect(&format!(
                "{}/info.json",
                self.image_base(parts, &base, &id)
            ))),
            IiifRequest::Info(id) => {
                let object = self.source.open(&id, &request).await?;
                let header = self.header(&id, &object).await?;
                let limits = self.limits(parts);
                let mut info_opts = self.config.info.clone();
                info_opts.limits = limits;
                info_opts.upscaling &= limits.scale().is_none_or(|s| s > 1.0);
                let image_id = self.image_base(parts, &base, &id);
                let mut doc = self
                    .image_info_of(&id, &object, &header)
                    .await
                    .to_json(&image_id, &info_opts);
                if let Some(services) = parts.extensions.get::<InfoServices>() {
                    services.apply(&mut doc, &image_id, self.config.version);
                }
                let mut res = respond::info(&doc, self.config.version, parts);
                let content_type = res.headers()[http::header::CONTENT_TYPE].clone();
                let body = doc.to_string();
                let validators = conditional::Validators::new(
                    &[body.as_bytes(), content_type.as_bytes()],
                    object.metadata().modified,
                );
                if validators.not_modified(&parts.headers) {
                    res = respond::not_modified();
                    res.headers_mut()
                        .insert(http::header::VARY, "Accept".parse().expect("valid"));
                }
                validators.apply(res.headers_mut());
                Ok(res)
            }
            IiifRequest::Image(req) => self.image(parts, &base, &req, &request).await,
        }
    }

    pub(super) async fn image(
        &self,
        parts: &Parts,
        base: &BaseUri,
        req: &ImageRequest,
        request: &SourceRequest,
    ) -> Result<Response<IiifBody>, Error> {
        let object = self
            .source
            .open(&req.identifier, request)
            .instrument(tracing::debug_span!("resolve"))
            .await?;
        let header = self
            .header(&req.identifier, &object)
            .instrument(tracing::debug_span!("header"))
            .await?;
        let policy = parts
            .extensions
            .get::<OverLimit>()
            .copied()
            .unwrap_or_default();
        let opts = self
            .config
            .plan
            .limits(self.limits(parts))
            .over_limit(policy);
        let plan = crate::plan::plan(req, header.width, header.height, &opts)?;
        let canonical = format!(
            "{}/{}",
            self.image_base(parts, base, &req.identifier),
            plan.canonical
        );
        let meta = object.metadata().clone();
        let validators = self.image_validators(req, &plan, &meta);
        if validators.not_modified(&parts.headers) {
            let mut res = respond::not_modified();
            validators.apply(res.headers_mut());
            return Ok(res);
        }
        if parts.method == Method::HEAD {
            // Everything but the length is known without rendering.
            let mut res = respond::image_head(plan.format, self.config.version, &canonical);
            validators.apply(res.headers_mut());
            return Ok(res);
        }
        // A cached derivative needs nothing more of the source: no pyramid, no index.
        let cache_key = self
            .config
            .derivatives
            .as_ref()
            .map(|cache| (cache, self.cache_key(req, &plan, &meta)));
        if let Some((cache, key)) = &cache_key
            && let Some(hit) = cache
                .get(key)
                .instrument(tracing::debug_span!("cache"))
                .await
        {
            let mut res = respond::image(hit.body, plan.format, self.config.version, &canonical);
            validators.apply(res.headers_mut());
            return Ok(res);
        }
        let pyramid = match header.format {
            SourceFormat::Tiff => self.pyramid(&req.identifier, &object, &header).await,
            _ => None,
        };
        let (object, jp2) = match header.format {
            SourceFormat::Jp2 => {
                let info = self
                    .jp2_info(&req.identifier, &object)
                    .await
                    .ok_or_else(|| Error::internal("the JPEG 2000 header could not be kept"))?;
                // The whole image at full resolution is decoded from the whole file: no index
                // needed. (At a reduction, the index may cut the tiles' higher resolutions.)
                let full = jp2::is_whole(&info, plan.region) && jp2::reduce_for(&info, &plan) == 0;
                let (object, index) = match full {
                    true => (object, None),
                    false => self.jp2_index(&req.identifier, object).await,
                };
                // The cuts of the region's tiles, before the region's bytes are counted.
                if let Some(index) = &index {
                    let r = plan.region;
                    index.load_region(&object, r.x, r.y, r.w, r.h).await?;
                }
                (object, Some((info, index)))
            }
            _ => (object, None),
        };
        if let Some(jpeg) = match &pyramid {
            Some(p) if self.config.stored_tiles => {
                crate::tiff::passthrough(p, &plan, &object).await?
            }
            _ => None,
        } {
            let mut res = respond::image(jpeg, plan.format, self.config.version, &canonical);
            validators.apply(res.headers_mut());
            return Ok(res);
        }
        let job = {
            let shared = Arc::clone(&self.shared);
            let (plan, budget, encode) = (plan.clone(), self.config.budget, self.config.encode);
            let max_source_bytes = self.config.max_source_bytes;
            let reduced = self.config.reduced.clone();
            let key = InfoKey::new(&req.identifier, &meta);
            let stored_tiles = self.config.stored_tiles;
            move || async move {
                // Shared: a reduced pyramid's build holds it in a task of its own.
                let object = Arc::new(object);
                let input = match (pyramid, jp2) {
                    (Some(p), _) => crate::tiff::level_input(p, &plan, stored_tiles),
                    (None, Some((info, index))) => {
                        jp2::input(&info, index, &plan, object.metadata().len, budget)?
                    }
                    (None, None) => {
                        flat::input(
                            reduced.as_ref(),
                            key,
                            &object,
                            &header,
                            &plan,
                            &shared,
                            budget,
                            max_source_bytes,
                        )
                        .await?
                    }
                };
                let full = (header.width, header.height);
                let body =
                    job::render_job(shared, object, input, &plan, budget, encode, full).await?;
                Ok(CachedDerivative::new(body, plan.format.media_type()))
            }
        };
        let body = match cache_key {
            Some((cache, key)) => {
                cache
                    .render_missing(key, job)
                    .instrument(tracing::debug_span!("render once"))
                    .await?
                    .body
            }
            None => job().await?.body,
        };
        let mut res = respond::image(body, plan.format, self.config.version, &canonical);
        validators.apply(res.headers_mut());
        Ok(res)
    }

    /// The derivative cache key: the identifier, and everything that decides the bytes: the
    /// resolved plan, not the canonical form, whose `max` depends on the limits in force.
    pub(super) fn cache_key(
        &self,
        req: &ImageRequest,
        plan: &crate::plan::Plan,
        meta: &crate::source::SourceMetadata,
    ) -> CacheKey {
        let modified = meta
            .modified
            .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        CacheKey::new(
            req.identifier.as_str(),
            format!(
                "{}|{}|{modified}|{}|q{}{}|{}",
                RENDERER,
                meta.len,
                meta.etag.as_deref().unwrap_or(""),
                self.config.encode.jpeg_quality,
                if self.config.stored_tiles {
                    ""
                } else {
                    "|encoded"
                },
                plan.resolved(),
            ),
        )
    }

    /// The validators of a rendered image: the crate version, the source's version, the
    /// identifier, the resolved plan and the settings that change the bytes.
    pub(super) fn image_validators(
        &self,
        req: &ImageRequest,
        plan: &crate::plan::Plan,
        meta: &crate::source::SourceMetadata,
    ) -> conditional::Validators {
        let modified = meta
            .modified
            .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        conditional::Validators::new(
            &[
                RENDERER.as_bytes(),
                req.identifier.as_str().as_bytes(),
                &meta.len.to_le_bytes(),
                &modified.to_le_bytes(),
                meta.etag.as_deref().unwrap_or("").as_bytes(),
                plan.resolved().as_bytes(),
                &[
                    self.config.encode.jpeg_quality,
                    self.config.stored_tiles.into(),
                ],
            ],
            meta.modified,
        )
    }

    /// The configured limits, tightened by a [`Limits`] request extension if one is present.
    pub(super) fn limits(&self, parts: &Parts) -> Limits {
        let own = *self.config.plan.get_limits();
        match parts.extensions.get::<Limits>() {
            Some(ext) => own.tighten(ext),
            None => own,
        }
    }

    /// The public URL of this mount: the app's public URL (a [`BaseUri`] extension, else the
    /// configured base URI, else the `Host` header) and the mount path.
    pub(super) fn public_base(&self, parts: &Parts) -> BaseUri {
        let app = match (parts.extensions.get::<BaseUri>(), &self.config.base_uri) {
            (Some(b), _) | (None, Some(b)) => b.clone(),
            (None, None) => BaseUri::from_request(parts),
        };
        BaseUri::new(format!(
            "{}{}",
            app.as_str(),
            mount_path(parts, &self.config.path_prefix)
        ))
    }

    /// The base URI of one image: `{base}/{encoded identifier}`, where the identifier is the
    /// [`PublicIdentifier`] extension when a proxy rewrote it.
    pub(super) fn image_base(&self, parts: &Parts, base: &BaseUri, id: &Identifier) -> String {
        let public = parts
            .extensions
            .get::<PublicIdentifier>()
            .and_then(|p| Identifier::new(p.as_str()).ok());
        format!(
            "{}/{}",
            base.as_str(),
            public
                .as_ref()
                .unwrap_or(id)
                .encoded_with(&self.config.identifiers)
        )
    }

    pub(super) fn parser(&self) -> RequestParser {
        RequestParser {
            version: self.config.version,
            path_prefix: self.config.path_prefix.clone(),
            identifiers: self.config.identifiers.clone(),
        }
    }
}

/// The path the service is mounted at: the configured path prefix or, with the `axum` feature,
/// what axum's `nest_service` stripped (the `OriginalUri` path less the path the service sees).
fn mount_path<'a>(parts: &'a Parts, configured: &'a str) -> &'a str {
    if !configured.is_empty() {
        return configured;
    }
    #[cfg(feature = "axum")]
    if let Some(original) = parts.extensions.get::<axum::extract::OriginalUri>() {
        let (full, seen) = (original.0.path(), parts.uri.path());
        let stripped = if seen == "/" && !full.ends_with('/') {
            Some(full)
        } else {
            full.strip_suffix(seen)
        };
        if let Some(mount) = stripped
            .map(|m| m.trim_end_matches('/'))
            .filter(|m| m.starts_with('/'))
        {
            return mount;
        }
    }
    #[cfg(not(feature = "axum"))]
    let _ = parts;
    ""
}
