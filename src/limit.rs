//! Size limits for every image request: the `PixelLimit` middleware (Cantaloupe's
//! `max_pixels` and `max_scale`).
//!
//! `PixelLimit` inserts a [`Limits`] request extension (the tighter of its own and any a layer
//! further out already inserted) and an [`OverLimit`] policy; `IiifService` advertises the limits
//! in info.json (`maxWidth`, `maxHeight`, `maxArea`, with `sizes` and `tiles` kept within them),
//! fits `max` and `^max` within them, and answers other requests over them as the policy says:
//! 403 by default, as Cantaloupe does, or 200 with the size clamped.
//!
//! # Example
//!
//! ```
//! use tower::{Layer, ServiceExt};
//! use tower_iiif::limit::PixelLimitLayer;
//! use tower_iiif::{IiifService, samples, source::FsSource};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # let dir = std::env::temp_dir().join(format!("tower-iiif-limit-doc-{}", std::process::id()));
//! # samples::write_samples(&dir).unwrap();
//! let svc = PixelLimitLayer::new()
//!     .max_area(10_000)
//!     .layer(IiifService::new(FsSource::new(&dir).unwrap()));
//! let id = samples::VALIDATOR_ID;
//! let get = |path: String| http::Request::get(path).body(()).unwrap();
//!
//! let res = svc.clone().oneshot(get(format!("/{id}/full/500,/0/default.jpg"))).await.unwrap();
//! assert_eq!(res.status(), 403);
//! let res = svc.oneshot(get(format!("/{id}/full/max/0/default.jpg"))).await.unwrap();
//! assert_eq!(res.status(), 200); // max is fitted: 100x100
//! # }
//! ```

use std::task::{Context, Poll};

use http::Request;
use tower_layer::Layer;
use tower_service::Service;

pub use crate::plan::{Limits, OverLimit};
use crate::service::{HasIiifContext, IiifContext};

/// Layer that applies [`PixelLimit`] which limits the size of every returned image.
///
/// See the [module docs](crate::limit) for an example.
///
/// ```
/// use tower::{Layer, ServiceExt};
/// use tower_iiif::limit::PixelLimitLayer;
/// use tower_iiif::{IiifService, samples, source::FsSource};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let dir = std::env::temp_dir()
/// #     .join(format!("tower-iiif-doc-{}-{}", "pixel-limit-layer", std::process::id()));
/// # samples::write_samples(&dir).unwrap();
/// # let get = |path: &str| http::Request::get(path).body(()).unwrap();
/// # async fn body_json(res: http::Response<tower_iiif::IiifBody>) -> serde_json::Value {
/// #     use http_body_util::BodyExt;
/// #     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
/// # }
///
/// let iiif = IiifService::new(FsSource::new(&dir).unwrap());
/// let svc = PixelLimitLayer::new().max_width(400).clamp().layer(iiif);
/// let res = svc.clone().oneshot(get("/gray/info.json")).await.unwrap();
/// assert_eq!(body_json(res).await["maxWidth"], 400); // advertised
/// let res = svc.oneshot(get("/gray/full/700,/0/default.png")).await.unwrap();
/// assert_eq!(res.status(), 200); // clamped to 400 pixels wide
/// # let _ = std::fs::remove_dir_all(&dir);
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct PixelLimitLayer {
    limits: Limits,
    policy: OverLimitPolicy,
}

/// The policy with Cantaloupe's default (403), distinct from the service's own default (400).
#[derive(Debug, Clone, Copy)]
struct OverLimitPolicy(OverLimit);

impl Default for OverLimitPolicy {
    fn default() -> Self {
        Self(OverLimit::Forbid)
    }
}

