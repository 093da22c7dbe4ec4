//! The bytes a file's structure was parsed from (a TIFF pyramid's header, IFDs and values; a
//! JPEG 2000 codestream's boxes, main header and tile-part headers), kept so that another
//! instance of a fleet rebuilds the structure without reading the file again.
//!
//! A recording is checked twice before it is used: its CRC-32 (damage in the shared tier), then
//! by the same parser and limits as a file, so that a broken one makes no structure and the
//! file is read instead. Like a cached derivative, it is otherwise trusted as written: whoever
//! can write the shared tier can already serve any image.

use std::ops::Range;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};

use crate::Error;
use crate::source::{SourceMetadata, SourceObject};

/// What a recording's encoding starts with (the version of the format).
const MAGIC: &[u8; 8] = b"TIIFPYR2";
/// The largest recording kept: the tile arrays of a level of a million tiles take 8 MB, 16 MB
/// in a BigTIFF. Past it, the parse is no longer recorded.
const MAX_BYTES: usize = 16 << 20;

/// The byte ranges of a file that a parse read, merged into runs.
#[derive(Debug, Default)]
pub(crate) struct Recording {
    reads: Vec<(u64, Bytes)>,
    /// The bytes of `reads` (overlaps counted twice).
    bytes: usize,
    /// More than [`MAX_BYTES`] were read: nothing is kept.
    over: bool,
}

impl Recording {
    /// `bytes` were read at `offset`.
    pub(crate) fn add(&mut self, offset: u64, bytes: Bytes) {
        if self.over || bytes.is_empty() {
            return;
        }
        self.bytes += bytes.len();
        if self.bytes > MAX_BYTES {
            self.over = true;
            self.reads = Vec::new();
            return;
        }
        self.reads.push((offset, bytes));
    }

    /// Whether nothing was read (or nothing is kept).
    pub(crate) fn is_empty(&self) -> bool {
        self.reads.is_empty()
    }

    /// The reads as runs of the file, in order, overlapping and adjacent ones joined.
    fn runs(&self) -> Vec<(u64, Bytes)> {
        let mut reads: Vec<&(u64, Bytes)> = self.reads.iter().collect();
        reads.sort_by_key(|(offset, b)| (*offset, std::cmp::Reverse(b.len())));
        let mut runs: Vec<(u64, BytesMut)> = Vec::new();
        for (offset, b) in reads {
            let end = offset + b.len() as u64;
            match runs.last_mut() {
                Some((start, run)) if *offset <= *start + run.len() as u64 => {
                    let run_end = *start + run.len() as u64;
                    if end > run_end {
                        run.extend_from_slice(&b[(run_end - offset) as usize..]);
                    }
                }
                _ => runs.push((*offset, BytesMut::from(&b[..]))),
            }
        }
        runs.into_iter().map(|(o, b)| (o, b.freeze())).collect()
    }

    /// The recording as bytes to keep: the magic, the number of runs, each run's offset, length
    /// and bytes, then a CRC-32 of all that. `None` when more than [`MAX_BYTES`] were read.
    pub(crate) fn encode(&self) -> Option<Vec<u8>> {
        if self.over {
            return None;
        }
        let runs = self.runs();
        let size: usize = runs.iter().map(|(_, b)| 12 + b.len()).sum::<usize>() + 16;
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&u32::try_from(runs.len()).ok()?.to_le_bytes());
        for (offset, b) in &runs {
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&u32::try_from(b.len()).ok()?.to_le_bytes());
            out.extend_from_slice(b);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Some(out)
    }
}

/// An object whose reads are recorded: it holds the object while a parser reads it, then gives
/// it back with what was read ([`into_parts`](Self::into_parts)). Only `read_range` is
/// recorded (a parser reading through it reads as from a remote object).
#[derive(Debug)]
pub(crate) struct Recorded<O> {
    object: O,
    recording: Mutex<Recording>,
}

impl<O: SourceObject> Recorded<O> {
    pub(crate) fn new(object: O) -> Self {
        Self {
            object,
            recording: Mutex::default(),
        }
    }

    /// The object, and the reads made through this.
    pub(crate) fn into_parts(self) -> (O, Recording) {
        let recording = self
            .recording
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        (self.object, recording)
    }
}

impl<O: SourceObject> SourceObject for Recorded<O> {
    fn metadata(&self) -> &SourceMetadata {
        self.object.metadata()
    }

    async fn read_range(&self, range: Range<u64>) -> Result<Bytes, Error> {
        let bytes = self.object.read_range(range.clone()).await?;
        self.recording
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(range.start, bytes.clone());
        Ok(bytes)
    }

    async fn read_all(&self) -> Result<Bytes, Error> {
        self.object.read_all().await
    }
}

/// An object whose bytes are a recording's, of a file of `metadata.len` bytes: a read that
/// starts in a recorded run gets the run from there, any other read fails.
#[derive(Debug)]
pub(crate) struct Replay {
    metadata: SourceMetadata,
    runs: Vec<(u64, Bytes)>,
}

