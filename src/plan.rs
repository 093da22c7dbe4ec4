//! Pure geometry: from an image request and the image's dimensions to exactly what to render.
//!
//! [`plan`] resolves the region to pixels, the size to an output width and height with the
//! rounding and upscaling rules of the API version, checks the result against the [`Limits`], and
//! writes the canonical form of the request for the `Link: rel="canonical"` header.

use crate::pixels::Rect;
use crate::request::{ApiVersion, Format, ImageRequest, Quality, Rotation, SizeKind};
use crate::{Error, ErrorKind};

/// Size limits of the returned image: `maxWidth`, `maxHeight`, `maxArea` of info.json.
///
/// A request extension: the service reads a `Limits` from the request's extensions (inserted
/// by a limiting or authorizing layer) and applies the tighter of it and its own configuration.
///
/// ```
/// use tower_iiif::limit::Limits;
///
/// let limits = Limits::default().max_width(1000).max_area(500_000);
/// assert!(limits.allows(1000, 500));
/// assert!(!limits.allows(1000, 501)); // over the area
/// assert_eq!(limits.fit(4000, 2000, false), (1000, 500));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[must_use]
pub struct Limits {
    max_width: Option<u32>,
    max_height: Option<u32>,
    max_area: Option<u64>,
    /// Thousandths, so that `Limits` stays `Eq + Hash`.
    max_scale_milli: Option<u32>,
}

impl Limits {
    /// The largest scale factor against the region (Cantaloupe's `max_scale`): 1.0 forbids
    /// upscaling, 2.0 allows doubling. Not advertised in info.json (no such property); a
    /// request beyond it is refused like any other over-limit request.
    ///
    /// ```
    /// # use tower_iiif::limit::Limits;
    /// let limits = Limits::default().max_scale(2.0);
    /// assert_eq!(limits.scale(), Some(2.0));
    /// assert_eq!(limits.fit(300, 200, true), (600, 400)); // upscaled twice, no more
    /// ```
    pub fn max_scale(mut self, scale: f64) -> Self {
        let milli = (scale.clamp(0.001, 1_000_000.0) * 1000.0).round() as u32;
        self.max_scale_milli = Some(milli.max(1));
        self
    }

    /// The scale limit, if any.
    ///
    /// ```
    /// # use tower_iiif::limit::Limits;
    /// assert_eq!(Limits::default().scale(), None);
    /// assert_eq!(Limits::default().max_scale(1.5).scale(), Some(1.5));
    /// ```
    pub fn scale(&self) -> Option<f64> {
        self.max_scale_milli.map(|m| f64::from(m) / 1000.0)
    }

    /// The widest image returned.
    ///
    /// ```
    /// # use tower_iiif::limit::Limits;
    /// let limits = Limits::default().max_width(800);
    /// assert_eq!((limits.width(), limits.height()), (Some(800), Some(800)));
    /// assert!(!limits.allows(801, 100));
    /// ```
    pub fn max_width(mut self, px: u32) -> Self {
        self.max_width = Some(px.max(1));
        self
    }

    /// The tallest image returned. Without it, `max_width` applies to the height too, as the
    /// spec says.
    ///
    /// ```
    /// # use tower_iiif::limit::Limits;
    /// let limits = Limits::default().max_width(800).max_height(600);
    /// assert_eq!((limits.width(), limits.height()), (Some(800), Some(600)));
    /// assert!(!limits.allows(800, 601));
    /// ```
    pub fn max_height(mut self, px: u32) -> Self {
        self.max_height = Some(px.max(1));
        self
    }

    /// The most pixels (width x height) returned.
    ///
    /// ```
    /// # use tower_iiif::limit::Limits;
    /// let limits = Limits::default().max_area(1_000_000);
    /// assert!(limits.allows(1000, 1000));
    /// assert!(!limits.allows(1001, 1000));
    /// ```
    pub fn max_area(mut self, px: u64) -> Self {
        self.max_area = Some(px.max(1));
        self
    }

    /// The width limit, if any.
    ///
    /// ```
    /// # use tower_iiif::limit::Limits;
    /// assert_eq!(Limits::default().width(), None);
    /// assert_eq!(Limits::default().max_width(640).width(), Some(640));
    /// ```
    pub fn width(&self) -> Option<u32> {
        self.max_width
    }

