//! Image information: the info.json document of both API versions.

use serde_json::{Map, Value, json};

use crate::plan::Limits;
use crate::request::{ApiVersion, Format, Quality};

/// What the service knows of one image: its dimensions (after orientation), colour, and the
/// resolutions and tiles the source stores.
///
/// ```
/// use tower_iiif::ImageInfo;
///
/// let info = ImageInfo::new(4000, 3000).with_tile(256, 256);
/// assert_eq!((info.width, info.height, info.gray), (4000, 3000, false));
/// assert_eq!(info.tile_size(512), (512, 512)); // stored tiles, doubled
/// assert_eq!(info.scale_factors(512), vec![1, 2, 4, 8]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ImageInfo {
    /// Width of the full image, in pixels.
    pub width: u32,
    /// Height of the full image, in pixels.
    pub height: u32,
    /// Whether the image has no colour (then `color` is not advertised).
    pub gray: bool,
    /// The reduced resolutions the source stores (pyramid levels, JPEG 2000 resolution
    /// levels), in any order; advertised in `sizes` in place of the computed halvings they
    /// are closest to. Empty for a flat image.
    pub levels: Vec<(u32, u32)>,
    /// The size of the tiles the source is stored in, when it is tiled.
    pub tile: Option<(u32, u32)>,
}

