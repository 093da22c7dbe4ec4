//! The `region` parameter: `full`, `square`, `x,y,w,h` or `pct:x,y,w,h`.

use std::fmt;
use std::str::FromStr;

use super::number;
use crate::Error;
use crate::pixels::Rect;

/// The rectangular portion of the full image to return.
///
/// ```
/// use tower_iiif::request::Region;
///
/// assert_eq!("square".parse::<Region>().unwrap(), Region::Square);
/// let r: Region = "10,20,300,400".parse().unwrap();
/// assert_eq!(r, Region::Pixels { x: 10, y: 20, w: 300, h: 400 });
/// assert_eq!("pct:10.50,0,50,50".parse::<Region>().unwrap().to_string(), "pct:10.5,0,50,50");
/// assert_eq!("0,0,0,10".parse::<Region>().unwrap_err().status(), 400);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Region {
    /// The whole image.
    Full,
    /// The largest centred square.
    Square,
    /// A pixel rectangle.
    Pixels {
        /// Left.
        x: u32,
        /// Top.
        y: u32,
        /// Width.
        w: u32,
        /// Height.
        h: u32,
    },
    /// A rectangle in percent of the full image's width and height.
    Percent {
        /// Left, percent of the width.
        x: f64,
        /// Top, percent of the height.
        y: f64,
        /// Width, percent of the width.
        w: f64,
        /// Height, percent of the height.
        h: f64,
    },
}

impl Region {
    /// The pixel rectangle this region selects from a `width` x `height` image, clipped to the
    /// image. A region of zero size, or wholly outside the image, is a 400.
    pub(crate) fn resolve(&self, width: u32, height: u32) -> Result<Rect, Error> {
        let rect = match *self {
            Region::Full => Rect::new(0, 0, width, height),
            Region::Square => {
                let side = width.min(height);
                Rect::new((width - side) / 2, (height - side) / 2, side, side)
            }
            Region::Pixels { x, y, w, h } => {
                if x >= width || y >= height {
                    return Err(Error::bad_request(format!(
                        "region: {x},{y} lies outside the {width}x{height} image"
                    )));
                }
                Rect::new(x, y, w.min(width - x), h.min(height - y))
            }
            Region::Percent { x, y, w, h } => {
                // Round the edges, not the sizes, so adjacent tiles never leave gaps.
                let edge = |pct: f64, dim: u32| -> u32 {
                    (pct / 100.0 * f64::from(dim)).round().min(f64::from(dim)) as u32
                };
                let (x0, y0) = (edge(x, width), edge(y, height));
                if x >= 100.0 || y >= 100.0 || x0 >= width || y0 >= height {
                    return Err(Error::bad_request(format!(
                        "region: pct:{x},{y} lies outside the image"
                    )));
                }
                let (x1, y1) = (edge(x + w, width), edge(y + h, height));
                Rect::new(x0, y0, x1 - x0, y1 - y0)
            }
        };
        if rect.w == 0 || rect.h == 0 {
            return Err(Error::bad_request(
                "region: the region selects no pixels of the image",
            ));
        }
        Ok(rect)
    }
}

impl FromStr for Region {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let err = |e: Error| e.context("region");
        match s {
            "full" => return Ok(Region::Full),
            "square" => return Ok(Region::Square),
            _ => {}
        }
        if let Some(rest) = s.strip_prefix("pct:") {
            let [x, y, w, h] = four(rest, number::decimal).map_err(err)?;
            if w == 0.0 || h == 0.0 {
                return Err(Error::bad_request("region: width and height must not be 0"));
            }
            return Ok(Region::Percent { x, y, w, h });
        }
        let [x, y, w, h] = four(s, number::integer).map_err(err)?;
        if w == 0 || h == 0 {
            return Err(Error::bad_request("region: width and height must not be 0"));
        }
        Ok(Region::Pixels { x, y, w, h })
    }
}

