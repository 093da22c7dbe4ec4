use object_store::{GetOptions, ObjectStore, path::Path};
use std::time::Instant;
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let bucket = std::env::var("TOWER_IIIF_S3_BUCKET").unwrap();
    let ep = std::env::var("TOWER_IIIF_S3_ENDPOINT").unwrap();
    let s = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_endpoint(ep)
        .with_virtual_hosted_style_request(false)
        .with_allow_http(true)
        .build()
        .unwrap();
    let p = Path::from("bench/big-pyr-jpeg.tif");
    let cases: Vec<(&str, u64, u64)> = vec![
        ("64KiB", 185_204_736, 185_270_272),
        ("1MiB", 190_000_000, 191_048_576),
        ("first wave 2.75MB", 185_335_808, 188_088_320),
        ("tail 2MiB", 199_323_167, 201_420_319),
    ];
    for (name, a, b) in cases {
        let mut ts = Vec::new();
        for _ in 0..31 {
            let t = Instant::now();
            let g = s
                .get_opts(&p, GetOptions::new().with_range(Some(a..b)))
                .await
                .unwrap();
            assert_eq!(g.bytes().await.unwrap().len() as u64, b - a);
            ts.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        ts.sort_by(|x, y| x.partial_cmp(y).unwrap());
        println!(
            "{name}: median {:.1} ms (p25 {:.1}, p75 {:.1})",
            ts[15], ts[7], ts[23]
        );
    }
}