    /// The height limit, if any (defaults to the width limit).
    ///
    /// ```
    /// # use tower_iiif::limit::Limits;
    /// assert_eq!(Limits::default().max_width(640).height(), Some(640));
    /// assert_eq!(Limits::default().max_height(480).height(), Some(480));
    /// ```
    pub fn height(&self) -> Option<u32> {
        self.max_height.or(self.max_width)
    }

    /// The area limit, if any.
    ///
    /// ```
    /// # use tower_iiif::limit::Limits;
    /// assert_eq!(Limits::default().area(), None);
    /// assert_eq!(Limits::default().max_area(10_000).area(), Some(10_000));
    /// ```
    pub fn area(&self) -> Option<u64> {
        self.max_area
    }

    /// Whether no limit is set.
    ///
    /// ```
    /// # use tower_iiif::limit::Limits;
    /// assert!(Limits::default().is_unlimited());
    /// assert!(!Limits::default().max_area(10_000).is_unlimited());
    /// ```
    pub fn is_unlimited(&self) -> bool {
        self.max_width.is_none() && self.max_height.is_none() && self.max_area.is_none()
    }

    /// The tighter of two sets of limits, limit by limit.
    ///
    /// ```
    /// # use tower_iiif::limit::Limits;
    /// let outer = Limits::default().max_width(1000).max_area(200_000);
    /// let inner = Limits::default().max_width(500);
    /// let both = outer.tighten(&inner);
    /// assert_eq!((both.width(), both.area()), (Some(500), Some(200_000)));
    /// ```
    pub fn tighten(&self, other: &Limits) -> Limits {
        fn min<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        Limits {
            max_width: min(self.max_width, other.max_width),
            max_height: min(self.height(), other.height()),
            max_area: min(self.max_area, other.max_area),
            max_scale_milli: min(self.max_scale_milli, other.max_scale_milli),
        }
    }

    /// Whether `width` x `height` is within every limit.
    ///
    /// ```
    /// # use tower_iiif::limit::Limits;
    /// let limits = Limits::default().max_width(100);
    /// assert!(limits.allows(100, 100));
    /// assert!(!limits.allows(101, 50));
    /// assert!(!limits.allows(50, 101)); // the height limit defaults to the width limit
    /// ```
    pub fn allows(&self, width: u32, height: u32) -> bool {
        self.width().is_none_or(|w| width <= w)
            && self.height().is_none_or(|h| height <= h)
            && self
                .max_area
                .is_none_or(|a| u64::from(width) * u64::from(height) <= a)
    }

    /// The largest size with the proportions of `width` x `height` within the limits, scaling
    /// up only when `upscale` is true (the implementation notes' algorithm: area first, floored;
    /// then width; then height).
    ///
    /// ```
    /// # use tower_iiif::limit::Limits;
    /// let limits = Limits::default().max_width(500);
    /// assert_eq!(limits.fit(1000, 600, false), (500, 300));
    /// assert_eq!(limits.fit(200, 100, false), (200, 100)); // already within
    /// assert_eq!(limits.fit(200, 100, true), (500, 250)); // scaled up to the limit
    /// ```
    pub fn fit(&self, width: u32, height: u32, upscale: bool) -> (u32, u32) {
        let (w0, h0) = (f64::from(width), f64::from(height));
        let mut scale = match (upscale, self.scale()) {
            (false, _) => 1.0,
            (true, Some(s)) => s,
            (true, None) if self.is_unlimited() => 1.0,
            (true, None) => f64::INFINITY,
        };
        if let Some(a) = self.max_area {
            scale = scale.min((a as f64 / (w0 * h0)).sqrt());
        }
        if let Some(mw) = self.width() {
            scale = scale.min(f64::from(mw) / w0);
        }
        if let Some(mh) = self.height() {
            scale = scale.min(f64::from(mh) / h0);
        }
        if scale == 1.0 {
            return (width, height);
        }
        // Floor, then clamp: never a loop, and never one pixel over a limit.
        let mut w = ((w0 * scale + 1e-9).floor().min(f64::from(u32::MAX)) as u32).max(1);
        let mut h = ((h0 * scale + 1e-9).floor().min(f64::from(u32::MAX)) as u32).max(1);
        if let Some(mw) = self.width() {
            w = w.min(mw);
        }
        if let Some(mh) = self.height() {
            h = h.min(mh);
        }
        if let Some(a) = self.max_area {
            // Only reachable when a side was raised from 0 to 1 pixel: very thin regions.
            if u64::from(w) * u64::from(h) > a {
                h = u32::try_from(a / u64::from(w)).unwrap_or(u32::MAX).max(1);
            }
            if u64::from(w) * u64::from(h) > a {
                w = u32::try_from(a / u64::from(h)).unwrap_or(u32::MAX).max(1);
            }
        }
        (w, h)
    }
}

