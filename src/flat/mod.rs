//! Large flat sources (JPEG and PNG of 16 Mpx and more): the [`ReducedPyramid`] built from one
//! decode (kept in memory and optionally in a store), the PNG decoded row by row
//! ([`png_reduce`]), and the render input of a request ([`input`]).

pub(crate) mod png_reduce;
pub(crate) mod reduced;
mod render;

pub(crate) use reduced::ReducedPyramid;
pub(crate) use render::{ReducedCache, input, render_png_region};
