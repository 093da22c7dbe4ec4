//! Tests of `tiff`.

use super::*;
use crate::codec::testutil::{H, W, sample, split_tiles};

#[test]
fn every_layout_round_trips_exactly() {
    for layout in [Layout::Gray, Layout::GrayAlpha, Layout::Rgb, Layout::Rgba] {
        let px = sample(layout);
        let bytes = encode(&px).unwrap();
        let h = read_header(&bytes).unwrap();
        assert_eq!((h.width, h.height), (W, H));
        assert_eq!(h.gray, layout.is_gray(), "{layout:?}");
        assert_eq!(decode(&bytes, Budget::default()).unwrap(), px, "{layout:?}");
    }
}

/// Write one image of colour type `C` with the tiff encoder, uncompressed.
fn write<C: colortype::ColorType>(w: u32, h: u32, data: &[C::Inner]) -> Vec<u8>
where
    [C::Inner]: ::tiff::encoder::TiffValue,
{
    let mut out = Cursor::new(Vec::new());
    TiffEncoder::new(&mut out)
        .unwrap()
        .write_image::<C>(w, h, data)
        .unwrap();
    out.into_inner()
}

#[test]
fn sixteen_bit_samples_keep_their_high_byte() {
    let bytes = write::<colortype::RGB16>(2, 1, &[0x1234, 0xABCD, 0xFFFF, 0x0001, 0x8000, 0x7FFF]);
    let px = decode(&bytes, Budget::default()).unwrap();
    assert_eq!(px.layout(), Layout::Rgb);
    assert_eq!(px.data(), &[0x12, 0xAB, 0xFF, 0x00, 0x80, 0x7F]);

    let bytes = write::<colortype::Gray16>(3, 1, &[0xFF00, 0x0100, 0x8080]);
    let px = decode(&bytes, Budget::default()).unwrap();
    assert_eq!(px.layout(), Layout::Gray);
    assert_eq!(px.data(), &[0xFF, 0x01, 0x80]);
    assert!(read_header(&bytes).unwrap().gray);
}

#[test]
fn cmyk_becomes_rgb() {
    let bytes = write::<colortype::CMYK8>(
        4,
        1,
        &[0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 128, 0, 255, 0],
    );
    let h = read_header(&bytes).unwrap();
    assert!(!h.gray);
    let px = decode(&bytes, Budget::default()).unwrap();
    assert_eq!(px.layout(), Layout::Rgb);
    assert_eq!(
        px.data(),
        &[255, 255, 255, 0, 255, 255, 0, 0, 0, 127, 255, 0]
    );

    let bytes = write::<colortype::CMYKA8>(1, 1, &[0, 255, 0, 0, 77]);
    let px = decode(&bytes, Budget::default()).unwrap();
    assert_eq!(px.layout(), Layout::Rgba);
    assert_eq!(px.data(), &[255, 0, 255, 77]);
}

#[test]
fn ycbcr_becomes_rgb() {
    // Red, mid gray, white, black.
    let bytes = write::<colortype::YCbCr8>(
        4,
        1,
        &[76, 85, 255, 128, 128, 128, 255, 128, 128, 0, 128, 128],
    );
    let px = decode(&bytes, Budget::default()).unwrap();
    assert_eq!(px.layout(), Layout::Rgb);
    let want = [254, 0, 0, 128, 128, 128, 255, 255, 255, 0, 0, 0];
    for (got, want) in px.data().iter().zip(want) {
        assert!(got.abs_diff(want) <= 2, "{:?}", px.data());
    }
}

