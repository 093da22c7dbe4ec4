//! Per-stage benchmarks: parse, plan, decode, crop+resize, encode, and one whole tile request
//! through the service.
//!
//! ```text
//! cargo bench --bench pipeline
//! ```

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt;
use tower_iiif::__private::{
    Budget, EncodeOptions, PlanOptions, Rect, crop_resize, decode, encode, plan,
};
use tower_iiif::request::{ApiVersion, Format, IdentifierOptions, IiifRequest};
use tower_iiif::source::FsSource;
use tower_iiif::{IiifService, samples};

const TILE: &str = "/67352ccc-d1b0-11e1-89ae-279075081939/512,512,488,488/244,244/0/default.jpg";

fn parse_and_plan(c: &mut Criterion) {
    let opts = IdentifierOptions::default();
    c.bench_function("parse tile path", |b| {
        b.iter(|| IiifRequest::parse(black_box(TILE), ApiVersion::V3, &opts).unwrap())
    });
    let Ok(IiifRequest::Image(req)) = IiifRequest::parse(TILE, ApiVersion::V3, &opts) else {
        unreachable!()
    };
    let popts = PlanOptions::new(ApiVersion::V3);
    c.bench_function("plan tile", |b| {
        b.iter(|| plan(black_box(&req), 1000, 1000, &popts).unwrap())
    });
}

fn codecs(c: &mut Criterion) {
    let budget = Budget::default();
    let grid = samples::validator_image();
    let photo = samples::pattern(2048, 1536);
    let png = encode(&grid, Format::Png, &EncodeOptions::default()).unwrap();
    let jpg = encode(&photo, Format::Jpg, &EncodeOptions::default()).unwrap();
    c.bench_function("decode png 1000x1000", |b| {
        b.iter(|| decode(black_box(&png), budget).unwrap())
    });
    c.bench_function("decode jpeg 2048x1536", |b| {
        b.iter(|| decode(black_box(&jpg), budget).unwrap())
    });
    c.bench_function("crop_resize 1024 region to 512", |b| {
        b.iter(|| crop_resize(&photo, Rect::new(512, 256, 1024, 1024), 512, 512, budget).unwrap())
    });
    let tile = crop_resize(&photo, Rect::new(0, 0, 512, 512), 512, 512, budget).unwrap();
    for format in Format::ALL {
        c.bench_function(&format!("encode {format} 512x512"), |b| {
            b.iter(|| encode(black_box(&tile), format, &EncodeOptions::default()).unwrap())
        });
    }
}

fn service(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("tower-iiif-bench-{}", std::process::id()));
    samples::write_samples(&dir).unwrap();
    let svc = IiifService::new(FsSource::new(&dir).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    c.bench_function("service tile 244x244 jpg from png source", |b| {
        b.iter(|| {
            rt.block_on(async {
                let req = http::Request::get(TILE).body(()).unwrap();
                let res = svc.clone().oneshot(req).await.unwrap();
                assert_eq!(res.status(), 200);
            })
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = parse_and_plan, codecs, service
}
criterion_main!(benches);
