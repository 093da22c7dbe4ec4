//! `Authorize` in front of a real `IiifService`.

use std::path::PathBuf;
use std::sync::OnceLock;

use http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

use super::*;
use crate::IiifService;
use crate::cache_control::Restricted;
use crate::samples::{self, VALIDATOR_ID};
use crate::source::FsSource;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("tower-iiif-auth-{}", std::process::id()));
        samples::write_samples(&d).unwrap();
        std::fs::copy(d.join("gray.tif"), d.join("private-gray.tif")).unwrap();
        d
    })
}

/// The demo rule of the serve example: `private*` needs `Bearer demo`; anonymous users get at
/// most 1000 pixels on the long side; the token holder gets everything, restricted.
async fn rule(req: AuthRequest) -> Decision {
    if req.bearer_token() == Some("demo") {
        return Decision::AllowRestricted;
    }
    if req.identifier().as_str().starts_with("private")
        && !matches!(req.target(), AuthTarget::Info(_))
    {
        return Decision::Deny(
            Denied::unauthorized("this image needs a login").challenge("Bearer realm=\"iiif\""),
        );
    }
    if req.identifier().as_str() == "forbidden" {
        return Decision::Deny(Denied::forbidden("never"));
    }
    if req.identifier().as_str() == "moved" {
        return Decision::Redirect("https://elsewhere.example/iiif/3/x/info.json".into());
    }
    match req.image_info().await {
        Ok(info) if info.width.max(info.height) > 1000 => {
            Decision::Degrade(Limits::default().max_width(1000))
        }
        _ => Decision::Allow,
    }
}

struct Got {
    status: u16,
    headers: http::HeaderMap,
    restricted: bool,
    body: Vec<u8>,
}

async fn send(path: &str, headers: &[(&str, &str)], method: &str) -> Got {
    let iiif = IiifService::new(FsSource::new(dir()).unwrap()).path_prefix("/iiif/3");
    let layer = AuthorizeLayer::new(rule).auth2_probe(vec![json!({
        "id": "https://auth.example/login",
        "type": "AuthAccessService2",
        "profile": "active",
        "label": {"en": ["Log in"]},
        "service": [{"id": "https://auth.example/token", "type": "AuthAccessTokenService2"}]
    })]);
    let svc = layer.layer(iiif);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "iiif.test");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = svc.oneshot(req.body(()).unwrap()).await.unwrap();
    let restricted = res.extensions().get::<Restricted>().is_some();
    let (parts, body) = res.into_parts();
    Got {
        status: parts.status.as_u16(),
        headers: parts.headers,
        restricted,
        body: body.collect().await.unwrap().to_bytes().to_vec(),
    }
}

async fn get(path: &str, headers: &[(&str, &str)]) -> Got {
    send(path, headers, "GET").await
}

#[tokio::test]
async fn denied_images_get_401_with_a_challenge() {
    let got = get("/iiif/3/private-gray/full/max/0/default.jpg", &[]).await;
    assert_eq!(got.status, 401);
    assert_eq!(got.headers["www-authenticate"], "Bearer realm=\"iiif\"");
    assert_eq!(got.headers["access-control-allow-origin"], "*");
    assert_eq!(got.headers["cache-control"], "no-store");
    assert_eq!(got.body, b"this image needs a login\n");
    let got = get("/iiif/3/forbidden/info.json", &[]).await;
    assert_eq!(got.status, 403);
    assert!(!got.headers.contains_key("www-authenticate"));
}

#[tokio::test]
async fn the_token_holder_gets_a_restricted_full_image() {
    let got = get(
        "/iiif/3/private-gray/full/max/0/default.png",
        &[("authorization", "Bearer demo")],
    )
    .await;
    assert_eq!(got.status, 200);
    assert!(got.restricted);
    let px = crate::codec::decode(&got.body, crate::pixels::Budget::default()).unwrap();
    assert_eq!((px.width(), px.height()), (700, 500));
}

#[tokio::test]
async fn anonymous_users_get_a_degraded_landscape() {
    let got = get("/iiif/3/landscape/full/max/0/default.jpg", &[]).await;
    assert_eq!(got.status, 200);
    assert!(got.restricted);
    let px = crate::codec::decode(&got.body, crate::pixels::Budget::default()).unwrap();
    assert_eq!((px.width(), px.height()), (1000, 650));
    let info = get("/iiif/3/landscape/info.json", &[]).await;
    let doc: Value = serde_json::from_slice(&info.body).unwrap();
    assert_eq!(doc["maxWidth"], 1000);
    // Small images are not restricted at all.
    let small = get(
        &format!("/iiif/3/{VALIDATOR_ID}/full/max/0/default.jpg"),
        &[],
    )
    .await;
    assert_eq!(small.status, 200);
    assert!(!small.restricted);
}

#[tokio::test]
async fn redirects() {
    let got = get("/iiif/3/moved/full/max/0/default.jpg", &[]).await;
    assert_eq!(got.status, 302);
    assert_eq!(
        got.headers["location"],
        "https://elsewhere.example/iiif/3/x/info.json"
    );
}

