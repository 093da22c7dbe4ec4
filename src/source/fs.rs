//! A [`Source`] over a directory of the local filesystem.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::{Source, SourceMetadata, SourceObject, SourceRequest};
use crate::Error;
use crate::request::Identifier;

/// Serves the files below one root directory. An identifier is a path relative to the root
/// (`/` separates folders: send it as `%2F`); when no file has that exact name, the configured
/// suffixes are tried in turn (by default `.jpg`, `.jpeg`, `.png`, `.tif`, `.tiff`, `.jp2`, `.gif`, `.webp`, `.bmp`).
///
/// An identifier can never reach outside the root: absolute paths, `..`, `.`, NUL and
/// symbolic links that lead out of the root are all answered 404.
///
/// See the [module docs](crate::source) for an example.
///
/// ```
/// use tower_iiif::source::{FsSource, Source, SourceObject};
/// # use tower_iiif::request::Identifier;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let dir = std::env::temp_dir()
/// #     .join(format!("tower-iiif-doc-{}-{}", "fs-source", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # std::fs::write(dir.join("a.jpg"), b"012345678").unwrap();
/// # let source = FsSource::new(&dir).unwrap();
/// # let id = |s: &str| Identifier::new(s).unwrap();
/// // `a.jpg` holds the bytes `012345678`.
/// let obj = source.open(&id("a"), &Default::default()).await.unwrap(); // no file `a`: `a.jpg` is tried next
/// assert_eq!(obj.path().file_name().unwrap(), "a.jpg");
/// assert_eq!(source.open(&id("../a.jpg"), &Default::default()).await.unwrap_err().status(), 404);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct FsSource {
    root: Arc<Path>,
    suffixes: Arc<[String]>,
}

