//! From an identifier to a source and a key: key templates, routing by prefix or URL scheme, and
//! the resolver hook (Cantaloupe's delegate `*_resolve`, serverless-iiif's `ResolverTemplate`).

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::{AnyObject, AnySource, Source, SourceRequest};
use crate::Error;
use crate::request::Identifier;

/// A key made from an identifier: `{id}` in the template is replaced by the (decoded)
/// identifier, e.g. `images/{id}.tif` (serverless-iiif's `ResolverTemplate=%s`).
///
/// ```
/// use tower_iiif::source::KeyTemplate;
///
/// let t = KeyTemplate::new("images/{id}.tif").unwrap();
/// assert_eq!(t.key("page 1"), "images/page 1.tif");
/// assert_eq!(KeyTemplate::prefix("scans/").key("a.jp2"), "scans/a.jp2");
/// assert!(KeyTemplate::new("images/").is_err()); // no {id}
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    prefix: String,
    suffix: String,
}

impl KeyTemplate {
    /// A template with exactly one `{id}`; else a 500-kind [`Error`] naming the template.
    ///
    /// ```
    /// use tower_iiif::source::KeyTemplate;
    /// assert_eq!(KeyTemplate::new("{id}").unwrap().key("x"), "x");
    /// assert!(KeyTemplate::new("{id}/{id}").is_err());
    /// ```
    pub fn new(template: &str) -> Result<Self, Error> {
        match template.split_once("{id}") {
            Some((prefix, suffix)) if !suffix.contains("{id}") => Ok(Self {
                prefix: prefix.to_owned(),
                suffix: suffix.to_owned(),
            }),
            _ => Err(Error::internal(format!(
                "key template {template:?} must contain {{id}} exactly once"
            ))),
        }
    }

    /// The identifier after a fixed prefix (`--s3 s3://bucket/PREFIX`).
    ///
    /// ```
    /// assert_eq!(tower_iiif::source::KeyTemplate::prefix("p/").key("a"), "p/a");
    /// ```
    pub fn prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            suffix: String::new(),
        }
    }

    /// The key of an identifier.
    ///
    /// ```
    /// let t = tower_iiif::source::KeyTemplate::new("a/{id}.jp2").unwrap();
    /// assert_eq!(t.key("b"), "a/b.jp2");
    /// ```
    pub fn key(&self, id: &str) -> String {
        format!("{}{id}{}", self.prefix, self.suffix)
    }
}

/// A source whose identifiers are turned into keys by a [`KeyTemplate`] first.
///
/// ```
/// use tower_iiif::source::{FsSource, KeyTemplate, Keyed, Source, SourceObject};
/// # use tower_iiif::request::Identifier;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let dir = std::env::temp_dir().join(format!("tower-iiif-doc-keyed-{}", std::process::id()));
/// # std::fs::create_dir_all(dir.join("scans")).unwrap();
/// std::fs::write(dir.join("scans/p1.jpg"), b"0123").unwrap();
/// let fs = FsSource::new(&dir).unwrap();
/// let source = Keyed::new(fs, KeyTemplate::new("scans/{id}.jpg").unwrap());
/// let obj = source.open(&Identifier::new("p1").unwrap(), &Default::default()).await.unwrap();
/// assert_eq!(obj.metadata().len, 4);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Keyed<S> {
    source: S,
    template: Arc<KeyTemplate>,
}

impl<S: Source> Keyed<S> {
    /// `source`, opened with `template`'s keys.
    ///
    /// ```
    /// use tower_iiif::source::{FsSource, KeyTemplate, Keyed};
    /// let _ = Keyed::new(FsSource::new(".").unwrap(), KeyTemplate::prefix("images/"));
    /// ```
    pub fn new(source: S, template: KeyTemplate) -> Self {
        Self {
            source,
            template: Arc::new(template),
        }
    }
}

impl<S: Source> Source for Keyed<S> {
    type Object = S::Object;

    async fn open(&self, id: &Identifier, request: &SourceRequest) -> Result<S::Object, Error> {
        let key = Identifier::new(self.template.key(id.as_str()))?;
        self.source.open(&key, request).await
    }

