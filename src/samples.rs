//! Sample images, generated: the official IIIF validator test image and a few demo files.
//!
//! The validator image is a 1000 x 1000 grid of 10 x 10 solid squares whose colours are the
//! validator's table; generated here it is pixel-identical to the official PNG, so no binary is
//! committed.
//!
//! # Example
//!
//! ```
//! use tower_iiif::samples;
//!
//! let px = samples::validator_image();
//! assert_eq!((px.width(), px.height()), (1000, 1000));
//! // Square (x=1, y=0) is 195,133,120.
//! assert_eq!(px.pixel(150, 50), &[195, 133, 120]);
//! assert_eq!(samples::square_color(1, 0), [195, 133, 120]);
//! ```

use std::io;
use std::path::{Path, PathBuf};

use crate::codec::{self, EncodeOptions};
use crate::pixels::{Budget, Layout, Pixels};
use crate::request::Format;

/// The identifier the validators use for their test image.
pub const VALIDATOR_ID: &str = "67352ccc-d1b0-11e1-89ae-279075081939";

/// The validator's colour table, indexed `[y][x]` (row, column).
const COLORS: [[[u8; 3]; 10]; 10] = [
    [
        [61, 170, 126],
        [195, 133, 120],
        [168, 92, 163],
        [107, 55, 178],
        [112, 167, 30],
        [102, 193, 63],
        [159, 182, 192],
        [72, 172, 227],
        [18, 223, 145],
        [146, 137, 176],
    ],
    [
        [61, 107, 178],
        [171, 43, 102],
        [28, 91, 143],
        [251, 40, 184],
        [166, 63, 161],
        [225, 55, 91],
        [128, 252, 173],
        [119, 51, 100],
        [189, 121, 17],
        [84, 248, 55],
    ],
    [
        [82, 85, 234],
        [118, 45, 130],
        [86, 41, 173],
        [47, 36, 139],
        [232, 227, 23],
        [107, 194, 147],
        [148, 162, 90],
        [209, 85, 165],
        [88, 3, 210],
        [61, 144, 79],
    ],
    [
        [164, 122, 110],
        [242, 105, 171],
        [111, 230, 29],
        [2, 127, 170],
        [74, 80, 135],
        [167, 24, 95],
        [192, 165, 115],
        [87, 172, 159],
        [181, 16, 43],
        [110, 251, 49],
    ],
    [
        [129, 226, 88],
        [5, 85, 105],
        [174, 189, 7],
        [224, 12, 114],
        [79, 97, 47],
        [249, 214, 96],
        [154, 102, 2],
        [188, 42, 162],
        [189, 39, 244],
        [43, 105, 132],
    ],
    [
        [91, 37, 121],
        [113, 58, 41],
        [18, 139, 88],
        [133, 67, 108],
        [145, 160, 80],
        [167, 34, 136],
        [107, 237, 62],
        [99, 3, 54],
        [123, 147, 116],
        [165, 131, 55],
    ],
    [
        [138, 128, 42],
        [223, 69, 3],
        [93, 168, 128],
        [239, 174, 209],
        [45, 160, 79],
        [53, 254, 209],
        [111, 236, 219],
        [7, 42, 37],
        [246, 148, 214],
        [60, 23, 225],
    ],
    [
        [6, 85, 234],
        [45, 79, 140],
        [35, 2, 14],
        [85, 29, 156],
        [12, 54, 215],
        [172, 222, 21],
        [129, 113, 172],
        [105, 155, 100],
        [223, 177, 199],
        [147, 197, 226],
    ],
    [
        [121, 109, 204],
        [35, 117, 248],
        [204, 105, 137],
        [8, 55, 188],
        [203, 83, 70],
        [153, 77, 51],
        [239, 204, 166],
        [38, 220, 240],
        [77, 18, 136],
        [80, 67, 104],
    ],
    [
        [65, 246, 84],
        [121, 156, 184],
        [18, 86, 128],
        [240, 125, 7],
        [78, 28, 46],
        [137, 39, 183],
        [60, 96, 37],
        [98, 46, 2],
        [235, 36, 21],
        [161, 119, 182],
    ],
];

/// The colour of square (`x`, `y`) of the validator image (column, row; 0 to 9).
///
/// ```
/// assert_eq!(tower_iiif::samples::square_color(9, 9), [161, 119, 182]);
/// ```
pub fn square_color(x: usize, y: usize) -> [u8; 3] {
    COLORS[y][x]
}

/// The validator test image: 1000 x 1000 RGB.
///
/// See the [module docs](crate::samples) for an example.
pub fn validator_image() -> Pixels {
    grid(1000, 1000)
}

/// A `width` x `height` RGB image of the validator's 10 x 10 colour grid, each square
/// `width / 10` by `height / 10` pixels (the last row and column take the remainder).
///
/// ```
/// let px = tower_iiif::samples::grid(20, 10);
/// assert_eq!(px.pixel(19, 9), &tower_iiif::samples::square_color(9, 9));
/// ```
pub fn grid(width: u32, height: u32) -> Pixels {
    let (sw, sh) = ((width / 10).max(1), (height / 10).max(1));
    let mut data = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        let row = ((y / sh) as usize).min(9);
        for x in 0..width {
            let col = ((x / sw) as usize).min(9);
            data.extend_from_slice(&COLORS[row][col]);
        }
    }
    Pixels::from_vec(width, height, Layout::Rgb, data).expect("sizes match")
}

