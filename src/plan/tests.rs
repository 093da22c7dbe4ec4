//! Tests of `plan`.

use super::*;
use crate::request::{IdentifierOptions, IiifRequest};
use ApiVersion::{V2, V3};

fn image(path: &str, v: ApiVersion) -> ImageRequest {
    match IiifRequest::parse(path, v, &IdentifierOptions::default()) {
        Ok(IiifRequest::Image(r)) => r,
        other => panic!("{path}: {other:?}"),
    }
}

/// (region/size, version, image w, h, expected output w, h or status)
type Row = (
    &'static str,
    ApiVersion,
    (u32, u32),
    Result<(u32, u32), u16>,
);

fn check(rows: &[Row], opts_for: impl Fn(ApiVersion) -> PlanOptions) {
    for (rs, v, (iw, ih), want) in rows {
        let req = image(&format!("/id/{rs}/0/default.jpg"), *v);
        let got = plan(&req, *iw, *ih, &opts_for(*v))
            .map(|p| (p.width, p.height))
            .map_err(|e| e.status().as_u16());
        assert_eq!(got, *want, "{rs} {v} on {iw}x{ih}");
    }
}

#[test]
fn sizes_without_limits() {
    let rows: &[Row] = &[
        ("full/max", V3, (1000, 750), Ok((1000, 750))),
        ("full/^max", V3, (1000, 750), Ok((1000, 750))),
        ("full/full", V2, (1000, 750), Ok((1000, 750))),
        ("full/max", V2, (1000, 750), Ok((1000, 750))),
        ("full/500,", V3, (1000, 750), Ok((500, 375))),
        ("full/,375", V3, (1000, 750), Ok((500, 375))),
        ("full/333,", V3, (1000, 1000), Ok((333, 333))),
        ("full/1,", V3, (1000, 10), Err(400)),
        ("full/pct:50", V3, (1000, 750), Ok((500, 375))),
        ("full/pct:45", V3, (1000, 1000), Ok((450, 450))),
        ("full/pct:0.01", V3, (1000, 750), Err(400)),
        ("full/pct:101", V3, (1000, 750), Err(400)),
        ("full/^pct:200", V3, (1000, 1000), Ok((2000, 2000))),
        ("full/pct:200", V2, (1000, 1000), Ok((2000, 2000))),
        ("full/300,200", V3, (1000, 750), Ok((300, 200))),
        ("full/1001,200", V3, (1000, 750), Err(400)),
        ("full/^1001,200", V3, (1000, 750), Ok((1001, 200))),
        ("full/!500,500", V3, (1000, 750), Ok((500, 375))),
        ("full/!500,300", V3, (1000, 750), Ok((400, 300))),
        ("full/!2000,3000", V3, (1000, 1000), Err(400)),
        ("full/^!2000,3000", V3, (1000, 1000), Ok((2000, 2000))),
        ("full/^!2000,500", V3, (1000, 1000), Ok((500, 500))),
        ("full/^!360,360", V3, (300, 200), Ok((360, 240))),
        ("full/1100,", V3, (1000, 1000), Err(400)),
        ("full/,1100", V3, (1000, 1000), Err(400)),
        ("full/^1100,", V3, (1000, 1000), Ok((1100, 1100))),
        ("full/,1100", V2, (1000, 1000), Ok((1100, 1100))),
        ("100,200,100,100/37,37", V3, (1000, 1000), Ok((37, 37))),
        ("100,200,100,100/37,37", V2, (1000, 1000), Ok((37, 37))),
        ("pct:41,61,9,9/max", V3, (1000, 1000), Ok((90, 90))),
        ("square/max", V3, (300, 200), Ok((200, 200))),
        ("full/^pct:1000000", V3, (1000, 1000), Err(400)),
        ("full/^1000000,", V3, (1000, 1000), Err(400)),
    ];
    check(rows, PlanOptions::new);
}

#[test]
fn sizes_with_limits() {
    let limits = Limits::default().max_width(800).max_height(600);
    let rows: &[Row] = &[
        ("full/max", V3, (1000, 1000), Ok((600, 600))),
        ("full/max", V3, (1600, 900), Ok((800, 450))),
        ("full/^max", V3, (100, 100), Ok((600, 600))),
        ("full/max", V3, (100, 100), Ok((100, 100))),
        ("full/max", V2, (1000, 500), Ok((800, 400))),
        ("full/full", V2, (1000, 500), Err(400)),
        ("full/900,", V3, (1000, 1000), Err(400)),
        ("full/700,", V3, (1000, 1000), Err(400)),
        ("full/600,", V3, (1000, 1000), Ok((600, 600))),
    ];
    check(rows, |v| PlanOptions::new(v).limits(limits));
    let canon = plan(
        &image("/a/full/^max/0/default.jpg", V3),
        100,
        100,
        &PlanOptions::new(V3).limits(limits),
    )
    .unwrap();
    assert_eq!(canon.canonical, "full/^max/0/default.jpg");
    let area = Limits::default().max_area(250_000);
    check(
        &[
            ("full/max", V3, (1000, 1000), Ok((500, 500))),
            ("full/^max", V3, (10, 40), Ok((250, 1000))),
        ],
        |v| PlanOptions::new(v).limits(area),
    );
}