    fn check(&self) -> impl Future<Output = Result<(), Error>> + Send {
        self.source.check()
    }

    async fn purge(&self, id: &Identifier) {
        if let Ok(key) = Identifier::new(self.template.key(id.as_str())) {
            self.source.purge(&key).await;
        }
    }

    fn purge_all(&self) -> impl Future<Output = ()> + Send {
        self.source.purge_all()
    }

    fn per_caller(&self) -> bool {
        self.source.per_caller()
    }
}

#[derive(Debug, Clone)]
enum Match {
    /// The identifier starts with this; the key is the rest.
    Prefix(String),
    /// The identifier is a URL of this scheme (`https://...`); the key is the identifier.
    Scheme(String),
    /// Every identifier; the key is the identifier.
    Any,
}

/// Several sources, the first whose rule matches an identifier opens it: by identifier prefix
/// (stripped from the key), by URL scheme (the whole URL is the key, for HTTP sources), and a
/// fallback. An identifier no rule matches is a 404.
///
/// ```
/// use tower_iiif::source::{FsSource, Routes, Source, SourceObject};
/// # use tower_iiif::request::Identifier;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let base = std::env::temp_dir().join(format!("tower-iiif-doc-routes-{}", std::process::id()));
/// # let (a, b) = (base.join("a"), base.join("b"));
/// # std::fs::create_dir_all(&a).unwrap();
/// # std::fs::create_dir_all(&b).unwrap();
/// std::fs::write(a.join("x.jpg"), b"from a").unwrap();
/// std::fs::write(b.join("x.jpg"), b"from b, longer").unwrap();
/// let routes = Routes::new()
///     .prefix("b:", FsSource::new(&b).unwrap())
///     .fallback(FsSource::new(&a).unwrap());
/// let id = |s: &str| Identifier::new(s).unwrap();
/// let request = Default::default();
/// assert_eq!(routes.open(&id("x.jpg"), &request).await.unwrap().metadata().len, 6);
/// assert_eq!(routes.open(&id("b:x.jpg"), &request).await.unwrap().metadata().len, 14);
/// let only_b = Routes::new().prefix("b:", FsSource::new(&b).unwrap());
/// let miss = only_b.open(&Identifier::new("x.jpg").unwrap(), &Default::default()).await;
/// assert_eq!(miss.unwrap_err().status(), 404);
/// # std::fs::remove_dir_all(&base).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Routes {
    routes: Arc<Vec<(Match, AnySource)>>,
}

impl Routes {
    /// No routes: every identifier is a 404.
    ///
    /// ```
    /// let routes = tower_iiif::source::Routes::new();
    /// assert!(routes.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    fn push(mut self, m: Match, source: AnySource) -> Self {
        Arc::make_mut(&mut self.routes).push((m, source));
        self
    }

    /// Identifiers that start with `prefix` go to `source`, keyed by the rest.
    ///
    /// ```
    /// # use tower_iiif::source::{FsSource, Routes};
    /// let routes = Routes::new().prefix("local:", FsSource::new(".").unwrap());
    /// assert!(!routes.is_empty());
    /// ```
    pub fn prefix(self, prefix: impl Into<String>, source: impl Source) -> Self {
        self.push(Match::Prefix(prefix.into()), AnySource::new(source))
    }

    /// Identifiers that are URLs of `scheme` (e.g. `https`; case-insensitive) go to `source`,
    /// keyed by the whole URL.
    ///
    /// ```
    /// # use tower_iiif::source::{FsSource, Routes};
    /// let routes = Routes::new().scheme("https", FsSource::new(".").unwrap());
    /// assert!(!routes.is_empty());
    /// ```
    pub fn scheme(self, scheme: &str, source: impl Source) -> Self {
        let m = Match::Scheme(format!("{}://", scheme.to_ascii_lowercase()));
        self.push(m, AnySource::new(source))
    }

    /// Every identifier no earlier rule took goes to `source`.
    ///
    /// ```
    /// # use tower_iiif::source::{FsSource, Routes};
    /// let routes = Routes::new().fallback(FsSource::new(".").unwrap());
    /// assert!(!routes.is_empty());
    /// ```
    pub fn fallback(self, source: impl Source) -> Self {
        self.push(Match::Any, AnySource::new(source))
    }

    /// Whether there are no routes.
    ///
    /// ```
    /// assert!(tower_iiif::source::Routes::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The source and key of an identifier.
    fn route<'a>(&'a self, id: &'a str) -> Option<(&'a AnySource, &'a str)> {
        self.routes.iter().find_map(|(m, source)| match m {
            Match::Prefix(p) => id.strip_prefix(p.as_str()).map(|rest| (source, rest)),
            Match::Scheme(s) => {
                let head = id.get(..s.len())?;
                head.eq_ignore_ascii_case(s).then_some((source, id))
            }
            Match::Any => Some((source, id)),
        })
    }
}