impl ImageInfo {
    /// Create a new [`ImageInfo`] for a flat colour image.
    ///
    /// ```
    /// use tower_iiif::ImageInfo;
    ///
    /// let info = ImageInfo::new(3, 2);
    /// assert_eq!((info.width, info.height, info.gray, info.tile), (3, 2, false, None));
    /// assert!(info.levels.is_empty());
    /// ```
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            gray: false,
            levels: Vec::new(),
            tile: None,
        }
    }

    /// The same, marked as a grayscale image.
    ///
    /// ```
    /// assert!(tower_iiif::ImageInfo::new(3, 2).with_gray(true).gray);
    /// ```
    #[must_use]
    pub fn with_gray(mut self, gray: bool) -> Self {
        self.gray = gray;
        self
    }

    /// The same, with the reduced resolutions the source stores.
    ///
    /// ```
    /// use tower_iiif::{ImageInfo, limit::Limits};
    ///
    /// // A pyramid whose levels round down where plain halving rounds up.
    /// let info = ImageInfo::new(1001, 501).with_levels(vec![(500, 250), (250, 125)]);
    /// let sizes = info.sizes(&Limits::default());
    /// assert_eq!(sizes, vec![(126, 63), (250, 125), (500, 250), (1001, 501)]);
    /// ```
    #[must_use]
    pub fn with_levels(mut self, levels: Vec<(u32, u32)>) -> Self {
        self.levels = levels;
        self
    }

    /// The same, with the source's tile size.
    ///
    /// ```
    /// use tower_iiif::ImageInfo;
    ///
    /// assert_eq!(ImageInfo::new(4000, 3000).with_tile(256, 256).tile, Some((256, 256)));
    /// assert_eq!(ImageInfo::new(4000, 3000).with_tile(0, 256).tile, None);
    /// ```
    #[must_use]
    pub fn with_tile(mut self, width: u32, height: u32) -> Self {
        self.tile = (width > 0 && height > 0).then_some((width, height));
        self
    }

    /// The preferred sizes, smallest first, each within the limits: the full image halved
    /// again and again (rounding up) until the long side is under 64 pixels, as Cantaloupe
    /// lists them, where a stored level that is within a pixel of a halving replaces it, and
    /// the other stored levels at least 64 pixels long added.
    ///
    /// ```
    /// use tower_iiif::{ImageInfo, limit::Limits};
    ///
    /// let info = ImageInfo::new(1000, 500);
    /// let sizes = info.sizes(&Limits::default());
    /// assert_eq!(sizes, vec![(125, 63), (250, 125), (500, 250), (1000, 500)]);
    /// assert_eq!(info.sizes(&Limits::default().max_width(300)), vec![(125, 63), (250, 125)]);
    /// ```
    pub fn sizes(&self, limits: &Limits) -> Vec<(u32, u32)> {
        let mut sizes = Vec::new();
        for k in 0..32 {
            let (w, h) = (self.width.div_ceil(1 << k), self.height.div_ceil(1 << k));
            if k > 0 && w.max(h) < 64 {
                break;
            }
            let stored = self
                .levels
                .iter()
                .find(|&&(lw, lh)| lw.abs_diff(w) <= 1 && lh.abs_diff(h) <= 1);
            sizes.push(stored.copied().unwrap_or((w, h)));
            if w == 1 && h == 1 {
                break;
            }
        }
        for &(w, h) in &self.levels {
            let inside = w > 0 && h > 0 && w <= self.width && h <= self.height;
            if inside && w.max(h) >= 64 && !sizes.contains(&(w, h)) {
                sizes.push((w, h));
            }
        }
        sizes.retain(|&(w, h)| limits.allows(w, h));
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    }

    /// The advertised tile size for a wanted minimum side `min_side`: the stored tile size
    /// doubled until both sides reach `min_side` (Cantaloupe's policy, so that a tile request
    /// maps onto whole stored tiles), or `min_side` square for an untiled image.
    ///
    /// ```
    /// use tower_iiif::ImageInfo;
    ///
    /// let info = ImageInfo::new(4000, 3000);
    /// assert_eq!(info.tile_size(512), (512, 512)); // untiled
    /// assert_eq!(info.clone().with_tile(1024, 1024).tile_size(512), (1024, 1024));
    /// assert_eq!(info.with_tile(128, 64).tile_size(512), (1024, 512));
    /// ```
    pub fn tile_size(&self, min_side: u32) -> (u32, u32) {
        let min_side = min_side.max(1);
        match self.tile {
            // A "tile" as large as the image is no tiling at all.
            Some((tw, th)) if tw < self.width || th < self.height => {
                let (mut w, mut h) = (tw, th);
                while (w < min_side || h < min_side) && w.max(h) < 1 << 20 {
                    (w, h) = (w * 2, h * 2);
                }
                (w, h)
            }
            _ => (min_side, min_side),
        }
    }

    /// The scale factors for tiles of side `tile`: powers of two until one tile covers the image.
    ///
    /// ```
    /// use tower_iiif::ImageInfo;
    ///
    /// let info = ImageInfo::new(1000, 1000);
    /// assert_eq!(info.scale_factors(512), vec![1, 2]);
    /// assert_eq!(info.scale_factors(256), vec![1, 2, 4]);
    /// ```
    pub fn scale_factors(&self, tile: u32) -> Vec<u32> {
        self.scale_factors_for(tile, tile)
    }

    /// The scale factors for tiles of `width` x `height`.
    fn scale_factors_for(&self, width: u32, height: u32) -> Vec<u32> {
        let covers = |sf: u32| {
            u64::from(width) * u64::from(sf) >= u64::from(self.width)
                && u64::from(height) * u64::from(sf) >= u64::from(self.height)
        };
        let mut factors = vec![1u32];
        let mut sf = 1u32;
        while !covers(sf) && sf < 1 << 30 {
            sf *= 2;
            factors.push(sf);
        }
        factors
    }

    /// The info.json document, with `id` (3.0) or `@id` (2.1) set to `id`.
    ///
    pub(crate) fn to_json(&self, id: &str, opts: &InfoOptions) -> Value {
        let limits = &opts.limits;
        let (mut tw, mut th) = self.tile_size(opts.tile_size);
        if let Some(w) = limits.width() {
            tw = tw.min(w);
        }
        if let Some(h) = limits.height() {
            th = th.min(h);
        }
        if let Some(a) = limits.area()
            && u64::from(tw) * u64::from(th) > a
        {
            let side = u32::try_from(a.isqrt()).unwrap_or(u32::MAX);
            (tw, th) = (tw.min(side), th.min(side));
        }
        let (tw, th) = (tw.max(1), th.max(1));
        let sizes: Vec<Value> = self
            .sizes(limits)
            .into_iter()
            .map(|(w, h)| json!({"width": w, "height": h}))
            .collect();
        let tiles =
            json!([{"width": tw, "height": th, "scaleFactors": self.scale_factors_for(tw, th)}]);
        let formats: Vec<&str> = opts
            .formats
            .iter()
            .filter(|f| !matches!(f, Format::Jpg | Format::Png))
            .map(|f| f.extension())
            .collect();
        let qualities: Vec<&str> = opts
            .qualities
            .iter()
            .filter(|q| **q != Quality::Default && !(self.gray && **q == Quality::Color))
            .map(|q| q.as_str())
            .collect();

        let mut doc = Map::new();
        match opts.version {
            ApiVersion::V3 => {
                doc.insert("@context".into(), opts.version.context().into());
                doc.insert("id".into(), id.into());
                doc.insert("type".into(), "ImageService3".into());
                doc.insert("protocol".into(), "http://iiif.io/api/image".into());
                doc.insert("profile".into(), "level2".into());
                doc.insert("width".into(), self.width.into());
                doc.insert("height".into(), self.height.into());
                insert_limits(&mut doc, limits);
                doc.insert("sizes".into(), sizes.into());
                doc.insert("tiles".into(), tiles);
                if !formats.is_empty() {
                    doc.insert("extraFormats".into(), formats.into());
                }
                if !qualities.is_empty() {
                    doc.insert("extraQualities".into(), qualities.into());
                }
                let mut features = vec![
                    "canonicalLinkHeader",
                    "mirroring",
                    "profileLinkHeader",
                    "rotationArbitrary",
                ];
                if opts.upscaling {
                    features.push("sizeUpscaling");
                }
                doc.insert("extraFeatures".into(), features.into());
                if !opts.preferred_formats.is_empty() {
                    let pf: Vec<&str> = opts
                        .preferred_formats
                        .iter()
                        .map(|f| f.extension())
                        .collect();
                    doc.insert("preferredFormats".into(), pf.into());
                }
                if let Some(rights) = &opts.rights {
                    doc.insert("rights".into(), rights.as_str().into());
                }
            }
            ApiVersion::V2 => {
                doc.insert("@context".into(), opts.version.context().into());
                doc.insert("@id".into(), id.into());
                doc.insert("protocol".into(), "http://iiif.io/api/image".into());
                doc.insert("width".into(), self.width.into());
                doc.insert("height".into(), self.height.into());
                let mut extra = Map::new();
                if !formats.is_empty() {
                    extra.insert("formats".into(), formats.into());
                }
                // bitonal is part of level 2 in 2.1.
                let q2: Vec<&str> = qualities.into_iter().filter(|q| *q != "bitonal").collect();
                if !q2.is_empty() {
                    extra.insert("qualities".into(), q2.into());
                }
                let mut supports = vec![
                    "canonicalLinkHeader",
                    "mirroring",
                    "profileLinkHeader",
                    "regionSquare",
                    "rotationArbitrary",
                ];
                if opts.upscaling {
                    supports.push("sizeAboveFull");
                }
                extra.insert("supports".into(), supports.into());
                insert_limits(&mut extra, limits);
                doc.insert(
                    "profile".into(),
                    json!([opts.version.profile_uri(), Value::Object(extra)]),
                );
                doc.insert("sizes".into(), sizes.into());
                doc.insert("tiles".into(), tiles);
                if let Some(rights) = &opts.rights {
                    doc.insert("license".into(), rights.as_str().into());
                }
            }
        }
        for (k, v) in &opts.extra {
            doc.insert(k.clone(), v.clone());
        }
        Value::Object(doc)
    }
}

