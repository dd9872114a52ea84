//! The node's background tasks (listeners, gossip and Raft wiring, the controller, probes,
//! the admin API) run for the node's whole life. If one of them ends, by an error or a
//! panic, the node would go on half-alive: accepting clients it cannot serve, or keeping
//! identities the fleet can no longer move. So every such task is spawned here, and the
//! first one to end while the node is not stopping makes the node log why and exit
//! non-zero, for the service manager to restart it.

use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use tokio::sync::mpsc;

/// How a critical task ended.
#[derive(Debug)]
pub struct TaskEnd {
    pub name: Cow<'static, str>,
    pub reason: String,
}

/// Spawns critical tasks; cheap to clone, so a task can start more of them (a listener
/// per new identity slot).
#[derive(Clone)]
pub struct Tasks {
    ended: mpsc::UnboundedSender<TaskEnd>,
}

/// Where the ends of critical tasks are reported.
pub struct TaskEnds(mpsc::UnboundedReceiver<TaskEnd>);

pub fn new() -> (Tasks, TaskEnds) {
    let (ended, reports) = mpsc::unbounded_channel();
    (Tasks { ended }, TaskEnds(reports))
}

impl Tasks {
    /// Runs `task` for the life of the node. Its end, whatever the cause, is reported.
    pub fn spawn<F>(&self, name: impl Into<Cow<'static, str>>, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let name = name.into();
        let task = test_hooks::maybe_fail(&name, task);
        let ended = self.ended.clone();
        tokio::spawn(async move {
            let reason = match AssertUnwindSafe(task).catch_unwind().await {
                Ok(Ok(())) => "it returned".to_string(),
                Ok(Err(e)) => format!("{e:#}"),
                Err(panic) => format!("it panicked: {}", panic_message(&*panic)),
            };
            let _ = ended.send(TaskEnd { name, reason });
        });
    }
}

impl TaskEnds {
    /// The first task to end. Never resolves while every task runs.
    pub async fn first(&mut self) -> TaskEnd {
        match self.0.recv().await {
            Some(end) => end,
            // Every `Tasks` handle is gone: nothing can end any more.
            None => std::future::pending().await,
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// A test-only fault: `FLOTILLA_TEST_FAIL_TASK=NAME` makes the task named NAME fail one
/// second after it starts, so tests can watch the node exit. Compiled only with the
/// `test-hooks` feature.
#[cfg(feature = "test-hooks")]
mod test_hooks {
    use std::future::Future;
    use std::time::Duration;

    pub fn maybe_fail<F>(
        name: &str,
        task: F,
    ) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        if std::env::var("FLOTILLA_TEST_FAIL_TASK").as_deref() != Ok(name) {
            return Box::pin(task);
        }
        Box::pin(async move {
            tokio::select! {
                r = task => r,
                () = tokio::time::sleep(Duration::from_secs(1)) => {
                    panic!("injected fault (FLOTILLA_TEST_FAIL_TASK)")
                }
            }
        })
    }
}

#[cfg(not(feature = "test-hooks"))]
mod test_hooks {
    pub fn maybe_fail<F>(_name: &str, task: F) -> F {
        task
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_end_is_reported_with_its_cause() {
        let (tasks, mut ends) = new();
        tasks.spawn("forever", std::future::pending());
        tasks.spawn("fails", async { Err(anyhow::anyhow!("disk full")) });
        let end = ends.first().await;
        assert_eq!(
            (end.name.as_ref(), end.reason.as_str()),
            ("fails", "disk full")
        );
    }

    #[tokio::test]
    async fn a_panic_is_an_end_too() {
        let (tasks, mut ends) = new();
        tasks.spawn("panics", async { panic!("bug") });
        let end = ends.first().await;
        assert_eq!(end.reason, "it panicked: bug");
    }
}