impl Source for Routes {
    type Object = AnyObject;

    async fn open(&self, id: &Identifier, request: &SourceRequest) -> Result<AnyObject, Error> {
        let (source, key) = self
            .route(id.as_str())
            .ok_or_else(|| Error::not_found("no source for this identifier"))?;
        source.open(&Identifier::new(key)?, request).await
    }

    /// Every routed source must answer.
    async fn check(&self) -> Result<(), Error> {
        for (_, source) in self.routes.iter() {
            source.check().await?;
        }
        Ok(())
    }

    /// If any routed source serves per caller.
    fn per_caller(&self) -> bool {
        self.routes.iter().any(|(_, s)| s.per_caller())
    }

    async fn purge(&self, id: &Identifier) {
        if let Some((source, key)) = self.route(id.as_str())
            && let Ok(key) = Identifier::new(key)
        {
            source.purge(&key).await;
        }
    }

    async fn purge_all(&self) {
        for (_, source) in self.routes.iter() {
            source.purge_all().await;
        }
    }
}

/// What a [`Resolver`] hook decides: the source that holds an image and its key there.
///
/// ```
/// use tower_iiif::source::{AnySource, FsSource, Resolved};
/// let r = Resolved::new(AnySource::new(FsSource::new(".").unwrap()), "images/a.tif").unwrap();
/// assert_eq!(r.key().as_str(), "images/a.tif");
/// ```
#[derive(Debug, Clone)]
pub struct Resolved {
    source: AnySource,
    key: Identifier,
}

impl Resolved {
    /// `key` in `source`; an empty key is a 400.
    ///
    /// ```
    /// use tower_iiif::source::{AnySource, FsSource, Resolved};
    /// let fs = AnySource::new(FsSource::new(".").unwrap());
    /// assert_eq!(Resolved::new(fs, "").unwrap_err().status(), 400);
    /// ```
    pub fn new(source: AnySource, key: impl AsRef<str>) -> Result<Self, Error> {
        Ok(Self {
            source,
            key: Identifier::new(key)?,
        })
    }

    /// The key in the source.
    ///
    /// ```
    /// # use tower_iiif::source::{AnySource, FsSource, Resolved};
    /// # let fs = AnySource::new(FsSource::new(".").unwrap());
    /// assert_eq!(Resolved::new(fs, "k").unwrap().key().as_str(), "k");
    /// ```
    pub fn key(&self) -> &Identifier {
        &self.key
    }
}