fn insert_limits(doc: &mut Map<String, Value>, limits: &Limits) {
    if let Some(w) = limits.width() {
        doc.insert("maxWidth".into(), w.into());
        if let Some(h) = limits.height() {
            doc.insert("maxHeight".into(), h.into());
        }
    }
    if let Some(a) = limits.area() {
        doc.insert("maxArea".into(), a.into());
    }
}

/// What the service advertises in every info.json.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[must_use]
pub(crate) struct InfoOptions {
    /// The API version of the document.
    pub version: ApiVersion,
    /// The smallest side of the advertised tiles: the side of the square tiles of an untiled
    /// image; a tiled source's tiles are doubled until they reach it.
    pub tile_size: u32,
    /// Output formats served.
    pub formats: Vec<Format>,
    /// Qualities served.
    pub qualities: Vec<Quality>,
    /// Whether upscaling is advertised.
    pub upscaling: bool,
    /// Advertised limits.
    pub limits: Limits,
    /// `rights` (3.0) / `license` (2.1).
    pub rights: Option<String>,
    /// `preferredFormats` (3.0).
    pub preferred_formats: Vec<Format>,
    /// Further top-level keys, added last (e.g. `service`, `partOf`, `seeAlso`).
    pub extra: Map<String, Value>,
}

impl InfoOptions {
    /// Create new [`InfoOptions`]: 512-pixel tiles, every format and quality, upscaling on.
    pub(crate) fn new(version: ApiVersion) -> Self {
        Self {
            version,
            tile_size: 512,
            formats: Format::ALL.to_vec(),
            qualities: Quality::ALL.to_vec(),
            upscaling: true,
            limits: Limits::default(),
            rights: None,
            preferred_formats: Vec::new(),
            extra: Map::new(),
        }
    }

    /// Side of the advertised tiles.
    pub(crate) fn tile_size(mut self, px: u32) -> Self {
        self.tile_size = px.max(1);
        self
    }

