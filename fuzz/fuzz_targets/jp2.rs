//! JPEG 2000: the box reader and tile-part index (each tile's cuts read, and the region plans),
//! and a small OpenJPEG decode of the header and of a reduced region.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tower_iiif::__private::jp2::{DecodeRequest, decode, read_info};
use tower_iiif::__private::{MemObject, read_index};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let obj = MemObject::new(bytes);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    if let Ok(Some(index)) = rt.block_on(read_index(&obj)) {
        let (across, down) = index.tile_grid();
        let _ = index.region(0, 0, across.min(4), down.min(4));
        // Every tile's cuts (its tile-part headers and packet lengths), then the plans.
        if rt
            .block_on(index.load_region(&obj, 0, 0, u32::MAX, u32::MAX))
            .is_ok()
        {
            for reduce in 0..3 {
                let _ = index.cuts_at(reduce);
                let _ = index.region_bytes(0, 0, u32::MAX, u32::MAX, reduce);
                let _ = index.leaves_out(1, 1, 7, 5, reduce);
            }
        }
    }
    if let Ok(info) = read_info(data) {
        let req = DecodeRequest {
            max_bytes: 8 << 20,
            reduce: info.resolutions.saturating_sub(1).min(3),
            ..DecodeRequest::default()
        };
        let _ = decode(data, &req);
    }
});