#[test]
fn fit_never_loops_and_stays_within_limits() {
    let rows: &[(Limits, (u32, u32), bool)] = &[
        (Limits::default().max_area(10_000), (2, 25_000), false),
        (Limits::default().max_area(10_000), (2, 25_000), true),
        (Limits::default().max_area(250_000), (1, 300_000), false),
        (Limits::default().max_area(7), (20_000, 1), false),
        (Limits::default().max_width(1), (5, 100_000), false),
        (Limits::default().max_area(1), (3, 3), true),
    ];
    for (limits, (w, h), up) in rows {
        let (fw, fh) = limits.fit(*w, *h, *up);
        assert!(fw >= 1 && fh >= 1, "{limits:?} {w}x{h}");
        assert!(limits.allows(fw, fh), "{limits:?} {w}x{h} -> {fw}x{fh}");
    }
}

#[test]
fn rotated_and_encoder_limits_are_client_errors() {
    let opts = PlanOptions::new(V3).max_output_area(1_000_000);
    // 1000x1000 fits, but rotated by 45 degrees its box is 1414x1414.
    let ok = image("/a/full/max/0/default.jpg", V3);
    assert!(plan(&ok, 1000, 1000, &opts).is_ok());
    let rotated = image("/a/full/max/45/default.jpg", V3);
    assert_eq!(plan(&rotated, 1000, 1000, &opts).unwrap_err().status(), 400);
    let wide = image("/a/full/max/0/default.jpg", V3);
    assert_eq!(
        plan(&wide, 70_000, 2, &PlanOptions::new(V3))
            .unwrap_err()
            .status(),
        400
    );
    let png = image("/a/full/max/0/default.png", V3);
    assert!(plan(&png, 70_000, 2, &PlanOptions::new(V3)).is_ok());
}

#[test]
fn over_limit_policies_and_max_scale() {
    let limits = Limits::default().max_area(250_000);
    let forbid = |v| {
        PlanOptions::new(v)
            .limits(limits)
            .over_limit(OverLimit::Forbid)
    };
    let clamp = |v| {
        PlanOptions::new(v)
            .limits(limits)
            .over_limit(OverLimit::Clamp)
    };
    check(
        &[
            ("full/full", V2, (1000, 1000), Err(403)),
            ("full/600,", V3, (1000, 1000), Err(403)),
        ],
        forbid,
    );
    // max is fitted, never refused.
    check(&[("full/max", V3, (1000, 1000), Ok((500, 500)))], forbid);
    check(
        &[
            ("full/full", V2, (1000, 1000), Ok((500, 500))),
            ("full/1000,500", V3, (1000, 1000), Ok((707, 353))),
            ("full/400,", V3, (1000, 1000), Ok((400, 400))),
        ],
        clamp,
    );
    let scaled = Limits::default().max_scale(1.5);
    check(
        &[
            ("full/^1500,", V3, (1000, 1000), Ok((1500, 1500))),
            ("full/^1600,", V3, (1000, 1000), Err(400)),
            ("full/^max", V3, (1000, 1000), Ok((1500, 1500))),
            ("full/,1600", V2, (1000, 1000), Err(400)),
        ],
        |v| PlanOptions::new(v).limits(scaled),
    );
    check(
        &[("full/^3000,", V3, (1000, 1000), Ok((1500, 1500)))],
        |v| {
            PlanOptions::new(v)
                .limits(scaled)
                .over_limit(OverLimit::Clamp)
        },
    );
}

#[test]
fn upscaling_off() {
    let rows: &[Row] = &[
        ("full/^1100,", V3, (1000, 1000), Err(501)),
        ("full/^pct:120", V3, (1000, 1000), Err(501)),
        ("full/^500,", V3, (1000, 1000), Ok((500, 500))),
        ("full/^max", V3, (1000, 1000), Ok((1000, 1000))),
        ("full/1100,", V2, (1000, 1000), Err(400)),
    ];
    check(rows, |v| PlanOptions::new(v).upscaling(false));
}

#[test]
fn canonical_forms() {
    let rows: &[(&str, ApiVersion, &str)] = &[
        ("/a/full/max/0/default.jpg", V3, "full/max/0/default.jpg"),
        (
            "/a/0,0,1000,750/500,/!0/gray.png",
            V3,
            "full/500,375/!0/gray.png",
        ),
        (
            "/a/square/max/90/default.jpg",
            V3,
            "125,0,750,750/max/90/default.jpg",
        ),
        (
            "/a/full/^pct:200/0/default.jpg",
            V3,
            "full/^2000,1500/0/default.jpg",
        ),
        ("/a/full/max/0/default.jpg", V2, "full/full/0/default.jpg"),
        ("/a/full/^max/0/default.jpg", V3, "full/max/0/default.jpg"),
        (
            "/a/full/pct:50/0/default.jpg",
            V2,
            "full/500,/0/default.jpg",
        ),
        (
            "/a/full/500,100/0/default.jpg",
            V2,
            "full/500,100/0/default.jpg",
        ),
        (
            "/a/pct:0,0,50,50/,100/22.50/bitonal.tif",
            V2,
            "0,0,500,375/133,/22.5/bitonal.tif",
        ),
    ];
    for (path, v, want) in rows {
        let p = plan(&image(path, *v), 1000, 750, &PlanOptions::new(*v)).unwrap();
        assert_eq!(p.canonical, *want, "{path} {v}");
    }
}

#[test]
fn validator_tile_edges() {
    // The last tile of a 1000-wide image at scale factor 2 with 512 tiles.
    let req = image("/a/0,0,1000,1000/500,500/0/default.jpg", V3);
    let p = plan(&req, 1000, 1000, &PlanOptions::new(V3)).unwrap();
    assert_eq!((p.width, p.height), (500, 500));
    let req = image("/a/512,512,488,488/244,244/0/default.jpg", V3);
    let p = plan(&req, 1000, 1000, &PlanOptions::new(V3)).unwrap();
    assert_eq!((p.width, p.height), (244, 244));
}
