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
//! so the lock is never contended.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use tokio::sync::Notify;

/// A request forwarded to the broker whose response has not come back yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarded {
    pub correlation_id: i32,
    pub api_key: ApiKey,
    pub api_version: i16,
}

/// One answer owed to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owed {
    /// The broker's response to a forwarded request.
    Broker(Forwarded),
    /// An answer the proxy built, ready to send.
    Proxy(Bytes),
}

#[derive(Default)]
pub struct InFlight {
    queue: Mutex<VecDeque<Owed>>,
    /// Wakes the response side when an answer of the proxy's joins an empty queue: there is
    /// no broker response to wait for before sending it.
    pushed: Notify,
}

impl InFlight {
    pub fn push(&self, owed: Owed) {
        self.lock().push_back(owed);
        self.pushed.notify_one();
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

    /// Resolves after the next `push` or `wake` (or at once if one happened since the
    /// last wait).
    pub async fn pushed(&self) {
        self.pushed.notified().await;
    }

    /// Wakes a waiter on `pushed` without pushing: the request side has stopped, and the
    /// response side must look again whether anything is still owed.
    pub fn wake(&self) {
        self.pushed.notify_one();
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
    async fn a_push_before_the_wait_is_not_lost() {
        let in_flight = InFlight::default();
        in_flight.push(forwarded(1));
        tokio::time::timeout(std::time::Duration::from_secs(5), in_flight.pushed())
            .await
            .expect("the earlier push wakes the waiter");
    }
}
