//! Runs openraft's own storage conformance suite against the redb log store and the
//! snapshot-backed state machine.

use flotilla_raft::log_store::LogStore;
use flotilla_raft::state_machine::StateMachine;
use flotilla_raft::types::{StorageError, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;

struct OnDisk;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for OnDisk {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = LogStore::open(dir.path(), 0).expect("open log store");
        let sm = StateMachine::open(dir.path()).expect("open state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(OnDisk).expect("storage suite");
}
