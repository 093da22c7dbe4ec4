//! The WebP suite's files: RIFF chunk parsing and writing, and the hostile WebPs.

use super::*;

/// The chunks of a WebP after its RIFF header: (offset, type, data length).
fn riff_chunks(b: &[u8]) -> Vec<(usize, [u8; 4], usize)> {
    let mut out = Vec::new();
    let mut at = 12;
    while at + 8 <= b.len() {
        let kind = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        let len = le32(b, at + 4);
        out.push((at, kind, len));
        at += 8 + len + (len & 1);
    }
    out
}

/// The chunk of `kind`: (offset, data length).
pub(super) fn riff_chunk_at(b: &[u8], kind: &[u8; 4]) -> (usize, usize) {
    riff_chunks(b)
        .into_iter()
        .find(|c| &c.1 == kind)
        .map(|c| (c.0, c.2))
        .expect("the fixture has the chunk")
}

/// One RIFF chunk, padded to an even length.
pub(super) fn riff_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = kind.to_vec();
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    out
}

/// A WebP file of `chunks`.
pub(super) fn riff_file(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body = chunks.concat();
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&((4 + body.len()) as u32).to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend(body);
    out
}

/// `v` as three little-endian bytes.
fn le24(v: u32) -> [u8; 3] {
    let b = v.to_le_bytes();
    [b[0], b[1], b[2]]
}

/// A VP8X chunk: `flags`, a `w` x `h` canvas (at least 1, at most 2^24 a side).
pub(super) fn vp8x_chunk(flags: u8, w: u32, h: u32) -> Vec<u8> {
    let mut d: Vec<u8> = vec![flags, 0, 0, 0];
    d.extend_from_slice(&le24(w - 1));
    d.extend_from_slice(&le24(h - 1));
    riff_chunk(b"VP8X", &d)
}

/// An ANMF chunk: a `w` x `h` frame at `x`, `y` holding `frame` (whole chunks).
fn anmf_chunk(x: u32, y: u32, w: u32, h: u32, frame: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    for v in [x / 2, y / 2, w - 1, h - 1, 100] {
        d.extend_from_slice(&le24(v));
    }
    d.push(0);
    d.extend_from_slice(frame);
    riff_chunk(b"ANMF", &d)
}

/// A lossy VP8 chunk of a `w` x `h` key frame whose first partition says `partition` bytes,
/// followed by random bytes.
fn vp8_chunk(w: u16, h: u16, partition: u32, rng: &mut Rng) -> Vec<u8> {
    let tag = (1u32 << 4) | (partition << 5);
    let mut d = le24(tag).to_vec();
    d.extend_from_slice(&[0x9D, 0x01, 0x2A]);
    d.extend_from_slice(&w.to_le_bytes());
    d.extend_from_slice(&h.to_le_bytes());
    d.extend(rng.bytes(1500));
    riff_chunk(b"VP8 ", &d)
}

/// A lossless WebP whose VP8L header says `w` x `h` (1 to 16384).
pub(super) fn webp_with_size(b: &[u8], w: u32, h: u32) -> Vec<u8> {
    let (pos, _) = riff_chunk_at(b, b"VP8L");
    let at = pos + 9;
    patched(b, |b| {
        let bits = le32(b, at) as u32;
        let bits = (bits & !((1 << 28) - 1)) | (w - 1) | ((h - 1) << 14);
        put_le32(b, at, bits);
    })
}

