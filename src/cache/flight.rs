//! [`SingleFlight`]: one computation per key at a time, shared by every caller.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::lock;

/// Numbers the flights, so that a finishing flight removes its own map entry and no other.
static NEXT_FLIGHT: AtomicU64 = AtomicU64::new(0);

/// Coalesces concurrent computations with the same key into one.
///
/// The first caller of [`run`](Self::run) for a key starts the computation in a spawned tokio
/// task; callers that arrive while it runs wait for the same result. The task is independent of
/// its callers: if the first caller is dropped (a client disconnects), the others still get the
/// result and the work is not wasted. When the computation ends, the key is free again; results
/// are not kept (that is the cache's job).
///
/// Cheap to clone; clones share the flights in progress. `run` needs a tokio runtime.
pub(crate) struct SingleFlight<K, V> {
    flights: Arc<Mutex<HashMap<K, Flight<V>>>>,
}

/// A computation in progress: its number and where its result will appear.
struct Flight<V> {
    id: u64,
    rx: watch::Receiver<Option<V>>,
}

/// Why [`SingleFlight::run`] has no value: the computation panicked, or its task was aborted
/// (e.g. the runtime shut down).
///
/// It becomes an internal error (500):
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlightError;

impl fmt::Display for FlightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the shared computation panicked or was cancelled")
    }
}

impl std::error::Error for FlightError {}

impl From<FlightError> for crate::Error {
    /// An internal error (500).
    fn from(e: FlightError) -> Self {
        crate::Error::internal(format!("render task failed: {e}"))
    }
}

impl<K, V> SingleFlight<K, V> {
    /// Create a new [`SingleFlight`] with no computation in progress.
    pub(crate) fn new() -> Self {
        Self {
            flights: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// How many computations are in progress.
    pub(crate) fn in_flight(&self) -> usize {
        lock(&self.flights).len()
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The result of the computation for `key`: started now with `f` if none is in progress,
    /// else the one in progress (then `f` is dropped without being called).
    ///
    /// The future that `f` returns runs in a spawned task, so it must be `Send + 'static`.
    /// Dropping the returned future leaves the computation running for the other callers.
    ///
    /// # Errors
    ///
    /// [`FlightError`] when the computation panicked or its task was aborted; the key is free
    /// again afterwards, so a later call starts a new computation.
    pub(crate) async fn run<F, Fut>(&self, key: K, f: F) -> Result<V, FlightError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        let (mut rx, leader) = {
            let mut flights = lock(&self.flights);
            let joined = flights.get(&key).map(|flight| flight.rx.clone());
            match joined {
                Some(rx) => (rx, None),
                None => {
                    let (tx, rx) = watch::channel(None);
                    let id = NEXT_FLIGHT.fetch_add(1, Ordering::Relaxed);
                    flights.insert(key.clone(), Flight { id, rx: rx.clone() });
                    let completion = Completion {
                        flights: Arc::clone(&self.flights),
                        key,
                        id,
                        tx: Some(tx),
                    };
                    (rx, Some(completion))
                }
            }
        };
        match leader {
            Some(completion) => {
                // `completion` exists before `f` is called: if `f` panics, its drop frees the
                // key and closes the channel, so nobody waits forever.
                let fut = f();
                tokio::spawn(async move {
                    let value = fut.await;
                    completion.finish(value);
                });
            }
            // Not kept across the wait: the future is `Send` whatever `F` is.
            None => drop(f),
        }
        let value = match rx.wait_for(Option::is_some).await {
            Ok(value) => (*value).clone(),
            Err(_) => None,
        };
        value.ok_or(FlightError)
    }
}

/// Owned by the computation's task: publishes the result, and on drop (after the result, or
/// during a panic's unwinding, or when the task is aborted) frees the key first and closes the
/// channel second, so that a waiter who sees the channel closed finds the key already free.
struct Completion<K: Hash + Eq, V> {
    flights: Arc<Mutex<HashMap<K, Flight<V>>>>,
    key: K,
    id: u64,
    tx: Option<watch::Sender<Option<V>>>,
}

impl<K: Hash + Eq, V> Completion<K, V> {
    fn finish(self, value: V) {
        if let Some(tx) = &self.tx {
            tx.send_replace(Some(value));
        }
    }
}

impl<K: Hash + Eq, V> Drop for Completion<K, V> {
    fn drop(&mut self) {
        let removed = {
            let mut flights = lock(&self.flights);
            if flights.get(&self.key).is_some_and(|f| f.id == self.id) {
                flights.remove(&self.key)
            } else {
                None
            }
        };
        // Drop the map's receiver and then the sender outside the lock.
        drop(removed);
        drop(self.tx.take());
    }
}

impl<K, V> Clone for SingleFlight<K, V> {
    fn clone(&self) -> Self {
        Self {
            flights: Arc::clone(&self.flights),
        }
    }
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> fmt::Debug for SingleFlight<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingleFlight")
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;

    type Work = std::pin::Pin<Box<dyn Future<Output = u32> + Send>>;

    /// A computation that counts its runs, sleeps `millis` and answers 42.
    fn slow_answer(runs: &Arc<AtomicUsize>, millis: u64) -> impl FnOnce() -> Work + use<> {
        let runs = Arc::clone(runs);
        move || -> Work {
            Box::pin(async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(millis)).await;
                42u32
            })
        }
    }