type ResolveFn = dyn Fn(
        Identifier,
        SourceRequest,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Resolved, Error>> + Send>>
    + Send
    + Sync;

/// A source chosen per request by a hook (Cantaloupe's delegate `*_resolve`): an async closure
/// from the identifier and the [`SourceRequest`] (its headers, client address) to a
/// [`Resolved`] source and key, or an [`Error`] to answer with.
///
/// ```
/// use tower_iiif::source::{AnySource, FsSource, Resolved, Resolver, Source, SourceObject};
/// use tower_iiif::{Error, request::Identifier};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let dir = std::env::temp_dir().join(format!("tower-iiif-doc-resolver-{}", std::process::id()));
/// # std::fs::create_dir_all(dir.join("staff")).unwrap();
/// std::fs::write(dir.join("staff/a.jpg"), b"staff copy").unwrap();
/// let fs = AnySource::new(FsSource::new(&dir).unwrap());
/// // Staff (by a header the gateway sets) read from `staff/`; nobody else may.
/// let source = Resolver::new(move |id: Identifier, req| {
///     let fs = fs.clone();
///     async move {
///         match req.headers().get("x-staff") {
///             Some(_) => Resolved::new(fs, format!("staff/{id}")),
///             None => Err(Error::new(tower_iiif::ErrorKind::Forbidden, "staff only")),
///         }
///     }
/// });
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-staff", "1".parse().unwrap());
/// let staff = tower_iiif::source::SourceRequest::new(headers, None, None);
/// let a = Identifier::new("a.jpg").unwrap();
/// assert_eq!(source.open(&a, &staff).await.unwrap().metadata().len, 10);
/// assert_eq!(source.open(&a, &Default::default()).await.unwrap_err().status(), 403);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct Resolver {
    resolve: Arc<ResolveFn>,
    sources: Arc<Vec<AnySource>>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    /// A source that asks `hook` for each request.
    ///
    /// ```
    /// use tower_iiif::source::{Resolved, Resolver};
    /// use tower_iiif::{Error, request::Identifier};
    /// let nothing = Resolver::new(|_id: Identifier, _req| async {
    ///     Err::<Resolved, _>(Error::not_found("nothing here"))
    /// });
    /// # let _ = nothing;
    /// ```
    pub fn new<F, Fut>(hook: F) -> Self
    where
        F: Fn(Identifier, SourceRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resolved, Error>> + Send + 'static,
    {
        Self {
            resolve: Arc::new(move |id, req| Box::pin(hook(id, req))),
            sources: Arc::default(),
        }
    }

    /// The sources the hook may choose, for health checks ([`Source::check`] checks each).
    ///
    /// ```
    /// use tower_iiif::source::{AnySource, FsSource, Resolved, Resolver, Source};
    /// use tower_iiif::request::Identifier;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let gone = std::env::temp_dir().join(format!("tower-iiif-doc-gone-{}", std::process::id()));
    /// std::fs::create_dir_all(&gone).unwrap();
    /// let fs = AnySource::new(FsSource::new(&gone).unwrap());
    /// let r = Resolver::new({
    ///     let fs = fs.clone();
    ///     move |id: Identifier, _req| {
    ///         let fs = fs.clone();
    ///         async move { Resolved::new(fs, id.as_str()) }
    ///     }
    /// })
    /// .checking([fs]);
    /// assert!(r.check().await.is_ok());
    /// std::fs::remove_dir_all(&gone).unwrap();
    /// assert!(r.check().await.is_err());
    /// # }
    /// ```
    pub fn checking(mut self, sources: impl IntoIterator<Item = AnySource>) -> Self {
        self.sources = Arc::new(sources.into_iter().collect());
        self
    }
}

impl Source for Resolver {
    type Object = AnyObject;

    async fn open(&self, id: &Identifier, request: &SourceRequest) -> Result<AnyObject, Error> {
        let resolved = (self.resolve)(id.clone(), request.clone()).await?;
        resolved.source.open(&resolved.key, request).await
    }

    async fn check(&self) -> Result<(), Error> {
        for source in self.sources.iter() {
            source.check().await?;
        }
        Ok(())
    }

    /// If any source named by [`checking`](Self::checking) serves per caller; a hook that
    /// returns other sources should name them there too.
    fn per_caller(&self) -> bool {
        self.sources.iter().any(|s| s.per_caller())
    }

    /// The hook's key is not known without a request: each source named by
    /// [`checking`](Self::checking) forgets the identifier as its key.
    async fn purge(&self, id: &Identifier) {
        for source in self.sources.iter() {
            source.purge(id).await;
        }
    }

    async fn purge_all(&self) {
        for source in self.sources.iter() {
            source.purge_all().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_routes_match_case_insensitively_and_keep_the_url() {
        let fs = crate::source::FsSource::new(std::env::temp_dir()).unwrap();
        let routes = Routes::new().scheme("https", fs.clone()).prefix("s3:", fs);
        assert_eq!(routes.route("HTTPS://a/b").unwrap().1, "HTTPS://a/b");
        assert_eq!(routes.route("s3:key").unwrap().1, "key");
        assert!(routes.route("http://a/b").is_none());
        assert!(routes.route("htt").is_none());
    }
}
