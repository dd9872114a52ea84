//! The answers a connection owes its client, in request order.
//!
//! Kafka answers the requests of one connection in the order they were sent, and clients
//! rely on it: they match responses to requests by position as much as by correlation id.
//! Most answers come from the broker, which keeps that order itself; the proxy only
//! remembers what it forwarded (correlation id, API, version) so it can check each
//! response and hand it to the right filters. Some answers are the proxy's own (a filter
//! answered the request). Such an answer is queued in the request's place and goes out
//! only after the broker's answers to every earlier request, never before.
//!
//! The request side pushes, the response side pops; both run in the connection's one task,
//! so the lock is never contended. The response side needs waking only for an answer of
//! the proxy's (a broker's answer wakes it by arriving) and for the end of the requests;
//! that wake is an atomic flag and waker, not a `Notify`, whose every poll takes a lock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;
use futures::task::AtomicWaker;
use kafka_protocol::messages::ApiKey;

/// A request forwarded to the broker whose response has not come back yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarded {
    pub correlation_id: i32,
    pub api_key: ApiKey,
    pub api_version: i16,
    /// When a Produce or Fetch was read off the client, for its latency.
    pub received: Option<Instant>,
}

/// One answer owed to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owed {
    /// The broker's response to a forwarded request.
    Broker(Forwarded),
    /// An answer the proxy built, ready to send.
    Proxy(Bytes),
    /// The broker's answer to a raw SASL token (after a v0 SaslHandshake): a frame with no
    /// Kafka header, forwarded as it is.
    Raw,
    /// The broker's answer to the proxy's own request (renewing its login on this
    /// connection): handed to the request side, never sent to the client.
    Login,
}

#[derive(Default)]
pub struct InFlight {
    queue: Mutex<VecDeque<Owed>>,
    /// Set by `wake` (and by pushing an answer of the proxy's, which no broker frame will
    /// announce), cleared by the `pushed` that sees it.
    woken: AtomicBool,
    waker: AtomicWaker,
}

impl InFlight {
    pub fn push(&self, owed: Owed) {
        let announce = matches!(owed, Owed::Proxy(_));
        self.lock().push_back(owed);
        if announce {
            self.wake();
        }
    }

    /// The next answer owed, without removing it.
    pub fn front(&self) -> Option<Owed> {
        self.lock().front().cloned()
    }

    pub fn pop(&self) -> Option<Owed> {
        self.lock().pop_front()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Resolves after the next push of an answer of the proxy's, or `wake` (at once if one
    /// happened since the last wait). A broker's answer does not resolve it: its frame
    /// arriving is what the response side waits for beside this.
    pub async fn pushed(&self) {
        std::future::poll_fn(|cx| {
            self.waker.register(cx.waker());
            match self.woken.swap(false, Ordering::AcqRel) {
                true => Poll::Ready(()),
                false => Poll::Pending,
            }
        })
        .await
    }

    /// Wakes a waiter on `pushed` without pushing: the request side has stopped, and the
    /// response side must look again whether anything is still owed.
    pub fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// A poisoned lock cannot leave the queue half-updated: every operation is one call.
    fn lock(&self) -> MutexGuard<'_, VecDeque<Owed>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(id: i32) -> Owed {
        Owed::Broker(Forwarded {
            correlation_id: id,
            api_key: ApiKey::Metadata,
            api_version: 12,
            received: None,
        })
    }

    #[test]
    fn answers_leave_in_the_order_they_were_owed() {
        let in_flight = InFlight::default();
        in_flight.push(forwarded(1));
        in_flight.push(Owed::Proxy(Bytes::from_static(b"answer to 2")));
        in_flight.push(forwarded(3));
        assert_eq!(in_flight.pop(), Some(forwarded(1)));
        assert_eq!(
            in_flight.pop(),
            Some(Owed::Proxy(Bytes::from_static(b"answer to 2")))
        );
        assert_eq!(in_flight.front(), Some(forwarded(3)));
    }

    #[tokio::test]
    async fn an_answer_pushed_before_the_wait_is_not_lost() {
        let in_flight = InFlight::default();
        in_flight.push(Owed::Proxy(Bytes::from_static(b"answer")));
        tokio::time::timeout(std::time::Duration::from_secs(5), in_flight.pushed())
            .await
            .expect("the earlier push wakes the waiter");
    }

    #[tokio::test]
    async fn a_forwarded_request_does_not_wake_the_response_side() {
        let in_flight = InFlight::default();
        in_flight.push(forwarded(1));
        let pushed = in_flight.pushed();
        tokio::pin!(pushed);
        assert!(futures::poll!(&mut pushed).is_pending());
        in_flight.wake();
        assert!(futures::poll!(&mut pushed).is_ready());
    }
}