    // On the current-thread runtime every caller has registered before the computation's
    // 50 ms are over, however loaded the machine is.
    #[tokio::test]
    async fn hundred_callers_one_computation() {
        let flight = SingleFlight::<u32, u32>::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let flight = flight.clone();
            let work = slow_answer(&runs, 50);
            tasks.push(tokio::spawn(async move { flight.run(1, work).await }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(42));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flight.in_flight(), 0);
    }

    #[tokio::test]
    async fn different_keys_run_separately() {
        let flight = SingleFlight::<u32, u32>::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let (a, b) = tokio::join!(
            flight.run(1, slow_answer(&runs, 10)),
            flight.run(2, slow_answer(&runs, 10)),
        );
        assert_eq!((a, b), (Ok(42), Ok(42)));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_cancelled_first_caller_does_not_waste_the_work() {
        let flight = SingleFlight::<u32, u32>::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let first = tokio::time::timeout(
            Duration::from_millis(1),
            flight.run(7, slow_answer(&runs, 200)),
        )
        .await;
        assert!(first.is_err(), "the first caller should have timed out");
        assert_eq!(
            flight.in_flight(),
            1,
            "the computation goes on without its caller"
        );
        let second = flight.run(7, slow_answer(&runs, 200)).await;
        assert_eq!(second, Ok(42));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flight.in_flight(), 0);
    }

    #[tokio::test]
    async fn the_key_is_free_after_a_result() {
        let flight = SingleFlight::<u32, u32>::new();
        let runs = Arc::new(AtomicUsize::new(0));
        assert_eq!(flight.run(3, slow_answer(&runs, 1)).await, Ok(42));
        assert_eq!(flight.run(3, slow_answer(&runs, 1)).await, Ok(42));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_panic_is_an_error_for_every_waiter_and_frees_the_key() {
        let flight = SingleFlight::<u32, u32>::new();
        let panicking = || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if true {
                panic!("computation exploded (expected by the test)");
            }
            0u32
        };
        let (a, b) = tokio::join!(flight.run(9, panicking), flight.run(9, panicking));
        assert_eq!((a, b), (Err(FlightError), Err(FlightError)));
        assert_eq!(flight.in_flight(), 0);
        let runs = Arc::new(AtomicUsize::new(0));
        assert_eq!(flight.run(9, slow_answer(&runs, 1)).await, Ok(42));
    }

    #[tokio::test]
    async fn a_panic_in_the_closure_frees_the_key() {
        let flight = SingleFlight::<u32, u32>::new();
        let flight2 = flight.clone();
        let caught = tokio::spawn(async move {
            flight2
                .run(5, || -> std::future::Ready<u32> {
                    panic!("closure exploded (expected by the test)")
                })
                .await
        })
        .await;
        assert!(caught.is_err(), "the panic reaches the caller");
        assert_eq!(flight.in_flight(), 0);
        let runs = Arc::new(AtomicUsize::new(0));
        assert_eq!(flight.run(5, slow_answer(&runs, 1)).await, Ok(42));
    }
}

/// The examples that stood in the doc comments of these crate-private items.
#[cfg(test)]
#[allow(unused_imports, clippy::all)]
mod doc_examples {
    mod doc_flight_singleflight_29 {
        use crate::cache::SingleFlight;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        #[tokio::main(flavor = "current_thread")]
        async fn main() {
            let flight = SingleFlight::<&'static str, u32>::new();
            let runs = Arc::new(AtomicUsize::new(0));
            let work = |runs: Arc<AtomicUsize>| {
                move || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    42
                }
            };
            let (a, b) = tokio::join!(
                flight.run("tile", work(Arc::clone(&runs))),
                flight.run("tile", work(Arc::clone(&runs))),
            );
            assert_eq!((a, b), (Ok(42), Ok(42)));
            assert_eq!(runs.load(Ordering::SeqCst), 1);
        }

        #[test]
        fn run() {
            main();
        }
    }

    mod doc_flight_flighterror_68 {
        use crate::cache::SingleFlight;
        use crate::cache::flight::FlightError;

        #[tokio::main(flavor = "current_thread")]
        async fn main() {
            let flight = SingleFlight::<u8, u8>::new();
            let err: FlightError = flight
                .run(0, || async {
                    if true {
                        panic!("a panic expected by this example");
                    }
                    0
                })
                .await
                .unwrap_err();
            assert_eq!(crate::Error::from(err).status(), 500);
        }

        #[test]
        fn run() {
            main();
        }
    }

    #[test]
    fn doc_flight_singleflight_k_v_new_108() {
        let flight = crate::cache::SingleFlight::<String, u64>::new();
        assert_eq!(flight.in_flight(), 0);
    }
}
