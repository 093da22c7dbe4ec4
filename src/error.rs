//! The crate's one error type, and the one place where errors become HTTP statuses.
//!
//! Every failure on the way from request to response is an [`Error`]: a [`ErrorKind`] that fixes
//! the status, and a one-line message that is sent to the client as the response body.
//!
//! # Example
//!
//! ```
//! use tower_iiif::{Error, ErrorKind};
//! use http::StatusCode;
//!
//! let e = Error::bad_request("region: width must be greater than 0");
//! assert_eq!(e.kind(), ErrorKind::BadRequest);
//! assert_eq!(e.status(), StatusCode::BAD_REQUEST);
//! assert_eq!(e.to_string(), "region: width must be greater than 0");
//! ```

use std::borrow::Cow;
use std::fmt;

use http::StatusCode;

/// What went wrong, which decides the HTTP status of the error response.
///
/// ```
/// use tower_iiif::{Error, ErrorKind};
///
/// for (kind, status) in [
///     (ErrorKind::BadRequest, 400),
///     (ErrorKind::Unauthorized, 401),
///     (ErrorKind::NotImplemented, 501),
///     (ErrorKind::Unavailable, 503),
///     (ErrorKind::Source, 500),
/// ] {
///     assert_eq!(Error::new(kind, "message").status(), status);
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is malformed or asks for an unsupported value (400).
    BadRequest,
    /// The client must authenticate first (401).
    Unauthorized,
    /// The client may not have this (403).
    Forbidden,
    /// The identifier names no image, or the path is not an IIIF path (404).
    NotFound,
    /// A method other than GET, HEAD or OPTIONS (405).
    MethodNotAllowed,
    /// A valid request for a feature the spec lets servers leave out, e.g. `^` upscaling when
    /// upscaling is turned off (501).
    NotImplemented,
    /// The server is busy; retry later (503, with `Retry-After`).
    Unavailable,
    /// An upstream server (an object store, an HTTP source) failed or answered wrongly (502).
    BadGateway,
    /// An upstream server did not answer in time (504).
    GatewayTimeout,
    /// The source file cannot be read or decoded, or is larger than the memory budget (500).
    Source,
    /// A fault of the server itself (500).
    Internal,
}

/// The crate's error: a kind and a short human-readable message.
///
/// ```
/// use tower_iiif::{Error, ErrorKind};
///
/// let e = Error::new(ErrorKind::Forbidden, "not for\nyou");
/// assert_eq!(e.status(), 403);
/// assert_eq!(e.message(), "not for you"); // always one line
/// assert_eq!(e.to_string(), e.message());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    challenge: Option<Cow<'static, str>>,
    retry_after: Option<u32>,
}

