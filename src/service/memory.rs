//! The process's memory ceiling for renders, and honest admission to the render queue.
//!
//! Every render reserves an estimate of its peak memory (the source bytes it holds, its
//! decoded input, the scaled and rotated intermediates and the encoded output) from one
//! byte-weighted semaphore shared by every clone of the service, once it holds a render permit
//! and before it decodes (a file read whole: before it is read); it gives the reservation back
//! when the render really ends. A render that could never fit is refused at once (400); one that fits later waits at most the queue wait, then
//! gets a 503. A render is queued only if the queue ahead of it can be expected to drain
//! within that wait, reckoned from the recent render times; otherwise 503 with a
//! `Retry-After` of that expectation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Error, ErrorKind};

/// The ceiling's unit: reservations are counted in KiB (so that the semaphore's permits
/// suffice for any ceiling).
const UNIT: u64 = 1024;

/// The memory ceiling: a semaphore of KiB, and what is reserved now and at most.
#[derive(Debug)]
pub(crate) struct Ceiling {
    sem: Arc<Semaphore>,
    kib: AtomicUsize,
    used_kib: AtomicUsize,
    peak_kib: AtomicUsize,
}

impl Ceiling {
    pub(crate) fn new(bytes: u64) -> Self {
        let kib = kib(bytes);
        Self {
            sem: Arc::new(Semaphore::new(kib)),
            kib: AtomicUsize::new(kib),
            used_kib: AtomicUsize::new(0),
            peak_kib: AtomicUsize::new(0),
        }
    }

    /// Change the ceiling (while building the service).
    pub(crate) fn set(&self, bytes: u64) {
        let new = kib(bytes);
        let before = self.kib.swap(new, Ordering::AcqRel);
        if new > before {
            self.sem.add_permits(new - before);
        } else {
            self.sem.forget_permits(before - new);
        }
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.kib.load(Ordering::Relaxed) as u64 * UNIT
    }

    /// The most reserved at once so far, in bytes.
    pub(crate) fn peak(&self) -> u64 {
        self.peak_kib.load(Ordering::Relaxed) as u64 * UNIT
    }

    /// A 400 if `bytes` exceed the ceiling itself: a render that could never fit.
    pub(crate) fn check(&self, bytes: u64) -> Result<(), Error> {
        match kib(bytes).max(1) > self.kib.load(Ordering::Relaxed) {
            true => Err(Error::bad_request(format!(
                "this request needs about {} MiB to render, more than this server's memory \
                 ceiling of {} MiB: ask for a smaller size or region",
                bytes.div_ceil(1 << 20),
                self.bytes() >> 20
            ))),
            false => Ok(()),
        }
    }

    /// Reserve `bytes`: a 400 if they exceed the ceiling itself, a 503 if they do not come
    /// free within `wait`.
    pub(crate) async fn reserve(
        self: &Arc<Self>,
        bytes: u64,
        wait: Duration,
    ) -> Result<Reservation, Error> {
        self.check(bytes)?;
        let need = kib(bytes).max(1);
        let permits = u32::try_from(need).unwrap_or(u32::MAX);
        let permit =
            match tokio::time::timeout(wait, Arc::clone(&self.sem).acquire_many_owned(permits))
                .await
            {
                Ok(Ok(p)) => p,
                Ok(Err(_)) => return Err(Error::internal("memory ceiling closed")),
                Err(_) => return Err(busy(wait)),
            };
        let used = self.used_kib.fetch_add(need, Ordering::AcqRel) + need;
        self.peak_kib.fetch_max(used, Ordering::AcqRel);
        Ok(Reservation {
            _permit: permit,
            kib: need,
            ceiling: Arc::clone(self),
        })
    }
}

fn kib(bytes: u64) -> usize {
    usize::try_from(bytes.div_ceil(UNIT))
        .unwrap_or(usize::MAX)
        .min(Semaphore::MAX_PERMITS)
        .min(u32::MAX as usize)
}

/// Memory reserved for one render, given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    _permit: OwnedSemaphorePermit,
    kib: usize,
    ceiling: Arc<Ceiling>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.ceiling.used_kib.fetch_sub(self.kib, Ordering::AcqRel);
    }
}

/// A 503 for a wait that would be, or was, longer than `wait`: retry after about that long.
/// Counted in `iiif_unavailable_total`.
pub(crate) fn busy(wait: Duration) -> Error {
    metrics::counter!("iiif_unavailable_total").increment(1);
    let seconds = u32::try_from(wait.as_secs().saturating_add(1)).unwrap_or(u32::MAX);
    Error::new(ErrorKind::Unavailable, "the server is busy; retry later").with_retry_after(seconds)
}

