//! CCITT Group 3 TIFFs (Compression 2, "Modified Huffman", and 3, T.4 one- or
//! two-dimensional): the bilevel encoding of older scanned text and fax archives, which the
//! `tiff` crate does not read (it reads Group 4 with the `fax` crate). The strips are decoded
//! with `hayro-ccitt` (Group 3 1D and 2D, no unsafe code, no dependencies).
//!
//! The rows come out as changes of colour; a decoded black pixel is a 1 bit, which the
//! photometric interpretation maps as for every 1-bit TIFF: with WhiteIsZero (the fax
//! default) black, with BlackIsZero white. FillOrder 2 (least significant bit first) is
//! honoured, and tiles as well as strips. The output is gray, one byte a pixel, 0 or 255.

use std::io::{Read, Seek};

use ::tiff::decoder::Decoder;
use ::tiff::tags::Tag;
use hayro_ccitt::{DecodeSettings, DecoderContext, EncodingMode};

use crate::Error;
use crate::pixels::{Budget, Layout, Pixels};

fn err(message: impl std::fmt::Display) -> Error {
    Error::source(format!("cannot decode TIFF (CCITT Group 3): {message}"))
}

/// Decode the first image of a TIFF whose Compression is `compression` (2 or 3), `width` x
/// `height`, from the file `bytes` that `decoder` reads.
pub(super) fn decode<R: Read + Seek>(
    decoder: &mut Decoder<R>,
    bytes: &[u8],
    compression: u16,
    (width, height): (u32, u32),
    budget: Budget,
) -> Result<Pixels, Error> {
    let tag = |d: &mut Decoder<R>, t: Tag, default: u32| {
        d.find_tag_unsigned::<u32>(t)
            .map_err(|e| super::decode_error("TIFF", e))
            .map(|v| v.unwrap_or(default))
    };
    if tag(decoder, Tag::BitsPerSample, 1)? != 1 || tag(decoder, Tag::SamplesPerPixel, 1)? != 1 {
        return Err(err("the image is not bilevel"));
    }
    let photometric = tag(decoder, Tag::PhotometricInterpretation, 0)?;
    let fill_order = tag(decoder, Tag::FillOrder, 1)?;
    // T4Options (292): bit 0 two-dimensional coding, bit 2 EOLs padded to byte boundaries.
    let t4 = tag(decoder, Tag::Unknown(292), 0)?;
    let vec = |d: &mut Decoder<R>, t: Tag| {
        d.find_tag_unsigned_vec::<u64>(t)
            .map_err(|e| super::decode_error("TIFF", e))
    };
    // Strips are tiles as wide as the image.
    let (tile_w, tile_h, offsets, counts) = match vec(decoder, Tag::TileOffsets)? {
        Some(offsets) => (
            tag(decoder, Tag::TileWidth, 0)?,
            tag(decoder, Tag::TileLength, 0)?,
            offsets,
            vec(decoder, Tag::TileByteCounts)?.unwrap_or_default(),
        ),
        None => (
            width,
            tag(decoder, Tag::RowsPerStrip, height)?.clamp(1, height.max(1)),
            vec(decoder, Tag::StripOffsets)?.ok_or_else(|| err("no strips"))?,
            vec(decoder, Tag::StripByteCounts)?.unwrap_or_default(),
        ),
    };
    if tile_w == 0 || tile_h == 0 || tile_w > u32::from(u16::MAX) {
        return Err(err(format!("chunks of {tile_w} x {tile_h}")));
    }
    let (across, down) = (width.div_ceil(tile_w), height.div_ceil(tile_h));
    if offsets.len() != counts.len() || (offsets.len() as u64) < u64::from(across) * u64::from(down)
    {
        return Err(err("the strips or tiles do not cover the image"));
    }

    let mut px = Pixels::try_new(width, height, Layout::Gray, budget)?;
    let (black, white) = match photometric {
        0 => (0u8, 255u8),
        1 => (255, 0),
        p => {
            return Err(err(format!(
                "photometric interpretation {p} for bilevel data"
            )));
        }
    };
    px.data_mut().fill(white);
    let encoding = match (compression, t4 & 1) {
        (2, _) | (3, 0) => EncodingMode::Group3_1D,
        _ => EncodingMode::Group3_2D,
    };
    let mut chunk = Vec::new();
    for (i, (&offset, &count)) in offsets.iter().zip(&counts).enumerate() {
        let (col, row) = (i as u64 % u64::from(across), i as u64 / u64::from(across));
        if row >= u64::from(down) {
            break;
        }
        let (x, y) = (col as u32 * tile_w, row as u32 * tile_h);
        let data = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(count).ok())
            .and_then(|(start, len)| bytes.get(start..start.checked_add(len)?))
            .ok_or_else(|| err(format!("chunk {i} is outside the file")))?;
        chunk.clear();
        chunk.extend_from_slice(data);
        if fill_order == 2 {
            for b in &mut chunk {
                *b = b.reverse_bits();
            }
        }
        // A strip is as tall as its rows; a tile is whole (padded past the image's edges).
        let rows = if tile_w == width {
            tile_h.min(height - y)
        } else {
            tile_h
        };
        let settings = DecodeSettings {
            columns: tile_w,
            rows,
            end_of_block: compression == 3,
            end_of_line: compression == 3,
            rows_are_byte_aligned: compression == 2 || t4 & 4 != 0,
            encoding,
            strict: false,
        };
        let mut sink = Rows {
            px: &mut px,
            x,
            y,
            columns: tile_w,
            row: 0,
            rows,
            black,
        };
        let decoded = hayro_ccitt::decode(&chunk, &mut sink, &mut DecoderContext::new(settings));
        if sink.row < rows {
            // Rows missing from a chunk are an error; a complaint after every row is not.
            decoded.map_err(err)?;
            return Err(err(format!(
                "chunk {i} ends after {} of {rows} rows",
                sink.row
            )));
        }
    }
    Ok(px)
}