/// A smooth colourful `width` x `height` RGB pattern (for demo and benchmark sources).
///
/// ```
/// let px = tower_iiif::samples::pattern(64, 32);
/// assert_eq!(px.data().len(), 64 * 32 * 3);
/// ```
pub fn pattern(width: u32, height: u32) -> Pixels {
    let mut data = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            let fx = f64::from(x) / f64::from(width.max(1));
            let fy = f64::from(y) / f64::from(height.max(1));
            let r = 128.0 + 127.0 * (fx * 12.0).sin();
            let g = 128.0 + 127.0 * (fy * 9.0 + fx * 3.0).cos();
            let b = 255.0 * (1.0 - fx) * fy;
            data.extend_from_slice(&[r as u8, g as u8, b as u8]);
        }
    }
    Pixels::from_vec(width, height, Layout::Rgb, data).expect("sizes match")
}

/// Write the sample images into `dir` (created if needed), skipping names that exist, and
/// return the identifiers they are served under:
/// the validator image (PNG), `landscape` (4000 x 2600 JPEG), `transparent` (PNG with alpha)
/// and `gray` (grayscale TIFF).
///
/// No link is ever followed and no existing file is written over: each file is written to a
/// new temporary file (create-new, so a planted link makes it fail rather than write through
/// it) and then linked to its name, which fails if the name was taken in the meantime; a name
/// taken by anything, a dangling link included, is left alone.
///
/// ```no_run
/// let ids = tower_iiif::samples::write_samples("samples".as_ref()).unwrap();
/// assert!(ids.iter().any(|id| id == tower_iiif::samples::VALIDATOR_ID));
/// ```
pub fn write_samples(dir: &Path) -> io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    type Sample = (&'static str, Format, fn() -> Pixels);
    let files: [Sample; 4] = [
        (VALIDATOR_ID, Format::Png, validator_image),
        ("landscape", Format::Jpg, || pattern(4000, 2600)),
        ("transparent", Format::Png, transparent),
        ("gray", Format::Tif, || {
            crate::ops::to_gray(pattern(700, 500)).expect("gray conversion of a valid image")
        }),
    ];
    let mut ids = Vec::new();
    for (id, format, make) in files {
        let path: PathBuf = dir.join(format!("{id}.{}", format.extension()));
        // symlink_metadata: a link (even a dangling one) counts as taken.
        if std::fs::symlink_metadata(&path).is_err() {
            let bytes = codec::encode(&make(), format, &EncodeOptions::default())
                .map_err(|e| io::Error::other(e.to_string()))?;
            write_new(dir, &path, &bytes)?;
        }
        ids.push(id.to_owned());
    }
    Ok(ids)
}

/// Write `bytes` to `path` if nothing has that name, never through a link: into a new
/// temporary file in `dir` (create-new fails on any existing name, links included), then
/// hard-linked to `path` (which fails if the name exists; losing that race is fine).
fn write_new(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("sample"),
        std::process::id()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    let linked = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let removed = std::fs::remove_file(&tmp);
    linked.and(removed)
}

/// A 400 x 300 RGBA image: an opaque red disc on a transparent background.
fn transparent() -> Pixels {
    let mut px = Pixels::try_new(400, 300, Layout::Rgba, Budget::default()).expect("small");
    let stride = px.stride();
    for (y, row) in px.data_mut().chunks_exact_mut(stride).enumerate() {
        for (x, p) in row.chunks_exact_mut(4).enumerate() {
            let (dx, dy) = (x as f64 - 200.0, y as f64 - 150.0);
            if dx * dx + dy * dy < 120.0 * 120.0 {
                p.copy_from_slice(&[220, 30, 30, 255]);
            }
        }
    }
    px
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn planted_links_are_never_followed() {
        let dir =
            std::env::temp_dir().join(format!("tower-iiif-samples-links-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim.txt");
        std::fs::write(&victim, b"precious").unwrap();
        let outside = dir.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let samples = dir.join("samples");
        std::fs::create_dir_all(&samples).unwrap();
        // The old temporary name, a sample's own name pointing at a file, a dangling link
        // where a sample goes, and the new temporary name.
        std::os::unix::fs::symlink(&victim, samples.join("landscape.partial")).unwrap();
        std::os::unix::fs::symlink(&victim, samples.join("gray.tif")).unwrap();
        std::os::unix::fs::symlink(outside.join("new.png"), samples.join("transparent.png"))
            .unwrap();
        let tmp = format!(".landscape.jpg.{}.tmp", std::process::id());
        std::os::unix::fs::symlink(&victim, samples.join(tmp)).unwrap();
        let res = write_samples(&samples);
        // The landscape cannot be written (its temporary name is taken): an error, no write.
        assert!(res.is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!outside.join("new.png").exists());
        assert!(std::fs::symlink_metadata(samples.join("landscape.jpg")).is_err());
        // Without the planted temporary name, the others are written and the links left alone.
        std::fs::remove_file(samples.join(format!(".landscape.jpg.{}.tmp", std::process::id())))
            .unwrap();
        let ids = write_samples(&samples).unwrap();
        assert_eq!(ids.len(), 4);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!outside.join("new.png").exists());
        assert!(samples.join("landscape.jpg").metadata().unwrap().is_file());
        assert!(
            std::fs::symlink_metadata(samples.join("gray.tif"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