#[test]
fn orientation_tag_is_honoured() {
    // 3x2 gray: a b c / d e f, orientation 6 -> d a / e b / f c.
    let mut out = Cursor::new(Vec::new());
    {
        let mut encoder = TiffEncoder::new(&mut out).unwrap();
        let mut image = encoder.new_image::<colortype::Gray8>(3, 2).unwrap();
        image.encoder().write_tag(Tag::Orientation, 6u16).unwrap();
        image.write_data(b"abcdef").unwrap();
    }
    let bytes = out.into_inner();
    let h = read_header(&bytes).unwrap();
    assert_eq!(h.orientation.value(), 6);
    assert_eq!((h.width, h.height), (2, 3));
    let px = decode(&bytes, Budget::default()).unwrap();
    assert_eq!((px.width(), px.height()), (2, 3));
    assert_eq!(px.data(), b"daebfc");
}

/// A hand-made little-endian, uncompressed, single-strip gray TIFF of `bits` per sample.
fn gray_tiff(w: u32, h: u32, bits: u16, photometric: u16, data: &[u8]) -> Vec<u8> {
    gray_tiff_compressed(w, h, bits, photometric, 1, data)
}

/// [`gray_tiff`] with its strip compressed as `compression` says.
fn gray_tiff_compressed(
    w: u32,
    h: u32,
    bits: u16,
    photometric: u16,
    compression: u16,
    data: &[u8],
) -> Vec<u8> {
    const ENTRIES: u16 = 9;
    let data_offset = 8 + 2 + 12 * u32::from(ENTRIES) + 4;
    let entries: [(u16, u16, u32); ENTRIES as usize] = [
        (256, 4, w),
        (257, 4, h),
        (258, 3, u32::from(bits)),
        (259, 3, u32::from(compression)),
        (262, 3, u32::from(photometric)),
        (273, 4, data_offset),
        (277, 3, 1),
        (278, 4, h),
        (279, 4, data.len() as u32),
    ];
    let mut v = b"II*\0".to_vec();
    v.extend_from_slice(&8u32.to_le_bytes());
    v.extend_from_slice(&ENTRIES.to_le_bytes());
    for (tag, typ, value) in entries {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&typ.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        if typ == 3 {
            v.extend_from_slice(&(value as u16).to_le_bytes());
            v.extend_from_slice(&[0, 0]);
        } else {
            v.extend_from_slice(&value.to_le_bytes());
        }
    }
    v.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(v.len() as u32, data_offset);
    v.extend_from_slice(data);
    v
}

#[test]
fn bilevel_and_four_bit_gray_expand() {
    // 10x2, 1 bit: rows padded to 2 bytes.
    let bytes = gray_tiff(10, 2, 1, 1, &[0b1010_0000, 0b0100_0000, 0xFF, 0xC0]);
    let px = decode(&bytes, Budget::default()).unwrap();
    assert_eq!(px.layout(), Layout::Gray);
    let mut want: Vec<u8> = vec![255, 0, 255, 0, 0, 0, 0, 0, 0, 255];
    want.extend([255; 10]);
    assert_eq!(px.data(), &want[..]);

    // WhiteIsZero is inverted by the tiff crate.
    let bytes = gray_tiff(8, 1, 1, 0, &[0b1000_0000]);
    let px = decode(&bytes, Budget::default()).unwrap();
    assert_eq!(px.data(), &[0, 255, 255, 255, 255, 255, 255, 255]);

    // 3x1, 4 bit: 0x0, 0xF, 0x8.
    let bytes = gray_tiff(3, 1, 4, 1, &[0x0F, 0x80]);
    let px = decode(&bytes, Budget::default()).unwrap();
    assert_eq!(px.data(), &[0, 255, 136]);
}

