//! The durable half of Raft: log entries, the vote, the committed log id and the last
//! purged log id, so that a restarted node resumes where it stopped instead of rejoining
//! as a blank voter (which could elect a leader missing committed entries).
//!
//! Stored in redb, whose commits are ACID and fsync'd before `commit()` returns
//! (`Durability::Immediate`). Every write is one transaction, committed before openraft
//! is told it is done; that is what makes "fsync before acknowledging appends" true.
//! redb is blocking, so every call runs on tokio's blocking pool.
//!
//! The database also records the node id it was created for: pointing a node at another
//! node's data dir would make it vote with someone else's history.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogReader, StorageIOError};
use redb::{Database, Durability, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{self, DecodeError, EncodeError};
use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig, Vote};

/// File name of the log database inside the data dir.
pub const LOG_FILE: &str = "raft-log.redb";

/// The log is small and read mostly near its tail; redb's default cache is 1 GiB.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("logs");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const KEY_NODE_ID: &str = "node_id";
const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_PURGED: &str = "last_purged";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("log database: {0}")]
    Db(Box<redb::Error>),
    #[error("file i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("decoding stored record: {0}")]
    Decode(#[from] DecodeError),
    #[error("encoding record: {0}")]
    Encode(#[from] EncodeError),
    #[error("data dir belongs to node {found}, not to node {expected}")]
    ForeignNode { found: NodeId, expected: NodeId },
    #[error("blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(Box::new(e.into()))
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Handle to the log database; cheap to clone (also serves as the log reader).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl LogStore {
    /// Opens (or creates) the log database in `dir`, claiming it for `node_id`.
    pub fn open(dir: &Path, node_id: NodeId) -> Result<LogStore, StoreError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(dir.join(LOG_FILE))?;
        claim(&db, node_id)?;
        Ok(LogStore { db: Arc::new(db) })
    }

    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db)).await?
    }
}

fn claim(db: &Database, node_id: NodeId) -> Result<(), StoreError> {
    match get_meta::<NodeId>(db, KEY_NODE_ID)? {
        Some(found) if found != node_id => Err(StoreError::ForeignNode {
            found,
            expected: node_id,
        }),
        Some(_) => Ok(()),
        None => put_meta(db, KEY_NODE_ID, &node_id),
    }
}

fn write_txn(db: &Database) -> Result<redb::WriteTransaction, StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate);
    Ok(txn)
}

fn get_meta<T: DeserializeOwned>(db: &Database, key: &str) -> Result<Option<T>, StoreError> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let value = table.get(key)?;
    Ok(value.map(|v| codec::decode(v.value())).transpose()?)
}

fn put_meta<T: Serialize>(db: &Database, key: &str, value: &T) -> Result<(), StoreError> {
    let bytes = codec::encode(value)?;
    let txn = write_txn(db)?;
    txn.open_table(META)?.insert(key, bytes.as_slice())?;
    txn.commit()?;
    Ok(())
}

fn read_entries(db: &Database, range: (Bound<u64>, Bound<u64>)) -> Result<Vec<Entry>, StoreError> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(LOGS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut entries = Vec::new();
    for row in table.range(range)? {
        let (_, value) = row?;
        entries.push(codec::decode(value.value())?);
    }
    Ok(entries)
}

fn last_entry_id(db: &Database) -> Result<Option<LogId>, StoreError> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(LOGS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some((_, value)) = table.last()? else {
        return Ok(None);
    };
    let entry: Entry = codec::decode(value.value())?;
    Ok(Some(entry.log_id))
}

fn append_entries(db: &Database, entries: Vec<Entry>) -> Result<(), StoreError> {
    let txn = write_txn(db)?;
    {
        let mut table = txn.open_table(LOGS)?;
        for entry in &entries {
            table.insert(entry.log_id.index, codec::encode(entry)?.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}

fn truncate_from(db: &Database, index: u64) -> Result<(), StoreError> {
    let txn = write_txn(db)?;
    txn.open_table(LOGS)?.retain_in(index.., |_, _| false)?;
    txn.commit()?;
    Ok(())
}

/// Records the purge point and drops entries up to it in one transaction, so a crash
/// never leaves a hole between the purge point and the first stored entry.
fn purge_upto(db: &Database, log_id: LogId) -> Result<(), StoreError> {
    let txn = write_txn(db)?;
    txn.open_table(META)?
        .insert(KEY_PURGED, codec::encode(&log_id)?.as_slice())?;
    txn.open_table(LOGS)?
        .retain_in(..=log_id.index, |_, _| false)?;
    txn.commit()?;
    Ok(())
}

fn owned_range<RB: RangeBounds<u64>>(range: &RB) -> (Bound<u64>, Bound<u64>) {
    (range.start_bound().cloned(), range.end_bound().cloned())
}

fn read_err(e: StoreError) -> StorageError {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: StoreError) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let range = owned_range(&range);
        self.run(move |db| read_entries(db, range))
            .await
            .map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let (last_purged_log_id, last) = self
            .run(|db| Ok((get_meta::<LogId>(db, KEY_PURGED)?, last_entry_id(db)?)))
            .await
            .map_err(read_err)?;
        Ok(LogState {
            last_log_id: last.or(last_purged_log_id),
            last_purged_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let vote = *vote;
        self.run(move |db| put_meta(db, KEY_VOTE, &vote))
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.run(|db| get_meta(db, KEY_VOTE))
            .await
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.run(move |db| put_meta(db, KEY_COMMITTED, &committed))
            .await
            .map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let stored = self
            .run(|db| get_meta::<Option<LogId>>(db, KEY_COMMITTED))
            .await
            .map_err(read_err)?;
        Ok(stored.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        self.run(move |db| append_entries(db, entries))
            .await
            .map_err(write_err)?;
        // Only now is the transaction committed and fsync'd.
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.run(move |db| truncate_from(db, log_id.index))
            .await
            .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.run(move |db| purge_upto(db, log_id))
            .await
            .map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_another_nodes_dir() {
        let dir = tempfile::tempdir().unwrap();
        drop(LogStore::open(dir.path(), 1).unwrap());
        assert!(LogStore::open(dir.path(), 1).is_ok());
        let err = LogStore::open(dir.path(), 2).err().unwrap();
        assert!(matches!(
            err,
            StoreError::ForeignNode {
                found: 1,
                expected: 2
            }
        ));
    }
}