/// What happens to a request whose result is over the [`Limits`] (`max` and `^max` are always
/// fitted within them instead).
///
/// A request extension: `PixelLimit` inserts it beside its `Limits`; without one, the service
/// answers 400 as the spec recommends.
///
/// ```
/// use tower::ServiceExt;
/// use tower_iiif::limit::{Limits, OverLimit};
/// use tower_iiif::{IiifService, samples, source::FsSource};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let dir = std::env::temp_dir()
/// #     .join(format!("tower-iiif-doc-{}-{}", "over-limit", std::process::id()));
/// # samples::write_samples(&dir).unwrap();
///
/// let svc = IiifService::new(FsSource::new(&dir).unwrap());
/// let path = format!("/{}/full/500,/0/default.jpg", samples::VALIDATOR_ID);
/// let policies = [(OverLimit::Reject, 400), (OverLimit::Forbid, 403), (OverLimit::Clamp, 200)];
/// for (policy, status) in policies {
///     let mut req = http::Request::get(&path).body(()).unwrap();
///     req.extensions_mut().insert(Limits::default().max_width(100));
///     req.extensions_mut().insert(policy);
///     assert_eq!(svc.clone().oneshot(req).await.unwrap().status(), status);
/// }
/// # let _ = std::fs::remove_dir_all(&dir);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OverLimit {
    /// 400 Bad Request (the spec's recommendation).
    #[default]
    Reject,
    /// 403 Forbidden (Cantaloupe's `max_pixels` behaviour).
    Forbid,
    /// Scale the result down until it fits, keeping its proportions, and answer 200 (so that a
    /// 2.1 `full/full` on a large image still answers).
    Clamp,
}

/// How requests are planned: the API version's rules, upscaling, limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct PlanOptions {
    version: ApiVersion,
    upscaling: bool,
    limits: Limits,
    over_limit: OverLimit,
    max_output_area: u64,
}

impl PlanOptions {
    /// Create new [`PlanOptions`]: upscaling on, no advertised limits, and a hard cap of 2^28
    /// output pixels (a 400 beyond it, whatever else is configured).
    pub fn new(version: ApiVersion) -> Self {
        Self {
            version,
            upscaling: true,
            limits: Limits::default(),
            over_limit: OverLimit::Reject,
            max_output_area: 1 << 28,
        }
    }

    /// Whether results larger than the region may be returned (`^` in 3.0, `sizeAboveFull` in
    /// 2.1).
    pub fn upscaling(mut self, on: bool) -> Self {
        self.upscaling = on;
        self
    }

    /// The advertised limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// What to do with requests over the limits.
    pub fn over_limit(mut self, policy: OverLimit) -> Self {
        self.over_limit = policy;
        self
    }

    /// The hard cap on output pixels, advertised or not: protects the server from `^pct:100000`.
    pub fn max_output_area(mut self, px: u64) -> Self {
        self.max_output_area = px.max(1);
        self
    }

    /// The API version.
    pub fn version(&self) -> ApiVersion {
        self.version
    }

    /// Whether upscaling is on.
    pub fn is_upscaling(&self) -> bool {
        self.upscaling
    }

    /// The advertised limits.
    pub fn get_limits(&self) -> &Limits {
        &self.limits
    }
}