/// A scanned page's usual format: 1-bit, CCITT Group 4 (Fax4), WhiteIsZero. Decoded to the
/// pixels it was encoded from.
#[test]
fn group_4_fax_decodes() {
    use fax::{Color, VecWriter, encoder::Encoder};
    let (w, h) = (203u32, 61u32);
    // Black bars and a black disc on white: runs of every length, changes between lines.
    let black = |x: u32, y: u32| {
        let (dx, dy) = (x as i32 - 120, y as i32 - 30);
        (x / 7).is_multiple_of(3) && y < 20 || dx * dx + dy * dy < 400 || y == 60
    };
    let mut encoder = Encoder::new(VecWriter::new());
    for y in 0..h {
        let line = (0..w).map(|x| {
            if black(x, y) {
                Color::Black
            } else {
                Color::White
            }
        });
        encoder.encode_line(line, w as u16).unwrap();
    }
    let strip = encoder.finish().unwrap().finish();
    let bytes = gray_tiff_compressed(w, h, 1, 0, 4, &strip);
    let px = decode(&bytes, Budget::default()).unwrap();
    assert_eq!((px.width(), px.height(), px.layout()), (w, h, Layout::Gray));
    for y in 0..h {
        for x in 0..w {
            let want = if black(x, y) { 0 } else { 255 };
            assert_eq!(px.pixel(x, y), [want], "({x}, {y})");
        }
    }
    // The header agrees, and a cut strip is an error, not a panic.
    let header = read_header(&bytes).unwrap();
    assert_eq!((header.width, header.height), (w, h));
    let cut = gray_tiff_compressed(w, h, 1, 0, 4, &strip[..strip.len() / 2]);
    let _ = decode(&cut, Budget::default());
}

/// A multi-page TIFF is read as its first page.
#[test]
fn the_first_page_of_a_multi_page_file_is_read() {
    let first = sample(Layout::Rgb);
    let mut second = first.clone();
    for v in second.data_mut() {
        *v = 255 - *v;
    }
    let mut out = Vec::new();
    {
        let mut enc = TiffEncoder::new(Cursor::new(&mut out)).unwrap();
        for px in [&first, &second] {
            enc.write_image::<colortype::RGB8>(px.width(), px.height(), px.data())
                .unwrap();
        }
    }
    let got = decode(&out, Budget::default()).unwrap();
    assert_eq!(got.data(), first.data());
}

#[test]
fn bigtiff_decodes() {
    let px = sample(Layout::Rgb);
    let mut out = Cursor::new(Vec::new());
    TiffEncoder::new_big(&mut out)
        .unwrap()
        .write_image::<colortype::RGB8>(W, H, px.data())
        .unwrap();
    let bytes = out.into_inner();
    assert_eq!(super::super::sniff(&bytes), Some(SourceFormat::Tiff));
    assert_eq!(decode(&bytes, Budget::default()).unwrap(), px);
}

#[test]
fn unsupported_samples_are_errors() {
    let bytes = write::<colortype::GrayI8>(2, 1, &[-1, 5]);
    assert!(decode(&bytes, Budget::default()).is_err());
    let bytes = write::<colortype::Gray32Float>(2, 1, &[0.5, 1.0]);
    assert!(decode(&bytes, Budget::default()).is_err());
}

#[test]
fn budget_is_checked_before_decoding() {
    let bytes = encode(&sample(Layout::Rgb)).unwrap();
    let need = u64::from(W * H * 3);
    assert!(decode(&bytes, Budget::new(need - 1)).is_err());
    assert!(decode(&bytes, Budget::new(need)).is_ok());
}

