//! The random suite's files: random bytes, text and magic bytes behind every image extension.

use super::*;

/// Every format's magic bytes: (name, extension, bytes).
fn magics() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&[0; 12]);
    bmp.extend_from_slice(&40u32.to_le_bytes());
    let mut bmp5 = b"BM".to_vec();
    bmp5.extend_from_slice(&[0; 12]);
    bmp5.extend_from_slice(&124u32.to_le_bytes());
    let riff = |tail: &[u8]| [b"RIFF\x00\x00\x10\x00WEBP".as_slice(), tail].concat();
    vec![
        ("jpeg", "jpg", vec![0xFF, 0xD8, 0xFF]),
        ("png", "png", PNG_SIGNATURE.to_vec()),
        ("tiff-le", "tif", b"II*\0".to_vec()),
        ("tiff-be", "tif", b"MM\0*".to_vec()),
        ("bigtiff-le", "tif", b"II+\0".to_vec()),
        ("bigtiff-be", "tif", b"MM\0+".to_vec()),
        ("jp2", "jp2", JP2_SIGNATURE.to_vec()),
        ("j2k", "j2k", vec![0xFF, 0x4F, 0xFF, 0x51]),
        ("gif87a", "gif", b"GIF87a".to_vec()),
        ("gif89a", "gif", b"GIF89a".to_vec()),
        ("webp", "webp", riff(b"")),
        ("webp-vp8l", "webp", riff(b"VP8L")),
        ("webp-vp8", "webp", riff(b"VP8 ")),
        ("webp-vp8x", "webp", riff(b"VP8X")),
        ("bmp", "bmp", bmp),
        ("bmp-v5", "bmp", bmp5),
    ]
}

/// The random suite: empty files, single bytes, text and random bytes behind every extension;
/// every format's magic bytes alone and followed by random bytes.
pub(super) fn random_cases() -> Vec<Case> {
    const F: &str = "random";
    let mut rng = Rng::new(0xD1CE);
    let mut cases = Vec::new();
    for ext in ["jpg", "png", "tif", "jp2", "gif", "webp", "bmp"] {
        cases.push(Case::hostile(F, format!("empty.{ext}"), Vec::new()));
        cases.push(Case::hostile(F, format!("one-byte.{ext}"), vec![0xFF]));
        cases.push(Case::hostile(
            F,
            format!("text.{ext}"),
            b"hello, this is not an image\n".to_vec(),
        ));
        cases.push(Case::hostile(
            F,
            format!("random-small.{ext}"),
            rng.bytes(100),
        ));
        cases.push(Case::hostile(
            F,
            format!("random-large.{ext}"),
            rng.bytes(200_003),
        ));
    }
    for (name, ext, magic) in magics() {
        let small = [magic.as_slice(), rng.bytes(4096).as_slice()].concat();
        let large = [magic.as_slice(), rng.bytes(300_001).as_slice()].concat();
        cases.push(Case::hostile(F, format!("magic-only-{name}.{ext}"), magic));
        cases.push(Case::hostile(
            F,
            format!("magic-random-{name}.{ext}"),
            small,
        ));
        cases.push(Case::hostile(
            F,
            format!("magic-random-large-{name}.{ext}"),
            large,
        ));
    }
    cases
}