/// What to render, fully resolved.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Plan {
    /// The region of the full image, in pixels.
    pub region: Rect,
    /// The width the region is scaled to (before rotation).
    pub width: u32,
    /// The height the region is scaled to (before rotation).
    pub height: u32,
    /// Mirroring and rotation.
    pub rotation: Rotation,
    /// Colour quality.
    pub quality: Quality,
    /// Output format.
    pub format: Format,
    /// The canonical parameters, relative to the image's base URI:
    /// `{region}/{size}/{rotation}/{quality}.{format}`.
    pub canonical: String,
}

impl Plan {
    /// How much smaller than its region a plan's output is (1.0 = full scale), less one output
    /// pixel: a level (or DCT scale) one pixel short of the exact size still serves it (an edge
    /// tile of 591 pixels at 148 wide is a quarter scale, not a little more), stretched by less
    /// than a pixel.
    pub(crate) fn scale(&self) -> f64 {
        let r = self.region;
        let axis = |out: u32, region: u32| {
            f64::from(out.saturating_sub(1).max(1)) / f64::from(region.max(1))
        };
        axis(self.width, r.w).max(axis(self.height, r.h))
    }

    /// The plan's exact geometry and encoding, unambiguous whatever the limits in force:
    /// `x,y,w,h/width,height/rotation/quality.format`. Unlike [`Plan::canonical`], whose `max`
    /// means "as large as this request's limits allow", equal strings always mean equal
    /// output; cache keys and entity tags are built from it.
    pub fn resolved(&self) -> String {
        let r = self.region;
        format!(
            "{},{},{},{}/{},{}/{}/{}.{}",
            r.x, r.y, r.w, r.h, self.width, self.height, self.rotation, self.quality, self.format
        )
    }
}

/// Plan `req` against an image of `width` x `height` pixels.
///
pub fn plan(
    req: &ImageRequest,
    width: u32,
    height: u32,
    opts: &PlanOptions,
) -> Result<Plan, Error> {
    let region = req.region.resolve(width, height)?;
    let (w, h) = resolve_size(req, region, opts).map_err(|e| e.context("size"))?;
    let (ow, oh) = rotated_size(w, h, req.rotation.degrees());
    if u64::from(ow) * u64::from(oh) > opts.max_output_area {
        return Err(Error::bad_request(format!(
            "rotation: the rotated {ow}x{oh} image is larger than this server renders"
        )));
    }
    if ow.max(oh) > req.format.max_side() {
        return Err(Error::bad_request(format!(
            "format: {} cannot hold a {ow}x{oh} image",
            req.format
        )));
    }
    let canonical_region = if region == Rect::new(0, 0, width, height) {
        "full".to_owned()
    } else {
        format!("{},{},{},{}", region.x, region.y, region.w, region.h)
    };
    let canonical_size = canonical_size(region, w, h, opts);
    let canonical = format!(
        "{}/{}/{}/{}.{}",
        canonical_region, canonical_size, req.rotation, req.quality, req.format
    );
    Ok(Plan {
        region,
        width: w,
        height: h,
        rotation: req.rotation,
        quality: req.quality,
        format: req.format,
        canonical,
    })
}

/// The size of a `width` x `height` image rotated clockwise by `degrees`: the bounding box,
/// exact for multiples of 90 (as `ops::rotate_arbitrary` computes it).
pub(crate) fn rotated_size(width: u32, height: u32, degrees: f64) -> (u32, u32) {
    if degrees % 180.0 == 0.0 {
        return (width, height);
    }
    if degrees % 90.0 == 0.0 {
        return (height, width);
    }
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (w, h) = (f64::from(width), f64::from(height));
    let bw = (w * cos.abs() + h * sin.abs()).round().max(1.0);
    let bh = (h * cos.abs() + w * sin.abs()).round().max(1.0);
    (
        bw.min(f64::from(u32::MAX)) as u32,
        bh.min(f64::from(u32::MAX)) as u32,
    )
}

/// `round(a / b)`, halves away from zero, in integers.
fn round_div(a: u64, b: u64) -> u32 {
    u32::try_from((2 * a + b) / (2 * b)).unwrap_or(u32::MAX)
}

