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
    pub fn max_scale(mut self, scale: f64) -> Self {
        let milli = (scale.clamp(0.001, 1_000_000.0) * 1000.0).round() as u32;
        self.max_scale_milli = Some(milli.max(1));
        self
    }

    /// The scale limit, if any.
    pub fn scale(&self) -> Option<f64> {
        self.max_scale_milli.map(|m| f64::from(m) / 1000.0)
    }

    /// The widest image returned.
    pub fn max_width(mut self, px: u32) -> Self {
        self.max_width = Some(px.max(1));
        self
    }

    /// The tallest image returned. Without it, `max_width` applies to the height too, as the
    /// spec says.
    pub fn max_height(mut self, px: u32) -> Self {
        self.max_height = Some(px.max(1));
        self
    }

    /// The most pixels (width x height) returned.
    pub fn max_area(mut self, px: u64) -> Self {
        self.max_area = Some(px.max(1));
        self
    }

    /// The width limit, if any.
    pub fn width(&self) -> Option<u32> {
        self.max_width
    }

    /// The height limit, if any (defaults to the width limit).
    pub fn height(&self) -> Option<u32> {
        self.max_height.or(self.max_width)
    }

    /// The area limit, if any.
    pub fn area(&self) -> Option<u64> {
        self.max_area
    }

    /// Whether no limit is set.
    pub fn is_unlimited(&self) -> bool {
        self.max_width.is_none() && self.max_height.is_none() && self.max_area.is_none()
    }

    /// The tighter of two sets of limits, limit by limit.
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
mod tests {
    use super::*;
    use crate::request::{IdentifierOptions, IiifRequest};
    use ApiVersion::{V2, V3};

