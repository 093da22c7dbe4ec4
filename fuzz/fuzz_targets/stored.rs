//! What the server reads back from its own stores, which a shared tier makes untrusted: stored
//! reduced pyramids and shared-cache entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_iiif::__private::fuzz;

fuzz_target!(|data: &[u8]| {
    fuzz::reduced_pyramid(data);
    fuzz::cache_entry(data);
});