fn resolve_size(req: &ImageRequest, region: Rect, opts: &PlanOptions) -> Result<(u32, u32), Error> {
    let (rw, rh) = (u64::from(region.w), u64::from(region.h));
    let limits = &opts.limits;
    let upscale_flag = req.size.upscale();
    let (w, h) = match req.size.kind() {
        SizeKind::Full => (region.w, region.h),
        // `max` never upscales; `^max` grows to the limits (when upscaling is on).
        SizeKind::Max => limits.fit(region.w, region.h, upscale_flag && opts.upscaling),
        SizeKind::Width(w) => (w, round_div(u64::from(w) * rh, rw)),
        SizeKind::Height(h) => (round_div(u64::from(h) * rw, rh), h),
        SizeKind::Percent(n) => {
            let scale = |d: u64| (d as f64 * n / 100.0).round().min(f64::from(u32::MAX)) as u32;
            (scale(rw), scale(rh))
        }
        SizeKind::Exact(w, h) => (w, h),
        SizeKind::BestFit(bw, bh) => {
            let (bw64, bh64) = (u64::from(bw), u64::from(bh));
            if bw64 * rh <= bh64 * rw {
                (bw, round_div(bw64 * rh, rw).min(bh))
            } else {
                (round_div(bh64 * rw, rh).min(bw), bh)
            }
        }
    };
    if w == 0 || h == 0 {
        return Err(Error::bad_request(format!(
            "{} of a {}x{} region is less than one pixel",
            req.size, region.w, region.h
        )));
    }
    let upscaled = w > region.w || h > region.h;
    if upscaled {
        match opts.version {
            ApiVersion::V3 if !upscale_flag => {
                return Err(Error::bad_request(format!(
                    "{w}x{h} is larger than the {}x{} region; use ^ to upscale",
                    region.w, region.h
                )));
            }
            ApiVersion::V3 if !opts.upscaling => {
                return Err(Error::not_implemented("upscaling is not supported"));
            }
            ApiVersion::V2 if !opts.upscaling => {
                return Err(Error::bad_request(format!(
                    "{w}x{h} is larger than the {}x{} region",
                    region.w, region.h
                )));
            }
            _ => {}
        }
    }
    let over = |what: String| match opts.over_limit {
        OverLimit::Forbid => Error::new(ErrorKind::Forbidden, what),
        _ => Error::bad_request(what),
    };
    let (mut w, mut h) = (w, h);
    if let Some(scale) = limits.scale() {
        let (sw, sh) = (rw as f64 * scale, rh as f64 * scale);
        if f64::from(w) > sw + 1e-9 || f64::from(h) > sh + 1e-9 {
            if opts.over_limit != OverLimit::Clamp {
                return Err(over(format!(
                    "{w}x{h} scales the {}x{} region by more than {scale}",
                    region.w, region.h
                )));
            }
            let box_limits = Limits::default()
                .max_width((sw.floor() as u32).max(1))
                .max_height((sh.floor() as u32).max(1));
            (w, h) = box_limits.fit(w, h, false);
        }
    }
    if !limits.allows(w, h) {
        if opts.over_limit != OverLimit::Clamp {
            return Err(over(format!(
                "{w}x{h} is over the size limits of this image"
            )));
        }
        (w, h) = limits.fit(w, h, false);
    }
    if u64::from(w) * u64::from(h) > opts.max_output_area {
        return Err(Error::bad_request(format!(
            "{w}x{h} is larger than this server renders"
        )));
    }
    Ok((w, h))
}

fn canonical_size(region: Rect, w: u32, h: u32, opts: &PlanOptions) -> String {
    match opts.version {
        ApiVersion::V3 => {
            let upscaled = w > region.w || h > region.h;
            if !upscaled && (w, h) == opts.limits.fit(region.w, region.h, false) {
                "max".to_owned()
            } else if upscaled && (w, h) == opts.limits.fit(region.w, region.h, true) {
                "^max".to_owned()
            } else if upscaled {
                format!("^{w},{h}")
            } else {
                format!("{w},{h}")
            }
        }
        ApiVersion::V2 => {
            if (w, h) == (region.w, region.h) {
                "full".to_owned()
            } else if h == round_div(u64::from(w) * u64::from(region.h), u64::from(region.w)) {
                format!("{w},")
            } else {
                format!("{w},{h}")
            }
        }
    }
}

#[cfg(test)]
mod tests;

