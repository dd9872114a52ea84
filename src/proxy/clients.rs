//! The node's client connections as a whole: how many may be open at once, who they are
//! and what they do (for `proxyctl clients`), and how they end when the node stops
//! (redirect, stop accepting, drain, close). The listeners and the connection loop read
//! it; the node's stop sequence drives it.
//!
//! A connection must notice the node's stop even while it sits in a read, so it waits on
//! a [`StopSignal`] beside its sockets. That wait is polled at every wake-up of every
//! connection, so it is an atomic load and a waker registration, no lock: a cancellation
//! token or a `Notify` takes a lock shared by all connections at each poll, which showed
//! up in the per-request cost of the pass-through path.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

/// Where the node is in its stop, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    Serving,
    /// Connections send clients to the new owners (see `redirect`); listeners still accept.
    Redirecting,
    /// Listeners stop accepting; connections read no further request and close once they
    /// owe the client nothing.
    Stopping,
    /// Whatever is still open closes now.
    Closing,
}

pub struct ClientConnections {
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
    phase: AtomicU8,
    /// One waker per connection or listener waiting on a [`StopSignal`].
    waiting: Mutex<HashMap<u64, Arc<AtomicWaker>>>,
    next_waiter: AtomicU64,
    /// Every open connection, by a number of its own.
    connected: Mutex<HashMap<u64, Arc<Connected>>>,
    next_connection: AtomicU64,
}

/// One open client connection: where it comes from and what it has been seen doing.
pub struct Connected {
    pub peer: SocketAddr,
    /// The identity it connected to (`bootstrap` for the bootstrap port).
    pub identity: String,
    pub opened: Instant,
    facts: Mutex<ClientFacts>,
}

/// What a connection's requests told about its client. The connection loop remembers
/// what it reported and writes here only when something changed, so a request costs no
/// lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFacts {
    pub client_id: Option<String>,
    pub principal: Option<String>,
    /// Name and version, from ApiVersions v3+.
    pub software: Option<(String, String)>,
    /// The acks levels of its Produce requests, as bits: -1 is bit 0, 0 bit 1, 1 bit 2.
    pub acks: u8,
    /// The codecs of its record batches, as `batches::Codecs` bits.
    pub codecs: u8,
    pub idempotent: bool,
    pub transactional_id: Option<String>,
    pub groups: Vec<String>,
    /// The client's zone as this node placed it (`none`), on a node with a zone.
    pub zone: Option<String>,
}

impl ClientFacts {
    /// The acks levels used, from the bits of [`ClientFacts::acks`].
    pub fn acks_levels(&self) -> Vec<i16> {
        [-1i16, 0, 1]
            .into_iter()
            .enumerate()
            .filter(|(bit, _)| self.acks & (1 << bit) != 0)
            .map(|(_, acks)| acks)
            .collect()
    }

    /// The bit of an acks level (other values share bit 3).
    pub fn acks_bit(acks: i16) -> u8 {
        match acks {
            -1 => 1,
            0 => 2,
            1 => 4,
            _ => 8,
        }
    }
}

impl Connected {
    pub fn facts(&self) -> ClientFacts {
        self.lock().clone()
    }

    /// Changes the facts; called only when the connection loop learned something new.
    pub fn change(&self, change: impl FnOnce(&mut ClientFacts)) {
        change(&mut self.lock());
    }