impl FsSource {
    /// Create a new [`FsSource`] serving the files below `root`, which must exist.
    ///
    /// ```
    /// use tower_iiif::source::FsSource;
    ///
    /// let source = FsSource::new(".").unwrap();
    /// assert!(source.root().is_absolute()); // canonicalized
    /// let missing = FsSource::new("no/such/directory").unwrap_err();
    /// assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn new(root: impl AsRef<Path>) -> io::Result<Self> {
        let root = std::fs::canonicalize(root)?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        let suffixes = [
            ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".jp2", ".gif", ".webp", ".bmp",
        ];
        Ok(Self {
            root: root.into(),
            suffixes: suffixes.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    /// The suffixes tried after the exact name (empty: exact names only).
    ///
    /// ```
    /// let s = tower_iiif::source::FsSource::new(".").unwrap().suffixes([".png"]);
    /// # let _ = s;
    /// ```
    pub fn suffixes<I, T>(mut self, suffixes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.suffixes = suffixes.into_iter().map(Into::into).collect();
        self
    }

    /// The canonical root directory.
    ///
    /// ```
    /// let s = tower_iiif::source::FsSource::new(".").unwrap();
    /// assert!(s.root().is_absolute());
    /// ```
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file an identifier names, checked to lie inside the root.
    fn resolve(&self, id: &Identifier) -> Result<(PathBuf, File, std::fs::Metadata), Error> {
        let rel = Path::new(id.as_str());
        let safe = rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe || id.as_str().contains('\\') {
            return Err(Error::not_found("image not found"));
        }
        let candidates = std::iter::once(self.root.join(rel)).chain(
            self.suffixes
                .iter()
                .map(|s| self.root.join(format!("{}{s}", id.as_str()))),
        );
        for candidate in candidates {
            // canonicalize follows symlinks: what it returns must still be below the root.
            let Ok(real) = std::fs::canonicalize(&candidate) else {
                continue;
            };
            if !real.starts_with(&self.root) {
                return Err(Error::not_found("image not found"));
            }
            // Look before opening: opening a FIFO or device would block or misbehave.
            if !std::fs::metadata(&real).is_ok_and(|m| m.is_file()) {
                continue;
            }
            let file = File::open(&real)?;
            let meta = file.metadata()?;
            if meta.is_file() {
                return Ok((real, file, meta));
            }
        }
        Err(Error::not_found("image not found"))
    }
}

impl Source for FsSource {
    type Object = FsObject;

    async fn open(&self, id: &Identifier, _request: &SourceRequest) -> Result<FsObject, Error> {
        let this = self.clone();
        let id = id.clone();
        let (path, file, meta) = tokio::task::spawn_blocking(move || this.resolve(&id))
            .await
            .map_err(|e| Error::internal(format!("file lookup task failed: {e}")))??;
        Ok(FsObject {
            path: path.into(),
            file: Arc::new(file),
            metadata: SourceMetadata::new(meta.len(), meta.modified().ok(), None),
        })
    }

    /// The root must still be a readable directory.
    async fn check(&self) -> Result<(), Error> {
        let root = Arc::clone(&self.root);
        tokio::task::spawn_blocking(move || std::fs::read_dir(&root).map(|_| ()))
            .await
            .map_err(|e| Error::internal(format!("health check task failed: {e}")))?
            .map_err(|e| Error::source(format!("image directory unreadable: {e}")))
    }
}

/// An open file of an [`FsSource`].
///
/// ```
/// use tower_iiif::source::{FsSource, Source, SourceObject};
/// # use tower_iiif::request::Identifier;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let dir = std::env::temp_dir()
/// #     .join(format!("tower-iiif-doc-{}-{}", "fs-object", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # std::fs::write(dir.join("a.jpg"), b"012345678").unwrap();
/// # let source = FsSource::new(&dir).unwrap();
/// # let id = |s: &str| Identifier::new(s).unwrap();
/// // `a.jpg` holds the bytes `012345678`.
/// let obj = source.open(&id("a.jpg"), &Default::default()).await.unwrap();
/// assert_eq!(obj.metadata().len, 9);
/// assert!(obj.metadata().modified.is_some());
/// assert_eq!(&obj.read_range(2..5).await.unwrap()[..], b"234");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FsObject {
    path: Arc<Path>,
    file: Arc<File>,
    metadata: SourceMetadata,
}

impl FsObject {
    /// The file's canonical path.
    ///
    /// ```no_run
    /// # async fn f(obj: tower_iiif::source::FsObject) { println!("{}", obj.path().display()); }
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl SourceObject for FsObject {
    fn metadata(&self) -> &SourceMetadata {
        &self.metadata
    }

    async fn read_range(&self, range: Range<u64>) -> Result<Bytes, Error> {
        let file = Arc::clone(&self.file);
        let end = range.end.min(self.metadata.len);
        let start = range.start.min(end);
        let len = usize::try_from(end - start)
            .map_err(|_| Error::source("range too large for this platform"))?;
        tokio::task::spawn_blocking(move || -> Result<Bytes, Error> {
            let mut buf = Vec::new();
            buf.try_reserve_exact(len)
                .map_err(|_| Error::source(format!("cannot allocate {len} bytes")))?;
            buf.resize(len, 0);
            read_exact_at(&file, &mut buf, start)?;
            Ok(Bytes::from(buf))
        })
        .await
        .map_err(|e| Error::internal(format!("file read task failed: {e}")))?
    }

    fn read_at_blocking(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize, Error>> {
        Some(self.pread(offset, buf))
    }
}

impl FsObject {
    /// Read at `offset` into `buf`, clamped to the file's length; blocking.
    fn pread(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let end = offset
            .saturating_add(buf.len() as u64)
            .min(self.metadata.len);
        if offset >= end {
            return Ok(0);
        }
        let n = (end - offset) as usize;
        read_exact_at(&self.file, &mut buf[..n], offset)?;
        Ok(n)
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tempdir(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("tower-iiif-fs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    async fn status(src: &FsSource, id: &str) -> u16 {
        match src
            .open(&Identifier::new(id).unwrap(), &Default::default())
            .await
        {
            Ok(_) => 200,
            Err(e) => e.status().as_u16(),
        }
    }

    #[tokio::test]
    async fn cannot_escape_the_root() {
        let outer = tempdir("escape");
        let root = outer.0.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(outer.0.join("secret.jpg"), b"secret").unwrap();
        std::fs::write(root.join("ok.jpg"), b"ok").unwrap();
        std::fs::write(root.join("sub/deep.png"), b"deep").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(outer.0.join("secret.jpg"), root.join("link.jpg")).unwrap();
            std::os::unix::fs::symlink(root.join("ok.jpg"), root.join("inner.jpg")).unwrap();
        }
        let src = FsSource::new(&root).unwrap();
        let table = [
            ("ok", 200),
            ("ok.jpg", 200),
            ("sub/deep", 200),
            ("sub", 404),
            ("../secret.jpg", 404),
            ("../secret", 404),
            ("sub/../ok.jpg", 404),
            ("./ok.jpg", 404),
            ("/etc/passwd", 404),
            ("missing", 404),
            ("a\\..\\b", 404),
            #[cfg(unix)]
            ("link", 404),
            #[cfg(unix)]
            ("inner", 200),
        ];
        for (id, want) in table {
            assert_eq!(status(&src, id).await, want, "{id}");
        }
    }

    #[tokio::test]
    async fn reads_ranges_clamped() {
        let dir = tempdir("ranges");
        std::fs::write(dir.0.join("f.tif"), b"0123456789").unwrap();
        let src = FsSource::new(&dir.0).unwrap().suffixes([".tif"]);
        let obj = src
            .open(&Identifier::new("f").unwrap(), &Default::default())
            .await
            .unwrap();
        assert_eq!(obj.metadata().len, 10);
        assert!(obj.metadata().modified.is_some());
        assert_eq!(&obj.read_range(2..5).await.unwrap()[..], b"234");
        assert_eq!(&obj.read_range(8..100).await.unwrap()[..], b"89");
        assert_eq!(&obj.read_range(50..100).await.unwrap()[..], b"");
        assert_eq!(&obj.read_all().await.unwrap()[..], b"0123456789");
    }
}