    fn image(path: &str, v: ApiVersion) -> ImageRequest {
        match IiifRequest::parse(path, v, &IdentifierOptions::default()) {
            Ok(IiifRequest::Image(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    /// (region/size, version, image w, h, expected output w, h or status)
    type Row = (
        &'static str,
        ApiVersion,
        (u32, u32),
        Result<(u32, u32), u16>,
    );

    fn check(rows: &[Row], opts_for: impl Fn(ApiVersion) -> PlanOptions) {
        for (rs, v, (iw, ih), want) in rows {
            let req = image(&format!("/id/{rs}/0/default.jpg"), *v);
            let got = plan(&req, *iw, *ih, &opts_for(*v))
                .map(|p| (p.width, p.height))
                .map_err(|e| e.status().as_u16());
            assert_eq!(got, *want, "{rs} {v} on {iw}x{ih}");
        }
    }

    #[test]
    fn sizes_without_limits() {
        let rows: &[Row] = &[
            ("full/max", V3, (1000, 750), Ok((1000, 750))),
            ("full/^max", V3, (1000, 750), Ok((1000, 750))),
            ("full/full", V2, (1000, 750), Ok((1000, 750))),
            ("full/max", V2, (1000, 750), Ok((1000, 750))),
            ("full/500,", V3, (1000, 750), Ok((500, 375))),
            ("full/,375", V3, (1000, 750), Ok((500, 375))),
            ("full/333,", V3, (1000, 1000), Ok((333, 333))),
            ("full/1,", V3, (1000, 10), Err(400)),
            ("full/pct:50", V3, (1000, 750), Ok((500, 375))),
            ("full/pct:45", V3, (1000, 1000), Ok((450, 450))),
            ("full/pct:0.01", V3, (1000, 750), Err(400)),
            ("full/pct:101", V3, (1000, 750), Err(400)),
            ("full/^pct:200", V3, (1000, 1000), Ok((2000, 2000))),
            ("full/pct:200", V2, (1000, 1000), Ok((2000, 2000))),
            ("full/300,200", V3, (1000, 750), Ok((300, 200))),
            ("full/1001,200", V3, (1000, 750), Err(400)),
            ("full/^1001,200", V3, (1000, 750), Ok((1001, 200))),
            ("full/!500,500", V3, (1000, 750), Ok((500, 375))),
            ("full/!500,300", V3, (1000, 750), Ok((400, 300))),
            ("full/!2000,3000", V3, (1000, 1000), Err(400)),
            ("full/^!2000,3000", V3, (1000, 1000), Ok((2000, 2000))),
            ("full/^!2000,500", V3, (1000, 1000), Ok((500, 500))),
            ("full/^!360,360", V3, (300, 200), Ok((360, 240))),
            ("full/1100,", V3, (1000, 1000), Err(400)),
            ("full/,1100", V3, (1000, 1000), Err(400)),
            ("full/^1100,", V3, (1000, 1000), Ok((1100, 1100))),
            ("full/,1100", V2, (1000, 1000), Ok((1100, 1100))),
            ("100,200,100,100/37,37", V3, (1000, 1000), Ok((37, 37))),
            ("100,200,100,100/37,37", V2, (1000, 1000), Ok((37, 37))),
            ("pct:41,61,9,9/max", V3, (1000, 1000), Ok((90, 90))),
            ("square/max", V3, (300, 200), Ok((200, 200))),
            ("full/^pct:1000000", V3, (1000, 1000), Err(400)),
            ("full/^1000000,", V3, (1000, 1000), Err(400)),
        ];
        check(rows, PlanOptions::new);
    }

    #[test]
    fn sizes_with_limits() {
        let limits = Limits::default().max_width(800).max_height(600);
        let rows: &[Row] = &[
            ("full/max", V3, (1000, 1000), Ok((600, 600))),
            ("full/max", V3, (1600, 900), Ok((800, 450))),
            ("full/^max", V3, (100, 100), Ok((600, 600))),
            ("full/max", V3, (100, 100), Ok((100, 100))),
            ("full/max", V2, (1000, 500), Ok((800, 400))),
            ("full/full", V2, (1000, 500), Err(400)),
            ("full/900,", V3, (1000, 1000), Err(400)),
            ("full/700,", V3, (1000, 1000), Err(400)),
            ("full/600,", V3, (1000, 1000), Ok((600, 600))),
        ];
        check(rows, |v| PlanOptions::new(v).limits(limits));
        let canon = plan(
            &image("/a/full/^max/0/default.jpg", V3),
            100,
            100,
            &PlanOptions::new(V3).limits(limits),
        )
        .unwrap();
        assert_eq!(canon.canonical, "full/^max/0/default.jpg");
        let area = Limits::default().max_area(250_000);
        check(
            &[
                ("full/max", V3, (1000, 1000), Ok((500, 500))),
                ("full/^max", V3, (10, 40), Ok((250, 1000))),
            ],
            |v| PlanOptions::new(v).limits(area),
        );
    }

    #[test]
    fn fit_never_loops_and_stays_within_limits() {
        let rows: &[(Limits, (u32, u32), bool)] = &[
            (Limits::default().max_area(10_000), (2, 25_000), false),
            (Limits::default().max_area(10_000), (2, 25_000), true),
            (Limits::default().max_area(250_000), (1, 300_000), false),
            (Limits::default().max_area(7), (20_000, 1), false),
            (Limits::default().max_width(1), (5, 100_000), false),
            (Limits::default().max_area(1), (3, 3), true),
        ];
        for (limits, (w, h), up) in rows {
            let (fw, fh) = limits.fit(*w, *h, *up);
            assert!(fw >= 1 && fh >= 1, "{limits:?} {w}x{h}");
            assert!(limits.allows(fw, fh), "{limits:?} {w}x{h} -> {fw}x{fh}");
        }
    }

    #[test]
    fn rotated_and_encoder_limits_are_client_errors() {
        let opts = PlanOptions::new(V3).max_output_area(1_000_000);
        // 1000x1000 fits, but rotated by 45 degrees its box is 1414x1414.
        let ok = image("/a/full/max/0/default.jpg", V3);
        assert!(plan(&ok, 1000, 1000, &opts).is_ok());
        let rotated = image("/a/full/max/45/default.jpg", V3);
        assert_eq!(plan(&rotated, 1000, 1000, &opts).unwrap_err().status(), 400);
        let wide = image("/a/full/max/0/default.jpg", V3);
        assert_eq!(
            plan(&wide, 70_000, 2, &PlanOptions::new(V3))
                .unwrap_err()
                .status(),
            400
        );
        let png = image("/a/full/max/0/default.png", V3);
        assert!(plan(&png, 70_000, 2, &PlanOptions::new(V3)).is_ok());
    }

    #[test]
    fn over_limit_policies_and_max_scale() {
        let limits = Limits::default().max_area(250_000);
        let forbid = |v| {
            PlanOptions::new(v)
                .limits(limits)
                .over_limit(OverLimit::Forbid)
        };
        let clamp = |v| {
            PlanOptions::new(v)
                .limits(limits)
                .over_limit(OverLimit::Clamp)
        };
        check(
            &[
                ("full/full", V2, (1000, 1000), Err(403)),
                ("full/600,", V3, (1000, 1000), Err(403)),
            ],
            forbid,
        );
        // max is fitted, never refused.
        check(&[("full/max", V3, (1000, 1000), Ok((500, 500)))], forbid);
        check(
            &[
                ("full/full", V2, (1000, 1000), Ok((500, 500))),
                ("full/1000,500", V3, (1000, 1000), Ok((707, 353))),
                ("full/400,", V3, (1000, 1000), Ok((400, 400))),
            ],
            clamp,
        );
        let scaled = Limits::default().max_scale(1.5);
        check(
            &[
                ("full/^1500,", V3, (1000, 1000), Ok((1500, 1500))),
                ("full/^1600,", V3, (1000, 1000), Err(400)),
                ("full/^max", V3, (1000, 1000), Ok((1500, 1500))),
                ("full/,1600", V2, (1000, 1000), Err(400)),
            ],
            |v| PlanOptions::new(v).limits(scaled),
        );
        check(
            &[("full/^3000,", V3, (1000, 1000), Ok((1500, 1500)))],
            |v| {
                PlanOptions::new(v)
                    .limits(scaled)
                    .over_limit(OverLimit::Clamp)
            },
        );
    }

    #[test]
    fn upscaling_off() {
        let rows: &[Row] = &[
            ("full/^1100,", V3, (1000, 1000), Err(501)),
            ("full/^pct:120", V3, (1000, 1000), Err(501)),
            ("full/^500,", V3, (1000, 1000), Ok((500, 500))),
            ("full/^max", V3, (1000, 1000), Ok((1000, 1000))),
            ("full/1100,", V2, (1000, 1000), Err(400)),
        ];
        check(rows, |v| PlanOptions::new(v).upscaling(false));
    }

    #[test]
    fn canonical_forms() {
        let rows: &[(&str, ApiVersion, &str)] = &[
            ("/a/full/max/0/default.jpg", V3, "full/max/0/default.jpg"),
            (
                "/a/0,0,1000,750/500,/!0/gray.png",
                V3,
                "full/500,375/!0/gray.png",
            ),
            (
                "/a/square/max/90/default.jpg",
                V3,
                "125,0,750,750/max/90/default.jpg",
            ),
            (
                "/a/full/^pct:200/0/default.jpg",
                V3,
                "full/^2000,1500/0/default.jpg",
            ),
            ("/a/full/max/0/default.jpg", V2, "full/full/0/default.jpg"),
            ("/a/full/^max/0/default.jpg", V3, "full/max/0/default.jpg"),
            (
                "/a/full/pct:50/0/default.jpg",
                V2,
                "full/500,/0/default.jpg",
            ),
            (
                "/a/full/500,100/0/default.jpg",
                V2,
                "full/500,100/0/default.jpg",
            ),
            (
                "/a/pct:0,0,50,50/,100/22.50/bitonal.tif",
                V2,
                "0,0,500,375/133,/22.5/bitonal.tif",
            ),
        ];
        for (path, v, want) in rows {
            let p = plan(&image(path, *v), 1000, 750, &PlanOptions::new(*v)).unwrap();
            assert_eq!(p.canonical, *want, "{path} {v}");
        }
    }

    #[test]
    fn validator_tile_edges() {
        // The last tile of a 1000-wide image at scale factor 2 with 512 tiles.
        let req = image("/a/0,0,1000,1000/500,500/0/default.jpg", V3);
        let p = plan(&req, 1000, 1000, &PlanOptions::new(V3)).unwrap();
        assert_eq!((p.width, p.height), (500, 500));
        let req = image("/a/512,512,488,488/244,244/0/default.jpg", V3);
        let p = plan(&req, 1000, 1000, &PlanOptions::new(V3)).unwrap();
        assert_eq!((p.width, p.height), (244, 244));
    }
}

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