/// The WebP suite: the crate's encoder's lossless WebP (300 x 200), mutations and specials.
pub(super) fn webp_cases() -> Vec<Case> {
    const F: &str = "webp";
    let base = encode(&base_pixels(), Format::Webp);
    let (vp8l, vp8l_len) = riff_chunk_at(&base, b"VP8L");
    let frame = base[vp8l..(vp8l + 8 + vp8l_len + (vp8l_len & 1)).min(base.len())].to_vec();

    let mut cases = vec![Case::valid(F, "webp-base", base.clone(), BASE)];
    cases.extend(mutations(
        F,
        "webp",
        &base,
        &[4, 8, 12, 16, vp8l + 8, vp8l + 13],
        14,
    ));

    let le32_at = |at: usize, v: u32| patched(&base, |b| put_le32(b, at, v));
    let mut rng = Rng::new(15);
    let lossy = |w: u16, h: u16, partition: u32, rng: &mut Rng| {
        riff_file(&[vp8_chunk(w, h, partition, rng)])
    };
    cases.extend(named(
        F,
        "webp",
        vec![
            ("vp8l-16384x16384", webp_with_size(&base, 16384, 16384)),
            ("vp8l-1x16384", webp_with_size(&base, 1, 16384)),
            ("vp8l-version-7", patched(&base, |b| b[vp8l + 12] |= 0xE0)),
            ("vp8l-signature-0", patched(&base, |b| b[vp8l + 8] = 0)),
            ("riff-size-0", le32_at(4, 0)),
            ("riff-size-4", le32_at(4, 4)),
            ("riff-size-huge", le32_at(4, 0xFFFF_FFF0)),
            ("chunk-size-0", le32_at(vp8l + 4, 0)),
            ("chunk-size-huge", le32_at(vp8l + 4, 0xFFFF_FFF0)),
            (
                "chunk-size-past-end",
                le32_at(vp8l + 4, vp8l_len as u32 + 1001),
            ),
            (
                "vp8x-canvas-16777216",
                riff_file(&[vp8x_chunk(0, 1 << 24, 1 << 24), frame.clone()]),
            ),
            (
                "vp8x-canvas-65535",
                riff_file(&[vp8x_chunk(0, 65535, 65535), frame.clone()]),
            ),
            (
                "vp8x-canvas-1x1",
                riff_file(&[vp8x_chunk(0, 1, 1), frame.clone()]),
            ),
            (
                "vp8x-animated-without-frames",
                riff_file(&[vp8x_chunk(0x02, 300, 200), frame.clone()]),
            ),
            (
                "vp8x-alpha-without-alph",
                riff_file(&[vp8x_chunk(0x10, 300, 200), frame.clone()]),
            ),
            ("vp8x-only", riff_file(&[vp8x_chunk(0, 300, 200)])),
            (
                "anmf-frame-bomb",
                riff_file(&[
                    vp8x_chunk(0x02, 300, 200),
                    riff_chunk(b"ANIM", &[0; 6]),
                    anmf_chunk(0, 0, 1 << 24, 1 << 24, &frame),
                ]),
            ),
            (
                "anmf-offset-bomb",
                riff_file(&[
                    vp8x_chunk(0x02, 300, 200),
                    riff_chunk(b"ANIM", &[0; 6]),
                    anmf_chunk(0x1FF_FFFE, 0x1FF_FFFE, 300, 200, &frame),
                ]),
            ),
            (
                "anmf-canvas-bomb",
                riff_file(&[
                    vp8x_chunk(0x02, 1 << 24, 1 << 24),
                    riff_chunk(b"ANIM", &[0; 6]),
                    anmf_chunk(0, 0, 300, 200, &frame),
                ]),
            ),
            ("vp8-garbage", lossy(300, 200, 600, &mut rng)),
            ("vp8-16383x16383", lossy(16383, 16383, 600, &mut rng)),
            ("vp8-0x0", lossy(0, 0, 600, &mut rng)),
            ("vp8-partition-huge", lossy(300, 200, 0x7FFFF, &mut rng)),
            (
                "alph-garbage",
                riff_file(&[
                    vp8x_chunk(0x10, 300, 200),
                    riff_chunk(b"ALPH", &[&[1u8][..], rng.bytes(512).as_slice()].concat()),
                    vp8_chunk(300, 200, 600, &mut rng),
                ]),
            ),
            (
                "alph-garbage-lossless",
                riff_file(&[
                    vp8x_chunk(0x10, 300, 200),
                    riff_chunk(b"ALPH", &[&[1u8][..], rng.bytes(512).as_slice()].concat()),
                    frame.clone(),
                ]),
            ),
        ],
    ));
    cases
}
