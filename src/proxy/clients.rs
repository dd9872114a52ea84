//! The node's client connections as a whole: how many may be open at once, and how they
//! end when the node stops (redirect, stop accepting, drain, close). The listeners and the
//! connection loop read it; the node's stop sequence drives it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The node's client connections, as a whole: how many may be open, and how they stop.
pub struct ClientConnections {
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
    /// The node is on its way out: connections send clients to the new owners (see
    /// `redirect`), listeners still accept.
    pub redirecting: CancellationToken,
    /// Listeners stop accepting; connections read no further request and close once they
    /// owe the client nothing.
    pub stopping: CancellationToken,
    /// Whatever is still open closes now.
    pub closing: CancellationToken,
}

impl ClientConnections {
    /// A connection slot, if one is free.
    pub fn try_admit(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Runs one client connection as a tracked task.
    pub fn spawn(&self, connection: impl Future<Output = ()> + Send + 'static) {
        self.tracker.spawn(connection);
    }

    pub fn new(max_connections: usize) -> ClientConnections {
        ClientConnections {
            slots: Arc::new(Semaphore::new(max_connections)),
            tracker: TaskTracker::new(),
            redirecting: CancellationToken::new(),
            stopping: CancellationToken::new(),
            closing: CancellationToken::new(),
        }
    }

    /// Sends clients elsewhere for at most `window`, or until none is connected any more.
    pub async fn redirect(&self, window: Duration) {
        self.redirecting.cancel();
        let deadline = tokio::time::Instant::now() + window;
        while !self.tracker.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await; // poll: clients leave on their own
        }
    }

    /// Stops accepting and lets every connection finish what it owes, for at most
    /// `deadline`; then closes the rest. Returns how many had to be closed.
    pub async fn stop(&self, deadline: Duration) -> usize {
        self.stopping.cancel();
        self.tracker.close();
        if tokio::time::timeout(deadline, self.tracker.wait())
            .await
            .is_ok()
        {
            return 0;
        }
        let left = self.tracker.len();
        self.closing.cancel();
        self.tracker.wait().await;
        left
    }
}
