//! JPEG: decoding with `zune-jpeg`, encoding with `jpeg-encoder`.
//!
//! Gray (one-component) JPEGs decode to [`Layout::Gray`]; YCbCr, RGB, CMYK and YCCK ones to
//! [`Layout::Rgb`]. The EXIF orientation in APP1 is applied after decoding.

use jpeg_encoder::ColorType;
#[cfg(any(test, not(feature = "turbojpeg")))]
use jpeg_encoder::{Encoder, SamplingFactor};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;
use zune_jpeg::errors::DecodeErrors;

use super::{Header, Orientation, SourceFormat, dimensions_u16, header};
use crate::Error;
use crate::pixels::{Budget, Layout, Pixels};

/// The largest width and height a JPEG frame header can state.
const MAX_SIDE: usize = u16::MAX as usize;

fn options() -> DecoderOptions {
    DecoderOptions::default()
        .set_max_width(MAX_SIDE)
        .set_max_height(MAX_SIDE)
}

fn source_error(e: DecodeErrors) -> Error {
    super::decode_error("JPEG", e)
}

/// What the frame and APP headers say: everything [`read_header`] and [`decode`] need.
struct Info {
    width: u32,
    height: u32,
    components: u8,
    orientation: Orientation,
}

/// Parse the headers (up to the first scan) with `decoder`.
fn parse_headers(decoder: &mut JpegDecoder<ZCursor<&[u8]>>) -> Result<Info, Error> {
    decoder.decode_headers().map_err(source_error)?;
    let info = decoder
        .info()
        .ok_or_else(|| Error::source("cannot decode JPEG: no frame header"))?;
    let orientation = info
        .exif_data
        .as_deref()
        .map_or(Orientation::NORMAL, Orientation::from_exif);
    Ok(Info {
        width: u32::from(info.width),
        height: u32::from(info.height),
        components: info.components,
        orientation,
    })
}

/// The [`Header`] of a JPEG file, read up to the first scan.
pub(super) fn read_header(bytes: &[u8]) -> Result<Header, Error> {
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options());
    let info = parse_headers(&mut decoder)?;
    if !matches!(info.components, 1 | 3 | 4) {
        return Err(unsupported(info.components));
    }
    Ok(header(
        SourceFormat::Jpeg,
        (info.width, info.height),
        info.orientation,
        info.components == 1,
    ))
}

fn unsupported(components: u8) -> Error {
    Error::source(format!(
        "cannot decode JPEG: {components} colour components are not supported"
    ))
}

/// Decode a JPEG file to upright 8-bit pixels, checking the output against `budget` first.
pub(super) fn decode(bytes: &[u8], budget: Budget) -> Result<Pixels, Error> {
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options());
    let info = parse_headers(&mut decoder)?;
    let (layout, colorspace) = match info.components {
        1 => (Layout::Gray, ColorSpace::Luma),
        // YCbCr, RGB, CMYK and YCCK all convert to RGB in zune-jpeg.
        3 | 4 => (Layout::Rgb, ColorSpace::RGB),
        n => return Err(unsupported(n)),
    };
    decoder.set_options(options().jpeg_set_out_colorspace(colorspace));
    let mut px = Pixels::try_new(info.width, info.height, layout, budget)?;
    if decoder.output_buffer_size() != Some(px.data().len()) {
        return Err(Error::source("cannot decode JPEG: unexpected output size"));
    }
    decoder.decode_into(px.data_mut()).map_err(source_error)?;
    info.orientation.apply(px, budget)
}

/// Encode as JPEG at `quality` (clamped to 1..=100): gray as one component, colour as 4:2:0
/// YCbCr, alpha composited onto white first.
pub(super) fn encode(px: &Pixels, quality: u8) -> Result<Vec<u8>, Error> {
    let (w, h) = dimensions_u16(px, "jpg")?;
    let flat;
    let (data, color) = match px.layout() {
        Layout::Gray => (px.data(), ColorType::Luma),
        Layout::Rgb => (px.data(), ColorType::Rgb),
        Layout::GrayAlpha => {
            flat = flatten_on_white(px)?;
            (flat.data(), ColorType::Luma)
        }
        Layout::Rgba => {
            flat = flatten_on_white(px)?;
            (flat.data(), ColorType::Rgb)
        }
    };
    encode_samples(data, w, h, color, quality)
}

/// libjpeg-turbo's SIMD encoder, with the `turbojpeg` feature.
#[cfg(feature = "turbojpeg")]
fn encode_samples(
    data: &[u8],
    w: u16,
    h: u16,
    color: ColorType,
    quality: u8,
) -> Result<Vec<u8>, Error> {
    let gray = matches!(color, ColorType::Luma);
    super::turbo::encode(data, u32::from(w), u32::from(h), gray, quality)
}