/// Parse `a,b,c,d`: exactly four numbers.
fn four<T: Copy + Default>(s: &str, parse: fn(&str) -> Result<T, Error>) -> Result<[T; 4], Error> {
    let mut parts = s.split(',');
    let mut out = [T::default(); 4];
    for slot in &mut out {
        let part = parts
            .next()
            .ok_or_else(|| Error::bad_request(format!("{s:?} is not x,y,w,h")))?;
        *slot = parse(part)?;
    }
    if parts.next().is_some() {
        return Err(Error::bad_request(format!("{s:?} is not x,y,w,h")));
    }
    Ok(out)
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Region::Full => f.write_str("full"),
            Region::Square => f.write_str("square"),
            Region::Pixels { x, y, w, h } => write!(f, "{x},{y},{w},{h}"),
            Region::Percent { x, y, w, h } => write!(
                f,
                "pct:{},{},{},{}",
                number::canonical(x),
                number::canonical(y),
                number::canonical(w),
                number::canonical(h)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves() {
        let table: &[(&str, (u32, u32), Rect)] = &[
            ("full", (300, 200), Rect::new(0, 0, 300, 200)),
            ("square", (300, 200), Rect::new(50, 0, 200, 200)),
            ("square", (200, 301), Rect::new(0, 50, 200, 200)),
            ("0,0,10,10", (300, 200), Rect::new(0, 0, 10, 10)),
            ("125,15,200,200", (300, 200), Rect::new(125, 15, 175, 185)),
            ("299,199,5,5", (300, 200), Rect::new(299, 199, 1, 1)),
            ("pct:10,10,80,80", (1000, 500), Rect::new(100, 50, 800, 400)),
            ("pct:0,0,100,100", (333, 77), Rect::new(0, 0, 333, 77)),
            ("pct:50,50,100,100", (100, 100), Rect::new(50, 50, 50, 50)),
            ("pct:0,0,150,100", (100, 100), Rect::new(0, 0, 100, 100)),
            ("pct:41,61,9,9", (1000, 1000), Rect::new(410, 610, 90, 90)),
            (
                "pct:33.3,0,33.4,100",
                (1000, 10),
                Rect::new(333, 0, 334, 10),
            ),
        ];
        for (s, (w, h), want) in table {
            let r: Region = s.parse().unwrap();
            assert_eq!(r.resolve(*w, *h).unwrap(), *want, "{s} on {w}x{h}");
        }
    }

    #[test]
    fn adjacent_percent_tiles_leave_no_gaps() {
        let width = 997;
        let mut next = 0;
        for i in 0..3 {
            let x = f64::from(i) * 100.0 / 3.0;
            let r = Region::Percent {
                x,
                y: 0.0,
                w: 100.0 / 3.0,
                h: 100.0,
            };
            let rect = r.resolve(width, 10).unwrap();
            assert_eq!(rect.x, next);
            next = rect.right();
        }
        assert_eq!(next, width);
    }

    #[test]
    fn refuses() {
        let syntax = [
            "",
            "ful",
            "FULL",
            "0,0,10",
            "0,0,10,10,10",
            "0,0,0,10",
            "0,0,10,0",
            "-1,0,10,10",
            "0,0,1.5,10",
            "+1,0,1,1",
            "pct:",
            "pct:0,0,0,10",
            "pct:-1,0,1,1",
            "pct:1e1,0,1,1",
            "pct:NaN,0,1,1",
            "pct:inf,0,1,1",
            "0,0,10,10,",
            " 0,0,1,1",
        ];
        for s in syntax {
            assert_eq!(s.parse::<Region>().unwrap_err().status(), 400, "{s:?}");
        }
        let outside = [
            "300,0,10,10",
            "0,200,10,10",
            "pct:100,0,10,10",
            "pct:0,99.9999,1,1",
        ];
        for s in outside {
            let r: Region = s.parse().unwrap();
            assert_eq!(r.resolve(300, 200).unwrap_err().status(), 400, "{s}");
        }
    }

    #[test]
    fn displays_canonically() {
        for s in ["full", "square", "1,2,3,4", "pct:1.5,0,50,50"] {
            assert_eq!(s.parse::<Region>().unwrap().to_string(), s);
        }
    }
}

/// The examples that stood in the doc comments of these crate-private items.
#[cfg(test)]
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    #[test]
    fn doc_region_resolve_outside() {
        use crate::request::Region;
        let r: Region = "1000,0,10,10".parse().unwrap();
        assert_eq!(r.resolve(1000, 1000).unwrap_err().status(), 400);
    }

    #[test]
    fn doc_region_5() {
        use crate::pixels::Rect;
        use crate::request::Region;

        let r: Region = "125,15,200,200".parse().unwrap();
        // Clipped at the image edge, as the spec's own example shows.
        assert_eq!(r.resolve(300, 200).unwrap(), Rect::new(125, 15, 175, 185));
        let p: Region = "pct:10,10,80,80".parse().unwrap();
        assert_eq!(p.resolve(1000, 500).unwrap(), Rect::new(100, 50, 800, 400));
        assert_eq!(
            "square"
                .parse::<Region>()
                .unwrap()
                .resolve(300, 200)
                .unwrap(),
            Rect::new(50, 0, 200, 200)
        );
    }
}
