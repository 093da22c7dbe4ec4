//! The demo's browser viewers, served from files vendored into `examples/serve/viewer/` by
//! `scripts/vendor-viewers.sh` and embedded into the binary, so that they work offline:
//!
//! - `/`: OpenSeadragon on the sample images, one at a time, through IIIF Image API 3.0;
//! - `/mirador`: Mirador on `/manifest.json`, a IIIF Presentation 3 manifest of the samples;
//! - `/viewer/...`: the vendored scripts, images, licences and versions.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CONTENT_TYPE, HOST, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, Uri};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

/// The media type of the vendored scripts.
const JS: &str = "application/javascript; charset=utf-8";
/// The media type of the vendored images.
const PNG: &str = "image/png";
/// The media type of the vendored licences and `VERSION` files.
const TEXT: &str = "text/plain; charset=utf-8";

/// One vendored file, embedded into the binary.
struct Asset {
    /// The URL path it is served at.
    path: &'static str,
    /// Its content.
    bytes: &'static [u8],
    /// Its `Content-Type`.
    content_type: &'static str,
}

/// Builds the [`Asset`] table from paths relative to `examples/serve/viewer/`, served under
/// `/viewer/`.
macro_rules! assets {
    ($($file:literal => $content_type:expr),* $(,)?) => {
        &[$(Asset {
            path: concat!("/viewer/", $file),
            bytes: include_bytes!(concat!("viewer/", $file)),
            content_type: $content_type,
        }),*]
    };
}

/// Every vendored file. After `scripts/vendor-viewers.sh` brings a new version, this list must
/// match what it copied (it warns about images missing here).
const ASSETS: &[Asset] = assets![
    "openseadragon/openseadragon.min.js" => JS,
    "openseadragon/LICENSE.txt" => TEXT,
    "openseadragon/VERSION" => TEXT,
    "openseadragon/images/button_grouphover.png" => PNG,
    "openseadragon/images/button_hover.png" => PNG,
    "openseadragon/images/button_pressed.png" => PNG,
    "openseadragon/images/button_rest.png" => PNG,
    "openseadragon/images/flip_grouphover.png" => PNG,
    "openseadragon/images/flip_hover.png" => PNG,
    "openseadragon/images/flip_pressed.png" => PNG,
    "openseadragon/images/flip_rest.png" => PNG,
    "openseadragon/images/fullpage_grouphover.png" => PNG,
    "openseadragon/images/fullpage_hover.png" => PNG,
    "openseadragon/images/fullpage_pressed.png" => PNG,
    "openseadragon/images/fullpage_rest.png" => PNG,
    "openseadragon/images/home_grouphover.png" => PNG,
    "openseadragon/images/home_hover.png" => PNG,
    "openseadragon/images/home_pressed.png" => PNG,
    "openseadragon/images/home_rest.png" => PNG,
    "openseadragon/images/next_grouphover.png" => PNG,
    "openseadragon/images/next_hover.png" => PNG,
    "openseadragon/images/next_pressed.png" => PNG,
    "openseadragon/images/next_rest.png" => PNG,
    "openseadragon/images/previous_grouphover.png" => PNG,
    "openseadragon/images/previous_hover.png" => PNG,
    "openseadragon/images/previous_pressed.png" => PNG,
    "openseadragon/images/previous_rest.png" => PNG,
    "openseadragon/images/rotateleft_grouphover.png" => PNG,
    "openseadragon/images/rotateleft_hover.png" => PNG,
    "openseadragon/images/rotateleft_pressed.png" => PNG,
    "openseadragon/images/rotateleft_rest.png" => PNG,
    "openseadragon/images/rotateright_grouphover.png" => PNG,
    "openseadragon/images/rotateright_hover.png" => PNG,
    "openseadragon/images/rotateright_pressed.png" => PNG,
    "openseadragon/images/rotateright_rest.png" => PNG,
    "openseadragon/images/zoomin_grouphover.png" => PNG,
    "openseadragon/images/zoomin_hover.png" => PNG,
    "openseadragon/images/zoomin_pressed.png" => PNG,
    "openseadragon/images/zoomin_rest.png" => PNG,
    "openseadragon/images/zoomout_grouphover.png" => PNG,
    "openseadragon/images/zoomout_hover.png" => PNG,
    "openseadragon/images/zoomout_pressed.png" => PNG,
    "openseadragon/images/zoomout_rest.png" => PNG,
    "mirador/mirador.min.js" => JS,
    "mirador/LICENSE" => TEXT,
    "mirador/VERSION" => TEXT,
];

/// The placeholder in [`OSD_PAGE`] replaced by the identifiers, as JSON made safe for a
/// `<script>` element by [`script_json`].
const IDS_PLACEHOLDER: &str = "__IDS_JSON__";

/// The OpenSeadragon page: a header with one link per identifier that opens it in the viewer,
/// and links to its 3.0 and 2.1 `info.json`; the first identifier is shown at first.
const OSD_PAGE: &str = r##"<!doctype html>
<html><head><meta charset="utf-8"><title>tower-iiif demo</title>
<style>body{margin:0;font-family:sans-serif}#osd{width:100vw;height:calc(100vh - 3em)}
header{height:3em;display:flex;gap:1em;align-items:center;padding:0 1em}</style>
<script src="/viewer/openseadragon/openseadragon.min.js"></script>
</head><body>
<header><b>tower-iiif</b> <span id="ids"></span>
<span style="margin-left:auto"><a href="/mirador">Mirador</a> · <a href="/manifest.json">manifest</a></span></header>
<div id="osd"></div>
<script>
const ids = __IDS_JSON__;
const infoUrl = (version, id) => `/iiif/${version}/${encodeURIComponent(id)}/info.json`;
const viewer = OpenSeadragon({id: "osd", prefixUrl: "/viewer/openseadragon/images/",
  tileSources: ids.length ? infoUrl(3, ids[0]) : undefined});
