//! The data directory's incarnation: a random name written once, when the directory is
//! created. A node restarted with its data keeps it; a node whose directory was wiped gets
//! a new one. The fleet records it with each Raft member, so a wiped node cannot quietly
//! take the seat of its former self: that seat may have voted in terms the new directory
//! knows nothing of, and voting again could elect two leaders in one term.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::Path;

const FILE: &str = "incarnation";

/// Reads the incarnation of `dir`, creating the directory and a new incarnation if
/// there is none yet. The file is made durable before the name is used anywhere.
pub fn data_incarnation(dir: &Path) -> std::io::Result<String> {
    let path = dir.join(FILE);
    match fs::read_to_string(&path) {
        Ok(name) => return Ok(name.trim().to_string()),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::create_dir_all(dir)?;
    let name = uuid::Uuid::new_v4().simple().to_string();
    let temporary = dir.join(format!("{FILE}.tmp"));
    let mut file = File::create(&temporary)?;
    file.write_all(name.as_bytes())?;
    file.sync_all()?;
    fs::rename(&temporary, &path)?;
    File::open(dir)?.sync_all()?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_keeps_its_incarnation_until_it_is_wiped() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let first = data_incarnation(&dir).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(data_incarnation(&dir).unwrap(), first);
        fs::remove_dir_all(&dir).unwrap();
        assert_ne!(data_incarnation(&dir).unwrap(), first);
    }
}
