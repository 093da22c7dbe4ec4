//! The response body of [`Authorize`](super::Authorize): the inner service's, or one it made.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::IiifBody;

pin_project! {
    /// Response body of [`Authorize`](super::Authorize): the inner service's body, or the body
    /// of a response the middleware made itself (a refusal, a redirect, a probe result).
    #[project = BodyProj]
    #[derive(Debug)]
    #[allow(missing_docs)] // the fields of the two variants are the body; nothing more to say

    pub enum ResponseBody<B> {
        /// The inner service's body.
        Inner { #[pin] body: B },
        /// A body made by the middleware.
        Synthesized { body: IiifBody },
    }
}

impl<B> ResponseBody<B> {
    pub(super) fn inner(body: B) -> Self {
        Self::Inner { body }
    }

    pub(super) fn synthesized(body: impl Into<IiifBody>) -> Self {
        Self::Synthesized { body: body.into() }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project() {
            BodyProj::Inner { body } => body.poll_frame(cx),
            BodyProj::Synthesized { body } => match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Inner { body } => body.is_end_stream(),
            Self::Synthesized { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Inner { body } => body.size_hint(),
            Self::Synthesized { body } => body.size_hint(),
        }
    }
}
