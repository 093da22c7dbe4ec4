//! The IIIF Image API 3.0 and 2.1 as a [tower](https://docs.rs/tower) `Service`, for Rust web apps and gateways.
//!
//! [`IiifService`] answers the three kinds of IIIF request under whatever path it is mounted:
//! the base URI of an image (303 to its info.json), image information (`info.json`), and image
//! requests (`{region}/{size}/{rotation}/{quality}.{format}`), at compliance level 2 plus
//! mirroring, arbitrary rotation, upscaling and gif/tif/webp output. Every error is a response
//! with the right status and a one-line message; `call` never fails.
//!
//! # Mounting under axum
//!
//! With the `axum` feature, the mount path is the one given to `nest_service` and the peer
//! address (for trusted proxies) comes from axum's `ConnectInfo`:
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use tower_iiif::{IiifService, request::ApiVersion, source::FsSource};
//!
//! # #[tokio::main]
//! # async fn main() -> std::io::Result<()> {
//! let v3 = IiifService::new(FsSource::new("images")?);
//! let v2 = v3.clone().version(ApiVersion::V2); // shares the source and the caches
//! let app = axum::Router::new()
//!     .nest_service("/iiif/3", v3)
//!     .nest_service("/iiif/2", v2);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
//! # }
//! ```
//!
//! At the root of an app, use `Router::fallback_service(svc)`. Without the `axum` feature, or
//! under plain hyper (wrap the service in `hyper_util::service::TowerToHyperService`), give the
//! service its mount path with [`IiifService::path_prefix`]. The README shows the whole stack of
//! layers; `examples/` shows hyper and warp too.
//!
//! # Features
//!
//! - `turbojpeg` (default): libjpeg-turbo, built from source (needs cmake and nasm), for
//!   DCT-scaled and cropped JPEG decoding and SIMD encoding. Without it the crate builds with
//!   cargo and a C compiler alone.
//! - `axum`: read the mount path and the peer address from axum's extensions.
//!
//! # How a request travels
//!
//! The path is parsed (pure), a [`Source`](source::Source) finds the file, its header is read
//! (and cached), the geometry is planned (pure), and the render (decode only what the request
//! needs, crop, scale, rotate, encode) runs on tokio's blocking pool behind a bounded queue.
//! The layers in front ([`base_uri`], [`cache_control`], [`auth`], [`limit`]) talk to the
//! service through request extensions. `ARCHITECTURE.md` in the repository is the map.

#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The README's Rust code blocks, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod admin;
pub mod auth;
pub mod base_uri;
pub mod cache;
pub mod cache_control;
pub mod limit;
pub mod request;
pub mod source;

mod codec;
mod error;
mod flat;
mod info;
mod jp2;
mod ops;
mod pixels;
mod plan;
mod service;
mod tiff;

#[doc(hidden)]
pub mod samples;

pub use error::{Error, ErrorKind};
pub use info::ImageInfo;
pub use service::{HasIiifContext, Health, IiifBody, IiifContext, IiifService};

/// The futures of [`IiifService`] (each layer's is in the layer's module).
pub mod future {
    pub use crate::service::ResponseFuture;
}

/// Not public API: what this crate's benches and tests reach inside it. No semver guarantee.
#[doc(hidden)]
pub mod __private {
    pub use crate::codec::{EncodeOptions, decode, encode};
    pub use crate::jp2::codestream::read_index;
    pub use crate::ops::crop_resize;
    pub use crate::pixels::{Budget, Layout, Pixels, Rect};
    pub use crate::plan::{PlanOptions, plan};
    pub use crate::request::IiifRequest;
    pub use crate::source::read_at::ReadAt;
    pub use crate::tiff::{TiffPyramid, assemble, decode_tile, join_jpeg_tiles, read_pyramid};

    /// A file in memory, read by range: the source object of the benches and fuzz targets.
    pub struct MemObject(crate::source::SourceMetadata, bytes::Bytes);

    impl MemObject {
        /// `bytes` as a file with no modification time or ETag.
        pub fn new(bytes: bytes::Bytes) -> Self {
            Self(
                crate::source::SourceMetadata::new(bytes.len() as u64, None, None),
                bytes,
            )
        }
    }

    impl crate::source::SourceObject for MemObject {
        fn metadata(&self) -> &crate::source::SourceMetadata {
            &self.0
        }

        async fn read_range(&self, r: std::ops::Range<u64>) -> Result<bytes::Bytes, crate::Error> {
            let end = r.end.min(self.1.len() as u64) as usize;
            Ok(self.1.slice((r.start as usize).min(end)..end))
        }
    }

    /// Entry points of the fuzz targets (`fuzz/`) into parsers that are not public.
    pub mod fuzz {
        use crate::pixels::Budget;

        /// Every forwarded-header parser (`Forwarded`, `X-Forwarded-*`) over one value.
        pub fn forwarded(value: &str) {
            crate::base_uri::fuzz_parse(value);
        }

        /// Read `bytes` as a stored reduced pyramid, within a 64 MiB budget.
        pub fn reduced_pyramid(bytes: &[u8]) {
            let _ = crate::flat::ReducedPyramid::stored_size(bytes);
            let _ = crate::flat::ReducedPyramid::from_bytes(bytes, Budget::new(64 << 20));
        }

        /// Read `bytes` as a shared-cache entry (features `redis` or `s3`: the shared tiers).
        #[cfg(any(feature = "redis", feature = "object-store"))]
        pub fn cache_entry(bytes: &[u8]) {
            let key = crate::cache::CacheKey::new("id", "full/max/0/default.jpg");
            let ttl = Some(std::time::Duration::from_secs(3600));
            let _ = crate::cache::entry::decode(bytes::Bytes::copy_from_slice(bytes), &key, ttl);
        }
    }

    /// The OpenJPEG wrapper.
    pub mod jp2 {
        pub use crate::jp2::{DecodeRequest, Decoded, Jp2Error, Jp2Info, decode, read_info};
    }
}
