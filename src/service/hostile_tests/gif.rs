//! The GIF suite's files: GIF block parsing and writing, and the hostile GIFs.

use super::*;

/// The size of a colour table whose flags are `packed` (0 without one).
fn gif_table(packed: u8) -> usize {
    match packed & 0x80 {
        0 => 0,
        _ => 3usize << ((packed & 7) + 1),
    }
}

/// The offset of a GIF's first image descriptor.
fn gif_descriptor(b: &[u8]) -> usize {
    let mut at = 13 + gif_table(b[10]);
    loop {
        match b[at] {
            0x2C => return at,
            0x21 => {
                at += 2;
                while b[at] != 0 {
                    at += 1 + usize::from(b[at]);
                }
                at += 1;
            }
            other => panic!("unexpected GIF block {other:#x} at {at}"),
        }
    }
}

/// A GIF whose screen and first frame say these sizes.
pub(super) fn gif_with_size(b: &[u8], screen: (u16, u16), frame: (u16, u16)) -> Vec<u8> {
    let desc = gif_descriptor(b);
    patched(b, |b| {
        put_le16(b, 6, screen.0);
        put_le16(b, 8, screen.1);
        put_le16(b, desc + 5, frame.0);
        put_le16(b, desc + 7, frame.1);
    })
}

/// `data` as GIF sub-blocks with their terminator.
fn gif_subblocks(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in data.chunks(255) {
        out.push(c.len() as u8);
        out.extend_from_slice(c);
    }
    out.push(0);
    out
}

/// A GIF89a with a 256-gray global table and one frame (left, top, width, height) of `lzw`
/// data of `min_code` bits.
fn gif_file(screen: (u16, u16), frame: [u16; 4], min_code: u8, lzw: &[u8]) -> Vec<u8> {
    let mut b = b"GIF89a".to_vec();
    b.extend_from_slice(&screen.0.to_le_bytes());
    b.extend_from_slice(&screen.1.to_le_bytes());
    b.extend_from_slice(&[0xF7, 0, 0]);
    b.extend((0..=255u8).flat_map(|i| [i, i, i]));
    b.push(0x2C);
    for v in frame {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&[0, min_code]);
    b.extend(gif_subblocks(lzw));
    b.push(0x3B);
    b
}

/// `count` sub-blocks of 255 zeros with no terminator.
fn endless_subblocks(count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * 256);
    for _ in 0..count {
        out.push(255);
        out.extend_from_slice(&[0; 255]);
    }
    out
}

/// The GIF suite: the crate's encoder's GIF (300 x 200), a hand-made gray one, mutations and
/// specials.
pub(super) fn gif_cases() -> Vec<Case> {
    const F: &str = "gif";
    let base = encode(&base_pixels(), Format::Gif);
    let tables = 13 + gif_table(base[10]);
    let desc = gif_descriptor(&base);
    let min_code = desc + 10 + gif_table(base[desc + 9]);
    let data = min_code + 1;
    let handmade = gif_file((64, 48), [0, 0, 64, 48], 8, &lzw_gif(&gradient(64, 48)));

    let mut cases = vec![
        Case::valid(F, "gif-base", base.clone(), BASE),
        Case::valid(F, "gif-handmade-gray", handmade, (64, 48)),
    ];
    cases.extend(mutations(
        F,
        "gif",
        &base,
        &[6, 10, 13, tables, desc, desc + 10, data],
        12,
    ));

    let byte_at = |at: usize, v: u8| patched(&base, |b| b[at] = v);
    let le16_at = |at: usize, v: u16| patched(&base, |b| put_le16(b, at, v));
    let mut rng = Rng::new(13);
    let garbage_lzw = {
        let mut b = base[..data].to_vec();
        b.extend(gif_subblocks(&rng.bytes(8192)));
        b.push(0x3B);
        b
    };
    let endless_frame = [&base[..data], endless_subblocks(4000).as_slice()].concat();
    let endless_extension = {
        let mut b = base[..tables].to_vec();
        b.extend_from_slice(&[0x21, 0xFE]);
        b.extend(endless_subblocks(4000));
        b
    };
    cases.extend(named(
        F,
        "gif",
        vec![
            (
                "screen-65535x65535",
                gif_with_size(&base, (65535, 65535), (300, 200)),
            ),
            (
                "frame-65535x65535",
                gif_with_size(&base, (300, 200), (65535, 65535)),
            ),
            (
                "both-65535x65535",
                gif_with_size(&base, (65535, 65535), (65535, 65535)),
            ),
            ("screen-0x0", gif_with_size(&base, (0, 0), (300, 200))),
            ("frame-0x0", gif_with_size(&base, (300, 200), (0, 0))),
            (
                "frame-wider-than-data",
                gif_with_size(&base, (300, 200), (600, 200)),
            ),
            (
                "frame-off-screen",
                patched(&base, |b| {
                    put_le16(b, desc + 1, 65000);
                    put_le16(b, desc + 3, 65000);
                }),
            ),
            ("frame-at-65535", le16_at(desc + 1, 65535)),
            ("lzw-min-code-0", byte_at(min_code, 0)),
            ("lzw-min-code-1", byte_at(min_code, 1)),
            ("lzw-min-code-12", byte_at(min_code, 12)),
            ("lzw-min-code-255", byte_at(min_code, 255)),
            ("global-table-flag-cleared", byte_at(10, base[10] & 0x7F)),
            ("global-table-size-7-flag", byte_at(10, base[10] | 0x87)),
            (
                "local-table-flag-set",
                byte_at(desc + 9, base[desc + 9] | 0x87),
            ),
            ("lzw-garbage", garbage_lzw),
            (
                "lzw-bomb",
                gif_file((64, 64), [0, 0, 64, 64], 8, &lzw_gif(&vec![0; 32 << 20])),
            ),
            (
                "lzw-bomb-65535",
                gif_file(
                    (65535, 65535),
                    [0, 0, 65535, 65535],
                    8,
                    &lzw_gif(&vec![0; 1 << 20]),
                ),
            ),
            ("endless-frame-data", endless_frame),
            ("endless-extension", endless_extension),
            ("no-image", [&base[..tables], &[0x3Bu8][..]].concat()),
            ("header-only", base[..13].to_vec()),
        ],
    ));
    cases
}
