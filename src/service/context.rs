//! What layers in front of `IiifService` borrow from it: its request parser and a way to look up
//! an image's dimensions through its source and info cache.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::request::Parts;

use crate::Error;
use crate::info::ImageInfo;
use crate::request::{ApiVersion, Identifier, IdentifierOptions, IiifRequest};
use crate::source::SourceRequest;

/// Parses request paths exactly as the `IiifService` it came from does: same API version, same
/// mount path, same identifier options.
#[derive(Debug, Clone)]
pub struct RequestParser {
    pub(super) version: ApiVersion,
    pub(super) path_prefix: String,
    pub(super) identifiers: IdentifierOptions,
}

impl RequestParser {
    /// The parsed request: an [`IiifRequest`] extension when a layer further out inserted one,
    /// else the path, relative to the mount point, parsed.
    pub fn parse(&self, parts: &Parts) -> Result<IiifRequest, Error> {
        if let Some(r) = parts.extensions.get::<IiifRequest>() {
            return Ok(r.clone());
        }
        IiifRequest::parse(
            self.relative_path(parts.uri.path()),
            self.version,
            &self.identifiers,
        )
    }

    /// The path relative to the mount point: the path prefix stripped when the path still
    /// carries it (routers like axum's `nest_service` strip it themselves).
    pub fn relative_path<'a>(&self, path: &'a str) -> &'a str {
        let prefix = self.path_prefix.as_str();
        match path.strip_prefix(prefix) {
            Some(rest) if !prefix.is_empty() && (rest.is_empty() || rest.starts_with('/')) => rest,
            _ => path,
        }
    }

    /// The API version.
    pub fn version(&self) -> ApiVersion {
        self.version
    }

    /// The identifier options.
    pub fn identifier_options(&self) -> &IdentifierOptions {
        &self.identifiers
    }
}

type LookupFn = dyn Fn(Identifier, SourceRequest) -> Pin<Box<dyn Future<Output = Result<ImageInfo, Error>> + Send>>
    + Send
    + Sync;

/// Looks up an image's dimensions through the service's source and shared info cache.
#[derive(Clone)]
pub struct ImageLookup(pub(super) Arc<LookupFn>);

impl std::fmt::Debug for ImageLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageLookup").finish_non_exhaustive()
    }
}

impl ImageLookup {
    /// The image's information (dimensions after orientation, colour), or the error the
    /// service would answer with (404 for an unknown identifier).
    pub async fn info(&self, id: &Identifier, request: &SourceRequest) -> Result<ImageInfo, Error> {
        (self.0)(id.clone(), request.clone()).await
    }
}

/// A handle on an `IiifService` for the layers in front of it: its request parser and a
/// lookup of image information. Cheap to clone; shares the service's caches.
///
/// ```
/// use tower::Layer;
/// use tower_iiif::{HasIiifContext, IiifService, limit::PixelLimitLayer, source::FsSource};
///
/// let iiif = IiifService::new(FsSource::new(".").unwrap()).path_prefix("/iiif/3");
/// let svc = PixelLimitLayer::new().max_area(1_000_000).layer(iiif);
/// // The wrapped service's context, through the layer.
/// let context = svc.iiif_context();
/// assert_eq!(context.parser().relative_path("/iiif/3/a/info.json"), "/a/info.json");
/// ```
#[derive(Debug, Clone)]
pub struct IiifContext {
    pub(super) parser: RequestParser,
    pub(super) lookup: ImageLookup,
}

impl IiifContext {
    /// The service's request parser.
    ///
    /// ```
    /// use tower_iiif::request::{ApiVersion, IiifRequest};
    /// use tower_iiif::{HasIiifContext, IiifService, source::FsSource};
    ///
    /// let svc = IiifService::new(FsSource::new(".").unwrap()).version(ApiVersion::V2);
    /// let parser = svc.iiif_context().parser().clone();
    /// assert_eq!(parser.version(), ApiVersion::V2);
    /// let (parts, ()) = http::Request::get("/a%2Fb/info.json").body(()).unwrap().into_parts();
    /// assert!(matches!(parser.parse(&parts), Ok(IiifRequest::Info(id)) if id.as_str() == "a/b"));
    /// ```
    pub fn parser(&self) -> &RequestParser {
        &self.parser
    }