impl PixelLimitLayer {
    /// Create a new [`PixelLimitLayer`] with no limits yet and the 403 policy.
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt, service_fn};
    /// # use tower_iiif::limit::{Limits, OverLimit, PixelLimitLayer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let seen = service_fn(|req: http::Request<()>| async move {
    /// #     let e = req.extensions();
    /// #     let limits = e.get::<Limits>().copied().unwrap();
    /// #     let seen = (limits, e.get::<OverLimit>().copied().unwrap());
    /// #     Ok::<_, std::convert::Infallible>(seen)
    /// # });
    /// // What the layer inserts into each request, for the service to apply:
    /// let svc = PixelLimitLayer::new().layer(seen);
    /// let (limits, policy) = svc.oneshot(http::Request::new(())).await.unwrap();
    /// assert!(limits.is_unlimited());
    /// assert_eq!(policy, OverLimit::Forbid);
    /// # }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The most pixels (width x height) of a returned image (Cantaloupe's `max_pixels`).
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt, service_fn};
    /// # use tower_iiif::limit::{Limits, OverLimit, PixelLimitLayer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let seen = service_fn(|req: http::Request<()>| async move {
    /// #     let e = req.extensions();
    /// #     let limits = e.get::<Limits>().copied().unwrap();
    /// #     let seen = (limits, e.get::<OverLimit>().copied().unwrap());
    /// #     Ok::<_, std::convert::Infallible>(seen)
    /// # });
    /// let svc = PixelLimitLayer::new().max_area(10_000).layer(seen);
    /// let (limits, _) = svc.oneshot(http::Request::new(())).await.unwrap();
    /// assert_eq!(limits.area(), Some(10_000));
    /// # }
    /// ```
    pub fn max_area(mut self, px: u64) -> Self {
        self.limits = self.limits.max_area(px);
        self
    }

    /// The widest returned image.
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt, service_fn};
    /// # use tower_iiif::limit::{Limits, OverLimit, PixelLimitLayer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let seen = service_fn(|req: http::Request<()>| async move {
    /// #     let e = req.extensions();
    /// #     let limits = e.get::<Limits>().copied().unwrap();
    /// #     let seen = (limits, e.get::<OverLimit>().copied().unwrap());
    /// #     Ok::<_, std::convert::Infallible>(seen)
    /// # });
    /// let svc = PixelLimitLayer::new().max_width(800).layer(seen);
    /// let (limits, _) = svc.oneshot(http::Request::new(())).await.unwrap();
    /// assert_eq!((limits.width(), limits.height()), (Some(800), Some(800)));
    /// # }
    /// ```
    pub fn max_width(mut self, px: u32) -> Self {
        self.limits = self.limits.max_width(px);
        self
    }

    /// The tallest returned image (defaults to the width limit).
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt, service_fn};
    /// # use tower_iiif::limit::{Limits, OverLimit, PixelLimitLayer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let seen = service_fn(|req: http::Request<()>| async move {
    /// #     let e = req.extensions();
    /// #     let limits = e.get::<Limits>().copied().unwrap();
    /// #     let seen = (limits, e.get::<OverLimit>().copied().unwrap());
    /// #     Ok::<_, std::convert::Infallible>(seen)
    /// # });
    /// let svc = PixelLimitLayer::new().max_width(800).max_height(600).layer(seen);
    /// let (limits, _) = svc.oneshot(http::Request::new(())).await.unwrap();
    /// assert_eq!((limits.width(), limits.height()), (Some(800), Some(600)));
    /// # }
    /// ```
    pub fn max_height(mut self, px: u32) -> Self {
        self.limits = self.limits.max_height(px);
        self
    }

    /// The largest scale against the region (Cantaloupe's `max_scale`; 1.0 forbids upscaling).
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt, service_fn};
    /// # use tower_iiif::limit::{Limits, OverLimit, PixelLimitLayer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let seen = service_fn(|req: http::Request<()>| async move {
    /// #     let e = req.extensions();
    /// #     let limits = e.get::<Limits>().copied().unwrap();
    /// #     let seen = (limits, e.get::<OverLimit>().copied().unwrap());
    /// #     Ok::<_, std::convert::Infallible>(seen)
    /// # });
    /// let svc = PixelLimitLayer::new().max_scale(1.0).layer(seen);
    /// let (limits, _) = svc.oneshot(http::Request::new(())).await.unwrap();
    /// assert_eq!(limits.scale(), Some(1.0));
    /// # }
    /// ```
    pub fn max_scale(mut self, scale: f64) -> Self {
        self.limits = self.limits.max_scale(scale);
        self
    }

    /// Answer requests over the limits with 403 Forbidden (the default, as Cantaloupe does).
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt, service_fn};
    /// # use tower_iiif::limit::{Limits, OverLimit, PixelLimitLayer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let seen = service_fn(|req: http::Request<()>| async move {
    /// #     let e = req.extensions();
    /// #     let limits = e.get::<Limits>().copied().unwrap();
    /// #     let seen = (limits, e.get::<OverLimit>().copied().unwrap());
    /// #     Ok::<_, std::convert::Infallible>(seen)
    /// # });
    /// let svc = PixelLimitLayer::new().clamp().forbid().layer(seen);
    /// let (_, policy) = svc.oneshot(http::Request::new(())).await.unwrap();
    /// assert_eq!(policy, OverLimit::Forbid);
    /// # }
    /// ```
    pub fn forbid(mut self) -> Self {
        self.policy = OverLimitPolicy(OverLimit::Forbid);
        self
    }

    /// Answer requests over the limits with 400 Bad Request (the spec's recommendation).
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt, service_fn};
    /// # use tower_iiif::limit::{Limits, OverLimit, PixelLimitLayer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let seen = service_fn(|req: http::Request<()>| async move {
    /// #     let e = req.extensions();
    /// #     let limits = e.get::<Limits>().copied().unwrap();
    /// #     let seen = (limits, e.get::<OverLimit>().copied().unwrap());
    /// #     Ok::<_, std::convert::Infallible>(seen)
    /// # });
    /// let svc = PixelLimitLayer::new().max_area(10_000).reject().layer(seen);
    /// let (_, policy) = svc.oneshot(http::Request::new(())).await.unwrap();
    /// assert_eq!(policy, OverLimit::Reject);
    /// # }
    /// ```
    pub fn reject(mut self) -> Self {
        self.policy = OverLimitPolicy(OverLimit::Reject);
        self
    }

    /// Scale requests over the limits down until they fit, keeping their proportions.
    ///
    /// ```
    /// # use tower::{Layer, ServiceExt, service_fn};
    /// # use tower_iiif::limit::{Limits, OverLimit, PixelLimitLayer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let seen = service_fn(|req: http::Request<()>| async move {
    /// #     let e = req.extensions();
    /// #     let limits = e.get::<Limits>().copied().unwrap();
    /// #     let seen = (limits, e.get::<OverLimit>().copied().unwrap());
    /// #     Ok::<_, std::convert::Infallible>(seen)
    /// # });
    /// let svc = PixelLimitLayer::new().max_area(10_000).clamp().layer(seen);
    /// let (_, policy) = svc.oneshot(http::Request::new(())).await.unwrap();
    /// assert_eq!(policy, OverLimit::Clamp);
    /// # }
    /// ```
    pub fn clamp(mut self) -> Self {
        self.policy = OverLimitPolicy(OverLimit::Clamp);
        self
    }
}