#[test]
fn compressed_strips_round_trip_exactly() {
    use ::tiff::tags::Predictor;
    let deflate = Compression::Deflate(DeflateLevel::Balanced);
    // (setting, Compression tag, Predictor tag)
    let cases = [
        (Compression::Lzw, 5, Predictor::None),
        (Compression::Lzw, 5, Predictor::Horizontal),
        (deflate, 8, Predictor::None),
        (deflate, 8, Predictor::Horizontal),
        (Compression::Packbits, 32773, Predictor::None),
    ];
    for (compression, tag, predictor) in cases {
        for layout in [Layout::Gray, Layout::Rgb] {
            let px = sample(layout);
            let mut out = Cursor::new(Vec::new());
            let mut encoder = TiffEncoder::new(&mut out)
                .unwrap()
                .with_compression(compression)
                .with_predictor(predictor);
            // 48 rows in strips of 5: ten strips, the last one short.
            let written = if layout == Layout::Gray {
                let mut image = encoder.new_image::<colortype::Gray8>(W, H).unwrap();
                image.rows_per_strip(5).unwrap();
                image.write_data(px.data())
            } else {
                let mut image = encoder.new_image::<colortype::RGB8>(W, H).unwrap();
                image.rows_per_strip(5).unwrap();
                image.write_data(px.data())
            };
            written.unwrap();
            let bytes = out.into_inner();
            let what = format!("compression {tag}, {predictor:?}, {layout:?}");
            // The settings reached the file.
            let mut tags = Decoder::new(Cursor::new(&bytes)).unwrap();
            assert_eq!(tags.get_tag_unsigned::<u16>(Tag::Compression).unwrap(), tag);
            let stored = tags.find_tag_unsigned::<u16>(Tag::Predictor).unwrap();
            assert_eq!(stored.unwrap_or(1), predictor.to_u16(), "{what}");
            assert_eq!(tags.strip_count().unwrap(), 10, "{what}");

            let h = read_header(&bytes).unwrap();
            assert_eq!((h.width, h.height), (W, H), "{what}");
            assert_eq!(h.gray, layout.is_gray(), "{what}");
            assert_eq!(decode(&bytes, Budget::default()).unwrap(), px, "{what}");
        }
    }
}

/// Tile edge of [`tiled_tiff`] files.
const TILE: u32 = 16;
/// Size of the tiled test images: 3x2 tiles of 16, the right and bottom ones padded.
const TW: u32 = 40;
const TH: u32 = 24;

/// A little-endian TIFF with one tiled, chunky (PlanarConfiguration 1) image of `tiles`
/// ([`TILE`]-square, row by row), built by hand since the tiff encoder writes strips only.
fn tiled_tiff(
    (w, h): (u32, u32),
    samples: u16,
    compression: u16,
    photometric: u16,
    tiles: &[Vec<u8>],
) -> Vec<u8> {
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    let n = tiles.len();
    let mut entries: Vec<(u16, u16, Vec<u32>)> = vec![
        (256, LONG, vec![w]),
        (257, LONG, vec![h]),
        (258, SHORT, vec![8; usize::from(samples)]),
        (259, SHORT, vec![u32::from(compression)]),
        (262, SHORT, vec![u32::from(photometric)]),
        (277, SHORT, vec![u32::from(samples)]),
        (284, SHORT, vec![1]),
        (322, LONG, vec![TILE]),
        (323, LONG, vec![TILE]),
        (324, LONG, vec![0; n]),
        (325, LONG, tiles.iter().map(|t| t.len() as u32).collect()),
    ];
    let size = |typ: u16, count: usize| count * if typ == SHORT { 2 } else { 4 };
    let ifd_end = 8 + 2 + 12 * entries.len() + 4;
    // Values over 4 bytes go after the IFD, then the tile data.
    let external: usize = entries
        .iter()
        .map(|(_, typ, v)| size(*typ, v.len()))
        .filter(|&s| s > 4)
        .sum();
    let mut offset = (ifd_end + external) as u32;
    for (tag, _, values) in &mut entries {
        if *tag == 324 {
            for (value, tile) in values.iter_mut().zip(tiles) {
                *value = offset;
                offset += tile.len() as u32;
            }
        }
    }
    let mut v = b"II*\0".to_vec();
    v.extend_from_slice(&8u32.to_le_bytes());
    v.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    let mut extra = Vec::new();
    for (tag, typ, values) in &entries {
        let mut bytes = Vec::new();
        for &value in values {
            if *typ == SHORT {
                bytes.extend_from_slice(&(value as u16).to_le_bytes());
            } else {
                bytes.extend_from_slice(&value.to_le_bytes());
            }
        }
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&typ.to_le_bytes());
        v.extend_from_slice(&(values.len() as u32).to_le_bytes());
        if bytes.len() > 4 {
            v.extend_from_slice(&((ifd_end + extra.len()) as u32).to_le_bytes());
            extra.extend_from_slice(&bytes);
        } else {
            bytes.resize(4, 0);
            v.extend_from_slice(&bytes);
        }
    }
    v.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(v.len(), ifd_end);
    v.extend_from_slice(&extra);
    for tile in tiles {
        v.extend_from_slice(tile);
    }
    v
}