/// Baseline, 4:2:0, with jpeg-encoder.
#[cfg(not(feature = "turbojpeg"))]
fn encode_samples(
    data: &[u8],
    w: u16,
    h: u16,
    color: ColorType,
    quality: u8,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, quality.clamp(1, 100));
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    encoder
        .encode(data, w, h, color)
        .map_err(|e| Error::internal(format!("cannot encode JPEG: {e}")))?;
    Ok(out)
}

/// Composite an image with alpha onto white, dropping the alpha channel.
fn flatten_on_white(px: &Pixels) -> Result<Pixels, Error> {
    crate::ops::flatten_alpha(px.clone(), [255, 255, 255])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testutil::{CENTRES, H, W, close, exif_payload, expected, sample, with_exif};

    fn jpeg(layout: Layout) -> Vec<u8> {
        encode(&sample(layout), 85).unwrap()
    }

    #[test]
    fn colour_round_trip_keeps_solid_blocks() {
        let bytes = jpeg(Layout::Rgb);
        let h = read_header(&bytes).unwrap();
        assert_eq!((h.width, h.height, h.gray), (W, H, false));
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!((px.width(), px.height(), px.layout()), (W, H, Layout::Rgb));
        for (x, y) in CENTRES {
            let want = expected(Layout::Rgb, x, y);
            assert!(
                close(px.pixel(x, y), &want, 8),
                "({x},{y}): {:?} vs {want:?}",
                px.pixel(x, y)
            );
        }
    }

    #[test]
    fn gray_is_a_one_component_jpeg() {
        let bytes = jpeg(Layout::Gray);
        let h = read_header(&bytes).unwrap();
        assert!(h.gray);
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!(px.layout(), Layout::Gray);
        for (x, y) in CENTRES {
            let want = expected(Layout::Gray, x, y);
            assert!(close(px.pixel(x, y), &want, 8), "({x},{y})");
        }
    }

    #[test]
    fn alpha_is_composited_onto_white() {
        let px = decode(&jpeg(Layout::Rgba), Budget::default()).unwrap();
        assert_eq!(px.layout(), Layout::Rgb);
        let want: [(u32, u32, [u8; 3]); 4] = [
            (8, 8, [255, 0, 0]),
            (56, 8, [0, 255, 0]),
            // blue at alpha 128: 255 * 127 / 255 = 127 for red and green
            (8, 40, [127, 127, 255]),
            // alpha 0: white
            (56, 40, [255, 255, 255]),
        ];
        for (x, y, rgb) in want {
            assert!(
                close(px.pixel(x, y), &rgb, 8),
                "({x},{y}): {:?}",
                px.pixel(x, y)
            );
        }

        let px = decode(&jpeg(Layout::GrayAlpha), Budget::default()).unwrap();
        assert_eq!(px.layout(), Layout::Gray);
        // 60 at alpha 128: (60 * 128 + 255 * 127) / 255 = 157
        let want = [(8, 8, 0u8), (56, 8, 255), (8, 40, 157), (56, 40, 255)];
        for (x, y, g) in want {
            assert!(
                close(px.pixel(x, y), &[g], 8),
                "({x},{y}): {:?}",
                px.pixel(x, y)
            );
        }
    }

    #[test]
    fn flatten_is_exact_at_the_extremes() {
        let px = Pixels::from_vec(3, 1, Layout::GrayAlpha, vec![10, 255, 10, 0, 0, 128]).unwrap();
        let flat = flatten_on_white(&px).unwrap();
        assert_eq!(flat.data(), &[10, 255, 127]);
    }

    #[test]
    fn exif_orientation_6_is_applied() {
        let bytes = with_exif(&jpeg(Layout::Rgb), &exif_payload(6));
        let h = read_header(&bytes).unwrap();
        assert_eq!(h.orientation.value(), 6);
        assert_eq!((h.width, h.height), (H, W));
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!((px.width(), px.height()), (H, W));
        // Rotated 90° clockwise: source (x, y) lands at (H - 1 - y, x).
        for (x, y) in CENTRES {
            let want = expected(Layout::Rgb, x, y);
            let got = px.pixel(H - 1 - y, x);
            assert!(close(got, &want, 8), "({x},{y}): {got:?} vs {want:?}");
        }
        // The red top-left block is now top-right.
        assert!(close(px.pixel(H - 1 - 8, 8), &[255, 0, 0], 8));
    }

    #[test]
    fn broken_exif_is_ignored() {
        let bytes = with_exif(&jpeg(Layout::Rgb), b"II*\0\xff\xff");
        let h = read_header(&bytes).unwrap();
        assert_eq!(h.orientation, Orientation::NORMAL);
        assert_eq!((h.width, h.height), (W, H));
    }

    #[test]
    fn budget_is_checked_before_decoding() {
        let bytes = jpeg(Layout::Rgb);
        let need = u64::from(W * H * 3);
        assert!(decode(&bytes, Budget::new(need - 1)).is_err());
        assert!(decode(&bytes, Budget::new(need)).is_ok());
    }

    #[test]
    fn quality_changes_the_size() {
        let px = sample(Layout::Rgb);
        let low = encode(&px, 10).unwrap();
        let high = encode(&px, 100).unwrap();
        assert!(low.len() < high.len());
        assert!(encode(&px, 0).is_ok());
    }

    /// The CMYK blocks of [`cmyk_jpeg`], 16x16 each, left to right: white, cyan, red, 50% black,
    /// and a dark orange mixing ink and black.
    const CMYK_BLOCKS: [[u8; 4]; 5] = [
        [0, 0, 0, 0],
        [255, 0, 0, 0],
        [0, 255, 255, 0],
        [0, 0, 0, 128],
        [0, 128, 255, 64],
    ];

    /// An 80x16 CMYK JPEG of [`CMYK_BLOCKS`], stored as `color` (`Cmyk` or `CmykAsYcck`).
    fn cmyk_jpeg(color: ColorType) -> Vec<u8> {
        let data: Vec<u8> = (0..16)
            .flat_map(|_| (0..80).flat_map(|x| CMYK_BLOCKS[x / 16]))
            .collect();
        let mut out = Vec::new();
        Encoder::new(&mut out, 90)
            .encode(&data, 80, 16, color)
            .unwrap();
        out
    }

    /// The RGB a CMYK colour prints as: each channel (255 - ink) * (255 - k) / 255.
    fn cmyk_to_rgb([c, m, y, k]: [u8; 4]) -> [u8; 3] {
        [c, m, y].map(|ink| ((255 - u32::from(ink)) * (255 - u32::from(k)) / 255) as u8)
    }

    /// The Adobe APP14 colour transform of a JPEG (0 = CMYK, 2 = YCCK), if it has the segment.
    fn adobe_transform(jpeg: &[u8]) -> Option<u8> {
        let at = jpeg
            .windows(7)
            .position(|w| w[..2] == [0xFF, 0xEE] && &w[4..] == b"Ado")?;
        jpeg.get(at + 4 + 11).copied()
    }

    #[test]
    fn adobe_cmyk_and_ycck_decode_to_the_printed_rgb() {
        for (color, transform) in [(ColorType::Cmyk, 0), (ColorType::CmykAsYcck, 2)] {
            let bytes = cmyk_jpeg(color);
            assert_eq!(adobe_transform(&bytes), Some(transform), "{color:?}");
            let h = read_header(&bytes).unwrap();
            assert_eq!((h.width, h.height, h.gray), (80, 16, false), "{color:?}");
            let px = decode(&bytes, Budget::default()).unwrap();
            assert_eq!(
                (px.width(), px.height(), px.layout()),
                (80, 16, Layout::Rgb)
            );
            for (i, cmyk) in CMYK_BLOCKS.into_iter().enumerate() {
                let (x, y) = (16 * i as u32 + 8, 8);
                let want = cmyk_to_rgb(cmyk);
                let got = px.pixel(x, y);
                assert!(
                    close(got, &want, 12),
                    "{color:?} {cmyk:?}: {got:?} vs {want:?}"
                );
            }
        }
    }

    /// [`sample`] in `layout` as a progressive JPEG.
    fn progressive(layout: Layout) -> Vec<u8> {
        let (color, px) = match layout {
            Layout::Gray => (ColorType::Luma, sample(Layout::Gray)),
            _ => (ColorType::Rgb, sample(Layout::Rgb)),
        };
        let mut out = Vec::new();
        let mut encoder = Encoder::new(&mut out, 85);
        encoder.set_progressive(true);
        encoder.set_sampling_factor(SamplingFactor::F_2_2);
        encoder
            .encode(px.data(), W as u16, H as u16, color)
            .unwrap();
        out
    }

    #[test]
    fn progressive_jpegs_decode() {
        for layout in [Layout::Rgb, Layout::Gray] {
            let bytes = progressive(layout);
            // SOF2 (progressive DCT) and several scans.
            assert!(bytes.windows(2).any(|w| w == [0xFF, 0xC2]), "{layout:?}");
            assert!(!bytes.windows(2).any(|w| w == [0xFF, 0xC0]), "{layout:?}");
            assert!(bytes.windows(2).filter(|w| *w == [0xFF, 0xDA]).count() > 1);
            let h = read_header(&bytes).unwrap();
            assert_eq!((h.width, h.height), (W, H));
            assert_eq!(h.gray, layout.is_gray());
            let px = decode(&bytes, Budget::default()).unwrap();
            assert_eq!((px.width(), px.height(), px.layout()), (W, H, layout));
            for (x, y) in CENTRES {
                let want = expected(layout, x, y);
                let got = px.pixel(x, y);
                assert!(
                    close(got, &want, 12),
                    "{layout:?} ({x},{y}): {got:?} vs {want:?}"
                );
            }
        }
    }
}