    /// The service's image lookup.
    ///
    /// ```
    /// use tower_iiif::{HasIiifContext, IiifService, request::Identifier, samples};
    /// use tower_iiif::source::FsSource;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("tower-iiif-doc-{}-{}", "context-lookup", std::process::id()));
    /// # samples::write_samples(&dir).unwrap();
    ///
    /// let svc = IiifService::new(FsSource::new(&dir).unwrap());
    /// let lookup = svc.iiif_context().lookup().clone();
    /// let info = lookup.info(&Identifier::new("gray").unwrap(), &Default::default()).await.unwrap();
    /// assert_eq!((info.width, info.height, info.gray), (700, 500, true));
    /// let missing = lookup.info(&Identifier::new("nope").unwrap(), &Default::default()).await.unwrap_err();
    /// assert_eq!(missing.status(), 404);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # }
    /// ```
    pub fn lookup(&self) -> &ImageLookup {
        &self.lookup
    }
}

/// A service that can hand the layers in front of it the [`IiifContext`] of the `IiifService`
/// it is or wraps, so that [`AuthorizeLayer`](crate::auth::AuthorizeLayer) reads the settings
/// (mount path, API version, identifier options, source and caches) of the very service it
/// wraps, whatever builder calls made it.
///
/// Implemented by `IiifService` and by each layer of this crate, which forward to the service
/// inside. A middleware of your own between `Authorize` and the service implements it the same
/// way.
///
/// ```
/// use tower_iiif::{HasIiifContext, IiifContext};
///
/// struct MyMiddleware<S>(S);
///
/// impl<S: HasIiifContext> HasIiifContext for MyMiddleware<S> {
///     fn iiif_context(&self) -> IiifContext {
///         self.0.iiif_context()
///     }
/// }
/// ```
pub trait HasIiifContext {
    /// The context of the `IiifService` inside.
    ///
    /// ```
    /// use tower::Layer;
    /// use tower_iiif::cache_control::SetCacheControlLayer;
    /// use tower_iiif::{HasIiifContext, IiifService, request::ApiVersion, source::FsSource};
    ///
    /// let iiif = IiifService::new(FsSource::new(".").unwrap()).version(ApiVersion::V2);
    /// let svc = SetCacheControlLayer::new().layer(iiif);
    /// assert_eq!(svc.iiif_context().parser().version(), ApiVersion::V2); // forwarded to `iiif`
    /// ```
    fn iiif_context(&self) -> IiifContext;
}

/// The examples that stood in the doc comments of these crate-private items.
#[cfg(test)]
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    #[test]
    fn doc_context_requestparser_17() {
        use crate::service::HasIiifContext;
        use crate::{IiifService, request::IiifRequest, source::FsSource};
        let svc = IiifService::new(FsSource::new(".").unwrap()).path_prefix("/iiif/3");
        let parser = svc.iiif_context().parser().clone();
        let req = http::Request::get("/iiif/3/abc/info.json")
            .body(())
            .unwrap();
        let (parts, _) = req.into_parts();
        assert!(matches!(parser.parse(&parts), Ok(IiifRequest::Info(id)) if id.as_str() == "abc"));
    }

    #[test]
    fn doc_context_requestparser_relative_path_50() {
        use crate::{IiifService, service::HasIiifContext, source::FsSource};
        let svc = IiifService::new(FsSource::new(".").unwrap()).path_prefix("/iiif/3");
        let parser = svc.iiif_context().parser().clone();
        assert_eq!(parser.relative_path("/iiif/3/a/info.json"), "/a/info.json");
        assert_eq!(parser.relative_path("/a/info.json"), "/a/info.json");
        assert_eq!(parser.relative_path("/iiif/30/x"), "/iiif/30/x");
    }
}
