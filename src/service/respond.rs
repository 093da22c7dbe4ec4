//! Building responses: images, info.json, redirects, errors, CORS. Every error response is
//! made here, from [`Error::status`].

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Response, StatusCode};
use serde_json::Value;

use super::IiifBody;
use super::negotiate::{InfoMediaType, info_media_type};
use crate::request::{ApiVersion, Format};
use crate::{Error, ErrorKind};

const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: IiifBody,
    len: usize,
) -> Response<IiifBody> {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    res
}

fn link_value(links: &[(&str, &str)]) -> Option<HeaderValue> {
    let joined = links
        .iter()
        .map(|(uri, rel)| format!("<{uri}>;rel=\"{rel}\""))
        .collect::<Vec<_>>()
        .join(", ");
    HeaderValue::from_str(&joined).ok()
}

/// An encoded image, with its one `Link` header carrying the profile and the canonical URI.
pub(super) fn image(
    body: bytes::Bytes,
    format: Format,
    version: ApiVersion,
    canonical: &str,
) -> Response<IiifBody> {
    let len = body.len();
    let mut res = response(StatusCode::OK, format.media_type(), body.into(), len);
    if let Some(link) = link_value(&[(version.profile_uri(), "profile"), (canonical, "canonical")])
    {
        res.headers_mut().insert(header::LINK, link);
    }
    res
}

/// The headers of an image response without its body (HEAD): no `Content-Length`, since the
/// image is not rendered to find it.
pub(super) fn image_head(
    format: Format,
    version: ApiVersion,
    canonical: &str,
) -> Response<IiifBody> {
    let mut res = image(bytes::Bytes::new(), format, version, canonical);
    res.headers_mut().remove(header::CONTENT_LENGTH);
    res
}

/// 304 Not Modified, no body.
pub(super) fn not_modified() -> Response<IiifBody> {
    let mut res = Response::new(IiifBody::empty());
    *res.status_mut() = StatusCode::NOT_MODIFIED;
    res
}

/// An info.json document, in the media type the client negotiated.
pub(super) fn info(doc: &Value, version: ApiVersion, parts: &Parts) -> Response<IiifBody> {
    let body = doc.to_string();
    let len = body.len();
    let media = info_media_type(version, parts.headers.get(header::ACCEPT));
    let content_type = match (media, version) {
        (InfoMediaType::JsonLd, ApiVersion::V3) => {
            "application/ld+json;profile=\"http://iiif.io/api/image/3/context.json\""
        }
        (InfoMediaType::JsonLd, _) => "application/ld+json",
        (InfoMediaType::Json, _) => "application/json",
    };
    let mut res = response(StatusCode::OK, content_type, body.into(), len);
    let mut links = vec![(version.profile_uri(), "profile")];
    if media == InfoMediaType::Json && version == ApiVersion::V2 {
        // The context link the 2.1 spec asks for on plain JSON responses.
        links.push((
            version.context(),
            "http://www.w3.org/ns/json-ld#context\";type=\"application/ld+json",
        ));
    }
    let h = res.headers_mut();
    if let Some(link) = link_value(&links) {
        h.insert(header::LINK, link);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    res
}

/// 303 See Other to `location`.
pub(super) fn redirect(location: &str) -> Response<IiifBody> {
    let mut res = response(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        IiifBody::empty(),
        0,
    );
    match HeaderValue::from_str(location) {
        Ok(v) => {
            res.headers_mut().insert(header::LOCATION, v);
            res
        }
        Err(_) => error(&Error::bad_request(
            "the base URI cannot be written as a header",
        )),
    }
}

/// The error response: the status of the error's kind and its one-line message.
pub(super) fn error(e: &Error) -> Response<IiifBody> {
    let body = format!("{}\n", e.message());
    let len = body.len();
    let status = e.status();
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), "{}", e.message());
    } else {
        tracing::debug!(status = status.as_u16(), "{}", e.message());
    }
    let mut res = response(status, "text/plain; charset=utf-8", body.into(), len);
    match e.kind() {
        ErrorKind::Unavailable => {
            let seconds = e.retry_after().unwrap_or(1);
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        ErrorKind::MethodNotAllowed => {
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
        }
        ErrorKind::Unauthorized => {
            if let Some(v) = e.challenge().and_then(|c| HeaderValue::from_str(c).ok()) {
                res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        _ => {}
    }
    res
}

/// The answer to an `OPTIONS` request (a CORS preflight, or a plain one).
pub(super) fn preflight(parts: &Parts) -> Response<IiifBody> {
    let mut res = response(
        StatusCode::NO_CONTENT,
        "text/plain; charset=utf-8",
        IiifBody::empty(),
        0,
    );
    let h = res.headers_mut();
    // A 204 carries neither.
    h.remove(header::CONTENT_TYPE);
    h.remove(header::CONTENT_LENGTH);
    h.insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOWED_METHODS),
    );
    // Allow whatever headers the client asks for (Authorization for IIIF Auth probes included).
    let allow_headers = parts
        .headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("Authorization, Accept, Range"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    res
}

/// `Access-Control-Allow-Origin: *` on every response.
pub(super) fn cors(res: &mut Response<IiifBody>) {
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Link"),
    );
}