    /// The `rights` URI.
    pub(crate) fn rights(mut self, uri: impl Into<String>) -> Self {
        self.rights = Some(uri.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_document_has_the_required_keys_in_order() {
        let doc =
            ImageInfo::new(1000, 1000).to_json("http://x/a", &InfoOptions::new(ApiVersion::V3));
        let keys: Vec<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            &keys[..7],
            [
                "@context", "id", "type", "protocol", "profile", "width", "height"
            ]
        );
        assert_eq!(doc["@context"], "http://iiif.io/api/image/3/context.json");
        assert_eq!(doc["extraFormats"], json!(["gif", "tif", "webp"]));
        assert_eq!(doc["extraQualities"], json!(["color", "gray", "bitonal"]));
        assert!(
            doc["extraFeatures"]
                .as_array()
                .unwrap()
                .contains(&json!("sizeUpscaling"))
        );
        assert!(doc.get("maxWidth").is_none());
        for k in ["license", "attribution", "logo", "@id", "@type"] {
            assert!(doc.get(k).is_none(), "{k}");
        }
    }

    #[test]
    fn gray_images_do_not_advertise_color() {
        let doc = ImageInfo::new(10, 10)
            .with_gray(true)
            .to_json("http://x/a", &InfoOptions::new(ApiVersion::V3));
        assert_eq!(doc["extraQualities"], json!(["gray", "bitonal"]));
    }

    #[test]
    fn limits_are_advertised_and_sizes_kept_within() {
        let mut opts = InfoOptions::new(ApiVersion::V3);
        opts.limits = Limits::default().max_width(300);
        let doc = ImageInfo::new(1000, 500).to_json("http://x/a", &opts);
        assert_eq!(doc["maxWidth"], 300);
        assert_eq!(doc["maxHeight"], 300);
        assert_eq!(
            doc["sizes"],
            json!([{"width": 125, "height": 63}, {"width": 250, "height": 125}])
        );
        assert_eq!(doc["tiles"][0]["width"], 300);
    }

    #[test]
    fn tiles_fit_the_area_limit() {
        let mut opts = InfoOptions::new(ApiVersion::V3);
        opts.limits = Limits::default().max_area(100_000);
        let doc = ImageInfo::new(1000, 1000).to_json("http://x/a", &opts);
        assert_eq!(doc["tiles"][0]["width"], 316);
    }

    #[test]
    fn v2_document() {
        let doc =
            ImageInfo::new(1000, 1000).to_json("http://x/a", &InfoOptions::new(ApiVersion::V2));
        assert_eq!(doc["@context"], "http://iiif.io/api/image/2/context.json");
        assert_eq!(doc["profile"][0], "http://iiif.io/api/image/2/level2.json");
        assert_eq!(doc["profile"][1]["formats"], json!(["gif", "tif", "webp"]));
        assert_eq!(doc["profile"][1]["qualities"], json!(["color", "gray"]));
        assert!(
            doc["profile"][1]["supports"]
                .as_array()
                .unwrap()
                .contains(&json!("sizeAboveFull"))
        );
        assert!(doc.get("id").is_none() && doc.get("type").is_none());
    }

    #[test]
    fn tiny_and_huge_images() {
        assert_eq!(ImageInfo::new(1, 1).sizes(&Limits::default()), vec![(1, 1)]);
        assert_eq!(ImageInfo::new(1, 1).scale_factors(512), vec![1]);
        let huge = ImageInfo::new(100_000, 3);
        assert_eq!(huge.scale_factors(512).last(), Some(&256));
        assert_eq!(huge.sizes(&Limits::default()).first(), Some(&(98, 1)));
    }
}

/// Services to add to an info.json's `service` list, and the IIIF Authorization Flow 2.0 probe
/// service with its access services.
///
/// A request extension inserted by the `Authorize` middleware (or the host app); read by
/// `IiifService`, which writes the probe service's `id` as `{image id}/probe` and, in 3.0, puts
/// the Auth 2 context before the image context in `@context`.
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use]
pub(crate) struct InfoServices {
    probe_access: Option<Vec<Value>>,
    others: Vec<Value>,
}

