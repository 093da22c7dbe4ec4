//! The request path parser and identifier decoding, both API versions, with and without `+`
//! as a space and a slash substitute.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_iiif::__private::IiifRequest;
use tower_iiif::request::{ApiVersion, Identifier, IdentifierOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let plain = IdentifierOptions::default();
    let other = IdentifierOptions::default()
        .plus_as_space(false)
        .slash_substitute("~");
    for version in [ApiVersion::V2, ApiVersion::V3] {
        for opts in [&plain, &other] {
            if let Ok(req) = IiifRequest::parse(path, version, opts) {
                // What is echoed must read back as the same identifier.
                let id = req.identifier();
                let again = Identifier::decode(&id.encoded_with(opts), opts).unwrap();
                assert_eq!(again.as_str(), id.as_str());
            }
        }
    }
});
