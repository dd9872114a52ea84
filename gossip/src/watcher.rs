//! Keeps the published member list in step with chitchat.
//!
//! chitchat's live-nodes watcher fires when the set of live nodes changes or when a live
//! node publishes a new value, which covers joins, deaths, returns and state changes. It
//! does not fire when a long-dead node is finally forgotten, so the task also reconciles
//! on a slow timer; either way a snapshot is only sent when it differs from the last one,
//! so subscribers wake for real changes only.

use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use chitchat::Chitchat;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

use crate::member::{self, Member};
use crate::vetting::Vetting;

/// Recomputes the member list and publishes it if it changed.
///
/// The send happens under the chitchat lock so that two refreshes racing cannot publish
/// an older view after a newer one.
pub(crate) async fn refresh(
    chitchat: &Mutex<Chitchat>,
    members: &watch::Sender<Vec<Member>>,
    vetting: &StdMutex<Vetting>,
) {
    let chitchat = chitchat.lock().await;
    let mut vetting = vetting.lock().unwrap_or_else(|e| e.into_inner());
    let (fresh, impostors) = member::snapshot(&chitchat, vetting.recorded());
    vetting.found(impostors);
    drop(vetting);
    members.send_if_modified(|current| {
        if *current == fresh {
            return false;
        }
        *current = fresh;
        true
    });
}

/// Spawns the task that refreshes `members` on every chitchat change and every `reconcile`.
pub(crate) fn spawn(
    chitchat: Arc<Mutex<Chitchat>>,
    members: Arc<watch::Sender<Vec<Member>>>,
    vetting: Arc<StdMutex<Vetting>>,
    reconcile: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut live_nodes = chitchat.lock().await.live_nodes_watcher();
        let mut timer = tokio::time::interval(reconcile);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = live_nodes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = timer.tick() => {}
            }
            refresh(&chitchat, &members, &vetting).await;
        }
    })
}

/// Aborts the task when dropped, so a dropped [`crate::Gossip`] leaves nothing running.
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