impl InfoServices {
    /// Create new, empty [`InfoServices`].
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Add the Auth 2.0 probe service, with these access services (each with its token and
    /// logout services, as the app describes them).
    pub(crate) fn auth2_probe(mut self, access_services: Vec<Value>) -> Self {
        self.probe_access = Some(access_services);
        self
    }

    /// Add any other service description (e.g. Auth 1.0 cookie services).
    pub(crate) fn service(mut self, service: Value) -> Self {
        self.others.push(service);
        self
    }

    /// Whether a probe service is declared.
    pub(crate) fn has_probe(&self) -> bool {
        self.probe_access.is_some()
    }

    /// Add the services to an info.json document whose id is `image_id`.
    pub(crate) fn apply(&self, doc: &mut Value, image_id: &str, version: ApiVersion) {
        let Some(obj) = doc.as_object_mut() else {
            return;
        };
        let mut list: Vec<Value> = match obj.remove("service") {
            Some(Value::Array(a)) => a,
            Some(other) => vec![other],
            None => Vec::new(),
        };
        if let Some(access) = &self.probe_access {
            list.push(json!({
                "id": format!("{image_id}/probe"),
                "type": "AuthProbeService2",
                "service": access,
            }));
            if version == ApiVersion::V3 {
                obj.insert(
                    "@context".into(),
                    json!(["http://iiif.io/api/auth/2/context.json", version.context()]),
                );
            }
        }
        list.extend(self.others.iter().cloned());
        if !list.is_empty() {
            obj.insert("service".into(), Value::Array(list));
        }
    }
}

/// The examples that stood in the doc comments of these crate-private items.
#[cfg(test)]
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    #[test]
    fn doc_info_5() {
        use crate::info::{ImageInfo, InfoOptions};
        use crate::request::ApiVersion;

        let info = ImageInfo::new(1000, 800);
        let doc = info.to_json(
            "https://example.org/iiif/3/abc",
            &InfoOptions::new(ApiVersion::V3),
        );
        assert_eq!(doc["id"], "https://example.org/iiif/3/abc");
        assert_eq!(doc["type"], "ImageService3");
        assert_eq!(doc["profile"], "level2");
        assert_eq!(doc["tiles"][0]["scaleFactors"], serde_json::json!([1, 2]));

        let v2 = info.to_json(
            "https://example.org/iiif/2/abc",
            &InfoOptions::new(ApiVersion::V2),
        );
        assert_eq!(v2["@id"], "https://example.org/iiif/2/abc");
        assert_eq!(v2["profile"][0], "http://iiif.io/api/image/2/level2.json");
    }

    #[test]
    fn doc_imageinfo_new_48() {
        assert_eq!(crate::info::ImageInfo::new(3, 2).width, 3);
    }

    #[test]
    fn doc_imageinfo_with_gray_63() {
        assert!(crate::info::ImageInfo::new(3, 2).with_gray(true).gray);
    }

    #[test]
    fn doc_imageinfo_with_levels_74() {
        // A pyramid whose levels round down where plain halving rounds up.
        let info = crate::info::ImageInfo::new(1001, 501).with_levels(vec![(500, 250), (250, 125)]);
        let sizes = info.sizes(&Default::default());
        assert_eq!(sizes, vec![(126, 63), (250, 125), (500, 250), (1001, 501)]);
    }

    #[test]
    fn doc_imageinfo_with_tile_88() {
        let info = crate::info::ImageInfo::new(4000, 3000).with_tile(256, 256);
        assert_eq!(info.tile_size(512), (512, 512));
        assert_eq!(info.tile_size(200), (256, 256));
    }

    #[test]
    fn doc_imageinfo_sizes_104() {
        let sizes = crate::info::ImageInfo::new(1000, 500).sizes(&Default::default());
        assert_eq!(sizes, vec![(125, 63), (250, 125), (500, 250), (1000, 500)]);
    }

    #[test]
    fn doc_imageinfo_tile_size_140() {
        let info = crate::info::ImageInfo::new(4000, 3000);
        assert_eq!(info.tile_size(512), (512, 512));
        assert_eq!(
            info.clone().with_tile(1024, 1024).tile_size(512),
            (1024, 1024)
        );
        assert_eq!(info.with_tile(128, 64).tile_size(512), (1024, 512));
    }

    #[test]
    fn doc_imageinfo_scale_factors_163() {
        let info = crate::info::ImageInfo::new(1000, 1000);
        assert_eq!(info.scale_factors(512), vec![1, 2]);
        assert_eq!(info.scale_factors(256), vec![1, 2, 4]);
    }

    #[test]
    fn doc_infoservices_485() {
        use serde_json::json;
        let s = crate::info::InfoServices::new()
            .auth2_probe(vec![json!({"type": "AuthAccessService2", "profile": "external", "label": {"en": ["Campus"]}})])
            .service(json!({"@id": "https://example.org/auth/login", "@type": "AuthCookieService1"}));
        assert!(s.has_probe());
    }
}