impl<S> Layer<S> for PixelLimitLayer {
    type Service = PixelLimit<S>;

    fn layer(&self, inner: S) -> PixelLimit<S> {
        PixelLimit {
            inner,
            limits: self.limits,
            policy: self.policy.0,
        }
    }
}

/// Middleware that limits the size of every returned image, by inserting [`Limits`] and an
/// [`OverLimit`] policy that `IiifService` applies.
///
/// See the [module docs](crate::limit) for an example.
///
/// ```
/// use tower::{ServiceExt, service_fn};
/// use tower_iiif::limit::{Limits, OverLimit, PixelLimit};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
///
/// // The limits and policy reach the inner service as request extensions.
/// let svc = PixelLimit::new(service_fn(|req: http::Request<()>| async move {
///     let e = req.extensions();
///     let seen = (e.get::<Limits>().copied(), e.get::<OverLimit>().copied());
///     Ok::<_, std::convert::Infallible>(seen)
/// }));
/// let (limits, policy) = svc.oneshot(http::Request::new(())).await.unwrap();
/// assert!(limits.unwrap().is_unlimited());
/// assert_eq!(policy, Some(OverLimit::Forbid));
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PixelLimit<S> {
    inner: S,
    limits: Limits,
    policy: OverLimit,
}

impl<S> PixelLimit<S> {
    /// Wrap `inner` with no limits yet and the 403 policy; the same as
    /// `PixelLimitLayer::new().layer(inner)`.
    ///
    /// ```
    /// use tower_iiif::limit::PixelLimit;
    /// let svc = PixelLimit::new(tower::service_fn(|_req: http::Request<()>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(()))
    /// }));
    /// let inner = svc.into_inner();
    /// ```
    pub fn new(inner: S) -> Self {
        PixelLimitLayer::new().layer(inner)
    }

