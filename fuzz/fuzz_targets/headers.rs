//! The header parsers: `Forwarded` and `X-Forwarded-*` (hosts, ports, paths, addresses) and
//! Cache-Control values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_iiif::__private::fuzz;
use tower_iiif::cache_control::CacheControl;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    fuzz::forwarded(value);
    if let Ok(cc) = value.parse::<CacheControl>() {
        // A parsed value prints as a valid header value.
        let printed = cc.to_string();
        assert!(http::HeaderValue::from_str(&printed).is_ok(), "{printed:?}");
    }
});
