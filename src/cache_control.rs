//! `Cache-Control` for IIIF responses: the `SetCacheControl` middleware.

/// A response extension that marks a response as restricted by authorization (only this user
/// may see it, or a degraded version was served). `SetCacheControl` then never sends `public`.
///
/// Inserted by the `Authorize` middleware (or the host app); read by `SetCacheControl`.
///
/// ```
/// let mut res = http::Response::new(());
/// res.extensions_mut().insert(tower_iiif::cache_control::Restricted);
/// assert!(res.extensions().get::<tower_iiif::cache_control::Restricted>().is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Restricted;