    /// Gets a reference to the underlying service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Gets a mutable reference to the underlying service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the underlying service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl PixelLimit<()> {
    /// Returns a new [`Layer`] that wraps services with a [`PixelLimit`] middleware.
    ///
    /// ```
    /// let layer = tower_iiif::limit::PixelLimit::layer().max_area(10_000_000);
    /// ```
    pub fn layer() -> PixelLimitLayer {
        PixelLimitLayer::new()
    }
}

impl<S: HasIiifContext> HasIiifContext for PixelLimit<S> {
    fn iiif_context(&self) -> IiifContext {
        self.inner.iiif_context()
    }
}

impl<S, B> Service<Request<B>> for PixelLimit<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> S::Future {
        let ext = req.extensions_mut();
        let limits = match ext.get::<Limits>() {
            Some(outer) => outer.tighten(&self.limits),
            None => self.limits,
        };
        ext.insert(limits);
        // A policy set further out (e.g. by an authorization layer) wins.
        if ext.get::<OverLimit>().is_none() {
            ext.insert(self.policy);
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt;

    async fn seen(layer: PixelLimitLayer, req: Request<()>) -> (Option<Limits>, Option<OverLimit>) {
        let svc = layer.layer(tower::service_fn(|req: Request<()>| async move {
            let e = req.extensions();
            Ok::<_, Infallible>((e.get::<Limits>().copied(), e.get::<OverLimit>().copied()))
        }));
        svc.oneshot(req).await.unwrap()
    }

    #[tokio::test]
    async fn inserts_limits_and_policy() {
        let (limits, policy) = seen(
            PixelLimitLayer::new().max_area(1000).max_scale(1.0),
            Request::new(()),
        )
        .await;
        let limits = limits.unwrap();
        assert_eq!((limits.area(), limits.scale()), (Some(1000), Some(1.0)));
        assert_eq!(policy, Some(OverLimit::Forbid));
        let (_, policy) = seen(PixelLimitLayer::new().clamp(), Request::new(())).await;
        assert_eq!(policy, Some(OverLimit::Clamp));
    }

    #[tokio::test]
    async fn tightens_outer_limits_and_keeps_outer_policy() {
        let mut req = Request::new(());
        req.extensions_mut()
            .insert(Limits::default().max_width(300).max_area(5000));
        req.extensions_mut().insert(OverLimit::Reject);
        let (limits, policy) =
            seen(PixelLimitLayer::new().max_width(500).max_area(1000), req).await;
        let limits = limits.unwrap();
        assert_eq!((limits.width(), limits.area()), (Some(300), Some(1000)));
        assert_eq!(policy, Some(OverLimit::Reject));
    }
}