#[tokio::test]
async fn info_json_declares_the_probe_and_the_probe_answers() {
    let info = get("/iiif/3/private-gray/info.json", &[]).await;
    assert_eq!(info.status, 200);
    let doc: Value = serde_json::from_slice(&info.body).unwrap();
    assert_eq!(
        doc["@context"],
        json!([
            "http://iiif.io/api/auth/2/context.json",
            "http://iiif.io/api/image/3/context.json"
        ])
    );
    let probe = &doc["service"][0];
    assert_eq!(probe["type"], "AuthProbeService2");
    assert_eq!(probe["id"], "http://iiif.test/iiif/3/private-gray/probe");
    assert_eq!(probe["service"][0]["type"], "AuthAccessService2");

    let anonymous = get("/iiif/3/private-gray/probe", &[]).await;
    assert_eq!(anonymous.status, 200);
    assert_eq!(anonymous.headers["access-control-allow-origin"], "*");
    let result: Value = serde_json::from_slice(&anonymous.body).unwrap();
    assert_eq!(result["type"], "AuthProbeResult2");
    assert_eq!(result["status"], 401);
    let with_token = get(
        "/iiif/3/private-gray/probe",
        &[("authorization", "Bearer demo")],
    )
    .await;
    let result: Value = serde_json::from_slice(&with_token.body).unwrap();
    assert_eq!(result["status"], 200);
}

#[tokio::test]
async fn preflights_with_authorization_pass() {
    let got = send(
        "/iiif/3/private-gray/probe",
        &[
            ("origin", "https://viewer.example"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization"),
        ],
        "OPTIONS",
    )
    .await;
    assert_eq!(got.status, 204);
    assert_eq!(got.headers["access-control-allow-origin"], "*");
    assert_eq!(got.headers["access-control-allow-headers"], "authorization");
}

#[tokio::test]
async fn bad_paths_and_unknown_images_reach_the_service() {
    assert_eq!(get("/iiif/3/a/b/c", &[]).await.status, 404);
    assert_eq!(get("/iiif/3/nope/info.json", &[]).await.status, 404);
    assert_eq!(
        get("/iiif/3/gray/full/full/0/default.jpg", &[])
            .await
            .status,
        400
    );
    assert_eq!(get("/iiif/3/gray", &[]).await.status, 303);
}

#[test]
fn request_helpers() {
    let req = Request::get("/x")
        .header("authorization", "bearer  tok ")
        .header("cookie", "a=1; session=xyz; b=2")
        .body(())
        .unwrap();
    let (parts, _) = req.into_parts();
    let iiif = IiifService::new(FsSource::new(dir()).unwrap());
    let r = AuthRequest::new(
        AuthTarget::Info(crate::request::Identifier::new("x").unwrap()),
        &parts,
        crate::service::HasIiifContext::iiif_context(&iiif)
            .lookup()
            .clone(),
    );
    assert_eq!(r.bearer_token(), Some("tok"));
    assert_eq!(r.cookie("session"), Some("xyz"));
    assert_eq!(r.cookie("nope"), None);
    assert_eq!(r.client_ip(), None);
}

#[tokio::test]
async fn degraded_and_full_renders_never_share_a_cache_entry_or_etag() {
    let iiif = IiifService::new(FsSource::new(dir()).unwrap())
        .path_prefix("/iiif/3")
        .derivative_cache(crate::cache::MemoryCache::new(64 << 20));
    let svc = AuthorizeLayer::new(rule).layer(iiif);
    let call = |auth: Option<&'static str>| {
        let svc = svc.clone();
        async move {
            let mut req = Request::get("/iiif/3/landscape/full/max/0/default.jpg")
                .header("host", "iiif.test");
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let res = svc.oneshot(req.body(()).unwrap()).await.unwrap();
            let etag = res.headers()["etag"].clone();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            let px = crate::codec::decode(&body, crate::pixels::Budget::default()).unwrap();
            (px.width(), etag)
        }
    };
    // Full first, then anonymous: the anonymous client must not get the cached full image.
    let (full_w, full_tag) = call(Some("Bearer demo")).await;
    let (anon_w, anon_tag) = call(None).await;
    assert_eq!((full_w, anon_w), (4000, 1000));
    assert_ne!(full_tag, anon_tag);
    // And the other way round.
    assert_eq!(call(Some("Bearer demo")).await.0, 4000);
    assert_eq!(call(None).await.0, 1000);
}

#[tokio::test]
async fn the_layer_follows_the_settings_of_the_service_it_wraps() {
    // Settings made after the layer was built are seen: the layer reads the wrapped service's.
    let layer = AuthorizeLayer::new(rule);
    let early = IiifService::new(FsSource::new(dir()).unwrap());
    let svc = layer.layer(early.path_prefix("/iiif/3"));
    let res = svc
        .oneshot(
            Request::get("/iiif/3/private-gray/full/max/0/default.jpg")
                .body(())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // One layer serves both versions, each with its own parser.
    let v2 = IiifService::new(FsSource::new(dir()).unwrap())
        .version(crate::request::ApiVersion::V2)
        .path_prefix("/iiif/2");
    let res = layer
        .layer(v2)
        .oneshot(
            Request::get("/iiif/2/gray/full/full/0/default.jpg")
                .body(())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_public_cache_control_on_a_restricted_response_is_made_private() {
    use crate::cache_control::SetCacheControlLayer;
    // SetCacheControl inside Authorize (the wrong order) still cannot make it public.
    let iiif = IiifService::new(FsSource::new(dir()).unwrap()).path_prefix("/iiif/3");
    let inner = SetCacheControlLayer::new().layer(iiif.clone());
    let svc = AuthorizeLayer::new(rule).layer(inner);
    let req = Request::get("/iiif/3/private-gray/full/100,/0/default.jpg")
        .header("authorization", "Bearer demo")
        .body(())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "private, no-cache");
}