    fn lock(&self) -> MutexGuard<'_, ClientFacts> {
        self.facts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A connection's place in the registry; leaves it when dropped.
pub struct Registration<'a> {
    clients: &'a ClientConnections,
    number: u64,
    pub connection: Arc<Connected>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        lock(&self.clients.connected).remove(&self.number);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClientConnections {
    pub fn new(max_connections: usize) -> ClientConnections {
        ClientConnections {
            slots: Arc::new(Semaphore::new(max_connections)),
            tracker: TaskTracker::new(),
            phase: AtomicU8::new(Phase::Serving as u8),
            waiting: Mutex::default(),
            next_waiter: AtomicU64::new(0),
            connected: Mutex::default(),
            next_connection: AtomicU64::new(0),
        }
    }

    /// Lists a new connection until the returned registration is dropped.
    pub fn register(&self, peer: SocketAddr, identity: &str) -> Registration<'_> {
        let number = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connected {
            peer,
            identity: identity.to_string(),
            opened: Instant::now(),
            facts: Mutex::default(),
        });
        lock(&self.connected).insert(number, connection.clone());
        Registration {
            clients: self,
            number,
            connection,
        }
    }

    /// The connections open now.
    pub fn connected(&self) -> Vec<Arc<Connected>> {
        lock(&self.connected).values().cloned().collect()
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Serving,
            1 => Phase::Redirecting,
            2 => Phase::Stopping,
            _ => Phase::Closing,
        }
    }

    /// A connection slot, if one is free.
    pub fn try_admit(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Runs one client connection as a tracked task.
    pub fn spawn(&self, connection: impl Future<Output = ()> + Send + 'static) {
        self.tracker.spawn(connection);
    }

    /// What a connection or listener waits on to learn of the node's stop.
    pub fn stop_signal(&self) -> StopSignal<'_> {
        let id = self.next_waiter.fetch_add(1, Ordering::Relaxed);
        let waker = Arc::new(AtomicWaker::new());
        self.lock_waiting().insert(id, waker.clone());
        StopSignal {
            clients: self,
            id,
            waker,
        }
    }

    /// Sends clients elsewhere for at most `window`, or until none is connected any more.
    pub async fn redirect(&self, window: Duration) {
        self.enter(Phase::Redirecting);
        let deadline = tokio::time::Instant::now() + window;
        while !self.tracker.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await; // poll: clients leave on their own
        }
    }

    /// Stops accepting and lets every connection finish what it owes, for at most
    /// `deadline`; then closes the rest. Returns how many had to be closed.
    pub async fn stop(&self, deadline: Duration) -> usize {
        self.enter(Phase::Stopping);
        self.tracker.close();
        if tokio::time::timeout(deadline, self.tracker.wait())
            .await
            .is_ok()
        {
            return 0;
        }
        let left = self.tracker.len();
        self.enter(Phase::Closing);
        self.tracker.wait().await;
        left
    }

    fn enter(&self, phase: Phase) {
        self.phase.fetch_max(phase as u8, Ordering::AcqRel);
        for waker in self.lock_waiting().values() {
            waker.wake();
        }
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<AtomicWaker>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One waiter's view of the node's stop; unregisters itself when dropped.
pub struct StopSignal<'a> {
    clients: &'a ClientConnections,
    id: u64,
    waker: Arc<AtomicWaker>,
}

impl StopSignal<'_> {
    /// Resolves once the node has reached `phase`. Cheap to poll again and again.
    pub async fn reached(&self, phase: Phase) {
        std::future::poll_fn(|cx| {
            self.waker.register(cx.waker());
            if self.clients.phase() >= phase {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

impl Drop for StopSignal<'_> {
    fn drop(&mut self) {
        self.clients.lock_waiting().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_learns_of_each_phase_it_waits_for() {
        let clients = ClientConnections::new(1);
        {
            let signal = clients.stop_signal();
            let waiting = signal.reached(Phase::Stopping);
            tokio::pin!(waiting);
            assert!(futures::poll!(&mut waiting).is_pending());
            clients.enter(Phase::Redirecting);
            assert!(futures::poll!(&mut waiting).is_pending());
            assert_eq!(clients.stop(Duration::from_secs(1)).await, 0);
            assert!(futures::poll!(&mut waiting).is_ready());
        }
        assert!(
            clients.lock_waiting().is_empty(),
            "a dropped signal unregisters"
        );
    }

    #[test]
    fn a_connection_is_listed_until_its_registration_drops() {
        let clients = ClientConnections::new(1);
        let registration = clients.register("127.0.0.1:5".parse().unwrap(), "bootstrap");
        registration
            .connection
            .change(|f| f.acks = ClientFacts::acks_bit(-1) | ClientFacts::acks_bit(1));
        let listed = clients.connected();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].facts().acks_levels(), vec![-1, 1]);
        drop(registration);
        assert!(clients.connected().is_empty());
    }
}