/// Recent render times (exponentially weighted: their mean, and their mean deviation from it,
/// in microseconds) and the longest a request may be expected to wait in the queue.
///
/// A render "takes" from the moment it holds its render permit to its end (reads done while
/// holding it included). The expected wait counts each round of renders ahead at the mean plus
/// the mean deviation, as TCP reckons its retransmission timeout: render times vary (a region
/// near the bottom of a flat JPEG costs several times one near the top), and a wait reckoned
/// at the mean alone admitted requests that then waited well past the queue wait.
#[derive(Debug)]
pub(crate) struct Queue {
    mean_micros: AtomicU64,
    deviation_micros: AtomicU64,
    max_wait_millis: AtomicU64,
}

impl Queue {
    pub(crate) fn new(max_wait: Duration) -> Self {
        Self {
            mean_micros: AtomicU64::new(0),
            deviation_micros: AtomicU64::new(0),
            max_wait_millis: AtomicU64::new(duration_millis(max_wait)),
        }
    }

    pub(crate) fn set_max_wait(&self, wait: Duration) {
        self.max_wait_millis
            .store(duration_millis(wait), Ordering::Relaxed);
    }

    pub(crate) fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_millis.load(Ordering::Relaxed))
    }

    /// Count a finished render's time: the mean with weight 1/5, the deviation from the mean
    /// before it with weight 1/4.
    pub(crate) fn record(&self, took: Duration) {
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let before = self
            .mean_micros
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |m| {
                Some(match m {
                    0 => sample,
                    m => m.saturating_mul(4).saturating_add(sample) / 5,
                })
            })
            .unwrap_or(0);
        if before == 0 {
            return;
        }
        let off = sample.abs_diff(before);
        let _ = self
            .deviation_micros
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |d| {
                Some(d.saturating_mul(3).saturating_add(off) / 4)
            });
    }

    /// How long a render with `ahead` renders in the queue before it (running ones included)
    /// can expect to wait for one of `running` render slots. Before any render has finished
    /// the wait is unknown and taken to be the queue wait itself: the queue still admits up to
    /// its length, and a request turned away from a full queue is told to retry after the
    /// queue wait rather than after a second (the first renders of a cold server can take
    /// that long).
    pub(crate) fn expected_wait(&self, ahead: usize, running: usize) -> Duration {
        let running = running.max(1);
        if ahead < running {
            return Duration::ZERO;
        }
        let mean = self.mean_micros.load(Ordering::Relaxed);
        if mean == 0 {
            return self.max_wait();
        }
        let rounds = (ahead + 1 - running).div_ceil(running) as u64;
        let round = mean.saturating_add(self.deviation_micros.load(Ordering::Relaxed));
        Duration::from_micros(round.saturating_mul(rounds))
    }
}

fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_wait_for_room_and_refuse_what_never_fits() {
        let c = Arc::new(Ceiling::new(10 << 20));
        let too_big = c
            .reserve(11 << 20, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(too_big.status(), 400);
        assert!(too_big.message().contains("memory ceiling"), "{too_big}");
        let a = c.reserve(6 << 20, Duration::from_secs(1)).await.unwrap();
        // 6 + 6 > 10: the second waits, and gives up after its wait with a 503.
        let b = c
            .reserve(6 << 20, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(b.status(), 503);
        assert_eq!(b.retry_after(), Some(1));
        let waiting = {
            let c = Arc::clone(&c);
            tokio::spawn(async move { c.reserve(6 << 20, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        let b = waiting.await.unwrap().unwrap();
        assert_eq!(c.peak(), 6 << 20);
        drop(b);
        assert_eq!(c.used_kib.load(Ordering::Relaxed), 0);
        c.set(20 << 20);
        let _x = c.reserve(6 << 20, Duration::ZERO).await.unwrap();
        let _y = c.reserve(6 << 20, Duration::from_millis(10)).await.unwrap();
        assert_eq!(c.peak(), 12 << 20);
    }

    #[test]
    fn the_expected_wait_counts_rounds_of_recent_render_times() {
        let q = Queue::new(Duration::from_secs(5));
        // No render finished yet: a wait behind others is the queue wait (admitted, not past
        // it), and a full queue's 503 says to retry after it.
        assert_eq!(q.expected_wait(1, 2), Duration::ZERO);
        assert_eq!(q.expected_wait(40, 2), Duration::from_secs(5));
        assert_eq!(busy(q.expected_wait(40, 2)).retry_after(), Some(6));
        q.record(Duration::from_millis(100));
        assert_eq!(q.expected_wait(1, 2), Duration::ZERO); // a slot is free
        assert_eq!(q.expected_wait(2, 2), Duration::from_millis(100));
        assert_eq!(q.expected_wait(5, 2), Duration::from_millis(200));
        // Mean (4 * 100 + 600) / 5 = 200, deviation |600 - 100| / 4 = 125.
        q.record(Duration::from_millis(600));
        assert_eq!(q.expected_wait(2, 2), Duration::from_millis(325));
        assert_eq!(q.expected_wait(5, 2), Duration::from_millis(650));
        assert_eq!(busy(Duration::from_millis(2500)).retry_after(), Some(3));
    }
}