impl Replay {
    /// The recording `encoded` (made by [`Recording::encode`]) of a file with `metadata`;
    /// `None` when it is not one: another format, a wrong CRC, a run past the encoding's end or
    /// the file's, runs out of order or empty.
    pub(crate) fn decode(encoded: &Bytes, metadata: &SourceMetadata) -> Option<Self> {
        let body_len = encoded.len().checked_sub(4)?;
        if encoded.len() > MAX_BYTES + 16 || encoded.get(..8)? != MAGIC {
            return None;
        }
        let (body, crc) = encoded.split_at(body_len);
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?) {
            return None;
        }
        let u32_at = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(
                body.get(at..at.checked_add(4)?)?.try_into().ok()?,
            ))
        };
        let count = u32_at(8)?;
        let mut at = 12usize;
        let mut runs = Vec::new();
        let mut last_end = 0u64;
        for _ in 0..count {
            let offset = u64::from_le_bytes(body.get(at..at.checked_add(8)?)?.try_into().ok()?);
            let n = u32_at(at.checked_add(8)?)? as usize;
            let from = at.checked_add(12)?;
            let bytes = body.get(from..from.checked_add(n)?)?;
            let end = offset.checked_add(n as u64)?;
            if (offset < last_end && !runs.is_empty()) || end > metadata.len || n == 0 {
                return None;
            }
            runs.push((offset, encoded.slice_ref(bytes)));
            last_end = end;
            at = from + n;
        }
        (at == body.len()).then(|| Self {
            metadata: metadata.clone(),
            runs,
        })
    }

    fn run_at(&self, offset: u64) -> Option<&(u64, Bytes)> {
        let i = self.runs.partition_point(|(start, _)| *start <= offset);
        let run = self.runs.get(i.checked_sub(1)?)?;
        (offset < run.0 + run.1.len() as u64).then_some(run)
    }
}

impl SourceObject for Replay {
    fn metadata(&self) -> &SourceMetadata {
        &self.metadata
    }

    async fn read_range(&self, range: Range<u64>) -> Result<Bytes, Error> {
        let (start, bytes) = self
            .run_at(range.start)
            .ok_or_else(|| Error::source("not in the recording"))?;
        let from = (range.start - start) as usize;
        let to = range
            .end
            .min(start + bytes.len() as u64)
            .saturating_sub(*start) as usize;
        Ok(bytes.slice(from..to.max(from)))
    }

    async fn read_all(&self) -> Result<Bytes, Error> {
        Err(Error::source("a recording holds only a file's structure"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(reads: &[(u64, &[u8])]) -> Recording {
        let mut r = Recording::default();
        for &(offset, b) in reads {
            r.add(offset, Bytes::copy_from_slice(b));
        }
        r
    }

    #[test]
    fn reads_are_merged_into_runs() {
        // Out of order; one inside another; one overlapping the end of a run; one just after
        // it; one apart; an empty one.
        let r = recorded(&[
            (20, b"uvw"),
            (0, b"abcdef"),
            (2, b"cd"),
            (4, b"efgh"),
            (8, b"ij"),
            (30, b""),
        ]);
        let runs = r.runs();
        let got: Vec<(u64, &[u8])> = runs.iter().map(|(o, b)| (*o, &b[..])).collect();
        assert_eq!(got, vec![(0, &b"abcdefghij"[..]), (20, &b"uvw"[..])]);
    }

    #[tokio::test]
    async fn a_replay_answers_reads_inside_its_runs_only() {
        let meta = SourceMetadata::new(100, None, None);
        let encoded = Bytes::from(
            recorded(&[(0, b"abcdefgh"), (50, b"xyz")])
                .encode()
                .unwrap(),
        );
        let replay = Replay::decode(&encoded, &meta).unwrap();
        assert_eq!(&replay.read_range(2..5).await.unwrap()[..], b"cde");
        // A read past its run's end gets the run's rest; one outside every run fails.
        assert_eq!(&replay.read_range(6..70).await.unwrap()[..], b"gh");
        assert_eq!(&replay.read_range(51..52).await.unwrap()[..], b"y");
        assert!(replay.read_range(8..9).await.is_err());
        assert!(replay.read_range(53..60).await.is_err());
        // Not for a file the runs do not fit in.
        assert!(Replay::decode(&encoded, &SourceMetadata::new(52, None, None)).is_none());
    }

    #[test]
    fn an_encoding_damaged_or_lying_about_its_sizes_is_refused() {
        let meta = SourceMetadata::new(1 << 20, None, None);
        let good = recorded(&[(0, b"abcdefgh"), (50, b"xyz")])
            .encode()
            .unwrap();
        assert!(Replay::decode(&Bytes::from(good.clone()), &meta).is_some());
        // Any byte flipped: the CRC says so.
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            assert!(
                Replay::decode(&Bytes::from(bad), &meta).is_none(),
                "byte {i}"
            );
        }
        // Counts and lengths far past the encoding, with a CRC that matches them.
        let reseal = |mut body: Vec<u8>| {
            let crc = crc32fast::hash(&body);
            body.extend_from_slice(&crc.to_le_bytes());
            Bytes::from(body)
        };
        let mut many = good[..good.len() - 4].to_vec();
        many[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Replay::decode(&reseal(many), &meta).is_none());
        let mut long = good[..good.len() - 4].to_vec();
        long[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Replay::decode(&reseal(long), &meta).is_none());
        assert!(Replay::decode(&Bytes::from_static(b"TIIF"), &meta).is_none());
    }

    #[test]
    fn a_parse_that_reads_too_much_is_not_recorded() {
        let mut r = Recording::default();
        r.add(0, Bytes::from(vec![1u8; MAX_BYTES / 2]));
        r.add(MAX_BYTES as u64, Bytes::from(vec![2u8; MAX_BYTES / 2 + 1]));
        assert!(r.encode().is_none());
        assert!(r.reads.is_empty(), "the reads are let go");
    }
}
