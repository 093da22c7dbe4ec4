//! GIF sources with the `gif` crate: the first frame, drawn on the logical screen (transparent
//! where the frame does not cover it), as RGBA.

use std::io::Cursor;
use std::num::NonZeroU64;

use ::gif::{ColorOutput, DecodeOptions, Decoder, MemoryLimit};

use super::{Header, Orientation, SourceFormat, decode_error, header};
use crate::Error;
use crate::pixels::{Budget, Layout, Pixels};

fn decoder(bytes: &[u8], budget: Budget) -> Result<Decoder<Cursor<&[u8]>>, Error> {
    let mut options = DecodeOptions::new();
    options.set_color_output(ColorOutput::RGBA);
    if let Some(limit) = NonZeroU64::new(budget.max_bytes()) {
        options.set_memory_limit(MemoryLimit::Bytes(limit));
    }
    options
        .read_info(Cursor::new(bytes))
        .map_err(|e| decode_error("GIF", e))
}

/// The [`Header`] of a GIF: its logical screen.
pub(super) fn read_header(bytes: &[u8]) -> Result<Header, Error> {
    let d = decoder(bytes, Budget::default())?;
    let size = (u32::from(d.width()), u32::from(d.height()));
    Ok(header(SourceFormat::Gif, size, Orientation::NORMAL, false))
}

/// Decode the first frame onto the logical screen, checking the screen against `budget` first.
pub(super) fn decode(bytes: &[u8], budget: Budget) -> Result<Pixels, Error> {
    let mut d = decoder(bytes, budget)?;
    let (width, height) = (u32::from(d.width()), u32::from(d.height()));
    budget.check(width, height, Layout::Rgba)?;
    let mut px = Pixels::try_new(width, height, Layout::Rgba, budget)?;
    let Some(frame) = d.next_frame_info().map_err(|e| decode_error("GIF", e))? else {
        return Err(Error::source("cannot decode GIF: no image in the file"));
    };
    let (left, top) = (usize::from(frame.left), usize::from(frame.top));
    let (fw, fh) = (usize::from(frame.width), usize::from(frame.height));
    // The frame may be larger than the screen (up to 65535 x 65535): checked too.
    budget.check(
        u32::from(frame.width),
        u32::from(frame.height),
        Layout::Rgba,
    )?;
    if d.buffer_size() != fw * fh * 4 {
        return Err(Error::source("cannot decode GIF: unexpected frame size"));
    }
    let mut buf = Vec::new();
    buf.try_reserve_exact(d.buffer_size())
        .map_err(|_| Error::source("cannot decode GIF: out of memory"))?;
    buf.resize(d.buffer_size(), 0);
    d.read_into_buffer(&mut buf)
        .map_err(|e| decode_error("GIF", e))?;
    // The part of the frame on the screen.
    let (w, h) = (width as usize, height as usize);
    let cols = fw.min(w.saturating_sub(left));
    let rows = fh.min(h.saturating_sub(top));
    if cols == 0 || rows == 0 {
        // The frame is off the screen.
        return Ok(px);
    }
    let data = px.data_mut();
    for y in 0..rows {
        let src = &buf[y * fw * 4..][..cols * 4];
        data[((top + y) * w + left) * 4..][..cols * 4].copy_from_slice(src);
    }
    Ok(px)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::gif::{Encoder, Frame, Repeat};

    /// A 6x4 screen; frame one: 4x2 at (1, 1), colours by position; frame two all black.
    fn animated() -> Vec<u8> {
        let mut out = Vec::new();
        {
            let palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0];
            let mut enc = Encoder::new(&mut out, 6, 4, &palette).unwrap();
            enc.set_repeat(Repeat::Infinite).unwrap();
            let mut f = Frame::default();
            (f.left, f.top, f.width, f.height) = (1, 1, 4, 2);
            f.buffer = vec![0, 1, 2, 0, 2, 1, 0, 1].into();
            enc.write_frame(&f).unwrap();
            let mut f = Frame::default();
            (f.width, f.height) = (6, 4);
            f.buffer = vec![3; 24].into();
            enc.write_frame(&f).unwrap();
        }
        out
    }

    #[test]
    fn the_first_frame_is_drawn_on_the_logical_screen() {
        let bytes = animated();
        assert_eq!(super::super::sniff(&bytes), Some(SourceFormat::Gif));
        let h = read_header(&bytes).unwrap();
        assert_eq!((h.width, h.height, h.gray), (6, 4, false));
        let px = decode(&bytes, Budget::default()).unwrap();
        assert_eq!((px.width(), px.height(), px.layout()), (6, 4, Layout::Rgba));
        let at = |x: usize, y: usize| &px.data()[(y * 6 + x) * 4..][..4];
        assert_eq!(at(0, 0), [0, 0, 0, 0]); // outside the frame: transparent
        assert_eq!(at(1, 1), [255, 0, 0, 255]);
        assert_eq!(at(2, 1), [0, 255, 0, 255]);
        assert_eq!(at(3, 1), [0, 0, 255, 255]);
        assert_eq!(at(4, 2), [0, 255, 0, 255]);
        assert_eq!(at(5, 3), [0, 0, 0, 0]);
    }

    #[test]
    fn broken_and_oversized_gifs_are_clean_errors() {
        let bytes = animated();
        for cut in [6, 13, 20, 40, bytes.len() - 10] {
            let r = decode(&bytes[..cut], Budget::default());
            if let Err(e) = r {
                assert!(!e.message().contains('{'), "{e}");
            }
        }
        let tiny = Budget::new(10);
        assert!(decode(&bytes, tiny).is_err());
    }

    /// Found by the `decode` fuzz target: a first frame far larger than its screen made the
    /// decoder ask for 17 GB before any budget check.
    #[test]
    fn a_frame_larger_than_the_budget_is_refused_before_allocating() {
        let bytes = include_bytes!("../../tests/fixtures/fuzz/gif-huge-frame.gif");
        let e = decode(bytes, Budget::new(64 << 20)).unwrap_err();
        assert!(e.message().contains("larger than the memory budget"), "{e}");
    }
}
