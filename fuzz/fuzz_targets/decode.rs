//! Every source decoder through the format sniffer: JPEG (libjpeg-turbo or zune-jpeg), PNG,
//! TIFF, JPEG 2000 (OpenJPEG), GIF, WebP, BMP, with a 64 MiB budget.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_iiif::__private::{Budget, decode};

fuzz_target!(|data: &[u8]| {
    if let Ok(px) = decode(data, Budget::new(64 << 20)) {
        let expected = px.width() as usize * px.height() as usize * px.layout().channels();
        assert_eq!(px.data().len(), expected);
    }
});
