//! Content negotiation for info.json: `application/ld+json` or `application/json`.

use http::HeaderValue;

use crate::request::ApiVersion;

/// The media type of an info.json response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InfoMediaType {
    /// `application/json`.
    Json,
    /// `application/ld+json` (with the context profile in 3.0).
    JsonLd,
}

/// Choose the media type: 3.0 prefers JSON-LD, and answers it when no `Accept` is sent; 2.1
/// answers JSON-LD only when it is asked for explicitly. A client that accepts neither gets
/// JSON (never a 406).
pub(super) fn info_media_type(version: ApiVersion, accept: Option<&HeaderValue>) -> InfoMediaType {
    let Some(accept) = accept.and_then(|a| a.to_str().ok()) else {
        return match version {
            ApiVersion::V3 => InfoMediaType::JsonLd,
            ApiVersion::V2 => InfoMediaType::Json,
        };
    };
    let (mut ld, mut json, mut wildcard) = (None::<f32>, None::<f32>, None::<f32>);
    for item in accept.split(',') {
        let mut params = item.split(';');
        let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = params
            .filter_map(|p| p.trim().strip_prefix("q="))
            .filter_map(|q| q.trim().parse::<f32>().ok())
            .find(|q| q.is_finite())
            .unwrap_or(1.0);
        let slot = match media.as_str() {
            "application/ld+json" => &mut ld,
            "application/json" => &mut json,
            "application/*" | "*/*" => &mut wildcard,
            _ => continue,
        };
        *slot = Some(slot.map_or(q, |old| old.max(q)));
    }
    let ld = ld.or(wildcard).unwrap_or(0.0);
    let json = json.or(wildcard).unwrap_or(0.0);
    let prefer_ld = match version {
        ApiVersion::V3 => ld > 0.0 && ld >= json,
        ApiVersion::V2 => ld > 0.0 && ld > json,
    };
    if prefer_ld {
        InfoMediaType::JsonLd
    } else {
        InfoMediaType::Json
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ApiVersion::{V2, V3};
    use InfoMediaType::{Json, JsonLd};

    #[test]
    fn table() {
        let rows: &[(ApiVersion, Option<&str>, InfoMediaType)] = &[
            (V3, None, JsonLd),
            (V2, None, Json),
            (V3, Some("application/json"), Json),
            (V2, Some("application/json"), Json),
            (V3, Some("application/ld+json"), JsonLd),
            (V2, Some("application/ld+json"), JsonLd),
            (
                V2,
                Some("application/ld+json;profile=\"http://iiif.io/api/image/2/context.json\""),
                JsonLd,
            ),
            (
                V3,
                Some("application/json, application/ld+json;q=0.5"),
                Json,
            ),
            (
                V3,
                Some("application/ld+json;q=0.9, application/json;q=0.8"),
                JsonLd,
            ),
            (V2, Some("application/ld+json, application/json"), Json),
            (V3, Some("*/*"), JsonLd),
            (V2, Some("*/*"), Json),
            (
                V3,
                Some("text/html,application/xhtml+xml,*/*;q=0.8"),
                JsonLd,
            ),
            (V3, Some("image/png"), Json),
            (V3, Some("application/ld+json;q=0"), Json),
            (V3, Some(";;;,,q=NaN"), Json),
        ];
        for (v, accept, want) in rows {
            let h = accept.map(|a| HeaderValue::from_str(a).unwrap());
            assert_eq!(info_media_type(*v, h.as_ref()), *want, "{v} {accept:?}");
        }
    }
}
