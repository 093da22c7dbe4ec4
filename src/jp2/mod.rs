//! JPEG 2000 sources, read by range: the OpenJPEG wrapper ([`decode`] of a region at a
//! resolution reduction, through a [`ReadAt`](crate::source::read_at::ReadAt)), the tile-part
//! index and the codestream of a region's tiles ([`codestream`]), and the render input of a
//! request ([`input`]: the reduction, whether the index is read, the decode request).

pub(crate) mod codestream;
pub(crate) mod openjpeg;
mod render;

pub(crate) use openjpeg::sniff;
pub use openjpeg::{DecodeRequest, Decoded, Jp2Error, Jp2Info, decode, read_info};
pub(crate) use render::{
    IndexCache, index, index_cache, input, is_whole, levels, reads_index, reduce_for, request,
};