/// Writes a chunk's decoded rows into the image at (`x`, `y`): runs of black between the
/// changes, clipped to the image.
struct Rows<'a> {
    px: &'a mut Pixels,
    x: u32,
    y: u32,
    /// The chunk's width.
    columns: u32,
    /// Rows of the chunk decoded so far.
    row: u32,
    rows: u32,
    black: u8,
}

impl hayro_ccitt::Decoder for Rows<'_> {
    fn push_row(&mut self, changes: &[u32]) {
        if self.row >= self.rows {
            return;
        }
        let y = self.y + self.row;
        self.row += 1;
        let (width, height) = (self.px.width(), self.px.height());
        if y >= height {
            return;
        }
        let (x0, stride) = (self.x as usize, self.px.stride());
        // The chunk's columns inside the image (a tile may pass its right edge).
        let visible = self.columns.min(width - self.x.min(width)) as usize;
        let line = &mut self.px.data_mut()[y as usize * stride..][x0..x0 + visible];
        let mut at = changes.iter().map(|&c| (c as usize).min(visible));
        while let Some(start) = at.next() {
            let end = at.next().unwrap_or(visible);
            if start < end {
                line[start..end].fill(self.black);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fax")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Every Group 3 flavour (1D, 2D, with fill bits, several strips, bits in reverse order,
    /// min-is-white, tiles) and Group 4 (strips, tiles) decode to exactly the pixels of the
    /// uncompressed reference.
    #[test]
    fn group_3_and_4_decode_to_the_reference() {
        let reference = crate::codec::decode(&fixture("ref.tif"), Budget::default()).unwrap();
        let white_is_zero =
            crate::codec::decode(&fixture("ref-miniswhite.tif"), Budget::default()).unwrap();
        assert_eq!((reference.width(), reference.height()), (333, 90));
        // The page has both colours, and the two references are each other's negative.
        assert!(reference.data().contains(&0) && reference.data().contains(&255));
        assert!(
            reference
                .data()
                .iter()
                .zip(white_is_zero.data())
                .all(|(a, b)| a ^ b == 255)
        );
        for (name, want) in [
            ("g3-1d.tif", &reference),
            ("g3-2d.tif", &reference),
            ("g3-1d-fill.tif", &reference),
            ("g3-2d-fill.tif", &reference),
            ("g3-2d-strips.tif", &reference),
            ("g3-1d-lsb.tif", &reference),
            ("g3-2d-miniswhite.tif", &white_is_zero),
            ("g4.tif", &reference),
            ("g3-2d-tiled.tif", &reference),
            ("g4-tiled.tif", &reference),
        ] {
            let bytes = fixture(name);
            let header = crate::codec::read_header(&bytes).unwrap();
            assert_eq!(
                (header.width, header.height, header.gray),
                (333, 90, true),
                "{name}"
            );
            let px = crate::codec::decode(&bytes, Budget::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(px == *want, "{name}: pixels differ from the reference");
        }
    }

    /// Cut or corrupted Group 3 data: an error or an image, never a panic.
    #[test]
    fn broken_group_3_data_is_an_error_not_a_panic() {
        let bytes = fixture("g3-2d-strips.tif");
        for cut in (0..bytes.len()).step_by(7) {
            let _ = crate::codec::decode(&bytes[..cut], Budget::default());
        }
        let mut seed = 0x9E37_79B9_u32;
        for _ in 0..200 {
            let mut b = bytes.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let at = seed as usize % b.len();
                b[at] = (seed >> 8) as u8;
            }
            if let Err(e) = crate::codec::decode(&b, Budget::default()) {
                assert!(!e.message().contains(['{', '}', '\n']), "{e}");
            }
        }
        // Cut in the middle of the strips: a clear error.
        let e = crate::codec::decode(&bytes[..bytes.len() - 200], Budget::default()).unwrap_err();
        assert_eq!(e.status(), 500);
    }
}
