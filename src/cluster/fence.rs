//! Self-fencing: a node that was paused (SIGSTOP, a long stall, a VM freeze) or cut off
//! for longer than the takeover deadline may have been declared dead, and its identities
//! given to others. Requests its sockets buffered meanwhile are stale: the clients have
//! timed out and retried elsewhere, and replaying them could duplicate writes. So such a
//! node forwards nothing until it has re-confirmed its membership.
//!
//! The mechanism is a lease plus an epoch. A heartbeat task renews the lease every tick;
//! the data path checks both between reading a request and forwarding it. After a pause,
//! whichever task runs first, a connection that existed before it is closed (the client
//! retries, nothing is replayed): if the heartbeat task has not run yet, the lease is
//! stale; if it has, it bumped the epoch before renewing anything, and the connection's
//! epoch no longer matches. Connections accepted after the node re-confirmed are served.
//!
//! One case is left open: a client that connected and sent a request during the stall
//! itself, and whose connection is accepted only after re-confirmation; its request is
//! forwarded late, as if the network had delayed it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub struct Fence {
    started: Instant,
    lease: Duration,
    renewed_at_ms: AtomicU64,
    revoked: AtomicBool,
    /// Bumped at every detected stall, before the lease is renewed again.
    epoch: AtomicU64,
}

impl Fence {
    pub fn new(lease: Duration) -> Self {
        Fence {
            started: Instant::now(),
            lease,
            renewed_at_ms: AtomicU64::new(0),
            revoked: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
        }
    }

    /// The epoch a new connection is served in.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Whether a request read now, on a connection opened in `epoch`, may be forwarded.
    pub fn allows_forwarding(&self, epoch: u64) -> bool {
        // Lease first: a renewal seen here implies the epoch bump that preceded it.
        let lease_holds = self.since_renewal() < self.lease;
        lease_holds && !self.revoked.load(Ordering::Acquire) && self.epoch() == epoch
    }

    pub fn is_fenced(&self, epoch: u64) -> bool {
        !self.allows_forwarding(epoch)
    }

    fn since_renewal(&self) -> Duration {
        let renewed = Duration::from_millis(self.renewed_at_ms.load(Ordering::Acquire));
        self.started.elapsed().saturating_sub(renewed)
    }

    fn renew(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.renewed_at_ms.store(now, Ordering::Release);
        self.revoked.store(false, Ordering::Release);
    }

    /// Renews the lease every `tick` for the life of the node. After a gap longer than the
    /// lease, stays fenced until `reconfirm` completes.
    pub async fn keep_renewed<F, Fut>(self: Arc<Self>, tick: Duration, reconfirm: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ()>,
    {
        self.renew();
        let mut last = Instant::now();
        loop {
            tokio::time::sleep(tick).await;
            let gap = last.elapsed();
            if gap >= self.lease {
                self.revoked.store(true, Ordering::Release);
                self.epoch.fetch_add(1, Ordering::AcqRel);
                tracing::warn!(
                    ?gap,
                    "node was stalled past its lease; fenced until membership is re-confirmed"
                );
                reconfirm().await;
                tracing::info!("membership re-confirmed; forwarding again");
            }
            self.renew();
            last = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_unrenewed_lease_expires() {
        let fence = Fence::new(Duration::from_secs(2));
        fence.renew();
        tokio::time::advance(Duration::from_millis(1900)).await;
        assert!(fence.allows_forwarding(0));
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(fence.is_fenced(0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_longer_than_the_lease_fences_until_reconfirmed() {
        let fence = Arc::new(Fence::new(Duration::from_secs(2)));
        let (confirmed, confirmation) = tokio::sync::watch::channel(false);
        let reconfirm = move || {
            let mut confirmation = confirmation.clone();
            async move {
                let _ = confirmation.wait_for(|ok| *ok).await;
            }
        };
        tokio::spawn(
            fence
                .clone()
                .keep_renewed(Duration::from_millis(100), reconfirm),
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = fence.epoch();
        assert!(
            fence.allows_forwarding(before),
            "regular ticks keep the lease"
        );

        // The whole process stalls for 3 s: time jumps with no task running.
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(fence.is_fenced(before));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(fence.is_fenced(fence.epoch()), "fenced while unconfirmed");

        confirmed.send(true).unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(
            fence.allows_forwarding(fence.epoch()),
            "new connections are served"
        );
        assert!(
            fence.is_fenced(before),
            "connections from before the stall never are"
        );
    }
}
