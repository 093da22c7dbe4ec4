//! Reading a source at byte offsets from a blocking thread: [`ReadAt`] (what OpenJPEG's stream
//! callbacks and the streamed PNG decoder read through), [`SourceReader`] (a [`SourceObject`]
//! as a `ReadAt`) and [`ReadAtStream`] (a `ReadAt` as `Read + Seek`).

use std::io;
use std::sync::Arc;

use crate::source::SourceObject;

/// Random access to the bytes of a file; the decoder reads only the byte ranges it needs.
///
/// Implemented for `[u8]`, `Vec<u8>` and for `&T`, `Box<T>`, `Arc<T>` of any `ReadAt`
/// (`bytes::Bytes` works through `&*bytes`).
pub trait ReadAt: Send + Sync {
    /// Total length of the file in bytes.
    fn len(&self) -> u64;

    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Read up to `buf.len()` bytes at `offset`, returning how many were read; `Ok(0)` at or
    /// after the end. A short read before the end is allowed (the caller asks again).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

impl ReadAt for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        let Some(rest) = self.get(start..) else {
            return Ok(0);
        };
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
}

impl ReadAt for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.as_slice().read_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Box<T> {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Arc<T> {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }
}

/// A [`SourceObject`] read synchronously, for OpenJPEG's stream callbacks: with the object's
/// own blocking read when it has one (a local file: no thread hand-off per read), else
/// [`SourceObject::read_range`] run to completion on the runtime of `handle`. Only for
/// blocking threads (it blocks the calling thread).
pub(crate) struct SourceReader<'a, O> {
    pub(crate) object: &'a O,
    pub(crate) handle: tokio::runtime::Handle,
}

impl<O: SourceObject> ReadAt for SourceReader<'_, O> {
    fn len(&self) -> u64 {
        self.object.metadata().len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(read) = self.object.read_at_blocking(offset, buf) {
            return read.map_err(|e| io::Error::other(e.message().to_owned()));
        }
        let end = offset.saturating_add(buf.len() as u64).min(self.len());
        if offset >= end {
            return Ok(0);
        }
        let bytes = self
            .handle
            .block_on(self.object.read_range(offset..end))
            .map_err(|e| io::Error::other(e.message().to_owned()))?;
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }
}

/// A [`ReadAt`] read from its start as a `Read + Seek` stream, on a blocking thread.
pub(crate) struct ReadAtStream<'a, R> {
    reader: &'a R,
    pos: u64,
}

impl<'a, R: ReadAt> ReadAtStream<'a, R> {
    /// A stream at the start of `reader`.
    pub(crate) fn new(reader: &'a R) -> Self {
        Self { reader, pos: 0 }
    }
}

impl<R: ReadAt> std::io::Read for ReadAtStream<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.reader.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: ReadAt> std::io::Seek for ReadAtStream<'_, R> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            std::io::SeekFrom::End(d) => self.reader.len().checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| std::io::Error::other("seek before the start"))?;
        Ok(self.pos)
    }
}
