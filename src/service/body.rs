//! The response body of [`IiifService`](crate::IiifService).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::Full;

/// The body of every response of [`IiifService`](crate::IiifService): the whole image or
/// document in one buffer, or nothing.
///
/// ```
/// use http_body::Body;
/// let body = tower_iiif::IiifBody::from(bytes::Bytes::from_static(b"abc"));
/// assert_eq!(body.size_hint().exact(), Some(3));
/// assert!(tower_iiif::IiifBody::empty().is_end_stream());
/// ```
#[derive(Debug, Default)]
pub struct IiifBody(Full<Bytes>);

impl IiifBody {
    /// A body with no bytes.
    ///
    /// ```
    /// use http_body::Body;
    /// use http_body_util::BodyExt;
    /// use tower_iiif::IiifBody;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    ///
    /// let body = IiifBody::empty();
    /// assert_eq!(body.size_hint().exact(), Some(0));
    /// assert!(body.collect().await.unwrap().to_bytes().is_empty());
    /// # }
    /// ```
    pub fn empty() -> Self {
        Self(Full::new(Bytes::new()))
    }
}

impl From<Bytes> for IiifBody {
    fn from(b: Bytes) -> Self {
        Self(Full::new(b))
    }
}

impl From<Vec<u8>> for IiifBody {
    fn from(v: Vec<u8>) -> Self {
        Self(Full::new(Bytes::from(v)))
    }
}

impl From<String> for IiifBody {
    fn from(s: String) -> Self {
        Self(Full::new(Bytes::from(s)))
    }
}

impl http_body::Body for IiifBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}