/// The examples that stood in the doc comments of these crate-private items.
#[cfg(test)]
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    #[test]
    fn doc_plan_9() {
        use crate::pixels::Rect;
        use crate::plan::{Limits, PlanOptions, plan};
        use crate::request::{ApiVersion, IdentifierOptions, IiifRequest};

        let opts = PlanOptions::new(ApiVersion::V3);
        let parse =
            |p: &str| match IiifRequest::parse(p, ApiVersion::V3, &IdentifierOptions::default()) {
                Ok(IiifRequest::Image(r)) => r,
                other => panic!("{other:?}"),
            };
        let p = plan(&parse("/a/full/500,/0/default.jpg"), 1000, 750, &opts).unwrap();
        assert_eq!(p.region, Rect::new(0, 0, 1000, 750));
        assert_eq!((p.width, p.height), (500, 375));
        assert_eq!(p.canonical, "full/500,375/0/default.jpg");

        // Larger than the region without ^ is a 400 in 3.0.
        assert_eq!(
            plan(&parse("/a/full/2000,/0/default.jpg"), 1000, 750, &opts)
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn doc_limits_37() {
        use crate::plan::Limits;
        let a = Limits::default().max_width(1000);
        let b = Limits::default().max_width(500).max_area(100_000);
        let both = a.tighten(&b);
        assert_eq!(
            (both.width(), both.height(), both.area()),
            (Some(500), Some(500), Some(100_000))
        );
    }

    #[test]
    fn doc_limits_max_scale_59() {
        assert_eq!(
            crate::plan::Limits::default().max_scale(1.5).scale(),
            Some(1.5)
        );
    }

    #[test]
    fn doc_limits_width_94() {
        assert_eq!(crate::plan::Limits::default().width(), None);
    }

    #[test]
    fn doc_limits_height_103() {
        assert_eq!(
            crate::plan::Limits::default().max_width(9).height(),
            Some(9)
        );
    }

    #[test]
    fn doc_limits_area_112() {
        assert_eq!(crate::plan::Limits::default().max_area(9).area(), Some(9));
    }

    #[test]
    fn doc_limits_is_unlimited_121() {
        assert!(crate::plan::Limits::default().is_unlimited());
    }

    #[test]
    fn doc_limits_allows_146() {
        let l = crate::plan::Limits::default().max_area(100);
        assert!(l.allows(10, 10));
        assert!(!l.allows(10, 11));
    }

    #[test]
    fn doc_limits_fit_163() {
        use crate::plan::Limits;
        let l = Limits::default().max_width(500);
        assert_eq!(l.fit(1000, 750, false), (500, 375));
        assert_eq!(l.fit(100, 75, true), (500, 375));
        assert_eq!(l.fit(100, 75, false), (100, 75));
        assert_eq!(Limits::default().fit(100, 75, true), (100, 75));
    }

    #[test]
    fn doc_planoptions_233() {
        use crate::plan::{Limits, PlanOptions};
        use crate::request::ApiVersion;
        let o = PlanOptions::new(ApiVersion::V2)
            .upscaling(false)
            .limits(Limits::default().max_area(1 << 20));
        assert_eq!(o.version(), ApiVersion::V2);
    }

    #[test]
    fn doc_plan_resolved_330() {
        use crate::plan::{Limits, PlanOptions, plan};
        use crate::request::{ApiVersion, IdentifierOptions, IiifRequest};
        let Ok(IiifRequest::Image(req)) = IiifRequest::parse(
            "/a/full/max/0/default.jpg",
            ApiVersion::V3,
            &IdentifierOptions::default(),
        ) else {
            unreachable!()
        };
        let full = plan(&req, 2000, 1000, &PlanOptions::new(ApiVersion::V3)).unwrap();
        let limited = PlanOptions::new(ApiVersion::V3).limits(Limits::default().max_width(1000));
        let small = plan(&req, 2000, 1000, &limited).unwrap();
        assert_eq!(full.canonical, small.canonical); // both "full/max/0/default.jpg"
        assert_ne!(full.resolved(), small.resolved());
    }

    #[test]
    fn doc_rotated_size_398() {
        assert_eq!(crate::plan::rotated_size(100, 50, 90.0), (50, 100));
        assert_eq!(crate::plan::rotated_size(100, 100, 45.0), (141, 141));
    }
}