/// A 40x24 image in `layout` with a different value at every pixel.
fn gradient(layout: Layout) -> Pixels {
    let c = layout.channels();
    let data = (0..TH)
        .flat_map(|y| (0..TW).map(move |x| (x, y)))
        .flat_map(|(x, y)| {
            let rgb = [(x * 6) as u8, (y * 10) as u8, (x * 5 + y * 2 + 7) as u8];
            if c == 1 { vec![rgb[2]] } else { rgb.to_vec() }
        })
        .collect();
    Pixels::from_vec(TW, TH, layout, data).unwrap()
}

#[test]
fn uncompressed_tiles_are_assembled_and_cropped() {
    for (layout, samples, photometric) in [(Layout::Rgb, 3, 2), (Layout::Gray, 1, 1)] {
        let px = gradient(layout);
        let tiles = split_tiles(&px, TILE, Some(0xEE));
        assert_eq!(tiles.len(), 6);
        let bytes = tiled_tiff((TW, TH), samples, 1, photometric, &tiles);
        let h = read_header(&bytes).unwrap();
        assert_eq!((h.width, h.height, h.gray), (TW, TH, layout.is_gray()));
        assert_eq!(decode(&bytes, Budget::default()).unwrap(), px, "{layout:?}");
    }
}

/// The solid colour of each 16x16 tile of [`tile_colours`].
const TILE_RGB: [[u8; 3]; 6] = [
    [255, 0, 0],
    [0, 160, 0],
    [0, 0, 255],
    [240, 200, 40],
    [128, 128, 128],
    [20, 200, 220],
];

/// A 40x24 RGB image whose tiles are the solid colours of [`TILE_RGB`].
fn tile_colours() -> Pixels {
    let data = (0..TH)
        .flat_map(|y| (0..TW).map(move |x| (x, y)))
        .flat_map(|(x, y)| TILE_RGB[(y / TILE * 3 + x / TILE) as usize])
        .collect();
    Pixels::from_vec(TW, TH, Layout::Rgb, data).unwrap()
}

/// Each tile of `px` as a complete 16x16 JPEG, stored as `color` (the data is taken as it
/// is: `Rgb` is converted to YCbCr by the encoder, `Ycbcr` is not).
fn jpeg_tiles(px: &Pixels, color: jpeg_encoder::ColorType) -> Vec<Vec<u8>> {
    split_tiles(px, TILE, None)
        .into_iter()
        .map(|tile| {
            let mut out = Vec::new();
            let mut encoder = jpeg_encoder::Encoder::new(&mut out, 85);
            encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
            encoder.encode(&tile, 16, 16, color).unwrap();
            out
        })
        .collect()
}

/// Assert the centre of the visible part of every tile of a decoded [`tile_colours`] image.
fn assert_tile_colours(px: &Pixels, what: &str) {
    assert_eq!(
        (px.width(), px.height(), px.layout()),
        (TW, TH, Layout::Rgb),
        "{what}"
    );
    for (i, want) in TILE_RGB.iter().enumerate() {
        let (tx, ty) = (i as u32 % 3 * TILE, i as u32 / 3 * TILE);
        let x = tx + (TW - tx).min(TILE) / 2;
        let y = ty + (TH - ty).min(TILE) / 2;
        let got = px.pixel(x, y);
        assert!(
            crate::codec::testutil::close(got, want, 12),
            "{what}: tile {i} at ({x},{y}) is {got:?}, want {want:?}"
        );
    }
}

#[test]
fn jpeg_tiles_with_ycbcr_photometric_decode() {
    let tiles = jpeg_tiles(&tile_colours(), jpeg_encoder::ColorType::Rgb);
    let bytes = tiled_tiff((TW, TH), 3, 7, 6, &tiles);
    let h = read_header(&bytes).unwrap();
    assert_eq!((h.width, h.height, h.gray), (TW, TH, false));
    let px = decode(&bytes, Budget::default()).unwrap();
    assert_tile_colours(&px, "YCbCr photometric");
}