impl Error {
    /// Create a new [`Error`] of the given kind.
    ///
    /// ```
    /// use tower_iiif::{Error, ErrorKind};
    /// assert_eq!(Error::new(ErrorKind::NotFound, "no such image").status(), 404);
    /// ```
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        let message = message.into();
        // Messages come from decoders too: keep them to one line.
        let message = if message.contains(['\n', '\r']) {
            Cow::Owned(message.split_whitespace().collect::<Vec<_>>().join(" "))
        } else {
            message
        };
        Self {
            kind,
            message,
            challenge: None,
            retry_after: None,
        }
    }

    /// A 400 Bad Request.
    ///
    /// ```
    /// assert_eq!(tower_iiif::Error::bad_request("bad size").status(), 400);
    /// ```
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// A 404 Not Found.
    ///
    /// ```
    /// assert_eq!(tower_iiif::Error::not_found("no such image").status(), 404);
    /// ```
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// A 501 Not Implemented.
    ///
    /// ```
    /// assert_eq!(tower_iiif::Error::not_implemented("upscaling is off").status(), 501);
    /// ```
    pub fn not_implemented(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::NotImplemented, message)
    }

    /// A 500 for a source file that cannot be read or decoded.
    ///
    /// ```
    /// assert_eq!(tower_iiif::Error::source("truncated JPEG").status(), 500);
    /// ```
    pub fn source(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Source, message)
    }

    /// A 500 for a fault of the server itself.
    ///
    /// ```
    /// assert_eq!(tower_iiif::Error::internal("worker panicked").status(), 500);
    /// ```
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// A 502 Bad Gateway: an upstream server failed or answered wrongly.
    ///
    /// ```
    /// assert_eq!(tower_iiif::Error::bad_gateway("upstream answered 500").status(), 502);
    /// ```
    pub fn bad_gateway(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::BadGateway, message)
    }

    /// A 504 Gateway Timeout: an upstream server did not answer in time.
    ///
    /// ```
    /// assert_eq!(tower_iiif::Error::gateway_timeout("upstream timed out").status(), 504);
    /// ```
    pub fn gateway_timeout(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::GatewayTimeout, message)
    }

    /// The error with a `WWW-Authenticate` challenge, sent with a 401 (e.g. an upstream's own,
    /// passed on). Ignored for other statuses. A value that is not a valid header is dropped.
    ///
    /// ```
    /// use tower_iiif::{Error, ErrorKind};
    /// let e = Error::new(ErrorKind::Unauthorized, "log in").with_challenge("Bearer realm=\"d\"");
    /// assert_eq!(e.challenge(), Some("Bearer realm=\"d\""));
    /// ```
    pub fn with_challenge(mut self, challenge: impl Into<Cow<'static, str>>) -> Self {
        let c = challenge.into();
        self.challenge = http::HeaderValue::from_str(&c).is_ok().then_some(c);
        self
    }

    /// Seconds a client should wait before retrying a 503 (its `Retry-After`; 1 when not set).
    ///
    /// ```
    /// use tower_iiif::{Error, ErrorKind};
    /// let e = Error::new(ErrorKind::Unavailable, "busy").with_retry_after(7);
    /// assert_eq!(e.retry_after(), Some(7));
    /// ```
    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// The `Retry-After` seconds of a 503, if set.
    ///
    /// ```
    /// assert_eq!(tower_iiif::Error::not_found("x").retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<u32> {
        self.retry_after
    }

    /// The `WWW-Authenticate` challenge of a 401, if any.
    ///
    /// ```
    /// assert_eq!(tower_iiif::Error::not_found("x").challenge(), None);
    /// ```
    pub fn challenge(&self) -> Option<&str> {
        self.challenge.as_deref()
    }

    /// The kind of error.
    ///
    /// ```
    /// use tower_iiif::{Error, ErrorKind};
    /// assert_eq!(Error::not_found("x").kind(), ErrorKind::NotFound);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The one-line message sent as the response body.
    ///
    /// ```
    /// assert_eq!(tower_iiif::Error::not_found("no such image").message(), "no such image");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status this error is answered with. This is the only mapping from errors to
    /// statuses in the crate.
    ///
    /// ```
    /// use tower_iiif::{Error, ErrorKind};
    /// assert_eq!(Error::new(ErrorKind::Unavailable, "busy").status(), 503);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::BadGateway => StatusCode::BAD_GATEWAY,
            ErrorKind::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Source | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Prefix the message with context, e.g. the name of the request part that failed.
    pub(crate) fn context(self, what: &str) -> Self {
        Self {
            message: format!("{what}: {}", self.message).into(),
            ..self
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            // PermissionDenied is answered as 404 too, so that existence does not leak.
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                Self::not_found("image not found")
            }
            _ => Self::source(format!("cannot read source: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_status() {
        let table = [
            (ErrorKind::BadRequest, 400),
            (ErrorKind::Unauthorized, 401),
            (ErrorKind::Forbidden, 403),
            (ErrorKind::NotFound, 404),
            (ErrorKind::MethodNotAllowed, 405),
            (ErrorKind::NotImplemented, 501),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::BadGateway, 502),
            (ErrorKind::GatewayTimeout, 504),
            (ErrorKind::Source, 500),
            (ErrorKind::Internal, 500),
        ];
        for (kind, status) in table {
            assert_eq!(Error::new(kind, "x").status().as_u16(), status, "{kind:?}");
        }
    }

    #[test]
    fn io_errors_do_not_leak_existence() {
        let e: Error = std::io::Error::from(std::io::ErrorKind::PermissionDenied).into();
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        let e: Error = std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into();
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn messages_are_one_line() {
        let e = Error::source("cannot decode:\nnot enough bytes\r\n\n");
        assert_eq!(e.message(), "cannot decode: not enough bytes");
    }

    #[test]
    fn context_prefixes_the_message() {
        let e = Error::bad_request("not a number").context("rotation");
        assert_eq!(e.message(), "rotation: not a number");
        assert_eq!(e.kind(), ErrorKind::BadRequest);
    }
}
