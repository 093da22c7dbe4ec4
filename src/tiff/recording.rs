//! The bytes a pyramid's structure was parsed from (the header, the IFDs, the values read),
//! kept so that another instance of a fleet rebuilds the pyramid without walking the file's IFD
//! chain again: a recording is replayed through the same parser, which checks its bytes as it
//! checks a file's, so a damaged or forged recording is refused, never trusted.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::Error;
use crate::source::{SourceMetadata, SourceObject};

/// What a recording's encoding starts with (the version of the format).
const MAGIC: &[u8; 8] = b"TIIFPYR1";
/// The largest recording kept (the tile arrays of a level of a million tiles take 16 MB).
const MAX_BYTES: usize = 16 << 20;

/// The byte ranges of a file that a parse read, merged into runs.
#[derive(Debug, Default)]
pub(crate) struct Recording {
    reads: Vec<(u64, Bytes)>,
}

impl Recording {
    /// `bytes` were read at `offset`.
    pub(crate) fn add(&mut self, offset: u64, bytes: Bytes) {
        self.reads.push((offset, bytes));
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

    /// The recording as bytes to keep: `None` when it is larger than [`MAX_BYTES`].
    pub(crate) fn encode(&self) -> Option<Vec<u8>> {
        let runs = self.runs();
        let size: usize = runs.iter().map(|(_, b)| 12 + b.len()).sum::<usize>() + 12;
        if size > MAX_BYTES {
            return None;
        }
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&u32::try_from(runs.len()).ok()?.to_le_bytes());
        for (offset, b) in &runs {
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&u32::try_from(b.len()).ok()?.to_le_bytes());
            out.extend_from_slice(b);
        }
        Some(out)
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
    /// `None` when it is not one: a wrong start, a run past its end or the file's, runs out of
    /// order.
    pub(crate) fn decode(encoded: &Bytes, metadata: &SourceMetadata) -> Option<Self> {
        if encoded.len() > MAX_BYTES || encoded.get(..8)? != MAGIC {
            return None;
        }
        let u32_at = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(
                encoded.get(at..at + 4)?.try_into().ok()?,
            ))
        };
        let count = u32_at(8)? as usize;
        let mut at = 12;
        let mut runs = Vec::new();
        let mut last_end = 0u64;
        for _ in 0..count {
            let offset = u64::from_le_bytes(encoded.get(at..at + 8)?.try_into().ok()?);
            let n = u32_at(at + 8)? as usize;
            let bytes = encoded.get(at + 12..at + 12 + n)?;
            let end = offset.checked_add(n as u64)?;
            if (offset < last_end && !runs.is_empty()) || end > metadata.len || n == 0 {
                return None;
            }
            runs.push((offset, encoded.slice_ref(bytes)));
            last_end = end;
            at += 12 + n;
        }
        (at == encoded.len()).then(|| Self {
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
        let to = (range.end.min(start + bytes.len() as u64) - start) as usize;
        Ok(bytes.slice(from..to.max(from)))
    }

    async fn read_all(&self) -> Result<Bytes, Error> {
        Err(Error::source("a recording holds only a file's structure"))
    }
}