/// Replace the JFIF APP0 segment jpeg-encoder writes first with `segment` (may be empty).
fn replace_jfif(jpeg: &[u8], segment: &[u8]) -> Vec<u8> {
    assert_eq!(&jpeg[2..4], &[0xFF, 0xE0]);
    assert_eq!(&jpeg[6..11], b"JFIF\0");
    let end = 4 + usize::from(u16::from_be_bytes([jpeg[4], jpeg[5]]));
    [&jpeg[..2], segment, &jpeg[end..]].concat()
}

/// An Adobe APP14 segment with colour transform 0: three components are RGB.
const ADOBE_RGB: &[u8] = b"\xFF\xEE\x00\x0EAdobe\x00\x64\x00\x00\x00\x00\x00";

#[test]
fn jpeg_tiles_with_rgb_photometric_decode() {
    let px = tile_colours();
    // As the TIFF JPEG notes intend: the tile JPEG holds RGB itself, flagged by an Adobe
    // marker (transform 0), as libjpeg writes it.
    let rgb_flagged: Vec<Vec<u8>> = jpeg_tiles(&px, jpeg_encoder::ColorType::Ycbcr)
        .iter()
        .map(|t| replace_jfif(t, ADOBE_RGB))
        .collect();
    // RGB with no colour space marker at all (as in Aperio SVS files): Photometric decides.
    let rgb_unflagged: Vec<Vec<u8>> = jpeg_tiles(&px, jpeg_encoder::ColorType::Ycbcr)
        .iter()
        .map(|t| replace_jfif(t, &[]))
        .collect();
    // A JFIF tile, i.e. YCbCr by definition, in a file that says RGB.
    let jfif = jpeg_tiles(&px, jpeg_encoder::ColorType::Rgb);
    for (tiles, what) in [
        (rgb_flagged, "Adobe RGB tiles"),
        (rgb_unflagged, "unmarked RGB tiles"),
        (jfif, "JFIF YCbCr tiles"),
    ] {
        let bytes = tiled_tiff((TW, TH), 3, 7, 2, &tiles);
        assert!(!read_header(&bytes).unwrap().gray);
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_tile_colours(&px, what);
    }
}

#[test]
fn masked_reader_hides_its_positions_whatever_the_reads() {
    let bytes: Vec<u8> = (0..20).collect();
    let mut want = bytes.clone();
    for p in [3, 4, 11] {
        want[p] = 0xEF;
    }
    let mut reader = Masked::new(&bytes);
    reader.hide = vec![3, 4, 11];
    for piece in [1, 3, 4, 7, 64] {
        reader.seek(SeekFrom::Start(0)).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0; piece];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, want, "reads of {piece}");
    }
}

#[test]
fn broken_jpeg_tiles_are_errors_not_panics() {
    let px = tile_colours();
    let tiles: Vec<Vec<u8>> = jpeg_tiles(&px, jpeg_encoder::ColorType::Ycbcr)
        .iter()
        .map(|t| replace_jfif(t, ADOBE_RGB))
        .collect();
    let full = tiled_tiff((TW, TH), 3, 7, 2, &tiles);
    for len in [full.len() / 2, full.len() - 40, full.len() - 1] {
        let _ = decode(&full[..len], Budget::default());
    }
    // Marker lengths running past the tile, or too short to be one.
    for bad_len in [[0xFF, 0xFF], [0x00, 0x01], [0x00, 0x00]] {
        let broken: Vec<Vec<u8>> = tiles
            .iter()
            .map(|t| [&t[..4], &bad_len[..], &t[6..]].concat())
            .collect();
        let bytes = tiled_tiff((TW, TH), 3, 7, 2, &broken);
        let _ = decode(&bytes, Budget::default());
    }
}
