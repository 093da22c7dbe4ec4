//! Validators and conditional requests: `ETag`, `Last-Modified`, `If-None-Match`,
//! `If-Modified-Since`, so that a client's cached copy is confirmed with a 304 and no render.

use std::time::SystemTime;

use http::header::{self, HeaderMap, HeaderValue};

/// The validators of one representation.
#[derive(Debug, Clone)]
pub(super) struct Validators {
    /// A strong entity tag, quoted.
    pub etag: HeaderValue,
    /// The source's modification time, if known.
    pub modified: Option<SystemTime>,
}

impl Validators {
    /// Validators from the bytes that decide the representation (hashed into the entity tag) and
    /// the source's modification time.
    pub(super) fn new(parts: &[&[u8]], modified: Option<SystemTime>) -> Self {
        // FNV-1a, 64 bits: stable across processes and releases, unlike std's hasher.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for part in parts {
            for &b in part.iter().chain(&[0xff]) {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        let etag =
            HeaderValue::from_str(&format!("\"{hash:016x}\"")).expect("hex is a valid header");
        Self { etag, modified }
    }

    /// Add `ETag` and `Last-Modified` to a response's headers.
    pub(super) fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(header::ETAG, self.etag.clone());
        if let Some(Ok(v)) = self
            .modified
            .map(|m| HeaderValue::from_str(&httpdate::fmt_http_date(m)))
        {
            headers.insert(header::LAST_MODIFIED, v);
        }
    }

    /// Whether the request's conditions say the client's copy is current (answer 304).
    /// `If-None-Match` wins over `If-Modified-Since`, as RFC 9110 says.
    pub(super) fn not_modified(&self, request: &HeaderMap) -> bool {
        let mut matches = request.get_all(header::IF_NONE_MATCH).iter().peekable();
        if matches.peek().is_some() {
            let ours = self.etag.as_bytes();
            return matches
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == ours);
        }
        let (Some(modified), Some(since)) = (
            self.modified,
            request
                .get(header::IF_MODIFIED_SINCE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok()),
        ) else {
            return false;
        };
        // HTTP dates have whole seconds.
        let secs = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        };
        secs(modified) <= secs(since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn etags_are_stable_and_distinct() {
        let a = Validators::new(&[b"id", b"full/max/0/default.jpg"], None);
        let b = Validators::new(&[b"id", b"full/max/0/default.jpg"], None);
        let c = Validators::new(&[b"idf", b"ull/max/0/default.jpg"], None);
        assert_eq!(a.etag, b.etag);
        assert_ne!(a.etag, c.etag, "part boundaries count");
        assert_eq!(a.etag.len(), 18);
    }

    #[test]
    fn conditions() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let v = Validators::new(&[b"x"], Some(t + Duration::from_millis(300)));
        let tag = v.etag.to_str().unwrap().to_owned();
        let date = httpdate::fmt_http_date(t);
        let earlier = httpdate::fmt_http_date(t - Duration::from_secs(1));
        let rows: &[(&[(&str, &str)], bool)] = &[
            (&[], false),
            (&[("if-none-match", &tag)], true),
            (&[("if-none-match", &format!("W/{tag}"))], true),
            (&[("if-none-match", &format!("\"other\", {tag}"))], true),
            (&[("if-none-match", "*")], true),
            (&[("if-none-match", "\"other\"")], false),
            (&[("if-modified-since", &date)], true),
            (&[("if-modified-since", &earlier)], false),
            (&[("if-modified-since", "yesterday")], false),
            // If-None-Match wins even when the date would match.
            (
                &[("if-none-match", "\"other\""), ("if-modified-since", &date)],
                false,
            ),
        ];
        for (h, want) in rows {
            assert_eq!(v.not_modified(&headers(h)), *want, "{h:?}");
        }
    }
}
