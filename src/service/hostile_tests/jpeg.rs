//! The JPEG suite's files: segment parsing and editing, and the hostile JPEGs.

use super::tiff::exif_tiff;
use super::*;

/// Whether `m` is a start-of-frame marker.
fn is_sof(m: u8) -> bool {
    (0xC0..=0xCF).contains(&m) && ![0xC4, 0xC8, 0xCC].contains(&m)
}

/// The marker segments of a JPEG up to its first SOS: (offset, marker, length with the marker).
fn jpeg_segments(b: &[u8]) -> Vec<(usize, u8, usize)> {
    let mut out = Vec::new();
    let mut at = 2;
    while at + 4 <= b.len() && b[at] == 0xFF {
        let marker = b[at + 1];
        let len = 2 + be16(b, at + 2);
        out.push((at, marker, len));
        if marker == 0xDA {
            break;
        }
        at += len;
    }
    out
}

/// The offset of the first segment whose marker `is`.
fn jpeg_segment(b: &[u8], is: impl Fn(u8) -> bool) -> usize {
    jpeg_segments(b)
        .into_iter()
        .find(|s| is(s.1))
        .map(|s| s.0)
        .expect("the fixture has the segment")
}

/// A JPEG whose SOF says `width` x `height`.
pub(super) fn jpeg_with_size(b: &[u8], width: u16, height: u16) -> Vec<u8> {
    let sof = jpeg_segment(b, is_sof);
    patched(b, |b| {
        put_be16(b, sof + 5, height);
        put_be16(b, sof + 7, width);
    })
}

/// An APP1 segment holding `tiff` as EXIF.
fn app1_exif(tiff: &[u8]) -> Vec<u8> {
    let mut seg: Vec<u8> = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    seg.extend_from_slice(b"Exif\0\0");
    seg.extend_from_slice(tiff);
    seg
}

/// The JPEG suite: the base (300 x 200), a rotated one, mutations and specials.
pub(super) fn jpeg_cases() -> Vec<Case> {
    const F: &str = "jpeg";
    let base = encode(&base_pixels(), Format::Jpg);
    let segments = jpeg_segments(&base);
    let sof = jpeg_segment(&base, is_sof);
    let sos = jpeg_segment(&base, |m| m == 0xDA);
    let dht = jpeg_segment(&base, |m| m == 0xC4);
    let dqt = jpeg_segment(&base, |m| m == 0xDB);
    let scan = sos + 2 + be16(&base, sos + 2);
    let end = base.len() - 2;
    let mut headers: Vec<usize> = segments.iter().map(|s| s.0).collect();
    headers.push(scan);

    let mut cases = vec![
        Case::valid(F, "jpeg-base", base.clone(), BASE),
        Case::valid(
            F,
            "jpeg-exif-rotated",
            splice(&base, 2, 0, &app1_exif(&exif_tiff(1, 6, 0))),
            (BASE.1, BASE.0),
        ),
    ];
    cases.extend(mutations(F, "jpeg", &base, &headers, 1));

    let byte_at = |at: usize, v: u8| patched(&base, |b| b[at] = v);
    let length_at = |at: usize, v: u16| patched(&base, |b| put_be16(b, at + 2, v));
    let scan_of = |fill: fn(usize) -> u8| {
        patched(&base, |b| {
            for (i, x) in b[scan..end].iter_mut().enumerate() {
                *x = fill(i);
            }
        })
    };
    let with_fill = {
        let mut b: Vec<u8> = vec![0xFF, 0xD8];
        b.extend(std::iter::repeat_n(0xFF, 65_536));
        b.extend_from_slice(&[0xFF, 0xD9]);
        b
    };
    cases.extend(named(
        F,
        "jpeg",
        vec![
            ("sof-65535x65535", jpeg_with_size(&base, 65535, 65535)),
            ("sof-0-high", jpeg_with_size(&base, 300, 0)),
            ("sof-0-wide", jpeg_with_size(&base, 0, 200)),
            ("sof-65535x1", jpeg_with_size(&base, 65535, 1)),
            ("sof-1x65535", jpeg_with_size(&base, 1, 65535)),
            ("sof-precision-12", byte_at(sof + 4, 12)),
            ("sof-precision-0", byte_at(sof + 4, 0)),
            ("sof-components-0", byte_at(sof + 9, 0)),
            ("sof-components-255", byte_at(sof + 9, 255)),
            ("sof-sampling-0", byte_at(sof + 11, 0x00)),
            ("sof-sampling-ff", byte_at(sof + 11, 0xFF)),
            ("sof-table-9", byte_at(sof + 12, 9)),
            ("sof-length-0", length_at(sof, 0)),
            ("sof-length-ffff", length_at(sof, 0xFFFF)),
            ("sof-as-progressive", byte_at(sof + 1, 0xC2)),
            ("sof-as-lossless", byte_at(sof + 1, 0xC3)),
            ("sof-as-arithmetic", byte_at(sof + 1, 0xC9)),
            ("no-sof", byte_at(sof + 1, 0xEF)),
            ("first-segment-length-0", length_at(2, 0)),
            ("first-segment-length-1", length_at(2, 1)),
            ("first-segment-length-ffff", length_at(2, 0xFFFF)),
            (
                "dht-counts-ff",
                patched(&base, |b| b[dht + 5..dht + 21].fill(0xFF)),
            ),
            ("dht-class-ff", byte_at(dht + 4, 0xFF)),
            ("dqt-table-ff", byte_at(dqt + 4, 0xFF)),
            ("sos-components-4", byte_at(sos + 4, 4)),
            ("sos-components-0", byte_at(sos + 4, 0)),
            (
                "dri-1-without-restarts",
                splice(&base, sof, 0, &[0xFF, 0xDD, 0, 4, 0, 1]),
            ),
            (
                "exif-loop",
                splice(&base, 2, 0, &app1_exif(&exif_tiff(1, 1, 8))),
            ),
            (
                "exif-count-65535",
                splice(&base, 2, 0, &app1_exif(&exif_tiff(0xFFFF, 1, 0))),
            ),
            (
                "exif-orientation-9999",
                splice(&base, 2, 0, &app1_exif(&exif_tiff(1, 9999, 0))),
            ),
            (
                "exif-ifd-past-end",
                splice(&base, 2, 0, &app1_exif(&exif_tiff(1, 6, 0xFFFF_FF00))),
            ),
            ("soi-eoi", vec![0xFF, 0xD8, 0xFF, 0xD9]),
            ("soi-fill-bytes", with_fill),
            ("scan-zeros", scan_of(|_| 0)),
            (
                "scan-stuffed-ones",
                scan_of(|i| if i % 2 == 0 { 0xFF } else { 0x00 }),
            ),
            (
                "scan-restart-markers",
                scan_of(|i| {
                    if i % 2 == 0 {
                        0xFF
                    } else {
                        0xD0 + (i / 2 % 8) as u8
                    }
                }),
            ),
            ("sof-65535-scan-zeros", {
                let b = jpeg_with_size(&base, 65535, 65535);
                patched(&b, |b| b[scan..end].fill(0))
            }),
        ],
    ));
    cases
}