const link = (href, text) => {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  return a;
};
const list = document.getElementById("ids");
ids.forEach((id, i) => {
  const show = link("#", id);
  show.addEventListener("click", event => {
    event.preventDefault();
    viewer.open(infoUrl(3, id));
  });
  if (i > 0) list.append(" · ");
  list.append(show, " (", link(infoUrl(3, id), "3.0"), ", ", link(infoUrl(2, id), "2.1"), ")");
});
</script></body></html>"##;

/// The Mirador page: one window on `/manifest.json`, with a thumbnail strip to switch images.
/// Nothing is interpolated into it.
const MIRADOR_PAGE: &str = r##"<!doctype html>
<html><head><meta charset="utf-8"><title>tower-iiif demo: Mirador</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{margin:0}#mirador{position:absolute;inset:0}</style>
</head><body>
<div id="mirador"></div>
<script src="/viewer/mirador/mirador.min.js"></script>
<script>
Mirador.viewer({
  id: "mirador",
  windows: [{
    manifestId: new URL("/manifest.json", location.href).href,
    thumbnailNavigationPosition: "far-bottom",
  }],
});
</script></body></html>"##;

/// What `encodeURIComponent` leaves alone, so that the manifest's URLs are those the
/// OpenSeadragon page builds.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// A sample image: identifier, width and height in pixels.
type Sample = (String, u32, u32);

/// The viewers' routes: `/`, `/mirador`, `/manifest.json` and the vendored files under
/// `/viewer/`, for the sample images `images` (identifier, width, height; the first is shown
/// first). Merge them into the application's router.
pub fn routes(images: &[(String, u32, u32)]) -> Router {
    let ids: Vec<&str> = images.iter().map(|(id, _, _)| id.as_str()).collect();
    let page = Bytes::from(OSD_PAGE.replace(IDS_PLACEHOLDER, &script_json(&ids)));
    let mut router = Router::new()
        .route("/", get(move || async move { Html(page) }))
        .route("/mirador", get(|| async { Html(MIRADOR_PAGE) }))
        .route("/manifest.json", get(manifest))
        .with_state(Arc::<[Sample]>::from(images));
    for asset in ASSETS {
        let (bytes, content_type) = (asset.bytes, asset.content_type);
        router = router.route(
            asset.path,
            get(move || async move {
                (
                    [
                        (CONTENT_TYPE, content_type),
                        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
                    ],
                    bytes,
                )
            }),
        );
    }
    router
}

/// `/manifest.json`: a IIIF Presentation 3 manifest with one canvas per sample image, painted
/// by the image and its level 2 Image API 3.0 service at `/iiif/3/{id}`.
async fn manifest(
    State(images): State<Arc<[Sample]>>,
    headers: HeaderMap,
    uri: Uri,
) -> impl IntoResponse {
    let base = format!("http://{}", host(&headers, &uri));
    let body = serde_json::to_string_pretty(&manifest_json(&base, &images)).expect("JSON value");
    (
        [
            (
                CONTENT_TYPE,
                r#"application/ld+json;profile="http://iiif.io/api/presentation/3/context.json""#,
            ),
            (ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        body,
    )
}

/// The manifest of `images`, with every id absolute under `base` (`http://host[:port]`).
fn manifest_json(base: &str, images: &[Sample]) -> Value {
    let canvases: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(n, (id, width, height))| {
            let canvas = format!("{base}/manifest/canvas/{n}");
            let service = format!("{base}/iiif/3/{}", utf8_percent_encode(id, COMPONENT));
            json!({
                "id": canvas,
                "type": "Canvas",
                "label": {"none": [id]},
                "width": width,
                "height": height,
                "items": [{
                    "id": format!("{canvas}/page"),
                    "type": "AnnotationPage",
                    "items": [{
                        "id": format!("{canvas}/page/image"),
                        "type": "Annotation",
                        "motivation": "painting",
                        "body": {
                            "id": format!("{service}/full/max/0/default.jpg"),
                            "type": "Image",
                            "format": "image/jpeg",
                            "width": width,
                            "height": height,
                            "service": [{
                                "id": service,
                                "type": "ImageService3",
                                "profile": "level2",
                            }],
                        },
                        "target": canvas,
                    }],
                }],
            })
        })
        .collect();
    json!({
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": format!("{base}/manifest.json"),
        "type": "Manifest",
        "label": {"en": ["tower-iiif samples"]},
        "items": canvases,
    })
}

/// The authority the client asked for: the `Host` header (HTTP/1.1), else the URI's
/// authority (HTTP/2), else `127.0.0.1`. Anything but a plain `host[:port]` is ignored.
fn host(headers: &HeaderMap, uri: &Uri) -> String {
    let plain = |h: &str| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    };
    headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .filter(|&h| plain(h))
        .unwrap_or("127.0.0.1")
        .to_owned()
}

/// `value` as JSON that can sit in a `<script>` element of an HTML page: `<`, `>` and `&` are
/// escaped (so `</script>` or `<!--` in a string can't end or change the element), and so are
/// U+2028 and U+2029 (line terminators to pre-2019 JavaScript). All of them can only occur
/// inside JSON strings, where the `\uXXXX` escapes mean the same characters.
pub fn script_json(value: &impl serde::Serialize) -> String {
    let json = serde_json::to_string(value).expect("serializable to JSON");
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}
