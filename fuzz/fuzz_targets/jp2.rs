//! JPEG 2000: the box reader and tile-part index (with the region cuts it plans), and a small
//! OpenJPEG decode of the header and of a reduced region.
#![no_main]

use std::ops::Range;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tower_iiif::__private::jp2::{DecodeRequest, decode, read_info};
use tower_iiif::__private::read_index;
use tower_iiif::Error;
use tower_iiif::source::{SourceMetadata, SourceObject};

/// A file in memory.
struct Mem(SourceMetadata, Bytes);

impl SourceObject for Mem {
    fn metadata(&self) -> &SourceMetadata {
        &self.0
    }

    async fn read_range(&self, r: Range<u64>) -> Result<Bytes, Error> {
        let end = r.end.min(self.1.len() as u64) as usize;
        Ok(self.1.slice((r.start as usize).min(end)..end))
    }
}

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let obj = Mem(SourceMetadata::new(bytes.len() as u64, None, None), bytes);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    if let Ok(Some(index)) = rt.block_on(read_index(&obj)) {
        let (across, down) = index.tile_grid();
        let _ = index.region(0, 0, across.min(4), down.min(4));
        for reduce in 0..3 {
            let _ = index.cuts_at(reduce);
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
